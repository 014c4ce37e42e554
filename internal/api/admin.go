package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// AdminSource is what the admin service runs on: the projection runtime.
// *projections.Projector satisfies it. Every method is safe for concurrent use.
type AdminSource interface {
	// Status returns the live models' checkpoints, the lag and the snapshots.
	Status(ctx context.Context) (*projections.Status, error)
	// Stats returns the runtime's counters, with a running rebuild's progress.
	Stats() projections.Stats
	// Rebuild refolds the models from sequence 1 and swaps them in, calling progress after
	// each transaction; projections.ErrRebuildRunning when one already runs.
	Rebuild(ctx context.Context, progress func(projections.Progress)) error
	// RebuildFromStream is Rebuild reading the whole stream, never the live file's events.
	RebuildFromStream(ctx context.Context, progress func(projections.Progress)) error
	// AsOf replays as of a recorded-time cut-off; with Keep set the result is kept as a
	// named snapshot. The caller closes the returned DB.
	AsOf(ctx context.Context, opt projections.AsOfOptions) (*projections.DB, error)
	// DeleteSnapshot removes a named snapshot; projections.ErrNotFound when there is none.
	DeleteSnapshot(name string) error
	// Verify checks the live read-model file thoroughly; a problem found starts its repair.
	Verify(ctx context.Context) (projections.VerifyReport, error)
	// CompareFold compares the live models with a fresh fold of the stream up to their
	// checkpoint; projections.ErrRebuildRunning while a rebuild runs.
	CompareFold(ctx context.Context) (projections.FoldCheck, error)
	// Use runs fn on the live models ("") or a named snapshot.
	Use(snapshot string, fn func(db *projections.DB) error) error
}

var _ AdminSource = (*projections.Projector)(nil)

// progressInterval is the least time between two progress messages of a stream; the last
// message is always sent.
const progressInterval = 250 * time.Millisecond

// Admin serves nir.v1.AdminService for operators: status, rebuilds and snapshots. It shows
// no person data.
type Admin struct {
	src   AdminSource
	loc   *time.Location
	log   *slog.Logger
	fails *failures
	// retention is the retention rule in years (ListErasureDue); 0 = none.
	retention int
}

var _ nirv1connect.AdminServiceHandler = (*Admin)(nil)

// NewAdmin returns the admin service over src. A nil logger discards.
func NewAdmin(src AdminSource, log *slog.Logger) *Admin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "api", "service", "admin")
	return &Admin{src: src, loc: osloLocation(), log: log, fails: newFailures(log)}
}

// SetRetentionYears sets the retention rule ListErasureDue applies: persons are due for
// erasure years whole years after their last activity (DOMAIN.md Product decisions 15); 0, the
// default, is no rule. A product decision for IMDi to confirm, so it is nird's flag.
func (h *Admin) SetRetentionYears(years int) { h.retention = years }

// ListErasureDue implements AdminService.ListErasureDue.
func (h *Admin) ListErasureDue(ctx context.Context, req *connect.Request[nirv1.ListErasureDueRequest]) (*connect.Response[nirv1.ListErasureDueResponse], error) {
	p, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	if h.retention < 1 {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("no retention rule: nird runs without --retention-years"))
	}
	now := rules.Today(time.Now().In(h.loc))
	if req.Msg.GetNow() != nil {
		d, ok := rules.DateOf(req.Msg.GetNow())
		if !ok {
			return nil, fieldError(connect.CodeInvalidArgument, "now", "is not a valid date")
		}
		now = d
	}
	key := req.Msg.GetPersonKey()
	if key != "" && !personkey.IsKey(key) {
		return nil, fieldError(connect.CodeInvalidArgument, "person_key", "is not a person key (64 lowercase hex characters)")
	}
	out := &nirv1.ListErasureDueResponse{RetentionYears: int32(h.retention), Now: now.Proto()}
	err = h.src.Use("", func(db *projections.DB) error {
		listing := db.ErasureDue
		if key != "" {
			listing = func(years int, now rules.Date) ([]projections.Due, uint64, error) {
				return db.PersonErasureDue(years, now, key)
			}
		}
		due, ckpt, err := listing(h.retention, now)
		out.Checkpoint = ckpt
		for _, d := range due {
			out.Persons = append(out.Persons, &nirv1.ErasureDue{PersonKey: d.PersonKey, Kommune: d.Kommune, LastActivity: d.LastActivity.Proto()})
		}
		return err
	})
	if err != nil {
		return nil, readError(ctx, h.fails, "list persons due for erasure", err)
	}
	h.log.InfoContext(ctx, "persons due for erasure listed", "principal", p.String(), "retention_years", h.retention, "due", len(out.Persons))
	return connect.NewResponse(out), nil
}

