package eventstore

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestBoundVerdict: ConfirmLeader confirmed whichever node answered as leader, not the one
// that answered the read: a read the leader cut off from the others answered short, to
// sequence 7, was confirmed by the new leader, which had acknowledged sequence 8 before
// the read began. The confirmation now asks the confirming leader's own store. A read
// answered short happens on a partitioned cluster only (TestReplicas/CutOffLeaderUnconfirmed
// checks it there, when the cut-off leader answers in time); this is the decision itself.
func TestBoundVerdict(t *testing.T) {
	since := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	before, after := since.Add(-3*time.Second), since.Add(10*time.Millisecond)
	whole := ReadBound{Seq: 7}
	person := ReadBound{PersonKey: "ab", Seq: 7}
	for _, c := range []struct {
		name  string
		b     ReadBound
		state jetstream.StreamState
		next  *storedMsg
		asked bool
		ok    bool
		short bool // ErrUnconfirmed
	}{
		{"NothingAfterTheBound", whole, jetstream.StreamState{LastSeq: 7, LastTime: before}, nil, false, true, false},
		{"AllAfterStoredBefore", whole, jetstream.StreamState{LastSeq: 9, LastTime: before}, nil, false, false, true},
		{"NextStoredBefore", whole, jetstream.StreamState{LastSeq: 9, LastTime: after}, &storedMsg{Seq: 8, Time: before}, true, false, true},
		{"NextStoredAfter", whole, jetstream.StreamState{LastSeq: 9, LastTime: after}, &storedMsg{Seq: 8, Time: after}, true, true, false},
		// A server clock a little behind this process's: stored after the read, all the same.
		{"NextStoredJustAfterBySlowClock", whole, jetstream.StreamState{LastSeq: 9, LastTime: after}, &storedMsg{Seq: 8, Time: since.Add(-100 * time.Millisecond)}, true, true, false},
		{"NextNotGivenThoughHeld", whole, jetstream.StreamState{LastSeq: 9, LastTime: after}, nil, true, false, false},
		{"PersonOthersStoredBefore", person, jetstream.StreamState{LastSeq: 9, LastTime: before}, nil, true, true, false},
		{"PersonNextStoredBefore", person, jetstream.StreamState{LastSeq: 9, LastTime: before}, &storedMsg{Seq: 9, Time: before}, true, false, true},
		{"PersonNextStoredAfter", person, jetstream.StreamState{LastSeq: 9, LastTime: after}, &storedMsg{Seq: 9, Time: after}, true, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok, err := boundVerdict(c.b, c.state, since, c.next, c.asked)
			if ok != c.ok || errors.Is(err, ErrUnconfirmed) != c.short || err != nil && !c.short {
				t.Errorf("boundVerdict: %v, %v; want confirmed %v, ErrUnconfirmed %v", ok, err, c.ok, c.short)
			}
		})
	}
}
