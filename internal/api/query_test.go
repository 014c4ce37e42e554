package api

// These tests serve the query and admin services and the CSV export the way nird does:
// Connect handlers and the plain route behind the real auth.Guard with Policy(), on
// httptest, over read models folded into a real bbolt file from a slice of events by the
// projections runtime.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// Tokens of the test principals.
const (
	qtOslo     = "qt-oslo"     // kommune 0301
	qtBergen   = "qt-bergen"   // kommune 4601
	qtAnalyst  = "qt-analyst"  // analyst
	qtOperator = "qt-operator" // operator
	qtSystem   = "qt-system"   // system (regelmotor)
	qtNone     = ""            // no token
)

const (
	oslo   = "0301"
	bergen = "4601"
)

// qClock is the register's clock in these tests: 23:30 UTC on 3 June 2024 is already 4 June
// in Europe/Oslo, so the default "now" shows which calendar is used.
var qClock = time.Date(2024, 6, 3, 23, 30, 0, 0, time.UTC)

// qPerson is one synthetic person of the test population.
type qPerson struct {
	name string
	fnr  string
	key  string
}

// qWorld is the served population.
type qWorld struct {
	url    string
	proj   *projections.Projector
	feed   *projections.SliceFeed
	people map[string]qPerson
	recs   []projections.Record
	q      *Query // the service itself, for in-process calls
}

// qBuilder appends events with sequences and recorded times.
type qBuilder struct {
	keys   *personkey.Keyer
	recs   []projections.Record
	people map[string]qPerson
}

func qd(s string) *nirv1.Date { return rules.MustParseDate(s).Proto() }

// add records an event for the person on recorded date rec (noon UTC).
func (b *qBuilder) add(name, kommune, rec string, set func(ev *nirv1.Event)) string {
	n := len(b.recs) + 1
	at, err := time.Parse("2006-01-02", rec)
	if err != nil {
		panic(err)
	}
	ev := &nirv1.Event{
		Id: fmt.Sprintf("01QTEST%019d", n), PersonKey: b.people[name].key, Kommune: kommune,
		RecordedAt: timestamppb.New(at.Add(12 * time.Hour)),
		Actor:      &nirv1.Actor{Subject: "fagsystem-" + kommune, Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE},
	}
	set(ev)
	b.recs = append(b.recs, projections.Record{Seq: uint64(n), Event: ev})
	return ev.Id
}

func (b *qBuilder) person(name, kommune, permit string, seq int) {
	birth := rules.MustDate(1988, 3, 14)
	fnr := rules.SyntheticFodselsnummer(birth, seq)
	b.people[name] = qPerson{name: name, fnr: fnr, key: b.keys.Key(fnr)}
	p := rules.MustParseDate(permit)
	b.add(name, kommune, permit, func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: fnr, BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: p.Proto(), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: p.AddDays(-30).Proto(),
			SettlementDate: p.AddMonths(1).Proto(), SettlementKommune: kommune, SettledByAgreement: true,
		}}
	})
}

func (b *qBuilder) programme(name, kommune, from string) {
	b.add(name, kommune, from, func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: qd(from), FromDate: qd(from)}}
	})
}

// population is five persons in Oslo and Bergen:
//
//	p1 Oslo, IL, programme terminated 2023-03-01 with reason ARBEID (recorded 2023-03-05)
//	p2 Oslo, IL, programme with a computed termination 2023-03-01 (recorded 2023-03-02)
//	p3 Bergen, IntroL, programme never terminated (its end date long passed)
//	p4 settled in Bergen, moved to Oslo on 2022-01-10
//	p5 Bergen, IL, training vedtak and norsk hours
func population(tb testing.TB, keys *personkey.Keyer) ([]projections.Record, map[string]qPerson) {
	tb.Helper()
	b := &qBuilder{keys: keys, people: map[string]qPerson{}}
	b.person("p1", oslo, "2021-03-01", 1)
	b.programme("p1", oslo, "2021-05-01")
	b.add("p1", oslo, "2021-05-10", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_SluttmalRegistered{SluttmalRegistered: &nirv1.SluttmalRegistered{
			Sluttmal: nirv1.Sluttmal_SLUTTMAL_FULLFORT_VGO, Date: qd("2021-05-10")}}
	})
	b.add("p1", oslo, "2023-03-05", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
			Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: qd("2023-03-01")}}
	})
	b.person("p2", oslo, "2021-02-01", 2)
	b.programme("p2", oslo, "2021-03-01")
	b.add("p2", oslo, "2023-03-02", func(ev *nirv1.Event) {
		ev.Actor = &nirv1.Actor{Subject: rules.RegelmotorSubject, Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM}
		ev.Payload = &nirv1.Event_TerminationComputed{TerminationComputed: &nirv1.TerminationComputed{
			Rule: nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT, Reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT,
			Date: qd("2023-03-01"), ProgrammeStart: qd("2021-03-01"), RuleVersion: "test"}}
	})
	b.person("p3", bergen, "2019-06-01", 3)
	b.programme("p3", bergen, "2019-08-01")
	b.person("p4", bergen, "2021-05-01", 4)
	b.add("p4", bergen, "2022-01-12", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: oslo, Date: qd("2022-01-10")}}
	})
	b.person("p5", bergen, "2022-01-01", 5)
	b.add("p5", bergen, "2022-03-01", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: &nirv1.TrainingVedtakRegistered{
			Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT, Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING,
			VedtakDate: qd("2022-03-01"), StartDate: qd("2022-03-01")}}
	})
	b.add("p5", bergen, "2022-04-02", func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
			Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: 2022, Month: 3}, Hours: 42.5}}
	})
	// Events must sort by sequence and recorded time alike for the as-of replay to mean
	// something; the builder above adds them per person, so order them by recorded time.
	recs := b.recs
	slices.SortStableFunc(recs, func(a, c projections.Record) int {
		return a.Event.GetRecordedAt().AsTime().Compare(c.Event.GetRecordedAt().AsTime())
	})
	for i := range recs {
		recs[i].Seq = uint64(i + 1)
	}
	return recs, b.people
}

// startQuery folds the population into a projections directory and serves it.
func startQuery(t *testing.T) *qWorld {
	t.Helper()
	return startQueryConfig(t, QueryConfig{})
}

// startQueryConfig is startQuery with cfg's fields besides the source, keys and clock, and
// opts given to the query service's handler after the guard.
func startQueryConfig(t *testing.T, cfg QueryConfig, opts ...connect.HandlerOption) *qWorld {
	t.Helper()
	return startQueryOpen(t, cfg, nil, opts...)
}

// startQueryOpen is startQueryConfig with the read models opening events with open
// (projections.Options.Open; nil: none sealed).
func startQueryOpen(t *testing.T, cfg QueryConfig, open func(*nirv1.Event) error, opts ...connect.HandlerOption) *qWorld {
	t.Helper()
	keys := qKeys(t)
	recs, people := population(t, keys)
	return serveQuery(t, cfg, open, keys, recs, people, opts...)
}

