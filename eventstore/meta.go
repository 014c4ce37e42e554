package eventstore

import (
	"context"
	"fmt"
	"maps"
)

// streamMeta returns the event stream's metadata entry k ("" when it has none).
func (s *Store) streamMeta(ctx context.Context, k string) (string, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return "", fmt.Errorf("eventstore: stream info: %w", err)
	}
	return st.CachedInfo().Config.Metadata[k], nil
}

// updateMeta sets the event stream's metadata entry k to what next makes of its value now
// ("" when it has none); next returning "" removes the entry, and change false leaves the
// stream as it is.
func (s *Store) updateMeta(ctx context.Context, k string, next func(cur string) (v string, change bool)) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return s.wrap(fmt.Errorf("eventstore: stream metadata %s: %w", k, err))
	}
	cfg := st.CachedInfo().Config
	v, change := next(cfg.Metadata[k])
	if !change {
		return nil
	}
	md := maps.Clone(cfg.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	if v == "" {
		delete(md, k)
	} else {
		md[k] = v
	}
	cfg.Metadata = md
	if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
		return s.wrap(fmt.Errorf("eventstore: stream metadata %s: %w", k, err))
	}
	return nil
}

// SetMetaIfAbsent sets the event stream's metadata entry k to v when it has none; one it has
// (another nird's, written meanwhile) stands.
func (s *Store) SetMetaIfAbsent(ctx context.Context, k, v string) error {
	return s.updateMeta(ctx, k, func(cur string) (string, bool) { return v, cur == "" })
}
