package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/sealing"
)

// QuerySource gives the query handlers the read models: the live ones (snapshot "") or a
// named as-of snapshot. *projections.Projector satisfies it, so the live file, its swap after
// a rebuild and the snapshots are all behind one call.
type QuerySource interface {
	// Use runs fn with the read models; the DB stays open until fn returns, even if a rebuild
	// swaps a new live file in meanwhile, and fn must not keep it. Use returns an error
	// matching projections.ErrNotFound for an unknown snapshot and projections.ErrClosed
	// after shutdown. It is safe for concurrent use.
	Use(snapshot string, fn func(db *projections.DB) error) error
}

var _ QuerySource = (*projections.Projector)(nil)

// DefaultWithinDays is the warning period of deadlines (DUE_SOON) when a request gives none.
const DefaultWithinDays = 30

// The CSV export's defaults. An export is written whole into a temporary file before its
// first byte goes out, and the file is kept until the client has read it all (or
// --write-timeout cut it off): a client that opens exports and reads none holds a copy of
// the list on disk for each.
const (
	// DefaultMaxExportsPerPrincipal is how many CSV exports one principal may have in flight.
	DefaultMaxExportsPerPrincipal = 2
	// DefaultExportDiskBytes bounds the exports' temporary files over every principal: some
	// 50 of the largest kommune's (4.6 MB for 20 000 persons).
	DefaultExportDiskBytes = 256 << 20
)

// QueryConfig configures a Query. Source and Keys are required; zero values of the others
// mean their defaults.
type QueryConfig struct {
	// Source gives the read models.
	Source QuerySource
	// Keys derives person keys from national ids (lookups by national id).
	Keys *personkey.Keyer
	// Now is the clock for the default "now" of deadlines; nil means time.Now.
	Now func() time.Time
	// Location is the register's calendar; nil means rules.Norway.
	Location *time.Location
	// Logger; nil discards.
	Logger *slog.Logger
	// StatsMinCount is the disclosure control threshold of the statistics (DOMAIN.md Product
	// decisions 14): counts of 1 to StatsMinCount-1 are suppressed, and what would reveal
	// them. 0 means rules.DefaultMinCount (5); 1 suppresses nothing.
	StatsMinCount int64
	// PersonReads bounds the AuditHistory reads running at once, shared with the
	// registration service's History; nil is a bound of its own (NewPersonReads(0, 0)).
	PersonReads *PersonReads
	// MaxExportsPerPrincipal is how many CSV exports one principal may have in flight; more
	// are refused with ResourceExhausted. 0 means DefaultMaxExportsPerPrincipal.
	MaxExportsPerPrincipal int
	// ExportDiskBytes bounds the bytes of the CSV exports' temporary files, over every
	// export (projections.ExportDisk); an export beyond it is refused with
	// ResourceExhausted. 0 means DefaultExportDiskBytes.
	ExportDiskBytes int64
	// Gate holds a CSV export whose min_sequence is set until the read models have applied
	// it; the query service's interceptor should be the same gate's. nil: a gate of its own
	// over Source if Source can wait (a *projections.Projector), else the export refuses
	// min_sequence.
	Gate *SequenceGate
}

// Query serves nir.v1.QueryService and the CSV export of the person list over the read
// models. It narrows every answer to what the principal may see: a kommune its own person
// list with national ids and the persons whose bostedskommune history includes it; an
// analyst every kommune's rows and statistics without national ids.
type Query struct {
	src   QuerySource
	reads *PersonReads
	keys  *personkey.Keyer
	now   func() time.Time
	loc   *time.Location
	log   *slog.Logger
	fails *failures // the failures logged, bounded by kind
	// minCount is the statistics' disclosure control threshold.
	minCount int64

	gate       *SequenceGate           // the CSV export's read-your-writes wait; nil: none
	maxExports int                     // CSV exports in flight per principal
	exportDisk *projections.ExportDisk // the exports' temporary files, over every principal
	exports    perPrincipal            // CSV exports in flight

	statistics perPrincipal // Statistics calls in flight

	refusedExports, refusedExportDisk, refusedStatistics atomic.Uint64 // Refusals
}

// MaxStatisticsPerPrincipal is how many Statistics calls one principal may have in flight.
// A table not yet published costs a suppression of the national table (about 0.2 s of CPU
// for 20 000 persons), and one runs at a time in the process: without a bound, one principal
// asking at once for every year, structure and snapshot it can name queued its computations
// in front of everyone else's, and could hang up before each ended so that none was kept.
// The web console's pages call it one year after another.
const MaxStatisticsPerPrincipal = 2

// Refusals counts the calls refused for the query service's own limits since nird started.
type Refusals struct {
	// ExportsPerPrincipal were over --max-exports-per-principal, ExportDisk over
	// --max-export-disk, StatisticsPerPrincipal over MaxStatisticsPerPrincipal.
	ExportsPerPrincipal, ExportDisk, StatisticsPerPrincipal uint64
}

// Refusals returns the counts of calls refused for the query service's own limits.
func (h *Query) Refusals() Refusals {
	return Refusals{ExportsPerPrincipal: h.refusedExports.Load(), ExportDisk: h.refusedExportDisk.Load(), StatisticsPerPrincipal: h.refusedStatistics.Load()}
}

var _ nirv1connect.QueryServiceHandler = (*Query)(nil)

