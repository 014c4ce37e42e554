package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// Tokens of the e2e token file.
const (
	tokSystem  = "nir_e2e-system-token"
	tokOslo    = "nir_e2e-oslo-token"
	tokAnalyst = "nir_e2e-analyst-token"
)

// digitRun matches what could be a national id: a run of exactly 11 (fødselsnummer,
// D-nummer) or 12 (DUF) digits, not the fraction of a number (metrics print floats and
// 19-digit integers, whose pieces are no ids).
var digitRun = regexp.MustCompile(`(?:^|[^0-9.])([0-9]{11,12})(?:[^0-9]|$)`)

// corrupt returns id with its last digit changed, so its check digits fail.
func corrupt(id string) string {
	last := id[len(id)-1]
	return id[:len(id)-1] + string('0'+(last-'0'+1)%10)
}

// grpcClient is an HTTP client for gRPC without TLS (HTTP/2 prior knowledge).
func grpcClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

// postJSON calls a unary procedure with HTTP+JSON the way a fagsystem without a generated
// client would: a POST of the protojson request, the response decoded into out.
func postJSON(t *testing.T, url, procedure, token string, req, out proto.Message) (int, error) {
	t.Helper()
	body, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	hreq, err := http.NewRequest(http.MethodPost, url+procedure, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, protojson.Unmarshal(b, out)
}

// demoPerson is a generated person as the test knows it.
type demoPerson struct {
	id      string
	events  []*nirv1.Event
	livedIn map[string]bool // kommuner of settlement and moves
	current string          // current bostedskommune
}

func population(seed int64, persons int, now rules.Date) []demoPerson {
	var out []demoPerson
	for evs := range demo.Generate(seed, persons, now) {
		pr := evs[0].GetPersonRegistered()
		p := demoPerson{id: rules.KeyingID(pr), events: evs, livedIn: map[string]bool{pr.GetSettlementKommune(): true}, current: pr.GetSettlementKommune()}
		for _, e := range evs {
			if m := e.GetPersonMoved(); m != nil {
				p.livedIn[m.GetToKommune()] = true
				p.current = m.GetToKommune()
			}
		}
		out = append(out, p)
	}
	return out
}

// checkHistory checks that the stored history holds every generated event once, in order,
// and that anything else is a termination the regelmotor computed.
func checkHistory(t *testing.T, p demoPerson, got []*nirv1.StoredEvent) {
	t.Helper()
	j := 0
	var lastSeq uint64
	for _, se := range got {
		if se.GetSequence() <= lastSeq {
			t.Errorf("sequences not increasing: %d after %d", se.GetSequence(), lastSeq)
		}
		lastSeq = se.GetSequence()
		ev := se.GetEvent()
		if j < len(p.events) && ev.GetId() == p.events[j].GetId() {
			if ev.GetPayload() == nil || !proto.Equal(stripEnvelope(ev), p.events[j]) {
				t.Errorf("event %s stored differently from what was generated", ev.GetId())
			}
			j++
			continue
		}
		if ev.GetTerminationComputed() == nil || ev.GetActor().GetRole() != nirv1.ActorRole_ACTOR_ROLE_SYSTEM {
			t.Errorf("stored event %s is neither generated nor a computed termination", ev.GetId())
		}
	}
	if j != len(p.events) {
		t.Errorf("%d of %d generated events found in order", j, len(p.events))
	}
}

// stripEnvelope returns ev without what nird sets (person key, actor, recorded time, chain).
func stripEnvelope(ev *nirv1.Event) *nirv1.Event {
	c := proto.Clone(ev).(*nirv1.Event)
	c.PersonKey, c.Actor, c.RecordedAt, c.PrevHash, c.DataKeyId = "", nil, nil, nil, "" // set by nird
	return c
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs nird and nirctl; run without -short")
	}
	nirctlBin := nirdtest.Build(t, "github.com/introreg/nir/cmd/nirctl")

	tokens := filepath.Join(t.TempDir(), "tokens.json")
	entries := []auth.Entry{
		{Name: "e2e-regelmotor", Role: auth.RoleSystem, TokenSHA256: auth.HashToken(tokSystem)},
		{Name: "oslo-fagsystem", Role: auth.RoleKommune, Kommune: "0301", TokenSHA256: auth.HashToken(tokOslo)},
		{Name: "ssb", Role: auth.RoleAnalyst, TokenSHA256: auth.HashToken(tokAnalyst)},
	}
	if err := auth.WriteEntries(tokens, entries); err != nil {
		t.Fatal(err)
	}
	// The test reads every person as fast as it can; a case system would be held to
	// --rate-limit (internal/adversarial tests that).
	nird := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo-fagsystem", "--rate-limit", "0")
	url := nird.URL()

	const persons, seed = 300, 42
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		loc = time.UTC
	}
	now := rules.DateFromTime(time.Now().In(loc)).AddDays(-1) // a day back: no date is after nird's today
	pop := population(seed, persons, now)
	events := 0
	for _, p := range pop {
		events += len(p.events)
	}

	// Load with the nirctl binary, as an operator would.
	start := time.Now()
	out, err := exec.Command(nirctlBin, "--server", url, "--token", tokSystem,
		"demo", "--persons", strconv.Itoa(persons), "--seed", strconv.Itoa(seed), "--now", now.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("nirctl demo: %v\n%s", err, out)
	}
	want := fmt.Sprintf("appended %d persons, %d events (0 already stored)", persons, events)
	if !bytes.Contains(out, []byte(want)) {
		t.Fatalf("nirctl demo said %q, want %q", out, want)
	}
	t.Logf("nirctl demo: %d persons, %d events in %s (%s)", persons, events, time.Since(start).Round(time.Millisecond), bytes.TrimSpace(out))

	ctx := context.Background()
	grpc := nirv1connect.NewRegistrationServiceClient(grpcClient(), url, connect.WithGRPC(),
		connect.WithInterceptors(auth.BearerInterceptor(tokSystem)))

	t.Run("gRPC", func(t *testing.T) {
		for _, p := range pop {
			res, err := grpc.History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: p.id}}))
			if err != nil {
				t.Fatalf("gRPC History: %v", err)
			}
			checkHistory(t, p, res.Msg.GetEvents())
		}
	})

	t.Run("HTTPJSON", func(t *testing.T) {
		for i, p := range pop {
			if i%5 != 0 {
				continue // every fifth person is enough to compare the encodings
			}
			var viaJSON nirv1.HistoryResponse
			if _, err := postJSON(t, url, nirv1connect.RegistrationServiceHistoryProcedure, tokSystem,
				&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: p.id}}, &viaJSON); err != nil {
				t.Fatalf("HTTP+JSON History: %v", err)
			}
			checkHistory(t, p, viaJSON.GetEvents())
			viaGRPC, err := grpc.History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: viaJSON.GetPersonKey()}}))
			if err != nil {
				t.Fatalf("gRPC History by person key: %v", err)
			}
			// The regelmotor may have appended in between; compare the common prefix.
			a, b := viaJSON.GetEvents(), viaGRPC.Msg.GetEvents()
			if len(b) < len(a) {
				t.Fatalf("gRPC read %d events after HTTP+JSON read %d", len(b), len(a))
			}
			for k := range a {
				if !proto.Equal(a[k], b[k]) {
					t.Fatalf("event %d differs between HTTP+JSON and gRPC", k)
				}
			}
		}
	})

	t.Run("KommuneSeesOnlyItsPersons", func(t *testing.T) {
		seen, hidden := 0, 0
		for _, p := range pop {
			var res nirv1.HistoryResponse
			code, err := postJSON(t, url, nirv1connect.RegistrationServiceHistoryProcedure, tokOslo,
				&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: p.id}}, &res)
			switch {
			case p.livedIn["0301"]:
				if err != nil {
					t.Fatalf("Oslo reading a person who lived in Oslo: %v", err)
				}
				seen++
			default:
				if code != http.StatusNotFound {
					t.Fatalf("Oslo reading a person who never lived there: HTTP %d, %v; want 404", code, err)
				}
				if bytes.Contains([]byte(err.Error()), []byte(p.id)) {
					t.Fatalf("the refusal holds the national id")
				}
				hidden++
			}
		}
		if seen == 0 || hidden == 0 {
			t.Fatalf("population has %d Oslo persons and %d others; the test needs both", seen, hidden)
		}
		// An analyst never reads a history.
		var res nirv1.HistoryResponse
		if code, _ := postJSON(t, url, nirv1connect.RegistrationServiceHistoryProcedure, tokAnalyst,
			&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: pop[0].id}}, &res); code != http.StatusForbidden {
			t.Fatalf("analyst History: HTTP %d, want 403", code)
		}
	})

	t.Run("QueryService", func(t *testing.T) {
		// The person list of Oslo, folded from the stream by nird's projections: poll until
		// it has caught up with the load.
		want := 0
		for _, p := range pop {
			if p.current == "0301" {
				want++
			}
		}
		q := nirv1connect.NewQueryServiceClient(grpcClient(), url, connect.WithGRPC(), connect.WithInterceptors(auth.BearerInterceptor(tokOslo)))
		deadline := time.Now().Add(60 * time.Second)
		var total int32
		for {
			res, err := q.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{PageSize: 1000}))
			if connect.CodeOf(err) == connect.CodeUnimplemented {
				t.Skip("this nird does not serve nir.v1.QueryService")
			}
			if err != nil {
				t.Fatalf("gRPC ListPersons: %v", err)
			}
			total = res.Msg.GetTotal()
			if int(total) == want {
				for _, r := range res.Msg.GetRows() {
					if r.GetKommune() != "0301" || r.GetNationalId() == "" {
						t.Errorf("Oslo's list has a row of kommune %s (national id shown: %v)", r.GetKommune(), r.GetNationalId() != "")
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Oslo's person list has %d persons after 60s, want %d", total, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The same over HTTP+JSON.
		var viaJSON nirv1.ListPersonsResponse
		if _, err := postJSON(t, url, nirv1connect.QueryServiceListPersonsProcedure, tokOslo, &nirv1.ListPersonsRequest{PageSize: 1000}, &viaJSON); err != nil {
			t.Fatalf("HTTP+JSON ListPersons: %v", err)
		}
		if viaJSON.GetTotal() != total {
			t.Fatalf("HTTP+JSON ListPersons total %d, gRPC %d", viaJSON.GetTotal(), total)
		}
		// An analyst sees the same rows without national ids.
		var analyst nirv1.ListPersonsResponse
		if _, err := postJSON(t, url, nirv1connect.QueryServiceListPersonsProcedure, tokAnalyst, &nirv1.ListPersonsRequest{Kommune: "0301", PageSize: 1000}, &analyst); err != nil {
			t.Fatalf("analyst ListPersons: %v", err)
		}
		if analyst.GetTotal() != total {
			t.Errorf("analyst sees %d Oslo persons, the kommune %d", analyst.GetTotal(), total)
		}
		for _, r := range analyst.GetRows() {
			if r.GetNationalId() != "" {
				t.Fatalf("analyst row holds a national id")
			}
		}
	})

	t.Run("OversizedRequest", func(t *testing.T) {
		// A body 64 KiB over nird's 4 MiB bound: without a token refused as unauthenticated,
		// with one as resource_exhausted, both before a byte of it is read. (Only a little
		// over the bound: net/http drains up to 256 KiB of an unread body and keeps the
		// connection; with more it closes it, and the client may see the reset before the
		// answer.)
		body := append([]byte(`{"registrations":[{"event":{"correlationId":"`), bytes.Repeat([]byte("x"), 4<<20+64<<10)...)
		body = append(body, `"}}]}`...)
		for _, token := range []string{"", tokOslo} {
			req, err := http.NewRequest(http.MethodPost, url+nirv1connect.RegistrationServiceAppendProcedure, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "resource_exhausted"
			if token == "" {
				want = "unauthenticated"
			}
			var e struct{ Code string }
			if err := json.Unmarshal(b, &e); err != nil || e.Code != want {
				t.Errorf("oversized request (token %v): HTTP %d %.200s, want %s", token != "", resp.StatusCode, b, want)
			}
		}
	})

	t.Run("NATSIngress", func(t *testing.T) {
		// As a case system: its own NATS user (made by nird), and a bearer token.
		nc := nird.ConnectNATS(t, "oslo-fagsystem")
		var err error
		send := func(req *nirv1.AppendRequest) (*nats.Msg, error) {
			msg := nats.NewMsg(natsingress.RequestSubject("oslo-fagsystem"))
			msg.Data, err = protojson.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			msg.Header.Set("Content-Type", "application/json")
			msg.Header.Set("Authorization", "Bearer "+tokOslo)
			return nc.RequestMsg(msg, 20*time.Second)
		}
		// A re-sent registration of an Oslo person: answered with its stored position.
		var p demoPerson
		for _, q := range pop {
			if q.events[0].GetKommune() == "0301" {
				p = q
				break
			}
		}
		if p.id == "" {
			t.Fatal("no person registered by Oslo in the population")
		}
		reply, err := send(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{{Person: &nirv1.PersonRef{NationalId: p.id}, Event: p.events[0]}}})
		if err != nil {
			t.Fatal(err)
		}
		var res nirv1.AppendResponse
		if err := protojson.Unmarshal(reply.Data, &res); err != nil || len(res.GetPositions()) != 1 || !res.GetPositions()[0].GetDuplicate() {
			t.Fatalf("NATS re-send: %v %v (%q, %s)", err, res.GetPositions(), reply.Data, reply.Header.Get("Nats-Service-Error"))
		}
		// An invalid fødselsnummer: invalid_argument.
		bad := corrupt(p.id)
		reg := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: bad}, Event: proto.Clone(p.events[len(p.events)-1]).(*nirv1.Event)}
		reg.Event.Id = "01J00000000000000000000000"
		reply, err = send(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}})
		if err != nil {
			t.Fatal(err)
		}
		if code := reply.Header.Get("Nats-Service-Error-Code"); code != "invalid_argument" {
			t.Fatalf("NATS append with an invalid fødselsnummer: code %q (%s)", code, reply.Header.Get("Nats-Service-Error"))
		}
	})

	t.Run("NoNationalIDsInLogsOrMetrics", func(t *testing.T) {
		// Provoke refusals that involve national ids, over HTTP+JSON.
		var hres nirv1.HistoryResponse
		if code, _ := postJSON(t, url, nirv1connect.RegistrationServiceHistoryProcedure, tokSystem,
			&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: corrupt(pop[0].id)}}, &hres); code != http.StatusBadRequest {
			t.Fatalf("History with an invalid national id: HTTP %d, want 400", code)
		}
		var ares nirv1.AppendResponse
		retraction := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: pop[1].id}, Event: &nirv1.Event{
			Id: "01J00000000000000000000001", Kommune: pop[1].events[0].GetKommune(),
			Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: pop[1].events[1].GetId(), Reason: "gjelder " + pop[2].id}}}}
		if code, _ := postJSON(t, url, nirv1connect.RegistrationServiceAppendProcedure, tokSystem,
			&nirv1.AppendRequest{Registrations: []*nirv1.Registration{retraction}}, &ares); code != http.StatusBadRequest {
			t.Fatalf("Append with a national id in free text: HTTP %d, want 400", code)
		}
		resp, err := http.Get(nird.AdminURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
		}
		texts := map[string]string{"metrics": string(metrics)}
		for i, l := range nird.Logs() {
			texts[fmt.Sprintf("log line %d", i+1)] = l
		}
		for where, text := range texts {
			for _, m := range digitRun.FindAllStringSubmatch(text, -1) {
				if _, err := rules.ParseNationalID(m[1]); err == nil {
					t.Errorf("%s holds a national id", where)
				}
			}
			for _, p := range pop[:3] {
				if strings.Contains(text, p.id) || strings.Contains(text, corrupt(p.id)) {
					t.Errorf("%s holds a population national id", where)
				}
			}
		}
		if len(texts) < 5 {
			t.Fatalf("only %d log lines: the check saw nothing", len(texts)-1)
		}
	})

	// The demo again: every event is already stored.
	out, err = exec.Command(nirctlBin, "--server", url, "--token", tokSystem,
		"demo", "--persons", strconv.Itoa(persons), "--seed", strconv.Itoa(seed), "--now", now.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("nirctl demo again: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("(%d already stored)", events); !bytes.Contains(out, []byte(want)) {
		t.Fatalf("second nirctl demo said %q, want %q", out, want)
	}
}
