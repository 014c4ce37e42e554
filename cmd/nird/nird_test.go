package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// These tests run the nird binary as a process, as an operator would, and kill it.

// startNird starts nird on data (with more args) and waits until it serves.
func startNird(t *testing.T, data string, args ...string) *nirdtest.Nird {
	t.Helper()
	return nirdtest.Start(t, append([]string{"--data", data, "--log-level", "debug"}, args...)...)
}

func regClient(n *nirdtest.Nird) nirv1connect.RegistrationServiceClient {
	return nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL())
}

// personRequests returns the two requests that register person i and record an offer.
func personRequests(i int) (string, []*nirv1.AppendRequest) {
	id := rules.SyntheticFodselsnummer(rules.Date{Y: 1980 + i%20, M: time.Month(1 + i%12), D: 1 + i%28}, i)
	date := func(y, m, d int) *nirv1.Date { return &nirv1.Date{Year: int32(y), Month: int32(m), Day: int32(d)} }
	reg := &nirv1.Registration{Event: &nirv1.Event{
		Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: id, BirthDate: date(1980+i%20, 1+i%12, 1+i%28), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: date(2024, 2, 1), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28,
			ArrivalDate: date(2023, 11, 1), SettlementDate: date(2024, 3, 1), SettlementKommune: "0301",
			SettledByAgreement: true,
		}},
	}}
	return id, []*nirv1.AppendRequest{{Registrations: []*nirv1.Registration{reg}}, {Registrations: []*nirv1.Registration{offerFor(id)}}}
}

// offerFor is an offer registration for the person with national id id.
func offerFor(id string) *nirv1.Registration {
	return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{
		Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{
			Programme: nirv1.Programme_PROGRAMME_INTRO, Date: &nirv1.Date{Year: 2024, Month: 4, Day: 2},
		}},
	}}
}

func TestNird_RestartKeepsEvents(t *testing.T) {
	data := t.TempDir()
	n := startNird(t, data)
	ctx := context.Background()
	want := map[string]uint64{}
	var ids []string
	for i := range 5 {
		id, reqs := personRequests(i)
		ids = append(ids, id)
		for _, req := range reqs {
			res, err := regClient(n).Append(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			want[res.Msg.Positions[0].EventId] = res.Msg.Positions[0].Sequence
		}
	}
	// Privacy: no national id in the logs (at debug level) or the metrics, also after a
	// refused registration that names the person.
	bad := offerFor(ids[0])
	bad.Event.Kommune = "9999"
	if _, err := regClient(n).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{bad}})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("append with kommune 9999: %v, want InvalidArgument", err)
	}
	res, err := http.Get(n.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !regexp.MustCompile(`(?m)^nir_appended_events_total\{role="system",transport="http"\} 10$`).Match(metrics) {
		t.Errorf("metrics do not count the 10 appended events:\n%s", regexp.MustCompile(`(?m)^nir_.*$`).FindAll(metrics, -1))
	}
	// The refusal is counted by its procedure and code: labels are codes, never an error's
	// words, which may name what a request held (found on 2026-12-07 by mutation testing: the
	// code label could carry the error's message without a test failing).
	if !regexp.MustCompile(`(?m)^nir_api_requests_total\{code="invalid_argument",procedure="/nir.v1.RegistrationService/Append"\} 1$`).Match(metrics) {
		t.Errorf("metrics do not count the refused append by its code:\n%s", regexp.MustCompile(`(?m)^nir_api_requests_total.*$`).FindAll(metrics, -1))
	}
	// JSON over HTTP refuses a field the schema does not define, naming the message that
	// holds it, with a nir.v1.FieldViolation (Connect's own codec would drop it silently).
	body := `{"registrations":[{"event":{"id":"01JBZ0000000000000000000AA","kommune":"0301","gjelder":"x"}}]}`
	jres, err := http.Post(n.URL()+nirv1connect.RegistrationServiceAppendProcedure, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	jbody, _ := io.ReadAll(jres.Body)
	jres.Body.Close()
	if jres.StatusCode != http.StatusBadRequest || !strings.Contains(string(jbody), `registrations[0].event: holds fields this nird's schema does not define`) ||
		!strings.Contains(string(jbody), `"type":"nir.v1.FieldViolation"`) {
		t.Errorf("JSON with an unknown field: HTTP %d %s, want 400 naming where, with a FieldViolation", jres.StatusCode, jbody)
	}
	// The event store's group commit counters: the same events, and the batch histogram.
	if v := metricValue(t, n, "nir_store_events_total"); v < 10 {
		t.Errorf("nir_store_events_total = %v, want at least the 10 appended", v)
	}
	if !regexp.MustCompile(`(?m)^nir_store_batch_events_bucket\{le="\+Inf"\} \d+$`).Match(metrics) {
		t.Errorf("metrics lack the nir_store_batch_events histogram")
	}
	n.Stop(t, syscall.SIGTERM)
	logs := strings.Join(n.Logs(), "\n")
	// The operator sees the group commit bounds in force (the defaults here).
	if !strings.Contains(logs, "group_max_wait=5ms") || !strings.Contains(logs, "group_max_events=1000") {
		t.Errorf("the start-up log does not state the group commit bounds")
	}
	for _, id := range ids {
		if strings.Contains(logs, id) || strings.Contains(string(metrics), id) {
			t.Errorf("a national id appears in nird's logs or metrics")
		}
	}
	if code := n.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("nird exit code after SIGTERM = %d, want 0", code)
	}

	n = startNird(t, data)
	// The data keys nird made ahead and never used were deleted when it stopped: the bucket
	// holds the five persons' keys, not a pool's worth.
	if logs := strings.Join(n.Logs(), "\n"); !strings.Contains(logs, `msg="data keys loaded" component=eventstore bucket=NIR_KEYS keys=5`) {
		t.Errorf("after the restart, nird does not load exactly the five persons' data keys:\n%s", regexp.MustCompile(`.*data keys loaded.*`).FindString(logs))
	}
	got := map[string]uint64{}
	for _, id := range ids {
		res, err := regClient(n).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: id}}))
		if err != nil {
			t.Fatalf("history after restart: %v", err)
		}
		for _, e := range res.Msg.Events {
			got[e.Event.Id] = e.Sequence
		}
	}
	if len(got) != len(want) {
		t.Fatalf("after restart %d events, want %d", len(got), len(want))
	}
	for id, seq := range want {
		if got[id] != seq {
			t.Errorf("event %s at seq %d after restart, want %d", id, got[id], seq)
		}
	}
}

