package rules

import (
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// personWith builds a folded person from a registration and extra payloads, in order.
func personWith(permit string, basis nirv1.PermitBasis, payloads ...any) *State {
	evs := []*nirv1.Event{evPerson("p0", "0301", "1990-01-01", permit, basis)}
	for i, p := range payloads {
		e := newEv("p"+string(rune('a'+i)), "0301")
		switch x := p.(type) {
		case *nirv1.OfferRegistered:
			e.Payload = &nirv1.Event_OfferRegistered{OfferRegistered: x}
		case *nirv1.UtdanningsbakgrunnRegistered:
			e.Payload = &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: x}
		case *nirv1.TrainingVedtakRegistered:
			e.Payload = &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: x}
		case *nirv1.AbsenceRegistered:
			e.Payload = &nirv1.Event_AbsenceRegistered{AbsenceRegistered: x}
		case *nirv1.ExemptionRegistered:
			e.Payload = &nirv1.Event_ExemptionRegistered{ExemptionRegistered: x}
		}
		evs = append(evs, e)
	}
	return Fold("pk", evs)
}

func vgo(yes bool) *nirv1.UtdanningsbakgrunnRegistered {
	return &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: yes, Date: dpb("2022-01-01")}
}

func offer(d string) *nirv1.OfferRegistered {
	return &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_OPPLAERING, Date: dpb(d)}
}

func tv(scheme nirv1.TrainingScheme, typ nirv1.TrainingVedtakType, vedtak, start, end string) *nirv1.TrainingVedtakRegistered {
	v := &nirv1.TrainingVedtakRegistered{Scheme: scheme, Type: typ, VedtakDate: dpb(vedtak)}
	if start != "" {
		v.StartDate = dpb(start)
	}
	if end != "" {
		v.EndDate = dpb(end)
	}
	return v
}

