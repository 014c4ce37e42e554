package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/storetest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// restoreRefusedSource (the restore tests' source) writes a register of n events, a checkpoint of them signed by key, and
// extra events after it, and a full backup of it sealed with key; it returns the backup's directory.
func restoreRefusedSource(t *testing.T, n, extra int, key ed25519.PrivateKey) string {
	t.Helper()
	ctx := context.Background()
	src, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	appendEvents(t, src, n)
	storetest.CheckpointThrough(t, src, uint64(n), key)
	appendEvents(t, src, extra)
	full := filepath.Join(t.TempDir(), "full")
	if _, err := backup.Write(ctx, src, full, backup.Options{Key: key}); err != nil {
		t.Fatal(err)
	}
	return full
}

// TestRestoreRefusedWritesNothing: a restore refused for a forged checkpoint leaves --data as
// it found it, so that the sound backup then restores into it, with the sound backup's
// stream metadata (the person key's fingerprint), not the forged manifest's.
//
// Found on 2026-12-06 (review of the restore fixes): before, runRestore opened the store
// (creating the stream with the manifest's metadata) before backup.Restore checked the
// checkpoints, so the refused restore ("nothing is written") left jetstream/ in --data, and
// the sound restore into it was refused as "holds a register" (on a cluster the stream kept
// the forged metadata). Now backup.Verify checks everything before --data or the cluster is
// touched.
func TestRestoreRefusedWritesNothing(t *testing.T) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	full := restoreRefusedSource(t, 5, 0, key)
	sound, err := backup.Open(full)
	if err != nil {
		t.Fatal(err)
	}
	// The hostile copy: manifest.json with checkpoint 1's digest changed, re-signed by another
	// key, its metadata's fingerprint replaced, manifest_sha256 left out.
	forged := editedCopy(t, full, func(m map[string]any) { forgeManifest(t, m, other) })

	data := filepath.Join(t.TempDir(), "target")
	var stdout, stderr bytes.Buffer
	err = runRestore(ctx, []string{"--data", data, "--quiet", forged}, &stdout, &stderr)
	if !errors.Is(err, backup.ErrCheckpointMismatch) {
		t.Fatalf("restore of the forged backup: %v, want ErrCheckpointMismatch", err)
	}
	if entries, err := os.ReadDir(data); err == nil && len(entries) > 0 {
		t.Errorf("the refused restore left %d entries in --data (%s ...), want none", len(entries), entries[0].Name())
	}
	if err := runRestore(ctx, []string{"--data", data, "--quiet", full}, &stdout, &stderr); err != nil {
		t.Fatalf("restore of the sound backup into the directory the refused restore was given: %v", err)
	}
	dst, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	id, err := dst.CurrentIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := id.Metadata["nir_person_key"], sound.Manifest.Metadata["nir_person_key"]; got != want {
		t.Errorf("restored stream's nir_person_key is %q, the sound backup's is %q", got, want)
	}
	if last, err := dst.LastSeq(ctx); err != nil || last != 5 {
		t.Errorf("restored stream ends at %d (%v), want 5", last, err)
	}
}

// TestRestorePublicKeyNeedsACheckpoint: nirctl restore --public-key refuses a backup that
// carries no checkpoint, writing nothing. The sound backup restores, and its seal vouches for
// the sequences after its last checkpoint, so stderr warns of none (it did until 2026-12-07).
//
// Found on 2026-12-06 (review of the restore fixes): before, --public-key checked the
// signatures of the checkpoints there were, and passed a backup with every one stripped (its
// events free to be rewritten with the digest recomputed); nird then signed its first
// checkpoint over the unverified history. Now such a backup is refused, and the unvouched
// tail is named.
func TestRestorePublicKeyNeedsACheckpoint(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	full := restoreRefusedSource(t, 5, 3, key)

	stripped := editedCopy(t, full, func(m map[string]any) { delete(m, "checkpoints") })

	data := filepath.Join(t.TempDir(), "target")
	var stdout, stderr bytes.Buffer
	err := runRestore(ctx, []string{"--data", data, "--quiet", "--public-key", hex.EncodeToString(pub), stripped}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "carry no checkpoint") {
		t.Fatalf("restore --public-key of a backup without checkpoints: %v, want a refusal saying the backups carry no checkpoint", err)
	}
	if entries, err := os.ReadDir(data); err == nil && len(entries) > 0 {
		t.Errorf("the refused restore left %d entries in --data, want none", len(entries))
	}

	stdout.Reset()
	stderr.Reset()
	if err := runRestore(ctx, []string{"--data", data, "--quiet", "--public-key", hex.EncodeToString(pub), full}, &stdout, &stderr); err != nil {
		t.Fatalf("restore --public-key of the sound backup: %v", err)
	}
	if strings.Contains(stderr.String(), "WARNING") {
		t.Errorf("stderr warns of a sealed backup:\n%s", stderr.String())
	}
}

// appendEvents appends n events of one person to s.
func appendEvents(t *testing.T, s *eventstore.Store, n int) {
	t.Helper()
	h := sha256.Sum256([]byte("refused restore person"))
	pk := hex.EncodeToString(h[:])
	for range n {
		ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: pk, Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"},
			RecordedAt: timestamppb.New(time.Now()),
			Payload:    &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}}
		if _, err := s.Append(context.Background(), eventstore.PersonAppend{PersonKey: pk, Events: []*nirv1.Event{ev}}); err != nil {
			t.Fatal(err)
		}
	}
}

// editedCopy copies the backup in dir and rewrites the copy's manifest with edit, the
// manifest's own checksum left out (as a backup made before it had none): what whoever can
// write the backup can do. It returns the copy's directory.
func editedCopy(t *testing.T, dir string, edit func(m map[string]any)) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "edited")
	if err := os.CopyFS(out, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	mb, err := os.ReadFile(filepath.Join(out, backup.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "manifest_sha256")
	edit(m)
	if mb, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, backup.ManifestFile), mb, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// forgeManifest replaces m's person-key fingerprint and gives its first checkpoint a zero
// digest, signed by other.
func forgeManifest(t *testing.T, m map[string]any, other ed25519.PrivateKey) {
	t.Helper()
	md, _ := m["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		m["metadata"] = md
	}
	md["nir_person_key"] = "forged-fingerprint"
	cps := m["checkpoints"].([]any)
	raw, _ := base64.StdEncoding.DecodeString(cps[0].(string))
	cp := new(nirv1.Checkpoint)
	if err := proto.Unmarshal(raw, cp); err != nil {
		t.Fatal(err)
	}
	cp.Digest = make([]byte, 32)
	if err := eventstore.SignCheckpoint(cp, other); err != nil {
		t.Fatal(err)
	}
	raw, _ = proto.MarshalOptions{Deterministic: true}.Marshal(cp)
	cps[0] = base64.StdEncoding.EncodeToString(raw)
}
