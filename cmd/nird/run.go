package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/edge"
	"github.com/introreg/nir/internal/feed"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/web"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/sealing"
)

// run starts everything, serves until ctx is cancelled, then shuts down in order: stop
// taking requests, let in-flight ones finish, then close the event store (which drains the
// connection and stops the embedded server).
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	pre, err := preflight(cfg, log) // every check --check-config runs
	if err != nil {
		return err
	}
	missing := !fileExists(cfg.Data)
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if missing {
		// Made now, or by another user since preflight looked: checked as one found.
		if err := checkDataDir(cfg.Data, true, log); err != nil {
			return err
		}
	}
	// Also with an external NATS server: the read-model files are one nird's (a second
	// nird on them stopped on a timeout that named no cause, after removing the first's
	// temporary files).
	unlock, err := lockData(cfg.Data)
	if err != nil {
		return err
	}
	defer unlock()
	keyFile := pre.keyFile
	removeKeyLeftovers(cfg.Data, log, keyFile, masterKeyPath(cfg), checkpointKeyPath(cfg))
	keys, freshKey, err := loadPersonKey(keyFile, log)
	if err != nil {
		return err
	}
	authn := pre.authn
	// Bind the API and admin addresses, and see that the embedded server's is free, before
	// anything starts: a port in use fails the start at once, naming its flag.
	apiLn, err := listenTCP("--http", cfg.HTTP)
	if err != nil {
		return err
	}
	defer apiLn.Close()
	var adminLn net.Listener
	if cfg.Admin != "" {
		if adminLn, err = listenTCP("--admin", cfg.Admin); err != nil {
			return err
		}
		defer adminLn.Close()
	}
	if cfg.NATSURL == "" {
		if err := probeFree("--nats-listen", cfg.NATSListen); err != nil {
			return err
		}
	}

	storeCfg := eventstore.Config{
		Dir:         filepath.Join(cfg.Data, "jetstream"),
		URL:         cfg.NATSURL,
		Listen:      cfg.NATSListen,
		Replicas:    cfg.Replicas,
		Logger:      log,
		GroupCommit: cfg.Group,

		DuplicateWindow: cfg.DuplicateWindow,
		Metadata:        map[string]string{metaPersonKey: keys.Fingerprint()},
	}
	storeCfg.NATSOptions, err = natsOptions(cfg)
	if err != nil {
		return err
	}
	access, err := prepareNATS(cfg, log)
	if err != nil {
		return err
	}
	storeCfg.Users, storeCfg.Accounts = access.users, access.accounts
	var store *eventstore.Store
	err = startRetry(ctx, log, "open the event store", cfg.NATSURL != "", func() error {
		var err error
		store, err = eventstore.Open(ctx, storeCfg)
		return err
	})
	if err != nil {
		if freshKey {
			os.Remove(keyFile)
		}
		return fmt.Errorf("event store: %w", err)
	}
	defer store.Close()
	// A restore that did not finish left part of a backup: never served as the register.
	if err := store.UnfinishedRestore(ctx); err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	// Before the readers' contexts are written: their consumers are created here.
	stopReaders, err := store.ServeReaderConsumers()
	if err != nil {
		return err
	}
	defer stopReaders()
	if err := access.started(store); err != nil {
		return err
	}
	ingressConn, laneConns, err := access.ingressConns(cfg, store)
	if err != nil {
		return err
	}
	defer ingressConn.Close()
	defer closeConns(laneConns)
	// The person key is checked first (a second nird of a cluster with its own data directory
	// is told about that key); the data keys are opened only if that check must read
	// registrations, whose ids are sealed.
	var keyStore *eventstore.KeyStore
	var sealer sealing.Events
	openKeys := func() error {
		if keyStore != nil {
			return nil
		}
		var err error
		keyStore, sealer, err = openSealing(ctx, cfg, store, log)
		return err
	}
	defer func() {
		if keyStore != nil {
			keyStore.Close()
		}
	}()
	open := func(ev *nirv1.Event) error {
		if err := openKeys(); err != nil {
			return err
		}
		return sealer.Opener()(ev)
	}
	if err := checkPersonKey(ctx, store, keys, keyFile, freshKey, open, log); err != nil {
		return err
	}
	if err := openKeys(); err != nil {
		return err
	}

	now := cfg.Cluster.clock()
	if cfg.Cluster.ClockOffset != 0 {
		log.Warn("wall clock shifted for a fault-injection test; never in production", "env", envClockOffset, "offset", cfg.Cluster.ClockOffset)
	}
	policy := api.Policy()
	guard := auth.NewGuard(authn, policy, log)
	if cfg.NATSBoundTokens {
		guard.RequireBoundOverNATS()
	}
	// The edge checks the token and the limits before a request's body is read.
	front, err := edge.New(guard, cfg.Edge.edgeConfig(log))
	if err != nil {
		return err
	}
	m := newMetrics()

	cpKey, err := loadCheckpointKey(checkpointKeyPath(cfg), true)
	if err != nil {
		return err
	}
	events, err := feed.New(store)
	if err != nil {
		return fmt.Errorf("event feed: %w", err)
	}
	defer events.Close()
	if err := events.SetClockSkew(cfg.AsOfClockSkew); err != nil {
		return fmt.Errorf("--as-of-clock-skew: %w", err)
	}
	// The checkpoints this nird signs vouch for the live file's events in a rebuild.
	events.TrustCheckpoints(cpKey.Public().(ed25519.PublicKey))
	proj, err := projections.New(events, projections.Options{Dir: filepath.Join(cfg.Data, "projections"), Logger: log, VerifyAtStart: true, Open: sealer.Opener()})
	if err != nil {
		return fmt.Errorf("read models: %w", err)
	}
	defer proj.Close()
	if err := proj.OpenSnapshots(); err != nil {
		return fmt.Errorf("read-model snapshots: %w", err)
	}
	// Read models of another stream (re-created, rolled back) are not served, but rebuilt.
	if err := startRetry(ctx, log, "check the read models against the stream", cfg.NATSURL != "", func() error { return proj.Check(ctx) }); err != nil {
		return fmt.Errorf("read models: %w", err)
	}
	// The regelmotor runs on one nird at a time: the holder of this lease.
	lease := store.NewLease(eventstore.LeaseOptions{Name: "regelmotor", Holder: leaseHolder(), TTL: cfg.Cluster.LeaseTTL, Logger: log.With("component", "lease")})
	// So do the checkpoints, under a lease of their own.
	cpLease := store.NewLease(eventstore.LeaseOptions{Name: "checkpoints", Holder: leaseHolder(), TTL: cfg.Cluster.LeaseTTL, Logger: log.With("component", "lease")})
	log.Info("checkpoints are signed", "public_key", hex.EncodeToString(cpKey.Public().(ed25519.PublicKey)), "every_events", cfg.Checkpoint.Every, "interval", cfg.Checkpoint.Interval)
	var cpSeq, cpTime atomic.Uint64
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "nir_checkpoint_stream_seq", Help: "The stream sequence the last checkpoint this nird made covers (0: none yet)."},
			func() float64 { return float64(cpSeq.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "nir_checkpoint_timestamp_seconds", Help: "When this nird made its last checkpoint (Unix seconds; 0: none yet)."},
			func() float64 { return float64(cpTime.Load()) }),
	)
	watch := &streamWatch{store: store, log: log.With("component", "stream-watch")}
	m.reg.MustRegister(newProjectionCollector(proj), newStoreCollector(store), newClusterCollector(watch, lease, cfg.Data))

	// The append path finds an event id stored for another person in the read models'
	// event-id index once the stream's dedupe window has forgotten it.
	historyCache := cfg.HistoryCache
	if historyCache == 0 {
		historyCache = -1 // ingest.Config: negative = none
	}
	// The key store's watch tells the append path's history cache of every data key an
	// erasure destroys, on any nird, so that no nird keeps an erased person's ids in clear
	// (ingest.New subscribes through the Sealer: sealing.Events.OnDestroyed).
	svc := ingest.New(ingest.Config{Store: store, Keys: keys, Now: now, IDs: proj, Access: proj, DedupeWindow: cfg.DuplicateWindow, HistoryCache: historyCache, HistoryCacheEvents: cfg.HistoryEvents, MaxPersonEvents: personEvents(cfg.PersonEvents), Logger: log.With("component", "ingest"), Observer: m, Sealer: sealing.Events{Keys: keyStore, Strict: true}})
	// History and AuditHistory each decode a whole person (up to --max-person-events): they
	// take turns, a few at a time over all callers.
	reads := api.NewPersonReads(0, 0)
	reg := api.NewRegistration(svc, log, reads)

	// One read-your-writes gate for the query service and the CSV export: a principal's
	// waiting reads are counted together.
	gate := api.NewSequenceGate(proj, cfg.Cluster.MinSequenceWait)
	query := api.NewQuery(api.QueryConfig{Source: proj, Keys: keys, Now: now, Logger: log, StatsMinCount: int64(cfg.StatsMinCount), PersonReads: reads,
		MaxExportsPerPrincipal: cfg.Edge.MaxExportsPerPrincipal, ExportDiskBytes: int64(cfg.Edge.ExportDisk), Gate: gate})
	m.reg.MustRegister(newEdgeCollector(front, query), newGuardCollector(guard))
	admin := api.NewAdmin(proj, log)
	admin.SetRetentionYears(cfg.RetentionYears)

	// api.Decoding bounds what one authenticated request makes nird read, inflate and
	// decode: the NATS ingress's bound, larger is ResourceExhausted; more messages than any
	// valid request holds, InvalidArgument before it is decoded. Every service route is
	// behind the edge (front.Wrap), which refuses a request before its body is read.
	minSeq := gate.Interceptor()
	interceptors := connect.WithHandlerOptions(connect.WithInterceptors(m.interceptor(), guard, minSeq), api.Decoding(natsingress.MaxRequestBytes),
		api.Recover(log, m.panics.WithLabelValues("http").Inc))
	mux := http.NewServeMux()
	handle := func(path string, h http.Handler) { mux.Handle(path, front.Wrap(h)) }
	service := func(path string, h http.Handler) { handle(path, postOnly(h)) }
	service(nirv1connect.NewRegistrationServiceHandler(reg, interceptors))
	service(nirv1connect.NewQueryServiceHandler(query, interceptors))
	path, h := nirv1connect.NewAdminServiceHandler(admin, interceptors)
	service(path, longRunning(h))
	handle(api.ExportPersonsPath, query.ExportHandler())
	services := []string{nirv1connect.RegistrationServiceName, nirv1connect.QueryServiceName, nirv1connect.AdminServiceName}
	// Anyone may call it, without a rate limit: its gzip stops inflating at its bound too.
	handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(services...), api.Decoding(healthMaxBytes)))
	reflector := grpcreflect.NewStaticReflector(services...)
	handle(grpcreflect.NewHandlerV1(reflector, interceptors))
	handle(grpcreflect.NewHandlerV1Alpha(reflector, interceptors))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	// The web console: pages for people on the same address, calling the services above
	// in process through the same policy, behind the edge's limits (its session is its own
	// authentication).
	_, dev := authn.Dev()
	console, err := web.New(web.Config{Query: query, Registration: reg, Admin: admin, Policy: policy,
		Providers: []web.Provider{web.TokenLogin(authn)}, Interceptors: []connect.UnaryInterceptorFunc{minSeq}, Limit: front.Limit,
		DevHint: dev, SecureCookies: cfg.SecureCookies, MaxSessionsPerPrincipal: cfg.ConsoleSessionsPerPrincipal, Logger: log})
	if err != nil {
		return err
	}
	if cfg.SecureCookies {
		log.Info("web console: cookies Secure and Strict-Transport-Security sent; serve it over HTTPS (a TLS proxy), or give --secure-cookies=false")
	} else {
		log.Info("web console: cookies not Secure (--secure-cookies=false, or development mode)")
	}
	// The console's forms are small; without a bound, net/http parses up to 10 MB of one,
	// before its log-in or CSRF token is looked at.
	mux.Handle("/", http.MaxBytesHandler(console.Handler(), consoleMaxBytes))

	// The NATS ingress shares the API's limits: a case system's requests count against its
	// rate and share of requests in flight whichever way they come, and their bodies against
	// the one --max-body-memory.
	ingress := natsingress.New(ingressConn, guard, reg, log)
	ingress.Admit = front.Admit
	ingress.Body = front.DrawBody
	for _, l := range access.lanes {
		ingress.AddCaseSystem(l.name, laneConns[l.name])
	}
	ingress.Panicked = m.panics.WithLabelValues("nats").Inc
	actors := []actor{
		{"http", serveHTTP("http", apiLn, mux, cfg.Edge, cfg.Edge.MaxConns, m.connsEvicted.WithLabelValues("http").Inc, cfg.Shutdown, log)},
		{"nats-ingress", ingress.Run},
		{"projections", proj.Run},
		{"web", console.Run},
		{"token-reload", func(ctx context.Context) error {
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			return authn.RunReload(ctx, hup, log.With("component", "auth"))
		}},
		{"regelmotor", func(ctx context.Context) error {
			return runRegelmotor(ctx, lease, proj, log.With("component", "regelmotor"), func(ctx context.Context) error {
				return proj.RunRegelmotor(ctx, computedAppender{svc: svc, log: log.With("component", "regelmotor")},
					projections.RegelmotorOptions{Interval: cfg.Cluster.RegelmotorInterval, Clock: now})
			})
		}},
		{"stream-watch", watch.Run},
		{"event-store", store.WatchWrites},
		{"checkpoints", func(ctx context.Context) error {
			every := uint64(cfg.Checkpoint.Every)
			if every == 0 {
				every = math.MaxUint64 // by time only
			}
			return cpLease.Run(ctx, func(ctx context.Context) error {
				return store.RunCheckpoints(ctx, eventstore.CheckpointOptions{Every: every, Interval: cfg.Checkpoint.Interval, Key: cpKey, Logger: log,
					Made: func(cp *nirv1.Checkpoint) {
						cpSeq.Store(cp.GetStreamSeq())
						cpTime.Store(uint64(cp.GetCreatedAt().GetSeconds()))
					}})
			})
		}},
	}
	if cfg.Admin != "" {
		ready := &readiness{
			connected:  func() bool { return store.Connected() && ingressConn.IsConnected() },
			lastSeq:    store.LastSeq,
			checkpoint: func() uint64 { return proj.Stats().Checkpoint },
			unserved:   func() bool { return proj.Stats().Unserved },
		}
		// pprof only where no other machine can reach it: a profile shows what nird holds.
		host, _, _ := net.SplitHostPort(cfg.Admin)
		actors = append(actors, actor{"admin", serveHTTP("admin", adminLn, adminHandler(m, ready.check, isLoopback(host)), cfg.Edge, adminMaxConns, m.connsEvicted.WithLabelValues("admin").Inc, cfg.Shutdown, log)})
	}
	if cfg.Demo > 0 {
		if err := loadDemo(ctx, store, svc, cfg.Demo, log.With("component", "demo")); err != nil {
			return err
		}
	}
	log.Info("starting", "nats", store.ClientURL(), "data", cfg.Data, "auth", authMode(authn))
	err = runAll(ctx, actors, log)
	if cerr := proj.Close(); cerr != nil && err == nil {
		err = cerr
	}
	_ = events.Close()
	if keyStore != nil {
		// Before the store: it deletes the data keys made ahead and never used.
		_ = keyStore.Close()
	}
	if cerr := store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	log.Info("stopped")
	return err
}

