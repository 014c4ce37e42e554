package demo

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

var testNow = rules.MustDate(2025, time.November, 20)

func collect(seed int64, n int, now rules.Date) [][]*nirv1.Event {
	var out [][]*nirv1.Event
	for evs := range Generate(seed, n, now) {
		out = append(out, evs)
	}
	return out
}

// ulidTime decodes the millisecond time of a canonical ULID.
func ulidTime(t testing.TB, id string) uint64 {
	t.Helper()
	var ms uint64
	for i := 0; i < 10; i++ {
		v := strings.IndexByte(crockford, id[i])
		if v < 0 {
			t.Fatalf("id %q: bad character", id)
		}
		ms = ms<<5 | uint64(v)
	}
	return ms
}

func dateOfMs(ms uint64) rules.Date {
	return rules.DateFromTime(time.UnixMilli(int64(ms)).UTC())
}

func TestGenerate_Deterministic(t *testing.T) {
	t.Parallel()
	a := collect(42, 300, testNow)
	b := collect(42, 300, testNow)
	c := collect(43, 300, testNow)
	if len(a) != 300 || len(b) != 300 {
		t.Fatalf("got %d and %d persons, want 300", len(a), len(b))
	}
	same := func(x, y [][]*nirv1.Event) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if len(x[i]) != len(y[i]) {
				return false
			}
			for j := range x[i] {
				if !proto.Equal(x[i][j], y[i][j]) {
					return false
				}
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("the same seed gave different populations")
	}
	if same(a, c) {
		t.Error("different seeds gave the same population")
	}
	// Stopping early works (the iterator honours yield's false).
	n := 0
	for range Generate(42, 300, testNow) {
		n++
		if n == 5 {
			break
		}
	}
	if n != 5 {
		t.Errorf("stopped after %d", n)
	}
}

// TestGenerate_Events checks every event of a population: it passes static validation,
// its id is a ULID whose time is its effective date and rises within the person, the
// kommune is valid on that date, the person registers first with a synthetic national id
// that no other person has and that agrees with the registered birth date.
func TestGenerate_Events(t *testing.T) {
	t.Parallel()
	pop := collect(7, 1500, testNow)
	ids := map[string]bool{}
	nationalIDs := map[string]bool{}
	payloads := map[string]int{}
	laws := map[nirv1.Law]int{}
	events := 0
	for pi, evs := range pop {
		if len(evs) == 0 {
			t.Fatalf("person %d has no events", pi)
		}
		reg := evs[0].GetPersonRegistered()
		if reg == nil {
			t.Fatalf("person %d: first event is %T", pi, evs[0].GetPayload())
		}
		nid := reg.GetFodselsnummer() + reg.GetDNummer()
		parsed, err := rules.ParseNationalID(nid)
		if err != nil || !parsed.Synthetic() {
			t.Fatalf("person %d: national id invalid or not synthetic: %v", pi, err)
		}
		if nationalIDs[nid] {
			t.Fatalf("person %d: national id given to an earlier person", pi)
		}
		nationalIDs[nid] = true
		birth, _ := parsed.BirthDate()
		if b, _ := rules.DateOf(reg.GetBirthDate()); b != birth || parsed.Sex() != reg.GetSex() {
			t.Errorf("person %d: birth date or sex disagrees with the national id", pi)
		}
		permit, _ := rules.DateOf(reg.GetPermitDate())
		arrival, _ := rules.DateOf(reg.GetArrivalDate())
		law, _ := rules.LawOf(rules.Person{PermitDate: permit, PermitBasis: reg.GetPermitBasis(), ArrivalDate: arrival})
		laws[law]++
		if settled, ok := rules.DateOf(reg.GetSettlementDate()); ok {
			if _, err := rules.LookupKommune(reg.GetSettlementKommune(), settled); err != nil {
				t.Errorf("person %d: settlement kommune: %v", pi, err)
			}
			if settled.After(testNow) {
				t.Errorf("person %d: settled after now", pi)
			}
		}
		var lastMs uint64
		for j, ev := range evs {
			events++
			if err := rules.ValidateEvent(ev); err != nil {
				t.Fatalf("person %d event %d: %v", pi, j, err)
			}
			if ids[ev.GetId()] {
				t.Fatalf("person %d event %d: id repeated", pi, j)
			}
			ids[ev.GetId()] = true
			ms := ulidTime(t, ev.GetId())
			if ms <= lastMs {
				t.Fatalf("person %d event %d: id time not increasing", pi, j)
			}
			lastMs = ms
			on := dateOfMs(ms)
			if on.After(testNow) {
				t.Errorf("person %d event %d: effective date %s after now", pi, j, on)
			}
			if _, err := rules.LookupKommune(ev.GetKommune(), on); err != nil {
				t.Errorf("person %d event %d (%T): kommune on %s: %v", pi, j, ev.GetPayload(), on, err)
			}
			if eff, ok := rules.EffectiveDate(ev); ok {
				if _, err := rules.LookupKommune(ev.GetKommune(), eff); err != nil {
					t.Errorf("person %d event %d (%T): kommune on its effective date: %v", pi, j, ev.GetPayload(), err)
				}
			}
			if m := ev.GetPersonMoved(); m != nil {
				d, _ := rules.DateOf(m.GetDate())
				if _, err := rules.LookupKommune(m.GetToKommune(), d); err != nil {
					t.Errorf("person %d: moved to: %v", pi, err)
				}
				if m.GetToKommune() != ev.GetKommune() {
					t.Errorf("person %d: move registered by %s, to %s", pi, ev.GetKommune(), m.GetToKommune())
				}
			}
			if ev.GetPersonKey() != "" || ev.GetActor() != nil || ev.GetRecordedAt() != nil {
				t.Errorf("person %d event %d: server fields set", pi, j)
			}
			name := fmt.Sprintf("%T", ev.GetPayload())
			payloads[strings.TrimPrefix(name, "*nirv1.Event_")]++
		}
	}
	t.Logf("%d persons, %d events (%.1f a person), laws %v", len(pop), events, float64(events)/float64(len(pop)), laws)
	if events < 10*len(pop) {
		t.Errorf("%d events for %d persons: want at least 10 a person (1M events from 100 000 persons)", events, len(pop))
	}
	for _, l := range []nirv1.Law{nirv1.Law_LAW_INTROL, nirv1.Law_LAW_IL, nirv1.Law_LAW_IL_6A} {
		if laws[l] < len(pop)/10 {
			t.Errorf("only %d persons under %v", laws[l], l)
		}
	}
	// Every payload a kommune registers appears; the regelmotor's own do not.
	oneof := (&nirv1.Event{}).ProtoReflect().Descriptor().Oneofs().ByName("payload")
	for i := 0; i < oneof.Fields().Len(); i++ {
		f := oneof.Fields().Get(i)
		goName := camel(string(f.Name()))
		switch goName {
		case "PersonsMerged", "PersonMergedInto", "PersonErased":
			// A merge joins two persons; the demo makes them one by one. An erasure is an
			// operator's decision years after the person's last activity.
		case "TerminationComputed", "ComputedTerminationDeleted", "IdentifierClaimed":
			if payloads[goName] != 0 {
				t.Errorf("%s generated; it is the regelmotor's or nird's", goName)
			}
		default:
			if payloads[goName] == 0 {
				t.Errorf("no %s in the population", goName)
			}
		}
	}
	keys := make([]string, 0, len(payloads))
	for k := range payloads {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%-40s %7d", k, payloads[k])
	}
}

