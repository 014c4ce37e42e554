package projections

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestProjector_DamagedValueFoundAtStart: a byte flipped inside one stored value leaves the
// file's structure whole; with VerifyAtStart (as nird opens the live file) New checks every
// value's checksum, an event's in a block of the events bucket as any other, so the damage
// is found before a query reads the value: the file is kept aside and rebuilt. Found by
// mutation testing on 2026-12-07: New could skip the value check, and the check could pass
// a damaged event or value, without a test failing (the other damage tests flip bytes at
// random, which the structure check or a later read also finds).
func TestProjector_DamagedValueFoundAtStart(t *testing.T) {
	t.Parallel()
	recs := population(24, 20, testKommuner)
	good := builtFile(t, t.TempDir(), recs)
	for _, bucket := range [][]byte{bucketPersons, bucketEvents} {
		t.Run(string(bucket), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, liveFile)
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			flipInValue(t, path, bucket)
			if _, err := checkFile(path, false); err != nil {
				t.Fatalf("the flip broke the file's structure, not a value alone: %v", err)
			}
			if _, err := checkFile(path, true); !errors.Is(err, ErrCorrupt) {
				t.Errorf("checkFile with values = %v, want ErrCorrupt", err)
			}
			p, err := New(NewSliceFeed(recs), Options{Dir: dir, BatchSize: 64, VerifyAtStart: true})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if !strings.Contains(p.Repairing(), "damaged") {
				t.Errorf("New over a damaged value: repairing %q, want the damage found", p.Repairing())
			}
			if kept, _ := filepath.Glob(path + ".damaged-*"); len(kept) != 1 {
				t.Errorf("damaged file not kept aside: %v", kept)
			}
			rebuiltLike(t, p, recs, "")
		})
	}
}

// flipInValue flips a byte in the stored data of the first value of bucket in the file at
// path that is found once in the file; for the events bucket, in the middle of the first
// event of the block (past its sequence and length, appendEntry).
func flipInValue(t *testing.T, path string, bucket []byte) {
	t.Helper()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	at := -1
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			if at >= 0 || len(v) < 8 || bytes.Count(file, v) != 1 {
				return nil
			}
			off := len(v) / 2
			if bytes.Equal(bucket, bucketEvents) {
				_, n := binary.Uvarint(v)
				l, m := binary.Uvarint(v[n:])
				off = n + m + int(l)/2
			}
			at = bytes.Index(file, v) + off
			return nil
		})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil || at < 0 {
		t.Fatalf("no value of bucket %s found once in the file (%v)", bucket, err)
	}
	file[at] ^= 0x01
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
}
