package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestCheckStream plants one of each anomaly in a real stream and a made-up history, and
// checks that the checker names every one, and nothing on the persons that are right.
func TestCheckStream(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := timestamppb.Now()
	today := rules.DateFromTime(time.Now())
	key := func(i int) string { return fmt.Sprintf("%064x", i+1) }
	claimOf := func(p *Person, eventID string) eventstore.PersonAppend {
		k := fmt.Sprintf("%064x", 5000+p.Index)
		return eventstore.PersonAppend{PersonKey: k, Events: []*nirv1.Event{{Id: ulid.Make().String(), PersonKey: k, Kommune: "0301", RecordedAt: now,
			Payload: &nirv1.Event_IdentifierClaimed{IdentifierClaimed: &nirv1.IdentifierClaimed{PersonKey: key(p.Index),
				Type: nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER, EventId: eventID}}}}}
	}
	// store1 stores events of p as nird does: a registration with a D-nummer with its claim.
	// Without claims, the registration goes alone.
	storeAs := func(claims bool, p *Person, events ...int) []uint64 {
		t.Helper()
		var seqs []uint64
		for _, e := range events {
			ev := proto.Clone(p.Events[e]).(*nirv1.Event)
			ev.PersonKey, ev.RecordedAt = key(p.Index), now
			batch := []eventstore.PersonAppend{{PersonKey: key(p.Index), Events: []*nirv1.Event{ev}}}
			if claims && ev.GetPersonRegistered().GetDNummer() != "" {
				batch = append(batch, claimOf(p, ev.GetId()))
			}
			pos, err := store.Append(ctx, batch...)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, pos[0].Seq)
		}
		return seqs
	}
	store1 := func(p *Person, events ...int) []uint64 { return storeAs(true, p, events...) }
	ack := func(p *Person, e int, seq uint64) {
		p.Acks = append(p.Acks, Ack{EventID: p.Events[e].GetId(), PersonKey: key(p.Index), Seq: seq})
		p.next = e + 1
	}
	var persons []*Person
	person := func() *Person {
		p := NewPerson(2*len(persons) + 1) // odd: nothing due
		p.Index = len(persons)
		persons = append(persons, p)
		return p
	}

	good := person()
	for e, s := range store1(good, 0, 1, 2, 3) {
		ack(good, e, s)
	}
	good.done = true

	moved := person()
	s := store1(moved, 0)
	ack(moved, 0, s[0]+100)
	moved.done = true

	lost := person()
	ack(lost, 0, 999)
	lost.done = true

	unacked := person()
	s = store1(unacked, 0, 1)
	ack(unacked, 0, s[0])
	unacked.done = true // as if event 1 were refused

	reordered := person()
	s = store1(reordered, 1, 0)
	ack(reordered, 0, s[1])
	ack(reordered, 1, s[0])
	// Its event 2 was sent and never answered: unknown at the end.

	phantom := NewPerson(901)
	phantom.Index = 901
	store1(phantom, 0)

	// A registration with a D-nummer stored without its claim, and a claim of an event
	// that is not stored.
	unclaimed := NewPerson(13) // odd: nothing due; 13 % 3 == 1: a D-nummer
	unclaimed.Index = len(persons)
	persons = append(persons, unclaimed)
	for e, s := range storeAs(false, unclaimed, 0) {
		ack(unclaimed, e, s)
	}
	unclaimed.done = true
	if _, err := store.Append(ctx, claimOf(good, "01HQVMZ100YNBQWFR2K6Z0PB9Z")); err != nil {
		t.Fatal(err)
	}

	due := NewPerson(0)
	due.Index = len(persons)
	persons = append(persons, due)
	for e, s := range store1(due, 0, 1, 2, 3) {
		ack(due, e, s)
	}
	due.done = true

	ops := []Op{{Person: unacked.Index, Event: 1, EventID: unacked.Events[1].GetId(), Outcome: Refused, Err: "NIR-R024"}}
	v := &Verdict{}
	if err := checkStream(ctx, v, store, persons, ops, today); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range v.Anomalies {
		got = append(got, a.Kind)
	}
	sort.Strings(got)
	want := []string{Lost, Moved, Phantom, Reordered, Indeterminate, TerminationMissed, Unacknowledged, WrongfulRefusal, ClaimMissing, ClaimOrphaned}
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("anomalies\n%v\nwant\n%v\n%+v", got, want, v.Anomalies)
	}
	for _, a := range v.Anomalies {
		if strings.Contains(a.Detail, fmt.Sprintf("person %d:", good.Index)) {
			t.Errorf("an anomaly on the person that is right: %+v", a)
		}
	}
}
