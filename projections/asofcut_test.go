package projections

import (
	"context"
	"errors"
	"iter"
	"path/filepath"
	"testing"
	"time"
)

// storeShortFeed's replays with a recorded-time cut-off (an as-of replay's store pass) end
// without an error after upTo; the others (the check of what the replay left out) read on.
type storeShortFeed struct {
	*SliceFeed
	upTo uint64
}

func (f *storeShortFeed) Replay(ctx context.Context, opt ReplayOptions) iter.Seq2[Record, error] {
	if !opt.RecordedUntil.IsZero() && (opt.To == 0 || opt.To > f.upTo) {
		opt.To = f.upTo
	}
	return f.SliceFeed.Replay(ctx, opt)
}

// TestAsOf_ShortBeforeAnEventRecordedAtTheCutOff: an as-of replay keeps the events recorded at
// or before its cut-off (README "among those only events recorded at or before the cut-off
// are kept"), so one whose store pass ended before an event recorded at the cut-off's very
// instant ended short (ErrShortReplay), and keeps nothing. Found by mutation testing on
// 2026-12-07: the check of the sequences after the last one stored taking an event recorded
// at the cut-off for one after it, or leaving the check out when the pass ended one short of
// the bound, each passed every test (TestAsOf_ShortReplayKeepsNothing stops before events
// recorded earlier, and far from the bound).
func TestAsOf_ShortBeforeAnEventRecordedAtTheCutOff(t *testing.T) {
	recs := population(3, 40, testKommuner)
	half := len(recs) / 2
	cut := recs[half-1].Event.GetRecordedAt().AsTime()
	for recs[half].Event.GetRecordedAt().AsTime().Equal(cut) {
		half++
	}
	first := half - 1 // the first event recorded at the cut-off's instant
	for first > 0 && recs[first-1].Event.GetRecordedAt().AsTime().Equal(cut) {
		first--
	}
	for i, r := range recs {
		at := r.Event.GetRecordedAt().AsTime()
		if (i < first && !at.Before(cut)) || (i >= half && !at.After(cut)) || r.Seq != uint64(i+1) {
			t.Fatalf("population not in recorded order around the cut-off at seq %d", r.Seq)
		}
	}
	for _, tc := range []struct {
		name string
		recs []Record
	}{
		// The store pass ends before the first event recorded at the cut-off; later ones follow.
		{"Middle", recs},
		// The stream ends with the events recorded at the cut-off: the last is the bound.
		{"Last", recs[:half]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upTo := uint64(first)
			if tc.name == "Last" {
				upTo = uint64(half - 1) // one short of the bound
			}
			f := &storeShortFeed{SliceFeed: NewSliceFeed(tc.recs), upTo: upTo}
			p := caughtUpOn(t, f, Options{Dir: t.TempDir()})
			db, err := p.AsOf(context.Background(), AsOfOptions{RecordedUntil: cut})
			if err == nil {
				c, _ := db.Checkpoint()
				db.Close()
				t.Fatalf("an as-of replay that ended before seq %d (recorded at the cut-off) succeeded, through seq %d", upTo+1, c)
			}
			if !errors.Is(err, ErrShortReplay) {
				t.Errorf("short replay: %v, want ErrShortReplay", err)
			}
			if left, _ := filepath.Glob(filepath.Join(p.opt.Dir, "asof-*")); len(left) != 0 {
				t.Errorf("files left by the short replay: %v", left)
			}
		})
	}
}

// TestAsOf_StoppedDuringTheFoldKeepsNothing checks that an as-of replay asked to stop once its
// store pass is done (the fold does not look at the context: nirctl replay's Ctrl-C, the
// operator's client gone) fails and leaves no file, also when nothing is kept under a name.
// Found by mutation testing on 2026-12-07: AsOf without Keep handing back the replay's figures
// as if it had not been stopped passed every test (TestAsOf_CancelledKeepsNothing stops the
// store pass and keeps a snapshot).
func TestAsOf_StoppedDuringTheFoldKeepsNothing(t *testing.T) {
	recs := population(3, 30, testKommuner)
	p, err := New(NewSliceFeed(recs), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	folding := false
	db, err := p.AsOf(ctx, AsOfOptions{RecordedUntil: time.Now().Add(time.Hour), Progress: func(pr Progress) {
		if pr.Phase == PhaseFold {
			folding = true
			cancel()
		}
	}})
	if !folding {
		t.Fatal("the as-of replay reported no fold")
	}
	if err == nil {
		c, _ := db.Checkpoint()
		db.Close()
		t.Fatalf("an as-of replay stopped during its fold succeeded (checkpoint %d of %d)", c, len(recs))
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("AsOf = %v, want context.Canceled", err)
	}
	if left, _ := filepath.Glob(filepath.Join(p.opt.Dir, "asof-*")); len(left) != 0 {
		t.Errorf("files left by the stopped replay: %v", left)
	}
}

// TestRebuild_StoppedDuringTheFoldNotSwappedIn: a rebuild asked to stop once its store pass is
// done (nird's shutdown, the operator's client gone; the fold does not look at the context)
// swaps nothing in: it fails, and the live models stay at their checkpoint. Found by mutation
// testing on 2026-12-07: a rebuild that swapped in without looking at the context after its
// final stretch passed every test (TestRebuild_CancelledInFinalStretchNotSwappedIn stops the
// final stretch's replay, which fails on its own).
func TestRebuild_StoppedDuringTheFoldNotSwappedIn(t *testing.T) {
	recs := population(3, 30, testKommuner)
	half := len(recs) / 2
	f := NewSliceFeed(recs[:half])
	p := caughtUpOn(t, f, Options{Dir: t.TempDir()})
	live := p.Stats().Checkpoint
	if live != uint64(half) {
		t.Fatalf("caught up to %d, want %d", live, half)
	}
	f.Add(recs[half:]...) // the rebuild would take the live models further than they are
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	folding := false
	err := p.Rebuild(ctx, func(pr Progress) {
		if pr.Phase == PhaseFold {
			folding = true
			cancel()
		}
	})
	if !folding {
		t.Fatal("the rebuild reported no fold")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Rebuild stopped during its fold = %v, want context.Canceled", err)
	}
	if c := p.Stats().Checkpoint; c != live {
		t.Errorf("after the stopped rebuild the live checkpoint is %d, want %d (nothing swapped in)", c, live)
	}
	if left, _ := filepath.Glob(filepath.Join(p.opt.Dir, rebuildFile)); len(left) != 0 {
		t.Errorf("files left by the stopped rebuild: %v", left)
	}
}
