package ingest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
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
			regs = benchPerson(n, perPerson)
			b.StartTimer()
		}
		if _, err := svc.Append(ctx, oslo, regs[:1]); err != nil {
			b.Fatal(err)
		}
		regs = regs[1:]
	}
}

// benchPerson is a person's registration, a training vedtak and monthly norsk hours from
// March 2024, n registrations in all, as nirbench's generator makes them.
func benchPerson(i, n int) []*nirv1.Registration {
	birth := rules.Date{Y: 1970 + i%30, M: time.Month(1 + i%12), D: 1 + i%28}
	id := rules.SyntheticFodselsnummer(birth, i)
	ref := &nirv1.PersonRef{NationalId: id}
	regs := []*nirv1.Registration{
		{Person: ref, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301", Payload: &nirv1.Event_PersonRegistered{PersonRegistered: &nirv1.PersonRegistered{
			Fodselsnummer: id, BirthDate: birth.Proto(), Sex: nirv1.Sex_SEX_MALE,
			PermitDate: d(2024, 1, 15), PermitBasis: nirv1.PermitBasis_PERMIT_BASIS_ASYL_28,
			ArrivalDate: d(2023, 10, 2), SettlementDate: d(2024, 2, 1), SettlementKommune: "0301", SettledByAgreement: true,
		}}}},
		{Person: ref, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301", Payload: &nirv1.Event_TrainingVedtakRegistered{TrainingVedtakRegistered: &nirv1.TrainingVedtakRegistered{
			Scheme: nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT, Type: nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING,
			VedtakDate: d(2024, 2, 20), StartDate: d(2024, 3, 1),
		}}}},
	}
	for m := 0; len(regs) < n; m++ {
		month := 3 + m%30
		regs = append(regs, &nirv1.Registration{Person: ref, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
				Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: int32(2024 + (month-1)/12), Month: int32(1 + (month-1)%12)},
				Hours: 40, AbsenceHours: 2,
			}}}})
	}
	return regs
}
