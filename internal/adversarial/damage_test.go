package adversarial

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// The attacks of this file damage bytes: messages on the stream that nird did not write (or
// that were damaged), the person key file, the stream itself, and the read-model file. nird
// runs as a process on a data directory of its own; the stream is tampered with while nird is
// stopped, by opening its JetStream store with an embedded server of the test's (no TCP port
// of nird's is needed). Each attack must end with nird serving correct answers, or refusing
// to start with a message that says what to do.

const kommune = "0301"

// startNird starts nird on data (development mode, loopback).
func startNird(t *testing.T, data string, extra ...string) *nirdtest.Nird {
	t.Helper()
	return nirdtest.Start(t, append([]string{"--data", data}, extra...)...)
}

// person is a registered person.
type person struct{ id, key string }

// registerPersons registers n persons in kommune 0301, each with an offer, numbered from
// first, and returns them.
func registerPersons(t *testing.T, nd *nirdtest.Nird, first, n int) []person {
	t.Helper()
	client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL())
	var out []person
	for i := first; i < first+n; i++ {
		birth := rules.Date{Y: 1980 + i%20, M: time.Month(1 + i%12), D: 1 + i%28}
		id := rules.SyntheticFodselsnummer(birth, i)
		reg := &nirv1.Registration{Event: &nirv1.Event{
			Id: ulid.Make().String(), Kommune: kommune,
			Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
				Fodselsnummer: id, BirthDate: date(birth.Y, int(birth.M), birth.D), Sex: nirv1.Sex_SEX_FEMALE,
				PermitDate: date(2024, 2, 1), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28,
				ArrivalDate: date(2023, 11, 1), SettlementDate: date(2024, 3, 1), SettlementKommune: kommune,
				SettledByAgreement: true,
			}},
		}}
		res, err := client.Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}}))
		if err != nil {
			t.Fatalf("register person %d: %v", i, err)
		}
		p := person{id: id, key: res.Msg.GetPositions()[0].GetPersonKey()}
		if _, err := client.Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{offer(p)}})); err != nil {
			t.Fatalf("offer for person %d: %v", i, err)
		}
		out = append(out, p)
	}
	return out
}

func offer(p person) *nirv1.Registration {
	return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: p.id}, Event: &nirv1.Event{
		Id: ulid.Make().String(), Kommune: kommune,
		Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{
			Programme: nirv1.Programme_PROGRAMME_INTRO, Date: date(2024, 4, 2),
		}},
	}}
}

func date(y, m, d int) *nirv1.Date {
	return &nirv1.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
}

// call posts a Connect JSON request as token and decodes the answer; a non-200 answer is
// returned as an error holding the Connect code.
func call(nd *nirdtest.Nird, token, procedure string, req any) (map[string]any, error) {
	body, _ := json.Marshal(req)
	hr, _ := http.NewRequest(http.MethodPost, nd.URL()+procedure, bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("HTTP %d: %s", res.StatusCode, b)
	}
	if res.StatusCode != http.StatusOK {
		return out, fmt.Errorf("HTTP %d: %v: %v", res.StatusCode, out["code"], out["message"])
	}
	return out, nil
}

// answers are what a kommune and an analyst see of kommune 0301: the person list and the
// statistics of 2024.
func answers(nd *nirdtest.Nird) (map[string]any, error) {
	list, err := call(nd, "kommune:"+kommune, nirv1connect.QueryServiceListPersonsProcedure,
		map[string]any{"kommune": kommune, "pageSize": 1000, "now": map[string]int{"year": 2024, "month": 6, "day": 1}})
	if err != nil {
		return nil, err
	}
	stats, err := call(nd, "analyst", nirv1connect.QueryServiceStatisticsProcedure,
		map[string]any{"year": 2024, "level": "STATISTICS_LEVEL_KOMMUNE", "area": kommune})
	if err != nil {
		return nil, err
	}
	return map[string]any{"list": list, "stats": stats}, nil
}

// personCount is the number of rows in the person list of answers.
func personCount(a map[string]any) int {
	rows, _ := a["list"].(map[string]any)["rows"].([]any)
	return len(rows)
}

