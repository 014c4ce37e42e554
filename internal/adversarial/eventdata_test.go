package adversarial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
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
	"github.com/introreg/nir/internal/nirdtest"
	"github.com/introreg/nir/internal/verify"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// TestDamage_EventDataFlipped: one byte inside an event's data flipped in the stream's message
// block while nird is stopped (a failing disk), with nird's signed checkpoints covering every
// event. The flip turns the event into another valid one (its envelope's kommune 0301 becomes
// 0302); the NATS server never delivers it. Each record of a block carries a checksum
// (highwayhash) of its subject, headers and data, which the server checks when it first reads
// the record from disk: a record that fails is answered as no message, to a consumer and to a
// direct get alike. So the damaged event is missing, not changed: eventstore's replay, whose
// leader then says "no message" while it holds later ones, delivers it as quarantined
// ("missing from the stream"), logs an error and counts it (nir_store_replay_missing_total,
// alert NirStreamSequenceMissing).
//
// What this pins, step by step:
//   - nirctl verify's walk (eventstore's Export) stops at the missing sequence with an error
//     that names it; it does not get as far as its checkpoint-mismatch report.
//   - At start nothing notices: the live models keep serving what they folded from the
//     event when it was whole. The person's history read before an append lacks the event,
//     and the event after it links to a message that is not there: an append for the person
//     is refused with DataLoss and logged (eventstore.ErrHistoryBroken).
//   - A rebuild from the live file takes the events from it through the signed checkpoint
//     (the file's copy of the event matches it): the models stay right.
//   - A rebuild from the stream (nirctl projections rebuild --from-stream) finds the event
//     missing, which the live models hold, and is not swapped in (FailedPrecondition naming the
//     sequence; projections.ErrStreamLost): the live file is the only copy of the event outside
//     a backup. Before, it went on without the event and replaced the file, and no later
//     rebuild brought the event back. The error log and the metric say so; a rebuild from the
//     live file still gives the right models.
//   - A repair (the live file damaged too) rebuilds from the stream the same way: the models
//     are served again, without the event, and the damaged file is kept aside.
func TestDamage_EventDataFlipped(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data, "--checkpoint-every", "10", "--checkpoint-interval", "1s")
	persons := registerPersons(t, nd, 0, 20) // seq 2i+1 registers person i, 2i+2 is their offer
	want := settledAnswers(t, nd)
	awaitLog(t, nd, func(l string) bool {
		return strings.Contains(l, `msg="checkpoint made"`) && strings.Contains(l, " stream_seq=40 ")
	})
	nd.Stop(t, syscall.SIGTERM)

	const seq = 3 // person 1's registration
	flipKommune(t, data, seq)
	repairData := t.TempDir()
	copyDir(t, data, repairData)

	// nirctl verify's walk stops at the damaged message with an error that names it (it
	// used to wait forever for the stream's last messages: TestStore_DamagedRecord).
	verifyStopsAt(t, data, seq)

	nd = startNird(t, data)
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Fatalf("at start the answers changed (%d persons, want %d): nird did not notice the damage before, and was not expected to", personCount(got), personCount(want))
	}
	// The person's history as read before an append lacks the registration: the offer after
	// it links to a message that is not there (the chain), so an append for the person is
	// refused with DataLoss and logged. Before, the history lacked it unseen and the rules
	// refused the append (the person must be registered first): a case worker told so might
	// have registered the person a second time.
	client := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL())
	_, err := client.Append(context.Background(), connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{offer(persons[1])}}))
	if connect.CodeOf(err) != connect.CodeDataLoss {
		t.Errorf("an append for the person whose registration is missing: %v, want DataLoss (the history has a hole)", err)
	}
	awaitLog(t, nd, func(l string) bool { // the hole, logged as an error naming the sequence after it
		return strings.Contains(l, "level=ERROR") && strings.Contains(l, "history on the stream has a hole") && strings.Contains(l, "stream_seq=4")
	})
	if through := rebuildModels(t, nd, false); through != 40 {
		t.Errorf("the rebuild from the live file took its events through seq %d, want 40 (the checkpoint)", through)
	}
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Errorf("after a rebuild from the live file the answers changed (%d persons, want %d)", personCount(got), personCount(want))
	}

	// A rebuild from the stream finds the sequence missing and is not swapped in: the live
	// file is the only copy of the event outside a backup (before, the rebuild went on
	// without it and replaced the file, and no later rebuild brought it back).
	err = rebuildErr(nd, true)
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "stream sequence 3") {
		t.Errorf("rebuild from the stream: %v; want FailedPrecondition naming stream sequence 3", err)
	}
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Errorf("after the refused rebuild from the stream the answers changed (%d persons, want %d)", personCount(got), personCount(want))
	}
	if m := metric(t, nd, "nir_store_replay_missing_total"); m < 1 {
		t.Errorf("nir_store_replay_missing_total %v, want at least 1", m)
	}
	missingLogged := func(nd *nirdtest.Nird) bool {
		return slices.ContainsFunc(nd.Logs(), func(l string) bool {
			return strings.Contains(l, "level=ERROR") && strings.Contains(l, "missing from the stream leader's store") && strings.Contains(l, " stream_seq=3")
		})
	}
	if !missingLogged(nd) {
		t.Error("the missing sequence was not logged as an error")
	}
	if !slices.ContainsFunc(nd.Logs(), func(l string) bool {
		return strings.Contains(l, "level=ERROR") && strings.Contains(l, "rebuild not swapped in")
	}) {
		t.Error("the refused rebuild was not logged as an error")
	}
	// An as-of snapshot from the stream is refused likewise (its figures would lack a known
	// event); one from the live file takes the event from there.
	if err := snapshotErr(nd, "fromstream", true); connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "stream sequence 3") {
		t.Errorf("as-of snapshot from the stream: %v; want FailedPrecondition naming stream sequence 3", err)
	}
	if slices.Contains(snapshotNames(t, nd), "fromstream") {
		t.Error("the refused as-of snapshot from the stream is served")
	}
	if err := snapshotErr(nd, "fromfile", false); err != nil {
		t.Errorf("as-of snapshot from the live file: %v", err)
	}
	if through := rebuildModels(t, nd, false); through != 40 {
		t.Errorf("a rebuild from the live file after the refused one took its events through seq %d, want 40", through)
	}
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Errorf("after the second rebuild from the live file the answers changed (%d persons, want %d)", personCount(got), personCount(want))
	}
	nd.Stop(t, syscall.SIGTERM)

	// The repair: the live file damaged as well.
	models := filepath.Join(repairData, "projections", "models.db")
	mb, err := os.ReadFile(models)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(models, mb[:len(mb)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	nd = startNird(t, repairData)
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := answers(nd)
		if err == nil {
			if personCount(got) != personCount(want)-1 {
				t.Errorf("after the repair %d persons are listed, want %d", personCount(got), personCount(want)-1)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the repaired models gave no answer within 60s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !missingLogged(nd) {
		t.Error("the repair's missing sequence was not logged as an error")
	}
	if kept, _ := filepath.Glob(models + ".damaged-*"); len(kept) != 1 {
		t.Errorf("the damaged live file was not kept aside: %v", kept)
	}
	nd.Stop(t, syscall.SIGTERM)
}

// verifyStopsAt checks that nirctl verify's walk of the stream in data (nird stopped) ends
// with an error naming seq as missing.
func verifyStopsAt(t *testing.T, data string, seq uint64) {
	t.Helper()
	store, err := eventstore.Open(context.Background(), eventstore.Config{Dir: filepath.Join(data, "jetstream"), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := verify.Stream(ctx, store, verify.Options{}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("sequence %d missing", seq)) {
		t.Errorf("verify: %v; want an error naming sequence %d as missing", err, seq)
	}
}

// rebuildModels has nird rebuild its read models (from the stream alone with fromStream)
// and returns the last sequence whose events it took from the live file.
func rebuildModels(t *testing.T, nd *nirdtest.Nird, fromStream bool) (fromFile uint64) {
	t.Helper()
	fromFile, finished, err := rebuild(nd, fromStream)
	if err != nil || !finished {
		t.Fatalf("rebuild (from the stream: %v): finished %v, %v", fromStream, finished, err)
	}
	return fromFile
}

// rebuildErr asks nird for a rebuild, as rebuildModels does, and returns its error.
func rebuildErr(nd *nirdtest.Nird, fromStream bool) error {
	_, _, err := rebuild(nd, fromStream)
	return err
}

// snapshotErr asks nird as the operator for an as-of snapshot of everything recorded so far
// under name, and returns its error (nil once finished).
func snapshotErr(nd *nirdtest.Nird, name string, fromStream bool) error {
	admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, nd.URL())
	req := connect.NewRequest(&nirv1.CreateSnapshotRequest{Name: name, CutoffDate: date(2099, 1, 1), FromStream: fromStream})
	req.Header().Set("Authorization", "Bearer operator")
	ss, err := admin.CreateSnapshot(context.Background(), req)
	if err != nil {
		return err
	}
	defer ss.Close()
	finished := false
	for ss.Receive() {
		finished = finished || ss.Msg().GetFinished()
	}
	if err := ss.Err(); err != nil {
		return err
	}
	if !finished {
		return errors.New("the snapshot's stream ended before it finished")
	}
	return nil
}

// rebuild asks nird for a rebuild as the operator and follows its progress to the end.
func rebuild(nd *nirdtest.Nird, fromStream bool) (fromFile uint64, finished bool, err error) {
	admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, nd.URL())
	req := connect.NewRequest(&nirv1.RebuildRequest{FromStream: fromStream})
	req.Header().Set("Authorization", "Bearer operator")
	ss, err := admin.Rebuild(context.Background(), req)
	if err != nil {
		return 0, false, err
	}
	defer ss.Close()
	for ss.Receive() {
		finished = finished || ss.Msg().GetFinished()
		fromFile = max(fromFile, ss.Msg().GetProgress().GetFromFileThrough())
	}
	return fromFile, finished, ss.Err()
}

// awaitLog waits until one of nird's log lines satisfies match.
func awaitLog(t *testing.T, nd *nirdtest.Nird, match func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !slices.ContainsFunc(nd.Logs(), match) {
		if time.Now().After(deadline) {
			t.Fatal("the log line awaited did not come within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flipKommune flips one byte of the event at seq in the stream's message block (nird
// stopped): the envelope's kommune 0301 becomes 0302, still a valid event.
func flipKommune(t *testing.T, data string, seq uint64) {
	t.Helper()
	var raw []byte
	withStore(t, data, func(js jetstream.JetStream) {
		st, err := js.Stream(context.Background(), eventstore.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		raw = m.Data
	})
	blk := filepath.Join(data, "jetstream", "jetstream", "$G", "streams", eventstore.StreamName, "msgs", "1.blk")
	b, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	at, k := bytes.Index(b, raw), bytes.Index(raw, []byte(kommune))
	if at < 0 || k < 0 || bytes.Contains(b[at+1:], raw) {
		t.Fatalf("the event at seq %d is not found once in the block (%d), or holds no kommune (%d)", seq, at, k)
	}
	b[at+k+3] = '2'
	if err := os.WriteFile(blk, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamage_LastEventDataFlipped: the flip of TestDamage_EventDataFlipped in the stream's
// last message, which no later message follows. The server answers no message for the
// stream's last sequence, by ">" and by the stream's subjects, while its state still counts
// it. eventstore's LastSeq used to say 0 then: nird took the stream for one rolled back, kept
// the live file aside and served models rebuilt from nothing (no person listed). Now LastSeq
// takes the last sequence from the stream's state (and logs it by sequence), and the replay's
// gap counts a sequence the leader's state holds but cannot read as missing, so the damaged
// last event behaves as a damaged one in the middle does:
//   - nirctl verify's walk (Export) ends with an error naming the sequence (it used to wait
//     forever for it).
//   - At start nothing is rebuilt: the live models keep serving what they folded from the
//     event when it was whole, and the live file stays where it is. Its last event, which
//     the check against the stream (projections' Check) compares with the stream's message
//     at that sequence, cannot be read back: it is not compared (a warning), where it
//     used to make the models count as another stream's and be rebuilt.
//   - A rebuild from the live file takes the events through the signed checkpoint: the
//     models stay right.
//   - A rebuild from the stream finds the event (person 19's offer) missing, which the live
//     models hold, and is not swapped in, as in TestDamage_EventDataFlipped: FailedPrecondition
//     naming the sequence; the error log and the metric name it too.
func TestDamage_LastEventDataFlipped(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data, "--checkpoint-every", "10", "--checkpoint-interval", "1s")
	registerPersons(t, nd, 0, 20) // seq 40 is person 19's offer, the stream's last message
	want := settledAnswers(t, nd)
	awaitLog(t, nd, func(l string) bool {
		return strings.Contains(l, `msg="checkpoint made"`) && strings.Contains(l, " stream_seq=40 ")
	})
	nd.Stop(t, syscall.SIGTERM)
	const seq = 40
	flipKommune(t, data, seq)

	verifyStopsAt(t, data, seq)

	nd = startNird(t, data)
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Fatalf("at start the answers changed (%d persons listed, want %d): the damaged last message was taken for a stream rolled back", personCount(got), personCount(want))
	}
	if slices.ContainsFunc(nd.Logs(), func(l string) bool { return strings.Contains(l, "lies beyond the stream's last sequence") }) {
		t.Error("nird took the stream for one rolled back")
	}
	if !slices.ContainsFunc(nd.Logs(), func(l string) bool {
		return strings.Contains(l, "level=WARN") && strings.Contains(l, "last message cannot be read back") && strings.Contains(l, " stream_seq=40")
	}) {
		t.Error("the unreadable last message was not logged by its sequence")
	}
	if !slices.ContainsFunc(nd.Logs(), func(l string) bool {
		return strings.Contains(l, "last event the read models applied cannot be read back") && strings.Contains(l, " stream_seq=40")
	}) {
		t.Error("the read models' check did not say that it could not compare their last event")
	}
	models := filepath.Join(data, "projections", "models.db")
	if kept, _ := filepath.Glob(models + ".damaged-*"); len(kept) != 0 {
		t.Errorf("the live file was kept aside: %v", kept)
	}
	if through := rebuildModels(t, nd, false); through != seq {
		t.Errorf("the rebuild from the live file took its events through seq %d, want %d (the checkpoint)", through, seq)
	}
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Errorf("after a rebuild from the live file the answers changed (%d persons, want %d)", personCount(got), personCount(want))
	}

	if err := rebuildErr(nd, true); connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "stream sequence 40") {
		t.Errorf("rebuild from the stream: %v; want FailedPrecondition naming stream sequence 40", err)
	}
	if got := settledAnswers(t, nd); personCount(got) != personCount(want) {
		t.Errorf("after the refused rebuild from the stream %d persons are listed, want %d", personCount(got), personCount(want))
	}
	if q := quarantinedSeqs(status(t, nd)); len(q) != 0 {
		t.Errorf("quarantined %v after the refused rebuild, want none (the live models hold the event)", q)
	}
	if m := metric(t, nd, "nir_store_replay_missing_total"); m < 1 {
		t.Errorf("nir_store_replay_missing_total %v, want at least 1", m)
	}
	if !slices.ContainsFunc(nd.Logs(), func(l string) bool {
		return strings.Contains(l, "level=ERROR") && strings.Contains(l, "missing from the stream leader's store") && strings.Contains(l, " stream_seq=40")
	}) {
		t.Error("the missing sequence was not logged as an error")
	}
	nd.Stop(t, syscall.SIGTERM)
}
