package access

import (
	"errors"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestScope_CheckEvent_PersonWideFacts: after a move, the kommune that has the person corrects
// the facts the fold keeps for the whole person (rules.State.Training: utdanningsbakgrunn and
// norskmål, last registered wins; exemptions; full-time upper secondary; rules.State.Reception),
// whoever registered them and whatever their date; a former kommune still registers them dated
// in its own period and retracts its own, but not the current kommune's (DOMAIN.md Product
// decisions 16, which this widens: "a retraction is made by the kommune that wrote the event";
// 7.4 leaves open which kommune edits history after a move).
//
// Found on 2026-12-06 (review of the write path): before, Oslo, which the person had left for
// Bergen, registered "vgo not completed" backdated into its period over Bergen's newer "completed"
// (changing the norsk deadline), and an exemption, and Bergen could retract neither (dated in
// Oslo's period); now Bergen retracts both, and Oslo's other registrations of its period stay
// Oslo's to correct.
func TestScope_CheckEvent_PersonWideFacts(t *testing.T) {
	// 0301 → 4601 (2024-04-01).
	var h history
	h.register("0301", "0301", "2024-02-01")
	osloOffer := h.offer("0301", "2024-03-01")
	h.move("0301", "4601", "2024-04-01")
	bergenUtd := h.add("4601", utdanning(true, "2024-05-15"))
	facts := map[string]string{
		"utdanningsbakgrunn": h.add("0301", utdanning(false, "2024-03-01")),
		"norskmål": h.add("0301", &nirv1.Event{Payload: &nirv1.Event_NorskmalRegistered{NorskmalRegistered: &nirv1.NorskmalRegistered{
			Listening: nirv1.CefrLevel_CEFR_LEVEL_A1, Date: date("2024-03-01")}}}),
		"exemption": h.add("0301", &nirv1.Event{Payload: &nirv1.Event_ExemptionRegistered{ExemptionRegistered: &nirv1.ExemptionRegistered{
			Type: nirv1.ExemptionType_EXEMPTION_TYPE_OPPLAERING, LegalBasis: "integreringsloven § 29", Date: date("2024-03-01")}}}),
		"full-time upper secondary": h.add("0301", &nirv1.Event{Payload: &nirv1.Event_FullTimeUpperSecondaryRegistered{FullTimeUpperSecondaryRegistered: &nirv1.FullTimeUpperSecondaryRegistered{
			FromDate: date("2024-02-15")}}}),
		"reception participation": h.add("0301", &nirv1.Event{Payload: &nirv1.Event_ReceptionParticipationRegistered{ReceptionParticipationRegistered: &nirv1.ReceptionParticipationRegistered{
			FromDate: date("2023-10-01"), ToDate: date("2024-01-15")}}}),
	}
	st := h.state()
	field := "registrations[0].event"
	bergen, oslo := kommune("4601"), kommune("0301")

	for name, id := range facts {
		if err := bergen.CheckEvent(st, retraction(id), field); err != nil {
			t.Errorf("Bergen, which has the person, retracts Oslo's %s: %v, want allowed", name, err)
		}
		if err := oslo.CheckEvent(st, retraction(id), field); err != nil {
			t.Errorf("Oslo retracts its own %s: %v, want allowed", name, err)
		}
		if err := kommune("1103").CheckEvent(st, retraction(id), field); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stavanger retracts Oslo's %s: %v, want not found", name, err)
		}
	}
	if err := oslo.CheckEvent(st, retraction(bergenUtd), field); !errors.Is(err, ErrDenied) {
		t.Errorf("Oslo, which the person left, retracts Bergen's utdanningsbakgrunn: %v, want denied", err)
	}
	if err := bergen.CheckEvent(st, retraction(osloOffer), field); !errors.Is(err, ErrDenied) {
		t.Errorf("Bergen retracts Oslo's offer of Oslo's period: %v, want denied, as before", err)
	}
	// A person whose registrations are retracted lives nowhere: of the kommuner that wrote one,
	// none corrects another's facts.
	var u history
	osloReg := u.register("0301", "0301", "2024-02-01")
	bergenReg := u.register("4601", "4601", "2024-02-01")
	osloUtd := u.add("0301", utdanning(false, "2024-03-01"))
	u.retract("0301", osloReg)
	u.retract("4601", bergenReg)
	if ust := u.state(); bergen.Relation(ust) != Current || oslo.Relation(ust) != Current {
		t.Errorf("relations to a person no longer registered: Bergen %s, Oslo %s; want both current", bergen.Relation(ust), oslo.Relation(ust))
	} else if err := bergen.CheckEvent(ust, retraction(osloUtd), field); !errors.Is(err, ErrDenied) {
		t.Errorf("Bergen retracts Oslo's utdanningsbakgrunn of a person no longer registered: %v, want denied", err)
	}
	// A former kommune registers such facts within its period, as before, and not after it.
	if err := oslo.CheckEvent(st, utdanning(false, "2024-03-01"), field); err != nil {
		t.Errorf("Oslo registers utdanningsbakgrunn dated in its period: %v", err)
	}
	if err := oslo.CheckEvent(st, utdanning(false, "2024-05-01"), field); !errors.Is(err, ErrDenied) {
		t.Errorf("Oslo registers utdanningsbakgrunn dated after the move: %v, want denied", err)
	}
}

func utdanning(vgo bool, on string) *nirv1.Event {
	return &nirv1.Event{Payload: &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: &nirv1.UtdanningsbakgrunnRegistered{
		UpperSecondaryCompleted: vgo, Date: date(on)}}}
}
