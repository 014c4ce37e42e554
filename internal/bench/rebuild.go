package bench

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/demo"
	"github.com/introreg/nir/internal/feed"
	"github.com/introreg/nir/internal/personkey"
	streamcheck "github.com/introreg/nir/internal/verify"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/sealing"
)

// Defaults of RebuildOptions.
const (
	DefaultRebuildPersons     = 100000
	DefaultRebuildSeed        = 1
	DefaultRebuildKommune     = "0301" // Oslo
	DefaultRebuildShare       = 0.2
	DefaultRebuildQueries     = 200
	DefaultRebuildCSVRuns     = 5
	DefaultLoadConcurrency    = 4
	DefaultBarePullMaxMessage = 2000
	// rebuildMarker records in a kept directory which population its stream holds.
	rebuildMarker = "bench-rebuild.json"
)

// DefaultRebuildNow is the population's "today" unless RebuildOptions.Now is set: fixed, so
// that a population loaded into a kept directory is the same on every run.
var DefaultRebuildNow = rules.MustDate(2026, time.September, 30)

// The register's performance goals, measured by Rebuild (stated for the 2-core machine).
const (
	GoalRebuildRatio = 0.5 // rebuild events/s at least half of the bare ordered-consumer replay
	// Issue 17: a rebuild at the bare replay's speed, and a million events in under 5 s. On
	// 2 cores only the rebuild from the live file reaches it (see the README).
	GoalFromFileRatio   = 1.0
	GoalMillionSeconds  = 5.0
	GoalPeakMemoryBytes = 1 << 30 // peak memory during the rebuild under 1 GiB
	GoalQueryP99ms      = 20.0    // person-list query of a 20 000-person kommune, p99
	GoalQueryPersons    = 20000   // the kommune size the query goal is stated for
	GoalCSVRowsPerSec   = 100000  // CSV export
)

// RebuildOptions configures the rebuild benchmark. Zero values mean the defaults.
type RebuildOptions struct {
	// Persons in the synthetic population (default 100 000, about 2.5M events).
	Persons int `json:"persons"`
	// Seed and Now make the population (internal/demo); Now defaults to DefaultRebuildNow.
	Seed int64      `json:"seed"`
	Now  rules.Date `json:"-"`
	// Kommune is the kommune the query and CSV figures are measured on (default 0301), and
	// KommuneShare the share of all persons whose bostedskommune it is made to be (default
	// 0.2, so 100 000 persons give a 20 000-person kommune). Persons the generator already
	// put there count towards the share; others are moved there (their current kommune's
	// number replaced by Kommune in all their events) until the share is reached. A
	// negative share keeps the generator's spread.
	Kommune      string  `json:"kommune"`
	KommuneShare float64 `json:"kommune_share"`
	// Dir keeps the embedded server's store (and the read models) across runs: a stream that
	// already holds this population is not loaded again. Empty: a temporary directory,
	// removed at the end.
	Dir string `json:"dir,omitempty"`
	// LoadConcurrency is how many atomic batches are in flight while loading (default 4).
	LoadConcurrency int `json:"load_concurrency"`
	// Queries is the number of person-list queries timed (default 200); CSVRuns how many
	// times the kommune is exported (default 5).
	Queries int `json:"queries"`
	CSVRuns int `json:"csv_runs"`
	// Runs is how many times each replay and the rebuild are run; the fastest run is
	// reported (default 1), and the highest memory peak.
	Runs int `json:"runs"`
	// StateCache is projections.Options.StateCache: the folded person states the rebuild
	// keeps between transactions (0: the projections default, as nird runs it).
	StateCache int `json:"state_cache,omitempty"`
	// Verify also builds the models by a plain catch-up in a second directory and checks
	// that its dump equals the rebuilt models' dump.
	Verify bool `json:"verify"`
	// CPUProfile, when set, is the file the rebuild's CPU profile (its last run) is written to.
	CPUProfile string `json:"cpu_profile,omitempty"`
	// Trace, when set, is the file an execution trace of the rebuild from the live file
	// (its last run) is written to: go tool trace FILE shows which goroutines kept the
	// cores busy and where they waited.
	Trace string `json:"trace,omitempty"`
	// MemProfile, when set, is the file the allocations of the rebuild from the live file
	// (its last run) are written to, those before it to MemProfile.base: go tool pprof
	// -sample_index=alloc_space -base FILE.base FILE.
	MemProfile string `json:"mem_profile,omitempty"`
	// FromFileOnly measures only what comparing builds of the rebuild from the live file
	// needs: the bare replay, the live models (one rebuild from the stream, one run), and
	// the rebuilds and as-of replays from the live file, each in turns with a bare replay. No
	// other replay, no queries, CSV, damage checks or verify: a run at 1.1 M events took
	// 30-39 s, against 58-77 s for the whole measurement with one query and one CSV run.
	FromFileOnly bool `json:"from_file_only,omitempty"`
}

func (o *RebuildOptions) defaults() error {
	if o.Persons <= 0 {
		o.Persons = DefaultRebuildPersons
	}
	if o.Seed == 0 {
		o.Seed = DefaultRebuildSeed
	}
	if o.Now.IsZero() {
		o.Now = DefaultRebuildNow
	}
	if o.Kommune == "" {
		o.Kommune = DefaultRebuildKommune
	}
	// Persons are moved to the kommune over their whole history, so it must be valid from
	// the start of the kommune table to now (Oslo's 0301 is).
	for _, d := range []rules.Date{rules.KommuneTableStart, o.Now} {
		if _, err := rules.LookupKommune(o.Kommune, d); err != nil {
			return fmt.Errorf("bench rebuild: kommune %q is not a kommunenummer valid from %s to %s", o.Kommune, rules.KommuneTableStart, o.Now)
		}
	}
	if o.KommuneShare == 0 {
		o.KommuneShare = DefaultRebuildShare
	}
	if o.KommuneShare > 1 {
		return fmt.Errorf("bench rebuild: kommune share %v is above 1", o.KommuneShare)
	}
	if o.FromFileOnly && o.Verify {
		return fmt.Errorf("bench rebuild: verify is not run with from-file-only (it compares the rebuild from the stream)")
	}
	if o.LoadConcurrency <= 0 {
		o.LoadConcurrency = DefaultLoadConcurrency
	}
	if o.Queries <= 0 {
		o.Queries = DefaultRebuildQueries
	}
	if o.Runs <= 0 {
		o.Runs = 1
	}
	if o.CSVRuns <= 0 {
		o.CSVRuns = DefaultRebuildCSVRuns
	}
	return nil
}

