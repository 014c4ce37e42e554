package sealing_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/sealing"
)

// TestEvents_SealOpen: what nird stores of a registration, an added id and a merge holds no
// national id and no birth date (DOMAIN.md Product decisions 15), keeps the age on the permit
// date in clear, opens to exactly what the client sent while the key exists, and reads
// «slettet» once it is destroyed; a value sealed for one person does not open for another
// (it reads as unreadable: the other person was not erased).
// The keys are a real key store on an embedded JetStream server.
func TestEvents_SealOpen(t *testing.T) {
	ctx, ev := sealer(t)

	birth := rules.MustDate(1985, 7, 14)
	fnr, dnr := rules.SyntheticFodselsnummer(birth, 7), rules.SyntheticDNummer(birth, 7)
	pk, absorbedKey := strings.Repeat("1a", 32), strings.Repeat("2b", 32)
	reg := &nirv1.Event{Id: "01HGW2N7EHJ2K3M4N5P6Q7R8S9", PersonKey: pk, Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
		Fodselsnummer: fnr, DNummer: dnr, BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_FEMALE,
		PermitDate: rules.MustDate(2023, 7, 13).Proto(), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28}}}
	added := &nirv1.Event{Id: "01HGW2N7EHJ2K3M4N5P6Q7R8SA", PersonKey: absorbedKey, Payload: &nirv1.Event_IdentifierAdded{IdentifierAdded: &nirv1.IdentifierAdded{
		Type: nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER, NationalId: fnr}}}
	merge := &nirv1.Event{Id: "01HGW2N7EHJ2K3M4N5P6Q7R8SB", PersonKey: pk, Payload: &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{
		AbsorbedPersonKey: absorbedKey, AbsorbedEvents: []*nirv1.Event{proto.Clone(added).(*nirv1.Event)}}}}

	for _, clear := range []*nirv1.Event{reg, added, merge} {
		stored := proto.Clone(clear).(*nirv1.Event)
		if err := ev.Seal(ctx, stored); err != nil {
			t.Fatal(err)
		}
		b, _ := proto.Marshal(stored)
		if bytes.Contains(b, []byte(fnr)) || bytes.Contains(b, []byte(dnr)) || !sealing.IsSealed(stored) {
			t.Fatalf("stored %v: a national id in clear, or nothing sealed", stored)
		}
		if p := stored.GetPersonRegistered(); p != nil && (p.GetBirthDate() != nil || p.GetAgeAtPermitDate() != 37) {
			t.Fatalf("stored registration: birth date %v, age at permit %d; want none and 37", p.GetBirthDate(), p.GetAgeAtPermitDate())
		}
		opened := proto.Clone(stored).(*nirv1.Event)
		if err := ev.Opener()(opened); err != nil {
			t.Fatal(err)
		}
		// Opened, it is what was sent, with the id of the key that sealed it.
		sent := proto.Clone(clear).(*nirv1.Event)
		sent.DataKeyId = opened.GetDataKeyId()
		for i, c := range sent.GetPersonsMerged().GetAbsorbedEvents() {
			c.DataKeyId = opened.GetPersonsMerged().GetAbsorbedEvents()[i].GetDataKeyId()
		}
		if !proto.Equal(opened, sent) {
			t.Fatalf("opened\n%v\nwant what was sent\n%v", opened, sent)
		}
		if stored.GetDataKeyId() == "" && stored.GetPersonsMerged() == nil {
			t.Fatalf("stored %v names no data key", stored)
		}
		// Copied onto another person, a sealed value does not open, though its key exists:
		// unreadable, not erased.
		moved := proto.Clone(stored).(*nirv1.Event)
		moved.PersonKey = strings.Repeat("3c", 32)
		if err := ev.Open(ctx, moved); err != nil {
			t.Fatal(err)
		}
		if p := moved.GetPersonRegistered(); p != nil && (p.GetFodselsnummer() != rules.UnreadableText || p.GetBirthDate() != nil) {
			t.Fatalf("a registration sealed for another person opened: %v", p)
		}
		if a := moved.GetIdentifierAdded(); a != nil && a.GetNationalId() != rules.UnreadableText {
			t.Fatalf("an added id sealed for another person opened: %v", a)
		}
	}

	stored := proto.Clone(reg).(*nirv1.Event)
	if err := ev.Seal(ctx, stored); err != nil {
		t.Fatal(err)
	}
	// A key an event names that the store does not find (not destroyed: on this store of
	// one replica, an entry lost on disk, eventstore.ErrKeyLost) is an error for a strict
	// reader, the append path, which must not take the unreadable copy for other content; a
	// lenient reader reads the fields as unreadable, not as erased: before 2026-12-06 it read
	// them «slettet», and a rebuild showed the person erased.
	missing := proto.Clone(stored).(*nirv1.Event)
	missing.DataKeyId = "k" + strings.Repeat("0", 32)
	if err := (sealing.Events{Keys: ev.Keys, Strict: true}).Open(ctx, proto.Clone(missing).(*nirv1.Event)); !errors.Is(err, sealing.ErrKeyUnreadable) {
		t.Fatalf("a strict reader, a key not found: %v, want ErrKeyUnreadable (lost)", err)
	}
	if err := ev.Open(ctx, missing); err != nil || missing.GetPersonRegistered().GetFodselsnummer() != rules.UnreadableText || missing.GetPersonRegistered().GetAgeAtPermitDate() != 37 {
		t.Fatalf("a lenient reader, a key not found: %v, %v", err, missing.GetPersonRegistered())
	}
	if err := ev.Destroy(ctx, stored.GetDataKeyId()); err != nil {
		t.Fatal(err)
	}
	strictly := proto.Clone(stored).(*nirv1.Event)
	if err := (sealing.Events{Keys: ev.Keys, Strict: true}).Open(ctx, strictly); err != nil || strictly.GetPersonRegistered().GetFodselsnummer() != rules.ErasedText {
		t.Fatalf("a strict reader, a destroyed key: %v, %v; want «slettet»", err, strictly.GetPersonRegistered())
	}
	if err := ev.Open(ctx, stored); err != nil {
		t.Fatal(err)
	}
	p := stored.GetPersonRegistered()
	if p.GetFodselsnummer() != rules.ErasedText || p.GetDNummer() != "" || p.GetBirthDate() != nil || len(p.GetSealedIdentity()) > 0 {
		t.Fatalf("after the key is destroyed the registration reads %v; want «slettet», no birth date", p)
	}
	// Sealed again with the destroyed key's id (a copy of the erased event): refused.
	again := proto.Clone(reg).(*nirv1.Event)
	again.DataKeyId = stored.GetDataKeyId()
	if err := ev.Seal(ctx, again); err == nil {
		t.Fatal("an event was sealed with a destroyed key")
	}
}

