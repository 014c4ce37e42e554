package projections

import (
	"errors"
	"fmt"
)

// ErrClosed is returned when a DB or Projector is used after Close.
var ErrClosed = errors.New("projections: closed")

// ErrNotFound is returned when a person, snapshot or report asked for does not exist.
var ErrNotFound = errors.New("projections: not found")

// ErrInvalidArgument is returned when a query argument (filter, sort key, page token, year,
// snapshot name) is not valid; the wrapped message names the argument.
var ErrInvalidArgument = errors.New("projections: invalid argument")

// ErrReportPageToken is returned when a report's page token is not a place in the query's
// own report (malformed, or of another year or kommune); it is an ErrInvalidArgument.
var ErrReportPageToken = fmt.Errorf("%w: page_token: not a page token of this year's report of this kommune", ErrInvalidArgument)

// ErrSchema is returned when a read-model file was written by an incompatible schema version
// and cannot be used without a rebuild (Open resets such a file; a snapshot cannot be reset).
var ErrSchema = errors.New("projections: read-model schema version mismatch")

// ErrRebuildRunning is returned when a rebuild is asked for while one is running.
var ErrRebuildRunning = errors.New("projections: a rebuild is already running")

// ErrStreamLost is returned by a rebuild that found events missing from the stream (a record
// its store cannot read back) which the live read models hold: swapping it in would drop
// them, and the live file is then the only copy outside a backup. It is not swapped in; the
// wrapped message names the first such sequence. An as-of replay that found such a gap is
// refused likewise: its figures would lack an event that was known.
var ErrStreamLost = errors.New("projections: the stream lacks events the live read models hold")

// ErrReplayRunning is returned when an as-of replay is asked for while one is running.
var ErrReplayRunning = errors.New("projections: an as-of replay is already running")

// ErrCorrupt is returned when a stored value cannot be decoded; the wrapped message names the
// bucket and key (never a national id: keys are person keys).
var ErrCorrupt = errors.New("projections: corrupt read-model value")

// ErrExists is returned when a snapshot is to be kept under a name that is taken and the
// caller did not ask to replace it.
var ErrExists = errors.New("projections: already exists")

// ErrUnavailable is returned by queries on the live read models while they are being rebuilt
// because they do not belong to the stream or were found damaged (Projector.Repairing): they
// are not served until then. Snapshots stay available.
var ErrUnavailable = errors.New("projections: read models unavailable")

// ErrUnknownKinds is returned by the regelmotor once the live models have folded an event of
// a kind, or with fields, this build does not know (a newer nird wrote it): it computes no
// termination more, and leaves the regelmotor to the newer nird.
var ErrUnknownKinds = errors.New("projections: the read models hold events this nird cannot wholly read; the regelmotor is for a newer nird")

// ErrExportDisk is returned by ExportCSV when its temporary file would take the exports
// sharing its ExportDisk beyond their bytes; nothing has been written to its writer then.
var ErrExportDisk = errors.New("projections: the CSV exports' disk budget is spent")

// ErrShortReplay is returned when the stream's replay ended without an error before the
// last sequence it was asked for (a node cut off by a partition answering from a store that
// ends early). Nothing is taken as applied past the last record delivered: a catch-up keeps
// its checkpoint there (Run tries again after a pause), a rebuild is not swapped in.
var ErrShortReplay = errors.New("projections: the stream's replay ended before its last sequence")
