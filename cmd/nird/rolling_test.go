package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/nirdtest"
	"github.com/introreg/nir/internal/verify"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// rollingBase is the older nird of TestNird_RollingUpgrade: 69704da (2026-12-07), the last
// build whose read models have SchemaVersion 21 (89c94b9 made it 22). The event schema
// (events.proto) is the same in both: it has not changed since 6854d86 (2026-12-04).
const rollingBase = "69704da2dfe7e60cbea0b1fe78b208de068f27dd"

// TestNird_RollingUpgrade runs an older and the current nird as processes on one external
// NATS server, as a rolling upgrade does for a while, with their own data directories and the
// keys the deployment shares (person key, master key, checkpoint key): appends through both,
// also to a person the other registered, are stored and folded alike by both; neither
// quarantines anything; one regelmotor (until the current build meets an event it cannot
// read, TestNird_RollingUpgradeRegelmotor) and one checkpoint signer run; and once the older
// one is replaced by the current build on its data directory, its read models (of the older
// schema) are rebuilt and answer as the other's.
func TestNird_RollingUpgrade(t *testing.T) {
	oldBin := nirdtest.BuildAt(t, rollingBase, nirdtest.NirdPackage)
	natsURL := natstest.RunServer(t, natstest.Options{NoSync: true}).ClientURL()
	common := []string{"--nats-url", natsURL, "--log-level", "debug", "--lease-ttl", "2s",
		"--checkpoint-every", "4", "--checkpoint-interval", "1s"}
	dataOld := t.TempDir()
	older := nirdtest.StartBin(t, oldBin, append([]string{"--data", dataOld}, common...)...)
	// The current one shares the keys the older one made on its first start.
	shared := []string{"--person-key-file", filepath.Join(dataOld, "personkey.secret"),
		"--master-key-file", filepath.Join(dataOld, "master.key"), "--checkpoint-key", filepath.Join(dataOld, "checkpoint.key")}
	current := startNird(t, t.TempDir(), append(shared, common...)...)

	// Persons registered through one nird get their offer through the other, and their
	// training through the first again: each append reads the person the other wrote.
	var last uint64
	keys := map[int]string{}
	both := []*nirdtest.Nird{older, current}
	appendMixed := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			id, reqs := personRequests(i)
			reqs = append(reqs, &nirv1.AppendRequest{Registrations: rollingTraining(id)})
			via := both
			if i%2 == 1 {
				via = []*nirdtest.Nird{both[1], both[0]}
			}
			for j, req := range reqs {
				res, err := regClient(via[j%2]).Append(context.Background(), connect.NewRequest(req))
				if err != nil {
					t.Fatalf("person %d, append %d through %s: %v", i, j, nirdName(via[j%2], older), err)
				}
				last = max(last, res.Msg.GetPositions()[0].GetSequence())
				keys[i] = res.Msg.GetPositions()[0].GetPersonKey()
			}
		}
	}
	appendMixed(0, 6)
	want := rollingModels(t, current, last)
	got := rollingModels(t, older, last)
	if !proto.Equal(got.persons, want.persons) {
		t.Errorf("the older nird's person list differs from the current one's:\nolder   %v\ncurrent %v", got.persons, want.persons)
	}
	if len(want.persons.GetRows()) != 6 {
		t.Errorf("person list holds %d rows, want 6", len(want.persons.GetRows()))
	}
	rollingHealthy(t, both, 1)

	// An event of a payload kind neither build knows, as a newer build's new kind would be
	// to an older one: both keep it in the person's history, fold the person without it and
	// quarantine nothing, and appends to the person go on through either. The current build
	// leaves the regelmotor (TestNird_RollingUpgradeRegelmotor); the older, from before that
	// rule, holds its lease.
	future := rollingFutureEvent(t, natsURL, keys[0])
	id0, _ := personRequests(0)
	for i, n := range both {
		h, err := regClient(n).History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: keys[0]}}))
		if err != nil {
			t.Fatalf("%s: History with an event of an unknown kind: %v", nirdName(n, older), err)
		}
		if !slices.ContainsFunc(h.Msg.GetEvents(), func(e *nirv1.StoredEvent) bool { return e.GetSequence() == future }) {
			t.Errorf("%s: the event of an unknown kind is not in the person's history", nirdName(n, older))
		}
		more := rollingTraining(id0)[1]
		more.GetEvent().GetTrainingHoursRegistered().Month.Month = int32(5 + i)
		res, err := regClient(n).Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{more}}))
		if err != nil {
			t.Fatalf("%s: append after an event of an unknown kind: %v", nirdName(n, older), err)
		}
		last = max(last, res.Msg.GetPositions()[0].GetSequence())
	}
	want = rollingModels(t, current, last)
	if got := rollingModels(t, older, last); !proto.Equal(got.persons, want.persons) {
		t.Errorf("after an event of an unknown kind the person lists differ:\nolder   %v\ncurrent %v", got.persons, want.persons)
	}
	rollingHealthy(t, both, 1)
	if metricValue(t, older, "nir_regelmotor_lease_held") != 1 {
		t.Error("after an event of a kind neither knows, the regelmotor's lease is not the older build's")
	}

	// A request with a field the older build does not know (a newer nirctl's paging of the
	// report) is refused by it, not answered as if the field were not there.
	_, err := nirv1connect.NewQueryServiceClient(http.DefaultClient, older.URL(), connect.WithInterceptors(auth.BearerInterceptor("kommune:0301"))).
		TerminatedReport(context.Background(), connect.NewRequest(&nirv1.TerminatedReportRequest{Kommune: "0301", Year: 2024, PageSize: 2}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("the older nird answered a report request with a field it does not know: %v, want InvalidArgument", err)
	}

	// The older one is replaced by the current build on its data directory.
	older.Stop(t, syscall.SIGTERM)
	replaced := startNird(t, dataOld, common...)
	if !slices.ContainsFunc(replaced.Logs(), func(l string) bool { return strings.Contains(l, "read-model schema changed") }) {
		t.Errorf("the replaced nird's log does not say its read models' schema changed")
	}
	both = []*nirdtest.Nird{replaced, current}
	appendMixed(6, 10)
	want = rollingModels(t, current, last)
	got = rollingModels(t, replaced, last)
	if !proto.Equal(got.persons, want.persons) || !proto.Equal(got.stats, want.stats) || !proto.Equal(got.report, want.report) {
		t.Errorf("after the replacement the two nird's read models differ:\nreplaced %v\n%v\n%v\ncurrent  %v\n%v\n%v",
			got.persons, got.stats, got.report, want.persons, want.stats, want.report)
	}
	if len(want.persons.GetRows()) != 10 {
		t.Errorf("person list holds %d rows, want 10", len(want.persons.GetRows()))
	}
	for _, n := range both {
		st := rollingStatus(t, n)
		for _, m := range st.GetModels() {
			if m.GetSchemaVersion() != projections.SchemaVersion {
				t.Errorf("%s: model %s has schema %d, want %d", n.Data, m.GetName(), m.GetSchemaVersion(), projections.SchemaVersion)
			}
		}
	}
	// Both are of the current build, which does not know the event's kind: neither runs the
	// regelmotor (a newer build would).
	rollingHealthy(t, both, 0)
	rollingVerify(t, natsURL, filepath.Join(dataOld, "checkpoint.key"), last)
}

