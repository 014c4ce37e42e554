package eventstore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/smallfile"
)

// Checkpoints commit to the whole event stream, across persons, up to a sequence: the
// per-person chain (chain.go) cannot show a change to a person's last event, a checkpoint
// can. nird publishes them on their own stream, outside nir.ev.>, whose subject only nird may
// publish to (StorePermissions, deploy/nats/accounts.conf); see nirv1.Checkpoint for the
// digest's definition.
const (
	// CheckpointStreamName is the stream holding the checkpoints.
	CheckpointStreamName = "NIR_CHECKPOINTS"
	// CheckpointSubject is its one subject.
	CheckpointSubject = "nir.checkpoint"
)

// Digest is the running digest of nirv1.Checkpoint: Sum covers every message added, through
// Seq.
type Digest struct {
	Seq uint64
	Sum [sha256.Size]byte
}

// Add extends the digest with the message at seq, given its subject and the SHA-256 of its
// data (HashOf, the chain's hash, so that a walk hashes each message once). Sequences must
// increase.
func (d *Digest) Add(seq uint64, subject string, dataHash []byte) {
	d.add(seq, "", subject, dataHash)
}

// AddEvent is Add for the message at seq on a person's subject (Subject(personKey)), without
// building the subject: what a copy of the stream that keeps events by person key adds.
func (d *Digest) AddEvent(seq uint64, personKey string, dataHash []byte) {
	d.add(seq, subjectPrefix, personKey, dataHash)
}

// add extends the digest with the message at seq on subject prefix+rest.
//
// The bytes hashed are gathered in a buffer on the stack and hashed in one call: a hash.Hash
// and the subject's conversion to bytes were allocations for every message, 65 MB in a
// rebuild of 1.1 M events from the live file.
func (d *Digest) add(seq uint64, prefix, rest string, dataHash []byte) {
	var buf [256]byte
	b := append(buf[:0], d.Sum[:]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(prefix)+len(rest)))
	b = append(b, prefix...)
	b = append(b, rest...)
	b = append(b, dataHash...)
	d.Sum = sha256.Sum256(b)
	d.Seq = seq
}

// StoredCheckpoint is a checkpoint as its stream holds it.
type StoredCheckpoint struct {
	// Seq is its sequence in CheckpointStreamName; Data its encoding as stored.
	Seq        uint64
	Data       []byte
	Checkpoint *nirv1.Checkpoint
}

// checkpointStreamConfig is the one definition of the checkpoint stream: like the event
// stream, nothing is ever deleted or ages out.
func checkpointStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        CheckpointStreamName,
		Description: "NIR checkpoints: running digests of NIR_EVENTS",
		Subjects:    []string{CheckpointSubject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Replicas:    replicas,
		AllowDirect: true,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// ensureCheckpointStream creates the checkpoint stream if it is missing.
func (s *Store) ensureCheckpointStream(ctx context.Context) error {
	_, err := s.js.Stream(ctx, CheckpointStreamName)
	if errStreamNotFound(err) {
		_, err = s.js.CreateStream(ctx, checkpointStreamConfig(s.cfg.Replicas))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			_, err = s.createdStream(ctx, CheckpointStreamName)
		}
	}
	if err != nil {
		return fmt.Errorf("eventstore: stream %s: %w", CheckpointStreamName, err)
	}
	return nil
}

// Checkpoints returns every checkpoint in the order they were published. A stream without the
// checkpoint stream (written before checkpoints existed, or read by a tool with no access to
// it) has none. A message that does not decode is returned with a nil Checkpoint. One the
// server cannot read back (a record whose checksum fails, a damaged disk) is never delivered,
// and is left out with an error log naming its sequence (ReadCheckpoints names them to its
// caller): the read used to wait for the stream's last message until ctx ended (forever
// without a deadline) when that one was damaged.
func (s *Store) Checkpoints(ctx context.Context) ([]StoredCheckpoint, error) {
	cps, _, err := s.ReadCheckpoints(ctx)
	return cps, err
}

