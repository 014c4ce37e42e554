package projections

// Dump: the read models as text, for comparing two folds.

import (
	"bytes"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Dump writes every bucket's keys and values in order, as hex lines. Two files with the same
// dump hold the same models; tests compare dumps of incremental and clean builds. The stream
// identity the file records (DB.StreamID) is left out: it says where the models come from,
// not what they hold.
func (db *DB) Dump(w io.Writer) error {
	return db.view(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "bucket %s\n", name); err != nil {
				return err
			}
			err := b.ForEach(func(k, v []byte) error {
				if bytes.Equal(name, bucketMeta) && (bytes.Equal(k, asOfKey) || bytes.Equal(k, metaStream)) {
					return nil // when a snapshot was replayed to, and which stream the models come from, are not part of its models
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
}
