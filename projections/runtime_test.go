package projections

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"

	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// cleanDump builds the models of recs in one go in a fresh file and returns the dump.
func cleanDump(t *testing.T, recs []Record) string {
	t.Helper()
	db := openTestDB(t, DBOptions{})
	applyAll(t, db, recs, len(recs)+1)
	return dump(t, db)
}

func liveDump(t *testing.T, p *Projector) string {
	t.Helper()
	var s string
	if err := p.Use("", func(db *DB) error { s = dump(t, db); return nil }); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestProjector_Run checks catch-up in batches, then low-latency live apply as events arrive,
// and the lag in Stats.
func TestProjector_Run(t *testing.T) {
	t.Parallel()
	recs := population(2, 300, testKommuner)
	half := len(recs) / 2
	feed := NewSliceFeed(append([]Record(nil), recs[:half]...))
	p := newTestProjector(t, feed)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "catch-up", func() bool { return p.Stats().Checkpoint == uint64(half) })
	if s := p.Stats(); s.Lag != 0 || s.Batches < 2 || s.EventsApplied != uint64(half) {
		t.Errorf("after catch-up stats = %+v; want lag 0, several batches of 64", s)
	}
	for _, r := range recs[half:] {
		feed.Add(r)
	}
	waitFor(t, "live apply", func() bool { return p.Stats().Checkpoint == uint64(len(recs)) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got, want := liveDump(t, p), cleanDump(t, recs); got != want {
		t.Error("live models differ from a clean build")
	}
	st, err := p.Status(bg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lag != 0 || len(st.Models) != len(Models) || st.FileSize == 0 || st.Models[0].Checkpoint != uint64(len(recs)) {
		t.Errorf("status = %+v", st)
	}
}

// TestProjector_Rebuild checks that a rebuild swaps in a file equal to the live one while
// queries keep running, and that queries in flight finish on the old file.
func TestProjector_Rebuild(t *testing.T) {
	t.Parallel()
	recs := population(3, 300, testKommuner)
	feed := NewSliceFeed(recs)
	p := newTestProjector(t, feed)
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	before := liveDump(t, p)

	// A query in flight across the swap keeps its file open.
	inFlight := make(chan struct{})
	release := make(chan struct{})
	var oldPath string
	queryErr := make(chan error, 1)
	go func() {
		queryErr <- p.Use("", func(db *DB) error {
			oldPath = db.Path()
			close(inFlight)
			<-release
			_, err := db.ListPersons(PersonQuery{Kommune: "0301"})
			if err == nil {
				_, err = db.Statistics(2022, LevelNation, "")
			}
			return err
		})
	}()
	<-inFlight

	// Queries keep being served during the rebuild.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := p.Use("", func(db *DB) error {
				_, err := db.ListPersons(PersonQuery{Kommune: "4601"})
				return err
			})
			if err != nil {
				t.Error(err)
				return
			}
			served.Add(1)
		}
	}()
	var progress []Progress
	rebuildDone := make(chan error, 1)
	go func() {
		rebuildDone <- p.Rebuild(bg, func(pr Progress) { progress = append(progress, pr) })
	}()
	// The swap waits for the in-flight query; let it finish.
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	if err := <-rebuildDone; err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if err := <-queryErr; err != nil {
		t.Errorf("query in flight across the swap failed: %v", err)
	}
	if served.Load() == 0 {
		t.Error("no query was served during the rebuild")
	}
	var stored, folded bool
	for _, pr := range progress {
		stored = stored || pr.Phase == PhaseStore && pr.Done == uint64(len(recs)) && pr.Total == uint64(len(recs))
		folded = folded || pr.Phase == PhaseFold && pr.Done == 300 && pr.Total == 300
	}
	if !stored || !folded {
		t.Errorf("progress = %+v; want the store phase to reach %d events and the fold phase 300 persons", progress, len(recs))
	}
	if got := liveDump(t, p); got != before {
		t.Error("rebuilt models differ from the incrementally built ones")
	}
	p.Use("", func(db *DB) error {
		if db.Path() != oldPath {
			t.Errorf("live path after swap = %s, want %s", db.Path(), oldPath)
		}
		return nil
	})
	if err := p.Rebuild(bg, nil); err != nil {
		t.Fatalf("second rebuild: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.opt.Dir, rebuildFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rebuild file left behind: %v", err)
	}
}

