package eventstore_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
)

// TestLease_RecordDamaged: the holder of a lease dies (no give-up) and a byte of its record is
// flipped on disk. The server answers the record as no message, never expires it by the
// bucket's max age, and cannot write after it: before, nobody took the lease again (20 s of
// a 2 s term in the probe that found it), so the regelmotor and the checkpoint writer
// stopped for good, logged at debug level only. Now the next process finds the record
// damaged, says so in the error log, makes the lease bucket again and takes the lease; a
// lease of another name held meanwhile is lost at its next renewal and taken again.
func TestLease_RecordDamaged(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "js")
	cfg := eventstore.Config{Dir: dir, RequestTimeout: time.Second}
	s, err := eventstore.Open(setupCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 2 * time.Second
	holder := "nird-that-died-holding-it"
	first := s.NewLease(eventstore.LeaseOptions{Name: "regelmotor", Holder: holder, TTL: ttl})
	lctx, stop := context.WithCancel(ctx)
	ran := make(chan string, 10)
	go func() {
		_ = first.Run(lctx, func(ctx context.Context) error { ran <- holder; <-ctx.Done(); return nil })
	}()
	<-ran
	s.Close() // dies: the lease is not given up
	stop()
	natstest.FlipInBlock(t, dir, "KV_"+eventstore.LeaseBucket, []byte(holder))

	s, logs := openLogged(t, cfg)
	lctx, stop = context.WithCancel(ctx)
	defer stop()
	other := s.NewLease(eventstore.LeaseOptions{Name: "checkpoints", Holder: "next", TTL: ttl})
	go func() {
		_ = other.Run(lctx, func(ctx context.Context) error { ran <- "checkpoints"; <-ctx.Done(); return nil })
	}()
	if got := <-ran; got != "checkpoints" {
		t.Fatalf("%s ran first", got)
	}
	next := s.NewLease(eventstore.LeaseOptions{Name: "regelmotor", Holder: "next", TTL: ttl})
	go func() {
		_ = next.Run(lctx, func(ctx context.Context) error { ran <- "regelmotor"; <-ctx.Done(); return nil })
	}()
	deadline := time.After(20 * ttl)
	for took := map[string]int{}; took["regelmotor"] == 0 || took["checkpoints"] == 0; {
		select {
		case name := <-ran:
			took[name]++
		case <-deadline:
			t.Fatalf("after %s: taken %v; want the damaged lease taken, and the other lease taken again after the bucket was made again\n%s", 20*ttl, took, logs.String())
		}
	}
	if st := next.Stats(); st.Remade != 1 {
		t.Errorf("Remade = %d, want 1", st.Remade)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "cannot be read back (damaged on disk)") {
		t.Errorf("the damaged record was not logged as an error:\n%s", logs.String())
	}
}
