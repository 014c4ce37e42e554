package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestConsole_TerminatedRenumberedKommune: Halden was 3001 in 2020–2023 and is 3101 from 2024
// (DOMAIN.md Product decisions 13: one kommune for a person's programme). A programme begun
// under 3001 in 2022 is terminated by Halden (3101) on 2024-06-30.
//
// Found on 2026-12-06 (review of the regelmotor and read models): before, Halden's page of
// terminated participants for 2024 (/avsluttede, through QueryService.TerminatedReport) showed
// no row while its statistics counted 1 terminated, because the row is filed under 3001; now
// the page shows the programme, filed under 3001.
func TestConsole_TerminatedRenumberedKommune(t *testing.T) {
	w := newWorld(t)
	key, id := terminatedInHalden(t, w)
	halden := login(t, w.h, w.tokens["halden"])
	page := w.do(http.MethodGet, "/avsluttede?ar=2024", nil, nil, halden)
	if page.code != http.StatusOK {
		t.Fatalf("/avsluttede?ar=2024 as Halden: %d", page.code)
	}
	if !strings.Contains(page.body, key) && !strings.Contains(page.body, id) {
		t.Errorf("Halden's (3101) page of terminated participants for 2024 does not show the programme begun under 3001 (person %s)", key)
	}
	// Bergen's page does not show Halden's participant.
	bergen := w.do(http.MethodGet, "/avsluttede?ar=2024", nil, nil, login(t, w.h, w.tokens["bergen"]))
	if bergen.code != http.StatusOK || strings.Contains(bergen.body, key) || strings.Contains(bergen.body, id) {
		t.Errorf("Bergen's page of terminated participants for 2024 (%d) shows Halden's participant", bergen.code)
	}
}

// TestConsole_TerminatedReportKommune: an analyst's report of terminated participants is the
// nation's, or one kommune's when the URL names it (QueryService.TerminatedReport's kommune),
// by today's number or by the number the programme was filed under. Found on 2026-12-07:
// the page ignored its kommune, and an analyst asking for Bergen's report read Halden's
// participant in the nation's under Bergen's number in the URL.
func TestConsole_TerminatedReportKommune(t *testing.T) {
	w := newWorld(t)
	key, _ := terminatedInHalden(t, w)
	analyst := login(t, w.h, w.tokens["analytiker"])
	for kommune, shown := range map[string]bool{"": true, "3101": true, "3001": true, "4601": false} {
		page := w.do(http.MethodGet, "/avsluttede?ar=2024&kommune="+kommune, nil, nil, analyst)
		if page.code != http.StatusOK || !strings.Contains(page.body, `id="treff"`) {
			t.Fatalf("/avsluttede?ar=2024&kommune=%s as an analyst: %d, want the report", kommune, page.code)
		}
		if strings.Contains(page.body, key) != shown {
			t.Errorf("the analyst's report for kommune %q shows Halden's participant: %v, want %v", kommune, !shown, shown)
		}
		// The form keeps the kommune asked for, for the next year or filter.
		if field := `name="kommune" value="` + kommune + `"`; !strings.Contains(page.body, field) {
			t.Errorf("the analyst's report for kommune %q: the form has no %s", kommune, field)
		}
	}
}

// terminatedInHalden stores a programme begun under Halden's former number 3001 in 2022 and
// terminated by Halden (3101) on 2024-06-30, and returns the person's key and national id.
func terminatedInHalden(t *testing.T, w *world) (key, id string) {
	t.Helper()
	ctx := context.Background()
	loader := access.System(&nirv1.Actor{Subject: "load", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM})
	d := func(y, m, dd int) *nirv1.Date { return rules.MustDate(y, time.Month(m), dd).Proto() }
	id = rules.SyntheticFodselsnummer(rules.MustDate(1990, 4, 4), 77)
	ev := func(k string, p any) *nirv1.Registration {
		e := &nirv1.Event{Id: ulid.Make().String(), Kommune: k}
		switch p := p.(type) {
		case *nirv1.PersonRegistered:
			e.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: p}
			return &nirv1.Registration{Event: e}
		case *nirv1.ProgrammeVedtakRegistered:
			e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: p}
		case *nirv1.SluttmalRegistered:
			e.Payload = &nirv1.Event_SluttmalRegistered{SluttmalRegistered: p}
		case *nirv1.TiltakRegistered:
			e.Payload = &nirv1.Event_TiltakRegistered{TiltakRegistered: p}
		case *nirv1.TerminationRegistered:
			e.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: p}
		}
		return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: e}
	}
	pos, err := w.svc.Append(ctx, loader, []*nirv1.Registration{
		ev("3001", &nirv1.PersonRegistered{Fodselsnummer: id, BirthDate: d(1990, 4, 4), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: d(2022, 5, 1), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: d(2022, 4, 1),
			SettlementDate: d(2022, 6, 1), SettlementKommune: "3001", SettledByAgreement: true}),
		ev("3001", &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d(2022, 7, 20), FromDate: d(2022, 8, 1)}),
		ev("3001", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: d(2022, 8, 1)}),
		ev("3101", &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS, FromDate: d(2024, 1, 8), ToDate: d(2024, 6, 30)}),
		ev("3101", &nirv1.TerminationRegistered{Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT,
			Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: d(2024, 6, 30)}),
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := waitFor(ctx, w.proj, pos[len(pos)-1].GetSequence()); err != nil {
		t.Fatal(err)
	}
	return pos[0].GetPersonKey(), id
}
