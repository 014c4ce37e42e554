package adversarial

// A timing side channel across kommuner (README "Kommune boundaries"): the answer to a
// kommune that names another kommune's person is NotFound, the same as for a national id
// nobody registered, but it must not take longer either. Before, every call that takes a
// national id read and folded the person's whole history before the access check, so the
// answer for another kommune's big person took tens of milliseconds against a fraction of
// one for an unknown id: the time alone told the kommune that the person is in the register
// (a refugee or an immigrant) and roughly how long the history is.

import (
	"context"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// timingEvents is the size of the other kommune's person: a person of some years' monthly
// hours, absence and tiltak has some hundreds; thousands make the difference plain.
const timingEvents = 3000

// TestKommuneAttacks_TimingOracle: Oslo has a person with 3 000 events; Bergen asks for that
// person, by its fødselsnummer and by a further id (a D-nummer, whose claim leads to the
// person), with every call that takes a national id, and names its person key as the person
// absorbed by a merge; interleaved with the same calls for national ids (and keys) nobody
// registered, and compares the medians. Before the fix, on a 2-core
// machine, Bergen's History of Oslo's person took 45–111 ms against about 1 ms for an unknown
// id, its appends 47–131 ms against 1 ms (each read the person from the stream and folded it),
// and AuditHistory, GetPerson and PersonDeadlines 6–12 ms against 0.4–0.7 ms (the read models
// folded the person before the check); the merge 92 ms against 1.3 ms. Now 0.2–1.7 ms for
// both kinds.
func TestKommuneAttacks_TimingOracle(t *testing.T) {
	w := kbStart(t, "--rate-limit", "0")
	fnr := kbPerson()
	key := w.mustAppend(t, kbOslo, kbRegister(fnr, "0301", "0301"))[0].GetPersonKey()
	for left := timingEvents - 1; left > 0; left -= 500 {
		req := floodEvents(key, min(500, left))
		if _, err := w.reg(kbOslo).Append(context.Background(), connect.NewRequest(req)); err != nil {
			t.Fatalf("oslo's events: %v", err)
		}
	}
	// A further id of the person: a lookup by it walks the id's claim to the person.
	dnr := rules.SyntheticDNummer(rules.MustDate(1991, 3, 14), int(kbPersonSeq.Add(1)))
	w.mustAppend(t, kbOslo, kbOn(key, "0301", &nirv1.Event{Payload: &nirv1.Event_IdentifierAdded{IdentifierAdded: &nirv1.IdentifierAdded{
		Type: nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER, NationalId: dnr, Date: kbDate(2024, 5, 2), Source: "folkeregisteret"}}}))
	// Bergen's own person, which Bergen may merge another person into.
	own := w.mustAppend(t, kbBergen, kbRegister(kbPerson(), "4601", "4601"))[0].GetPersonKey()
	w.caughtUp(t)
	ctx := context.Background()
	bergen, bergenQ := w.reg(kbBergen), w.query(kbBergen)
	byID := func(id string) *nirv1.PersonRef { return &nirv1.PersonRef{NationalId: id} }
	calls := []struct {
		name  string
		want  connect.Code // the answer for both kinds of national id
		call  func(id string) error
		byKey bool // call takes a person key: oslo's person's against keys of nobody
	}{
		{"History", connect.CodeNotFound, func(id string) error {
			_, err := bergen.History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: byID(id)}))
			return err
		}, false},
		{"AuditHistory", connect.CodeNotFound, func(id string) error {
			_, err := bergenQ.AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: byID(id)}))
			return err
		}, false},
		{"GetPerson", connect.CodeNotFound, func(id string) error {
			_, err := bergenQ.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: byID(id)}))
			return err
		}, false},
		{"PersonDeadlines", connect.CodeNotFound, func(id string) error {
			_, err := bergenQ.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: byID(id)}))
			return err
		}, false},
		{"AppendEvent", connect.CodeNotFound, func(id string) error {
			reg := &nirv1.Registration{Person: byID(id), Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "4601",
				Payload: kbOffer(kbDate(2024, 3, 1)).Payload}}
			_, err := bergen.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}}))
			return err
		}, false},
		{"AppendEventExpectingSequence", connect.CodeNotFound, func(id string) error {
			reg := &nirv1.Registration{Person: byID(id), ExpectedLastSequence: new(uint64(7)), Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "4601",
				Payload: kbOffer(kbDate(2024, 3, 1)).Payload}}
			_, err := bergen.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}}))
			return err
		}, false},
		{"AppendRefusedRegistration", connect.CodeFailedPrecondition, func(id string) error {
			// Settled in 2099: refused by the rules for a person nobody registered, and so
			// for another kommune's person too; nothing is stored either way.
			reg := kbRegister(id, "4601", "4601")
			pr := reg.Event.GetPersonRegistered()
			pr.SettlementDate = kbDate(2099, 1, 1)
			if n, err := rules.ParseNationalID(id); err == nil && n.Type() == nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER {
				pr.Fodselsnummer, pr.DNummer = "", id
			}
			_, err := bergen.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}}))
			return err
		}, false},
		{"AppendMergeAbsorbing", connect.CodeNotFound, func(absorbed string) error {
			// A merge names the absorbed person by key: one bergen once had, say.
			reg := kbOn(own, "4601", &nirv1.Event{Payload: &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{
				AbsorbedPersonKey: absorbed, Reason: "samme person"}}})
			_, err := bergen.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}}))
			return err
		}, true},
	}
	before := w.lastSeq(t)
	const tries = 15
	for _, c := range calls {
		for _, byName := range []string{"", "/ByFurtherID"} {
			fnr, unknownID := fnr, kbPerson
			switch {
			case c.byKey && byName != "":
				continue
			case c.byKey:
				fnr, unknownID = key, randomKey
			case byName != "":
				// The person by its D-nummer, against D-nummers nobody registered.
				fnr, unknownID = dnr, func() string {
					return rules.SyntheticDNummer(rules.MustDate(1991, 3, 14), int(kbPersonSeq.Add(1)))
				}
			}
			t.Run(c.name+byName, func(t *testing.T) {
				timed := func(id string) time.Duration {
					t0 := time.Now()
					err := c.call(id)
					d := time.Since(t0)
					if code := connect.CodeOf(err); err == nil || code != c.want {
						t.Fatalf("bergen's %s was answered %v (%v); want %v", c.name, code, err, c.want)
					}
					return d
				}
				timed(fnr) // warm both paths once, unmeasured
				timed(unknownID())
				var other, unknown []time.Duration
				for i := range tries {
					// Interleaved, in turns of which goes first, so that load on the machine
					// falls on both kinds alike.
					if i%2 == 0 {
						other = append(other, timed(fnr))
						unknown = append(unknown, timed(unknownID()))
					} else {
						unknown = append(unknown, timed(unknownID()))
						other = append(other, timed(fnr))
					}
				}
				mo, mu := median(other), median(unknown)
				t.Logf("%s: other kommune's person median %v (max %v), unknown one median %v (max %v)",
					c.name+byName, mo.Round(10*time.Microsecond), slices.Max(other).Round(10*time.Microsecond),
					mu.Round(10*time.Microsecond), slices.Max(unknown).Round(10*time.Microsecond))
				// A loaded machine slows both kinds alike; a read and fold of 3 000 events
				// takes several ms even on an idle one.
				if limit := mu + max(3*time.Millisecond, mu); mo > limit {
					t.Errorf("%s: bergen's answer for oslo's person took a median %v, for unknown national ids %v (want within %v): the time tells that the person exists", c.name+byName, mo, mu, limit)
				}
			})
		}
	}
	if after := w.lastSeq(t); after != before {
		t.Errorf("bergen's calls changed the stream: last sequence %d → %d", before, after)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
