package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/feed"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/sealing"
)

// Anomaly is one thing the checker found wrong.
type Anomaly struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// Anomaly kinds. Every one makes the verdict invalid.
const (
	Lost              = "acknowledged-event-lost"     // acknowledged, not in the stream
	Moved             = "acknowledged-event-moved"    // in the stream at another sequence than acknowledged
	Duplicated        = "event-stored-twice"          // one event id at two sequences
	Reordered         = "person-order-differs"        // a person's events not in acknowledgement order
	Unacknowledged    = "unacknowledged-event-stored" // stored, yet refused or never acknowledged
	Phantom           = "phantom-event"               // stored, sent by nobody
	WrongfulRefusal   = "valid-registration-refused"  // a valid script event refused
	Indeterminate     = "outcome-unknown-at-end"      // a script left unfinished after the final phase
	TerminationTwice  = "termination-computed-twice"  // two computed terminations of one programme
	TerminationMissed = "termination-missed"          // a computed termination due and not stored
	StaleRead         = "read-your-writes-violated"   // a query with min_sequence missed the client's write
	SlowTakeover      = "lease-takeover-too-slow"     // no nird took the regelmotor over within the bound
	LeaseHolders      = "lease-holders-at-end"        // not exactly one regelmotor at the end
	NotConverged      = "read-models-not-converged"   // a nird's read models never reached the stream's end
	Diverged          = "read-models-differ"          // read models differ between nird or from a clean build
	NotRecovered      = "cluster-not-recovered"       // after the faults healed, nird never became ready again
	ClaimMissing      = "id-claim-missing"            // a registration's further id stored without its claim
	ClaimOrphaned     = "id-claim-orphaned"           // a claim whose event is not stored on the person it names
	SequenceMissing   = "stream-sequence-missing"     // a replay found a sequence the stream leader lost
)

// Verdict is the checker's result with the counts it rests on.
type Verdict struct {
	Valid     bool      `json:"valid"`
	Sync      string    `json:"sync_interval"`
	Start     time.Time `json:"start"`
	FaultTime string    `json:"fault_phase"`
	Seed      uint64    `json:"seed"`

	Persons            int               `json:"persons"`
	PersonsDue         int               `json:"persons_due"`
	Ops                int               `json:"ops"`
	Outcomes           map[string]int    `json:"outcomes"`
	Via                map[string]int    `json:"acknowledged_via"`
	Acknowledged       int               `json:"events_acknowledged"`
	DuplicateAcks      int               `json:"acks_of_retries_already_stored"`
	StreamEvents       int               `json:"stream_events"`
	ComputedTerminated int               `json:"computed_terminations"`
	Probes             map[string]int    `json:"read_your_writes_probes"`
	Faults             map[string]int    `json:"faults"`
	FaultErrors        int               `json:"faults_not_injected"`
	Takeovers          []string          `json:"lease_takeovers"`
	Convergence        string            `json:"read_model_convergence"`
	Digests            map[string]string `json:"read_model_digests"`
	LeaderFills        int               `json:"replay_leader_fills"`
	Missing            int               `json:"replay_missing"`

	Anomalies []Anomaly `json:"anomalies"`
}