// RebuildReport is the outcome of Rebuild.
type RebuildReport struct {
	Machine    Machine        `json:"machine"`
	Options    RebuildOptions `json:"options"`
	Now        string         `json:"now"`
	Population Population     `json:"population"`
	// Results: bare-replay (ordered consumer, no decoding), bare-replay-decode (the same,
	// decoding every event with eventstore.Decode), store-replay (eventstore.Replay, the
	// feed a rebuild reads), rebuild (Projector.RebuildFromStream of all models, swap
	// included).
	Results []Stage `json:"results"`
	// Ratio is rebuild / bare-replay events/s (the goal); RatioDecode rebuild /
	// bare-replay-decode. RatioCPU is rebuild / bare-replay in events per CPU-second, which
	// a busy machine distorts less than wall time (both run in this process, the embedded
	// server's work included).
	Ratio       float64 `json:"ratio"`
	RatioDecode float64 `json:"ratio_decode"`
	RatioCPU    float64 `json:"ratio_cpu"`
	// RatioVerify is nirctl verify's walk (decode, chain, ids) / bare-replay events/s.
	RatioVerify float64 `json:"ratio_verify"`
	// RatioParallel is rebuild / bare-replay-parallel-N events/s: against the best bare
	// read found, one ordered consumer per CPU over ranges of sequences.
	RatioParallel float64 `json:"ratio_parallel"`
	// RatioSealing is rebuild / rebuild-unopened events/s: the same rebuild of the same sealed
	// stream without opening the identities, measured in turns with it; 1 - RatioSealing is
	// what the decryption adds (issue 12: less than 10 %).
	RatioSealing float64 `json:"ratio_sealing"`
	// StoreSeconds and FoldSeconds split the fastest rebuild into its two passes: storing
	// the events as read from the stream, then folding every person and writing the models
	// (the rest, up to the rebuild's seconds, is the swap).
	StoreSeconds float64 `json:"store_seconds"`
	FoldSeconds  float64 `json:"fold_seconds"`
	// FromFile is the rebuild that takes the live file's events through the stream's last
	// signed checkpoint (Projector.Rebuild, the default), timed in turns with a bare replay
	// (BareInTurns, the fastest of those turns); RatioFromFile is FromFile / BareInTurns
	// events/s. FromFileStoreSeconds and FromFileFoldSeconds split its fastest run as
	// StoreSeconds and FoldSeconds split the rebuild from the stream; MemoryFromFile is its
	// peak memory.
	FromFile Stage `json:"from_file"`
	// AsOfFromFile is an as-of replay to now (every event kept) the same way (Projector.AsOf),
	// also in turns with a bare replay (AsOfBareInTurns, the fastest of its turns);
	// RatioAsOfFromFile its events/s / AsOfBareInTurns'.
	AsOfFromFile         Stage   `json:"as_of_from_file"`
	RatioAsOfFromFile    float64 `json:"ratio_as_of_from_file"`
	AsOfBareInTurns      Stage   `json:"as_of_bare_in_turns"`
	BareInTurns          Stage   `json:"bare_in_turns"`
	RatioFromFile        float64 `json:"ratio_from_file"`
	FromFileStoreSeconds float64 `json:"from_file_store_seconds"`
	FromFileFoldSeconds  float64 `json:"from_file_fold_seconds"`
	MemoryFromFile       Memory  `json:"memory_from_file"`
	// ModelsBytes is the size of the rebuilt read-model file.
	ModelsBytes int64       `json:"models_bytes"`
	Memory      Memory      `json:"memory"`
	Query       QueryResult `json:"query"`
	CSV         CSVResult   `json:"csv"`
	// Check is the cost of checking the rebuilt file for damage.
	Check ModelCheck `json:"check"`
	// Verified is set with Options.Verify: the rebuilt models equal a catch-up's.
	Verified    *bool  `json:"verified,omitempty"`
	Goals       []Goal `json:"goals"`
	Description string `json:"description"`
}

// Stage is a measured scenario with the process's CPU time spent in it.
type Stage struct {
	Result
	CPUSeconds      float64 `json:"cpu_seconds"`
	EventsPerCPUSec float64 `json:"events_per_cpu_sec"`
	// Memory is the memory sampled while the stage ran (of several runs, the one with the
	// highest peak RSS): every stage, nir's and the bare ones, is sampled the same way.
	Memory *Memory `json:"memory,omitempty"`
}

// timeStage runs f and measures its wall and CPU time.
func timeStage(name string, f func() (int, error)) (Stage, error) {
	return timePrepared(name, nil, f)
}

// prepareFunc runs before a stage's clock starts; the finish it returns, when not nil, runs
// after the clock stops. What a measurement of one stage needs and the register does not
// (starting and stopping a profile, writing an allocation profile) goes there; what every
// stage needs (the memory returned to the OS, the memory sampler) timePrepared does for
// every stage alike. Before 2026-12-07 the
// rebuilds' debug.FreeOSMemory, a full collection and an madvise of every free page, was
// inside their clock and not inside the bare replays' (TestTimePrepared_PrepareNotTimed).
type prepareFunc func() (finish func() error, err error)