// TestGenerate_Lifecycles folds each person with the regelmotor and checks the life
// cycles the demo promises: terminated programmes with reasons, programmes left without
// a termination past their latest end (for «ikke registrert»), retractions that name an
// earlier event of the same person, and persons in the 2024 reform's new fylker.
func TestGenerate_Lifecycles(t *testing.T) {
	t.Parallel()
	pop := collect(11, 1500, testNow)
	var terminated, unterminatedPast, retractions, programmes, newFylke int
	for pi, evs := range pop {
		s := rules.Fold(fmt.Sprint(pi), evs)
		for _, ev := range evs {
			if rt := ev.GetEventRetracted(); rt != nil {
				retractions++
				if _, ok := s.Events[rt.GetEventId()]; !ok || !s.Retracted[rt.GetEventId()] {
					t.Errorf("person %d: retraction of an unknown event", pi)
				}
			}
			if strings.HasPrefix(ev.GetKommune(), "31") || strings.HasPrefix(ev.GetKommune(), "55") {
				newFylke++
			}
		}
		for _, p := range s.Programmes {
			programmes++
			switch {
			case p.Termination != nil:
				terminated++
				if p.Termination.Reason == nirv1.TerminationReason_TERMINATION_REASON_UNSPECIFIED {
					t.Errorf("person %d: termination without reason", pi)
				}
			default:
				if end, _, _, _, ok := rules.ProgrammeLatestEnd(s, p, testNow); ok && end.Before(testNow) {
					unterminatedPast++
				}
			}
		}
	}
	t.Logf("programmes %d, terminated %d, past the end without termination %d, retractions %d, events in new fylker %d",
		programmes, terminated, unterminatedPast, retractions, newFylke)
	if programmes < len(pop)/3 || terminated < programmes/3 {
		t.Errorf("%d programmes, %d terminated: too few", programmes, terminated)
	}
	if unterminatedPast < programmes/50 {
		t.Errorf("only %d programmes past their end without termination", unterminatedPast)
	}
	if retractions == 0 || newFylke == 0 {
		t.Errorf("retractions %d, events in 2024 fylker %d: want some of each", retractions, newFylke)
	}
}

