package adversarial

import (
	"context"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// TestDamage_KeyBlockCut: the data-key bucket's message block cut short (a torn write). The
// NATS server drops the entries it lost at start, with a warning of its own, and counts them
// no more: the persons whose keys they held have, to the bucket, never had one. A key a
// stored event names is stored before the event, and a destroyed one leaves its purge
// marker, so such an entry was lost. Before, a lookup answered "no key": an append for the
// person was answered Unavailable, "retry shortly", for ever, and the read models read the
// person as erased without a word. Now the append is refused with DataLoss, nothing
// stored, and the loss is logged as an error naming the key; the live models keep serving
// what they folded.
func TestDamage_KeyBlockCut(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	ps := registerPersons(t, nd, 0, 20)
	want := settledAnswers(t, nd)
	nd.Stop(t, syscall.SIGTERM)
	natstest.CutBlock(t, filepath.Join(data, "jetstream"), "KV_"+eventstore.KeyBucket)

	nd = startNird(t, data)
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Errorf("at start the answers changed (%d persons, want %d)", personCount(got), personCount(want))
	}
	client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{offer(ps[len(ps)-1])}}))
	if connect.CodeOf(err) != connect.CodeDataLoss {
		t.Errorf("an append for a person whose data key was lost: %v, want DataLoss", err)
	}
	// The log line comes through nird's stderr, which may reach the test after the answer.
	awaitLog(t, nd, func(l string) bool {
		return strings.Contains(l, "level=ERROR") && strings.Contains(l, "neither in the key bucket nor destroyed") && strings.Contains(l, "key_id=")
	})
	nd.Stop(t, syscall.SIGTERM)
}