// rollingVerify walks the stream at natsURL as nirctl verify does: every event's chain holds
// and every checkpoint, whichever build signed it, is signed with the shared key and matches
// the stream through at least sequence seq.
func rollingVerify(t *testing.T, natsURL, keyFile string, seq uint64) {
	t.Helper()
	key, err := loadCheckpointKey(keyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := eventstore.Open(ctx, eventstore.Config{URL: natsURL})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		rep, err := verify.Stream(ctx, store, verify.Options{PublicKey: key.Public().(ed25519.PublicKey)})
		if err != nil || !rep.OK() {
			t.Fatalf("verify: %v %+v", err, rep.Problems)
		}
		if rep.CheckpointThrough >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoints cover the stream through %d, want %d", rep.CheckpointThrough, seq)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rollingFutureEvent stores, on the person with key personKey, an event of a payload kind
// this build does not know (nirdtest.FutureKindField, the kind nirdtest.BuildNewer adds),
// linked into the person's chain as nird links its own, and returns its sequence.
func rollingFutureEvent(t *testing.T, natsURL, personKey string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := eventstore.Open(ctx, eventstore.Config{URL: natsURL})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_, last, err := store.Read(ctx, personKey)
	if err != nil {
		t.Fatal(err)
	}
	_, prev, err := store.MsgAt(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: personKey, Kommune: "0301",
		RecordedAt: timestamppb.Now(), PrevHash: eventstore.HashOf(prev)}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	future := protowire.AppendTag(nil, 1, protowire.BytesType)
	future = protowire.AppendString(future, "a field of the new kind")
	data = protowire.AppendTag(data, nirdtest.FutureKindField, protowire.BytesType)
	data = protowire.AppendBytes(data, future)
	subject, err := eventstore.Subject(personKey)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, ev.Id)
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// rollingTraining registers a training tildeling and norsk hours for the person with national
// id id: the statistics of SchemaVersion 22 count the persons given norsk hours, those of 21
// did not.
func rollingTraining(id string) []*nirv1.Registration {
	date := func(m, d int) *nirv1.Date { return &nirv1.Date{Year: 2024, Month: int32(m), Day: int32(d)} }
	vedtak := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: &nirv1.TrainingVedtakRegistered{
			Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT, Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING,
			VedtakDate: date(3, 15), StartDate: date(3, 15)}}}}
	hours := &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
			Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: 2024, Month: 4}, Hours: 40}}}}
	return []*nirv1.Registration{vedtak, hours}
}