// TestGenerate_PassesCheck runs the regelmotor's registration check on every event in
// stream order, as nird would on append at the time: the demo population should be one the
// register accepts.
// TestGenerate_WithRegelmotor replays each person as the live register would see it: before
// each event, the regelmotor appends the computed terminations due by the event's day. The
// kommune's later registrations must still pass Check (under introduksjonsloven a
// termination over an undeleted computed one is refused), and the population must give the
// regelmotor work: «ikke registrert» for programmes left without a termination, FLYTTET for
// introduksjonsloven participants who move.
func TestGenerate_WithRegelmotor(t *testing.T) {
	t.Parallel()
	computed := map[nirv1.TerminationRule]int{}
	refused := map[string]string{}
	for evs := range Generate(17, 1500, testNow) {
		s := rules.NewState("p")
		seq := uint64(0)
		apply := func(ev *nirv1.Event) {
			seq++
			s.Apply(seq, ev)
		}
		for j, ev := range evs {
			day := dateOfMs(ulidTime(t, ev.GetId()))
			for _, ct := range rules.DueTerminations(s, day) {
				computed[ct.GetTerminationComputed().GetRule()]++
				apply(ct)
			}
			for _, r := range rules.Check(s, []*nirv1.Event{ev}, testNow) {
				if _, ok := refused[r.Code]; !ok {
					refused[r.Code] = fmt.Sprintf("event %d %T: %s", j, ev.GetPayload(), r.Error())
				}
			}
			apply(ev)
		}
		for _, ct := range rules.DueTerminations(s, testNow) {
			computed[ct.GetTerminationComputed().GetRule()]++
		}
	}
	for code, ex := range refused {
		t.Errorf("refused %s, e.g. %s", code, ex)
	}
	t.Logf("computed terminations: %v", computed)
	if computed[nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT] == 0 || computed[nirv1.TerminationRule_TERMINATION_RULE_FLYTTET] == 0 {
		t.Errorf("computed terminations %v: want both rules to fire", computed)
	}
}

func TestGenerate_PassesCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		now     rules.Date
		persons int
	}{
		{testNow, 1000},
		{rules.MustDate(2019, time.June, 30), 300}, // IntroL only
		{rules.MustDate(2021, time.March, 1), 300}, // IL has begun, no 6A yet
		{rules.MustDate(2023, time.August, 15), 300},
		{rules.MustDate(2024, time.January, 10), 300},  // just after the kommune reform
		{rules.MustDate(2027, time.February, 28), 300}, // after 6A's current end date
	}
	for _, tt := range tests {
		t.Run(tt.now.String(), func(t *testing.T) {
			t.Parallel()
			refused := map[string]int{}
			example := map[string]string{}
			total := 0
			for evs := range Generate(5, tt.persons, tt.now) {
				s := rules.NewState("p")
				for j, ev := range evs {
					total++
					if err := rules.ValidateEvent(ev); err != nil {
						t.Fatalf("event %d: %v", j, err)
					}
					for _, r := range rules.Check(s, []*nirv1.Event{ev}, tt.now) {
						refused[r.Code]++
						if _, ok := example[r.Code]; !ok {
							example[r.Code] = fmt.Sprintf("event %d %T: %s", j, ev.GetPayload(), r.Error())
						}
					}
					s.Apply(uint64(j+1), ev)
				}
			}
			for code, c := range refused {
				t.Errorf("%d refusals %s, e.g. %s", c, code, example[code])
			}
			if total < 3*tt.persons {
				t.Errorf("%d events for %d persons", total, tt.persons)
			}
		})
	}
}

// camel turns a proto field name into its Go name: person_moved → PersonMoved.
func camel(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(s, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func BenchmarkGenerate(b *testing.B) {
	events := 0
	for b.Loop() {
		for evs := range Generate(1, 10000, testNow) {
			events += len(evs)
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// TestNationalID_Unique hands out many numbers for one birth date: all are distinct and
// valid, and when the day's numbers run out they move on to the next day.
func TestNationalID_Unique(t *testing.T) {
	t.Parallel()
	g := newGenerator(1, testNow)
	r := rand.New(rand.NewPCG(1, 2))
	birth := rules.MustDate(1990, time.March, 3)
	seen := map[string]bool{}
	days := map[rules.Date]int{}
	for i := 0; i < 700; i++ {
		id := g.nationalID(r, birth, false)
		if seen[id] {
			t.Fatalf("number %d repeated", i)
		}
		seen[id] = true
		parsed, err := rules.ParseNationalID(id)
		if err != nil || !parsed.Synthetic() {
			t.Fatalf("number %d: %v", i, err)
		}
		b, _ := parsed.BirthDate()
		if b.Before(birth) || b.After(birth.AddDays(10)) {
			t.Fatalf("number %d: birth %v", i, b)
		}
		days[b]++
	}
	if len(days) < 2 {
		t.Errorf("700 numbers on %d days: want them spread once a day is full", len(days))
	}
}
