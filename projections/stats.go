package projections

import (
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Level is the area level of statistics.
type Level string

// Levels.
const (
	LevelKommune Level = "kommune"
	LevelFylke   Level = "fylke"
	LevelNation  Level = "nation"
)

// StatRow is the statistics of one data year for one area (kommune, fylke or the nation), by
// effective dates (DOMAIN.md Product decisions 7).
type StatRow struct {
	Year  int
	Level Level
	// Area is the kommunenummer, the fylkesnummer (first two digits) or "" for the nation.
	Area     string
	Counters Counters
	// Suppressed marks the counters disclosure control withholds (PublishedStatistics); nil
	// when none is.
	Suppressed *[NumCounters]bool
}

// Get returns one counter.
func (s *StatRow) Get(c Counter) int64 { return s.Counters[c] }

// Reason returns the number of terminations in the year with avslutningsårsak r.
func (s *StatRow) Reason(r nirv1.TerminationReason) int64 {
	if int(r) < 0 || int(r) >= NumReasons {
		return 0
	}
	return s.Counters[int(CReasonBase)+int(r)]
}

// ShareDirectWorkOrEducation is the share of terminations going directly to work or education
// (0 when nobody terminated).
func (s *StatRow) ShareDirectWorkOrEducation() float64 {
	return ratio(s.Counters[CDirectWorkOrEducation], s.Counters[CTerminated])
}

// ShareStartedWithin3Months is the share of training starts within 3 months.
func (s *StatRow) ShareStartedWithin3Months() float64 {
	return ratio(s.Counters[CTrainingStartedWithin3m], s.Counters[CTrainingStarted])
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Statistics returns a data year's statistics at a level on the data year's own kommune
// structure (StatisticsOn with a zero structure date), one row per area with data.
func (db *DB) Statistics(year int, level Level, area string) ([]StatRow, error) {
	rows, _, err := db.StatisticsOn(year, level, area, rules.Date{})
	return rows, err
}

// KommuneMapping says how statistics counted under one kommunenummer (as registered) are
// reported on another structure (Product decisions 13): From is reported as To, or, when the
// kommune has no single number in that structure (a split, or a merger before it happened),
// under its own number with the Candidates it corresponds to.
type KommuneMapping struct {
	From, To   string
	Candidates []string
}

// StatisticsOn returns a data year's statistics at a level, one row per area with data, in area
// order, on the kommune structure valid on date structure: zero means the data year's own
// (1 January of the year), and today's date gives today's structure (DOMAIN.md Product
// decisions 7, 13). The models count under the numbers events were registered with; each is
// mapped to the structure (rules.KommuneIn), and the mappings applied are returned. With area
// set, only that area (a kommunenummer or fylkesnummer of the structure; a kommunenummer of
// another structure is mapped first) is returned. Fylke and nation rows are sums of the
// kommune rows; a kommune counts in the fylke of its first two digits in the structure.
func (db *DB) StatisticsOn(year int, level Level, area string, structure rules.Date) ([]StatRow, []KommuneMapping, error) {
	if year < 1900 || year > 9999 {
		return nil, nil, fmt.Errorf("%w: year %d", ErrInvalidArgument, year)
	}
	switch level {
	case LevelKommune, LevelFylke, LevelNation:
	default:
		return nil, nil, fmt.Errorf("%w: level %q", ErrInvalidArgument, level)
	}
	if structure.IsZero() {
		structure = rules.Date{Y: year, M: time.January, D: 1}
	}
	if level == LevelKommune && len(area) == 4 {
		if a, _, ok := rules.KommuneIn(area, structure); ok {
			area = a
		}
	}
	acc := map[string]*StatRow{}
	mapped := map[string]KommuneMapping{}
	err := db.view(func(tx *bolt.Tx) error {
		prefix := statKey(year, "")
		c := bucket(tx, bucketStats).Cursor()
		for k, v := c.Seek(prefix); hasPrefix(k, prefix); k, v = c.Next() {
			kommune := string(k[2:])
			to, cands, ok := rules.KommuneIn(kommune, structure)
			if to != kommune || !ok {
				mapped[kommune] = KommuneMapping{From: kommune, To: to, Candidates: cands}
			}
			var key string
			switch level {
			case LevelKommune:
				key = to
			case LevelFylke:
				if len(to) >= 2 {
					key = to[:2]
				}
			}
			if area != "" && key != area {
				continue
			}
			var cs Counters
			if err := cs.decode(v); err != nil {
				return fmt.Errorf("stats %d/%s: %w", year, kommune, err)
			}
			r := acc[key]
			if r == nil {
				r = &StatRow{Year: year, Level: level, Area: key}
				acc[key] = r
			}
			r.Counters.add(&cs, 1)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]StatRow, 0, len(acc))
	for _, r := range acc {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Area < out[j].Area })
	ms := make([]KommuneMapping, 0, len(mapped))
	for _, m := range mapped {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].From < ms[j].From })
	return out, ms, nil
}

// ReportQuery selects the report of terminated participants (DOMAIN.md 6.2).
type ReportQuery struct {
	// Year is the termination year (effective date).
	Year int
	// Kommune limits the report to one kommune ("" = all).
	Kommune string
	// Law limits it to one law (LAW_UNSPECIFIED = both laws).
	Law nirv1.Law
	// Scheme limits it to one kategori, e.g. SCHEME_RETT_OG_PLIKT («rett og plikt
	// introduksjonsprogram») or SCHEME_KAN_TILBYS (SCHEME_UNSPECIFIED = all; DOMAIN.md 6.2).
	Scheme nirv1.Scheme
	// Registered filters «med registrert årsak» (With) or «ikke registrert» (Without).
	Registered Filter
}

// Report is the report of terminated participants of a year.
type Report struct {
	Rows []TerminatedRow
	// WithReason and WithoutReason count rows with a registered avslutningsårsak and with
	// «Avslutningsårsak ikke registrert».
	WithReason, WithoutReason int
	// ByReason counts rows by avslutningsårsak.
	ByReason map[nirv1.TerminationReason]int
}

// Terminated returns the report of participants whose programme terminated in the year, with
// the effective termination of each: a reason the kommune registers later replaces
// «Avslutningsårsak ikke registrert», a deleted computed termination is gone, and a retracted
// termination is gone.
func (db *DB) Terminated(q ReportQuery) (*Report, error) {
	if q.Year < 1900 || q.Year > 9999 {
		return nil, fmt.Errorf("%w: year %d", ErrInvalidArgument, q.Year)
	}
	rep := &Report{ByReason: map[nirv1.TerminationReason]int{}}
	err := db.view(func(tx *bolt.Tx) error {
		prefix := statKey(q.Year, q.Kommune)
		c := bucket(tx, bucketTerminated).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			var t TerminatedRow
			if err := t.decode(v); err != nil {
				return fmt.Errorf("terminated %d: %w", q.Year, err)
			}
			if q.Law != nirv1.Law_LAW_UNSPECIFIED && t.Law != q.Law {
				continue
			}
			if q.Scheme != nirv1.Scheme_SCHEME_UNSPECIFIED && t.Scheme != q.Scheme {
				continue
			}
			if !q.Registered.match(t.ReasonRegistered()) {
				continue
			}
			rep.Rows = append(rep.Rows, t)
			if t.ReasonRegistered() {
				rep.WithReason++
			} else {
				rep.WithoutReason++
			}
			rep.ByReason[t.Reason]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

func hasPrefix(k, p []byte) bool {
	return len(k) >= len(p) && string(k[:len(p)]) == string(p)
}
