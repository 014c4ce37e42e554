package chaos

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Fault kinds the nemesis injects.
const (
	KillNode        = "kill-node"         // SIGKILL a NATS node, restart it
	KillLeader      = "kill-leader"       // SIGKILL the stream leader's node, restart it
	KillNird        = "kill-nird"         // SIGKILL a nird, restart it
	KillLeaseHolder = "kill-lease-holder" // SIGKILL the nird running the regelmotor, restart it
	PauseNode       = "pause-node"        // SIGSTOP a NATS node, SIGCONT
	PauseNird       = "pause-nird"        // SIGSTOP the lease holder past its term, SIGCONT
	PartitionNode   = "partition-node"    // hold every route of one node (packets dropped)
	ResetNode       = "reset-node"        // close every route of one node and refuse new ones
	IsolateNird     = "isolate-nird"      // hold every connection of one nird to NATS
	ResetNird       = "reset-nird"        // close them and refuse new ones
	ClockSkew       = "clock-skew"        // restart a nird with its wall clock shifted
	RebuildNird     = "rebuild-nird"      // an operator rebuilds a nird's read models
)

// AllFaults are every kind, in the order a short run goes through them.
var AllFaults = []string{KillLeader, PartitionNode, KillLeaseHolder, IsolateNird, PauseNode, KillNird, ClockSkew, RebuildNird, ResetNode, PauseNird, KillNode, ResetNird}

// Fault is one injected fault in the history.
type Fault struct {
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Note   string    `json:"note,omitempty"`
	// Takeover is how long another nird took to hold the regelmotor lease after its
	// holder was killed or paused (kill-lease-holder, pause-nird).
	Takeover time.Duration `json:"takeover,omitempty"`
	Err      string        `json:"err,omitempty"`
}

// Nemesis injects faults into a cluster one at a time.
type Nemesis struct {
	c     *Cluster
	kinds []string
	r     *rand.Rand
	// Hold bounds how long a fault lasts (uniformly between Hold/2 and Hold).
	Hold time.Duration
	log  func(msg string, args ...any)

	// sizes sample each node's store for PowerLoss, from started on.
	sizes   []*sizeLog
	started time.Time

	// mu guards faults.
	mu     sync.Mutex
	faults []Fault
}

// NewNemesis injects faults of the given kinds, in a seeded random order that goes through
// every kind before repeating one.
func NewNemesis(c *Cluster, kinds []string, seed uint64) *Nemesis {
	return &Nemesis{c: c, kinds: kinds, r: rand.New(rand.NewPCG(seed, 7)), Hold: 6 * time.Second, log: func(string, ...any) {}}
}

// Faults returns the faults injected so far.
func (n *Nemesis) Faults() []Fault {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Fault(nil), n.faults...)
}

// Run injects faults until ctx is done, then heals everything: links restored, paused
// processes continued, killed ones restarted.
func (n *Nemesis) Run(ctx context.Context) {
	if slices.Contains(n.kinds, PowerLoss) || slices.Contains(n.kinds, PowerLossAll) {
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		n.started = time.Now()
		for i := range n.c.Nodes {
			l := &sizeLog{dir: filepath.Join(n.c.opt.Dir, n.c.Nodes[i].Name, "store")}
			n.sizes = append(n.sizes, l)
			go l.run(sctx)
		}
	}
	var order []string
	for ctx.Err() == nil {
		if len(order) == 0 {
			order = append([]string(nil), n.kinds...)
			n.r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			// The first round goes in the given order, so a short run covers the kinds that
			// matter most first.
			if len(n.faults) == 0 {
				copy(order, n.kinds)
			}
		}
		kind := order[0]
		order = order[1:]
		f := n.inject(ctx, kind)
		n.mu.Lock()
		n.faults = append(n.faults, f)
		n.mu.Unlock()
		n.log("fault", "kind", f.Kind, "target", f.Target, "for", f.End.Sub(f.Start).Round(time.Millisecond), "note", f.Note, "err", f.Err)
		// Let the cluster settle a little between faults.
		sleep(ctx, time.Duration(1000+n.r.IntN(1500))*time.Millisecond)
	}
	n.HealAll()
}