// operator checks the caller is an operator (the policy says so too; this is the second
// lock on the door).
func operator(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return p, connect.NewError(connect.CodeUnauthenticated, errors.New("no principal"))
	}
	if p.Role != auth.RoleOperator {
		return p, connect.NewError(connect.CodePermissionDenied, errors.New("role "+string(p.Role)+" may not administer the read models"))
	}
	return p, nil
}

func progressMsg(pr projections.Progress) *nirv1.Progress {
	return &nirv1.Progress{Done: pr.Done, Total: pr.Total, EventsPerSecond: pr.Rate,
		EtaSeconds: pr.ETA.Seconds(), ElapsedSeconds: pr.Elapsed.Seconds(), FromFileThrough: pr.FromFile, Phase: pr.Phase}
}

// ProjectionStatus implements AdminService.ProjectionStatus.
func (h *Admin) ProjectionStatus(ctx context.Context, _ *connect.Request[nirv1.ProjectionStatusRequest]) (*connect.Response[nirv1.ProjectionStatusResponse], error) {
	if _, err := operator(ctx); err != nil {
		return nil, err
	}
	st, err := h.src.Status(ctx)
	if err != nil {
		return nil, readError(ctx, h.fails, "projection status", err)
	}
	stats := h.src.Stats()
	out := &nirv1.ProjectionStatusResponse{
		LastSequence: st.LastSeq, Lag: st.Lag, FileSize: st.FileSize, Rebuilding: st.Rebuilding || stats.Rebuilding,
		Snapshots: snapshotInfos(st.Snapshots), EventsApplied: stats.EventsApplied, ApplySeconds: stats.ApplySeconds,
	}
	for _, m := range st.Models {
		out.Models = append(out.Models, &nirv1.ModelStatus{Name: m.Name, Checkpoint: m.Checkpoint, SchemaVersion: m.Schema})
	}
	out.QuarantinedTotal, out.Repairing = st.QuarantinedTotal, st.Repairing
	for _, q := range st.Quarantined {
		out.Quarantined = append(out.Quarantined, &nirv1.QuarantinedMessage{Sequence: q.Seq, Reason: q.Reason})
	}
	if stats.Progress != nil {
		out.RebuildProgress = progressMsg(*stats.Progress)
	}
	return connect.NewResponse(out), nil
}

func snapshotInfos(in []projections.SnapshotInfo) []*nirv1.SnapshotInfo {
	out := make([]*nirv1.SnapshotInfo, 0, len(in))
	for _, s := range in {
		info := &nirv1.SnapshotInfo{Name: s.Name, Checkpoint: s.Checkpoint, FileSize: s.FileSize}
		if !s.RecordedUntil.IsZero() {
			info.RecordedUntil = timestamppb.New(s.RecordedUntil)
		}
		if !s.ProvisionalUntil.IsZero() {
			info.ProvisionalUntil = timestamppb.New(s.ProvisionalUntil)
		}
		out = append(out, info)
	}
	return out
}

// throttle calls send with the latest progress at most every progressInterval, and
// remembers the first send error (the client went away; the context ends the work).
type throttle struct {
	last    time.Time
	latest  projections.Progress
	sendErr error
}

func (t *throttle) report(pr projections.Progress, send func(*nirv1.Progress) error) {
	t.latest = pr
	if t.sendErr != nil || time.Since(t.last) < progressInterval {
		return
	}
	t.last = time.Now()
	t.sendErr = send(progressMsg(pr))
}

// Rebuild implements AdminService.Rebuild.
func (h *Admin) Rebuild(ctx context.Context, req *connect.Request[nirv1.RebuildRequest], stream *connect.ServerStream[nirv1.RebuildResponse]) error {
	var th throttle
	ckpt, err := h.RebuildAs(ctx, req.Msg, func(pr projections.Progress) {
		th.report(pr, func(m *nirv1.Progress) error { return stream.Send(&nirv1.RebuildResponse{Progress: m}) })
	})
	if err != nil {
		return err
	}
	return stream.Send(&nirv1.RebuildResponse{Progress: progressMsg(th.latest), Finished: true, Checkpoint: ckpt})
}

