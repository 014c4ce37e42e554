package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/freeport"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/sealing"
)

// Binaries are the programs a cluster runs: the NATS server of the version go.mod pins, and
// nird.
type Binaries struct {
	NATSServer, Nird string
}

// Build compiles nats-server (github.com/nats-io/nats-server/v2 at go.mod's version) and
// nird into dir.
func Build(ctx context.Context, dir string) (Binaries, error) {
	b := Binaries{NATSServer: filepath.Join(dir, "nats-server"), Nird: filepath.Join(dir, "nird")}
	for bin, pkg := range map[string]string{b.NATSServer: "github.com/nats-io/nats-server/v2", b.Nird: "github.com/introreg/nir/cmd/nird"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = filepath.Join(DeployDir(), "..", "..") // the module, wherever this runs from
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return b, nil
}

// DeployDir returns deploy/nats of this source tree.
func DeployDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("deploy", "nats")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "nats")
}

// ClusterOptions describe a cluster: NATS nodes from deploy/nats's cluster-N.conf, and nird
// processes connected to them through proxies.
type ClusterOptions struct {
	// Dir holds every process's files; it must exist.
	Dir string
	// Bins are the programs.
	Bins Binaries
	// DeployDir is deploy/nats (default DeployDir()).
	DeployDir string
	// Nodes is the number of NATS nodes (cluster-1.conf …; 3).
	Nodes int
	// Nirds is the number of nird processes.
	Nirds int
	// DefaultSync removes sync_interval: always from the node configurations, so that the
	// servers flush at JetStream's default (every two minutes) instead of fsyncing each write.
	DefaultSync bool
	// LeaseTTL and RegelmotorInterval are passed to every nird.
	LeaseTTL, RegelmotorInterval time.Duration
	// ClockOffsets skews nird i's wall clock by ClockOffsets[i] (NIR_TEST_CLOCK_OFFSET).
	ClockOffsets []time.Duration
	// NirdArgs are extra flags for every nird (not --log-format or --log-level: the harness
	// reads the log for nirdStarted).
	NirdArgs []string
	// Direct connects the nodes and the nird straight to each other, without the proxies
	// (for measuring, where no fault is injected and the proxies' copying costs CPU).
	Direct bool
	// Log receives the harness's own log; nil discards.
	Log *slog.Logger
}

// Cluster is a running set of NATS nodes and nird processes on loopback. Every link from a
// node to another node and from a nird to a node goes through a Proxy the nemesis can cut.
type Cluster struct {
	opt   ClusterOptions
	log   *slog.Logger
	env   []string          // the NATS password variables, for the servers
	pass  map[string]string // NATS user → password
	Token string            // the case systems' bearer token (kommune 0301)
	// OperatorToken is an operator's bearer token (the rebuild-nird fault).
	OperatorToken string
	// CaseSystemUser is the NATS user case systems connect as; CaseSystemInbox its inbox
	// prefix, the only one the ingress answers its requests in.
	CaseSystemUser, CaseSystemInbox string

	Nodes []*Node
	Nirds []*Nird
	// route[i][j] carries node i's routes to node j; client[k][j] nird k's connection to
	// node j.
	route  [][]*Proxy
	client [][]*Proxy

	admin *eventstore.Store
}

// Node is one NATS server.
type Node struct {
	Name                              string
	ClientPort, ClusterPort, HTTPPort int
	conf                              string
	proc                              *proc
}

// ClientURL is the node's client URL (not through a proxy).
func (n *Node) ClientURL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.ClientPort) }

// Nird is one nird process.
type Nird struct {
	Name        string
	HTTP, Admin string // host:port
	ClockOffset time.Duration
	args        []string
	proc        *proc
}

// URL is the API's base URL.
func (n *Nird) URL() string { return "http://" + n.HTTP }

// proc is a running (or exited) process with its log file.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	// logPath is the log file, which this start of the process writes from logFrom on.
	logPath string
	logFrom int64
}