// timePrepared is timeStage with prepare, when not nil, run before the clock starts and its
// finish after it stops.
func timePrepared(name string, prepare prepareFunc, f func() (int, error)) (Stage, error) {
	var finish func() error
	if prepare != nil {
		var err error
		if finish, err = prepare(); err != nil {
			return Stage{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	// Every stage, nir's and the bare ones its figures are divided by, is timed the same way
	// (TestTimePrepared_EveryStageSampled): it starts from a collected heap whose free pages
	// are returned to the OS, so that its peak memory starts from the heap in use and every
	// stage grows its heap again alike, and a memory sampler runs through it, started before
	// its clock and stopped after. Before 2026-12-07 only the rebuilds had either, the
	// sampler's start and stop inside their clock.
	debug.FreeOSMemory()
	sampler := startMemSampler()
	cpu0 := cpuTime()
	t0 := time.Now()
	n, err := f()
	d := time.Since(t0)
	cpu := cpuTime() - cpu0
	mem := sampler.stop()
	if finish != nil {
		if ferr := finish(); err == nil {
			err = ferr
		}
	}
	if err != nil {
		return Stage{}, fmt.Errorf("%s: %w", name, err)
	}
	st := Stage{Result: result(name, n, d, nil), CPUSeconds: cpu.Seconds(), Memory: &mem}
	if cpu > 0 {
		st.EventsPerCPUSec = float64(n) / cpu.Seconds()
	}
	return st, nil
}

// bestStage runs a stage runs times and keeps the fastest run: on a shared machine the
// slower runs measure the other processes.
func bestStage(runs int, name string, f func() (int, error)) (Stage, error) {
	return bestStageInTurns(runs, name, nil, f, nil)
}

// bestStageInTurns is bestStage with turn, when not nil, run before each run of f, untimed
// (two scenarios measured in turns see the same drift of the disk), and prepare as
// timePrepared runs it.
func bestStageInTurns(runs int, name string, prepare prepareFunc, f func() (int, error), turn func() error) (Stage, error) {
	var best Stage
	var peak *Memory
	for i := range runs {
		if turn != nil {
			if err := turn(); err != nil {
				return Stage{}, err
			}
		}
		st, err := timePrepared(name, prepare, f)
		if err != nil {
			return Stage{}, err
		}
		if peak == nil || st.Memory.PeakRSSBytes >= peak.PeakRSSBytes {
			peak = st.Memory
		}
		if i == 0 || st.EventsPerSec > best.EventsPerSec {
			best = st
		}
	}
	best.Memory = peak
	return best, nil
}

// Population describes the stream the benchmark ran on.
type Population struct {
	Persons int    `json:"persons"`
	Events  uint64 `json:"events"`
	// StreamBytes is the stream's stored size.
	StreamBytes uint64 `json:"stream_bytes"`
	// Loaded is false when a kept directory already held the population.
	Loaded           bool    `json:"loaded"`
	LoadSeconds      float64 `json:"load_seconds,omitempty"`
	LoadEventsPerSec float64 `json:"load_events_per_sec,omitempty"`
	LoadBatches      uint64  `json:"load_batches,omitempty"`
	// MovedToKommune is how many persons were moved to Options.Kommune to reach the share.
	MovedToKommune int `json:"moved_to_kommune,omitempty"`
}

// Memory is the memory used while the rebuild ran (the embedded server's included: it runs
// in the same process).
type Memory struct {
	// PeakRSSBytes is the resident set's high-water mark during the rebuild: VmHWM after
	// resetting it before the rebuild, or the highest sampled RSS where the reset is not
	// allowed (PeakRSSSource says which).
	PeakRSSBytes  uint64 `json:"peak_rss_bytes"`
	PeakRSSSource string `json:"peak_rss_source"`
	// PeakAnonRSSBytes is the highest sampled anonymous resident memory (RssAnon: the Go
	// heap, the embedded server's included). The rest of the RSS is mostly file pages of the
	// read-model file that bbolt maps, which the kernel can reclaim.
	PeakAnonRSSBytes uint64 `json:"peak_anon_rss_bytes"`
	// ProcessMaxRSSBytes is getrusage's ru_maxrss at the end of the rebuild (since the last
	// reset, or since the process started).
	ProcessMaxRSSBytes uint64 `json:"process_max_rss_bytes"`
	// PeakHeapBytes is the highest sampled Go heap (objects, live and not yet swept), and
	// PeakGoTotalBytes the highest sampled memory mapped by the Go runtime, minus released.
	PeakHeapBytes    uint64 `json:"peak_heap_bytes"`
	PeakGoTotalBytes uint64 `json:"peak_go_total_bytes"`
}

// QueryResult is the person-list query latency on Options.Kommune.
type QueryResult struct {
	Kommune string `json:"kommune"`
	Persons int    `json:"persons"`
	Queries int    `json:"queries"`
	// ColdMs is the first query, which decodes the kommune's list (later ones hit the
	// decoded-list cache until the next apply touches the kommune).
	ColdMs float64 `json:"cold_ms"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	// ByQuery breaks the latencies down by query (index into the queries of benchQueries).
	ByQuery []QueryKind `json:"by_query"`
}

// QueryKind is the latency of one of the timed queries.
type QueryKind struct {
	Query string  `json:"query"`
	Rows  int     `json:"rows"` // rows matching the filters
	Runs  int     `json:"runs"`
	P50ms float64 `json:"p50_ms"`
	MaxMs float64 `json:"max_ms"`
}

// CSVResult is the CSV export of the whole kommune to io.Discard, unsorted (streamed from
// the file) with national ids, as the kommune's own export.
type CSVResult struct {
	Rows       int     `json:"rows"`
	Runs       int     `json:"runs"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_sec"`
	// SortedRowsPerSec is the same export sorted by birth date (sorted in memory).
	SortedRowsPerSec float64 `json:"sorted_rows_per_sec"`
}

// ModelCheck is what checking the rebuilt read-model file for damage costs: the page walk
// done before every open (StructureSeconds), the same with every value's checksum
// (ValuesSeconds), projections.New on the file with its default start-up check (NewSeconds:
// the walk and bbolt's own open, which scans every page too), and the operator's verify of
// the live file (VerifySeconds: a consistent copy, the walk with checksums, bbolt's Tx.Check).
type ModelCheck struct {
	Bytes            int64   `json:"bytes"`
	Pages            uint64  `json:"pages"`
	Values           uint64  `json:"values"`
	StructureSeconds float64 `json:"structure_seconds"`
	ValuesSeconds    float64 `json:"values_seconds"`
	NewSeconds       float64 `json:"new_seconds"`
	VerifySeconds    float64 `json:"verify_seconds"`
}

// measureCheck times the damage checks of the live file in modelsDir; proj must be closed.
func measureCheck(ctx context.Context, f projections.Feed, modelsDir string, open func(*nirv1.Event) error) (ModelCheck, error) {
	var mc ModelCheck
	path := filepath.Join(modelsDir, "models.db")
	t0 := time.Now()
	fc, err := projections.CheckFile(path, false)
	if err != nil {
		return mc, err
	}
	mc.StructureSeconds = time.Since(t0).Seconds()
	mc.Bytes, mc.Pages = fc.Size, fc.Pages
	t0 = time.Now()
	if fc, err = projections.CheckFile(path, true); err != nil {
		return mc, err
	}
	mc.ValuesSeconds, mc.Values = time.Since(t0).Seconds(), fc.Values
	t0 = time.Now()
	proj, err := projections.New(f, projections.Options{Dir: modelsDir, Open: open})
	if err != nil {
		return mc, err
	}
	defer proj.Close()
	mc.NewSeconds = time.Since(t0).Seconds()
	rep, err := proj.Verify(ctx)
	if err != nil {
		return mc, err
	}
	if len(rep.Problems) > 0 {
		return mc, fmt.Errorf("verify of the rebuilt models: %v", rep.Problems)
	}
	mc.VerifySeconds = rep.Seconds
	return mc, nil
}

// Goal is one performance goal with the measured value.
type Goal struct {
	Name     string  `json:"name"`
	Target   string  `json:"target"`
	Measured float64 `json:"measured"`
	Unit     string  `json:"unit"`
	Pass     bool    `json:"pass"`
	Note     string  `json:"note,omitempty"`
}

// populationMarker is written to a kept directory after loading.
type populationMarker struct {
	Persons int     `json:"persons"`
	Seed    int64   `json:"seed"`
	Now     string  `json:"now"`
	Kommune string  `json:"kommune"`
	Share   float64 `json:"kommune_share"`
	// Sealed says how the identities were sealed at load, as nird stores them (issue 12):
	// "data_key_id", each sealed event naming its key.
	Sealed string `json:"sealed"`
	Events uint64 `json:"events"`
	Moved  int    `json:"moved_to_kommune"`
}

// benchActor is the actor stamped on loaded events: a kommune's case system, as most
// registrations come from.
var benchActor = &nirv1.Actor{Subject: "bench-fagsystem", Role: nirv1.ActorRole_ACTOR_ROLE_KOMMUNE, System: "nirbench rebuild"}

// Rebuild measures the rebuild of all read models against the bare replay of the same
// stream, in one run on one embedded JetStream server:
//
//  1. load (setup): Persons synthetic persons from internal/demo, stamped as nird's append
//     path stamps them, appended in atomic batches of whole persons (skipped when
//     Options.Dir already holds the population);
//  2. bare replay: an ordered consumer over the whole stream, without and with decoding,
//     and eventstore.Replay (what the rebuild's feed reads);
//  3. rebuild: projections.Projector.Rebuild over internal/feed, with peak memory;
//  4. person-list queries (ListPersons, typical filters and sorts) on Options.Kommune;
//  5. CSV export of the whole kommune;
//  6. the damage checks of the models file (ModelCheck).
//
// progress (may be nil) gets a line per stage.
func Rebuild(ctx context.Context, opt RebuildOptions, progress func(string)) (*RebuildReport, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = func(string) {}
	}
	dir := opt.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "nir-bench-rebuild")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(dir, "jetstream")})
	if err != nil {
		return nil, err
	}
	defer store.Close()

	rep := &RebuildReport{
		Machine: thisMachine(), Options: opt, Now: opt.Now.String(),
		Description: "events/s over the whole stream on one embedded JetStream server (file storage, every write fsynced); " +
			"bare-replay is an ordered consumer reading every message and its metadata, decoding nothing; " +
			"rebuild is Projector.Rebuild of all read models through internal/feed, swap included",
	}
	// The master key lives beside a kept stream, so that a later run opens its keys.
	master, err := sealing.LoadMaster(filepath.Join(dir, "master.key"), true)
	if err != nil {
		return nil, err
	}
	keys, err := store.OpenKeyStore(ctx, master)
	if err != nil {
		return nil, err
	}
	defer keys.Close()
	sealer := sealing.Events{Keys: keys}
	pop, err := loadPopulation(ctx, store, sealer, dir, opt, progress)
	if err != nil {
		return nil, err
	}
	rep.Population = *pop
	last := pop.Events

	js, err := jetstream.New(store.Conn())
	if err != nil {
		return nil, err
	}
	if info, err := js.Stream(ctx, eventstore.StreamName); err == nil {
		rep.Population.StreamBytes = info.CachedInfo().State.Bytes
	}

	// Bare replays, then the rebuild, each with a collected heap, so none pays for the
	// garbage of the stage before.
	decodes := []bool{false, true}
	if opt.FromFileOnly {
		decodes = decodes[:1]
	}
	for _, decode := range decodes {
		name := "bare-replay"
		if decode {
			name = "bare-replay-decode"
		}
		progress(name)
		st, err := bestStage(opt.Runs, name, func() (int, error) { return bareReplay(ctx, js, last, decode) })
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, st)
	}
	if !opt.FromFileOnly {
		if err := otherReplays(ctx, rep, store, js, last, opt, progress); err != nil {
			return nil, err
		}
	}

	f, err := feed.New(store)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	modelsDir := filepath.Join(dir, "models")
	if err := os.RemoveAll(modelsDir); err != nil {
		return nil, err
	}
	defer os.RemoveAll(modelsDir)
	proj, err := projections.New(f, projections.Options{Dir: modelsDir, StateCache: opt.StateCache, Open: sealer.Opener()})
	if err != nil {
		return nil, err
	}
	defer proj.Close()
	// The same rebuild without opening the sealed identities: what the decryption adds
	// (issue 12 asks for less than 10 %), measured in turns with the rebuild. Its projector
	// lives for its own turn only, so that its file is not mapped during the rebuild's.
	unopenedDir := filepath.Join(dir, "models-unopened")
	defer os.RemoveAll(unopenedDir)

	progress(fmt.Sprintf("rebuild of %d events", last))
	lastReport := time.Now()
	var storeD, foldD time.Duration
	var unopenedBest Stage
	// In turns: the rebuild without opening first, then the rebuild.
	turn := func() error {
		if err := os.RemoveAll(unopenedDir); err != nil {
			return err
		}
		unopened, err := projections.New(f, projections.Options{Dir: unopenedDir, StateCache: opt.StateCache})
		if err != nil {
			return err
		}
		u, err := timePrepared("rebuild-unopened", nil, func() (int, error) {
			return int(last), unopened.RebuildFromStream(ctx, func(projections.Progress) {})
		})
		if cerr := unopened.Close(); err == nil {
			err = cerr
		}
		if rerr := os.RemoveAll(unopenedDir); err == nil {
			err = rerr
		}
		if err == nil && (unopenedBest.Name == "" || u.EventsPerSec > unopenedBest.EventsPerSec) {
			unopenedBest = u
		}
		return err
	}
	// timed runs one rebuild with rb, keeping the fastest run's passes in best (its memory is
	// sampled by timePrepared, as every stage's is).
	timed := func(name string, rb func(context.Context, func(projections.Progress)) error, best *[2]time.Duration, fromFile *uint64) (int, error) {
		var folding time.Time
		t0 := time.Now()
		err := rb(ctx, func(p projections.Progress) {
			*fromFile = p.FromFile
			if p.Phase == projections.PhaseFold && folding.IsZero() {
				folding = time.Now()
			}
			if p.Phase == projections.PhaseFold && p.Done == p.Total {
				// The last fold transaction: the swap follows.
				s, f := folding.Sub(t0), time.Since(folding)
				if best[0] == 0 || s+f < best[0]+best[1] {
					best[0], best[1] = s, f
				}
			}
			if time.Since(lastReport) >= 5*time.Second {
				lastReport = time.Now()
				progress(fmt.Sprintf("%s %d/%d events, %.0f events/s, ETA %s", name, p.Done, p.Total, p.Rate, p.ETA.Round(time.Second)))
			}
		})
		return int(last), err
	}
	var passes [2]time.Duration
	var fromFile uint64
	runs := opt.Runs
	if opt.FromFileOnly {
		// The live models only: one run, without the turns of the unopened rebuild.
		runs, turn = 1, func() error { return nil }
	}
	rebuild, err := bestStageInTurns(runs, "rebuild", recording(opt.CPUProfile, "", ""), func() (int, error) {
		return timed("rebuild", proj.RebuildFromStream, &passes, &fromFile)
	}, turn)
	if err != nil {
		return nil, err
	}
	storeD, foldD = passes[0], passes[1]
	if rebuild.Memory != nil { // nil only with no run
		rep.Memory = *rebuild.Memory
	}
	rep.Results = append(rep.Results, rebuild)
	if unopenedBest.Events > 0 {
		rep.Results = append(rep.Results, unopenedBest)
		rep.RatioSealing = rebuild.EventsPerSec / unopenedBest.EventsPerSec
	}
	rep.StoreSeconds, rep.FoldSeconds = storeD.Seconds(), foldD.Seconds()
	if st, err := os.Stat(filepath.Join(modelsDir, "models.db")); err == nil {
		rep.ModelsBytes = st.Size()
	}
	bare := rep.Results[0]
	rep.Ratio = rebuild.EventsPerSec / bare.EventsPerSec
	if st, ok := rep.result("bare-replay-decode"); ok {
		rep.RatioDecode = rebuild.EventsPerSec / st.EventsPerSec
	}
	if st, ok := rep.result(parallelReplayName()); ok {
		rep.RatioParallel = rebuild.EventsPerSec / st.EventsPerSec
	}
	if bare.EventsPerCPUSec > 0 {
		rep.RatioCPU = rebuild.EventsPerCPUSec / bare.EventsPerCPUSec
	}

	// The rebuild as nird runs it: the live file's events through the stream's last signed
	// checkpoint are taken from the file, in turns with a bare replay.
	progress("checkpoints over the stream (setup, as nird makes them)")
	cpKey, err := eventstore.LoadCheckpointKey(filepath.Join(dir, "checkpoint.key"), true)
	if err != nil {
		return nil, err
	}
	if err := checkpointThrough(ctx, store, cpKey, last); err != nil {
		return nil, err
	}
	f.TrustCheckpoints(cpKey.Public().(ed25519.PublicKey))
	progress(fmt.Sprintf("rebuild from the live file of %d events, in turns with a bare replay", last))
	var ffPasses [2]time.Duration
	// bareTurn times a bare replay, keeping the fastest in *best: each stage's ratio is to
	// the bare replays of its own turns.
	bareTurn := func(best *Stage) func() error {
		return func() error {
			st, err := timeStage("bare-replay-in-turns", func() (int, error) { return bareReplay(ctx, js, last, false) })
			if err == nil && st.EventsPerSec > best.EventsPerSec {
				*best = st
			}
			return err
		}
	}
	var cpuFromFile string
	if opt.CPUProfile != "" {
		cpuFromFile = opt.CPUProfile + ".from-file"
	}
	rep.FromFile, err = bestStageInTurns(opt.Runs, "rebuild-from-file", recording(cpuFromFile, opt.Trace, opt.MemProfile), func() (int, error) {
		fromFile = 0
		n, err := timed("rebuild from the live file", proj.Rebuild, &ffPasses, &fromFile)
		if err == nil && fromFile != last {
			err = fmt.Errorf("the rebuild took the live file's events through seq %d, not %d: the checkpoints do not cover the stream", fromFile, last)
		}
		return n, err
	}, bareTurn(&rep.BareInTurns))
	if err != nil {
		return nil, err
	}
	if rep.FromFile.Memory != nil {
		rep.MemoryFromFile = *rep.FromFile.Memory
	}
	rep.RatioFromFile = rep.FromFile.EventsPerSec / rep.BareInTurns.EventsPerSec

	// An as-of replay (a snapshot) to now, which keeps every event, the same way, in turns
	// with a bare replay.
	progress(fmt.Sprintf("as-of replay from the live file of %d events, in turns with a bare replay", last))
	rep.AsOfFromFile, err = bestStageInTurns(opt.Runs, "as-of-from-file", nil, func() (int, error) {
		var through uint64
		db, err := proj.AsOf(ctx, projections.AsOfOptions{RecordedUntil: time.Now(), Progress: func(p projections.Progress) { through = max(through, p.FromFile) }})
		if err == nil {
			err = db.Close()
		}
		if err == nil && through != last {
			err = fmt.Errorf("the as-of replay took the live file's events through seq %d, not %d", through, last)
		}
		return int(last), err
	}, bareTurn(&rep.AsOfBareInTurns))
	if err != nil {
		return nil, err
	}
	rep.RatioAsOfFromFile = rep.AsOfFromFile.EventsPerSec / rep.AsOfBareInTurns.EventsPerSec
	rep.FromFileStoreSeconds, rep.FromFileFoldSeconds = ffPasses[0].Seconds(), ffPasses[1].Seconds()
	if opt.FromFileOnly {
		rep.Goals = goals(rep)
		return rep, nil
	}

	progress(fmt.Sprintf("%d person-list queries on kommune %s", opt.Queries, opt.Kommune))
	q, err := measureQueries(proj, opt)
	if err != nil {
		return nil, err
	}
	rep.Query = *q
	progress(fmt.Sprintf("CSV export of kommune %s", opt.Kommune))
	c, err := measureCSV(proj, opt)
	if err != nil {
		return nil, err
	}
	rep.CSV = *c

	progress("damage checks of the models file")
	if err := proj.Close(); err != nil {
		return nil, err
	}
	if rep.Check, err = measureCheck(ctx, f, modelsDir, sealer.Opener()); err != nil {
		return nil, err
	}
	if proj, err = projections.New(f, projections.Options{Dir: modelsDir, StateCache: opt.StateCache, Open: sealer.Opener()}); err != nil {
		return nil, err
	}
	defer proj.Close()

	if opt.Verify {
		progress("verify: catch-up into a second directory")
		ok, err := verify(ctx, proj, f, filepath.Join(dir, "models-verify"), sealer.Opener())
		if err != nil {
			return nil, err
		}
		rep.Verified = &ok
	}
	rep.Goals = goals(rep)
	return rep, nil
}