func (v *Verdict) add(kind, format string, args ...any) {
	v.Anomalies = append(v.Anomalies, Anomaly{Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

// checkStream compares the workload's history with the stream: every acknowledged event
// stored exactly once at its acknowledged sequence, each person's events in acknowledgement
// order, nothing stored that was refused or never acknowledged or never sent, and the
// regelmotor's computed terminations: none twice, none due and missing.
func checkStream(ctx context.Context, v *Verdict, store *eventstore.Store, persons []*Person, ops []Op, today rules.Date) error {
	byID := map[string][]eventstore.Stored{}
	byPerson := map[string][]eventstore.Stored{}
	for s, err := range store.Replay(ctx, eventstore.ReplayOptions{}) {
		if err != nil {
			return fmt.Errorf("chaos: replay the stream: %w", err)
		}
		v.StreamEvents++
		byID[s.Event.GetId()] = append(byID[s.Event.GetId()], s)
		byPerson[s.PersonKey] = append(byPerson[s.PersonKey], s)
	}
	for id, ss := range byID {
		if len(ss) > 1 {
			seqs := make([]uint64, len(ss))
			for i, s := range ss {
				seqs[i] = s.Seq
			}
			v.add(Duplicated, "event %s at sequences %v", id, seqs)
		}
	}

	sent := map[string]bool{}
	v.Outcomes = map[string]int{}
	v.Via = map[string]int{}
	for _, op := range ops {
		v.Ops++
		v.Outcomes[string(op.Outcome)]++
		if op.Outcome == OK {
			v.Via[op.Via]++
		}
		if op.Outcome == Refused {
			v.add(WrongfulRefusal, "person %d event %d (%s) refused via %s: %s", op.Person, op.Event, op.EventID, op.Via, op.Err)
		}
	}
	v.Persons = len(persons)
	for _, p := range persons {
		p.mu.Lock()
		acks, refused, done, next := append([]Ack(nil), p.Acks...), append([]string(nil), p.Refused...), p.done, p.next
		p.mu.Unlock()
		if p.Due {
			v.PersonsDue++
		}
		for _, e := range p.Events {
			sent[e.GetId()] = true
		}
		acked := map[string]bool{}
		var last uint64
		for _, a := range acks {
			v.Acknowledged++
			if a.Duplicate {
				v.DuplicateAcks++
			}
			acked[a.EventID] = true
			ss := byID[a.EventID]
			switch {
			case len(ss) == 0:
				v.add(Lost, "person %d: event %s acknowledged at seq %d via %s, not in the stream", p.Index, a.EventID, a.Seq, a.Via)
				continue
			case ss[0].Seq != a.Seq:
				v.add(Moved, "person %d: event %s acknowledged at seq %d, stored at %d", p.Index, a.EventID, a.Seq, ss[0].Seq)
			case ss[0].PersonKey != a.PersonKey:
				v.add(Moved, "person %d: event %s acknowledged for person %s, stored for %s", p.Index, a.EventID, a.PersonKey, ss[0].PersonKey)
			}
			if a.Seq <= last {
				v.add(Reordered, "person %d: event %s acknowledged at seq %d after seq %d", p.Index, a.EventID, a.Seq, last)
			}
			last = a.Seq
		}
		for _, id := range refused {
			if len(byID[id]) > 0 {
				v.add(Unacknowledged, "person %d: refused event %s is stored at seq %d", p.Index, id, byID[id][0].Seq)
			}
		}
		if !done {
			v.add(Indeterminate, "person %d: event %d never acknowledged or refused", p.Index, next)
		}
		for i, e := range p.Events {
			if acked[e.GetId()] || len(byID[e.GetId()]) == 0 {
				continue
			}
			if !done && i == next {
				continue // its outcome is unknown, reported above
			}
			v.add(Unacknowledged, "person %d: event %d (%s) is stored at seq %d but was never acknowledged", p.Index, i, e.GetId(), byID[e.GetId()][0].Seq)
		}
	}

	// Ids claimed in the registration's atomic batch (DOMAIN.md Product decisions 15): every
	// stored registration with a further id has its claim, every claim its registration.
	claimed := map[string]bool{} // event ids whose claim is stored
	for _, ss := range byPerson {
		for _, s := range ss {
			c := s.Event.GetIdentifierClaimed()
			if c == nil {
				continue
			}
			claimed[c.GetEventId()] = true
			if reg := byID[c.GetEventId()]; len(reg) == 0 || reg[0].PersonKey != c.GetPersonKey() {
				v.add(ClaimOrphaned, "claim at seq %d names event %s of person %s, which is not stored there", s.Seq, c.GetEventId(), c.GetPersonKey())
			}
		}
	}
	for _, ss := range byPerson {
		for _, s := range ss {
			if pr := s.Event.GetPersonRegistered(); pr != nil && pr.GetFodselsnummer() != "" && pr.GetDNummer() != "" && !claimed[s.Event.GetId()] {
				v.add(ClaimMissing, "registration %s at seq %d stored without the claim of its D-nummer", s.Event.GetId(), s.Seq)
			}
		}
	}

	for pk, ss := range byPerson {
		evs := make([]*nirv1.Event, len(ss))
		perProgramme := map[string]int{}
		for i, s := range ss {
			evs[i] = s.Event
			if s.Event.GetIdentifierClaimed() != nil {
				continue // nird's own, checked above
			}
			if tc := s.Event.GetTerminationComputed(); tc != nil {
				v.ComputedTerminated++
				key := s.Event.GetKommune() + "/" + fmt.Sprint(tc.GetProgrammeStart())
				perProgramme[key]++
				if perProgramme[key] == 2 {
					v.add(TerminationTwice, "person %s: a second computed termination of programme %s at seq %d", pk, key, s.Seq)
				}
			} else if !sent[s.Event.GetId()] {
				v.add(Phantom, "person %s: event %s at seq %d was sent by no client", pk, s.Event.GetId(), s.Seq)
			}
		}
		st := rules.Fold(pk, evs)
		if due := rules.DueTerminations(st, today); len(due) > 0 {
			v.add(TerminationMissed, "person %s: %d computed termination(s) due on %s not stored (e.g. %s)", pk, len(due), today, due[0].GetId())
		}
	}
	return nil
}

// digest is the SHA-256 of a read-model file's dump (every bucket, key and value).
func digest(path string) (string, error) {
	db, err := projections.Open(path, projections.DBOptions{ReadOnly: true})
	if err != nil {
		return "", err
	}
	defer db.Close()
	h := sha256.New()
	if err := db.Dump(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cleanDigest folds the whole stream into fresh read models in dir and returns their digest.
// The sealed identities are opened as nird opens them, with the register's master key from
// masterFile (DOMAIN.md Product decisions 15); "" for a stream written in clear.
func cleanDigest(ctx context.Context, store *eventstore.Store, dir, masterFile string) (string, error) {
	var open func(*nirv1.Event) error
	if masterFile != "" {
		master, err := sealing.LoadMaster(masterFile, false)
		if err != nil {
			return "", err
		}
		keys, err := store.OpenKeyStore(ctx, master)
		if err != nil {
			return "", err
		}
		defer keys.Close()
		open = sealing.Events{Keys: keys}.Opener()
	}
	f, err := feed.New(store)
	if err != nil {
		return "", err
	}
	defer f.Close()
	p, err := projections.New(f, projections.Options{Dir: dir, Open: open})
	if err != nil {
		return "", err
	}
	defer p.Close()
	if _, err := p.CatchUp(ctx); err != nil {
		return "", err
	}
	h := sha256.New()
	if err := p.Use("", func(db *projections.DB) error { return db.Dump(h) }); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
