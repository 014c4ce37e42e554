// Package deploytest runs NATS servers in-process from the configuration files in deploy/nats,
// so that tests exercise the very files an operator deploys: the accounts, users and
// permissions of accounts.conf, the JetStream settings, and the cluster routes of
// cluster-*.conf.
//
// The files name fixed loopback ports and a store directory relative to the working
// directory; the helpers keep everything else and move those to random ports and a
// temporary directory, so tests can run in parallel with each other and with a developer's
// own cluster. Passwords come from the environment, as in production: [SetCredentials] sets
// random ones for the test.
package deploytest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/freeport"
	"github.com/introreg/nir/internal/natsauth"
)

// Credentials are the passwords of the users in deploy/nats/accounts.conf.
type Credentials struct {
	Nird    string
	Ingress string
	Reader  string
	// CaseSystems are the case systems' passwords by user name.
	CaseSystems map[string]string
}

// Environment variables that accounts.conf reads the passwords from.
const (
	EnvNirdPassword    = "NIR_NATS_NIRD_PASSWORD"
	EnvIngressPassword = "NIR_NATS_INGRESS_PASSWORD"
	EnvReaderPassword  = "NIR_NATS_READER_PASSWORD"
)

// CaseSystems are the case-system users of accounts.conf, with the variables of their
// passwords.
var CaseSystems = map[string]string{
	"oslo-fagsystem":   "NIR_NATS_OSLO_FAGSYSTEM_PASSWORD",
	"bergen-fagsystem": "NIR_NATS_BERGEN_FAGSYSTEM_PASSWORD",
}

// Dir returns the absolute path of deploy/nats in this module.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("deploytest: cannot locate source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "nats")
}

// SetCredentials sets random passwords in the environment for the duration of the test (so
// the test cannot be parallel) and returns them.
func SetCredentials(tb testing.TB) Credentials {
	tb.Helper()
	c := Credentials{Nird: password(tb), Ingress: password(tb), Reader: password(tb), CaseSystems: map[string]string{}}
	tb.Setenv(EnvNirdPassword, c.Nird)
	tb.Setenv(EnvIngressPassword, c.Ingress)
	tb.Setenv(EnvReaderPassword, c.Reader)
	for user, env := range CaseSystems {
		c.CaseSystems[user] = password(tb)
		tb.Setenv(env, c.CaseSystems[user])
	}
	return c
}

// Password returns user's password.
func (c Credentials) Password(user string) string {
	switch user {
	case "nird":
		return c.Nird
	case "ingress":
		return c.Ingress
	case "reader":
		return c.Reader
	}
	return c.CaseSystems[user]
}

// InboxPrefix is the inbox prefix user must use: nird's own, or _INBOX.<user>; "" for the
// ingress, which makes no requests.
func InboxPrefix(user string) string {
	switch user {
	case "nird":
		return eventstore.InboxPrefix
	case "ingress":
		return ""
	}
	return natsauth.InboxPrefix(user)
}

// password is a random value that the config parser reads as a string: it starts with a
// letter (see the note in accounts.conf).
func password(tb testing.TB) string {
	tb.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return "p" + hex.EncodeToString(b[:])
}

// Options loads deploy/nats/<file> (or file itself, if it is an absolute path) with
// server.ProcessConfigFile and moves the client port to a random one, switches monitoring
// off, and puts the JetStream store in a temporary directory. Credentials must be in the
// environment ([SetCredentials]).
func Options(tb testing.TB, file string) *server.Options {
	tb.Helper()
	path := file
	if !filepath.IsAbs(path) {
		path = filepath.Join(Dir(), file)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		tb.Fatalf("load %s: %v", file, err)
	}
	opts.Host = "127.0.0.1"
	opts.Port = server.RANDOM_PORT
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = tb.TempDir()
	opts.NoSigs = true
	opts.NoLog = os.Getenv("DEPLOYTEST_LOG") == ""
	return opts
}

// RunServer starts a server with opts and shuts it down when the test ends.
func RunServer(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("new server %s: %v", opts.ServerName, err)
	}
	if !opts.NoLog {
		s.ConfigureLogger()
	}
	go s.Start()
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatalf("server %s not ready for connections", opts.ServerName)
	}
	return s
}

// RunCluster starts one server per file (cluster-1.conf, …), with the route ports moved to
// free loopback ports and every configured route rewritten to follow its node, keeping the
// route credentials of the files. It returns once every server accepts client connections;
// JetStream's meta group may still be electing a leader (poll, e.g. with AccountInfo).
func RunCluster(tb testing.TB, files ...string) []*server.Server {
	tb.Helper()
	all := make([]*server.Options, len(files))
	moved := map[int]int{} // route port in the file → port used in the test
	for i, f := range files {
		all[i] = Options(tb, f)
		port := freePort(tb)
		moved[all[i].Cluster.Port] = port
		all[i].Cluster.Host, all[i].Cluster.Port = "127.0.0.1", port
	}
	for i, o := range all {
		for j, r := range o.Routes {
			p, err := strconv.Atoi(r.Port())
			if err != nil {
				tb.Fatalf("%s: route %d: %v", files[i], j, err)
			}
			np, ok := moved[p]
			if !ok {
				tb.Fatalf("%s: route %d points at port %d, which no node of the cluster listens on", files[i], j, p)
			}
			u := *r
			u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(np))
			o.Routes[j] = &u
		}
	}
	servers := make([]*server.Server, len(all))
	for i, o := range all {
		servers[i] = RunServer(tb, o)
	}
	return servers
}

// ClientURLs returns the servers' client URLs, comma-separated, for nats.Connect.
func ClientURLs(servers ...*server.Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// URLWithUser returns the client URL of s with user and password in it.
func URLWithUser(s *server.Server, user, password string) string {
	u, err := url.Parse(s.ClientURL())
	if err != nil {
		panic(fmt.Sprintf("deploytest: client URL %q: %v", s.ClientURL(), err))
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// freePort returns a loopback TCP port that was free a moment ago, below the kernel's
// ephemeral range (freeport). A route port must be known before any server starts, because
// each node's routes name the others.
// A variable, so that a test can hand out a port that is taken (TestRunProcesses_PortTaken).
var freePort = func(tb testing.TB) int {
	tb.Helper()
	p, err := freeport.Port()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
