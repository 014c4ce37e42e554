package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"connectrpc.com/connect"

	"github.com/introreg/nir/rules"
)

// Recover makes a panic in a Connect handler that call's Internal error, logged at error
// level with national ids masked (a panic's value may quote the request), and counted by
// panicked when it is not nil. Without it, net/http recovers the panic itself: it logs the
// value as it is to the server's error log and cuts the connection, so the client sees a
// broken stream rather than an error.
func Recover(log *slog.Logger, panicked func()) connect.HandlerOption {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return connect.WithRecover(func(_ context.Context, spec connect.Spec, _ http.Header, r any) error {
		if panicked != nil {
			panicked()
		}
		return PanicError(log, "panic serving a call", r, "procedure", spec.Procedure)
	})
}

// PanicError logs the recovered panic r as msg at error level with attrs and its stack,
// national ids masked in both (a panic's value may quote the request), and returns the
// Internal error the request is answered with: for Recover, and for the NATS ingress's own
// goroutines.
func PanicError(log *slog.Logger, msg string, r any, attrs ...any) *connect.Error {
	log.Error(msg, append(attrs, "panic", rules.RedactIDs(fmt.Sprint(r)), "stack", rules.RedactIDs(string(debug.Stack())))...)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}
