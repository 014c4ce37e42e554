package api

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPersonReads(t *testing.T) {
	// blocked reports whether principal's read waits with the reads held. A read that
	// should wait is given 50 ms (mustWait): one that runs instead returns at once, so the
	// check fails for it however loaded the machine. A read that should run is given 10 s
	// (mayRun): acquire's select picks at random between a free slot and a context already
	// done, and a goroutine stalled 50 ms on a loaded machine under the race detector (not
	// rare) found its 50 ms context done beside the free slot; a read that really waits still
	// waits out the 10 s and fails the check.
	const (
		mustWait = 50 * time.Millisecond
		mayRun   = 10 * time.Second
	)
	blocked := func(t *testing.T, r *PersonReads, principal string, wait time.Duration) bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		done, err := r.acquire(ctx, principal)
		if err == nil {
			done()
			return false
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("acquire: %v, want the context's error", err)
		}
		return true
	}
	// twoForOslo starts two reads for oslo on r, where a principal may have two of four: a
	// third for oslo waits, bergen's runs.
	twoForOslo := func(t *testing.T, r *PersonReads) []func() {
		t.Helper()
		var dones []func()
		for range 2 {
			done, err := r.acquire(context.Background(), "oslo")
			if err != nil {
				t.Fatal(err)
			}
			dones = append(dones, done)
		}
		if !blocked(t, r, "oslo", mustWait) {
			t.Errorf("oslo's third read ran with two of its own running, want it to wait")
		}
		if blocked(t, r, "bergen", mayRun) {
			t.Errorf("bergen's read waited for oslo's")
		}
		return dones
	}
	t.Run("PerPrincipal", func(t *testing.T) {
		r := NewPersonReads(4, 2)
		dones := twoForOslo(t, r)
		dones[0]()
		if blocked(t, r, "oslo", mayRun) {
			t.Errorf("oslo's read waited with one of its own running")
		}
		dones[1]()
		if n := len(r.principals); n != 0 {
			t.Errorf("%d principals remembered with no reads, want none", n)
		}
	})
	t.Run("Total", func(t *testing.T) {
		r := NewPersonReads(2, 0) // one a principal
		a, err := r.acquire(context.Background(), "oslo")
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.acquire(context.Background(), "bergen")
		if err != nil {
			t.Fatal(err)
		}
		if !blocked(t, r, "tromso", mustWait) {
			t.Errorf("a third principal's read ran with two running at most, want it to wait")
		}
		// The waiting read that gave up holds no slot.
		a()
		if blocked(t, r, "tromso", mayRun) {
			t.Errorf("tromso's read waited with one running")
		}
		b()
		if len(r.all) != 0 || len(r.principals) != 0 {
			t.Errorf("%d slots held and %d principals remembered with no reads, want none", len(r.all), len(r.principals))
		}
	})
	// nird takes the default (NewPersonReads(0, 0) in cmd/nird): half the slots a
	// principal, so that one kommune reading persons as fast as it can leaves the other half
	// to the rest. Mutation testing (2026-12-07): a default of every slot a principal passed
	// every test.
	t.Run("DefaultPerPrincipal", func(t *testing.T) {
		r := NewPersonReads(4, 0) // half the slots a principal
		dones := twoForOslo(t, r)
		for _, done := range dones {
			done()
		}
	})
	t.Run("WaitsForItsTurn", func(t *testing.T) {
		r := NewPersonReads(1, 1)
		done, err := r.acquire(context.Background(), "oslo")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan error)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d, err := r.acquire(ctx, "bergen")
			if err == nil {
				d()
			}
			got <- err
		}()
		for waiting := false; !waiting; { // until bergen waits
			r.mu.Lock()
			waiting = r.principals["bergen"] != nil
			r.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
		done()
		if err := <-got; err != nil {
			t.Errorf("bergen's read, once oslo's ended: %v", err)
		}
	})
}
