package backup_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestRestoreRefusesCheckpointsOutOfOrder: a backup whose manifest carries the register's own
// signed checkpoints reversed, with one left out, or with one repeated (written another way
// in base64) is refused by CheckSignatures (nirctl restore --public-key) and by Restore,
// naming the checkpoint, and nothing is stored; the backup as written restores, its
// checkpoints a chain each naming the one before it.
//
// Found on 2026-12-06 (review of the restore fixes): before, the checkpoints were stored in
// the manifest's order without a look at their sequences or their Previous links, and
// repeats were dropped by their base64 string (which ignores '\n'), so each of these passed
// and left a broken chain whose last checkpoint, which nird continues from, was not the
// newest. Now each must cover more than the one before it; one left out is a warning
// (TestRestoreWarnsOfABrokenLink).
func TestRestoreRefusesCheckpointsOutOfOrder(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, dir, _ := signedBackup(t, key, 10, 5, 5)
	if n := len(openBackup(t, dir).Manifest.Checkpoints); n != 3 {
		t.Fatalf("%d checkpoints carried, want 3", n)
	}

	for _, tc := range []struct {
		name string
		edit func(cps []string) []string
		want string // in the error
	}{
		{"Reversed", func(c []string) []string { return []string{c[2], c[1], c[0]} }, "sequence 20"},
		{"RepeatedWithANewline", func(c []string) []string {
			return append(append([]string(nil), c...), c[0][:4]+"\n"+c[0][4:])
		}, "sequence 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBackup(t, dir)
			b.Manifest.Checkpoints = tc.edit(b.Manifest.Checkpoints)
			err := backup.CheckSignatures([]*backup.Backup{b}, pub)
			if !errors.Is(err, backup.ErrCheckpointMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckSignatures: %v, want ErrCheckpointMismatch naming %q", err, tc.want)
			}
			dst := openStore(t)
			_, err = backup.Restore(ctx, dst, []*backup.Backup{b}, backup.Until{}, nil)
			if !errors.Is(err, backup.ErrCheckpointMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Restore: %v, want ErrCheckpointMismatch naming %q", err, tc.want)
			}
			if last, err := dst.LastSeq(ctx); err != nil || last != 0 {
				t.Errorf("the refused restore stored through sequence %d (%v), want nothing", last, err)
			}
			if cps, err := dst.Checkpoints(ctx); err != nil || len(cps) != 0 {
				t.Errorf("the refused restore stored %d checkpoints (%v), want none", len(cps), err)
			}
		})
	}

	// The backup as written restores, its stored checkpoints a chain.
	dst := openStore(t)
	if _, err := backup.Restore(ctx, dst, []*backup.Backup{openBackup(t, dir)}, backup.Until{}, nil); err != nil {
		t.Fatal(err)
	}
	cps, err := dst.Checkpoints(ctx)
	if err != nil || len(cps) != 3 {
		t.Fatalf("%d checkpoints restored (%v), want 3", len(cps), err)
	}
	var prev []byte
	for i, c := range cps {
		if !bytes.Equal(c.Checkpoint.GetPrevious(), prev) {
			t.Errorf("restored checkpoint %d does not name the one before it", i+1)
		}
		prev = eventstore.HashOf(c.Data)
	}
}

// TestCheckSignaturesNeedsACheckpoint: CheckSignatures (nirctl restore --public-key)
// refuses a backup of messages that carries no checkpoint.
//
// Found on 2026-12-06 (review of the restore fixes): before, it checked the signatures of the
// checkpoints there were and passed a backup with every one stripped (its events free to be
// rewritten and the manifest's digest recomputed), and nird then signed its first checkpoint
// over the unverified history. Now the backups must carry a checkpoint signed by the key.
func TestCheckSignaturesNeedsACheckpoint(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, dir, _ := signedBackup(t, key, 5)
	if err := backup.CheckSignatures([]*backup.Backup{openBackup(t, dir)}, pub); err != nil {
		t.Fatalf("the backup as written: %v", err)
	}
	b := openBackup(t, dir)
	b.Manifest.Checkpoints = nil
	if err := backup.CheckSignatures([]*backup.Backup{b}, pub); err == nil || !strings.Contains(err.Error(), "carry no checkpoint") {
		t.Errorf("a backup through sequence %d carrying no checkpoint: %v, want a refusal saying it carries none", b.Manifest.LastSeq, err)
	}
}

