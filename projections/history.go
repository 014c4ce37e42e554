package projections

import (
	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// Correction kinds in the audit history.
const (
	CorrectionRetracted = "retracted"    // an EventRetracted removed the event's effect
	CorrectionRestored  = "restored"     // a retraction was itself retracted
	CorrectionDeleted   = "deleted"      // a ComputedTerminationDeleted deleted the computed termination
	CorrectionReason    = "reason_added" // the kommune registered a termination over the computed one
)

// Correction is a later event that corrected an earlier one.
type Correction struct {
	Kind    string
	EventID string
	Seq     uint64
}

// HistoryEntry is one event of a person's audit history: who (Event.Actor), when
// (Event.RecordedAt), what (Kind and the payload) and which later events corrected it.
type HistoryEntry struct {
	Seq   uint64
	Event *nirv1.Event
	// Kind is the payload's field name, e.g. "termination_registered".
	Kind string
	// CorrectedBy lists the later events that corrected this one, in stream order.
	CorrectedBy []Correction
	// Effective is false when the event no longer counts in the read models (retracted, left
	// out because the rules failed on it (QuarantineFoldFault), or a deleted or superseded
	// computed termination).
	Effective bool
}

// History returns the audit history of a person: every event in stream order. It returns
// ErrNotFound when the person has no events.
func (db *DB) History(pk string) ([]HistoryEntry, error) {
	out, _, err := db.FoldedHistory(pk)
	return out, err
}

// FoldedHistory is History with the person's state folded from those events (the fold the
// history's Effective flags come from), for a caller that needs both without folding twice.
func (db *DB) FoldedHistory(pk string) ([]HistoryEntry, *rules.State, error) {
	var out []HistoryEntry
	var st *rules.State
	err := db.view(func(tx *bolt.Tx) error {
		if !hasPerson(tx, pk) {
			return ErrNotFound
		}
		var err error
		st, err = db.foldStored(tx, pk)
		if err != nil {
			return err
		}
		idx := map[string]int{}
		for _, le := range st.Log() {
			e := HistoryEntry{Seq: le.Seq, Event: le.Event, Kind: payloadKind(le.Event), Effective: !st.Retracted[le.Event.GetId()] && !st.Faulted(le.Event.GetId())}
			if id := le.Event.GetId(); id != "" {
				idx[id] = len(out)
			}
			out = append(out, e)
		}
		link := func(target, kind string, by HistoryEntry) {
			if i, ok := idx[target]; ok {
				out[i].CorrectedBy = append(out[i].CorrectedBy, Correction{Kind: kind, EventID: by.Event.GetId(), Seq: by.Seq})
			}
		}
		for _, e := range out {
			switch {
			case e.Event.GetEventRetracted() != nil:
				t := e.Event.GetEventRetracted().GetEventId()
				kind := CorrectionRetracted
				if i, ok := idx[t]; ok && out[i].Event.GetEventRetracted() != nil {
					// Retracting a retraction restores the retraction's target.
					link(out[i].Event.GetEventRetracted().GetEventId(), CorrectionRestored, e)
				}
				link(t, kind, e)
			case e.Event.GetComputedTerminationDeleted() != nil:
				link(e.Event.GetComputedTerminationDeleted().GetComputedEventId(), CorrectionDeleted, e)
			}
		}
		// Computed terminations superseded by a registered one, and deleted ones, no longer
		// count; the state says which termination is effective.
		for _, p := range st.Programmes {
			for _, ct := range p.ComputedTerminations {
				i, ok := idx[ct.EventID]
				if !ok {
					continue
				}
				if ct.Deleted || p.Termination != ct {
					out[i].Effective = false
				}
				if !ct.Deleted && p.Termination != nil && !p.Termination.Computed {
					link(ct.EventID, CorrectionReason, HistoryEntry{Seq: p.Termination.Seq, Event: &nirv1.Event{Id: p.Termination.EventID}})
				}
			}
		}
		return nil
	})
	return out, st, err
}

// payloadKind names the event's payload by its protobuf field name.
func payloadKind(ev *nirv1.Event) string {
	m := ev.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("payload")
	if od == nil {
		return ""
	}
	if f := m.WhichOneof(od); f != nil {
		return string(f.Name())
	}
	return ""
}
