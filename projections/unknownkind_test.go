package projections

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestProjector_UnknownKindCounted: an event whose kind this build does not know (no payload
// it can read, as a newer nird's new kind is to an older one in a rolling upgrade,
// TestNird_RollingUpgrade) is counted in Stats and logged once by its sequence, by catching
// up and by a rebuild alike, and is no quarantine: the upgraded nird folds it. Before, it was left out of its person's state
// without a word, so an older nird's read models and regelmotor missed it unseen.
func TestProjector_UnknownKindCounted(t *testing.T) {
	recs := population(7, 20, testKommuner)
	var unknown []uint64
	for i := range recs {
		if i%7 == 3 {
			recs[i].Event, recs[i].Raw = newerKind(recs[i].Event), nil
			unknown = append(unknown, recs[i].Seq)
		}
	}
	dir := t.TempDir()
	p, log := newLogged(t, recs, Options{Dir: dir})
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.UnknownKinds != uint64(len(unknown)) || st.Quarantined != 0 {
		t.Errorf("Stats: %d unknown kinds, %d quarantined; want %d and 0", st.UnknownKinds, st.Quarantined, len(unknown))
	}
	if n := strings.Count(log.String(), "does not know"); n != 1 {
		t.Errorf("%d lines of events of an unknown kind logged, want 1 (bounded):\n%s", n, log.String())
	}
	// A restart on the file (the older nird restarted, not upgraded) still says its models
	// miss them: counted in memory alone, it said none, and NirEventKindUnknown went quiet.
	p = restartUnknown(t, p, recs, dir, len(unknown), "after a restart on the caught-up file")
	// A rebuild (a new pod's, or an operator's) counts them in its file as catching up did:
	// an older nird started afresh in a rolling upgrade is not silent about them.
	if err := p.Rebuild(bg, nil); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().UnknownKinds; got != uint64(len(unknown)) {
		t.Errorf("after a rebuild Stats: %d unknown kinds, want %d", got, len(unknown))
	}
	restartUnknown(t, p, recs, dir, len(unknown), "after a restart on the rebuilt file")
}

// restartUnknown closes p, opens a projector on its directory again and checks that it
// counts want events of an unknown kind.
func restartUnknown(t *testing.T, p *Projector, recs []Record, dir string, want int, when string) *Projector {
	t.Helper()
	p.Close()
	again, _ := newLogged(t, recs, Options{Dir: dir})
	if _, err := again.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	if got := again.Stats().UnknownKinds; got != uint64(want) {
		t.Errorf("%s Stats: %d unknown kinds, want %d", when, got, want)
	}
	return again
}

// TestApply_UnknownKindCountedOnceCommitted: an event of a kind this build does not know is
// counted when the transaction that folds it commits, once, as the quarantines are: an Apply
// that fails (a sealed field that does not open, a full disk at the commit) is retried with
// the same events, and counted them again, so that nir_projection_unknown_kind_events_total
// said more such events than the stream holds, and counted some the models never committed.
func TestApply_UnknownKindCountedOnceCommitted(t *testing.T) {
	recs := population(7, 4, testKommuner)[:3]
	recs[0].Event, recs[0].Raw = newerKind(recs[0].Event), nil
	failing := recs[2].Event.GetId()
	fail := true
	db := openTestDB(t, DBOptions{Open: func(ev *nirv1.Event) error {
		if fail && ev.GetId() == failing {
			return errors.New("a data key that does not open")
		}
		return nil
	}})
	if _, err := db.Apply(recs); err == nil {
		t.Fatal("Apply with an event that does not open succeeded")
	}
	if got := db.UnknownKinds(); got != 0 {
		t.Errorf("after a failed Apply: %d events of an unknown kind counted, want 0 (nothing committed)", got)
	}
	fail = false
	if _, err := db.Apply(recs); err != nil {
		t.Fatal(err)
	}
	if got := db.UnknownKinds(); got != 1 {
		t.Errorf("after the Apply retried: %d events of an unknown kind counted, want 1", got)
	}
}

// newerKind returns ev as a newer nird's event of a kind this build does not know reads: no
// payload it knows, and the new kind's field kept as an unknown field.
func newerKind(ev *nirv1.Event) *nirv1.Event {
	ev = proto.Clone(ev).(*nirv1.Event)
	ev.Payload = nil
	b := protowire.AppendTag(nil, 999, protowire.BytesType)
	ev.ProtoReflect().SetUnknown(protowire.AppendBytes(b, []byte{0x08, 0x01}))
	return ev
}

// TestProjector_UnknownFieldStopsRegelmotor: a field this build does not know in a known
// kind's payload (a newer nird's field, e.g. one that moves a deadline) is counted as an
// unknown kind is, and once the live models have folded either, the regelmotor appends no
// computed termination and says why (ErrUnknownKinds): the person was folded without it,
// and a newer nird, which cmd/nird leaves the regelmotor to, may compute another. The
// models' file keeps it, so that a restart of the older nird does not run the regelmotor
// again. Before, the pass appended the termination due on the person as folded without the
// field.
func TestProjector_UnknownFieldStopsRegelmotor(t *testing.T) {
	s := &scenario{}
	s.person("w1", "0301", "2022-01-10", asyl, 21)
	s.tildeling("w1", "0301", "2022-03-01")
	s.add("w1", "0301", "2022-03-02", &nirv1.SluttmalRegistered{Sluttmal: nirv1.Sluttmal_SLUTTMAL_ARBEID, Date: pd("2022-03-02")})
	s.add("w1", "0301", "2022-03-02", &nirv1.TiltakRegistered{Code: nirv1.TiltakCode_TILTAK_CODE_KURS, FromDate: pd("2022-03-02"), ToDate: pd("2024-02-28")})
	newer := s.recs[1].Event.GetProgrammeVedtakRegistered().ProtoReflect()
	newer.SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 6))
	feed := NewSliceFeed(s.recs)
	dir := t.TempDir()
	p, err := New(feed, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.UnknownKinds != 1 || st.FirstUnknownKind != s.recs[1].Seq {
		t.Errorf("Stats: %d unknown kinds, the first at %d; want 1 at %d", st.UnknownKinds, st.FirstUnknownKind, s.recs[1].Seq)
	}
	app := &appendFeed{feed: feed, ids: map[string]bool{}}
	pass := func() {
		t.Helper()
		if n, err := p.RegelmotorPass(bg, app, rules.MustDate(2024, 3, 2)); !errors.Is(err, ErrUnknownKinds) || n != 0 || app.calls != 0 {
			t.Errorf("pass over a person with a field this build does not know = %d, %v, %d appends; want 0, ErrUnknownKinds, none", n, err, app.calls)
		}
	}
	pass()
	p.Close()
	if p, err = New(feed, Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.FirstUnknownKind != s.recs[1].Seq {
		t.Errorf("reopened: the first unknown kind at %d, want %d (kept in the file)", st.FirstUnknownKind, s.recs[1].Seq)
	}
	pass()
}

// TestProjector_OlderFoldRebuilt: a build that reads whole what an older build's read models
// folded without (the newer nird upgraded in place on the older one's data directory, with
// the same SchemaVersion) finds the file's mark of the first such event readable now, and
// rebuilds the models from the stream: they hold the event then, and the mark, which stops
// the regelmotor, is gone. Before, the upgraded nird served models folded without the event,
// and with the mark never ran the regelmotor until an operator rebuilt them.
func TestProjector_OlderFoldRebuilt(t *testing.T) {
	recs := population(11, 20, testKommuner)
	at := len(recs) / 2
	older := slices.Clone(recs)
	ev := proto.Clone(recs[at].Event).(*nirv1.Event)
	ev.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	older[at].Event, older[at].Raw = ev, nil
	f := &switchFeed{}
	f.set("s", older)
	dir := t.TempDir()
	p, err := New(f, Options{Dir: dir, BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CatchUp(bg); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().FirstUnknownKind; got != recs[at].Seq {
		t.Fatalf("the older build's mark is at %d, want %d", got, recs[at].Seq)
	}
	p.Close()

	// The newer build knows the field: it reads the same stream as recs.
	f.set("s", recs)
	if p, err = New(f, Options{Dir: dir, BatchSize: 64}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Check(bg); err != nil {
		t.Fatal(err)
	}
	if p.Repairing() == "" {
		t.Fatal("models an older build folded without an event this build reads are not rebuilt")
	}
	rebuiltLike(t, p, recs, "")
	if got := p.Stats().FirstUnknownKind; got != 0 {
		t.Errorf("after the rebuild the mark is at %d, want none", got)
	}
}
