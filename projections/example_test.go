package projections_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Example shows the read models kept up to date from a feed and queried: a person registered
// in Oslo with an introduction programme that the kommune terminated with reason ARBEID.
func Example() {
	dir, _ := os.MkdirTemp("", "nir-example-")
	defer os.RemoveAll(dir)
	at := func(s string) *timestamppb.Timestamp {
		t, _ := time.Parse("2006-01-02", s)
		return timestamppb.New(t)
	}
	date := func(s string) *nirv1.Date { return rules.MustParseDate(s).Proto() }
	events := []*nirv1.Event{
		{Id: "01HX0000000000000000000001", PersonKey: "k1", Kommune: "0301", RecordedAt: at("2022-02-01"),
			Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
				BirthDate: date("1990-05-17"), PermitDate: date("2022-01-10"), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28,
				SettlementDate: date("2022-02-01"), SettlementKommune: "0301", SettledByAgreement: true}}},
		{Id: "01HX0000000000000000000002", PersonKey: "k1", Kommune: "0301", RecordedAt: at("2022-03-01"),
			Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
				Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: date("2022-03-01"), FromDate: date("2022-03-01")}}},
		{Id: "01HX0000000000000000000003", PersonKey: "k1", Kommune: "0301", RecordedAt: at("2023-09-05"),
			Payload: &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
				Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: date("2023-08-31")}}},
	}
	var recs []projections.Record
	for i, ev := range events {
		recs = append(recs, projections.Record{Seq: uint64(i + 1), Event: ev})
	}

	// In nird the feed is the event store (internal/feed) and Run keeps the models live.
	p, err := projections.New(projections.NewSliceFeed(recs), projections.Options{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	ckpt, _ := p.CatchUp(context.Background())
	fmt.Println("checkpoint:", ckpt)

	p.Use("", func(db *projections.DB) error {
		page, _ := db.ListPersons(projections.PersonQuery{Kommune: "0301", ProgrammeVedtak: projections.With})
		for _, r := range page.Rows {
			fmt.Println("person:", r.PersonKey, r.Law, r.TerminationReason)
		}
		rep, _ := db.Terminated(projections.ReportQuery{Year: 2023})
		fmt.Println("terminated in 2023:", len(rep.Rows), "with reason:", rep.WithReason)
		stats, _ := db.Statistics(2022, projections.LevelNation, "")
		fmt.Println("new participants 2022:", stats[0].Get(projections.CNew))
		return nil
	})
	// Output:
	// checkpoint: 3
	// person: k1 LAW_IL TERMINATION_REASON_ARBEID
	// terminated in 2023: 1 with reason: 1
	// new participants 2022: 1
}
