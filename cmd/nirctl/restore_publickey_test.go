package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/storetest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestRestorePublicKey: nirctl restore --public-key HEX refuses a backup whose carried
// checkpoints are not signed by that key, naming the checkpoint, before it writes anything;
// with the register's key it restores.
//
// Found on 2026-12-06 (review of backup and restore on a cluster): before, a restore never
// looked at the carried checkpoints' signatures, and nird then continued its own signed
// checkpoints from the last one. Now --public-key (as nirctl verify takes it) checks them.
func TestRestorePublicKey(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	src, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	h := sha256.Sum256([]byte("restore public key person"))
	pk := hex.EncodeToString(h[:])
	for range 5 {
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: pk, Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"},
			RecordedAt: timestamppb.New(time.Now()),
			Payload:    &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}}
		if _, err := src.Append(ctx, eventstore.PersonAppend{PersonKey: pk, Events: []*nirv1.Event{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	storetest.CheckpointThrough(t, src, 5, key)
	full := filepath.Join(t.TempDir(), "full")
	if _, err := backup.Write(ctx, src, full, backup.Options{}); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	data := filepath.Join(t.TempDir(), "other")
	err = runRestore(ctx, []string{"--data", data, "--quiet", "--public-key", hex.EncodeToString(otherPub), full}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "checkpoint 1 of the manifest's checkpoints (through stream sequence 5)") ||
		!strings.Contains(err.Error(), "signed by another key") {
		t.Fatalf("restore with another register's public key: %v", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the refused restore made its data directory (%v)", err)
	}
	err = runRestore(ctx, []string{"--data", data, "--quiet", "--public-key", "abc", full}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--public-key") {
		t.Errorf("restore with a public key that is not one: %v", err)
	}

	stdout.Reset()
	data = filepath.Join(t.TempDir(), "own")
	if err := runRestore(ctx, []string{"--data", data, "--quiet", "--public-key", hex.EncodeToString(pub), full}, &stdout, &stderr); err != nil {
		t.Fatalf("restore with the register's public key: %v\n%s", err, stderr.String())
	}
	if want := fmt.Sprintf("restored sequences 1 to %d", 5); !strings.Contains(stdout.String(), want) {
		t.Errorf("restore says %q, want %q", stdout.String(), want)
	}
}
