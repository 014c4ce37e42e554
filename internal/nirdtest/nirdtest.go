// Package nirdtest runs the nird binary as a process for tests that must see it the way an
// operator does: built with go build, started with flags, killed with signals.
package nirdtest

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/internal/natsauth"
)

// NirdPackage is the import path of the server.
const NirdPackage = "github.com/introreg/nir/cmd/nird"

var versionRE = regexp.MustCompile(`^v[0-9]+$`)

var (
	binMu  sync.Mutex
	bins   = map[string]string{}
	binDir string
)

// Build compiles the command in package pkg once per test binary and returns its path.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if bin, ok := bins[pkg]; ok {
		return bin
	}
	name := path.Base(pkg)
	if versionRE.MatchString(name) { // github.com/nats-io/nats-server/v2 is nats-server
		name = path.Base(path.Dir(pkg))
	}
	bin := filepath.Join(binDirLocked(tb), name)
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	bins[pkg] = bin
	return bin
}

// binDirLocked is the directory of the binaries Build compiles, made on first use; binMu is
// held.
func binDirLocked(tb testing.TB) string {
	tb.Helper()
	if binDir == "" {
		dir, err := os.MkdirTemp("", "nir-test-bin")
		if err != nil {
			tb.Fatal(err)
		}
		binDir = dir
	}
	return binDir
}

// BuildAt compiles the command in package pkg as it was at commit (of this module's git
// history), once per test binary, and returns its path: tests of an older nird beside the
// current one (a rolling upgrade). The commit's tree is taken with git archive into a
// temporary directory, so the repository and its work tree are left as they are. The test
// is skipped when the history does not hold the commit (a shallow clone, a source archive
// without .git).
func BuildAt(tb testing.TB, commit, pkg string) string {
	tb.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	key := pkg + "@" + commit
	if bin, ok := bins[key]; ok {
		return bin
	}
	root := workTree(tb)
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		tb.Skipf("the git history does not hold commit %s (a shallow clone?): %v %s", commit, err, out)
	}
	src := tb.TempDir()
	extract := exec.Command("sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", root, commit, src)
	if out, err := extract.CombinedOutput(); err != nil {
		tb.Fatalf("git archive %s: %v\n%s", commit, err, out)
	}
	bin := filepath.Join(binDirLocked(tb), path.Base(pkg)+"-"+commit)
	// -trimpath: the build cache then serves the packages that did not change since
	// commit from a build of another temporary directory (a second run builds in seconds).
	build := exec.Command("go", "build", "-trimpath", "-o", bin, pkg)
	build.Dir = src
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s at %s: %v\n%s", pkg, commit, err, out)
	}
	tb.Logf("built %s at %s in %v", pkg, commit, time.Since(start).Round(time.Second))
	bins[key] = bin
	return bin
}

// workTree is the top of the git work tree, found from the test's directory (a package of
// this module): git archive run in a subdirectory would take that subdirectory alone. The
// test is skipped outside a work tree (a source archive, or no git).
func workTree(tb testing.TB) string {
	tb.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		tb.Skipf("not in a git work tree (a source archive, or no git): %v", err)
	}
	return strings.TrimSpace(string(top))
}

// Main runs the tests of a package that starts nird or other commands through Build, then
// removes the binaries Build compiled, and returns the exit code; call it from the
// package's TestMain: os.Exit(nirdtest.Main(m)). Without it each test binary left about
// 100 MB in the temporary directory, every run (352 directories, 18 GB, on the project's
// machine on 2026-12-06).
func Main(m *testing.M) int {
	code := m.Run()
	binMu.Lock()
	dir := binDir
	binDir, bins = "", map[string]string{}
	binMu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
	return code
}

var (
	servingRE  = regexp.MustCompile(`msg=serving http=(\S+)`)
	adminRE    = regexp.MustCompile(`msg=serving admin=(\S+)`)
	startingRE = regexp.MustCompile(`msg=starting nats=(\S+)`)
)

