package api

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestQuery_StatisticsFylkeOfRenumberedKommune: a kommune reads the fylke it belongs to in the
// data year's structure (Product decisions 13): 3101 Halden was 3001 in 30 Viken in 2023, so its
// fylke row for 2023 is 30's, not a row of 31 (Østfold from 2024), which holds nothing in 2023.
// Found by mutation testing on 2026-12-07: no test read a fylke row as a renumbered kommune.
func TestQuery_StatisticsFylkeOfRenumberedKommune(t *testing.T) {
	keys, _ := personkey.New([]byte("statistics test secret, not a real one"))
	end2023 := rules.MustDate(2023, 12, 31)
	at := time.Date(2023, 6, 1, 12, 0, 0, 0, time.UTC)
	recs := demoRecords(keys, 8, 12, end2023, at, "3001", 1)
	_, _, q := statsWorld(t, recs)
	halden := auth.Principal{Name: "halden", Role: auth.RoleKommune, Kommune: "3101"}
	res := statsCall(t, q, halden, &nirv1.StatisticsRequest{Year: 2023, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE})
	if len(res.GetRows()) != 1 || res.GetRows()[0].GetArea() != "30" {
		t.Fatalf("3101 Halden's fylke rows for 2023: %v; want the one row of 30 Viken", res.GetRows())
	}
	// Asked by its number, that fylke is Halden's own too: before 2026-12-07 (a walk of the
	// web console) 30 was denied, as not 31, Halden's fylke today, while 31 gave 30's row.
	asked := statsCall(t, q, halden, &nirv1.StatisticsRequest{Year: 2023, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE, Area: "30"})
	if len(asked.GetRows()) != 1 || asked.GetRows()[0].GetArea() != "30" {
		t.Errorf("3101 Halden asking for fylke 30 in 2023: %v; want the one row of 30 Viken", asked.GetRows())
	}
	ctx := auth.NewContext(context.Background(), halden)
	for _, c := range []struct {
		year int32
		area string
	}{{2023, "03"}, {2024, "30"}, {2023, "46"}} {
		_, err := q.Statistics(ctx, connect.NewRequest(&nirv1.StatisticsRequest{Year: c.year, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE, Area: c.area}))
		if connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("3101 Halden asking for fylke %s in %d: %v; want PermissionDenied", c.area, c.year, err)
		}
	}
}