// Covered tells whether every kind has been injected at least once without an error.
func (n *Nemesis) Covered() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	done := map[string]bool{}
	for _, f := range n.faults {
		if f.Err == "" {
			done[f.Kind] = true
		}
	}
	for _, k := range n.kinds {
		if !done[k] {
			return false
		}
	}
	return true
}

// HealAll restores links, continues paused processes and restarts dead ones.
func (n *Nemesis) HealAll() {
	n.c.Heal()
	for i := range n.c.Nodes {
		if n.c.NodeRunning(i) {
			_ = n.c.SignalNode(i, syscall.SIGCONT)
		} else {
			_ = n.c.StartNode(i)
		}
	}
	for k := range n.c.Nirds {
		if n.c.NirdRunning(k) {
			_ = n.c.SignalNird(k, syscall.SIGCONT)
		} else {
			_ = n.c.StartNird(k)
		}
	}
}

func (n *Nemesis) hold() time.Duration {
	return n.Hold/2 + time.Duration(n.r.Int64N(int64(n.Hold/2)+1))
}

func (n *Nemesis) inject(ctx context.Context, kind string) Fault {
	f := Fault{Kind: kind, Start: time.Now()}
	fail := func(err error) Fault {
		f.Err, f.End = err.Error(), time.Now()
		return f
	}
	node := n.r.IntN(len(n.c.Nodes))
	nird := n.r.IntN(len(n.c.Nirds))
	switch kind {
	case KillNode, KillLeader:
		if kind == KillLeader {
			leader, err := n.leader(ctx)
			if err != nil {
				return fail(err)
			}
			node = leader
		}
		f.Target = n.c.Nodes[node].Name
		if err := n.c.SignalNode(node, syscall.SIGKILL); err != nil {
			return fail(err)
		}
		sleep(ctx, n.hold())
		if err := n.c.StartNode(node); err != nil {
			return fail(err)
		}
	case PowerLoss, PowerLossAll:
		if !n.c.opt.DefaultSync {
			return fail(fmt.Errorf("%s needs the nodes at JetStream's default sync_interval", kind))
		}
		nodes := []int{node}
		if kind == PowerLossAll {
			nodes = nodes[:0]
			for i := range n.c.Nodes {
				nodes = append(nodes, i)
			}
		}
		// The samplers need ten seconds of history.
		sleep(ctx, time.Until(n.started.Add(10*time.Second)))
		now := time.Now()
		var notes []string
		for _, i := range nodes {
			_ = n.c.SignalNode(i, syscall.SIGKILL)
		}
		for _, i := range nodes {
			// The writes of the last 1 to 10 seconds had not left the page cache.
			back := time.Duration(1000+n.r.IntN(9000)) * time.Millisecond
			dropped, err := n.sizes[i].cutBack(now.Add(-back))
			if err != nil {
				return fail(err)
			}
			notes = append(notes, fmt.Sprintf("%s lost its last %v of writes (%d bytes)", n.c.Nodes[i].Name, back.Round(time.Millisecond), dropped))
		}
		f.Target, f.Note = n.c.Nodes[node].Name, strings.Join(notes, "; ")
		if kind == PowerLossAll {
			f.Target = "all nodes"
		}
		sleep(ctx, n.hold()/2)
		for _, i := range nodes {
			if err := n.c.StartNode(i); err != nil {
				return fail(err)
			}
		}
	case PauseNode:
		f.Target = n.c.Nodes[node].Name
		if err := n.c.SignalNode(node, syscall.SIGSTOP); err != nil {
			return fail(err)
		}
		sleep(ctx, n.hold())
		if err := n.c.SignalNode(node, syscall.SIGCONT); err != nil {
			return fail(err)
		}
	case PartitionNode, ResetNode:
		f.Target = n.c.Nodes[node].Name
		n.c.IsolateNode(node, kind == ResetNode)
		sleep(ctx, n.hold())
		n.c.Heal()
	case IsolateNird, ResetNird:
		f.Target = n.c.Nirds[nird].Name
		n.c.IsolateNird(nird, kind == ResetNird)
		sleep(ctx, n.hold())
		n.c.Heal()
	case KillNird:
		f.Target = n.c.Nirds[nird].Name
		if err := n.c.SignalNird(nird, syscall.SIGKILL); err != nil {
			return fail(err)
		}
		sleep(ctx, n.hold()/2)
		if err := n.c.StartNird(nird); err != nil {
			return fail(err)
		}
	case KillLeaseHolder, PauseNird:
		// The bound is the lease's on a cluster that works: wait until the previous fault's
		// aftermath is over (a reset node re-syncing left the lease's bucket without a
		// quorum for seconds, and a takeover took 9 s with nothing to take over on).
		n.settle(ctx)
		f.Start = time.Now()
		holder, err := n.holder(ctx, -1)
		if err != nil {
			return fail(err)
		}
		f.Target = n.c.Nirds[holder].Name
		sig := syscall.SIGKILL
		if kind == PauseNird {
			sig = syscall.SIGSTOP
		}
		if err := n.c.SignalNird(holder, sig); err != nil {
			return fail(err)
		}
		start := time.Now()
		// Another nird must take the regelmotor over within the lease's bound, also when
		// the fault phase ends meanwhile.
		if next, err := n.holderWithin(context.WithoutCancel(ctx), holder, 4*n.c.opt.LeaseTTL); err != nil {
			f.Note = err.Error()
		} else {
			f.Takeover = time.Since(start)
			f.Note = "taken over by " + n.c.Nirds[next].Name
		}
		if kind == PauseNird {
			if err := n.c.SignalNird(holder, syscall.SIGCONT); err != nil {
				return fail(err)
			}
		} else if err := n.c.StartNird(holder); err != nil {
			return fail(err)
		}
	case ClockSkew:
		f.Target = n.c.Nirds[nird].Name
		// Minutes to hours either way: NTP gone wrong, not a different calendar.
		skew := time.Duration(1+n.r.IntN(120)) * time.Minute
		if n.r.IntN(2) == 0 {
			skew = -skew
		}
		f.Note = "clock offset " + skew.String()
		if err := n.c.SignalNird(nird, syscall.SIGTERM); err != nil {
			return fail(err)
		}
		n.c.Nirds[nird].ClockOffset = skew
		if err := n.c.StartNird(nird); err != nil {
			return fail(err)
		}
		sleep(ctx, n.hold()/2)
	case RebuildNird:
		// Not a fault of the machine but an operator's act while registrations go on: the
		// rebuild takes the live file's events through the last checkpoint and swaps the new
		// file in under the live runner; the run's end compares every nird's models with a
		// clean build.
		f.Target = n.c.Nirds[nird].Name
		through, err := n.c.Rebuild(ctx, nird, 4*n.Hold)
		if err != nil {
			return fail(err)
		}
		f.Note = "the whole stream read"
		if through > 0 {
			f.Note = fmt.Sprintf("events through seq %d from the live file", through)
		}
	default:
		return fail(fmt.Errorf("unknown fault %q", kind))
	}
	f.End = time.Now()
	return f
}