// result returns the stage named name.
func (rep *RebuildReport) result(name string) (Stage, bool) {
	for _, st := range rep.Results {
		if st.Name == name {
			return st, true
		}
	}
	return Stage{}, false
}

// parallelReaders is how many ordered consumers the best bare read found uses: one per CPU.
func parallelReaders() int { return max(2, runtime.NumCPU()) }

// parallelReplayName is the name of that read's stage.
func parallelReplayName() string {
	return fmt.Sprintf("bare-replay-parallel-%d", parallelReaders())
}

// otherReplays measures the replays besides the bare one: the best bare read found (one
// ordered consumer per CPU), the store's replay, and verify.
func otherReplays(ctx context.Context, rep *RebuildReport, store *eventstore.Store, js jetstream.JetStream, last uint64, opt RebuildOptions, progress func(string)) error {
	// The best bare figure found: the stream read by one ordered consumer per CPU, each
	// over its own range of sequences (issue 17 asks for it beside the single consumer).
	readers := parallelReaders()
	name := parallelReplayName()
	progress(name)
	pst, err := bestStage(opt.Runs, name, func() (int, error) { return bareReplayParallel(ctx, js, last, readers) })
	if err != nil {
		return err
	}
	rep.Results = append(rep.Results, pst)
	progress("store-replay")
	st, err := bestStage(opt.Runs, "store-replay", func() (int, error) {
		n := 0
		for _, err := range store.Replay(ctx, eventstore.ReplayOptions{From: 1, To: last}) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	})
	if err != nil {
		return err
	}
	rep.Results = append(rep.Results, st)
	progress("verify")
	vst, err := bestStage(opt.Runs, "verify", func() (int, error) {
		r, err := streamcheck.Stream(ctx, store, streamcheck.Options{Through: last})
		if err == nil && !r.OK() {
			err = fmt.Errorf("verify found %d problems in the benchmark's stream, the first: %+v", len(r.Problems), r.Problems[0])
		}
		return int(r.Messages), err
	})
	if err != nil {
		return err
	}
	rep.Results = append(rep.Results, vst)
	rep.RatioVerify = vst.EventsPerSec / rep.Results[0].EventsPerSec
	return nil
}

