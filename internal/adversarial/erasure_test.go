package adversarial

// Erasure by crypto-shredding (issue 12, DOMAIN.md Product decisions 15): nird seals every
// national id and birth date with the person's data key, and an operator's erasure destroys
// the key. A hostile case system tries to erase a person itself (to make another kommune's
// person unreadable), to store identities it sealed itself or an age that changes the law,
// and to name the keys an erasure destroys.

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func TestErasureAttacks(t *testing.T) {
	w := kbStart(t)
	erasure := func(keys ...string) *nirv1.Event {
		return &nirv1.Event{Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "ønsket slettet", DestroyedKeys: keys}}}
	}
	for _, tr := range kbTransports {
		// Bergen, Oslo or the system principal erases a person: only an operator may.
		t.Run("EraseAsCaseSystem/"+tr, func(t *testing.T) {
			key, _, _ := w.osloPerson(t)
			for _, token := range []string{kbBergen, kbOslo, kbSystem} {
				before := w.lastSeq(t)
				res := w.appendVia(t, tr, token, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "0301", erasure())}})
				w.refused(t, res, before, connect.CodePermissionDenied)
				if !strings.Contains(res.msg, "person_erased") {
					t.Errorf("%s: the refusal %q does not name person_erased", token, res.msg)
				}
			}
		})
		// A registration that brings its own sealed identity (which nird would store as the
		// person's, unreadable or another person's) or its own age on the permit date (which
		// decides the law once the birth date is erased).
		t.Run("SealedByTheClient/"+tr, func(t *testing.T) {
			for field, mutate := range map[string]func(p *nirv1.PersonRegistered){
				"sealed_identity":    func(p *nirv1.PersonRegistered) { p.SealedIdentity = []byte("not sealed by nird at all") },
				"age_at_permit_date": func(p *nirv1.PersonRegistered) { p.AgeAtPermitDate = proto.Int32(17) },
			} {
				reg := kbRegister(kbPerson(), "0301", "0301")
				mutate(reg.GetEvent().GetPersonRegistered())
				before := w.lastSeq(t)
				res := w.appendVia(t, tr, kbOslo, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}})
				w.refused(t, res, before, connect.CodeInvalidArgument)
				if !strings.Contains(res.msg, field) {
					t.Errorf("the refusal %q does not name %s", res.msg, field)
				}
			}
		})
	}
	// An operator's erasure that names the keys to destroy: another person's key would
	// erase that person with it.
	t.Run("EraseNamingKeys", func(t *testing.T) {
		key, _, _ := w.osloPerson(t)
		other, _, _ := w.osloPerson(t)
		before := w.lastSeq(t)
		res := w.appendVia(t, "connect", kbOperator, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{kbOn(key, "0301", erasure(other))}})
		w.refused(t, res, before, connect.CodeInvalidArgument)
		if !strings.Contains(res.msg, "destroyed_keys") {
			t.Errorf("the refusal %q does not name destroyed_keys", res.msg)
		}
		// Read once the read models hold everything appended (they apply the stream
		// asynchronously: without the bound a CI run read before the other person was in).
		got, err := w.query(kbOslo).GetPerson(context.Background(), connect.NewRequest(&nirv1.GetPersonRequest{Person: &nirv1.PersonRef{PersonKey: other}, MinSequence: before}))
		if err != nil || got.Msg.GetPerson().GetNationalId() == "" || got.Msg.GetPerson().GetNationalId() == "slettet" {
			t.Fatalf("the other person after the attempt: %v, %v", got, err)
		}
	})
}
