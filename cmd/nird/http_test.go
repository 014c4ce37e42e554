package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/introreg/nir/internal/syncbuf"
)

// startHTTP serves h as nird serves its API (serveHTTP, with at most maxConns connections)
// until the test ends, and returns its address and what it logs.
func startHTTP(t *testing.T, h http.Handler, maxConns int) (string, *syncbuf.Buffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncbuf.Buffer)
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveHTTP("http", ln, h, EdgeConfig{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second}, maxConns, nil, time.Second, log)(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), logs
}

// net/http's own log (here a handler's panic outside Connect) goes to nird's log with
// national ids masked; before, it went to stderr as it was. Each panic is logged (a bug,
// with its stack), though net/http's other lines are at most once a minute.
func TestServeHTTP_ServerLogMasksNationalIDs(t *testing.T) {
	const id = "12849000290"
	addr, logs := startHTTP(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("bug with " + id) }), 8)
	for range 2 {
		if res, err := http.Get("http://" + addr + "/"); err == nil {
			res.Body.Close()
		}
	}
	for deadline := time.Now().Add(10 * time.Second); strings.Count(logs.String(), "panic serving") < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the two panics are not in nird's log:\n%s", logs.String())
		}
	}
	if strings.Contains(logs.String(), id) {
		t.Errorf("nird's log holds the national id:\n%s", logs.String())
	}
}

// TestServeHTTP_ProtocolErrorsFloodTheLog: any client that reaches the API's port, without a
// token, opens a connection in HTTP/2 without TLS (as gRPC does) and sends a frame HTTP/2
// forbids: net/http logs a connection error for each, and nird wrote each as a line
// ("http2: server connection error … PROTOCOL_ERROR"), 100 lines for 100 connections of
// 33 bytes (2026-12-07). Now net/http's lines other than a handler's panic are logged at
// most once a minute, with how many there were.
func TestServeHTTP_ProtocolErrorsFloodTheLog(t *testing.T) {
	const conns = 100
	addr, logs := startHTTP(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), conns+1)
	// The client preface, then a SETTINGS frame on stream 1 (SETTINGS belong to stream 0).
	const bad = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x00\x04\x00\x00\x00\x00\x01"
	var wg sync.WaitGroup
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(bad)); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.Copy(io.Discard, c) // until the server closes it (after its GOAWAY)
		})
	}
	wg.Wait()
	out := logs.String()
	if lines := strings.Count(out, "level=WARN"); lines < 1 || lines > 2 || !strings.Contains(out, "PROTOCOL_ERROR") {
		t.Errorf("%d connections with a forbidden HTTP/2 frame made %d warnings (want 1, naming the error):\n%.2000s", conns, lines, out)
	}
}

// TestHTTPErrorLog_PanicByItsPrefix: only net/http's own panic lines, which begin "http:
// panic serving" or "http2: panic serving", escape the once-a-minute bound. A line that
// quotes a client's bytes (HTTP/2 over TLS logs a wrong preface as `bogus greeting "…"`, 24
// bytes the client chose) matched "panic serving" anywhere in it, so a client could write
// one line a connection again.
func TestHTTPErrorLog_PanicByItsPrefix(t *testing.T) {
	var logs syncbuf.Buffer
	l := httpErrorLog(slog.New(slog.NewTextHandler(&logs, nil)))
	for range 50 {
		l.Printf("http2: server: error reading preface from client 10.0.0.1:4711: bogus greeting %q", "panic serving 123456789")
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("50 lines quoting a client's \"panic serving\" logged as %d lines, want 1:\n%.1000s", n, logs.String())
	}
	l.Printf("http: panic serving 10.0.0.1:4711: bug\ngoroutine 1 [running]:")
	l.Printf("http2: panic serving 10.0.0.1:4711: bug\ngoroutine 1 [running]:")
	if n := strings.Count(logs.String(), "panic serving 10.0.0.1"); n != 2 {
		t.Errorf("net/http's two panics logged %d times, want each:\n%.1000s", n, logs.String())
	}
}
