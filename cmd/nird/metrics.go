package main

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/buildinfo"
	"github.com/introreg/nir/internal/edge"
	"github.com/introreg/nir/internal/ingest"
)

// metrics are nird's Prometheus metrics. Labels never hold person data: procedures, result
// codes and rule codes only.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec   // procedure, code
	latency    *prometheus.HistogramVec // procedure
	appended   *prometheus.CounterVec   // transport, role
	duplicates *prometheus.CounterVec   // transport, role
	conflicts  *prometheus.CounterVec   // transport, role
	refusals   *prometheus.CounterVec   // rule code, transport, role
	withheld   *prometheus.CounterVec   // transport, role
	foldFaults *prometheus.CounterVec   // transport, role
	panics     *prometheus.CounterVec   // transport
	// connsEvicted counts connections closed at a listener's cap to admit a new client.
	connsEvicted *prometheus.CounterVec // address
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nir_api_requests_total", Help: "API requests by procedure and result code.",
		}, []string{"procedure", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nir_api_request_duration_seconds", Help: "API request latency by procedure.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"procedure"}),
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nir_appended_events_total", Help: "Events stored (resends already stored not counted), by transport (http, nats, console, internal) and role.",
		}, []string{"transport", "role"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nir_append_duplicates_total", Help: "Resent events found already stored and answered with their position, by transport and role.",
		}, []string{"transport", "role"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nir_append_conflicts_total", Help: "Appends refused because the person changed since the expected sequence, by transport and role.",
		}, []string{"transport", "role"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nir_rule_refusals_total", Help: "Registrations refused by the regelmotor, by rule code, transport and role.",
		}, []string{"rule", "transport", "role"}),
		withheld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nir_refusals_unconfirmed_total", Help: "Refusals judged on the stream's history not given, because the stream leader could not be confirmed, or its counts of the subjects read never matched what the reads saw (answered Unavailable), by transport and role.",
		}, []string{"transport", "role"}),
		foldFaults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nir_append_fold_faults_total", Help: "Requests not stored because the rules panicked folding one of their events (a bug in nird, answered Internal), by transport and role.",
		}, []string{"transport", "role"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nir_panics_recovered_total", Help: "Requests whose serving panicked (a bug), each answered Internal while nird went on, by transport (http, nats).",
		}, []string{"transport"}),
		connsEvicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nir_conns_closed_at_cap_total", Help: "Connections carrying no request (idle, or yet to send one) closed to admit a new client while the address held its most connections, by address (http: --max-conns; admin).",
		}, []string{"address"}),
	}
	m.connsEvicted.WithLabelValues("http")
	m.connsEvicted.WithLabelValues("admin")
	// Every series of the fold faults exists from the start, at 0, so that the alert on
	// them (NirAppendFoldFaults) sees the first one: a bug may never happen twice.
	for _, t := range []ingest.Transport{ingest.TransportHTTP, ingest.TransportNATS, ingest.TransportConsole, ingest.TransportInternal} {
		for _, role := range []auth.Role{auth.RoleKommune, auth.RoleOperator, auth.RoleSystem} {
			m.foldFaults.WithLabelValues(string(t), string(role))
		}
	}
	bi := buildinfo.Read()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "nir_build_info", Help: "Always 1; the labels say which build of nird runs.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
	})
	build.Set(1)
	m.reg.MustRegister(m.requests, m.latency, m.appended, m.duplicates, m.conflicts, m.refusals, m.withheld, m.foldFaults, m.panics, m.connsEvicted, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// interceptor observes every unary API call.
func (m *metrics) interceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			res, err := next(ctx, req)
			proc := req.Spec().Procedure
			m.latency.WithLabelValues(proc).Observe(time.Since(start).Seconds())
			code := "ok"
			if err != nil {
				code = connect.CodeOf(err).String()
			}
			m.requests.WithLabelValues(proc, code).Inc()
			return res, err
		}
	}
}

// Appended, Refused, Conflict, Unconfirmed and FoldFault implement ingest.Observer: appends are counted
// on the append path itself, whichever way they came (API, NATS ingress, console,
// regelmotor).
func (m *metrics) Appended(t ingest.Transport, role string, stored, duplicates int) {
	m.appended.WithLabelValues(string(t), role).Add(float64(stored))
	m.duplicates.WithLabelValues(string(t), role).Add(float64(duplicates))
}

func (m *metrics) Refused(t ingest.Transport, role, rule string) {
	m.refusals.WithLabelValues(rule, string(t), role).Inc()
}

func (m *metrics) Conflict(t ingest.Transport, role string) {
	m.conflicts.WithLabelValues(string(t), role).Inc()
}

func (m *metrics) Unconfirmed(t ingest.Transport, role string) {
	m.withheld.WithLabelValues(string(t), role).Inc()
}

func (m *metrics) FoldFault(t ingest.Transport, role string) {
	m.foldFaults.WithLabelValues(string(t), role).Inc()
}

// adminHandler serves /metrics, /healthz, /readyz and, with withPprof (nird gives it on a
// loopback admin address only), /debug/pprof. The profiles are there but not
// /debug/pprof/cmdline: nird's command line may hold --nats-password.
func adminHandler(m *metrics, ready func(ctx context.Context) error, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if !withPprof {
		return mux
	}
	mux.HandleFunc("/debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/pprof/cmdline" {
			http.NotFound(w, r)
			return
		}
		pprof.Index(w, r)
	})
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// storeCollector exports the event store's group commit counters when scraped.
type storeCollector struct {
	s                                                          *eventstore.Store
	appends, events, duplicates, conflicts, plain, republished *prometheus.Desc
	refused                                                    *prometheus.Desc
	streamed, batchSize, quarantined                           *prometheus.Desc
	leaderFills, missing                                       *prometheus.Desc
}