// ReadCheckpoints is Checkpoints, and the sequences in CheckpointStreamName of the
// checkpoints the stream counts but cannot deliver (damaged on disk; the stream denies
// deletes), in order: what a backup or nirctl verify must not pass over unsaid. Before, one
// in the middle of the stream was left out without a word.
func (s *Store) ReadCheckpoints(ctx context.Context) ([]StoredCheckpoint, []uint64, error) {
	if err := s.checkOpen(); err != nil {
		return nil, nil, err
	}
	cctx, cancel := s.withTimeout(ctx)
	st, err := s.js.Stream(cctx, CheckpointStreamName)
	cancel()
	if errStreamNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, s.wrap(fmt.Errorf("eventstore: stream %s: %w", CheckpointStreamName, err))
	}
	first, last := st.CachedInfo().State.FirstSeq, st.CachedInfo().State.LastSeq
	if last == 0 {
		return nil, nil, nil
	}
	cctx, cancel = s.withTimeout(ctx)
	cons, err := s.js.OrderedConsumer(cctx, CheckpointStreamName, jetstream.OrderedConsumerConfig{InactiveThreshold: 30 * time.Second})
	cancel()
	if err != nil {
		return nil, nil, s.wrap(fmt.Errorf("eventstore: checkpoints: %w", err))
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, nil, s.wrap(fmt.Errorf("eventstore: checkpoints: %w", consumerError(err)))
	}
	defer it.Stop()
	var out []StoredCheckpoint
	var got uint64 // the last sequence delivered
	for got < last {
		nctx, ncancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		msg, err := it.Next(jetstream.NextContext(nctx))
		ncancel()
		if err != nil && ctx.Err() == nil && nctx.Err() != nil {
			// None for a request timeout: the rest are taken from the stream leader, and
			// those it has none of are the messages the server cannot read back. The
			// iterator is not waited on again: its consumer may never deliver (a first pull
			// answered "no responders" on a cluster is never sent again, and the heartbeat
			// check, restarted at every Next, does not fire within one), and the read used
			// to wait on it until ctx ended although the leader had every checkpoint.
			rest, err := s.leaderCheckpoints(ctx, got+1, last)
			out = append(out, rest...)
			if err != nil {
				return out, nil, err
			}
			break
		}
		if err != nil {
			return out, nil, s.wrap(fmt.Errorf("eventstore: checkpoints: %w", err))
		}
		md, err := msg.Metadata()
		if err != nil {
			return out, nil, fmt.Errorf("eventstore: checkpoints: %w", err)
		}
		got = md.Sequence.Stream
		sc := StoredCheckpoint{Seq: md.Sequence.Stream, Data: msg.Data()}
		cp := new(nirv1.Checkpoint)
		if proto.Unmarshal(sc.Data, cp) == nil {
			sc.Checkpoint = cp
		}
		out = append(out, sc)
	}
	// The sequences through last that were not delivered: the read skips a record it
	// cannot read and goes on with the next.
	var missing []uint64
	next := max(first, 1)
	for _, c := range out {
		for ; next < c.Seq && next <= last; next++ {
			missing = append(missing, next)
		}
		next = max(next, c.Seq+1)
	}
	for ; next <= last; next++ {
		missing = append(missing, next)
	}
	if len(missing) > 0 {
		s.log.Error("checkpoints the checkpoint stream counts cannot be read back (damaged on disk, or deleted); they are left out (run nirctl verify)",
			"stream", CheckpointStreamName, "checkpoint_seqs", fmt.Sprint(missing))
	}
	return out, missing, nil
}

// leaderCheckpoints returns the checkpoints from from through last as the checkpoint
// stream's leader has them, leaving out those it has none of (each damaged on disk, or
// deleted): ReadCheckpoints names them as missing.
func (s *Store) leaderCheckpoints(ctx context.Context, from, last uint64) ([]StoredCheckpoint, error) {
	var out []StoredCheckpoint
	for seq := from; seq <= last; seq++ {
		// Asked again when the stream is electing its leader: one unanswered request used
		// to fail the read (TestCheckpoints_LeaderRequestLostOnce).
		m, err := s.leaderGetAgain(ctx, CheckpointStreamName, map[string]uint64{"seq": seq})
		switch {
		case errors.Is(err, ErrNoMessage):
			continue
		case err != nil:
			return out, fmt.Errorf("eventstore: checkpoints: message %d from the stream leader: %w", seq, err)
		case m.Seq != seq:
			return out, fmt.Errorf("eventstore: checkpoints: message %d from the stream leader: the answer is message %d", seq, m.Seq)
		}
		sc := StoredCheckpoint{Seq: seq, Data: m.Data}
		cp := new(nirv1.Checkpoint)
		if proto.Unmarshal(sc.Data, cp) == nil {
			sc.Checkpoint = cp
		}
		out = append(out, sc)
	}
	return out, nil
}

// SignCheckpoint sets cp's public key and signature with key (ed25519).
func SignCheckpoint(cp *nirv1.Checkpoint, key ed25519.PrivateKey) error {
	cp.PublicKey = append([]byte(nil), key.Public().(ed25519.PublicKey)...)
	cp.Signature = nil
	msg, err := proto.MarshalOptions{Deterministic: true}.Marshal(cp)
	if err != nil {
		return err
	}
	cp.Signature = ed25519.Sign(key, msg)
	return nil
}