// log is what this start of the process wrote so far.
func (p *proc) log() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, p.logFrom, 1<<40))
	return string(b)
}

// nirdLogArgs give every nird the log that nirdStarted is a line of.
var nirdLogArgs = []string{"--log-format", "text", "--log-level", "info"}

// nirdStarted is the line nird logs once it has bound its ports, before it serves /readyz.
const nirdStarted = "msg=starting"

// nodeReady is the line nats-server logs once it has bound its ports.
const nodeReady = "Server is ready"

// NewCluster writes the configurations and starts the proxies; Start starts the processes.
func NewCluster(opt ClusterOptions) (*Cluster, error) {
	if opt.Nodes == 0 {
		opt.Nodes = 3
	}
	if opt.DeployDir == "" {
		opt.DeployDir = DeployDir()
	}
	if opt.LeaseTTL == 0 {
		opt.LeaseTTL = 3 * time.Second
	}
	if opt.RegelmotorInterval == 0 {
		opt.RegelmotorInterval = time.Second
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{opt: opt, log: log, pass: map[string]string{}, Token: "nir_chaos-" + randomHex(16), OperatorToken: "nir_chaos-" + randomHex(16)}
	if err := c.credentials(); err != nil {
		return nil, err
	}
	if _, err := personkey.LoadOrCreate(filepath.Join(opt.Dir, personkey.FileName)); err != nil {
		return nil, err
	}
	// Every nird of a register shares its master key, as it shares the person key.
	if _, err := sealing.LoadMaster(c.MasterKeyFile(), true); err != nil {
		return nil, err
	}
	// And its checkpoint key (README: several nird on one stream share it), which a rebuild
	// needs to take the live file's events.
	if _, err := eventstore.LoadCheckpointKey(filepath.Join(opt.Dir, checkpointKeyFile), true); err != nil {
		return nil, err
	}
	if err := auth.WriteEntries(filepath.Join(opt.Dir, tokensFile), []auth.Entry{
		{Name: "chaos-fagsystem", Role: auth.RoleKommune, Kommune: "0301", TokenSHA256: auth.HashToken(c.Token)},
		{Name: "chaos-operator", Role: auth.RoleOperator, TokenSHA256: auth.HashToken(c.OperatorToken)},
	}); err != nil {
		return nil, err
	}
	if err := c.place(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Files of ClusterOptions.Dir that every nird is given.
const (
	tokensFile        = "tokens.json"
	checkpointKeyFile = "checkpoint.key"
)

// listenFree finds the processes' ports (a variable, so that a test can hand out a port
// that is taken: TestCluster_PortTaken).
var listenFree = freeport.Listen

// place gives every node and nird ports that are free, starts the proxies to them, and
// writes the nodes' configurations and the nird's flags: a new cluster, or the one whose
// start found a port taken (Close first).
func (c *Cluster) place() error {
	opt := c.opt
	// The ports are held until all are found, so that none is found twice.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	freePort := func() (int, error) {
		l, err := listenFree()
		if err != nil {
			return 0, err
		}
		held = append(held, l)
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	c.Nodes, c.Nirds = nil, nil
	for i := range opt.Nodes {
		n := &Node{Name: fmt.Sprintf("nir-%d", i+1)}
		var err error
		if n.ClientPort, err = freePort(); err == nil {
			if n.ClusterPort, err = freePort(); err == nil {
				n.HTTPPort, err = freePort()
			}
		}
		if err != nil {
			return err
		}
		c.Nodes = append(c.Nodes, n)
	}
	c.route = make([][]*Proxy, opt.Nodes)
	for i := range c.Nodes {
		c.route[i] = make([]*Proxy, opt.Nodes)
		for j, to := range c.Nodes {
			if i == j {
				continue
			}
			p, err := NewProxy("127.0.0.1:" + strconv.Itoa(to.ClusterPort))
			if err != nil {
				return err
			}
			c.route[i][j] = p
		}
	}
	for i, n := range c.Nodes {
		if err := c.writeNodeConfig(i, n); err != nil {
			return err
		}
	}
	c.client = make([][]*Proxy, opt.Nirds)
	for k := range opt.Nirds {
		n := &Nird{Name: fmt.Sprintf("nird-%d", k+1)}
		if k < len(opt.ClockOffsets) {
			n.ClockOffset = opt.ClockOffsets[k]
		}
		hp, err := freePort()
		if err != nil {
			return err
		}
		ap, err := freePort()
		if err != nil {
			return err
		}
		n.HTTP, n.Admin = "127.0.0.1:"+strconv.Itoa(hp), "127.0.0.1:"+strconv.Itoa(ap)
		var urls []string
		for _, node := range c.Nodes {
			p, err := NewProxy("127.0.0.1:" + strconv.Itoa(node.ClientPort))
			if err != nil {
				return err
			}
			c.client[k] = append(c.client[k], p)
			if opt.Direct {
				urls = append(urls, node.ClientURL())
			} else {
				urls = append(urls, "nats://"+p.Addr())
			}
		}
		dir := filepath.Join(opt.Dir, n.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		n.args = slices.Concat([]string{
			"--data", filepath.Join(dir, "data"), "--http", n.HTTP, "--admin", n.Admin,
			"--nats-url", strings.Join(urls, ","), "--nats-user", "nird", "--nats-password", c.pass["nird"],
			"--replicas", strconv.Itoa(min(3, opt.Nodes)), "--tokens", filepath.Join(opt.Dir, tokensFile),
			"--person-key-file", filepath.Join(opt.Dir, personkey.FileName), "--master-key-file", c.MasterKeyFile(),
			"--lease-ttl", opt.LeaseTTL.String(), "--regelmotor-interval", opt.RegelmotorInterval.String(),
			// The clients stand for many case systems but share one token: no per-token limit.
			"--rate-limit", "0",
			// Checkpoints often enough that a rebuild (rebuild-nird) takes the live file's
			// events through one.
			"--checkpoint-every", "200", "--checkpoint-interval", "2s", "--checkpoint-key", filepath.Join(opt.Dir, checkpointKeyFile),
		}, nirdLogArgs, opt.NirdArgs)
		if pw, ok := c.pass["ingress"]; ok {
			// The NATS ingress answers case systems on a connection of its own.
			n.args = append(n.args, "--nats-ingress-user", "ingress", "--nats-ingress-password", pw)
			// And each case system of accounts.conf on one of its own.
			var cases []string
			for user := range c.pass {
				if strings.HasSuffix(user, "-fagsystem") {
					cases = append(cases, user)
				}
			}
			slices.Sort(cases)
			n.args = append(n.args, "--nats-case-systems", strings.Join(cases, ","))
		}
		c.Nirds = append(c.Nirds, n)
	}
	return nil
}

// passwordVar matches the password variables the NATS configurations read.
var passwordVar = regexp.MustCompile(`\$(NIR_NATS_[A-Z0-9_]+_PASSWORD)`)

// userLine matches a user entry with a password variable in accounts.conf.
var userLine = regexp.MustCompile(`user:\s*"?([a-z0-9-]+)"?\s*,\s*password:\s*\$(NIR_NATS_[A-Z0-9_]+_PASSWORD)`)

// credentials gives every password variable the configurations name a random value, and
// finds the user case systems connect as.
func (c *Cluster) credentials() error {
	files, err := filepath.Glob(filepath.Join(c.opt.DeployDir, "*.conf"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("chaos: no NATS configurations in %s", c.opt.DeployDir)
	}
	vars := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for _, m := range passwordVar.FindAllStringSubmatch(stripComments(string(b)), -1) {
			if _, ok := vars[m[1]]; !ok {
				vars[m[1]] = "p" + randomHex(16)
			}
		}
		for _, m := range userLine.FindAllStringSubmatch(stripComments(string(b)), -1) {
			c.pass[m[1]] = m[2] // the variable, until every file is read
		}
	}
	for user, v := range c.pass {
		c.pass[user] = vars[v]
	}
	for v, p := range vars {
		c.env = append(c.env, v+"="+p)
	}
	if c.pass["nird"] == "" {
		return errors.New("chaos: accounts.conf has no user nird with a password")
	}
	// A case system: a named one, with its own request subject and inbox.
	for user := range c.pass {
		if strings.HasSuffix(user, "-fagsystem") && (c.CaseSystemUser == "" || user < c.CaseSystemUser) {
			c.CaseSystemUser, c.CaseSystemInbox = user, natsingress.Inbox(user)
		}
	}
	if c.CaseSystemUser == "" {
		return errors.New("chaos: accounts.conf has no case system user")
	}
	return nil
}

// Password returns the NATS password of user.
func (c *Cluster) Password(user string) string { return c.pass[user] }

func stripComments(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "#") || strings.HasPrefix(t, "//") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// writeNodeConfig copies deploy/nats into the node's directory with cluster-N.conf's ports,
// store and routes moved: clients to ClientPort, monitoring to HTTPPort, the store into the
// node's directory, the cluster port to ClusterPort and every route through its proxy. The
// node advertises no client URLs (so nird's client stays on its proxies) and a dead cluster
// address (so no node learns a way round the route proxies). With DefaultSync the
// sync_interval line goes. A file that no longer has the expected shape is an error naming
// what is missing.
func (c *Cluster) writeNodeConfig(i int, n *Node) error {
	dir := filepath.Join(c.opt.Dir, n.Name)
	if err := os.MkdirAll(filepath.Join(dir, "store"), 0o700); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(c.opt.DeployDir, "*.conf"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600); err != nil {
			return err
		}
	}
	name := fmt.Sprintf("cluster-%d.conf", i+1)
	b, err := os.ReadFile(filepath.Join(c.opt.DeployDir, name))
	if err != nil {
		return err
	}
	s := string(b)
	replace := func(what string, re *regexp.Regexp, with func(m []string) string) error {
		found := 0
		s = re.ReplaceAllStringFunc(s, func(match string) string {
			found++
			return with(re.FindStringSubmatch(match))
		})
		if found == 0 {
			return fmt.Errorf("chaos: %s: no %s to move (the file changed shape: update internal/chaos)", name, what)
		}
		return nil
	}
	top := regexp.MustCompile(`(?m)^listen:\s*127\.0\.0\.1:\d+`)
	if err := replace("client listen", top, func([]string) string { return "listen: 127.0.0.1:" + strconv.Itoa(n.ClientPort) }); err != nil {
		return err
	}
	if err := replace("http", regexp.MustCompile(`(?m)^http:\s*127\.0\.0\.1:\d+`), func([]string) string { return "http: 127.0.0.1:" + strconv.Itoa(n.HTTPPort) }); err != nil {
		return err
	}
	if err := replace("store_dir", regexp.MustCompile(`store_dir:\s*"[^"]*"`), func([]string) string { return `store_dir: "` + filepath.Join(dir, "store") + `"` }); err != nil {
		return err
	}
	if err := replace("cluster listen", regexp.MustCompile(`(?m)^(\s+)listen:\s*127\.0\.0\.1:\d+`), func(m []string) string {
		return m[1] + "listen: 127.0.0.1:" + strconv.Itoa(n.ClusterPort) + "\n" + m[1] + "no_advertise: true\n" + m[1] + `advertise: "127.0.0.1:1"`
	}); err != nil {
		return err
	}
	portToNode := map[string]int{}
	for j := range c.Nodes {
		portToNode[strconv.Itoa(6222+j)] = j
	}
	var routeErr error
	if err := replace("routes", regexp.MustCompile(`(nats-route://[^@\s]+@)127\.0\.0\.1:(\d+)`), func(m []string) string {
		j, ok := portToNode[m[2]]
		if !ok || j == i {
			routeErr = fmt.Errorf("chaos: %s: route to port %s is no other node of the cluster", name, m[2])
			return m[0]
		}
		if c.opt.Direct {
			return m[1] + "127.0.0.1:" + strconv.Itoa(c.Nodes[j].ClusterPort)
		}
		return m[1] + c.route[i][j].Addr()
	}); err != nil {
		return err
	}
	if routeErr != nil {
		return routeErr
	}
	if c.opt.DefaultSync {
		if err := replace("sync_interval", regexp.MustCompile(`(?m)^\s*sync_interval:\s*always\s*$`), func([]string) string {
			return "  # sync_interval: JetStream's default (chaos run without sync always)"
		}); err != nil {
			return err
		}
	}
	n.conf = filepath.Join(dir, name)
	if err := os.WriteFile(n.conf, []byte(s), 0o600); err != nil {
		return err
	}
	if out, err := c.natsCmd(context.Background(), "-t", "-c", n.conf).CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: %s does not load: %v\n%s", n.conf, err, out)
	}
	return nil
}

func (c *Cluster) natsCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.opt.Bins.NATSServer, args...)
	cmd.Env = append(os.Environ(), c.env...)
	return cmd
}

