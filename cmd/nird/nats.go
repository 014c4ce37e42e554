package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natsauth"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/ratelog"
)

// natsAccess is who may use nird's NATS: on the embedded server, nird's in-process
// ingress users and the TCP users whose keys nird keeps in <data>/nats; on an external
// server, the ingress's own credentials (deploy/nats/accounts.conf's user "ingress").
type natsAccess struct {
	embedded bool
	dir      string             // <data>/nats (embedded server)
	tcp      []natsauth.User    // reader and case systems (embedded, with a listener)
	users    []*server.NkeyUser // every user of the embedded server but the store's own
	accounts []*server.Account  // the embedded server's accounts (with a listener)
	ingress  []nats.Option      // how the ingress connects
	// lanes are the case systems the ingress serves on connections of their own, and how
	// each connects (natsingress.Ingress.AddCaseSystem).
	lanes []ingressLane
	log   *slog.Logger
}

// ingressLane is a case system's own ingress connection: its name and how it connects.
type ingressLane struct {
	name string
	opts []nats.Option
}

// prepareNATS makes (or loads) the credentials of the embedded server's users, or the
// ingress's client options for an external server.
func prepareNATS(cfg Config, log *slog.Logger) (*natsAccess, error) {
	a := &natsAccess{dir: filepath.Join(cfg.Data, "nats"), log: log}
	if cfg.NATSURL != "" {
		opts, err := clientOptions("--nats-ingress", cfg.NATSURL, cfg.NATSIngressCreds, cfg.NATSIngressUser, cfg.NATSIngressPassword, cfg.NATSIngressNKey, cfg.NATSCA)
		if err != nil {
			return nil, err
		}
		a.ingress = opts
		if cfg.NATSIngressCreds == "" && cfg.NATSIngressUser == "" && cfg.NATSIngressNKey == "" {
			log.Warn("the external NATS server gets no credentials from nird: only a development server without authentication works so, and there any client may write the stream")
		}
		// The case systems of --nats-case-systems are served as the ingress's user too,
		// each on a connection of its own.
		for _, n := range cfg.NATSCaseSystems {
			a.lanes = append(a.lanes, ingressLane{name: n, opts: opts})
		}
		if len(a.lanes) == 0 {
			log.Warn("no --nats-case-systems: the NATS ingress serves every case system on one connection, which one case system's flood of large requests can have the server cut (deploy/README.md)")
		}
		return a, nil
	}
	a.embedded = true
	user, auth, err := eventstore.InProcessUser(natsingress.Permissions())
	if err != nil {
		return nil, err
	}
	a.users = append(a.users, user)
	a.ingress = []nats.Option{auth}
	if cfg.NATSListen == "" {
		return a, nil
	}
	if a.tcp, err = natsauth.LoadOrCreate(a.dir, cfg.NATSCaseSystems); err != nil {
		return nil, err
	}
	seeds := make([]string, 0, len(a.tcp))
	for _, u := range a.tcp {
		seeds = append(seeds, u.Seed)
	}
	removeKeyLeftovers(a.dir, log, seeds...) // the seeds are written as key files are
	global, reader, cases, err := natsauth.EmbeddedAccounts(cfg.NATSCaseSystems)
	if err != nil {
		return nil, err
	}
	a.accounts = []*server.Account{global, reader}
	for _, n := range cfg.NATSCaseSystems {
		a.accounts = append(a.accounts, cases[n])
		// The ingress's connection for this case system alone: its requests in, answers
		// out on the server's service replies.
		user, auth, err := eventstore.InProcessUser(natsingress.CaseSystemPermissions(n))
		if err != nil {
			return nil, err
		}
		a.users = append(a.users, user)
		a.lanes = append(a.lanes, ingressLane{name: n, opts: []nats.Option{auth}})
	}
	for _, u := range a.tcp {
		if u.Name == natsauth.Reader {
			u.Server.Account = reader
		} else {
			u.Server.Account = cases[u.Name]
		}
		a.users = append(a.users, u.Server)
	}
	return a, nil
}

// started writes the nats CLI contexts for the listener at url (or removes stale ones when
// there is no listener) once the embedded server runs.
func (a *natsAccess) started(store *eventstore.Store) error {
	if !a.embedded {
		return nil
	}
	url := store.ClientURL()
	if url == "" {
		return natsauth.RemoveContexts(a.dir)
	}
	if err := natsauth.WriteContexts(a.tcp, url); err != nil {
		return err
	}
	names := make([]string, len(a.tcp))
	for i, u := range a.tcp {
		names[i] = u.Name
	}
	a.log.Info("embedded NATS listener: nkey users only; nats CLI contexts written", "url", url, "dir", a.dir, "users", strings.Join(names, ","))
	return nil
}