// LoadCheckpointKey reads the ed25519 signing key of the checkpoints: the 32-byte seed in
// hex on one line, in a file others may not read and only its owner may write; its group may
// read it, as the master key's (a secret mounted for nird's group: deploy/kubernetes,
// deploy/compose). A missing file is made (mode 0600) when create is set. Several nird on one
// stream should share the key (the same file on each), so that every checkpoint verifies
// against one public key, and a rebuild on each may take its live file's events.
func LoadCheckpointKey(path string, create bool) (ed25519.PrivateKey, error) {
	// Never more than a line; a FIFO or a device in its place is refused, not waited on.
	// The mode checked is the file's read (fi), not the path's at some later moment.
	b, fi, err := smallfile.ReadStat(path, 4096)
	if errors.Is(err, os.ErrNotExist) && create {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		// Synced: left empty by a power cut, the file stopped every start after it.
		if err := smallfile.WriteNew(path, []byte(hex.EncodeToString(seed)+"\n")); err != nil {
			return nil, err
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if err != nil {
		return nil, err
	}
	// Group read is allowed: a cluster's nird share one key, and a container platform mounts
	// a secret for a group (the file's owner is root). A group-readable one was refused, so
	// the shipped clusters gave each nird a key of its own, every checkpoint verified against
	// another, and no backup of them could be sealed (nirctl backup --checkpoint-key).
	if fi.Mode().Perm()&0o027 != 0 {
		return nil, fmt.Errorf("%s may be read by others or written by its group (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s does not hold a %d-byte ed25519 seed in hex", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ErrCheckpointSignature is returned by CheckSignature for a checkpoint whose signature does
// not hold, or that is not signed by the expected key.
var ErrCheckpointSignature = errors.New("checkpoint signature")

// CheckSignature checks a checkpoint's signature against its own public key and, when want
// is set, that the key is want. An unsigned checkpoint passes only when want is empty.
func CheckSignature(cp *nirv1.Checkpoint, want ed25519.PublicKey) error {
	if len(cp.GetSignature()) == 0 {
		if len(want) > 0 {
			return fmt.Errorf("%w: the checkpoint is not signed", ErrCheckpointSignature)
		}
		return nil
	}
	if len(cp.GetPublicKey()) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: the public key has %d bytes, not %d", ErrCheckpointSignature, len(cp.GetPublicKey()), ed25519.PublicKeySize)
	}
	if len(want) > 0 && !bytes.Equal(want, cp.GetPublicKey()) {
		return fmt.Errorf("%w: signed by another key than the one given", ErrCheckpointSignature)
	}
	unsigned := proto.Clone(cp).(*nirv1.Checkpoint)
	unsigned.Signature = nil
	msg, err := proto.MarshalOptions{Deterministic: true}.Marshal(unsigned)
	if err != nil {
		return err
	}
	if !ed25519.Verify(cp.GetPublicKey(), msg, cp.GetSignature()) {
		return fmt.Errorf("%w: the signature does not match the checkpoint", ErrCheckpointSignature)
	}
	return nil
}

// Defaults of CheckpointOptions.
const (
	DefaultCheckpointEvery    = 10000
	DefaultCheckpointInterval = time.Hour
)

// CheckpointOptions configure RunCheckpoints.
type CheckpointOptions struct {
	// Every is how many new events make a checkpoint due (0 = DefaultCheckpointEvery);
	// Interval the longest that new events wait for one (0 = DefaultCheckpointInterval).
	Every    uint64
	Interval time.Duration
	// Poll is how often the stream's last sequence is looked at (0 = a tenth of Interval,
	// at most 10 s).
	Poll time.Duration
	// Key signs the checkpoints; nil publishes them unsigned.
	Key ed25519.PrivateKey
	// Logger; nil = the store's.
	Logger *slog.Logger
	// Made, when set, is called after each checkpoint is stored.
	Made func(*nirv1.Checkpoint)
}

// RunCheckpoints publishes a checkpoint whenever Every events have arrived since the last one,
// or Interval has passed with new events, until ctx is done. Run it on one process at a time
// (under a Lease); a checkpoint published meanwhile by another is noticed (each publish
// expects the checkpoint stream's last sequence) and continued from.
//
// It continues the digest of the last checkpoint, which it trusts: checking the stream against
// the checkpoints is nirctl verify's work. A stream without checkpoints is read from sequence 1
// once.
func (s *Store) RunCheckpoints(ctx context.Context, opt CheckpointOptions) error {
	if opt.Every == 0 {
		opt.Every = DefaultCheckpointEvery
	}
	if opt.Interval <= 0 {
		opt.Interval = DefaultCheckpointInterval
	}
	if opt.Poll <= 0 {
		opt.Poll = min(opt.Interval/10, 10*time.Second)
	}
	log := opt.Logger
	if log == nil {
		log = s.log
	}
	c := &checkpointer{s: s, opt: opt, log: log.With("component", "checkpoints"), since: time.Now()}
	loaded := false
	var failing repeatedWarning
	for {
		if !loaded {
			if err := c.load(ctx); err != nil {
				failing.warn(log, "checkpoints: reading the last checkpoint", err)
			} else {
				loaded = true
			}
		}
		if loaded {
			if err := c.step(ctx); err != nil && ctx.Err() == nil {
				failing.warn(log, "checkpoint not made; trying again", err)
				loaded = false // another may have published one: read it again
			} else if err == nil {
				failing.clear()
			}
		}
		if !sleep(ctx, opt.Poll) {
			return nil
		}
	}
}

// repeatedWarning logs a failure that repeats with the same text once every
// repeatedWarningEvery, with how often it happened meanwhile: a checkpoint that cannot be
// made while an event is unreadable fails at every poll, and one line each time buried
// the log.
type repeatedWarning struct {
	text   string
	at     time.Time
	missed int
}

const repeatedWarningEvery = 10 * time.Minute

func (r *repeatedWarning) warn(log *slog.Logger, msg string, err error) {
	text := msg + ": " + err.Error()
	if text == r.text && time.Since(r.at) < repeatedWarningEvery {
		r.missed++
		return
	}
	if text == r.text {
		log.Warn(msg, "err", err, "repeated", r.missed+1, "since", r.at.UTC().Format(time.RFC3339))
	} else {
		log.Warn(msg, "err", err)
	}
	r.text, r.at, r.missed = text, time.Now(), 0
}

// clear forgets the failure once the work succeeds.
func (r *repeatedWarning) clear() { *r = repeatedWarning{} }

// checkpointer is RunCheckpoints' state: the last checkpoint and the digest through it.
type checkpointer struct {
	s     *Store
	opt   CheckpointOptions
	log   *slog.Logger
	since time.Time // when the last checkpoint was made (or the run began)

	digest  Digest
	lastSeq uint64 // the last checkpoint's sequence in its stream (0: none)
	prev    []byte // SHA-256 of the last checkpoint's encoding
}

// load reads the last checkpoint.
func (c *checkpointer) load(ctx context.Context) error {
	ctx, cancel := c.s.withTimeout(ctx)
	defer cancel()
	if err := c.s.ensureCheckpointStream(ctx); err != nil {
		return err
	}
	st, err := c.s.js.Stream(ctx, CheckpointStreamName)
	if err != nil {
		return c.s.wrap(err)
	}
	// The stream leader is asked, never a replica by direct get: a replica that lags (after
	// a restore, or a restart) answers "no message" for a checkpoint the leader has, and the
	// next checkpoint then named no previous one and its digest went on from an earlier
	// checkpoint, with a false error in the log.
	msg, damaged, err := c.s.lastOrDamaged(ctx, st, CheckpointSubject)
	var (
		cp   *nirv1.Checkpoint
		ok   bool
		from uint64 // where the walk back to a checkpoint that decodes starts
	)
	switch {
	case err != nil:
		return c.s.wrap(err)
	case msg == nil && !damaged:
		c.digest, c.lastSeq, c.prev = Digest{}, 0, nil
		return nil
	case damaged:
		last := st.CachedInfo().State.LastSeq
		// The stream holds a last message the server cannot read back (a record whose
		// checksum fails is answered as none, and still counted). Before, this read as no
		// checkpoint at all: each round then digested the whole stream and published
		// expecting an empty checkpoint stream, which the server refused, and no checkpoint
		// was made again. The next one follows the stream's last sequence and names no
		// previous (its hash cannot be read), and the digest goes on from an earlier one.
		c.lastSeq, c.prev, from = last, nil, last
		c.log.Error("checkpoints: the last checkpoint cannot be read back (damaged on disk); the digest goes on from an earlier one, and the next checkpoint names no previous (run nirctl verify)", "checkpoint_seq", last)
	default:
		c.lastSeq, c.prev, from = msg.Seq, HashOf(msg.Data), msg.Seq
		cp, ok = decodeCheckpoint(msg.Data)
		if !ok {
			// A damaged last checkpoint must not end the checkpoints (threat model: any
			// byte on disk may be damaged). The digest goes on from the last checkpoint
			// that decodes (from the stream's start if none does); the next checkpoint
			// names the damaged one as its previous, so that the chain stays whole and
			// verify reports the damage where it is.
			c.log.Warn("checkpoints: the last checkpoint does not decode; the digest goes on from an earlier one (run nirctl verify)", "checkpoint_seq", msg.Seq)
		}
	}
	for seq := from; !ok; {
		if seq <= 1 {
			c.digest, c.since = Digest{}, time.Now()
			return nil
		}
		seq--
		m, err := c.s.leaderGet(ctx, CheckpointStreamName, map[string]uint64{"seq": seq})
		if errors.Is(err, ErrNoMessage) {
			continue
		}
		if err != nil {
			return c.s.wrap(fmt.Errorf("eventstore: checkpoint %d from the stream leader: %w", seq, err))
		}
		cp, ok = decodeCheckpoint(m.Data)
	}
	c.digest.Seq = cp.GetStreamSeq()
	copy(c.digest.Sum[:], cp.GetDigest())
	c.since = cp.GetCreatedAt().AsTime()
	return nil
}

// decodeCheckpoint decodes a stored checkpoint; ok is false for one that is not usable.
func decodeCheckpoint(data []byte) (*nirv1.Checkpoint, bool) {
	cp := new(nirv1.Checkpoint)
	if err := proto.Unmarshal(data, cp); err != nil || len(cp.GetDigest()) != sha256.Size {
		return nil, false
	}
	return cp, true
}

// step makes a checkpoint if one is due.
func (c *checkpointer) step(ctx context.Context) error {
	last, err := c.s.LastSeq(ctx)
	if err != nil {
		return err
	}
	if last <= c.digest.Seq {
		return nil
	}
	if last-c.digest.Seq < c.opt.Every && time.Since(c.since) < c.opt.Interval {
		return nil
	}
	d := c.digest
	if _, err := c.s.Export(ctx, d.Seq+1, last, func(m RawMessage) error {
		d.Add(m.Seq, m.Subject, HashOf(m.Data))
		return nil
	}); err != nil {
		return err
	}
	cp := &nirv1.Checkpoint{StreamSeq: d.Seq, Digest: d.Sum[:], CreatedAt: timestamppb.Now(),
		StreamId: c.s.identity.String(), Previous: c.prev}
	if c.opt.Key != nil {
		if err := SignCheckpoint(cp, c.opt.Key); err != nil {
			return err
		}
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(cp)
	if err != nil {
		return err
	}
	pctx, cancel := c.s.withTimeout(ctx)
	defer cancel()
	ack, err := c.s.js.Publish(pctx, CheckpointSubject, data,
		jetstream.WithExpectStream(CheckpointStreamName), jetstream.WithExpectLastSequence(c.lastSeq))
	if err != nil {
		return c.s.wrap(fmt.Errorf("eventstore: publish checkpoint: %w", err))
	}
	c.digest, c.lastSeq, c.prev, c.since = d, ack.Sequence, HashOf(data), time.Now()
	c.log.Info("checkpoint made", "stream_seq", d.Seq, "checkpoint_seq", ack.Sequence, "signed", c.opt.Key != nil)
	if c.opt.Made != nil {
		c.opt.Made(cp)
	}
	return nil
}

// ImportCheckpoints stores checkpoints (their encodings as stored, in order) into the empty
// checkpoint stream: restoring a backup puts back the checkpoints made of the stream it
// restores, so that their chain (Previous) and signatures go on. It returns how many it
// stored.
func (s *Store) ImportCheckpoints(ctx context.Context, data [][]byte) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if len(data) == 0 {
		return 0, nil
	}
	cctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.ensureCheckpointStream(cctx); err != nil {
		return 0, err
	}
	st, err := s.js.Stream(cctx, CheckpointStreamName)
	if err != nil {
		return 0, s.wrap(err)
	}
	if n := st.CachedInfo().State.Msgs; n > 0 {
		return 0, fmt.Errorf("%w: %s holds %d checkpoints already", ErrNotEmpty, CheckpointStreamName, n)
	}
	for i, d := range data {
		pctx, cancel := s.withTimeout(ctx)
		_, err := s.js.Publish(pctx, CheckpointSubject, d,
			jetstream.WithExpectStream(CheckpointStreamName), jetstream.WithExpectLastSequence(uint64(i)))
		cancel()
		if err != nil {
			return i, s.wrap(fmt.Errorf("eventstore: import checkpoint %d: %w", i+1, err))
		}
	}
	return len(data), nil
}