// Start starts every node, waits for JetStream, then starts every nird and waits until each
// is ready. When a process cannot bind a port another process took after NewCluster found
// it free, it starts the cluster again, on new ports and from empty stores.
func (c *Cluster) Start(ctx context.Context) error {
	return freeport.Retry(func(attempt int) error {
		if attempt > 1 {
			c.log.Warn("a port was taken meanwhile; starting the cluster again on others", "attempt", attempt)
			if err := c.place(); err != nil {
				return err
			}
		}
		err := c.start(ctx)
		if freeport.Taken(err) {
			c.discard()
		}
		return err
	})
}

// discard stops the cluster (Close) and removes the nodes' stores and the nird's data, so
// that place can place it again.
func (c *Cluster) discard() {
	c.Close()
	for _, n := range c.Nodes {
		_ = os.RemoveAll(filepath.Join(c.opt.Dir, n.Name, "store"))
	}
	for _, n := range c.Nirds {
		_ = os.RemoveAll(filepath.Join(c.opt.Dir, n.Name, "data"))
	}
}

// start is one attempt of Start.
func (c *Cluster) start(ctx context.Context) error {
	for i := range c.Nodes {
		if err := c.StartNode(i); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if err := c.waitNode(ctx, n); err != nil {
			return err
		}
	}
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.ClientURL())
	}
	// The harness's own connection: straight to the nodes, as nird, for stream state and
	// the checker's replay. It reads only: the stream is created by the nird, as in a real
	// deployment (with the person key's fingerprint in its metadata, by whichever of them
	// comes first). Until then a read-only open that finds no stream says JetStream is up.
	cfg := eventstore.Config{
		URL: strings.Join(urls, ","), Replicas: min(3, len(c.Nodes)), RequestTimeout: 3 * time.Second,
		NATSOptions: []nats.Option{nats.UserInfo("nird", c.pass["nird"]), nats.Name("chaos-admin")},
		ReadOnly:    true,
	}
	if err := c.openAdmin(ctx, cfg, true); err != nil {
		return err
	}
	for k := range c.Nirds {
		if err := c.StartNird(k); err != nil {
			return err
		}
	}
	for k := range c.Nirds {
		if err := c.WaitReady(ctx, k, 60*time.Second); err != nil {
			return err
		}
	}
	if c.admin == nil {
		// The nird have made the stream by now, and the harness opens it read-only; a
		// cluster without nird (the replica tests) gets its stream from the harness.
		cfg.ReadOnly = len(c.Nirds) > 0
		return c.openAdmin(ctx, cfg, false)
	}
	return nil
}