// TestProjector_AsOf checks that an as-of replay leaves out every event recorded after the
// cut-off, corrections included, and that a kept snapshot can be queried by name.
func TestProjector_AsOf(t *testing.T) {
	t.Parallel()
	recs := population(4, 300, testKommuner)
	cutoff := time.Date(2022, 6, 30, 23, 59, 59, 0, time.UTC)
	var before []Record
	for _, r := range recs {
		if !r.Event.GetRecordedAt().AsTime().After(cutoff) {
			before = append(before, r)
		}
	}
	if len(before) == 0 || len(before) == len(recs) {
		t.Fatalf("cut-off splits nothing: %d of %d", len(before), len(recs))
	}
	p := newTestProjector(t, NewSliceFeed(recs))
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cutoff, Keep: "2021@2022-06-30"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The replay's models equal a build from only the events recorded up to the cut-off
	// (whose checkpoint is the last such event's sequence).
	if got, want := dump(t, db), cleanDump(t, before); got != want {
		t.Error("as-of models differ from a build of the events recorded before the cut-off")
	}
	var snapStats []StatRow
	if err := p.Use("2021@2022-06-30", func(db *DB) error {
		var err error
		snapStats, err = db.Statistics(2021, LevelNation, "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var liveStats []StatRow
	p.Use("", func(db *DB) error { liveStats, _ = db.Statistics(2021, LevelNation, ""); return nil })
	if len(snapStats) != 1 || len(liveStats) != 1 || snapStats[0].Counters == liveStats[0].Counters {
		t.Errorf("snapshot statistics %+v should differ from live %+v (later corrections)", snapStats, liveStats)
	}
	if got := p.Snapshots(); len(got) != 1 || got[0] != "2021@2022-06-30" {
		t.Errorf("snapshots = %v", got)
	}
	// The status shows each snapshot's cut-off; keeping another replay under the same name
	// is refused unless asked to replace it.
	st, err := p.Status(bg)
	if err != nil || len(st.Snapshots) != 1 || !st.Snapshots[0].RecordedUntil.Equal(cutoff) {
		t.Errorf("status snapshots = %+v, %v; want the cut-off %v", st.Snapshots, err, cutoff)
	}
	if _, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cutoff.AddDate(0, 1, 0), Keep: "2021@2022-06-30"}); !errors.Is(err, ErrExists) {
		t.Errorf("keeping over an existing snapshot: err = %v, want ErrExists", err)
	}
	later := cutoff.AddDate(0, 1, 0)
	rdb, err := p.AsOf(bg, AsOfOptions{RecordedUntil: later, Keep: "2021@2022-06-30", Replace: true})
	if err != nil {
		t.Fatalf("replace: %v", err)
	}
	if at, ok := rdb.AsOf(); !ok || !at.Equal(later) {
		t.Errorf("replaced snapshot's cut-off = %v, %v; want %v", at, ok, later)
	}
	rdb.Close()
	// An empty cut-off keeps nothing: checkpoint 0.
	edb, err := p.AsOf(bg, AsOfOptions{RecordedUntil: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := edb.Checkpoint(); err != nil || c != 0 {
		t.Errorf("replay before every event: checkpoint %d, %v; want 0", c, err)
	}
	edb.Close()
	if err := p.Use("nope", func(*DB) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown snapshot: %v", err)
	}
	if _, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cutoff, Keep: "../evil"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad snapshot name: %v", err)
	}
	// Snapshots are logged by name: none may look like a national id.
	if _, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cutoff, Keep: "s12345678901"}); !errors.Is(err, ErrInvalidArgument) || strings.Contains(err.Error(), "12345678901") {
		t.Errorf("a snapshot name with a national id's digits: %v, want ErrInvalidArgument without them", err)
	}
	// An unkept replay removes its file on Close.
	tmp, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cutoff})
	if err != nil {
		t.Fatal(err)
	}
	path := tmp.Path()
	tmp.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary replay file left: %v", err)
	}
	// Snapshots survive a restart.
	dir := p.opt.Dir
	p.Close()
	p2, err := New(NewSliceFeed(recs), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if err := p2.OpenSnapshots(); err != nil || len(p2.Snapshots()) != 1 {
		t.Errorf("reopened snapshots = %v, %v", p2.Snapshots(), err)
	}
}

// TestProjector_AsOfOneAtATime: an as-of replay asked for while one runs is refused with
// ErrReplayRunning (each takes a rebuild's memory and a file's disk); once it has ended, the
// next one runs.
func TestProjector_AsOfOneAtATime(t *testing.T) {
	t.Parallel()
	p := newTestProjector(t, NewSliceFeed(population(4, 300, testKommuner)))
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Date(2022, 6, 30, 23, 59, 59, 0, time.UTC)
	running, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	first := make(chan error, 1)
	go func() {
		db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cutoff, Progress: func(Progress) {
			once.Do(func() {
				close(running)
				<-resume
			})
		}})
		if err == nil {
			err = db.Close()
		}
		first <- err
	}()
	select {
	case <-running:
	case err := <-first:
		t.Fatalf("the first as-of replay ended before its first transaction: %v", err)
	}
	if _, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cutoff}); !errors.Is(err, ErrReplayRunning) {
		t.Errorf("an as-of replay while one runs: %v, want ErrReplayRunning", err)
	}
	// Nor a rebuild or a fold comparison beside it: each takes as much again. A repair the
	// running models ask for waits for the replay to end, and nird goes on.
	if err := p.Rebuild(bg, nil); !errors.Is(err, ErrReplayRunning) {
		t.Errorf("a rebuild while an as-of replay runs: %v, want ErrReplayRunning", err)
	}
	if _, err := p.CompareFold(bg); !errors.Is(err, ErrRebuildRunning) {
		t.Errorf("a fold comparison while an as-of replay runs: %v, want ErrRebuildRunning", err)
	}
	ctx, cancel := context.WithCancel(bg)
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	p.requestRepair("a test asks for a repair", false)
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-ran:
		t.Fatalf("the projector stopped when a repair met the as-of replay: %v", err)
	default:
	}
	close(resume)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the repair after the as-of replay", func() bool { return p.repair.Load() == nil })
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}

	// The other way round: no as-of replay while a rebuild runs.
	rebuilding, resumeRebuild := make(chan struct{}), make(chan struct{})
	var onceRebuild sync.Once
	rebuilt := make(chan error, 1)
	go func() {
		rebuilt <- p.Rebuild(bg, func(Progress) {
			onceRebuild.Do(func() {
				close(rebuilding)
				<-resumeRebuild
			})
		})
	}()
	select {
	case <-rebuilding:
	case err := <-rebuilt:
		t.Fatalf("the rebuild ended before its first transaction: %v", err)
	}
	if _, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cutoff}); !errors.Is(err, ErrRebuildRunning) {
		t.Errorf("an as-of replay while a rebuild runs: %v, want ErrRebuildRunning", err)
	}
	close(resumeRebuild)
	if err := <-rebuilt; err != nil {
		t.Fatal(err)
	}
	db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: cutoff})
	if err != nil {
		t.Fatalf("an as-of replay after the first ended: %v", err)
	}
	db.Close()
}

// appendFeed is an Appender that appends to a SliceFeed like the registration path: an event id
// already stored is a no-op.
type appendFeed struct {
	mu    sync.Mutex
	feed  *SliceFeed
	ids   map[string]bool
	calls int
	fail  error // returned instead of appending, when set
}

func (a *appendFeed) AppendComputed(ctx context.Context, evs []*nirv1.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.fail != nil {
		return a.fail
	}
	last, _ := a.feed.LastSeq(ctx)
	for _, ev := range evs {
		if a.ids[ev.GetId()] {
			continue
		}
		a.ids[ev.GetId()] = true
		last++
		ev.RecordedAt = timestamppb.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		a.feed.Add(Record{Seq: last, Event: ev})
	}
	return nil
}

