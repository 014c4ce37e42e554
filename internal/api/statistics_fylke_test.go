package api

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestQuery_StatisticsOfRenumberedKommune: a kommune reads the fylke it belongs to in the
// data year's structure (Product decisions 13): 3101 Halden was 3001 in 30 Viken in 2023, so its
// fylke row for 2023 is 30's, not a row of 31 (Østfold from 2024), which holds nothing in 2023.
// Found by mutation testing on 2026-12-07: no test read a fylke row as a renumbered kommune.
func TestQuery_StatisticsOfRenumberedKommune(t *testing.T) {
	keys, _ := personkey.New([]byte("statistics test secret, not a real one"))
	end2023 := rules.MustDate(2023, 12, 31)
	at := time.Date(2023, 6, 1, 12, 0, 0, 0, time.UTC)
	recs := demoRecords(keys, 8, 12, end2023, at, "3001", 1)
	_, _, q := statsWorld(t, recs)
	halden := auth.Principal{Name: "halden", Role: auth.RoleKommune, Kommune: "3101"}
	fylke := nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE
	res := statsCall(t, q, halden, &nirv1.StatisticsRequest{Year: 2023, Level: fylke})
	if len(res.GetRows()) != 1 || res.GetRows()[0].GetArea() != "30" {
		t.Fatalf("3101 Halden's fylke rows for 2023: %v; want the one row of 30 Viken", res.GetRows())
	}
	// Asked by its number, that fylke is Halden's own too: before 2026-12-07 (a walk of the
	// web console) 30 was denied, as not 31, Halden's fylke today, while 31 gave 30's row.
	asked := statsCall(t, q, halden, &nirv1.StatisticsRequest{Year: 2023, Level: fylke, Area: "30"})
	if len(asked.GetRows()) != 1 || asked.GetRows()[0].GetArea() != "30" {
		t.Errorf("3101 Halden asking for fylke 30 in 2023: %v; want the one row of 30 Viken", asked.GetRows())
	}
	// Its fylke today, 31, named: 31 was no fylke in 2023, and Halden gets what an analyst
	// gets, no row. Before 2026-12-07 it got 30 Viken's row, which the console titled
	// «Østfold per år».
	today := statsCall(t, q, halden, &nirv1.StatisticsRequest{Year: 2023, Level: fylke, Area: "31"})
	analyst := statsCall(t, q, auth.Principal{Name: "analyst", Role: auth.RoleAnalyst}, &nirv1.StatisticsRequest{Year: 2023, Level: fylke, Area: "31"})
	if len(today.GetRows()) != 0 || len(analyst.GetRows()) != 0 {
		t.Errorf("fylke 31 in 2023: Halden got %v, an analyst %v; want no row for either", today.GetRows(), analyst.GetRows())
	}
	// The same at kommune level: its number in the structure (3001 in 2023) is its own.
	kommune := nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE
	empty := statsCall(t, q, halden, &nirv1.StatisticsRequest{Year: 2023, Level: kommune})
	byOld := statsCall(t, q, halden, &nirv1.StatisticsRequest{Year: 2023, Level: kommune, Area: "3001"})
	if len(empty.GetRows()) != 1 || empty.GetRows()[0].GetArea() != "3001" || !proto.Equal(empty, byOld) {
		t.Errorf("3101 Halden asking for kommune 3001 in 2023: %v; want the answer without an area, 3001's one row: %v", byOld.GetRows(), empty.GetRows())
	}
	ctx := auth.NewContext(context.Background(), halden)
	for _, c := range []struct {
		year  int32
		level nirv1.StatisticsLevel
		area  string
	}{{2023, fylke, "03"}, {2024, fylke, "30"}, {2023, fylke, "46"}, {2024, kommune, "3001"}, {2023, kommune, "0301"}, {2023, kommune, "3002"}} {
		_, err := q.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: c.year, Level: c.level, Area: c.area}))
		if connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("3101 Halden asking for %v %s in %d: %v; want PermissionDenied", c.level, c.area, c.year, err)
		}
	}
}
