package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natstest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// lockedBuffer is a log destination that goroutines may write while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestStore_DamagedRecord: a byte of one message's data flipped in the stream's block file
// while the store is closed (a failing disk). The server checks each record's checksum when
// it reads it from disk and answers a damaged one as no message, so a Replay delivers it as
// missing and goes on, and an Export stops with an error naming it. Before, an ordered
// consumer's read (a Replay of more than replayDirectMax messages, every Export) waited
// forever: the server's NumPending goes on counting the message it cannot read, never
// reaching 0, and the read handed its last messages over only then (a rebuild of the read
// models from the stream, or their repair, hung at its end; nirctl verify and backup hung).
//
// The Last cases damage the stream's last message, which no later message follows: LastSeq
// still gives its sequence (from the stream's state; it said 0 before, and nird took the
// stream for one rolled back) and logs it by that sequence, a Replay delivers it as missing and
// ends, on both paths, and an Export ends with an error naming it (both waited forever
// before); the checkpoint writer, which reads with Export, makes no checkpoint over it and
// says why.
func TestStore_DamagedRecord(t *testing.T) {
	for _, tc := range []struct {
		name          string
		events, seq   uint64
		wantExportErr string
	}{
		{"LongReplay", 3000, 5, "sequence 5 missing"},
		{"ShortReplay", 100, 5, "sequence 5 missing"},
		{"LongReplayLast", 3000, 3000, "sequence 3000 missing"},
		{"ShortReplayLast", 100, 100, "sequence 100 missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "js")
			s, err := eventstore.Open(ctx, eventstore.Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			for i := uint64(0); i < tc.events; i += 100 {
				key := personKey(fmt.Sprint(i))
				if _, err := s.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: events(key, int(min(100, tc.events-i)))}); err != nil {
					t.Fatal(err)
				}
			}
			_, raw, err := s.MsgAt(ctx, tc.seq)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			natstest.FlipInBlock(t, dir, eventstore.StreamName, raw)
			var logs lockedBuffer
			s, err = eventstore.Open(ctx, eventstore.Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()

			if last, err := s.LastSeq(ctx); err != nil || last != tc.events {
				t.Fatalf("LastSeq = %d, %v; want %d", last, err, tc.events)
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			var n uint64
			var missing []uint64
			for st, err := range s.Replay(rctx, eventstore.ReplayOptions{Undecoded: true}) {
				if err != nil {
					t.Fatalf("replay after %d messages: %v", n, err)
				}
				if n++; st.Seq != n {
					t.Fatalf("replay delivered seq %d as message %d", st.Seq, n)
				}
				if st.Quarantine != nil {
					missing = append(missing, st.Seq)
					if st.Quarantine.Reason != eventstore.ReasonMissing {
						t.Errorf("seq %d quarantined as %q", st.Seq, st.Quarantine.Reason)
					}
				}
			}
			if n != tc.events || !slices.Equal(missing, []uint64{tc.seq}) {
				t.Errorf("replay delivered %d messages, %v missing; want %d, [%d]", n, missing, tc.events, tc.seq)
			}

			ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			last, err := s.Export(ectx, 1, 0, func(eventstore.RawMessage) error { return nil })
			if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), tc.wantExportErr) {
				t.Errorf("export: %v; want an error saying %q", err, tc.wantExportErr)
			}
			if last != tc.seq-1 {
				t.Errorf("export delivered through seq %d, want %d", last, tc.seq-1)
			}
			if tc.seq != tc.events {
				return
			}
			if l := logs.String(); !strings.Contains(l, "last message cannot be read back") || !strings.Contains(l, fmt.Sprintf(" stream_seq=%d", tc.seq)) {
				t.Errorf("the unreadable last message was not logged by its sequence:\n%s", l)
			}
			// The checkpoint writer reads the stream with Export: it makes no checkpoint over
			// the message it cannot read, says so, and tries again.
			cctx, stop := context.WithCancel(ctx)
			made := make(chan *nirv1.Checkpoint, 1)
			done := make(chan error, 1)
			go func() {
				done <- s.RunCheckpoints(cctx, eventstore.CheckpointOptions{Every: 1, Poll: 10 * time.Millisecond,
					Made: func(cp *nirv1.Checkpoint) { made <- cp }})
			}()
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(logs.String(), "checkpoint not made") || !strings.Contains(logs.String(), tc.wantExportErr) {
				if time.Now().After(deadline) {
					t.Fatalf("the checkpoint writer did not report the missing sequence within 30s:\n%s", logs.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			// It tries again at every poll, and says so once per 10 minutes, not at every
			// poll (TestRepeatedWarning): 8 640 lines a day before.
			time.Sleep(300 * time.Millisecond)
			if n := strings.Count(logs.String(), "checkpoint not made"); n != 1 {
				t.Errorf("%d lines of the same failure in 30 polls, want 1", n)
			}
			stop()
			if err := <-done; err != nil {
				t.Errorf("RunCheckpoints: %v", err)
			}
			select {
			case cp := <-made:
				t.Errorf("a checkpoint was made through seq %d over the unreadable message", cp.GetStreamSeq())
			default:
			}
		})
	}
}
