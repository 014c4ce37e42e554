package ingest_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/introreg/nir/internal/access"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

type recorder struct {
	mu     sync.Mutex
	counts map[string]int
}

func (r *recorder) add(k string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	r.counts[k] += n
}

func (r *recorder) Appended(t ingest.Transport, role string, stored, dup int) {
	r.add(fmt.Sprintf("stored %s %s", t, role), stored)
	r.add(fmt.Sprintf("duplicate %s %s", t, role), dup)
}
func (r *recorder) Refused(t ingest.Transport, role, rule string) {
	r.add(fmt.Sprintf("refused %s %s %s", t, role, rule), 1)
}
func (r *recorder) Conflict(t ingest.Transport, role string) {
	r.add(fmt.Sprintf("conflict %s %s", t, role), 1)
}
func (r *recorder) Unconfirmed(t ingest.Transport, role string) {
	r.add(fmt.Sprintf("unconfirmed %s %s", t, role), 1)
}
func (r *recorder) FoldFault(t ingest.Transport, role string) {
	r.add(fmt.Sprintf("foldfault %s %s", t, role), 1)
}

// TestService_Observer: the append path counts every outcome, by the transport the entry
// point named and the scope's role, so that appends over NATS, from the console and by nird
// itself are counted like those over the API (issue 16: metrics from the source).
func TestService_Observer(t *testing.T) {
	ctx := context.Background()
	_, store := newService(t)
	keys, _ := personkey.New([]byte("test secret for the ingest tests"))
	rec := &recorder{}
	svc := ingest.New(ingest.Config{Store: store, Keys: keys, Now: func() time.Time { return fixedNow }, Observer: rec})

	id, reg := person(21, false)
	if _, err := svc.Append(ingest.WithTransport(ctx, ingest.TransportNATS), oslo, []*nirv1.Registration{reg, offer(id)}); err != nil {
		t.Fatal(err)
	}
	// The same registration resent over HTTP: a duplicate, stored nothing.
	if _, err := svc.Append(ingest.WithTransport(ctx, ingest.TransportHTTP), oslo, []*nirv1.Registration{reg}); err != nil {
		t.Fatal(err)
	}
	// A second registration of the person from the console: refused by a rule.
	_, twice := person(21, false)
	if _, err := svc.Append(ingest.WithTransport(ctx, ingest.TransportConsole), oslo, []*nirv1.Registration{twice}); err == nil {
		t.Fatal("second registration accepted")
	}
	// An expectation the person is past, from nird itself (no transport named).
	stale := offer(id)
	zero := uint64(0)
	stale.ExpectedLastSequence = &zero
	system := access.For(auth.Principal{Name: "regelmotor", Role: auth.RoleSystem})
	if _, err := svc.Append(ctx, system, []*nirv1.Registration{stale}); err == nil {
		t.Fatal("stale expectation accepted")
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var refusals []string
	for k := range rec.counts {
		if len(k) > 7 && k[:7] == "refused" {
			refusals = append(refusals, k)
		}
	}
	sort.Strings(refusals)
	for k, want := range map[string]int{
		"stored nats kommune":      2,
		"duplicate nats kommune":   0,
		"stored http kommune":      0,
		"duplicate http kommune":   1,
		"conflict internal system": 1,
	} {
		if got := rec.counts[k]; got != want {
			t.Errorf("%s = %d, want %d (all: %v)", k, got, want, rec.counts)
		}
	}
	if len(refusals) == 0 || refusals[0][:len("refused console kommune ")] != "refused console kommune " {
		t.Errorf("refusals %q, want one from the console by a kommune, with its rule code", refusals)
	}
}
