package eventstore_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// digestThrough computes the checkpoint digest of the stream through seq from its messages,
// independently of the checkpointer.
func digestThrough(t *testing.T, s *eventstore.Store, seq uint64) []byte {
	t.Helper()
	var d eventstore.Digest
	if _, err := s.Export(context.Background(), 1, seq, func(m eventstore.RawMessage) error {
		d.Add(m.Seq, m.Subject, eventstore.HashOf(m.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return d.Sum[:]
}

// TestDigest_Format: the digest extends the sum with SHA-256(sum, seq as 8 bytes big-endian,
// the subject's length as 4, the subject, the data's hash), as the checkpoints already on
// streams were made; AddEvent is Add on the person's subject.
func TestDigest_Format(t *testing.T) {
	var d, e eventstore.Digest
	var want [sha256.Size]byte
	for i, subject := range []string{"nir.ev." + strings.Repeat("ab", 32), "nir.ev." + strings.Repeat("7f", 32), "nir.claim.x"} {
		seq := uint64(1)<<40 + uint64(i)
		data := []byte(fmt.Sprintf("message %d", i))
		h := sha256.New()
		h.Write(want[:])
		h.Write(binary.BigEndian.AppendUint64(nil, seq))
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(subject))))
		h.Write([]byte(subject))
		h.Write(eventstore.HashOf(data))
		h.Sum(want[:0])
		d.Add(seq, subject, eventstore.HashOf(data))
		if pk, ok := strings.CutPrefix(subject, "nir.ev."); ok {
			e.AddEvent(seq, pk, eventstore.HashOf(data))
		} else {
			e.Add(seq, subject, eventstore.HashOf(data))
		}
		if d.Sum != want || e.Sum != want || d.Seq != seq || e.Seq != seq {
			t.Fatalf("message %d: Add gives %x (seq %d), AddEvent %x (seq %d), want %x", i, d.Sum, d.Seq, e.Sum, e.Seq, want)
		}
	}
}

// TestCheckpoints: two checkpointers run at once (as two nird would if the lease failed);
// every checkpoint commits to the stream through its sequence, each names the one before
// it, none is published twice for the same predecessor, and the signatures hold.
func TestCheckpoints(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, srv := openStore(t, nil)
	other, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	var wg sync.WaitGroup
	for _, st := range []*eventstore.Store{s, other} {
		wg.Go(func() {
			_ = st.RunCheckpoints(ctx, eventstore.CheckpointOptions{Every: 10, Interval: time.Hour, Poll: 5 * time.Millisecond, Key: key})
		})
	}
	for i := range 8 {
		k := personKey(string(rune('a' + i)))
		if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: k, Events: events(k, 7)}); err != nil {
			t.Fatal(err)
		}
	}
	// 56 events: once a checkpoint covers 47 or more, fewer than Every are left uncovered
	// and no other is due.
	eventually(t, 30*time.Second, "a checkpoint within Every of the last event", func() bool {
		cps, err := s.Checkpoints(ctx)
		return err == nil && len(cps) > 0 && cps[len(cps)-1].Checkpoint.GetStreamSeq() >= 56-10+1
	})
	cancel()
	wg.Wait()

	cps, err := s.Checkpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var prev []byte
	var prevSeq uint64
	for i, c := range cps {
		cp := c.Checkpoint
		if cp == nil {
			t.Fatalf("checkpoint %d does not decode", c.Seq)
		}
		if cp.GetStreamSeq() <= prevSeq {
			t.Errorf("checkpoint %d covers %d, not beyond the previous one's %d", i, cp.GetStreamSeq(), prevSeq)
		}
		if want := digestThrough(t, s, cp.GetStreamSeq()); !bytes.Equal(cp.GetDigest(), want) {
			t.Errorf("checkpoint %d through %d: digest %x, want %x", i, cp.GetStreamSeq(), cp.GetDigest(), want)
		}
		if !bytes.Equal(cp.GetPrevious(), prev) {
			t.Errorf("checkpoint %d names previous %x, want %x", i, cp.GetPrevious(), prev)
		}
		if err := eventstore.CheckSignature(cp, key.Public().(ed25519.PublicKey)); err != nil {
			t.Errorf("checkpoint %d: %v", i, err)
		}
		if cp.GetStreamId() != s.Identity().String() {
			t.Errorf("checkpoint %d names stream %q, want %q", i, cp.GetStreamId(), s.Identity().String())
		}
		prev, prevSeq = eventstore.HashOf(c.Data), cp.GetStreamSeq()
	}

	// A signature over other content, or by another key, does not hold.
	cp := cps[0].Checkpoint
	cp.StreamSeq++
	if err := eventstore.CheckSignature(cp, nil); !errors.Is(err, eventstore.ErrCheckpointSignature) {
		t.Errorf("changed checkpoint: %v, want ErrCheckpointSignature", err)
	}
	cp.StreamSeq--
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	if err := eventstore.CheckSignature(cp, otherPub); !errors.Is(err, eventstore.ErrCheckpointSignature) {
		t.Errorf("another key: %v, want ErrCheckpointSignature", err)
	}
	if err := eventstore.CheckSignature(&nirv1.Checkpoint{StreamSeq: 1}, otherPub); !errors.Is(err, eventstore.ErrCheckpointSignature) {
		t.Errorf("unsigned checkpoint with a key required: %v, want ErrCheckpointSignature", err)
	}
}

