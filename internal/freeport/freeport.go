// Package freeport finds loopback ports for processes a test or the chaos harness starts
// later: ports that no outgoing connection takes in the meantime. Another process may still
// bind one first (another package's test that found it free too): [Retry] starts the
// processes again on new ports then, and [WaitLog] tells a process that bound its ports
// from another one answering on them.
package freeport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Listen listens on a free port of 127.0.0.1 below the kernel's ephemeral range. A port the
// kernel picks (":0") is from that range, and once closed any outgoing connection may take
// it before the process it was picked for binds it: a CI run saw a nird of the chaos harness
// stop with "--admin: bind: address already in use" six seconds after its ports were picked,
// while other packages' tests ran. A process restarted on the same port is safe the same way.
func Listen() (net.Listener, error) {
	low := ephemeralLow()
	from := max(1024, low-12000)
	var last error
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(from+rand.IntN(low-from)))
		if err == nil {
			return l, nil
		}
		last = err
	}
	return nil, fmt.Errorf("freeport: no free port below %d: %w", low, last)
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default where it
// cannot be read).
func ephemeralLow() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 2048 {
				return v
			}
		}
	}
	return 32768
}

// Port returns a port that Listen found free, closed again for the caller's process to bind.
func Port() (int, error) {
	l, err := Listen()
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// attempts is how many times Retry starts processes whose port was taken.
const attempts = 3

// Retry calls start (attempt 1, 2, …) until it succeeds, at most three times, and again only
// while its error says a port was in use (Taken): a port found free can be bound by another
// process before the one it was found for binds it (a CI run: "Error listening on router
// port ... address already in use"), and new ports are as good. Before it returns such an
// error, start stops what it started; on the next attempt it finds new ports.
func Retry(start func(attempt int) error) error {
	for attempt := 1; ; attempt++ {
		err := start(attempt)
		if err == nil || attempt == attempts || !Taken(err) {
			return err
		}
	}
}

// Taken reports whether err says that an address was in use: a bind's error, or a
// process's log quoted in it.
func Taken(err error) bool {
	return err != nil && (errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use"))
}

// WaitLog waits until log (what a started process wrote so far) contains ready, the line the
// process writes once it has bound its ports: a connection to a port alone could reach
// another process that took it. It fails when done closes first (the process exited) or ctx
// ends; the error quotes the log, so that Taken sees a port in use.
func WaitLog(ctx context.Context, log func() string, ready string, done <-chan struct{}) error {
	for !strings.Contains(log(), ready) {
		select {
		case <-done:
			return fmt.Errorf("exited before it was ready:\n%s", log())
		case <-ctx.Done():
			return fmt.Errorf("not ready (%w):\n%s", ctx.Err(), log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