// checkpointThrough makes signed checkpoints, as nird's checkpointer does, until one covers
// seq (a kept stream has them from an earlier run).
func checkpointThrough(ctx context.Context, store *eventstore.Store, key ed25519.PrivateKey, seq uint64) error {
	cps, err := store.Checkpoints(ctx)
	if err != nil {
		return err
	}
	if n := len(cps); n > 0 && cps[n-1].Checkpoint.GetStreamSeq() >= seq {
		if err := eventstore.CheckSignature(cps[n-1].Checkpoint, key.Public().(ed25519.PublicKey)); err != nil {
			return fmt.Errorf("the stream's last checkpoint is not signed by the benchmark's key: %w", err)
		}
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var done atomic.Bool
	err = store.RunCheckpoints(cctx, eventstore.CheckpointOptions{Poll: 50 * time.Millisecond, Interval: 100 * time.Millisecond, Key: key, Made: func(cp *nirv1.Checkpoint) {
		if cp.GetStreamSeq() >= seq {
			done.Store(true)
			cancel()
		}
	}})
	if !done.Load() {
		return fmt.Errorf("no checkpoint through seq %d within 10 minutes (%v)", seq, err)
	}
	return nil
}

// loadPopulation fills the stream with the population, or checks that a kept directory
// already holds it.
func loadPopulation(ctx context.Context, store *eventstore.Store, sealer sealing.Events, dir string, opt RebuildOptions, progress func(string)) (*Population, error) {
	want := populationMarker{Persons: opt.Persons, Seed: opt.Seed, Now: opt.Now.String(), Kommune: opt.Kommune, Share: opt.KommuneShare, Sealed: "data_key_id"}
	last, err := store.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	markerPath := filepath.Join(dir, rebuildMarker)
	if last > 0 {
		b, err := os.ReadFile(markerPath)
		if err != nil {
			return nil, fmt.Errorf("bench rebuild: %s holds a stream of %d events but no %s: use an empty directory", dir, last, rebuildMarker)
		}
		var have populationMarker
		if err := json.Unmarshal(b, &have); err != nil {
			return nil, fmt.Errorf("bench rebuild: %s: %w", markerPath, err)
		}
		got := have
		got.Events, got.Moved = 0, 0
		if got != want || have.Events != last {
			return nil, fmt.Errorf("bench rebuild: %s holds another population (%d persons, seed %d, now %s, kommune %s share %v, %d of %d events): use another directory",
				dir, have.Persons, have.Seed, have.Now, have.Kommune, have.Share, last, have.Events)
		}
		progress(fmt.Sprintf("reusing the %d events of %d persons in %s", last, have.Persons, dir))
		return &Population{Persons: have.Persons, Events: last, MovedToKommune: have.Moved}, nil
	}

	progress(fmt.Sprintf("loading %d persons", opt.Persons))
	pop, err := load(ctx, store, sealer, opt, progress)
	if err != nil {
		return nil, err
	}
	if opt.Dir != "" {
		want.Events, want.Moved = pop.Events, pop.MovedToKommune
		b, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(markerPath, b, 0o600); err != nil {
			return nil, err
		}
	}
	return pop, nil
}

// load generates the population and appends it in atomic batches of whole persons, up to
// the store's batch limit, LoadConcurrency batches in flight.
func load(ctx context.Context, store *eventstore.Store, sealer sealing.Events, opt RebuildOptions, progress func(string)) (*Population, error) {
	keys, err := personkey.New([]byte("bench secret, not for production use"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []eventstore.PersonAppend, opt.LoadConcurrency)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		stored   atomic.Uint64
		calls    atomic.Uint64
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel()
	}
	for range opt.LoadConcurrency {
		wg.Go(func() {
			for b := range batches {
				if ctx.Err() != nil {
					continue
				}
				pos, err := store.Append(ctx, b...)
				if err != nil {
					fail(fmt.Errorf("load: append: %w", err))
					continue
				}
				stored.Add(uint64(len(pos)))
				calls.Add(1)
			}
		})
	}

	t0 := time.Now()
	moved, inKommune := 0, 0
	var (
		batch  []eventstore.PersonAppend
		events int
		next   = time.Now().Add(5 * time.Second)
	)
	send := func() bool {
		select {
		case batches <- batch:
		case <-ctx.Done():
			return false
		}
		batch, events = nil, 0
		return true
	}
	i := 0
	for evs := range demo.Generate(opt.Seed, opt.Persons, opt.Now) {
		key := keys.Key(rules.KeyingID(evs[0].GetPersonRegistered()))
		for _, ev := range evs {
			ev.PersonKey = key
			ev.Actor = benchActor
			// Recorded when the kommune registered it: the day in the event id's time part.
			ev.RecordedAt = timestamppb.New(ulid.Time(ulid.MustParse(ev.GetId()).Time()))
		}
		if opt.KommuneShare > 0 {
			cur := rules.Fold(key, evs).Kommune
			target := int(math.Floor(float64(i+1) * opt.KommuneShare))
			switch {
			case cur == opt.Kommune:
				inKommune++
			case inKommune < target && cur != "" && !mentions(evs, opt.Kommune):
				moveTo(evs, cur, opt.Kommune)
				inKommune++
				moved++
			}
		}
		// Sealed as nird stores them: a data key per person in the key store.
		for _, ev := range evs {
			if err := sealer.Seal(ctx, ev); err != nil {
				fail(fmt.Errorf("load: seal: %w", err))
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		i++
		if events+len(evs) > eventstore.MaxBatchEvents && !send() {
			break
		}
		batch = append(batch, eventstore.PersonAppend{PersonKey: key, ExpectedLastSeq: eventstore.Expect(0), Events: evs})
		events += len(evs)
		if time.Now().After(next) {
			next = time.Now().Add(5 * time.Second)
			progress(fmt.Sprintf("loaded %d events of %d/%d persons, %.0f events/s", stored.Load(), i, opt.Persons, float64(stored.Load())/time.Since(t0).Seconds()))
		}
	}
	if len(batch) > 0 && ctx.Err() == nil {
		send()
	}
	close(batches)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := time.Since(t0)
	n := stored.Load()
	last, err := store.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	if last != n {
		return nil, fmt.Errorf("load: stream ends at sequence %d after storing %d events", last, n)
	}
	return &Population{
		Persons: opt.Persons, Events: n, Loaded: true, LoadSeconds: d.Seconds(),
		LoadEventsPerSec: float64(n) / d.Seconds(), LoadBatches: calls.Load(), MovedToKommune: moved,
	}, nil
}

// mentions reports whether any of the events names kommune k.
func mentions(evs []*nirv1.Event, k string) bool {
	for _, ev := range evs {
		if ev.GetKommune() == k || ev.GetPersonRegistered().GetSettlementKommune() == k || ev.GetPersonMoved().GetToKommune() == k {
			return true
		}
	}
	return false
}

// moveTo replaces kommune from by to in every kommune field of the events, so the person
// lives in to wherever they lived in from. The events stay valid when to is valid on every
// date (Oslo's 0301 is).
func moveTo(evs []*nirv1.Event, from, to string) {
	for _, ev := range evs {
		if ev.Kommune == from {
			ev.Kommune = to
		}
		if pr := ev.GetPersonRegistered(); pr != nil && pr.SettlementKommune == from {
			pr.SettlementKommune = to
		}
		if m := ev.GetPersonMoved(); m != nil && m.ToKommune == from {
			m.ToKommune = to
		}
	}
}

// bareReplay reads the stream [1, last] through an ordered consumer, reading each message's
// metadata (its stream sequence, which any replay needs) and, with decode, decoding it.
func bareReplay(ctx context.Context, js jetstream.JetStream, last uint64, decode bool) (int, error) {
	return bareReplayRange(ctx, js, 1, last, decode)
}

// bareReplayParallel reads sequences 1 to last with n ordered consumers at once, each over
// its own contiguous range, and returns the messages read.
func bareReplayParallel(ctx context.Context, js jetstream.JetStream, last uint64, n int) (int, error) {
	var (
		wg    sync.WaitGroup
		total atomic.Int64
		errs  = make([]error, n)
	)
	step := (last + uint64(n) - 1) / uint64(n)
	for i := range n {
		from, to := uint64(i)*step+1, min(uint64(i+1)*step, last)
		if from > to {
			break
		}
		wg.Go(func() {
			got, err := bareReplayRange(ctx, js, from, to, false)
			total.Add(int64(got))
			errs[i] = err
		})
	}
	wg.Wait()
	return int(total.Load()), errors.Join(errs...)
}

// bareReplayRange reads sequences from to to with one ordered consumer, handling each message
// on the subscription's goroutine (Consume), the cheaper of nats.go's two ways to read one:
// its per-message iterator (Messages) took 10–18 % more CPU (2026-12-04).
func bareReplayRange(ctx context.Context, js jetstream.JetStream, from, to uint64, decode bool) (int, error) {
	if to == 0 || from > to {
		return 0, nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: 30 * time.Second}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := js.OrderedConsumer(ctx, eventstore.StreamName, cfg)
	if err != nil {
		return 0, err
	}
	var (
		n      int
		failed error
		done   = make(chan struct{})
		once   sync.Once
	)
	finish := func(err error) {
		once.Do(func() {
			failed = err
			close(done)
		})
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case <-done:
			return
		default:
		}
		md, err := msg.Metadata()
		if err != nil {
			finish(err)
			return
		}
		if decode {
			if _, err := eventstore.Decode(md.Sequence.Stream, msg.Data()); err != nil {
				finish(err)
				return
			}
		}
		n++
		if md.Sequence.Stream >= to {
			finish(nil)
		}
	}, jetstream.PullMaxMessages(DefaultBarePullMaxMessage))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return n, failed
}

// memSampler samples the process's memory while the rebuild runs.
type memSampler struct {
	stopc  chan struct{}
	done   chan struct{}
	hwmSet bool // VmHWM was reset, so it is the rebuild's own peak
	rss    atomic.Uint64
	anon   atomic.Uint64
	heap   atomic.Uint64
	total  atomic.Uint64
}

func startMemSampler() *memSampler {
	s := &memSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	// Writing 5 to clear_refs resets the resident set's high-water mark (Linux 4.0+).
	s.hwmSet = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	sample := func() {
		metrics.Read(samples)
		setMax(&s.heap, samples[0].Value.Uint64())
		setMax(&s.total, samples[1].Value.Uint64()-samples[2].Value.Uint64())
		if rss, ok := procStatus("VmRSS:"); ok {
			setMax(&s.rss, rss)
		}
		if anon, ok := procStatus("RssAnon:"); ok {
			setMax(&s.anon, anon)
		}
	}
	sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sample()
			case <-s.stopc:
				sample()
				return
			}
		}
	}()
	return s
}