// openAdmin opens the harness's read-only store, trying for a minute while the cluster's
// JetStream comes up. With upOnly, a stream that does not exist yet (ErrInvalid from a
// read-only open) ends the wait too, with c.admin left nil.
func (c *Cluster) openAdmin(ctx context.Context, cfg eventstore.Config, upOnly bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := eventstore.Open(octx, cfg)
		cancel()
		if err == nil {
			c.admin = st
			return nil
		}
		if upOnly && errors.Is(err, eventstore.ErrInvalid) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("chaos: the cluster's JetStream did not come up: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Admin is the harness's store on the cluster: read-only when nird run on it.
func (c *Cluster) Admin() *eventstore.Store { return c.admin }

// waitNode waits until node n has bound its ports (a connection to its client port alone
// could reach another process that took the port).
func (c *Cluster) waitNode(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := freeport.WaitLog(ctx, n.proc.log, nodeReady, n.proc.done); err != nil {
		return fmt.Errorf("chaos: %s %w", n.Name, err)
	}
	return nil
}

// StartNode starts node i (again, after a kill).
func (c *Cluster) StartNode(i int) error {
	n := c.Nodes[i]
	if n.proc != nil && !n.proc.exited() {
		return fmt.Errorf("chaos: %s is running", n.Name)
	}
	p, err := startProc(filepath.Join(c.opt.Dir, n.Name, "log"), c.natsCmd(context.Background(), "-c", n.conf))
	if err != nil {
		return fmt.Errorf("chaos: start %s: %w", n.Name, err)
	}
	n.proc = p
	return nil
}

// StartNird starts nird k (again, after a kill) with its clock offset.
func (c *Cluster) StartNird(k int) error {
	n := c.Nirds[k]
	if n.proc != nil && !n.proc.exited() {
		return fmt.Errorf("chaos: %s is running", n.Name)
	}
	cmd := exec.Command(c.opt.Bins.Nird, n.args...)
	cmd.Env = os.Environ()
	if n.ClockOffset != 0 {
		cmd.Env = append(cmd.Env, "NIR_TEST_CLOCK_OFFSET="+n.ClockOffset.String())
	}
	p, err := startProc(filepath.Join(c.opt.Dir, n.Name, "log"), cmd)
	if err != nil {
		return fmt.Errorf("chaos: start %s: %w", n.Name, err)
	}
	n.proc = p
	return nil
}

// startProc starts cmd with its output appended to logPath.
func startProc(logPath string, cmd *exec.Cmd) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "==== %s start\n", time.Now().UTC().Format(time.RFC3339Nano))
	from, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		f.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	// The processes die with the harness, even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), logPath: logPath, logFrom: from}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig; for SIGKILL it waits for the process to be gone.
func (p *proc) signal(sig syscall.Signal) error {
	if p == nil || p.exited() {
		return errors.New("not running")
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	return nil
}

// SignalNode sends sig to node i (SIGKILL waits for it to die).
func (c *Cluster) SignalNode(i int, sig syscall.Signal) error { return c.Nodes[i].proc.signal(sig) }

// SignalNird sends sig to nird k (SIGKILL and SIGTERM wait for it to exit).
func (c *Cluster) SignalNird(k int, sig syscall.Signal) error { return c.Nirds[k].proc.signal(sig) }

// NodeRunning and NirdRunning say whether the process is up (it may be paused).
func (c *Cluster) NodeRunning(i int) bool {
	return c.Nodes[i].proc != nil && !c.Nodes[i].proc.exited()
}

func (c *Cluster) NirdRunning(k int) bool {
	return c.Nirds[k].proc != nil && !c.Nirds[k].proc.exited()
}

// IsolateNode cuts node i from every other node (both directions): hold or reset.
func (c *Cluster) IsolateNode(i int, reset bool) {
	for j := range c.Nodes {
		if j != i {
			apply(c.route[i][j], reset)
			apply(c.route[j][i], reset)
		}
	}
}

// IsolateNird cuts nird k from every node.
func (c *Cluster) IsolateNird(k int, reset bool) {
	for _, p := range c.client[k] {
		apply(p, reset)
	}
}

func apply(p *Proxy, reset bool) {
	if reset {
		p.Reset()
	} else {
		p.Hold()
	}
}

// Heal restores every link.
func (c *Cluster) Heal() {
	for _, row := range c.route {
		for _, p := range row {
			if p != nil {
				p.Heal()
			}
		}
	}
	for _, row := range c.client {
		for _, p := range row {
			p.Heal()
		}
	}
}

// WaitReady waits until nird k answers /readyz.
func (c *Cluster) WaitReady(ctx context.Context, k int, timeout time.Duration) error {
	n := c.Nirds[k]
	if err := waitNird(ctx, n.proc, n.Admin, timeout); err != nil {
		return fmt.Errorf("chaos: %s %w", n.Name, err)
	}
	return nil
}

// waitNird waits until the nird p answers /readyz on its admin address, from when it has
// logged nirdStarted: an answer before could come from another process that took the port.
func waitNird(ctx context.Context, p *proc, admin string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := freeport.WaitLog(ctx, p.log, nirdStarted, p.done); err != nil {
		return fmt.Errorf("%w (see %s)", err, p.logPath)
	}
	for {
		if p.exited() {
			return fmt.Errorf("exited (see %s)%s", p.logPath, logTail(p.logPath))
		}
		if err := get(ctx, "http://"+admin+"/readyz", nil); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready within %v", timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Metrics scrapes nird k's /metrics.
func (c *Cluster) Metrics(ctx context.Context, k int) (string, error) {
	var body []byte
	err := get(ctx, "http://"+c.Nirds[k].Admin+"/metrics", &body)
	return string(body), err
}

func get(ctx context.Context, url string, body *[]byte) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, res.StatusCode)
	}
	if body != nil {
		*body = b
	}
	return nil
}

// Rebuild has an operator rebuild nird k's read models (AdminService.Rebuild) within timeout,
// and returns through which sequence the rebuild took the live file's events (0: it read the
// whole stream).
func (c *Cluster) Rebuild(ctx context.Context, k int, timeout time.Duration) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, c.Nirds[k].URL(), connect.WithInterceptors(auth.BearerInterceptor(c.OperatorToken)))
	stream, err := admin.Rebuild(ctx, connect.NewRequest(&nirv1.RebuildRequest{}))
	if err != nil {
		return 0, err
	}
	defer stream.Close()
	var through uint64
	for stream.Receive() {
		through = max(through, stream.Msg().GetProgress().GetFromFileThrough())
		if stream.Msg().GetFinished() {
			return through, nil
		}
	}
	if err := stream.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("the rebuild's stream ended before it finished")
}

