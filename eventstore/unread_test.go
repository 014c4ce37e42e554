package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/introreg/nir/eventstore"
)

// TestStore_Append_Unread: a person the caller took for new without reading it
// (PersonAppend.NoDuplicates) that has events, a retry of the caller's own among them, is
// ErrNotNew (an ErrConflict), and nothing of the call is stored: not the retry's position as
// a duplicate, with the other persons of the call stored, as for a caller that read the
// person. The caller (ingest) judges such a retry on the person's history, who may write to it,
// and an error after the store would tell it that nothing was stored.
//
// Found on 2026-12-06 (review of the write path): before, Append answered the retry as a
// duplicate and stored the call's other persons; ingest then failed the whole request after
// its new person was stored (internal/ingest TestService_NothingFailsAfterTheStore). Now Append
// refuses it whole.
func TestStore_Append_Unread(t *testing.T) {
	s, _ := openStore(t, nil)
	ctx := context.Background()
	a, b := personKey("unread-a"), personKey("unread-b")
	first := events(a, 1)
	pos, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: first})
	if err != nil {
		t.Fatal(err)
	}
	stored := mustLastSeq(t, s)

	cases := map[string][]eventstore.PersonAppend{
		"alone": {{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), NoDuplicates: true, Events: first}},
		// The check holds (the person's last is the retry itself): the stream's dedupe window
		// answers it as a duplicate (mutation testing, 2026-12-07: nothing failed when that
		// answer was taken as a Duplicate position).
		"checked at its own sequence": {{PersonKey: a, ExpectedLastSeq: eventstore.Expect(pos[0].Seq), NoDuplicates: true, Events: first}},
		"with a new person": {
			{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), NoDuplicates: true, Events: first},
			{PersonKey: b, ExpectedLastSeq: eventstore.Expect(0), NoDuplicates: true, Events: events(b, 1)},
		},
	}
	for name, batch := range cases {
		got, err := s.Append(ctx, batch...)
		if !errors.Is(err, eventstore.ErrNotNew) || !errors.Is(err, eventstore.ErrConflict) {
			t.Errorf("%s: Append of a person taken for new that has events: %v, %v; want ErrNotNew", name, got, err)
		}
		if n := mustLastSeq(t, s); n != stored {
			t.Errorf("%s: %d events stored by a refused call", name, n-stored)
		}
	}
	// Read, the same retry is a duplicate, as ever.
	got, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: a, ExpectedLastSeq: eventstore.Expect(0), Events: first})
	if err != nil || !got[0].Duplicate || got[0].Seq != pos[0].Seq {
		t.Errorf("the retry without NoDuplicates: %v, %v; want a duplicate at %d", got, err, pos[0].Seq)
	}
}
