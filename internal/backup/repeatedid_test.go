package backup_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/verify"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestRestore_AnEventIDStoredTwice: a register whose stream holds one event id twice, on two
// persons (the event store checks ids across persons only within its dedupe window, so an id
// sent again later for another person is stored; nirctl verify reports it as duplicate-id),
// is restored whole: every message at its sequence with its subject and data, the first
// holder of the id keeping its Nats-Msg-Id header, and RepeatedIDs names the sequences
// restored without it. Found on 2026-12-07 (adversarial review of backup and restore): a
// restore sends every message within the dedupe window, and JetStream refuses an atomic
// batch holding an id already stored or repeated in it (10201), so such a register's backups
// could not be restored at all: the restore stopped at the batch, unfinished, after Verify had
// passed the backup. Both a repeat within one import batch and one in a later batch.
func TestRestore_AnEventIDStoredTwice(t *testing.T) {
	ctx := context.Background()
	src, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js"), DuplicateWindow: 100 * time.Millisecond,
		Metadata: map[string]string{"nir_person_key_fingerprint": "test-fingerprint"}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	appendOne := func(person int, id string) uint64 {
		t.Helper()
		ev := event(personKey(person), time.Now())
		if id != "" {
			ev.Id = id
		}
		pos, err := src.Append(ctx, eventstore.PersonAppend{PersonKey: personKey(person), Events: []*nirv1.Event{ev}})
		if err != nil {
			t.Fatal(err)
		}
		return pos[0].Seq
	}
	early := event(personKey(2), time.Now()).Id
	first := appendOne(2, early)       // sequence 1
	appendN(t, src, 1, 120)            // past one import batch (100)
	time.Sleep(300 * time.Millisecond) // past the source's dedupe window
	late := appendOne(3, early)        // another batch than the first holder's
	near := appendOne(4, "")
	time.Sleep(300 * time.Millisecond)
	same := appendOne(5, eventID(t, src, near)) // the batch of the message it repeats
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Write(ctx, src, dir, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	bs := []*backup.Backup{openBackup(t, dir)}
	if got, want := backup.RepeatedIDs(bs, backup.Until{}), []uint64{late, same}; !slices.Equal(got, want) {
		t.Errorf("RepeatedIDs = %v, want %v", got, want)
	}
	dst := openStore(t)
	last, err := backup.Restore(ctx, dst, bs, backup.Until{}, nil)
	if err != nil || last != same {
		t.Fatalf("restore of a register holding an event id twice: through %d, %v; want through %d", last, err, same)
	}
	want, got := all(t, src), all(t, dst)
	if len(got) != len(want) {
		t.Fatalf("the restored stream holds %d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		w := want[i]
		if m.Seq != w.Seq || m.Subject != w.Subject || !bytes.Equal(m.Data, w.Data) {
			t.Errorf("restored message %d: sequence %d on %s, want %d on %s, same data", i, m.Seq, m.Subject, w.Seq, w.Subject)
		}
		wantID := w.Header.Get(nats.MsgIdHdr)
		if m.Seq == late || m.Seq == same {
			wantID = ""
		}
		if id := m.Header.Get(nats.MsgIdHdr); id != wantID {
			t.Errorf("restored message %d: Nats-Msg-Id %q, want %q", m.Seq, id, wantID)
		}
	}
	if got[first-1].Header.Get(nats.MsgIdHdr) != early {
		t.Errorf("the id's first holder (sequence %d) lost its Nats-Msg-Id", first)
	}
	// nirctl verify finds the repeats, and nothing else: a message restored without its
	// header is not one whose header is not its event's id.
	rep, err := verify.Stream(ctx, dst, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var dups []uint64
	for _, p := range rep.Problems {
		if p.Kind != verify.KindDuplicateID {
			t.Errorf("verify of the restored stream: %+v", p)
			continue
		}
		dups = append(dups, p.Seq)
	}
	if !slices.Equal(dups, []uint64{late, same}) {
		t.Errorf("verify of the restored stream reports duplicate ids at %v, want %v", dups, []uint64{late, same})
	}
}

// eventID returns the event id of the message at seq.
func eventID(t *testing.T, s *eventstore.Store, seq uint64) string {
	t.Helper()
	for _, m := range all(t, s) {
		if m.Seq == seq {
			return m.Header.Get(nats.MsgIdHdr)
		}
	}
	t.Fatalf("no message at sequence %d", seq)
	return ""
}
