package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/introreg/nir/ratelog"
	"github.com/introreg/nir/rules"
)

const (
	// StreamName is the one stream holding every event.
	StreamName = "NIR_EVENTS"
	// streamSubjects is the stream's subject filter: nir.ev.<person key>.
	streamSubjects = subjectPrefix + "*"

	// DefaultDuplicateWindow is JetStream's dedupe window when Config.DuplicateWindow is 0.
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultRequestTimeout bounds a request to the server when ctx has no deadline.
	DefaultRequestTimeout = 10 * time.Second
	// MaxBatchEvents is the most events one Append call may carry, and the atomic batch
	// limit the embedded server is given (deploy/nats's configurations set it too:
	// jetstream { limits { batch { max_msgs } } }); the server's default is 1000. A request
	// of the most registrations the API takes (1000) makes up to three times as many events:
	// a person registered with three national ids brings two IdentifierClaimed in the same
	// batch, a merge or its retraction one closing on the other person (internal/ingest). At
	// the server's default a request of 1000 registrations that brought one id was refused.
	MaxBatchEvents = 3000

	readyTimeout = 30 * time.Second
)

// EmbeddedMaxPayload is the embedded server's max_payload, the same as deploy/nats's
// configurations set.
const EmbeddedMaxPayload = 8 << 20

// Config says where the stream lives. The zero value is not usable: set Dir (embedded
// server) or URL (external server).
type Config struct {
	// Dir is the embedded server's data directory (JetStream store); used when URL == "".
	Dir string
	// URL is an external NATS server (or cluster) URL to use instead of an embedded one.
	URL string
	// Listen is the embedded server's TCP listen address for other clients (the nats
	// CLI, case systems), e.g. "127.0.0.1:4222" ("127.0.0.1:0" = a random port); "" = no
	// TCP listener: the store talks to its server in-process, and so does every other
	// connection made with Store.Connect. The listener is not encrypted, so only a
	// loopback host is accepted.
	Listen string
	// Users are the clients the embedded server admits besides the store's own
	// connection, each with an nkey and its permissions: TCP users for the nats CLI and
	// case systems, and in-process users for Store.Connect (see InProcessUser). No other
	// client gets in: there is no anonymous user. Only with the embedded server.
	Users []*server.NkeyUser
	// Accounts configure the embedded server's accounts (internal/natsauth.EmbeddedAccounts):
	// one named $G is the global account's settings (where the stream and nird's own users
	// are), the others are accounts of their own, which a user of Users names with its
	// Account (the readers'). Only with the embedded server.
	Accounts []*server.Account
	// Replicas is the stream's replica count; 0 = 1. Use 3 on a cluster.
	Replicas int
	// DuplicateWindow is JetStream's dedupe window; 0 = DefaultDuplicateWindow. Idempotency
	// of Append does not depend on it (see the package doc); it only makes retries cheaper.
	DuplicateWindow time.Duration
	// NATSOptions are extra client options for an external server: credentials, TLS,
	// user/password, nkey; an option here wins over the store's own (e.g. an inbox prefix).
	NATSOptions []nats.Option
	// RequestTimeout bounds a call whose ctx has no deadline, and each request to the server
	// whatever ctx's deadline: an append's publish (a lone caller's ends at its own deadline
	// when that is sooner), a direct get, a key's fetch; 0 = DefaultRequestTimeout.
	RequestTimeout time.Duration
	// GroupCommit tunes how concurrent Append calls are coalesced; zero = defaults.
	GroupCommit GroupCommit
	// Logger receives the store's and the embedded server's logs; nil = discard.
	Logger *slog.Logger
	// Metadata is written into the stream's metadata when Open creates the stream (with a
	// random MetaStreamID), and never changed later: nird records its person key's
	// fingerprint there. See Store.Identity.
	Metadata map[string]string
	// ReadOnly opens an existing stream for reading (Read, Replay, LastSeq) only: Open
	// fails if the stream does not exist and neither creates nor updates it, as offline
	// tools and operators' read-only NATS users need.
	ReadOnly bool
}

