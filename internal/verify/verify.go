// Package verify checks that the event stream is the register nird wrote: every message
// decodes into an event whose envelope belongs to its subject (and whose Nats-Msg-Id header,
// if it has one, is the event's id), no event id is stored twice, and every person's
// tamper-evident chain (nirv1.Event.prev_hash, eventstore's chain.go) is intact, so that a
// message changed, removed or slipped in after the fact is found at its person and sequence.
//
// What the chain proves: an event that is followed by another of the same person cannot be
// changed or removed, and nothing can be inserted before a person's last event, without the
// break showing at the next event. A person's last event, and events stored before the chain
// existed (they carry no prev_hash and start the chain; a stream written before it verifies),
// are not covered by it: the checkpoints are (eventstore's checkpoint.go). The walk computes
// their running digest and compares it at every checkpoint's sequence, so any change at or
// before the last checkpoint is found, between the last checkpoint that matched and the
// first that does not.
//
// Beside the stream, the walk reads the checkpoint stream and the data-key bucket whole and
// reports a checkpoint or a data key the server counts but cannot read back (damaged on
// disk), by its sequence in the checkpoint stream or by the key's id: what a backup would
// go without (internal/backup refuses to, unless told).
package verify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Problem kinds.
const (
	// KindUndecodable: the message is not a usable event (it does not decode, or its envelope
	// does not belong to its subject). nird quarantines it.
	KindUndecodable = "undecodable"
	// KindChainBroken: the event's prev_hash is not the hash of its person's previous message:
	// that message was changed or removed, or this event was inserted or changed.
	KindChainBroken = "chain-broken"
	// KindChainMissing: the event has no prev_hash although its person's chain had begun:
	// it was inserted (nird links every event it appends after the first).
	KindChainMissing = "chain-missing"
	// KindDuplicateID: an event id stored a second time.
	KindDuplicateID = "duplicate-id"
	// KindIDHeaderMismatch: the message's Nats-Msg-Id header is not its event's id (nird
	// writes every event with its id there): the header was changed or set behind nird's
	// back. Neither the chain nor the checkpoints cover headers, but the dedupe window and a
	// restore go by it. A message without the header (a repeated id, restored without it:
	// internal/backup) is not reported.
	KindIDHeaderMismatch = "id-header-mismatch"
	// KindCheckpointMismatch: the stream through a checkpoint's sequence does not have the
	// checkpoint's digest: a message at or before it (after the last checkpoint that
	// matched) was changed, removed or inserted, wherever its person's chain may hide it.
	KindCheckpointMismatch = "checkpoint-mismatch"
	// KindCheckpointBeyond: a checkpoint covers sequences the stream no longer has: messages
	// were removed from its end (or the stream was rolled back).
	KindCheckpointBeyond = "checkpoint-beyond-stream"
	// KindCheckpointBad: a checkpoint that does not decode, whose signature does not hold
	// (or is not by the key given), or that does not name the checkpoint before it: the
	// checkpoint stream itself was changed.
	KindCheckpointBad = "checkpoint-bad"
	// KindCheckpointUnreadable: a checkpoint the checkpoint stream counts but cannot read
	// back (damaged on disk; the stream denies deletes): Problem.Checkpoint names it. A
	// backup that would go without it is refused unless it is accepted.
	KindCheckpointUnreadable = "checkpoint-unreadable"
	// KindKeyDamaged: a data key the key bucket counts but cannot read back (damaged on
	// disk): what it sealed (national ids, birth dates) reads as unreadable, and only a
	// backup made before the damage holds it. Problem.KeyID names it.
	KindKeyDamaged = "data-key-damaged"
)

// Problem is one finding, at a stream sequence. PersonKey is the subject's key (never a
// national id); Previous, for a chain problem, is the sequence of the person's previous
// message that the event does not match (0 if there is none).
//
// A problem outside the event stream has Seq 0 and names what it is about: Checkpoint, a
// sequence in the checkpoint stream, or KeyID, a data key's id in the key bucket (a random
// id, never a national id).
type Problem struct {
	Seq        uint64 `json:"seq"`
	PersonKey  string `json:"person_key,omitempty"`
	Kind       string `json:"kind"`
	Previous   uint64 `json:"previous,omitempty"`
	Checkpoint uint64 `json:"checkpoint,omitempty"`
	KeyID      string `json:"key_id,omitempty"`
	Detail     string `json:"detail"`
}

