package adversarial

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
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
//     national id as unreadable (rules.UnreadableText) with no birth date, and nobody as
//     erased: before 2026-12-06 it read «slettet», as an erased person's, and only the error
//     log told it from an erasure (TestDamage_DataKeyFlippedRebuild pins the rest). Restoring
//     the key entry from a backup and rebuilding brings the person back.
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
		unreadable := row["nationalId"] == rules.UnreadableText
		if damaged := row["personKey"] == persons[0].key; unreadable != damaged || damaged && row["birthDate"] != nil || row["nationalId"] == rules.ErasedText {
			t.Errorf("after the rebuild person %v reads %v, birth date %v; want the damaged key's person alone unreadable, without one, and nobody erased", row["personKey"], row["nationalId"], row["birthDate"])
		}
	}
	for _, p := range persons {
		if inLog(p.id) {
			t.Errorf("a log line holds a national id")
		}
	}
	nd.Stop(t, syscall.SIGTERM)
}

// TestDamage_DataKeyFlippedErase: the right to erasure does not depend on a data key that is
// unreadable already (DOMAIN.md Product decisions 15). Person 0's data-key entry is flipped
// on disk, as in TestDamage_DataKeyFlipped; under the retention rule (nird --retention-years
// 1) that person alone is due for erasure.
//
// What this pins:
//   - An erasure by a kommune or the system principal is refused as for any person
//     (PermissionDenied), an ordinary append for the person is DataLoss, and so is a request
//     that brings the erasure with another event for the person: nothing is stored.
//   - The retention rule's erasure (nirctl person erase --due, as an operator's scheduled job
//     runs it) is recorded: the PersonErased is stored (one event); nirctl reports the person
//     erased and the damaged key (nird's DataLoss: the erasure is recorded, but a key it
//     destroys is damaged and cannot be overwritten), and fails, for the job to alert. Before
//     the fix the append path refused it with DataLoss, "nothing was stored", since it unseals
//     the person's history strictly before any append: the person could not be erased at
//     all, by an operator or by the retention rule.
//   - Afterwards the person is erased: History holds the erasure and the registration
//     «slettet»; the erasure sent again stores nothing and is answered DataLoss as the first;
//     an ordinary append is refused as for any erased person (NIR-R055), nothing stored;
//     nobody is due any more; the person list shows the person «slettet», without a birth
//     date, live (where the row folded while the key opened held the id) and after a rebuild
//     from the stream, with the erasure in the audit history: erased, not merely damaged.
//     The other persons keep their ids; no log line holds one.
func TestDamage_DataKeyFlippedErase(t *testing.T) {
	data := t.TempDir()
	args := []string{"--retention-years", "1"}
	nd := startNird(t, data, args...)
	persons := registerPersons(t, nd, 0, 3) // seq 1 registers person 0
	// The others took part in something a month ago: the damaged person alone is due.
	recent := time.Now().AddDate(0, -1, 0)
	for _, p := range persons[1:] {
		r := offer(p)
		r.GetEvent().GetOfferRegistered().Date = date(recent.Year(), int(recent.Month()), recent.Day())
		if _, err := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL()).Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{r}})); err != nil {
			t.Fatal(err)
		}
	}
	settledAnswers(t, nd)
	nd.Stop(t, syscall.SIGTERM)
	flipDataKey(t, data, 1)
	nd = startNird(t, data, args...)
	settledAnswers(t, nd)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	damaged := persons[0]
	reg := func(token string) nirv1connect.RegistrationServiceClient {
		return nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor(token)))
	}
	admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor("operator")))
	query := nirv1connect.NewQueryServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor("kommune:"+kommune)))
	lastSeq := func() uint64 {
		t.Helper()
		st, err := admin.ProjectionStatus(ctx, connect.NewRequest(&nirv1.ProjectionStatusRequest{}))
		if err != nil {
			t.Fatalf("projection status: %v", err)
		}
		return st.Msg.GetLastSequence()
	}
	erasure := func() *nirv1.Registration {
		return &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: damaged.key}, Event: &nirv1.Event{
			Id: ulid.Make().String(), Kommune: kommune,
			Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "oppbevaringstiden er ute"}}}}
	}
	appendAs := func(token string, regs ...*nirv1.Registration) error {
		_, err := reg(token).Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: regs}))
		return err
	}
	due := func() []string {
		t.Helper()
		res, err := admin.ListErasureDue(ctx, connect.NewRequest(&nirv1.ListErasureDueRequest{}))
		if err != nil {
			t.Fatalf("ListErasureDue: %v", err)
		}
		var out []string
		for _, p := range res.Msg.GetPersons() {
			out = append(out, p.GetPersonKey())
		}
		return out
	}
	if got := due(); !slices.Equal(got, []string{damaged.key}) {
		t.Fatalf("due for erasure before it: %v; want the damaged person alone", got)
	}

	before := lastSeq()
	for _, token := range []string{"kommune:" + kommune, "system"} {
		if err := appendAs(token, erasure()); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("an erasure as %s: %v; want PermissionDenied, as for any person", token, err)
		}
	}
	if err := appendAs("kommune:"+kommune, offer(damaged)); connect.CodeOf(err) != connect.CodeDataLoss {
		t.Errorf("an ordinary append for the person whose key is damaged: %v; want DataLoss", err)
	}
	// The erasure and a merge of another person into the damaged one, in one request: the
	// merge must not be stored on a history nird cannot read.
	merge := &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: damaged.key}, Event: &nirv1.Event{
		Id: ulid.Make().String(), Kommune: kommune,
		Payload: &nirv1.Event_PersonsMerged{PersonsMerged: &nirv1.PersonsMerged{AbsorbedPersonKey: persons[1].key, Reason: "samme person"}}}}
	if err := appendAs("operator", merge, erasure()); connect.CodeOf(err) != connect.CodeDataLoss {
		t.Errorf("an erasure with a merge for the person whose key is damaged: %v; want DataLoss", err)
	}
	if got := lastSeq(); got != before {
		t.Fatalf("the refused requests stored %d events", got-before)
	}

	// The retention rule's erasure, as an operator's scheduled job runs it.
	nirctl := nirdtest.Build(t, "github.com/introreg/nir/cmd/nirctl")
	out, err := exec.CommandContext(ctx, nirctl, "--server", nd.URL(), "--token", "operator", "person", "erase", "--due").CombinedOutput()
	if got := lastSeq(); got != before+1 {
		t.Fatalf("nirctl person erase --due: %v\n%s\n%d events stored, want the damaged person's erasure (1)", err, out, got-before)
	}
	if err == nil || !strings.Contains(string(out), "erased "+damaged.key+", but: data_loss: the erasure is recorded") || !strings.Contains(string(out), "damaged") {
		t.Errorf("nirctl person erase --due: %v\n%s\nwant the person erased, the damaged key reported, and a failure for the job to alert on", err, out)
	}

	hist, err := reg("kommune:"+kommune).History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: damaged.key}}))
	if err != nil {
		t.Fatalf("the history of the erased person: %v", err)
	}
	evs := hist.Msg.GetEvents()
	if n := len(evs); n == 0 || evs[n-1].GetEvent().GetPersonErased() == nil || evs[0].GetEvent().GetPersonRegistered().GetFodselsnummer() != rules.ErasedText {
		t.Errorf("the history of the erased person: %v; want the registration «slettet» and the erasure last", evs)
	}
	if err := appendAs("operator", erasure()); connect.CodeOf(err) != connect.CodeDataLoss || !strings.Contains(err.Error(), "the erasure is recorded") || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("the erasure again: %v; want DataLoss, the erasure recorded and the key damaged", err)
	}
	var refusal *connect.Error
	if err := appendAs("kommune:"+kommune, offer(damaged)); !errors.As(err, &refusal) || refusal.Code() != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "erased") {
		t.Errorf("an append for the erased person: %v; want FailedPrecondition, the person erased (NIR-R055)", err)
	}
	if got := lastSeq(); got != before+1 {
		t.Errorf("after the erasure %d more events are stored, want none", got-before-1)
	}

	// The read models: the person erased, live and after a rebuild from the stream.
	check := func(when string) {
		t.Helper()
		rows, _ := settledAnswers(t, nd)["list"].(map[string]any)["rows"].([]any)
		if len(rows) != len(persons) {
			t.Errorf("%s: %d persons listed, want %d", when, len(rows), len(persons))
		}
		for _, r := range rows {
			row, _ := r.(map[string]any)
			erased := row["nationalId"] == rules.ErasedText
			if want := row["personKey"] == damaged.key; erased != want || erased && row["birthDate"] != nil {
				t.Errorf("%s: person %v reads as erased: %v, birth date %v; want the erased person alone, without one", when, row["personKey"], erased, row["birthDate"])
			}
		}
		if got := due(); len(got) > 0 {
			t.Errorf("%s: due for erasure still: %v; want none (the person read as damaged, not erased)", when, got)
		}
		audit, err := query.AuditHistory(ctx, connect.NewRequest(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: damaged.key}}))
		if err != nil {
			t.Fatalf("%s: audit history: %v", when, err)
		}
		if !slices.ContainsFunc(audit.Msg.GetEntries(), func(e *nirv1.AuditEntry) bool { return e.GetEvent().GetPersonErased() != nil }) {
			t.Errorf("%s: the audit history holds no erasure", when)
		}
	}
	check("live")
	if _, finished, err := rebuild(nd, true); err != nil || !finished {
		t.Fatalf("rebuild from the stream: finished %v, %v", finished, err)
	}
	check("after a rebuild")
	for _, p := range persons {
		noIDInLog(t, nd.Logs(), p.id)
	}
	nd.Stop(t, syscall.SIGTERM)
}