// TestProjector_Regelmotor checks the regelmotor worker (DOMAIN.md Product decisions 5a): a
// programme whose latest end date has passed gets a computed «Avslutningsårsak ikke
// registrert» termination, appended once even when two workers run.
func TestProjector_Regelmotor(t *testing.T) {
	t.Parallel()
	s := &scenario{}
	s.person("w1", "0301", "2022-01-10", asyl, 21)
	s.tildeling("w1", "0301", "2022-03-01")
	s.add("w1", "0301", "2022-03-02", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: pd("2022-03-02")})
	// Tiltak to the end keep the programmes active (no inactivity termination, Product
	// decisions 5c).
	s.add("w1", "0301", "2022-03-02", &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS, FromDate: pd("2022-03-02"), ToDate: pd("2024-02-28")})
	s.person("w2", "0301", "2022-01-10", asyl, 22) // no programme: nothing due
	s.person("w3", "0301", "2022-01-10", asyl, 23)
	s.tildeling("w3", "0301", "2022-06-01")
	s.add("w3", "0301", "2022-06-02", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: pd("2022-06-02")})
	s.add("w3", "0301", "2022-06-02", &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS, FromDate: pd("2022-06-02"), ToDate: pd("2024-05-31")})
	feed := NewSliceFeed(s.recs)
	p := newTestProjector(t, feed)
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	app := &appendFeed{feed: feed, ids: map[string]bool{}}
	// Not yet due on the day of the latest end (2024-03-01).
	if n, err := p.RegelmotorPass(bg, app, rules.MustDate(2024, 3, 1)); err != nil || n != 0 {
		t.Fatalf("pass before due = %d, %v", n, err)
	}
	now := rules.MustDate(2024, 3, 2)
	for range 2 { // two workers, before the projection has seen the first one's event
		if n, err := p.RegelmotorPass(bg, app, now); err != nil || n != 1 {
			t.Fatalf("pass = %d, %v; want 1", n, err)
		}
	}
	if last, _ := feed.LastSeq(bg); last != uint64(len(s.recs)+1) {
		t.Fatalf("stream has %d events, want exactly one computed termination appended", last)
	}
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	if n, _ := p.RegelmotorPass(bg, app, now); n != 0 {
		t.Errorf("pass after the termination was applied = %d, want 0", n)
	}
	p.Use("", func(db *DB) error {
		rep, err := db.Terminated(ReportQuery{Year: 2024})
		if err != nil || len(rep.Rows) != 1 || !rep.Rows[0].Computed || rep.Rows[0].Reason != ikke || rep.Rows[0].Date != rules.MustDate(2024, 3, 1) {
			t.Errorf("2024 report = %+v, %v", rep, err)
		}
		return nil
	})
	// The running worker, with its clock on 2024-06-10, first fails to append w3's termination
	// (due on 2024-06-02), then appends it. Its passes show in the Stats, which nird exports
	// as nir_regelmotor_* metrics.
	if rm := p.Stats().Regelmotor; rm != (RegelmotorStats{}) {
		t.Fatalf("regelmotor stats before the worker ran: %+v", rm)
	}
	app.mu.Lock()
	app.fail = errors.New("the stream is unreachable")
	app.mu.Unlock()
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- p.RunRegelmotor(ctx, app, RegelmotorOptions{Interval: time.Millisecond, Clock: func() time.Time { return rules.MustDate(2024, 6, 10).Time() }, Location: time.UTC})
	}()
	waitFor(t, "a failed pass", func() bool { return p.Stats().Regelmotor.FailedPasses >= 2 })
	app.mu.Lock()
	app.fail = nil
	app.mu.Unlock()
	waitFor(t, "the worker's append", func() bool { last, _ := feed.LastSeq(bg); return last == uint64(len(s.recs)+2) })
	waitFor(t, "the pass counted", func() bool { return p.Stats().Regelmotor.Terminations >= 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rm := p.Stats().Regelmotor
	if rm.Passes <= rm.FailedPasses || rm.LastPass.IsZero() || time.Since(rm.LastPass) > time.Minute {
		t.Errorf("regelmotor stats after the worker ran: %+v", rm)
	}
}

// The kill tests re-execute the test binary as a child that applies (or rebuilds) and reports
// its progress on stdout; the parent kills it with SIGKILL mid-way, then resumes in-process and
// compares with a clean build.
const childEnv = "NIR_PROJECTIONS_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode, os.Getenv(childEnv+"_DIR")))
	}
	os.Exit(m.Run())
}

func killRecs() []Record { return population(5, 300, testKommuner) }

// trustingFeed is a SliceFeed that is also an Identifier and an Attester vouching for every
// record: what the kill test of a rebuild from the live file needs. Checking a copy against a
// real checkpoint is tested against JetStream in internal/feed.
type trustingFeed struct{ *SliceFeed }

func newTrustingFeed(recs []Record) trustingFeed { return trustingFeed{NewSliceFeed(recs)} }

func (f trustingFeed) StreamID(context.Context) (string, error) { return "test-stream", nil }

func (f trustingFeed) RawAt(_ context.Context, seq uint64) ([]byte, error) {
	rec, err := f.at(seq)
	if err != nil {
		return nil, err
	}
	return marshalOpt.Marshal(rec.Event)
}

func (f trustingFeed) at(seq uint64) (Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq == 0 || seq > uint64(len(f.records)) || f.records[seq-1].Seq != seq {
		return Record{}, fmt.Errorf("%w: seq %d", ErrNotFound, seq)
	}
	return f.records[seq-1], nil
}

func (f trustingFeed) Attest(_ context.Context, atMost uint64) (Attestation, error) {
	return &trusting{f: f, seq: atMost}, nil
}

func (f trustingFeed) CutOff(_ context.Context, t time.Time) (uint64, time.Time, error) {
	return math.MaxUint64, t.Add(10 * time.Minute), nil
}

type trusting struct {
	f   trustingFeed
	seq uint64
}

func (a *trusting) Seq() uint64                      { return a.seq }
func (a *trusting) Add(uint64, string, []byte) error { return nil }
func (a *trusting) Check() error                     { return nil }

func (a *trusting) Fetch(_ context.Context, seq uint64) (Record, error) {
	rec, err := a.f.at(seq)
	if err != nil || rec.Quarantine != "" {
		return rec, err
	}
	raw, err := marshalOpt.Marshal(rec.Event)
	return Record{Seq: seq, Raw: raw, PersonKey: rec.Event.GetPersonKey()}, err
}

