package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The data keys in a backup (DOMAIN.md Product decisions 15): KeyStore is in keys.go.

// ErrNoKeyBucket is returned by a read-only store's OpenKeyStore when the register has no
// data-key bucket: its identities were stored before they were sealed.
var ErrNoKeyBucket = errors.New("eventstore: the register has no data-key bucket " + KeyBucket)

// KeyExport is the content of the data-key bucket: every person's wrapped data key (opened
// only with the master key), the persons whose keys were destroyed, and the keys the bucket
// holds but cannot give (Damaged).
type KeyExport struct {
	Wrapped   map[string][]byte
	Destroyed []string
	// Damaged are the ids of the entries the bucket's stream counts but cannot read back (a
	// record whose checksum fails, a damaged disk), sorted: neither their keys nor whether
	// they were destroyed can be known. ImportKeys stores an entry for each that reads as
	// damaged, not as an erasure.
	Damaged []string
}

// ExportKeys reads the data-key bucket for a backup (DOMAIN.md Product decisions 15): the
// wrapped keys as stored, which the master key alone opens. A register without the bucket
// exports nothing.
//
// An entry the server cannot read back (a record whose checksum fails) is never delivered,
// and the server goes on counting it: it is in Damaged, found by the stream's count of each
// entry's subject. Before, one in the middle of the bucket was left out without a word (a
// restore of the backup read the person as erased), and one as the bucket's last message
// made the read wait for it and fail with a timeout after 10 s. The read never waits more
// than a request timeout for a message now; every entry the stream counts that the read did
// not bring is asked of the stream's leader, one by one.
func (s *Store) ExportKeys(ctx context.Context) (KeyExport, error) {
	out := KeyExport{Wrapped: map[string][]byte{}}
	if err := s.checkOpen(); err != nil {
		return out, err
	}
	cctx, cancel := s.withTimeout(ctx)
	stream, err := s.js.Stream(cctx, keyStream)
	cancel()
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return out, nil
	}
	if err != nil {
		return out, s.wrap(fmt.Errorf("eventstore: data-key bucket %s: %w", KeyBucket, err))
	}
	// Every entry's subject the stream counts, and its last sequence: taken before the read,
	// so that each entry counted is one the read must bring (or a newer one of the same
	// subject, asked for below).
	cctx, cancel = s.withTimeout(ctx)
	info, err := stream.Info(cctx, jetstream.WithSubjectFilter(keySubjectPrefix+">"))
	cancel()
	if err != nil {
		return out, s.wrap(fmt.Errorf("eventstore: data-key bucket %s: its entries: %w", KeyBucket, err))
	}
	if info.State.Msgs == 0 {
		return out, nil
	}
	counted := info.State.Subjects
	// The stream holds each entry's last message only (history 1): reading it whole up to
	// its last sequence now reads every entry once. Keys made meanwhile seal no event the
	// backup holds (a key is stored before the event it seals).
	through := info.State.LastSeq
	seen := make(map[string]bool, len(counted))
	take := func(subject string, hdr nats.Header, data []byte) {
		pk := strings.TrimPrefix(subject, keySubjectPrefix)
		seen[subject] = true
		switch hdr.Get(kvOperation) {
		case "DEL", kvPurge:
			out.Destroyed = append(out.Destroyed, pk)
		default:
			out.Wrapped[pk] = data
		}
	}
	cctx, cancel = s.withTimeout(ctx)
	cons, err := s.js.OrderedConsumer(cctx, keyStream, jetstream.OrderedConsumerConfig{InactiveThreshold: 30 * time.Second})
	cancel()
	if err != nil {
		return out, s.wrap(fmt.Errorf("eventstore: read data-key bucket %s: %w", KeyBucket, err))
	}
	it, err := cons.Messages()
	if err != nil {
		return out, s.wrap(fmt.Errorf("eventstore: read data-key bucket %s: %w", KeyBucket, consumerError(err)))
	}
	defer it.Stop()
	for {
		nctx, ncancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		msg, err := it.Next(jetstream.NextContext(nctx))
		ncancel()
		if err != nil && ctx.Err() == nil && nctx.Err() != nil {
			// None for a request timeout: what is left may be entries the server counts and
			// cannot read (the read's pending count never reaches 0 then); the leader is
			// asked for each below.
			break
		}
		if err != nil {
			return out, s.wrap(fmt.Errorf("eventstore: read data-key bucket %s: %w", KeyBucket, err))
		}
		meta, err := msg.Metadata()
		if err != nil {
			return out, fmt.Errorf("eventstore: read data-key bucket %s: %w", KeyBucket, err)
		}
		if meta.Sequence.Stream > through {
			break
		}
		take(msg.Subject(), msg.Headers(), msg.Data())
		if meta.Sequence.Stream == through || meta.NumPending == 0 {
			break
		}
	}
	// Each entry counted and not read: written again or destroyed meanwhile (its earlier
	// message is gone, the newer one is after through), deleted (a pooled key never used),
	// or damaged. The leader tells them apart as KeyStore's lookup does: a message on the
	// subject is taken, none with the subject still counted is a damaged entry.
	for subject := range counted {
		if seen[subject] {
			continue
		}
		m, damaged, err := s.lastOrDamaged(ctx, stream, subject)
		pk := strings.TrimPrefix(subject, keySubjectPrefix)
		switch {
		case err != nil:
			return out, fmt.Errorf("eventstore: data-key bucket %s: the entry %s: %w", KeyBucket, pk, err)
		case m != nil:
			var hdr nats.Header
			if len(m.Hdrs) > 0 {
				if hdr, err = nats.DecodeHeadersMsg(m.Hdrs); err != nil {
					return out, fmt.Errorf("eventstore: data-key bucket %s: the entry %s's headers do not decode: %w", KeyBucket, pk, err)
				}
			}
			take(subject, hdr, m.Data)
		case damaged:
			out.Damaged = append(out.Damaged, pk)
		}
		// Neither: deleted meanwhile (a pooled key never used).
	}
	sort.Strings(out.Damaged)
	if len(out.Damaged) > 0 {
		s.log.Error("data keys the key bucket counts cannot be read back (damaged on disk); a backup must not leave them out unsaid (nirctl verify names them)",
			"bucket", KeyBucket, "key_ids", strings.Join(out.Damaged, ","))
	}
	return out, nil
}

// ImportKeys stores a backup's data keys into this register's bucket (made if missing): each
// wrapped key where the person has no entry yet, a purge marker for each destroyed one, also
// where the backup still held its key (a person erased after the backup was made, whose
// erasure the restored stream holds), and damagedKeyEntry for each damaged one it holds
// neither wrapped nor destroyed.
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
	// The damaged ones last, so that the bucket's oldest key, which nird opens at start
	// beside the master check, is a whole one.
	for _, pk := range keys.Damaged {
		if _, ok := keys.Wrapped[pk]; ok || destroyed[pk] || pk == masterCheck {
			continue // whole in an earlier backup; or nird makes the check again
		}
		if _, err := kv.Update(ctx, pk, damagedKeyEntry, 0); err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
				continue
			}
			return fmt.Errorf("eventstore: restore the damaged data key %s: %w", pk, err)
		}
	}
	return nil
}

// damagedKeyEntry is what ImportKeys stores for a data key the backed-up register could not
// read back (KeyExport.Damaged): no master key opens it, so the restored register reads what
// the key sealed as unreadable (sealing.ErrKeyUnreadable, DataLoss), as the register backed
// up did, and not as an erasure («slettet»), which an absent entry would read as.
var damagedKeyEntry = []byte("nir: this data key was damaged on disk in the register the backup was made of")
