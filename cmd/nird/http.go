package main

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/introreg/nir/internal/edge"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/ratelog"
	"github.com/introreg/nir/rules"
)

// The API's and the admin address's defaults. With them, what unauthenticated clients can
// make nird hold is a few KiB per open connection (at most --max-conns) and
// --max-inflight-public requests of small bodies for at most publicReadTimeout each, and
// what authenticated ones can make it read at once is bounded by --max-inflight × 64 KiB
// plus --max-body-memory.
const (
	DefaultReadHeaderTimeout       = 10 * time.Second
	DefaultReadTimeout             = 30 * time.Second // a 4 MiB body at 140 KB/s
	DefaultWriteTimeout            = 2 * time.Minute  // a large CSV export to a slow link
	DefaultIdleTimeout             = 2 * time.Minute
	DefaultMaxConns                = 1024
	DefaultMaxInflight             = 256
	DefaultMaxInflightPerPrincipal = 64
	DefaultMaxInflightPublic       = 32
	DefaultRateLimit               = 100.0 // per principal, per second
	DefaultRateBurst               = 200
	DefaultBodyMemory              = 32 << 20

	// adminMaxConns caps the admin address's connections: a scraper and an operator.
	adminMaxConns = 32
	// publicReadTimeout bounds the reading of a request without a token (a health check, the
	// console's log-in), from its headers on: its body is at most a few KiB, and the slots
	// for such requests (--max-inflight-public) are held by anyone who sends one slowly.
	publicReadTimeout = 5 * time.Second
	// healthMaxBytes bounds a gRPC health check's request, which needs no token.
	healthMaxBytes = 1 << 10
	// consoleMaxBytes bounds a request body of the web console (its log-in and forms),
	// which is served beside the API but not behind the edge's bearer check.
	consoleMaxBytes = 64 << 10
)

// EdgeConfig holds the API's timeouts and limits (flags --read-timeout, --rate-limit, ...).
// The timeouts apply to the admin address too.
type EdgeConfig struct {
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration

	MaxConns, MaxInflight, MaxInflightPerPrincipal, MaxInflightPublic int
	RateLimit                                                         float64
	RateBurst                                                         int
	BodyMemory                                                        int
	// MaxExportsPerPrincipal and ExportDisk bound the CSV exports: each holds a temporary
	// file of its whole list until its client has read it (api.QueryConfig).
	MaxExportsPerPrincipal, ExportDisk int
}

func (e EdgeConfig) validate() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--read-header-timeout", e.ReadHeaderTimeout}, {"--read-timeout", e.ReadTimeout}, {"--write-timeout", e.WriteTimeout}, {"--idle-timeout", e.IdleTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%s: %v is not positive; an unbounded wait lets a slow client hold nird's memory", d.flag, d.v)
		}
	}
	switch {
	case e.ReadHeaderTimeout > e.ReadTimeout:
		return fmt.Errorf("--read-header-timeout: %v is longer than --read-timeout %v", e.ReadHeaderTimeout, e.ReadTimeout)
	case e.MaxConns < 1:
		return fmt.Errorf("--max-conns: %d is not at least 1", e.MaxConns)
	case e.MaxInflight < 1:
		return fmt.Errorf("--max-inflight: %d is not at least 1", e.MaxInflight)
	case e.MaxInflightPerPrincipal < 0 || e.MaxInflightPerPrincipal > e.MaxInflight:
		return fmt.Errorf("--max-inflight-per-principal: %d is not between 0 and --max-inflight %d", e.MaxInflightPerPrincipal, e.MaxInflight)
	case e.MaxInflightPublic < 1:
		return fmt.Errorf("--max-inflight-public: %d is not at least 1", e.MaxInflightPublic)
	case e.RateLimit < 0:
		return fmt.Errorf("--rate-limit: %v is negative (0 = no limit)", e.RateLimit)
	case e.RateLimit > 0 && e.RateBurst < 1:
		return fmt.Errorf("--rate-burst: %d; with --rate-limit it must be at least 1", e.RateBurst)
	case e.BodyMemory < 4<<20:
		return fmt.Errorf("--max-body-memory: %d is less than one largest request (4 MiB)", e.BodyMemory)
	case e.MaxExportsPerPrincipal < 1:
		return fmt.Errorf("--max-exports-per-principal: %d is not at least 1", e.MaxExportsPerPrincipal)
	case e.ExportDisk < 1<<20:
		return fmt.Errorf("--max-export-disk: %d is less than 1 MiB, a small kommune's export", e.ExportDisk)
	}
	return nil
}

// edgeConfig is the edge's part of the configuration.
func (e EdgeConfig) edgeConfig(log *slog.Logger) edge.Config {
	return edge.Config{
		MaxInflight: e.MaxInflight, MaxInflightPerPrincipal: e.MaxInflightPerPrincipal,
		MaxPublicInflight: e.MaxInflightPublic, PublicReadTimeout: min(publicReadTimeout, e.ReadTimeout),
		Rate: e.RateLimit, Burst: e.RateBurst, BodyMemory: int64(e.BodyMemory), Logger: log,
		MaxBodyBytes: natsingress.MaxRequestBytes,
	}
}

