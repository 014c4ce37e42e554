package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/nirdtest"
)

// TestNird_StreamMismatchReportedNotChanged: a stream whose settings were weakened (an age
// limit, a per-person limit) is left as it is by nird, which says so in its log and on
// /metrics; nird --repair-stream, the operator's explicit step, puts the settings back.
func TestNird_StreamMismatchReportedNotChanged(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	// The stream as a careless operator left it, in the embedded server's store.
	weaken := func(change func(c *jetstream.StreamConfig)) jetstream.StreamConfig {
		t.Helper()
		s, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(data, "jetstream")})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		js, err := jetstream.New(s.Conn())
		if err != nil {
			t.Fatal(err)
		}
		st, err := js.Stream(ctx, eventstore.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		c := st.CachedInfo().Config
		if change != nil {
			change(&c)
			if _, err := js.UpdateStream(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	weaken(func(c *jetstream.StreamConfig) { c.MaxAge, c.MaxMsgsPerSubject = 24*time.Hour*365*10, 1000 })

	n := nirdtest.Start(t, "--data", data)
	// The stream watch runs its first check right after the start.
	for deadline := time.Now().Add(60 * time.Second); metricValue(t, n, `nir_stream_check_ok`) != 1; {
		if time.Now().After(deadline) {
			t.Fatal("nir_stream_check_ok never became 1")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := metricValue(t, n, `nir_stream_config_mismatch{setting="max_age"}`); v != 1 {
		t.Errorf("max_age mismatch metric = %v, want 1", v)
	}
	if v := metricValue(t, n, `nir_stream_config_mismatch{setting="max_msgs_per_subject"}`); v != 1 {
		t.Errorf("max_msgs_per_subject mismatch metric = %v, want 1", v)
	}
	if v := metricValue(t, n, `nir_stream_config_mismatch{setting="deny_delete"}`); v != 0 {
		t.Errorf("deny_delete mismatch metric = %v, want 0", v)
	}
	n.Stop(t, 15) // SIGTERM
	if logs := strings.Join(n.Logs(), "\n"); !strings.Contains(logs, "nird --repair-stream") || !strings.Contains(logs, "max_age") {
		t.Errorf("the log does not name the mismatch and the repair:\n%s", logs)
	}
	if c := weaken(nil); c.MaxAge == 0 || c.MaxMsgsPerSubject != 1000 {
		t.Fatalf("nird changed the stream: max_age %v, max_msgs_per_subject %v", c.MaxAge, c.MaxMsgsPerSubject)
	}

	out, err := exec.Command(nirdtest.Build(t, nirdtest.NirdPackage), "--repair-stream", "--data", data, "--nats-listen", "127.0.0.1:0").CombinedOutput()
	if err != nil {
		t.Fatalf("nird --repair-stream: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "max_age: 87600h0m0s → 0 (unlimited)") || !strings.Contains(string(out), "max_msgs_per_subject: 1000 → -1 (unlimited)") {
		t.Errorf("nird --repair-stream said\n%s\nwant both settings named", out)
	}
	if c := weaken(nil); c.MaxAge != 0 || c.MaxMsgsPerSubject != -1 {
		t.Fatalf("after the repair: max_age %v, max_msgs_per_subject %v", c.MaxAge, c.MaxMsgsPerSubject)
	}
	out, err = exec.Command(nirdtest.Build(t, nirdtest.NirdPackage), "--repair-stream", "--data", data, "--nats-listen", "127.0.0.1:0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nothing changed") {
		t.Errorf("second repair: %v\n%s", err, out)
	}
}