func (s *memSampler) stop() Memory {
	close(s.stopc)
	<-s.done
	m := Memory{PeakRSSBytes: s.rss.Load(), PeakRSSSource: "sampled VmRSS every 20 ms", PeakAnonRSSBytes: s.anon.Load(), PeakHeapBytes: s.heap.Load(), PeakGoTotalBytes: s.total.Load()}
	if hwm, ok := procStatus("VmHWM:"); ok && s.hwmSet {
		m.PeakRSSBytes = max(hwm, m.PeakRSSBytes)
		m.PeakRSSSource = "VmHWM, reset before the rebuild"
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		m.ProcessMaxRSSBytes = uint64(ru.Maxrss) * 1024 // kilobytes on Linux
	}
	return m
}

func setMax(v *atomic.Uint64, x uint64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// procStatus reads a "kB" field of /proc/self/status in bytes.
func procStatus(field string) (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchQueries are the person-list queries timed, in turn: the pages a kommune's caseworker
// opens most (DOMAIN.md 6.1 filters, sorts by the deadline columns).
func benchQueries(kommune string, now rules.Date) []projections.PersonQuery {
	return []projections.PersonQuery{
		{Kommune: kommune},
		{Kommune: kommune, Sort: projections.SortBirthDate},
		{Kommune: kommune, Law: nirv1.Law_LAW_IL, ProgrammeVedtak: projections.With, Sort: projections.SortProgrammeEnd},
		{Kommune: kommune, Deadline: projections.DeadlineOverdue, Now: now, Sort: projections.SortNorskDeadline},
		{Kommune: kommune, Deadline: projections.DeadlineDueWithin, WithinDays: 30, Now: now},
		{Kommune: kommune, TrainingVedtak: projections.With, Norskmal: projections.Without, Sort: projections.SortNorskHours, Desc: true},
		{Kommune: kommune, Terminated: projections.With, Sort: projections.SortTermination, Desc: true, PageSize: 50},
		{Kommune: kommune, Law: nirv1.Law_LAW_IL_6A, Sort: projections.SortProgrammeStart, PageToken: "100"},
		{Kommune: kommune, ProgrammeVedtak: projections.Without, TrainingVedtak: projections.Without},
		{Kommune: kommune, MinNorskHours: 100, MaxNorskHours: 300, Sort: projections.SortBirthDate, PageSize: 1000},
	}
}

func measureQueries(proj *projections.Projector, opt RebuildOptions) (*QueryResult, error) {
	qs := benchQueries(opt.Kommune, opt.Now)
	res := &QueryResult{Kommune: opt.Kommune, Queries: opt.Queries}
	lat := make([]time.Duration, 0, opt.Queries)
	byKind := make([][]time.Duration, len(qs))
	res.ByQuery = make([]QueryKind, len(qs))
	for i := range opt.Queries + 1 {
		q := qs[i%len(qs)]
		t0 := time.Now()
		var page *projections.PersonPage
		err := proj.Use("", func(db *projections.DB) error {
			var err error
			page, err = db.ListPersons(q)
			return err
		})
		d := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("query %d: %w", i%len(qs), err)
		}
		if i == 0 {
			// The cold query decodes the list; it is reported apart, not counted.
			res.ColdMs = ms(d)
			res.Persons = page.Total
			continue
		}
		lat = append(lat, d)
		byKind[i%len(qs)] = append(byKind[i%len(qs)], d)
		res.ByQuery[i%len(qs)].Rows = page.Total
	}
	for k, l := range byKind {
		res.ByQuery[k].Query = describeQuery(qs[k])
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		res.ByQuery[k].Runs, res.ByQuery[k].P50ms, res.ByQuery[k].MaxMs = len(l), ms(l[len(l)/2]), ms(l[len(l)-1])
	}
	slices.Sort(lat)
	res.P50ms = ms(lat[len(lat)/2])
	res.P99ms = ms(lat[min(len(lat)-1, int(math.Ceil(float64(len(lat))*0.99))-1)])
	res.MaxMs = ms(lat[len(lat)-1])
	return res, nil
}

// describeQuery names a query by its filters and order, for the report.
func describeQuery(q projections.PersonQuery) string {
	var parts []string
	if q.Law != nirv1.Law_LAW_UNSPECIFIED {
		parts = append(parts, "law="+strings.TrimPrefix(q.Law.String(), "LAW_"))
	}
	filters := []struct {
		name string
		f    projections.Filter
	}{{"programme_vedtak", q.ProgrammeVedtak}, {"training_vedtak", q.TrainingVedtak}, {"norskmal", q.Norskmal}, {"terminated", q.Terminated}}
	for _, f := range filters {
		switch f.f {
		case projections.With:
			parts = append(parts, f.name)
		case projections.Without:
			parts = append(parts, "no "+f.name)
		}
	}
	switch q.Deadline {
	case projections.DeadlineOverdue:
		parts = append(parts, "overdue")
	case projections.DeadlineDueWithin:
		parts = append(parts, fmt.Sprintf("due within %d days", q.WithinDays))
	}
	if q.MinNorskHours > 0 || q.MaxNorskHours > 0 {
		parts = append(parts, fmt.Sprintf("norsk hours %v-%v", q.MinNorskHours, q.MaxNorskHours))
	}
	if q.Sort != "" {
		s := "sort " + string(q.Sort)
		if q.Desc {
			s += " desc"
		}
		parts = append(parts, s)
	}
	if q.PageToken != "" {
		parts = append(parts, "from row "+q.PageToken)
	}
	if q.PageSize != 0 {
		parts = append(parts, fmt.Sprintf("page %d", q.PageSize))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, ", ")
}

// countingWriter discards what it is given and counts the bytes.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func measureCSV(proj *projections.Projector, opt RebuildOptions) (*CSVResult, error) {
	res := &CSVResult{Runs: opt.CSVRuns}
	run := func(q projections.PersonQuery) (rows int, d time.Duration, bytes int64, err error) {
		for range opt.CSVRuns {
			w := &countingWriter{}
			t0 := time.Now()
			err = proj.Use("", func(db *projections.DB) error {
				n, err := db.ExportCSV(w, q, projections.CSVOptions{IncludeNationalID: true})
				rows += n
				return err
			})
			d += time.Since(t0)
			bytes += w.n
			if err != nil {
				return 0, 0, 0, err
			}
		}
		return rows, d, bytes, nil
	}
	rows, d, bytes, err := run(projections.PersonQuery{Kommune: opt.Kommune})
	if err != nil {
		return nil, fmt.Errorf("csv export: %w", err)
	}
	res.Rows, res.Bytes, res.Seconds = rows/opt.CSVRuns, bytes/int64(opt.CSVRuns), d.Seconds()
	if d > 0 {
		res.RowsPerSec = float64(rows) / d.Seconds()
	}
	rows, d, _, err = run(projections.PersonQuery{Kommune: opt.Kommune, Sort: projections.SortBirthDate})
	if err != nil {
		return nil, fmt.Errorf("sorted csv export: %w", err)
	}
	if d > 0 {
		res.SortedRowsPerSec = float64(rows) / d.Seconds()
	}
	return res, nil
}

