package api

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestQuery_StatisticsSplitKommuneOwnRow: a kommune sees its own figures unsuppressed (DOMAIN.md
// Product decisions 14), on a past year's structure too (Product decisions 13), but only a row
// that holds no other kommune's persons. 1507 Ålesund split on 1 Jan 2024 into 1508 Ålesund and
// 1580 Haram: for data year 2023 both map to 1507, whose row holds both successors' persons;
// before, both got it unsuppressed (rules.KommuneIn returns the one predecessor), now both get
// the published row. 3001 Halden only changed its number (3101 in 2024): its 2023 row is
// Halden's alone and stays unsuppressed for 3101.
func TestQuery_StatisticsSplitKommuneOwnRow(t *testing.T) {
	keys, _ := personkey.New([]byte("statistics test secret, not a real one"))
	end2023 := rules.MustDate(2023, 12, 31)
	at := time.Date(2023, 6, 1, 12, 0, 0, 0, time.UTC)
	recs := demoRecords(keys, 7, 12, end2023, at, "1507", 1)
	recs = append(recs, demoRecords(keys, 8, 12, end2023, at, "3001", uint64(len(recs)+1))...)
	_, _, q := statsWorld(t, recs)
	row := func(p auth.Principal, area string) *nirv1.StatisticsRow {
		res := statsCall(t, q, p, &nirv1.StatisticsRequest{Year: 2023, Level: nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE, Area: area})
		if len(res.GetRows()) != 1 {
			t.Fatalf("%s, area %q: rows %v", p.Name, area, res.GetRows())
		}
		return res.GetRows()[0]
	}
	published := row(statsAnalyst, "1507")
	if len(published.GetSuppressed()) == 0 {
		t.Fatalf("the published 1507 row suppresses nothing: the test shows nothing (%v)", published)
	}
	for _, k := range []string{"1580", "1508"} {
		got := row(auth.Principal{Name: k, Role: auth.RoleKommune, Kommune: k}, "")
		if got.GetArea() != "1507" || !proto.Equal(got, published) {
			t.Errorf("kommune %s gets 2023's row %v;\nwant the published 1507 row %v (it holds the other successor's persons)", k, got, published)
		}
	}
	halden := auth.Principal{Name: "halden", Role: auth.RoleKommune, Kommune: "3101"}
	if p := row(statsAnalyst, "3001"); len(p.GetSuppressed()) == 0 {
		t.Fatalf("the published 3001 row suppresses nothing: the test shows nothing (%v)", p)
	}
	if got := row(halden, ""); got.GetArea() != "3001" || len(got.GetSuppressed()) != 0 {
		t.Errorf("3101 Halden gets 2023's row %v; want its own 3001 row unsuppressed", got)
	}
}
