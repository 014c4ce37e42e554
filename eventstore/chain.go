package eventstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
)

// The tamper-evident chain (nirv1.Event.prev_hash). Each event nird appends names the
// SHA-256 of the stored data of its person's previous message on the stream (the message at
// the append's expected last sequence, or the event before it in the same call), so that
// changing, removing or inserting any of a person's events breaks the chain at the next one.
// The hash is over the message data as stored (the deterministic protobuf encoding of the
// event, prev_hash included): what is hashed is exactly what is kept, and a later erasure of
// keys never changes it. The expected last sequence that every append of nird carries makes
// the link right: if another message came first, the append is refused and made again on
// the new history.

// HashOf is an event's link in the chain: the SHA-256 of its stored message data.
func HashOf(data []byte) []byte {
	sum := sha256.Sum256(data)
	return sum[:]
}

// hashCacheSize bounds the sequences whose hashes the store remembers (the last events it
// appended), so that the next append to a person seldom reads the previous message again.
const hashCacheSize = 1 << 16

// hashCache remembers the hashes of messages by sequence: a fact that never changes.
type hashCache struct {
	mu   sync.Mutex
	m    map[uint64][]byte
	ring []uint64
	next int
}

func (c *hashCache) get(seq uint64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[seq]
}

func (c *hashCache) put(seq uint64, h []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m, c.ring = make(map[uint64][]byte, hashCacheSize), make([]uint64, hashCacheSize)
	}
	if _, ok := c.m[seq]; ok {
		return
	}
	if old := c.ring[c.next]; old != 0 {
		delete(c.m, old)
	}
	c.ring[c.next] = seq
	c.next = (c.next + 1) % hashCacheSize
	c.m[seq] = h
}

// hashAt returns the chain hash of the message stored at seq.
func (s *Store) hashAt(ctx context.Context, seq uint64) ([]byte, error) {
	if h := s.hashes.get(seq); h != nil {
		return h, nil
	}
	data, err := s.RawAt(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("eventstore: append: the person's last message (sequence %d), for the chain: %w", seq, err)
	}
	h := HashOf(data)
	s.hashes.put(seq, h)
	return h, nil
}

// links returns, for each person of batch with an expectation, the chain hash its first new
// event links to: nil for a person with no messages yet.
func (s *Store) links(ctx context.Context, batch []PersonAppend) ([][]byte, error) {
	var out [][]byte // by batch index; nil when no person links
	for i, pa := range batch {
		if pa.ExpectedLastSeq == nil || *pa.ExpectedLastSeq == 0 {
			continue
		}
		h, err := s.hashAt(ctx, *pa.ExpectedLastSeq)
		if errors.Is(err, ErrNoMessage) {
			// An expectation of a message that does not exist: the server refuses the append
			// as a conflict, so no link is needed.
			continue
		}
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([][]byte, len(batch))
		}
		out[i] = h
	}
	return out, nil
}