func runChild(mode, dir string) int {
	recs := killRecs()
	var feed Feed = NewSliceFeed(recs)
	if mode == "rebuild-from-file" {
		feed = newTrustingFeed(recs)
	}
	p, err := New(feed, Options{Dir: dir, BatchSize: 20})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	switch mode {
	case "catchup":
		// Apply batch by batch, reporting each checkpoint, slowly enough to be killed.
		for i := 0; i < len(recs); i += 20 {
			p.Use("", func(db *DB) error {
				c, err := db.Apply(recs[i:min(i+20, len(recs))])
				fmt.Println("checkpoint", c, err)
				return nil
			})
			time.Sleep(2 * time.Millisecond)
		}
	case "rebuild", "rebuild-from-file":
		// The first checkpoint is reported (in rebuild-from-file once the rebuild has taken
		// the live file's events), and the rebuild then waits in it to be killed: a rebuild
		// that went on would finish and swap its file in before a parent slowed by a loaded
		// machine killed it, and leave no half-built file to test with.
		p.Rebuild(context.Background(), func(pr Progress) {
			if mode == "rebuild" || pr.FromFile > 0 {
				fmt.Println("checkpoint", pr.Done)
				time.Sleep(time.Hour)
			}
		})
	}
	fmt.Println("finished")
	time.Sleep(time.Hour) // wait to be killed
	return 0
}

// killChildAt runs the child and kills it once it reports a checkpoint of at least at.
func killChildAt(t *testing.T, mode, dir string, at uint64) uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childEnv+"_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	sc := bufio.NewScanner(out)
	var seen uint64
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "checkpoint" {
			seen, _ = strconv.ParseUint(f[1], 10, 64)
			if seen >= at {
				break
			}
		}
		if f[0] == "error" || f[0] == "finished" {
			cmd.Process.Kill()
			t.Fatalf("child: %s before checkpoint %d", sc.Text(), at)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	return seen
}

