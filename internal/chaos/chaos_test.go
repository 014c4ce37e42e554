package chaos

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	bins    Binaries
	binErr  error
	binDir  string
)

// binaries builds nats-server and nird once per test binary (TestMain removes them).
func binaries(t *testing.T) Binaries {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "nir-chaos-bin"); binErr == nil {
			bins, binErr = Build(context.Background(), binDir)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// TestChaos is the CI run: 3 NATS nodes from deploy/nats (sync_interval: always), 3 nird,
// 6 clients, and a minute of faults, every kind at least once; the checker must find
// nothing. NIR_CHAOS_DURATION lengthens the fault phase, NIR_CHAOS_OUT keeps the report.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of processes for about two minutes; run without -short")
	}
	d := 60 * time.Second
	if s := os.Getenv("NIR_CHAOS_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if out := os.Getenv("NIR_CHAOS_OUT"); out != "" {
		dir = out
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	v, err := Run(context.Background(), Options{Dir: dir, Bins: binaries(t), Duration: d, Hold: 4 * time.Second, Seed: uint64(time.Now().UnixNano()), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + v.Summary())
	if !v.Valid {
		t.Errorf("the checker found %d anomalies (history in %s)", len(v.Anomalies), dir)
		logTails(t, dir)
	}
	// Every kind is tried in the first minute; one the cluster's state prevents (no stream
	// leader to kill during an election) is logged, more than two is a broken nemesis.
	var missing []string
	for _, kind := range AllFaults {
		if v.Faults[kind] == 0 {
			missing = append(missing, kind)
		}
	}
	if len(missing) > 0 {
		t.Logf("not injected: %v", missing)
	}
	if d >= 60*time.Second && len(missing) > 2 {
		t.Errorf("%d kinds of fault not injected: %v", len(missing), missing)
	}
	if v.Acknowledged < 200 {
		t.Errorf("only %d events acknowledged: the workload did not run", v.Acknowledged)
	}
}

// tlog writes the harness's log to the test log.
type tlog struct{ t *testing.T }

func (l tlog) Write(b []byte) (int, error) {
	l.t.Log(string(b[:len(b)-1]))
	return len(b), nil
}

// logTails logs each nird's last warnings and errors, and what its regelmotor did: the
// directory is a temporary one, gone when CI reports the failure.
func logTails(t *testing.T, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "nird-*", "log"))
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var keep []string
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "regelmotor") {
				keep = append(keep, line)
			}
		}
		t.Logf("%s, last %d of %d warnings, errors and regelmotor lines:\n%s", f, min(40, len(keep)), len(keep), strings.Join(keep[max(0, len(keep)-40):], "\n"))
	}
}
