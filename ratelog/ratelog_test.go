package ratelog

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/syncbuf"
)

// TestMinute_OneLineAMinute: a flood of events makes one line, then none within the
// minute; the count goes on.
func TestMinute_OneLineAMinute(t *testing.T) {
	var out syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	m := Minute{Msg: "bad headers"}
	for range 1000 {
		m.Note(log, "connection", "c")
	}
	if lines := strings.Count(out.String(), "\n"); lines != 1 || !strings.Contains(out.String(), "since_last_log=1 total=1") || !strings.Contains(out.String(), "connection=c") {
		t.Fatalf("1000 events logged as:\n%s", out.String())
	}
	if m.n != 1000 {
		t.Fatalf("%d events counted, want 1000", m.n)
	}
	m.last = m.last.Add(-2 * 60e9) // a minute on
	m.Note(log)
	if !strings.Contains(out.String(), "since_last_log=1000 total=1001") {
		t.Fatalf("the line after a minute does not count those left out:\n%s", out.String())
	}
}
