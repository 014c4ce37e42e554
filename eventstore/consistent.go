package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// On a replicated stream every replica answers direct gets, and a follower that lags (it is
// catching up after a restart, or cut off from the leader by a partition) answers with what
// it has, as if that were all. A Read on such an answer folded a person without their
// newest events, so a valid registration could be refused by the rules (the append's
// sequence check never ran), and a Replay bounded by a fresher replica's last sequence ended
// early, which a projection took for the end of the range and skipped the rest: found by the
// fault-injection suite (internal/chaos). So a Replay walks on until it has delivered its
// upper bound (which exists: it was the last sequence), walks again over a sequence a replica
// skipped (the stream has no holes), and a Read that reaches the end of a person asks the
// stream leader, which has stored every acknowledged event, whether there is more; if there
// is, it walks on (any replica may answer the next request) until it has seen what the
// leader has, or ctx ends.
//
// When a few walks in a row do not bring the next sequence, a Replay takes it from the
// stream leader (Store.gap); the ordered consumer of a long Replay does the same for a stream
// sequence it skips (it checks only its own sequence). The leader's answers are checked too:
// a node cut off from the others, or paused, goes on answering as leader until it learns it
// was deposed, with a store that ends early. Only JetStream's "no message found" counts as
// none (a meta leader's "stream not found" is a 404 too), and a sequence counts as missing
// only when the leader says so twice, missingConfirm apart, while holding later ones or while
// its stream state counts it (a last message its store cannot read back); it is then
// delivered as quarantined (ReasonMissing), never skipped unseen. The walk used to skip a
// sequence on the leader's first 404: the suite found live read models without an event
// every clean build had, and the regelmotor, running on them, missed a termination.

// behindPause is the wait before walking on after a lagging replica's answer.
const behindPause = 20 * time.Millisecond

// gapRetries is how many walks in a row a Replay makes without the next sequence before it
// takes that sequence from the stream leader.
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
	s.raiseSeen(seq)
	return seq, nil
}

// raiseSeen raises lastSeen to seq, if it is lower.
func (s *Store) raiseSeen(seq uint64) {
	for seen := s.lastSeen.Load(); seq > seen && !s.lastSeen.CompareAndSwap(seen, seq); seen = s.lastSeen.Load() {
	}
}

// apiError is the error of a JetStream API answer.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

// errCodeNoMessage is JetStream's "no message found" (JSNoMessageFoundErr, 10037), the
// only answer that says a message is not there. Other answers share its status 404 (a meta
// leader without the stream's assignment answers "stream not found", 10059): they say
// nothing about the message, and a reader that took them for "none" skipped events.
const errCodeNoMessage = 10037

// noMessage reports whether e says that the message asked for does not exist.
func (e *apiError) noMessage() bool {
	return e != nil && e.Code == 404 && e.ErrCode == errCodeNoMessage
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d)", e.Description, e.ErrCode) }

// storedMsg is the message of a STREAM.MSG.GET answer.
type storedMsg struct {
	Subject string    `json:"subject"`
	Seq     uint64    `json:"seq"`
	Hdrs    []byte    `json:"hdrs"`
	Data    []byte    `json:"data"`
	Time    time.Time `json:"time"`
}

