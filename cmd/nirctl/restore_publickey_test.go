package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	full := restoreRefusedSource(t, 5, 0, key)

	var stdout, stderr bytes.Buffer
	data := filepath.Join(t.TempDir(), "other")
	err := runRestore(ctx, []string{"--data", data, "--quiet", "--public-key", hex.EncodeToString(otherPub), full}, &stdout, &stderr)
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
