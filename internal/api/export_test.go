package api

import (
	"context"
	"log/slog"
)

// Error is callerError with a bound of its own, for package api_test's tests.
func Error(ctx context.Context, log *slog.Logger, op string, err error) error {
	return callerError(ctx, newFailures(log), op, err)
}