// TestNird_KillNineDuringAppends kills nird with SIGKILL while 64 clients append at once (so
// the event store's group commit is coalescing their appends into shared batches), restarts
// it, and checks that every acknowledged event is there exactly once at its acknowledged
// position; then re-sends every request (acknowledged or not) and checks nothing is stored
// twice.
func TestNird_KillNineDuringAppends(t *testing.T) {
	data := t.TempDir()
	// One principal appends as fast as it can: no rate limit for it here.
	unlimited := []string{"--rate-limit", "0"}
	n := startNird(t, data, unlimited...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	type attempt struct {
		person string
		req    *nirv1.AppendRequest
	}
	var (
		mu       sync.Mutex
		acked    = map[string]uint64{} // event id → acknowledged sequence
		attempts []attempt
		wg       sync.WaitGroup
	)
	const clients = 64
	client := regClient(n)
	for c := range clients {
		wg.Go(func() {
			for i := c; ctx.Err() == nil; i += clients {
				id, reqs := personRequests(i)
				for _, req := range reqs {
					mu.Lock()
					attempts = append(attempts, attempt{id, req})
					mu.Unlock()
					res, err := client.Append(ctx, connect.NewRequest(req))
					if err != nil {
						return // nird is gone
					}
					mu.Lock()
					for _, p := range res.Msg.Positions {
						acked[p.EventId] = p.Sequence
					}
					mu.Unlock()
				}
			}
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d acknowledged appends within 60s", k)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The kill must hit group commit at work: batches formed and sent ahead while forming.
	for _, name := range []string{"nir_store_streamed_events_total", "nir_store_batch_events_count"} {
		if v := metricValue(t, n, name); v <= 0 {
			t.Errorf("before the kill %s = %v: group commit did not stream batches", name, v)
		}
	}
	n.Stop(t, syscall.SIGKILL)
	wg.Wait()
	cancel()

	n = startNird(t, data, unlimited...)
	client = regClient(n)
	ctx = context.Background()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d acknowledged events, %d requests attempted before SIGKILL", len(acked), len(attempts))

	// Every acknowledged event is there, once, where it was acknowledged.
	persons := map[string]bool{}
	for _, a := range attempts {
		persons[a.person] = true
	}
	checkHistories := func(stage string) map[string]uint64 {
		seen := map[string]uint64{}
		for p := range persons {
			res, err := client.History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: p}}))
			if connect.CodeOf(err) == connect.CodeNotFound {
				continue
			}
			if err != nil {
				t.Fatalf("%s: history: %v", stage, err)
			}
			for _, e := range res.Msg.Events {
				if prev, dup := seen[e.Event.Id]; dup {
					t.Errorf("%s: event %s stored twice (seq %d and %d)", stage, e.Event.Id, prev, e.Sequence)
				}
				seen[e.Event.Id] = e.Sequence
			}
		}
		for id, seq := range acked {
			if got, ok := seen[id]; !ok {
				t.Errorf("%s: acknowledged event %s (seq %d) is lost", stage, id, seq)
			} else if got != seq {
				t.Errorf("%s: acknowledged event %s at seq %d, acknowledged at %d", stage, id, got, seq)
			}
		}
		return seen
	}
	checkHistories("after SIGKILL")

	// A case system re-sends everything it is unsure about: nothing is stored twice.
	for _, a := range attempts {
		res, err := client.Append(ctx, connect.NewRequest(a.req))
		if err != nil {
			t.Fatalf("re-send: %v", err)
		}
		for _, p := range res.Msg.Positions {
			if seq, ok := acked[p.EventId]; ok && (!p.Duplicate || p.Sequence != seq) {
				t.Errorf("re-sent acknowledged event %s: seq %d duplicate %v, want seq %d duplicate", p.EventId, p.Sequence, p.Duplicate, seq)
			}
		}
	}
	seen := checkHistories("after re-send")
	want := 0
	for _, a := range attempts {
		want += len(a.req.Registrations)
	}
	if len(seen) != want {
		t.Errorf("after re-send %d events stored, want %d (one per attempted registration)", len(seen), want)
	}
}

