package deploytest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestRunProcesses_PortTaken: a port found free may be bound by another package's test
// before the server binds it, and the cluster's first server then stops with "address
// already in use" (a CI run on 2026-12-07, TestNATS_Deploy). RunProcesses starts the
// servers again on other ports; before, the test failed there.
func TestRunProcesses_PortTaken(t *testing.T) {
	SetCredentials(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	real, calls := freePort, 0
	t.Cleanup(func() { freePort = real })
	freePort = func(tb testing.TB) int {
		calls++
		if calls == 1 {
			return taken.Addr().(*net.TCPAddr).Port
		}
		return real(tb)
	}
	procs := RunProcesses(t, BuildServer(t), "cluster-1.conf", "cluster-2.conf", "cluster-3.conf")
	for _, p := range procs {
		select {
		case <-p.Done:
			t.Fatalf("%s exited after a port was taken:\n%s", p.URL, p.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if strings.HasSuffix(p.URL, fmt.Sprintf(":%d", taken.Addr().(*net.TCPAddr).Port)) {
			t.Errorf("%s is on the taken port", p.URL)
		}
	}
	if calls < 2 {
		t.Errorf("the taken port was never handed out (%d ports asked for)", calls)
	}
}