// TestRestoreRefusesATargetMadeForAnotherBackup: a target stream created with a forged
// manifest's metadata (a caller that opened it before a refused restore) is refused by the
// restore of the sound backup, naming the entry, instead of keeping the forged person key
// fingerprint.
//
// Found on 2026-12-06 (review of the restore fixes): before, a refused restore left the
// stream its caller created with the forged manifest's metadata, and a later sound restore
// into it (an empty stream) kept that metadata without a word. Now Restore compares the
// target's "nir_" metadata with the backup's (and nirctl restore refuses before it creates
// the stream at all).
func TestRestoreRefusesATargetMadeForAnotherBackup(t *testing.T) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	_, dir, _ := signedBackup(t, key, 5)
	bad := openBackup(t, dir)
	bad.Manifest.Metadata = map[string]string{"nir_person_key": "forged-fingerprint"}
	forgeCheckpoint(t, bad, 0, other, func(cp *nirv1.Checkpoint) { cp.Digest = make([]byte, 32) })

	js := filepath.Join(t.TempDir(), "js")
	dst, err := eventstore.Open(ctx, eventstore.Config{Dir: js, Metadata: bad.Manifest.Metadata})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, dst, []*backup.Backup{bad}, backup.Until{}, nil); !errors.Is(err, backup.ErrCheckpointMismatch) {
		t.Fatalf("forged: %v, want ErrCheckpointMismatch", err)
	}
	dst.Close()
	good := openBackup(t, dir)
	dst, err = eventstore.Open(ctx, eventstore.Config{Dir: js, Metadata: good.Manifest.Metadata})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	_, err = backup.Restore(ctx, dst, []*backup.Backup{good}, backup.Until{}, nil)
	if err == nil || !strings.Contains(err.Error(), "nir_person_key") {
		id, _ := dst.CurrentIdentity(ctx)
		t.Errorf("sound restore into the stream made for the forged manifest: %v, want a refusal naming nir_person_key; the stream's nir_person_key is now %q", err, id.Metadata["nir_person_key"])
	}
	if last, err := dst.LastSeq(ctx); err != nil || last != 0 {
		t.Errorf("the target holds sequences through %d (%v), want none", last, err)
	}
}

// TestRestoreWarnsOfABrokenLink: a checkpoint that does not name the one carried before it is
// counted (BrokenLinks, nirctl restore's warning) and restored, each compared with the digest
// of the messages it covers: a checkpoint left out of a manifest, and every backup of a
// register restored once with an unreadable checkpoint (AcceptUnreadableCheckpoints), whose
// stream holds the gap and whose later backups record nothing unreadable.
//
// Found on 2026-12-06 (review of the restore fixes): a fix of the same day refused such a
// link, and no backup of a once-restored register could be restored.
func TestRestoreWarnsOfABrokenLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, _, _ := damagedCheckpointStore(t, filepath.Join(t.TempDir(), "js"), filepath.Join(t.TempDir(), "full"), 2)
	acc := filepath.Join(t.TempDir(), "accepted")
	if _, err := backup.Write(ctx, s, acc, backup.Options{AcceptUnreadableCheckpoints: []uint64{2}}); err != nil {
		t.Fatal(err)
	}
	dst := openAt(t, filepath.Join(t.TempDir(), "restored"))
	if _, err := backup.Restore(ctx, dst, []*backup.Backup{openBackup(t, acc)}, backup.Until{}, nil); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again")
	if _, err := backup.Write(ctx, dst, again, backup.Options{}); err != nil {
		t.Fatalf("backup of the restored register: %v", err)
	}
	bs := []*backup.Backup{openBackup(t, again)}
	if n, err := backup.BrokenLinks(bs); err != nil || n != 1 {
		t.Errorf("BrokenLinks of the restored register's backup: %d, %v; want 1 (the checkpoint the first register could not read)", n, err)
	}
	if _, err := backup.Verify(bs, backup.Until{}, nil); err != nil {
		t.Errorf("the backup of a restored register does not verify: %v", err)
	}
	dst2 := openAt(t, filepath.Join(t.TempDir(), "restored2"))
	if _, err := backup.Restore(ctx, dst2, bs, backup.Until{}, nil); err != nil {
		t.Errorf("restore of the backup of a restored register: %v", err)
	}
}
