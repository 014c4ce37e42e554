package eventstore_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// BenchmarkAppend measures Append on a sync-always server: one event per call, and 100
// events per call (one atomic batch). Compare with BenchmarkJetStream for the overhead.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run("Events="+strconv.Itoa(n), func(b *testing.B) {
			s, _ := openStore(b, nil)
			ctx := context.Background()
			key := personKey("bench")
			var last uint64
			for b.Loop() {
				pos, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(last), Events: events(key, n)})
				if err != nil {
					b.Fatal(err)
				}
				if pos[0].Duplicate {
					b.Fatal("benchmark appended a duplicate")
				}
				last = pos[len(pos)-1].Seq
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkJetStream is the bare equivalent of BenchmarkAppend: same-size messages with a
// message id, a synchronous publish each (SyncPublish), or atomic batches of 1 and 100.
// AtomicBatch/Events=1 against SyncPublish is why Append sends a lone event as a plain
// publish: an atomic batch on a file stream stages in its own file store first, a fixed
// cost of several milliseconds per batch.
func BenchmarkJetStream(b *testing.B) {
	size := len(mustEncode(b, newEvent(personKey("bench"))))
	for _, bc := range []struct {
		name   string
		n      int
		atomic bool
	}{{"SyncPublish", 1, false}, {"AtomicBatch/Events=1", 1, true}, {"AtomicBatch/Events=100", 100, true}} {
		n := bc.n
		b.Run(bc.name, func(b *testing.B) {
			srv := natstest.RunServer(b, natstest.Options{})
			nc, err := nats.Connect("", nats.InProcessServer(srv))
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx := context.Background()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BARE", Subjects: []string{"bare.*"}, AllowAtomicPublish: true, AllowDirect: true}); err != nil {
				b.Fatal(err)
			}
			data := make([]byte, size)
			id := 0
			for b.Loop() {
				msgs := make([]*nats.Msg, n)
				for j := range msgs {
					id++
					msgs[j] = &nats.Msg{Subject: "bare.p", Data: data, Header: nats.Header{nats.MsgIdHdr: []string{strconv.Itoa(id)}}}
				}
				if !bc.atomic {
					if _, err := js.PublishMsg(ctx, msgs[0]); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if _, err := jetstreamext.PublishMsgBatch(ctx, js, msgs, jetstreamext.BatchFlowControl{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func mustEncode(tb testing.TB, ev *nirv1.Event) []byte {
	tb.Helper()
	data, err := eventstore.Encode(ev)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
