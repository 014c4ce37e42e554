package deploytest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/introreg/nir/internal/freeport"
	"github.com/introreg/nir/internal/nirdtest"
)

// ServerPackage is the nats-server command, at the version go.mod pins.
const ServerPackage = "github.com/nats-io/nats-server/v2"

// BuildServer compiles nats-server from the module go.mod pins, once per test binary, and
// returns its path: tests that must see the servers an operator runs start it as a process.
func BuildServer(tb testing.TB) string {
	tb.Helper()
	return nirdtest.Build(tb, ServerPackage)
}

var (
	loopbackPortRE = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)
	storeDirRE     = regexp.MustCompile(`(?m)^(\s*store_dir:\s*)"[^"]*"`)
)

// Process is a nats-server process started from a configuration of deploy/nats.
type Process struct {
	Cmd *exec.Cmd
	// URL is its client URL.
	URL  string
	Done chan struct{}

	mu  sync.Mutex
	log bytes.Buffer
}

// Log returns what the server wrote so far.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *Process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

// RunProcesses starts one nats-server process per file of deploy/nats (e.g. the three
// cluster-N.conf), from copies of the files (and of accounts.conf, which they include) in
// a temporary directory where every loopback port they name (clients, routes, monitoring)
// is moved to a free one, consistently across the files, and the JetStream store is a
// temporary directory. The passwords must be in the environment (SetCredentials). It
// returns once every server says it is ready; a cluster's JetStream may still be electing
// its leader. A server that cannot bind a port another process took meanwhile is started
// again with the others on new ports. The processes are stopped when the test ends, and their logs shown
// if it failed.
func RunProcesses(tb testing.TB, bin string, files ...string) []*Process {
	tb.Helper()
	var procs []*Process
	err := freeport.Retry(func(attempt int) error {
		if attempt > 1 {
			tb.Logf("a port was taken meanwhile; starting the servers again on others (attempt %d)", attempt)
		}
		var err error
		procs, err = runProcesses(tb, bin, files)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return procs
}

// runProcesses is one attempt of RunProcesses. It stops the servers it started before it
// returns an error.
func runProcesses(tb testing.TB, bin string, files []string) ([]*Process, error) {
	tb.Helper()
	dir := tb.TempDir()
	acc, err := os.ReadFile(filepath.Join(Dir(), "accounts.conf"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.conf"), acc, 0o600); err != nil {
		tb.Fatal(err)
	}
	texts := make([]string, len(files))
	moved := map[string]string{}
	for i, f := range files {
		b, err := os.ReadFile(filepath.Join(Dir(), f))
		if err != nil {
			tb.Fatal(err)
		}
		texts[i] = string(b)
		for _, m := range loopbackPortRE.FindAllStringSubmatch(texts[i], -1) {
			if _, ok := moved[m[1]]; !ok {
				moved[m[1]] = fmt.Sprint(freePort(tb))
			}
		}
	}
	procs := make([]*Process, len(files))
	for i, f := range files {
		var client string
		text := loopbackPortRE.ReplaceAllStringFunc(texts[i], func(s string) string {
			return "127.0.0.1:" + moved[strings.TrimPrefix(s, "127.0.0.1:")]
		})
		// The client port is the first top-level listen line.
		for line := range strings.SplitSeq(text, "\n") {
			if rest, ok := strings.CutPrefix(line, "listen: "); ok && client == "" {
				client = strings.TrimSpace(rest)
			}
		}
		if client == "" {
			tb.Fatalf("%s: no top-level listen line", f)
		}
		text = storeDirRE.ReplaceAllString(text, fmt.Sprintf(`${1}"%s"`, filepath.Join(dir, fmt.Sprintf("store-%d", i))))
		conf := filepath.Join(dir, f)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		procs[i] = startProcess(tb, bin, conf, client)
	}
	for _, p := range procs {
		if err := waitListening(p); err != nil {
			for _, q := range procs {
				q.stop()
			}
			return nil, err
		}
	}
	return procs, nil
}

func startProcess(tb testing.TB, bin, conf, client string) *Process {
	tb.Helper()
	p := &Process{URL: "nats://" + client, Done: make(chan struct{})}
	p.Cmd = exec.Command(bin, "-c", conf)
	p.Cmd.Stdout, p.Cmd.Stderr = p, p
	if err := p.Cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = p.Cmd.Wait(); close(p.Done) }()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			tb.Logf("nats-server %s:\n%s", filepath.Base(conf), p.Log())
		}
	})
	return p
}

// stop ends the server: SIGTERM, then a kill after 10 s.
func (p *Process) stop() {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(10 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.Done
	}
}

// waitListening waits until p says it is ready (every listener bound), or says why it never
// will.
func waitListening(p *Process) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := freeport.WaitLog(ctx, p.Log, "Server is ready", p.Done); err != nil {
		return fmt.Errorf("nats-server at %s: %w", p.URL, err)
	}
	return nil
}

// URLs returns the processes' client URLs, comma-separated.
func URLs(procs []*Process) string {
	urls := make([]string, len(procs))
	for i, p := range procs {
		urls[i] = p.URL
	}
	return strings.Join(urls, ",")
}
