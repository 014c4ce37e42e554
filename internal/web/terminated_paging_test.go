package web_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// reportRow is a row of the report of terminated participants: the person page it links to,
// the text of the link (the national id a kommune sees) and the row's note on it, if any.
var reportRow = regexp.MustCompile(`<th scope="row"><a href="/personer/([^"]+)">([^<]+)</a>(?: <span class="varsel">([^<]+)</span>)?</th>`)

// TestConsole_TerminatedPageCostsItsRows: Halden has 60 terminated participants in 2024 and
// asks for pages of 25. Found on 2026-12-07 (review): the page showed every row of the
// report, and filled in national ids from the kommune's whole list of terminated persons
// (up to 50 ListPersons calls of 1 000 rows), the work of a CSV export at the page's request
// rate; now a page shows 25 rows and reads the persons of those 25 only.
func TestConsole_TerminatedPageCostsItsRows(t *testing.T) {
	w := newWorld(t)
	ids := terminatedInHaldenMany(t, w, 60)
	halden := login(t, w.h, w.tokens["halden"])
	w.answered()
	page := w.do(http.MethodGet, "/avsluttede?ar=2024&antall=25", nil, nil, halden)
	if page.code != http.StatusOK || !strings.Contains(page.body, "60 avsluttede program") {
		t.Fatalf("/avsluttede?ar=2024&antall=25 as Halden: %d, the count of 60 shown %v", page.code, strings.Contains(page.body, "60 avsluttede program"))
	}
	if rows := reportRow.FindAllStringSubmatch(page.body, -1); len(rows) != 25 {
		t.Errorf("the page shows %d rows, want 25", len(rows))
	}
	persons := 0 // the person rows the page read through the API
	for _, a := range w.answered() {
		switch a := a.(type) {
		case *nirv1.ListPersonsResponse:
			persons += len(a.GetRows())
		case *nirv1.GetPersonResponse:
			persons++
		}
	}
	if persons > 25 {
		t.Errorf("a page of 25 rows read %d person rows of the kommune's %d terminated", persons, len(ids))
	}
}

// TestConsole_TerminatedPagesShowTheirIDs: the national id of each row is looked up for the
// rows shown, so every page shows its own rows' national ids; the pages hold each of Halden's
// 60 terminated participants once. One has moved to Bergen since, and Halden's list no longer
// has the person: the row shows the person key and says that the national id was not found.
// Before, a kommune past 50 000 terminated persons saw person keys for the rest, as if they
// were the ids, and so did it for a participant who had moved away.
func TestConsole_TerminatedPagesShowTheirIDs(t *testing.T) {
	w := newWorld(t)
	ids := terminatedInHaldenMany(t, w, 60)
	var mover string
	for key := range ids {
		mover = key
		break
	}
	moveToBergen(t, w, mover)
	halden := login(t, w.h, w.tokens["halden"])
	seen := map[string]int{}
	for n, want := range []int{25, 25, 10} {
		page := w.do(http.MethodGet, fmt.Sprintf("/avsluttede?ar=2024&antall=25&side=%d", n+1), nil, nil, halden)
		rows := reportRow.FindAllStringSubmatch(page.body, -1)
		if page.code != http.StatusOK || len(rows) != want {
			t.Fatalf("page %d: %d, %d rows, want 200 and %d", n+1, page.code, len(rows), want)
		}
		for _, row := range rows {
			seen[row[1]]++
			want, note := ids[row[1]], ""
			if row[1] == mover {
				want, note = mover, "Fødselsnummer ikke funnet"
			}
			if row[2] != want || row[3] != note {
				t.Errorf("page %d: person %s shown as %q with note %q, want %q and %q", n+1, row[1], row[2], row[3], want, note)
			}
		}
	}
	for key := range ids {
		if seen[key] != 1 {
			t.Errorf("person %s is on %d pages, want 1", key, seen[key])
		}
	}
}

// terminatedInHaldenMany stores n persons in Halden (3101) whose programme began in March 2024
// and was terminated on 2024-06-30, and returns their national ids by person key.
func terminatedInHaldenMany(t *testing.T, w *world, n int) map[string]string {
	t.Helper()
	ctx := context.Background()
	loader := access.System(&nirv1.Actor{Subject: "load", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM})
	d := func(y, m, dd int) *nirv1.Date { return rules.MustDate(y, time.Month(m), dd).Proto() }
	ids := map[string]string{}
	var last uint64
	for i := range n {
		birth := rules.MustDate(1980+i%20, time.Month(1+i%12), 1+i%28)
		id := rules.SyntheticFodselsnummer(birth, 100+i)
		ev := func(p any) *nirv1.Registration {
			e := &nirv1.Event{Id: ulid.Make().String(), Kommune: "3101"}
			switch p := p.(type) {
			case *nirv1.PersonRegistered:
				e.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: p}
				return &nirv1.Registration{Event: e}
			case *nirv1.ProgrammeVedtakRegistered:
				e.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: p}
			case *nirv1.TerminationRegistered:
				e.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: p}
			}
			return &nirv1.Registration{Person: &nirv1.PersonRef{NationalId: id}, Event: e}
		}
		pos, err := w.svc.Append(ctx, loader, []*nirv1.Registration{
			ev(&nirv1.PersonRegistered{Fodselsnummer: id, BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_FEMALE,
				PermitDate: d(2024, 1, 10), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28, ArrivalDate: d(2024, 1, 1),
				SettlementDate: d(2024, 2, 1), SettlementKommune: "3101", SettledByAgreement: true}),
			ev(&nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: d(2024, 2, 20), FromDate: d(2024, 3, 1)}),
			ev(&nirv1.TerminationRegistered{Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT,
				Reason: nirv1.TerminationReason_TERMINATION_REASON_ARBEID, Date: d(2024, 6, 30)}),
		})
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		ids[pos[0].GetPersonKey()], last = id, pos[len(pos)-1].GetSequence()
	}
	if err := waitFor(ctx, w.proj, last); err != nil {
		t.Fatal(err)
	}
	return ids
}

// moveToBergen registers that the person with key moved from Halden to Bergen today.
func moveToBergen(t *testing.T, w *world, key string) {
	t.Helper()
	ctx := context.Background()
	loader := access.System(&nirv1.Actor{Subject: "load", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM})
	pos, err := w.svc.Append(ctx, loader, []*nirv1.Registration{{Person: &nirv1.PersonRef{PersonKey: key}, Event: &nirv1.Event{
		Id: ulid.Make().String(), Kommune: "3101", Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{
			ToKommune: "4601", Date: rules.DateFromTime(time.Now()).Proto()}}}}})
	if err != nil {
		t.Fatalf("move: %v", err)
	}
	if err := waitFor(ctx, w.proj, pos[0].GetSequence()); err != nil {
		t.Fatal(err)
	}
}
