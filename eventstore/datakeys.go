package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The data keys in a backup (DOMAIN.md Product decisions 15): KeyStore is in keys.go.

// ErrNoKeyBucket is returned by a read-only store's OpenKeyStore when the register has no
// data-key bucket: its identities were stored before they were sealed.
var ErrNoKeyBucket = errors.New("eventstore: the register has no data-key bucket " + KeyBucket)

// KeyExport is the content of the data-key bucket: every person's wrapped data key (opened
// only with the master key), and the persons whose keys were destroyed.
type KeyExport struct {
	Wrapped   map[string][]byte
	Destroyed []string
}

// ExportKeys reads the data-key bucket for a backup (DOMAIN.md Product decisions 15): the
// wrapped keys as stored, which the master key alone opens. A register without the bucket
// exports nothing.
func (s *Store) ExportKeys(ctx context.Context) (KeyExport, error) {
	out := KeyExport{Wrapped: map[string][]byte{}}
	if err := s.checkOpen(); err != nil {
		return out, err
	}
	stream, err := s.js.Stream(ctx, keyStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("eventstore: data-key bucket %s: %w", KeyBucket, err)
	}
	state := stream.CachedInfo().State
	if state.Msgs == 0 {
		return out, nil
	}
	// The stream holds each entry's last message only (history 1): reading it whole up to
	// its last sequence now reads every entry once. Keys made meanwhile seal no event the
	// backup holds (a key is stored before the event it seals).
	through := state.LastSeq
	cons, err := s.js.OrderedConsumer(ctx, keyStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return out, fmt.Errorf("eventstore: read data-key bucket %s: %w", KeyBucket, err)
	}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			return out, fmt.Errorf("eventstore: read data-key bucket %s: %w", KeyBucket, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return out, fmt.Errorf("eventstore: read data-key bucket %s: %w", KeyBucket, err)
		}
		if meta.Sequence.Stream > through {
			return out, nil
		}
		pk := strings.TrimPrefix(msg.Subject(), keySubjectPrefix)
		switch msg.Headers().Get(kvOperation) {
		case "DEL", kvPurge:
			out.Destroyed = append(out.Destroyed, pk)
		default:
			out.Wrapped[pk] = msg.Data()
		}
		if meta.Sequence.Stream == through || meta.NumPending == 0 {
			return out, nil
		}
	}
}

// ImportKeys stores a backup's data keys into this register's bucket (made if missing): each
// wrapped key where the person has no entry yet, and a purge marker for each destroyed one,
// also where the backup still held its key (a person erased after the backup was made, whose
// erasure the restored stream holds).
func (s *Store) ImportKeys(ctx context.Context, keys KeyExport) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if _, err := s.keyStream(ctx); err != nil {
		return err
	}
	kv, err := s.js.KeyValue(ctx, KeyBucket)
	if err != nil {
		return fmt.Errorf("eventstore: data-key bucket %s: %w", KeyBucket, err)
	}
	destroyed := make(map[string]bool, len(keys.Destroyed))
	for _, pk := range keys.Destroyed {
		destroyed[pk] = true
		if err := kv.Purge(ctx, pk); err != nil {
			return fmt.Errorf("eventstore: restore data keys: %w", err)
		}
	}
	for pk, wrapped := range keys.Wrapped {
		if destroyed[pk] {
			continue
		}
		if _, err := kv.Update(ctx, pk, wrapped, 0); err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
				continue // the person has an entry already
			}
			return fmt.Errorf("eventstore: restore data key of person %s: %w", pk, err)
		}
	}
	return nil
}