// leaderGet asks the leader of stream for one message with STREAM.MSG.GET, which the leader
// alone answers, unlike a direct get: req is {"seq": n} or {"last_by_subj": subject}.
// ErrNoMessage when the leader says there is none (only that answer: apiError.noMessage).
func (s *Store) leaderGet(ctx context.Context, stream string, req any) (*storedMsg, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "$JS.API.STREAM.MSG.GET." + stream, Data: data})
	if err != nil {
		return nil, s.wrap(err)
	}
	var r struct {
		Message *storedMsg `json:"message"`
		Error   *apiError  `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("the server's answer does not decode: %w", err)
	}
	switch {
	case r.Error.noMessage():
		return nil, ErrNoMessage
	case r.Error != nil:
		return nil, r.Error
	case r.Message == nil:
		return nil, errors.New("empty answer")
	}
	return r.Message, nil
}

// A stream electing a leader answers a leader request with nothing (its members stay
// silent) or with JetStream's "temporarily unavailable" (a group without a leader), and a
// server that has not yet taken up JetStream with "no responders", each for a moment. The
// checkpoint read, once it has turned to the leader (ReadCheckpoints), used to fail on the
// first such answer, having waited the caller's whole deadline for it.
const (
	leaderTries      = 5                      // requests in all
	leaderFirstPause = 250 * time.Millisecond // before the second; twice as long before each next
)

// errCodeClusterNotAvail is JetStream's "temporarily unavailable" (JSClusterNotAvailErr),
// the answer of a stream without a leader.
const errCodeClusterNotAvail = 10008

// leaderGetAgain is leaderGet with each request bounded by the request timeout (within ctx),
// sent again after a pause, up to leaderTries requests, while the answer is one an election
// gives (electionAnswer). A definite answer (the message, "no message", any other error) is
// returned at once, as is everything once ctx has ended.
func (s *Store) leaderGetAgain(ctx context.Context, stream string, req any) (*storedMsg, error) {
	wait := leaderFirstPause
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		m, err := s.leaderGet(tctx, stream, req)
		cancel()
		if err == nil || ctx.Err() != nil || !electionAnswer(err) {
			return m, err
		}
		if try == leaderTries {
			return nil, fmt.Errorf("%w (no answer to %d requests to the stream leader: is the cluster electing one, or lacking a majority?)", err, try)
		}
		if perr := pause(ctx, wait); perr != nil {
			return nil, errors.Join(err, perr)
		}
		wait *= 2
	}
}

// electionAnswer reports whether err, a leader request's, is what a stream without a
// leader for a moment gives: no answer within the request's time, no responders, or
// JetStream's "temporarily unavailable".
func electionAnswer(err error) bool {
	var api *apiError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.As(err, &api) && api.ErrCode == errCodeClusterNotAvail
}

// lastOrDamaged asks the leader of st for its last message on subject. A message is returned
// as it is. None, while the stream's state still counts one on the subject, is damaged on
// disk (the server answers a record whose checksum fails as no message and goes on counting
// it): damaged, unless a message came meanwhile, for which the leader is asked once more
// after the count. None and none counted is an empty subject. The key store's lookup, the
// export of the data keys and the lease tell a damaged entry from an absent one with it.
func (s *Store) lastOrDamaged(ctx context.Context, st jetstream.Stream, subject string) (m *storedMsg, damaged bool, err error) {
	name := st.CachedInfo().Config.Name
	get := func() (*storedMsg, error) {
		m, err := s.leaderGet(ctx, name, map[string]string{"last_by_subj": subject})
		if errors.Is(err, ErrNoMessage) {
			return nil, nil
		}
		return m, err
	}
	if m, err := get(); err != nil || m != nil {
		return m, false, err
	}
	cctx, cancel := s.withTimeout(ctx)
	info, err := st.Info(cctx, jetstream.WithSubjectFilter(subject))
	cancel()
	if err != nil {
		return nil, false, s.wrap(fmt.Errorf("the count of %s in %s: %w", subject, name, err))
	}
	if info.State.Subjects[subject] == 0 {
		return nil, false, nil
	}
	if m, err := get(); err != nil || m != nil {
		return m, false, err
	}
	return nil, true, nil
}

// leaderMsg returns the message at seq as the stream leader has it, or ErrNoMessage.
func (s *Store) leaderMsg(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	m, err := s.leaderGet(ctx, StreamName, map[string]uint64{"seq": seq})
	switch {
	case errors.Is(err, ErrNoMessage):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("eventstore: message %d from the stream leader: %w", seq, err)
	case m.Seq != seq:
		return nil, fmt.Errorf("eventstore: message %d from the stream leader: no such message in the answer", seq)
	}
	return &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: seq, Data: m.Data, Time: m.Time}, nil
}

// fromLeader returns the message at seq, which a replica's answers have skipped, as the
// stream leader has it. The stream never deletes (DenyDelete, DenyPurge, no limits), so a
// leader without it that has later messages, or whose stream state counts it (its last
// sequence is seq or later), has lost it from its store: missing is true. The second covers
// a damaged last message, which the server's state counts while it answers no message for
// it, and no later message exists to tell. A leader without it whose state ends before it
// is behind (a node cut off or paused that has not yet learnt it was deposed; nats-server
// makes a new leader answer only once it has applied its log): nil, false, nil, and the
// caller asks again.
func (s *Store) fromLeader(ctx context.Context, seq uint64) (m *jetstream.RawStreamMsg, missing bool, err error) {
	m, err = s.leaderMsg(ctx, seq)
	if !errors.Is(err, ErrNoMessage) {
		return m, false, err
	}
	last, err := s.leaderLast(ctx, "")
	if err != nil {
		return nil, false, err
	}
	if last > seq {
		return nil, true, nil
	}
	st, led, err := s.leaderState(ctx)
	if err != nil {
		return nil, false, err
	}
	// A member of a group without a leader answers stream info with its own state: that
	// is no leader's word.
	return nil, led && st.LastSeq >= seq, nil
}

// leaderState returns the stream's state (STREAM.INFO, which the stream leader answers; led
// is false when the answer says the stream has no leader now, as a member answers then, or
// on one server always true).
func (s *Store) leaderState(ctx context.Context) (st jetstream.StreamState, led bool, err error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	str, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return st, false, s.wrap(fmt.Errorf("eventstore: stream state: %w", err))
	}
	info := str.CachedInfo()
	return info.State, info.Cluster == nil || info.Cluster.Leader != "" || !s.replicated, nil
}

// missingConfirm is how long the stream leader must keep saying that its store lost a
// sequence before a Replay delivers it as missing: gap asks it again after that long.
const missingConfirm = time.Second

// gap returns the message at seq, which walks over the replicas did not bring, from the
// stream leader. missing is true when the leader has said twice, missingConfirm apart, that
// its store lacks seq while it has later ones or its state counts seq (fromLeader); nil,
// false, nil means: ask again after a pause.
func (s *Store) gap(ctx context.Context, seq uint64) (m *jetstream.RawStreamMsg, missing bool, err error) {
	m, missing, err = s.fromLeader(ctx, seq)
	if err == nil && missing {
		if err := pause(ctx, missingConfirm); err != nil {
			return nil, false, err
		}
		m, missing, err = s.fromLeader(ctx, seq)
	}
	switch {
	case err != nil:
		return nil, false, err
	case m != nil:
		s.stats.leaderFills.Add(1)
		s.log.Debug("a replica skipped a stream sequence or lags; taken from the stream leader", "stream_seq", seq)
	case missing:
		s.stats.missing.Add(1)
		s.log.Error("a stream sequence is missing from the stream leader's store, which counts it (it holds later ones, or its state ends at or after it); delivered as quarantined", "stream_seq", seq)
	}
	return m, missing, nil
}

// leaderLast returns the sequence of the last message on subject ("" = the whole stream),
// 0 when there is none, as the stream leader has it: STREAM.MSG.GET is answered by the
// leader only, unlike a direct get. For the whole stream, a last message the leader's store
// cannot read back is resolved through the leader's stream state, as LastSeq does
// (lastFromState).
func (s *Store) leaderLast(ctx context.Context, subject string) (uint64, error) {
	subjects := []string{subject}
	if subject == "" {
		subjects = lastSubjects
	}
	ask := func(ctx context.Context) (uint64, bool, error) {
		for _, subject := range subjects {
			m, err := s.leaderGet(ctx, StreamName, map[string]string{"last_by_subj": subject})
			switch {
			case errors.Is(err, ErrNoMessage):
				continue
			case err != nil:
				return 0, false, err
			}
			return m.Seq, true, nil
		}
		return 0, false, nil
	}
	seq, found, err := ask(ctx)
	if err == nil && !found && subject == "" {
		seq, err = s.lastFromState(ctx, ask)
	}
	if err != nil {
		return 0, fmt.Errorf("eventstore: last sequence from the stream leader: %w", err)
	}
	return seq, nil
}

// ErrUnconfirmed is returned by ConfirmLeader when the stream leader cannot be shown to have
// led its replicas after a read began: the read may have been answered by a node cut off from
// the others (or paused) that still takes itself for the leader. The caller tries again.
var ErrUnconfirmed = errors.New("eventstore: the stream leader could not be confirmed")

// confirmWait bounds how long ConfirmLeader waits to hear that the leader's replicas
// answered it. The leader hears from them with each append and, on an idle cluster, with
// its heartbeats: 0.1–1.9 s in TestReplicas; the rest is room for a loaded machine.
const confirmWait = 5 * time.Second

// ConfirmLeader returns nil once the stream leader reports that a quorum of the stream's
// replicas (itself counted) answered it after since: a read begun at since and answered by
// that leader missed nothing acknowledged before it began. A node cut off from the others by
// a partition, or paused, answers as leader from a store that ends early until it learns it
// was deposed (up to ten seconds), but it hears from no replica in that time: a replica that
// answered it later was in its term, and no other leader can commit without such a replica.
// ErrUnconfirmed after confirmWait without it; nil at once on one server.
//
// A read that ends in a refusal is confirmed with ConfirmReads (the ingest service), which
// ties the confirmation to what the read saw: refusing a valid registration on a deposed
// leader's short history is an answer, where a failed append is only a retry.
func (s *Store) ConfirmLeader(ctx context.Context, since time.Time) error {
	if !s.replicated {
		return nil
	}
	_, err := s.confirmed(ctx, since)
	return err
}

// ConfirmedLastSeq returns the last sequence of a stream leader confirmed as ConfirmLeader
// confirms it since the time given, taken from the same answer that showed its quorum: every
// event acknowledged before since lies at or below it, whichever node answered any read
// before. A read's own answer (LeaderLastSeq) may come from a node cut off from the others
// that still takes itself for the leader, and the leader that confirms may be another node
// (ConfirmLeader proves a leader, not the read); this bound needs no such tie and compares no
// clocks. ErrUnconfirmed as ConfirmLeader; on one server, LastSeq.
func (s *Store) ConfirmedLastSeq(ctx context.Context, since time.Time) (uint64, error) {
	if !s.replicated {
		return s.LastSeq(ctx)
	}
	return s.confirmed(ctx, since)
}

// ErrReadShort is returned by ConfirmReads when a confirmed stream leader counts more
// messages on a subject than a read saw on it (or fewer): the read may have been answered by
// a node cut off from the others that still takes itself for the leader, from a store that
// ends early, or the subject got a message since. The caller judges again on a new read. It
// wraps ErrUnconfirmed.
var ErrReadShort = fmt.Errorf("%w: a read saw another count of messages than the stream leader holds", ErrUnconfirmed)

// Reads records, per subject, how many messages the reads made with a context from WithReads
// saw (Read: every message of the subject it walked, those it quarantined too; After: none,
// when it answers that the subjects hold none), for ConfirmReads. Safe for concurrent reads.
type Reads struct {
	mu   sync.Mutex
	seen map[string]uint64 // subject → the fewest messages a read of it saw
}

type readsKey struct{}

// WithReads returns a context whose Reads and Afters record in the Reads returned.
func WithReads(ctx context.Context) (context.Context, *Reads) {
	r := &Reads{seen: map[string]uint64{}}
	return context.WithValue(ctx, readsKey{}, r), r
}

// saw records that a read under ctx saw n messages on subject, if ctx records reads; of two
// reads of a subject, the one that saw fewer is kept.
func saw(ctx context.Context, subject string, n uint64) {
	r, _ := ctx.Value(readsKey{}).(*Reads)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.seen[subject]; !ok || n < m {
		r.seen[subject] = n
	}
}

// ConfirmReads is ConfirmLeader tied to the reads r recorded, without comparing clocks: for
// each subject read, the stream leader is asked for its count of the subject's messages in the
// same stream-info answer that shows a quorum of its replicas answered it after since
// (heardIn), and the reads are confirmed only if every such count equals what the read saw
// (tiedIn). Every event acknowledged before since is then among the messages the reads saw,
// whichever node answered them: a server's store is a prefix of what its stream committed, and
// the stream deletes nothing. ConfirmLeader proves that a leader led its replicas, not that
// the node that answered the read had everything. ErrReadShort when a count differs,
// ErrUnconfirmed when no confirmed answer comes within confirmWait; with nothing recorded (or
// r nil), ConfirmLeader; nil at once on one server.
func (s *Store) ConfirmReads(ctx context.Context, since time.Time, r *Reads) error {
	if !s.replicated {
		return nil
	}
	var seen map[string]uint64
	if r != nil {
		r.mu.Lock()
		seen = maps.Clone(r.seen)
		r.mu.Unlock()
	}
	if len(seen) == 0 {
		_, err := s.confirmed(ctx, since)
		return err
	}
	// One request a subject, each answer confirmed on its own: a filter covering several
	// persons' subjects would count every person's, and an answer split in pages is several
	// answers, perhaps from several leaders. A refused request of many persons reads many
	// subjects (up to 1000 registrations, each with its claims and merges), so the requests
	// go confirmReadsInFlight at a time; the first subject short or unconfirmed stops the rest.
	deadline := time.Now().Add(confirmWait)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subjects := slices.Sorted(maps.Keys(seen))
	errs := make([]error, len(subjects))
	sem := make(chan struct{}, confirmReadsInFlight)
	var wg sync.WaitGroup
	asked := 0
	for i, subject := range subjects {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		asked++
		wg.Go(func() {
			defer func() { <-sem }()
			if errs[i] = s.confirmSubject(ctx, since, deadline, subject, seen[subject]); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	if err := firstCause(errs); err != nil {
		return err
	}
	if asked < len(subjects) {
		return ctx.Err() // the caller's context ended before every subject was asked
	}
	return nil
}

// firstCause picks, of the errors of requests made together where the first to fail stopped
// the rest, the one that stopped them (the others may have only the context's error): a short
// read, judged again, before an unconfirmed leader, before any other error, before the
// context's; nil if all are nil.
func firstCause(errs []error) error {
	for _, target := range []error{ErrReadShort, ErrUnconfirmed} {
		for _, err := range errs {
			if errors.Is(err, target) {
				return err
			}
		}
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// confirmReadsInFlight bounds ConfirmReads's stream-info requests in flight at once.
const confirmReadsInFlight = 16

// confirmSubject asks the stream leader for its count of subject's messages until an answer
// is confirmed (heardIn) and returns nil if that count is seen; ErrReadShort if it is not,
// ErrUnconfirmed past deadline.
func (s *Store) confirmSubject(ctx context.Context, since, deadline time.Time, subject string, seen uint64) error {
	for {
		info, err := s.subjectInfo(ctx, subject)
		if err != nil {
			return err
		}
		confirmed, tied, count := tiedIn(info, time.Since(since), subject, seen)
		if confirmed && !tied {
			return fmt.Errorf("%w: %d messages read on a subject, %d on the stream leader", ErrReadShort, seen, count)
		}
		if confirmed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: no answer within %v shows a quorum of its replicas", ErrUnconfirmed, confirmWait)
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// tiedIn is ConfirmReads's judgement of one stream-info answer asked with subject as its
// subjects filter: confirmed if the answer is a leader's that heard a quorum of its replicas
// within age (heardIn), tied if, besides, its count of the subject's messages is seen, the
// count the reads saw (TestTiedIn).
func tiedIn(info *jetstream.StreamInfo, age time.Duration, subject string, seen uint64) (confirmed, tied bool, count uint64) {
	if heard, need, _ := heardIn(info, age); heard < need {
		return false, false, 0
	}
	count = info.State.Subjects[subject]
	return true, count == seen, count
}

// subjectInfo asks for the stream's info with its count of subject's messages (STREAM.INFO
// with a subjects filter, which the stream leader answers; heardIn tells whether it did).
func (s *Store) subjectInfo(ctx context.Context, subject string) (*jetstream.StreamInfo, error) {
	data, err := json.Marshal(map[string]string{"subjects_filter": subject})
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "$JS.API.STREAM.INFO." + StreamName, Data: data})
	if err != nil {
		return nil, s.wrap(fmt.Errorf("eventstore: stream leader's count of a subject: %w", err))
	}
	var r struct {
		jetstream.StreamInfo
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("eventstore: stream leader's count of a subject: the server's answer does not decode: %w", err)
	}
	if r.Error != nil {
		return nil, fmt.Errorf("eventstore: stream leader's count of a subject: %w", r.Error)
	}
	return &r.StreamInfo, nil
}

// confirmed asks the stream leader until it reports that a quorum of the stream's replicas
// answered it after since, and returns that answer's last sequence; ErrUnconfirmed after
// confirmWait.
func (s *Store) confirmed(ctx context.Context, since time.Time) (uint64, error) {
	deadline := time.Now().Add(confirmWait)
	for {
		heard, need, last, err := s.leaderHeard(ctx, time.Since(since))
		if err != nil {
			return 0, err
		}
		if heard >= need {
			return last, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%w: %d of the %d replicas needed answered it within %v", ErrUnconfirmed, heard, need, confirmWait)
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// leaderHeard returns how many of the stream's replicas, the leader counted, the stream
// leader has heard from within age, how many make a quorum, and the stream's last sequence
// in the same answer.
func (s *Store) leaderHeard(ctx context.Context, age time.Duration) (heard, need int, last uint64, err error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return 0, 0, 0, s.wrap(fmt.Errorf("eventstore: stream leader: %w", err))
	}
	heard, need, last = heardIn(st.CachedInfo(), age)
	return heard, need, last, nil
}

// heardIn is leaderHeard's count on one stream-info answer. An answer is the leader's own
// only if the leader it names is not among its replicas: a server lists the others, never
// itself, and nats-server lets a member that is not the leader answer (the preferred member
// of a group created less than lostQuorumInterval ago, jsStreamInfoRequest), with its own
// state, which may end before what the leader acknowledged, and the leader among the
// replicas it heard from lately. Such an answer is not confirmed
// (TestHeardIn_NotTheLeadersAnswer).
func heardIn(info *jetstream.StreamInfo, age time.Duration) (heard, need int, last uint64) {
	ci := info.Cluster
	if ci == nil || ci.Leader == "" {
		return 0, 1, 0 // no leader now: not confirmed
	}
	for _, r := range ci.Replicas {
		if r.Name == ci.Leader {
			return 0, 1, 0 // answered by another member than the leader: not confirmed
		}
	}
	heard = 1
	for _, r := range ci.Replicas {
		// Answered within age, in the leader's term (an answer from a later term deposes
		// it). Whether the replica has caught up does not matter here. A replica never
		// heard from has Active 0.
		if !r.Offline && r.Active > 0 && r.Active < age {
			heard++
		}
	}
	return heard, (len(ci.Replicas)+1)/2 + 1, info.State.LastSeq
}
