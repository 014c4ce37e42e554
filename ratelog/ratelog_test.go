package ratelog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// line is one logged record: its level, message and attributes as text.
type line struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// recorder is a slog.Handler that keeps every record; the ratelog package imports nothing of
// nird's, its tests neither.
type recorder struct {
	mu    sync.Mutex
	lines []line
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	l := line{level: rec.Level, msg: rec.Message, attrs: map[string]string{}}
	rec.Attrs(func(a slog.Attr) bool { l.attrs[a.Key] = a.Value.String(); return true })
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, l)
	return nil
}

func (r *recorder) all() []line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]line(nil), r.lines...)
}

// fakeClock is a clock a test moves on.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// allowed sends n events to l and returns how many were allowed and the leftOut of each.
func allowed(l *Limiter, n int) (ok int, leftOuts []uint64) {
	for range n {
		if left, yes := l.Allow(); yes {
			ok++
			leftOuts = append(leftOuts, left)
		}
	}
	return ok, leftOuts
}

// TestLimiter_BurstThenEvery: the first Burst events are allowed, then one each Every, the
// first after a gap saying how many were left out; a long quiet spell makes room for Burst
// again, never more.
func TestLimiter_BurstThenEvery(t *testing.T) {
	c := newClock()
	l := &Limiter{Burst: 5, Every: time.Second, Now: c.now}
	if ok, left := allowed(l, 100); ok != 5 || fmt.Sprint(left) != "[0 0 0 0 0]" {
		t.Fatalf("100 events at once: %d allowed (left out before each: %v), want the burst of 5", ok, left)
	}
	c.add(time.Second)
	if ok, left := allowed(l, 100); ok != 1 || left[0] != 95 {
		t.Fatalf("a second on: %d allowed (left out before: %v), want 1 saying 95 were left out", ok, left)
	}
	c.add(time.Hour)
	if ok, left := allowed(l, 10); ok != 5 || left[0] != 99 {
		t.Fatalf("an hour on: %d allowed (left out before: %v), want the burst of 5 again, the first saying 99 were left out", ok, left)
	}
	if _, total, _ := l.allow(c.now); total != 211 {
		t.Errorf("%d events counted, want 211", total)
	}
}

// TestLimiter_ClockSetBack: a clock set back (a wall clock stepped by NTP or by hand; a Now
// without time.Now's monotonic reading) stands still for the Limiter: its lines come again
// as the clock goes on from where it was set to. Before, the bucket counted the time since its
// last line back from the reading, and a clock set back an hour allowed no line for the hour.
func TestLimiter_ClockSetBack(t *testing.T) {
	c := newClock()
	l := &Limiter{Burst: 2, Every: time.Second, Now: c.now}
	if ok, _ := allowed(l, 10); ok != 2 {
		t.Fatalf("%d of 10 events allowed at once, want the burst of 2", ok)
	}
	c.add(-time.Hour)
	if ok, _ := allowed(l, 10); ok != 0 {
		t.Fatalf("%d allowed as the clock was set back, want 0 (no time went by)", ok)
	}
	c.add(time.Second)
	if ok, left := allowed(l, 10); ok != 1 || left[0] != 18 {
		t.Fatalf("a second after the clock was set back: %d allowed (left out before: %v), want 1 saying 18 were left out", ok, left)
	}
}

// TestLimiter_ZeroValue: the zero Limiter allows one line a minute.
func TestLimiter_ZeroValue(t *testing.T) {
	c := newClock()
	l := &Limiter{Now: c.now}
	if ok, _ := allowed(l, 50); ok != 1 {
		t.Fatalf("%d of 50 events allowed at once, want 1", ok)
	}
	c.add(59 * time.Second)
	if ok, _ := allowed(l, 50); ok != 0 {
		t.Fatalf("%d allowed within the minute, want 0", ok)
	}
	c.add(time.Second)
	if ok, left := allowed(l, 1); ok != 1 || left[0] != 99 {
		t.Fatalf("a minute on: %d allowed (left out before: %v), want 1 saying 99 were left out", ok, left)
	}
}

// TestLimiter_Log: lines are logged as given, at the level given; the first after some were
// left out says how many by Key (DefaultKey unless named), and no other line carries it.
func TestLimiter_Log(t *testing.T) {
	for _, tc := range []struct{ key, want string }{{"", DefaultKey}, {"refusals_not_logged", "refusals_not_logged"}} {
		t.Run(tc.want, func(t *testing.T) {
			c, rec := newClock(), &recorder{}
			log := slog.New(rec)
			l := &Limiter{Burst: 2, Every: time.Minute, Key: tc.key, Now: c.now}
			for i := range 30 {
				l.Log(context.Background(), log, slog.LevelInfo, "refused", "n", i)
			}
			c.add(time.Minute)
			l.Log(context.Background(), log, slog.LevelInfo, "refused", "n", 30)
			got := rec.all()
			if len(got) != 3 {
				t.Fatalf("%d lines logged, want 3: %v", len(got), got)
			}
			for i, want := range []struct{ n, left string }{{"0", ""}, {"1", ""}, {"30", "28"}} {
				if got[i].level != slog.LevelInfo || got[i].msg != "refused" || got[i].attrs["n"] != want.n || got[i].attrs[tc.want] != want.left {
					t.Errorf("line %d = %+v, want Info refused n=%s %s=%q", i, got[i], want.n, tc.want, want.left)
				}
			}
		})
	}
}

