// Package storetest holds test helpers for the event store, shared by the tests of
// eventstore, internal/backup and internal/verify: a store in a directory with a short
// request timeout (the damage tests' waits end after about one), a random master key, the
// data-key bucket as a client of the store's server sees it, and checkpoints made on demand.
package storetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/sealing"
)

// OpenAt opens an embedded store in dir with the request timeout and the stream metadata
// given, and closes it when the test ends.
func OpenAt(tb testing.TB, dir string, timeout time.Duration, metadata map[string]string) *eventstore.Store {
	tb.Helper()
	// The opening's stream checks have a minute (the embedded server's start has a bound of
	// its own): on a loaded machine they can take longer than the short timeout the test's
	// reads are given (a CI run under load failed TestBackup_DamagedKey there, on opening,
	// before the test).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := eventstore.Open(ctx, eventstore.Config{Dir: dir, RequestTimeout: timeout, Metadata: metadata})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// NewMaster makes a random master key.
func NewMaster(tb testing.TB) *sealing.Key {
	tb.Helper()
	b := make([]byte, sealing.KeySize)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	k, err := sealing.NewKey(b)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// KeyBucket is the data-key bucket of s, as a client of the store's server sees it.
func KeyBucket(tb testing.TB, s *eventstore.Store) jetstream.KeyValue {
	tb.Helper()
	js, err := jetstream.New(s.Conn())
	if err != nil {
		tb.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), eventstore.KeyBucket)
	if err != nil {
		tb.Fatal(err)
	}
	return kv
}

// StoredKey is the entry id of the data-key bucket as stored (wrapped with the master key).
func StoredKey(tb testing.TB, s *eventstore.Store, id string) []byte {
	tb.Helper()
	e, err := KeyBucket(tb, s).Get(context.Background(), id)
	if err != nil {
		tb.Fatalf("get %s: %v", id, err)
	}
	return bytes.Clone(e.Value())
}

// CheckpointThrough runs the checkpointer on s (signing with key, if not nil) until it has
// made a checkpoint through stream sequence through, and returns that checkpoint; none within
// 30 seconds fails the test.
func CheckpointThrough(tb testing.TB, s *eventstore.Store, through uint64, key ed25519.PrivateKey) *nirv1.Checkpoint {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	made := make(chan *nirv1.Checkpoint, 1)
	go s.RunCheckpoints(ctx, eventstore.CheckpointOptions{Every: 1, Poll: 5 * time.Millisecond, Key: key,
		Made: func(cp *nirv1.Checkpoint) {
			if cp.GetStreamSeq() >= through {
				select {
				case made <- cp:
				default:
				}
			}
		}})
	select {
	case cp := <-made:
		return cp
	case <-time.After(30 * time.Second):
		tb.Fatalf("no checkpoint through sequence %d within 30s", through)
		return nil
	}
}
