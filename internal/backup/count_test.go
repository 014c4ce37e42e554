package backup_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/backup"
)

// editManifest rewrites the manifest of the backup in dir with edit applied to its JSON
// fields, and without manifest_sha256, as backups made before it have none.
func editManifest(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, backup.ManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	delete(m, "manifest_sha256")
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeBackup writes a full backup of a store holding n events and returns its directory.
func writeBackup(t *testing.T, n int) string {
	t.Helper()
	s := openStore(t)
	if n > 0 {
		appendN(t, s, 1, n)
	}
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Write(context.Background(), s, dir, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOpen_RefusesACountTheEventsDoNotHave: a manifest whose event count is not the events
// file's (edited with manifest_sha256 left out, as backups made before it have none) is
// refused by Open, naming the counts, before a restore reads it. Found by mutation testing on
// 2026-12-07: Open without the count check passed every test.
func TestOpen_RefusesACountTheEventsDoNotHave(t *testing.T) {
	dir := writeBackup(t, 4)
	editManifest(t, dir, func(m map[string]any) { m["count"] = 5 })
	if _, err := backup.Open(dir); err == nil || !strings.Contains(err.Error(), "4 records, the manifest says 5") {
		t.Errorf("Open of a manifest that says 5 events of 4: %v; want an error naming both counts", err)
	}
}

// TestOpen_RefusesAnEmptyEventsFile: an events file that holds no record, under a manifest
// that says it holds sequences 1 to 5, is refused by Open naming the file, whichever field of
// the manifest says so: its size, its count or its sequences. Found on 2026-12-07 (review
// of the backup fixes): Open compared the sequences with the records only when there was at
// least one, so a file of no record under a manifest of count 0 and sequences 1 to 5 (its
// checksums matching, manifest_sha256 left out) opened; without a digest in the manifest
// it then restored nothing, reported as "restored sequences 1 to 0 of 5".
func TestOpen_RefusesAnEmptyEventsFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events string // the events file's content
		resum  bool   // the manifest's size and SHA-256 of the events file made to match it
		count  int
		want   string
	}{
		{"TruncatedToZero", "", false, 5, "events.nirbak is 0 bytes, the manifest says"},
		{"EmptyAndSummed", "", true, 5, "events.nirbak (0 bytes) is not a nir backup file"},
		{"NoRecordCount5", "NIRBAK1\n", true, 5, "events.nirbak holds 0 records, the manifest says 5, sequences 1 to 5"},
		{"NoRecordCount0", "NIRBAK1\n", true, 0, "events.nirbak holds 0 records, the manifest says 0, sequences 1 to 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeBackup(t, 5)
			if err := os.WriteFile(filepath.Join(dir, backup.EventsFile), []byte(tc.events), 0o600); err != nil {
				t.Fatal(err)
			}
			editManifest(t, dir, func(m map[string]any) {
				m["count"] = tc.count
				if tc.resum {
					s := sha256.Sum256([]byte(tc.events))
					m["events"] = map[string]any{"name": backup.EventsFile, "bytes": len(tc.events), "sha256": hex.EncodeToString(s[:])}
				}
			})
			_, err := backup.Open(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "cannot be restored") {
				t.Errorf("Open of an events file of %d bytes under a manifest of sequences 1 to 5: %v; want %q", len(tc.events), err, tc.want)
			}
		})
	}
}

// TestOpen_EmptyBackups: the backups that hold no event are sound and open: a full one of an
// empty register (sequences 1 to 0), and an incremental one made when nothing was appended
// since the earlier one (sequences 6 to 5); the chain restores the earlier one's events.
func TestOpen_EmptyBackups(t *testing.T) {
	ctx := context.Background()
	if b, err := backup.Open(writeBackup(t, 0)); err != nil || b.Manifest.Count != 0 || b.Manifest.FirstSeq != 1 || b.Manifest.LastSeq != 0 {
		t.Fatalf("Open of a backup of an empty register: %v; want it opened, of no sequence", err)
	}
	s := openStore(t)
	appendN(t, s, 1, 5)
	full, incr := filepath.Join(t.TempDir(), "full"), filepath.Join(t.TempDir(), "incr")
	fm, err := backup.Write(ctx, s, full, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Write(ctx, s, incr, backup.Options{After: &fm}); err != nil {
		t.Fatal(err)
	}
	chain := []*backup.Backup{openBackup(t, full), openBackup(t, incr)}
	if m := chain[1].Manifest; m.Count != 0 || m.FirstSeq != 6 || m.LastSeq != 5 {
		t.Fatalf("the incremental backup of nothing new: count %d, sequences %d to %d; want 0, 6 to 5", m.Count, m.FirstSeq, m.LastSeq)
	}
	if last, err := backup.Restore(ctx, openStore(t), chain, backup.Until{}, nil); err != nil || last != 5 {
		t.Errorf("restore of a full backup and an empty incremental one: %d, %v; want 5", last, err)
	}
}

// TestOpen_RefusesAnEmptyRangeThatWraps: an events file of no record under a manifest of
// sequences 0 to 18446744073709551615 (count 0, checksums matching, manifest_sha256 and the
// digest left out) passed Open's check of an empty range, FirstSeq+0 == LastSeq+1 as
// uint64s, and restored nothing as a finished restore, as the range 1 to 5 did before
// b2e2e05; so did a full backup of sequences 6 to 5 (a review, 2026-12-07). No stream
// sequence is 0, and a full backup starts at 1: Open refuses both.
func TestOpen_RefusesAnEmptyRangeThatWraps(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first, last uint64
	}{
		{"Wraps", 0, math.MaxUint64},
		{"FullNotFromOne", 6, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeBackup(t, 5)
			events := "NIRBAK1\n"
			if err := os.WriteFile(filepath.Join(dir, backup.EventsFile), []byte(events), 0o600); err != nil {
				t.Fatal(err)
			}
			editManifest(t, dir, func(m map[string]any) {
				s := sha256.Sum256([]byte(events))
				m["events"] = map[string]any{"name": backup.EventsFile, "bytes": len(events), "sha256": hex.EncodeToString(s[:])}
				m["count"], m["first_seq"], m["last_seq"] = 0, tc.first, tc.last
				delete(m, "digest")
				delete(m, "checkpoints")
			})
			b, err := backup.Open(dir)
			if err == nil {
				last, rerr := backup.Restore(context.Background(), openStore(t), []*backup.Backup{b}, backup.Until{}, nil)
				t.Fatalf("Open of no record as sequences %d to %d: opened, and restored through %d (%v); want it refused", tc.first, tc.last, last, rerr)
			}
			if want := fmt.Sprintf("sequences %d to %d", tc.first, tc.last); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "cannot be restored") {
				t.Errorf("Open of no record as sequences %d to %d: %v; want %q, and that it cannot be restored", tc.first, tc.last, err, want)
			}
		})
	}
}
