package backup_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/backup"
)

// TestOpen_HugeSparseEventsFile: a manifest that claims a huge events file, the file made so
// (sparse: its records then zeros, or a record of 128 MiB, more than any message) is refused by Open at
// the first record that does not hold, reading little of it: allocations during Open stay
// under 32 MiB for a 256 MiB file. Its count is forged too, so that the file is one the
// count could need.
//
// Found on 2026-12-07 (review of backups): Open read the whole events file into memory,
// as large as the manifest said, before it checked any record: whoever could write a backup
// made a restore read gigabytes of zeros, and fail only after.
func TestOpen_HugeSparseEventsFile(t *testing.T) {
	const size = 256 << 20
	for _, tc := range []struct {
		name  string
		frame []byte // written after the backup's records
		want  string
	}{
		{"Zeros", nil, "record 4 "},
		{"RecordOf128MiB", binary.BigEndian.AppendUint32(nil, 128<<20), "more than any message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeBackup(t, 3)
			path := filepath.Join(dir, backup.EventsFile)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(size); err != nil {
				t.Fatal(err)
			}
			f.Close()
			editManifest(t, dir, func(m map[string]any) {
				m["events"].(map[string]any)["bytes"] = size
				m["count"] = 1000
				m["last_seq"] = 1000
			})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = backup.Open(dir)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), backup.EventsFile) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open of a %d MiB sparse events file: %v; want a refusal naming %s and %q", size>>20, err, backup.EventsFile, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
				t.Errorf("Open allocated %d MiB for a %d MiB sparse events file, want under 32", alloc>>20, size>>20)
			}
		})
	}
}

// TestOpen_RefusesMoreBytesThanTheCountCanNeed: a manifest whose events file is larger than
// its event count's records could be, each at most the largest record, is refused before
// the file is read.
func TestOpen_RefusesMoreBytesThanTheCountCanNeed(t *testing.T) {
	dir := writeBackup(t, 1)
	path := filepath.Join(dir, backup.EventsFile)
	const size = 256 << 20
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	editManifest(t, dir, func(m map[string]any) { m["events"].(map[string]any)["bytes"] = size })
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := backup.Open(dir)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "1 event") || !strings.Contains(err.Error(), backup.EventsFile) {
		t.Errorf("Open of a 256 MiB events file said to hold 1 event: %v; want a refusal naming the count", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("Open allocated %d KiB before refusing, want under 4 MiB", alloc>>10)
	}
}
