package eventstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MetaStreamID is the stream metadata key under which Open records a random id when it
// creates the stream, so that a stream deleted and re-created (by anyone) is told from the
// one the read models were built from. A stream the server did not load (its metadata file
// damaged) and Open re-created over its message blocks gets back the id its last checkpoint
// names (adoptBlocks).
const MetaStreamID = "nir_stream_id"

// Identity tells one instance of the stream from another: a stream deleted and re-created
// under the same name, or another cluster's, has another.
type Identity struct {
	// ID is the stream's MetaStreamID metadata; empty for a stream Open did not create.
	ID string
	// Created is the server's creation time of the stream.
	Created time.Time
	// Metadata is the stream's metadata as found (Config.Metadata when Open created it).
	Metadata map[string]string
	// New is true when this Open created the stream (not when it re-created one over the
	// message blocks the server had not loaded: that stream holds events already).
	New bool
}

// String is the identity the read models record: the id, or for a stream Open did not
// create its creation time.
func (id Identity) String() string {
	if id.ID != "" {
		return id.ID
	}
	return "created:" + id.Created.UTC().Format(time.RFC3339Nano)
}

func newStreamID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// identityOf reads a stream's identity from its info.
// setStream takes the stream's identity and dedupe window from its info, as Open found or
// made it.
func (s *Store) setStream(info *jetstream.StreamInfo, created bool) {
	s.identity = identityOf(info, created)
	s.window.Store(int64(info.Config.Duplicates))
}

func identityOf(info *jetstream.StreamInfo, created bool) Identity {
	return Identity{ID: info.Config.Metadata[MetaStreamID], Created: info.Created,
		Metadata: maps.Clone(info.Config.Metadata), New: created}
}

// Identity returns the stream's identity as Open found (or made) it.
func (s *Store) Identity() Identity {
	id := s.identity
	id.Metadata = maps.Clone(id.Metadata)
	return id
}

// CurrentIdentity reads the stream's identity now: it differs from Identity when the stream
// was deleted and re-created since Open.
func (s *Store) CurrentIdentity(ctx context.Context) (Identity, error) {
	if err := s.checkOpen(); err != nil {
		return Identity{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return Identity{}, s.wrap(fmt.Errorf("eventstore: stream %s: %w", StreamName, err))
	}
	return identityOf(st.CachedInfo(), false), nil
}

// ErrNoMessage is returned by RawAt and MsgAt when the stream holds no message at the
// sequence.
var ErrNoMessage = fmt.Errorf("%w: no message at that sequence", ErrInvalid)

// RawAt returns the data of the message stored at seq, as stored (not decoded, not
// checked), with a direct get; ErrNoMessage when there is none.
func (s *Store) RawAt(ctx context.Context, seq uint64) ([]byte, error) {
	_, data, err := s.MsgAt(ctx, seq)
	return data, err
}

// MsgAt returns the subject and data of the message stored at seq, as stored (not decoded,
// not checked), with a direct get; ErrNoMessage when there is none.
func (s *Store) MsgAt(ctx context.Context, seq uint64) (subject string, data []byte, err error) {
	if err := s.checkOpen(); err != nil {
		return "", nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	msg := nats.NewMsg("$JS.API.DIRECT.GET." + StreamName)
	msg.Data = []byte(`{"seq":` + strconv.FormatUint(seq, 10) + `}`)
	resp, err := s.direct(ctx, msg)
	if err != nil {
		return "", nil, s.wrap(fmt.Errorf("eventstore: get seq %d: %w", seq, err))
	}
	if st := resp.Header.Get("Status"); st == "404" {
		if s.replicated {
			// A lagging replica may not have it yet: the leader says.
			m, err := s.leaderMsg(ctx, seq)
			if err != nil {
				return "", nil, err
			}
			return m.Subject, m.Data, nil
		}
		return "", nil, ErrNoMessage
	} else if st != "" {
		return "", nil, fmt.Errorf("eventstore: get seq %d: status %s %s", seq, st, resp.Header.Get("Description"))
	}
	if got, _ := strconv.ParseUint(resp.Header.Get(jetstream.SequenceHeader), 10, 64); got != seq {
		return "", nil, fmt.Errorf("eventstore: get seq %d: the server answered seq %d", seq, got)
	}
	return resp.Header.Get(jetstream.SubjectHeader), resp.Data, nil
}