// qKeys is the person keyer of the test population.
func qKeys(t testing.TB) *personkey.Keyer {
	t.Helper()
	keys, err := personkey.New([]byte("query test secret, not a real one"))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// serveQuery folds recs into a projections directory and serves it as startQueryOpen does;
// the world's feed takes more records (then proj.CatchUp).
func serveQuery(t *testing.T, cfg QueryConfig, open func(*nirv1.Event) error, keys *personkey.Keyer, recs []projections.Record, people map[string]qPerson, opts ...connect.HandlerOption) *qWorld {
	t.Helper()
	feed := projections.NewSliceFeed(recs)
	proj, err := projections.New(feed, projections.Options{Dir: t.TempDir(), Open: open})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proj.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := proj.CatchUp(ctx); err != nil || c != uint64(len(recs)) {
		t.Fatalf("catch up: checkpoint %d, err %v; want %d", c, err, len(recs))
	}

	var entries []auth.Entry
	for _, e := range []struct {
		tok, name string
		role      auth.Role
		kommune   string
	}{
		{qtOslo, "oslo", auth.RoleKommune, oslo}, {qtBergen, "bergen", auth.RoleKommune, bergen},
		{qtAnalyst, "analyst", auth.RoleAnalyst, ""}, {qtOperator, "operator", auth.RoleOperator, ""},
		{qtSystem, "regelmotor", auth.RoleSystem, ""},
	} {
		entries = append(entries, auth.Entry{Name: e.name, Role: e.role, Kommune: e.kommune, TokenSHA256: auth.HashToken(e.tok)})
	}
	authn, err := auth.New(entries)
	if err != nil {
		t.Fatal(err)
	}
	guard := auth.NewGuard(authn, Policy(), nil)
	cfg.Source, cfg.Keys, cfg.Now = proj, keys, func() time.Time { return qClock }
	q := NewQuery(cfg)
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewQueryServiceHandler(q, append([]connect.HandlerOption{connect.WithInterceptors(guard)}, opts...)...))
	mux.Handle(nirv1connect.NewAdminServiceHandler(NewAdmin(proj, nil), connect.WithInterceptors(guard)))
	mux.Handle(ExportPersonsPath, guard.Middleware(q.ExportHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &qWorld{url: srv.URL, proj: proj, feed: feed, people: people, recs: recs, q: q}
}

func (w *qWorld) query(token string) nirv1connect.QueryServiceClient {
	var opts []connect.ClientOption
	if token != "" {
		opts = append(opts, connect.WithInterceptors(auth.BearerInterceptor(token)))
	}
	return nirv1connect.NewQueryServiceClient(http.DefaultClient, w.url, opts...)
}

func (w *qWorld) admin(token string) nirv1connect.AdminServiceClient {
	var opts []connect.ClientOption
	if token != "" {
		opts = append(opts, connect.WithInterceptors(auth.BearerInterceptor(token)))
	}
	return nirv1connect.NewAdminServiceClient(http.DefaultClient, w.url, opts...)
}

// csv fetches the export; it returns the status and the body.
func (w *qWorld) csv(t *testing.T, token, method string, params url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, w.url+ExportPersonsPath+"?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		auth.SetBearer(req.Header, token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

func (w *qWorld) key(name string) *nirv1.PersonRef {
	return &nirv1.PersonRef{PersonKey: w.people[name].key}
}

func (w *qWorld) fnr(name string) *nirv1.PersonRef {
	return &nirv1.PersonRef{NationalId: w.people[name].fnr}
}

// codeOf is the Connect code of err, or 0 for nil.
func codeOf(err error) connect.Code {
	if err == nil {
		return 0
	}
	return connect.CodeOf(err)
}

// drain reads a server stream to its end.
func drain[T any](s *connect.ServerStreamForClient[T]) ([]*T, error) {
	var out []*T
	for s.Receive() {
		out = append(out, s.Msg())
	}
	return out, s.Err()
}

// TestQuery_RoleMatrix calls every endpoint as every role: the roles the policy allows
// succeed, the rest are refused (PermissionDenied, or Unauthenticated without a token).
func TestQuery_RoleMatrix(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	type endpoint struct {
		name string
		call func(token string) error
		// allowed roles by token; the value is the code they get (0 = OK).
		allowed map[string]connect.Code
	}
	kommuneAndAnalyst := map[string]connect.Code{qtOslo: 0, qtAnalyst: 0}
	operatorOnly := map[string]connect.Code{qtOperator: 0}
	endpoints := []endpoint{
		{"ListPersons", func(tok string) error {
			_, err := w.query(tok).ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: oslo}))
			return err
		}, kommuneAndAnalyst},
		{"GetPerson", func(tok string) error {
			_, err := w.query(tok).GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: w.key("p1")}))
			return err
		}, kommuneAndAnalyst},
		{"PersonDeadlines", func(tok string) error {
			_, err := w.query(tok).PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: w.key("p1")}))
			return err
		}, kommuneAndAnalyst},
		{"Statistics", func(tok string) error {
			_, err := w.query(tok).Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2023, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION}))
			return err
		}, kommuneAndAnalyst},
		{"TerminatedReport", func(tok string) error {
			_, err := w.query(tok).TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023}))
			return err
		}, kommuneAndAnalyst},
		{"AuditHistory", func(tok string) error {
			_, err := w.query(tok).AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: w.key("p1")}))
			return err
		}, map[string]connect.Code{qtOslo: 0, qtAnalyst: connect.CodePermissionDenied}},
		{"ExportPersonsCSV", func(tok string) error {
			status, body := w.csv(t, tok, http.MethodGet, url.Values{"kommune": {oslo}})
			switch status {
			case http.StatusOK:
				return nil
			case http.StatusUnauthorized:
				return connect.NewError(connect.CodeUnauthenticated, errors.New(body))
			case http.StatusForbidden:
				return connect.NewError(connect.CodePermissionDenied, errors.New(body))
			}
			return fmt.Errorf("status %d: %s", status, body)
		}, kommuneAndAnalyst},
		{"ProjectionStatus", func(tok string) error {
			_, err := w.admin(tok).ProjectionStatus(ctx, connect.NewRequest(&nirv1.ProjectionStatusRequest{}))
			return err
		}, operatorOnly},
		{"ListSnapshots", func(tok string) error {
			_, err := w.admin(tok).ListSnapshots(ctx, connect.NewRequest(&nirv1.ListSnapshotsRequest{}))
			return err
		}, operatorOnly},
		{"Rebuild", func(tok string) error {
			s, err := w.admin(tok).Rebuild(ctx, connect.NewRequest(&nirv1.RebuildRequest{}))
			if err != nil {
				return err
			}
			_, err = drain(s)
			return err
		}, operatorOnly},
		{"CreateSnapshot", func(tok string) error {
			s, err := w.admin(tok).CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "matrix", CutoffDate: qd("2022-12-31")}))
			if err != nil {
				return err
			}
			_, err = drain(s)
			return err
		}, operatorOnly},
		{"DeleteSnapshot", func(tok string) error {
			_, err := w.admin(tok).DeleteSnapshot(ctx, connect.NewRequest(&nirv1.DeleteSnapshotRequest{Name: "no-such-snapshot"}))
			return err
		}, map[string]connect.Code{qtOperator: connect.CodeNotFound}},
		{"VerifyProjections", func(tok string) error {
			res, err := w.admin(tok).VerifyProjections(ctx, connect.NewRequest(&nirv1.VerifyProjectionsRequest{}))
			if err == nil && (len(res.Msg.GetProblems()) > 0 || res.Msg.GetValues() == 0) {
				return fmt.Errorf("verify of sound models: %v", res.Msg)
			}
			return err
		}, operatorOnly},
	}
	for _, ep := range endpoints {
		for _, tok := range []string{qtOslo, qtAnalyst, qtOperator, qtSystem, qtNone} {
			name := tok
			if name == "" {
				name = "no-token"
			}
			t.Run(ep.name+"/"+name, func(t *testing.T) {
				want, ok := ep.allowed[tok]
				if !ok {
					want = connect.CodePermissionDenied
					if tok == qtNone {
						want = connect.CodeUnauthenticated
					}
				}
				if got := codeOf(ep.call(tok)); got != want {
					t.Errorf("%s as %s: code %v, want %v", ep.name, name, got, want)
				}
			})
		}
	}
}

