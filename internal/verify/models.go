package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/feed"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// ModelsCheck compares a read-model file with a fresh fold of the stream.
type ModelsCheck struct {
	Path       string `json:"path"`
	Checkpoint uint64 `json:"checkpoint"`
	// Compared is false when the file's checkpoint is not the stream's last sequence (the
	// models had not caught up when nird stopped): a fold could not be cut at the same place.
	Compared bool   `json:"compared"`
	Equal    bool   `json:"equal"`
	Live     string `json:"live_digest,omitempty"`
	Fresh    string `json:"fresh_digest,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Models compares the read models in the file at path (a stopped nird's models.db) with a
// fold of the whole stream into a temporary directory under tmp, by the SHA-256 of each
// one's dump (every bucket, key and value: projections.DB.Dump). Equal read models mean
// nothing was changed in the file behind the stream's back, and the fold is deterministic.
//
// open opens the sealed identities for the fold, as nird does (sealing.Events.Opener): without
// it a fold of a sealed stream shows no national ids and cannot equal nird's models.
func Models(ctx context.Context, store *eventstore.Store, path, tmp string, open func(*nirv1.Event) error) (ModelsCheck, error) {
	mc := ModelsCheck{Path: path}
	live, err := projections.Open(path, projections.DBOptions{ReadOnly: true})
	if err != nil {
		return mc, fmt.Errorf("read models %s: %w", path, err)
	}
	defer live.Close()
	if mc.Checkpoint, err = live.Checkpoint(); err != nil {
		return mc, err
	}
	last, err := store.LastSeq(ctx)
	if err != nil {
		return mc, err
	}
	if mc.Checkpoint != last {
		mc.Detail = fmt.Sprintf("the read models are at sequence %d, the stream at %d: not compared (start nird to let them catch up, then stop it and verify again)", mc.Checkpoint, last)
		return mc, nil
	}
	h := sha256.New()
	if err := live.Dump(h); err != nil {
		return mc, err
	}
	mc.Live = hex.EncodeToString(h.Sum(nil))

	dir, err := os.MkdirTemp(tmp, "nir-verify-")
	if err != nil {
		return mc, err
	}
	defer os.RemoveAll(dir)
	f, err := feed.New(store)
	if err != nil {
		return mc, err
	}
	defer f.Close()
	p, err := projections.New(f, projections.Options{Dir: dir, Open: open})
	if err != nil {
		return mc, err
	}
	defer p.Close()
	if _, err := p.CatchUp(ctx); err != nil {
		return mc, err
	}
	h = sha256.New()
	if err := p.Use("", func(db *projections.DB) error { return db.Dump(h) }); err != nil {
		return mc, err
	}
	mc.Fresh = hex.EncodeToString(h.Sum(nil))
	mc.Compared, mc.Equal = true, mc.Live == mc.Fresh
	if !mc.Equal {
		mc.Detail = "the read models differ from a fresh fold of the stream: rebuild them (nirctl projections rebuild)"
	}
	return mc, nil
}
