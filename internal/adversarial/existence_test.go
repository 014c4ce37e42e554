package adversarial

import (
	"context"
	"errors"
	"net/http"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// TestKommuneAttacks_NoExistenceOracle: a kommune that names another kommune's person by
// person key gets the answer an unknown key gets, code and message (README "Kommune
// boundaries": a kommune must not learn that such a person exists), for a live person, an
// erased one and one whose data key is damaged on disk (its sealed fields cannot be opened),
// from every read that takes a person. Before the history is read and opened (api
// hiddenFrom), the person is decided hidden: without that check the damaged person's audit
// history was DataLoss for the stranger, an answer no unknown key gets (mutation testing,
// 2026-12-07, found only the timing test failing when the check was removed).
func TestKommuneAttacks_NoExistenceOracle(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	persons := registerPersons(t, nd, 0, 3) // seq 1 registers person 0
	damaged, live, erased := persons[0], persons[1], persons[2]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	operator := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor("operator")))
	erase := func(p person, reason string) {
		t.Helper()
		if _, err := operator.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{{
			Person: &nirv1.PersonRef{PersonKey: p.key},
			Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: kommune,
				Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: reason}}},
		}}})); err != nil {
			t.Fatalf("the erasure: %v", err)
		}
	}
	erase(erased, "oppbevaringstiden er ute")
	settledAnswers(t, nd)
	nd.Stop(t, syscall.SIGTERM)
	flipDataKey(t, data, 1)
	nd = startNird(t, data)
	settledAnswers(t, nd)

	// The owner's history of the damaged person fails (else the damage did not take, and the
	// test proves nothing).
	owner := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor("kommune:"+kommune)))
	if _, err := owner.History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: damaged.key}})); connect.CodeOf(err) != connect.CodeDataLoss {
		t.Fatalf("the owner's history of the person whose data key is damaged: %v; want DataLoss", err)
	}

	const stranger = "kommune:4601"
	reg := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor(stranger)))
	query := nirv1connect.NewQueryServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor(stranger)))
	calls := map[string]func(ref *nirv1.PersonRef) error{
		"History": func(ref *nirv1.PersonRef) error {
			_, err := reg.History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: ref}))
			return err
		},
		"AuditHistory": func(ref *nirv1.PersonRef) error {
			_, err := query.AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: ref}))
			return err
		},
		"GetPerson": func(ref *nirv1.PersonRef) error {
			_, err := query.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: ref}))
			return err
		},
		"Append": func(ref *nirv1.PersonRef) error {
			r := &nirv1.Registration{Person: ref, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "4601",
				Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: date(2024, 4, 2)}}}}
			_, err := reg.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{r}}))
			return err
		},
		"PersonDeadlines": func(ref *nirv1.PersonRef) error {
			_, err := query.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: ref}))
			return err
		},
	}
	answer := func(err error) string {
		var ce *connect.Error
		if !errors.As(err, &ce) {
			return "not a connect error: " + errors.Join(err).Error()
		}
		return ce.Code().String() + ": " + ce.Message()
	}
	for name, call := range calls {
		unknown := call(&nirv1.PersonRef{PersonKey: randomKey()})
		if connect.CodeOf(unknown) != connect.CodeNotFound {
			t.Fatalf("%s of an unknown key: %v; want NotFound", name, unknown)
		}
		for what, p := range map[string]person{"live": live, "erased": erased, "key-damaged": damaged} {
			err := call(&nirv1.PersonRef{PersonKey: p.key})
			if err == nil {
				t.Errorf("%s of the other kommune's %s person: answered; want %s", name, what, answer(unknown))
				continue
			}
			if got, want := answer(err), answer(unknown); got != want {
				t.Errorf("%s of the other kommune's %s person: %s; want %s, as for an unknown key", name, what, got, want)
			}
		}
	}
	nd.Stop(t, syscall.SIGTERM)
}
