package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHTTP_IdleConnectionsHoldEveryConnSlot: a client without a token fills an address's
// connection cap with keep-alive connections, each after one cheap request (a 404 on the
// API, /healthz on the admin address), and keeps them open and idle. Another client
// (a case system; the kubelet's probe) must still be answered: the listener closes the
// longest-idle connection to admit it. Before, the listener accepted nothing while the cap
// was reached, so the other client waited in the kernel's backlog for --idle-timeout (2
// min); 1024 requests per 2 min kept the API closed, 32 the admin address and its probes.
// The server's timeouts are the defaults.
func TestHTTP_IdleConnectionsHoldEveryConnSlot(t *testing.T) {
	e := EdgeConfig{ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: DefaultReadTimeout, WriteTimeout: DefaultWriteTimeout, IdleTimeout: DefaultIdleTimeout}
	notFound := http.HandlerFunc(http.NotFound)
	admin := adminHandler(newMetrics(), func(context.Context) error { return nil }, false)
	for _, tc := range []struct {
		name     string
		h        http.Handler
		maxConns int
		path     string
	}{
		{"api", notFound, 16, "/nothing"},
		{"admin", admin, adminMaxConns, "/healthz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			var evicted atomic.Int64
			go func() {
				done <- serveHTTP(tc.name, ln, tc.h, e, tc.maxConns, func() { evicted.Add(1) }, time.Second, slog.New(slog.DiscardHandler))(ctx)
			}()
			defer func() { cancel(); <-done }()
			addr := ln.Addr().String()
			idle := make([]net.Conn, tc.maxConns)
			for i := range idle {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write([]byte("GET " + tc.path + " HTTP/1.1\r\nHost: nird\r\n\r\n")); err != nil {
					t.Fatal(err)
				}
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				idle[i] = c
			}
			// Generous: the answer comes at once now, and never before the idle timeout
			// before.
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			start := time.Now()
			res, err := client.Get("http://" + addr + "/healthz")
			if err != nil {
				t.Fatalf("another client is not served while %d idle connections of one client are open: %v after %v", tc.maxConns, err, time.Since(start))
			}
			res.Body.Close()
			// One idle connection was closed for it. Which one is the listener's to say
			// (TestLimitListener_IdleMakesRoom: the longest idle), and under load the server
			// may mark the connections idle in another order than the answers arrived.
			var closed atomic.Int64
			var wg sync.WaitGroup
			deadline := time.Now().Add(3 * time.Second)
			for _, c := range idle {
				_ = c.SetReadDeadline(deadline)
				wg.Go(func() {
					if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
						closed.Add(1)
					}
				})
			}
			wg.Wait()
			if n := closed.Load(); n != 1 {
				t.Errorf("%d of the %d idle connections closed by nird, want 1", n, len(idle))
			}
			if n := evicted.Load(); n != 1 {
				t.Errorf("%d connections counted closed to admit another, want 1", n)
			}
		})
	}
}
