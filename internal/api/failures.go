package api

import (
	"context"
	"log/slog"

	"github.com/introreg/nir/ratelog"
	"github.com/introreg/nir/rules"
)

// failures logs what a caller cannot act on, where its request's error is classified
// (callerError, readError): a line per request, bounded by kind (the message). While the
// register fails (no room on disk, a damaged data key), every request fails alike, and an
// outage was a line per request; now each kind logs its first lines (ratelog.DefaultKindsBurst),
// then one a minute saying how many were left out since (not_logged). The counts of the
// requests themselves are nird's metrics (nir_api_requests_total by code).
type failures struct {
	log   *slog.Logger
	kinds ratelog.Kinds
}

func newFailures(log *slog.Logger) *failures { return &failures{log: log} }

// error logs msg, a constant, at Error with the operation and the error, any national id in
// its text masked: the read models' and the store's messages may quote what the caller sent.
func (f *failures) error(ctx context.Context, msg, op string, err error, attrs ...any) {
	f.logAt(ctx, slog.LevelError, msg, op, err, attrs...)
}

// warn is error at Warn.
func (f *failures) warn(ctx context.Context, msg, op string, err error, attrs ...any) {
	f.logAt(ctx, slog.LevelWarn, msg, op, err, attrs...)
}

func (f *failures) logAt(ctx context.Context, level slog.Level, msg, op string, err error, attrs ...any) {
	f.kinds.Log(ctx, f.log, level, msg, append([]any{"op", op, "err", rules.RedactIDs(err.Error())}, attrs...)...)
}