// RebuildAs rebuilds for the operator in ctx, calling progress after each transaction, and
// returns the new live checkpoint. It is the Connect handler's body, shared with the web
// console, and returns Connect errors.
func (h *Admin) RebuildAs(ctx context.Context, req *nirv1.RebuildRequest, progress func(projections.Progress)) (uint64, error) {
	p, err := operator(ctx)
	if err != nil {
		return 0, err
	}
	if m := req.GetModel(); m != "" && !slices.Contains(projections.Models, m) {
		return 0, fieldError(connect.CodeInvalidArgument, "model", "unknown model (one of history, persons, deadlines, statistics, terminated)")
	}
	h.log.InfoContext(ctx, "rebuild requested", "principal", p.String(), "model", req.GetModel(), "from_stream", req.GetFromStream())
	rebuild := h.src.Rebuild
	if req.GetFromStream() {
		rebuild = h.src.RebuildFromStream
	}
	if err := rebuild(ctx, progress); err != nil {
		return 0, readError(ctx, h.fails, "rebuild", err)
	}
	return h.src.Stats().Checkpoint, nil
}

// ProgressMessage converts a rebuild's or replay's progress to its message.
func ProgressMessage(pr projections.Progress) *nirv1.Progress { return progressMsg(pr) }

// ListSnapshots implements AdminService.ListSnapshots.
func (h *Admin) ListSnapshots(ctx context.Context, _ *connect.Request[nirv1.ListSnapshotsRequest]) (*connect.Response[nirv1.ListSnapshotsResponse], error) {
	if _, err := operator(ctx); err != nil {
		return nil, err
	}
	st, err := h.src.Status(ctx)
	if err != nil {
		return nil, readError(ctx, h.fails, "list snapshots", err)
	}
	return connect.NewResponse(&nirv1.ListSnapshotsResponse{Snapshots: snapshotInfos(st.Snapshots)}), nil
}

// CreateSnapshot implements AdminService.CreateSnapshot (DOMAIN.md "Product decisions" 7:
// the official figures of a year are the statistics replayed as of its ajourføring deadline).
func (h *Admin) CreateSnapshot(ctx context.Context, req *connect.Request[nirv1.CreateSnapshotRequest], stream *connect.ServerStream[nirv1.CreateSnapshotResponse]) error {
	var th throttle
	info, err := h.CreateSnapshotAs(ctx, req.Msg, func(pr projections.Progress) {
		th.report(pr, func(pm *nirv1.Progress) error { return stream.Send(&nirv1.CreateSnapshotResponse{Progress: pm}) })
	})
	if err != nil {
		return err
	}
	return stream.Send(&nirv1.CreateSnapshotResponse{Progress: progressMsg(th.latest), Finished: true, Snapshot: info})
}

// CreateSnapshotAs creates a snapshot for the operator in ctx, calling progress after each
// transaction of the replay. It is the Connect handler's body, shared with the web console,
// and returns Connect errors. A snapshot whose cut-off kept no event is kept (its figures
// are all zero) with checkpoint 0, which callers show as such.
func (h *Admin) CreateSnapshotAs(ctx context.Context, m *nirv1.CreateSnapshotRequest, progress func(projections.Progress)) (*nirv1.SnapshotInfo, error) {
	p, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	if m.GetName() == "" {
		return nil, fieldError(connect.CodeInvalidArgument, "name", "required")
	}
	if err := checkSnapshot("name", m.GetName()); err != nil {
		return nil, err
	}
	// Nor may it hold a run of digits as long as a national id: nird logs snapshots by name,
	// and national ids never go into its log.
	if rules.RedactIDs(m.GetName()) != m.GetName() {
		return nil, fieldError(connect.CodeInvalidArgument, "name", "not a snapshot name ("+projections.SnapshotNameIDShapes+")")
	}
	var until time.Time
	switch {
	case m.GetCutoffDate() != nil && m.GetRecordedUntil() != nil:
		return nil, fieldError(connect.CodeInvalidArgument, "cutoff_date", "give cutoff_date or recorded_until, not both")
	case m.GetCutoffDate() != nil:
		d, ok := rules.DateOf(m.GetCutoffDate())
		if !ok {
			return nil, fieldError(connect.CodeInvalidArgument, "cutoff_date", "not a valid calendar date")
		}
		until = EndOfDay(d, h.loc)
	case m.GetRecordedUntil() != nil:
		if err := m.GetRecordedUntil().CheckValid(); err != nil {
			return nil, fieldError(connect.CodeInvalidArgument, "recorded_until", "not a valid timestamp")
		}
		until = m.GetRecordedUntil().AsTime()
	default:
		return nil, fieldError(connect.CodeInvalidArgument, "cutoff_date", "cutoff_date or recorded_until is required")
	}
	h.log.InfoContext(ctx, "snapshot requested", "principal", p.String(), "snapshot", m.GetName(), "recorded_until", until, "replace", m.GetReplace(), "from_stream", m.GetFromStream())
	db, err := h.src.AsOf(ctx, projections.AsOfOptions{RecordedUntil: until, Keep: m.GetName(), Replace: m.GetReplace(), Progress: progress, FromStream: m.GetFromStream()})
	if err != nil {
		return nil, readError(ctx, h.fails, "create snapshot", err)
	}
	info := &nirv1.SnapshotInfo{Name: m.GetName(), FileSize: db.Size(), RecordedUntil: timestamppb.New(until)}
	if t, ok := db.Provisional(); ok {
		info.ProvisionalUntil = timestamppb.New(t)
	}
	info.Checkpoint, err = db.Checkpoint()
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, readError(ctx, h.fails, "create snapshot", err)
	}
	if info.Checkpoint == 0 {
		h.log.WarnContext(ctx, "snapshot keeps no event: every event was recorded after its cut-off", "snapshot", m.GetName(), "recorded_until", until)
	}
	return info, nil
}

