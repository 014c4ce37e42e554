package adversarial

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
)

// flipLastCheckpoint flips one byte of the checkpoint stream's last message in its message
// block (nird stopped).
func flipLastCheckpoint(t *testing.T, data string) {
	t.Helper()
	var raw []byte
	withStore(t, data, func(js jetstream.JetStream) {
		st, err := js.Stream(context.Background(), eventstore.CheckpointStreamName)
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetMsg(context.Background(), st.CachedInfo().State.LastSeq)
		if err != nil {
			t.Fatal(err)
		}
		raw = m.Data
	})
	natstest.FlipInBlock(t, filepath.Join(data, "jetstream"), eventstore.CheckpointStreamName, raw)
}

// TestDamage_LastCheckpointFlipped: one byte of nird's last signed checkpoint (through the
// stream's last event, seq 40) flipped in the checkpoint stream's message block while nird is
// stopped. The server never delivers the damaged record and still counts it.
//   - nird starts and serves the answers it served.
//   - A rebuild from the live file (nird started with checkpoints not due, so that no new one
//     covers the stream) takes its events through the last checkpoint it can read (from 20,
//     before 40), and the answers stay right. Before, the rebuild's attestation read the checkpoints
//     (eventstore.Checkpoints) until the damaged last one came, which it never did: the
//     rebuild hung.
//   - Started with checkpoints due, nird makes one through seq 40 again, logging the damaged
//     one as an error. Before, its checkpointer took the stream for one without checkpoints
//     and had every publish refused: no checkpoint was made again.
func TestDamage_LastCheckpointFlipped(t *testing.T) {
	data := t.TempDir()
	due := []string{"--checkpoint-every", "10", "--checkpoint-interval", "1s"}
	nd := startNird(t, data, due...)
	// A checkpoint through 20 before the last one, through 40 (registered at once, the 40
	// events could have had one checkpoint only).
	registerPersons(t, nd, 0, 10)
	awaitLog(t, nd, func(l string) bool {
		return strings.Contains(l, `msg="checkpoint made"`) && strings.Contains(l, " stream_seq=20 ")
	})
	registerPersons(t, nd, 10, 10)
	want := settledAnswers(t, nd)
	awaitLog(t, nd, func(l string) bool {
		return strings.Contains(l, `msg="checkpoint made"`) && strings.Contains(l, " stream_seq=40 ")
	})
	nd.Stop(t, syscall.SIGTERM)
	flipLastCheckpoint(t, data)

	nd = startNird(t, data, "--checkpoint-every", "1000", "--checkpoint-interval", "1h")
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Fatalf("at start the answers changed (%d persons, want %d)", personCount(got), personCount(want))
	}
	type result struct {
		through uint64
		err     error
	}
	done := make(chan result, 1)
	go func() {
		through, _, err := rebuild(nd, false)
		done <- result{through, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Errorf("rebuild from the live file: %v", r.err)
		}
		if through := r.through; through < 20 || through >= 40 {
			t.Errorf("the rebuild from the live file took its events through seq %d, want an earlier checkpoint's (20 to 39)", through)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the rebuild from the live file did not end within 60s")
	}
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Errorf("after a rebuild from the live file the answers changed (%d persons, want %d)", personCount(got), personCount(want))
	}
	nd.Stop(t, syscall.SIGTERM)

	nd = startNird(t, data, due...)
	awaitLog(t, nd, func(l string) bool {
		return strings.Contains(l, `msg="checkpoint made"`) && strings.Contains(l, " stream_seq=40 ")
	})
	if !slices.ContainsFunc(nd.Logs(), func(l string) bool {
		return strings.Contains(l, "level=ERROR") && strings.Contains(l, "last checkpoint cannot be read back")
	}) {
		t.Error("the checkpointer did not log the damaged last checkpoint")
	}
	nd.Stop(t, syscall.SIGTERM)
}
