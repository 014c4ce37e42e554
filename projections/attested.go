package projections

// A rebuild from the live file: the events the live read-model file holds, checked against
// the stream's last signed checkpoint they cover, are copied into the new file, and only the
// stream after that checkpoint is read. The folds are then made from the stored events as in
// a rebuild from the stream, so both give the same file.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Attester is implemented by feeds that can vouch for a copy of the stream's messages: the
// stream's checkpoints digest every message, and a checkpoint signed by the register's key
// shows what the stream held through its sequence.
type Attester interface {
	// Attest returns the last trusted checkpoint at or below seq as an Attestation, nil
	// when there is none.
	Attest(ctx context.Context, atMost uint64) (Attestation, error)
}

// Attestation checks a copy of the stream's messages 1..Seq() against a checkpoint's digest.
// Every message is given once, in sequence order, by Add or by Fetch.
type Attestation interface {
	// Seq is the last sequence the checkpoint covers.
	Seq() uint64
	// Add adds the copy's event at seq: its person (the subject's key) and its encoding as
	// stored on the stream.
	Add(seq uint64, personKey string, data []byte) error
	// Fetch reads the message at seq from the stream (one the copy lacks), adds it, and
	// returns it as a replay with ReplayOptions.Undecoded delivers it.
	Fetch(ctx context.Context, seq uint64) (Record, error)
	// Check returns nil when the messages added are exactly those the checkpoint covers.
	Check() error
}

// ErrNotAttested is returned when a copy of the stream's events does not match the stream's
// checkpoint: the rebuild reads the stream instead.
var ErrNotAttested = errors.New("projections: the read-model file's events do not match the stream's checkpoint")

// attestedFetchMax bounds the messages a rebuild from the live file reads one by one from
// the stream (those the file does not keep: quarantined ones, or a file with gaps); a file
// that lacks more is not used, and the stream is read whole.
const attestedFetchMax = 10000

// copyAttested stores into db (a new, empty file) the events src holds through the last
// checkpoint at or below src's own checkpoint and to that att attests, once every one of them is
// checked against it. It returns the last sequence stored: 0 when there is no checkpoint to
// check against (nothing is stored). Any error leaves db unusable: the caller starts a new
// file and reads the stream from its start.
func copyAttested(ctx context.Context, att Attester, src, db *DB, to uint64, report func(done, total uint64)) (uint64, error) {
	srcLast, err := src.Checkpoint()
	if err != nil || srcLast == 0 {
		return 0, err
	}
	if to > 0 {
		srcLast = min(srcLast, to)
	}
	a, err := att.Attest(ctx, srcLast)
	if err != nil || a == nil {
		return 0, err
	}
	through := a.Seq()
	if through == 0 || through > srcLast {
		return 0, fmt.Errorf("%w: the checkpoint covers seq %d, the file %d", ErrNotAttested, through, srcLast)
	}
	fetched := 0
	batch := make([]Record, 0, rebuildBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		last, err := db.bulkStore(batch)
		batch = batch[:0]
		if err == nil {
			report(last, through)
		}
		return err
	}
	// fetch takes the messages from..to, which the file does not hold, from the stream.
	fetch := func(from, to uint64) error {
		for seq := from; seq <= to; seq++ {
			if fetched++; fetched > attestedFetchMax {
				return fmt.Errorf("%w: the file lacks more than %d of the messages through seq %d", ErrNotAttested, attestedFetchMax, through)
			}
			rec, err := a.Fetch(ctx, seq)
			if err != nil {
				return err
			}
			if batch = append(batch, rec); len(batch) >= rebuildBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err = src.view(func(tx *bolt.Tx) error {
		// Whose event each sequence is: the person bucket lists every person's sequences.
		owner := make([]uint32, through+1)
		var persons []string
		if err := bucket(tx, bucketPEvents).ForEach(func(k, v []byte) error {
			persons = append(persons, string(k))
			for _, seq := range personSeqs(v) {
				if seq > through {
					break
				}
				if owner[seq] != 0 {
					return fmt.Errorf("%w: seq %d is listed for two persons", ErrNotAttested, seq)
				}
				owner[seq] = uint32(len(persons))
			}
			return nil
		}); err != nil {
			return err
		}
		next := uint64(1) // the first sequence not yet given to the attestation
		c := tx.Bucket(bucketEvents).Cursor()
		for k, block := c.First(); k != nil && next <= through; k, block = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			for len(block) > 0 && next <= through {
				seq, n := binary.Uvarint(block)
				if n <= 0 {
					return fmt.Errorf("%w: a block of the events bucket does not decode", ErrCorrupt)
				}
				block = block[n:]
				l, n := binary.Uvarint(block)
				if n <= 0 || uint64(len(block)-n) < l {
					return fmt.Errorf("%w: a block of the events bucket does not decode", ErrCorrupt)
				}
				entry := block[n : n+int(l)]
				block = block[n+int(l):]
				if seq > through {
					break
				}
				if seq < next {
					return fmt.Errorf("%w: seq %d is stored out of order", ErrNotAttested, seq)
				}
				if err := fetch(next, seq-1); err != nil {
					return err
				}
				data := entryData(seq, entry) // its checksum is checked
				o := owner[seq]
				if o == 0 {
					return fmt.Errorf("%w: the event at seq %d belongs to no person", ErrNotAttested, seq)
				}
				pk := persons[o-1]
				if err := a.Add(seq, pk, data); err != nil {
					return err
				}
				// data points into src's pages, which stay mapped until the view ends;
				// bulkStore copies it.
				if batch = append(batch, Record{Seq: seq, Raw: data, PersonKey: pk}); len(batch) >= rebuildBatch {
					if err := flush(); err != nil {
						return err
					}
				}
				next = seq + 1
			}
		}
		if err := fetch(next, through); err != nil {
			return err
		}
		if err := a.Check(); err != nil {
			return err
		}
		return flush()
	})
	if err != nil {
		return 0, err
	}
	return through, nil
}
