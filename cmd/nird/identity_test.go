package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/internal/syncbuf"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// identityStore opens an event store on a fresh embedded test server.
func identityStore(t *testing.T) *eventstore.Store {
	t.Helper()
	srv := natstest.RunServer(t, natstest.Options{})
	s, err := eventstore.Open(context.Background(), eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// identityEvent is an event of person key with payload, in the clear (opened).
func identityEvent(key string, payload func(*nirv1.Event)) *nirv1.Event {
	ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301",
		Actor: &nirv1.Actor{Subject: "test"}, RecordedAt: timestamppb.New(time.Now())}
	payload(ev)
	return ev
}

// appendPersons appends one event for each of n persons, made by ev(i), in batches the
// store takes.
func appendPersons(t *testing.T, s *eventstore.Store, n int, ev func(i int) *nirv1.Event) {
	t.Helper()
	for from := 0; from < n; from += eventstore.MaxBatchEvents {
		var batch []eventstore.PersonAppend
		for i := from; i < min(n, from+eventstore.MaxBatchEvents); i++ {
			e := ev(i)
			batch = append(batch, eventstore.PersonAppend{PersonKey: e.GetPersonKey(), Events: []*nirv1.Event{e}})
		}
		if _, err := s.Append(context.Background(), batch...); err != nil {
			t.Fatal(err)
		}
	}
}

// registration is person i's registration, keyed with keys by its fødselsnummer (or, with
// dnr, by a D-nummer, its only id).
func registration(keys *personkey.Keyer, i int, dnr bool) *nirv1.Event {
	birth := rules.Date{Y: 1990, M: 1, D: 1 + i%28}
	pr := &nirv1.PersonRegistered{Fodselsnummer: rules.SyntheticFodselsnummer(birth, 100+i)}
	if dnr {
		pr = &nirv1.PersonRegistered{DNummer: rules.SyntheticDNummer(birth, 100+i)}
	}
	return identityEvent(keys.Key(rules.KeyingID(pr)), func(ev *nirv1.Event) {
		ev.Payload = &nirv1.Event_PersonRegistered{PersonRegistered: pr}
	})
}

func opened(*nirv1.Event) error { return nil }

func generateKey(t *testing.T) *personkey.Keyer {
	t.Helper()
	k, err := personkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeyedLike_FirstRegistrations: the key check of a stream without a fingerprint
// recomputes the person keys of exactly the first keyCheckEvents registrations, counts each
// that matches once (by its fødselsnummer or, without one, its D-nummer), and none for
// another key. Found by mutation testing on 2026-12-07: the bound could be ignored or moved
// by one, and a match counted twice, without a test failing.
func TestKeyedLike_FirstRegistrations(t *testing.T) {
	s := identityStore(t)
	keys, other := generateKey(t), generateKey(t)
	appendPersons(t, s, keyCheckEvents+5, func(i int) *nirv1.Event { return registration(keys, i, i%2 == 1) })
	for _, tt := range []struct {
		name        string
		keys        *personkey.Keyer
		wantMatched int
	}{{"TheStreamsKey", keys, keyCheckEvents}, {"AnotherKey", other, 0}} {
		checked, matched, err := keyedLike(context.Background(), s, tt.keys, opened)
		if err != nil || checked != keyCheckEvents || matched != tt.wantMatched {
			t.Errorf("%s: keyedLike = %d checked, %d matched, %v; want %d checked, %d matched", tt.name, checked, matched, err, keyCheckEvents, tt.wantMatched)
		}
	}
}

// TestKeyedLike_ScanBound: the key check reads the first keyCheckScan messages and no more
// (a stream whose registrations lie further on starts without reading it all): of a
// registration at seq keyCheckScan and one after it, only the first is checked. Found by
// mutation testing on 2026-12-07: the bound could be dropped or moved by one without a test
// failing.
func TestKeyedLike_ScanBound(t *testing.T) {
	s := identityStore(t)
	keys := generateKey(t)
	appendPersons(t, s, keyCheckScan-1, func(i int) *nirv1.Event {
		return identityEvent(keys.Key(strconv.Itoa(i)), func(ev *nirv1.Event) {
			ev.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}
		})
	})
	appendPersons(t, s, 2, func(i int) *nirv1.Event { return registration(keys, i, false) })
	checked, matched, err := keyedLike(context.Background(), s, keys, opened)
	if err != nil || checked != 1 || matched != 1 {
		t.Errorf("keyedLike = %d checked, %d matched, %v; want the registration at seq %d alone", checked, matched, err, keyCheckScan)
	}
}

// TestCheckPersonKey_NothingToCheckWarns: a stream without a fingerprint whose first
// keyCheckScan messages hold no registration takes any person key, since none can be
// checked; nird says so as a warning, not as the Info line of a key that was checked.
func TestCheckPersonKey_NothingToCheckWarns(t *testing.T) {
	srv := natstest.RunServer(t, natstest.Options{})
	s, err := eventstore.Open(context.Background(), eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	keys := generateKey(t)
	appendPersons(t, s, keyCheckScan+1, func(i int) *nirv1.Event {
		return identityEvent(keys.Key(strconv.Itoa(i)), func(ev *nirv1.Event) {
			ev.Payload = &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}
		})
	})
	_ = s.Close()
	// Opened again, the stream is not new: the key is checked against its messages.
	s, err = eventstore.Open(context.Background(), eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if err := checkPersonKey(context.Background(), s, generateKey(t), filepath.Join(t.TempDir(), "person.key"), false, opened, log); err != nil {
		t.Fatalf("checkPersonKey: %v", err)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "NOT checked") {
		t.Errorf("log = %q; want a warning that the key was not checked", out)
	}
}

// TestCheckPersonKey_CheckedKeyNamedInTheStream: a stream without a fingerprint (an older
// nird's) whose registrations the key is checked against gets the key's fingerprint in its
// metadata, so that a later start compares fingerprints: checked at every start, the key went
// unchecked, with a warning only, once the retention rule had erased the first registrations.
// Another key is then refused by the fingerprint alone, whatever the stream holds.
func TestCheckPersonKey_CheckedKeyNamedInTheStream(t *testing.T) {
	srv := natstest.RunServer(t, natstest.Options{})
	reopen := func() *eventstore.Store {
		s, err := eventstore.Open(context.Background(), eventstore.Config{URL: srv.ClientURL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	keys := generateKey(t)
	appendPersons(t, reopen(), 3, func(i int) *nirv1.Event { return registration(keys, i, false) })
	// Opened again, the stream is not new: the key is checked against its registrations.
	s := reopen()
	log := slog.New(slog.DiscardHandler)
	file := filepath.Join(t.TempDir(), "person.key")
	if err := checkPersonKey(context.Background(), s, keys, file, false, opened, log); err != nil {
		t.Fatalf("checkPersonKey: %v", err)
	}
	id, err := s.CurrentIdentity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := id.Metadata[metaPersonKey]; got != keys.Fingerprint() {
		t.Fatalf("the stream's fingerprint after the check = %q, want the key's %q", got, keys.Fingerprint())
	}
	err = checkPersonKey(context.Background(), reopen(), generateKey(t), file, false, opened, log)
	if err == nil || !strings.Contains(err.Error(), "than the one the stream") {
		t.Errorf("another key on the named stream: %v, want the fingerprint's refusal", err)
	}
}
