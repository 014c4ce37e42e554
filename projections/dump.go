package projections

// Dump: the read models as text, for comparing two folds.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Dump writes every bucket's keys and values in order, as hex lines. Two files with the same
// dump hold the same models; tests compare dumps of incremental and clean builds. The stream
// identity the file records (DB.StreamID) is left out: it says where the models come from,
// not what they hold.
func (db *DB) Dump(w io.Writer) error {
	_, err := db.DumpAt(w)
	return err
}

// DumpAt is Dump, and returns the checkpoint of what it dumped (read in the same
// transaction).
func (db *DB) DumpAt(w io.Writer) (uint64, error) {
	var at uint64
	err := db.view(func(tx *bolt.Tx) error {
		at = checkpointTx(tx)
		for _, name := range allBuckets {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "bucket %s\n", name); err != nil {
				return err
			}
			if bytes.Equal(name, bucketIDs) {
				if err := dumpIDs(w, b); err != nil {
					return err
				}
				continue
			}
			err := b.ForEach(func(k, v []byte) error {
				if bytes.Equal(name, bucketMeta) && (bytes.Equal(k, asOfKey) || bytes.Equal(k, asOfProvisionalKey) || bytes.Equal(k, metaStream)) {
					return nil // when a snapshot was replayed to and whether it had settled, and which stream the models come from, are not part of its models
				}
				_, err := fmt.Fprintf(w, "%x %x\n", k, v)
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return at, err
}

// dumpIDs writes the event-id index entry by entry, each as it would be under a key of its
// own (the key, the sequence as a uvarint and their checksum), not block by block: where
// blocks split depends on the order the ids came in, which a rebuild and catching up do not
// share. A block that is not a list of entries is written as it is stored.
func dumpIDs(w io.Writer, b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		blk := idBlock(v[:max(len(v)-crcSize, 0)])
		if !isULIDKey(k) || len(v) < crcSize || len(blk)%idEntrySize != 0 {
			_, err := fmt.Fprintf(w, "%x %x\n", k, v)
			return err
		}
		for i := range blk.len() {
			seq := binary.AppendUvarint(nil, blk.seq(i))
			if _, err := fmt.Fprintf(w, "%x %x\n", blk.key(i), sealed(blk.key(i), seq)); err != nil {
				return err
			}
		}
		return nil
	})
}

// FoldCheck is the live read models compared with a fresh fold of the stream.
type FoldCheck struct {
	// Checkpoint is the sequence both were taken at.
	Checkpoint uint64
	// Live and Fresh are the SHA-256 (hex) of their dumps.
	Live, Fresh string
	Equal       bool
	Seconds     float64
}

// foldPattern names CompareFold's directories (os.MkdirTemp); New removes any a process left.
const foldPattern = "fold-*"

// CompareFold folds the stream afresh, up to the live models' checkpoint, into a temporary
// file beside them and compares the two dumps: equal models mean the live file holds what
// the stream says, nothing more and nothing less. The live models stay in service
// meanwhile. Only one runs at a time, and none during a rebuild or an as-of replay
// (ErrRebuildRunning).
func (p *Projector) CompareFold(ctx context.Context) (FoldCheck, error) {
	var fc FoldCheck
	if p.rebuilding.Load() || p.replaying.Load() || !p.comparing.CompareAndSwap(false, true) {
		return fc, ErrRebuildRunning
	}
	defer p.comparing.Store(false)
	h := sha256.New()
	if err := p.Use("", func(db *DB) error {
		var err error
		fc.Checkpoint, err = db.DumpAt(h)
		return err
	}); err != nil {
		return fc, err
	}
	fc.Live = hex.EncodeToString(h.Sum(nil))
	dir, err := os.MkdirTemp(p.opt.Dir, foldPattern)
	if err != nil {
		return fc, fmt.Errorf("projections: %w", err)
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	var db *DB
	if fc.Checkpoint == 0 {
		// Nothing folded yet: a new file advanced to 0.
		if db, err = Open(filepath.Join(dir, "fold.db"), DBOptions{NoSync: true, Open: p.opt.Open}); err == nil {
			_, err = db.Advance(0)
		}
	} else {
		db, err = p.build(ctx, filepath.Join(dir, "fold.db"), ReplayOptions{From: 1, To: fc.Checkpoint}, nil, nil)
	}
	if err != nil {
		return fc, fmt.Errorf("projections: fresh fold: %w", err)
	}
	defer db.Close()
	h = sha256.New()
	at, err := db.DumpAt(h)
	if err != nil {
		return fc, err
	}
	if at != fc.Checkpoint {
		return fc, fmt.Errorf("projections: the fresh fold ended at sequence %d, not %d", at, fc.Checkpoint)
	}
	fc.Fresh = hex.EncodeToString(h.Sum(nil))
	fc.Equal = fc.Live == fc.Fresh
	fc.Seconds = time.Since(t0).Seconds()
	return fc, nil
}
