package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/introreg/nir/eventstore"
)

// ClusterConfig is what lets several nird share one stream: the regelmotor's lease,
// read-your-writes, and the clock.
type ClusterConfig struct {
	// LeaseTTL is the regelmotor lease's term.
	LeaseTTL time.Duration
	// RegelmotorInterval is the time between the regelmotor's passes.
	RegelmotorInterval time.Duration
	// MinSequenceWait bounds a query's wait for its min_sequence.
	MinSequenceWait time.Duration
	// ClockOffset shifts nird's wall clock (recorded_at, the register's "today"): for fault
	// injection tests only, from NIR_TEST_CLOCK_OFFSET, never a flag.
	ClockOffset time.Duration
}

// envClockOffset is the test-only variable that skews nird's wall clock.
const envClockOffset = "NIR_TEST_CLOCK_OFFSET"

// streamCheckInterval is how often nird re-reads the stream's configuration and state.
const streamCheckInterval = 30 * time.Second

// clock returns nird's wall clock: time.Now, shifted in a fault-injection test. Monotonic
// timers (timeouts, the lease's term) are not affected.
func (c ClusterConfig) clock() func() time.Time {
	if c.ClockOffset == 0 {
		return time.Now
	}
	return func() time.Time { return time.Now().Add(c.ClockOffset) }
}

// leaseHolder names this process in the lease bucket: host and pid (the pod's name on
// Kubernetes).
func leaseHolder() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// streamWatch re-reads the stream's configuration and state every streamCheckInterval for
// the metrics, and logs when the set of mismatched settings changes: nird never changes the
// stream itself (an operator runs nird --repair-stream).
type streamWatch struct {
	store *eventstore.Store
	log   *slog.Logger

	// mu guards last, ok and reported.
	mu       sync.Mutex
	last     eventstore.StreamCheck
	ok       bool // last is from a successful check
	reported string
}

