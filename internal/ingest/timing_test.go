package ingest_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestService_HiddenTiming_LastMessageSize: the freshness check of the access records
// (README "Kommune boundaries") must not take longer for another kommune's person whose last
// message is big than for one whose last message is small, nor noticeably longer than for a
// national id nobody registered. Oslo's person's last message is a merge that copies 3 000
// absorbed events (some hundred kilobytes), another person's a small registration; Bergen asks
// for each (History, and an append) and, interleaved, for D-nummers nobody registered. The
// check used to fetch the subjects' last messages whole, and nothing for an unknown subject:
// on a 2-core machine the merge's person took 0.43–0.60 ms longer for History and 0.86–1.41 ms
// for an append, in every round. With that check emulated, this test fails in every round:
// merge 206–254 µs, small 39–51 µs, unknown 23–28 µs for History.
//
// The size comparison (merge against small) has a tight margin; the existence comparison
// (either against unknown ids) a coarse one, since the server looks a subject that has
// messages up further than one that has none: −7 to +3 µs apart in process, 8–63 µs under the
// race detector, which slows everything some tenfold. Compared against unknown ids with the
// tight margin, that rest failed a CI run under the race detector in 3 of 5 rounds (gaps of
// 30–59 µs against margins of 47–53 µs). The comparison is of medians of many interleaved
// calls, in several rounds, and fails only when most rounds show the gap, so that load on the
// machine (which falls on all three alike) does not make it flake.
func TestService_HiddenTiming_LastMessageSize(t *testing.T) {
	if testing.Short() {
		t.Skip("timing comparison")
	}
	ctx := context.Background()
	w := newIDWorld(t, false)
	store := &readCounter{Store: w.store}
	svc := ingest.New(ingest.Config{Store: store, Keys: w.keys, Access: w.proj, HistoryCache: -1, Now: func() time.Time { return fixedNow }})
	bergen := access.For(auth.Principal{Name: "bergen-fagsystem", Role: auth.RoleKommune, Kommune: "4601"})

	// Oslo's person, registered by D-nummer, and the same person registered again by
	// fødselsnummer with a long history, merged into it: the person's last message carries
	// the absorbed history.
	dnr, _, _, pos := registeredTwice(t, svc, 61)
	absorbed := pos[1].PersonKey
	const events = 3000
	for left := events; left > 0; left -= 500 {
		var regs []*nirv1.Registration
		for i := range min(500, left) {
			regs = append(regs, &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: absorbed}, Event: &nirv1.Event{
				Id: ulid.Make().String(), Kommune: "0301",
				Payload: &nirv1.Event_UtdanningsbakgrunnRegistered{UtdanningsbakgrunnRegistered: &nirv1.UtdanningsbakgrunnRegistered{
					UpperSecondaryCompleted: i%2 == 0, Date: d(2024, 5, 1)}}}})
		}
		if _, err := svc.Append(ctx, oslo, regs); err != nil {
			t.Fatal(err)
		}
	}
	merged, err := svc.Append(ctx, oslo, []*nirv1.Registration{mergeReg(dnr, absorbed)})
	if err != nil {
		t.Fatal(err)
	}
	survivor := merged[0].PersonKey
	if _, err := w.proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	_, hist, err := svc.History(ctx, historyReader, &nirv1.PersonRef{PersonKey: survivor})
	if err != nil || len(hist[len(hist)-1].Event.GetPersonsMerged().GetAbsorbedEvents()) < events {
		t.Fatalf("the person's last event is not the merge carrying %d events (%v)", events, err)
	}

	// And a person with one small event.
	small, regSmall := person(62, false)
	if _, err := svc.Append(ctx, oslo, []*nirv1.Registration{regSmall}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}

	next := 9000
	unknownID := func() string {
		next++
		return rules.SyntheticDNummer(rules.Date{Y: 1991, M: time.March, D: 14}, next)
	}
	calls := []struct {
		name string
		call func(id string) error
	}{
		{"History", func(id string) error {
			_, _, err := svc.History(ctx, bergen, &nirv1.PersonRef{NationalId: id})
			return err
		}},
		{"Append", func(id string) error {
			_, err := svc.Append(ctx, bergen, []*nirv1.Registration{{Person: &nirv1.PersonRef{NationalId: id}, Event: &nirv1.Event{
				Id: ulid.Make().String(), Kommune: "4601",
				Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: d(2024, 6, 3)}}}}})
			return err
		}},
	}
	const (
		rounds = 5
		turns  = 200
	)
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			timed := func(id string) time.Duration {
				t0 := time.Now()
				err := c.call(id)
				el := time.Since(t0)
				if !errors.Is(err, access.ErrNotFound) && !errors.Is(err, ingest.ErrNotFound) {
					t.Fatalf("bergen's %s: %v; want NotFound", c.name, err)
				}
				return el
			}
			for range 20 { // warm every path, unmeasured
				timed(dnr)
				timed(small)
				timed(unknownID())
			}
			reads := store.reads.Load()
			var sized, mergeShown, smallShown int
			for r := range rounds {
				var merge, smallLast, unknown []time.Duration
				for i := range turns {
					// Interleaved, in turns of which goes first, so that load on the
					// machine falls on the three alike.
					for k := range 3 {
						switch (i + k) % 3 {
						case 0:
							merge = append(merge, timed(dnr))
						case 1:
							smallLast = append(smallLast, timed(small))
						default:
							unknown = append(unknown, timed(unknownID()))
						}
					}
				}
				mm, ms, mu := median(merge), median(smallLast), median(unknown)
				// The size of the last message: a margin far below the gap of a whole
				// merge message (0.4 ms and more) and above what a loaded machine moves
				// one median against another.
				sizeMargin := max(30*time.Microsecond, ms/5)
				// Existence: the server looks a subject with messages up further than one
				// without (some µs, tens under the race detector); a read of the history
				// takes far longer than this margin.
				existMargin := max(100*time.Microsecond, mu/2)
				if mm-ms > sizeMargin {
					sized++
				}
				if mm-mu > existMargin {
					mergeShown++
				}
				if ms-mu > existMargin {
					smallShown++
				}
				t.Logf("round %d: merge last %v, small last %v, unknown %v (margins %v for the size, %v for existence)", r,
					mm.Round(time.Microsecond), ms.Round(time.Microsecond), mu.Round(time.Microsecond),
					sizeMargin.Round(time.Microsecond), existMargin.Round(time.Microsecond))
			}
			if n := store.reads.Load() - reads; n != 0 {
				t.Errorf("bergen's %s read a history %d times: the decision was not the access record's, and the record's path is what is compared", c.name, n)
			}
			if sized > rounds/2 {
				t.Errorf("bergen's %s of oslo's person whose last message is a merge took longer than of one whose last is a small event in %d of %d rounds: the time tells the size of the history", c.name, sized, rounds)
			}
			for _, s := range []struct {
				name  string
				shown int
			}{{"merge", mergeShown}, {"small event", smallShown}} {
				if s.shown > rounds/2 {
					t.Errorf("bergen's %s of oslo's person whose last message is a %s took longer than for unknown ids in %d of %d rounds: the time tells that the person exists", c.name, s.name, s.shown, rounds)
				}
			}
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