// rollingModelsOf is what TestNird_RollingUpgrade compares of two nird's read models.
type rollingModelsOf struct {
	persons *nirv1.ListPersonsResponse
	stats   *nirv1.StatisticsResponse
	report  *nirv1.TerminatedReportResponse
}

// rollingModels reads 0301's person list, the statistics and the terminated report of 2024
// from n once its read models hold sequence seq.
func rollingModels(t *testing.T, n *nirdtest.Nird, seq uint64) rollingModelsOf {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q := nirv1connect.NewQueryServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor("analyst")))
	k := nirv1connect.NewQueryServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor("kommune:0301")))
	var m rollingModelsOf
	for deadline := time.Now().Add(time.Minute); ; {
		persons, err := k.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: "0301", PageSize: 100, MinSequence: seq,
			Now: &nirv1.Date{Year: 2024, Month: 6, Day: 1}}))
		if err == nil {
			m.persons = persons.Msg
			break
		}
		// A nird that rebuilds its models answers Unavailable meanwhile.
		if connect.CodeOf(err) != connect.CodeUnavailable || time.Now().After(deadline) {
			t.Fatalf("%s: ListPersons: %v", n.Data, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stats, err := q.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2024, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE, MinSequence: seq}))
	if err != nil {
		t.Fatalf("%s: Statistics: %v", n.Data, err)
	}
	report, err := k.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Kommune: "0301", Year: 2024, MinSequence: seq}))
	if err != nil {
		t.Fatalf("%s: TerminatedReport: %v", n.Data, err)
	}
	m.stats, m.report = stats.Msg, report.Msg
	return m
}

// rollingStatus is n's ProjectionStatus.
func rollingStatus(t *testing.T, n *nirdtest.Nird) *nirv1.ProjectionStatusResponse {
	t.Helper()
	admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor("operator")))
	res, err := admin.ProjectionStatus(context.Background(), connect.NewRequest(&nirv1.ProjectionStatusRequest{}))
	if err != nil {
		t.Fatalf("%s: ProjectionStatus: %v", n.Data, err)
	}
	return res.Msg
}

