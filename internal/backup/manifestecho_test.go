package backup_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/backup"
)

// TestOpen_DamagedManifestNamesNoContent: a manifest.json that is not a manifest (another
// file in its place, whose names are national ids) is refused, naming the file, without
// repeating what it holds: errors never carry a national id. Found on 2026-12-07 (adversarial
// review of backup and restore): the refusal quoted the JSON decoder's error, which names an
// unknown field by its text.
func TestOpen_DamagedManifestNamesNoContent(t *testing.T) {
	const nationalID = "01017012345"
	for name, content := range map[string]string{
		"unknown field": `{"format": 1, "` + nationalID + `": "x"}`,
		"wrong type":    `{"format": "` + nationalID + `"}`,
		"not JSON":      nationalID + ` ` + nationalID,
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeBackup(t, 1)
			if err := os.WriteFile(filepath.Join(dir, backup.ManifestFile), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := backup.Open(dir)
			if err == nil || !strings.Contains(err.Error(), backup.ManifestFile) || strings.Contains(err.Error(), nationalID) {
				t.Errorf("Open: %v; want a refusal naming %s and not the content", err, backup.ManifestFile)
			}
		})
	}
}
