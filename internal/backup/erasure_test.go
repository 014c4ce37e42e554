package backup_test

import (
	"context"
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

// TestRestore_ErasureDestroysAKeyTheBackupHolds: nird records an erasure and then destroys the
// data keys it names (ingest: "another erasure completes the first one's key destruction (a
// crash may have stopped it)"). A backup made between the two holds the erasure and the
// person's key still wrapped; its restore must destroy the key, or the restored register reads
// the erased person's national id again (DOMAIN.md Product decisions 15, crypto-shredding).
// Found by mutation testing on 2026-12-07: a restore that stored the backup's keys without the
// erasures' destroyed keys passed every test.
func TestRestore_ErasureDestroysAKeyTheBackupHolds(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "js"))
	master := storetest.NewMaster(t)
	ks, err := s.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	erased, kept := personKey(201), personKey(202)
	for _, id := range []string{erased, kept} {
		appendN(t, s, 0, 1)
		if _, err := ks.Ensure(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	_ = ks.Close()
	ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: erased, Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"},
		RecordedAt: timestamppb.New(time.Now()),
		Payload:    &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{DestroyedKeys: []string{erased}}}}
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: erased, Events: []*nirv1.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	// The key is not destroyed yet: the backup holds it.
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Write(ctx, s, dir, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	rks := restoredKeys(t, []*backup.Backup{openBackup(t, dir)}, master)
	if _, err := rks.Key(ctx, erased); !errors.Is(err, sealing.ErrKeyDestroyed) {
		t.Errorf("the restored key of the erased person: %v; want it destroyed (ErrKeyDestroyed)", err)
	}
	if _, err := rks.Key(ctx, kept); err != nil {
		t.Errorf("the restored key of a person not erased: %v", err)
	}
}
