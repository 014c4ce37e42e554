package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Identifier is implemented by feeds that can tell one instance of the stream from another
// and read a stored message back. The runtime uses it to find live read models that belong
// to another stream than the feed's (deleted and re-created, rolled back, another
// register's) and rebuild them instead of serving them.
type Identifier interface {
	// StreamID returns the identity of the stream as it is now; it changes when the stream
	// is deleted and re-created.
	StreamID(ctx context.Context) (string, error)
	// RawAt returns the stored encoding of the message at seq, ErrNotFound when the stream
	// holds none there.
	RawAt(ctx context.Context, seq uint64) ([]byte, error)
}

// IdentityCheckInterval is how often Run checks that the live models still belong to the
// stream (Check), besides at its start and whenever the stream's last sequence falls below
// the checkpoint.
const IdentityCheckInterval = 30 * time.Second

// repairReq is a pending or running repair of the live models: until it is done, they are
// not served.
type repairReq struct {
	reason string
	// damaged keeps the live file for forensics when it is swapped out (models.db.damaged-*).
	damaged bool
}

// requestRepair marks the live models as unusable for reason and wakes Run to rebuild them.
// The first reason stands until the repair is done.
func (p *Projector) requestRepair(reason string, damaged bool) {
	full := reason
	if i := strings.IndexByte(reason, '\n'); i >= 0 {
		reason = reason[:i] // a panic's stack goes to the log only
	}
	if p.repair.CompareAndSwap(nil, &repairReq{reason: reason, damaged: damaged}) {
		p.logger.Warn("the live read models are not served until they are rebuilt", "reason", full)
	} else if damaged {
		// A damaged file is kept even if the repair was asked for another reason first.
		for {
			r := p.repair.Load()
			if r == nil || r.damaged || p.repair.CompareAndSwap(r, &repairReq{reason: r.reason, damaged: true}) {
				break
			}
		}
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Repairing returns why the live models are being rebuilt and not served, "" when they are
// served.
func (p *Projector) Repairing() string {
	if r := p.repair.Load(); r != nil {
		return r.reason
	}
	return ""
}

// Check tells whether the live read models belong to the stream as it is now: built from
// this instance of it (the feed's StreamID, recorded in the file), with a checkpoint within
// it, and with the last event they stored still the stream's message at that sequence (a
// stream rolled back to a backup and written again has other events there; one the stream
// counts but cannot read back, damaged on disk, is not compared). When they do not, it asks
// for a rebuild, which Run performs; until it is done the live models are not served
// (ErrUnavailable), and the reason is logged and shown in Status. Run calls it when it
// starts and every IdentityCheckInterval; nird calls it before it serves. Without an
// Identifier feed only the checkpoint is checked.
func (p *Projector) Check(ctx context.Context) error {
	p.checked.Store(true)
	reason, err := p.foreignReason(ctx)
	if errors.Is(err, ErrCorrupt) {
		p.requestRepair("the read-model file is damaged: "+err.Error(), true)
		return nil
	}
	if err != nil {
		return fmt.Errorf("projections: check the read models against the stream: %w", err)
	}
	if reason != "" && p.repair.Load() == nil {
		// The file may hold the only copy of acknowledged events the stream no longer has (a
		// damaged message block makes the store drop it and every message after it, with a
		// warning of the NATS server's only): the rebuild keeps it aside, as a damaged one.
		p.logger.Error("the stream does not hold what the read models were built from; they are rebuilt from the stream as it is, and the file is kept aside: it holds every event they applied, byte for byte", "reason", reason)
		p.requestRepair(reason, true)
	}
	if reason == "" {
		if reason = p.olderFoldReason(ctx); reason != "" {
			p.logger.Warn("the read models were folded by an older build; they are rebuilt from the stream", "reason", reason)
			p.requestRepair(reason, false)
		}
	}
	p.checkSnapshots(ctx)
	return nil
}

// olderFoldReason says why the live models must be rebuilt when they were folded without an
// event this build reads whole: the file marks the first event its folds could not wholly
// read (DB.FirstUnknownKind), and this build reads it whole (a newer build on an older one's
// data directory, with the same SchemaVersion). The mark stops the regelmotor, and the
// models lack what the event says, until a rebuild. "" when they need none, or the event
// cannot be read now (the next Check looks again).
func (p *Projector) olderFoldReason(ctx context.Context) string {
	idf, ok := p.feed.(Identifier)
	if !ok || p.repair.Load() != nil {
		return ""
	}
	var first uint64
	if p.Use("", func(db *DB) error { first = db.FirstUnknownKind(); return nil }) != nil || first == 0 {
		return ""
	}
	raw, err := idf.RawAt(ctx, first)
	if err != nil {
		return ""
	}
	if ev, err := nirv1.UnmarshalEvent(raw); err != nil || nirv1.HoldsUnknown(ev) {
		return ""
	}
	return fmt.Sprintf("the read models were folded without events this build reads whole, the first at seq %d: an older build folded them", first)
}

// checkSnapshots takes the snapshots built from another instance of the stream out of
// service (a file of another register's put in the snapshots' directory, or snapshots of a
// stream deleted and re-created): their figures are not this register's. Unlike the live
// models they are not rebuilt, since their cut-off is an operator's choice. A stream whose
// identity cannot be read now leaves them as they are (Check says why).
func (p *Projector) checkSnapshots(ctx context.Context) {
	idf, ok := p.feed.(Identifier)
	if !ok {
		return
	}
	sid, err := idf.StreamID(ctx)
	if err != nil || sid == "" {
		return
	}
	p.mu.RLock()
	snaps := maps.Clone(p.snaps)
	p.mu.RUnlock()
	for name, h := range snaps {
		var have string
		err := p.Use(name, func(db *DB) error {
			var err error
			have, err = db.StreamID()
			return err
		})
		if err == nil && have != "" && have != sid {
			p.retireSnapshot(name, h, fmt.Sprintf("it was built from another instance of the stream (%s; the stream is now %s): the stream was deleted and re-created, or the file is another register's", have, sid))
		}
	}
}

func (p *Projector) foreignReason(ctx context.Context) (string, error) {
	if p.repair.Load() != nil {
		return "", nil // a rebuild is due anyway
	}
	h, err := p.acquire("")
	if err != nil {
		return "", err
	}
	defer h.refs.Done()
	db := h.db
	ckpt, err := db.Checkpoint()
	if err != nil {
		return "", err
	}
	have, err := db.StreamID()
	if err != nil {
		return "", err
	}
	idf, _ := p.feed.(Identifier)
	var sid string
	if idf != nil {
		if sid, err = idf.StreamID(ctx); err != nil {
			return "", &feedError{err}
		}
		if have != "" && have != sid {
			return fmt.Sprintf("the read models were built from another instance of the stream (%s; the stream is now %s): it was deleted and re-created, or the file is another register's", have, sid), nil
		}
	}
	last, err := p.feed.LastSeq(ctx)
	if err != nil {
		return "", &feedError{err}
	}
	if ckpt > last {
		return fmt.Sprintf("the read models' checkpoint %d lies beyond the stream's last sequence %d: the stream was re-created or rolled back", ckpt, last), nil
	}
	if idf != nil && ckpt > 0 {
		seq, raw, found, err := db.lastStored()
		if err != nil {
			return "", err
		}
		if found {
			got, err := idf.RawAt(ctx, seq)
			switch {
			case errors.Is(err, ErrNotFound):
				// seq lies within the stream (ckpt <= last), which never deletes: its store
				// counts the message but cannot read it back (a record damaged on disk, which
				// the server answers as no message). That says nothing against the models,
				// which hold the event as it was: they are kept, as after damage to any
				// earlier message, where a rebuild from the stream would lose the event.
				// They used to be rebuilt from the stream here.
				if p.unreadableWarned.Swap(seq) != seq {
					p.logger.Warn("the last event the read models applied cannot be read back from the stream (damaged on disk?); it is not compared, and the models are kept", "stream_seq", seq)
				}
			case err != nil:
				return "", &feedError{err}
			case !bytes.Equal(got, raw):
				return fmt.Sprintf("the stream's message at seq %d is not the event the read models applied there: the stream was rolled back and written again", seq), nil
			}
		}
	}
	if idf != nil && have == "" {
		if err := db.setStreamID(sid); err != nil {
			return "", err
		}
	}
	return "", nil
}

// runRepair rebuilds the live models for the pending repair. A damaged live file is kept
// beside the new one (models.db.damaged-TIME) for forensics.
func (p *Projector) runRepair(ctx context.Context) error {
	r := p.repair.Load()
	if p.replaying.Load() {
		return ErrReplayRunning // Run waits for it (rebuild looks again)
	}
	p.logger.Warn("rebuilding the read models from the stream", "reason", r.reason)
	t0 := time.Now()
	if err := p.Rebuild(ctx, nil); err != nil {
		return err
	}
	p.logger.Info("read models rebuilt and served again", "reason", r.reason, "seconds", time.Since(t0).Seconds())
	return nil
}

// keepDamaged links the live file to models.db.damaged-TIME before a swap replaces it, when
// the repair being done is for damage.
func (p *Projector) keepDamaged() {
	r := p.repair.Load()
	if r == nil || !r.damaged {
		return
	}
	live := filepath.Join(p.opt.Dir, liveFile)
	aside := live + ".damaged-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Link(live, aside); err != nil {
		p.logger.Warn("could not keep the damaged read-model file", "err", err)
		return
	}
	p.stats.keptAside.Add(1)
	p.logger.Warn("damaged read-model file kept for forensics", "path", aside)
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	// Size is the live file's size in bytes; Pages its pages; Values the values whose
	// checksum was verified.
	Size   int64
	Pages  uint64
	Values uint64
	// Seconds is how long the check took.
	Seconds float64
	// Problems lists what is wrong, empty when nothing is.
	Problems []string
	// Repairing says why the live models are being rebuilt, when they are (Verify asks for
	// it when it finds a problem).
	Repairing string
}

// verifyPattern names Verify's copies of the live file (os.CreateTemp); New removes any a
// process left.
const verifyPattern = liveFile + ".verify-*"

// Verify checks the live read models thoroughly, while they are served: a consistent copy
// of the file (bbolt's Tx.CopyFile, in a read transaction) is checked page by page
// (checkFile, every value's checksum), then with bbolt's own consistency check (Tx.Check,
// safe once checkFile passed), the models' schema versions and checkpoints, and Check's
// comparison with the stream. A problem means the file is not served any more and is
// rebuilt from the stream (the damaged file is kept). The copy needs as much free space as
// the file; it is removed afterwards.
func (p *Projector) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	// One at a time: each copies the whole file, and the ones asked for meanwhile find what
	// it finds. Each copy is a file of its own: when two verifications wrote one copy file,
	// one truncated the copy another had mapped, and nird died of SIGBUS (adversarial
	// TestHTTP_VerifyFlood).
	select {
	case p.verifyTurn <- struct{}{}:
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	defer func() { <-p.verifyTurn }()
	t0 := time.Now()
	f, err := os.CreateTemp(p.opt.Dir, verifyPattern)
	if err != nil {
		return rep, fmt.Errorf("projections: verify: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	err = p.use("", func(db *DB) error {
		rep.Size = db.Size()
		return db.view(func(tx *bolt.Tx) error { return tx.CopyFile(tmp, 0o600) })
	})
	switch {
	case errors.Is(err, ErrCorrupt):
		rep.Problems = append(rep.Problems, err.Error())
	case err != nil:
		return rep, fmt.Errorf("projections: verify: copy the live file: %w", err)
	default:
		rep.Problems = append(rep.Problems, verifyCopy(tmp, &rep)...)
	}
	if len(rep.Problems) == 0 {
		reason, err := p.foreignReason(ctx)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return rep, fmt.Errorf("projections: verify: %w", err)
		}
		if err != nil {
			reason = err.Error()
		}
		if reason != "" {
			rep.Problems = append(rep.Problems, reason)
			p.requestRepair(reason, false)
		}
	} else {
		p.requestRepair("verify found the read-model file damaged: "+rep.Problems[0], true)
	}
	rep.Repairing = p.Repairing()
	rep.Seconds = time.Since(t0).Seconds()
	p.logger.Info("read models verified", "problems", len(rep.Problems), "bytes", rep.Size, "values", rep.Values, "seconds", rep.Seconds)
	return rep, nil
}