// ingressConns opens the NATS ingress's own connection and one for each case system
// (lanes, by name). Close them all (closeConns) when the ingress has stopped.
func (a *natsAccess) ingressConns(cfg Config, store *eventstore.Store) (main *nats.Conn, lanes map[string]*nats.Conn, err error) {
	if main, err = a.ingressConn(cfg, store, "nir-ingress", a.ingress); err != nil {
		return nil, nil, err
	}
	lanes = map[string]*nats.Conn{}
	for _, l := range a.lanes {
		nc, err := a.ingressConn(cfg, store, "nir-ingress-"+l.name, l.opts)
		if err != nil {
			main.Close()
			closeConns(lanes)
			return nil, nil, err
		}
		lanes[l.name] = nc
	}
	return main, lanes, nil
}

// closeConns closes every connection of conns.
func closeConns(conns map[string]*nats.Conn) {
	for _, nc := range conns {
		nc.Close()
	}
}

// ingressConn opens a connection of the NATS ingress's named name with credentials creds:
// in-process on the embedded server, or to an external one. It is never the store's
// connection, which may publish events (see package natsingress).
func (a *natsAccess) ingressConn(cfg Config, store *eventstore.Store, name string, creds []nats.Option) (*nats.Conn, error) {
	refused := ratelog.Minute{Msg: "NATS refused a publish of the ingress (a reply subject outside _INBOX., or the ingress user's permissions are too narrow)"}
	// nats.go reports a slow consumer each time a subscription starts dropping again.
	dropped := ratelog.Minute{Msg: "NATS ingress dropped requests unanswered: more than natsingress.PendingBytes of them received and not yet looked at (a case system sending faster than nird takes them)"}
	// nats.go reports each request whose header block does not decode (the server passes
	// on what the client wrote), then hands it over without headers: it is refused as one
	// without a token. A case system sends them as fast as any message, so one a line
	// filled the log.
	badHeaders := ratelog.Minute{Msg: "NATS ingress received requests whose headers do not decode; they were refused as requests without a token"}
	logErr := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			// A reply the server refused: the micro service's discovery answers any reply
			// subject, which the requester chose, so the subject is not logged, and a
			// flood of them makes one line a minute.
			refused.Note(a.log, "component", "natsingress")
			return
		}
		if errors.Is(err, nats.ErrSlowConsumer) {
			dropped.Note(a.log, "component", "natsingress", "connection", name)
			return
		}
		if errors.Is(err, nats.ErrBadHeaderMsg) {
			badHeaders.Note(a.log, "component", "natsingress", "connection", name)
			return
		}
		a.log.Warn("NATS error on the ingress connection", "component", "natsingress", "connection", name, "err", err)
	})
	// A case system's connection the server cut as a slow consumer (its own flood)
	// connects again, however often.
	opts := append([]nats.Option{nats.Name(name), logErr, nats.MaxReconnects(-1)}, creds...)
	if cfg.NATSURL == "" {
		return store.Connect(opts...)
	}
	nc, err := nats.Connect(cfg.NATSURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("NATS ingress: connect %s: %w", name, err)
	}
	return nc, nil
}

// clientOptions builds client options from credential flags: a creds file, user and
// password, an nkey seed file, and a CA for TLS. It reads every file now, as the client
// would only when it connects, so that a missing or broken one fails the start and
// --check-config naming its flag: flags is the flags' prefix, "--nats" or "--nats-ingress".
func clientOptions(flags, url, creds, user, password, nkeyFile, ca string) ([]nats.Option, error) {
	var opts []nats.Option
	if creds != "" {
		if err := checkCreds(creds); err != nil {
			return nil, fmt.Errorf("%s-creds: %w", flags, err)
		}
		opts = append(opts, nats.UserCredentials(creds))
	}
	if user != "" {
		opts = append(opts, nats.UserInfo(user, password))
	}
	if nkeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(nkeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s-nkey: %s: %w", flags, nkeyFile, err)
		}
		opts = append(opts, opt)
	}
	if ca != "" {
		opt := nats.RootCAs(ca)
		if err := opt(&nats.Options{}); err != nil { // reads and parses the file
			return nil, fmt.Errorf("--nats-ca: %w", err)
		}
		opts = append(opts, opt)
	}
	if strings.HasPrefix(url, "tls://") && ca == "" {
		opts = append(opts, nats.Secure())
	}
	return opts, nil
}
