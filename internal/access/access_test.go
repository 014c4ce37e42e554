package access

// The decisions on folded histories, for the cases the API table (internal/api
// access_test.go) does not reach: period boundaries, chains of moves, corrections of
// corrections, and the roles without a kommune.

import (
	"errors"
	"fmt"
	"testing"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

func date(s string) *nirv1.Date { return rules.MustParseDate(s).Proto() }

// history builds a person's events; each helper returns the event's id.
type history struct {
	events []*nirv1.Event
}

func (h *history) add(kommune string, ev *nirv1.Event) string {
	ev.Id = fmt.Sprintf("01HZX3J5Q8RBN0M9T7W2K4C%03d", len(h.events))
	ev.Kommune = kommune
	h.events = append(h.events, ev)
	return ev.Id
}

func (h *history) register(kommune, settled, on string) string {
	return h.add(kommune, &nirv1.Event{Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
		Fodselsnummer: "x", SettlementKommune: settled, SettlementDate: date(on), PermitDate: date("2024-01-10")}}})
}

func (h *history) move(kommune, to, on string) string {
	return h.add(kommune, &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: to, Date: date(on)}}})
}

func (h *history) offer(kommune, on string) string {
	return h.add(kommune, offer(on))
}

func (h *history) retract(kommune, id string) string {
	return h.add(kommune, retraction(id))
}

func (h *history) state() *rules.State { return rules.Fold("pk", h.events) }

func offer(on string) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: date(on)}}}
}

func retraction(id string) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: id}}}
}

func kommune(k string) Scope {
	return For(auth.Principal{Name: "fagsystem-" + k, Role: auth.RoleKommune, Kommune: k})
}

