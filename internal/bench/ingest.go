// Package bench measures nir against the bare engine it stands on, in one run on one
// machine, so that the ratio says what nir's own code costs. It backs `nirbench`.
package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/sealing"
)

// IngestOptions configures an ingest benchmark. Zero values mean the defaults.
type IngestOptions struct {
	Events          int    // events per scenario (default 20 000)
	Batch           int    // registrations per batched append (default 100)
	Clients         int    // concurrent clients in the concurrency scenarios (default 0: skipped)
	EventsPerPerson int    // events per synthetic person (default 10)
	Dir             string // scratch directory for the embedded server (default a temp dir, removed)
	// Scenarios limits the run to the named scenarios ("nir-single", "nir-batch",
	// "bare-sync", "bare-batch", "nir-concurrent", "bare-concurrent", "bare-coalesced",
	// "store-single"); empty = all but store-single, which runs only when named. A ratio
	// is reported when both of its scenarios ran.
	Scenarios []string
	// GroupCommit tunes the event store's group commit; zero = nird's defaults.
	GroupCommit eventstore.GroupCommit
	// Rounds is how many slices each scenario of a group (single, batch, concurrent) runs
	// in, taking turns with the others, in the reverse order every other round (default 6).
	Rounds int
	// NewIDs registers every synthetic person with a D-nummer beside its fødselsnummer, so
	// that each registration claims a further id (DOMAIN.md Product decisions 15): one more
	// message per person in the same atomic batch, which the nir scenarios pay for.
	NewIDs bool `json:",omitempty"`
}

// scenarioNames are the names IngestOptions.Scenarios accepts.
var scenarioNames = []string{"nir-single", "nir-batch", "bare-sync", "bare-batch", "nir-concurrent", "bare-concurrent", "bare-coalesced", "store-single"}

// namedOnly are the scenarios that run only when named in IngestOptions.Scenarios: they
// split a ratio into its parts rather than measure nir.
var namedOnly = []string{"store-single"}