func (w *streamWatch) Run(ctx context.Context) error {
	for {
		w.check(ctx)
		t := time.NewTimer(streamCheckInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (w *streamWatch) check(ctx context.Context) {
	c, err := w.store.CheckStream(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("stream check failed", "err", err)
		}
		w.ok = false
		return
	}
	w.last, w.ok = c, true
	var parts []string
	for _, m := range c.Mismatches {
		parts = append(parts, m.String())
	}
	now := strings.Join(parts, "; ")
	switch {
	case now == w.reported:
	case now == "":
		w.log.Info("stream settings are as the register needs them again")
	default:
		w.log.Error("stream settings differ from what the register depends on; run nird --repair-stream to put them back", "mismatches", now)
	}
	w.reported = now
}

func (w *streamWatch) snapshot() (eventstore.StreamCheck, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.ok
}

// settingNames are the stream settings a mismatch can name, so that the metric has a
// series (0) for each even when all is well, and an alert can tell one from another.
var settingNames = []string{"subjects", "discard", "max_age", "max_msgs_per_subject", "duplicate_window", "replicas",
	"allow_direct", "allow_atomic", "deny_delete", "deny_purge", "no_ack", "allow_rollup_hdrs", "allow_msg_ttl",
	"allow_msg_schedules", "allow_msg_counter", "persist_mode", "republish", "sources", "subject_transform"}

// clusterCollector exports the stream watch, the regelmotor lease and the data directory's
// file system.
type clusterCollector struct {
	watch *streamWatch
	lease *eventstore.Lease
	data  string

	mismatch, messages, bytes, replicas, current, checkOK *prometheus.Desc
	held, acquired, lost, remade, ttl                     *prometheus.Desc
	free, size                                            *prometheus.Desc
}

func newClusterCollector(w *streamWatch, l *eventstore.Lease, dataDir string) *clusterCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &clusterCollector{
		watch: w, lease: l, data: dataDir,
		mismatch: d("nir_stream_config_mismatch", "1 when the stream setting differs from what the register depends on (nird --repair-stream puts it back).", "setting"),
		messages: d("nir_stream_messages", "Messages in the stream NIR_EVENTS."),
		bytes:    d("nir_stream_bytes", "Bytes the stream NIR_EVENTS stores (per replica)."),
		replicas: d("nir_stream_replicas", "The stream's replica count."),
		current:  d("nir_stream_replicas_current", "The stream's leader and followers that are current."),
		checkOK:  d("nir_stream_check_ok", "1 when the last periodic read of the stream's configuration succeeded."),
		held:     d("nir_regelmotor_lease_held", "1 while this nird holds the regelmotor's lease and runs it."),
		acquired: d("nir_regelmotor_lease_acquired_total", "Times this nird took the regelmotor's lease."),
		lost:     d("nir_regelmotor_lease_lost_total", "Times this nird lost the regelmotor's lease without giving it up."),
		remade:   d("nir_regelmotor_lease_bucket_remade_total", "Times this nird found the regelmotor lease's record damaged on disk and made the lease bucket again."),
		ttl:      d("nir_regelmotor_lease_ttl_seconds", "The regelmotor lease's term."),
		free:     d("nir_data_free_bytes", "Bytes free to nird on its data directory's file system."),
		size:     d("nir_data_capacity_bytes", "Size of nird's data directory's file system."),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.mismatch, c.messages, c.bytes, c.replicas, c.current, c.checkOK, c.held, c.acquired, c.lost, c.remade, c.ttl, c.free, c.size} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	check, ok := c.watch.snapshot()
	gauge(c.checkOK, b(ok))
	bad := map[string]bool{}
	for _, m := range check.Mismatches {
		bad[m.Setting] = true
	}
	for _, s := range settingNames {
		gauge(c.mismatch, b(bad[s]), s)
	}
	if ok {
		gauge(c.messages, float64(check.Messages))
		gauge(c.bytes, float64(check.Bytes))
		gauge(c.replicas, float64(check.Replicas))
		gauge(c.current, float64(check.CurrentReplicas))
	}
	ls := c.lease.Stats()
	gauge(c.held, b(ls.Held))
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.CounterValue, float64(ls.Acquired))
	ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(ls.Lost))
	ch <- prometheus.MustNewConstMetric(c.remade, prometheus.CounterValue, float64(ls.Remade))
	gauge(c.ttl, ls.TTL.Seconds())
	var fs syscall.Statfs_t
	if err := syscall.Statfs(c.data, &fs); err == nil {
		gauge(c.free, float64(fs.Bavail)*float64(fs.Bsize))
		gauge(c.size, float64(fs.Blocks)*float64(fs.Bsize))
	}
}

// repairStream is nird --repair-stream: open the store as nird would, put back the stream
// settings the register depends on, say what changed, and exit.
func repairStream(ctx context.Context, cfg Config, stdout io.Writer, log *slog.Logger) error {
	if cfg.NATSURL == "" {
		unlock, err := lockData(cfg.Data)
		if err != nil {
			return err
		}
		defer unlock()
	}
	opts, err := natsOptions(cfg)
	if err != nil {
		return err
	}
	store, err := eventstore.Open(ctx, eventstore.Config{
		Dir: filepath.Join(cfg.Data, "jetstream"), URL: cfg.NATSURL, Listen: cfg.NATSListen,
		Replicas: cfg.Replicas, Logger: log, NATSOptions: opts,
	})
	if err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	defer store.Close()
	fixed, err := store.RepairStream(ctx)
	if err != nil {
		return err
	}
	if len(fixed) == 0 {
		fmt.Fprintln(stdout, "stream NIR_EVENTS: every setting is as the register needs it; nothing changed")
		return nil
	}
	for _, m := range fixed {
		fmt.Fprintf(stdout, "stream NIR_EVENTS: %s: %s → %s\n", m.Setting, m.Have, m.Want)
	}
	return nil
}
