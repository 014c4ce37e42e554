package ingest_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/bench"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/sealing"
)

// BenchmarkServiceAppend is a lone client's append of one event, as nirbench's nir-single
// runs it: a kommune's case system (access rules), the read models as the event-id and
// access index (a real bbolt file over an empty feed), identities sealed with a data key per
// new person, the embedded JetStream on file storage (every ack fsynced). A person is
// registered every 10 events (registration, a training vedtak, monthly hours), so histories
// stay as long as nirbench's. What it measures is nir's CPU and allocations per append:
//
//	go test -run '^$' -bench BenchmarkServiceAppend -benchmem -count 6 ./internal/ingest/
//	go test -run '^$' -bench BenchmarkServiceAppend -cpuprofile cpu.out ./internal/ingest/
//	go tool pprof -top -focus='ingest.\(\*Service\).Append' cpu.out
func BenchmarkServiceAppend(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(dir, "js")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	keys, err := personkey.New([]byte("test secret for the ingest tests"))
	if err != nil {
		b.Fatal(err)
	}
	idx, err := projections.New(projections.NewSliceFeed(nil), projections.Options{Dir: filepath.Join(dir, "projections")})
	if err != nil {
		b.Fatal(err)
	}
	defer idx.Close()
	master, _, err := sealing.NewDataKey()
	if err != nil {
		b.Fatal(err)
	}
	dataKeys, err := store.OpenKeyStore(ctx, master)
	if err != nil {
		b.Fatal(err)
	}
	defer dataKeys.Close()
	svc := ingest.New(ingest.Config{Store: store, Keys: keys, IDs: idx, Access: idx, Sealer: sealing.Events{Keys: dataKeys}})

	const perPerson = 10
	// The registrations are made before the clock runs (building them is the case system's
	// work), a person's at a time.
	var regs []*nirv1.Registration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if len(regs) == 0 {
			b.StopTimer()
			n++
			regs = bench.Person(n, perPerson)
			b.StartTimer()
		}
		if _, err := svc.Append(ctx, oslo, regs[:1]); err != nil {
			b.Fatal(err)
		}
		regs = regs[1:]
	}
}