// Store is the event store: one JetStream stream, one subject per person. It is safe for
// concurrent use by many goroutines.
type Store struct {
	cfg Config
	log *slog.Logger
	srv *server.Server // nil with an external server
	nc  *nats.Conn
	js  jetstream.JetStream

	// maxPayload is the largest message (headers + data) the server accepts.
	maxPayload int64
	// replicated is set by Open when the stream has more than one replica: reads then
	// check a lagging follower's answers with the leader (consistent.go).
	replicated bool
	// lastSeen is the highest last sequence LastSeq has returned or Append has stored at: an
	// answer below it comes from a lagging replica, or from a stream that lost events, which
	// the leader tells.
	lastSeen atomic.Uint64
	// window is the stream's dedupe window as last read (DuplicateWindow), in nanoseconds.
	window atomic.Int64
	// unreadableLast is the last sequence lastFromState last warned of: a stream's last
	// message that cannot be read back is logged once, not on every LastSeq.
	unreadableLast atomic.Uint64

	gc     *committer
	stats  stats
	hashes hashCache // chain hashes of recently appended messages (chain.go)

	// identity is the stream's as Open found or made it.
	identity Identity

	// notifyMu guards notify and notifyID: the callbacks registered with Notify.
	notifyMu sync.Mutex
	notify   map[uint64]func()
	notifyID uint64

	// quarantineMu guards quarantineLogged: the sequences of quarantined messages Read has
	// logged.
	quarantineMu     sync.Mutex
	quarantineLogged map[uint64]bool

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open starts the embedded server if cfg.URL is empty, connects to it, and creates the
// stream NIR_EVENTS or updates it to the current definition. The stream definition lives
// here only (see streamConfig). ctx bounds the start-up.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = DefaultDuplicateWindow
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, log: log.With("component", "eventstore")}

	opts := append([]nats.Option{
		nats.Name("nir-eventstore"),
		// Replies to the store's requests (JetStream API, direct gets, batch acks,
		// consumers) come to an inbox that only nird's user may subscribe to.
		nats.CustomInboxPrefix(InboxPrefix),
		nats.MaxReconnects(-1),
		nats.Timeout(cfg.RequestTimeout),
		// Every Read and short Replay is a direct-get batch, which opens a synchronous
		// subscription; its default queue of 65 536 messages (512 KiB, allocated and zeroed
		// per read) cost about a quarter of the CPU of a busy append path. A read's batch is
		// at most getBatchSize messages, which this queue holds twice over.
		nats.SyncQueueLen(2 * getBatchSize),
		// cfg.NATSOptions may name a handler of its own (nird's logs them).
		nats.ErrorHandler(s.asyncError(cfg.Logger != nil)),
	}, cfg.NATSOptions...)
	url := cfg.URL
	if url == "" {
		// The store's own identity: a key that exists only in this process's memory and
		// only admits an in-process connection.
		self, auth, err := InProcessUser(StorePermissions())
		if err != nil {
			return nil, err
		}
		srv, err := startServer(cfg, append([]*server.NkeyUser{self}, cfg.Users...), s.log)
		if err != nil {
			return nil, err
		}
		s.srv = srv
		opts = append([]nats.Option{nats.InProcessServer(srv), auth}, opts...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		s.shutdownServer()
		return nil, fmt.Errorf("eventstore: connect: %w", err)
	}
	s.nc = nc
	s.maxPayload = nc.MaxPayload()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.RequestTimeout))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("eventstore: jetstream: %w", err)
	}
	s.js = js
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if cfg.ReadOnly {
		var st jetstream.Stream
		st, err = s.js.Stream(ctx, StreamName)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			err = fmt.Errorf("%w: stream %s does not exist", ErrInvalid, StreamName)
		} else if err != nil {
			err = fmt.Errorf("eventstore: stream %s: %w", StreamName, err)
		} else {
			s.setStream(st.CachedInfo(), false)
		}
	} else if err = s.ensureStream(ctx, cfg); err == nil {
		err = s.ensureCheckpointStream(ctx)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	s.gc = newCommitter(s, cfg.GroupCommit)
	gc := s.gc.cfg
	s.log.Info("event store open", "stream", StreamName, "client_url", s.ClientURL(),
		"embedded", s.srv != nil, "replicas", cfg.Replicas,
		"group_max_events", gc.MaxEvents, "group_max_bytes", gc.MaxBytes, "group_max_wait", gc.MaxWait,
		"group_inflight", gc.MaxInflight, "group_plain_max", gc.PlainMax, "group_send_whole", gc.SendWhole)
	return s, nil
}

