package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// regelmotorActor is the principal the regelmotor appends computed terminations as
// (DOMAIN.md Product decisions 5).
var regelmotorActor = &nirv1.Actor{Subject: "regelmotor", Role: nirv1.ActorRole_ACTOR_ROLE_SYSTEM}

// computedAppender appends the regelmotor's computed terminations through the same append
// path as every registration. Their ids are deterministic, so a second worker or a restart
// appending the same termination gets the stored position back.
type computedAppender struct {
	svc *ingest.Service
	log *slog.Logger
}

var _ projections.Appender = computedAppender{}

func (a computedAppender) AppendComputed(ctx context.Context, events []*nirv1.Event) error {
	var failed error
	for _, ev := range events {
		reg := &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: ev.GetPersonKey()}, Event: ev}
		if _, err := a.svc.Append(ctx, access.System(regelmotorActor), []*nirv1.Registration{reg}); err != nil {
			// One person's refusal must not hold up the others; it is retried on the
			// next pass.
			a.log.WarnContext(ctx, "computed termination not appended", "event_id", ev.GetId(), "err", err)
			failed = fmt.Errorf("append computed termination %s: %w", ev.GetId(), err)
		}
	}
	return failed
}

// runRegelmotor runs the regelmotor (run) while this nird holds its lease, until ctx is done.
// While this nird's read models hold an event it cannot wholly read (a newer nird's kind or
// field, projections.ErrUnknownKinds), it gives the lease up and stands aside, so that a
// newer nird takes the regelmotor over: in a rolling upgrade the older nird would compute
// terminations from persons folded without that event, which a newer one might not compute.
// It contends again once the models no longer hold one (rebuilt by a build that reads it).
func runRegelmotor(ctx context.Context, lease *eventstore.Lease, proj *projections.Projector, log *slog.Logger, run func(context.Context) error) error {
	for {
		if seq := proj.Stats().FirstUnknownKind; seq != 0 {
			log.Warn("the regelmotor is left to a newer nird: this nird's read models hold an event of a kind or with fields it does not know, and would compute terminations without it; upgrade this nird",
				"stream_seq", seq)
			if !awaitUnknownKind(ctx, proj, false) {
				return nil
			}
			log.Info("the read models hold no event this nird cannot wholly read any more: the regelmotor may run here again")
		}
		lctx, leave := context.WithCancel(ctx)
		// Looked for between passes too: the lease is given up whether held or not.
		go func() {
			if awaitUnknownKind(lctx, proj, true) {
				leave()
			}
		}()
		err := lease.Run(lctx, func(ctx context.Context) error {
			err := run(ctx)
			if errors.Is(err, projections.ErrUnknownKinds) {
				leave()
			}
			return err
		})
		leave()
		if ctx.Err() != nil || err != nil {
			return err
		}
	}
}