// MasterKeyFile is the master key every nird of the cluster is given.
func (c *Cluster) MasterKeyFile() string { return filepath.Join(c.opt.Dir, "master.key") }

// Close stops every process (SIGKILL: nothing of a chaos run needs a clean shutdown) and
// every proxy. It is safe to call more than once.
func (c *Cluster) Close() {
	if c.admin != nil {
		c.admin.Close()
		c.admin = nil
	}
	var wg sync.WaitGroup
	for _, n := range c.Nirds {
		if n.proc != nil && !n.proc.exited() {
			wg.Go(func() { _ = n.proc.cmd.Process.Signal(syscall.SIGCONT); _ = n.proc.signal(syscall.SIGKILL) })
		}
	}
	for _, n := range c.Nodes {
		if n.proc != nil && !n.proc.exited() {
			wg.Go(func() { _ = n.proc.cmd.Process.Signal(syscall.SIGCONT); _ = n.proc.signal(syscall.SIGKILL) })
		}
	}
	wg.Wait()
	for _, row := range c.route {
		for _, p := range row {
			if p != nil {
				p.Close()
			}
		}
	}
	for _, row := range c.client {
		for _, p := range row {
			p.Close()
		}
	}
	c.route, c.client = nil, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// logTail is the last lines of a process's log, for an error that would otherwise point to a
// file the test removes.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return ":\n" + strings.Join(lines[max(0, len(lines)-8):], "\n")
}
