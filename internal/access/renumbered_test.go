package access

import (
	"errors"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestScope_RenumberedKommune: a kommune renumbered at a reform writes, corrects and reaches
// its persons under the numbers it had before, as the fold counts them (DOMAIN.md Product
// decisions 13: a number and its successors are one kommune; rules.Residences names a person's
// kommuner by rules.KommuneNow). A token holds only today's number (auth's token file).
//
// Found on 2026-12-06 (review of the write path): before, access compared kommune numbers as
// strings, while the validator wants the number valid on the event's date: Halden (3101, 3001
// until 2023-12-31) could register nothing dated before 2024 ("a kommune may only register for
// its own kommune (3101)" with 3001, "3101 not valid on 2023-06-01" with 3101), nor correct its
// own registrations written as 3001; now 3001 is Halden's. A split is strict: 1507 Ålesund is
// 1508 Ålesund's, whom the fold gives its persons, and never 1580 Haram's.
func TestScope_RenumberedKommune(t *testing.T) {
	field := "registrations[0].event"
	t.Run("registering under a number it had", func(t *testing.T) {
		cases := []struct {
			token, kommune string
			want           bool
		}{
			{"3101", "3001", true},  // Halden, renumbered 2024
			{"3001", "3101", true},  // and the other way round
			{"3103", "3001", false}, // Moss is not Halden
			{"3101", "3002", false}, // nor Halden Moss (3002 → 3103)
			{"3203", "3025", true},  // Asker 2020-2023
			{"3203", "0627", true},  // Røyken, merged into Asker 2020
			{"3203", "0220", true},  // Asker before 2020
			{"3201", "0627", false}, // Bærum is not Røyken
			{"3201", "3025", false},
			{"1508", "1507", true},  // Ålesund continues 1507 Ålesund
			{"1580", "1507", false}, // Haram, split from it in 2024, does not
			{"1580", "1508", false},
			{"1508", "1580", false},
		}
		for _, c := range cases {
			ev := &nirv1.Event{Kommune: c.kommune, Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{SettlementKommune: c.kommune}}}
			err := kommune(c.token).CheckRegistration(ev, field)
			if c.want && err != nil {
				t.Errorf("%s registers a person settled in %s: %v, want allowed", c.token, c.kommune, err)
			}
			var de *DeniedError
			if !c.want && (!errors.As(err, &de) || de.Field != field+".kommune") {
				t.Errorf("%s registers a person settled in %s: %v, want denied on %s.kommune", c.token, c.kommune, err, field)
			}
		}
	})

	t.Run("Halden corrects its pre-reform registrations", func(t *testing.T) {
		var h history
		reg := h.register("3001", "3001", "2023-06-01")
		off := h.offer("3001", "2023-07-01")
		st := h.state()
		halden := kommune("3101")
		if r := halden.Relation(st); r != Current {
			t.Fatalf("Halden's relation to a person settled in 3001: %s, want current", r)
		}
		for _, id := range []string{off, reg} {
			if err := halden.CheckEvent(st, retraction(id), field); err != nil {
				t.Errorf("Halden retracts its event %s written as 3001: %v", id, err)
			}
		}
		if err := halden.CheckEvent(st, &nirv1.Event{Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "3001", Date: date("2024-03-01")}}}, field); !errors.Is(err, ErrDenied) {
			t.Errorf("Halden moves its person to 3001: %v, want denied (the person lives there already)", err)
		}
		if err := kommune("3103").CheckEvent(st, retraction(off), field); !errors.Is(err, ErrNotFound) {
			t.Errorf("Moss retracts Halden's event: %v, want not found", err)
		}
		// Its registration retracted, the person is the kommune's that wrote it, which may
		// register it again; nobody else learns of it.
		h.retract("3001", reg)
		st = h.state()
		again := &nirv1.Event{Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{SettlementKommune: "3001"}}}
		if err := halden.CheckEvent(st, again, field); err != nil {
			t.Errorf("Halden registers again the person whose registration (as 3001) it retracted: %v", err)
		}
		if err := kommune("3103").CheckEvent(st, again, field); !errors.Is(err, ErrNotFound) {
			t.Errorf("Moss registers Halden's retracted person: %v, want not found", err)
		}
	})

	t.Run("a former kommune under its old number", func(t *testing.T) {
		// Settled in 3001 Halden, moved to Oslo on 2023-09-01.
		var h history
		h.register("3001", "3001", "2023-06-01")
		onMove := h.offer("3001", "2023-09-01")
		h.move("3001", "0301", "2023-09-01")
		st := h.state()
		halden := kommune("3101")
		if r := halden.Relation(st); r != Former {
			t.Fatalf("Halden's relation: %s, want former", r)
		}
		if err := halden.CheckEvent(st, offer("2023-08-01"), field); err != nil {
			t.Errorf("Halden writes within its period: %v", err)
		}
		if err := halden.CheckEvent(st, offer("2023-10-01"), field); !errors.Is(err, ErrDenied) {
			t.Errorf("Halden writes after its period: %v, want denied", err)
		}
		if err := halden.CheckEvent(st, retraction(onMove), field); err != nil {
			t.Errorf("Halden retracts its own event: %v", err)
		}
		// Halden reads its own period, written as 3001, and so finds what it corrects.
		visible, err := halden.Visible(st)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range h.events {
			if !visible(ev) {
				t.Errorf("Halden does not see its own event %T %s (kommune %s) in the history", ev.GetPayload(), ev.GetId(), ev.GetKommune())
			}
		}
		// The move date is Halden's as much as Oslo's: Oslo does not retract Halden's event on it.
		if err := kommune("0301").CheckEvent(st, retraction(onMove), field); !errors.Is(err, ErrDenied) {
			t.Errorf("Oslo retracts Halden's (3001) event dated on the move: %v, want denied", err)
		}
	})

	t.Run("split: Haram does not reach Ålesund's persons", func(t *testing.T) {
		var h history
		reg := h.register("1507", "1507", "2023-03-01")
		off := h.offer("1507", "2023-04-01")
		st := h.state()
		if r := kommune("1508").Relation(st); r != Current {
			t.Errorf("Ålesund's relation to a person settled in 1507: %s, want current", r)
		}
		if err := kommune("1508").CheckEvent(st, retraction(off), field); err != nil {
			t.Errorf("Ålesund retracts its event written as 1507: %v", err)
		}
		haram := kommune("1580")
		if r := haram.Relation(st); r != None {
			t.Errorf("Haram's relation to a person settled in 1507: %s, want none", r)
		}
		for _, id := range []string{reg, off} {
			if err := haram.CheckEvent(st, retraction(id), field); !errors.Is(err, ErrNotFound) {
				t.Errorf("Haram retracts 1507's event %s: %v, want not found", id, err)
			}
		}
	})
}

