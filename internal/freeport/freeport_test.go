package freeport

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// Ports come from below the kernel's ephemeral range, are free (Listen holds them, Port's
// can be bound again) and differ.
func TestListen_BelowTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 20 {
		l, err := Listen()
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		p := l.Addr().(*net.TCPAddr).Port
		if p >= low || p < 1024 || seen[p] {
			t.Fatalf("port %d: want a new one in [1024, %d)", p, low)
		}
		seen[p] = true
	}
	p, err := Port()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("Port gave %d, which cannot be bound: %v", p, err)
	}
	l.Close()
}

// Retry starts again only while a port was taken, at most three times in all; WaitLog tells
// an exited process (quoting its log, so that Taken sees why) from a ready one.
func TestRetry_OnlyWhileAPortWasTaken(t *testing.T) {
	inUse := &net.OpError{Op: "listen", Net: "tcp", Err: &os.SyscallError{Syscall: "bind", Err: syscall.EADDRINUSE}}
	for _, tc := range []struct {
		name  string
		errs  []error
		calls int
		fails bool
	}{
		{"taken once", []error{inUse, nil}, 2, false},
		{"taken, quoted in a log", []error{errors.New("nats-server exited: [1] Error listening on router port: 127.0.0.1:4: address already in use"), nil}, 2, false},
		{"taken every time", []error{inUse, inUse, inUse, nil}, 3, true},
		{"another error", []error{errors.New("no such file"), nil}, 1, true},
	} {
		calls := 0
		err := Retry(func(attempt int) error {
			calls++
			if attempt != calls {
				t.Errorf("%s: attempt %d on call %d", tc.name, attempt, calls)
			}
			return tc.errs[attempt-1]
		})
		if calls != tc.calls || (err != nil) != tc.fails {
			t.Errorf("%s: %d calls, %v; want %d calls, failing %v", tc.name, calls, err, tc.calls, tc.fails)
		}
	}
	done := make(chan struct{})
	close(done)
	log := func() string { return "bind: address already in use" }
	if err := WaitLog(context.Background(), log, "Server is ready", done); !Taken(err) {
		t.Errorf("an exited process: %v, want its log quoted", err)
	}
	ready := func() string { return "...\nServer is ready\n" }
	if err := WaitLog(context.Background(), ready, "Server is ready", done); err != nil {
		t.Errorf("a ready process: %v", err)
	}
}
