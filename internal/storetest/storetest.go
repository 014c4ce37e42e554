// Package storetest holds test helpers for the event store's data keys, shared by the tests
// of eventstore, internal/backup and internal/verify: a store in a directory with a short
// request timeout (the damage tests' waits end after about one), a random master key, and
// the data-key bucket as a client of the store's server sees it.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/sealing"
)

// OpenAt opens an embedded store in dir with the request timeout and the stream metadata
// given, and closes it when the test ends.
func OpenAt(tb testing.TB, dir string, timeout time.Duration, metadata map[string]string) *eventstore.Store {
	tb.Helper()
	s, err := eventstore.Open(context.Background(), eventstore.Config{Dir: dir, RequestTimeout: timeout, Metadata: metadata})
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