// Report is the result of a walk.
type Report struct {
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	Messages uint64    `json:"messages"`
	Persons  int       `json:"persons"`
	Linked   uint64    `json:"linked"` // events that carry a prev_hash
	Problems []Problem `json:"problems"`
	// Persons whose chain is broken, each reported at its first break only.
	BrokenPersons int `json:"broken_persons"`
	// Checkpoints is how many checkpoints were compared with the stream, and
	// CheckpointThrough the highest sequence one of them covered and matched (0: none).
	Checkpoints       int    `json:"checkpoints"`
	CheckpointThrough uint64 `json:"checkpoint_through"`
	// DataKeys is how many entries of the data-key bucket were read (live and destroyed).
	DataKeys     int     `json:"data_keys"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
}

// OK reports whether the walk found nothing wrong.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// person is what the walk keeps of a person: the hash and sequence of its last message,
// whether its chain has begun, and whether a break was reported already.
type person struct {
	last    []byte
	lastSeq uint64
	linked  bool
	broken  bool
}

// Options bound a walk.
type Options struct {
	// Through is the last sequence to check (0 = the stream's last when the walk starts).
	Through uint64
	// Progress, when set, is called now and then with the sequence reached and the last.
	Progress func(done, total uint64)
	// Checkpoints are checkpoints held outside the stream (handed to an outside party, e.g.
	// by nirctl checkpoint), compared like those on the checkpoint stream.
	Checkpoints []*nirv1.Checkpoint
	// PublicKey, when set, is the key every checkpoint must be signed with.
	PublicKey ed25519.PublicKey
	// From, when set, starts the walk after this checkpoint instead of at sequence 1,
	// taking its digest as the stream's through its sequence (its signature must hold).
	// What the walk then cannot see: a person's first event after it links to a message
	// before it, which is not checked (later checkpoints still cover it), and an event id
	// stored both before and after it.
	From *nirv1.Checkpoint
}

// Stream walks the whole stream in order and reports what it finds. It only reads: it runs
// against a running nird's stream (its reader credentials) as well as a stopped store.
func Stream(ctx context.Context, store *eventstore.Store, opt Options) (Report, error) {
	start := time.Now()
	through := opt.Through
	if through == 0 {
		var err error
		if through, err = store.LastSeq(ctx); err != nil {
			return Report{}, err
		}
	}
	rep := Report{FirstSeq: 1, LastSeq: through}
	var digest eventstore.Digest
	var matched uint64 // the last sequence a checkpoint matched at
	if f := opt.From; f != nil {
		if err := eventstore.CheckSignature(f, opt.PublicKey); err != nil {
			return rep, fmt.Errorf("verify: the checkpoint to start from: %w", err)
		}
		if len(f.GetDigest()) != len(digest.Sum) {
			return rep, fmt.Errorf("verify: the checkpoint to start from has no digest")
		}
		digest.Seq = f.GetStreamSeq()
		copy(digest.Sum[:], f.GetDigest())
		matched, rep.FirstSeq = f.GetStreamSeq(), f.GetStreamSeq()+1
		// A walk told to end before it checks nothing: the caller's mistake, not the stream's
		// (it was reported as messages removed).
		if opt.Through != 0 && f.GetStreamSeq() > opt.Through {
			return rep, fmt.Errorf("verify: the walk is to end at sequence %d (Through), before the checkpoint to start from (%d)", opt.Through, f.GetStreamSeq())
		}
		// A stream that ends before it lost what it vouches for: the walk after it reads
		// nothing, and reported the stream intact (TestStream_FromACheckpointBeyondTheEnd).
		if f.GetStreamSeq() > through {
			rep.Problems = append(rep.Problems, beyondEnd("the checkpoint to start from", f.GetStreamSeq(), through))
		}
	}
	cps, err := checkpoints(ctx, store, opt, &rep)
	if err != nil {
		return rep, err
	}
	if err := dataKeys(ctx, store, &rep); err != nil {
		return rep, err
	}
	for len(cps) > 0 && cps[0].GetStreamSeq() <= digest.Seq {
		cps = cps[1:] // before the start: taken on trust with it
	}
	persons := map[string]*person{}
	ids := map[string]uint64{}
	last, err := store.Export(ctx, rep.FirstSeq, through, func(m eventstore.RawMessage) error {
		rep.Messages++
		if opt.Progress != nil && m.Seq%10000 == 0 {
			opt.Progress(m.Seq, through)
		}
		key, _ := strings.CutPrefix(m.Subject, "nir.ev.")
		p := persons[key]
		if p == nil {
			p = &person{}
			persons[key] = p
		}
		h := eventstore.HashOf(m.Data)
		defer func() { p.last, p.lastSeq = h, m.Seq }()
		digest.Add(m.Seq, m.Subject, h)
		for len(cps) > 0 && cps[0].GetStreamSeq() <= m.Seq {
			cp := cps[0]
			cps = cps[1:]
			rep.Checkpoints++
			if cp.GetStreamSeq() < m.Seq {
				continue // a checkpoint of sequence 0, or one passed: checked in order
			}
			if !bytes.Equal(cp.GetDigest(), digest.Sum[:]) {
				rep.Problems = append(rep.Problems, Problem{Seq: m.Seq, Kind: KindCheckpointMismatch, Previous: matched,
					Detail: fmt.Sprintf("the stream through sequence %d does not have the digest of the checkpoint made %s: a message after sequence %d (the last checkpoint that matched) and at or before %d was changed, removed or inserted",
						m.Seq, cp.GetCreatedAt().AsTime().UTC().Format(time.RFC3339), matched, m.Seq)})
				continue
			}
			matched = m.Seq
			rep.CheckpointThrough = m.Seq
		}

		ev, err := eventstore.Decode(m.Seq, m.Data)
		switch {
		case err != nil:
			rep.Problems = append(rep.Problems, Problem{Seq: m.Seq, PersonKey: key, Kind: KindUndecodable, Detail: err.Error()})
			return nil
		case ev.GetPersonKey() != key:
			rep.Problems = append(rep.Problems, Problem{Seq: m.Seq, PersonKey: key, Kind: KindUndecodable,
				Detail: "the event's envelope names another person than its subject"})
			return nil
		}
		if id := m.Header.Get(nats.MsgIdHdr); id != "" && id != ev.GetId() {
			// The first value, as the server reads it; an empty one is no id to the server.
			rep.Problems = append(rep.Problems, Problem{Seq: m.Seq, PersonKey: key, Kind: KindIDHeaderMismatch,
				Detail: fmt.Sprintf("the %s header of the message at sequence %d is not its event's id: it was changed or set behind nird's back, and the dedupe window or a restore would take the message for another event", nats.MsgIdHdr, m.Seq)})
		}
		if first, dup := ids[ev.GetId()]; dup {
			rep.Problems = append(rep.Problems, Problem{Seq: m.Seq, PersonKey: key, Kind: KindDuplicateID, Previous: first,
				Detail: fmt.Sprintf("event id %s is stored at sequence %d already", ev.GetId(), first)})
		} else {
			ids[ev.GetId()] = m.Seq
		}
		prev := ev.GetPrevHash()
		if len(prev) > 0 {
			rep.Linked++
		}
		if p.broken {
			return nil // one report per person: the first break
		}
		switch {
		case len(prev) > 0 && p.lastSeq == 0 && opt.From != nil:
			// The person's previous message is before the walk's start.
		case len(prev) > 0 && p.lastSeq == 0:
			p.broken = true
			rep.Problems = append(rep.Problems, Problem{Seq: m.Seq, PersonKey: key, Kind: KindChainBroken,
				Detail: "the event links to a previous message, but it is the person's first: the messages before it were removed"})
		case len(prev) > 0 && !bytes.Equal(prev, p.last):
			p.broken = true
			rep.Problems = append(rep.Problems, Problem{Seq: m.Seq, PersonKey: key, Kind: KindChainBroken, Previous: p.lastSeq,
				Detail: fmt.Sprintf("prev_hash %s is not the hash of the person's previous message at sequence %d: that message was changed, or a message between them was removed, or this event was changed or inserted", short(prev), p.lastSeq)})
		case len(prev) == 0 && p.linked:
			p.broken = true
			rep.Problems = append(rep.Problems, Problem{Seq: m.Seq, PersonKey: key, Kind: KindChainMissing, Previous: p.lastSeq,
				Detail: fmt.Sprintf("the event has no prev_hash after the person's chain began (the message at sequence %d links): it was inserted", p.lastSeq)})
		}
		if len(prev) > 0 {
			p.linked = true
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	last = min(last, through) // Export's answer for a start beyond through is the start's
	rep.LastSeq = last
	for _, cp := range cps {
		rep.Checkpoints++
		rep.Problems = append(rep.Problems, beyondEnd("a checkpoint", cp.GetStreamSeq(), last))
	}
	rep.Persons = len(persons)
	for _, p := range persons {
		if p.broken {
			rep.BrokenPersons++
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if rep.Seconds > 0 {
		rep.EventsPerSec = float64(rep.Messages) / rep.Seconds
	}
	if opt.Progress != nil {
		opt.Progress(last, through)
	}
	return rep, nil
}

// beyondEnd is the problem of a checkpoint (what) that covers sequence seq of a walk that
// ended at last.
func beyondEnd(what string, seq, last uint64) Problem {
	return Problem{Seq: seq, Kind: KindCheckpointBeyond, Previous: last,
		Detail: fmt.Sprintf("%s covers sequence %d, but the walk ended at %d: messages were removed from the stream's end, or it was rolled back", what, seq, last)}
}

// checkpoints returns the checkpoints to compare, in order of their sequences: the checkpoint
// stream's (each checked for its encoding, its signature and its link to the one before) and
// opt's. Problems with the checkpoints themselves go into rep.
func checkpoints(ctx context.Context, store *eventstore.Store, opt Options, rep *Report) ([]*nirv1.Checkpoint, error) {
	stored, unreadable, err := store.ReadCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	lost := map[uint64]bool{}
	for _, q := range unreadable {
		lost[q] = true
		rep.Problems = append(rep.Problems, Problem{Kind: KindCheckpointUnreadable, Checkpoint: q,
			Detail: fmt.Sprintf("checkpoint %d of %s is counted by the stream but cannot be read back: damaged on disk; backups made before the damage carry it", q, eventstore.CheckpointStreamName)})
	}
	var out []*nirv1.Checkpoint
	var prev []byte
	for _, sc := range stored {
		if lost[sc.Seq-1] {
			// The one before cannot be read: what this one names as its previous cannot be
			// compared (that one is reported).
			prev = sc.Checkpoint.GetPrevious()
		}
		cp := sc.Checkpoint
		bad := func(detail string) {
			rep.Problems = append(rep.Problems, Problem{Seq: cp.GetStreamSeq(), Kind: KindCheckpointBad,
				Detail: fmt.Sprintf("checkpoint %d of %s: %s", sc.Seq, eventstore.CheckpointStreamName, detail)})
		}
		switch {
		case cp == nil:
			bad("it does not decode")
		case len(cp.GetDigest()) != 32:
			bad("its digest is not 32 bytes")
		case !bytes.Equal(cp.GetPrevious(), prev):
			bad("it does not name the checkpoint before it: a checkpoint was removed, changed or inserted")
		default:
			if err := eventstore.CheckSignature(cp, opt.PublicKey); err != nil {
				bad(err.Error())
			} else {
				out = append(out, cp)
			}
		}
		prev = eventstore.HashOf(sc.Data)
	}
	for i, cp := range opt.Checkpoints {
		if err := eventstore.CheckSignature(cp, opt.PublicKey); err != nil {
			rep.Problems = append(rep.Problems, Problem{Seq: cp.GetStreamSeq(), Kind: KindCheckpointBad,
				Detail: fmt.Sprintf("the checkpoint given (%d): %v", i+1, err)})
			continue
		}
		out = append(out, cp)
	}
	slices.SortStableFunc(out, func(a, b *nirv1.Checkpoint) int { return cmp.Compare(a.GetStreamSeq(), b.GetStreamSeq()) })
	return out, nil
}

// dataKeys reads the data-key bucket and reports each entry it counts but cannot read back.
// A register without the bucket (identities stored before they were sealed) has none.
func dataKeys(ctx context.Context, store *eventstore.Store, rep *Report) error {
	keys, err := store.ExportKeys(ctx)
	if err != nil {
		return fmt.Errorf("verify: the data keys (the connection must be allowed to read the bucket %s, as nird's reader is): %w", eventstore.KeyBucket, err)
	}
	rep.DataKeys = len(keys.Wrapped) + len(keys.Destroyed)
	for _, id := range keys.Damaged {
		rep.Problems = append(rep.Problems, Problem{Kind: KindKeyDamaged, KeyID: id,
			Detail: fmt.Sprintf("the data key %s is counted by the bucket %s but cannot be read back: damaged on disk; what it sealed reads as unreadable, and only a backup made before the damage holds it", id, eventstore.KeyBucket)})
	}
	return nil
}

func short(h []byte) string {
	s := hex.EncodeToString(h)
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
