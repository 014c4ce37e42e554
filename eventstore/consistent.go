package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// On a replicated stream every replica answers direct gets, and a follower that lags (it is
// catching up after a restart, or cut off from the leader by a partition) answers with what
// it has, as if that were all. A Read on such an answer folded a person without their
// newest events, so a valid registration could be refused by the rules (the append's
// sequence check never ran), and a Replay bounded by a fresher replica's last sequence ended
// early, which a projection took for the end of the range and skipped the rest: found by the
// fault-injection suite (internal/chaos). So a Replay walks on until it has delivered its
// upper bound (which exists: it was the last sequence), walks again over a sequence a replica
// skipped (the stream has no holes; the suite saw one event of an R3 stream skipped by a
// live projection with no fault near), and a Read that reaches the end of a
// person asks the stream leader, which has stored every acknowledged event, whether there
// is more; if there is, it walks on (any replica may answer the next request) until it has
// seen what the leader has, or ctx ends.

// behindPause is the wait before walking on after a lagging replica's answer.
const behindPause = 20 * time.Millisecond

// gapRetries is how many walks a Replay makes over a missing sequence before it asks the
// leader whether the message exists at all.
const gapRetries = 5

// behindLeader reports whether the stream leader has a message on subject at sequence next
// or later, after a pause when it has; always false for a whole-stream walk (subject "",
// which Replay bounds itself) and on a single replica.
func (s *Store) behindLeader(ctx context.Context, subject string, next uint64) (bool, error) {
	if !s.replicated || subject == "" {
		return false, nil
	}
	last, err := s.leaderLast(ctx, subject)
	if err != nil {
		return false, err
	}
	if last < next {
		return false, nil
	}
	return true, pause(ctx, behindPause)
}

// pause waits d, or returns ctx's error.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// notBehind returns seq, a last sequence a replica answered, unless it is below one seen
// before on a replicated stream: then the leader's, which is lower only when the stream
// really lost events (a projection would otherwise take a lagging replica for a stream rolled
// back and rebuild its read models).
func (s *Store) notBehind(ctx context.Context, seq uint64) (uint64, error) {
	if s.replicated && seq < s.lastSeen.Load() {
		l, err := s.leaderLast(ctx, "")
		if err != nil {
			return 0, err
		}
		if l < s.lastSeen.Load() {
			// The stream itself is behind what was seen: it lost events, or was re-created.
			s.lastSeen.Store(l)
			return l, nil
		}
		seq = l
	}
	for {
		seen := s.lastSeen.Load()
		if seq <= seen || s.lastSeen.CompareAndSwap(seen, seq) {
			return seq, nil
		}
	}
}

// leaderRaw returns the data of the message at seq as the stream leader has it, or
// ErrNoMessage.
func (s *Store) leaderRaw(ctx context.Context, seq uint64) ([]byte, error) {
	req, err := json.Marshal(map[string]uint64{"seq": seq})
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "$JS.API.STREAM.MSG.GET." + StreamName, Data: req})
	if err != nil {
		return nil, s.wrap(fmt.Errorf("eventstore: message %d from the stream leader: %w", seq, err))
	}
	var r struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("eventstore: message %d from the stream leader: %w", seq, err)
	}
	switch {
	case r.Error != nil && r.Error.Code == 404:
		return nil, ErrNoMessage
	case r.Error != nil:
		return nil, fmt.Errorf("eventstore: message %d from the stream leader: %s", seq, r.Error.Description)
	case r.Message == nil || r.Message.Seq != seq:
		return nil, fmt.Errorf("eventstore: message %d from the stream leader: no such message in the answer", seq)
	}
	return r.Message.Data, nil
}

// leaderHas reports whether the stream leader has a message at sequence seq.
func (s *Store) leaderHas(ctx context.Context, seq uint64) (bool, error) {
	req, err := json.Marshal(map[string]uint64{"seq": seq})
	if err != nil {
		return false, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "$JS.API.STREAM.MSG.GET." + StreamName, Data: req})
	if err != nil {
		return false, fmt.Errorf("eventstore: message %d from the stream leader: %w", seq, err)
	}
	var r struct {
		Message *struct{} `json:"message"`
		Error   *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return false, fmt.Errorf("eventstore: message %d from the stream leader: %w", seq, err)
	}
	switch {
	case r.Error != nil && r.Error.Code == 404:
		return false, nil
	case r.Error != nil:
		return false, fmt.Errorf("eventstore: message %d from the stream leader: %s", seq, r.Error.Description)
	}
	return r.Message != nil, nil
}

// leaderLast returns the sequence of the last message on subject ("" = the whole stream),
// 0 when there is none, as the stream leader has it: STREAM.MSG.GET is answered by the
// leader only, unlike a direct get.
func (s *Store) leaderLast(ctx context.Context, subject string) (uint64, error) {
	if subject == "" {
		subject = streamSubjects
	}
	req, err := json.Marshal(map[string]string{"last_by_subj": subject})
	if err != nil {
		return 0, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "$JS.API.STREAM.MSG.GET." + StreamName, Data: req})
	if err != nil {
		return 0, fmt.Errorf("eventstore: last sequence from the stream leader: %w", err)
	}
	var r struct {
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return 0, fmt.Errorf("eventstore: last sequence from the stream leader: %w", err)
	}
	switch {
	case r.Error != nil && r.Error.Code == 404:
		return 0, nil
	case r.Error != nil:
		return 0, fmt.Errorf("eventstore: last sequence from the stream leader: %s (%d)", r.Error.Description, r.Error.ErrCode)
	case r.Message == nil:
		return 0, fmt.Errorf("eventstore: last sequence from the stream leader: empty answer")
	}
	return r.Message.Seq, nil
}
