package feed

import (
	"context"
	"fmt"
	"iter"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// gatedFeed is the Feed whose Replay closes reached once it has yielded sequence at, so
// that a test knows the projector's reader is blocked handing over a batch.
type gatedFeed struct {
	*Feed
	at      uint64
	once    sync.Once
	reached chan struct{}
}

func (g *gatedFeed) Replay(ctx context.Context, opt projections.ReplayOptions) iter.Seq2[projections.Record, error] {
	return func(yield func(projections.Record, error) bool) {
		for r, err := range g.Feed.Replay(ctx, opt) {
			if err == nil && r.Seq >= g.at {
				g.once.Do(func() { close(g.reached) })
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

// Found on 2026-12-06 (with the real event store): nird's shutdown (SIGTERM, or any other
// part of it ending: runAll cancels them all) during a catch-up stored the stream's last
// sequence as the checkpoint though only part of the range was folded; after the restart
// the events in between were never folded. Now the stop leaves the checkpoint at the last
// event applied and the restart folds the rest.
func TestRun_StopDuringCatchUpLosesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, f := openFeed(t)
	const n = 40
	for i := range n {
		key := strings.Repeat(fmt.Sprintf("%02x", i), 32)
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", RecordedAt: timestamppb.Now(),
			Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: &nirv1.Date{Year: 2024, Month: 1, Day: 2}}}}
		if _, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: []*nirv1.Event{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	// Batches of one: the first is applied, the next two queued, the fourth read and waiting.
	g := &gatedFeed{Feed: f, at: 4, reached: make(chan struct{})}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var once sync.Once
	var mu sync.Mutex
	folded := 0
	opt := projections.Options{Dir: filepath.Join(dir, "models"), BatchSize: 1, Open: func(*nirv1.Event) error {
		mu.Lock()
		folded++
		mu.Unlock()
		once.Do(func() {
			select {
			case <-g.reached:
			case <-time.After(30 * time.Second):
				t.Error("the replay never read ahead")
			}
			stop() // SIGTERM while the models catch up
		})
		return nil
	}}
	p, err := projections.New(g, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(runCtx); err != nil {
		t.Errorf("Run stopped by its context = %v, want nil", err)
	}
	first := uint64(p.Stats().Checkpoint)
	p.Close()
	mu.Lock()
	if first > uint64(folded) {
		t.Errorf("checkpoint %d stored after folding %d events", first, folded)
	}
	mu.Unlock()
	// Restart: a new projector on the same directory catches up from its checkpoint.
	var again int
	p2, err := projections.New(f, projections.Options{Dir: opt.Dir, Open: func(*nirv1.Event) error { again++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	ckpt, err := p2.CatchUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	total := folded + again
	mu.Unlock()
	if ckpt != n || total != n {
		t.Fatalf("after the restart: checkpoint %d, events folded in all %d (the first run's checkpoint %d); want %d and %d", ckpt, total, first, n, n)
	}
}
