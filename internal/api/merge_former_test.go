package api_test

import (
	"testing"

	"connectrpc.com/connect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestAccess_MergeByFormerKommune: a person moved from Bergen to Oslo is Oslo's now; Bergen,
// which keeps its own period of the person, may not merge the person into one of its own
// (access.Scope.CheckMerge: persons are merged by the kommune that has both, or by an
// operator; DOMAIN.md Product decisions 15 and 16). The refusal is PermissionDenied and
// stores nothing (mergeWorld.try checks the stream did not move).
func TestAccess_MergeByFormerKommune(t *testing.T) {
	w := &mergeWorld{accessWorld: startAccess(t)}
	moved := w.person(t, relMovedIn)
	fnrF := w.fnr()
	keyF := w.keys.Key(fnrF)
	w.must(t, atBergen, personReg(fnrF, "4601", false))
	w.caughtUp(t)

	merge := accessEv(keyF, "4601", &nirv1.Event{Payload: &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: moved.key, Reason: "samme person"}}})
	if code := w.try(t, atBergen, merge); code != connect.CodePermissionDenied {
		t.Fatalf("Bergen merging the person it had (now Oslo's) into its own: %v, want PermissionDenied", code)
	}
	w.caughtUp(t)
	// Nothing of the person reached Bergen's own person.
	if _, ids, err := w.history(t, atBergen, keyF); err != nil {
		t.Fatalf("Bergen's history of its own person: %v", err)
	} else {
		wantIDs(t, "Bergen's history of its own person after the refused merge", ids, nil,
			map[string]string{"the merge": merge.Event.Id, "the moved person's registration": moved.registration, "Oslo's offer": moved.osloEvent})
	}
	// Oslo still has the person, unmerged.
	if got, _, err := w.history(t, atOslo, moved.key); err != nil || got != moved.key {
		t.Errorf("Oslo's history of its person after Bergen's refused merge: %s, %v; want %s", got, err, moved.key)
	}
}