// TestLimiter_Concurrent: events from many goroutines are each either logged or counted
// once: the lines plus the counts they report are all the events.
func TestLimiter_Concurrent(t *testing.T) {
	c := newClock()
	l := &Limiter{Burst: 3, Every: time.Millisecond, Now: c.now}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sum  uint64
		seen uint64
	)
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.add(time.Microsecond * 100)
				if left, ok := l.Allow(); ok {
					mu.Lock()
					sum, seen = sum+left, seen+1
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	left, total, _ := l.allow(func() time.Time { return c.now().Add(time.Hour) }) // the count still left out
	if sum+seen+left != total-1 || total != 8001 {
		t.Errorf("%d lines reporting %d left out, and %d left out since: %d, want the %d events", seen, sum, left, sum+seen+left, total-1)
	}
}

// TestKinds_EachKindItsBound: each kind (message) has its own bound, the first lines of it,
// then a count a minute; one kind's flood leaves another's lines alone.
func TestKinds_EachKindItsBound(t *testing.T) {
	c, rec := newClock(), &recorder{}
	log := slog.New(rec)
	k := &Kinds{Now: c.now}
	for range 500 {
		k.Log(context.Background(), log, slog.LevelError, "read failed: damaged read models", "op", "persons")
	}
	k.Log(context.Background(), log, slog.LevelWarn, "a data key could not be read", "op", "history")
	got := rec.all()
	if len(got) != DefaultKindsBurst+1 || got[DefaultKindsBurst].msg != "a data key could not be read" || got[DefaultKindsBurst].level != slog.LevelWarn {
		t.Fatalf("500 lines of one kind and 1 of another logged %d lines, want %d of the first and the other: %v", len(got), DefaultKindsBurst+1, got)
	}
	for range 3 {
		c.add(time.Minute)
		for range 100 {
			k.Log(context.Background(), log, slog.LevelError, "read failed: damaged read models", "op", "persons")
		}
	}
	got = rec.all()[DefaultKindsBurst+1:]
	if len(got) != 3 {
		t.Fatalf("3 minutes of 100 failures each logged %d lines, want 1 a minute: %v", len(got), got)
	}
	for i, want := range []string{"490", "99", "99"} {
		if got[i].attrs[DefaultKey] != want || got[i].level != slog.LevelError || got[i].attrs["op"] != "persons" {
			t.Errorf("minute %d logged %+v, want the failure with %s=%s", i+1, got[i], DefaultKey, want)
		}
	}
}

// TestKinds_ManyKinds: kinds beyond maxKinds share one bound, so a caller that wrongly made
// its message of something a client chose still keeps the log bounded.
func TestKinds_ManyKinds(t *testing.T) {
	rec := &recorder{}
	log := slog.New(rec)
	k := &Kinds{Burst: 1}
	for i := range maxKinds + 1000 {
		k.Log(context.Background(), log, slog.LevelInfo, fmt.Sprint("kind ", i))
	}
	if got := len(rec.all()); got != maxKinds+1 {
		t.Errorf("%d kinds logged %d lines, want %d (a line for each of the first %d, one for the rest)", maxKinds+1000, got, maxKinds+1, maxKinds)
	}
}

// TestMinute_OneLineAMinute: a flood of events makes one line, then none within the
// minute; the count goes on.
func TestMinute_OneLineAMinute(t *testing.T) {
	c, rec := newClock(), &recorder{}
	log := slog.New(rec)
	m := Minute{Msg: "bad headers", Now: c.now}
	for range 1000 {
		m.Note(log, "connection", "c")
	}
	got := rec.all()
	if len(got) != 1 || got[0].level != slog.LevelWarn || got[0].msg != "bad headers" || got[0].attrs["since_last_log"] != "1" || got[0].attrs["total"] != "1" || got[0].attrs["connection"] != "c" {
		t.Fatalf("1000 events logged as: %v", got)
	}
	c.add(time.Minute)
	m.Note(log)
	if got := rec.all(); len(got) != 2 || got[1].attrs["since_last_log"] != "1000" || got[1].attrs["total"] != "1001" {
		t.Fatalf("the line after a minute does not count those left out: %v", got)
	}
}