// checkListen checks a listen address's form, and that development mode (no token file)
// stays on loopback: there every caller may act as any principal.
func checkListen(flag, addr, tokenFile string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port: %w", flag, addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s: %q: port %q is not a number from 0 to 65535", flag, addr, port)
	}
	if tokenFile == "" && !isLoopback(host) {
		return fmt.Errorf("%s: %q is not a loopback address, and without --tokens nird runs in development mode, where every caller may act as any principal; give --tokens FILE, or listen on 127.0.0.1", flag, addr)
	}
	return nil
}

// isLoopback reports whether host is a loopback address or "localhost". An empty host (all
// interfaces) and any other name are not: a name may resolve elsewhere tomorrow.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// listenTCP binds addr for flag, so that a port in use fails the start at once and names
// the flag.
func listenTCP(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return ln, nil
}

// probeFree fails when addr cannot be bound now (the port is taken), naming flag. It is for
// a listener that another component opens later (the embedded NATS server), which would
// otherwise only say that it is not ready.
func probeFree(flag, addr string) error {
	if addr == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return nil
	}
	ln, err := listenTCP(flag, addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// serveHTTP serves h on ln until ctx is cancelled, then gives in-flight requests grace to
// finish. It allows HTTP/1.1 and unencrypted HTTP/2, so gRPC works without TLS; the
// timeouts hold for every request (for HTTP/2 per stream), and at most maxConns
// connections are open at once: when they are, a new client is admitted by closing the
// longest-idle connection, else the one that has waited longest to send its request
// (edge.Listener), so that connections carrying no request never keep it out; evicted (if
// not nil) is called for each connection closed so.
func serveHTTP(name string, ln net.Listener, h http.Handler, e EdgeConfig, maxConns int, evicted func(), grace time.Duration, log *slog.Logger) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		protocols := new(http.Protocols)
		protocols.SetHTTP1(true)
		protocols.SetUnencryptedHTTP2(true)
		lim := edge.LimitListener(ln, maxConns)
		lim.OnEvict = evicted
		srv := &http.Server{
			Handler:           h,
			Protocols:         protocols,
			ReadHeaderTimeout: e.ReadHeaderTimeout,
			ReadTimeout:       e.ReadTimeout,
			WriteTimeout:      e.WriteTimeout,
			IdleTimeout:       e.IdleTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          httpErrorLog(log),
			ConnState:         lim.ConnState,
		}
		log.Info("serving", name, ln.Addr().String(), "max_conns", maxConns)
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(lim) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		return err
	}
}

// httpErrorLog takes net/http's own log (a panic in a handler outside Connect's Recover,
// such as the console's or the CSV export's, and connection errors) into log at warn level
// with national ids masked: a panic's value may quote a request, and the default went to
// stderr as it was.
//
// A panic (a bug) is logged each time; anything else at most once a minute, with the last
// of them and how many there were: a client makes those as fast as it opens connections.
// An HTTP/2 frame the protocol forbids, sent in 33 bytes by any client that reaches the
// port, had net/http log a connection error, one line a connection
// (TestServeHTTP_ProtocolErrorsFloodTheLog).
func httpErrorLog(log *slog.Logger) *stdlog.Logger {
	return stdlog.New(&redactingWriter{log: log, others: ratelog.Minute{Msg: "http server: connections or requests net/http refused (a client's, at most one line a minute)"}}, "", 0)
}

type redactingWriter struct {
	log    *slog.Logger
	others ratelog.Minute
}

// panicPrefixes begin net/http's lines for a handler's panic (HTTP/1 and HTTP/2); other lines
// may quote what a client sent (an HTTP/2 preface over TLS), so a panic is told by its start.
var panicPrefixes = []string{"http: panic serving ", "http2: panic serving "}

func (w *redactingWriter) Write(p []byte) (int, error) {
	msg := rules.RedactIDs(strings.TrimSpace(string(p)))
	if slices.ContainsFunc(panicPrefixes, func(pre string) bool { return strings.HasPrefix(msg, pre) }) {
		w.log.Warn("http server", "msg", msg)
	} else {
		w.others.Note(w.log, "last", msg)
	}
	return len(p), nil
}

// longRunning lifts the write timeout for AdminService's streaming calls, a rebuild and a
// snapshot, which report progress for as long as they take; the operator role alone may
// call them.
func longRunning(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case nirv1connect.AdminServiceRebuildProcedure, nirv1connect.AdminServiceCreateSnapshotProcedure:
			_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		}
		h.ServeHTTP(w, r)
	})
}

// postOnly refuses Connect's GET form of the services' calls (connect-go serves it for the
// calls marked NO_SIDE_EFFECTS): it carries the request message in the URL, which proxies,
// load balancers and browsers log and keep, and a person is named by national id in
// GetPerson, History, PersonDeadlines and AuditHistory. Every client of nird posts.
func postOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST: a request in the URL would name its person in every log on the way", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}
