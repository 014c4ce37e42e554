// Package natstest starts embedded NATS servers with JetStream for tests of any package.
//
// The server listens on a random loopback port, stores JetStream data in a directory of
// t.TempDir() and syncs every write (sync_interval: always), like the production embedded
// server, so tests see the same durability and the same timings. It is shut down by
// t.Cleanup.
package natstest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options tunes a test server. The zero value is a single JetStream server.
type Options struct {
	// StoreDir is the JetStream store directory; "" = a fresh t.TempDir(). Pass the same
	// directory to a second RunServer to restart a server on the same data.
	StoreDir string
	// NoSync turns off sync-always (faster, for tests that do not care about durability).
	NoSync bool
	// DefaultBatchLimit keeps the server's default atomic batch limit (1000 messages)
	// instead of the register's, BatchLimit: a cluster whose operator left it out.
	DefaultBatchLimit bool
}

// BatchLimit is the atomic batch limit of a test server, as nird's embedded server and
// deploy/nats's configurations have it (eventstore.MaxBatchEvents, which this package cannot
// import: eventstore's own tests use it).
const BatchLimit = 3000

// RunServer starts an embedded NATS server with JetStream and returns it once it accepts
// connections. The server is shut down (and waited for) when the test ends.
func RunServer(tb testing.TB, o Options) *server.Server {
	tb.Helper()
	dir := o.StoreDir
	if dir == "" {
		dir = tb.TempDir()
	}
	opts := &server.Options{
		ServerName:             "natstest",
		Host:                   "127.0.0.1",
		Port:                   server.RANDOM_PORT,
		JetStream:              true,
		StoreDir:               dir,
		SyncAlways:             !o.NoSync,
		NoLog:                  true,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	if !o.DefaultBatchLimit {
		opts.JetStreamLimits.MaxBatchSize = BatchLimit
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("natstest: new server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		tb.Fatalf("natstest: server not ready within 10s")
	}
	tb.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// Connect connects a client to srv and closes it when the test ends.
func Connect(tb testing.TB, srv *server.Server, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		tb.Fatalf("natstest: connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// FlipInBlock flips a byte in the middle of raw, a message's data as stored, in the first
// block file of stream in the JetStream store directory storeDir (the server stopped): a
// failing disk. The server then answers the record as no message (its checksum fails).
func FlipInBlock(tb testing.TB, storeDir, stream string, raw []byte) {
	tb.Helper()
	blk := filepath.Join(storeDir, "jetstream", "$G", "streams", stream, "msgs", "1.blk")
	b, err := os.ReadFile(blk)
	if err != nil {
		tb.Fatal(err)
	}
	at := bytes.Index(b, raw)
	if at < 0 || bytes.Contains(b[at+1:], raw) {
		tb.Fatalf("the message is not in %s's block once", stream)
	}
	b[at+len(raw)/2] ^= 0x01
	if err := os.WriteFile(blk, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// CutBlock cuts the first block file of stream in the JetStream store directory storeDir (the
// server stopped) to half its length: a torn write. The server drops what it lost at start,
// with a warning of its own, and counts it no more.
func CutBlock(tb testing.TB, storeDir, stream string) {
	tb.Helper()
	blk := filepath.Join(storeDir, "jetstream", "$G", "streams", stream, "msgs", "1.blk")
	b, err := os.ReadFile(blk)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(blk, b[:len(b)/2], 0o600); err != nil {
		tb.Fatal(err)
	}
}

// FlipMiddle flips a bit of the byte in the middle of the file at path (a store's metadata
// file, say): a failing disk. It returns the error of reading or writing the file.
func FlipMiddle(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return os.ErrInvalid
	}
	b[len(b)/2] ^= 0x20
	return os.WriteFile(path, b, 0o600)
}
