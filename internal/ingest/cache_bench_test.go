package ingest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// longHistory is a person's registration, a training vedtak and monthly norsk hours (March
// to May 2024, the totals re-sent as corrections) up to n events.
func longHistory(i, n int) []*nirv1.Registration {
	id, reg := person(i, false)
	ref := &nirv1.PersonRef{NationalId: id}
	regs := []*nirv1.Registration{reg, {Person: ref, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
		Payload: &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: &nirv1.TrainingVedtakRegistered{
			Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT, Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING,
			VedtakDate: d(2024, 2, 20), StartDate: d(2024, 3, 1),
		}}}}}
	for m := 0; len(regs) < n; m++ {
		regs = append(regs, &nirv1.Registration{Person: ref, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
				Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: 2024, Month: int32(3 + m%3)},
				Hours: 40, AbsenceHours: 2,
			}}}})
	}
	return regs
}

// BenchmarkHistoryCacheMemory measures the heap a cached event takes in the append path's
// history cache, with its share of the person's folded state: the heap after appending the
// same persons with the cache on, less the heap with it off, per event appended. It sizes
// --history-cache-events (README).
//
//	go test ./internal/ingest -run '^$' -bench HistoryCacheMemory
func BenchmarkHistoryCacheMemory(b *testing.B) {
	const events = 20000
	heapAfter := func(b *testing.B, perPerson, cache int) uint64 {
		ctx := context.Background()
		store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(b.TempDir(), "js")})
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		keys, err := personkey.New([]byte("test secret for the ingest tests"))
		if err != nil {
			b.Fatal(err)
		}
		svc := ingest.New(ingest.Config{Store: store, Keys: keys, Now: func() time.Time { return fixedNow }, HistoryCache: cache, HistoryCacheEvents: 10 * events})
		for i := range events / perPerson {
			regs := longHistory(i+1, perPerson)
			for j := 0; j < len(regs); j += 50 {
				if _, err := svc.Append(ctx, oslo, regs[j:min(j+50, len(regs))]); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		runtime.KeepAlive(svc)
		return ms.HeapAlloc
	}
	for _, per := range []int{10, 100, 300} {
		b.Run(fmt.Sprintf("events-per-person=%d", per), func(b *testing.B) {
			var with, without uint64
			for b.Loop() {
				without += heapAfter(b, per, -1)
				with += heapAfter(b, per, events)
			}
			b.ReportMetric(float64(int64(with)-int64(without))/float64(b.N)/events, "B/cached-event")
		})
	}
}
