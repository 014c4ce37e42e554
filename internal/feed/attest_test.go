package feed

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/internal/syncbuf"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

const tookFromFile = "events taken from the live file"

// TestRebuild_FromAttestedFile: a rebuild takes the events the live file holds through the
// stream's last signed checkpoint and reads only the rest of the stream, and gives the same
// file as a rebuild that reads the whole stream, quarantined messages included. A checkpoint
// signed by another key, or none at all, make the rebuild read the whole stream; a file whose
// events do not match the checkpoint is TestDamage_ModelFileEventForged's (adversarial).
func TestRebuild_FromAttestedFile(t *testing.T) {
	ctx := context.Background()
	store, js := openStore(t)
	var poison []uint64
	i := 0
	stamp := timestamppb.Now // the events' recorded_at
	// addPoison publishes a message that is not an event on a person's subject: quarantined,
	// so the live file does not keep it and a rebuild from the file reads it from the stream.
	addPoison := func(key string) {
		ack, err := js.Publish(ctx, "nir.ev."+key, []byte{0xff, 0xff, 0xff})
		if err != nil {
			t.Fatal(err)
		}
		poison = append(poison, ack.Sequence)
	}
	add := func(persons int) {
		for evs := range demo.Generate(int64(i+1), persons, rules.Date{Y: 2024, M: 6, D: 1}) {
			h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
			key := hex.EncodeToString(h[:])
			for _, ev := range evs {
				ev.PersonKey, ev.RecordedAt = key, stamp()
			}
			if _, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: evs}); err != nil {
				t.Fatal(err)
			}
			if i%7 == 3 {
				addPoison(key)
			}
			i++
		}
	}
	add(100) // more than one read transaction's worth of blocks (copyViewBlocks)
	// Messages the file lacks at the end of a block's range (taken from the stream before
	// the next block is copied), and as the last message the checkpoint covers.
	for {
		addPoison(strings.Repeat("cd", 32))
		if poison[len(poison)-1]%64 == 63 {
			break
		}
	}
	add(5)
	addPoison(strings.Repeat("cd", 32))

	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.TrustCheckpoints(pub)
	logs := &syncbuf.Buffer{}
	dir := t.TempDir()
	open := func(f *Feed) *projections.Projector {
		p, err := projections.New(f, projections.Options{Dir: dir, BatchSize: 50, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := open(f)
	defer func() { p.Close() }()
	if _, err := p.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	dump := func() string {
		var b strings.Builder
		if err := p.Use("", func(db *projections.DB) error { return db.Dump(&b) }); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	rebuild := func(fromStream bool) string {
		t.Helper()
		logs.Take()
		rb := p.Rebuild
		if fromStream {
			rb = p.RebuildFromStream
		}
		if err := rb(ctx, nil); err != nil {
			t.Fatal(err)
		}
		return logs.Take()
	}

	// No checkpoint yet: the whole stream is read.
	if l := rebuild(false); strings.Contains(l, tookFromFile) {
		t.Fatalf("a rebuild without a checkpoint took events from the file:\n%s", l)
	}

	// A checkpoint through the stream's end, then more events after it.
	checkpoint := func() uint64 {
		t.Helper()
		last, err := store.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		go store.RunCheckpoints(cctx, eventstore.CheckpointOptions{Every: 1, Poll: 20 * time.Millisecond, Key: key, Made: func(cp *nirv1.Checkpoint) {
			if cp.GetStreamSeq() >= last {
				cancel()
			}
		}})
		<-cctx.Done()
		if !errors.Is(cctx.Err(), context.Canceled) {
			t.Fatal("no checkpoint through the stream's end within a minute")
		}
		return last
	}
	last := checkpoint()
	time.Sleep(10 * time.Millisecond)
	between := time.Now() // after the checkpoint's events, before the next ones
	time.Sleep(10 * time.Millisecond)
	add(20)
	if _, err := p.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}

	whole := rebuild(true)
	if strings.Contains(whole, tookFromFile) {
		t.Fatalf("RebuildFromStream took events from the file:\n%s", whole)
	}
	want := dump()
	if l := rebuild(false); !strings.Contains(l, tookFromFile) || !strings.Contains(l, "through_seq="+strconv.FormatUint(last, 10)) {
		t.Fatalf("the rebuild did not take the events through the checkpoint (seq %d) from the file:\n%s", last, l)
	}
	if got := dump(); got != want {
		t.Fatalf("the rebuild from the file differs from the rebuild from the stream")
	}
	var q []projections.Quarantine
	if err := p.Use("", func(db *projections.DB) (err error) { q, err = db.Quarantined(0); return err }); err != nil {
		t.Fatal(err)
	}
	if len(q) != len(poison) {
		t.Fatalf("quarantined after the rebuild from the file: %v, want %v", q, poison)
	}

	// As-of replays take the file's events too, through the last checkpoint before the
	// cut-off's bound, leaving out what was recorded after the cut-off, and equal the same
	// replay from the stream. Events stamped an hour ahead lie inside the copied range and
	// are left out by their recorded time alone.
	stamp = func() *timestamppb.Timestamp { return timestamppb.New(time.Now().Add(time.Hour)) }
	add(10)
	stamp = timestamppb.Now
	add(5)
	checkpoint()
	if _, err := p.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	asOf := func(cut time.Time, fromStream bool) (string, string) {
		t.Helper()
		logs.Take()
		db, err := p.AsOf(ctx, projections.AsOfOptions{RecordedUntil: cut, FromStream: fromStream})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var b strings.Builder
		if err := db.Dump(&b); err != nil {
			t.Fatal(err)
		}
		return b.String(), logs.Take()
	}
	everything, _ := asOf(time.Now().Add(2*time.Hour), true)
	for _, cut := range []time.Time{between, time.Now().Add(30 * time.Minute)} {
		wantAsOf, _ := asOf(cut, true)
		got, l := asOf(cut, false)
		if !strings.Contains(l, "as-of replay: "+tookFromFile) {
			t.Fatalf("the as-of replay to %v did not take the file's events:\n%s", cut, l)
		}
		if got != wantAsOf {
			t.Fatalf("the as-of replay to %v from the file differs from the one from the stream", cut)
		}
		if got == everything {
			t.Fatalf("the as-of replay to %v left nothing out", cut)
		}
	}
	want = func() string { rebuild(true); return dump() }()

	// Another key's checkpoints vouch for nothing.
	other, err := New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherPub, _, _ := ed25519.GenerateKey(nil)
	other.TrustCheckpoints(otherPub)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = open(other)
	if l := rebuild(false); strings.Contains(l, tookFromFile) {
		t.Fatalf("a checkpoint signed by another key was trusted:\n%s", l)
	}
	if got := dump(); got != want {
		t.Fatalf("the rebuild without a trusted checkpoint differs")
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = open(f)

	// While the live models run and registrations keep coming: the rebuild from the file
	// and the live runner's catch-up after the swap give what a rebuild from the stream gives.
	rctx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- p.Run(rctx) }()
	adding := make(chan struct{})
	go func() {
		defer close(adding)
		add(30)
	}()
	if l := rebuild(false); !strings.Contains(l, tookFromFile) {
		t.Errorf("the rebuild while the models run did not take the file's events:\n%s", l)
	}
	<-adding
	end, err := store.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); p.Stats().Checkpoint < end; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the live models did not reach seq %d", end)
		}
	}
	stop()
	if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	live := dump()
	rebuild(true)
	if got := dump(); got != live {
		t.Fatalf("the models after a rebuild from the file while running differ from a rebuild from the stream")
	}
}
