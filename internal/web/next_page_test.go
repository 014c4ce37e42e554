package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// nextLink is a list page's «Neste side» link.
var nextLink = regexp.MustCompile(`<a href="([^"]+)" rel="next">Neste side</a>`)

// next returns the «Neste side» link of a page.
func next(t *testing.T, body string) string {
	t.Helper()
	m := nextLink.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the page has no «Neste side»")
	}
	return html.UnescapeString(m[1])
}

// reportKeys are the person keys of the rows of a page of /avsluttede.
func reportKeys(body string) []string {
	var out []string
	for _, row := range reportRow.FindAllStringSubmatch(body, -1) {
		out = append(out, row[1])
	}
	return out
}

// reportCalls counts the TerminatedReport calls among the console's answers since the last.
func reportCalls(w *world) int {
	n := 0
	for _, a := range w.answered() {
		if _, ok := a.(*nirv1.TerminatedReportResponse); ok {
			n++
		}
	}
	return n
}

// appendAs stores one registration of kommune 0301's case system and waits for the read
// models.
func appendAs(t *testing.T, w *world, reg *nirv1.Registration) {
	t.Helper()
	ctx := context.Background()
	kommune := access.System(&nirv1.Actor{Subject: "fagsystem", Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE})
	pos, err := w.svc.Append(ctx, kommune, []*nirv1.Registration{reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, w.proj, pos[0].GetSequence()); err != nil {
		t.Fatal(err)
	}
}

// TestConsole_TerminatedOneCallNextPageWhileRowsChange: Oslo's report of terminated
// participants, a page ending at the first row with a registered reason (after those
// without). Each view calls TerminatedReport once (it called it twice, for the rows
// without a reason and the others). Between the first page and «Neste side», the last row
// shown is retracted: the next page starts at the row after it. Before, «Neste side» was
// the next offset (side=2), which now points a row further, so a row was skipped.
func TestConsole_TerminatedOneCallNextPageWhileRowsChange(t *testing.T) {
	w := newWorld(t)
	var year int
	for i := range 3 {
		_, ended := ranOut(t, w, i+1, rules.MustDate(2021, 6, 1+i))
		year = ended.Y
	}
	with := terminatedIn(t, w, "0301", year, 5)
	oslo := login(t, w.h, w.tokens["oslo"])
	whole := w.do(http.MethodGet, fmt.Sprintf("/avsluttede?ar=%d&antall=1000", year), nil, nil, oslo)
	m := regexp.MustCompile(`<strong class="varsel">(\d+)</strong> med «Avslutningsårsak ikke registrert»`).FindStringSubmatch(whole.body)
	if whole.code != http.StatusOK || m == nil {
		t.Fatalf("the whole report: %d, the count without a reason shown %v", whole.code, m)
	}
	without, _ := strconv.Atoi(m[1])
	order, size := reportKeys(whole.body), without+1
	if without < 3 || len(order) < 2*size {
		t.Fatalf("%d rows, %d without a reason: too few for two pages of %d", len(order), without, size)
	}
	w.answered()
	first := w.do(http.MethodGet, fmt.Sprintf("/avsluttede?ar=%d&antall=%d", year, size), nil, nil, oslo)
	if n := reportCalls(w); first.code != http.StatusOK || n != 1 {
		t.Fatalf("the first page: %d, %d TerminatedReport calls; want 200 and 1", first.code, n)
	}
	shown := reportKeys(first.body)
	last := shown[len(shown)-1]
	if !slices.Equal(shown, order[:size]) || with[last] == "" {
		t.Fatalf("the first page shows %v, want %v ending at a row with a reason", shown, order[:size])
	}
	retract(t, w, last)

	page := w.do(http.MethodGet, next(t, first.body), nil, nil, oslo)
	if n := reportCalls(w); page.code != http.StatusOK || n != 1 {
		t.Fatalf("«Neste side»: %d, %d TerminatedReport calls; want 200 and 1", page.code, n)
	}
	if got, want := reportKeys(page.body), order[size:min(2*size, len(order))]; !slices.Equal(got, want) {
		t.Errorf("«Neste side» after the last row shown was retracted: %v, want %v", got, want)
	}
}

// retract retracts the termination of the person with key that Oslo registered.
func retract(t *testing.T, w *world, key string) {
	t.Helper()
	system := access.System(&nirv1.Actor{Subject: rules.RegelmotorSubject, Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM})
	_, stored, err := w.svc.History(context.Background(), system, &nirv1.PersonRef{PersonKey: key})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, e := range stored {
		if e.Event.GetTerminationRegistered() != nil {
			id = e.Event.GetId()
		}
	}
	if id == "" {
		t.Fatalf("person %s has no termination registered", key)
	}
	appendAs(t, w, &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: key}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: id, Reason: "feil"}}}})
}

// personRow is a row of the person list: the person page it links to.
var personRow = regexp.MustCompile(`<th scope="row"><a href="/personer/([^"]+)">`)

// TestConsole_PersonsNextPageWhileRowsChange: Oslo's person list in pages of 2; between the
// first page and «Neste side», the first person shown moves to Bergen and leaves the list.
// The next page holds the two persons after the first page's last, as «Neste side» carries
// the API's token of that place; before, it was the offset 2, by then the fourth person,
// and the third was on no page.
func TestConsole_PersonsNextPageWhileRowsChange(t *testing.T) {
	w := newWorld(t)
	oslo := login(t, w.h, w.tokens["oslo"])
	keys := func(body string) []string {
		var out []string
		for _, m := range personRow.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	order := keys(w.do(http.MethodGet, "/personer?antall=1000", nil, nil, oslo).body)
	if len(order) < 5 {
		t.Fatalf("Oslo's list holds %d persons, too few", len(order))
	}
	first := w.do(http.MethodGet, "/personer?antall=2", nil, nil, oslo)
	if got := keys(first.body); !slices.Equal(got, order[:2]) {
		t.Fatalf("the first page: %v, want %v", got, order[:2])
	}
	appendAs(t, w, &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: order[0]}, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: rules.DateFromTime(time.Now()).Proto()}}}})
	page := w.do(http.MethodGet, next(t, first.body), nil, nil, oslo)
	if got := keys(page.body); page.code != http.StatusOK || !slices.Equal(got, order[2:4]) {
		t.Errorf("«Neste side» after the first person moved away: %d, %v; want %v", page.code, got, order[2:4])
	}
}
