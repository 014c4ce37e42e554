package verify_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/verify"
)

// TestStream_IDHeader: a message whose Nats-Msg-Id header is not its event's id is reported
// at its sequence and person, without either id. nird writes every event with its id in that
// header, and neither the chain nor the checkpoints cover headers, so a header changed alone
// went unreported (2026-12-07); yet a restore and the dedupe window go by it, and would take
// the message for another event. A message without the header (a repeated id restored
// without it, internal/backup's withoutRepeatedIDs) is not reported.
func TestStream_IDHeader(t *testing.T) {
	_, msgs := source(t)
	i := nth(t, msgs, 2, 1)
	withHeader := func(h nats.Header) []eventstore.RawMessage {
		out := slices.Clone(msgs)
		out[i].Header = h
		return out
	}
	other := ulid.Make().String()
	eventID := msgs[i].Header.Get(nats.MsgIdHdr)

	t.Run("Changed", func(t *testing.T) {
		rep := run(t, copyOf(t, withHeader(nats.Header{nats.MsgIdHdr: {other}})))
		if len(rep.Problems) != 1 {
			t.Fatalf("problems %+v, want one", rep.Problems)
		}
		p := rep.Problems[0]
		if p.Kind != verify.KindIDHeaderMismatch || p.Seq != uint64(i+1) || p.PersonKey != key(2) {
			t.Errorf("problem %+v, want %s at %d of person %s", p, verify.KindIDHeaderMismatch, i+1, key(2)[:8])
		}
		if strings.Contains(p.Detail, other) || strings.Contains(p.Detail, eventID) {
			t.Errorf("the detail %q quotes an id", p.Detail)
		}
	})
	t.Run("Removed", func(t *testing.T) {
		h := maps.Clone(msgs[i].Header)
		delete(h, nats.MsgIdHdr)
		if rep := run(t, copyOf(t, withHeader(h))); !rep.OK() {
			t.Errorf("a message without the header reported: %+v", rep.Problems)
		}
	})
}