// verify catches a second projector up from the same feed and compares its models with the
// rebuilt ones by their dumps.
func verify(ctx context.Context, rebuilt *projections.Projector, f projections.Feed, dir string, open func(*nirv1.Event) error) (bool, error) {
	if err := os.RemoveAll(dir); err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	p, err := projections.New(f, projections.Options{Dir: dir, Open: open})
	if err != nil {
		return false, err
	}
	defer p.Close()
	if _, err := p.CatchUp(ctx); err != nil {
		return false, fmt.Errorf("verify: catch-up: %w", err)
	}
	a, err := dumpHash(rebuilt)
	if err != nil {
		return false, err
	}
	b, err := dumpHash(p)
	if err != nil {
		return false, err
	}
	return a == b, nil
}

func dumpHash(p *projections.Projector) (string, error) {
	h := sha256.New()
	bw := bufio.NewWriterSize(h, 1<<16)
	err := p.Use("", func(db *projections.DB) error { return db.Dump(bw) })
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return "", fmt.Errorf("verify: dump: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func goals(rep *RebuildReport) []Goal {
	if rep.Options.FromFileOnly {
		return fromFileGoals(rep)
	}
	g := []Goal{
		{Name: "rebuild / bare replay", Target: fmt.Sprintf(">= %.1f", GoalRebuildRatio), Measured: round2(rep.Ratio), Unit: "ratio", Pass: rep.Ratio >= GoalRebuildRatio},
		{Name: "peak memory during rebuild", Target: "< 1 GiB", Measured: float64(rep.Memory.PeakRSSBytes >> 20), Unit: "MiB RSS", Pass: rep.Memory.PeakRSSBytes < GoalPeakMemoryBytes},
		{Name: "person-list query p99", Target: fmt.Sprintf("< %.0f ms", GoalQueryP99ms), Measured: rep.Query.P99ms, Unit: "ms", Pass: rep.Query.P99ms < GoalQueryP99ms},
		{Name: "decryption in rebuild", Target: "< 10 %", Measured: round2(100 * (1/rep.RatioSealing - 1)), Unit: "% added", Pass: rep.RatioSealing > 1/1.1},
		{Name: "CSV export", Target: fmt.Sprintf(">= %d rows/s", GoalCSVRowsPerSec), Measured: math.Round(rep.CSV.RowsPerSec), Unit: "rows/s", Pass: rep.CSV.RowsPerSec >= GoalCSVRowsPerSec},
	}
	g = append(g, fromFileGoals(rep)...)
	if m := rep.Memory; m.PeakAnonRSSBytes > 0 {
		g[1].Note = fmt.Sprintf("anonymous RSS peak %d MiB; the rest is pages of the mapped read-model files, which the kernel can reclaim", m.PeakAnonRSSBytes>>20)
	}
	if rep.Query.Persons < GoalQueryPersons {
		g[2].Note = fmt.Sprintf("kommune has %d persons, fewer than the goal's %d", rep.Query.Persons, GoalQueryPersons)
	}
	if rep.Population.Events < 1_000_000 {
		g[0].Note = fmt.Sprintf("%d events; the goal is stated for at least 1 000 000", rep.Population.Events)
	}
	return g
}

// fromFileGoals are issue 17's goals for the rebuild from the live file, when it was measured.
func fromFileGoals(rep *RebuildReport) []Goal {
	if rep.FromFile.Events == 0 {
		return nil
	}
	million := rep.FromFile.Seconds * 1e6 / float64(rep.FromFile.Events)
	return []Goal{
		{Name: "rebuild from live file / bare", Target: fmt.Sprintf(">= %.1f", GoalFromFileRatio), Measured: round2(rep.RatioFromFile), Unit: "ratio", Pass: rep.RatioFromFile >= GoalFromFileRatio,
			Note: "bare replay timed in turns with it"},
		{Name: "rebuild from live file, 1M", Target: fmt.Sprintf("< %.0f s", GoalMillionSeconds), Measured: round2(million), Unit: "s per 1M", Pass: million < GoalMillionSeconds},
	}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// WriteRebuildText writes the report as a table.
func WriteRebuildText(w io.Writer, rep *RebuildReport) error {
	p := rep.Population
	fmt.Fprintf(w, "population: %d persons, %d events, %d MiB stream (seed %d, now %s)\n", p.Persons, p.Events, p.StreamBytes>>20, rep.Options.Seed, rep.Now)
	if p.Loaded {
		fmt.Fprintf(w, "load (setup): %.1f s, %.0f events/s in %d atomic batches\n", p.LoadSeconds, p.LoadEventsPerSec, p.LoadBatches)
	} else {
		fmt.Fprintf(w, "load: reused the stream in %s\n", rep.Options.Dir)
	}
	fmt.Fprintf(w, "%-20s %10s %9s %12s %9s %12s\n", "scenario", "events", "seconds", "events/s", "CPU s", "events/CPU-s")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "%-20s %10d %9.2f %12.0f %9.2f %12.0f\n", r.Name, r.Events, r.Seconds, r.EventsPerSec, r.CPUSeconds, r.EventsPerCPUSec)
	}
	fmt.Fprintf(w, "rebuild's passes: store %.2f s, fold %.2f s\n", rep.StoreSeconds, rep.FoldSeconds)
	only := rep.Options.FromFileOnly
	if only {
		fmt.Fprintf(w, "ratio rebuild / bare replay: %.2f (one run, the live models for what follows)\n", rep.Ratio)
	} else {
		fmt.Fprintf(w, "ratio rebuild / bare replay: %.2f (/ bare replay with decoding: %.2f; in events per CPU-second: %.2f)\n", rep.Ratio, rep.RatioDecode, rep.RatioCPU)
		fmt.Fprintf(w, "ratio rebuild / best bare read found (one ordered consumer per CPU over ranges of sequences): %.2f\n", rep.RatioParallel)
		fmt.Fprintf(w, "ratio verify / bare replay: %.2f\n", rep.RatioVerify)
	}
	if ff := rep.FromFile; ff.Events > 0 {
		fmt.Fprintf(w, "rebuild from the live file (events checked against the stream's signed checkpoint): %.2f s, %.0f events/s, %.2f CPU s; copy %.2f s, fold %.2f s\n",
			ff.Seconds, ff.EventsPerSec, ff.CPUSeconds, rep.FromFileStoreSeconds, rep.FromFileFoldSeconds)
		fmt.Fprintf(w, "ratio rebuild from the live file / bare replay in turns with it (%.0f events/s): %.2f\n", rep.BareInTurns.EventsPerSec, rep.RatioFromFile)
		if af := rep.AsOfFromFile; af.Events > 0 {
			fmt.Fprintf(w, "as-of replay from the live file (to now, every event kept): %.2f s, %.0f events/s, %.2f CPU s; ratio to the bare replay in turns with it (%.0f events/s): %.2f\n",
				af.Seconds, af.EventsPerSec, af.CPUSeconds, rep.AsOfBareInTurns.EventsPerSec, rep.RatioAsOfFromFile)
		}
		mf := rep.MemoryFromFile
		fmt.Fprintf(w, "memory during the rebuild from the live file: peak RSS %d MiB (%s), anonymous RSS peak %d MiB\n", mf.PeakRSSBytes>>20, mf.PeakRSSSource, mf.PeakAnonRSSBytes>>20)
	}
	if !only {
		fmt.Fprintf(w, "ratio rebuild / the same rebuild without opening the sealed identities: %.2f (decryption adds %.1f %%)\n", rep.RatioSealing, 100*(1/rep.RatioSealing-1))
		fmt.Fprintf(w, "models file %d MiB\n", rep.ModelsBytes>>20)
		m := rep.Memory
		fmt.Fprintf(w, "memory during rebuild: peak RSS %d MiB (%s), anonymous RSS peak %d MiB, Go heap peak %d MiB, Go total peak %d MiB\n", m.PeakRSSBytes>>20, m.PeakRSSSource, m.PeakAnonRSSBytes>>20, m.PeakHeapBytes>>20, m.PeakGoTotalBytes>>20)
		q := rep.Query
		fmt.Fprintf(w, "person list, kommune %s (%d persons): %d queries p50 %.2f ms, p99 %.2f ms, max %.2f ms; cold %.2f ms\n", q.Kommune, q.Persons, q.Queries, q.P50ms, q.P99ms, q.MaxMs, q.ColdMs)
		for _, k := range q.ByQuery {
			fmt.Fprintf(w, "  %6d rows  p50 %6.2f ms  max %6.2f ms  %s\n", k.Rows, k.P50ms, k.MaxMs, k.Query)
		}
		c := rep.CSV
		fmt.Fprintf(w, "CSV export, kommune %s: %d rows (%d KiB) x %d: %.0f rows/s unsorted, %.0f rows/s sorted by birth date\n", q.Kommune, c.Rows, c.Bytes>>10, c.Runs, c.RowsPerSec, c.SortedRowsPerSec)
		k := rep.Check
		fmt.Fprintf(w, "damage checks of the %d MiB models file (%d pages, %d values): page walk %.2f s, with checksums %.2f s; start-up open %.2f s; verify (copy, walk with checksums, bbolt Check) %.2f s\n",
			k.Bytes>>20, k.Pages, k.Values, k.StructureSeconds, k.ValuesSeconds, k.NewSeconds, k.VerifySeconds)
		if rep.Verified != nil {
			fmt.Fprintf(w, "rebuilt models equal a catch-up: %v\n", *rep.Verified)
		}
	}
	fmt.Fprintln(w, "goals:")
	for _, g := range rep.Goals {
		verdict := "FAIL"
		if g.Pass {
			verdict = "pass"
		}
		line := fmt.Sprintf("  %-28s %-14s %12.2f %-8s %s", g.Name, g.Target, g.Measured, g.Unit, verdict)
		if g.Note != "" {
			line += " (" + g.Note + ")"
		}
		fmt.Fprintln(w, line)
	}
	_, err := fmt.Fprintf(w, "%d CPUs, %s, %s/%s\n", rep.Machine.CPUs, rep.Machine.Go, rep.Machine.GOOS, rep.Machine.GOARCH)
	return err
}