// rollingHealthy checks that every nird of ns serves, none quarantined a message, that
// regelmotors of them hold the regelmotor's lease and exactly one signs checkpoints.
func rollingHealthy(t *testing.T, ns []*nirdtest.Nird, regelmotors float64) {
	t.Helper()
	for _, n := range ns {
		select {
		case <-n.Done:
			t.Fatalf("%s: nird exited", n.Data)
		default:
		}
		if q := rollingStatus(t, n).GetQuarantinedTotal(); q != 0 {
			t.Errorf("%s: %d messages quarantined", n.Data, q)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		var held, signers float64
		for _, n := range ns {
			held += metricValue(t, n, "nir_regelmotor_lease_held")
			if metricValue(t, n, "nir_checkpoint_stream_seq") > 0 {
				signers++
			}
		}
		if held == regelmotors && signers == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("regelmotor lease held by %v nird, checkpoints signed by %v, want %v and 1", held, signers, regelmotors)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// nirdName says which of the test's nird n is.
func nirdName(n, older *nirdtest.Nird) string {
	if n == older {
		return "the older nird"
	}
	return fmt.Sprintf("the current nird (%s)", n.Data)
}

// TestNird_RollingUpgradeRegelmotor runs the current build as the older nird of the next
// rolling upgrade, beside a newer build that knows one event kind more (nirdtest.BuildNewer).
// The current one holds the regelmotor's lease and appends a person's computed termination;
// once an event of the newer kind is stored, it gives the lease up and appends no
// computed termination more, and the newer one takes the regelmotor over: the termination of
// a person registered afterwards is the newer one's. Both are then killed (SIGKILL) mid-upgrade
// and the older one started again: it leaves the regelmotor still, until the newer one is
// back. Last the older one is upgraded in place, and runs the regelmotor. Before, the older one
// held the lease on and computed terminations from persons folded without the events it
// cannot read.
func TestNird_RollingUpgradeRegelmotor(t *testing.T) {
	newBin := nirdtest.BuildNewer(t, nirdtest.NirdPackage)
	natsURL := natstest.RunServer(t, natstest.Options{NoSync: true}).ClientURL()
	common := []string{"--nats-url", natsURL, "--lease-ttl", "2s", "--regelmotor-interval", "200ms"}
	dataOld := t.TempDir()
	older := startNird(t, dataOld, common...)
	waitMetric(t, older, "nir_regelmotor_lease_held", 1)
	shared := []string{"--person-key-file", filepath.Join(dataOld, "personkey.secret"),
		"--master-key-file", filepath.Join(dataOld, "master.key"), "--checkpoint-key", filepath.Join(dataOld, "checkpoint.key")}
	newerArgs := append(append([]string{"--data", t.TempDir(), "--log-level", "debug"}, shared...), common...)
	newer := nirdtest.StartBin(t, newBin, newerArgs...)

	key0 := rollingRegister(t, older, 0)
	rollingTermination(t, older, key0)
	if metricValue(t, older, "nir_regelmotor_terminations_appended_total") == 0 {
		t.Fatal("the person's computed termination was not the lease holder's")
	}

	rollingFutureEvent(t, natsURL, key0)
	waitMetric(t, older, "nir_regelmotor_lease_held", 0)
	waitMetric(t, newer, "nir_regelmotor_lease_held", 1)
	if !slices.ContainsFunc(older.Logs(), func(l string) bool { return strings.Contains(l, "regelmotor is left to a newer nird") }) {
		t.Error("the older nird's log does not say why it gave the regelmotor up")
	}
	appended := metricValue(t, older, "nir_regelmotor_terminations_appended_total")

	key1 := rollingRegister(t, older, 1)
	rollingTermination(t, newer, key1)
	if metricValue(t, newer, "nir_regelmotor_terminations_appended_total") == 0 {
		t.Error("the newer nird appended no computed termination")
	}
	if got := metricValue(t, older, "nir_regelmotor_terminations_appended_total"); got != appended {
		t.Errorf("the older nird appended %v computed terminations after the event it cannot read", got-appended)
	}

	// The newer nird, the lease holder, is killed mid-upgrade, and so is the older one,
	// which starts again on its data directory: for two lease terms after the newer one's
	// term ran out it neither takes the lease nor appends the termination due on a person
	// registered meanwhile; the newer one, started again, does.
	newer.Stop(t, syscall.SIGKILL)
	older.Stop(t, syscall.SIGKILL)
	older = startNird(t, dataOld, common...)
	key2 := rollingRegister(t, older, 2)
	time.Sleep(6 * time.Second)
	if held := metricValue(t, older, "nir_regelmotor_lease_held"); held != 0 {
		t.Error("the older nird, started again, took the regelmotor's lease")
	}
	if got := metricValue(t, older, "nir_regelmotor_terminations_appended_total"); got != 0 {
		t.Errorf("the older nird, started again, appended %v computed terminations", got)
	}
	newer = nirdtest.StartBin(t, newBin, newerArgs...)
	rollingTermination(t, newer, key2)
	waitMetric(t, newer, "nir_regelmotor_lease_held", 1)

	// The older one is upgraded in place: the newer build on its data directory, of the same
	// read-model schema, rebuilds the models the older build folded without the event, and
	// runs the regelmotor once the other newer one is gone.
	older.Stop(t, syscall.SIGTERM)
	upgraded := nirdtest.StartBin(t, newBin, append([]string{"--data", dataOld, "--log-level", "debug"}, common...)...)
	newer.Stop(t, syscall.SIGTERM)
	waitMetric(t, upgraded, "nir_regelmotor_lease_held", 1)
	if !slices.ContainsFunc(upgraded.Logs(), func(l string) bool { return strings.Contains(l, "folded by an older build") }) {
		t.Error("the upgraded nird's log does not say why it rebuilt its read models")
	}
}

// rollingRegister registers person i through n with an introduction programme begun on
// 2024-04-02, whose computed termination (FRIST_UTLOPT: two years on) is due now, and
// returns its person key.
func rollingRegister(t *testing.T, n *nirdtest.Nird, i int) string {
	t.Helper()
	id, reqs := personRequests(i)
	date := func(y, m, d int) *nirv1.Date { return &nirv1.Date{Year: int32(y), Month: int32(m), Day: int32(d)} }
	on := func(ev *nirv1.Event) *nirv1.Registration {
		ev.Id, ev.Kommune = ulid.Make().String(), "0301"
		return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: ev}
	}
	reqs = append(reqs, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{
		on(&nirv1.Event{Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: date(2024, 4, 2), FromDate: date(2024, 4, 2)}}}),
		on(&nirv1.Event{Payload: &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{
			Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: date(2024, 4, 2)}}}),
	}})
	var key string
	for _, req := range reqs {
		res, err := regClient(n).Append(context.Background(), connect.NewRequest(req))
		if err != nil {
			t.Fatalf("person %d: %v", i, err)
		}
		key = res.Msg.GetPositions()[0].GetPersonKey()
	}
	return key
}

// rollingTermination waits until the history of the person with key personKey, read
// through n, holds a computed termination.
func rollingTermination(t *testing.T, n *nirdtest.Nird, personKey string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		h, err := regClient(n).History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: personKey}}))
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(h.Msg.GetEvents(), func(e *nirv1.StoredEvent) bool { return e.GetEvent().GetTerminationComputed() != nil }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no computed termination in the person's history within 30s: %v", h.Msg.GetEvents())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitMetric waits until n's unlabelled metric name is want.
func waitMetric(t *testing.T, n *nirdtest.Nird, name string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		got := metricValue(t, n, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is %v after 30s, want %v", n.Data, name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
