package api

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

var (
	statsToday = rules.MustDate(2025, 11, 20)
	statsAt    = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
)

// demoRecords returns n demo persons (seed) as records numbered from seq, recorded at at; with
// kommune set, every event of theirs is in that kommune.
func demoRecords(keys *personkey.Keyer, seed int64, n int, now rules.Date, at time.Time, kommune string, seq uint64) []projections.Record {
	var recs []projections.Record
	for evs := range demo.Generate(seed, n, now) {
		pk := keys.Key(rules.KeyingID(evs[0].GetPersonRegistered()))
		for _, ev := range evs {
			ev.PersonKey = pk
			ev.RecordedAt = timestamppb.New(at)
			ev.Actor = &nirv1.Actor{Subject: "test", Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE}
			if kommune != "" {
				ev.Kommune = kommune
				if pr := ev.GetPersonRegistered(); pr != nil {
					pr.SettlementKommune = kommune
				}
				if m := ev.GetPersonMoved(); m != nil {
					m.ToKommune = kommune
				}
			}
			recs = append(recs, projections.Record{Seq: seq + uint64(len(recs)), Event: ev})
		}
	}
	return recs
}

// statsWorld is read models built from recs, with their feed and a Query on them.
func statsWorld(t *testing.T, recs []projections.Record) (*projections.Projector, *projections.SliceFeed, *Query) {
	t.Helper()
	feed := projections.NewSliceFeed(recs)
	proj, err := projections.New(feed, projections.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proj.Close() })
	if _, err := proj.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	q := NewQuery(QueryConfig{Source: proj, Now: func() time.Time { return statsToday.Time().Add(12 * time.Hour) }})
	return proj, feed, q
}

func statsCall(t *testing.T, q *Query, p auth.Principal, req *nirv1.StatisticsRequest) *nirv1.StatisticsResponse {
	t.Helper()
	res, err := q.Statistics(auth.NewContext(context.Background(), p), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("%s %v: %v", p.Name, req, err)
	}
	return res.Msg
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func statsRow(rows []*nirv1.StatisticsRow, area string) *nirv1.StatisticsRow {
	for _, r := range rows {
		if r.GetArea() == area {
			return r
		}
	}
	return nil
}

var (
	statsOslo    = auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: "0301"}
	statsBergen  = auth.Principal{Name: "bergen", Role: auth.RoleKommune, Kommune: "4601"}
	statsAnalyst = auth.Principal{Name: "analyst", Role: auth.RoleAnalyst}
	statsSystem  = auth.Principal{Name: "regelmotor", Role: auth.RoleSystem}
)

// TestQuery_StatisticsPublishedOnce: the published table's disclosure control (about a second
// of CPU on the national demo population, before: on every Statistics call, whatever level or
// area, so that one kommune's calls kept every core busy) is computed once per table: the
// calls after the first, by kommuner and analysts at every level, cost together less than
// half of the first (CPU, not wall time: a loaded machine does not change the ratio).
func TestQuery_StatisticsPublishedOnce(t *testing.T) {
	keys, _ := personkey.New([]byte("statistics test secret, not a real one"))
	_, _, q := statsWorld(t, demoRecords(keys, 5, 3000, statsToday, statsAt, "", 1))
	level := func(l nirv1.StatisticsLevel, area string) *nirv1.StatisticsRequest {
		return &nirv1.StatisticsRequest{Year: 2024, Level: l, Area: area}
	}
	const (
		kommune = nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE
		fylke   = nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE
		nation  = nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION
	)
	cpu0 := processCPU()
	statsCall(t, q, statsOslo, level(nation, ""))
	first := processCPU() - cpu0
	cpu0 = processCPU()
	for _, c := range []struct {
		p   auth.Principal
		req *nirv1.StatisticsRequest
	}{
		{statsOslo, level(nation, "")}, {statsOslo, level(fylke, "")}, {statsOslo, level(kommune, "")},
		{statsBergen, level(kommune, "")}, {statsAnalyst, level(kommune, "")}, {statsAnalyst, level(fylke, "")},
		{statsAnalyst, level(nation, "")}, {statsAnalyst, level(kommune, "0301")},
	} {
		if res := statsCall(t, q, c.p, c.req); len(res.GetRows()) == 0 {
			t.Fatalf("%s %v: no rows", c.p.Name, c.req)
		}
	}
	later := processCPU() - cpu0
	t.Logf("first Statistics call: CPU %v; the 8 calls after it: CPU %v", first, later)
	if later > first/2 {
		t.Errorf("8 Statistics calls after the first cost %v of CPU, the first %v: the published table is computed again on every call", later, first)
	}
}