// TestEvents_ErasedKeepsAge: rules.Person.KeptAge is the age kept in clear at sealing, used
// "when the birth date cannot be read (an erased person), so the law and schemes do not
// change with an erasure" (DOMAIN.md Product decisions 15). Open dropped age_at_permit_date
// even when the key was gone, so a rebuild gave every erased person no age, and the
// introduction scheme went from KAN_TILBYS to none (helper-40's review, 2026-12-06). So
// did Unreadable, for a damaged key.
func TestEvents_ErasedKeepsAge(t *testing.T) {
	ctx, ev := sealer(t)
	birth := rules.MustDate(1985, 7, 14)
	pk := strings.Repeat("1a", 32)
	reg := &nirv1.Event{Id: "01HGW2N7EHJ2K3M4N5P6Q7R8S9", PersonKey: pk, Kommune: "0301", Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
		Fodselsnummer: rules.SyntheticFodselsnummer(birth, 7), BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_FEMALE,
		PermitDate: rules.MustDate(2023, 7, 13).Proto(), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28,
		ArrivalDate: rules.MustDate(2023, 6, 1).Proto(), SettlementDate: rules.MustDate(2023, 9, 1).Proto(), SettlementKommune: "0301"}}}
	if err := ev.Seal(ctx, reg); err != nil {
		t.Fatal(err)
	}
	sealedCopy := proto.Clone(reg)
	if err := ev.Destroy(ctx, reg.GetDataKeyId()); err != nil {
		t.Fatal(err)
	}
	if err := ev.Open(ctx, reg); err != nil {
		t.Fatal(err)
	}
	st := rules.NewState(pk)
	st.Apply(1, reg)
	if st.Person.AgeAtPermit() != 37 || reg.GetPersonRegistered().GetFodselsnummer() != rules.ErasedText {
		t.Errorf("an erased person: age on the permit date %d, id %q; want 37 (kept in clear when sealed), «slettet»", st.Person.AgeAtPermit(), reg.GetPersonRegistered().GetFodselsnummer())
	}
	unreadable := proto.Clone(sealedCopy).(*nirv1.Event)
	sealing.Unreadable(unreadable)
	st = rules.NewState(pk)
	st.Apply(1, unreadable)
	if st.Person.AgeAtPermit() != 37 {
		t.Errorf("a registration read as unreadable (a damaged key): age on the permit date %d, want 37", st.Person.AgeAtPermit())
	}
}

