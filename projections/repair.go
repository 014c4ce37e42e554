package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
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
	if p.repair.CompareAndSwap(nil, &repairReq{reason: reason, damaged: damaged}) {
		p.logger.Warn("the live read models are not served until they are rebuilt", "reason", reason)
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
// stream rolled back to a backup and written again has other events there). When they do
// not, it asks for a rebuild, which Run performs; until it is done the live models are not
// served (ErrUnavailable), and the reason is logged and shown in Status. Run calls it when it
// starts and every IdentityCheckInterval; nird calls it before it serves. Without an
// Identifier feed only the checkpoint is checked.
func (p *Projector) Check(ctx context.Context) error {
	p.checked.Store(true)
	reason, err := p.foreignReason(ctx)
	if err != nil {
		return fmt.Errorf("projections: check the read models against the stream: %w", err)
	}
	if reason != "" {
		p.requestRepair(reason, false)
	}
	return nil
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
				return fmt.Sprintf("the stream has no message at seq %d, the last event the read models applied", seq), nil
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
	p.logger.Warn("damaged read-model file kept for forensics", "path", aside)
}