// TestScope_OldNumberOnlyInItsTime: a number the kommune had before a reform is written only
// for events dated while it was valid.
//
// Found on 2026-12-06 (review after merging the renumbering fix): after a split the old
// number names both parts to the fold (rules.SameKommune: 1507 is 1508 Ålesund's and 1580
// Haram's), and the validator accepts it after the split (its same-named successor is
// valid). Ålesund, a former kommune of a person now in Haram, wrote a termination as 1507
// dated on the move, in its own period: it ended Haram's programme, and Haram could not
// retract it. Written as 1508 it finds no programme. Now 1507 is Ålesund's only for events
// dated before 2024.
func TestScope_OldNumberOnlyInItsTime(t *testing.T) {
	field := "registrations[0].event"
	termination := func(k, d string) *nirv1.Event {
		return &nirv1.Event{Id: "01HZX3J5Q8RBN0M9T7W2K4CZZZ", Kommune: k, PersonKey: "pk",
			Payload: &nirv1.Event_TerminationRegistered{TerminationRegistered: &nirv1.TerminationRegistered{
				Kind: nirv1.TerminationKind_TERMINATION_KIND_AVBRUTT, Reason: nirv1.TerminationReason_TERMINATION_REASON_FLYTTET, Date: date(d)}}}
	}
	for _, c := range []struct {
		token, kommune, date string
		want                 bool
	}{
		{"1508", "1507", "2023-06-01", true},
		{"1508", "1507", "2024-06-01", false}, // after the split 1507 is Haram's too
		{"1508", "1508", "2024-06-01", true},
		{"3101", "3001", "2023-07-01", true},
		{"3101", "3001", "2024-02-01", false},
	} {
		err := kommune(c.token).CheckRegistration(termination(c.kommune, c.date), field)
		var de *DeniedError
		switch {
		case c.want && err != nil:
			t.Errorf("%s writes under %s on %s: %v, want allowed", c.token, c.kommune, c.date, err)
		case !c.want && (!errors.As(err, &de) || de.Field != field+".kommune"):
			t.Errorf("%s writes under %s on %s: %v, want denied on %s.kommune", c.token, c.kommune, c.date, err, field)
		}
	}
	// A settlement under the old number, dated after the reform.
	reg := &nirv1.Event{Kommune: "3101", Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
		SettlementKommune: "3001", SettlementDate: date("2024-03-01")}}}
	var de *DeniedError
	if err := kommune("3101").CheckRegistration(reg, field); !errors.As(err, &de) || de.Field != field+".person_registered.settlement_kommune" {
		t.Errorf("a settlement under 3001 dated 2024: %v, want denied on settlement_kommune", err)
	}

	// The review's scenario: Ålesund's termination written as 1507 never reaches Haram's
	// programme; as 1508 it finds none.
	for _, k := range []string{"1507", "1508"} {
		var h history
		h.register("1508", "1508", "2024-01-15")
		h.move("1508", "1580", "2024-06-01")
		h.add("1580", &nirv1.Event{Payload: &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: &nirv1.ProgrammeVedtakRegistered{
			Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: date("2024-05-20"), FromDate: date("2024-06-01")}}})
		st := h.state()
		alesund := kommune("1508")
		if r := alesund.Relation(st); r != Former {
			t.Fatalf("Ålesund's relation: %s, want former", r)
		}
		ev := termination(k, "2024-06-01")
		if alesund.CheckRegistration(ev, field) != nil || alesund.CheckEvent(st, ev, field) != nil {
			continue // refused
		}
		h.add(k, ev)
		for _, p := range h.state().Programmes {
			if p.Kommune == "1580" && p.Termination != nil {
				t.Errorf("Ålesund, a former kommune, writing as %s, ended Haram's programme (%v on %s)", k, p.Termination.Reason, p.Termination.Date)
			}
		}
	}
}
