package api

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestQuery_HiddenBeforeUnreadableHistory: a kommune asking for another kommune's person
// whose events the read models cannot open (the key store failing for its data key) gets the
// answer an unknown key gets, code and message (README "Kommune boundaries"): the person is
// decided hidden (hiddenFrom) before its history is read. Mutation testing (2026-12-07)
// found only the timing test failing with that check removed; then the open's failure came
// back to the stranger, telling it that the person exists.
func TestQuery_HiddenBeforeUnreadableHistory(t *testing.T) {
	var failing atomic.Bool
	var victim atomic.Value // the person key whose events do not open
	victim.Store("")
	open := func(ev *nirv1.Event) error {
		if failing.Load() && ev.GetPersonKey() == victim.Load().(string) {
			return errors.New("sealing: data key of an event: context deadline exceeded")
		}
		return nil
	}
	w := startQueryOpen(t, QueryConfig{}, open)
	p1 := w.people["p1"].key // Oslo's
	victim.Store(p1)
	failing.Store(true)
	ctx := context.Background()

	if _, err := w.query(qtOslo).AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: p1}})); err == nil || connect.CodeOf(err) == connect.CodeNotFound {
		t.Fatalf("Oslo's audit history of its person whose events do not open: %v; want an error other than NotFound", err)
	}
	bergen := w.query(qtBergen)
	answer := func(err error) string {
		var ce *connect.Error
		if !errors.As(err, &ce) {
			return "answered"
		}
		return ce.Code().String() + ": " + ce.Message()
	}
	calls := map[string]func(ref *nirv1.PersonRef) error{
		"AuditHistory": func(ref *nirv1.PersonRef) error {
			_, err := bergen.AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: ref}))
			return err
		},
		"GetPerson": func(ref *nirv1.PersonRef) error {
			_, err := bergen.GetPerson(ctx, connect.NewRequest(&nirv1.GetPersonRequest{Person: ref}))
			return err
		},
		"PersonDeadlines": func(ref *nirv1.PersonRef) error {
			_, err := bergen.PersonDeadlines(ctx, connect.NewRequest(&nirv1.PersonDeadlinesRequest{Person: ref}))
			return err
		},
	}
	for name, call := range calls {
		unknown := answer(call(&nirv1.PersonRef{PersonKey: strings.Repeat("cd", 32)}))
		if !strings.HasPrefix(unknown, "not_found") {
			t.Fatalf("Bergen's %s of an unknown key: %s; want not_found", name, unknown)
		}
		if got := answer(call(&nirv1.PersonRef{PersonKey: p1})); got != unknown {
			t.Errorf("Bergen's %s of Oslo's person whose events do not open: %s; want %s, as for an unknown key", name, got, unknown)
		}
	}
}