// Nird is a running nird process.
type Nird struct {
	Cmd *exec.Cmd
	// Addr and Admin are the API and admin listen addresses (host:port), NATS the client
	// URL of its NATS server ("" without a listener), Data its data directory.
	Addr, Admin, NATS, Data string
	// Done is closed when the process has exited.
	Done chan struct{}

	mu   sync.Mutex // guards logs
	logs []string
}

// URL is the API's base URL.
func (n *Nird) URL() string { return "http://" + n.Addr }

// AdminURL is the admin endpoint's base URL.
func (n *Nird) AdminURL() string { return "http://" + n.Admin }

// Logs returns the lines nird has written to stderr so far.
func (n *Nird) Logs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.logs...)
}

// startTimeout is how long Start waits for nird to serve. nird loads what its args ask
// before it serves: with --demo 2000 it served after 3-8 s on an idle 2-core machine and
// 24-28 s under two busy loops, and a run of TestHTTP_SnapshotFlood under load failed at the
// 60 s this was. No test measures the start with it; one that does has its own bound.
const startTimeout = 3 * time.Minute

// Start runs nird with the API, admin and NATS listeners on random loopback ports plus
// args (at least --data), and waits until all three serve (args may switch the NATS
// listener off with --nats-listen ""). nird is killed when the test
// ends, and its log is shown if the test failed.
func Start(t *testing.T, args ...string) *Nird {
	t.Helper()
	return StartBin(t, Build(t, NirdPackage), args...)
}

// StartBin is Start with the nird binary bin, e.g. an older build from BuildAt.
func StartBin(t *testing.T, bin string, args ...string) *Nird {
	t.Helper()
	args = append([]string{"--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, args...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &Nird{Cmd: cmd, Done: make(chan struct{})}
	for i, a := range args {
		if (a == "--data" || a == "-data") && i+1 < len(args) {
			n.Data = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--data="); ok {
			n.Data = v
		}
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled, started := false, false
		for sc.Scan() {
			line := sc.Text()
			n.mu.Lock()
			n.logs = append(n.logs, line)
			for re, dst := range map[*regexp.Regexp]*string{servingRE: &n.Addr, adminRE: &n.Admin, startingRE: &n.NATS} {
				if m := re.FindStringSubmatch(line); m != nil {
					*dst = m[1]
				}
			}
			if startingRE.MatchString(line) {
				started = true
				if n.NATS == `""` {
					n.NATS = ""
				}
			}
			up := n.Addr != "" && n.Admin != "" && started
			n.mu.Unlock()
			if up && !signalled {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { _ = cmd.Wait(); close(n.Done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-n.Done
		if t.Failed() {
			for _, l := range n.Logs() {
				t.Log("nird: " + l)
			}
		}
	})
	select {
	case <-ready:
	case <-n.Done:
		t.Fatal("nird exited before serving")
	case <-time.After(startTimeout):
		t.Fatalf("nird did not serve within %v", startTimeout)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n
}

// NATSContext is the nats CLI context file nird wrote for its embedded server's TCP user
// ("reader" or a case system of --nats-case-systems).
func (n *Nird) NATSContext(user string) string {
	return filepath.Join(n.Data, "nats", user+".json")
}

// ConnectNATS connects to nird's embedded server as user, with the credentials and inbox
// prefix of its context file, and closes the connection when the test ends.
func (n *Nird) ConnectNATS(t testing.TB, user string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	url, copts, err := natsauth.ReadContext(n.NATSContext(user))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, append(copts, opts...)...)
	if err != nil {
		t.Fatalf("connect to nird's NATS as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Stop sends sig and waits for the process to exit.
func (n *Nird) Stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Done:
	case <-time.After(30 * time.Second):
		t.Fatalf("nird did not exit within 30s of %v", sig)
	}
}
