package projections

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/introreg/nir/rules"
)

// The published table's suppression (rules.Suppress over the whole national table) costs
// about a second of CPU on a national population, and every Statistics call, whatever level
// or area it reads, needs it. DB.published keeps the result, keyed by the table itself: the
// data year, the threshold and every kommune row's area and counters as read from the
// statistics bucket (after mapping to the structure asked for). Suppress is deterministic and
// depends on nothing else, so a cached result is served only for the very table it was
// computed from: an event that changes a counter changes the key, and a snapshot (another
// DB) has its own cache. Reading and hashing the rows costs well under a millisecond.
//
// Concurrent callers for one key wait for one computation (singleflight). The computation
// runs while any caller still waits: when the last one has gone (its context done), it is
// cancelled (rules.SuppressContext). suppressSlots bounds the computations running at once in
// the process, so that callers asking for many years, structures or snapshots queue rather
// than occupy every core.

// maxPublished bounds the cached suppressions per DB: one per data year and structure (the
// year's own or today's; nird has one threshold), each about 25 KB (a bool per counter of
// each row), so about 1.6 MB per read-model file when full. Past it the oldest is dropped.
const maxPublished = 64

// suppressSlots admits one suppression computation at a time in the process.
var suppressSlots = make(chan struct{}, 1)

type publishedKey [sha256.Size]byte

type publishedCache struct {
	mu      sync.Mutex
	done    map[publishedKey][][]bool
	order   []publishedKey // insertion order of done, oldest first
	flights map[publishedKey]*suppressFlight
	// computed counts the computations started (for tests).
	computed int
}

type suppressFlight struct {
	done    chan struct{}
	sup     [][]bool
	err     error
	waiters int
	cancel  context.CancelFunc
}

// tableKey identifies a published table by its content (see above).
func tableKey(year int, minCount int64, kommuner []StatRow) publishedKey {
	h := sha256.New()
	var b []byte
	b = binary.AppendVarint(b, int64(year))
	b = binary.AppendVarint(b, minCount)
	b = binary.AppendUvarint(b, uint64(len(kommuner)))
	for i := range kommuner {
		k := &kommuner[i]
		b = binary.AppendUvarint(b, uint64(len(k.Area)))
		b = append(b, k.Area...)
		for _, v := range k.Counters {
			b = binary.AppendVarint(b, v)
		}
		if len(b) > 4096 {
			h.Write(b)
			b = b[:0]
		}
	}
	h.Write(b)
	var key publishedKey
	h.Sum(key[:0])
	return key
}

// suppress returns the suppression of table t under key, computing it once (see above). The
// result is shared: callers must not modify it.
func (c *publishedCache) suppress(ctx context.Context, key publishedKey, t *rules.DisclosureTable, minCount int64) ([][]bool, error) {
	c.mu.Lock()
	if sup, ok := c.done[key]; ok {
		c.mu.Unlock()
		return sup, nil
	}
	if c.flights == nil {
		c.flights = map[publishedKey]*suppressFlight{}
	}
	f := c.flights[key]
	if f == nil {
		fctx, cancel := context.WithCancel(context.Background())
		f = &suppressFlight{done: make(chan struct{}), cancel: cancel}
		c.flights[key] = f
		go c.compute(fctx, key, f, t, minCount)
	}
	f.waiters++
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.sup, f.err
	case <-ctx.Done():
		c.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			// Nobody waits any more: stop the work, and let the next caller start afresh.
			f.cancel()
			if c.flights[key] == f {
				delete(c.flights, key)
			}
		}
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *publishedCache) compute(ctx context.Context, key publishedKey, f *suppressFlight, t *rules.DisclosureTable, minCount int64) {
	defer close(f.done)
	defer f.cancel()
	sup, err := func() (sup [][]bool, err error) {
		select {
		case suppressSlots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-suppressSlots }()
		if err := ctx.Err(); err != nil {
			return nil, err // every caller left while this waited for the slot
		}
		// A panic here would not be a request's (recovered by the server) but the process's.
		defer func() {
			if r := recover(); r != nil {
				sup, err = nil, fmt.Errorf("projections: disclosure control failed: %v", r)
			}
		}()
		c.mu.Lock()
		c.computed++
		c.mu.Unlock()
		return rules.SuppressContext(ctx, t, minCount)
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	f.sup, f.err = sup, err
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	if err != nil {
		return
	}
	if c.done == nil {
		c.done = map[publishedKey][][]bool{}
	}
	if _, ok := c.done[key]; !ok {
		for len(c.order) >= maxPublished {
			delete(c.done, c.order[0])
			c.order = c.order[1:]
		}
		c.done[key] = sup
		c.order = append(c.order, key)
	}
}
