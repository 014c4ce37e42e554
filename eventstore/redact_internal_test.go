package eventstore

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRedactServerLine: the embedded server's log lines keep who was refused and what
// kind of subject, but not a subject a client chose, nor anything shaped like a national id.
func TestRedactServerLine(t *testing.T) {
	for _, tt := range []struct {
		format string
		v      []any
		want   string
	}{
		{`%s - Publish Violation - Subject %q`, []any{"127.0.0.1:4242 - cid:9", "nir.ev.02013299997"},
			`127.0.0.1:4242 - cid:9 - Publish Violation - Subject "nir.…"`},
		{`Subscription Violation - Subject %q, Queue: %q, SID %s`, []any{"_INBOX.oslo.>", "q.x", "7"},
			`Subscription Violation - Subject "_INBOX.…", Queue: "q.…", SID 7`},
		{`Permissions Violation for Publish to %q`, []any{"02013299997"}, `Permissions Violation for Publish to "<redacted>"`},
		{`Publish Violation - Reply %q`, []any{`a."b.c`}, `Publish Violation - Reply "a.…"`},
		{`client %s said 020132999971`, []any{"x"}, `client x said <redacted>`},
		{`Listening for client connections on %s`, []any{"127.0.0.1:4222"}, `Listening for client connections on 127.0.0.1:4222`},
	} {
		got := redactServerLine(tt.format, tt.v)
		if got != tt.want {
			t.Errorf("redactServerLine(%q, %q) = %q, want %q", tt.format, tt.v, got, tt.want)
		}
		if strings.Contains(got, "02013299997") {
			t.Errorf("a national id survived: %q", got)
		}
	}
}

// TestServerLogger_ViolationFlood: a client refused with every message it sends does not
// fill nird's log: violationsPerMinute lines at once, then as many a minute, the first of
// them saying how many were left out; other lines untouched.
func TestServerLogger_ViolationFlood(t *testing.T) {
	var b strings.Builder
	now := time.Now()
	l := &serverLogger{log: slog.New(slog.NewTextHandler(&b, nil)), violations: newViolationBound()}
	l.violations.Now = func() time.Time { return now }
	for range 1000 {
		l.Errorf("%s - Publish Violation - Subject %q", "cid:1", "nir.ev.x")
	}
	l.Errorf("JetStream failure %s", "disk full")
	if got := strings.Count(b.String(), "Publish Violation"); got != violationsPerMinute {
		t.Errorf("%d violation lines logged, want %d", got, violationsPerMinute)
	}
	if !strings.Contains(b.String(), "disk full") {
		t.Error("another error line was dropped")
	}
	if strings.Contains(b.String(), "violations_not_logged") {
		t.Errorf("a line of the burst counts violations left out:\n%s", b.String())
	}
	now = now.Add(time.Minute) // the next minute
	for range 1000 {
		l.Errorf("Subscription Violation - Subject %q", "nir.ev.>")
	}
	if got := strings.Count(b.String(), "Subscription Violation"); got != violationsPerMinute {
		t.Errorf("%d violation lines logged the next minute, want %d", got, violationsPerMinute)
	}
	if !strings.Contains(b.String(), `level=ERROR msg="Subscription Violation - Subject \"nir.…\"" violations_not_logged=980`) {
		t.Errorf("no count of the 980 left out:\n%s", b.String()[max(0, b.Len()-400):])
	}
}
