package backup_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/storetest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// forgeCheckpoint replaces the i'th checkpoint of b's manifest (in memory, as a hostile edit
// of manifest.json with manifest_sha256 recomputed or left out gives) by edit's change of
// it, signed with key.
func forgeCheckpoint(t *testing.T, b *backup.Backup, i int, key ed25519.PrivateKey, edit func(*nirv1.Checkpoint)) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b.Manifest.Checkpoints[i])
	if err != nil {
		t.Fatal(err)
	}
	cp := new(nirv1.Checkpoint)
	if err := proto.Unmarshal(raw, cp); err != nil {
		t.Fatal(err)
	}
	edit(cp)
	if err := eventstore.SignCheckpoint(cp, key); err != nil {
		t.Fatal(err)
	}
	forged, err := proto.MarshalOptions{Deterministic: true}.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	b.Manifest.Checkpoints[i] = base64.StdEncoding.EncodeToString(forged)
}

// signedBackup appends batches of events to a new store, the batch i of person i+1 and a
// checkpoint signed by key after each, and writes a backup of it all, sealed with key, into a
// new directory. It returns the store, the directory and the manifest.
func signedBackup(t *testing.T, key ed25519.PrivateKey, batches ...int) (*eventstore.Store, string, backup.Manifest) {
	t.Helper()
	src := openStore(t)
	through := 0
	for i, n := range batches {
		appendN(t, src, i+1, n)
		through += n
		storetest.CheckpointThrough(t, src, uint64(through), key)
	}
	dir := filepath.Join(t.TempDir(), "b")
	m, err := backup.Write(context.Background(), src, dir, backup.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return src, dir, m
}

// TestRestoreRefusesAForgedCheckpoint: a checkpoint a backup carries whose digest is not that
// of the backup's messages through its sequence is refused, naming it, and nothing is
// written; also in an incremental backup of the chain.
//
// Found on 2026-12-06 (review of backup and restore on a cluster): Restore computed the
// running digest over every message but compared it only with the manifest's digest. Before,
// a manifest carrying a forged checkpoint (its digest replaced, signed by another key) was
// restored without a word, and nird then continued its checkpoints from the forged digest
// (RunCheckpoints trusts the last one) and signed them with the register's key. Now the
// running digest is compared with each carried checkpoint at its sequence before anything is
// stored.
func TestRestoreRefusesAForgedCheckpoint(t *testing.T) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	src, full, m := signedBackup(t, key, 10)
	appendN(t, src, 2, 5)
	storetest.CheckpointThrough(t, src, 15, key)
	incr := filepath.Join(t.TempDir(), "incr")
	if _, err := backup.Write(ctx, src, incr, backup.Options{After: &m}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		forge   func(full, incr *backup.Backup)
		through string
	}{
		{"DigestInTheFull", func(full, _ *backup.Backup) {
			forgeCheckpoint(t, full, 0, other, func(cp *nirv1.Checkpoint) { cp.Digest = make([]byte, 32) })
		}, "checkpoint 1 of the manifest's checkpoints (through stream sequence 10)"},
		{"DigestInTheIncrement", func(_, incr *backup.Backup) {
			forgeCheckpoint(t, incr, len(incr.Manifest.Checkpoints)-1, key, func(cp *nirv1.Checkpoint) { cp.Digest[0] ^= 1 })
		}, "(through stream sequence 15)"},
		{"SequenceMoved", func(full, _ *backup.Backup) {
			// The digest through 10, said to be through 9.
			forgeCheckpoint(t, full, 0, key, func(cp *nirv1.Checkpoint) { cp.StreamSeq = 9 })
		}, "(through stream sequence 9)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bf, bi := openBackup(t, full), openBackup(t, incr)
			if len(bf.Manifest.Checkpoints) != 1 || len(bi.Manifest.Checkpoints) == 0 {
				t.Fatalf("%d and %d checkpoints in the manifests", len(bf.Manifest.Checkpoints), len(bi.Manifest.Checkpoints))
			}
			tc.forge(bf, bi)
			dst := openStore(t)
			_, err := backup.Restore(ctx, dst, []*backup.Backup{bf, bi}, backup.Until{}, nil)
			if !errors.Is(err, backup.ErrCheckpointMismatch) || !strings.Contains(err.Error(), tc.through) || !strings.Contains(err.Error(), "nothing was restored") {
				got, _ := dst.Checkpoints(ctx)
				t.Fatalf("restore of a backup carrying a forged checkpoint: %v (%d checkpoints stored); want %v naming %q",
					err, len(got), backup.ErrCheckpointMismatch, tc.through)
			}
			// Nothing was written: the target is still one a restore may go into.
			if err := dst.RestoreTarget(ctx); err != nil {
				t.Errorf("the target after the refused restore: %v", err)
			}
		})
	}

	t.Run("Sound", func(t *testing.T) {
		dst := openStore(t)
		if _, err := backup.Restore(ctx, dst, []*backup.Backup{openBackup(t, full), openBackup(t, incr)}, backup.Until{}, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := dst.Checkpoints(ctx); err != nil || len(got) != 2 {
			t.Errorf("the sound chain restored %d checkpoints (%v), want 2", len(got), err)
		}
	})
}

// TestCheckSignatures: backup.CheckSignatures (nirctl restore --public-key) refuses a carried
// checkpoint signed by another key than the one given, or whose signature does not hold,
// naming it; a checkpoint re-signed by another key with its digest left right passes the
// restore's digest check, which only the key can catch.
//
// Found on 2026-12-06 (review of backup and restore on a cluster): before, a restore never
// looked at the carried checkpoints' signatures. Now nirctl restore --public-key checks them
// before anything is written.
func TestCheckSignatures(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	_, dir, _ := signedBackup(t, key, 10)
	if err := backup.CheckSignatures([]*backup.Backup{openBackup(t, dir)}, pub); err != nil {
		t.Fatalf("the register's own checkpoints: %v", err)
	}

	resigned := openBackup(t, dir)
	forgeCheckpoint(t, resigned, 0, other, func(*nirv1.Checkpoint) {})
	err := backup.CheckSignatures([]*backup.Backup{resigned}, pub)
	if !errors.Is(err, backup.ErrCheckpointMismatch) || !strings.Contains(err.Error(), "checkpoint 1 of the manifest's checkpoints (through stream sequence 10)") ||
		!strings.Contains(err.Error(), "signed by another key") {
		t.Errorf("a checkpoint signed by another key: %v", err)
	}
	// Its digest is right: the restore's own check lets it through.
	if _, err := backup.Restore(ctx, openStore(t), []*backup.Backup{resigned}, backup.Until{}, nil); err != nil {
		t.Errorf("restore of the re-signed checkpoint, digest right: %v", err)
	}

	broken := openBackup(t, dir)
	raw, _ := base64.StdEncoding.DecodeString(broken.Manifest.Checkpoints[0])
	cp := new(nirv1.Checkpoint)
	if err := proto.Unmarshal(raw, cp); err != nil {
		t.Fatal(err)
	}
	cp.Previous = []byte("not signed") // changed after signing
	raw, _ = proto.MarshalOptions{Deterministic: true}.Marshal(cp)
	broken.Manifest.Checkpoints[0] = base64.StdEncoding.EncodeToString(raw)
	if err := backup.CheckSignatures([]*backup.Backup{broken}, pub); !errors.Is(err, backup.ErrCheckpointMismatch) || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("a checkpoint changed after it was signed: %v", err)
	}
}