// writeAllocs writes the allocations made so far (pprof's allocs profile) to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("memory profile: %w", err)
	}
	return f.Close()
}

// recording is a prepareFunc that, for each path not empty, records the stage: a CPU
// profile to cpu, an execution trace to tr, the allocations to allocs (and those before the
// stage to allocs+".base", written before timePrepared returns the free memory to the OS).
// Each recording is stopped and written after the clock stops; one that could not be
// written whole fails the stage.
func recording(cpu, tr, allocs string) prepareFunc {
	return func() (func() error, error) {
		var stops []func() error
		stopAll := func() error {
			var errs []error
			for _, stop := range slices.Backward(stops) {
				errs = append(errs, stop())
			}
			return errors.Join(errs...)
		}
		if allocs != "" {
			if err := writeAllocs(allocs + ".base"); err != nil {
				return nil, err
			}
		}
		for _, r := range []struct {
			path  string
			start func(string) (func() error, error)
		}{{cpu, startCPUProfile}, {tr, startTrace}} {
			if r.path == "" {
				continue
			}
			stop, err := r.start(r.path)
			if err != nil {
				return nil, errors.Join(err, stopAll())
			}
			stops = append(stops, stop)
		}
		return func() error {
			err := stopAll()
			if allocs != "" {
				err = errors.Join(err, writeAllocs(allocs))
			}
			return err
		}, nil
	}
}

// startCPUProfile writes a CPU profile to path until the returned function is called.
func startCPUProfile(path string) (func() error, error) {
	return startRecording(path, "cpu profile", pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// startTrace writes an execution trace to path until the returned function is called.
func startTrace(path string) (func() error, error) {
	return startRecording(path, "trace", trace.Start, trace.Stop)
}

// startRecording creates path, starts a recording into it and returns what stops it and
// closes the file. That returns the first error of the recording's writes or of the close
// (a full disk), naming the file: the CPU profiler and the tracer write from their own
// goroutines and drop the errors, which left a truncated profile unsaid.
func startRecording(path, what string, start func(io.Writer) error, stop func()) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	w := &firstErrWriter{w: f}
	if err := start(w); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return func() error {
		stop() // returns once every write of the recording is done
		if err := errors.Join(w.Err(), f.Close()); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}, nil
}

// firstErrWriter writes to w and keeps the first error of its writes.
type firstErrWriter struct {
	w io.Writer

	mu  sync.Mutex // guards err: the writes come from the recorder's goroutine
	err error
}

func (e *firstErrWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
		}
		e.mu.Unlock()
	}
	return n, err
}

// Err returns the first error of the writes.
func (e *firstErrWriter) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// WriteScaleText prints the scale curve of several rebuild reports: per population, the
// rebuild's events/s (wall and per CPU-second), its ratio to the bare replay, its two
// passes and its peak memory.
func WriteScaleText(w io.Writer, reps []*RebuildReport) error {
	fmt.Fprintln(w, "scale curve of the rebuild:")
	fmt.Fprintf(w, "%9s %10s %10s %12s %12s %6s %8s %8s %9s %9s %10s %12s %6s %9s\n", "persons", "events", "bare ev/s", "rebuild ev/s", "ev/CPU-s", "ratio", "store s", "fold s", "RSS MiB", "anon MiB", "models MiB",
		"file ev/s", "ratio", "RSS MiB")
	for _, r := range reps {
		bare, rb := r.Results[0], r.Results[len(r.Results)-2] // the rebuild, before its unopened twin
		fmt.Fprintf(w, "%9d %10d %10.0f %12.0f %12.0f %6.2f %8.2f %8.2f %9d %9d %10d %12.0f %6.2f %9d\n", r.Population.Persons, r.Population.Events,
			bare.EventsPerSec, rb.EventsPerSec, rb.EventsPerCPUSec, r.Ratio, r.StoreSeconds, r.FoldSeconds,
			r.Memory.PeakRSSBytes>>20, r.Memory.PeakAnonRSSBytes>>20, r.ModelsBytes>>20,
			r.FromFile.EventsPerSec, r.RatioFromFile, r.MemoryFromFile.PeakRSSBytes>>20)
	}
	fmt.Fprintln(w, "(file: the rebuild from the live file, its ratio to a bare replay timed in turns with it)")
	_, err := fmt.Fprintf(w, "%d CPUs, %s\n", reps[0].Machine.CPUs, reps[0].Machine.Go)
	return err
}
