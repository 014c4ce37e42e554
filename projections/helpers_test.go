package projections

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// scenario builds one stream of events for tests, with sequences and recorded times.
type scenario struct {
	recs []Record
	n    int
}

func pd(s string) *nirv1.Date { return rules.MustParseDate(s).Proto() }

func ts(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t.Add(12 * time.Hour)
}

// add appends an event for person pk in kommune k, recorded on date rec, and returns its id.
func (s *scenario) add(pk, k, rec string, payload any) string {
	s.n++
	id := fmt.Sprintf("01TEST%020d", s.n)
	ev := &nirv1.Event{Id: id, PersonKey: pk, Kommune: k, RecordedAt: timestamppb.New(ts(rec)),
		Actor: &nirv1.Actor{Subject: "kommune-" + k, Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE}}
	setPayload(ev, payload)
	s.recs = append(s.recs, Record{Seq: uint64(len(s.recs) + 1), Event: ev})
	return id
}

func setPayload(ev *nirv1.Event, p any) {
	switch v := p.(type) {
	case *nirv1.PersonRegistered:
		ev.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: v}
	case *nirv1.PersonMoved:
		ev.Payload = &nirv1.Event_PersonMoved{PersonMoved: v}
	case *nirv1.DemandRegistered:
		ev.Payload = &nirv1.Event_DemandRegistered{DemandRegistered: v}
	case *nirv1.OfferRegistered:
		ev.Payload = &nirv1.Event_OfferRegistered{OfferRegistered: v}
	case *nirv1.ProgrammeVedtakRegistered:
		ev.Payload = &nirv1.Event_ProgrammeVedtakRegistered{ProgrammeVedtakRegistered: v}
	case *nirv1.SluttmalRegistered:
		ev.Payload = &nirv1.Event_SluttmalRegistered{SluttmalRegistered: v}
	case *nirv1.IntegreringskontraktRegistered:
		ev.Payload = &nirv1.Event_IntegreringskontraktRegistered{IntegreringskontraktRegistered: v}
	case *nirv1.TiltakRegistered:
		ev.Payload = &nirv1.Event_TiltakRegistered{TiltakRegistered: v}
	case *nirv1.AbsenceRegistered:
		ev.Payload = &nirv1.Event_AbsenceRegistered{AbsenceRegistered: v}
	case *nirv1.TerminationRegistered:
		ev.Payload = &nirv1.Event_TerminationRegistered{TerminationRegistered: v}
	case *nirv1.TerminationComputed:
		ev.Payload = &nirv1.Event_TerminationComputed{TerminationComputed: v}
		ev.Actor = &nirv1.Actor{Subject: rules.RegelmotorSubject, Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM}
	case *nirv1.ComputedTerminationDeleted:
		ev.Payload = &nirv1.Event_ComputedTerminationDeleted{ComputedTerminationDeleted: v}
	case *nirv1.TrainingVedtakRegistered:
		ev.Payload = &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: v}
	case *nirv1.UtdanningsbakgrunnRegistered:
		ev.Payload = &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: v}
	case *nirv1.NorskmalRegistered:
		ev.Payload = &nirv1.Event_NorskmalRegistered{NorskmalRegistered: v}
	case *nirv1.TrainingHoursRegistered:
		ev.Payload = &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: v}
	case *nirv1.ExemptionRegistered:
		ev.Payload = &nirv1.Event_ExemptionRegistered{ExemptionRegistered: v}
	case *nirv1.EventRetracted:
		ev.Payload = &nirv1.Event_EventRetracted{EventRetracted: v}
	case *nirv1.PersonErased:
		ev.Payload = &nirv1.Event_PersonErased{PersonErased: v}
	default:
		panic(fmt.Sprintf("setPayload: %T", p))
	}
}

// person registers a person: permit date decides the law (DOMAIN.md 1.1).
func (s *scenario) person(pk, k, permit string, basis nirv1.PermitBasis, seq int) string {
	p := rules.MustParseDate(permit)
	birth := rules.MustDate(1990, 5, 17)
	return s.add(pk, k, permit, &nirv1.PersonRegistered{
		Fodselsnummer: rules.SyntheticFodselsnummer(birth, seq),
		BirthDate:     birth.Proto(), Sex: nirv1.Sex_SEX_FEMALE,
		PermitDate: p.Proto(), PermitBasis: basis, ArrivalDate: p.AddDays(-30).Proto(),
		SettlementDate: p.AddMonths(1).Proto(), SettlementKommune: k, SettledByAgreement: true,
	})
}

