package adversarial

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
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
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/nirdtest"
	"github.com/introreg/nir/internal/syncbuf"
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
	var out []person
	for i := first; i < first+n; i++ {
		p, err := registerPerson(context.Background(), nd, i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// registerPerson registers person number i in kommune 0301, with an offer.
func registerPerson(ctx context.Context, nd *nirdtest.Nird, i int) (person, error) {
	client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL())
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
	res, err := client.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}}))
	if err != nil {
		return person{id: id}, fmt.Errorf("register person %d: %w", i, err)
	}
	p := person{id: id, key: res.Msg.GetPositions()[0].GetPersonKey()}
	if _, err := client.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{offer(p)}})); err != nil {
		return p, fmt.Errorf("offer for person %d: %w", i, err)
	}
	return p, nil
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
		// Not while a repair is pending either: between its request and its start the
		// status shows neither lag nor a rebuild, and every read is refused (a CI run of
		// TestDamage_EventBlockCut got 503 so).
		if err == nil && st["lag"] == nil && st["rebuilding"] == nil && st["repairing"] == nil {
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
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(metrics(t, nd))
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// metrics returns nd's /metrics page.
func metrics(t *testing.T, nd *nirdtest.Nird) []byte {
	t.Helper()
	res, err := http.Get(nd.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return body
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
	// Events that would decode but for what proto.Unmarshal refuses (nirv1.UnmarshalEvent
	// must refuse them too): nested past its 10 000 levels (before the walk came first, the
	// generated decoder took it), and a string that is not UTF-8.
	deep := deepEvent(t, persons[3].key, 10001)
	notUTF8, _ := proto.Marshal(&nirv1.Event{Id: ulid.Make().String(), PersonKey: persons[4].key, Kommune: "0000"})
	notUTF8 = bytes.Replace(notUTF8, []byte("0000"), []byte("00\xc3\x00"), 1)
	stranger := randomKey()
	var poison []uint64
	withStore(t, data, func(js jetstream.JetStream) {
		poison = append(poison,
			publish(t, js, "nir.ev."+persons[0].key, []byte{0xff, 0xff, 0xff, 0x07}), // not protobuf
			publish(t, js, "nir.ev."+persons[0].key, forged),                         // another person's envelope
			publish(t, js, "nir.ev."+persons[2].key, noID),                           // no event id
			publish(t, js, "nir.ev."+stranger, []byte("national id 01010112345 in clear")),
			publish(t, js, "nir.ev."+persons[3].key, deep),
			publish(t, js, "nir.ev."+persons[4].key, notUTF8),
		)
	})

	nd = startNird(t, data)
	t.Run("nird starts and serves past undecodable and subject-mismatched messages", func(t *testing.T) {
		awaitAnswers(t, nd, want)
		if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
			t.Errorf("answers changed when the read models reached the stream's end")
		}
		st := status(t, nd)
		if got := quarantinedSeqs(st); !slices.Equal(got, poison) {
			t.Errorf("projections status lists quarantined sequences %v, want %v", got, poison)
		}
		if v := metric(t, nd, "nir_projection_quarantined"); v != float64(len(poison)) {
			t.Errorf("nir_projection_quarantined = %v, want %d", v, len(poison))
		}
		// The read-model file was kept over the restart and meets them first: new, which
		// the alert NirReadModelsQuarantined watches (a new pod's file finds them again).
		if v, again := metric(t, nd, "nir_projection_quarantines_total"), metric(t, nd, "nir_projection_quarantines_found_again_total"); v != float64(len(poison)) || again != 0 {
			t.Errorf("nir_projection_quarantines_total = %v and found again %v, want %d and 0", v, again, len(poison))
		}
		// A gauge: a retraction, or a rebuild by a fixed nird, can make a quarantined
		// event usable again, and a counter that goes down reads as a reset.
		if !bytes.Contains(metrics(t, nd), []byte("# TYPE nir_projection_quarantined gauge\n")) {
			t.Errorf("nir_projection_quarantined is not a gauge")
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

// deepEvent returns an event for person key pk, with an id, whose PersonsMerged payload
// absorbs an event that absorbs one, and so on, depth levels in all.
func deepEvent(t *testing.T, pk string, depth int) []byte {
	t.Helper()
	top, err := proto.Marshal(&nirv1.Event{Id: ulid.Make().String(), PersonKey: pk, Kommune: kommune})
	if err != nil {
		t.Fatal(err)
	}
	payload := (&nirv1.Event{}).ProtoReflect().Descriptor().Fields().ByName("persons_merged").Number()
	absorbed := (&nirv1.PersonsMerged{}).ProtoReflect().Descriptor().Fields().ByName("absorbed_events").Number()
	var ev []byte
	for range depth - 1 {
		merged := protowire.AppendBytes(protowire.AppendTag(nil, absorbed, protowire.BytesType), ev)
		ev = protowire.AppendBytes(protowire.AppendTag(nil, payload, protowire.BytesType), merged)
	}
	return append(top, ev...)
}

// startFails runs nird with args and returns what it wrote, failing the test unless it exits
// with an error before it serves.
func startFails(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--admin", ""}, args...)
	cmd := exec.Command(nirdtest.Build(t, nirdtest.NirdPackage), args...)
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("nird exited 0, want a refusal:\n%s", out.String())
			}
			return out.String()
		case <-deadline:
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("nird neither served nor exited within 60s, want a refusal:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
			if strings.Contains(out.String(), "msg=serving") {
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("nird started and served, want a refusal:\n%s", out.String())
			}
		}
	}
}

// TestDamage_PersonKey: the key that turns national ids into person keys is lost, swapped or
// weak. Before the fix nird made a new key silently (lost) or used the wrong one (swapped):
// lookups by national id found nobody and the same fødselsnummer became a second person.
func TestDamage_PersonKey(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	registerPersons(t, nd, 0, 2)
	nd.Stop(t, syscall.SIGTERM)
	keyFile := filepath.Join(data, "personkey.secret")
	original, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	restore := func(t *testing.T) {
		t.Helper()
		if err := os.WriteFile(keyFile, original, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(keyFile, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("personkey.secret swapped for another key is refused", func(t *testing.T) {
		if err := os.WriteFile(keyFile, []byte(randomKey()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := startFails(t, "--data", data)
		if !strings.Contains(out, keyFile) || !strings.Contains(out, "restore") {
			t.Errorf("refusal does not name the key file and say to restore it:\n%s", out)
		}
		restore(t)
	})

	t.Run("personkey.secret deleted is not replaced by a new key", func(t *testing.T) {
		if err := os.Remove(keyFile); err != nil {
			t.Fatal(err)
		}
		out := startFails(t, "--data", data)
		if !strings.Contains(out, keyFile) || !strings.Contains(out, "restore") {
			t.Errorf("refusal does not name the key file and say to restore it:\n%s", out)
		}
		if _, err := os.Stat(keyFile); err == nil {
			t.Errorf("a new key file was created")
		}
		restore(t)
	})

	t.Run("an all-zero person key is refused", func(t *testing.T) {
		fresh := t.TempDir()
		if err := os.WriteFile(filepath.Join(fresh, "personkey.secret"), []byte(strings.Repeat("00", 32)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := startFails(t, "--data", fresh)
		if !strings.Contains(out, "personkey.secret") {
			t.Errorf("refusal does not name the key file:\n%s", out)
		}
	})

	t.Run("a person key file writable by others is refused", func(t *testing.T) {
		if err := os.Chmod(keyFile, 0o666); err != nil {
			t.Fatal(err)
		}
		out := startFails(t, "--data", data)
		if !strings.Contains(out, keyFile) || !strings.Contains(out, "chmod 600") {
			t.Errorf("refusal does not name the key file and the fix:\n%s", out)
		}
		restore(t)
	})

	t.Run("a person key file readable by others is made private, and nird says so", func(t *testing.T) {
		if err := os.Chmod(keyFile, 0o644); err != nil {
			t.Fatal(err)
		}
		nd := startNird(t, data)
		nd.Stop(t, syscall.SIGTERM)
		fi, err := os.Stat(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %04o after start, want 0600", fi.Mode().Perm())
		}
		if logs := strings.Join(nd.Logs(), "\n"); !strings.Contains(logs, "person key file was open to others") || !strings.Contains(logs, "0644") {
			t.Errorf("nird did not say it fixed the key file's mode")
		}
		restore(t)
	})

	t.Run("personkey.secret swapped on a stream without a key fingerprint is refused", func(t *testing.T) {
		dropKeyFingerprint(t, data)
		if err := os.WriteFile(keyFile, []byte(randomKey()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := startFails(t, "--data", data)
		if !strings.Contains(out, keyFile) || !strings.Contains(out, "registrations") {
			t.Errorf("refusal does not name the key file and the registrations it was checked against:\n%s", out)
		}
		restore(t)
	})

	t.Run("the original key still starts", func(t *testing.T) {
		nd := startNird(t, data)
		nd.Stop(t, syscall.SIGTERM)
	})
}

// dropKeyFingerprint makes the stream of nird's data directory (nird stopped) one that names
// no person key, as one made by an older nird, or by hand: its registrations tell the key.
func dropKeyFingerprint(t *testing.T, data string) {
	t.Helper()
	withStore(t, data, func(js jetstream.JetStream) {
		st, err := js.Stream(context.Background(), "NIR_EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		delete(cfg.Metadata, "nir_person_key")
		if _, err := js.UpdateStream(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDamage_SharedStreamOtherKey: a second nird with a data directory (and person key) of its
// own, against the same NATS cluster, would key the same national ids differently. Before the
// fix it started and served.
func TestDamage_SharedStreamOtherKey(t *testing.T) {
	srv := natstest.RunServer(t, natstest.Options{})
	first := startNird(t, t.TempDir(), "--nats-url", srv.ClientURL())
	registerPersons(t, first, 0, 1)
	out := startFails(t, "--data", t.TempDir(), "--nats-url", srv.ClientURL())
	if !strings.Contains(out, "personkey.secret") {
		t.Errorf("refusal does not name the key file:\n%s", out)
	}
}

// TestDamage_StreamReplaced: the stream is deleted and re-created, or rolled back, behind the
// read models' back. Before the fix nird kept the old checkpoint (lag 0 against an emptier
// stream) and new appends below it never reached the read models.
func TestDamage_StreamReplaced(t *testing.T) {
	for _, recreate := range []struct {
		name string
		fn   func(t *testing.T, js jetstream.JetStream)
	}{
		{"stream deleted and re-created by hand: models rebuilt, new appends visible", func(t *testing.T, js jetstream.JetStream) {
			// From its saved configuration, as nats stream add --config would, without
			// the metadata nird writes.
			st, err := js.Stream(context.Background(), "NIR_EVENTS")
			if err != nil {
				t.Fatal(err)
			}
			cfg := st.CachedInfo().Config
			cfg.Metadata = nil
			if err := js.DeleteStream(context.Background(), "NIR_EVENTS"); err != nil {
				t.Fatal(err)
			}
			if _, err := js.CreateStream(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
		}},
		{"stream deleted, nird re-creates it: models rebuilt, new appends visible", func(t *testing.T, js jetstream.JetStream) {
			if err := js.DeleteStream(context.Background(), "NIR_EVENTS"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(recreate.name, func(t *testing.T) {
			data := t.TempDir()
			nd := startNird(t, data)
			registerPersons(t, nd, 0, 5)
			nd.Stop(t, syscall.SIGTERM)
			withStore(t, data, func(js jetstream.JetStream) { recreate.fn(t, js) })
			nd = startNird(t, data)
			fresh := registerPersons(t, nd, 100, 2)
			deadline := time.Now().Add(30 * time.Second)
			for {
				a, err := answers(nd)
				if err == nil && personCount(a) == len(fresh) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the person list does not show exactly the %d persons of the new stream (err %v)", len(fresh), err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}

	t.Run("stream rolled back and written again while the read models were away", func(t *testing.T) {
		data := t.TempDir()
		nd := startNird(t, data)
		registerPersons(t, nd, 0, 3)
		nd.Stop(t, syscall.SIGTERM)
		backup := t.TempDir()
		copyDir(t, filepath.Join(data, "jetstream"), backup)
		nd = startNird(t, data)
		registerPersons(t, nd, 10, 3) // the models move on to seq 12
		nd.Stop(t, syscall.SIGTERM)
		models := filepath.Join(data, "projections", "models.db")
		kept, err := os.ReadFile(models)
		if err != nil {
			t.Fatal(err)
		}
		// Roll the stream back to seq 6, write 5 other persons on it (seq 7..16) with the
		// models moved away, then bring the models of seq 12 back.
		if err := os.RemoveAll(filepath.Join(data, "jetstream")); err != nil {
			t.Fatal(err)
		}
		copyDir(t, backup, filepath.Join(data, "jetstream"))
		os.Remove(models)
		nd = startNird(t, data)
		registerPersons(t, nd, 20, 5)
		want := settledAnswers(t, nd)
		nd.Stop(t, syscall.SIGTERM)
		if err := os.WriteFile(models, kept, 0o600); err != nil {
			t.Fatal(err)
		}
		nd = startNird(t, data)
		awaitAnswers(t, nd, want)
	})

	t.Run("models.db of another register is not served", func(t *testing.T) {
		other := t.TempDir()
		nd := startNird(t, other)
		registerPersons(t, nd, 50, 3)
		nd.Stop(t, syscall.SIGTERM)
		data := t.TempDir()
		nd = startNird(t, data)
		registerPersons(t, nd, 0, 4)
		want := settledAnswers(t, nd)
		nd.Stop(t, syscall.SIGTERM)
		foreign, err := os.ReadFile(filepath.Join(other, "projections", "models.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "projections", "models.db"), foreign, 0o600); err != nil {
			t.Fatal(err)
		}
		nd = startNird(t, data)
		awaitAnswers(t, nd, want)
	})
}

// copyDir copies the tree src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDamage_ModelFile: models.db damaged on disk. Before the fix a truncated file crashed
// nird inside bbolt (SIGSEGV) at every start, flipped bytes were served as garbled person keys
// and dates, and a file of garbage stopped nird from starting.
func TestDamage_ModelFile(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	registerPersons(t, nd, 0, 40)
	want := settledAnswers(t, nd)
	nd.Stop(t, syscall.SIGTERM)
	models := filepath.Join(data, "projections", "models.db")
	good, err := os.ReadFile(models)
	if err != nil {
		t.Fatal(err)
	}
	attacks := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"models.db truncated to half", func(b []byte) []byte { return b[:len(b)/2] }},
		{"200 random bytes of models.db flipped (seed 1)", flipper(1)},
		{"200 random bytes of models.db flipped (seed 2)", flipper(2)},
		{"200 random bytes of models.db flipped (seed 3)", flipper(3)},
		{"models.db replaced by random garbage", func(b []byte) []byte {
			g := make([]byte, len(b))
			_, _ = rand.Read(g)
			return g
		}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			if err := os.WriteFile(models, a.damage(bytes.Clone(good)), 0o600); err != nil {
				t.Fatal(err)
			}
			nd := startNird(t, data)
			awaitAnswers(t, nd, want)
			nd.Stop(t, syscall.SIGTERM)
			if code := nd.Cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("nird exit code %d after SIGTERM", code)
			}
		})
	}
}

// TestDamage_ModelFileWhileServed: bytes of models.db flipped while nird serves it (a disk
// going bad, a stray process) are found by the operator's verify, taken out of service and
// rebuilt; the damaged file is kept. Before the fix nothing looked: the flipped bytes were
// served.
func TestDamage_ModelFileWhileServed(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	persons := registerPersons(t, nd, 0, 10)
	want := settledAnswers(t, nd)
	models := filepath.Join(data, "projections", "models.db")
	b, err := os.ReadFile(models)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(models, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	flipped := 0
	for _, p := range persons[:3] {
		for i := 0; ; {
			j := bytes.Index(b[i:], []byte(p.key))
			if j < 0 {
				break
			}
			i += j
			if _, err := f.WriteAt([]byte{b[i+7] ^ 0x01}, int64(i+7)); err != nil {
				t.Fatal(err)
			}
			flipped++
			i++
		}
	}
	f.Close()
	if flipped == 0 {
		t.Fatal("no person key found in models.db")
	}
	res, err := call(nd, "operator", "/nir.v1.AdminService/VerifyProjections", map[string]any{})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if problems, _ := res["problems"].([]any); len(problems) == 0 {
		t.Fatalf("verify found nothing in a file with %d flipped bytes: %v", flipped, res)
	}
	awaitAnswers(t, nd, want)
	if kept, _ := filepath.Glob(models + ".damaged-*"); len(kept) != 1 {
		t.Errorf("the damaged file was not kept: %v", kept)
	}
}

// flipper returns a damage function that flips 200 bytes at random places (seeded).
func flipper(seed uint64) func([]byte) []byte {
	return func(b []byte) []byte {
		r := mrand.New(mrand.NewPCG(seed, seed))
		for range 200 {
			i := r.IntN(len(b))
			b[i] ^= byte(1 + r.IntN(255))
		}
		return b
	}
}

// TestDamage_DiskFull: a local process fills the event store's disk while a case system
// appends. The embedded server keeps a failed write's error and stores nothing more until it
// restarts, even once the disk has room again. Before the fix nird went on serving and
// saying it was ready while every append waited 10 s for an answer that never came, until
// somebody restarted it by hand; and a restart on the still full disk answered appends with
// Internal. Now nird stops at once with the reason (its supervisor starts it again), a
// restart on the full disk serves queries and answers appends with Unavailable, and once
// there is room again every acknowledged registration is there, once.
//
// The disk is a tmpfs of its own under the data directory's jetstream/, so that only the
// event store's disk fills (mounting needs root; the test is skipped without).
func TestDamage_DiskFull(t *testing.T) {
	data := t.TempDir()
	jsDir := filepath.Join(data, "jetstream")
	mountDisk(t, jsDir, "48m")
	var logs []string
	nd := startNird(t, data)
	acked := map[string]int{} // person key: events acknowledged (registration, offer)
	var ids []string
	for i := range 20 {
		p, err := registerPerson(context.Background(), nd, i)
		if err != nil {
			t.Fatal(err)
		}
		acked[p.key] = 2
		ids = append(ids, p.id)
	}

	// The attack: a file that takes every byte left.
	filler := fillDisk(t, jsDir)

	// Appends go on until one fails; nird must then stop by itself.
	failed := false
	for i := 20; i < 60 && !failed; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		p, err := registerPerson(ctx, nd, i)
		cancel()
		ids = append(ids, p.id)
		switch {
		case err == nil:
			acked[p.key] = 2
		case p.key != "":
			acked[p.key] = 1 // registered, the offer failed
			failed = true
		default:
			failed = true
		}
	}
	if !failed {
		t.Fatal("40 appends on a full disk were all acknowledged")
	}
	select {
	case <-nd.Done:
	case <-time.After(30 * time.Second):
		st, _ := call(nd, "operator", nirv1connect.AdminServiceProjectionStatusProcedure, map[string]any{})
		t.Fatalf("nird went on for 30 s after its event store failed a write (status %v): every later append would wait for an answer that never comes", st)
	}
	logs = append(logs, nd.Logs()...)
	if code := nd.Cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("nird stopped with exit code 0 after a failed write; its supervisor restarts it only on failure")
	}
	if !slices.ContainsFunc(nd.Logs(), func(l string) bool {
		return strings.Contains(l, "nird stops") && strings.Contains(l, "failed to write to its disk")
	}) {
		t.Errorf("nird's log does not say why it stopped")
	}

	// Restarted on the full disk: queries are served, appends refused with Unavailable.
	nd = startNird(t, data)
	if _, err := answers(nd); err != nil {
		t.Fatalf("queries on a full disk: %v", err)
	}
	_, err := registerPerson(context.Background(), nd, 100)
	ids = append(ids, rules.SyntheticFodselsnummer(rules.Date{Y: 1980, M: time.Month(5), D: 17}, 100))
	if code := connect.CodeOf(err); code != connect.CodeUnavailable || !strings.Contains(err.Error(), "no room") {
		t.Errorf("an append on a full disk: %v (code %v), want Unavailable saying there is no room", err, code)
	}
	nd.Stop(t, syscall.SIGTERM)
	logs = append(logs, nd.Logs()...)

	// Room again, and a restart: nothing acknowledged is lost, nothing is stored twice.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	nd = startNird(t, data)
	if _, err := registerPerson(context.Background(), nd, 200); err != nil {
		t.Fatalf("an append once there is room again: %v", err)
	}
	settledAnswers(t, nd)
	reg := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL())
	for key, n := range acked {
		hr := connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: key}})
		hr.Header().Set("Authorization", "Bearer kommune:"+kommune)
		res, err := reg.History(context.Background(), hr)
		if err != nil {
			t.Fatalf("history of an acknowledged person: %v", err)
		}
		seen := map[string]bool{}
		for _, e := range res.Msg.GetEvents() {
			if seen[e.GetEvent().GetId()] {
				t.Errorf("person %s: event %s stored twice", key, e.GetEvent().GetId())
			}
			seen[e.GetEvent().GetId()] = true
		}
		if len(seen) < n {
			t.Errorf("person %s: %d events stored, %d acknowledged", key, len(seen), n)
		}
	}
	noIDInLog(t, append(logs, nd.Logs()...), ids...)
}

// noIDInLog fails the test if a line of logs holds one of the national ids.
func noIDInLog(t *testing.T, logs []string, ids ...string) {
	t.Helper()
	for _, l := range logs {
		for _, id := range ids {
			if id != "" && strings.Contains(l, id) {
				t.Fatalf("a national id in nird's log: %q", l)
			}
		}
	}
}

// TestDamage_ModelDiskFull: a local process fills the read models' disk (data/projections;
// on Kubernetes nird's volume, apart from the NATS nodes'). Before the fix the projections'
// failed write ended nird: no queries, no appends, and a restart on the still full disk
// ended the same way as soon as there was an event to fold. Now the models stay as they
// are and are served, appends go on, and once there is room the models catch up and equal a
// fold from scratch.
func TestDamage_ModelDiskFull(t *testing.T) {
	data := t.TempDir()
	models := filepath.Join(data, "projections")
	mountDisk(t, models, "16m")
	nd := startNird(t, data)
	registerPersons(t, nd, 0, 10)
	settledAnswers(t, nd)
	filler := fillDisk(t, models)
	for i := 10; i < 30; i++ {
		if _, err := registerPerson(context.Background(), nd, i); err != nil {
			t.Fatalf("an append while the read models' disk is full: %v", err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !slices.ContainsFunc(nd.Logs(), func(l string) bool { return strings.Contains(l, "the read models' disk is full") }) {
		select {
		case <-nd.Done:
			t.Fatal("nird stopped when its read models' disk filled")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("nird does not say that the read models' disk is full")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a, err := answers(nd); err != nil || personCount(a) < 10 {
		t.Fatalf("queries while the read models' disk is full: %v (%d persons listed)", err, personCount(a))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	got := settledAnswers(t, nd)
	if personCount(got) != 30 {
		t.Fatalf("%d persons listed once there is room, want 30", personCount(got))
	}
	nd.Stop(t, syscall.SIGTERM)
	if err := os.Remove(filepath.Join(models, "models.db")); err != nil {
		t.Fatal(err)
	}
	nd = startNird(t, data)
	if want := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Fatal("the models that waited for room differ from a fold from scratch")
	}
}

// mountDisk mounts a tmpfs of size at dir, a disk of its own to fill, until the test ends.
// Mounting needs root; the test is skipped without.
func mountDisk(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a disk of its own to fill needs mount (root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// fillDisk writes a file into dir that takes every byte left on its disk, and returns it.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, zeros{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v", err)
	}
	f.Close()
	return filler
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestDamage_DataKeys: entries of the data-key bucket (KV_NIR_KEYS) replaced by bytes that
// do not open. Before the fix nird stopped at every start that folded the models from the
// stream: they stopped at the first event sealed with such a key. Now nird serves; what the
// damaged keys sealed reads as unreadable, the log names the entries (never a national id),
// and every person is listed.
func TestDamage_DataKeys(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	persons := registerPersons(t, nd, 0, 6)
	want := settledAnswers(t, nd)
	nd.Stop(t, syscall.SIGTERM)
	withStore(t, data, func(js jetstream.JetStream) {
		kv, err := js.KeyValue(context.Background(), eventstore.KeyBucket)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := kv.ListKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var damaged []string
		for k := range keys.Keys() {
			if k != "_master" && len(damaged) < 2 {
				damaged = append(damaged, k)
			}
		}
		if len(damaged) < 2 {
			t.Fatal("fewer than two data keys in the bucket")
		}
		publish(t, js, "$KV."+eventstore.KeyBucket+"."+damaged[0], bytes.Repeat([]byte{0x5a}, 60))
		publish(t, js, "$KV."+eventstore.KeyBucket+"."+damaged[1], []byte("x"))
	})
	// The models are folded from the stream again: every sealed field is opened.
	if err := os.Remove(filepath.Join(data, "projections", "models.db")); err != nil {
		t.Fatal(err)
	}
	nd = startNird(t, data)
	got := settledAnswers(t, nd)
	if personCount(got) != personCount(want) {
		t.Errorf("%d persons listed, want %d", personCount(got), personCount(want))
	}
	if _, err := registerPerson(context.Background(), nd, 40); err != nil {
		t.Errorf("an append beside the damaged keys: %v", err)
	}
	if !slices.ContainsFunc(nd.Logs(), func(l string) bool { return strings.Contains(l, "the entry is damaged") }) {
		t.Error("nird does not say that a data key entry is damaged")
	}
	for _, p := range persons {
		noIDInLog(t, nd.Logs(), p.id)
	}
	select {
	case <-nd.Done:
		t.Fatal("nird stopped")
	default:
	}
}
