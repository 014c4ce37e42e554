package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// benchKommuner share the benchmark population evenly.
var benchKommuner = []string{"0301", "4601", "5001", "1103"}

// startBench serves n synthetic persons (registration, programme vedtak, norsk hours) the
// way nird does, and returns the server's URL.
func startBench(b *testing.B, n int) string {
	b.Helper()
	keys, err := personkey.New([]byte("bench secret, not a real one...."))
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]projections.Record, 0, 3*n)
	add := func(pk, k string, at rules.Date, ev *nirv1.Event) {
		ev.Id = fmt.Sprintf("01BENCH%019d", len(recs)+1)
		ev.PersonKey, ev.Kommune = pk, k
		ev.RecordedAt = timestamppb.New(at.Time().Add(12 * time.Hour))
		ev.Actor = &nirv1.Actor{Subject: "fagsystem-" + k, Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE}
		recs = append(recs, projections.Record{Seq: uint64(len(recs) + 1), Event: ev})
	}
	for i := range n {
		k := benchKommuner[i%len(benchKommuner)]
		birth := rules.MustDate(1970+i%35, time.Month(1+i%12), 1+i%28)
		fnr := rules.SyntheticFodselsnummer(birth, i%400)
		pk := keys.Key(fmt.Sprint(fnr, i)) // unique keys even where synthetic numbers repeat
		permit := rules.MustDate(2021+i%3, time.Month(1+i%12), 1+i%28)
		add(pk, k, permit, &nirv1.Event{Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: fnr, BirthDate: birth.Proto(), PermitDate: permit.Proto(), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28,
			ArrivalDate: permit.AddDays(-30).Proto(), SettlementDate: permit.AddMonths(1).Proto(), SettlementKommune: k, SettledByAgreement: true}}})
		start := permit.AddMonths(2)
		add(pk, k, start, &nirv1.Event{Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: start.Proto(), FromDate: start.Proto()}}})
		add(pk, k, start.AddMonths(1), &nirv1.Event{Payload: &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
			Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: int32(start.Y), Month: int32(start.M)}, Hours: float64(10 + i%90)}}})
	}
	proj, err := projections.New(projections.NewSliceFeed(recs), projections.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { proj.Close() })
	if _, err := proj.CatchUp(context.Background()); err != nil {
		b.Fatal(err)
	}
	authn, err := auth.New([]auth.Entry{
		{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301", TokenSHA256: auth.HashToken(qtOslo)},
		{Name: "analyst", Role: auth.RoleAnalyst, TokenSHA256: auth.HashToken(qtAnalyst)},
	})
	if err != nil {
		b.Fatal(err)
	}
	guard := auth.NewGuard(authn, Policy(), nil)
	q := NewQuery(QueryConfig{Source: proj, Keys: keys})
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewQueryServiceHandler(q, connect.WithInterceptors(guard)))
	mux.Handle(ExportPersonsPath, guard.Middleware(q.ExportHandler()))
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv.URL
}

// BenchmarkQuery measures the API over 20,000 persons (5,000 per kommune): a filtered,
// sorted page of the person list, and the kommune's whole CSV export, through HTTP, the
// guard and Connect.
//
//	go test -run '^$' -bench BenchmarkQuery -benchtime 3s ./internal/api/
func BenchmarkQuery(b *testing.B) {
	url := startBench(b, 20000)
	ctx := context.Background()
	client := nirv1connect.NewQueryServiceClient(http.DefaultClient, url, connect.WithInterceptors(auth.BearerInterceptor(qtOslo)))
	b.Run("ListPersonsPage", func(b *testing.B) {
		req := &nirv1.ListPersonsRequest{Filter: &nirv1.PersonFilter{ProgrammeVedtak: nirv1.PresenceFilter_PRESENCE_FILTER_WITH,
			MinNorskHours: 50}, Sort: nirv1.PersonSort_PERSON_SORT_NORSK_HOURS, Desc: true, PageSize: 100}
		for b.Loop() {
			res, err := client.ListPersons(ctx, connect.NewRequest(req))
			if err != nil || len(res.Msg.GetRows()) == 0 {
				b.Fatalf("rows %d, err %v", len(res.Msg.GetRows()), err)
			}
		}
	})
	b.Run("ExportCSV5000", func(b *testing.B) {
		var rows int
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodGet, url+ExportPersonsPath, nil)
			auth.SetBearer(req.Header, qtOslo)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				b.Fatalf("status %d, err %v", res.StatusCode, err)
			}
			rows = 0
			for _, c := range body {
				if c == '\n' {
					rows++
				}
			}
		}
		b.ReportMetric(float64(rows-1), "rows/op")
		b.ReportMetric(float64(rows-1)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("Statistics", func(b *testing.B) {
		an := nirv1connect.NewQueryServiceClient(http.DefaultClient, url, connect.WithInterceptors(auth.BearerInterceptor(qtAnalyst)))
		for b.Loop() {
			if _, err := an.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: 2022, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE})); err != nil {
				b.Fatal(err)
			}
		}
	})
}