func TestPeriods(t *testing.T) {
	var h history
	h.register("0301", "0301", "2024-02-01")
	h.move("0301", "4601", "2024-06-01")
	h.move("4601", "4601", "2024-07-01") // to where the person lives: no new period
	late := h.move("4601", "5001", "2024-09-01")
	h.move("5001", "0301", "2024-11-01")
	got := Periods(h.state())
	want := []Period{
		{Kommune: "0301", From: rules.MustParseDate("2024-02-01"), To: rules.MustParseDate("2024-06-01")},
		{Kommune: "4601", From: rules.MustParseDate("2024-06-01"), To: rules.MustParseDate("2024-09-01")},
		{Kommune: "5001", From: rules.MustParseDate("2024-09-01"), To: rules.MustParseDate("2024-11-01")},
		{Kommune: "0301", From: rules.MustParseDate("2024-11-01"), To: rules.Date{}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Periods = %v\nwant %v", got, want)
	}
	// A retracted move is no period.
	h.retract("4601", late)
	if got := Periods(h.state()); len(got) != 3 || got[1].Kommune != "4601" || got[1].To != rules.MustParseDate("2024-11-01") {
		t.Errorf("after retracting the move to 5001: %v", got)
	}
	if Periods(rules.Fold("pk", nil)) != nil {
		t.Error("an unregistered person has periods")
	}
}

func TestScope_Relation(t *testing.T) {
	var h history
	h.register("0301", "0301", "2024-02-01")
	h.move("0301", "4601", "2024-06-01")
	st := h.state()
	for _, c := range []struct {
		scope Scope
		want  Relation
	}{
		{kommune("4601"), Current},
		{kommune("0301"), Former},
		{kommune("5001"), None},
		{System(&nirv1.Actor{Subject: "regelmotor"}), All},
		{For(auth.Principal{Role: auth.RoleAnalyst}), None},
		{For(auth.Principal{Role: auth.RoleKommune}), None}, // a kommune principal without a kommune
		{Scope{}, None},
	} {
		if got := c.scope.Relation(st); got != c.want {
			t.Errorf("%s: %v, want %v", c.scope, got, c.want)
		}
	}
	// A registration retracted by the kommune that wrote it (to correct it) leaves that
	// kommune able to register the person again, and nobody else.
	var r history
	first := r.register("0301", "0301", "2024-02-01")
	r.retract("0301", first)
	if got := kommune("0301").Relation(r.state()); got != Current {
		t.Errorf("the writer of a retracted registration: %v, want current", got)
	}
	if got := kommune("4601").Relation(r.state()); got != None {
		t.Errorf("another kommune, registration retracted: %v, want none", got)
	}
}

// TestReachOf: the kommuner that reach a person, kept per person by the read models to decide
// before a history is read (Scope.Hidden), give every scope the relation its fold gives.
func TestReachOf(t *testing.T) {
	var moved history
	moved.register("0301", "0301", "2024-02-01")
	moved.move("0301", "4601", "2024-06-01")
	late := moved.move("4601", "5001", "2024-09-01")
	moved.move("5001", "0301", "2024-11-01") // back to Oslo
	var retracted history
	retracted.retract("0301", retracted.register("0301", "0301", "2024-02-01"))
	movedBack := moved.state()
	moved.retract("5001", late) // Trondheim never had the person, Oslo still has it
	for _, c := range []struct {
		name string
		st   *rules.State
		want Reach
	}{
		{"moved back", movedBack, Reach{Current: []string{"0301"}, Former: []string{"4601", "5001"}}},
		{"a move retracted", moved.state(), Reach{Current: []string{"0301"}, Former: []string{"4601"}}},
		{"registration retracted", retracted.state(), Reach{Current: []string{"0301"}}},
		{"no events", rules.NewState("pk"), Reach{}},
	} {
		r := ReachOf(c.st)
		if fmt.Sprint(r) != fmt.Sprint(c.want) {
			t.Errorf("%s: ReachOf = %+v, want %+v", c.name, r, c.want)
		}
		for _, k := range []string{"0301", "4601", "5001", "1103"} {
			s := kommune(k)
			if got, want := s.RelationTo(r), s.Relation(c.st); got != want {
				t.Errorf("%s: %s's relation from the reach %v, from the fold %v", c.name, k, got, want)
			}
			if got, want := s.Hidden(r), s.Relation(c.st) == None; got != want {
				t.Errorf("%s: %s hidden %v, want %v", c.name, k, got, want)
			}
		}
	}
	// Other roles are never hidden by the reach: they are refused, or reach everyone, by role.
	for _, s := range []Scope{System(&nirv1.Actor{Subject: "regelmotor"}), For(auth.Principal{Role: auth.RoleAnalyst}), For(auth.Principal{Role: auth.RoleOperator})} {
		if s.Hidden(Reach{}) {
			t.Errorf("%s is hidden by an empty reach", s)
		}
	}
}

func TestScope_CheckEvent(t *testing.T) {
	// 0301 → 4601 (2024-06-01, by 0301) → 5001 (2024-09-01, by 4601).
	var h history
	reg := h.register("0301", "0301", "2024-02-01")
	osloOffer := h.offer("0301", "2024-03-01")
	first := h.move("0301", "4601", "2024-06-01")
	bergenLate := h.offer("4601", "2024-10-01") // registered by 4601 after the person left it
	second := h.move("4601", "5001", "2024-09-01")
	st := h.state()
	field := "registrations[0].event"

	cases := []struct {
		name  string
		scope Scope
		ev    *nirv1.Event
		want  error // nil, ErrNotFound or ErrDenied
	}{
		{"former writes within its period", kommune("0301"), offer("2024-05-31"), nil},
		{"former writes on the move date", kommune("0301"), offer("2024-06-01"), nil},
		{"former writes after its period", kommune("0301"), offer("2024-06-02"), ErrDenied},
		{"former writes before the settlement", kommune("0301"), offer("2023-12-01"), nil},
		{"middle kommune writes within its period", kommune("4601"), offer("2024-08-01"), nil},
		{"middle kommune writes before its period", kommune("4601"), offer("2024-05-01"), ErrDenied},
		{"former writes an event without a date", kommune("0301"), &nirv1.Event{Payload: &nirv1.Event_NorskmalRegistered{NorskmalRegistered: &nirv1.NorskmalRegistered{}}}, ErrDenied},
		{"current writes any date", kommune("5001"), offer("2024-03-01"), nil},
		{"stranger writes", kommune("1103"), offer("2024-10-01"), ErrNotFound},
		{"stranger registers the person", kommune("1103"), &nirv1.Event{Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{SettlementKommune: "1103"}}}, ErrNotFound},
		{"current moves", kommune("5001"), &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "1103", Date: date("2024-10-01")}}}, nil},
		{"current moves before the person came", kommune("5001"), &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "1103", Date: date("2024-08-01")}}}, ErrDenied},
		{"former moves", kommune("4601"), &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "1103", Date: date("2024-10-01")}}}, ErrDenied},
		{"stranger moves to itself", kommune("1103"), &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "1103", Date: date("2024-10-01")}}}, ErrNotFound},
		{"former retracts its own event", kommune("0301"), retraction(osloOffer), nil},
		{"former retracts its registration", kommune("0301"), retraction(reg), ErrDenied},
		{"current retracts the registration", kommune("5001"), retraction(reg), ErrDenied},
		{"writer retracts a move a later one follows", kommune("0301"), retraction(first), ErrDenied},
		{"writer retracts the latest move", kommune("4601"), retraction(second), nil},
		{"current retracts another's event in its own period", kommune("5001"), retraction(bergenLate), nil},
		{"current retracts another's event before its period", kommune("5001"), retraction(osloOffer), ErrDenied},
		{"current retracts another's move", kommune("5001"), retraction(second), ErrDenied},
		{"retraction of an unknown event is the rules' refusal", kommune("5001"), retraction("01HZX3J5Q8RBN0M9T7W2K4C999"), nil},
		{"system retracts anything", System(&nirv1.Actor{Subject: "folkeregister"}), retraction(reg), nil},
		{"analyst writes", For(auth.Principal{Role: auth.RoleAnalyst}), offer("2024-10-01"), ErrDenied},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.scope.CheckEvent(st, c.ev, field)
			if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("CheckEvent = %v, want %v", err, c.want)
			}
			var de *DeniedError
			if errors.As(err, &de) && de.Reason == "" {
				t.Error("a refusal without a reason")
			}
		})
	}
}

