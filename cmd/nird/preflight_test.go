package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreflight_DamagedKeyFiles: nird --check-config (and the start, which runs the same
// checks first) refuses a damaged person key, master key or checkpoint key file, naming its
// flag and the file, before anything is opened. Found on 2026-12-07 by mutation testing: the
// master and checkpoint key checks of preflight could be skipped without a test failing (the
// real start read the files again later, so only --check-config said "configuration ok").
func TestPreflight_DamagedKeyFiles(t *testing.T) {
	t.Setenv("NIR_MASTER_KEY", "") // restored when the test ends
	os.Unsetenv("NIR_MASTER_KEY")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		file, flag string
	}{
		{"personkey.secret", "--person-key-file"},
		{"master.key", "--master-key-file"},
		{"checkpoint.key", "--checkpoint-key"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := t.TempDir()
			cfg, err := parseConfig([]string{"--data", data}, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			// Without the file the check passes: the start makes it.
			if _, err := preflight(cfg, log); err != nil {
				t.Fatalf("preflight without %s: %v", tt.file, err)
			}
			path := filepath.Join(data, tt.file)
			if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = preflight(cfg, log)
			if err == nil || !strings.Contains(err.Error(), tt.flag) || !strings.Contains(err.Error(), path) {
				t.Errorf("preflight with a damaged %s: %v; want an error naming %s and %s", tt.file, err, tt.flag, path)
			}
		})
	}
}
