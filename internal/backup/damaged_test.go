package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/storetest"
	"github.com/introreg/nir/sealing"
)

// damageTimeout is the request timeout of the stores the damage tests open: a read that
// waits for a record the server cannot read back ends after about one of them.
const damageTimeout = time.Second

// keyIDs are the data keys the damage tests store, after the bucket's master check.
var keyIDs = []string{personKey(101), personKey(102), personKey(103)}

// damagedKeyStore makes a store in dir with 12 events and the data keys keyIDs, backs it up
// into before (a full backup, the damaged key whole in it), appends 3 events more, damages the
// entry of keyIDs[damaged] on disk, and opens the store again. It returns the master key and
// the earlier backup's manifest.
func damagedKeyStore(t *testing.T, dir, before string, damaged int) (*eventstore.Store, *sealing.Key, backup.Manifest) {
	t.Helper()
	ctx := context.Background()
	s := openAt(t, dir)
	for i := range 3 {
		appendN(t, s, i, 4)
	}
	master := storetest.NewMaster(t)
	ks, err := s.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range keyIDs {
		if _, err := ks.Ensure(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	fm, err := backup.Write(ctx, s, before, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 5, 3)
	raw := storetest.StoredKey(t, s, keyIDs[damaged])
	_ = ks.Close()
	s.Close()
	natstest.FlipInBlock(t, dir, "KV_"+eventstore.KeyBucket, raw)
	return openAt(t, dir), master, fm
}

// openAt opens a store in dir with a short request timeout.
func openAt(t *testing.T, dir string) *eventstore.Store {
	return storetest.OpenAt(t, dir, damageTimeout, map[string]string{"nir_person_key_fingerprint": "test-fingerprint"})
}

// restoredKeys restores bs into a new store and opens its key store with master.
func restoredKeys(t *testing.T, bs []*backup.Backup, master *sealing.Key) *eventstore.KeyStore {
	t.Helper()
	ctx := context.Background()
	dst := openAt(t, filepath.Join(t.TempDir(), "restored"))
	if _, err := backup.Restore(ctx, dst, bs, backup.Until{}, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
	ks, err := dst.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatalf("OpenKeyStore of the restored register: %v", err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	return ks
}

// TestBackup_DamagedKey: one data-key entry damaged on disk (the server counts it and cannot
// read it back), in the middle of the bucket and as its last entry. A backup without it
// restores a register that reads the person as erased, so the backup must not end as if
// whole: it fails with ErrDamaged, naming the key's id (never a national id), writes nothing,
// and never waits for the record. Before, a damaged entry in the middle was left out of
// keys.json without a word, and the last entry made the backup wait 10 s and fail with a
// timeout.
//
// Accepted by its id, the backup completes and records it in its manifest; restored, the
// key reads as damaged (sealing.ErrKeyUnreadable), not as an erasure; restored with the
// earlier full backup that holds it whole as its chain, the key is back. An incremental
// backup after the one that accepted it accepts it too.
func TestBackup_DamagedKey(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damaged int
	}{{"Middle", 1}, {"Last", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			full := filepath.Join(t.TempDir(), "full")
			s, master, fm := damagedKeyStore(t, filepath.Join(t.TempDir(), "js"), full, tc.damaged)
			id := keyIDs[tc.damaged]

			dir := filepath.Join(t.TempDir(), "b")
			start := time.Now()
			_, err := backup.Write(ctx, s, dir, backup.Options{})
			took := time.Since(start)
			if err == nil || !errors.Is(err, backup.ErrDamaged) || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "--accept-damaged key:"+id) {
				t.Errorf("backup with the data key %s damaged: %v; want ErrDamaged naming it and the way on", id, err)
			}
			if took > 5*damageTimeout {
				t.Errorf("the backup took %v; the damaged record must not be waited for (request timeout %v)", took, damageTimeout)
			}
			if _, err := backup.Open(dir); err == nil {
				t.Error("the refused backup opens as a finished one")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the refused backup left %d files", len(entries))
			}
			// Accepting another key accepts nothing else.
			if _, err := backup.Write(ctx, s, filepath.Join(t.TempDir(), "b"), backup.Options{AcceptDamagedKeys: []string{keyIDs[0]}}); !errors.Is(err, backup.ErrDamaged) {
				t.Errorf("backup accepting another key: %v; want ErrDamaged", err)
			}

			// Accepted: recorded, and restored as damaged.
			acc := filepath.Join(t.TempDir(), "accepted")
			m, err := backup.Write(ctx, s, acc, backup.Options{AcceptDamagedKeys: []string{id}})
			if err != nil {
				t.Fatalf("backup accepting the damaged key: %v", err)
			}
			if !slices.Equal(m.DamagedKeys, []string{id}) {
				t.Errorf("manifest's damaged keys %v, want [%s]", m.DamagedKeys, id)
			}
			b := openBackup(t, acc)
			if got := backup.LostKeys([]*backup.Backup{b}); !slices.Equal(got, []string{id}) {
				t.Errorf("LostKeys of the backup alone = %v, want [%s]", got, id)
			}
			ks := restoredKeys(t, []*backup.Backup{b}, master)
			for i, k := range keyIDs {
				_, err := ks.Key(ctx, k)
				switch {
				case i != tc.damaged && err != nil:
					t.Errorf("restored whole key %d: %v", i, err)
				case i == tc.damaged && (!errors.Is(err, sealing.ErrKeyUnreadable) || errors.Is(err, sealing.ErrNoKey)):
					t.Errorf("restored damaged key: %v; want ErrKeyUnreadable, not ErrNoKey (an erasure)", err)
				}
			}

			// The earlier full backup holds it: an incremental one after it, accepting the
			// damage, restores with it as a chain with every key whole.
			incr := filepath.Join(t.TempDir(), "incr")
			if _, err := backup.Write(ctx, s, incr, backup.Options{After: &fm, AcceptDamagedKeys: []string{id}}); err != nil {
				t.Fatalf("incremental backup: %v", err)
			}
			chain := []*backup.Backup{openBackup(t, full), openBackup(t, incr)}
			if got := backup.LostKeys(chain); len(got) != 0 {
				t.Errorf("LostKeys of the chain = %v, want none", got)
			}
			ks = restoredKeys(t, chain, master)
			for i, k := range keyIDs {
				if _, err := ks.Key(ctx, k); err != nil {
					t.Errorf("key %d restored from the chain: %v", i, err)
				}
			}
			// An incremental backup after the accepting one accepts what it recorded.
			if _, err := backup.Write(ctx, s, filepath.Join(t.TempDir(), "incr2"), backup.Options{After: &m}); err != nil {
				t.Errorf("incremental backup after the one that accepted the damage: %v", err)
			}
		})
	}
}

// damagedCheckpointStore makes a store in dir with three checkpoints (sequences 1-3 of the
// checkpoint stream, through stream sequences 5, 10 and 15), backs it up into before, appends
// 2 events more, damages checkpoint damaged on disk and opens the store again. It returns the
// earlier backup's manifest and the checkpoints as stored.
func damagedCheckpointStore(t *testing.T, dir, before string, damaged uint64) (*eventstore.Store, backup.Manifest, []eventstore.StoredCheckpoint) {
	t.Helper()
	ctx := context.Background()
	s := openAt(t, dir)
	for i := range 3 {
		appendN(t, s, i, 5)
		storetest.CheckpointThrough(t, s, uint64(5*i+5), nil)
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil || len(cps) != 3 {
		t.Fatalf("%d checkpoints, %v; want 3", len(cps), err)
	}
	fm, err := backup.Write(ctx, s, before, backup.Options{})
	if err != nil || len(fm.Checkpoints) != 3 {
		t.Fatalf("backup before the damage: %d checkpoints, %v", len(fm.Checkpoints), err)
	}
	appendN(t, s, 5, 2)
	s.Close()
	natstest.FlipInBlock(t, dir, eventstore.CheckpointStreamName, cps[damaged-1].Data)
	return openAt(t, dir), fm, cps
}

// TestBackup_DamagedCheckpoint: one checkpoint damaged on disk, in the middle of the
// checkpoint stream and as its last message. A backup that leaves it out holds less than the
// register (the chain of checkpoints a restore puts back has a gap, and it may be the one an
// outside party holds): it fails with ErrDamaged naming the checkpoint's sequence, and never
// waits for it. Before, it was left out without a word. Accepted by its sequence, the backup
// completes, records it, and carries the others; an incremental backup after a backup made
// before the damage (which carries it) needs no acceptance.
func TestBackup_DamagedCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damaged uint64
	}{{"Middle", 2}, {"Last", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, fm, cps := damagedCheckpointStore(t, filepath.Join(t.TempDir(), "js"), filepath.Join(t.TempDir(), "full"), tc.damaged)
			dir := filepath.Join(t.TempDir(), "b")
			start := time.Now()
			_, err := backup.Write(ctx, s, dir, backup.Options{})
			took := time.Since(start)
			if want := fmt.Sprintf("checkpoint %d of %s", tc.damaged, eventstore.CheckpointStreamName); !errors.Is(err, backup.ErrDamaged) || !strings.Contains(err.Error(), want) {
				t.Errorf("backup with checkpoint %d damaged: %v; want ErrDamaged saying %q", tc.damaged, err, want)
			}
			if took > 5*damageTimeout {
				t.Errorf("the backup took %v; the damaged record must not be waited for (request timeout %v)", took, damageTimeout)
			}
			if _, err := backup.Open(dir); err == nil {
				t.Error("the refused backup opens as a finished one")
			}

			acc := filepath.Join(t.TempDir(), "accepted")
			m, err := backup.Write(ctx, s, acc, backup.Options{AcceptUnreadableCheckpoints: []uint64{tc.damaged}})
			if err != nil {
				t.Fatalf("backup accepting the damaged checkpoint: %v", err)
			}
			if !slices.Equal(m.UnreadableCheckpoints, []uint64{tc.damaged}) || len(m.Checkpoints) != 2 {
				t.Errorf("manifest: unreadable checkpoints %v, %d carried; want [%d] and 2", m.UnreadableCheckpoints, len(m.Checkpoints), tc.damaged)
			}
			dst := openAt(t, filepath.Join(t.TempDir(), "restored"))
			if _, err := backup.Restore(ctx, dst, []*backup.Backup{openBackup(t, acc)}, backup.Until{}, nil); err != nil {
				t.Fatal(err)
			}
			got, err := dst.Checkpoints(ctx)
			if err != nil || len(got) != 2 {
				t.Fatalf("restored %d checkpoints, %v; want 2", len(got), err)
			}
			for i, g := range slices.DeleteFunc(slices.Clone(cps), func(c eventstore.StoredCheckpoint) bool { return c.Seq == tc.damaged }) {
				if !bytes.Equal(got[i].Data, g.Data) {
					t.Errorf("restored checkpoint %d is not checkpoint %d", i+1, g.Seq)
				}
			}

			// The backup made before the damage carries it: the incremental one after it
			// holds no less than the register.
			im, err := backup.Write(ctx, s, filepath.Join(t.TempDir(), "incr"), backup.Options{After: &fm})
			if err != nil || len(im.UnreadableCheckpoints) != 0 {
				t.Errorf("incremental backup after one that carries the damaged checkpoint: unreadable %v, %v; want none and no error", im.UnreadableCheckpoints, err)
			}
		})
	}
}