// NewQuery returns the query service.
func NewQuery(cfg QueryConfig) *Query {
	q := &Query{src: cfg.Source, reads: cfg.PersonReads, keys: cfg.Keys, now: cfg.Now, loc: cfg.Location, log: cfg.Logger, minCount: cfg.StatsMinCount, gate: cfg.Gate,
		maxExports: cmp.Or(cfg.MaxExportsPerPrincipal, DefaultMaxExportsPerPrincipal),
		exportDisk: projections.NewExportDisk(cmp.Or(cfg.ExportDiskBytes, DefaultExportDiskBytes))}
	if q.reads == nil {
		q.reads = NewPersonReads(0, 0)
	}
	if w, ok := cfg.Source.(SequenceWaiter); ok && q.gate == nil {
		q.gate = NewSequenceGate(w, 0)
	}
	if q.minCount == 0 {
		q.minCount = rules.DefaultMinCount
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.loc == nil {
		q.loc = osloLocation()
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	q.log = q.log.With("component", "api", "service", "query")
	q.fails = newFailures(q.log)
	return q
}

// osloLocation is the register's calendar.
func osloLocation() *time.Location { return rules.Norway }

// today is the register's current calendar date.
func (h *Query) today() rules.Date {
	return rules.DateFromTime(h.now().In(h.loc))
}

// scopeOf returns the caller's access scope, refusing roles that read no person data.
func scopeOf(ctx context.Context) (access.Scope, error) {
	scope, err := access.FromContext(ctx)
	if err == nil {
		err = scope.CanQuery()
	}
	if err != nil {
		return access.Scope{}, accessError(err)
	}
	return scope, nil
}

// accessError classifies an error of the access rules for the caller.
func accessError(err error) error {
	var deny *access.DeniedError
	switch {
	case errors.As(err, &deny):
		if deny.Field == "" {
			return connect.NewError(connect.CodePermissionDenied, errors.New(deny.Reason))
		}
		return fieldError(connect.CodePermissionDenied, deny.Field, deny.Reason)
	case errors.Is(err, access.ErrNotFound):
		return errPersonNotFound()
	case errors.Is(err, access.ErrUnauthenticated):
		return connect.NewError(connect.CodeUnauthenticated, err)
	}
	return err
}

// kommuneFor applies the scope to a requested kommune (access.Scope.Kommune) and checks it:
// a kommune principal gets its own (empty means its own), others what they asked for
// (required when required), which must be a kommunenummer in some period of the kommune
// table, as an append's must (a former kommune's number is one). A number in no period
// answered an empty list with OK, a typo read as "no persons" (TestQuery_KommuneInNoPeriod).
// The scope is applied before the table: a kommune principal asking for another number is
// denied, known or not. The form of a number is checked before the scope, as the fylke's
// is (Statistics): it tells nothing of any kommune, and a kommune mistyping its own number
// («301») was told it had no access (TestQuery_KommuneMalformed).
func kommuneFor(scope access.Scope, field, requested string, required bool) (string, error) {
	if requested != "" && !isDigits(requested, 4) {
		return "", fieldError(connect.CodeInvalidArgument, field, "must be a 4-digit kommunenummer")
	}
	kommune, err := scope.Kommune(field, requested)
	if err != nil {
		return "", accessError(err)
	}
	if kommune == "" {
		if required {
			return "", fieldError(connect.CodeInvalidArgument, field, "required (4-digit kommunenummer)")
		}
		return "", nil
	}
	if _, err := rules.KommunePeriods(kommune); err != nil {
		return "", fieldError(connect.CodeInvalidArgument, field, err.Error())
	}
	return kommune, nil
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func checkSnapshot(field, name string) error {
	if name != "" && !projections.WellFormedSnapshotName(name) {
		return fieldError(connect.CodeInvalidArgument, field, "not a snapshot name (letters, digits, @ . _ -)")
	}
	return nil
}

// respond is how every query ends: read the snapshot's models into out, then answer with
// it, or with the read's error classified for the caller.
func respond[T any](ctx context.Context, h *Query, op, snapshot string, out *T, read func(db *projections.DB) error) (*connect.Response[T], error) {
	if err := h.use(ctx, op, snapshot, read); err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

// use runs fn on the snapshot's read models and classifies its error.
func (h *Query) use(ctx context.Context, op, snapshot string, fn func(db *projections.DB) error) error {
	if err := checkSnapshot("snapshot", snapshot); err != nil {
		return err
	}
	if err := h.src.Use(snapshot, fn); err != nil {
		return readError(ctx, h.fails, op, err)
	}
	return nil
}

// readError classifies an error of a read for the caller; what the caller cannot act on is
// logged once here, bounded by fails.
func readError(ctx context.Context, fails *failures, op string, err error) error {
	// The read models' messages quote the caller's values (a snapshot's name): any
	// national id among them is masked.
	msg := func() error { return errors.New(rules.RedactIDs(strings.TrimPrefix(err.Error(), "projections: "))) }
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, projections.ErrInvalidArgument):
		return connect.NewError(connect.CodeInvalidArgument, msg())
	case errors.Is(err, projections.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, msg())
	case errors.Is(err, projections.ErrExists):
		return connect.NewError(connect.CodeAlreadyExists, msg())
	case errors.Is(err, projections.ErrRebuildRunning):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("a rebuild is already running; ask again once it has ended"))
	case errors.Is(err, projections.ErrReplayRunning):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("an as-of replay is already running; ask again once it has ended"))
	case errors.Is(err, projections.ErrStreamLost):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New(msg().Error()+"; the rebuild was not swapped in: restore the stream from a backup (nirctl verify names the sequences)"))
	case errors.Is(err, projections.ErrSchema):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("the read models were written by another schema version; rebuild them or recreate the snapshot"))
	case errors.Is(err, projections.ErrUnavailable), errors.Is(err, projections.ErrShortReplay):
		return connect.NewError(connect.CodeUnavailable, msg())
	case errors.Is(err, projections.ErrCorrupt):
		// A damaged snapshot, taken out of service (the live models' damage is Unavailable
		// above, while they are rebuilt): the operator's to create again.
		fails.error(ctx, "read failed: damaged read models", op, err)
		return connect.NewError(connect.CodeDataLoss, msg())
	case errors.Is(err, projections.ErrClosed):
		return connect.NewError(connect.CodeUnavailable, errors.New("the read models are closed (shutting down)"))
	case errors.Is(err, projections.ErrExportDisk):
		return connect.NewError(connect.CodeResourceExhausted, errors.New(msg().Error()+": other CSV exports are being sent; retry later"))
	}
	// The rest (context errors, internal errors logged once) as for registrations.
	return callerError(ctx, fails, op, err)
}

// errPersonNotFound is the answer for an unknown person and for a person the caller may not
// see alike, so that a kommune cannot learn whether another kommune's person exists.
func errPersonNotFound() error {
	return connect.NewError(connect.CodeNotFound, errors.New("person not found"))
}

// personKey resolves a person reference for scope. Analysts look persons up by person key
// only. Errors never hold the national id.
func (h *Query) personKey(scope access.Scope, ref *nirv1.PersonRef, field string) (string, error) {
	if ref.GetNationalId() != "" && ref.GetPersonKey() == "" {
		if !scope.SeesNationalIDs() {
			return "", fieldError(connect.CodePermissionDenied, field+".national_id", "role "+string(scope.Role())+" looks persons up by person_key only")
		}
		if h.keys == nil {
			return "", connect.NewError(connect.CodeUnimplemented, errors.New("lookups by national id are not configured"))
		}
	}
	key, err := ingest.PersonKeyOf(h.keys, ref, field)
	var invalid *ingest.InvalidError
	if errors.As(err, &invalid) {
		return "", fieldError(connect.CodeInvalidArgument, invalid.Field, invalid.Reason)
	}
	return key, err
}

// follow returns the person key pk leads to in db: pk itself, or, when pk is the key of a
// national id claimed by a person (an id added to the person or a further id of its
// registration) or of a person merged into another (DOMAIN.md Product decisions 15), that
// person's key. A snapshot taken before the claim or the merge does not follow it: then the
// id was not known to be the person's. It also returns the person's access record (found
// false for a person the models do not hold).
//
// An erased person is not found by any of its national ids (DOMAIN.md Product decisions 15):
// then follow returns errPersonNotFound; by its person key it is found, «slettet».
//
// follow reads the subjects' access records (projections.PersonAccess) and folds no
// history, so that whatever comes of it takes the same few lookups for every person.
func follow(db *projections.DB, pk string, ref *nirv1.PersonRef) (string, projections.PersonAccess, bool, error) {
	chain, err := db.AccessChain(pk, ingest.MaxHops)
	if err != nil {
		return pk, projections.PersonAccess{}, false, err
	}
	return followChain(chain, ref)
}