// TestNird_DataDirectoryLocked: a second nird on the same data directory refuses to start
// instead of sharing the JetStream store, or, with an external NATS, the read-model files
// (before, that one started: its read models could not open the first's file, locked, and it
// stopped after a timeout that named no cause, having removed the first's temporary files).
func TestNird_DataDirectoryLocked(t *testing.T) {
	for name, args := range map[string]func() []string{
		"Embedded": func() []string { return []string{"--nats-listen", "127.0.0.1:0"} },
		"ExternalNATS": func() []string {
			return []string{"--nats-url", natstest.RunServer(t, natstest.Options{}).ClientURL()}
		},
	} {
		t.Run(name, func(t *testing.T) {
			data, nats := t.TempDir(), args()
			startNird(t, data, nats...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, nirdtest.Build(t, nirdtest.NirdPackage), append([]string{"--data", data, "--http", "127.0.0.1:0", "--admin", ""}, nats...)...).CombinedOutput()
			if err == nil {
				t.Fatalf("second nird on the same data directory started:\n%s", out)
			}
			if !regexp.MustCompile(`in use by another nird`).Match(out) {
				t.Errorf("second nird failed without saying why:\n%s", out)
			}
		})
	}
}

// metricValue scrapes nird's /metrics for one unlabelled sample.
func metricValue(t *testing.T, n *nirdtest.Nird, name string) float64 {
	t.Helper()
	res, err := http.Get(n.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// TestNird_DemoAsOf starts nird with a demo population and checks what a newcomer tries
// first: /readyz says ready only once the read models have caught up with the load (and the
// regelmotor's computed terminations are in them), and an as-of snapshot at the 2022
// ajourføring deadline holds figures, because the demo's events carry the times they would
// have been recorded, not today's.
func TestNird_DemoAsOf(t *testing.T) {
	n := nirdtest.Start(t, "--data", t.TempDir(), "--demo", "300")
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(n.AdminURL() + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("nird --demo not ready within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx := context.Background()
	bearer := func(token string) connect.ClientOption {
		return connect.WithInterceptors(auth.BearerInterceptor(token))
	}
	admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, n.URL(), bearer("operator"))
	st, err := admin.ProjectionStatus(ctx, connect.NewRequest(&nirv1.ProjectionStatusRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if st.Msg.GetLastSequence() == 0 || st.Msg.GetLag() > 100 {
		t.Errorf("ready with the read models %d events behind a stream of %d", st.Msg.GetLag(), st.Msg.GetLastSequence())
	}
	query := nirv1connect.NewQueryServiceClient(http.DefaultClient, n.URL(), bearer("analyst"))
	stats := func(year int32, snapshot string) *nirv1.StatisticsRow {
		t.Helper()
		res, err := query.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: year, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION, Snapshot: snapshot}))
		if err != nil || len(res.Msg.GetRows()) != 1 {
			t.Fatalf("statistics %d %q: %v, %v", year, snapshot, res, err)
		}
		return res.Msg.GetRows()[0]
	}
	computed := int64(0)
	for y := int32(2019); y <= int32(time.Now().Year()); y++ {
		r := stats(y, "")
		computed += r.GetTerminatedComputed()
		if slices.Contains(r.GetSuppressed(), "terminated_computed") {
			computed++ // 1 to 4, withheld from an analyst (Product decisions 14)
		}
	}
	if computed == 0 {
		t.Error("no computed termination in the demo's figures once ready")
	}
	cs, err := admin.CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "2022@2023-02-28", CutoffDate: &nirv1.Date{Year: 2023, Month: 2, Day: 28}}))
	if err != nil {
		t.Fatal(err)
	}
	var snap *nirv1.SnapshotInfo
	for cs.Receive() {
		snap = cs.Msg().GetSnapshot()
	}
	if err := cs.Err(); err != nil {
		t.Fatal(err)
	}
	if snap.GetCheckpoint() == 0 {
		t.Fatal("the 2022@2023-02-28 snapshot of the demo keeps no event")
	}
	if official := stats(2022, "2022@2023-02-28"); official.GetParticipants() == 0 {
		t.Errorf("official 2022 figures of the demo are empty: %v", official)
	}
}

