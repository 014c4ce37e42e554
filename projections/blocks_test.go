package projections

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// personStored reads a person's events out of blocks shared with other persons, looking for
// each entry after the last one it found: every event of the person, and only its, comes
// back, in order, whether the person's events are neighbours in a block, spread over
// several blocks, or alone; a sequence the blocks lack is an ErrCorrupt.
func TestPersonStored_ReadsEachPersonsEvents(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "blocks.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Three persons over three blocks: a (every third), b (runs of two), c (one late event).
	owner := map[uint64]string{}
	for seq := uint64(1); seq <= 3*eventsPerBlock; seq++ {
		switch {
		case seq == 2*eventsPerBlock+5:
			owner[seq] = "c"
		case seq%3 == 0:
			owner[seq] = "a"
		default:
			owner[seq] = "b"
		}
	}
	data := func(seq uint64) []byte { return fmt.Appendf(nil, "event %d of %s", seq, owner[seq]) }
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketEvents)
		if err != nil {
			return err
		}
		w := &eventBlockWriter{b: bkt{b: b, name: bucketEvents}}
		for seq := uint64(1); seq <= 3*eventsPerBlock; seq++ {
			if err := w.add(seq, data(seq)); err != nil {
				return err
			}
		}
		return w.flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	seqsOf := func(person string) []uint64 {
		var out []uint64
		for seq := uint64(1); seq <= 3*eventsPerBlock; seq++ {
			if owner[seq] == person {
				out = append(out, seq)
			}
		}
		return out
	}
	read := func(tx *bolt.Tx, blocks *blockTable) error {
		for _, person := range []string{"a", "b", "c"} {
			want := seqsOf(person)
			var got []uint64
			err := personStored(tx, blocks, want, func(seq uint64, v []byte) error {
				if string(v) != string(data(seq)) {
					return fmt.Errorf("person %s, seq %d: got %q", person, seq, v)
				}
				got = append(got, seq)
				return nil
			})
			if err != nil {
				return err
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("person %s: read seqs %v, want %v", person, got, want)
			}
		}
		// A sequence beyond the blocks, after ones found in the same block.
		missing := []uint64{3, 6, 3*eventsPerBlock + 1}
		if err := personStored(tx, blocks, missing, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("missing seq: err = %v, want ErrCorrupt", err)
		}
		return nil
	}
	// Each block looked up in the bucket, and all taken from a table of the blocks (a fold's).
	err = db.View(func(tx *bolt.Tx) error {
		blocks := blocksOf(tx)
		if blocks == nil || len(blocks.blocks) != 4 {
			return fmt.Errorf("block table = %+v, want room for blocks 0-3", blocks)
		}
		return errors.Join(read(tx, nil), read(tx, blocks))
	})
	if err != nil {
		t.Fatal(err)
	}
	// A block number far past the others (a damaged key) gives no table.
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).Put([]byte{0, 0, 1, 0, 0, 0, 0, 0}, []byte("x"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		if blocks := blocksOf(tx); blocks != nil {
			return fmt.Errorf("block table of %d blocks with a damaged key, want none", len(blocks.blocks))
		}
		return read(tx, nil)
	}); err != nil {
		t.Fatal(err)
	}
}