func (c *Config) validate() error {
	if c.URL == "" && c.Dir == "" {
		return fmt.Errorf("%w: config: Dir (embedded server) or URL (external server) is required", ErrInvalid)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("%w: config: Replicas must be 0 to 5", ErrInvalid)
	}
	if c.DuplicateWindow < 0 {
		return fmt.Errorf("%w: config: DuplicateWindow must not be negative", ErrInvalid)
	}
	if c.RequestTimeout < 0 {
		return fmt.Errorf("%w: config: RequestTimeout must not be negative", ErrInvalid)
	}
	if c.URL == "" && c.Listen != "" {
		if _, _, err := listenHostPort(c.Listen); err != nil {
			return err
		}
	}
	if c.URL != "" && (len(c.Users) > 0 || len(c.Accounts) > 0) {
		return fmt.Errorf("%w: config: Users and Accounts are for the embedded server; an external server has its own", ErrInvalid)
	}
	for i, u := range c.Users {
		if u == nil || !nkeys.IsValidPublicUserKey(u.Nkey) {
			return fmt.Errorf("%w: config: Users[%d]: not a public user nkey", ErrInvalid, i)
		}
	}
	return nil
}

// ensureStream creates the stream if it is missing. An existing stream is verified and
// never changed: what cannot hold the register (memory storage, another retention, a
// mirror, a sealed stream) fails Open with the setting named; any other difference from
// the register's definition (streamVerdict) is logged and kept in s.mismatches for the
// metrics, and put right only by the operator's explicit RepairStream. Several nird of
// different versions share one stream on a cluster: if each rewrote the configuration on
// start, the last one started would win, and an operator's deliberate change would be
// undone behind their back.
func (s *Store) ensureStream(ctx context.Context, cfg Config) error {
	want := streamConfig(cfg)
	info, err := s.js.Stream(ctx, StreamName)
	if errStreamNotFound(err) {
		want.Metadata = maps.Clone(cfg.Metadata)
		if want.Metadata == nil {
			want.Metadata = map[string]string{}
		}
		want.Metadata[MetaStreamID] = newStreamID()
		created, cerr := s.js.CreateStream(ctx, want)
		if cerr == nil {
			s.replicated = want.Replicas > 1
			if st := created.CachedInfo().State; st.Msgs > 0 || st.LastSeq > 0 {
				return s.adoptBlocks(ctx, created)
			}
			s.setStream(created.CachedInfo(), true)
			return nil
		}
		if !errors.Is(cerr, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("eventstore: create stream %s: %w", StreamName, cerr)
		}
		// Another nird created it meanwhile (with its own id): use theirs.
		info, err = s.createdStream(ctx, StreamName)
	}
	if err != nil {
		return fmt.Errorf("eventstore: stream %s: %w", StreamName, err)
	}
	s.setStream(info.CachedInfo(), false)
	have := info.CachedInfo().Config
	s.replicated = have.Replicas > 1
	mm, _, err := streamVerdict(have, want)
	if err != nil {
		return err
	}
	if have.Replicas > want.Replicas {
		s.log.Info("the stream has more replicas than configured; keeping them", "stream", StreamName, "stream_replicas", have.Replicas, "configured", want.Replicas)
	}
	if len(mm) > 0 {
		s.log.Error("stream settings differ from what the register depends on; run nird --repair-stream to put them back",
			"stream", StreamName, "mismatches", mismatchList(mm))
	}
	return nil
}