// TestCheckpoints_Interval: fewer events than Every get a checkpoint once Interval has
// passed; with no new events, none is made.
func TestCheckpoints_Interval(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _ := openStore(t, nil)
	k := personKey("interval")
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: k, Events: events(k, 3)}); err != nil {
		t.Fatal(err)
	}
	made := make(chan *nirv1.Checkpoint, 10)
	go s.RunCheckpoints(ctx, eventstore.CheckpointOptions{Every: 1000, Interval: 200 * time.Millisecond, Poll: 10 * time.Millisecond,
		Made: func(cp *nirv1.Checkpoint) { made <- cp }})
	select {
	case cp := <-made:
		if cp.GetStreamSeq() != 3 || len(cp.GetSignature()) != 0 {
			t.Fatalf("checkpoint through %d, signed %v; want through 3, unsigned", cp.GetStreamSeq(), len(cp.GetSignature()) > 0)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no checkpoint after the interval")
	}
	select {
	case cp := <-made:
		t.Fatalf("a second checkpoint through %d without new events", cp.GetStreamSeq())
	case <-time.After(time.Second):
	}
}

// TestCheckpoints_DamagedLast: a last checkpoint that does not decode (damaged on disk, or
// published by something that is not nird) does not stop the checkpoints. The next one
// continues the digest from the last checkpoint that decodes, commits to the whole stream,
// and names the damaged one as its previous, so that the chain stays whole and nirctl verify
// reports the damage where it is.
func TestCheckpoints_DamagedLast(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, srv := openStore(t, nil)
	k := personKey("damaged")
	run := func(through uint64) *nirv1.Checkpoint {
		t.Helper()
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		made := make(chan *nirv1.Checkpoint, 10)
		go s.RunCheckpoints(rctx, eventstore.CheckpointOptions{Every: 1, Poll: 5 * time.Millisecond,
			Made: func(cp *nirv1.Checkpoint) { made <- cp }})
		for {
			select {
			case cp := <-made:
				if cp.GetStreamSeq() >= through {
					return cp
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no checkpoint through %d", through)
			}
		}
	}
	evs := events(k, 10)
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: k, Events: evs[:5]}); err != nil {
		t.Fatal(err)
	}
	run(5)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	damaged := []byte("\xff\xff not a checkpoint")
	if _, err := js.Publish(ctx, eventstore.CheckpointSubject, damaged); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: k, Events: evs[5:]}); err != nil {
		t.Fatal(err)
	}
	cp := run(10)
	if want := digestThrough(t, s, cp.GetStreamSeq()); !bytes.Equal(cp.GetDigest(), want) {
		t.Errorf("checkpoint after the damaged one: digest %x, want %x", cp.GetDigest(), want)
	}
	if !bytes.Equal(cp.GetPrevious(), eventstore.HashOf(damaged)) {
		t.Errorf("checkpoint after the damaged one names previous %x, want the damaged one's %x", cp.GetPrevious(), eventstore.HashOf(damaged))
	}
}