// awaitUnknownKind waits, looking every second, until proj's live models hold an event this
// nird cannot wholly read (held true) or hold none (held false); false when ctx is done first.
func awaitUnknownKind(ctx context.Context, proj *projections.Projector, held bool) bool {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for (proj.Stats().FirstUnknownKind != 0) != held {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// projectionCollector exports the projector's Stats as Prometheus metrics when scraped.
type projectionCollector struct {
	p                                    *projections.Projector
	lag, checkpoint, applied, applySecs  *prometheus.Desc
	rebuilding, quarantined, quarantines *prometheus.Desc
	quarantinesAgain                     *prometheus.Desc
	unknownKinds                         *prometheus.Desc
	unserved, keptAside                  *prometheus.Desc
	passes, failedPasses, terminations   *prometheus.Desc
	lastPass                             *prometheus.Desc
}

func newProjectionCollector(p *projections.Projector) *projectionCollector {
	return &projectionCollector{
		p:          p,
		lag:        prometheus.NewDesc("nir_projection_lag_events", "Stream last sequence minus the read models' checkpoint.", nil, nil),
		checkpoint: prometheus.NewDesc("nir_projection_checkpoint", "Last stream sequence applied to the read models.", nil, nil),
		applied:    prometheus.NewDesc("nir_projection_applied_events_total", "Events applied to the read models.", nil, nil),
		applySecs:  prometheus.NewDesc("nir_projection_apply_seconds_total", "Time spent applying events to the read models.", nil, nil),
		rebuilding: prometheus.NewDesc("nir_projection_rebuilding", "1 while a rebuild runs.", nil, nil),
		unserved: prometheus.NewDesc("nir_projection_unserved",
			"1 while the live read models are not served (queries answer Unavailable) until a rebuild from the stream ends: they are damaged, or of another stream, or the stream no longer holds what they were built from.", nil, nil),
		keptAside: prometheus.NewDesc("nir_projection_files_kept_aside_total",
			"Live read-model files kept aside as models.db.damaged-* before a rebuild replaced them: damaged, or holding events the stream no longer has.", nil, nil),
		quarantined: prometheus.NewDesc("nir_projection_quarantined",
			"Stream messages the read models skip now because they are not usable events (listed by nirctl projections status); a gauge, as a retraction or a rebuild by a fixed nird can make an event usable again.", nil, nil),
		quarantines: prometheus.NewDesc("nir_projection_quarantines_total",
			"Stream messages the live read models quarantined since start that no earlier build of them had met (a foreign message that arrived, an event the rules now panic on), those folded again since included (a quarantine and its release between two scrapes leave nir_projection_quarantined as it was).", nil, nil),
		quarantinesAgain: prometheus.NewDesc("nir_projection_quarantines_found_again_total",
			"Stream messages quarantined since start that a new read-model file found again: a new pod's catch-up from the stream (up to its end at the start), a rebuild's that the file it replaced held too. Not for alerting: every start of a pod with an empty data directory counts the stream's old ones.", nil, nil),
		unknownKinds: prometheus.NewDesc("nir_projection_unknown_kind_events_total",
			"Events of a kind, or with fields, this nird does not know (a newer nird wrote them) that the live read models left out of their persons' states, as their file counts them (kept across restarts): upgrade this nird (it has left the regelmotor to a newer one).", nil, nil),
		passes:       prometheus.NewDesc("nir_regelmotor_passes_total", "Passes of the regelmotor worker (only while this nird holds its lease), failed or not.", nil, nil),
		failedPasses: prometheus.NewDesc("nir_regelmotor_failed_passes_total", "Passes of the regelmotor worker in which a computed termination was not appended (retried on the next pass).", nil, nil),
		terminations: prometheus.NewDesc("nir_regelmotor_terminations_appended_total", "Computed terminations handed to the append path by passes that did not fail (one already stored counts again until the read models have applied it).", nil, nil),
		lastPass:     prometheus.NewDesc("nir_regelmotor_last_pass_timestamp_seconds", "When this nird's regelmotor worker last ended a pass (Unix time; 0 before the first).", nil, nil),
	}
}

func (c *projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.checkpoint
	ch <- c.applied
	ch <- c.applySecs
	ch <- c.rebuilding
	ch <- c.quarantined
	ch <- c.quarantines
	ch <- c.quarantinesAgain
	ch <- c.unknownKinds
	ch <- c.unserved
	ch <- c.keptAside
	ch <- c.passes
	ch <- c.failedPasses
	ch <- c.terminations
	ch <- c.lastPass
}

func (c *projectionCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.Lag))
	ch <- prometheus.MustNewConstMetric(c.checkpoint, prometheus.GaugeValue, float64(s.Checkpoint))
	ch <- prometheus.MustNewConstMetric(c.applied, prometheus.CounterValue, float64(s.EventsApplied))
	ch <- prometheus.MustNewConstMetric(c.applySecs, prometheus.CounterValue, s.ApplySeconds)
	r := 0.0
	if s.Rebuilding {
		r = 1
	}
	ch <- prometheus.MustNewConstMetric(c.rebuilding, prometheus.GaugeValue, r)
	ch <- prometheus.MustNewConstMetric(c.quarantined, prometheus.GaugeValue, float64(s.Quarantined))
	ch <- prometheus.MustNewConstMetric(c.quarantines, prometheus.CounterValue, float64(s.QuarantinesNew))
	ch <- prometheus.MustNewConstMetric(c.quarantinesAgain, prometheus.CounterValue, float64(s.QuarantinesFoundAgain))
	ch <- prometheus.MustNewConstMetric(c.unknownKinds, prometheus.CounterValue, float64(s.UnknownKinds))
	u := 0.0
	if s.Unserved {
		u = 1
	}
	ch <- prometheus.MustNewConstMetric(c.unserved, prometheus.GaugeValue, u)
	ch <- prometheus.MustNewConstMetric(c.keptAside, prometheus.CounterValue, float64(s.KeptAside))
	rm := s.Regelmotor
	ch <- prometheus.MustNewConstMetric(c.passes, prometheus.CounterValue, float64(rm.Passes))
	ch <- prometheus.MustNewConstMetric(c.failedPasses, prometheus.CounterValue, float64(rm.FailedPasses))
	ch <- prometheus.MustNewConstMetric(c.terminations, prometheus.CounterValue, float64(rm.Terminations))
	last := 0.0
	if !rm.LastPass.IsZero() {
		last = float64(rm.LastPass.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(c.lastPass, prometheus.GaugeValue, last)
}
