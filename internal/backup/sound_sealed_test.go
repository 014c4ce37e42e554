package backup_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/storetest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/sealing"
)

// TestRestore_SoundSealedBackups: sound backups sealed with the register's checkpoint key pass
// Verify with its public key (nirctl restore --public-key) and restore: an empty register, and
// one continued by an increment; a register with an erased person whose data key was destroyed
// (its key stays destroyed); an incremental chain of an increment with a new checkpoint, one
// without, and one with no new message.
func TestRestore_SoundSealedBackups(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	check := func(t *testing.T, dirs ...string) []*backup.Backup {
		t.Helper()
		var bs []*backup.Backup
		for _, d := range dirs {
			bs = append(bs, openBackup(t, d))
		}
		if _, err := backup.Verify(bs, backup.Until{}, pub); err != nil {
			t.Fatalf("Verify with the public key: %v", err)
		}
		return bs
	}

	t.Run("Empty", func(t *testing.T) {
		s, ks, master := emptyRegister(t)
		_ = ks.Close()
		dir := writeSealed(t, s, key, backup.Options{})
		restoredKeys(t, check(t, dir), master)
	})

	t.Run("EmptyThenIncrement", func(t *testing.T) {
		s, ks, master := emptyRegister(t)
		_ = ks.Close()
		full := writeSealed(t, s, key, backup.Options{})
		appendN(t, s, 1, 3)
		storetest.CheckpointThrough(t, s, 3, key)
		incr := writeSealed(t, s, key, backup.Options{After: &openBackup(t, full).Manifest})
		restoredKeys(t, check(t, full, incr), master)
	})

	t.Run("ErasedPerson", func(t *testing.T) {
		s, ks, master := emptyRegister(t)
		erased, kept := personKey(301), personKey(302)
		for _, id := range []string{erased, kept} {
			appendN(t, s, 0, 1)
			if _, err := ks.Ensure(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: erased, Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"},
			RecordedAt: timestamppb.New(time.Now()),
			Payload:    &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{DestroyedKeys: []string{erased}}}}
		if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: erased, Events: []*nirv1.Event{ev}}); err != nil {
			t.Fatal(err)
		}
		if err := ks.Destroy(ctx, erased); err != nil {
			t.Fatal(err)
		}
		_ = ks.Close()
		storetest.CheckpointThrough(t, s, 3, key)
		dir := writeSealed(t, s, key, backup.Options{})
		rks := restoredKeys(t, check(t, dir), master)
		if _, err := rks.Key(ctx, erased); !errors.Is(err, sealing.ErrKeyDestroyed) {
			t.Errorf("the erased person's key: %v, want destroyed", err)
		}
		if _, err := rks.Key(ctx, kept); err != nil {
			t.Errorf("the kept person's key: %v", err)
		}
	})

	t.Run("Chain", func(t *testing.T) {
		s, _, master := keyedStore(t, key)
		full := writeSealed(t, s, key, backup.Options{})
		appendN(t, s, 5, 3)
		storetest.CheckpointThrough(t, s, 15, key)
		i1 := writeSealed(t, s, key, backup.Options{After: &openBackup(t, full).Manifest})
		appendN(t, s, 6, 2) // no checkpoint over these
		i2 := writeSealed(t, s, key, backup.Options{After: &openBackup(t, i1).Manifest})
		i3 := writeSealed(t, s, key, backup.Options{After: &openBackup(t, i2).Manifest})
		restoredKeys(t, check(t, full, i1, i2, i3), master)
	})
}

// emptyRegister opens a store with nothing in it, and its key store under a new master key.
func emptyRegister(t *testing.T) (*eventstore.Store, *eventstore.KeyStore, *sealing.Key) {
	t.Helper()
	s := openAt(t, filepath.Join(t.TempDir(), "js"))
	master := storetest.NewMaster(t)
	ks, err := s.OpenKeyStore(context.Background(), master)
	if err != nil {
		t.Fatal(err)
	}
	return s, ks, master
}