// settledAnswers waits until the read models have caught up with the stream and returns
// what nird answers then.
func settledAnswers(t *testing.T, nd *nirdtest.Nird) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := call(nd, "operator", nirv1connect.AdminServiceProjectionStatusProcedure, map[string]any{})
		if err == nil && st["lag"] == nil && st["rebuilding"] == nil {
			a, err := answers(nd)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("the read models did not catch up within 30s: %v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitAnswers polls until nird's answers equal want. Until then, every query must fail
// (the models are being repaired): an answer that differs from want is garbage served.
func awaitAnswers(t *testing.T, nd *nirdtest.Nird, want map[string]any) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := answers(nd)
		if err == nil {
			if reflect.DeepEqual(got, want) {
				return
			}
			t.Fatalf("nird served answers that differ from the stream's (%d persons listed, want %d)", personCount(got), personCount(want))
		}
		select {
		case <-nd.Done:
			t.Fatalf("nird exited while its answers were awaited (last error: %v)", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nird gave no answer within 60s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withStore opens nird's JetStream store (nird must be stopped) with an embedded server of
// the test's, runs fn with a JetStream client, and shuts the server down.
func withStore(t *testing.T, data string, fn func(js jetstream.JetStream)) {
	t.Helper()
	srv := natstest.RunServer(t, natstest.Options{StoreDir: filepath.Join(data, "jetstream")})
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	fn(js)
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()
}

// publish stores data on subject and returns its stream sequence.
func publish(t *testing.T, js jetstream.JetStream, subject string, data []byte) uint64 {
	t.Helper()
	ack, err := js.Publish(context.Background(), subject, data)
	if err != nil {
		t.Fatalf("publish on %s: %v", subject, err)
	}
	return ack.Sequence
}

// status is the AdminService's projection status as JSON.
func status(t *testing.T, nd *nirdtest.Nird) map[string]any {
	t.Helper()
	st, err := call(nd, "operator", nirv1connect.AdminServiceProjectionStatusProcedure, map[string]any{})
	if err != nil {
		t.Fatalf("projection status: %v", err)
	}
	return st
}

// quarantinedSeqs lists the stream sequences the status reports as quarantined.
func quarantinedSeqs(st map[string]any) []uint64 {
	var out []uint64
	q, _ := st["quarantined"].([]any)
	for _, e := range q {
		m, _ := e.(map[string]any)
		s, _ := m["sequence"].(string) // uint64 in protojson is a string
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// metric scrapes one unlabelled sample from nird's /metrics (-1 when absent).
func metric(t *testing.T, nd *nirdtest.Nird, name string) float64 {
	t.Helper()
	res, err := http.Get(nd.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestDamage_PoisonMessages: messages on nir.ev.* that nird did not write and cannot use.
// Before the fix the first one stopped nird at every start ("decode event at stream seq N").
func TestDamage_PoisonMessages(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	persons := registerPersons(t, nd, 0, 6)
	want := settledAnswers(t, nd)
	nd.Stop(t, syscall.SIGTERM)

	// A forged event that decodes, for persons[1], stored on persons[0]'s subject.
	forged, err := proto.Marshal(&nirv1.Event{Id: ulid.Make().String(), PersonKey: persons[1].key, Kommune: kommune,
		Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: date(2024, 5, 1)}}})
	if err != nil {
		t.Fatal(err)
	}
	noID, _ := proto.Marshal(&nirv1.Event{PersonKey: persons[2].key, Kommune: kommune,
		Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: date(2024, 5, 1)}}})
	stranger := randomKey()
	var poison []uint64
	withStore(t, data, func(js jetstream.JetStream) {
		poison = append(poison,
			publish(t, js, "nir.ev."+persons[0].key, []byte{0xff, 0xff, 0xff, 0x07}), // not protobuf
			publish(t, js, "nir.ev."+persons[0].key, forged),                         // another person's envelope
			publish(t, js, "nir.ev."+persons[2].key, noID),                           // no event id
			publish(t, js, "nir.ev."+stranger, []byte("national id 01010112345 in clear")),
		)
	})

	nd = startNird(t, data)
	t.Run("nird starts and serves past undecodable and subject-mismatched messages", func(t *testing.T) {
		awaitAnswers(t, nd, want)
		st := status(t, nd)
		if got := quarantinedSeqs(st); !slices.Equal(got, poison) {
			t.Errorf("projections status lists quarantined sequences %v, want %v", got, poison)
		}
		if v := metric(t, nd, "nir_projection_quarantined_total"); v != float64(len(poison)) {
			t.Errorf("nir_projection_quarantined_total = %v, want %d", v, len(poison))
		}
		logs := strings.Join(nd.Logs(), "\n")
		for _, seq := range poison {
			if !regexp.MustCompile(`quarantine.*stream_seq=` + strconv.FormatUint(seq, 10) + `\b`).MatchString(logs) {
				t.Errorf("no log line names quarantined stream_seq=%d", seq)
			}
		}
		if strings.Contains(logs, "01010112345") {
			t.Errorf("the content of a poison message reached the log")
		}
	})

	t.Run("appends to a person whose subject holds poison are stored and visible", func(t *testing.T) {
		client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL())
		for _, p := range persons[:3] {
			if _, err := client.Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{offer(p)}})); err != nil {
				t.Fatalf("append after poison: %v", err)
			}
		}
		res, err := client.History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: persons[0].id}}))
		if err != nil {
			t.Fatalf("history of the person whose subject holds poison: %v", err)
		}
		for _, e := range res.Msg.GetEvents() {
			if slices.Contains(poison, e.GetSequence()) {
				t.Errorf("history holds quarantined seq %d", e.GetSequence())
			}
		}
		if n := len(res.Msg.GetEvents()); n != 3 {
			t.Errorf("history has %d events, want 3 (registration and two offers)", n)
		}
	})

	t.Run("a rebuild and an as-of snapshot quarantine the same messages", func(t *testing.T) {
		before := settledAnswers(t, nd)
		admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, nd.URL())
		req := connect.NewRequest(&nirv1.RebuildRequest{})
		req.Header().Set("Authorization", "Bearer operator")
		stream, err := admin.Rebuild(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		finished := false
		for stream.Receive() {
			finished = finished || stream.Msg().GetFinished()
		}
		if err := stream.Err(); err != nil || !finished {
			t.Fatalf("rebuild with poison on the stream: finished %v, %v", finished, err)
		}
		stream.Close()
		if got := quarantinedSeqs(status(t, nd)); !slices.Equal(got, poison) {
			t.Errorf("after a rebuild the quarantined sequences are %v, want %v", got, poison)
		}
		awaitAnswers(t, nd, before)

		sreq := connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "asof", RecordedUntil: nil, CutoffDate: date(2099, 1, 1)})
		sreq.Header().Set("Authorization", "Bearer operator")
		ss, err := admin.CreateSnapshot(context.Background(), sreq)
		if err != nil {
			t.Fatal(err)
		}
		finished = false
		for ss.Receive() {
			finished = finished || ss.Msg().GetFinished()
		}
		if err := ss.Err(); err != nil || !finished {
			t.Fatalf("as-of snapshot with poison on the stream: finished %v, %v", finished, err)
		}
		ss.Close()
	})
}
