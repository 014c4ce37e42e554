package verify_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/storetest"
	"github.com/introreg/nir/internal/verify"
)

// TestStream_FromACheckpointBeyondTheEnd: a walk from a checkpoint (nirctl verify
// --from-checkpoint FILE, or last) that covers more of the stream than it holds (its end lost
// on disk, or rolled back to an earlier backup) reports the checkpoint beyond the stream's
// end, as the same checkpoint given with --checkpoint is reported. Found on 2026-12-07
// (adversarial review of verify): the walk started after the stream's end, read nothing, and
// reported a stream that lost the events the checkpoint vouches for as intact.
func TestStream_FromACheckpointBeyondTheEnd(t *testing.T) {
	src, msgs := source(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cp := storetest.CheckpointThrough(t, src, uint64(len(msgs)), priv)
	kept := len(msgs) - 4
	short := copyOf(t, msgs[:kept]) // the stream without its last 4 messages
	rep, err := verify.Stream(context.Background(), short, verify.Options{From: cp, PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Problems[0].Kind != verify.KindCheckpointBeyond || rep.Problems[0].Seq != cp.GetStreamSeq() || rep.Problems[0].Previous != uint64(kept) {
		t.Errorf("a walk from a checkpoint through %d of a stream ending at %d: problems %+v; want the checkpoint reported beyond the stream's end", cp.GetStreamSeq(), kept, rep.Problems)
	}
	if rep.LastSeq != uint64(kept) {
		t.Errorf("report's last sequence %d, want the stream's %d", rep.LastSeq, kept)
	}
}

// TestStream_ThroughBeforeFrom: a walk told to end before the checkpoint it starts from
// checks nothing; it is refused as the caller's mistake, not reported as messages removed
// from the stream, which holds them all.
func TestStream_ThroughBeforeFrom(t *testing.T) {
	src, msgs := source(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cp := storetest.CheckpointThrough(t, src, uint64(len(msgs)), priv)
	rep, err := verify.Stream(context.Background(), src, verify.Options{From: cp, PublicKey: pub, Through: uint64(len(msgs) - 2)})
	if err == nil || !strings.Contains(err.Error(), "Through") || len(rep.Problems) != 0 {
		t.Errorf("a walk from a checkpoint through %d told to end at %d: %v, problems %+v; want it refused naming Through", len(msgs), len(msgs)-2, err, rep.Problems)
	}
}
