// Package ratelog bounds the lines logged of an event that a client, or an outage, can make
// recur as fast as requests come (a refused publish, a slow consumer, a header block that does
// not decode, a request refused for its token, a read failing on a damaged snapshot): one line
// each would fill the log. A [Limiter] logs the first lines of one kind of event, then one now
// and then, each saying how many were left out since the line before; [Kinds] keeps one for
// each of several kinds; [Minute] logs one kind at most once a minute, with its counts.
//
// It imports only the standard library and golang.org/x/time, so that any package of nird
// may use it.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultKey is the attribute by which a line says how many lines of its kind were left out
// since the last one logged, unless the Limiter names another.
const DefaultKey = "not_logged"

// Limiter decides which lines of one kind of event are logged: the first Burst, then one
// each Every (a token bucket: a quiet spell of Burst×Every makes room for Burst again). It
// counts the lines it leaves out, for the next line logged to say how many. The zero value
// allows one line a minute; it is safe for concurrent use. Set the fields before its first
// use.
type Limiter struct {
	// Burst is how many lines are logged at once (0: 1).
	Burst int
	// Every is how often one more line is allowed, up to Burst (0: a minute).
	Every time.Duration
	// Key is the attribute of Log's lines that counts those left out (empty: DefaultKey).
	Key string
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu      sync.Mutex
	bucket  *rate.Limiter // made at the first event, from Burst and Every
	leftOut uint64        // events whose line was left out since the last one allowed
	total   uint64        // events in all
	read    time.Time     // the clock's last reading
	setBack time.Duration // how far the clock was set back in all (steady)
}

// Allow counts one event and reports whether its line may be logged; if so, leftOut is how
// many lines were left out since the last one allowed.
func (l *Limiter) Allow() (leftOut uint64, ok bool) {
	leftOut, _, ok = l.allow(l.Now)
	return leftOut, ok
}

// allow is Allow on the clock now (nil: time.Now), and also returns how many events there
// were in all, this one included.
func (l *Limiter) allow(now func() time.Time) (leftOut, total uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bucket == nil {
		every := l.Every
		if every <= 0 {
			every = time.Minute
		}
		l.bucket = rate.NewLimiter(rate.Every(every), max(l.Burst, 1))
	}
	l.total++
	if !l.bucket.AllowN(l.steady(now), 1) {
		l.leftOut++
		return 0, l.total, false
	}
	leftOut, l.leftOut = l.leftOut, 0
	return leftOut, l.total, true
}

// steady reads the clock now (under l.mu, so that readings come in order) as a clock that
// never goes back: one set back (a wall clock without a monotonic reading, stepped by NTP or
// by hand; time.Now's readings never go back) stands still instead. The bucket counts the
// time since its last line back from the reading, and a clock set back an hour allowed no
// line for that hour.
func (l *Limiter) steady(now func() time.Time) time.Time {
	t := clock(now)
	if t.Before(l.read) {
		l.setBack += l.read.Sub(t)
	}
	l.read = t
	return t.Add(l.setBack)
}

// Log counts one event and, if the bound allows, logs msg at level with attrs, and with how
// many lines were left out before it (Key) when some were.
func (l *Limiter) Log(ctx context.Context, log *slog.Logger, level slog.Level, msg string, attrs ...any) {
	n, ok := l.Allow()
	if !ok {
		return
	}
	if n > 0 {
		key := l.Key
		if key == "" {
			key = DefaultKey
		}
		attrs = append(attrs, key, n)
	}
	log.Log(ctx, level, msg, attrs...)
}

// DefaultKindsBurst is how many lines of one kind [Kinds] logs at once unless told.
const DefaultKindsBurst = 10

// maxKinds bounds the Limiters a Kinds keeps; kinds beyond it share one. A kind is a
// message in the caller's code, so there are few; the bound is a backstop.
const maxKinds = 256

// Kinds bounds the lines of several kinds of event, a kind being the message logged, each by
// a Limiter of its own made from Burst, Every and Key: while the register fails (no room on
// disk, a damaged data key or snapshot), every request fails alike, and each failure's line
// is logged the first Burst times, then once each Every with how many were left out. The
// zero value logs DefaultKindsBurst lines of a kind at once, then one a minute; it is safe
// for concurrent use. Set the fields before its first use.
type Kinds struct {
	// Burst is how many lines of a kind are logged at once (0: DefaultKindsBurst).
	Burst int
	// Every is how often one more line of a kind is allowed, up to Burst (0: a minute).
	Every time.Duration
	// Key is the attribute that counts the lines of a kind left out (empty: DefaultKey).
	Key string
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu    sync.Mutex
	kinds map[string]*Limiter
	other *Limiter // the kinds beyond maxKinds
}

// Log logs msg at level with attrs as [Limiter.Log] does, bounded by msg's Limiter. msg must
// be a constant of the caller's: what a client chose or a failure's text goes in attrs.
func (k *Kinds) Log(ctx context.Context, log *slog.Logger, level slog.Level, msg string, attrs ...any) {
	k.limiter(msg).Log(ctx, log, level, msg, attrs...)
}

// limiter returns the Limiter of the kind msg, made at its first line.
func (k *Kinds) limiter(msg string) *Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.kinds[msg]; l != nil {
		return l
	}
	burst := k.Burst
	if burst <= 0 {
		burst = DefaultKindsBurst
	}
	l := &Limiter{Burst: burst, Every: k.Every, Key: k.Key, Now: k.Now}
	if len(k.kinds) >= maxKinds {
		if k.other == nil {
			k.other = l
		}
		return k.other
	}
	if k.kinds == nil {
		k.kinds = make(map[string]*Limiter)
	}
	k.kinds[msg] = l
	return l
}

// Minute counts one kind of event and logs it, as Msg at Warn, at most once a minute, with
// how many there were since the last line and in all. The zero value with Msg set is ready;
// it is safe for concurrent use.
type Minute struct {
	Msg string
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	bound Limiter // the zero Limiter: one line a minute
}

// Note counts one event and logs Msg with attrs, how many came since the last line
// (since_last_log, this one included) and in all (total), unless it logged less than a
// minute ago.
func (m *Minute) Note(log *slog.Logger, attrs ...any) {
	leftOut, total, ok := m.bound.allow(m.Now)
	if !ok {
		return
	}
	log.Warn(m.Msg, append(attrs, "since_last_log", leftOut+1, "total", total)...)
}

// clock reads now, or time.Now if it is nil.
func clock(now func() time.Time) time.Time {
	if now == nil {
		return time.Now()
	}
	return now()
}