// adoptBlocks handles a stream that Open's create found holding messages: the server had not
// loaded it (its metadata file in the store directory damaged or missing; the server's
// warning names the file) and made it anew over the message blocks left in its directory.
// The messages are all there, but the metadata the create wrote is not the stream's: the
// caller's (the person key's fingerprint) would vouch for a key nobody checked against these
// events, and a new id would make the read models and every snapshot look built from another
// stream (rebuilt, and taken out of service). So the caller's metadata is taken off again,
// and the stream gets back its id from the last checkpoint that names one and is within the
// stream (a new id if none does). The identity is not New: nird checks its person key
// against the stream's registrations as for a stream that names no key.
func (s *Store) adoptBlocks(ctx context.Context, st jetstream.Stream) error {
	info := st.CachedInfo()
	id, source := "", "the last checkpoint"
	// The checkpoint stream first: its metadata may be damaged too, and its re-creation
	// over its own blocks brings the checkpoints back.
	if err := s.ensureCheckpointStream(ctx); err != nil {
		s.log.Warn("the checkpoint stream cannot be opened for the stream's id", "err", err)
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		s.log.Warn("the checkpoints cannot be read for the stream's id", "err", err)
	}
	for i := len(cps) - 1; i >= 0 && id == ""; i-- {
		if cp := cps[i].Checkpoint; cp != nil && cp.GetStreamId() != "" && cp.GetStreamSeq() <= info.State.LastSeq {
			id = cp.GetStreamId()
		}
	}
	if id == "" {
		id, source = newStreamID(), "none (no checkpoint names one): a new one"
	}
	cfg := info.Config
	cfg.Metadata = maps.Clone(cfg.Metadata)
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	for k := range s.cfg.Metadata {
		delete(cfg.Metadata, k)
	}
	cfg.Metadata[MetaStreamID] = id
	up, err := s.js.UpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("eventstore: stream %s was re-created over its message blocks; setting its id: %w", StreamName, err)
	}
	s.setStream(up.CachedInfo(), false)
	s.log.Error("the NATS server had not loaded the stream (its metadata file is damaged or missing: see the server's warning before this) and re-created it over its message blocks; its messages are kept, its id is taken back; back up the data directory and run nirctl verify",
		"stream", StreamName, "messages", info.State.Msgs, "last_seq", info.State.LastSeq, "id_from", source)
	return nil
}

// createdStream returns the stream name, which another process has just created (our
// create failed with the name in use). On a cluster the stream can answer "not found" for a
// moment after that, until its replicas are placed: three nird starting together on a fresh
// cluster saw it, and one stopped (TestChaos in a CI run). It asks again, every
// retryPause, until ctx ends.
func (s *Store) createdStream(ctx context.Context, name string) (jetstream.Stream, error) {
	for {
		st, err := s.js.Stream(ctx, name)
		if !errStreamNotFound(err) {
			return st, err
		}
		if err := pause(ctx, retryPause); err != nil {
			return nil, fmt.Errorf("%w (created by another process, never found)", err)
		}
	}
}

// streamConfig is the one definition of the stream. History is immutable: deletes and
// purges are denied, and there are no limits, so nothing ever ages out.
func streamConfig(cfg Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               StreamName,
		Description:        "NIR events, one subject per person key",
		Subjects:           []string{streamSubjects},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardNew,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxAge:             0,
		MaxMsgsPerSubject:  -1,
		Replicas:           cfg.Replicas,
		Duplicates:         cfg.DuplicateWindow,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		DenyDelete:         true,
		DenyPurge:          true,
	}
}

func listenHostPort(listen string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("%w: config: Listen %q: %v", ErrInvalid, listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: config: Listen %q: bad port", ErrInvalid, listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "localhost" {
		return host, port, nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", 0, fmt.Errorf("%w: config: Listen %q: the embedded server's listener is not encrypted, so it listens on loopback only (use deploy/'s NATS servers with TLS across machines)", ErrInvalid, listen)
	}
	return host, port, nil
}

// startServer runs the embedded server: JetStream in cfg.Dir, every write fsynced before
// it is acknowledged (sync_interval: always), only users with an nkey admitted, and a
// client port on loopback only if cfg.Listen asks for one.
func startServer(cfg Config, users []*server.NkeyUser, log *slog.Logger) (*server.Server, error) {
	host, port := "127.0.0.1", server.RANDOM_PORT
	if cfg.Listen != "" {
		var err error
		if host, port, err = listenHostPort(cfg.Listen); err != nil {
			return nil, err
		}
	}
	opts := &server.Options{
		ServerName: "nir-embedded",
		Host:       host,
		Port:       port,
		DontListen: cfg.Listen == "",
		// Every client authenticates with an nkey; there is no anonymous user. nird's users
		// are in the global account, where the stream has always been; the reader, with a
		// listener, in an account of its own (Accounts).
		Nkeys:      users,
		Accounts:   cfg.Accounts,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		SyncAlways: true,
		// As deploy/nats's configurations: room for the NATS ingress's 4 MiB requests (the
		// default, 1 MiB, would refuse over NATS what HTTP accepts).
		MaxPayload: EmbeddedMaxPayload,
		// Room for the largest request's events in one atomic batch (MaxBatchEvents).
		JetStreamLimits:        server.JSLimitOpts{MaxBatchSize: MaxBatchEvents},
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		NoSystemAccount:        false,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("eventstore: embedded server: %w", err)
	}
	srv.SetLoggerV2(&serverLogger{log: log.With("component", "nats-server"), violations: newViolationBound()}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		// The server restores JetStream's store before it takes connections; a damaged
		// message block has made it hang there (the adversarial suite's block damage).
		return nil, fmt.Errorf("eventstore: embedded server not ready within %s: it restores the JetStream store in %s first, and damage there can hold it up (see the nats-server log lines before this)", readyTimeout, cfg.Dir)
	}
	if cfg.Listen != "" && srv.Addr() == nil {
		// The listener failed (the port is taken, perhaps by another nird on this data
		// directory): a client would reach whichever server holds the port, so stop here.
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("eventstore: embedded server could not listen on %s:%d (is the port in use?)", host, port)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("eventstore: embedded server started without JetStream")
	}
	return srv, nil
}