// TestNorskDeadline: DOMAIN.md 3.2 and Product decisions 3.
func TestNorskDeadline(t *testing.T) {
	t.Parallel()
	const (
		asyl = nirv1.PermitBasis_PERMIT_BASIS_ASYL_28
		k34  = nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34
		rett = nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A
		utv  = nirv1.TrainingScheme_TRAINING_SCHEME_UTVIDET_6A
		tild = nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING
	)
	leave := &nirv1.AbsenceRegistered{Programme: nirv1.Programme_PROGRAMME_OPPLAERING, Type: nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_ANNET, FromDate: dpb("2022-11-01"), ToDate: dpb("2022-11-10")}
	tests := []struct {
		name    string
		s       *State
		applies bool
		state   nirv1.DeadlineState
		date    string
		version string
	}{
		{"IL vgo: 18 months from the permit", personWith("2022-01-10", asyl, vgo(true)), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2023-07-10", "norskfrist-il/2021-01-01"},
		{"IL no vgo: 3 years", personWith("2022-01-10", asyl, vgo(false)), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2025-01-10", "norskfrist-il/2021-01-01"},
		{"IL without utdanningsbakgrunn", personWith("2022-01-10", asyl), true, nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE, "", "norskfrist-il/2021-01-01"},
		{"IL leave extends (10 days)", personWith("2022-01-10", asyl, vgo(true), leave), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2023-07-20", "norskfrist-il/2021-01-01"},
		{"IL offered before 2023-08-01: from rett og plikt", personWith("2023-01-10", asyl, vgo(true), offer("2023-07-31")), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2024-07-10", "norskfrist-il/2021-01-01"},
		{"IL offered from 2023-08-01: from the offer", personWith("2023-01-10", asyl, vgo(true), offer("2023-08-01")), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2025-02-01", "norskfrist-il/2023-08-01"},
		// Two offers: the deadline runs from the first, whatever order they were registered in.
		{"IL two offers: from the first", personWith("2023-01-10", asyl, vgo(true), offer("2023-10-01"), offer("2023-09-01")), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2025-03-01", "norskfrist-il/2023-08-01"},
		{"IL rett arose after the change, no offer", personWith("2023-09-01", asyl, vgo(true)), true, nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE, "", "norskfrist-il/2023-08-01"},
		{"IL fritak completes", personWith("2022-01-10", asyl, vgo(true), &nirv1.ExemptionRegistered{Type: nirv1.ExemptionType_EXEMPTION_TYPE_OPPLAERING, Date: dpb("2022-03-01")}), true, nirv1.DeadlineState_DEADLINE_STATE_COMPLETED, "2023-07-10", "norskfrist-il/2021-01-01"},
		{"IL plikt only: none", personWith("2022-01-10", nirv1.PermitBasis_PERMIT_BASIS_ARBEID, vgo(true)), false, 0, "", ""},
		{"IntroL: none (9.6 [G])", personWith("2019-01-10", asyl), false, 0, "", ""},
		{"6A without vedtak", personWith("2022-04-01", k34), true, nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE, "", "norskfrist-6a/2022-06-15"},
		{"6A: 12 months from the first vedtak, plus leave", personWith("2022-04-01", k34,
			tv(rett, tild, "2022-08-01", "2022-09-01", ""), tv(rett, tild, "2022-08-01", "2022-10-01", ""), leave), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2023-09-11", "norskfrist-6a/2022-06-15"},
		{"6A utvidet with vgo: 1 counts", personWith("2022-04-01", k34, tv(rett, tild, "2022-08-01", "2022-09-01", ""), vgo(true),
			tv(utv, tild, "2023-08-01", "2023-09-01", "2024-02-29"), tv(utv, tild, "2024-02-01", "2024-03-01", "2024-08-31")), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2024-03-01", "norskfrist-6a/2023-07-01"},
		{"6A utvidet without vgo: 4 count, not 5", personWith("2022-04-01", k34, tv(rett, tild, "2022-08-01", "2022-09-01", ""), vgo(false),
			tv(utv, tild, "2023-08-01", "", ""), tv(utv, tild, "2024-02-01", "", ""), tv(utv, tild, "2024-08-01", "", ""),
			tv(utv, tild, "2025-02-01", "", ""), tv(utv, tild, "2025-08-01", "", "")), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2025-09-01", "norskfrist-6a/2023-07-01"},
		// The kommune registers vgo yes/no first, as it limits the number of utvidet vedtak
		// (3.2); utvidet vedtak stored without it count up to the smaller limit, 1.
		{"6A utvidet without utdanningsbakgrunn: 1 counts", personWith("2022-04-01", k34, tv(rett, tild, "2022-08-01", "2022-09-01", ""),
			tv(utv, tild, "2023-08-01", "", ""), tv(utv, tild, "2024-02-01", "", "")), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2024-03-01", "norskfrist-6a/2023-07-01"},
		{"6A utvidet before 2023-07-01 does not count", personWith("2022-04-01", k34, tv(rett, tild, "2022-08-01", "2022-09-01", ""), vgo(false),
			tv(utv, tild, "2023-06-30", "", "")), true, nirv1.DeadlineState_DEADLINE_STATE_OK, "2023-09-01", "norskfrist-6a/2022-06-15"},
	}
	now := md("2022-06-01")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, ok := NorskDeadline(tt.s, now)
			if ok != tt.applies {
				t.Fatalf("applies = %v, want %v", ok, tt.applies)
			}
			if !ok {
				return
			}
			want := Date{}
			if tt.date != "" {
				want = md(tt.date)
			}
			if d.State != tt.state || d.Date != want || d.Version != tt.version {
				t.Errorf("got %s", DeadlineText(d))
			}
			if d.State == nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE && (d.ReasonNB == "" || d.ReasonEN == "") {
				t.Errorf("cannot compute without a reason: %s", DeadlineText(d))
			}
		})
	}
}

// TestLeaveDays_AfterDeadline: approved leave is added to a deadline that is still running
// (DOMAIN.md 3.2); leave that begins after the deadline has passed revives nothing, while
// leave that begins before it, or within the days earlier leave added, counts.
func TestLeaveDays_AfterDeadline(t *testing.T) {
	t.Parallel()
	leave := func(from, to string) Leave {
		l := Leave{Period: Period{From: md(from)}}
		if to != "" {
			l.To = md(to)
		}
		return l
	}
	start, base := md("2022-01-10"), md("2023-07-10")
	tests := []struct {
		name     string
		leaves   []Leave
		now      Date
		wantDays int
		wantOpen bool
	}{
		{"after the deadline", []Leave{leave("2024-01-01", "2024-03-31")}, Date{}, 0, false},
		{"begins on the deadline", []Leave{leave("2023-07-10", "2023-07-19")}, Date{}, 10, false},
		{"begins the day after", []Leave{leave("2023-07-11", "2023-07-20")}, Date{}, 0, false},
		{"begun before the deadline's start: counted from the start", []Leave{leave("2022-01-01", "2022-01-19")}, Date{}, 10, false},
		{"within the days earlier leave added", []Leave{leave("2023-06-01", "2023-06-30"), leave("2023-08-01", "2023-08-05")}, Date{}, 35, false},
		{"overlapping, counted once", []Leave{leave("2023-01-01", "2023-01-31"), leave("2023-01-15", "2023-02-14")}, Date{}, 45, false},
		{"open-ended, begun in time", []Leave{leave("2023-07-01", "")}, Date{}, 0, true},
		{"open-ended, begun after the deadline", []Leave{leave("2023-09-01", "")}, Date{}, 0, false},
		{"open-ended to now", []Leave{leave("2023-07-01", "")}, md("2023-07-20"), 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			days, open := leaveDays(tt.leaves, start, base, tt.now)
			if days != tt.wantDays || open != tt.wantOpen {
				t.Errorf("leaveDays = %d, %v; want %d, %v", days, open, tt.wantDays, tt.wantOpen)
			}
		})
	}
}