// EndOfDay is the cut-off of a cut-off date: the last instant of the day in loc, so that the
// whole day counts (everything recorded before the next midnight in Oslo).
func EndOfDay(d rules.Date, loc *time.Location) time.Time {
	return time.Date(d.Y, d.M, d.D+1, 0, 0, 0, 0, loc).Add(-time.Nanosecond)
}

// DeleteSnapshot implements AdminService.DeleteSnapshot.
func (h *Admin) DeleteSnapshot(ctx context.Context, req *connect.Request[nirv1.DeleteSnapshotRequest]) (*connect.Response[nirv1.DeleteSnapshotResponse], error) {
	p, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	name := req.Msg.GetName()
	if name == "" {
		return nil, fieldError(connect.CodeInvalidArgument, "name", "required")
	}
	if err := checkSnapshot("name", name); err != nil {
		return nil, err
	}
	if err := h.src.DeleteSnapshot(name); err != nil {
		return nil, readError(ctx, h.fails, "delete snapshot", err)
	}
	h.log.InfoContext(ctx, "snapshot deleted", "principal", p.String(), "snapshot", name)
	return connect.NewResponse(&nirv1.DeleteSnapshotResponse{}), nil
}

// VerifyProjections implements AdminService.VerifyProjections.
func (h *Admin) VerifyProjections(ctx context.Context, req *connect.Request[nirv1.VerifyProjectionsRequest]) (*connect.Response[nirv1.VerifyProjectionsResponse], error) {
	p, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	h.log.InfoContext(ctx, "read-model verify requested", "principal", p.String(), "compare_fold", req.Msg.GetCompareFold())
	rep, err := h.src.Verify(ctx)
	if err != nil {
		return nil, readError(ctx, h.fails, "verify read models", err)
	}
	res := &nirv1.VerifyProjectionsResponse{Problems: rep.Problems, FileSize: rep.Size, Pages: rep.Pages,
		Values: rep.Values, Seconds: rep.Seconds, Repairing: rep.Repairing}
	if req.Msg.GetCompareFold() && len(rep.Problems) == 0 && rep.Repairing == "" {
		fc, err := h.src.CompareFold(ctx)
		if errors.Is(err, projections.ErrRebuildRunning) {
			return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("a rebuild, an as-of replay or another fold comparison is running; try again when it is done"))
		}
		if err != nil {
			return nil, readError(ctx, h.fails, "fold the stream afresh", err)
		}
		res.Fold = &nirv1.FoldComparison{Checkpoint: fc.Checkpoint, LiveDigest: fc.Live, FreshDigest: fc.Fresh, Equal: fc.Equal, Seconds: fc.Seconds}
		if !fc.Equal {
			res.Problems = append(res.Problems, fmt.Sprintf("the read models at sequence %d differ from a fresh fold of the stream (sha256 %s, fresh %s)", fc.Checkpoint, fc.Live, fc.Fresh))
			h.log.ErrorContext(ctx, "read models differ from a fresh fold of the stream", "checkpoint", fc.Checkpoint)
		}
	}
	return connect.NewResponse(res), nil
}