// TestProjector_KillDuringCatchUp kills a worker with SIGKILL in the middle of catch-up; the
// resumed run gives exactly what a clean build gives.
func TestProjector_KillDuringCatchUp(t *testing.T) {
	t.Parallel()
	recs := killRecs()
	dir := t.TempDir()
	seen := killChildAt(t, "catchup", dir, uint64(len(recs)/2))
	p, err := New(NewSliceFeed(recs), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var resumed uint64
	p.Use("", func(db *DB) error { resumed, _ = db.Checkpoint(); return nil })
	if resumed < seen || resumed >= uint64(len(recs)) {
		t.Fatalf("after the kill the checkpoint is %d; the child reported %d of %d", resumed, seen, len(recs))
	}
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	if liveDump(t, p) != cleanDump(t, recs) {
		t.Error("models after kill and resume differ from a clean build")
	}
}

// TestProjector_KillDuringRebuild kills a process in the middle of a rebuild: the live file is
// untouched, the half-built file is discarded, and a new rebuild gives the clean result.
func TestProjector_KillDuringRebuild(t *testing.T) {
	t.Parallel()
	killDuringRebuild(t, "rebuild")
}

// TestProjector_KillDuringRebuildFromFile is the same for a rebuild that takes the live
// file's events: the process is killed after it has taken them (it reports progress only
// then), the live file it read is untouched, and the next rebuild, from the file again, gives
// the clean result.
func TestProjector_KillDuringRebuildFromFile(t *testing.T) {
	t.Parallel()
	killDuringRebuild(t, "rebuild-from-file")
}

func killDuringRebuild(t *testing.T, mode string) {
	recs := killRecs()
	newFeed := func() Feed { return NewSliceFeed(recs) }
	if mode == "rebuild-from-file" {
		newFeed = func() Feed { return newTrustingFeed(recs) }
	}
	dir := t.TempDir()
	// Live models first, up to the end.
	p, err := New(newFeed(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(bg); err != nil { // records the stream's identity, if the feed has one
		t.Fatal(err)
	}
	live := liveDump(t, p)
	p.Close()

	killChildAt(t, mode, dir, 0) // at its first report, in which the child waits
	if _, err := os.Stat(filepath.Join(dir, rebuildFile)); err != nil {
		t.Fatalf("the killed rebuild left no half-built file to test with: %v", err)
	}
	// Its spill files were unlinked as they were made; one of a process killed in between
	// is removed by New.
	if left, _ := filepath.Glob(filepath.Join(dir, spillPrefix+"*")); len(left) > 0 {
		t.Errorf("the killed rebuild left spill files behind: %v", left)
	}
	stale := filepath.Join(dir, spillPrefix+"123")
	if err := os.WriteFile(stale, []byte("spilled"), 0o600); err != nil {
		t.Fatal(err)
	}
	// And the copy of a verification of a process that died.
	staleCopy := filepath.Join(dir, strings.Replace(verifyPattern, "*", "123", 1))
	if err := os.WriteFile(staleCopy, []byte("copied"), 0o600); err != nil {
		t.Fatal(err)
	}
	// And the fresh fold of a comparison.
	staleFold := filepath.Join(dir, strings.Replace(foldPattern, "*", "123", 1))
	if err := os.Mkdir(staleFold, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(staleFold, "fold.db"), []byte("folded"), 0o600); err != nil {
		t.Fatal(err)
	}
	// And CSV exports' files, beside the live file and a snapshot, of a process that died
	// between creating and unlinking them.
	var staleExports []string
	for _, d := range []string{dir, filepath.Join(dir, snapshotDir)} {
		f := filepath.Join(d, strings.Replace(exportPattern, "*", "123", 1))
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		staleExports = append(staleExports, f)
	}
	p, err = New(newFeed(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, f := range staleExports {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a CSV export's file left by a killed process not removed: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, rebuildFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("half-built file not removed: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a spill file left by a killed process not removed: %v", err)
	}
	if _, err := os.Stat(staleCopy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a verification's copy left by a killed process not removed: %v", err)
	}
	if _, err := os.Stat(staleFold); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a comparison's fold left by a killed process not removed: %v", err)
	}
	if liveDump(t, p) != live {
		t.Error("the live file changed during the killed rebuild")
	}
	var fromFile uint64
	if err := p.Rebuild(bg, func(pr Progress) { fromFile = max(fromFile, pr.FromFile) }); err != nil {
		t.Fatal(err)
	}
	var want uint64 // through which sequence the events must come from the file
	if mode == "rebuild-from-file" {
		want = uint64(len(recs))
	}
	if fromFile != want {
		t.Errorf("the resumed rebuild took the file's events through seq %d, want %d", fromFile, want)
	}
	if liveDump(t, p) != cleanDump(t, recs) {
		t.Error("models after a resumed rebuild differ from a clean build")
	}
}

// TestProjector_RebuildWhileLive runs a rebuild while the live runner applies a growing
// stream: nothing is lost or applied twice across the swap.
func TestProjector_RebuildWhileLive(t *testing.T) {
	t.Parallel()
	recs := population(9, 300, testKommuner)
	third := len(recs) / 3
	feed := NewSliceFeed(append([]Record(nil), recs[:third]...))
	p := newTestProjector(t, feed)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for _, r := range recs[third:] {
			feed.Add(r)
			if r.Seq%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	if err := p.Rebuild(bg, nil); err != nil {
		t.Fatal(err)
	}
	<-fed
	waitFor(t, "the live runner to reach the end", func() bool { return p.Stats().Checkpoint == uint64(len(recs)) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if liveDump(t, p) != cleanDump(t, recs) {
		t.Error("models after a rebuild during live apply differ from a clean build")
	}
}

// TestProjector_RebuildSwapDoesNotWaitForReaders: once a rebuild has swapped its file in,
// the live fold goes on while the replaced file's last readers finish. The swap waited for
// them with the fold held off, so a reader as slow as its client (as a CSV export was while
// it streamed under Use) stopped the fold after every rebuild for as long as the client took;
// and Rebuild returned only after them.
func TestProjector_RebuildSwapDoesNotWaitForReaders(t *testing.T) {
	t.Parallel()
	recs := population(12, 200, testKommuner)
	half := len(recs) / 2
	feed := NewSliceFeed(append([]Record(nil), recs[:half]...))
	p := newTestProjector(t, feed)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "catch-up", func() bool { return p.Stats().Checkpoint == uint64(half) })

	reading, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the projector's Close, which waits for readers
	go p.Use("", func(*DB) error { close(reading); <-release; return nil })
	<-reading
	p.mu.Lock()
	old := p.cur.db
	p.mu.Unlock()
	rebuilt := make(chan error, 1)
	go func() { rebuilt <- p.Rebuild(bg, nil) }()
	waitFor(t, "the swap", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.cur.db != old })
	for _, r := range recs[half:] {
		feed.Add(r)
	}
	waitFor(t, "the live fold while a reader holds the replaced file", func() bool { return p.Stats().Checkpoint == uint64(len(recs)) })
	// Nor does the rebuild's caller wait for them: the replaced file is closed after they
	// finish, and Close waits for that.
	select {
	case err := <-rebuilt:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Rebuild did not return while a reader held the replaced file")
	}
	closed := func() bool { old.mu.Lock(); defer old.mu.Unlock(); return old.bolt == nil }
	if closed() {
		t.Fatal("the replaced file was closed under its reader")
	}
	free()
	waitFor(t, "the replaced file closed after its reader", closed)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if liveDump(t, p) != cleanDump(t, recs) {
		t.Error("models differ from a clean build")
	}
}

// TestProjector_LiveLatency checks that a live event is applied promptly after it arrives
// (the feed's Wait wakes the runner; no polling delay).
func TestProjector_LiveLatency(t *testing.T) {
	t.Parallel()
	recs := population(10, 50, testKommuner)
	feed := NewSliceFeed(append([]Record(nil), recs[:len(recs)-20]...))
	p := newTestProjector(t, feed)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	go p.Run(ctx)
	waitFor(t, "catch-up", func() bool { return p.Stats().Checkpoint == uint64(len(recs)-20) })
	var worst time.Duration
	for _, r := range recs[len(recs)-20:] {
		t0 := time.Now()
		feed.Add(r)
		waitFor(t, "live apply", func() bool { return p.Stats().Checkpoint == r.Seq })
		worst = max(worst, time.Since(t0))
	}
	t.Logf("worst live apply latency over 20 events: %v", worst)
	if worst > 5*time.Second {
		t.Errorf("live apply took %v", worst)
	}
}

// TestProjector_Gaps checks that sequence gaps between the records delivered and events
// without a person key do not stall the runtime: the checkpoint reaches the last record.
func TestProjector_Gaps(t *testing.T) {
	t.Parallel()
	s := listScenario()
	var recs []Record
	for i, r := range s.recs {
		r.Seq = uint64(3*i + 5) // gaps before and between
		recs = append(recs, r)
	}
	recs = append(recs, Record{Seq: recs[len(recs)-1].Seq + 1, Event: &nirv1.Event{Id: "01NOKEY0000000000000000000"}})
	feed := NewSliceFeed(recs)
	p := newTestProjector(t, feed)
	ckpt, err := p.CatchUp(bg)
	if err != nil {
		t.Fatal(err)
	}
	if want := recs[len(recs)-1].Seq; ckpt != want {
		t.Fatalf("checkpoint = %d, want %d", ckpt, want)
	}
	p.Use("", func(db *DB) error {
		if db.Skipped() != 1 {
			t.Errorf("skipped = %d, want 1", db.Skipped())
		}
		page, err := db.ListPersons(PersonQuery{Kommune: "0301"})
		if err != nil || keys(page.Rows) != "p1,p2,p3,p5" {
			t.Errorf("list = %v, %v", page, err)
		}
		return nil
	})
	// A last sequence beyond the records the replay delivers is not taken as reached: the
	// checkpoint stays at the last record (the event store delivers every sequence, a hole
	// as a missing record; one that ends early is a store cut off, TestRun_ShortReplay...).
	last := recs[len(recs)-1].Seq
	gapFeed := &tailFeed{SliceFeed: feed, last: last + 10}
	p2 := newTestProjector(t, gapFeed)
	if c, err := p2.CatchUp(bg); !errors.Is(err, ErrShortReplay) || c != last {
		t.Errorf("checkpoint with a tail the replay does not deliver = %d, %v; want %d and ErrShortReplay", c, err, last)
	}
}

// tailFeed reports a last sequence beyond the records its replay delivers.
type tailFeed struct {
	*SliceFeed
	last uint64
}

func (f *tailFeed) LastSeq(context.Context) (uint64, error) { return f.last, nil }

// streamFeed is a Feed of encoded messages on person subjects that checks them as the event
// store does: decoded, a message that is not a usable event is delivered quarantined;
// undecoded, it is delivered as stored and the fold checks it.
type streamFeed struct {
	msgs []streamMsg
}

type streamMsg struct {
	seq uint64
	key string // the subject's person key
	raw []byte
}

func (f *streamFeed) LastSeq(context.Context) (uint64, error) {
	if len(f.msgs) == 0 {
		return 0, nil
	}
	return f.msgs[len(f.msgs)-1].seq, nil
}

func (f *streamFeed) Replay(ctx context.Context, opt ReplayOptions) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		to := opt.To
		if to == 0 {
			to, _ = f.LastSeq(ctx)
		}
		for _, m := range f.msgs {
			if m.seq < opt.From || m.seq > to {
				continue
			}
			rec := Record{Seq: m.seq, Raw: m.raw, PersonKey: m.key}
			if !opt.Undecoded {
				ev, reason := checkStored(m.raw, m.key)
				rec = Record{Seq: m.seq, Event: ev, Raw: m.raw, Quarantine: reason}
				if reason != "" {
					rec.Raw = nil
				} else if !opt.RecordedUntil.IsZero() && ev.GetRecordedAt().AsTime().After(opt.RecordedUntil) {
					continue
				}
			}
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// poisoned returns recs as stream messages with messages that are not usable events mixed
// in, and the quarantine they must end up in.
func poisoned(t *testing.T, recs []Record) (*streamFeed, []Quarantine) {
	t.Helper()
	var f streamFeed
	var want []Quarantine
	seq := uint64(0)
	add := func(key string, raw []byte, reason string) {
		seq++
		f.msgs = append(f.msgs, streamMsg{seq: seq, key: key, raw: raw})
		if reason != "" {
			want = append(want, Quarantine{Seq: seq, Reason: reason})
		}
	}
	for i, r := range recs {
		raw, err := proto.Marshal(r.Event)
		if err != nil {
			t.Fatal(err)
		}
		pk := r.Event.GetPersonKey()
		switch i % 17 {
		case 2:
			empty := proto.Clone(r.Event).(*nirv1.Event)
			empty.Payload = nil
			b, _ := proto.Marshal(empty)
			add(pk, b, QuarantineNoPayload) // no payload, and no newer kind's fields either
		case 3:
			add(pk, []byte{0xff, 0xff, 0xff, 0x07}, QuarantineUndecodable)
		case 5:
			// The event's own id at its top level, with a payload that does not decode: its
			// id is not indexed, and the event after it (the same id) is.
			bad := protowire.AppendTag(slices.Clone(raw), 20, protowire.BytesType)
			add(pk, protowire.AppendBytes(bad, []byte{0xff, 0xff}), QuarantineUndecodable)
		case 7:
			other := proto.Clone(r.Event).(*nirv1.Event)
			other.PersonKey = strings.Repeat("cd", 32)
			b, _ := proto.Marshal(other)
			add(pk, b, QuarantineOtherPerson) // another person's envelope on pk's subject
		case 11:
			noID := proto.Clone(r.Event).(*nirv1.Event)
			noID.Id = ""
			b, _ := proto.Marshal(noID)
			add(pk, b, QuarantineNoID)
		case 13:
			add(strings.Repeat("e", 64), []byte("not an event"), QuarantineUndecodable) // a subject of poison only
		}
		add(pk, raw, "")
	}
	return &f, want
}

// TestProjector_Quarantine: messages on the stream that are not usable events are skipped by
// catching up (in batches that split them anywhere), by a rebuild (which checks them when it
// folds) and by an as-of replay alike, with the same models and the same quarantine list;
// the count is in Stats and the list in Status.
func TestProjector_Quarantine(t *testing.T) {
	t.Parallel()
	feed, want := poisoned(t, population(7, 40, testKommuner))
	for _, batch := range []int{1, 7, 5000} {
		p, err := New(feed, Options{Dir: t.TempDir(), BatchSize: batch})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if _, err := p.CatchUp(bg); err != nil {
			t.Fatalf("catch-up in batches of %d over poison: %v", batch, err)
		}
		st, err := p.Status(bg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(st.Quarantined, want) || st.QuarantinedTotal != uint64(len(want)) || p.Stats().Quarantined != uint64(len(want)) {
			t.Fatalf("batch %d: quarantined %v (total %d, stats %d), want %v", batch, st.Quarantined, st.QuarantinedTotal, p.Stats().Quarantined, want)
		}
		if st.Lag != 0 {
			t.Fatalf("batch %d: lag %d after catch-up", batch, st.Lag)
		}
		caught := liveDump(t, p)
		if err := p.Rebuild(bg, nil); err != nil {
			t.Fatalf("rebuild over poison: %v", err)
		}
		if rebuilt := liveDump(t, p); rebuilt != caught {
			t.Fatalf("batch %d: a rebuild quarantines differently from catching up", batch)
		}
		if p.Stats().Quarantined != uint64(len(want)) {
			t.Fatalf("after rebuild Stats().Quarantined = %d, want %d", p.Stats().Quarantined, len(want))
		}
		db, err := p.AsOf(bg, AsOfOptions{RecordedUntil: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatalf("as-of replay over poison: %v", err)
		}
		q, err := db.Quarantined(0)
		db.Close()
		if err != nil || !slices.Equal(q, want) {
			t.Fatalf("as-of replay quarantined %v, %v; want %v", q, err, want)
		}
	}
}

// TestProjector_RebuildInChunks: a rebuild folds its persons in chunks, ahead of the writer,
// which writes the event-id index a transaction at a time between the chunks and takes out
// the entries of the events the fold quarantines: in chunks bounded by persons, or by events,
// and with the index in steps of a few entries, the rebuilt file equals catching up over the
// same poisoned stream.
func TestProjector_RebuildInChunks(t *testing.T) {
	feed, _ := poisoned(t, spreadKeys(population(9, 300, testKommuner)))
	// Events stored twice (the same id, later on the stream): the index keeps each id's
	// lowest sequence, also when the two entries fall in different steps of its writing.
	for _, m := range slices.Clone(feed.msgs[len(feed.msgs)-40:]) {
		m.seq = uint64(len(feed.msgs)) + 1
		feed.msgs = append(feed.msgs, m)
	}
	// Blocks of the event-id index of 3 entries, split as catching up adds to them.
	defer func(n int) { idsPerBlock = n }(idsPerBlock)
	idsPerBlock = 3
	p := caughtUpOn(t, feed, Options{Dir: t.TempDir()})
	caught := liveDump(t, p)
	persons, events, ids, spilled, sorted, sortedTx := foldPersonsPerTx, foldEventsPerTx, idsPerTx, spillEvents, sortedPutsMax, sortedPutsPerTx
	defer func() {
		foldPersonsPerTx, foldEventsPerTx, idsPerTx, spillEvents, sortedPutsMax, sortedPutsPerTx = persons, events, ids, spilled, sorted, sortedTx
	}()
	var sp *spill
	spillHook = func(s *spill) { sp = s }
	defer func() { spillHook = nil }()
	// Persons and events per chunk, index entries per step, events per spill range, bytes
	// of sorted model entries held and written per transaction (sortedPuts).
	for _, bound := range [][6]int{
		{7, 1 << 30, ids, 1 << 30, sorted, sortedTx},
		{1 << 30, 40, 13, 500, 3000, 7},
		{1, 1, 1, 1, 1, 1},
		{50, 200, ids, 120, 1 << 30, sortedTx},
	} {
		foldPersonsPerTx, foldEventsPerTx, idsPerTx, spillEvents, sortedPutsMax, sortedPutsPerTx = bound[0], bound[1], bound[2], bound[3], bound[4], bound[5]
		if err := p.Rebuild(bg, nil); err != nil {
			t.Fatal(err)
		}
		if rebuilt := liveDump(t, p); rebuilt != caught {
			t.Fatalf("folded in chunks of %d persons or %d events, the index in steps of %d, spilled in ranges of %d events, models sorted %d bytes at a time, %d a transaction: the rebuild differs from catching up", bound[0], bound[1], bound[2], bound[3], bound[4], bound[5])
		}
		if sp == nil || sp.spilled != len(sp.files) || sp.unusable != 0 {
			t.Fatalf("spilled in ranges of %d events: the fold read %+v", bound[3], sp)
		}
	}
}

// TestProjector_RebuildSpillDamaged: a rebuild's fold reads each range of persons from its
// spill file, and from the new file any range whose spill file does not hold what was
// written (a byte flipped, cut short, a write that failed): the rebuild still equals
// catching up.
func TestProjector_RebuildSpillDamaged(t *testing.T) {
	feed, _ := poisoned(t, spreadKeys(population(9, 300, testKommuner)))
	p := caughtUpOn(t, feed, Options{Dir: t.TempDir()})
	caught := liveDump(t, p)
	defer func(n int) { spillEvents = n }(spillEvents)
	spillEvents = 200
	defer func() { spillHook = nil }()
	defer func(n int64) { spillMaxRead = n }(spillMaxRead)
	// Each case damages the spill and returns how many of its ranges the fold must read
	// from the new file.
	for _, c := range []struct {
		name   string
		damage func(s *spill) (int, error)
	}{
		{"a byte flipped in range 0, range 2 cut short", func(s *spill) (int, error) {
			var b [1]byte
			at := s.size[0] / 2
			if _, err := s.files[0].ReadAt(b[:], at); err != nil {
				return 0, err
			}
			b[0] ^= 0x10
			if _, err := s.files[0].WriteAt(b[:], at); err != nil {
				return 0, err
			}
			return 2, s.files[2].Truncate(s.size[2] - 3)
		}},
		{"the last record of range 1 lost", func(s *spill) (int, error) {
			s.records[1]++ // as if the file had lost a whole record at its end
			return 1, nil
		}},
		{"a write failed", func(s *spill) (int, error) {
			s.err = errors.New("disk full")
			return len(s.files), nil
		}},
		{"ranges larger than the fold reads whole", func(s *spill) (int, error) {
			spillMaxRead = s.size[1] - 1
			n := 0
			for _, size := range s.size {
				if size > spillMaxRead {
					n++
				}
			}
			return n, nil
		}},
	} {
		var sp *spill
		var unusable int
		var damaged error
		spillHook = func(s *spill) {
			sp = s
			if len(s.files) < 3 || s.records[2] == 0 {
				damaged = fmt.Errorf("%d spill ranges, range 2 with %d events; want 3 or more, each with some", len(s.files), s.records[min(2, len(s.records)-1)])
				return
			}
			unusable, damaged = c.damage(s)
		}
		if err := p.Rebuild(bg, nil); err != nil || damaged != nil {
			t.Fatal(err, damaged)
		}
		spillMaxRead = 256 << 20
		if rebuilt := liveDump(t, p); rebuilt != caught {
			t.Fatalf("%s: the rebuild differs from catching up", c.name)
		}
		if unusable == 0 || sp.unusable != unusable || sp.spilled != len(sp.files)-unusable {
			t.Fatalf("%s: %d ranges read from the spill, %d from the file; want %d from the file", c.name, sp.spilled, sp.unusable, unusable)
		}
	}
}

// TestProjector_RebuildSpillDiskLow: the spill gives way to a disk that is nearly full: not
// begun when the disk has too little room at the start, stopped (its space given back at
// once) when it fills up meanwhile. The fold then reads every range from the new file, and
// the rebuild still equals catching up.
func TestProjector_RebuildSpillDiskLow(t *testing.T) {
	if free, size, ok := diskFree(t.TempDir()); runtime.GOOS == "linux" && (!ok || size <= 0 || free > size) {
		t.Fatalf("diskFree = %d free of %d (%v); want the filesystem's figures", free, size, ok)
	}
	feed, _ := poisoned(t, spreadKeys(population(9, 300, testKommuner)))
	p := caughtUpOn(t, feed, Options{Dir: t.TempDir()})
	caught := liveDump(t, p)
	defer func(n int) { spillEvents = n }(spillEvents)
	spillEvents = 200
	defer func(n int64) { spillCheckBytes = n }(spillCheckBytes)
	spillCheckBytes = 4000
	defer func(n int) { spillBuffer = n }(spillBuffer)
	spillBuffer = 256 // the files hold most of what was written when the spill stops
	defer func() { spillDiskFree, spillHook = diskFree, nil }()
	const gib = 1 << 30
	for _, c := range []struct {
		name   string
		frees  []int64 // free bytes at each look, the last repeated; the filesystem has 100 GiB
		stops  bool    // the spill stops midway (else: it is never begun)
		looked int     // at least
	}{
		{"too little room at the start", []int64{4*gib + gib/2}, false, 1},
		{"filling up meanwhile", append(slices.Repeat([]int64{40 * gib}, 60), 5*gib), true, 61},
	} {
		looked := 0
		spillDiskFree = func(string) (int64, int64, bool) {
			free := c.frees[min(looked, len(c.frees)-1)]
			looked++
			return free, 100 * gib, true
		}
		var sp *spill
		var held []int64 // each file's size on disk once the store pass is over
		spillHook = func(s *spill) {
			sp = s
			for _, f := range s.files {
				fi, err := f.Stat()
				if err != nil {
					t.Error(err)
					return
				}
				held = append(held, fi.Size())
			}
		}
		if err := p.Rebuild(bg, nil); err != nil {
			t.Fatal(err)
		}
		if rebuilt := liveDump(t, p); rebuilt != caught {
			t.Fatalf("%s: the rebuild differs from catching up", c.name)
		}
		if looked < c.looked {
			t.Fatalf("%s: the disk was looked at %d times, want %d or more", c.name, looked, c.looked)
		}
		if !c.stops {
			if sp != nil {
				t.Fatalf("%s: a spill was begun with 4.5 GiB free of 100 GiB", c.name)
			}
			continue
		}
		if sp == nil {
			t.Fatalf("%s: no spill was begun with 40 GiB free of 100 GiB", c.name)
		}
		if !errors.Is(sp.err, errSpillDiskLow) || sp.spilled != 0 || sp.unusable != len(sp.files) {
			t.Fatalf("%s: spill error %v, %d ranges read from it and %d from the file; want it stopped, every range read from the file", c.name, sp.err, sp.spilled, sp.unusable)
		}
		for i, n := range held {
			if n != 0 {
				t.Fatalf("%s: range %d's file holds %d bytes once the spill stopped; want none", c.name, i, n)
			}
		}
	}
}

// TestProjector_WaitFor: a reader waiting for its own append's sequence is woken when the
// live models have applied it, not before; a wait that ctx bounds ends with ctx's error.
func TestProjector_WaitFor(t *testing.T) {
	t.Parallel()
	recs := population(3, 50, testKommuner)
	feed := NewSliceFeed(append([]Record(nil), recs[:10]...))
	p := newTestProjector(t, feed)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if err := p.WaitFor(bg, 10); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(bg, 50*time.Millisecond)
	defer stop()
	if err := p.WaitFor(short, 20); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor(20) with 10 events in the stream = %v, want the deadline", err)
	}
	woken := make(chan error, 1)
	go func() { woken <- p.WaitFor(bg, 20) }()
	for _, r := range recs[10:20] {
		feed.Add(r)
	}
	select {
	case err := <-woken:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitFor(20) not woken after the 20th event was applied")
	}
	if c := p.Stats().Checkpoint; c < 20 {
		t.Fatalf("WaitFor(20) returned at checkpoint %d", c)
	}
}

// flakyFeed is a feed whose stream is unreachable while down is set: LastSeq and Replay
// fail, as over a partition.
type flakyFeed struct {
	*SliceFeed
	down     atomic.Bool
	failures atomic.Int32
}

func (f *flakyFeed) LastSeq(ctx context.Context) (uint64, error) {
	if f.down.Load() {
		f.failures.Add(1)
		return 0, errors.New("no responders")
	}
	return f.SliceFeed.LastSeq(ctx)
}

// TestProjector_RunSurvivesFeedOutage: while the stream cannot be reached, Run keeps the
// read models as they are and tries again; it neither stops nor skips anything, and
// catches up once the stream is back.
func TestProjector_RunSurvivesFeedOutage(t *testing.T) {
	t.Parallel()
	recs := population(4, 60, testKommuner)
	half := len(recs) / 2
	f := &flakyFeed{SliceFeed: NewSliceFeed(append([]Record(nil), recs[:half]...))}
	p := newTestProjector(t, f)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "catch-up", func() bool { return p.Stats().Checkpoint == uint64(half) })
	f.down.Store(true)
	for _, r := range recs[half:] {
		f.Add(r)
	}
	waitFor(t, "a few failed attempts", func() bool { return f.failures.Load() >= 3 })
	select {
	case err := <-done:
		t.Fatalf("Run returned during the outage: %v", err)
	default:
	}
	if c := p.Stats().Checkpoint; c != uint64(half) {
		t.Fatalf("checkpoint moved to %d while the stream was unreachable", c)
	}
	f.down.Store(false)
	waitFor(t, "catch-up after the outage", func() bool { return p.Stats().Checkpoint == uint64(len(recs)) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := liveDump(t, p), cleanDump(t, recs); got != want {
		t.Error("live models differ from a clean build after the outage")
	}
}

// TestProjector_CompareFold: caught-up models equal a fresh fold of the stream; a value
// changed in the live file behind the models' back (a statistics count) is found, and the
// fold runs up to the live checkpoint even when the stream has grown since.
func TestProjector_CompareFold(t *testing.T) {
	t.Parallel()
	recs := population(5, 200, testKommuner)
	half := len(recs) / 2
	feed := NewSliceFeed(slices.Clone(recs[:half]))
	p := newTestProjector(t, feed)
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	feed.Add(recs[half:]...) // the stream moves on; the models have not seen it
	fc, err := p.CompareFold(bg)
	if err != nil || !fc.Equal || fc.Checkpoint != recs[half-1].Seq || fc.Live == "" {
		t.Fatalf("CompareFold = %+v, %v; want equal at %d", fc, err, recs[half-1].Seq)
	}
	// Someone changes a count in the file (with a valid checksum: a tool that knows it).
	if err := p.Use("", func(db *DB) error {
		return db.update(func(tx *bolt.Tx) error {
			b := bucket(tx, bucketStats)
			k, v := b.Cursor().First()
			if k == nil {
				return errors.New("no statistics")
			}
			return b.Put(append([]byte(nil), k...), append(append([]byte(nil), v...), 1))
		})
	}); err != nil {
		t.Fatal(err)
	}
	fc, err = p.CompareFold(bg)
	if err != nil || fc.Equal || fc.Live == fc.Fresh {
		t.Fatalf("CompareFold after a change = %+v, %v; want a difference", fc, err)
	}
}