// Close closes the connection and shuts the embedded server down, waiting for it to
// finish. It is idempotent and safe on a nil Store. Calls after Close return ErrClosed.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.gc != nil {
			// Queued appends fail with ErrClosed; batches in flight finish first.
			s.gc.stop()
		}
		if s.nc != nil {
			// Flush what is buffered (an abandoned batch times out on the server).
			if err := s.nc.FlushTimeout(time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				s.log.Warn("flush on close", "err", err)
			}
			s.nc.Close()
		}
		s.shutdownServer()
	})
	return s.closeErr
}

func (s *Store) shutdownServer() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// ClientURL returns where the nats CLI (or another client) can connect: the embedded
// server's client URL ("" when it has no TCP listener), or the external server's URL.
func (s *Store) ClientURL() string {
	if s.srv != nil {
		if s.cfg.Listen == "" {
			return ""
		}
		return s.srv.ClientURL()
	}
	if s.nc != nil {
		if u := s.nc.ConnectedUrlRedacted(); u != "" {
			return u
		}
	}
	return s.cfg.URL
}

// Conn returns the store's NATS connection, for tests and the benchmarks of the bare engine,
// which read or damage the stream directly; nird itself never uses it. It may publish
// events and manage the stream: never serve clients over it (their requests choose reply
// subjects), open a connection of their own with Connect or with other credentials instead.
// Callers must not close it; Close does.
func (s *Store) Conn() *nats.Conn { return s.nc }

// Connected reports whether the store's connection to its server is up (for readiness).
func (s *Store) Connected() bool { return s.nc.IsConnected() }

