package eventstore

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestRepeatedWarning: a failure that repeats at every poll is logged once, then once every
// repeatedWarningEvery with how often it happened; a new failure, or the same after a
// success, is logged at once.
func TestRepeatedWarning(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	lines := func() int { return strings.Count(buf.String(), "\n") }
	var r repeatedWarning
	unreadable := errors.New("event 7 unreadable")
	for range 50 {
		r.warn(log, "checkpoint not made", unreadable)
	}
	if lines() != 1 {
		t.Fatalf("50 polls failing alike logged %d lines, want 1:\n%s", lines(), buf.String())
	}
	r.warn(log, "checkpoint not made", errors.New("timeout"))
	if lines() != 2 {
		t.Fatalf("a new failure logged %d lines in all, want 2", lines())
	}
	r.warn(log, "checkpoint not made", errors.New("timeout"))
	r.at = r.at.Add(-repeatedWarningEvery)
	r.warn(log, "checkpoint not made", errors.New("timeout"))
	if lines() != 3 || !strings.Contains(buf.String(), "repeated=2") {
		t.Fatalf("after %s: %d lines, want 3 with repeated=2:\n%s", repeatedWarningEvery, lines(), buf.String())
	}
	r.clear()
	r.warn(log, "checkpoint not made", errors.New("timeout"))
	if lines() != 4 {
		t.Fatalf("the failure again after a success logged %d lines in all, want 4", lines())
	}
}
