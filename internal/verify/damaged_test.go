package verify_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/storetest"
	"github.com/introreg/nir/internal/verify"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// damageTimeout is the request timeout of the stores the damage tests open.
const damageTimeout = time.Second

// appendPersons appends n events for each of persons 0-2, chained.
func appendPersons(t *testing.T, s *eventstore.Store, n int, last map[int]uint64) {
	t.Helper()
	for range n {
		for p := range 3 {
			pos, err := s.Append(context.Background(), eventstore.PersonAppend{PersonKey: key(p), ExpectedLastSeq: eventstore.Expect(last[p]), Events: []*nirv1.Event{event(key(p))}})
			if err != nil {
				t.Fatal(err)
			}
			last[p] = pos[0].Seq
		}
	}
}

// walk runs verify.Stream with a bound, so that a walk that waits for a damaged record fails
// the test instead of hanging it.
func walk(t *testing.T, s *eventstore.Store) verify.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := verify.Stream(ctx, s, verify.Options{})
	if err != nil {
		t.Fatalf("verify: %v (after %v)", err, time.Since(start))
	}
	if took := time.Since(start); took > 5*damageTimeout {
		t.Errorf("verify took %v; the damaged record must not be waited for (request timeout %v)", took, damageTimeout)
	}
	return rep
}

// problemSaying returns the problems whose detail holds s.
func problemSaying(rep verify.Report, s string) []verify.Problem {
	var out []verify.Problem
	for _, p := range rep.Problems {
		if strings.Contains(p.Detail, s) {
			out = append(out, p)
		}
	}
	return out
}

// TestStream_DamagedKey: one data-key entry damaged on disk, in the middle of the bucket and
// as its last entry. What it sealed can no longer be read (the persons' national ids and
// birth dates), and only a backup made before holds it: verify reports it as a problem naming
// the key's id, and the walk does not wait for it. Before, verify did not look at the data
// keys and said "ok: no problems".
func TestStream_DamagedKey(t *testing.T) {
	ids := []string{key(101), key(102), key(103)}
	for _, tc := range []struct {
		name    string
		damaged int
	}{{"Middle", 1}, {"Last", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "js")
			s := storetest.OpenAt(t, dir, damageTimeout, nil)
			appendPersons(t, s, 2, map[int]uint64{})
			ks, err := s.OpenKeyStore(ctx, storetest.NewMaster(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if _, err := ks.Ensure(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			js, err := jetstream.New(s.Conn())
			if err != nil {
				t.Fatal(err)
			}
			kv, err := js.KeyValue(ctx, eventstore.KeyBucket)
			if err != nil {
				t.Fatal(err)
			}
			e, err := kv.Get(ctx, ids[tc.damaged])
			if err != nil {
				t.Fatal(err)
			}
			raw := bytes.Clone(e.Value())
			_ = ks.Close()
			s.Close()
			natstest.FlipInBlock(t, dir, "KV_"+eventstore.KeyBucket, raw)

			rep := walk(t, storetest.OpenAt(t, dir, damageTimeout, nil))
			if rep.OK() || len(problemSaying(rep, ids[tc.damaged])) != 1 {
				t.Errorf("verify with the data key %s damaged: problems %+v; want one naming it", ids[tc.damaged], rep.Problems)
			}
			if len(rep.Problems) != 1 || rep.Problems[0].Kind != verify.KindKeyDamaged || rep.Problems[0].KeyID != ids[tc.damaged] {
				t.Errorf("problems %+v; want only %s of key %s", rep.Problems, verify.KindKeyDamaged, ids[tc.damaged])
			}
			if rep.DataKeys != 3 { // the master check and the two whole keys
				t.Errorf("%d data keys read, want 3", rep.DataKeys)
			}
			for i, id := range ids {
				if i != tc.damaged && len(problemSaying(rep, id)) > 0 {
					t.Errorf("the whole key %s is reported: %+v", id, rep.Problems)
				}
			}
		})
	}
}

// TestStream_DamagedCheckpoint: one checkpoint damaged on disk, in the middle of the
// checkpoint stream and as its last message. verify reports it by its sequence in
// NIR_CHECKPOINTS, and the walk does not wait for it. Before, a damaged last checkpoint was
// not reported at all (left out, with an error in the log of whoever read the checkpoints),
// and one in the middle only as the next checkpoint's not naming it.
func TestStream_DamagedCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damaged uint64
	}{{"Middle", 2}, {"Last", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "js")
			s := storetest.OpenAt(t, dir, damageTimeout, nil)
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			last := map[int]uint64{}
			for range 3 {
				appendPersons(t, s, 2, last)
				checkpointed(t, s, priv)
			}
			cps, err := s.Checkpoints(ctx)
			if err != nil || len(cps) != 3 {
				t.Fatalf("%d checkpoints, %v; want 3", len(cps), err)
			}
			s.Close()
			natstest.FlipInBlock(t, dir, eventstore.CheckpointStreamName, cps[tc.damaged-1].Data)

			rep := walk(t, storetest.OpenAt(t, dir, damageTimeout, nil))
			name := fmt.Sprintf("checkpoint %d of %s", tc.damaged, eventstore.CheckpointStreamName)
			if rep.OK() || len(problemSaying(rep, name)) != 1 {
				t.Errorf("verify with checkpoint %d damaged: problems %+v; want one naming %q", tc.damaged, rep.Problems, name)
			}
			if len(rep.Problems) != 1 || rep.Problems[0].Kind != verify.KindCheckpointUnreadable || rep.Problems[0].Checkpoint != tc.damaged {
				t.Errorf("problems %+v; want only %s of checkpoint %d", rep.Problems, verify.KindCheckpointUnreadable, tc.damaged)
			}
			if want := uint64(18); rep.CheckpointThrough != want && tc.name == "Middle" {
				t.Errorf("the stream matched the checkpoints through %d, want %d (the last one, after the damaged one)", rep.CheckpointThrough, want)
			}
		})
	}
}