// Result is one measured scenario.
type Result struct {
	Name         string  `json:"name"`
	Events       int     `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	LatencyP50ms float64 `json:"latency_p50_ms"`
	LatencyP99ms float64 `json:"latency_p99_ms"`
	// EventsPerBatch is the mean size of the atomic batches the event store committed in
	// a nir scenario (group commit); 0 for the bare ones.
	EventsPerBatch float64 `json:"events_per_batch,omitempty"`
}

// IngestReport is the outcome of Ingest: every scenario and the ratios nir / bare.
type IngestReport struct {
	Machine     Machine            `json:"machine"`
	Options     IngestOptions      `json:"options"`
	EventBytes  int                `json:"event_bytes"`
	Results     []Result           `json:"results"`
	Ratios      map[string]float64 `json:"ratios"`
	Durability  string             `json:"durability"`
	Description string             `json:"description"`
}

// Machine describes where a benchmark ran.
type Machine struct {
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
	CPUs   int    `json:"cpus"`
	Go     string `json:"go"`
	Host   string `json:"host"`
}

func thisMachine() Machine {
	h, _ := os.Hostname()
	return Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version(), Host: h}
}

// Ingest runs the ingest scenarios against one embedded JetStream server with nird's
// durability (every write fsynced before the ack). Scenarios compared with each other run in
// turns, Rounds slices each, so that a drift of the disk's speed during the run hits both
// sides of a ratio alike:
//
//   - nir-single: one registration per Append through nir's append path, as nird runs it
//     (read the person's events, fold, check, append with the concurrency check);
//   - nir-batch: Batch registrations per Append;
//   - bare-sync: one synchronous JetStream publish per message of the same size, with the
//     same headers (message id, expected last subject sequence);
//   - bare-batch: atomic batch publishes of Batch messages;
//   - store-single, only when named: the event store's Append alone, one event per call
//     with the person's check, events stamped as the append path stamps them before the
//     clock starts (no validation, keying, access, rules, id index, sealing or cache): it
//     runs with nir-single and bare-sync and splits the single ratio into the store's part
//     ("store-single", store / bare) and the append path's above it;
//   - with Clients > 0, nir-concurrent and bare-concurrent: Clients goroutines, one event at
//     a time each; and bare-coalesced: atomic batches of Clients messages one after the
//     other, what JetStream does for Clients one-event clients coalesced at no cost.
//
// The nir scenarios' registrations are made before each slice's clock starts: building a
// request is the case system's work, not nir's. (Until 2026-12-04 they were made as the
// clients ran, which charged the synthetic fødselsnummer and the ULIDs to nir.)
func Ingest(ctx context.Context, opt IngestOptions, progress func(string)) (*IngestReport, error) {
	if opt.Events <= 0 {
		opt.Events = 20000
	}
	if opt.Batch <= 0 {
		opt.Batch = 100
	}
	if opt.EventsPerPerson <= 1 {
		opt.EventsPerPerson = 10
	}
	if opt.Rounds <= 0 {
		opt.Rounds = 6
	}
	opt.Rounds = min(opt.Rounds, opt.Events)
	if progress == nil {
		progress = func(string) {}
	}
	for _, name := range opt.Scenarios {
		if !slices.Contains(scenarioNames, name) {
			return nil, fmt.Errorf("bench ingest: unknown scenario %q (known: %s)", name, strings.Join(scenarioNames, ", "))
		}
	}
	selected := func(name string) bool {
		return slices.Contains(opt.Scenarios, name) || len(opt.Scenarios) == 0 && !slices.Contains(namedOnly, name)
	}
	dir := opt.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "nir-bench")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	// The bare scenarios publish to a stream of their own, which nird's user may not:
	// they connect in-process as a user with all permissions.
	bareUser, bareAuth, err := eventstore.InProcessUser(nil)
	if err != nil {
		return nil, err
	}
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(dir, "jetstream"), GroupCommit: opt.GroupCommit, Users: []*server.NkeyUser{bareUser}})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	bare, err := store.Connect(bareAuth)
	if err != nil {
		return nil, err
	}
	defer bare.Close()
	keys, err := personkey.New([]byte("bench secret, not for production use"))
	if err != nil {
		return nil, err
	}
	// The append path asks the read models' event-id index about every new event's id, and
	// their access records about every person, as in nird. The index here is a real one over an empty feed: the look-up costs what it
	// costs in nird (a bbolt read, a miss for a new id), without charging the projections'
	// own work, which nird does beside the append path, to the nir scenarios.
	idx, err := projections.New(projections.NewSliceFeed(nil), projections.Options{Dir: filepath.Join(dir, "projections")})
	if err != nil {
		return nil, err
	}
	defer idx.Close()
	// Identities sealed as nird seals them: a data key made per new person in the bucket
	// NIR_KEYS, the registration's ids and birth date sealed with it (issue 12).
	master, _, err := sealing.NewDataKey()
	if err != nil {
		return nil, err
	}
	dataKeys, err := store.OpenKeyStore(ctx, master)
	if err != nil {
		return nil, err
	}
	defer dataKeys.Close()
	// The same read models are the access index a kommune's append asks before it reads the
	// person (ingest.Config.Access), as in nird: a bbolt read a person.
	svc := ingest.New(ingest.Config{Store: store, Keys: keys, IDs: idx, Access: idx, Sealer: sealing.Events{Keys: dataKeys}})
	js, err := jetstream.New(bare)
	if err != nil {
		return nil, err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: "NIR_BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute, AllowAtomicPublish: true, AllowDirect: true,
	}); err != nil {
		return nil, fmt.Errorf("bench stream: %w", err)
	}

	gen := &generator{perPerson: opt.EventsPerPerson, newIDs: opt.NewIDs}
	// The bare scenarios publish messages of the size nir stores: an hours event with its
	// envelope stamped as the append path stamps it.
	sampleEv := gen.person(0, 0)[2].GetEvent()
	sampleEv.PersonKey = keys.Key("sample")
	sampleEv.Actor = &nirv1.Actor{Subject: "bench", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM}
	sampleEv.RecordedAt = timestamppb.Now()
	sample, err := eventstore.Encode(sampleEv)
	if err != nil {
		return nil, fmt.Errorf("encode sample: %w", err)
	}
	rep := &IngestReport{
		Machine: thisMachine(), Options: opt, EventBytes: len(sample), Ratios: map[string]float64{},
		Durability:  "embedded JetStream, file storage, sync_interval always (every ack is fsynced)",
		Description: "events/s; nir-* go through nir's append path (read person, fold, check, append); bare-* publish messages of the same size straight to JetStream",
	}
	// The nir scenarios append as a kommune's case system does, so that they pay for the
	// access rules (internal/access) as well as for the regelmotor's checks.
	scope := access.For(auth.Principal{Name: "bench", Role: auth.RoleKommune, Kommune: "0301"})
	payload := make([]byte, len(sample))

	// Scenarios are measured in groups (single, batch, concurrent) whose members run in
	// turn, Rounds slices each, so that nir and the bare engine see the same disk: its
	// speed drifts by the minute on a shared machine, and one scenario after the other
	// turned that drift into the ratios.
	type scenario struct {
		name    string
		prepare prepared
	}
	runGroup := func(group ...scenario) error {
		var sel []scenario
		for _, sc := range group {
			if selected(strings.TrimSuffix(sc.name, fmt.Sprintf("-%d", opt.Clients))) {
				sel = append(sel, sc)
			}
		}
		if len(sel) == 0 {
			return nil
		}
		names := make([]string, len(sel))
		for i, sc := range sel {
			names[i] = sc.name
		}
		progress(strings.Join(names, ", "))
		elapsed := make([]time.Duration, len(sel))
		lats := make([][]time.Duration, len(sel))
		batches := make([]uint64, len(sel))
		batchEvents := make([]uint64, len(sel))
		for r := range opt.Rounds {
			n := opt.Events / opt.Rounds
			if r < opt.Events%opt.Rounds {
				n++
			}
			for k := range sel {
				// Every other round in the reverse order: the slot in a round matters (the
				// same scenario run twice in a row measured 0-15 % faster the second time,
				// issue 17), so each scenario takes each slot equally often over an even
				// number of rounds.
				i := k
				if r%2 == 1 {
					i = len(sel) - 1 - k
				}
				sc := sel[i]
				run := sc.prepare(n)
				before := store.Stats()
				start := time.Now()
				lat, err := run()
				if err != nil {
					return fmt.Errorf("%s: %w", sc.name, err)
				}
				elapsed[i] += time.Since(start)
				lats[i] = append(lats[i], lat...)
				after := store.Stats()
				batches[i] += after.Batches - before.Batches
				batchEvents[i] += after.BatchEvents - before.BatchEvents
			}
		}
		for i, sc := range sel {
			res := result(sc.name, opt.Events, elapsed[i], lats[i])
			if batches[i] > 0 {
				res.EventsPerBatch = math.Round(float64(batchEvents[i])/float64(batches[i])*10) / 10
			}
			rep.Results = append(rep.Results, res)
		}
		return nil
	}

	// appends is the timed run of the nir scenarios: one Append per request, made before
	// the clock starts (building them is the case system's work).
	appends := func(requests [][]*nirv1.Registration) func() ([]time.Duration, error) {
		return func() ([]time.Duration, error) {
			lat := make([]time.Duration, 0, len(requests))
			for _, regs := range requests {
				t0 := time.Now()
				if _, err := svc.Append(ctx, scope, regs); err != nil {
					return nil, err
				}
				lat = append(lat, time.Since(t0))
			}
			return lat, nil
		}
	}
	// nirSingles appends n registrations one per Append, persons one after another.
	nirSingles := func(n int) func() ([]time.Duration, error) {
		requests := make([][]*nirv1.Registration, 0, n)
		for len(requests) < n {
			for _, reg := range gen.person(gen.next(), 0) {
				if len(requests) < n {
					requests = append(requests, []*nirv1.Registration{reg})
				}
			}
		}
		return appends(requests)
	}
	// bareSingles publishes n messages one synchronous publish at a time, EventsPerPerson per
	// subject, each checking the subject's last sequence as nir does.
	var subjectSeq atomic.Int64
	bareSingles := func(n int) ([]time.Duration, error) {
		lat := make([]time.Duration, 0, n)
		for i := 0; i < n; {
			subj := "bench.s" + strconv.FormatInt(subjectSeq.Add(1), 10)
			var last uint64
			for j := 0; j < opt.EventsPerPerson && i < n; j++ {
				t0 := time.Now()
				ack, err := js.PublishMsg(ctx, bareMsg(subj, payload, last))
				if err != nil {
					return nil, err
				}
				lat = append(lat, time.Since(t0))
				last = ack.Sequence
				i++
			}
		}
		return lat, nil
	}

	// storeSingles appends n events one per eventstore Append, persons one after another,
	// each with the person's last sequence as its check and NoDuplicates, as the append path
	// calls it. The events are stamped before the clock starts; they go unsealed (sealing is
	// the append path's work, as is everything else store-single leaves out).
	storeSingles := func(n int) func() ([]time.Duration, error) {
		events := make([]*nirv1.Event, 0, n)
		for len(events) < n {
			for _, reg := range gen.person(gen.next(), 0) {
				if len(events) < n {
					ev := reg.GetEvent()
					ev.PersonKey = keys.Key(reg.GetPerson().GetNationalId())
					ev.Actor = &nirv1.Actor{Subject: "bench", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM}
					ev.RecordedAt = timestamppb.Now()
					events = append(events, ev)
				}
			}
		}
		return func() ([]time.Duration, error) {
			lat := make([]time.Duration, 0, n)
			var key string
			var last uint64
			for _, ev := range events {
				if ev.GetPersonKey() != key {
					key, last = ev.GetPersonKey(), 0
				}
				t0 := time.Now()
				pos, err := store.Append(ctx, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(last), Events: []*nirv1.Event{ev}, NoDuplicates: true})
				if err != nil {
					return nil, err
				}
				lat = append(lat, time.Since(t0))
				last = pos[0].Seq
			}
			return lat, nil
		}
	}

	// nirBatches appends n registrations, Batch per Append, whole persons per batch.
	nirBatches := func(n int) func() ([]time.Duration, error) {
		var batches [][]*nirv1.Registration
		for i := 0; i < n; {
			var regs []*nirv1.Registration
			for len(regs) < opt.Batch && i+len(regs) < n {
				regs = append(regs, gen.person(gen.next(), 0)...)
			}
			if over := i + len(regs) - n; over > 0 {
				regs = regs[:len(regs)-over]
			}
			batches = append(batches, regs)
			i += len(regs)
		}
		return appends(batches)
	}

	// bareBatches publishes n messages in atomic batches of size, same size and headers as
	// nir's, with nir's flow control (no ack of the first message).
	bareBatches := func(n, size int) ([]time.Duration, error) {
		var lat []time.Duration
		for i := 0; i < n; {
			var msgs []*nats.Msg
			for len(msgs) < size && i+len(msgs) < n {
				subj := "bench.b" + strconv.FormatInt(subjectSeq.Add(1), 10)
				for j := 0; j < opt.EventsPerPerson && len(msgs) < size && i+len(msgs) < n; j++ {
					m := bareMsg(subj, payload, 0)
					if j > 0 {
						m.Header.Del(jetstream.ExpectedLastSubjSeqHeader)
					}
					msgs = append(msgs, m)
				}
			}
			t0 := time.Now()
			if _, err := jetstreamext.PublishMsgBatch(ctx, js, msgs, jetstreamext.BatchFlowControl{AckFirst: false}); err != nil {
				return nil, err
			}
			lat = append(lat, time.Since(t0))
			i += len(msgs)
		}
		return lat, nil
	}

	// nir-single (every registration its own Append) against bare-sync (one synchronous
	// publish per message, same size and headers), and store-single between them when named.
	if err := runGroup(scenario{"nir-single", nirSingles}, scenario{"store-single", storeSingles}, scenario{"bare-sync", inLoop(bareSingles)}); err != nil {
		return nil, err
	}
	// nir-batch against bare-batch (atomic batches of Batch messages).
	if err := runGroup(scenario{"nir-batch", nirBatches}, scenario{"bare-batch", inLoop(func(n int) ([]time.Duration, error) { return bareBatches(n, opt.Batch) })}); err != nil {
		return nil, err
	}
	if opt.Clients > 0 {
		// bare-coalesced: the engine's ceiling for Clients one-event clients, as if their
		// appends were coalesced at no cost: atomic batches of Clients messages, one after
		// the other (each client has one event outstanding, so a batch holds at most one
		// per client, and they can send again only once it is stored).
		if err := runGroup(
			scenario{fmt.Sprintf("nir-concurrent-%d", opt.Clients), concurrently(opt.Clients, nirSingles)},
			scenario{fmt.Sprintf("bare-concurrent-%d", opt.Clients), concurrently(opt.Clients, inLoop(bareSingles))},
			scenario{fmt.Sprintf("bare-coalesced-%d", opt.Clients), inLoop(func(n int) ([]time.Duration, error) { return bareBatches(n, opt.Clients) })},
		); err != nil {
			return nil, err
		}
	}

	by := map[string]float64{}
	for _, r := range rep.Results {
		by[r.Name] = r.EventsPerSec
	}
	ratio := func(name, nir, bare string) {
		if by[nir] > 0 && by[bare] > 0 {
			rep.Ratios[name] = by[nir] / by[bare]
		}
	}
	ratio("single", "nir-single", "bare-sync")
	ratio("store-single", "store-single", "bare-sync")
	ratio("batch", "nir-batch", "bare-batch")
	if opt.Clients > 0 {
		ratio("concurrent", fmt.Sprintf("nir-concurrent-%d", opt.Clients), fmt.Sprintf("bare-concurrent-%d", opt.Clients))
		ratio("coalesced", fmt.Sprintf("nir-concurrent-%d", opt.Clients), fmt.Sprintf("bare-coalesced-%d", opt.Clients))
	}
	return rep, nil
}

// bareMsg is a message like the ones nir publishes: a message id, and the expected last
// subject sequence as the concurrency check.
func bareMsg(subject string, payload []byte, last uint64) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = payload
	m.Header.Set(jetstream.MsgIDHeader, ulid.Make().String())
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
	return m
}

// prepared makes the inputs of n operations before the clock starts, and returns the timed
// run.
type prepared func(n int) func() ([]time.Duration, error)

// inLoop is a scenario that makes its inputs as it runs: the bare ones build each message
// as they publish it, as nir builds its own messages in its timed path.
func inLoop(f func(n int) ([]time.Duration, error)) prepared {
	return func(n int) func() ([]time.Duration, error) {
		return func() ([]time.Duration, error) { return f(n) }
	}
}

// concurrently splits n operations over c goroutines, prepares each goroutine's share before
// the clock starts, and merges their latencies.
func concurrently(c int, p prepared) prepared {
	return func(n int) func() ([]time.Duration, error) {
		runs := make([]func() ([]time.Duration, error), c)
		for i := range c {
			share := n / c
			if i < n%c {
				share++
			}
			runs[i] = p(share)
		}
		return func() ([]time.Duration, error) {
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				all  []time.Duration
				ferr error
			)
			for _, run := range runs {
				wg.Go(func() {
					lat, err := run()
					mu.Lock()
					defer mu.Unlock()
					if err != nil && ferr == nil {
						ferr = err
					}
					all = append(all, lat...)
				})
			}
			wg.Wait()
			return all, ferr
		}
	}
}

func result(name string, n int, d time.Duration, lat []time.Duration) Result {
	r := Result{Name: name, Events: n, Seconds: d.Seconds(), EventsPerSec: float64(n) / d.Seconds()}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.LatencyP50ms = ms(lat[len(lat)/2])
		r.LatencyP99ms = ms(lat[min(len(lat)-1, int(math.Ceil(float64(len(lat))*0.99))-1)])
	}
	return r
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

// generator makes synthetic persons whose registrations pass the regelmotor: a person under
// integreringsloven, a training vedtak, then monthly norsk hours.
type generator struct {
	perPerson int
	newIDs    bool // register each person with a D-nummer too (IngestOptions.NewIDs)
	n         atomic.Int64
}

func (g *generator) next() int { return int(g.n.Add(1)) }

func (g *generator) person(i int, _ int) []*nirv1.Registration {
	regs := Person(i, g.perPerson)
	if g.newIDs {
		pr := regs[0].GetEvent().GetPersonRegistered()
		birth, _ := rules.DateOf(pr.GetBirthDate())
		pr.DNummer = rules.SyntheticDNummer(birth, i)
	}
	return regs
}

// Person is the i-th synthetic person's registrations, n in all (at least 2), as the ingest
// bench sends them: the registration (integreringsloven, a fødselsnummer from i), a training
// vedtak, then monthly norsk hours from March 2024. BenchmarkServiceAppend sends the same.
func Person(i, n int) []*nirv1.Registration {
	birth := rules.Date{Y: 1970 + i%30, M: time.Month(1 + i%12), D: 1 + i%28}
	id := rules.SyntheticFodselsnummer(birth, i)
	d := func(y, m, day int) *nirv1.Date { return &nirv1.Date{Year: int32(y), Month: int32(m), Day: int32(day)} }
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
		// Months from March 2024; past 30 of them (--events-per-person over 32) the totals
		// are sent again, as a kommune re-sends a corrected month (the later replaces the
		// earlier), so that long histories stay in the past.
		month := 3 + m%30
		regs = append(regs, &nirv1.Registration{Person: ref, Event: &nirv1.Event{Id: ulid.Make().String(), Kommune: "0301",
			Payload: &nirv1.Event_TrainingHoursRegistered{TrainingHoursRegistered: &nirv1.TrainingHoursRegistered{
				Type: nirv1.HoursType_HOURS_TYPE_NORSK, Month: &nirv1.YearMonth{Year: int32(2024 + (month-1)/12), Month: int32(1 + (month-1)%12)},
				Hours: 40, AbsenceHours: 2,
			}}}})
	}
	return regs
}
