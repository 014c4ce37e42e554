package projections

import (
	"bytes"
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
	row    *PersonRow // nil: the person is in no person list (not registered)
	rowEnc []byte     // row encoded
	stats  []contribution
	terms  []TerminatedRow
	due    rules.Date // next date the regelmotor must look at the person; zero: none
	access []byte     // the persons bucket's value (PersonAccess); nil: no event folded
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
	// CTrainingStarted: persons in the opplæring target group (whom the 3-month rule applies
	// to) whose training started in the year.
	CTrainingStarted
	// CTrainingStartedWithin3m: of those, started within 3 months (Product decisions 6).
	CTrainingStartedWithin3m
	// CHoursPersons: persons with training hours of any kind given in the year.
	CHoursPersons
	// CNorskHoursPersons and CSamfunnHoursPersons: persons given norsk, and samfunnskunnskap,
	// hours in the year, the persons each hours counter sums (disclosure control, Product
	// decisions 14: the hours of 1 to 4 persons are suppressed; CHoursPersons counts persons
	// given either, so 5 given norsk of whom one alone samfunnskunnskap published that one's
	// hours).
	CNorskHoursPersons
	CSamfunnHoursPersons
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

// statDeltas accumulates the statistics changes of one transaction per (year, kommune) key,
// so that each counter set is read and written once per transaction.
type statDeltas map[string]*Counters

func (sd statDeltas) add(cs []contribution, sign int64) {
	for i := range cs {
		k := string(statKey(cs[i].year, cs[i].kommune))
		d := sd[k]
		if d == nil {
			d = new(Counters)
			sd[k] = d
		}
		d.add(&cs[i].c, sign)
	}
}

// flush applies the deltas; a counter set that comes back to zero is deleted, so an
// incremental build equals a clean one byte for byte.
func (sd statDeltas) flush(tx *bolt.Tx) error {
	sb := bucket(tx, bucketStats)
	keys := make([]string, 0, len(sd))
	for k := range sd {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		d := sd[k]
		if d.zero() {
			continue
		}
		var cur Counters
		if v := sb.Get([]byte(k)); v != nil {
			if err := cur.decode(v); err != nil {
				return fmt.Errorf("stats %x: %w", k, err)
			}
		}
		cur.add(d, 1)
		var err error
		if cur.zero() {
			err = sb.Delete([]byte(k))
		} else {
			err = sb.Put([]byte(k), cur.encode())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeDiff replaces a person's old derived values by the new ones in every model bucket
// (statistics through sd, flushed at the end of the transaction).
func writeDiff(tx *bolt.Tx, pk string, old, nw *derived, sd statDeltas, later *sortedPuts) error {
	// put puts into the bucket, or for a rebuild's fold (later set, old empty) into later
	// the entries of the buckets it reaches in no order.
	put := func(b bkt, k, v []byte) error {
		if later != nil && later.put(b.name, k, v) {
			return nil
		}
		return b.Put(k, v)
	}
	// Person list.
	lb, pb := bucket(tx, bucketList), bucket(tx, bucketPersons)
	if old.row != nil && (nw.row == nil || nw.row.Kommune != old.row.Kommune) {
		if err := lb.Delete(listKey(old.row.Kommune, pk)); err != nil {
			return err
		}
	}
	if nw.row != nil {
		if old.row == nil || old.row.Kommune != nw.row.Kommune || !bytes.Equal(old.rowEnc, nw.rowEnc) {
			if err := put(lb, listKey(nw.row.Kommune, pk), nw.rowEnc); err != nil {
				return err
			}
		}
	}
	// The person's access record, for every subject (PersonAccess).
	switch {
	case nw.access == nil && old.access != nil:
		if err := pb.Delete([]byte(pk)); err != nil {
			return err
		}
	case nw.access != nil && !bytes.Equal(old.access, nw.access):
		if err := pb.Put([]byte(pk), nw.access); err != nil {
			return err
		}
	}

	if !sameContributions(old.stats, nw.stats) {
		sd.add(old.stats, -1)
		sd.add(nw.stats, 1)
	}

	// Report of terminated participants.
	if !sameTerms(old.terms, nw.terms) {
		tb := bucket(tx, bucketTerminated)
		for i := range old.terms {
			if err := tb.Delete(termKey(&old.terms[i], i)); err != nil {
				return err
			}
		}
		for i := range nw.terms {
			if err := put(tb, termKey(&nw.terms[i], i), nw.terms[i].encode(nil)); err != nil {
				return err
			}
		}
	}

	// Due dates for the regelmotor worker.
	db := bucket(tx, bucketDue)
	if old.due != nw.due {
		if !old.due.IsZero() {
			if err := db.Delete(dueKey(old.due, pk)); err != nil {
				return err
			}
		}
		if !nw.due.IsZero() {
			if err := put(db, dueKey(nw.due, pk), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func sameTerms(a, b []TerminatedRow) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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