// followChain is follow on the access records a lookup walked (projections.DB.AccessChain).
func followChain(chain []projections.SubjectAccess, ref *nirv1.PersonRef) (string, projections.PersonAccess, bool, error) {
	last := chain[len(chain)-1]
	if !last.Found || last.Successor != "" {
		// Not held, or a longer chain than nird writes: not found.
		return last.Key, projections.PersonAccess{}, false, nil
	}
	if last.Erased && ref.GetPersonKey() == "" {
		return last.Key, last.PersonAccess, true, errPersonNotFound()
	}
	return last.Key, last.PersonAccess, true, nil
}

// hiddenFrom returns errPersonNotFound when the person of the access record a (found false:
// none) is hidden from scope, a kommune without a relation to it (access.Scope.Hidden),
// decided before the person's history is read, so that the answer takes the time an
// unknown person's does.
func hiddenFrom(scope access.Scope, a projections.PersonAccess, found bool) error {
	if !found || scope.Hidden(a.Reach) {
		return errPersonNotFound()
	}
	return nil
}

// canSeeStatus checks that scope may read the current status of the person with the access
// record a (access.Scope.CheckStatusOf; found false: a person the models do not hold); a
// person it may not see is NotFound. The record is derived from the person's fold in the
// same file as the rows read after it, so the decision is the fold's.
func canSeeStatus(scope access.Scope, a projections.PersonAccess, found bool) error {
	if !found {
		return errPersonNotFound()
	}
	return accessError(scope.CheckStatusOf(a.Reach))
}

// seenPerson returns the key of the person ref leads to from pk (follow) and the person's row,
// once scope may read the person's current status (canSeeStatus): the decision and the row
// from one read transaction (projections.DB.AccessChainRow). From a snapshot, a kommune must
// also have the person today (readsToday).
func (h *Query) seenPerson(db *projections.DB, scope access.Scope, snapshot, pk string, ref *nirv1.PersonRef) (string, *projections.PersonRow, error) {
	chain, row, err := db.AccessChainRow(pk, ingest.MaxHops)
	if err != nil {
		return pk, nil, err
	}
	key, a, found, err := followChain(chain, ref)
	if err != nil {
		return key, nil, err
	}
	if err := canSeeStatus(scope, a, found); err != nil {
		return key, nil, err
	}
	if row == nil {
		return key, nil, errPersonNotFound()
	}
	if snapshot != "" {
		a, found, err := h.accessToday(key, ref)
		if err != nil {
			return key, nil, err
		}
		if readsToday(scope, snapshot) {
			if err := canSeeStatus(scope, a, found); err != nil {
				return key, nil, err
			}
		}
		if a.Erased {
			// A snapshot made before the erasure holds the ids (README "Erasure by
			// crypto-shredding, and retention"), for every reader: an analyst read the
			// erased person's birth date from it.
			row = row.Erased()
		}
	}
	return key, row, nil
}

// readsToday reports whether scope's read of snapshot is also decided on the live models: a
// kommune reads a person from a snapshot only as far as it may both at the snapshot's
// cut-off and today (README "Kommune boundaries"). A snapshot's access records are the
// cut-off's: decided on them alone, a kommune the person has since left was the person's
// current kommune again (its row, its national id, the other kommuner's period of its
// history), against DOMAIN.md Product decisions 16. Analysts and the system principal read
// snapshots as they were.
func readsToday(scope access.Scope, snapshot string) bool {
	return snapshot != "" && scope.OwnKommune() != ""
}

// accessToday returns the live access record of the person the key pk leads to today (follow,
// with the request's ref: an erased person is not found by its ids); found false when the
// live models hold none.
func (h *Query) accessToday(pk string, ref *nirv1.PersonRef) (projections.PersonAccess, bool, error) {
	var (
		a     projections.PersonAccess
		found bool
	)
	err := h.src.Use("", func(live *projections.DB) error {
		var err error
		_, a, found, err = follow(live, pk, ref)
		return err
	})
	return a, found, err
}

// visibleToday returns which events of the person the key pk leads to scope may read in its
// history today (access.Scope.Visible on the live models), and whether the person is erased
// today; errPersonNotFound for a person hidden from scope today.
func (h *Query) visibleToday(scope access.Scope, pk string, ref *nirv1.PersonRef) (func(*nirv1.Event) bool, bool, error) {
	var (
		visible func(*nirv1.Event) bool
		erased  bool
	)
	err := h.src.Use("", func(live *projections.DB) error {
		key, a, found, err := follow(live, pk, ref)
		if err != nil {
			return err
		}
		if err := hiddenFrom(scope, a, found); err != nil {
			return err
		}
		erased = a.Erased
		if scope.RelationTo(a.Reach) == access.Current {
			visible = func(*nirv1.Event) bool { return true }
			return nil
		}
		_, st, err := foldedHistory(live, key)
		if err != nil {
			return err
		}
		erased = erased || st.Erased
		if visible, err = scope.Visible(st); err != nil {
			return accessError(err)
		}
		return nil
	})
	return visible, erased, err
}

// foldedHistory returns the person pk's audit history in db and its fold; errPersonNotFound
// when db holds no history of pk.
func foldedHistory(db *projections.DB, pk string) ([]projections.HistoryEntry, *rules.State, error) {
	hist, st, err := db.FoldedHistory(pk)
	if errors.Is(err, projections.ErrNotFound) {
		return nil, nil, errPersonNotFound()
	}
	return hist, st, err
}