// TestQuery_KommuneIsolation checks that a kommune never sees another kommune's person: not
// in its list, not by key or national id, not in its CSV, statistics or report, and that a
// person it has had (moved away) stays visible to it.
func TestQuery_KommuneIsolation(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	osloQ, bergenQ := w.query(qtOslo), w.query(qtBergen)

	t.Run("OwnList", func(t *testing.T) {
		res, err := osloQ.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res.Msg.GetRows() {
			got = append(got, r.GetPersonKey())
			if r.GetKommune() != oslo {
				t.Errorf("row of kommune %s in Oslo's list", r.GetKommune())
			}
		}
		want := []string{w.people["p1"].key, w.people["p2"].key, w.people["p4"].key}
		slices.Sort(want)
		if !slices.Equal(got, want) || res.Msg.GetTotal() != 3 {
			t.Errorf("Oslo's list = %v (total %d), want %v", got, res.Msg.GetTotal(), want)
		}
	})

	denied := []struct {
		name string
		call func() error
		want connect.Code
	}{
		{"ListOtherKommune", func() error {
			_, err := osloQ.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: bergen}))
			return err
		}, connect.CodePermissionDenied},
		{"GetPersonByKey", func() error {
			_, err := osloQ.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: w.key("p5")}))
			return err
		}, connect.CodeNotFound},
		{"GetPersonByNationalID", func() error {
			_, err := osloQ.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: w.fnr("p3")}))
			return err
		}, connect.CodeNotFound},
		{"PersonDeadlines", func() error {
			_, err := osloQ.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: w.key("p3")}))
			return err
		}, connect.CodeNotFound},
		{"AuditHistory", func() error {
			_, err := osloQ.AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: w.key("p5")}))
			return err
		}, connect.CodeNotFound},
		{"StatisticsOtherKommune", func() error {
			_, err := osloQ.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE, Area: bergen}))
			return err
		}, connect.CodePermissionDenied},
		{"StatisticsOtherFylke", func() error {
			_, err := osloQ.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE, Area: "46"}))
			return err
		}, connect.CodePermissionDenied},
		{"ReportOtherKommune", func() error {
			_, err := osloQ.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, Kommune: bergen}))
			return err
		}, connect.CodePermissionDenied},
		// A person another kommune has had answers like a person that does not exist.
		{"UnknownPersonAlike", func() error {
			_, err := osloQ.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: strings.Repeat("ab", 32)}}))
			return err
		}, connect.CodeNotFound},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := codeOf(err); got != tc.want {
				t.Fatalf("code %v (%v), want %v", got, err, tc.want)
			}
			for _, p := range w.people {
				if strings.Contains(err.Error(), p.fnr) {
					t.Errorf("error names a national id: %v", err)
				}
			}
		})
	}

	t.Run("CSVOtherKommune", func(t *testing.T) {
		if status, _ := w.csv(t, qtOslo, http.MethodGet, url.Values{"kommune": {bergen}}); status != http.StatusForbidden {
			t.Errorf("status %d, want 403", status)
		}
		status, body := w.csv(t, qtOslo, http.MethodGet, nil)
		if status != http.StatusOK {
			t.Fatalf("own CSV: status %d: %s", status, body)
		}
		for _, name := range []string{"p3", "p5"} {
			if strings.Contains(body, w.people[name].key) || strings.Contains(body, w.people[name].fnr) {
				t.Errorf("Oslo's CSV holds Bergen's %s", name)
			}
		}
		if !strings.Contains(body, w.people["p1"].fnr) {
			t.Errorf("Oslo's CSV lacks its own person's national id:\n%s", body)
		}
	})

	t.Run("ReportOwnKommune", func(t *testing.T) {
		res, err := osloQ.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023}))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Msg.GetRows()) != 2 {
			t.Errorf("rows = %d, want 2 (p1, p2)", len(res.Msg.GetRows()))
		}
		for _, r := range res.Msg.GetRows() {
			if r.GetKommune() != oslo {
				t.Errorf("report row of kommune %s", r.GetKommune())
			}
		}
	})

	t.Run("StatisticsOwn", func(t *testing.T) {
		res, err := osloQ.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE}))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Msg.GetRows() {
			if r.GetArea() != oslo {
				t.Errorf("statistics of area %s for Oslo", r.GetArea())
			}
		}
		if len(res.Msg.GetRows()) != 1 || res.Msg.GetRows()[0].GetParticipants() != 2 {
			t.Errorf("Oslo 2022 = %v, want one row with 2 participants", res.Msg.GetRows())
		}
	})

	// A kommune the person moved away from keeps its own period: the person's history as far
	// as it registered it, not the person's status now (README "Kommune boundaries").
	t.Run("FormerKommuneKeepsItsPeriod", func(t *testing.T) {
		if _, err := bergenQ.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: w.fnr("p4")})); codeOf(err) != connect.CodeNotFound {
			t.Errorf("Bergen reads the status of p4, who moved to Oslo: %v", err)
		}
		res, err := osloQ.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: w.fnr("p4")}))
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Msg.GetPerson(); got.GetKommune() != oslo || got.GetNationalId() != w.people["p4"].fnr {
			t.Errorf("p4 for Oslo = kommune %s, national id shown %v", got.GetKommune(), got.GetNationalId() != "")
		}
		hist, err := bergenQ.AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: w.key("p4")}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(hist.Msg.GetEntries()); n != 2 {
			t.Errorf("p4's history has %d entries, want 2", n)
		}
		list, err := bergenQ.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.Msg.GetRows() {
			if r.GetPersonKey() == w.people["p4"].key {
				t.Error("p4 moved to Oslo but is in Bergen's list")
			}
		}
	})
}

