package adversarial

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
)

// TestDamage_LeaseRecordFlipped: nird is killed while it holds the regelmotor's lease, a byte
// of the lease's record is flipped in the lease bucket's message block (a failing disk), and
// nird starts again within the lease's term (as a supervisor restarts it). The server answers
// the record as no message, and, since it was not past its age at the start, never expires it
// and takes no write after it: before, the restarted nird never took the lease again
// (nir_regelmotor_lease_held stayed 0) and said nothing above debug level. Now it finds the
// record damaged, logs an error, makes the lease bucket again and takes the lease. (A record
// already past the term at the start, or a damaged last record of the block, the server drops
// when it restores the stream.)
func TestDamage_LeaseRecordFlipped(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data, "--lease-ttl", "30s")
	registerPersons(t, nd, 0, 2)
	for deadline := time.Now().Add(30 * time.Second); metric(t, nd, "nir_regelmotor_lease_held") != 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the regelmotor's lease was not taken within 30s")
		}
	}
	nd.Stop(t, syscall.SIGKILL) // holding the lease: it is not given up
	var holder []byte
	withStore(t, data, func(js jetstream.JetStream) {
		kv, err := js.KeyValue(context.Background(), eventstore.LeaseBucket)
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(context.Background(), "regelmotor")
		if err != nil {
			t.Fatalf("the lease's record: %v", err)
		}
		holder = e.Value()
		// A record after it, as the checkpoints lease's renewals would be: the server drops
		// a damaged record at the end of the last block at start, as a torn write.
		if _, err := kv.Put(context.Background(), "after", []byte("x")); err != nil {
			t.Fatal(err)
		}
	})
	// The holder's name in the lease's last record (both leases name the same holder, so
	// the record is found by its subject first).
	blk := filepath.Join(data, "jetstream", "jetstream", "$G", "streams", "KV_"+eventstore.LeaseBucket, "msgs", "1.blk")
	b, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.LastIndex(b, []byte("$KV."+eventstore.LeaseBucket+".regelmotor"))
	off := bytes.Index(b[max(at, 0):], holder)
	if at < 0 || off < 0 {
		t.Fatal("the lease's record is not in the block")
	}
	b[at+off+len(holder)/2] ^= 0x01
	if err := os.WriteFile(blk, b, 0o600); err != nil {
		t.Fatal(err)
	}

	nd = startNird(t, data, "--lease-ttl", "30s")
	for deadline := time.Now().Add(60 * time.Second); metric(t, nd, "nir_regelmotor_lease_held") != 1; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the regelmotor's lease was not taken again within 60s of a 30s term")
		}
	}
	if got := metric(t, nd, "nir_regelmotor_lease_bucket_remade_total"); got != 1 {
		t.Errorf("nir_regelmotor_lease_bucket_remade_total = %v, want 1", got)
	}
	awaitLog(t, nd, func(l string) bool {
		return strings.Contains(l, "level=ERROR") && strings.Contains(l, "cannot be read back (damaged on disk)")
	})
}
