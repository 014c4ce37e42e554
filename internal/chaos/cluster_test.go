package chaos

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/introreg/nir/internal/freeport"
)

// TestCluster_PortTaken: a port found free may be bound by another package's test before the
// process it was found for binds it (a CI run: a nird of the harness stopped with "--admin:
// bind: address already in use"). Start starts the cluster again on other ports, and every
// process then runs, none on the taken port. Before, a node on a taken port exited while
// its two peers formed the cluster without it, and a nird on one failed the start.
func TestCluster_PortTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three nats-server and a nird process, twice; run without -short")
	}
	for _, tc := range []struct {
		name string
		nth  int // the taken port is the nth found: node ports come first (3 each), then each nird's API and admin
	}{
		{"node client port", 1},
		{"nird admin port", 3*3 + 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			port := taken.Addr().(*net.TCPAddr).Port
			calls := 0
			t.Cleanup(func() { listenFree = freeport.Listen })
			listenFree = func() (net.Listener, error) {
				calls++
				if calls == tc.nth {
					return unclosed{taken}, nil
				}
				return freeport.Listen()
			}
			c, err := NewCluster(ClusterOptions{Dir: t.TempDir(), Bins: binaries(t), Nirds: 1, Direct: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if calls < tc.nth {
				t.Fatalf("the taken port was never handed out (%d ports found)", calls)
			}
			time.Sleep(time.Second) // a process that cannot bind exits at once
			for i, n := range c.Nodes {
				if !c.NodeRunning(i) {
					t.Errorf("%s is not running after the start", n.Name)
				}
				for _, p := range []int{n.ClientPort, n.ClusterPort, n.HTTPPort} {
					if p == port {
						t.Errorf("%s is on the taken port", n.Name)
					}
				}
			}
			for k, n := range c.Nirds {
				if !c.NirdRunning(k) {
					t.Errorf("%s is not running after the start", n.Name)
				}
				if n.Admin == taken.Addr().String() || n.HTTP == taken.Addr().String() {
					t.Errorf("%s is on the taken port", n.Name)
				}
			}
		})
	}
}

// unclosed is a listener that the test closes, not the cluster.
type unclosed struct{ net.Listener }

func (unclosed) Close() error { return nil }