// TestQuery_StatisticsFollowTheModel: the published table kept for a table is never served for
// another state: after an append the live answer has the new kommune's row, suppressed, and the
// nation's new total, while a snapshot taken before the append keeps its own answer.
func TestQuery_StatisticsFollowTheModel(t *testing.T) {
	keys, _ := personkey.New([]byte("statistics test secret, not a real one"))
	recs := demoRecords(keys, 5, 400, statsToday, statsAt, "", 1)
	proj, feed, q := statsWorld(t, recs)
	all := func(p auth.Principal, snapshot string) *nirv1.StatisticsResponse {
		return statsCall(t, q, p, &nirv1.StatisticsRequest{Year: 2024, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE, Snapshot: snapshot})
	}
	// The counter the appended persons show in (they need not be in a programme in 2024).
	counters := map[string]func(*nirv1.StatisticsRow) int64{
		"participants":     (*nirv1.StatisticsRow).GetParticipants,
		"training_started": (*nirv1.StatisticsRow).GetTrainingStarted,
	}
	field := "participants"
	nation := func(p auth.Principal, snapshot string) *nirv1.StatisticsRow {
		res := statsCall(t, q, p, &nirv1.StatisticsRequest{Year: 2024, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION, Snapshot: snapshot})
		return res.GetRows()[0]
	}
	// A kommune with no figures for 2024.
	before := all(statsSystem, "")
	var k string
	for _, c := range rules.Kommuner(rules.MustDate(2024, 1, 1)) {
		if statsRow(before.GetRows(), c.Nr) == nil {
			k = c.Nr
			break
		}
	}
	snap, err := proj.AsOf(context.Background(), projections.AsOfOptions{RecordedUntil: statsAt.Add(time.Hour), Keep: "before"})
	if err != nil {
		t.Fatal(err)
	}
	snap.Close()
	nationBefore := nation(statsAnalyst, "")
	if !proto.Equal(nation(statsAnalyst, "before"), nationBefore) {
		t.Fatal("the snapshot differs from the live models before the append")
	}
	if statsRow(all(statsAnalyst, "").GetRows(), k) != nil || statsRow(all(statsAnalyst, "before").GetRows(), k) != nil {
		t.Fatalf("kommune %s has a 2024 row before the append", k)
	}

	feed.Add(demoRecords(keys, 77, 3, statsToday, statsAt.Add(24*time.Hour), k, uint64(len(recs)+1))...)
	if _, err := proj.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	sys := statsRow(all(statsSystem, "").GetRows(), k)
	if sys != nil && sys.GetParticipants() == 0 {
		field = "training_started"
	}
	if sys == nil || counters[field](sys) < 1 || counters[field](sys) > 4 {
		t.Fatalf("kommune %s after the append (unsuppressed): %v; want 1 to 4 participants or training starts", k, sys)
	}
	row := statsRow(all(statsAnalyst, "").GetRows(), k)
	if row == nil || counters[field](row) != 0 || !slices.Contains(row.GetSuppressed(), field) {
		t.Errorf("analyst's row of kommune %s after the append: %v; want it, %s suppressed", k, row, field)
	}
	if got, was := counters[field](nation(statsAnalyst, "")), counters[field](nationBefore); got != was+counters[field](sys) {
		t.Errorf("nation's %s after the append: %d, want %d + %d", field, got, was, counters[field](sys))
	}
	if statsRow(all(statsAnalyst, "before").GetRows(), k) != nil || !proto.Equal(nation(statsAnalyst, "before"), nationBefore) {
		t.Errorf("the snapshot taken before the append changed with it")
	}
}
