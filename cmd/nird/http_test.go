package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/internal/syncbuf"
)

// net/http's own log (here a handler's panic outside Connect) goes to nird's log with
// national ids masked; before, it went to stderr as it was.
func TestServeHTTP_ServerLogMasksNationalIDs(t *testing.T) {
	const id = "12849000290"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("bug with " + id) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveHTTP("http", ln, h, EdgeConfig{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second}, 8, nil, time.Second, log)(ctx)
	}()
	defer func() { cancel(); <-done }()
	if res, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		res.Body.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "panic serving"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the panic is not in nird's log:\n%s", logs.String())
		}
	}
	if strings.Contains(logs.String(), id) {
		t.Errorf("nird's log holds the national id:\n%s", logs.String())
	}
}