// Connect opens another in-process connection to the embedded server, for a part of nird
// that needs permissions of its own (the NATS ingress). opts must authenticate as one of
// Config.Users (see InProcessUser). The caller closes the connection, before Close.
func (s *Store) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if s.srv == nil {
		return nil, fmt.Errorf("%w: Connect is for the embedded server; connect to %s with your own credentials", ErrInvalid, s.cfg.URL)
	}
	nc, err := nats.Connect("", append([]nats.Option{nats.InProcessServer(s.srv), nats.MaxReconnects(-1)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("eventstore: connect in-process: %w", err)
	}
	return nc, nil
}

// withTimeout gives ctx the default request timeout if it has no deadline.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

func (s *Store) checkOpen() error {
	if s == nil || s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// serverLogger sends the embedded server's log lines to slog, with client-chosen subjects
// cut to their first token (see redactServerLine), and permission violations bounded by
// violations: a client can cause one with every message it sends.
type serverLogger struct {
	log        *slog.Logger
	violations *ratelog.Limiter // newViolationBound
}

// violationsPerMinute bounds the permission violations logged: that many at once, then as
// many a minute, the first line after a gap saying how many were left out
// (violations_not_logged).
const violationsPerMinute = 20

func newViolationBound() *ratelog.Limiter {
	return &ratelog.Limiter{Burst: violationsPerMinute, Every: time.Minute / violationsPerMinute, Key: "violations_not_logged"}
}

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Info(redactServerLine(format, v)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(redactServerLine(format, v)) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Error(redactServerLine(format, v)) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log.Debug(redactServerLine(format, v)) }
func (l *serverLogger) Tracef(format string, v ...any)  { l.log.Debug(redactServerLine(format, v)) }

func (l *serverLogger) Errorf(format string, v ...any) {
	line := redactServerLine(format, v)
	if strings.Contains(line, "Violation") {
		l.violations.Log(context.Background(), l.log, slog.LevelError, line)
		return
	}
	l.log.Error(line)
}

// servesReaders reports whether sub is one of ServeReaderConsumersOn's subscriptions.
func servesReaders(sub *nats.Subscription) bool {
	return sub != nil && (strings.HasPrefix(sub.Subject, ReaderConsumerCreate+".") || strings.HasPrefix(sub.Subject, ReaderDirectGet+"."))
}

var (
	// quotedSubjectRE is a subject the server quotes in a log line, as in its permission
	// violations: Subject "x", Reply "x", Queue: "x", Publish to "x", Subscription to "x".
	quotedSubjectRE = regexp.MustCompile(`(Subject|Reply|Queue:|Publish to|Subscription to) "((?:[^"\\]|\\.)*)"`)
)

// redactServerLine formats one line of the embedded server's log. A client chooses the
// subjects it publishes to or subscribes to, and the server logs them when it refuses
// them: a TCP client could write a national id into nird's log that way. Quoted subjects
// keep their first token only, and any national-id-shaped number is masked.
func redactServerLine(format string, v []any) string {
	line := fmt.Sprintf(format, v...)
	line = quotedSubjectRE.ReplaceAllStringFunc(line, func(m string) string {
		sm := quotedSubjectRE.FindStringSubmatch(m)
		first, _, more := strings.Cut(sm[2], ".")
		if more {
			first += ".…"
		}
		return sm[1] + ` "` + first + `"`
	})
	return rules.RedactIDs(line)
}

// consumerDeleteSubject starts the JetStream API subject of a consumer's deletion.
const consumerDeleteSubject = "$JS.API.CONSUMER.DELETE."

// asyncError is the store's connection's handler of asynchronous errors (nats.ErrorHandler),
// unless Config.NATSOptions names another. The server's refusal of a consumer's deletion is
// logged at debug level only: the store deletes no consumer itself, and nats.go, when it
// replaces an ordered consumer (after missed heartbeats, a reconnect, a consumer lost), asks
// to delete the one it replaces, which a read-only user (the reader context) may not; that
// consumer is ephemeral and goes by its inactive threshold. nirctl verify through the reader
// context printed the refusal before "ok" (nats.go's default handler writes every async
// error to stderr: TestStore_ReaderConsumerDeleteQuiet). A message whose header block does
// not decode is logged at most once a minute: the readers' requests nird serves (consumer
// creations, direct gets) come to this connection, and a reader's flood of them made a line
// each (internal/adversarial's TestNATS_RequestsFloodTheLog). So is a slow consumer on the
// subscriptions that serve the readers' requests: nats.go reports one each time such a
// subscription starts dropping again, which in a reader's flood of direct gets was after
// nearly every one nird served. Any other error is logged as a warning, or, with no Logger
// (nirctl), written to stderr as nats.go would; both redacted.
func (s *Store) asyncError(logged bool) nats.ErrHandler {
	badHeaders := ratelog.Minute{Msg: "NATS event store connection received messages whose headers do not decode (a reader's requests nird serves, taken as without headers)"}
	dropped := ratelog.Minute{Msg: "NATS event store connection dropped readers' requests unanswered: more of them waiting than nird holds (a reader sending faster than nird serves them)"}
	return func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), consumerDeleteSubject) {
			s.log.Debug("the server refused the deletion of a replaced ordered consumer (a read-only user's); it goes by its inactive threshold", "err", redactServerLine("%s", []any{err.Error()}))
			return
		}
		if logged && errors.Is(err, nats.ErrBadHeaderMsg) {
			badHeaders.Note(s.log)
			return
		}
		if logged && errors.Is(err, nats.ErrSlowConsumer) && servesReaders(sub) {
			dropped.Note(s.log, "subscription", sub.Subject)
			return
		}
		if logged {
			s.log.Warn("NATS connection error", "err", redactServerLine("%s", []any{err.Error()}))
			return
		}
		// Redacted as the logged line is: a refused person subject printed its person key
		// (TestStore_StderrErrorRedacted).
		fmt.Fprintln(os.Stderr, redactServerLine("%s", []any{err.Error()}))
	}
}