// TestScope_CheckEvent_FaultedMove: a move the fold left out (rules.State.Faults: the rules
// panicked on it, a bug in nird) counts as no move, as a retracted one does: its writer may
// retract it though a later move follows, since no period of the person's depends on it.
// Not parallel: the fault hook is the rules package's, for every fold in the process.
func TestScope_CheckEvent_FaultedMove(t *testing.T) {
	// 0301 → (4601, faulted, 2024-06-01) → 5001 (2024-09-01), both by 0301.
	var h history
	h.register("0301", "0301", "2024-02-01")
	faulted := h.move("0301", "4601", "2024-06-01")
	h.move("0301", "5001", "2024-09-01")
	t.Cleanup(rules.SetFaultForTest(func(ev *nirv1.Event) bool { return ev.GetId() == faulted }))
	st := h.state()
	if !st.Faulted(faulted) || len(Periods(st)) != 2 {
		t.Fatalf("faults %+v, periods %+v; want the first move left out", st.Faults, Periods(st))
	}
	if err := kommune("0301").CheckEvent(st, retraction(faulted), "registrations[0].event"); err != nil {
		t.Fatalf("the writer retracting a move the fold left out: %v, want allowed", err)
	}
}

func TestScope_CheckRegistration(t *testing.T) {
	oslo := kommune("0301")
	reg := &nirv1.Event{Kommune: "0301", Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{SettlementKommune: "4601"}}}
	var de *DeniedError
	if err := oslo.CheckRegistration(reg, "registrations[2].event"); !errors.As(err, &de) || de.Field != "registrations[2].event.person_registered.settlement_kommune" {
		t.Errorf("a person settled elsewhere: %v", err)
	}
	if err := oslo.CheckRegistration(&nirv1.Event{Kommune: "4601"}, "e"); !errors.As(err, &de) || de.Field != "e.kommune" {
		t.Errorf("another kommune's event: %v", err)
	}
	if err := System(&nirv1.Actor{}).CheckRegistration(reg, "e"); err != nil {
		t.Errorf("the system principal registers anywhere: %v", err)
	}
	if err := For(auth.Principal{Role: auth.RoleOperator}).CheckRegistration(&nirv1.Event{}, "e"); !errors.Is(err, ErrDenied) {
		t.Errorf("an operator writes: %v", err)
	}
}

func TestScope_Visible(t *testing.T) {
	var h history
	reg := h.register("0301", "0301", "2024-02-01")
	own := h.offer("0301", "2024-03-01")
	move := h.move("0301", "4601", "2024-06-01")
	theirs := h.offer("4601", "2024-07-01")
	// 4601 retracts 0301's offer (not allowed today, but possible in old data or by the
	// population register): the correction of a visible event is visible, and so is its own
	// retraction in turn.
	fix := h.retract("4601", own)
	unfix := h.retract("0301", fix)
	hidden := h.retract("4601", theirs)
	st := h.state()

	visible, err := kommune("0301").Visible(st)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{reg: true, own: true, move: true, theirs: false, fix: true, unfix: true, hidden: false} {
		var ev *nirv1.Event
		for _, e := range h.events {
			if e.GetId() == id {
				ev = e
			}
		}
		if got := visible(ev); got != want {
			t.Errorf("former kommune sees %s (%s): %v, want %v", id, ev.GetKommune(), got, want)
		}
	}
	if vis, err := kommune("4601").Visible(st); err != nil || !vis(h.events[1]) {
		t.Errorf("the current kommune sees everything: %v", err)
	}
	if _, err := kommune("5001").Visible(st); !errors.Is(err, ErrNotFound) {
		t.Errorf("a stranger: %v, want ErrNotFound", err)
	}
	if _, err := For(auth.Principal{Role: auth.RoleAnalyst}).Visible(st); !errors.Is(err, ErrDenied) {
		t.Errorf("an analyst: %v, want ErrDenied", err)
	}
}

func TestScope_Kommune(t *testing.T) {
	oslo := kommune("0301")
	if k, err := oslo.Kommune("kommune", ""); k != "0301" || err != nil {
		t.Errorf("own by default: %q %v", k, err)
	}
	if _, err := oslo.Kommune("kommune", "4601"); !errors.Is(err, ErrDenied) {
		t.Errorf("another kommune: %v", err)
	}
	if f, err := oslo.Fylke("area", ""); f != "03" || err != nil {
		t.Errorf("own fylke: %q %v", f, err)
	}
	if _, err := oslo.Fylke("area", "46"); !errors.Is(err, ErrDenied) {
		t.Errorf("another fylke: %v", err)
	}
	analyst := For(auth.Principal{Role: auth.RoleAnalyst})
	if k, err := analyst.Kommune("kommune", "4601"); k != "4601" || err != nil {
		t.Errorf("analyst: %q %v", k, err)
	}
	if _, err := For(auth.Principal{Role: auth.RoleOperator}).Kommune("kommune", ""); !errors.Is(err, ErrDenied) {
		t.Errorf("operator: %v", err)
	}
}
