package deploytest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/verify"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestCluster_BackupRestore: a backup of the embedded server's stream is restored into
// deploy/nats's 3-node cluster (R3, as nird's user), backed up there again (as the
// read-only reader user, as an operator would), and restored into a new embedded store:
// every message is where it was, byte for byte, on both trips, and so are the signed
// checkpoints, which verify finds matching (as the reader on the cluster). The servers are
// nats-server processes built from the pinned module, as an operator runs them.
func TestCluster_BackupRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	creds := SetCredentials(t)

	embedded := func() *eventstore.Store {
		s, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	dump := func(s *eventstore.Store) []eventstore.RawMessage {
		var out []eventstore.RawMessage
		if _, err := s.Export(ctx, 0, 0, func(m eventstore.RawMessage) error {
			m.Data = bytes.Clone(m.Data)
			out = append(out, m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	same := func(what string, a, b []eventstore.RawMessage) {
		t.Helper()
		if len(a) != len(b) {
			t.Fatalf("%s: %d messages, want %d", what, len(b), len(a))
		}
		for i := range a {
			if a[i].Seq != b[i].Seq || a[i].Subject != b[i].Subject || !bytes.Equal(a[i].Data, b[i].Data) {
				t.Fatalf("%s: message %d differs", what, a[i].Seq)
			}
		}
	}

	src := embedded()
	for p := range 12 {
		key := fmt.Sprintf("bbbb%02d", p)
		evs := []*nirv1.Event{moved(key, "4601"), moved(key, "0301"), moved(key, "5001")}
		if _, err := src.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: evs}); err != nil {
			t.Fatal(err)
		}
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	cctx, stopCP := context.WithCancel(ctx)
	made := make(chan struct{}, 1)
	go src.RunCheckpoints(cctx, eventstore.CheckpointOptions{Every: 1, Poll: 5 * time.Millisecond, Key: key,
		Made: func(cp *nirv1.Checkpoint) {
			if cp.GetStreamSeq() == 36 {
				made <- struct{}{}
			}
		}})
	select {
	case <-made:
	case <-ctx.Done():
		t.Fatal("no checkpoint of the embedded stream")
	}
	stopCP()
	wantCPs, err := src.Checkpoints(ctx)
	if err != nil || len(wantCPs) == 0 {
		t.Fatalf("%d checkpoints, %v", len(wantCPs), err)
	}
	sameCPs := func(what string, s *eventstore.Store) {
		t.Helper()
		got, err := s.Checkpoints(ctx)
		if err != nil || len(got) != len(wantCPs) {
			t.Fatalf("%s: %d checkpoints (%v), want %d", what, len(got), err, len(wantCPs))
		}
		for i := range got {
			if !bytes.Equal(got[i].Data, wantCPs[i].Data) {
				t.Fatalf("%s: checkpoint %d differs", what, i+1)
			}
		}
	}
	want := dump(src)
	first := filepath.Join(t.TempDir(), "embedded")
	if _, err := backup.Write(ctx, src, first, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	b1, err := backup.Open(first)
	if err != nil {
		t.Fatal(err)
	}

	urls := URLs(RunProcesses(t, BuildServer(t), "cluster-1.conf", "cluster-2.conf", "cluster-3.conf"))
	var cluster *eventstore.Store
	poll(t, ctx, "open the event store with 3 replicas", func(ctx context.Context) error {
		var err error
		cluster, err = openStore(ctx, urls, "nird", creds.Nird, 3)
		return err
	})
	t.Cleanup(func() { cluster.Close() })
	// nird creates the reader's consumers (the readers' account may not).
	stopGuard, err := cluster.ServeReaderConsumers()
	if err != nil {
		t.Fatal(err)
	}
	defer stopGuard()
	if last, err := backup.Restore(ctx, cluster, []*backup.Backup{b1}, backup.Until{}, nil); err != nil || last != uint64(len(want)) {
		t.Fatalf("restore into the cluster: last %d, %v; want %d", last, err, len(want))
	}
	same("restored into the cluster", want, dump(cluster))
	sameCPs("restored into the cluster", cluster)

	reader, err := eventstore.Open(ctx, eventstore.Config{URL: urls, ReadOnly: true,
		NATSOptions: []nats.Option{nats.UserInfo("reader", creds.Reader), nats.CustomInboxPrefix(InboxPrefix("reader"))}})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	rep, err := verify.Stream(ctx, reader, verify.Options{PublicKey: pub})
	if err != nil || !rep.OK() || rep.CheckpointThrough != uint64(len(want)) {
		t.Fatalf("verify on the cluster as the reader: %+v, %v; want no problems, the checkpoints matched through %d", rep, err, len(want))
	}
	second := filepath.Join(t.TempDir(), "cluster")
	if _, err := backup.Write(ctx, reader, second, backup.Options{}); err != nil {
		t.Fatalf("backup from the cluster as the reader: %v", err)
	}
	b2, err := backup.Open(second)
	if err != nil {
		t.Fatal(err)
	}
	back := embedded()
	if _, err := backup.Restore(ctx, back, []*backup.Backup{b2}, backup.Until{}, nil); err != nil {
		t.Fatal(err)
	}
	same("back from the cluster", want, dump(back))
	sameCPs("back from the cluster", back)
}
