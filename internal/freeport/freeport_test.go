package freeport

import (
	"net"
	"strconv"
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
