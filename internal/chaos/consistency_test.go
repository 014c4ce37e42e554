package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/feed"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestReplicas: on an R3 stream every replica answers direct gets, and a follower may lag.
// Found by TestChaos, each a regression test here on three nats-server processes:
//   - LiveReadModels: three writers on three nodes (as three nird), and live read models
//     fed through a fourth connection, equal a clean build: a replay bounded by one
//     replica's last sequence and answered by a lagging one used to end early, and the
//     projection skipped the rest.
//   - ReadOnCutOffFollower: a Read through a follower cut off from the leader fails rather
//     than answer without the newest events (which refused valid registrations), and reads
//     everything once the partition heals.
//   - ReadTiedToTheLeader: ConfirmReads confirms a read only when the confirmed stream
//     leader counts, on each subject read, the messages the read saw, through any node; a
//     count higher than the read's (an event the read did not see) is ErrReadShort.
//   - CutOffLeaderUnconfirmed: the stream leader cut off from its followers answers as
//     leader for seconds, from a store without what the new leader acknowledged meanwhile;
//     ConfirmLeader, which the append path asks before it refuses on a read of the stream,
//     does not confirm it, and confirms a leader in touch with its followers. Reads through
//     the majority meanwhile are answered: a direct get goes to a replica the server picks
//     at random, the cut-off leader among them, and one that went there was never answered,
//     so a third of such reads waited out their deadline (an append's re-read of a person
//     six times in a row once in CI).
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three nats-server processes; run without -short")
	}
	dir := t.TempDir()
	c, err := NewCluster(ClusterOptions{Dir: dir, Bins: binaries(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	open := func(url string) *eventstore.Store {
		t.Helper()
		s, err := eventstore.Open(ctx, eventstore.Config{URL: url, Replicas: 3, RequestTimeout: 3 * time.Second,
			NATSOptions: []nats.Option{nats.UserInfo("nird", c.Password("nird"))}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	event := func(key string) *nirv1.Event {
		return &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", RecordedAt: timestamppb.Now(),
			Payload: &nirv1.Event_DemandRegistered{DemandRegistered: &nirv1.DemandRegistered{Programme: nirv1.Programme_PROGRAMME_INTRO, Date: &nirv1.Date{Year: 2024, Month: 1, Day: 2}}}}
	}

	// leaderAndOther returns the stream leader's node and another node.
	leaderAndOther := func(t *testing.T) (leader, other int) {
		t.Helper()
		check, err := c.Admin().CheckStream(ctx)
		if err != nil || check.Leader == "" {
			t.Fatalf("stream leader: %+v, %v", check, err)
		}
		leader, other = -1, -1
		for i, n := range c.Nodes {
			if n.Name == check.Leader {
				leader = i
			} else if other < 0 {
				other = i
			}
		}
		return leader, other
	}
	// appendRetrying appends ev again (idempotent) until the majority has stored it: cutting
	// a node off may move the leadership meanwhile, and under CI's load (the race detector,
	// other packages' tests) a leader election can leave the stream without a leader for
	// seconds ("JetStream system temporarily unavailable", 10008).
	appendRetrying := func(s *eventstore.Store, ev *nirv1.Event) error {
		for deadline := time.Now().Add(30 * time.Second); ; {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.Append(actx, eventstore.PersonAppend{PersonKey: ev.GetPersonKey(), Events: []*nirv1.Event{ev}})
			cancel()
			if err == nil || time.Now().After(deadline) {
				return err
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	appendUntilStored := func(t *testing.T, s *eventstore.Store, ev *nirv1.Event, what string) {
		t.Helper()
		if err := appendRetrying(s, ev); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	t.Run("LiveReadModels", func(t *testing.T) {
		reader := open(c.Nodes[1].ClientURL())
		f, err := feed.New(reader)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p, err := projections.New(f, projections.Options{Dir: filepath.Join(dir, "live")})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(rctx) }()
		var writers []*eventstore.Store
		for _, n := range c.Nodes {
			writers = append(writers, open(n.ClientURL()))
		}
		var wg sync.WaitGroup
		for w := range 24 {
			wg.Go(func() {
				for i := range 25 {
					key := fmt.Sprintf("%064x", w*1000+i)
					// A retry of the same event is stored once: the test is about
					// the models, not about appends riding out an election.
					if err := appendRetrying(writers[w%3], event(key)); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		// The stream's last sequence: a store's LastSeq is never behind what it appended
		// itself (Append records it, and a lagging replica's answer below it is checked with
		// the leader), but may be behind another store's last append (its server lags), so
		// the largest answer is the stream's end. The clean build reads through the store
		// that gave it. This failed in CI twice ("of 599 events" of 600): once before the
		// largest answer was taken, once (2026-12-05) while only LastSeq's own answers, not
		// the store's appends, kept it from going back, and all three stores were answered
		// by replicas that had not applied the last append yet.
		var last uint64
		lastWriter := writers[0]
		for _, w := range writers {
			l, err := w.LastSeq(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if l > last {
				last, lastWriter = l, w
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = p.WaitFor(wctx, last)
		cancel()
		stop()
		if rerr := <-done; rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			t.Fatalf("the live read models did not reach %d: %v", last, err)
		}
		h := sha256.New()
		if err := p.Use("", func(db *projections.DB) error { return db.Dump(h) }); err != nil {
			t.Fatal(err)
		}
		clean, err := cleanDigest(ctx, lastWriter, filepath.Join(dir, "clean"), "")
		if err != nil {
			t.Fatal(err)
		}
		if live := hex.EncodeToString(h.Sum(nil)); live != clean {
			t.Fatalf("live read models (%s) differ from a clean build (%s) of %d events", live[:12], clean[:12], last)
		}
	})

	t.Run("ReadOnCutOffFollower", func(t *testing.T) {
		leader, follower := leaderAndOther(t)
		viaFollower := open(c.Nodes[follower].ClientURL())
		viaLeader := open(c.Nodes[leader].ClientURL())
		key := strings.Repeat("cd", 32)
		if _, err := viaLeader.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: []*nirv1.Event{event(key)}}); err != nil {
			t.Fatal(err)
		}
		waitRead := func(want int) {
			t.Helper()
			deadline := time.Now().Add(60 * time.Second)
			for {
				rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				evs, _, err := viaFollower.Read(rctx, key)
				cancel()
				if err == nil && len(evs) == want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("read through the follower: %d events, %v; want %d", len(evs), err, want)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		waitRead(1)
		_, firstSeq, err := viaLeader.Read(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		c.IsolateNode(follower, false)
		defer c.Heal()
		appendUntilStored(t, viaLeader, event(key), "append with one follower cut off")
		// A person registered while the follower is cut off, and the first person's event
		// after the one the follower has: the freshness check through the follower (After,
		// from the sequence the follower's history ends at) fails, or sees them as the leader
		// does. Answered from the follower alone it saw neither, and the ingest service
		// refused valid events as "person not found".
		newKey := strings.Repeat("c1", 32)
		appendUntilStored(t, viaLeader, event(newKey), "register a person with one follower cut off")
		for range 3 {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			a, err := viaFollower.After(rctx, []string{newKey}, 0)
			if err == nil && !a.Newer {
				t.Fatalf("After through a follower cut off from the leader: %+v, want a newer message (or an error)", a)
			}
			a, err = viaFollower.After(rctx, []string{key}, firstSeq)
			cancel()
			if err == nil && !a.Newer {
				t.Fatalf("After through a follower cut off from the leader, past the event it has: %+v, want a newer message (or an error)", a)
			}
		}
		for range 5 {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			evs, _, err := viaFollower.Read(rctx, key)
			cancel()
			if err == nil && len(evs) != 2 {
				t.Fatalf("a follower cut off from the leader answered with %d of 2 events", len(evs))
			}
			if err == nil {
				t.Log("a Read through the cut-off follower reached the leader another way")
			} else if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "no responders") && !strings.Contains(err.Error(), "timeout") {
				t.Logf("read through the cut-off follower: %v", err)
			}
		}
		c.Heal()
		waitRead(2)
	})

	t.Run("ReadTiedToTheLeader", func(t *testing.T) {
		_, other := leaderAndOther(t)
		viaOther := open(c.Nodes[other].ClientURL())
		writer := open(c.Nodes[(other+1)%len(c.Nodes)].ClientURL())
		key := strings.Repeat("d1", 32)
		appendUntilStored(t, writer, event(key), "first event")
		// A read that saw both events the stream holds on the subject is confirmed with
		// them, through whichever node: the count comes in the answer that shows the quorum.
		appendUntilStored(t, writer, event(key), "second event")
		var began time.Time
		var reads *eventstore.Reads
		for range 20 {
			began = time.Now()
			var rctx context.Context
			rctx, reads = eventstore.WithReads(ctx)
			evs, _, err := viaOther.Read(rctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 2 {
				break
			}
			t.Logf("a read of 2 events saw %d", len(evs))
		}
		if err := viaOther.ConfirmReads(ctx, began, reads); err != nil {
			t.Fatalf("a read that saw every event of the subject: %v, want confirmed", err)
		}
		if err := writer.ConfirmReads(ctx, began, reads); err != nil {
			t.Fatalf("a read that saw every event of the subject, confirmed through another node: %v, want confirmed", err)
		}
		// An event stored after the read: the leader is confirmed (ConfirmLeader), but it
		// counts a message the read did not see, as for a read answered by a cut-off node
		// from a store that ends early (CutOffLeaderUnconfirmed meets that only by chance).
		appendUntilStored(t, writer, event(key), "third event")
		if err := viaOther.ConfirmLeader(ctx, began); err != nil {
			t.Fatalf("the leader: %v", err)
		}
		if err := viaOther.ConfirmReads(ctx, began, reads); !errors.Is(err, eventstore.ErrReadShort) || !errors.Is(err, eventstore.ErrUnconfirmed) {
			t.Fatalf("a read short of the leader's count: %v, want ErrReadShort (an ErrUnconfirmed)", err)
		}
		// A subject the read found empty (After: nothing on it) is tied to a count of 0.
		empty := strings.Repeat("d2", 32)
		began = time.Now()
		actx, reads := eventstore.WithReads(ctx)
		if a, err := viaOther.After(actx, []string{empty}, 0); err != nil || a.Held || a.Newer {
			t.Fatalf("After on a subject nobody wrote: %+v, %v", a, err)
		}
		if err := viaOther.ConfirmReads(ctx, began, reads); err != nil {
			t.Fatalf("an empty subject read empty: %v, want confirmed", err)
		}
		appendUntilStored(t, writer, event(empty), "an event on the subject read empty")
		if err := viaOther.ConfirmReads(ctx, began, reads); !errors.Is(err, eventstore.ErrReadShort) {
			t.Fatalf("a subject read empty that holds an event now: %v, want ErrReadShort", err)
		}
		// Many subjects (a refused request of many persons), more than are asked at once:
		// every one is confirmed, and one short among them is ErrReadShort, not the
		// context's error of the requests it stopped.
		began = time.Now()
		actx, reads = eventstore.WithReads(ctx)
		var many []string
		for i := range 40 {
			key := fmt.Sprintf("%062x%02x", 0xd3, i)
			many = append(many, key)
		}
		for chunk := range slices.Chunk(many, 10) {
			if a, err := viaOther.After(actx, chunk, 0); err != nil || a.Held || a.Newer {
				t.Fatalf("After on subjects nobody wrote: %+v, %v", a, err)
			}
		}
		if err := viaOther.ConfirmReads(ctx, began, reads); err != nil {
			t.Fatalf("40 subjects read empty: %v, want confirmed", err)
		}
		appendUntilStored(t, writer, event(many[27]), "an event on one of 40 subjects read empty")
		if err := viaOther.ConfirmReads(ctx, began, reads); !errors.Is(err, eventstore.ErrReadShort) {
			t.Fatalf("one of 40 subjects read empty holds an event now: %v, want ErrReadShort", err)
		}
	})

	t.Run("CutOffLeaderUnconfirmed", func(t *testing.T) {
		leader, other := leaderAndOther(t)
		viaLeader := open(c.Nodes[leader].ClientURL())
		viaOther := open(c.Nodes[other].ClientURL())
		key := strings.Repeat("ef", 32)
		if _, err := viaLeader.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: []*nirv1.Event{event(key)}}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			began := time.Now()
			if err := viaLeader.ConfirmLeader(ctx, began); err != nil {
				t.Fatalf("a leader in touch with its followers not confirmed: %v", err)
			}
			t.Logf("leader confirmed in %v", time.Since(began).Round(time.Millisecond))
		}
		c.IsolateNode(leader, false)
		defer c.Heal()
		began := time.Now()
		err = viaLeader.ConfirmLeader(ctx, began)
		if err == nil {
			t.Fatal("the stream leader cut off from its followers was confirmed")
		}
		if time.Since(began) < 8*time.Second && !errors.Is(err, eventstore.ErrUnconfirmed) {
			t.Errorf("the cut-off leader, still answering as leader: %v, want ErrUnconfirmed", err)
		}
		// What it would have been asked to confirm: while it still takes itself for the
		// leader, a read through it ends before an event the new leader acknowledged.
		appendUntilStored(t, viaOther, event(key), "append through the majority")
		failed := 0
		for range 12 {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			evs, _, err := viaOther.Read(rctx, key)
			cancel()
			if err != nil || len(evs) != 2 {
				failed++
				t.Logf("read through the majority: %d events, %v", len(evs), err)
			}
		}
		if failed > 1 {
			t.Errorf("%d of 12 reads through the majority failed while the old leader was cut off", failed)
		}
		readBegan := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		rctx, reads := eventstore.WithReads(rctx)
		evs, _, err := viaLeader.Read(rctx, key)
		cancel()
		if err == nil && len(evs) == 1 {
			t.Logf("the cut-off leader answered a read with 1 of 2 events, %v after it was cut off", readBegan.Sub(began).Round(time.Millisecond))
			if err := viaLeader.ConfirmLeader(ctx, readBegan); !errors.Is(err, eventstore.ErrUnconfirmed) {
				t.Errorf("a read the cut-off leader answered short confirmed: %v", err)
			}
			// The majority's leader is confirmed, but its count is not what the read saw:
			// ConfirmLeader through it proved a leader, not the read.
			if err := viaOther.ConfirmReads(ctx, readBegan, reads); !errors.Is(err, eventstore.ErrReadShort) {
				t.Errorf("a read the cut-off leader answered short, confirmed through the majority: %v, want ErrReadShort", err)
			}
		}
		c.Heal()
		for deadline := time.Now().Add(30 * time.Second); ; {
			err := viaOther.ConfirmLeader(ctx, time.Now())
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the partition healed, the leader not confirmed: %v", err)
			}
		}
	})
}