func (s *scenario) tildeling(pk, k, from string) string {
	return s.add(pk, k, from, &nirv1.ProgrammeVedtakRegistered{
		Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING, VedtakDate: pd(from), FromDate: pd(from)})
}

func (s *scenario) terminate(pk, k, date, rec string, reason nirv1.TerminationReason) string {
	return s.add(pk, k, rec, &nirv1.TerminationRegistered{Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT, Reason: reason, Date: pd(date)})
}

func (s *scenario) computed(pk, k, date, start, rec string) string {
	return s.add(pk, k, rec, &nirv1.TerminationComputed{Rule: nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT,
		Reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT, Date: pd(date), ProgrammeStart: pd(start), RuleVersion: "test"})
}

// population generates a deterministic synthetic population of n persons across a few
// kommuner, under all three laws, with programmes, training, hours, terminations (registered,
// computed, reasons added later, deleted), moves and retractions; events of different persons
// are interleaved by recorded time as in a real stream.
// spreadKeys gives recs' persons keys spread over the key space as personkey's digests are
// (population's share their first 48 hex digits): the spill's ranges of keys then each get
// some of them.
func spreadKeys(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		sum := sha256.Sum256([]byte(r.Event.GetPersonKey()))
		ev := proto.Clone(r.Event).(*nirv1.Event)
		ev.PersonKey = hex.EncodeToString(sum[:])
		out[i] = Record{Seq: r.Seq, Event: ev}
	}
	return out
}

