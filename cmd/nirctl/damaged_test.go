package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/sealing"
)

// TestBackupVerify_DamagedKey: a stopped store whose data-key bucket holds an entry damaged
// on disk (one byte of its block flipped). nirctl verify names the key and fails; nirctl
// backup fails naming it and the flag that accepts it, and writes nothing; with
// --accept-damaged key:ID it completes and warns; nirctl restore of it warns that the key is
// stored as damaged.
func TestBackupVerify_DamagedKey(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "js")
	st, err := eventstore.Open(ctx, eventstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	const person = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: person, Kommune: "0301", Actor: &nirv1.Actor{Subject: "t"},
		Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 1, Day: 1}}}}
	if _, err := st.Append(ctx, eventstore.PersonAppend{PersonKey: person, Events: []*nirv1.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	mk := make([]byte, sealing.KeySize)
	rand.Read(mk)
	master, err := sealing.NewKey(mk)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := st.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)}
	for _, id := range ids {
		if _, err := ks.Ensure(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	js, err := jetstream.New(st.Conn())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, eventstore.KeyBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	raw := bytes.Clone(e.Value())
	_ = ks.Close()
	st.Close()
	blk := filepath.Join(dir, "jetstream", "$G", "streams", "KV_"+eventstore.KeyBucket, "msgs", "1.blk")
	b, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, raw)
	if at < 0 {
		t.Fatal("the entry is not in the block")
	}
	b[at+len(raw)/2] ^= 0x01
	if err := os.WriteFile(blk, b, 0o600); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	err = runVerify(ctx, []string{"--store", dir, "--quiet"}, &out, &errb)
	if !errors.Is(err, errProblems) || !strings.Contains(out.String(), "PROBLEM data key "+ids[1]+": data-key-damaged") {
		t.Errorf("verify with a damaged data key: %v\n%s", err, out.String())
	}

	bdir := filepath.Join(t.TempDir(), "b")
	err = runBackup(ctx, []string{"--store", dir, "--quiet", bdir}, &out, &errb)
	if !errors.Is(err, backup.ErrDamaged) || !strings.Contains(err.Error(), "--accept-damaged key:"+ids[1]) {
		t.Errorf("backup with a damaged data key: %v", err)
	}
	if entries, _ := os.ReadDir(bdir); len(entries) != 0 {
		t.Errorf("the refused backup left %d files", len(entries))
	}
	if err := runBackup(ctx, []string{"--store", dir, "--quiet", "--accept-damaged", "checkpoint:x", bdir}, &out, &errb); err == nil {
		t.Error("--accept-damaged checkpoint:x accepted")
	}
	errb.Reset()
	if err := runBackup(ctx, []string{"--store", dir, "--quiet", "--accept-damaged", "key:" + ids[1], bdir}, &out, &errb); err != nil {
		t.Fatalf("backup accepting the damaged key: %v", err)
	}
	if !strings.Contains(errb.String(), "WARNING: this backup holds less than the register") || !strings.Contains(errb.String(), ids[1]) {
		t.Errorf("the accepting backup did not warn:\n%s", errb.String())
	}
	errb.Reset()
	data := filepath.Join(t.TempDir(), "data")
	if err := runRestore(ctx, []string{"--data", data, "--quiet", bdir}, &out, &errb); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !strings.Contains(errb.String(), "WARNING: the data keys ["+ids[1]+"] were damaged") {
		t.Errorf("the restore did not warn of the damaged key:\n%s", errb.String())
	}
}
