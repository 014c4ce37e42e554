package backup_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/backup"
)

// TestOpen_RefusesACountTheEventsDoNotHave: a manifest whose event count is not the events
// file's (edited with manifest_sha256 left out, as backups made before it have none) is
// refused by Open, naming the counts, before a restore reads it. Found by mutation testing on
// 2026-12-07: Open without the count check passed every test.
func TestOpen_RefusesACountTheEventsDoNotHave(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	appendN(t, s, 1, 4)
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Write(ctx, s, dir, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, backup.ManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["count"] = 5
	delete(m, "manifest_sha256")
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Open(dir); err == nil || !strings.Contains(err.Error(), "4 records, the manifest says 5") {
		t.Errorf("Open of a manifest that says 5 events of 4: %v; want an error naming both counts", err)
	}
}
