package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// TestProjectionsRebuild_FromLiveFile: with nird as a process, `nirctl projections rebuild`
// takes the events its live file holds through the stream's last signed checkpoint (nird
// signs them with its own key) and reads the rest of the stream; `--from-stream` reads the
// whole stream; both serve the same person list as before. A snapshot is made either way
// too, with the same statistics.
func TestProjectionsRebuild_FromLiveFile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nird as a process")
	}
	ctx := context.Background()
	n := nirdtest.Start(t, "--data", t.TempDir(), "--checkpoint-every", "10", "--checkpoint-interval", "1s")
	reg := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor("system")))
	for evs := range demo.Generate(5, 30, rules.Today(time.Now())) {
		if _, err := reg.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: demo.Registrations(evs)})); err != nil {
			t.Fatal(err)
		}
	}
	nirctl := func(token string, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(ctx, append([]string{"--server", n.URL(), "--token", token}, args...), &stdout, &stderr); err != nil {
			t.Fatalf("nirctl %v: %v (stderr %s)", args, err, stderr.String())
		}
		return stdout.String()
	}
	list := func() string { return nirctl("analyst", "persons", "list", "--kommune", "0301", "--json") }
	// The list once the read models have caught up and the regelmotor has ended what it
	// ends: the same twice, a second apart.
	before := list()
	for i := 0; ; i++ {
		time.Sleep(time.Second)
		now := list()
		if now == before && strings.Contains(now, "personKey") {
			break
		}
		if i == 30 {
			t.Fatalf("the person list did not settle within 30 s:\n%s", now)
		}
		before = now
	}
	// The checkpoints come every 10 events or second; until one covers the live file's
	// events, a rebuild reads the whole stream.
	deadline := time.Now().Add(30 * time.Second)
	var out string
	for {
		out = nirctl("operator", "projections", "rebuild")
		if strings.Contains(out, "taken from the live file") || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(out, "taken from the live file, checked against the stream's signed checkpoint") {
		t.Fatalf("no rebuild took the live file's events within 30 s:\n%s", out)
	}
	if got := list(); got != before {
		t.Errorf("the person list after the rebuild from the live file differs:\n%s\nwant\n%s", got, before)
	}
	if out := nirctl("operator", "projections", "rebuild", "--from-stream"); !strings.Contains(out, "the whole stream read") {
		t.Fatalf("--from-stream:\n%s", out)
	}
	if got := list(); got != before {
		t.Errorf("the person list after the rebuild from the stream differs")
	}

	// A snapshot as of now takes the live file's events the same way, and equals one that
	// reads the stream.
	cut := time.Now().UTC().Format(time.RFC3339Nano)
	if out := nirctl("operator", "projections", "snapshot", "create", "file", "--recorded-until", cut); !strings.Contains(out, "taken from the live file") {
		t.Fatalf("snapshot create:\n%s", out)
	}
	if out := nirctl("operator", "projections", "snapshot", "create", "stream", "--recorded-until", cut, "--from-stream"); !strings.Contains(out, "the whole stream read") {
		t.Fatalf("snapshot create --from-stream:\n%s", out)
	}
	for _, year := range []string{"2024", "2025"} {
		a := nirctl("analyst", "stats", "--year", year, "--level", "kommune", "--snapshot", "file", "--json")
		b := nirctl("analyst", "stats", "--year", year, "--level", "kommune", "--snapshot", "stream", "--json")
		if a != b || !strings.Contains(a, "0301") {
			t.Errorf("statistics of %s in the two snapshots:\n%s\n%s", year, a, b)
		}
	}
}