// verifyCopy checks a copy of a read-model file: structure and checksums, bbolt's Check,
// and the meta entries.
func verifyCopy(path string, rep *VerifyReport) []string {
	fc, err := checkFile(path, true)
	if err != nil {
		return []string{err.Error()}
	}
	rep.Pages, rep.Values = fc.Pages, fc.Values
	var problems []string
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return []string{fmt.Sprintf("bbolt cannot open the file: %v", err)}
	}
	defer bdb.Close()
	err = guard(func() error {
		return bdb.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				problems = append(problems, "bbolt: "+err.Error())
				if len(problems) >= 20 {
					break
				}
			}
			var ckpt uint64
			for i, m := range Models {
				c, v, ok := readMeta(tx, m)
				switch {
				case !ok:
					problems = append(problems, fmt.Sprintf("model %s has no checkpoint", m))
				case v != SchemaVersion:
					problems = append(problems, fmt.Sprintf("model %s has schema %d, want %d", m, v, SchemaVersion))
				case i > 0 && c != ckpt:
					problems = append(problems, fmt.Sprintf("model %s is at checkpoint %d, %s at %d", m, c, Models[0], ckpt))
				}
				if i == 0 {
					ckpt = c
				}
			}
			return nil
		})
	})
	if err != nil {
		problems = append(problems, err.Error())
	}
	return problems
}