// leader returns the index of the stream leader's node.
func (n *Nemesis) leader(ctx context.Context) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		check, err := n.c.Admin().CheckStream(cctx)
		cancel()
		if err == nil && check.Leader != "" {
			for i, node := range n.c.Nodes {
				if node.Name == check.Leader {
					return i, nil
				}
			}
			return 0, fmt.Errorf("leader %q is no node of the cluster", check.Leader)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("no stream leader: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var leaseHeldRE = regexp.MustCompile(`(?m)^nir_regelmotor_lease_held 1$`)

// holder returns the nird holding the regelmotor lease (not except), waiting for one.
// settle waits, at most settleMax, until the event stream has a leader with every replica
// current and one nird has held the regelmotor's lease for a whole term (so its renewals,
// and the lease bucket, work).
func (n *Nemesis) settle(ctx context.Context) {
	deadline := time.Now().Add(settleMax)
	holder, since := -1, time.Time{}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		h, err := n.holderWithin(ctx, -1, 0)
		if err != nil || h != holder {
			holder, since = h, time.Now()
			if err != nil {
				holder = -1
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		check, err := n.c.Admin().CheckStream(cctx)
		cancel()
		if holder >= 0 && time.Since(since) >= n.c.opt.LeaseTTL && err == nil && check.Leader != "" && check.CurrentReplicas == check.Replicas {
			return
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// settleMax bounds settle.
const settleMax = 20 * time.Second

func (n *Nemesis) holder(ctx context.Context, except int) (int, error) {
	return n.holderWithin(ctx, except, 20*time.Second)
}

func (n *Nemesis) holderWithin(ctx context.Context, except int, bound time.Duration) (int, error) {
	deadline := time.Now().Add(bound)
	for {
		var held []int
		for k := range n.c.Nirds {
			if k == except || !n.c.NirdRunning(k) {
				continue
			}
			if m, err := n.c.Metrics(ctx, k); err == nil && leaseHeldRE.MatchString(m) {
				held = append(held, k)
			}
		}
		if len(held) > 0 {
			return held[0], nil
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("the fault phase ended before a nird held the regelmotor lease")
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no nird took the regelmotor lease within %v", bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// HoldersNow lists the nird whose metrics say they hold the lease.
func (c *Cluster) HoldersNow(ctx context.Context) []string {
	var out []string
	for k, nd := range c.Nirds {
		if m, err := c.Metrics(ctx, k); err == nil && leaseHeldRE.MatchString(m) {
			out = append(out, nd.Name)
		}
	}
	return out
}

// PowerLoss emulates losing a machine's power under JetStream's default sync_interval: the
// node is killed and every file of its store is cut back to its size of a few seconds
// before (new files emptied), as if the writes since then had never left the page cache.
// Only for a cluster running without sync_interval: always, where an acknowledged write
// may not yet be on disk; with always, what was acknowledged was fsynced and a power loss
// keeps it, which kill-node covers.
const PowerLoss = "power-loss"

// PowerLossAll is PowerLoss on every node at once, each losing its own few seconds: a
// data centre's power failing. Under sync_interval: always nothing acknowledged is lost that
// way; under JetStream's default it can be (Jepsen's NATS 2.12.1 analysis).
const PowerLossAll = "power-loss-all"

// sizeLog samples the sizes of a node's store files, to cut them back to an earlier moment.
type sizeLog struct {
	dir string
	// mu guards samples, oldest first.
	mu      sync.Mutex
	samples []sizeSample
}

type sizeSample struct {
	at    time.Time
	sizes map[string]int64
}

// run samples every 250ms, keeping the last 30 seconds, until ctx is done.
func (l *sizeLog) run(ctx context.Context) {
	for ctx.Err() == nil {
		s := sizeSample{at: time.Now(), sizes: map[string]int64{}}
		_ = filepath.WalkDir(l.dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					s.sizes[path] = info.Size()
				}
			}
			return nil
		})
		l.mu.Lock()
		l.samples = append(l.samples, s)
		for len(l.samples) > 0 && time.Since(l.samples[0].at) > 30*time.Second {
			l.samples = l.samples[1:]
		}
		l.mu.Unlock()
		sleep(ctx, 250*time.Millisecond)
	}
}

// cutBack truncates every file to its size at the sample nearest before at; a file that did
// not exist then is emptied. It returns how many bytes it dropped.
func (l *sizeLog) cutBack(at time.Time) (int64, error) {
	l.mu.Lock()
	var s *sizeSample
	for i := range l.samples {
		if !l.samples[i].at.After(at) {
			s = &l.samples[i]
		}
	}
	l.mu.Unlock()
	if s == nil {
		return 0, fmt.Errorf("no size sample before %v", at)
	}
	var dropped int64
	err := filepath.WalkDir(l.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if was := s.sizes[path]; info.Size() > was {
			dropped += info.Size() - was
			return os.Truncate(path, was)
		}
		return nil
	})
	return dropped, err
}