// TestQuery_AnalystNeverSeesNationalIDs serializes every answer an analyst can get and
// looks for every national id of the population in it.
func TestQuery_AnalystNeverSeesNationalIDs(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	an := w.query(qtAnalyst)
	var answers []string
	add := func(m proto.Message, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, string(b))
	}
	for _, k := range []string{oslo, bergen} {
		res, err := an.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{Kommune: k}))
		add(res.Msg, err)
		if len(res.Msg.GetRows()) == 0 {
			t.Fatalf("analyst got no rows for %s", k)
		}
		status, body := w.csv(t, qtAnalyst, http.MethodGet, url.Values{"kommune": {k}})
		if status != http.StatusOK {
			t.Fatalf("CSV %s: status %d: %s", k, status, body)
		}
		if header, _, _ := strings.Cut(body, "\n"); strings.Contains(header, "national_id") {
			t.Errorf("analyst CSV header has national_id: %s", header)
		}
		answers = append(answers, body)
	}
	programmeStarts := 0
	for name := range w.people {
		res, err := an.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: w.key(name)}))
		add(res.Msg, err)
		dl, err := an.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: w.key(name)}))
		add(dl.Msg, err)
		for _, d := range dl.Msg.GetDeadlines() {
			// Every deadline of the read model has its kind (the programme start's was added
			// on 2026-12-06, review of the read models).
			if d.GetKind() == nirv1.DeadlineKind_DEADLINE_KIND_UNSPECIFIED {
				t.Errorf("PersonDeadlines of %s: a deadline without a kind: %v", name, d)
			}
			if d.GetKind() == nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_START {
				programmeStarts++
			}
		}
	}
	if programmeStarts == 0 {
		t.Errorf("no PersonDeadlines answer has the programme start deadline (DOMAIN.md 1.2)")
	}
	for _, lv := range []nirv1.StatisticsLevel{nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE, nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE, nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION} {
		res, err := an.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022, Level: lv}))
		add(res.Msg, err)
	}
	rep, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023}))
	add(rep.Msg, err)
	if len(rep.Msg.GetRows()) != 2 {
		t.Errorf("analyst report rows = %d, want 2", len(rep.Msg.GetRows()))
	}

	// The HTTP+JSON wire form, as a browser or curl gets it.
	for _, k := range []string{oslo, bergen} {
		req, _ := http.NewRequest(http.MethodPost, w.url+nirv1connect.QueryServiceListPersonsProcedure, strings.NewReader(`{"kommune":"`+k+`"}`))
		req.Header.Set("Content-Type", "application/json")
		auth.SetBearer(req.Header, qtAnalyst)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"personKey"`) {
			t.Fatalf("JSON ListPersons %s: %d %s", k, res.StatusCode, body)
		}
		answers = append(answers, string(body))
	}

	all := strings.Join(answers, "\n")
	for name, p := range w.people {
		if strings.Contains(all, p.fnr) {
			t.Errorf("an analyst answer holds %s's national id", name)
		}
		if !strings.Contains(all, p.key) {
			t.Errorf("analyst answers lack %s's person key (the check above would prove nothing)", name)
		}
	}

	// The same reads as the kommune do show the ids, so the search above can find them.
	res, err := w.query(qtOslo).GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: w.key("p1")}))
	if err != nil || res.Msg.GetPerson().GetNationalId() != w.people["p1"].fnr {
		t.Errorf("kommune GetPerson: national id %q, err %v", res.Msg.GetPerson().GetNationalId(), err)
	}

	t.Run("LookupByNationalID", func(t *testing.T) {
		_, err := an.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: w.fnr("p1")}))
		if codeOf(err) != connect.CodePermissionDenied || strings.Contains(err.Error(), w.people["p1"].fnr) {
			t.Errorf("analyst lookup by national id: %v, want PermissionDenied without the id", err)
		}
	})
}

// fieldOf returns the FieldViolation's field of a Connect error.
func fieldOf(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	for _, d := range ce.Details() {
		if v, derr := d.Value(); derr == nil {
			if fv, ok := v.(*nirv1.FieldViolation); ok {
				return fv.GetField()
			}
		}
	}
	return ""
}

// TestQuery_InvalidArgument checks that bad inputs are InvalidArgument naming the field.
func TestQuery_InvalidArgument(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	an, os := w.query(qtAnalyst), w.query(qtOslo)
	list := func(c nirv1connect.QueryServiceClient, m *nirv1.ListPersonsRequest) error {
		_, err := c.ListPersons(ctx, connect.NewRequest(m))
		return err
	}
	f := func(mod func(f *nirv1.PersonFilter)) *nirv1.ListPersonsRequest {
		m := &nirv1.ListPersonsRequest{Kommune: oslo, Filter: &nirv1.PersonFilter{}}
		mod(m.Filter)
		return m
	}
	badFnr := w.people["p1"].fnr[:10] + string('0'+(w.people["p1"].fnr[10]-'0'+1)%10)
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"ListNoKommune", func() error { return list(an, &nirv1.ListPersonsRequest{}) }, "kommune"},
		{"ListBadKommune", func() error { return list(an, &nirv1.ListPersonsRequest{Kommune: "03x1"}) }, "kommune"},
		{"ListLaw", func() error { return list(an, f(func(f *nirv1.PersonFilter) { f.Law = 99 })) }, "filter.law"},
		{"ListPresence", func() error { return list(an, f(func(f *nirv1.PersonFilter) { f.Tiltak = 7 })) }, "filter.tiltak"},
		{"ListReason", func() error { return list(an, f(func(f *nirv1.PersonFilter) { f.TerminationReason = 200 })) }, "filter.termination_reason"},
		{"ListMinHours", func() error { return list(an, f(func(f *nirv1.PersonFilter) { f.MinNorskHours = -1 })) }, "filter.min_norsk_hours"},
		{"ListMaxBelowMin", func() error {
			return list(an, f(func(f *nirv1.PersonFilter) { f.MinNorskHours, f.MaxNorskHours = 100, 50 }))
		}, "filter.max_norsk_hours"},
		{"ListYear", func() error { return list(an, f(func(f *nirv1.PersonFilter) { f.Year = 12 })) }, "filter.year"},
		{"ListCategory", func() error { return list(an, f(func(f *nirv1.PersonFilter) { f.TrainingCategory = 77 })) }, "filter.training_category"},
		{"ListComputed", func() error { return list(an, f(func(f *nirv1.PersonFilter) { f.TerminationComputed = 3 })) }, "filter.termination_computed"},
		{"ListDeadline", func() error { return list(an, f(func(f *nirv1.PersonFilter) { f.Deadline = 9 })) }, "filter.deadline"},
		{"ListWithinDays", func() error { return list(an, f(func(f *nirv1.PersonFilter) { f.WithinDays = -1 })) }, "filter.within_days"},
		{"ListSort", func() error { return list(an, &nirv1.ListPersonsRequest{Kommune: oslo, Sort: 99}) }, "sort"},
		{"ListPageSize", func() error { return list(an, &nirv1.ListPersonsRequest{Kommune: oslo, PageSize: 5000}) }, "page_size"},
		{"ListPageToken", func() error { return list(an, &nirv1.ListPersonsRequest{Kommune: oslo, PageToken: "abc"}) }, "page_token"},
		{"ListNow", func() error {
			return list(os, &nirv1.ListPersonsRequest{Now: &nirv1.Date{Year: 2023, Month: 2, Day: 30}})
		}, "now"},
		{"ListSnapshot", func() error { return list(os, &nirv1.ListPersonsRequest{Snapshot: "../models"}) }, "snapshot"},
		{"GetNoPerson", func() error {
			_, err := os.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{}))
			return err
		}, "person"},
		{"GetBoth", func() error {
			_, err := os.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: w.people["p1"].key, NationalId: w.people["p1"].fnr}}))
			return err
		}, "person"},
		{"GetBadKey", func() error {
			_, err := an.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: "XYZ"}}))
			return err
		}, "person.person_key"},
		{"GetBadNationalID", func() error {
			_, err := os.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{NationalId: badFnr}}))
			return err
		}, "person.national_id"},
		{"DeadlinesWithin", func() error {
			_, err := os.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: w.key("p1"), WithinDays: -3}))
			return err
		}, "within_days"},
		{"DeadlinesWithinTooMany", func() error { // the bound's first refused day (3660 is ten years)
			_, err := os.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: w.key("p1"), WithinDays: 3661}))
			return err
		}, "within_days"},
		{"DeadlinesNow", func() error {
			_, err := os.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: w.key("p1"), Now: &nirv1.Date{Year: 2023, Month: 13, Day: 1}}))
			return err
		}, "now"},
		{"StatsYear", func() error {
			_, err := an.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION}))
			return err
		}, "year"},
		{"StatsLevel", func() error {
			_, err := an.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022}))
			return err
		}, "level"},
		{"StatsFylkeArea", func() error {
			_, err := an.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE, Area: "0301"}))
			return err
		}, "area"},
		{"StatsNationArea", func() error {
			_, err := an.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION, Area: "03"}))
			return err
		}, "area"},
		{"ReportYear", func() error {
			_, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 20230}))
			return err
		}, "year"},
		{"ReportKommune", func() error {
			_, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, Kommune: "abc"}))
			return err
		}, "kommune"},
		{"ReportRegistered", func() error {
			_, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, RegisteredReason: 5}))
			return err
		}, "registered_reason"},
		{"ReportLaw", func() error {
			_, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, Law: 42}))
			return err
		}, "law"},
		{"RebuildModel", func() error {
			s, err := w.admin(qtOperator).Rebuild(ctx, connect.NewRequest(&nirv1.RebuildRequest{Model: "nope"}))
			if err != nil {
				return err
			}
			_, err = drain(s)
			return err
		}, "model"},
		{"SnapshotNoCutoff", func() error {
			s, err := w.admin(qtOperator).CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "x"}))
			if err != nil {
				return err
			}
			_, err = drain(s)
			return err
		}, "cutoff_date"},
		{"SnapshotName", func() error {
			s, err := w.admin(qtOperator).CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "a/b", CutoffDate: qd("2023-02-28")}))
			if err != nil {
				return err
			}
			_, err = drain(s)
			return err
		}, "name"},
		// Snapshots are logged by name: one that looks like a national id would put it there.
		{"SnapshotNameNationalID", func() error {
			s, err := w.admin(qtOperator).CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: w.people["p1"].fnr, CutoffDate: qd("2023-02-28")}))
			if err != nil {
				return err
			}
			_, err = drain(s)
			return err
		}, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if codeOf(err) != connect.CodeInvalidArgument || fieldOf(err) != tc.field {
				t.Fatalf("err = %v (field %q), want InvalidArgument naming %q", err, fieldOf(err), tc.field)
			}
			if !strings.HasPrefix(connect.CodeOf(err).String(), "invalid") || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("message %q does not name %q", err, tc.field)
			}
			if strings.Contains(err.Error(), badFnr) || strings.Contains(err.Error(), w.people["p1"].fnr) {
				t.Errorf("error holds a national id: %v", err)
			}
		})
	}

	csvTests := []struct {
		name   string
		params url.Values
		field  string
	}{
		{"UnknownParam", url.Values{"kommune": {oslo}, "programe_vedtak": {"with"}}, "programe_vedtak"},
		{"Law", url.Values{"kommune": {oslo}, "law": {"XX"}}, "law"},
		{"Presence", url.Values{"kommune": {oslo}, "tiltak": {"maybe"}}, "tiltak"},
		{"Now", url.Values{"kommune": {oslo}, "now": {"2023-02-30"}}, "now"},
		{"Sort", url.Values{"kommune": {oslo}, "sort": {"shoe_size"}}, "sort"},
		{"Twice", url.Values{"kommune": {oslo, bergen}}, "kommune"},
		{"NoKommune", url.Values{}, "kommune"},
		{"Hours", url.Values{"kommune": {oslo}, "min_norsk_hours": {"-4"}}, "min_norsk_hours"},
	}
	for _, tc := range csvTests {
		t.Run("CSV"+tc.name, func(t *testing.T) {
			status, body := w.csv(t, qtAnalyst, http.MethodGet, tc.params)
			if status != http.StatusBadRequest || !strings.HasPrefix(body, tc.field+":") {
				t.Errorf("status %d body %q, want 400 naming %q", status, body, tc.field)
			}
		})
	}
}

// TestQuery_ErrorsHoldNoNationalID checks that what a caller sends where a national id does
// not belong (a parameter's name, a snapshot's name) does not come back in the error.
func TestQuery_ErrorsHoldNoNationalID(t *testing.T) {
	w := startQuery(t)
	fnr := w.people["p1"].fnr
	for _, tc := range []struct {
		name   string
		params url.Values
		status int
	}{
		{"ParameterName", url.Values{fnr: {""}}, http.StatusBadRequest},
		{"ParameterNameWithValue", url.Values{"kommune": {oslo}, fnr: {"with"}}, http.StatusBadRequest},
		{"Snapshot", url.Values{"snapshot": {fnr}}, http.StatusNotFound},
	} {
		t.Run("CSV"+tc.name, func(t *testing.T) {
			status, body := w.csv(t, qtOslo, http.MethodGet, tc.params)
			if status != tc.status || strings.Contains(body, fnr) {
				t.Errorf("status %d body %q, want %d without the national id", status, body, tc.status)
			}
		})
	}
	t.Run("ListSnapshot", func(t *testing.T) {
		_, err := w.query(qtOslo).ListPersons(context.Background(), connect.NewRequest(&nirv1.ListPersonsRequest{Snapshot: fnr}))
		if codeOf(err) != connect.CodeNotFound || strings.Contains(err.Error(), fnr) {
			t.Errorf("err = %v, want NotFound without the national id", err)
		}
	})
}

// TestQuery_ListPersons covers filters, order and paging of the person list.
func TestQuery_ListPersons(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	os := w.query(qtOslo)
	keys := func(rows []*nirv1.PersonRow) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r.GetPersonKey())
		}
		return out
	}
	sorted := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, w.people[n].key)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		req  *nirv1.ListPersonsRequest
		want []string
	}{
		{"All", &nirv1.ListPersonsRequest{}, sorted("p1", "p2", "p4")},
		{"WithProgramme", &nirv1.ListPersonsRequest{Filter: &nirv1.PersonFilter{ProgrammeVedtak: nirv1.PresenceFilter_PRESENCE_FILTER_WITH}}, sorted("p1", "p2")},
		{"WithoutProgramme", &nirv1.ListPersonsRequest{Filter: &nirv1.PersonFilter{ProgrammeVedtak: nirv1.PresenceFilter_PRESENCE_FILTER_WITHOUT}}, sorted("p4")},
		{"WithSluttmal", &nirv1.ListPersonsRequest{Filter: &nirv1.PersonFilter{Sluttmal: nirv1.PresenceFilter_PRESENCE_FILTER_WITH}}, sorted("p1")},
		{"ReasonNotRegistered", &nirv1.ListPersonsRequest{Filter: &nirv1.PersonFilter{TerminationReason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT}}, sorted("p2")},
		{"IntroL", &nirv1.ListPersonsRequest{Filter: &nirv1.PersonFilter{Law: nirv1.Law_LAW_INTROL}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := os.ListPersons(ctx, connect.NewRequest(tc.req))
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(res.Msg.GetRows()); !slices.Equal(got, tc.want) {
				t.Errorf("rows = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("Paging", func(t *testing.T) {
		var got []string
		token := ""
		for range 10 {
			res, err := os.ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{PageSize: 1, PageToken: token, Desc: true, Sort: nirv1.PersonSort_PERSON_SORT_PERSON_KEY}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Msg.GetTotal() != 3 || len(res.Msg.GetRows()) != 1 {
				t.Fatalf("page: total %d, rows %d", res.Msg.GetTotal(), len(res.Msg.GetRows()))
			}
			got = append(got, keys(res.Msg.GetRows())...)
			if token = res.Msg.GetNextPageToken(); token == "" {
				break
			}
		}
		want := sorted("p1", "p2", "p4")
		slices.Reverse(want)
		if !slices.Equal(got, want) {
			t.Errorf("pages = %v, want %v", got, want)
		}
	})

	t.Run("OverdueBergen", func(t *testing.T) {
		res, err := w.query(qtBergen).ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{
			Filter: &nirv1.PersonFilter{Deadline: nirv1.DeadlineFilter_DEADLINE_FILTER_OVERDUE}}))
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(res.Msg.GetRows()); !slices.Contains(got, w.people["p3"].key) {
			t.Errorf("overdue in Bergen = %v, want p3 (IntroL programme never terminated)", got)
		}
	})
}

// TestQuery_PersonDeadlines checks statuses, days left and the Oslo default "now".
func TestQuery_PersonDeadlines(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	bq := w.query(qtBergen)
	row, err := bq.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: w.key("p3")}))
	if err != nil {
		t.Fatal(err)
	}
	end, ok := rules.DateOf(row.Msg.GetPerson().GetProgrammeEnd())
	if !ok {
		t.Fatalf("p3 has no programme end: %v", row.Msg.GetPerson())
	}
	tests := []struct {
		name     string
		now      rules.Date
		within   int32
		state    nirv1.DeadlineState
		daysLeft int32
	}{
		{"Overdue", end.AddDays(1), 0, nirv1.DeadlineState_DEADLINE_STATE_OVERDUE, -1},
		{"DueSoon", end.AddDays(-10), 0, nirv1.DeadlineState_DEADLINE_STATE_DUE_SOON, 10},
		{"DueToday", end, 0, nirv1.DeadlineState_DEADLINE_STATE_DUE_SOON, 0},
		{"OK", end.AddDays(-100), 0, nirv1.DeadlineState_DEADLINE_STATE_OK, 100},
		{"WiderWarning", end.AddDays(-100), 120, nirv1.DeadlineState_DEADLINE_STATE_DUE_SOON, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := bq.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: w.key("p3"), Now: tc.now.Proto(), WithinDays: tc.within}))
			if err != nil {
				t.Fatal(err)
			}
			var got *nirv1.DeadlineStatus
			for _, d := range res.Msg.GetDeadlines() {
				if d.GetKind() == nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_END {
					got = d
				}
			}
			if got == nil {
				t.Fatalf("no programme end deadline in %v", res.Msg.GetDeadlines())
			}
			if got.GetState() != tc.state || got.GetDaysLeft() != tc.daysLeft || got.GetKommune() != bergen {
				t.Errorf("programme end = %v, %d days left, kommune %s; want %v, %d, %s", got.GetState(), got.GetDaysLeft(), got.GetKommune(), tc.state, tc.daysLeft, bergen)
			}
		})
	}
	t.Run("DefaultNowIsOsloToday", func(t *testing.T) {
		res, err := bq.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: w.key("p3")}))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := rules.DateOf(res.Msg.GetNow()); got != rules.MustDate(2024, 6, 4) {
			t.Errorf("default now = %v, want 2024-06-04 (Oslo date at %v)", got, qClock)
		}
	})
}

// TestQuery_ReportAndSnapshot checks the terminated report live and in an as-of snapshot
// taken before the terminations were recorded (DOMAIN.md 6.2, Product decisions 7).
func TestQuery_ReportAndSnapshot(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	an := w.query(qtAnalyst)

	res, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, Kommune: oslo}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.GetWithReason() != 1 || res.Msg.GetWithoutReason() != 1 {
		t.Errorf("live report: with %d without %d, want 1 and 1", res.Msg.GetWithReason(), res.Msg.GetWithoutReason())
	}
	// The kategori filter of DOMAIN.md 6.2: both programmes are «rett og plikt» (asylum,
	// aged 18–55), none «kan tilbys»; the request names a kategori it does not know.
	for scheme, want := range map[nirv1.Scheme]int{nirv1.Scheme_SCHEME_RETT_OG_PLIKT: 2, nirv1.Scheme_SCHEME_KAN_TILBYS: 0} {
		res, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, Kommune: oslo, ProgrammeCategory: scheme}))
		if err != nil || len(res.Msg.GetRows()) != want || int(res.Msg.GetWithReason()+res.Msg.GetWithoutReason()) != want {
			t.Errorf("report of kategori %v: %v, %v; want %d rows", scheme, res.Msg.GetRows(), err, want)
		}
	}
	if _, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, ProgrammeCategory: 99})); codeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "programme_category") {
		t.Errorf("unknown kategori: %v, want InvalidArgument naming programme_category", err)
	}
	without, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, RegisteredReason: nirv1.PresenceFilter_PRESENCE_FILTER_WITHOUT}))
	if err != nil {
		t.Fatal(err)
	}
	if rows := without.Msg.GetRows(); len(rows) != 1 || rows[0].GetPersonKey() != w.people["p2"].key || !rows[0].GetComputed() ||
		rows[0].GetReason() != nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT {
		t.Errorf("without reason = %v, want p2's computed termination", rows)
	}

	stream, err := w.admin(qtOperator).CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "2022@2023-02-28", CutoffDate: qd("2023-02-28")}))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := drain(stream)
	if err != nil {
		t.Fatal(err)
	}
	last := msgs[len(msgs)-1]
	if !last.GetFinished() || last.GetSnapshot().GetName() != "2022@2023-02-28" || last.GetSnapshot().GetCheckpoint() == 0 {
		t.Errorf("last snapshot message = %v", last)
	}
	snap, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, Snapshot: "2022@2023-02-28"}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(snap.Msg.GetRows()); n != 0 {
		t.Errorf("snapshot as of 2023-02-28 has %d terminations of 2023, want 0 (recorded later)", n)
	}
	list, err := w.admin(qtOperator).ListSnapshots(ctx, connect.NewRequest(&nirv1.ListSnapshotsRequest{}))
	if err != nil || len(list.Msg.GetSnapshots()) != 1 {
		t.Fatalf("snapshots = %v, %v", list.Msg.GetSnapshots(), err)
	}
	// The list shows the cut-off: the end of 2023-02-28 in Oslo.
	wantCut := time.Date(2023, 3, 1, 0, 0, 0, 0, osloLocation()).Add(-time.Nanosecond)
	if got := list.Msg.GetSnapshots()[0].GetRecordedUntil(); got == nil || !got.AsTime().Equal(wantCut) {
		t.Errorf("snapshot cut-off = %v, want %v", got, wantCut)
	}
	if got := list.Msg.GetSnapshots()[0].GetProvisionalUntil(); got != nil {
		t.Errorf("a snapshot of a cut-off long past is provisional until %v", got.AsTime())
	}
	// The same name again is AlreadyExists, unless the request says replace; a cut-off
	// before every event keeps nothing and says so with checkpoint 0.
	again, err := w.admin(qtOperator).CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "2022@2023-02-28", CutoffDate: qd("2023-03-31")}))
	if err == nil {
		_, err = drain(again)
	}
	if codeOf(err) != connect.CodeAlreadyExists {
		t.Errorf("snapshot over an existing name: %v, want AlreadyExists", err)
	}
	again, err = w.admin(qtOperator).CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "2022@2023-02-28", CutoffDate: qd("2023-02-28"), Replace: true}))
	if err == nil {
		_, err = drain(again)
	}
	if err != nil {
		t.Errorf("replace: %v", err)
	}
	empty, err := w.admin(qtOperator).CreateSnapshot(ctx, connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: "tom", CutoffDate: qd("2001-01-01")}))
	if err != nil {
		t.Fatal(err)
	}
	if msgs, err := drain(empty); err != nil || msgs[len(msgs)-1].GetSnapshot().GetCheckpoint() != 0 {
		t.Errorf("snapshot before every event: %v, %v; want checkpoint 0", msgs, err)
	}
	if _, err := an.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION, Snapshot: "nope"})); codeOf(err) != connect.CodeNotFound {
		t.Errorf("unknown snapshot: %v, want NotFound", err)
	}
	if _, err := w.admin(qtOperator).DeleteSnapshot(ctx, connect.NewRequest(&nirv1.DeleteSnapshotRequest{Name: "2022@2023-02-28"})); err != nil {
		t.Fatal(err)
	}
	if _, err := an.TerminatedReport(ctx, connect.NewRequest(&nirv1.TerminatedReportRequest{Year: 2023, Snapshot: "2022@2023-02-28"})); codeOf(err) != connect.CodeNotFound {
		t.Errorf("deleted snapshot: %v, want NotFound", err)
	}
}

// TestAdmin_Rebuild streams a rebuild to its end and checks the status after it.
func TestAdmin_Rebuild(t *testing.T) {
	w := startQuery(t)
	ctx := context.Background()
	op := w.admin(qtOperator)
	stream, err := op.Rebuild(ctx, connect.NewRequest(&nirv1.RebuildRequest{Model: projections.ModelStatistics}))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := drain(stream)
	if err != nil {
		t.Fatal(err)
	}
	last := msgs[len(msgs)-1]
	if !last.GetFinished() || last.GetCheckpoint() != uint64(len(w.recs)) {
		t.Errorf("last rebuild message = %v, want finished at checkpoint %d", last, len(w.recs))
	}
	st, err := op.ProjectionStatus(ctx, connect.NewRequest(&nirv1.ProjectionStatusRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if st.Msg.GetLastSequence() != uint64(len(w.recs)) || st.Msg.GetLag() != 0 || st.Msg.GetRebuilding() || len(st.Msg.GetModels()) != len(projections.Models) {
		t.Errorf("status after rebuild = %v", st.Msg)
	}
	for _, m := range st.Msg.GetModels() {
		if m.GetCheckpoint() != uint64(len(w.recs)) {
			t.Errorf("model %s at %d, want %d", m.GetName(), m.GetCheckpoint(), len(w.recs))
		}
	}
	// The rebuilt file answers like the old one.
	res, err := w.query(qtOslo).ListPersons(ctx, connect.NewRequest(&nirv1.ListPersonsRequest{}))
	if err != nil || res.Msg.GetTotal() != 3 {
		t.Errorf("Oslo's list after rebuild: total %d, err %v", res.Msg.GetTotal(), err)
	}
}

// TestQuery_ExportCSV checks the kommune's CSV (with national ids), filters, HEAD and the
// method check.
func TestQuery_ExportCSV(t *testing.T) {
	w := startQuery(t)
	status, body := w.csv(t, qtOslo, http.MethodGet, url.Values{"programme_vedtak": {"with"}, "sort": {"person_key"}, "desc": {"true"}})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if lines[0] != strings.Join(projections.CSVColumns, ",") {
		t.Errorf("header = %s", lines[0])
	}
	if len(lines) != 3 {
		t.Fatalf("%d data lines, want 2 (p1, p2):\n%s", len(lines)-1, body)
	}
	want := []string{w.people["p1"].key, w.people["p2"].key}
	slices.Sort(want)
	slices.Reverse(want)
	for i, k := range want {
		if !strings.HasPrefix(lines[i+1], k+",") {
			t.Errorf("line %d = %s, want person %s first", i+1, lines[i+1], k)
		}
	}
	if !strings.Contains(body, w.people["p1"].fnr) {
		t.Error("kommune CSV lacks the national id")
	}

	req, _ := http.NewRequest(http.MethodHead, w.url+ExportPersonsPath, nil)
	auth.SetBearer(req.Header, qtOslo)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("HEAD: %d %v", res.StatusCode, res.Header)
	}
	// desc without a sort key reverses the default order (person key).
	status, body = w.csv(t, qtOslo, http.MethodGet, url.Values{"programme_vedtak": {"with"}, "desc": {"true"}})
	if got := strings.Split(strings.TrimSuffix(body, "\n"), "\n"); status != http.StatusOK || len(got) != 3 || !strings.HasPrefix(got[1], want[0]+",") {
		t.Errorf("desc without sort: status %d, lines %q, want %s first", status, got, want[0])
	}
	if status, _ := w.csv(t, qtOslo, http.MethodPost, nil); status != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", status)
	}
}

// TestQuery_ExportsPerPrincipal checks that a principal's CSV exports in flight are bounded
// (each holds a temporary file of the whole list until its client has read it), that the
// refusal names the limit, and that other principals are not held up by it.
func TestQuery_ExportsPerPrincipal(t *testing.T) {
	q := NewQuery(QueryConfig{MaxExportsPerPrincipal: 2})
	var dones []func()
	for range 2 {
		done, err := q.startExport("kommune:oslo@0301")
		if err != nil {
			t.Fatalf("export within the limit: %v", err)
		}
		dones = append(dones, done)
	}
	_, err := q.startExport("kommune:oslo@0301")
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "2 CSV exports in flight") {
		t.Fatalf("third export: %v, want ResourceExhausted naming the limit of 2", err)
	}
	rec := httptest.NewRecorder()
	writeHTTPError(rec, err)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("third export answered %d, Retry-After %q; want 429 with a Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	done, err := q.startExport("kommune:bergen@4601")
	if err != nil {
		t.Fatalf("another principal's export: %v", err)
	}
	done()
	dones[0]()
	if done, err = q.startExport("kommune:oslo@0301"); err != nil {
		t.Fatalf("export after one ended: %v", err)
	}
	done()
	dones[1]()
	if len(q.exports.n) != 0 {
		t.Errorf("exports in flight after every one ended: %v", q.exports.n)
	}
}

// TestQuery_StatisticsPerPrincipal: a principal has at most MaxStatisticsPerPrincipal
// Statistics calls in flight, so that it cannot queue the one suppression slot's
// computations in front of everyone else's; the refusal names the limit, is counted, and
// other principals are not held up by it.
func TestQuery_StatisticsPerPrincipal(t *testing.T) {
	q := NewQuery(QueryConfig{})
	var dones []func()
	for range MaxStatisticsPerPrincipal {
		done, err := q.startStatistics("kommune:oslo@0301")
		if err != nil {
			t.Fatalf("a call within the limit: %v", err)
		}
		dones = append(dones, done)
	}
	_, err := q.startStatistics("kommune:oslo@0301")
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "statistics calls in flight") {
		t.Fatalf("a call beyond the limit: %v, want ResourceExhausted naming the limit", err)
	}
	if got := q.Refusals().StatisticsPerPrincipal; got != 1 {
		t.Errorf("refusals counted: %d, want 1", got)
	}
	done, err := q.startStatistics("kommune:bergen@4601")
	if err != nil {
		t.Fatalf("another principal's call: %v", err)
	}
	done()
	for _, d := range dones {
		d()
	}
	if len(q.statistics.n) != 0 {
		t.Errorf("calls in flight after every one ended: %v", q.statistics.n)
	}
}

// busyProjector is the projector with a rebuild always running: the consumer-declared seam
// lets the test reach the refusal without racing a real rebuild.
type busyProjector struct{ *projections.Projector }

func (busyProjector) Rebuild(context.Context, func(projections.Progress)) error {
	return fmt.Errorf("rebuild: %w", projections.ErrRebuildRunning)
}

// TestAdmin_RebuildRunning checks that a second rebuild is FailedPrecondition.
func TestAdmin_RebuildRunning(t *testing.T) {
	w := startQuery(t)
	authn, err := auth.New([]auth.Entry{{Name: "operator", Role: auth.RoleOperator, TokenSHA256: auth.HashToken(qtOperator)}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewAdminServiceHandler(NewAdmin(busyProjector{w.proj}, nil), connect.WithInterceptors(auth.NewGuard(authn, Policy(), nil))))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := nirv1connect.NewAdminServiceClient(http.DefaultClient, srv.URL, connect.WithInterceptors(auth.BearerInterceptor(qtOperator)))
	s, err := client.Rebuild(context.Background(), connect.NewRequest(&nirv1.RebuildRequest{}))
	if err == nil {
		_, err = drain(s)
	}
	if codeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("rebuild while one runs: %v, want FailedPrecondition", err)
	}
}

// TestReadError checks how read errors are classified for callers.
func TestReadError(t *testing.T) {
	tests := []struct {
		err  error
		want connect.Code
	}{
		{fmt.Errorf("x: %w", projections.ErrNotFound), connect.CodeNotFound},
		{fmt.Errorf("%w: page_token", projections.ErrInvalidArgument), connect.CodeInvalidArgument},
		{projections.ErrClosed, connect.CodeUnavailable},
		{projections.ErrSchema, connect.CodeFailedPrecondition},
		{fmt.Errorf("%w: snapshot %q is damaged", projections.ErrCorrupt, "s"), connect.CodeDataLoss},
		{context.Canceled, connect.CodeCanceled},
		{errors.New("disk on fire"), connect.CodeInternal},
		{connect.NewError(connect.CodeNotFound, errors.New("person not found")), connect.CodeNotFound},
		{fmt.Errorf("%w (256 MiB)", projections.ErrExportDisk), connect.CodeResourceExhausted},
		// A replay that ended early (a partition): asking again once the stream is whole works.
		{fmt.Errorf("%w: seq 3", projections.ErrShortReplay), connect.CodeUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			err := readError(context.Background(), newFailures(discardLogger()), "op", tc.err)
			if got := connect.CodeOf(err); got != tc.want {
				t.Errorf("code %v, want %v", got, tc.want)
			}
			if tc.want == connect.CodeInternal && strings.Contains(err.Error(), "disk on fire") {
				t.Errorf("internal detail leaked to the caller: %v", err)
			}
		})
	}
}

// A snapshot made before its cut-off settled says until when it is provisional
// (projections' TestAsOf_ProvisionalUntilCutOffSettles makes one); a final one says nothing.
func TestSnapshotInfos_Provisional(t *testing.T) {
	until := time.Date(2024, 3, 1, 0, 10, 0, 0, time.UTC)
	got := snapshotInfos([]projections.SnapshotInfo{{Name: "ny", ProvisionalUntil: until}, {Name: "endelig"}})
	if p := got[0].GetProvisionalUntil(); p == nil || !p.AsTime().Equal(until) {
		t.Errorf("provisional snapshot: provisional_until %v, want %v", p, until)
	}
	if p := got[1].GetProvisionalUntil(); p != nil {
		t.Errorf("final snapshot: provisional_until %v, want unset", p.AsTime())
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestPersonListRequest checks that the CSV export's parameters read into the same request a
// page of the person list is asked with (the web console links one to the other), every
// filter included, and that a misspelt or repeated parameter is refused by name.
func TestPersonListRequest(t *testing.T) {
	vals := url.Values{
		"kommune": {"0301"}, "now": {"2024-01-15"}, "sort": {"norsk_hours"}, "desc": {"true"}, "snapshot": {"2022@2023-02-28"},
		"law": {"IL"}, "programme_vedtak": {"with"}, "training_vedtak": {"uten"}, "tiltak": {"without"}, "sluttmal": {"with"},
		"integreringskontrakt": {"without"}, "norskmal": {"with"}, "utdanningsbakgrunn": {"without"}, "terminated": {"with"},
		"termination_reason": {"ikke_registrert"}, "min_norsk_hours": {"10"}, "max_norsk_hours": {"250.5"}, "deadline": {"due_within"},
		"within_days": {"60"}, "year": {"2023"}, "registered_reason": {"without"}, "termination_computed": {"with"}, "norsk_hours": {"without"},
		"programme_category": {"kan_tilbys"}, "training_category": {"RETT_OG_PLIKT"},
	}
	req, err := PersonListRequest(vals)
	if err != nil {
		t.Fatal(err)
	}
	W, WO := nirv1.PresenceFilter_PRESENCE_FILTER_WITH, nirv1.PresenceFilter_PRESENCE_FILTER_WITHOUT
	want := &nirv1.ListPersonsRequest{
		Kommune: "0301", Now: &nirv1.Date{Year: 2024, Month: 1, Day: 15}, Sort: nirv1.PersonSort_PERSON_SORT_NORSK_HOURS, Desc: true,
		Snapshot: "2022@2023-02-28",
		Filter: &nirv1.PersonFilter{Law: nirv1.Law_LAW_IL, ProgrammeVedtak: W, TrainingVedtak: WO, Tiltak: WO, Sluttmal: W,
			Integreringskontrakt: WO, Norskmal: W, Utdanningsbakgrunn: WO, Terminated: W,
			TerminationReason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT, MinNorskHours: 10, MaxNorskHours: 250.5,
			Deadline: nirv1.DeadlineFilter_DEADLINE_FILTER_DUE_WITHIN, WithinDays: 60, Year: 2023, RegisteredReason: WO,
			TerminationComputed: W, NorskHours: WO, ProgrammeCategory: nirv1.Scheme_SCHEME_KAN_TILBYS,
			TrainingCategory: nirv1.Scheme_SCHEME_RETT_OG_PLIKT},
	}
	if !proto.Equal(req, want) {
		t.Errorf("request = %v\nwant      %v", req, want)
	}
	for name, vals := range map[string]url.Values{
		"tiltak":             {"tiltak": {"kanskje"}},
		"programme_category": {"programme_category": {"alle"}},
		"year":               {"year": {"i fjor"}},
		"misspelt":           {"misspelt": {"with"}},
		"law":                {"law": {"IL", "IL"}},
	} {
		_, err := PersonListRequest(vals)
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.HasPrefix(ce.Message(), name+":") {
			t.Errorf("%s: err = %v, want InvalidArgument naming %s", name, err, name)
		}
	}
}

// TestQuery_StatisticsSuppression: statistics served to an analyst suppress counts of 1–4 (and
// what would reveal them), shown as «:» with a footnote; a kommune sees its own row
// unsuppressed, the published rows of its fylke and the nation otherwise (DOMAIN.md Product
// decisions 14).
func TestQuery_StatisticsSuppression(t *testing.T) {
	t.Parallel()
	w := startQuery(t)
	ctx := context.Background()
	kommuneLevel := &nirv1.StatisticsRequest{Year: 2022, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE, Area: oslo}
	res, err := w.query(qtAnalyst).Statistics(ctx, connect.NewRequest(kommuneLevel))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Msg.GetRows()) != 1 {
		t.Fatalf("analyst rows = %v", res.Msg.GetRows())
	}
	row := res.Msg.GetRows()[0]
	if row.GetParticipants() != 0 || !slices.Contains(row.GetSuppressed(), "participants") {
		t.Errorf("analyst sees Oslo's 2 participants: %v", row)
	}
	if res.Msg.GetMinCount() != 5 || !strings.Contains(res.Msg.GetFootnote(), ":") {
		t.Errorf("min_count %d, footnote %q", res.Msg.GetMinCount(), res.Msg.GetFootnote())
	}
	res, err = w.query(qtOslo).Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE}))
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Msg.GetRows(); len(r) != 1 || r[0].GetParticipants() != 2 || len(r[0].GetSuppressed()) != 0 {
		t.Errorf("Oslo's own row: %v, want 2 participants unsuppressed", r)
	}
	res, err = w.query(qtOslo).Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE}))
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Msg.GetRows(); len(r) != 1 || !slices.Contains(r[0].GetSuppressed(), "participants") {
		t.Errorf("Oslo's fylke row is the published one: %v", r)
	}
}
