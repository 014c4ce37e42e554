package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// metricName finds the metrics an expression names (nird's own, and the process and Go
// runtime collectors it registers).
var metricName = regexp.MustCompile(`\b(?:nir|process|go)_[a-z0-9_]+\b`)

// monitoringMetrics returns every metric the alert rules and the dashboard in
// deploy/monitoring name, with where.
func monitoringMetrics(t *testing.T) map[string]string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "monitoring")
	out := map[string]string{}
	rules, err := os.ReadFile(filepath.Join(dir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range regexp.MustCompile(`(?m)^\s*expr:\s*(.*)$`).FindAllStringSubmatch(string(rules), -1) {
		for _, m := range metricName.FindAllString(line[1], -1) {
			out[m] = "alerts.yaml"
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				out[m] = "grafana-dashboard.json: " + p.Title
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d metrics named in deploy/monitoring: the extraction is broken", len(out))
	}
	return out
}

// TestNird_MonitoringMetricsExist: every metric deploy/monitoring's alert rules and
// dashboard name is one a running nird exports, once it has served an append, a refusal, a
// conflict and a query (labelled series appear on their first observation).
func TestNird_MonitoringMetricsExist(t *testing.T) {
	want := monitoringMetrics(t)
	n := startNird(t, t.TempDir())
	ctx := context.Background()
	reg := regClient(n)
	id, reqs := personRequests(7)
	res, err := reg.Append(ctx, connect.NewRequest(reqs[0]))
	if err != nil {
		t.Fatal(err)
	}
	seq := res.Msg.GetPositions()[0].GetSequence()
	// A refusal: the person registered again under another event id.
	_, again := personRequests(7)
	if _, err := reg.Append(ctx, connect.NewRequest(again[0])); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("second registration: %v, want a refusal", err)
	}
	// A conflict: an expectation the person is past.
	stale := offerFor(id)
	zero := uint64(0)
	stale.ExpectedLastSequence = &zero
	if _, err := reg.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{stale}})); connect.CodeOf(err) != connect.CodeAborted {
		t.Fatalf("stale expectation: %v, want Aborted", err)
	}
	// Development mode: the token is the role, here Oslo's case system.
	q := nirv1connect.NewQueryServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor("kommune:0301")))
	if _, err := q.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: id}, MinSequence: seq})); err != nil {
		t.Fatalf("query with min_sequence: %v", err)
	}

	// The stream's size and replicas are exported once the stream watch's first check is done.
	for deadline := time.Now().Add(60 * time.Second); metricValue(t, n, `nir_stream_check_ok`) != 1; {
		if time.Now().After(deadline) {
			t.Fatal("nir_stream_check_ok never became 1")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r, err := http.Get(n.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	// The refusal and the conflict are counted, not only named (found on 2026-12-07 by
	// mutation testing: the refusal counter could stay at 0 without a test failing).
	for _, re := range []string{`nir_rule_refusals_total\{role="system",rule="[^"]+",transport="http"\} 1`, `nir_append_conflicts_total\{role="system",transport="http"\} 1`} {
		if !regexp.MustCompile(`(?m)^` + re + `$`).Match(body) {
			t.Errorf("/metrics has no sample %s:\n%s", re, regexp.MustCompile(`(?m)^nir_(rule_refusals|append_conflicts)_total.*$`).FindAll(body, -1))
		}
	}
	have := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]`).FindAllStringSubmatch(string(body), -1) {
		have[m[1]] = true
	}
	var missing []string
	for name, where := range want {
		if !have[name] {
			missing = append(missing, name+" ("+where+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("deploy/monitoring names %s, which nird does not export", m)
	}
}
