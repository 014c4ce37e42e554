package api

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/internal/syncbuf"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/ratelog"
	"github.com/introreg/nir/sealing"
)

// TestQuery_DamagedKeyLogBounded: while a person's data key is damaged every request for the
// person fails alike, DataLoss, and each was a line of nird's log: an outage of the key store
// a line per request. Now the failure logs its first lines, then one a minute saying how many
// were left out; the error's text, which may quote a national id, is logged redacted.
func TestQuery_DamagedKeyLogBounded(t *testing.T) {
	var victim atomic.Value // the person key whose events do not open, and its national id
	victim.Store(qPerson{})
	open := func(ev *nirv1.Event) error {
		if p := victim.Load().(qPerson); ev.GetPersonKey() == p.key {
			return fmt.Errorf("%w: the data key of the event of %s is damaged", sealing.ErrKeyUnreadable, p.fnr)
		}
		return nil
	}
	var logs syncbuf.Buffer
	w := startQueryOpen(t, QueryConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, open)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	w.q.fails.kinds.Now = func() time.Time { return time.Unix(0, now.Load()) } // before any request
	p1 := w.people["p1"]
	victim.Store(p1)
	oslo := w.query(qtOslo)
	history := func() {
		t.Helper()
		_, err := oslo.AuditHistory(context.Background(), connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: p1.key}}))
		if connect.CodeOf(err) != connect.CodeDataLoss {
			t.Fatalf("the history of a person whose data key is damaged: %v; want DataLoss", err)
		}
	}
	const requests = 300
	for range requests {
		history()
	}
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "data key is damaged") {
				out = append(out, l)
			}
		}
		return out
	}
	if got := lines(); len(got) != ratelog.DefaultKindsBurst {
		t.Fatalf("%d failed requests logged %d lines, want %d:\n%s", requests, len(got), ratelog.DefaultKindsBurst, logs.String())
	}
	now.Add(int64(time.Minute))
	for range 5 {
		history()
	}
	got := lines()
	if len(got) != ratelog.DefaultKindsBurst+1 || !strings.Contains(got[len(got)-1], fmt.Sprintf("not_logged=%d", requests-ratelog.DefaultKindsBurst)) {
		t.Errorf("a minute on, 5 more failed requests logged %d lines in all, the last without the %d left out: %s", len(got), requests-ratelog.DefaultKindsBurst, got[len(got)-1])
	}
	if strings.Contains(logs.String(), p1.fnr) || !strings.Contains(logs.String(), "op=\"audit history\"") {
		t.Errorf("the log names the person's national id, or not the operation:\n%s", got[0])
	}
}