// actor is one long-running part of nird: it runs until ctx is cancelled.
type actor struct {
	name string
	run  func(ctx context.Context) error
}

// runAll runs the actors until ctx is cancelled or one of them returns, then cancels the
// rest and waits for every one (oklog/run style).
func runAll(ctx context.Context, actors []actor, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(actors))
	var wg sync.WaitGroup
	for _, a := range actors {
		wg.Go(func() {
			err := a.run(ctx)
			if err != nil && ctx.Err() == nil {
				err = fmt.Errorf("%s: %w", a.name, err)
			} else if ctx.Err() == nil {
				err = fmt.Errorf("%s stopped", a.name)
			} else {
				err = nil
			}
			if err != nil {
				// Said at once: the shutdown it starts may take a while.
				log.Error("nird stops: a part of it ended", "err", err)
			}
			errc <- err
			cancel()
		})
	}
	wg.Wait()
	close(errc)
	var first error
	for err := range errc {
		if err != nil && first == nil {
			first = err
		}
	}
	if first == nil {
		log.Info("shut down cleanly")
	}
	return first
}

// authenticator loads the token file, or in development mode (no token file) makes a caller
// the role its token names, any other the system principal, and says so loudly.
func authenticator(cfg Config, log *slog.Logger) (*auth.Authenticator, error) {
	if cfg.TokenFile != "" {
		a, err := auth.LoadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("--tokens: %w", err)
		}
		return a, nil
	}
	log.Warn("no --tokens file: development mode, a caller acts as the role its token names (kommune:NNNN, analyst, operator, system); any other token, or none, as the system principal \"dev\"")
	return auth.NewDev(auth.Principal{Name: "dev", Role: auth.RoleSystem})
}

func authMode(a *auth.Authenticator) string {
	if _, dev := a.Dev(); dev {
		return "development"
	}
	return "tokens"
}

// natsOptions builds the client options for an external NATS server.
func natsOptions(cfg Config) ([]nats.Option, error) {
	opts, err := clientOptions("--nats", cfg.NATSURL, cfg.NATSCreds, cfg.NATSUser, cfg.NATSPassword, cfg.NATSNKey, cfg.NATSCA)
	if err != nil {
		return nil, err
	}
	return opts, nil
}

// personEvents is --max-person-events for ingest.Config: 0 there is the default, and no
// bound is negative.
func personEvents(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
