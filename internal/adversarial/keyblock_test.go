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
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/natstest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
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

// TestDamage_KeyBlockCutErase: a person whose data key was lost with the key bucket's block
// cut short (TestDamage_KeyBlockCut) can still be erased. An ordinary append for the person
// is DataLoss, nothing stored; the operator's erasure is stored and answered as done: the
// lost key's entry is empty to the bucket, so its purge marker is written as for any key
// destroyed, and the key reads as destroyed from then on. The person reads as erased live
// and after a rebuild from the stream; the other persons keep their ids. Before the fix the
// erasure was refused with DataLoss, "nothing was stored", like any append for the person.
func TestDamage_KeyBlockCutErase(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	ps := registerPersons(t, nd, 0, 20)
	settledAnswers(t, nd)
	nd.Stop(t, syscall.SIGTERM)
	natstest.CutBlock(t, filepath.Join(data, "jetstream"), "KV_"+eventstore.KeyBucket)

	nd = startNird(t, data)
	settledAnswers(t, nd)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lost := ps[len(ps)-1]
	reg := func(token string) nirv1connect.RegistrationServiceClient {
		return nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor(token)))
	}
	if _, err := reg("kommune:"+kommune).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{offer(lost)}})); connect.CodeOf(err) != connect.CodeDataLoss {
		t.Fatalf("an append for a person whose data key was lost: %v, want DataLoss", err)
	}
	erasure := &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: lost.key}, Event: &nirv1.Event{
		Id: ulid.Make().String(), Kommune: kommune,
		Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "oppbevaringstiden er ute"}}}}
	res, err := reg("operator").Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{erasure}}))
	if err != nil {
		t.Fatalf("the operator's erasure of the person whose data key was lost: %v; want it stored", err)
	}
	if p := res.Msg.GetPositions()[0]; p.GetDuplicate() || p.GetPersonKey() != lost.key {
		t.Fatalf("the erasure: %v; want it stored for the person", p)
	}
	check := func(when string) {
		t.Helper()
		rows, _ := settledAnswers(t, nd)["list"].(map[string]any)["rows"].([]any)
		if len(rows) != len(ps) {
			t.Errorf("%s: %d persons listed, want %d", when, len(rows), len(ps))
		}
		for _, r := range rows {
			row, _ := r.(map[string]any)
			if row["personKey"] == lost.key && (row["nationalId"] != rules.ErasedText || row["birthDate"] != nil) {
				t.Errorf("%s: the erased person reads %v, born %v; want «slettet», no birth date", when, row["nationalId"], row["birthDate"])
			}
		}
	}
	check("live")
	if _, finished, err := rebuild(nd, true); err != nil || !finished {
		t.Fatalf("rebuild from the stream: finished %v, %v", finished, err)
	}
	check("after a rebuild")
	hist, err := reg("kommune:"+kommune).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: lost.key}}))
	if err != nil {
		t.Fatalf("the history of the erased person: %v", err)
	}
	if evs := hist.Msg.GetEvents(); evs[len(evs)-1].GetEvent().GetPersonErased() == nil {
		t.Errorf("the history of the erased person ends with %v, want the erasure", evs[len(evs)-1].GetEvent())
	}
	for _, p := range ps {
		noIDInLog(t, nd.Logs(), p.id)
	}
	nd.Stop(t, syscall.SIGTERM)
}
