package adversarial

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// flipDataKey flips one byte of the data-key entry that the event at seq names (nird
// stopped), in the key bucket's message block, and returns the entry's id.
func flipDataKey(t *testing.T, data string, seq uint64) string {
	t.Helper()
	var id string
	var wrapped []byte
	withStore(t, data, func(js jetstream.JetStream) {
		ctx := context.Background()
		st, err := js.Stream(ctx, eventstore.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.KeyValue(ctx, eventstore.KeyBucket)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k := range keys.Keys() {
			if k != "_master" && bytes.Contains(m.Data, []byte(k)) {
				id = k
			}
		}
		if id == "" {
			t.Fatalf("no data key named by the event at seq %d", seq)
		}
		e, err := kv.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wrapped = e.Value()
	})
	natstest.FlipInBlock(t, filepath.Join(data, "jetstream"), "KV_"+eventstore.KeyBucket, wrapped)
	return id
}

// TestDamage_DataKeyFlipped: one byte of a person's data-key entry (the key that seals the
// registration's national id and birth date) flipped in the key bucket's message block while
// nird is stopped (a failing disk). The server answers the damaged record as no message, to
// the bucket's watch and to a get alike, while its stream still counts it.
//
// What this pins, step by step:
//   - nird starts, after the key store's load has waited two request timeouts (20 s) for the
//     watch's marker of its initial values, which never comes (the server counts the damaged
//     entry as pending), and says so in an error log. Before, the load failed and nird did not
//     start at all.
//   - At start the live models keep serving what they folded when the key was whole.
//   - The person's history (which opens the sealed fields strictly) fails with DataLoss, and
//     the log names the damaged key's id as damaged on disk; so does an append for the
//     person (DataLoss, nothing stored). Before, the key read as not found yet: an append got
//     Unavailable, "retry shortly", for ever. Appends for other persons are stored.
//   - A rebuild from the stream still finishes and is swapped in, and then shows the person's
//     national id as «slettet» with no birth date (and without the deadlines computed from
//     it), as an erased person's, though the person was not erased: the read models read a
//     damaged key's fields as unreadable and show them as erased. This is a defect left open:
//     only the error log tells it from an erasure. Restoring the key entry from a backup and
//     rebuilding brings the person back.
//   - No log line holds the person's national id.
func TestDamage_DataKeyFlipped(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	persons := registerPersons(t, nd, 0, 5) // seq 1 registers person 0
	want := settledAnswers(t, nd)
	nd.Stop(t, syscall.SIGTERM)
	id := flipDataKey(t, data, 1)

	nd = startNird(t, data)
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Errorf("at start the answers changed (%d persons, want %d)", personCount(got), personCount(want))
	}
	inLog := func(parts ...string) bool {
		return slices.ContainsFunc(nd.Logs(), func(l string) bool {
			for _, p := range parts {
				if !strings.Contains(l, p) {
					return false
				}
			}
			return true
		})
	}
	// nird's log reaches the test through a pipe, possibly after the answer the line was
	// written before: a line is waited for, up to 5 s.
	logged := func(parts ...string) bool {
		for deadline := time.Now().Add(5 * time.Second); !inLog(parts...); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				return false
			}
		}
		return true
	}
	if !logged("level=ERROR", "fewer entries than its stream counts") {
		t.Error("the key load that ended at a stall was not logged as an error")
	}
	client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL())
	_, err := client.History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: persons[0].id}}))
	if connect.CodeOf(err) != connect.CodeDataLoss {
		t.Errorf("history of the person whose key is damaged: %v; want DataLoss", err)
	}
	if !logged("level=ERROR", "the entry is damaged on disk", "key_id="+id) {
		t.Error("the damaged key was not logged by its id")
	}
	_, err = client.Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{offer(persons[0])}}))
	if connect.CodeOf(err) != connect.CodeDataLoss {
		t.Errorf("an append for the person whose key is damaged: %v; want DataLoss", err)
	}
	if _, err := client.Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{offer(persons[1])}})); err != nil {
		t.Errorf("an append for another person: %v", err)
	}
	if _, finished, err := rebuild(nd, true); err != nil || !finished {
		t.Fatalf("rebuild from the stream: finished %v, %v; pinned: it finishes", finished, err)
	}
	got := settledAnswers(t, nd)
	if personCount(got) != personCount(want) {
		t.Errorf("after the rebuild %d persons are listed, want %d", personCount(got), personCount(want))
	}
	rows, _ := got["list"].(map[string]any)["rows"].([]any)
	for _, r := range rows {
		row, _ := r.(map[string]any)
		erased := row["nationalId"] == "slettet"
		if damaged := row["personKey"] == persons[0].key; erased != damaged || damaged && row["birthDate"] != nil {
			t.Errorf("after the rebuild person %v reads as erased: %v, birth date %v; pinned: the damaged key's person alone, without one", row["personKey"], erased, row["birthDate"])
		}
	}
	for _, p := range persons {
		if inLog(p.id) {
			t.Errorf("a log line holds a national id")
		}
	}
	nd.Stop(t, syscall.SIGTERM)
}
