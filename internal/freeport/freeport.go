// Package freeport finds loopback ports for processes a test or the chaos harness starts
// later: ports that no outgoing connection takes in the meantime.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
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
