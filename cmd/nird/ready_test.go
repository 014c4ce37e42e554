package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestReadiness: /readyz says ready once the models are within readyLag of the stream, stays
// ready within staleLag, and is not ready while the live models are rebuilt from the stream
// and not served: the old checkpoint stays meanwhile, so the lag alone said ready (found by a
// review on 2026-12-06) while every read was refused as Unavailable.
func TestReadiness(t *testing.T) {
	var last, ckpt uint64
	unserved := false
	r := &readiness{
		connected:  func() bool { return true },
		lastSeq:    func(context.Context) (uint64, error) { return last, nil },
		checkpoint: func() uint64 { return ckpt },
		unserved:   func() bool { return unserved },
	}
	ctx := context.Background()
	last, ckpt = 1000, 1000-readyLag-1
	if err := r.check(ctx); err == nil || !strings.Contains(err.Error(), "catching up") {
		t.Fatalf("%d events behind at start: %v, want catching up", readyLag+1, err)
	}
	ckpt = 1000 - readyLag
	if err := r.check(ctx); err != nil {
		t.Fatalf("%d events behind: %v, want ready", readyLag, err)
	}
	last = ckpt + staleLag
	if err := r.check(ctx); err != nil {
		t.Fatalf("%d events behind once ready: %v, want ready", staleLag, err)
	}
	last, ckpt = 1000, 1000
	unserved = true
	if err := r.check(ctx); err == nil || !strings.Contains(err.Error(), "not served") {
		t.Fatalf("models not served, none behind: %v, want not ready", err)
	}
	unserved = false
	if err := r.check(ctx); err != nil {
		t.Fatalf("models served again: %v", err)
	}
	// Found on 2026-12-07 by mutation testing: the stale bound and the NATS connection could
	// be dropped from the check without this test failing.
	last = ckpt + staleLag + 1
	if err := r.check(ctx); err == nil || !strings.Contains(err.Error(), "behind the stream") {
		t.Fatalf("%d events behind once ready: %v, want not ready (stuck)", staleLag+1, err)
	}
	last = ckpt
	connected := false
	r.connected = func() bool { return connected }
	if err := r.check(ctx); err == nil || !strings.Contains(err.Error(), "NATS") {
		t.Fatalf("not connected to NATS: %v, want not ready", err)
	}
	connected = true
	r.lastSeq = func(context.Context) (uint64, error) { return 0, errors.New("no responders") }
	if err := r.check(ctx); err == nil || !strings.Contains(err.Error(), "no responders") {
		t.Fatalf("the stream's last sequence unknown: %v, want not ready", err)
	}
}