func population(seed uint64, n int, kommuner []string) []Record {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type item struct {
		at  time.Time
		idx int
		ev  *nirv1.Event
	}
	var items []item
	idn := 0
	for i := range n {
		pk := fmt.Sprintf("%064x", uint64(i)*2654435761+seed)
		k := kommuner[r.IntN(len(kommuner))]
		year := 2018 + r.IntN(7)
		basis := nirv1.PermitBasis_PERMIT_BASIS_ASYL_28
		if year >= 2022 && r.IntN(3) == 0 {
			basis = nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34
		}
		permit := rules.MustDate(year, time.Month(1+r.IntN(12)), 1+r.IntN(28))
		if basis == nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34 && permit.Before(rules.MustDate(2022, 3, 11)) {
			permit = rules.MustDate(2022, 4, 1)
		}
		birth := rules.MustDate(1970+r.IntN(35), time.Month(1+r.IntN(12)), 1+r.IntN(28))
		settle := permit.AddDays(20 + r.IntN(60))
		law, _ := rules.LawOf(rules.Person{PermitDate: permit, ArrivalDate: permit.AddDays(-40), PermitBasis: basis})
		var evs []*nirv1.Event
		var recAt []rules.Date
		emit := func(rec rules.Date, payload any) string {
			idn++
			ev := &nirv1.Event{Id: fmt.Sprintf("01GEN%021d", idn), PersonKey: pk, Kommune: k,
				Actor: &nirv1.Actor{Subject: "fagsystem-" + k, Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE}}
			setPayload(ev, payload)
			evs = append(evs, ev)
			recAt = append(recAt, rec)
			return ev.Id
		}
		emit(settle, &nirv1.PersonRegistered{Fodselsnummer: rules.SyntheticFodselsnummer(birth, i%500), BirthDate: birth.Proto(),
			Sex: nirv1.Sex(1 + r.IntN(2)), PermitDate: permit.Proto(), PermitBasis: basis, ArrivalDate: permit.AddDays(-40).Proto(),
			SettlementDate: settle.Proto(), SettlementKommune: k, SettledByAgreement: true})
		start := settle.AddDays(10 + r.IntN(80))
		if r.IntN(10) < 7 {
			emit(start, &nirv1.ProgrammeVedtakRegistered{Type: nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING,
				VedtakDate: start.Proto(), FromDate: start.Proto()})
			if law != nirv1.Law_LAW_INTROL {
				emit(start.AddDays(5), &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal(3 + r.IntN(4)), Date: start.AddDays(5).Proto()})
				if r.IntN(2) == 0 {
					emit(start.AddDays(7), &nirv1.IntegreringskontraktRegistered{Date: start.AddDays(7).Proto()})
				}
			}
			var tiltak []string
			for j := range r.IntN(4) {
				f := start.AddMonths(j * 3)
				tiltak = append(tiltak, emit(f, &nirv1.TiltakRegistered{Code: nirv1.TiltakCode(1 + r.IntN(17)), FromDate: f.Proto(),
					ToDate: f.AddMonths(3).Proto(), HoursPerWeek: float64(10 + r.IntN(25))}))
			}
			if len(tiltak) > 0 && r.IntN(8) == 0 {
				emit(start.AddMonths(4), &nirv1.EventRetracted{EventId: tiltak[0], Reason: "feilregistrert"})
			}
			end := start.AddMonths(6 + r.IntN(24))
			switch x := r.IntN(10); {
			case x < 5:
				rec := end.AddDays(r.IntN(60))
				id := emit(rec, &nirv1.TerminationRegistered{Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT,
					Reason: nirv1.TerminationReason(1 + r.IntN(12)), Date: end.Proto()})
				if r.IntN(10) == 0 {
					emit(rec.AddDays(3), &nirv1.EventRetracted{EventId: id, Reason: "feil dato"})
				}
			case x < 7:
				cid := emit(end.AddDays(1), &nirv1.TerminationComputed{Rule: nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT,
					Reason: nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT, Date: end.Proto(), ProgrammeStart: start.Proto(), RuleVersion: "gen"})
				if r.IntN(2) == 0 {
					later := end.AddDays(20 + r.IntN(200))
					if law == nirv1.Law_LAW_INTROL {
						emit(later, &nirv1.ComputedTerminationDeleted{ComputedEventId: cid, Reason: "kommunen registrerer selv"})
					}
					emit(later.AddDays(1), &nirv1.TerminationRegistered{Kind: nirv1.TerminationKind_TERMINATION_KIND_FULLFORT,
						Reason: nirv1.TerminationReason(1 + r.IntN(6)), Date: end.Proto()})
				}
			}
		}
		if r.IntN(10) < 8 {
			ts := start.AddDays(r.IntN(120))
			scheme := nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT
			if law == nirv1.Law_LAW_IL_6A {
				scheme = nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A
			}
			emit(ts, &nirv1.TrainingVedtakRegistered{Scheme: scheme, Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING,
				VedtakDate: ts.Proto(), StartDate: ts.Proto()})
			if law == nirv1.Law_LAW_IL && r.IntN(10) < 7 {
				emit(ts, &nirv1.UtdanningsbakgrunnRegistered{UpperSecondaryCompleted: r.IntN(2) == 0, Date: ts.Proto()})
				if r.IntN(2) == 0 {
					emit(ts, &nirv1.NorskmalRegistered{Listening: 3, Reading: 3, Writing: 2, Speaking: 3, Date: ts.Proto()})
				}
			}
			for m := range r.IntN(8) {
				mon := ts.AddMonths(m)
				emit(mon.AddMonths(1), &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_NORSK,
					Month: &nirv1.YearMonth{Year: int32(mon.Y), Month: int32(mon.M)}, Hours: float64(20+r.IntN(60)) + 0.5})
				if m%3 == 0 {
					emit(mon.AddMonths(1), &nirv1.TrainingHoursRegistered{Type: nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_1 + nirv1.HoursType(m/3%3),
						Month: &nirv1.YearMonth{Year: int32(mon.Y), Month: int32(mon.M)}, Hours: 25})
				}
			}
		}
		if r.IntN(10) == 0 {
			to := kommuner[r.IntN(len(kommuner))]
			mv := start.AddMonths(r.IntN(18))
			emit(mv, &nirv1.PersonMoved{ToKommune: to, Date: mv.Proto()})
		}
		// Recorded times follow the person's own order (never before the previous event).
		prev := time.Time{}
		for j, ev := range evs {
			at := recAt[j].Time().Add(time.Duration(r.IntN(3600)) * time.Second)
			if !at.After(prev) {
				at = prev.Add(time.Second)
			}
			prev = at
			ev.RecordedAt = timestamppb.New(at)
			items = append(items, item{at: at, idx: len(items), ev: ev})
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].at.Before(items[j].at) })
	recs := make([]Record, len(items))
	for i, it := range items {
		recs[i] = Record{Seq: uint64(i + 1), Event: it.ev}
	}
	return recs
}

var testKommuner = []string{"0301", "4601", "5001", "1103", "3201", "3403"}

// openTestDB opens a read-model file in a temporary directory.
func openTestDB(tb testing.TB, opt DBOptions) *DB {
	tb.Helper()
	db, err := Open(filepath.Join(tb.TempDir(), "models.db"), opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func dump(tb testing.TB, db *DB) string {
	tb.Helper()
	var b bytes.Buffer
	if err := db.Dump(&b); err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

func applyAll(tb testing.TB, db *DB, recs []Record, batch int) {
	tb.Helper()
	for i := 0; i < len(recs); i += batch {
		if _, err := db.Apply(recs[i:min(i+batch, len(recs))]); err != nil {
			tb.Fatal(err)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var bg = context.Background()
