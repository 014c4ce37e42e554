// Command nird is the register's server: it runs (or connects to) NATS JetStream, keeps the
// event stream, and serves the API with Connect (gRPC, gRPC-Web and HTTP+JSON).
//
//	go run ./cmd/nird                      # embedded NATS, data in ./data, API on 127.0.0.1:8080
//	go run ./cmd/nird --nats-url nats://…  # an external NATS JetStream cluster instead
//
// Wiring:
//
//	HTTP (Connect) ──auth──▶ api.Registration ──▶ ingest.Service ──▶ eventstore.Store ──▶ JetStream
//	                                             (read, fold, check)     (atomic append)   NIR_EVENTS
//
// Every flag has a NIR_* environment variable (--nats-url is NIR_NATS_URL); a flag given on
// the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/buildinfo"
	"github.com/introreg/nir/internal/edge"
	"github.com/introreg/nir/internal/feed"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/natsauth"
	"github.com/introreg/nir/internal/web"
	"github.com/introreg/nir/rules"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "nird:", err)
		os.Exit(2)
	}
	if cfg.ShowVersion {
		fmt.Println(buildinfo.Text("nird"))
		return
	}
	log := newLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if cfg.CheckOnly {
		// The checks of the real start, without opening or binding anything.
		if _, err := preflight(cfg, log); err != nil {
			fmt.Fprintln(os.Stderr, "nird:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "nird: configuration ok")
		return
	}
	if cfg.RepairStream {
		if err := repairStream(ctx, cfg, os.Stdout, log); err != nil {
			log.Error("stream repair failed", "err", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, cfg, log); err != nil {
		log.Error("nird stopped", "err", err)
		os.Exit(1)
	}
}

// Config is nird's configuration, from flags and NIR_* environment variables.
type Config struct {
	Data           string                 // data directory (JetStream store, person key secret)
	HTTP           string                 // API listen address
	Admin          string                 // admin listen address: metrics, health, pprof ("" = off)
	NATSListen     string                 // embedded NATS TCP listen address; "" = in-process only
	NATSURL        string                 // external NATS URL; empty = embedded server
	NATSCreds      string                 // creds file for the external server
	NATSUser       string                 // user for the external server
	NATSPassword   string                 // password for the external server
	NATSNKey       string                 // nkey seed file for the external server
	NATSCA         string                 // CA file for TLS to the external server
	Replicas       int                    // stream replicas
	PersonKeyFile  string                 // person key secret; default <data>/personkey.secret
	MasterKeyFile  string                 // master key of the data keys; default <data>/master.key (or NIR_MASTER_KEY)
	TokenFile      string                 // bearer tokens (hashed); empty = development mode
	Shutdown       time.Duration          // grace period for in-flight requests
	Demo           int                    // persons of the demo population to load into an empty register
	StatsMinCount  int                    // statistics disclosure control: counts of 1 to this-1 are suppressed (Product decisions 14)
	RetentionYears int                    // retention rule: persons due for erasure this many years after their last activity; 0 = none (Product decisions 15)
	HistoryCache   int                    // persons whose histories and folded states the append path keeps; 0 = none
	HistoryEvents  int                    // events those histories hold together at most
	PersonEvents   int                    // the most events one person may have (0: no bound)
	Group          eventstore.GroupCommit // group commit bounds; zero fields = the store's defaults
	Cluster        ClusterConfig          // several nird on one stream (cluster.go)
	Checkpoint     CheckpointConfig       // the stream's signed checkpoints (checkpoints.go)
	// DuplicateWindow is the stream's dedupe window; 0 = eventstore.DefaultDuplicateWindow.
	DuplicateWindow time.Duration
	// AsOfClockSkew is how long after an event's recorded_at the stream may have received it
	// that an as-of cut-off allows for (feed.DefaultClockSkew).
	AsOfClockSkew time.Duration
	Edge          EdgeConfig // the API's timeouts and limits (http.go)
	LogLevel      string
	LogFormat     string
	CheckOnly     bool
	ShowVersion   bool
	RepairStream  bool
	// SecureCookies marks the web console's cookies Secure and sends Strict-Transport-Security
	// (the console is served over HTTPS by a TLS proxy). --secure-cookies; by default on
	// with a token file and off in development mode (no --tokens, loopback only).
	SecureCookies bool
	// ConsoleSessionsPerPrincipal bounds the web console's sessions of one principal (token):
	// its log-in beyond them ends its least recently used session.
	ConsoleSessionsPerPrincipal int

	// NATSCaseSystems are the case systems that get a NATS user and account on the embedded
	// server's listener, or that the ingress serves on an external server; either way each
	// is served on a connection of its own. NATSIngress* are the NATS ingress's own
	// credentials on an external server.
	NATSCaseSystems []string
	// NATSBoundTokens accepts over NATS only tokens bound to the sending case system's NATS
	// user (the token file's nats_user; auth.Guard.RequireBoundOverNATS). --nats-bound-tokens.
	NATSBoundTokens     bool
	NATSIngressCreds    string
	NATSIngressUser     string
	NATSIngressPassword string
	NATSIngressNKey     string
}

// Validate reports the first bad field by its flag name.
func (c Config) Validate() error {
	switch {
	case c.Data == "":
		return errors.New("--data: a data directory is required")
	case c.NATSBoundTokens && c.TokenFile == "":
		return errors.New("--nats-bound-tokens: only with --tokens (in development mode no token is bound to a NATS user)")
	case c.HTTP == "":
		return errors.New("--http: a listen address is required")
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("--replicas: %d is not between 1 and 5", c.Replicas)
	case c.Replicas > 1 && c.NATSURL == "":
		// Found on 2026-12-07 by a walk through the README: --check-config passed it, and
		// the start failed in the server ("replicas > 1 not supported in non-clustered mode").
		return fmt.Errorf("--replicas: %d needs a NATS cluster (--nats-url); the embedded server keeps one copy", c.Replicas)
	case c.Admin != "" && sameListen(c.Admin, c.HTTP):
		return fmt.Errorf("--admin: %q takes --http's address (%q) too; give each its own", c.Admin, c.HTTP)
	case c.ConsoleSessionsPerPrincipal < 1 || c.ConsoleSessionsPerPrincipal > web.DefaultMaxSessions/100:
		return fmt.Errorf("--console-sessions-per-principal: %d is not between 1 and %d", c.ConsoleSessionsPerPrincipal, web.DefaultMaxSessions/100)
	case c.StatsMinCount < 1 || c.StatsMinCount > 100:
		return fmt.Errorf("--stats-min-count: %d is not between 1 (nothing suppressed) and 100", c.StatsMinCount)
	case c.HistoryCache < 0 || c.HistoryCache > 10_000_000:
		return fmt.Errorf("--history-cache: %d is not between 0 (none) and 10000000", c.HistoryCache)
	case c.HistoryEvents < 1 || c.HistoryEvents > 100_000_000:
		return fmt.Errorf("--history-cache-events: %d is not between 1 and 100000000", c.HistoryEvents)
	case c.PersonEvents < 0:
		return fmt.Errorf("--max-person-events: %d is negative (0 = no bound)", c.PersonEvents)
	case c.RetentionYears < 0 || c.RetentionYears > 100:
		return fmt.Errorf("--retention-years: %d is not between 0 (no rule) and 100", c.RetentionYears)
	case c.Demo < 0 || c.Demo > 1_000_000:
		return fmt.Errorf("--demo: %d is not between 0 and 1000000", c.Demo)
	case c.Shutdown <= 0:
		return errors.New("--shutdown-grace: must be positive")
	case c.Group.MaxEvents < 0 || c.Group.MaxEvents > eventstore.MaxBatchEvents:
		return fmt.Errorf("--group-max-events: %d is not between 1 and %d (0 = default)", c.Group.MaxEvents, eventstore.MaxBatchEvents)
	case c.Group.MaxBytes < 0:
		return fmt.Errorf("--group-max-bytes: %d is negative (0 = default)", c.Group.MaxBytes)
	case c.Group.MaxWait < 0 || c.Group.MaxWait > time.Second:
		return fmt.Errorf("--group-max-wait: %v is not between 0 and 1s (0 = default)", c.Group.MaxWait)
	case c.DuplicateWindow != 0 && (c.DuplicateWindow < 100*time.Millisecond || c.DuplicateWindow > time.Hour):
		return fmt.Errorf("--duplicate-window: %v is not between 100ms and 1h (0 = default)", c.DuplicateWindow)
	case c.AsOfClockSkew < 0 || c.AsOfClockSkew > feed.MaxClockSkew:
		return fmt.Errorf("--as-of-clock-skew: %v is not between 0 and %v", c.AsOfClockSkew, feed.MaxClockSkew)
	case c.Group.MaxInflight < 0 || c.Group.MaxInflight > 16:
		return fmt.Errorf("--group-inflight: %d is not between 1 and 16 (0 = default)", c.Group.MaxInflight)
	case c.Cluster.LeaseTTL < time.Second || c.Cluster.LeaseTTL > 10*time.Minute:
		return fmt.Errorf("--lease-ttl: %v is not between 1s and 10m", c.Cluster.LeaseTTL)
	case c.Cluster.RegelmotorInterval < 100*time.Millisecond:
		return fmt.Errorf("--regelmotor-interval: %v is below 100ms", c.Cluster.RegelmotorInterval)
	case c.Checkpoint.Every < 0:
		return fmt.Errorf("--checkpoint-every: %d is negative (0: by time only)", c.Checkpoint.Every)
	case c.Checkpoint.Interval < time.Second:
		return fmt.Errorf("--checkpoint-interval: %v is below 1s", c.Checkpoint.Interval)
	case c.Cluster.MinSequenceWait <= 0 || c.Cluster.MinSequenceWait > time.Minute:
		return fmt.Errorf("--min-sequence-wait: %v is not between 0 and 1m", c.Cluster.MinSequenceWait)
	case c.NATSURL == "" && (c.NATSCreds != "" || c.NATSUser != "" || c.NATSNKey != "" || c.NATSCA != ""):
		return errors.New("--nats-creds/--nats-user/--nats-nkey/--nats-ca: only with --nats-url")
	case c.NATSURL == "" && (c.NATSIngressCreds != "" || c.NATSIngressUser != "" || c.NATSIngressNKey != ""):
		return errors.New("--nats-ingress-creds/--nats-ingress-user/--nats-ingress-nkey: only with --nats-url (on the embedded server nird makes the ingress's identity itself)")
	case c.NATSURL != "" && (c.NATSCreds != "" || c.NATSUser != "" || c.NATSNKey != "") &&
		c.NATSIngressCreds == "" && c.NATSIngressUser == "" && c.NATSIngressNKey == "":
		return errors.New("--nats-ingress-user (or --nats-ingress-nkey, --nats-ingress-creds): the NATS ingress needs a NATS user of its own, which may not publish events (deploy/nats/accounts.conf, user ingress); nird's own user may, and a request chooses where its reply goes")
	case c.NATSURL != "" && c.NATSIngressUser != "" && c.NATSIngressUser == c.NATSUser:
		return errors.New("--nats-ingress-user: must not be nird's own --nats-user")
	case len(c.NATSCaseSystems) > 0 && c.NATSURL == "" && c.NATSListen == "":
		return errors.New("--nats-case-systems: only with --nats-listen (the embedded server's listener) or --nats-url (an external server, whose configuration holds the case systems' users and accounts)")
	}
	for _, n := range c.NATSCaseSystems {
		if err := natsauth.CheckCaseSystem(n); err != nil {
			return fmt.Errorf("--nats-case-systems: %w", err)
		}
	}
	if err := checkListen("--http", c.HTTP, c.TokenFile); err != nil {
		return err
	}
	if c.Admin != "" {
		if err := checkListen("--admin", c.Admin, c.TokenFile); err != nil {
			return err
		}
	}
	if err := c.Edge.validate(); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level: %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format: %q is not text or json", c.LogFormat)
	}
	return nil
}

// parseConfig reads flags, with NIR_* environment variables as defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("nird", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	str := func(p *string, name, def, usage string) {
		env := envName(name)
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, usage+" (env "+env+")")
	}
	str(&c.Data, "data", "data", "data directory")
	str(&c.HTTP, "http", "127.0.0.1:8080", "API listen address (Connect: gRPC, gRPC-Web, HTTP+JSON)")
	str(&c.Admin, "admin", "127.0.0.1:8081", "admin listen address for /metrics, /healthz, /readyz, /debug/pprof; empty disables")
	str(&c.NATSListen, "nats-listen", "", "embedded NATS TCP listen address on loopback (e.g. 127.0.0.1:4222) for the nats CLI and case systems, with the nkey users nird keeps in <data>/nats; empty = none, nird talks to its server in-process")
	str(&c.NATSURL, "nats-url", "", "external NATS server URL(s), comma-separated; empty runs an embedded server")
	str(&c.NATSCreds, "nats-creds", "", "credentials file for the external NATS server")
	str(&c.NATSUser, "nats-user", "", "user name for the external NATS server")
	str(&c.NATSPassword, "nats-password", "", "password for the external NATS server")
	str(&c.NATSNKey, "nats-nkey", "", "nkey seed file for the external NATS server")
	str(&c.NATSCA, "nats-ca", "", "CA certificate file for TLS to the external NATS server")
	var caseSystems string
	str(&caseSystems, "nats-case-systems", "", "comma-separated names of case systems, each served on a NATS connection of its own; on the embedded listener each gets a NATS user in an account of its own (requests on nir.cmd.append.<name>, replies on _INBOX.<name>); with --nats-url, name every case system of the server's configuration")
	str(&c.NATSIngressCreds, "nats-ingress-creds", "", "credentials file of the NATS ingress's own user on the external server")
	str(&c.NATSIngressUser, "nats-ingress-user", "", "the NATS ingress's own user on the external server (deploy/nats/accounts.conf: ingress)")
	str(&c.NATSIngressPassword, "nats-ingress-password", "", "password of the NATS ingress's user")
	str(&c.NATSIngressNKey, "nats-ingress-nkey", "", "nkey seed file of the NATS ingress's user on the external server")
	str(&c.PersonKeyFile, "person-key-file", "", "person key secret (hex); default <data>/personkey.secret, created on first start")
	str(&c.MasterKeyFile, "master-key-file", "", "master key that wraps the persons' data keys (64 hex digits, mode 0600); default <data>/master.key, created on first start; the environment variable NIR_MASTER_KEY, when set, is used instead. Without it nothing identifying can be read")
	str(&c.TokenFile, "tokens", "", "token file (hashed bearer tokens → principals); empty runs in development mode, where a caller acts as the role its token names (kommune:NNNN, analyst, operator, system) and any other token, or none, as a system principal")
	str(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "text", "text or json")
	var envErr error
	num := func(p *int, name string, def int, usage string) {
		env := envName(name)
		if v := getenv(env); v != "" {
			if _, err := fmt.Sscan(v, &def); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %q is not a number", env, v)
			}
		}
		fs.IntVar(p, name, def, usage+" (env "+env+")")
	}
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		env := envName(name)
		if v := getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %q is not a duration (e.g. 5ms)", env, v)
			}
			def = d
		}
		fs.DurationVar(p, name, def, usage+" (env "+env+")")
	}
	num(&c.Replicas, "replicas", 1, "stream replicas: 1 embedded, 3 on a cluster")
	num(&c.ConsoleSessionsPerPrincipal, "console-sessions-per-principal", web.DefaultMaxSessionsPerPrincipal, fmt.Sprintf("web console: most sessions (browsers logged in) one principal (token) may have; its log-in beyond them ends its least recently used session, so that no principal can fill the table of %d for the others", web.DefaultMaxSessions))
	num(&c.StatsMinCount, "stats-min-count", rules.DefaultMinCount, "statistics served to analysts suppress counts of 1 to this minus 1, shown as «:», and what would reveal them (DOMAIN.md Product decisions 14); 1 suppresses nothing")
	num(&c.RetentionYears, "retention-years", 0, "retention rule: a person is due for erasure this many years after the last day it took part in anything (nirctl person erase --due lists them); 0 = no rule. A product decision for IMDi to confirm")
	num(&c.HistoryCache, "history-cache", ingest.DefaultHistoryCache, "persons whose histories and folded states the append path keeps, so that the next append for them reads and folds nothing; 0 = none")
	num(&c.PersonEvents, "max-person-events", ingest.DefaultMaxPersonEvents, "the most events one person may have; a request that would take a person past it is refused with ResourceExhausted (the regelmotor and nird's own loads, an operator's erasure and an un-merge are not bound); 0 = no bound")
	num(&c.HistoryEvents, "history-cache-events", ingest.DefaultHistoryCacheEvents, "events the kept histories hold together at most (620–640 bytes of memory each, with their folded states); the least recently appended persons are forgotten first")
	num(&c.Group.MaxEvents, "group-max-events", 0, fmt.Sprintf("group commit: most events in one coalesced batch (0 = %d)", eventstore.DefaultGroupMaxEvents))
	num(&c.Group.MaxBytes, "group-max-bytes", 0, fmt.Sprintf("group commit: most bytes of events in one coalesced batch (0 = %d)", eventstore.DefaultGroupMaxBytes))
	dur(&c.Group.MaxWait, "group-max-wait", 0, fmt.Sprintf("group commit: longest a batch waits for more concurrent appends (0 = %v); a lone caller never waits", eventstore.DefaultGroupMaxWait))
	num(&c.Group.MaxInflight, "group-inflight", 0, fmt.Sprintf("group commit: batches being stored at once (0 = %d)", eventstore.DefaultGroupMaxInflight))
	dur(&c.Cluster.LeaseTTL, "lease-ttl", eventstore.DefaultLeaseTTL, "term of the regelmotor's lease: when its holder dies, another nird takes the regelmotor over within this plus a quarter (the first nird to create the lease bucket sets it)")
	dur(&c.Cluster.RegelmotorInterval, "regelmotor-interval", time.Minute, "how often the regelmotor looks for computed terminations that have become due")
	str(&c.Checkpoint.KeyFile, "checkpoint-key", "", "ed25519 key (seed in hex) that signs the stream's checkpoints; default <data>/checkpoint.key, created on first start. Several nird on one stream should share one key")
	num(&c.Checkpoint.Every, "checkpoint-every", eventstore.DefaultCheckpointEvery, "a checkpoint of the whole stream after this many new events (0: by time only)")
	dur(&c.Checkpoint.Interval, "checkpoint-interval", eventstore.DefaultCheckpointInterval, "the longest new events wait for a checkpoint")
	dur(&c.Cluster.MinSequenceWait, "min-sequence-wait", api.DefaultMinSequenceWait, fmt.Sprintf("longest a query with min_sequence waits for the read models to reach it (read-your-writes); a principal may have %d waiting at once", api.MaxMinSequenceWaiting))
	if v := getenv(envClockOffset); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil && envErr == nil {
			envErr = fmt.Errorf("%s: %q is not a duration (e.g. -90s)", envClockOffset, v)
		}
		c.Cluster.ClockOffset = d
	}
	dur(&c.AsOfClockSkew, "as-of-clock-skew", feed.DefaultClockSkew, "snapshots: how long after an event's recorded_at the stream may have received it (the append's delay, retries across an election, nird's clock behind the NATS servers'); an as-of replay reads the stream this far past its cut-off and keeps the events recorded at or before it")
	dur(&c.DuplicateWindow, "duplicate-window", 0, fmt.Sprintf("the stream's dedupe window: how long JetStream remembers event ids (0 = %v); older ids are checked in the read models' event-id index", eventstore.DefaultDuplicateWindow))
	flt := func(p *float64, name string, def float64, usage string) {
		env := envName(name)
		if v := getenv(env); v != "" {
			if _, err := fmt.Sscan(v, &def); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %q is not a number", env, v)
			}
		}
		fs.Float64Var(p, name, def, usage+" (env "+env+")")
	}
	e := &c.Edge
	dur(&e.ReadHeaderTimeout, "read-header-timeout", DefaultReadHeaderTimeout, "API and admin: longest a client may take to send a request's headers")
	dur(&e.ReadTimeout, "read-timeout", DefaultReadTimeout, "API and admin: longest a client may take to send a whole request, body included")
	dur(&e.WriteTimeout, "write-timeout", DefaultWriteTimeout, "API and admin: longest an answer may take to be written (a slow reader is cut off); not for AdminService's streaming rebuild and snapshot")
	dur(&e.IdleTimeout, "idle-timeout", DefaultIdleTimeout, "API and admin: longest an idle keep-alive connection is kept open")
	num(&e.MaxConns, "max-conns", DefaultMaxConns, fmt.Sprintf("API: most client connections open at once; at the cap a new client takes the place of an idle one (else of one that has not sent its request), and waits to be accepted while every one serves a request (the admin address takes %d)", adminMaxConns))
	num(&e.MaxInflight, "max-inflight", DefaultMaxInflight, "API: most requests served at once; more are refused with ResourceExhausted")
	num(&e.MaxInflightPerPrincipal, "max-inflight-per-principal", DefaultMaxInflightPerPrincipal, "API: most requests one principal (token) may have served at once; 0 = only --max-inflight")
	num(&e.MaxInflightPublic, "max-inflight-public", DefaultMaxInflightPublic, fmt.Sprintf("API: most requests without a token (health checks, the web console's log-in) served at once, apart from --max-inflight; more are refused with ResourceExhausted, and each body must come within %v", publicReadTimeout))
	flt(&e.RateLimit, "rate-limit", DefaultRateLimit, "API: requests per second one principal (token) may make on average; more are refused with ResourceExhausted (HTTP 429); 0 = no limit")
	num(&e.RateBurst, "rate-burst", DefaultRateBurst, "API: requests one principal may make at once above --rate-limit")
	num(&e.BodyMemory, "max-body-memory", DefaultBodyMemory, fmt.Sprintf("API and NATS ingress: bytes of request bodies read at once, over every request, beyond the first %d KiB of each; a large body beyond it is refused with ResourceExhausted", edge.FreeBodyBytes>>10))
	num(&e.MaxExportsPerPrincipal, "max-exports-per-principal", api.DefaultMaxExportsPerPrincipal, "API: most CSV exports one principal (token) may have in flight; more are refused with ResourceExhausted (each holds a temporary file of its list until its client has read it)")
	num(&e.ExportDisk, "max-export-disk", api.DefaultExportDiskBytes, "API: bytes of the CSV exports' temporary files held at once, over every export; an export beyond it is refused with ResourceExhausted")
	dur(&c.Shutdown, "shutdown-grace", 10*time.Second, "time in-flight requests get on shutdown")
	if envErr != nil {
		return c, envErr
	}
	fs.IntVar(&c.Demo, "demo", 0, "load a synthetic demo population of this many persons into an empty register (e.g. 2000)")
	fs.BoolVar(&c.CheckOnly, "check-config", false, "run every check of the start (flags, token file, person key file, NATS credential files) without opening the store, binding a port or changing a file, and exit")
	fs.BoolVar(&c.ShowVersion, "version", false, "print nird's version and exit")
	fs.BoolVar(&c.RepairStream, "repair-stream", false, "put back the settings of the stream NIR_EVENTS that differ from what the register depends on (nird reports them on /metrics and in its log, and never changes them itself), print them and exit")
	// optBool is a boolean flag whose default is decided after parsing, from other flags.
	optBool := func(p *optionalBool, name, usage string) {
		env := envName(name)
		if v := getenv(env); v != "" && p.Set(v) != nil && envErr == nil {
			envErr = fmt.Errorf("%s: %q is not true or false", env, v)
		}
		fs.Var(p, name, usage+" (env "+env+")")
	}
	var boundTokens optionalBool
	optBool(&boundTokens, "nats-bound-tokens", "accept over NATS only tokens bound to the sending case system's NATS user (the token file's nats_user): a token that leaks is then of no use without that user's NATS key; HTTP is not affected")
	var secure optionalBool
	optBool(&secure, "secure-cookies", "web console: mark the session and log-in cookies Secure and send Strict-Transport-Security, for a console served over HTTPS by a TLS proxy (nird itself serves plain HTTP); default true with --tokens, false in development mode (without --tokens, on loopback); --secure-cookies=false to use the console over plain HTTP")
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.SecureCookies = c.TokenFile != ""
	c.NATSBoundTokens = boundTokens.set && boundTokens.v
	if secure.set {
		c.SecureCookies = secure.v
	}
	if c.ShowVersion {
		return c, nil // whatever else the configuration says
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for n := range strings.SplitSeq(caseSystems, ",") {
		if n = strings.TrimSpace(n); n != "" {
			c.NATSCaseSystems = append(c.NATSCaseSystems, n)
		}
	}
	return c, c.Validate()
}

// envName is the environment variable of a flag: NIR_ and the name in capitals, - as _.
// optionalBool is a boolean flag that knows whether it was given (or its environment
// variable), so that its default may depend on other flags.
type optionalBool struct{ set, v bool }

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("not true or false")
	}
	b.set, b.v = true, v
	return nil
}

func (b *optionalBool) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatBool(b.v)
}

func (b *optionalBool) IsBoolFlag() bool { return true }

func envName(flag string) string {
	return "NIR_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// sameListen reports whether listen addresses a and b would take the same port: the same
// port (not 0, which the system picks anew for each), on the same host or where either is
// every address ("", 0.0.0.0, ::).
func sameListen(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return a == b
	}
	every := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return pa == pb && pa != "0" && (ha == hb || every(ha) || every(hb))
}
