package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestTransientStart: the start-up steps wait for a cluster that is not ready (a leader
// being elected, servers not yet known to the meta leader, so an R3 stream finds no
// peers), and give up at once on what waiting does not mend.
func TestTransientStart(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{fmt.Errorf("eventstore: create stream NIR_EVENTS: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement"}), true},
		{context.DeadlineExceeded, true},
		{&jetstream.APIError{Code: 503, ErrorCode: jetstream.JSErrCodeJetStreamNotEnabled}, false},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeBadRequest, Description: "bad request"}, false},
		{errors.New("nats: Authorization Violation"), false},
	} {
		if got := transientStart(c.err); got != c.want {
			t.Errorf("transientStart(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
