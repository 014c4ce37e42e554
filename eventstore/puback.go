package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishOne is jetstream.JetStream.PublishMsg without options, for the append path's plain
// publish: the same request, the same retries on no responders (nats.go's defaults), the same
// errors, with the server's ack read by readPubAck. nats.go decodes every ack with
// encoding/json, a seventh of the CPU a single append spends in nir (issue 17,
// BenchmarkServiceAppend's profile).
func (s *Store) publishOne(ctx context.Context, m *nats.Msg) (seq uint64, dup bool, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
	}
	resp, err := s.nc.RequestMsgWithContext(ctx, m)
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < jetstream.DefaultPubRetryAttempts; r++ {
		// A leader changing: as nats.go, try again after a pause.
		select {
		case <-ctx.Done():
		case <-time.After(jetstream.DefaultPubRetryWait):
		}
		resp, err = s.nc.RequestMsgWithContext(ctx, m)
	}
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return 0, false, jetstream.ErrNoStreamResponse
		}
		return 0, false, err
	}
	return readPubAck(resp.Data)
}

// readPubAck reads a publish's ack as nats.go's PublishMsg does: the stream sequence and
// whether the server knew the message id, an *jetstream.APIError (wrapped) for the server's
// refusal, jetstream.ErrInvalidJSAck for anything else. The acks the server writes for a
// stored message (its template: {"stream":"S","seq":N}, a domain after the stream if it has
// one, ,"duplicate": true before the brace for a known id) are read by hand; anything else
// goes to encoding/json.
func readPubAck(data []byte) (uint64, bool, error) {
	if seq, dup, ok := scanPubAck(data); ok {
		return seq, dup, nil
	}
	var resp struct {
		Error *jetstream.APIError `json:"error,omitempty"`
		*jetstream.PubAck
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return 0, false, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return 0, false, fmt.Errorf("nats: %w", resp.Error)
	}
	if resp.PubAck == nil || resp.Stream == "" {
		return 0, false, jetstream.ErrInvalidJSAck
	}
	return resp.Sequence, resp.Duplicate, nil
}

// scanPubAck reads the acks of the server's template, exactly: ok is false for any other
// text, which readPubAck then gives to encoding/json.
func scanPubAck(b []byte) (seq uint64, dup, ok bool) {
	var found bool
	if b, found = bytes.CutPrefix(b, []byte(`{"stream":"`)); !found {
		return 0, false, false
	}
	// A stream's name: not empty, nothing JSON would escape (a name cannot hold them).
	n := 0
	for n < len(b) && b[n] != '"' && b[n] != '\\' && b[n] >= 0x20 {
		n++
	}
	if n == 0 || n == len(b) || b[n] != '"' {
		return 0, false, false
	}
	b = b[n+1:]
	if rest, found := bytes.CutPrefix(b, []byte(`,"domain":"`)); found {
		n = 0
		for n < len(rest) && rest[n] != '"' && rest[n] != '\\' && rest[n] >= 0x20 {
			n++
		}
		if n == len(rest) || rest[n] != '"' {
			return 0, false, false
		}
		b = rest[n+1:]
	}
	if b, found = bytes.CutPrefix(b, []byte(`,"seq":`)); !found {
		return 0, false, false
	}
	// At most 19 digits: no overflow to check.
	n = 0
	for n < len(b) && n < 19 && '0' <= b[n] && b[n] <= '9' {
		seq = seq*10 + uint64(b[n]-'0')
		n++
	}
	if n == 0 || n > 1 && b[0] == '0' {
		return 0, false, false
	}
	switch rest := b[n:]; {
	case string(rest) == `}`:
		return seq, false, true
	case string(rest) == `,"duplicate": true}`, string(rest) == `,"duplicate":true}`:
		return seq, true, true
	}
	return 0, false, false
}
