package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// snapshotName is the shape of a snapshot's name, e.g. "2022@2023-02-28".
var snapshotName = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z@._-]{0,63}$`)

// WellFormedSnapshotName reports whether name has a snapshot name's shape: 1 to 64 letters,
// digits, @ . _ -, the first a letter or digit. The API checks names with it before they
// reach the models.
func WellFormedSnapshotName(name string) bool { return snapshotName.MatchString(name) }

// SnapshotNameIDShapes says, for a refusal, what a snapshot's name may not hold besides being
// well formed: the shapes of a national id (validSnapshotName; rules.RedactIDs masks more
// of them, these are the common ones).
const SnapshotNameIDShapes = "no run of 11 digits, nor 6 and 5 digits, or a date and 5, joined by separators, such as 010190-12345 or 01.01.90_12345: a national id's shape"

// validSnapshotName reports whether name may be a snapshot's: well formed, without anything
// shaped like a national id, which rules.RedactIDs would mask (snapshots are logged by name;
// national ids never are).
func validSnapshotName(name string) bool {
	return WellFormedSnapshotName(name) && rules.RedactIDs(name) == name
}

// AsOfOptions configure AsOf.
type AsOfOptions struct {
	// RecordedUntil is the cut-off: events recorded after it are left out (the feed applies
	// it). Required.
	RecordedUntil time.Time
	// Keep, when set, keeps the result as a named snapshot (e.g. "2022@2023-02-28") that Use
	// and queries can target like the live models. A snapshot of that name is an ErrExists
	// error unless Replace is set.
	Keep string
	// Replace lets Keep replace an existing snapshot of the same name.
	Replace bool
	// Progress is called after each transaction (may be nil).
	Progress func(Progress)
	// FromStream reads the whole stream. By default the events the live file holds through
	// the stream's last signed checkpoint before the cut-off's bound are taken from it once
	// they match the checkpoint (as Rebuild does); both give the same file.
	FromStream bool
}

// AsOf replays the stream up to its current end, leaving out every event recorded after the
// cut-off (corrections included), into a temporary file, with the same code as the live
// models. The caller gets the result open and must Close it; unless kept as a snapshot, the
// file is removed on Close. A kept snapshot stays open in the Projector (the returned DB is a
// separate read-only handle).
//
// One as-of replay runs at a time (ErrReplayRunning): each builds a file as large as the live
// one, with a spill beside it, and takes a rebuild's memory, so that requests made at once
// would otherwise exhaust both. For the same reason none runs during a rebuild
// (ErrRebuildRunning), nor a rebuild during it (a repair waits for it to end).
func (p *Projector) AsOf(ctx context.Context, opt AsOfOptions) (*DB, error) {
	if opt.RecordedUntil.IsZero() {
		return nil, fmt.Errorf("%w: recorded_until is required", ErrInvalidArgument)
	}
	if opt.Keep != "" && !validSnapshotName(opt.Keep) {
		return nil, fmt.Errorf("%w: not a snapshot name (letters, digits, @ . _ -; %s)", ErrInvalidArgument, SnapshotNameIDShapes)
	}
	if opt.Keep != "" && !opt.Replace && p.hasSnapshot(opt.Keep) {
		return nil, fmt.Errorf("%w: snapshot %q (replace it, or choose another name)", ErrExists, opt.Keep)
	}
	if !p.replaying.CompareAndSwap(false, true) {
		return nil, ErrReplayRunning
	}
	defer p.replaying.Store(false)
	if p.rebuilding.Load() {
		return nil, ErrRebuildRunning
	}
	to, provisional, err := p.cutOffBound(ctx, opt.RecordedUntil)
	if err != nil {
		return nil, fmt.Errorf("projections: as-of replay: %w", err)
	}
	f, err := os.CreateTemp(p.opt.Dir, "asof-*.db")
	if err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	tmp := f.Name()
	f.Close()
	src, release := p.liveSource(opt.FromStream)
	db, err := p.build(ctx, tmp, ReplayOptions{From: 1, To: to, RecordedUntil: opt.RecordedUntil}, src, opt.Progress)
	release()
	if err == nil {
		if err = p.reachedCutOff(ctx, db, to, opt.RecordedUntil); err != nil {
			db.Close()
			os.Remove(tmp)
		}
	}
	if err == nil && ctx.Err() != nil {
		// Stopped after the replay (its fold does not look at ctx): a replay asked to stop
		// keeps nothing, as one stopped earlier.
		db.Close()
		os.Remove(tmp)
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("projections: as-of replay: %w", err)
	}
	if p.repair.Load() == nil {
		// As a rebuild: figures as known then must not lack an event the live models hold
		// because its record can no longer be read from the stream.
		if err := p.checkLost(db); err != nil {
			db.Close()
			os.Remove(tmp)
			p.logger.Error("as-of replay refused: the stream lacks events the live read models hold; restore the stream from a backup (nirctl verify names the sequences)", "err", err)
			return nil, fmt.Errorf("projections: as-of replay: %w", err)
		}
	}
	if !provisional.IsZero() {
		p.logger.Warn("as-of replay made before its cut-off had settled: an event recorded by the cut-off may still reach the stream; replay again after settled_at for final figures", "recorded_until", opt.RecordedUntil, "settled_at", provisional, "snapshot", opt.Keep)
	}
	if err := db.setAsOf(opt.RecordedUntil, provisional, opt.Keep != ""); err != nil {
		db.Close()
		os.Remove(tmp)
		return nil, err
	}
	if opt.Keep == "" {
		db.removeOnClose = true
		return db, nil
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	final := filepath.Join(p.opt.Dir, snapshotDir, opt.Keep+".db")
	// Take a replaced snapshot out of service first, and wait for its queries without holding
	// the lock (a query may itself look at the Projector).
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		os.Remove(tmp)
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		// The last moment a stop keeps the name as it was.
		p.mu.Unlock()
		os.Remove(tmp)
		return nil, fmt.Errorf("projections: as-of replay: %w", err)
	}
	old := p.snaps[opt.Keep]
	if old != nil && !opt.Replace {
		// Another replay kept the name while this one ran.
		p.mu.Unlock()
		os.Remove(tmp)
		return nil, fmt.Errorf("%w: snapshot %q (replace it, or choose another name)", ErrExists, opt.Keep)
	}
	delete(p.snaps, opt.Keep)
	p.mu.Unlock()
	if old != nil {
		old.refs.Wait()
		old.db.Close()
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("projections: keep snapshot: %w", err)
	}
	syncDir(filepath.Dir(final))
	sdb, err := Open(final, DBOptions{ReadOnly: true, Logger: p.logger, Open: p.opt.Open})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		sdb.Close()
		return nil, ErrClosed
	}
	p.snaps[opt.Keep] = &handle{db: sdb}
	p.mu.Unlock()
	return Open(final, DBOptions{ReadOnly: true, Logger: p.logger, Open: p.opt.Open})
}

// cutOffBound returns the last sequence an as-of replay to recordedUntil reads: the stream's
// last, or below it the bound the feed resolves the cut-off to (Attester.CutOff). When it
// is resolved before the bound has settled, provisionalUntil is the instant it settles;
// zero otherwise.
func (p *Projector) cutOffBound(ctx context.Context, recordedUntil time.Time) (last uint64, provisionalUntil time.Time, err error) {
	asked := time.Now()
	if last, err = p.feed.LastSeq(ctx); err != nil {
		return 0, time.Time{}, err
	}
	if att, ok := p.feed.(Attester); ok {
		bound, settled, err := att.CutOff(ctx, recordedUntil)
		if err != nil {
			return 0, time.Time{}, err
		}
		last = min(last, bound)
		if asked.Before(settled) {
			provisionalUntil = settled
		}
	}
	return last, provisionalUntil, nil
}

// reachedCutOff checks that an as-of replay into db read through to, the cut-off's bound:
// every sequence after the last one stored must be an event recorded after the cut-off. The
// replay delivers nothing for those, so one that ended early without an error (a node cut off
// by a partition answering as the stream's leader from a store that ends early) looked like
// one that left them out, and was kept as complete (TestAsOf_ShortReplayKeepsNothing). The
// sequences read again are those after the last event recorded by the cut-off: about the
// clock skew's worth of events (more only after a backdated load).
func (p *Projector) reachedCutOff(ctx context.Context, db *DB, to uint64, cut time.Time) error {
	ckpt, err := db.Checkpoint()
	if err != nil || ckpt >= to {
		return err
	}
	next := ckpt + 1
	for r, err := range p.feed.Replay(ctx, ReplayOptions{From: next, To: to}) {
		if err != nil {
			return &feedError{fmt.Errorf("projections: as-of replay: check seq %d..%d: %w", ckpt+1, to, err)}
		}
		if r.Seq != next || r.Quarantine != "" || !r.Event.GetRecordedAt().AsTime().After(cut) {
			break
		}
		next++
	}
	if next <= to {
		return &feedError{fmt.Errorf("%w: the as-of replay to seq %d stored through seq %d, and seq %d was not left out by the cut-off (replay again)", ErrShortReplay, to, ckpt, next)}
	}
	return nil
}

// OpenSnapshots opens the named snapshots kept in Dir (after a restart). A snapshot written by
// another SchemaVersion cannot be read; it is skipped with a warning (replay it again). No
// single snapshot file stops it: a damaged one (also an empty file, or a directory or FIFO
// in its place) is moved aside and one that cannot be opened is skipped, each logged and not
// served; it fails only when the snapshots' directory cannot be read.
func (p *Projector) OpenSnapshots() error {
	entries, err := os.ReadDir(filepath.Join(p.opt.Dir, snapshotDir))
	if err != nil {
		return fmt.Errorf("projections: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".db")
		if !ok || !WellFormedSnapshotName(name) {
			continue
		}
		if !validSnapshotName(name) {
			// Valid before RedactIDs masked more separators (an underscore: 20221231_20230228);
			// said, so that the snapshot is not gone without a word, without its digits.
			p.logger.Warn("snapshot not served: its name is shaped like a national id, which no log may hold; rename it ("+SnapshotNameIDShapes+")", "snapshot", rules.RedactIDs(name))
			continue
		}
		p.mu.RLock()
		_, open := p.snaps[name]
		p.mu.RUnlock()
		if open {
			continue
		}
		path := filepath.Join(p.opt.Dir, snapshotDir, e.Name())
		db, err := Open(path, DBOptions{ReadOnly: true, Logger: p.logger, Open: p.opt.Open})
		if errors.Is(err, ErrSchema) {
			p.logger.Warn("snapshot of another schema version skipped", "snapshot", name)
			continue
		}
		if errors.Is(err, ErrCorrupt) {
			// A snapshot is not rebuilt by itself: its cut-off is an operator's choice.
			aside, merr := moveAside(path)
			p.logger.Error("snapshot file damaged; moved aside, not served (create it again)", "snapshot", name, "path", aside, "err", errors.Join(err, merr))
			continue
		}
		if err != nil {
			// Not served, but no reason to keep the register down (a dangling link, a
			// file nird may not read).
			p.logger.Error("snapshot file cannot be opened; not served", "snapshot", name, "path", path, "err", err)
			continue
		}
		p.mu.Lock()
		p.snaps[name] = &handle{db: db}
		p.mu.Unlock()
	}
	return nil
}

// hasSnapshot reports whether a snapshot of that name is open or on disk.
func (p *Projector) hasSnapshot(name string) bool {
	p.mu.RLock()
	_, open := p.snaps[name]
	p.mu.RUnlock()
	if open {
		return true
	}
	_, err := os.Stat(filepath.Join(p.opt.Dir, snapshotDir, name+".db"))
	return err == nil
}

// DeleteSnapshot closes and removes a named snapshot.
func (p *Projector) DeleteSnapshot(name string) error {
	p.mu.Lock()
	h := p.snaps[name]
	delete(p.snaps, name)
	p.mu.Unlock()
	if h == nil {
		return fmt.Errorf("%w: snapshot %q", ErrNotFound, name)
	}
	h.refs.Wait()
	h.db.Close()
	return os.Remove(filepath.Join(p.opt.Dir, snapshotDir, name+".db"))
}

// Snapshots lists the open snapshots by name.
func (p *Projector) Snapshots() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]string, 0, len(p.snaps))
	for n := range p.snaps {
		out = append(out, n)
	}
	sortStrings(out)
	return out
}

// Kommuner returns the kommuner that have persons in the person list, in order.
func (db *DB) Kommuner() ([]string, error) {
	var out []string
	err := db.view(func(tx *bolt.Tx) error {
		c := bucket(tx, bucketList).Cursor()
		for k, _ := c.First(); k != nil; {
			i := strings.IndexByte(string(k), 0)
			if i < 0 {
				k, _ = c.Next()
				continue
			}
			kom := string(k[:i])
			out = append(out, kom)
			k, _ = c.Seek(append([]byte(kom), 1))
		}
		return nil
	})
	return out, err
}

// WriteReport writes the year's results to dir as JSON and CSV: statistics.{json,csv} (every
// kommune, fylke and the nation, on the year's kommune structure, with disclosure control:
// counts of 1 to minCount-1 and what would reveal them are «:», DOMAIN.md Product decisions
// 14; minCount ≤ 1 suppresses nothing), terminated.{json,csv} (the report of terminated
// participants, both laws) and persons.csv (every kommune's person list, including persons
// without a bostedskommune, analyst view without national ids, with each deadline's status on
// now: StatusColumns). It returns the files written.
func (db *DB) WriteReport(dir string, year int, now rules.Date, minCount int64) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	var files []string
	write := func(name string, fn func(f *os.File) error) error {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return fmt.Errorf("projections: write %s: %w", name, err)
		}
		files = append(files, path)
		return f.Close()
	}

	stats, _, err := db.PublishedStatistics(year, rules.Date{}, minCount)
	if err != nil {
		return nil, err
	}
	if err := write("statistics.json", func(f *os.File) error {
		out := make([]statJSON, len(stats))
		for i := range stats {
			out[i] = toStatJSON(&stats[i])
		}
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}); err != nil {
		return nil, err
	}
	if err := write("statistics.csv", func(f *os.File) error { return writeStatsCSV(f, stats) }); err != nil {
		return nil, err
	}

	rep, err := db.Terminated(ReportQuery{Year: year, All: true})
	if err != nil {
		return nil, err
	}
	if err := write("terminated.json", func(f *os.File) error {
		out := struct {
			Year          int              `json:"year"`
			WithReason    int              `json:"with_reason"`
			WithoutReason int              `json:"without_reason"`
			Rows          []terminatedJSON `json:"rows"`
		}{Year: year, WithReason: rep.WithReason, WithoutReason: rep.WithoutReason, Rows: []terminatedJSON{}}
		for i := range rep.Rows {
			out.Rows = append(out.Rows, toTerminatedJSON(&rep.Rows[i]))
		}
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}); err != nil {
		return nil, err
	}
	if err := write("terminated.csv", func(f *os.File) error { return writeTerminatedCSV(f, rep.Rows) }); err != nil {
		return nil, err
	}

	if err := write("persons.csv", func(f *os.File) error {
		_, err := db.exportAllCSV(f, now)
		return err
	}); err != nil {
		return nil, err
	}
	return files, nil
}

// CounterNames names the statistics counters in JSON and CSV, in Counter order (reasons as
// "terminated_<REASON>").
func CounterNames() []string {
	names := []string{"participants", "new", "ongoing", "terminated", "terminated_registered",
		"terminated_computed", "reason_not_registered", "direct_work_or_education", "training_vedtak",
		"norsk_hours", "samfunnskunnskap_hours", "training_started", "training_started_within_3_months", "training_hours_persons",
		"norsk_hours_persons", "samfunnskunnskap_hours_persons"}
	for r := range NumReasons {
		n := enumName(nirv1.TerminationReason(r).String(), "TERMINATION_REASON_")
		if n == "" {
			n = "UNSPECIFIED"
		}
		names = append(names, "terminated_"+n)
	}
	return names
}

type statJSON struct {
	Year                      int            `json:"year"`
	Level                     Level          `json:"level"`
	Area                      string         `json:"area"`
	Counters                  map[string]any `json:"counters"`
	ShareDirectWorkEducation  any            `json:"share_direct_work_or_education"`
	ShareStartedWithin3Months any            `json:"share_training_started_within_3_months"`
	// Suppressed names the counters withheld by disclosure control, «:» in Counters.
	Suppressed []string `json:"suppressed,omitempty"`
	Footnote   string   `json:"footnote,omitempty"`
}

func counterValue(i int, v int64) any {
	if Counter(i) == CNorskHours || Counter(i) == CSamfunnHours {
		return Hours(v).Float()
	}
	return v
}

func toStatJSON(s *StatRow) statJSON {
	out := statJSON{Year: s.Year, Level: s.Level, Area: s.Area, Counters: map[string]any{},
		ShareDirectWorkEducation: s.ShareDirectWorkOrEducation(), ShareStartedWithin3Months: s.ShareStartedWithin3Months()}
	for i, n := range CounterNames() {
		if s.IsSuppressed(Counter(i)) {
			out.Counters[n] = ":"
			out.Suppressed = append(out.Suppressed, n)
			continue
		}
		out.Counters[n] = counterValue(i, s.Counters[i])
	}
	if s.ShareDirectSuppressed() {
		out.ShareDirectWorkEducation = ":"
	}
	if s.ShareWithin3mSuppressed() {
		out.ShareStartedWithin3Months = ":"
	}
	if len(out.Suppressed) > 0 {
		out.Footnote = Footnote
	}
	return out
}

func writeStatsCSV(f *os.File, rows []StatRow) error {
	var b []byte
	b = append(b, "year,level,area"...)
	for _, n := range CounterNames() {
		b = append(b, ',')
		b = append(b, n...)
	}
	b = append(b, ",share_direct_work_or_education,share_training_started_within_3_months\n"...)
	for i := range rows {
		r := &rows[i]
		b = strconv.AppendInt(b, int64(r.Year), 10)
		b = append(b, ',')
		b = append(b, r.Level...)
		b = append(b, ',')
		b = append(b, r.Area...)
		for c, v := range r.Counters {
			b = append(b, ',')
			switch {
			case r.IsSuppressed(Counter(c)):
				b = append(b, ':') // disclosure control (Product decisions 14)
			case Counter(c) == CNorskHours || Counter(c) == CSamfunnHours:
				b = appendHours(b, Hours(v))
			default:
				b = strconv.AppendInt(b, v, 10)
			}
		}
		b = append(b, ',')
		if r.ShareDirectSuppressed() {
			b = append(b, ':')
		} else {
			b = strconv.AppendFloat(b, r.ShareDirectWorkOrEducation(), 'f', 4, 64)
		}
		b = append(b, ',')
		if r.ShareWithin3mSuppressed() {
			b = append(b, ':')
		} else {
			b = strconv.AppendFloat(b, r.ShareStartedWithin3Months(), 'f', 4, 64)
		}
		b = append(b, '\n')
	}
	_, err := f.Write(b)
	return err
}

type terminatedJSON struct {
	PersonKey        string `json:"person_key"`
	Kommune          string `json:"kommune"`
	Law              string `json:"law"`
	Scheme           string `json:"scheme"`
	ProgrammeStart   string `json:"programme_start"`
	Date             string `json:"termination_date"`
	Reason           string `json:"reason"`
	ReasonRegistered bool   `json:"reason_registered"`
	Computed         bool   `json:"computed"`
	EventID          string `json:"event_id"`
}

func toTerminatedJSON(t *TerminatedRow) terminatedJSON {
	return terminatedJSON{PersonKey: t.PersonKey, Kommune: t.Kommune, Law: enumName(t.Law.String(), "LAW_"), Scheme: enumName(t.Scheme.String(), "SCHEME_"),
		ProgrammeStart: string(appendDate(nil, t.ProgrammeStart)), Date: string(appendDate(nil, t.Date)),
		Reason: enumName(t.Reason.String(), "TERMINATION_REASON_"), ReasonRegistered: t.ReasonRegistered(),
		Computed: t.Computed, EventID: t.EventID}
}

// TerminatedCSVColumns documents the columns of the terminated report's CSV.
var TerminatedCSVColumns = []string{"person_key", "kommune", "law", "scheme", "programme_start", "termination_date",
	"reason", "reason_registered", "computed", "event_id"}

func writeTerminatedCSV(f *os.File, rows []TerminatedRow) error {
	b := []byte(strings.Join(TerminatedCSVColumns, ",") + "\n")
	for i := range rows {
		j := toTerminatedJSON(&rows[i])
		b = appendField(b, j.PersonKey)
		for _, s := range []string{j.Kommune, j.Law, j.Scheme, j.ProgrammeStart, j.Date, j.Reason} {
			b = append(b, ',')
			b = appendField(b, s)
		}
		b = append(b, ',')
		b = appendBool(b, j.ReasonRegistered)
		b = append(b, ',')
		b = appendBool(b, j.Computed)
		b = append(b, ',')
		b = appendField(b, j.EventID)
		b = append(b, '\n')
	}
	_, err := f.Write(b)
	return err
}