// sealer seals and opens with a real key store on an embedded JetStream server in a new
// directory; both are closed when the test ends.
func sealer(t *testing.T) (context.Context, sealing.Events) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	s, err := eventstore.Open(ctx, eventstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	master, _, err := sealing.NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	return ctx, sealing.Events{Keys: keys}
}

// TestEvents_UnopenableNotErased: a sealed registration that names no data key, names
// another live key than the one that sealed it, or whose sealed bytes are damaged reads as
// unreadable, never as «slettet» (only a key an erasure destroyed reads so: DOMAIN.md Product
// decisions 15), and never as anything else it might decode to. Mutation testing
// (2026-12-07) found that nothing failed when a sealed value naming no key read as erased.
func TestEvents_UnopenableNotErased(t *testing.T) {
	ctx, ev := sealer(t)
	birth := rules.MustDate(1985, 7, 14)
	pk := strings.Repeat("1a", 32)
	reg := func() *nirv1.Event {
		return &nirv1.Event{Id: "01HGW2N7EHJ2K3M4N5P6Q7R8S9", PersonKey: pk, Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: rules.SyntheticFodselsnummer(birth, 7), BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_FEMALE,
			PermitDate: rules.MustDate(2023, 7, 13).Proto(), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28}}}
	}
	stored, other := reg(), reg()
	for _, e := range []*nirv1.Event{stored, other} {
		if err := ev.Seal(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if stored.GetDataKeyId() == other.GetDataKeyId() {
		t.Fatalf("two sealings took the same data key %s; the test needs two", stored.GetDataKeyId())
	}
	for _, c := range []struct {
		name   string
		change func(e *nirv1.Event)
	}{
		{"NoKeyID", func(e *nirv1.Event) { e.DataKeyId = "" }},
		{"AnotherKeysID", func(e *nirv1.Event) { e.DataKeyId = other.GetDataKeyId() }},
		{"Damaged", func(e *nirv1.Event) {
			s := e.GetPersonRegistered().GetSealedIdentity()
			s[len(s)-1] ^= 1
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := proto.Clone(stored).(*nirv1.Event)
			c.change(e)
			if err := ev.Open(ctx, e); err != nil {
				t.Fatal(err)
			}
			p := e.GetPersonRegistered()
			if p.GetFodselsnummer() != rules.UnreadableText || p.GetBirthDate() != nil || len(p.GetSealedIdentity()) > 0 || p.GetAgeAtPermitDate() != 37 {
				t.Fatalf("opened %v; want the id unreadable (%q), no birth date, the age 37 kept", p, rules.UnreadableText)
			}
		})
	}
}