// TestNird_GRPCOverH2C: behind the edge's limits and timeouts, gRPC without TLS (HTTP/2 by
// prior knowledge) still works: the public health check, a unary call, and AdminService's
// server-streaming rebuild to its last message.
func TestNird_GRPCOverH2C(t *testing.T) {
	n := startNird(t, t.TempDir())
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	ctx := context.Background()
	id, reqs := personRequests(1)
	reg := nirv1connect.NewRegistrationServiceClient(h2c, n.URL(), connect.WithGRPC(), connect.WithInterceptors(auth.BearerInterceptor("kommune:0301")))
	if _, err := reg.Append(ctx, connect.NewRequest(reqs[0])); err != nil {
		t.Fatalf("append over gRPC: %v", err)
	}
	if res, err := reg.History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: id}})); err != nil || len(res.Msg.Events) != 1 {
		t.Fatalf("history over gRPC: %v", err)
	}
	admin := nirv1connect.NewAdminServiceClient(h2c, n.URL(), connect.WithGRPC(), connect.WithInterceptors(auth.BearerInterceptor("operator")))
	stream, err := admin.Rebuild(ctx, connect.NewRequest(&nirv1.RebuildRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	finished := false
	for stream.Receive() {
		finished = finished || stream.Msg().GetFinished()
	}
	if err := stream.Err(); err != nil || !finished {
		t.Fatalf("rebuild stream over gRPC: finished %v, %v", finished, err)
	}
	health := grpchealth.NewClient(h2c, n.URL(), connect.WithGRPC())
	if res, err := health.Check(ctx, &grpchealth.CheckRequest{}); err != nil || res.Status != grpchealth.StatusServing {
		t.Fatalf("health over gRPC: %v %v", res, err)
	}
}

// TestNird_NATSContextNotWritten: nird refuses to start when it cannot write the nats CLI
// context of its embedded listener (here a directory holds its place), naming the file,
// rather than serve while the context left there points at a port of an earlier start.
// Found on 2026-12-07 by mutation testing: the error could be dropped without a test failing.
func TestNird_NATSContextNotWritten(t *testing.T) {
	data := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, "nats", "reader.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nirdtest.Build(t, nirdtest.NirdPackage), "--data", data, "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--admin", "")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	var lines []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), "msg=starting") {
			_ = cmd.Process.Kill()
		}
	}
	err = cmd.Wait()
	out := strings.Join(lines, "\n")
	if err == nil || !strings.Contains(out, "reader.json") || strings.Contains(out, "msg=starting") {
		t.Errorf("nird with a directory in place of nats/reader.json: %v; want a refusal naming the file:\n%s", err, out)
	}
}
