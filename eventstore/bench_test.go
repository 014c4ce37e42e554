package eventstore_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
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
			js := bareJetStream(b)
			ctx := context.Background()
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

// BenchmarkGroupCommit runs 64 concurrent appenders of one event each (every one on its
// own person, with a check), against 64 bare synchronous publishers of same-size messages
// on the same kind of server (sync always). It reports events/s and the median and p99
// latency of one append.
func BenchmarkGroupCommit(b *testing.B) {
	const writers = 64
	size := len(mustEncode(b, newEvent(personKey("bench"))))
	b.Run("Append", func(b *testing.B) {
		s, _ := openStore(b, nil)
		runWriters(b, writers, func(w int) func() error {
			key := personKey("gc-" + strconv.Itoa(w))
			var last uint64
			return func() error {
				pos, err := s.Append(context.Background(), eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(last), Events: events(key, 1)})
				if err == nil {
					last = pos[0].Seq
				}
				return err
			}
		})
		st := s.Stats()
		if st.Batches > 0 {
			b.ReportMetric(float64(st.BatchEvents)/float64(st.Batches), "events/batch")
		}
	})
	b.Run("BareSyncPublish", func(b *testing.B) {
		js := bareJetStream(b)
		data := make([]byte, size)
		runWriters(b, writers, func(w int) func() error {
			subj := "bare.p" + strconv.Itoa(w)
			return func() error {
				_, err := js.Publish(context.Background(), subj, data)
				return err
			}
		})
	})
}

// BenchmarkGroupCommitCeiling is what JetStream alone does for 64 one-event clients
// coalesced at no cost: atomic batches of 64 same-size messages, one after the other (each
// client can send again only once its batch is stored). Group commit cannot beat it;
// compare BenchmarkGroupCommit/Append.
func BenchmarkGroupCommitCeiling(b *testing.B) {
	const writers = 64
	size := len(mustEncode(b, newEvent(personKey("bench"))))
	js := bareJetStream(b)
	data := make([]byte, size)
	var lat []time.Duration
	n := 0
	b.ResetTimer()
	start := time.Now()
	for n < b.N {
		msgs := make([]*nats.Msg, min(writers, b.N-n))
		for i := range msgs {
			msgs[i] = &nats.Msg{Subject: "bare.p" + strconv.Itoa(n+i), Data: data, Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{"0"}}}
		}
		t0 := time.Now()
		if _, err := jetstreamext.PublishMsgBatch(context.Background(), js, msgs, jetstreamext.BatchFlowControl{AckFirst: false}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		n += len(msgs)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}

// runWriters runs b.N operations spread over n goroutines and reports throughput and
// latency percentiles.
func runWriters(b *testing.B, n int, mk func(w int) func() error) {
	var next atomic.Int64
	lat := make([][]time.Duration, n)
	var wg sync.WaitGroup
	total := int64(b.N)
	b.ResetTimer()
	start := time.Now()
	for w := range n {
		op := mk(w)
		wg.Go(func() {
			for next.Add(1) <= total {
				t0 := time.Now()
				if err := op(); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkReplay reads the whole stream back in order (decoded), as a rebuild does.
func BenchmarkReplay(b *testing.B) {
	s, _ := openStore(b, nil)
	ctx := context.Background()
	const total = 20000
	for i := 0; i < total/500; i++ {
		var batch []eventstore.PersonAppend
		for p := range 50 {
			key := personKey("replay-" + strconv.Itoa(i) + "-" + strconv.Itoa(p))
			batch = append(batch, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: events(key, 10)})
		}
		if _, err := s.Append(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for _, err := range s.Replay(ctx, eventstore.ReplayOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != total {
			b.Fatalf("replayed %d, want %d", n, total)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
}

// bareJetStream starts a sync-always server with a bare stream BARE on bare.* (atomic
// publish and direct get allowed) for the bare-engine benchmarks, connected over loopback
// TCP as openStore's stores are.
func bareJetStream(b *testing.B) jetstream.JetStream {
	b.Helper()
	srv := natstest.RunServer(b, natstest.Options{})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "BARE", Subjects: []string{"bare.*"}, AllowAtomicPublish: true, AllowDirect: true}); err != nil {
		b.Fatal(err)
	}
	return js
}
