package backup_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/storetest"
	"github.com/introreg/nir/sealing"
)

// keyedStore makes a store holding 12 events of three persons, the data keys keyIDs and a
// checkpoint signed by key through its last event. It returns the store, its key store and the
// master key.
func keyedStore(t *testing.T, key ed25519.PrivateKey) (*eventstore.Store, *eventstore.KeyStore, *sealing.Key) {
	t.Helper()
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "js"))
	for i := range 3 {
		appendN(t, s, i, 4)
	}
	master := storetest.NewMaster(t)
	ks, err := s.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	for _, id := range keyIDs {
		if _, err := ks.Ensure(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	storetest.CheckpointThrough(t, s, 12, key)
	return s, ks, master
}

// writeSealed writes a backup of s sealed with key into a new directory and returns it.
func writeSealed(t *testing.T, s *eventstore.Store, key ed25519.PrivateKey, opt backup.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "b")
	opt.Key = key
	if _, err := backup.Write(context.Background(), s, dir, opt); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyBackup copies the backup in dir into a new directory and returns it.
func copyBackup(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(out, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantKeysNotCovered fails t unless err is a refusal of the keys file of the backup in dir
// for want of a signature by the key given, naming the file, and naming no data key.
func wantKeysNotCovered(t *testing.T, what string, err error, dir string) {
	t.Helper()
	if !errors.Is(err, backup.ErrKeysNotCovered) || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(err.Error(), backup.KeysFile) || !strings.Contains(err.Error(), "nothing was restored") {
		t.Fatalf("%s: %v; want %v naming %s and %s", what, err, backup.ErrKeysNotCovered, dir, backup.KeysFile)
	}
	for _, id := range append(keyIDs, personKey(999)) {
		if strings.Contains(err.Error(), id) {
			t.Errorf("%s: the error names the data key %s", what, id)
		}
	}
}

// TestVerify_RefusesAKeysFileTheSignatureDoesNotCover: with the register's public key (nirctl
// restore --public-key), Verify and CheckSignatures refuse a backup whose keys file was
// altered and its manifest made to match (a key marked destroyed, dropped or added, the keys
// file of a later backup of the same register, that backup's keys file and seal together),
// naming the file and writing nothing; without the key the altered backup passes, as before.
//
// Found on 2026-12-07 (review of backups): the signed checkpoints cover the events, not the
// data keys, and a restore with --public-key took any keys file the manifest named: whoever
// can write a backup could make persons read as erased («slettet») or unreadable after a
// restore. Now nirctl backup seals the manifest (which holds the keys file's SHA-256 beside
// the events' digest and the checkpoints) with the register's checkpoint key.
func TestVerify_RefusesAKeysFileTheSignatureDoesNotCover(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	s, ks, _ := keyedStore(t, key)
	dir := writeSealed(t, s, key, backup.Options{})
	if _, err := ks.Ensure(context.Background(), personKey(104)); err != nil {
		t.Fatal(err)
	}
	later := writeSealed(t, s, key, backup.Options{})
	laterKeys, err := os.ReadFile(filepath.Join(later, backup.KeysFile))
	if err != nil {
		t.Fatal(err)
	}

	forgeKeys := func(edit func(k *eventstore.KeyExport)) func(string) error {
		return func(d string) error { return backup.ForgeKeys(d, edit) }
	}
	for _, tc := range []struct {
		name  string
		forge func(dir string) error
	}{
		{"KeyMarkedDestroyed", forgeKeys(func(k *eventstore.KeyExport) {
			delete(k.Wrapped, keyIDs[0])
			k.Destroyed = append(k.Destroyed, keyIDs[0])
		})},
		{"KeyDropped", forgeKeys(func(k *eventstore.KeyExport) { delete(k.Wrapped, keyIDs[1]) })},
		{"KeyAdded", forgeKeys(func(k *eventstore.KeyExport) { k.Wrapped[personKey(999)] = k.Wrapped[keyIDs[2]] })},
		{"KeysOfALaterBackup", func(d string) error { return backup.ForgeKeysFile(d, laterKeys) }},
		{"KeysAndSealOfALaterBackup", func(d string) error {
			if err := backup.ForgeKeysFile(d, laterKeys); err != nil {
				return err
			}
			seal := openBackup(t, later).Manifest.Seal
			editManifest(t, d, func(m map[string]any) { m["seal"] = seal })
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forged := copyBackup(t, dir)
			if err := tc.forge(forged); err != nil {
				t.Fatal(err)
			}
			b := openBackup(t, forged) // the manifest matches the files
			if _, err := backup.Verify([]*backup.Backup{b}, backup.Until{}, nil); err != nil {
				t.Fatalf("without the key the forged backup should pass as before: %v", err)
			}
			_, err := backup.Verify([]*backup.Backup{b}, backup.Until{}, pub)
			wantKeysNotCovered(t, "Verify with the key", err, forged)
			wantKeysNotCovered(t, "CheckSignatures", backup.CheckSignatures([]*backup.Backup{b}, pub), forged)
		})
	}

	t.Run("Untouched", func(t *testing.T) {
		for _, d := range []string{dir, later} {
			if _, err := backup.Verify([]*backup.Backup{openBackup(t, d)}, backup.Until{}, pub); err != nil {
				t.Errorf("the backup as written: %v", err)
			}
		}
	})
}

// TestVerify_RefusesAnUnsealedBackup: with the register's public key, a backup whose manifest
// has no seal (made before backups were sealed, or without nirctl backup --checkpoint-key, or
// with the seal removed) is refused, saying so and naming the keys file; without the key it
// passes. Accepting it with a warning would let whoever alters a keys file remove the seal too.
func TestVerify_RefusesAnUnsealedBackup(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	s, _, _ := keyedStore(t, key)
	unsealed := filepath.Join(t.TempDir(), "unsealed")
	if _, err := backup.Write(context.Background(), s, unsealed, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	stripped := copyBackup(t, writeSealed(t, s, key, backup.Options{}))
	editManifest(t, stripped, func(m map[string]any) {
		if m["seal"] == nil {
			t.Fatal("the sealed backup's manifest has no seal")
		}
		delete(m, "seal")
	})
	for _, dir := range []string{unsealed, stripped} {
		b := openBackup(t, dir)
		if _, err := backup.Verify([]*backup.Backup{b}, backup.Until{}, nil); err != nil {
			t.Fatalf("without the key: %v", err)
		}
		_, err := backup.Verify([]*backup.Backup{b}, backup.Until{}, pub)
		wantKeysNotCovered(t, "an unsealed backup", err, dir)
		if !strings.Contains(err.Error(), "no seal") {
			t.Errorf("the refusal does not say the manifest has no seal: %v", err)
		}
	}
}

// TestVerify_SealedChain: every backup of a chain is sealed on its own: the chain as written
// passes with the key, and a keys file forged in the full backup (which a restore takes a
// damaged key from) is refused although the increment's is sound; and a sealed backup restores
// every data key.
func TestVerify_SealedChain(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	s, _, master := keyedStore(t, key)
	full := writeSealed(t, s, key, backup.Options{})
	appendN(t, s, 5, 3)
	storetest.CheckpointThrough(t, s, 15, key)
	incr := writeSealed(t, s, key, backup.Options{After: &openBackup(t, full).Manifest})
	if _, err := backup.Verify([]*backup.Backup{openBackup(t, full), openBackup(t, incr)}, backup.Until{}, pub); err != nil {
		t.Fatalf("the chain as written: %v", err)
	}
	forged := copyBackup(t, full)
	if err := backup.ForgeKeys(forged, func(k *eventstore.KeyExport) { delete(k.Wrapped, keyIDs[0]) }); err != nil {
		t.Fatal(err)
	}
	_, err := backup.Verify([]*backup.Backup{openBackup(t, forged), openBackup(t, incr)}, backup.Until{}, pub)
	wantKeysNotCovered(t, "a chain whose full backup's keys file is forged", err, forged)

	rks := restoredKeys(t, []*backup.Backup{openBackup(t, full), openBackup(t, incr)}, master)
	for _, id := range keyIDs {
		if _, err := rks.Key(ctx, id); err != nil {
			t.Errorf("the restored data key %s: %v", id, err)
		}
	}
}

// TestWrite_RefusesAKeyTheCheckpointsAreNotSignedWith: a backup sealed with another key than
// the one the register's checkpoints are signed with is refused when it is made, not when it
// is restored: no restore with the register's public key could take it.
func TestWrite_RefusesAKeyTheCheckpointsAreNotSignedWith(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	s, _, _ := keyedStore(t, key)
	dir := filepath.Join(t.TempDir(), "b")
	_, err := backup.Write(context.Background(), s, dir, backup.Options{Key: other})
	if err == nil || !strings.Contains(err.Error(), "not the key") {
		t.Fatalf("a backup sealed with another key: %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(dir, backup.ManifestFile)); !os.IsNotExist(err) {
		t.Errorf("the refused backup wrote its manifest (%v)", err)
	}
}

// TestVerify_SealVouchesThroughTheLastSequence: with the register's public key, what
// Verify says is vouched for runs through the sealed backup's last sequence, past its last
// checkpoint, since the seal signs the manifest's digest of the messages through it; without
// the key, or with a sealed manifest that holds no digest (an incremental backup continuing
// one made before backups held digests), through the last checkpoint alone. Before, a restore with --public-key warned that
// the sequences after the last checkpoint had nothing vouching for them, on every sealed
// backup of a register that had appended since its last checkpoint.
func TestVerify_SealVouchesThroughTheLastSequence(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	s, _, _ := keyedStore(t, key) // checkpointed through sequence 12
	appendN(t, s, 3, 4)           // sequences 13 to 16
	dir := writeSealed(t, s, key, backup.Options{})
	noDigest := copyBackup(t, dir)
	if err := backup.Reseal(noDigest, key, func(m *backup.Manifest) { m.Digest = "" }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dir  string
		key  ed25519.PublicKey
		want uint64
	}{{"WithTheKey", dir, pub, 16}, {"WithoutAKey", dir, nil, 12}, {"SealedWithoutADigest", noDigest, pub, 12}} {
		got, err := backup.Verify([]*backup.Backup{openBackup(t, tc.dir)}, backup.Until{}, tc.key)
		if err != nil || got != tc.want {
			t.Errorf("%s: Verify = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}