func newStoreCollector(s *eventstore.Store) *storeCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &storeCollector{
		s:           s,
		appends:     d("nir_store_appends_total", "Append calls to the event store (one API request may be one call for many events)."),
		events:      d("nir_store_events_total", "Events newly stored (retried duplicates not counted)."),
		duplicates:  d("nir_store_duplicates_total", "Events found already stored (idempotent retries)."),
		conflicts:   d("nir_store_conflicts_total", "Append calls refused because a person's last sequence was not the expected one."),
		plain:       d("nir_store_plain_publishes_total", "Events stored by a plain publish instead of an atomic batch."),
		republished: d("nir_store_batches_resent_total", "Atomic batches sent again without a member whose check failed."),
		refused:     d("nir_store_batches_refused_total", "Coalesced atomic batches the server refused whole: a member's check failed, or it held one of their event ids."),
		streamed:    d("nir_store_streamed_events_total", "Events sent to the server while their batch was still forming."),
		batchSize:   d("nir_store_batch_events", "Events per committed atomic batch (group commit)."),
		quarantined: d("nir_store_quarantined_reads_total", "Quarantined messages (not usable events) left out of a person's history when it was read."),
		leaderFills: d("nir_store_replay_leader_fills_total", "Stream sequences a replay took from the stream leader because the replicas answering it skipped them or lagged."),
		missing:     d("nir_store_replay_missing_total", "Stream sequences a replay found missing from the stream leader's store and delivered as quarantined: damage to look into."),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.appends, c.events, c.duplicates, c.conflicts, c.plain, c.republished, c.refused, c.streamed, c.batchSize, c.quarantined, c.leaderFills, c.missing} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{c.appends, st.Appends}, {c.events, st.Events}, {c.duplicates, st.Duplicates}, {c.conflicts, st.Conflicts}, {c.plain, st.PlainPublishes}, {c.republished, st.Republishes}, {c.refused, st.RefusedBatches}, {c.streamed, st.Streamed}, {c.quarantined, st.Quarantined}, {c.leaderFills, st.LeaderFills}, {c.missing, st.Missing}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
	// BatchSizes bucket i holds sizes in (2^(i-1), 2^i]; the last one everything larger.
	buckets := map[float64]uint64{}
	var cum uint64
	for i, n := range st.BatchSizes[:len(st.BatchSizes)-1] {
		cum += n
		buckets[float64(uint64(1)<<i)] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.batchSize, st.Batches, float64(st.BatchEvents), buckets)
}

// guardCollector exports the guard's decisions, over HTTP and NATS alike: its log holds a
// bounded share of the refusals (auth.RefusalLogBurst), the metric all of them.
type guardCollector struct {
	g *auth.Guard
	d *prometheus.Desc
}

func newGuardCollector(g *auth.Guard) *guardCollector {
	return &guardCollector{g: g, d: prometheus.NewDesc("nir_auth_requests_total", "Requests the guard decided on, over HTTP and NATS: allowed, unauthenticated (no token or an unknown one), denied (the policy or the token's NATS user).", []string{"result"}, nil)}
}

func (c *guardCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.d }

func (c *guardCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.Stats()
	for result, v := range map[string]uint64{"allowed": st.Allowed, "unauthenticated": st.Unauthenticated, "denied": st.Denied} {
		ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(v), result)
	}
}

// edgeCollector exports the API edge's refusals and load, and the CSV exports refused for
// their own limits, when scraped.
type edgeCollector struct {
	e                             *edge.Edge
	q                             *api.Query
	refused, inflight, bodyMemory *prometheus.Desc
}

func newEdgeCollector(e *edge.Edge, q *api.Query) *edgeCollector {
	return &edgeCollector{
		e:          e,
		q:          q,
		refused:    prometheus.NewDesc("nir_api_refused_total", "API requests refused by a limit: before their body was read, rate (a principal's --rate-limit), principal_inflight, inflight, public_inflight (requests without a token), body_memory (--max-body-memory, HTTP and NATS bodies alike); CSV exports, exports_per_principal (--max-exports-per-principal) and export_disk (--max-export-disk); statistics_per_principal (a principal's Statistics calls in flight).", []string{"limit"}, nil),
		inflight:   prometheus.NewDesc("nir_api_inflight_requests", "API requests being served, with and without a token.", nil, nil),
		bodyMemory: prometheus.NewDesc("nir_api_body_memory_bytes", "Bytes of large request bodies (HTTP and NATS) drawn from --max-body-memory.", nil, nil),
	}
}

func (c *edgeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.refused
	ch <- c.inflight
	ch <- c.bodyMemory
}

func (c *edgeCollector) Collect(ch chan<- prometheus.Metric) {
	st, ex := c.e.Stats(), c.q.Refusals()
	for limit, v := range map[string]uint64{"rate": st.RefusedRate, "principal_inflight": st.RefusedPrincipalInflight, "inflight": st.RefusedInflight, "public_inflight": st.RefusedPublicInflight, "body_memory": st.RefusedBodyMemory,
		"exports_per_principal": ex.ExportsPerPrincipal, "export_disk": ex.ExportDisk, "statistics_per_principal": ex.StatisticsPerPrincipal} {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(v), limit)
	}
	ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(st.Inflight))
	ch <- prometheus.MustNewConstMetric(c.bodyMemory, prometheus.GaugeValue, float64(st.BodyMemory))
}
