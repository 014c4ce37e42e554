package verify_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/storetest"
	"github.com/introreg/nir/internal/verify"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// openStore opens a store whose dedupe window is window (0: the default).
func openStore(t *testing.T, window time.Duration) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(context.Background(), eventstore.Config{Dir: filepath.Join(t.TempDir(), "js"), DuplicateWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func key(i int) string {
	h := sha256.Sum256([]byte(fmt.Sprint("verify test person ", i)))
	return hex.EncodeToString(h[:])
}

func event(k string) *nirv1.Event {
	return &nirv1.Event{Id: ulid.Make().String(), PersonKey: k, Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"},
		RecordedAt: timestamppb.New(time.Now()),
		Payload:    &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}}
}

// source writes persons 0–3 with four events each, appended one at a time in turns as nird
// does (with expectations, so chained), and person 9 without expectations (unchained, as a
// stream written before the chain).
func source(t *testing.T) (*eventstore.Store, []eventstore.RawMessage) {
	t.Helper()
	ctx := context.Background()
	s := openStore(t, 0)
	last := map[int]uint64{}
	for range 4 {
		for p := range 4 {
			pos, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key(p), ExpectedLastSeq: eventstore.Expect(last[p]), Events: []*nirv1.Event{event(key(p))}})
			if err != nil {
				t.Fatal(err)
			}
			last[p] = pos[0].Seq
		}
		if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key(9), Events: []*nirv1.Event{event(key(9))}}); err != nil {
			t.Fatal(err)
		}
	}
	var msgs []eventstore.RawMessage
	if _, err := s.Export(ctx, 0, 0, func(m eventstore.RawMessage) error {
		m.Data = bytes.Clone(m.Data)
		msgs = append(msgs, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return s, msgs
}

// copyOf stores msgs, renumbered 1, 2, …, into a new store: a copy of the stream as an
// attacker with the store in hand could make it.
func copyOf(t *testing.T, msgs []eventstore.RawMessage) *eventstore.Store {
	t.Helper()
	s := openStore(t, 0)
	importAfter(t, s, 0, msgs)
	return s
}

// importAfter stores msgs, renumbered last+1, last+2, …, at the end of s, which ends at last.
func importAfter(t *testing.T, s *eventstore.Store, last uint64, msgs []eventstore.RawMessage) {
	t.Helper()
	seq := func(yield func(eventstore.RawMessage, error) bool) {
		for i, m := range msgs {
			m.Seq = last + uint64(i+1)
			if !yield(m, nil) {
				return
			}
		}
	}
	if _, err := s.Import(context.Background(), seq); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, s *eventstore.Store) verify.Report {
	t.Helper()
	rep, err := verify.Stream(context.Background(), s, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// nth returns the index in msgs of person p's n-th message (0-based).
func nth(t *testing.T, msgs []eventstore.RawMessage, p, n int) int {
	t.Helper()
	for i, m := range msgs {
		if m.Subject == "nir.ev."+key(p) {
			if n == 0 {
				return i
			}
			n--
		}
	}
	t.Fatalf("person %d has no message %d", p, n)
	return -1
}

func TestStream_Intact(t *testing.T) {
	s, msgs := source(t)
	rep := run(t, s)
	if !rep.OK() || rep.Messages != uint64(len(msgs)) || rep.Persons != 5 || rep.Linked != 12 {
		t.Errorf("report %+v: want no problems, %d messages, 5 persons, 12 linked (3 of each chained person's 4)", rep, len(msgs))
	}
}

// TestStream_Tampered: a copy of the stream with one message changed, removed or inserted
// is reported at the right person and sequence, and nothing else is.
func TestStream_Tampered(t *testing.T) {
	_, msgs := source(t)
	change := func(m eventstore.RawMessage, f func(ev *nirv1.Event)) eventstore.RawMessage {
		ev, err := eventstore.Decode(m.Seq, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		f(ev)
		data, err := eventstore.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		m.Data = data
		return m
	}
	forged := func(p int, prev []byte) eventstore.RawMessage {
		ev := event(key(p))
		ev.PrevHash = prev
		data, _ := eventstore.Encode(ev)
		return eventstore.RawMessage{Subject: "nir.ev." + key(p), Header: nats.Header{}, Data: data}
	}
	p := 2
	second, third := nth(t, msgs, p, 1), nth(t, msgs, p, 2)
	for _, c := range []struct {
		name     string
		tamper   func() []eventstore.RawMessage
		seq      uint64 // where the problem must be reported (1-based, in the copy)
		kind     string
		previous uint64
	}{
		{"Changed", func() []eventstore.RawMessage {
			out := slices.Clone(msgs)
			out[second] = change(out[second], func(ev *nirv1.Event) { ev.Kommune = "4601" })
			return out
		}, uint64(third + 1), verify.KindChainBroken, uint64(second + 1)},
		{"Removed", func() []eventstore.RawMessage {
			return slices.Delete(slices.Clone(msgs), second, second+1)
		}, uint64(third), verify.KindChainBroken, uint64(nth(t, msgs, p, 0) + 1)},
		{"InsertedWithoutLink", func() []eventstore.RawMessage {
			return slices.Insert(slices.Clone(msgs), second+1, forged(p, nil))
		}, uint64(second + 2), verify.KindChainMissing, uint64(second + 1)},
		{"InsertedWithAForgedLink", func() []eventstore.RawMessage {
			return slices.Insert(slices.Clone(msgs), second+1, forged(p, bytes.Repeat([]byte{1}, 32)))
		}, uint64(second + 2), verify.KindChainBroken, uint64(second + 1)},
		{"InsertedWithTheRightLink", func() []eventstore.RawMessage {
			// Linked to the real previous message: the real next event no longer matches.
			return slices.Insert(slices.Clone(msgs), second+1, forged(p, eventstore.HashOf(msgs[second].Data)))
		}, uint64(third + 2), verify.KindChainBroken, uint64(second + 2)},
		{"FirstRemoved", func() []eventstore.RawMessage {
			first := nth(t, msgs, p, 0)
			return slices.Delete(slices.Clone(msgs), first, first+1)
		}, uint64(second), verify.KindChainBroken, 0},
		// Another person's event, copied byte for byte onto p's subject: its envelope does
		// not belong there (mutation testing, 2026-12-07: nothing failed when the walk took
		// it for one of p's events).
		{"AnotherPersonsEvent", func() []eventstore.RawMessage {
			m := msgs[nth(t, msgs, 3, 0)]
			m.Subject, m.Header = "nir.ev."+key(p), nats.Header{} // past the dedupe window
			return slices.Insert(slices.Clone(msgs), second+1, m)
		}, uint64(second + 2), verify.KindUndecodable, 0},
		{"Undecodable", func() []eventstore.RawMessage {
			out := slices.Clone(msgs)
			out[second].Data = []byte("not an event")
			return out
		}, uint64(second + 1), verify.KindUndecodable, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := run(t, copyOf(t, c.tamper()))
			if len(rep.Problems) == 0 {
				t.Fatalf("nothing reported")
			}
			got := rep.Problems[0]
			if got.Seq != c.seq || got.Kind != c.kind || got.Previous != c.previous || got.PersonKey != key(p) {
				t.Errorf("first problem %+v, want %s at %d (previous %d) of person %s", got, c.kind, c.seq, c.previous, key(p)[:8])
			}
			for _, pr := range rep.Problems {
				if pr.PersonKey != key(p) {
					t.Errorf("a problem reported for another person: %+v", pr)
				}
			}
			if c.kind != verify.KindUndecodable && rep.BrokenPersons != 1 {
				t.Errorf("%d broken persons, want 1", rep.BrokenPersons)
			}
		})
	}
	// A message stored again, its Nats-Msg-Id header and all, after the dedupe window (as an
	// attacker with write access could): a duplicate id, and its header is its event's id.
	t.Run("DuplicateID", func(t *testing.T) {
		s := openStore(t, 100*time.Millisecond)
		importAfter(t, s, 0, msgs)
		time.Sleep(300 * time.Millisecond) // past the dedupe window
		i := nth(t, msgs, 9, 1)
		importAfter(t, s, uint64(len(msgs)), msgs[i:i+1])
		rep := run(t, s)
		if len(rep.Problems) != 1 || rep.Problems[0].Kind != verify.KindDuplicateID || rep.Problems[0].Seq != uint64(len(msgs)+1) || rep.Problems[0].Previous != uint64(i+1) {
			t.Errorf("problems %+v, want one duplicate id at %d", rep.Problems, len(msgs)+1)
		}
	})
}

// TestStream_Checkpoints: the checkpoints cover what the chain cannot (a person's last
// event, the stream's end), and a changed checkpoint stream is reported.
func TestStream_Checkpoints(t *testing.T) {
	s, msgs := source(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cp := checkpointed(t, s, priv)
	last := uint64(len(msgs))

	t.Run("Intact", func(t *testing.T) {
		rep, err := verify.Stream(context.Background(), s, verify.Options{PublicKey: pub})
		if err != nil || !rep.OK() || rep.Checkpoints != 1 || rep.CheckpointThrough != last {
			t.Fatalf("report %+v, %v: want no problems, 1 checkpoint matched through %d", rep, err, last)
		}
	})
	// A person's last event changed: its chain has no next event to break, the
	// checkpoint handed out before shows it.
	t.Run("LastEventChanged", func(t *testing.T) {
		out := slices.Clone(msgs)
		i := nth(t, msgs, 2, 3)
		ev, _ := eventstore.Decode(out[i].Seq, out[i].Data)
		ev.Kommune = "4601"
		out[i].Data, _ = eventstore.Encode(ev)
		cps := copyOf(t, out)
		if rep := run(t, cps); !rep.OK() {
			t.Fatalf("the chain alone reports %+v; the test assumes it cannot see this change", rep.Problems)
		}
		rep, err := verify.Stream(context.Background(), cps, verify.Options{Checkpoints: []*nirv1.Checkpoint{cp}, PublicKey: pub})
		if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != verify.KindCheckpointMismatch || rep.Problems[0].Seq != last {
			t.Fatalf("problems %+v, %v: want one checkpoint mismatch at %d", rep.Problems, err, last)
		}
	})
	t.Run("EndRemoved", func(t *testing.T) {
		rep, err := verify.Stream(context.Background(), copyOf(t, msgs[:len(msgs)-3]), verify.Options{Checkpoints: []*nirv1.Checkpoint{cp}})
		if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != verify.KindCheckpointBeyond || rep.Problems[0].Seq != last {
			t.Fatalf("problems %+v, %v: want the checkpoint beyond the stream at %d", rep.Problems, err, last)
		}
	})
	t.Run("OtherKey", func(t *testing.T) {
		other, _, _ := ed25519.GenerateKey(rand.Reader)
		rep, err := verify.Stream(context.Background(), s, verify.Options{PublicKey: other})
		if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != verify.KindCheckpointBad {
			t.Fatalf("problems %+v, %v: want one bad checkpoint", rep.Problems, err)
		}
	})
	// From the checkpoint on: only what came after it is walked, linked events whose
	// predecessors lie before it are not chain breaks, and the digest goes on from it.
	t.Run("FromCheckpoint", func(t *testing.T) {
		ctx := context.Background()
		for p := range 3 {
			evs, _, err := s.Read(ctx, key(p))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key(p), ExpectedLastSeq: eventstore.Expect(evs[len(evs)-1].Seq), Events: []*nirv1.Event{event(key(p))}}); err != nil {
				t.Fatal(err)
			}
		}
		next := checkpointed(t, s, priv)
		rep, err := verify.Stream(ctx, s, verify.Options{From: cp, PublicKey: pub})
		if err != nil || !rep.OK() || rep.FirstSeq != last+1 || rep.Messages != 3 || rep.Linked != 3 || rep.CheckpointThrough != next.GetStreamSeq() {
			t.Fatalf("report %+v, %v: want 3 messages from %d, all linked, the next checkpoint matched at %d", rep, err, last+1, next.GetStreamSeq())
		}
		other, _, _ := ed25519.GenerateKey(rand.Reader)
		if _, err := verify.Stream(ctx, s, verify.Options{From: cp, PublicKey: other}); err == nil {
			t.Error("a walk from a checkpoint signed by another key than the one given was started")
		}
	})
	// A checkpoint handed out, changed after it was signed: its signature is checked like
	// that of a stored one, and it is reported as bad, not compared (mutation testing,
	// 2026-12-07: nothing failed when the checkpoints given went unchecked).
	t.Run("GivenChanged", func(t *testing.T) {
		changed := proto.Clone(cp).(*nirv1.Checkpoint)
		changed.Digest = bytes.Repeat([]byte{2}, 32)
		rep, err := verify.Stream(context.Background(), s, verify.Options{Checkpoints: []*nirv1.Checkpoint{changed}})
		if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != verify.KindCheckpointBad {
			t.Fatalf("problems %+v, %v: want one bad checkpoint", rep.Problems, err)
		}
	})
	// Someone with write access to the checkpoint stream adds one of their own.
	t.Run("ForgedCheckpoint", func(t *testing.T) {
		forged := &nirv1.Checkpoint{StreamSeq: last, Digest: bytes.Repeat([]byte{1}, 32)}
		data, _ := proto.Marshal(forged)
		if err := s.Conn().Publish(eventstore.CheckpointSubject, data); err != nil {
			t.Fatal(err)
		}
		eventually := time.Now().Add(10 * time.Second)
		for {
			rep, err := verify.Stream(context.Background(), s, verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) == 1 && rep.Problems[0].Kind == verify.KindCheckpointBad {
				return
			}
			if time.Now().After(eventually) {
				t.Fatalf("problems %+v: want one bad checkpoint", rep.Problems)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// checkpointed makes a checkpoint, signed with key, through the stream's last sequence.
func checkpointed(t *testing.T, s *eventstore.Store, key ed25519.PrivateKey) *nirv1.Checkpoint {
	t.Helper()
	last, err := s.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return storetest.CheckpointThrough(t, s, last, key)
}
