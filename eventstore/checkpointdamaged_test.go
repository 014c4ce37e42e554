package eventstore_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	"github.com/introreg/nir/internal/storetest"
)

// TestCheckpoints_DamagedRecord: a byte of one stored checkpoint flipped in the checkpoint
// stream's block file while the store is closed (a failing disk), in the middle of the stream
// and as its last message. The server answers the damaged record as no message, to a
// consumer and to a get alike, and its stream state still counts it.
//
// In the middle: Checkpoints returns the others and no error (the read never waits for it),
// and the damaged one is logged by its sequence and named by ReadCheckpoints (before, it was
// left out unsaid: a backup did not carry it, nirctl verify did not name it); the checkpointer
// goes on, the next checkpoint
// commits to the whole stream and names the last one as its previous.
//
// As the last message, two defects, fixed here. Checkpoints waited for it until its ctx ended
// (forever without a deadline: nirctl verify, backup, and the rebuild's attestation, which
// take the checkpoints, hung); now, after a request timeout without a message, it asks the
// leader for the rest, and ends without the damaged one, with an error log naming it. And the
// checkpointer read the stream as holding no checkpoint (its last by subject answered none):
// each round digested the whole stream and published expecting an empty checkpoint stream,
// which the server refused, and no checkpoint was made again; now it goes on from the last
// checkpoint it can read, after the stream's last sequence, naming no previous (the damaged
// one's hash cannot be read), with an error log.
func TestCheckpoints_DamagedRecord(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damaged uint64
	}{{"Middle", 2}, {"Last", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "js")
			cfg := eventstore.Config{Dir: dir, RequestTimeout: time.Second}
			// What is damaged is written whole, with no short timeout for it.
			setup := setupCtx(t)
			s, err := eventstore.Open(setup, cfg)
			if err != nil {
				t.Fatal(err)
			}
			k := personKey("cp")
			evs := events(k, 20)
			for i := range 3 { // checkpoints 1-3, through seqs 5, 10 and 15
				if _, err := s.Append(setup, eventstore.PersonAppend{PersonKey: k, Events: evs[5*i : 5*i+5]}); err != nil {
					t.Fatal(err)
				}
				storetest.CheckpointThrough(t, s, uint64(5*i+5), nil)
			}
			cps, err := s.Checkpoints(setup)
			if err != nil || len(cps) != 3 {
				t.Fatalf("%d checkpoints, %v", len(cps), err)
			}
			whole := cps
			s.Close()
			natstest.FlipInBlock(t, dir, eventstore.CheckpointStreamName, whole[tc.damaged-1].Data)

			s, logs := openLogged(t, cfg)
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			cps, err = s.Checkpoints(cctx)
			cancel()
			var seqs []uint64
			for _, c := range cps {
				seqs = append(seqs, c.Seq)
			}
			want := slices.DeleteFunc([]uint64{1, 2, 3}, func(q uint64) bool { return q == tc.damaged })
			if err != nil || !slices.Equal(seqs, want) {
				t.Errorf("Checkpoints: %v, %v; want %v and no error", seqs, err, want)
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, missing, err := s.ReadCheckpoints(rctx)
			cancel()
			if err != nil || !slices.Equal(missing, []uint64{tc.damaged}) {
				t.Errorf("ReadCheckpoints: unreadable %v, %v; want [%d]", missing, err, tc.damaged)
			}
			if said := strings.Contains(logs.String(), fmt.Sprintf("checkpoint_seqs=[%d]", tc.damaged)); !said {
				t.Errorf("the unread checkpoint %d was not logged:\n%s", tc.damaged, logs.String())
			}

			if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: k, Events: evs[15:]}); err != nil {
				t.Fatal(err)
			}
			cp := storetest.CheckpointThrough(t, s, 20, nil)
			if !bytes.Equal(cp.GetDigest(), digestThrough(t, s, 20)) {
				t.Error("the checkpoint after the damaged one does not commit to the stream")
			}
			wantPrev := eventstore.HashOf(whole[2].Data)
			if tc.name == "Last" {
				wantPrev = nil
				if !strings.Contains(logs.String(), "the last checkpoint cannot be read back") {
					t.Errorf("the checkpointer did not log the unreadable last checkpoint:\n%s", logs.String())
				}
			}
			if !bytes.Equal(cp.GetPrevious(), wantPrev) {
				t.Errorf("the checkpoint after the damaged one names previous %x, want %x", cp.GetPrevious(), wantPrev)
			}
			if cps, err := s.Checkpoints(ctx); err != nil || len(cps) != 3 || cps[2].Seq != 4 {
				t.Errorf("Checkpoints after the new one: %d, %v; want 3, the last at seq 4", len(cps), err)
			}
		})
	}
}