// listToday returns, for a kommune's read of a snapshot's person list (readsToday), the
// persons in the kommune's live list and which of them are erased: the snapshot's list keeps
// those only, as the live one holds no person the kommune no longer has, and shows the erased
// ones «slettet», as the live one does. Another reader's read of a snapshot keeps every
// person, and shows those erased today «slettet» (erasedToday). nil, nil (keep all, as they
// are) for a live read.
func (h *Query) listToday(ctx context.Context, op string, scope access.Scope, snapshot, kommune string) (keep, erased func(string) bool, err error) {
	switch {
	case snapshot == "":
		return nil, nil, nil
	case !readsToday(scope, snapshot):
		erased, err = h.erasedToday(ctx, op, snapshot, kommune)
		return nil, erased, err
	}
	var persons map[string]bool
	err = h.use(ctx, op, "", func(live *projections.DB) error {
		var err error
		persons, err = live.KommunePersons(kommune)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	keep = func(pk string) bool {
		_, ok := persons[pk]
		return ok
	}
	return keep, func(pk string) bool { return persons[pk] }, nil
}

// erasedToday returns which persons of the snapshot's list of kommune are erased in the live
// models, wherever they live today: a snapshot made before an erasure holds the person's
// birth date (README "Erasure by crypto-shredding, and retention"), which an analyst read from
// its list and CSV export after the erasure (found on 2026-12-07 by an adversarial review).
func (h *Query) erasedToday(ctx context.Context, op, snapshot, kommune string) (func(string) bool, error) {
	var then map[string]bool
	err := h.use(ctx, op, snapshot, func(db *projections.DB) error {
		var err error
		then, err = db.KommunePersons(kommune)
		return err
	})
	if err != nil {
		return nil, err
	}
	erased := map[string]bool{}
	err = h.use(ctx, op, "", func(live *projections.DB) error {
		// The kommune's live list (cached) answers for those still in it; the others, who
		// moved away or were merged into another person since, are looked up one by one,
		// through the merges (follow): a survivor's erasure destroys the keys of the
		// persons merged into it, who have no row of their own to say so.
		now, err := live.KommunePersons(kommune)
		if err != nil {
			return err
		}
		for pk := range then {
			if e, ok := now[pk]; ok {
				erased[pk] = e
				continue
			}
			_, a, found, err := follow(live, pk, &nirv1.PersonRef{PersonKey: pk})
			if err != nil {
				return err
			}
			erased[pk] = found && a.Erased
		}
		return nil
	})
	return func(pk string) bool { return erased[pk] }, err
}

// startStatistics counts one more Statistics call of principal in flight and returns the
// function that ends it, or ResourceExhausted when the principal has MaxStatisticsPerPrincipal.
func (h *Query) startStatistics(principal string) (func(), error) {
	done, ok := h.statistics.take(principal, MaxStatisticsPerPrincipal)
	if !ok {
		h.refusedStatistics.Add(1)
		ce := connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("%s has %d statistics calls in flight, its most; retry when one has ended", principal, MaxStatisticsPerPrincipal))
		ce.Meta().Set("Retry-After", "1")
		return nil, ce
	}
	return done, nil
}

// ListPersons implements QueryService.ListPersons.
func (h *Query) ListPersons(ctx context.Context, req *connect.Request[nirv1.ListPersonsRequest]) (*connect.Response[nirv1.ListPersonsResponse], error) {
	v, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	kommune, err := kommuneFor(v, "kommune", m.GetKommune(), true)
	if err != nil {
		return nil, err
	}
	now, err := h.dateOr("now", m.GetNow())
	if err != nil {
		return nil, err
	}
	q, err := personQuery(kommune, m.GetFilter(), "filter.", m.GetSort(), m.GetDesc(), now)
	if err != nil {
		return nil, err
	}
	if m.GetPageSize() < 0 || m.GetPageSize() > projections.MaxPageSize {
		return nil, fieldError(connect.CodeInvalidArgument, "page_size", "must be 0.."+strconv.Itoa(projections.MaxPageSize))
	}
	q.PageSize = int(m.GetPageSize())
	if t := m.GetPageToken(); t != "" {
		if err := projections.CheckPageToken(t); err != nil {
			return nil, fieldError(connect.CodeInvalidArgument, "page_token", "not a page token from a previous page")
		}
		q.PageToken = t
	}
	out := &nirv1.ListPersonsResponse{}
	return respond(ctx, h, "list persons", m.GetSnapshot(), out, func(db *projections.DB) error {
		// Once the snapshot is found: a name nobody made read the kommune's live list for
		// nothing (TestQuery_UnknownSnapshotReadsNothingLive).
		var err error
		if q.Keep, q.Erased, err = h.listToday(ctx, "list persons", v, m.GetSnapshot(), kommune); err != nil {
			return err
		}
		page, err := db.ListPersons(q)
		if err != nil {
			return err
		}
		out.Total = int32(page.Total)
		out.NextPageToken = page.NextPageToken
		out.Rows = make([]*nirv1.PersonRow, len(page.Rows))
		for i := range page.Rows {
			out.Rows[i] = personRow(&page.Rows[i], v.SeesNationalIDs())
		}
		return nil
	})
}

// dateOr returns the date d, or today when d is unset.
func (h *Query) dateOr(field string, d *nirv1.Date) (rules.Date, error) {
	if d == nil || (d.GetYear() == 0 && d.GetMonth() == 0 && d.GetDay() == 0) {
		return h.today(), nil
	}
	dt, ok := rules.DateOf(d)
	if !ok {
		return rules.Date{}, fieldError(connect.CodeInvalidArgument, field, "not a valid calendar date")
	}
	return dt, nil
}

// personQuery converts the request's kommune, filter and order into a projections query,
// naming bad fields with prefix (the filter's path in the request).
func personQuery(kommune string, f *nirv1.PersonFilter, prefix string, sortBy nirv1.PersonSort, desc bool, now rules.Date) (projections.PersonQuery, error) {
	q := projections.PersonQuery{Kommune: kommune, Now: now, Desc: desc}
	bad := func(field, reason string) (projections.PersonQuery, error) {
		return projections.PersonQuery{}, fieldError(connect.CodeInvalidArgument, prefix+field, reason)
	}
	if !knownEnum(f.GetLaw()) {
		return bad("law", "unknown law")
	}
	q.Law = f.GetLaw()
	presences := []struct {
		name string
		v    nirv1.PresenceFilter
		dst  *projections.Filter
	}{
		{"programme_vedtak", f.GetProgrammeVedtak(), &q.ProgrammeVedtak},
		{"training_vedtak", f.GetTrainingVedtak(), &q.TrainingVedtak},
		{"tiltak", f.GetTiltak(), &q.Tiltak},
		{"sluttmal", f.GetSluttmal(), &q.Sluttmal},
		{"integreringskontrakt", f.GetIntegreringskontrakt(), &q.Integreringskontrakt},
		{"norskmal", f.GetNorskmal(), &q.Norskmal},
		{"utdanningsbakgrunn", f.GetUtdanningsbakgrunn(), &q.Utdanningsbakgrunn},
		{"terminated", f.GetTerminated(), &q.Terminated},
		{"inactive", f.GetInactive(), &q.Inactive},
		{"registered_reason", f.GetRegisteredReason(), &q.ReasonRegistered},
		{"termination_computed", f.GetTerminationComputed(), &q.TerminationComputed},
		{"norsk_hours", f.GetNorskHours(), &q.NorskHours},
	}
	for _, p := range presences {
		pf, ok := presence(p.v)
		if !ok {
			return bad(p.name, "unknown presence filter (WITH or WITHOUT)")
		}
		*p.dst = pf
	}
	if !knownEnum(f.GetTerminationReason()) {
		return bad("termination_reason", "unknown avslutningsårsak")
	}
	q.TerminationReason = f.GetTerminationReason()
	for _, c := range []struct {
		name string
		v    nirv1.Scheme
		dst  *nirv1.Scheme
	}{{"programme_category", f.GetProgrammeCategory(), &q.IntroScheme}, {"training_category", f.GetTrainingCategory(), &q.OpplaeringScheme}} {
		if !knownEnum(c.v) {
			return bad(c.name, "unknown kategori (scheme)")
		}
		*c.dst = c.v
	}
	if y := f.GetYear(); y != 0 {
		if y < 1900 || y > 9999 {
			return bad("year", "must be a data year (1900..9999) or 0")
		}
		q.Year = int(y)
	}
	for _, hb := range []struct {
		name string
		v    float64
	}{{"min_norsk_hours", f.GetMinNorskHours()}, {"max_norsk_hours", f.GetMaxNorskHours()}} {
		if hb.v < 0 || math.IsNaN(hb.v) || math.IsInf(hb.v, 0) {
			return bad(hb.name, "must be a non-negative number of hours")
		}
	}
	if f.GetMinNorskHours() > 0 && f.GetMaxNorskHours() > 0 && f.GetMinNorskHours() > f.GetMaxNorskHours() {
		return bad("max_norsk_hours", "must not be below min_norsk_hours")
	}
	q.MinNorskHours, q.MaxNorskHours = f.GetMinNorskHours(), f.GetMaxNorskHours()
	switch f.GetDeadline() {
	case nirv1.DeadlineFilter_DEADLINE_FILTER_UNSPECIFIED:
	case nirv1.DeadlineFilter_DEADLINE_FILTER_OVERDUE:
		q.Deadline = projections.DeadlineOverdue
	case nirv1.DeadlineFilter_DEADLINE_FILTER_DUE_WITHIN:
		q.Deadline = projections.DeadlineDueWithin
	default:
		return bad("deadline", "unknown deadline filter (OVERDUE or DUE_WITHIN)")
	}
	if f.GetWithinDays() < 0 || f.GetWithinDays() > 3660 {
		return bad("within_days", "must be 0..3660 days")
	}
	q.WithinDays = int(f.GetWithinDays())
	if q.WithinDays == 0 {
		q.WithinDays = DefaultWithinDays
	}
	s, ok := sortKeys[sortBy]
	if !ok {
		return projections.PersonQuery{}, fieldError(connect.CodeInvalidArgument, "sort", "unknown sort key")
	}
	q.Sort = s
	if q.Desc && q.Sort == "" {
		// Name the default order, so that every reader (the CSV export too) reverses it.
		q.Sort = projections.SortPersonKey
	}
	return q, nil
}

var sortKeys = map[nirv1.PersonSort]projections.SortKey{
	nirv1.PersonSort_PERSON_SORT_UNSPECIFIED:      "",
	nirv1.PersonSort_PERSON_SORT_PERSON_KEY:       projections.SortPersonKey,
	nirv1.PersonSort_PERSON_SORT_BIRTH_DATE:       projections.SortBirthDate,
	nirv1.PersonSort_PERSON_SORT_PROGRAMME_START:  projections.SortProgrammeStart,
	nirv1.PersonSort_PERSON_SORT_PROGRAMME_END:    projections.SortProgrammeEnd,
	nirv1.PersonSort_PERSON_SORT_NORSK_DEADLINE:   projections.SortNorskDeadline,
	nirv1.PersonSort_PERSON_SORT_NORSK_HOURS:      projections.SortNorskHours,
	nirv1.PersonSort_PERSON_SORT_TERMINATION_DATE: projections.SortTermination,
}

func presence(p nirv1.PresenceFilter) (projections.Filter, bool) {
	switch p {
	case nirv1.PresenceFilter_PRESENCE_FILTER_UNSPECIFIED:
		return projections.Any, true
	case nirv1.PresenceFilter_PRESENCE_FILTER_WITH:
		return projections.With, true
	case nirv1.PresenceFilter_PRESENCE_FILTER_WITHOUT:
		return projections.Without, true
	}
	return projections.Any, false
}

// knownEnum reports whether e is a value its enum declares (a client may send any number).
func knownEnum(e protoreflect.Enum) bool {
	return e.Descriptor().Values().ByNumber(e.Number()) != nil
}

// personRow converts a row; national ids only when the viewer sees them.
func personRow(r *projections.PersonRow, ids bool) *nirv1.PersonRow {
	out := &nirv1.PersonRow{
		PersonKey:                    r.PersonKey,
		Kommune:                      r.Kommune,
		BirthDate:                    r.BirthDate.Proto(),
		Sex:                          r.Sex,
		Law:                          r.Law,
		PermitDate:                   r.PermitDate.Proto(),
		SettlementDate:               r.SettlementDate.Proto(),
		ProgrammeVedtak:              r.ProgrammeVedtak,
		ProgrammeKommune:             r.ProgrammeKommune,
		ProgrammeStart:               r.ProgrammeStart.Proto(),
		ProgrammeEnd:                 r.ProgrammeEnd.Proto(),
		Tiltak:                       r.Tiltak,
		Sluttmal:                     r.Sluttmal,
		Integreringskontrakt:         r.Integreringskontrakt,
		TerminationDate:              r.TerminationDate.Proto(),
		TerminationReason:            r.TerminationReason,
		TerminationComputed:          r.TerminationComputed,
		TrainingVedtak:               r.TrainingVedtak,
		TrainingScheme:               r.TrainingScheme,
		TrainingStart:                r.TrainingStart.Proto(),
		Norskmal:                     r.Norskmal,
		UtdanningsbakgrunnRegistered: r.Utdanningsbakgrunn != projections.Unknown,
		UpperSecondaryBefore:         r.Utdanningsbakgrunn == projections.Yes,
		NorskHours:                   r.NorskHours.Float(),
		SamfunnskunnskapHours:        r.SamfunnHours.Float(),
		NorskDeadline:                r.NorskDeadline.Proto(),
		NorskDeadlineNote:            r.NorskDeadlineNote,
		NorskCompleted:               r.NorskCompleted,
		StartDeadline:                r.StartDeadline.Proto(),
		TrainingFirst:                r.TrainingFirst.Proto(),
		InactiveFrom:                 r.InactiveFrom.Proto(),
		ProgrammeEndNote:             r.ProgrammeEndNote,
	}
	if ids {
		out.NationalId = r.NationalID
	}
	return out
}

// GetPerson implements QueryService.GetPerson.
func (h *Query) GetPerson(ctx context.Context, req *connect.Request[nirv1.GetPersonRequest]) (*connect.Response[nirv1.GetPersonResponse], error) {
	v, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	pk, err := h.personKey(v, req.Msg.GetPerson(), "person")
	if err != nil {
		return nil, err
	}
	out := &nirv1.GetPersonResponse{}
	return respond(ctx, h, "get person", req.Msg.GetSnapshot(), out, func(db *projections.DB) error {
		key, row, err := h.seenPerson(db, v, req.Msg.GetSnapshot(), pk, req.Msg.GetPerson())
		if err != nil {
			return err
		}
		if row.Unreadable() {
			// Folded while a data key of the person's was damaged or lost on disk: the
			// identity cannot be read, and is shown neither as unknown nor as erased.
			// DataLoss, as for the person's history (Error); the deadlines and the list
			// row, which need none of it, are served.
			return fmt.Errorf("api: the identity of person %s cannot be read: %w", key, sealing.ErrKeyUnreadable)
		}
		out.Person = personRow(row, v.SeesNationalIDs())
		return nil
	})
}

// PersonDeadlines implements QueryService.PersonDeadlines.
func (h *Query) PersonDeadlines(ctx context.Context, req *connect.Request[nirv1.PersonDeadlinesRequest]) (*connect.Response[nirv1.PersonDeadlinesResponse], error) {
	v, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	pk, err := h.personKey(v, m.GetPerson(), "person")
	if err != nil {
		return nil, err
	}
	now, err := h.dateOr("now", m.GetNow())
	if err != nil {
		return nil, err
	}
	within := int(m.GetWithinDays())
	if within < 0 || within > 3660 {
		return nil, fieldError(connect.CodeInvalidArgument, "within_days", "must be 0..3660 days")
	}
	if within == 0 {
		within = DefaultWithinDays
	}
	out := &nirv1.PersonDeadlinesResponse{PersonKey: pk, Now: now.Proto()}
	return respond(ctx, h, "person deadlines", m.GetSnapshot(), out, func(db *projections.DB) error {
		pk, row, err := h.seenPerson(db, v, m.GetSnapshot(), pk, m.GetPerson())
		out.PersonKey = pk
		if err != nil {
			return err
		}
		for _, d := range row.Deadlines(now, within) {
			out.Deadlines = append(out.Deadlines, deadlineStatus(d, row, now))
		}
		return nil
	})
}

var deadlineKinds = map[string]nirv1.DeadlineKind{
	projections.DeadlineProgrammeEnd:   nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_END,
	projections.DeadlineNorsk:          nirv1.DeadlineKind_DEADLINE_KIND_NORSK,
	projections.DeadlineTrainingStart:  nirv1.DeadlineKind_DEADLINE_KIND_TRAINING_START,
	projections.DeadlineProgrammeStart: nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_START,
}

var deadlineStates = map[projections.DeadlineStatus]nirv1.DeadlineState{
	projections.StatusOK:            nirv1.DeadlineState_DEADLINE_STATE_OK,
	projections.StatusDueSoon:       nirv1.DeadlineState_DEADLINE_STATE_DUE_SOON,
	projections.StatusOverdue:       nirv1.DeadlineState_DEADLINE_STATE_OVERDUE,
	projections.StatusCompleted:     nirv1.DeadlineState_DEADLINE_STATE_COMPLETED,
	projections.StatusNotComputable: nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE,
}

// noteEN translates the notes the read models write (Norwegian) for reason_en.
var noteEN = map[string]string{
	"mangler utdanningsbakgrunn": "utdanningsbakgrunn (educational background) is not registered",
	"innen fristen":              "met within the deadline",
	"etter fristen":              "met after the deadline",
}

// deadlineStatus converts one deadline state of row on now (DOMAIN.md 3.2, 3.5, Product
// decisions 3, 4, 6).
func deadlineStatus(d projections.DeadlineState, row *projections.PersonRow, now rules.Date) *nirv1.DeadlineStatus {
	out := &nirv1.DeadlineStatus{
		Kind:     deadlineKinds[d.Name],
		State:    deadlineStates[d.Status],
		Date:     d.Date.Proto(),
		ReasonNb: d.Note,
		ReasonEn: cmp.Or(noteEN[d.Note], d.Note),
	}
	if !d.Date.IsZero() {
		out.DaysLeft = int32(now.DaysUntil(d.Date))
	}
	switch d.Name {
	case projections.DeadlineProgrammeEnd:
		out.Kommune = row.ProgrammeKommune
		out.ProgrammeStart = row.ProgrammeStart.Proto()
		out.Start = row.ProgrammeStart.Proto()
	case projections.DeadlineNorsk:
		out.Start = row.TrainingStart.Proto()
	}
	return out
}

var statLevels = map[nirv1.StatisticsLevel]projections.Level{
	nirv1.StatisticsLevel_STATISTICS_LEVEL_KOMMUNE: projections.LevelKommune,
	nirv1.StatisticsLevel_STATISTICS_LEVEL_FYLKE:   projections.LevelFylke,
	nirv1.StatisticsLevel_STATISTICS_LEVEL_NATION:  projections.LevelNation,
}

func checkYear(y int32) error {
	if y < 1900 || y > 9999 {
		return fieldError(connect.CodeInvalidArgument, "year", "must be a data year (1900..9999)")
	}
	return nil
}

// Statistics implements QueryService.Statistics. A kommune principal gets its own kommune, its
// own fylke and the nation.
func (h *Query) Statistics(ctx context.Context, req *connect.Request[nirv1.StatisticsRequest]) (*connect.Response[nirv1.StatisticsResponse], error) {
	v, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := checkYear(m.GetYear()); err != nil {
		return nil, err
	}
	level, ok := statLevels[m.GetLevel()]
	if !ok {
		return nil, fieldError(connect.CodeInvalidArgument, "level", "must be KOMMUNE, FYLKE or NATION")
	}
	area := m.GetArea()
	// The rows follow the data year's kommune structure, or today's (Product decisions 13).
	structure := rules.Date{Y: int(m.GetYear()), M: time.January, D: 1}
	if m.GetCurrentStructure() {
		structure = h.today()
	}
	// A kommune's own area is also the one it was in the structure: Halden (3101) asking for
	// 3001 or for 30 Viken in 2023 (TestQuery_StatisticsOfRenumberedKommune).
	inStructure := ""
	if own := v.OwnKommune(); own != "" {
		if k, _, ok := rules.KommuneIn(own, structure); ok {
			inStructure = k
		}
	}
	switch level {
	case projections.LevelKommune:
		if area != "" && area == inStructure {
			area = ""
		}
		if area, err = kommuneFor(v, "area", area, false); err != nil {
			return nil, err
		}
	case projections.LevelFylke:
		if area != "" && !isDigits(area, 2) {
			return nil, fieldError(connect.CodeInvalidArgument, "area", "must be a 2-digit fylkesnummer")
		}
		// Its fylke in the structure when it names none or that one; a fylke it names is
		// that fylke, as for every reader: Halden asking for 31 in 2023 got 30 Viken's row
		// under Østfold's name, where an analyst gets no row (31 was no fylke in 2023).
		asked, ownThen := area, inStructure != "" && (area == "" || area == inStructure[:2])
		if ownThen {
			asked = ""
		}
		if area, err = v.Fylke("area", asked); err != nil {
			return nil, accessError(err)
		}
		// A fylke in no period answered an empty table with OK, as a kommune in none did
		// (kommuneFor; TestQuery_FylkeInNoPeriod); a former fylke (30 Viken) answers. The
		// scope first: a kommune principal asking for another number is denied, known or not.
		// The number asked is checked, not the fylke a kommune principal is given.
		if m.GetArea() != "" {
			if _, err := rules.LookupFylke(m.GetArea(), structure); errors.Is(err, rules.ErrNotFylkesnummer) {
				return nil, fieldError(connect.CodeInvalidArgument, "area", err.Error())
			}
		}
		if ownThen {
			// The kommune's fylke in the structure: Halden (3101) was in 30 Viken in 2023.
			area = inStructure[:2]
		}
	case projections.LevelNation:
		if area != "" {
			return nil, fieldError(connect.CodeInvalidArgument, "area", "must be empty at level NATION")
		}
	}
	// Disclosure control (Product decisions 14): the published table, the same for every
	// reader, with counts of 1 to minCount-1 and what would reveal them suppressed; a
	// kommune's own row unsuppressed (a row of its alone: projections.OwnKommuneRow); nird's
	// own system principal unsuppressed.
	minCount := h.minCount
	if v.IsSystem() {
		minCount = 0
	}
	own := projections.OwnKommuneRow(v.OwnKommune(), structure, h.today())
	if level == projections.LevelKommune && len(area) == 4 {
		if a, _, ok := rules.KommuneIn(area, structure); ok {
			area = a
		}
	}
	done, err := h.startStatistics(v.String())
	if err != nil {
		return nil, err
	}
	defer done()
	out := &nirv1.StatisticsResponse{Structure: structure.Proto(), MinCount: int32(max(minCount, 0))}
	return respond(ctx, h, "statistics", m.GetSnapshot(), out, func(db *projections.DB) error {
		rows, mappings, err := db.PublishedStatisticsContext(ctx, int(m.GetYear()), structure, minCount)
		if err != nil {
			return err
		}
		for i := range rows {
			r := &rows[i]
			if r.Level != level || (area != "" && r.Area != area) {
				continue
			}
			if r.Level == projections.LevelKommune && r.Area == own {
				r.Suppressed = nil
			}
			sr := statRow(r, m.GetLevel())
			if len(sr.Suppressed) > 0 {
				out.Footnote = projections.Footnote
			}
			out.Rows = append(out.Rows, sr)
		}
		for _, mp := range mappings {
			out.Mappings = append(out.Mappings, &nirv1.KommuneMapping{From: mp.From, To: mp.To, Candidates: mp.Candidates})
		}
		return nil
	})
}

// statFields names the counters by their StatisticsRow field, for StatisticsRow.suppressed.
var statFields = map[projections.Counter]string{
	projections.CParticipants: "participants", projections.CNew: "new_programmes", projections.COngoing: "ongoing",
	projections.CTerminated: "terminated", projections.CTerminatedRegistered: "terminated_registered",
	projections.CTerminatedComputed: "terminated_computed", projections.CReasonNotRegistered: "reason_not_registered",
	projections.CDirectWorkOrEducation: "direct_work_or_education", projections.CTrainingVedtak: "training_vedtak",
	projections.CNorskHours: "norsk_hours", projections.CSamfunnHours: "samfunnskunnskap_hours",
	projections.CTrainingStarted: "training_started", projections.CTrainingStartedWithin3m: "training_started_within_3_months",
	projections.CHoursPersons: "training_hours_persons",
}

// statRow converts a row; a suppressed field is 0 and named in suppressed.
func statRow(s *projections.StatRow, level nirv1.StatisticsLevel) *nirv1.StatisticsRow {
	out := statRowValues(s, level)
	if s.Suppressed == nil {
		return out
	}
	zero := map[string]func(){
		"participants": func() { out.Participants = 0 }, "new_programmes": func() { out.NewProgrammes = 0 },
		"ongoing": func() { out.Ongoing = 0 }, "terminated": func() { out.Terminated = 0 },
		"terminated_registered": func() { out.TerminatedRegistered = 0 }, "terminated_computed": func() { out.TerminatedComputed = 0 },
		"reason_not_registered": func() { out.ReasonNotRegistered = 0 }, "direct_work_or_education": func() { out.DirectWorkOrEducation = 0 },
		"training_vedtak": func() { out.TrainingVedtak = 0 }, "norsk_hours": func() { out.NorskHours = 0 },
		"samfunnskunnskap_hours": func() { out.SamfunnskunnskapHours = 0 }, "training_started": func() { out.TrainingStarted = 0 },
		"training_started_within_3_months": func() { out.TrainingStartedWithin_3Months = 0 },
		"training_hours_persons":           func() { out.TrainingHoursPersons = 0 },
	}
	for c := projections.Counter(0); c < projections.CReasonBase; c++ {
		// A counter the row has no field for (the persons behind each kind of hours) is
		// not served here; only the exports have it.
		if _, served := statFields[c]; served && s.IsSuppressed(c) {
			out.Suppressed = append(out.Suppressed, statFields[c])
			zero[statFields[c]]()
		}
	}
	// A reason is named suppressed whatever its count: by_reason lists the reasons with a
	// count only, so that a suppressed 0 left out unnamed would read as a published 0, and
	// disclosure control chooses 0 cells as complements (they cost least).
	for r := range projections.NumReasons {
		reason := nirv1.TerminationReason(r)
		if s.IsSuppressed(projections.CReasonBase + projections.Counter(r)) {
			out.Suppressed = append(out.Suppressed, "by_reason."+strings.TrimPrefix(reason.String(), "TERMINATION_REASON_"))
		}
	}
	var reasons []*nirv1.ReasonCount
	for _, rc := range out.ByReason {
		if !s.IsSuppressed(projections.CReasonBase + projections.Counter(rc.GetReason())) {
			reasons = append(reasons, rc)
		}
	}
	out.ByReason = reasons
	if s.ShareDirectSuppressed() {
		out.ShareDirectWorkOrEducation = 0
		out.Suppressed = append(out.Suppressed, "share_direct_work_or_education")
	}
	if s.ShareWithin3mSuppressed() {
		out.ShareTrainingStartedWithin_3Months = 0
		out.Suppressed = append(out.Suppressed, "share_training_started_within_3_months")
	}
	return out
}

func statRowValues(s *projections.StatRow, level nirv1.StatisticsLevel) *nirv1.StatisticsRow {
	out := &nirv1.StatisticsRow{
		Year:                               int32(s.Year),
		Level:                              level,
		Area:                               s.Area,
		Participants:                       s.Get(projections.CParticipants),
		NewProgrammes:                      s.Get(projections.CNew),
		Ongoing:                            s.Get(projections.COngoing),
		Terminated:                         s.Get(projections.CTerminated),
		TerminatedRegistered:               s.Get(projections.CTerminatedRegistered),
		TerminatedComputed:                 s.Get(projections.CTerminatedComputed),
		ReasonNotRegistered:                s.Get(projections.CReasonNotRegistered),
		DirectWorkOrEducation:              s.Get(projections.CDirectWorkOrEducation),
		TrainingVedtak:                     s.Get(projections.CTrainingVedtak),
		NorskHours:                         projections.Hours(s.Get(projections.CNorskHours)).Float(),
		SamfunnskunnskapHours:              projections.Hours(s.Get(projections.CSamfunnHours)).Float(),
		TrainingStarted:                    s.Get(projections.CTrainingStarted),
		TrainingStartedWithin_3Months:      s.Get(projections.CTrainingStartedWithin3m),
		ShareDirectWorkOrEducation:         s.ShareDirectWorkOrEducation(),
		ShareTrainingStartedWithin_3Months: s.ShareStartedWithin3Months(),
		TrainingHoursPersons:               s.Get(projections.CHoursPersons),
	}
	for r := range projections.NumReasons {
		reason := nirv1.TerminationReason(r)
		if n := s.Reason(reason); n != 0 {
			out.ByReason = append(out.ByReason, &nirv1.ReasonCount{Reason: reason, Count: n})
		}
	}
	return out
}

// TerminatedReport implements QueryService.TerminatedReport (DOMAIN.md 6.2), a page at a
// time with the whole report's counts. A kommune principal gets its own kommune's
// programmes, and a page token only of its own report. Sorted UNREGISTERED_FIRST, the
// rows without a registered avslutningsårsak come first (unregisteredFirst).
func (h *Query) TerminatedReport(ctx context.Context, req *connect.Request[nirv1.TerminatedReportRequest]) (*connect.Response[nirv1.TerminatedReportResponse], error) {
	v, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := checkYear(m.GetYear()); err != nil {
		return nil, err
	}
	kommune, err := kommuneFor(v, "kommune", m.GetKommune(), false)
	if err != nil {
		return nil, err
	}
	if !knownEnum(m.GetLaw()) {
		return nil, fieldError(connect.CodeInvalidArgument, "law", "unknown law")
	}
	reg, ok := presence(m.GetRegisteredReason())
	if !ok {
		return nil, fieldError(connect.CodeInvalidArgument, "registered_reason", "unknown presence filter (WITH or WITHOUT)")
	}
	if !knownEnum(m.GetProgrammeCategory()) {
		return nil, fieldError(connect.CodeInvalidArgument, "programme_category", "unknown kategori (scheme)")
	}
	computed, ok := presence(m.GetComputed())
	if !ok {
		return nil, fieldError(connect.CodeInvalidArgument, "computed", "unknown presence filter (WITH or WITHOUT)")
	}
	if m.GetPageSize() < 0 || m.GetPageSize() > projections.MaxPageSize {
		return nil, fieldError(connect.CodeInvalidArgument, "page_size", "must be 0.."+strconv.Itoa(projections.MaxPageSize))
	}
	if !knownEnum(m.GetSort()) {
		return nil, fieldError(connect.CodeInvalidArgument, "sort", "unknown sort")
	}
	// Rows of one kind (a registered_reason filter) are in the read model's order either way.
	read := (*projections.DB).Terminated
	if m.GetSort() == nirv1.TerminatedSort_TERMINATED_SORT_UNREGISTERED_FIRST && reg == projections.Any {
		read = unregisteredFirst
	}
	q := projections.ReportQuery{Year: int(m.GetYear()), Kommune: kommune, Law: m.GetLaw(), Scheme: m.GetProgrammeCategory(), Registered: reg,
		Computed: computed, PageSize: int(m.GetPageSize()), PageToken: m.GetPageToken(), Today: h.today()}
	out := &nirv1.TerminatedReportResponse{}
	return respond(ctx, h, "terminated report", m.GetSnapshot(), out, func(db *projections.DB) error {
		rep, err := read(db, q)
		if errors.Is(err, projections.ErrReportPageToken) {
			return fieldError(connect.CodeInvalidArgument, "page_token", "not a page token of this year's report of this kommune (a next_page_token of it, or a row's decimal offset)")
		}
		if err != nil {
			return err
		}
		out.Total, out.NextPageToken = int32(rep.Total), rep.NextPageToken
		out.WithReason, out.WithoutReason = int32(rep.WithReason), int32(rep.WithoutReason)
		for i := range rep.Rows {
			t := &rep.Rows[i]
			out.Rows = append(out.Rows, &nirv1.TerminatedParticipant{
				PersonKey: t.PersonKey, Kommune: t.Kommune, Law: t.Law,
				ProgrammeStart: t.ProgrammeStart.Proto(), TerminationDate: t.Date.Proto(),
				Reason: t.Reason, ReasonRegistered: t.ReasonRegistered(), Computed: t.Computed, EventId: t.EventID,
			})
		}
		reasons := make([]nirv1.TerminationReason, 0, len(rep.ByReason))
		for r := range rep.ByReason {
			reasons = append(reasons, r)
		}
		sort.Slice(reasons, func(i, j int) bool { return reasons[i] < reasons[j] })
		for _, r := range reasons {
			out.ByReason = append(out.ByReason, &nirv1.ReasonCount{Reason: r, Count: int64(rep.ByReason[r])})
		}
		return nil
	})
}

// AuditHistory implements QueryService.AuditHistory. The events hold national ids, so only
// principals that see them may read it: a kommune the persons it has, and its own period of
// the persons it had (access.Scope.Visible).
func (h *Query) AuditHistory(ctx context.Context, req *connect.Request[nirv1.AuditHistoryRequest]) (*connect.Response[nirv1.AuditHistoryResponse], error) {
	v, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := v.CanReadHistory(); err != nil {
		return nil, accessError(err)
	}
	pk, err := h.personKey(v, req.Msg.GetPerson(), "person")
	if err != nil {
		return nil, err
	}
	// Taken before the read models' transaction, which waiting reads would hold open.
	done, err := h.reads.acquire(ctx, v.String())
	if err != nil {
		return nil, readError(ctx, h.fails, "audit history", err)
	}
	defer done()
	out := &nirv1.AuditHistoryResponse{PersonKey: pk}
	err = h.use(ctx, "audit history", req.Msg.GetSnapshot(), func(db *projections.DB) error {
		pk, a, found, err := follow(db, pk, req.Msg.GetPerson())
		if err != nil {
			return err
		}
		out.PersonKey = pk
		// Decided before the history is read and folded (access.Scope.Visible decides
		// again on the fold below, and narrows a former kommune's view).
		if err := hiddenFrom(v, a, found); err != nil {
			return err
		}
		// From a snapshot, a kommune reads what it may read of the person today as well
		// (readsToday): a kommune the person has left since, its own period only.
		today, erasedToday := func(*nirv1.Event) bool { return true }, false
		if readsToday(v, req.Msg.GetSnapshot()) {
			if today, erasedToday, err = h.visibleToday(v, pk, req.Msg.GetPerson()); err != nil {
				return err
			}
		}
		hist, st, err := foldedHistory(db, pk)
		if err != nil {
			return err
		}
		then, err := v.Visible(st)
		if err != nil {
			return accessError(err)
		}
		visible := func(ev *nirv1.Event) bool { return then(ev) && today(ev) }
		for _, e := range hist {
			if !visible(e.Event) {
				continue
			}
			if st.Erased || erasedToday {
				rules.RedactIdentity(e.Event)
			}
			ae := &nirv1.AuditEntry{Sequence: e.Seq, Event: e.Event, Kind: e.Kind, Effective: e.Effective}
			for _, c := range e.CorrectedBy {
				if by, ok := st.Events[c.EventID]; ok && !visible(by.Event) {
					continue
				}
				ae.CorrectedBy = append(ae.CorrectedBy, &nirv1.Correction{Kind: c.Kind, EventId: c.EventID, Sequence: c.Seq})
			}
			out.Entries = append(out.Entries, ae)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Encoded before done releases the slot.
	return connect.NewResponse(encodedInSlot(req, out)), nil
}
