package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/backup"
	"github.com/introreg/nir/internal/storetest"
)

// TestBackupCheckpointKeySealsTheKeys: nirctl backup --checkpoint-key seals the backup, and
// nirctl restore --public-key restores it; a copy whose keys file lost a data key, its manifest
// made to match, is refused naming keys.json, writing nothing; a backup made without the key
// is made with a warning and refused by restore --public-key.
func TestBackupCheckpointKeySealsTheKeys(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	data := filepath.Join(t.TempDir(), "data")
	st := storetest.OpenAt(t, data, 0, nil)
	ks, err := st.OpenKeyStore(ctx, storetest.NewMaster(t))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{strings.Repeat("a", 64), strings.Repeat("b", 64)}
	for _, id := range ids {
		if _, err := ks.Ensure(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	appendEvents(t, st, 3)
	storetest.CheckpointThrough(t, st, 3, key)
	_ = ks.Close()
	st.Close()
	keyFile := filepath.Join(t.TempDir(), "checkpoint.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(key.Seed())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	sealed := filepath.Join(t.TempDir(), "sealed")
	if err := runBackup(ctx, []string{"--store", data, "--quiet", "--checkpoint-key", keyFile, sealed}, &stdout, &stderr); err != nil {
		t.Fatalf("backup --checkpoint-key: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "not sealed") {
		t.Errorf("the sealed backup warns that it is not: %s", stderr.String())
	}
	unsealed := filepath.Join(t.TempDir(), "unsealed")
	if err := runBackup(ctx, []string{"--store", data, "--quiet", unsealed}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "not sealed") {
		t.Errorf("a backup without --checkpoint-key does not warn that it is not sealed: %s", stderr.String())
	}

	dropped := editedCopy(t, sealed, func(m map[string]any) {})
	kb, err := os.ReadFile(filepath.Join(dropped, backup.KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	var kf map[string]map[string]any
	if err := json.Unmarshal(kb, &kf); err != nil {
		t.Fatal(err)
	}
	delete(kf["wrapped"], ids[0])
	kb, _ = json.Marshal(kf)
	if err := os.WriteFile(filepath.Join(dropped, backup.KeysFile), kb, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(kb)
	dropped = editedCopy(t, dropped, func(m map[string]any) {
		m["keys"] = map[string]any{"name": backup.KeysFile, "bytes": len(kb), "sha256": hex.EncodeToString(sum[:])}
	})

	for _, dir := range []string{dropped, unsealed} {
		target := filepath.Join(t.TempDir(), "target")
		err := runRestore(ctx, []string{"--data", target, "--quiet", "--public-key", hex.EncodeToString(pub), dir}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), backup.KeysFile) || !strings.Contains(err.Error(), "nothing was restored") || strings.Contains(err.Error(), ids[0]) {
			t.Errorf("restore --public-key of %s: %v; want a refusal naming %s and no data key", filepath.Base(dir), err, backup.KeysFile)
		}
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Errorf("the refused restore of %s made its data directory (%v)", filepath.Base(dir), err)
		}
	}
	if err := runRestore(ctx, []string{"--data", filepath.Join(t.TempDir(), "own"), "--quiet", "--public-key", hex.EncodeToString(pub), sealed}, &stdout, &stderr); err != nil {
		t.Fatalf("restore --public-key of the sealed backup: %v\n%s", err, stderr.String())
	}
}
