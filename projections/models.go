package projections

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/introreg/nir/rules"
)

// derived is everything the read models hold for one person, computed from the person's folded
// state alone (no clock). Applying an event replaces the old derived values with the new ones
// in every model, so corrections (retractions, deleted computed terminations, reasons added
// later) show everywhere.
type derived struct {
	row   *PersonRow // nil: the person is in no person list (not registered)
	stats []contribution
	terms []TerminatedRow
	due   rules.Date // next date the regelmotor must look at the person; zero: none
}

// contribution is what one person adds to the statistics of one data year and kommune.
type contribution struct {
	year    int
	kommune string
	c       Counters
}

// Counter indexes into Counters: statistics of one data year (effective dates) in one kommune.
type Counter int

// The statistics counters (DOMAIN.md 6.2, 2.5, 3.4, 3.5; Product decisions 6, 7).
const (
	// CParticipants: persons in the introduction programme at some time in the year.
	CParticipants Counter = iota
	// CNew: programmes started in the year.
	CNew
	// COngoing: programmes still running on 31 December.
	COngoing
	// CTerminated: programmes terminated in the year.
	CTerminated
	// CTerminatedRegistered: terminations registered by the kommune.
	CTerminatedRegistered
	// CTerminatedComputed: terminations computed by the regelmotor and still effective.
	CTerminatedComputed
	// CReasonNotRegistered: terminations with «Avslutningsårsak ikke registrert».
	CReasonNotRegistered
	// CDirectWorkOrEducation: terminations going directly to work or education (DOMAIN.md 2.5).
	CDirectWorkOrEducation
	// CTrainingVedtak: persons with a training vedtak (tildeling) running in the year.
	CTrainingVedtak
	// CNorskHours: hours of norsk given in the year, in hundredths.
	CNorskHours
	// CSamfunnHours: hours of samfunnskunnskap given in the year, in hundredths.
	CSamfunnHours
	// CTrainingStarted: persons whose training started in the year.
	CTrainingStarted
	// CTrainingStartedWithin3m: of those, started within 3 months (Product decisions 6).
	CTrainingStartedWithin3m
	// CReasonBase + reason: terminations in the year by avslutningsårsak (enum value).
	CReasonBase
)

// NumReasons is how many TerminationReason values have a counter.
const NumReasons = 14

// NumCounters is the length of Counters.
const NumCounters = int(CReasonBase) + NumReasons

// Counters are the statistics counters of one year and area, indexed by Counter.
type Counters [NumCounters]int64

func (c *Counters) add(o *Counters, sign int64) {
	for i := range c {
		c[i] += sign * o[i]
	}
}

func (c *Counters) zero() bool { return *c == Counters{} }

func (c *Counters) encode() []byte {
	b := make([]byte, 0, NumCounters*2)
	for _, v := range c {
		b = binary.AppendVarint(b, v)
	}
	return b
}

func (c *Counters) decode(b []byte) error {
	d := decoder{b: b}
	for i := range c {
		if len(d.b) == 0 { // a shorter value from fewer counters
			c[i] = 0
			continue
		}
		c[i] = d.varint()
	}
	return d.err
}

func statKey(year int, kommune string) []byte {
	return append([]byte{byte(year >> 8), byte(year)}, kommune...)
}

func listKey(kommune, pk string) []byte {
	k := make([]byte, 0, len(kommune)+1+len(pk))
	k = append(k, kommune...)
	k = append(k, 0)
	return append(k, pk...)
}

func termKey(t *TerminatedRow, n int) []byte {
	k := statKey(t.Date.Y, t.Kommune)
	k = append(k, 0)
	k = append(k, t.PersonKey...)
	return append(k, 0, byte(n>>8), byte(n))
}

func dueKey(d rules.Date, pk string) []byte {
	k := binary.BigEndian.AppendUint32(nil, uint32(dateKey(d)))
	return append(k, pk...)
}

// writeDiff replaces a person's old derived values by the new ones in every model bucket.
func writeDiff(tx *bolt.Tx, pk string, old, nw *derived) error {
	// Person list and the person → kommune index.
	lb, pb := tx.Bucket(bucketList), tx.Bucket(bucketPersons)
	if old.row != nil && (nw.row == nil || nw.row.Kommune != old.row.Kommune) {
		if err := lb.Delete(listKey(old.row.Kommune, pk)); err != nil {
			return err
		}
	}
	if nw.row != nil {
		if err := lb.Put(listKey(nw.row.Kommune, pk), nw.row.encode(nil)); err != nil {
			return err
		}
		if old.row == nil || old.row.Kommune != nw.row.Kommune {
			if err := pb.Put([]byte(pk), []byte(nw.row.Kommune)); err != nil {
				return err
			}
		}
	} else if old.row != nil {
		if err := pb.Delete([]byte(pk)); err != nil {
			return err
		}
	}

	// Statistics: subtract the old contributions, add the new; a counter set that comes back
	// to zero is deleted, so an incremental build equals a clean one byte for byte.
	if !sameContributions(old.stats, nw.stats) {
		sb := tx.Bucket(bucketStats)
		update := func(ct *contribution, sign int64) error {
			k := statKey(ct.year, ct.kommune)
			var cur Counters
			if v := sb.Get(k); v != nil {
				if err := cur.decode(v); err != nil {
					return fmt.Errorf("stats %d/%s: %w", ct.year, ct.kommune, err)
				}
			}
			cur.add(&ct.c, sign)
			if cur.zero() {
				return sb.Delete(k)
			}
			return sb.Put(k, cur.encode())
		}
		for i := range old.stats {
			if err := update(&old.stats[i], -1); err != nil {
				return err
			}
		}
		for i := range nw.stats {
			if err := update(&nw.stats[i], 1); err != nil {
				return err
			}
		}
	}

	// Report of terminated participants.
	tb := tx.Bucket(bucketTerminated)
	for i := range old.terms {
		if err := tb.Delete(termKey(&old.terms[i], i)); err != nil {
			return err
		}
	}
	for i := range nw.terms {
		if err := tb.Put(termKey(&nw.terms[i], i), nw.terms[i].encode(nil)); err != nil {
			return err
		}
	}

	// Due dates for the regelmotor worker.
	db := tx.Bucket(bucketDue)
	if old.due != nw.due {
		if !old.due.IsZero() {
			if err := db.Delete(dueKey(old.due, pk)); err != nil {
				return err
			}
		}
		if !nw.due.IsZero() {
			if err := db.Put(dueKey(nw.due, pk), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func sameContributions(a, b []contribution) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].year != b[i].year || a[i].kommune != b[i].kommune || a[i].c != b[i].c {
			return false
		}
	}
	return true
}
