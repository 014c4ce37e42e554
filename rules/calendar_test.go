package rules_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/rules"
)

// TestToday: the date in Norway, not in UTC or the machine's zone, across midnight and the
// change to summer time.
func TestToday(t *testing.T) {
	for _, c := range []struct {
		utc  string
		want string
	}{
		{"2025-02-28T22:59:59Z", "2025-02-28"}, // 23:59:59 CET, the ajourføring deadline's last second
		{"2025-02-28T23:00:00Z", "2025-03-01"}, // midnight CET
		{"2025-06-30T21:59:59Z", "2025-06-30"}, // 23:59:59 CEST
		{"2025-06-30T22:00:00Z", "2025-07-01"}, // midnight CEST
		{"2025-03-30T00:30:00Z", "2025-03-30"}, // 01:30 CET, before the clocks go forward
	} {
		at, err := time.Parse(time.RFC3339, c.utc)
		if err != nil {
			t.Fatal(err)
		}
		if got := rules.Today(at).String(); got != c.want {
			t.Errorf("Today(%s) = %s, want %s", c.utc, got, c.want)
		}
	}
	if rules.Norway.String() != "Europe/Oslo" {
		t.Errorf("Norway = %s", rules.Norway)
	}
}

// TestNorwayWithoutZoneDatabase runs TestToday again in a process that sees no zone database
// (in a private mount namespace, an empty directory over /usr/share/zoneinfo and an empty
// file over Go's own $GOROOT/lib/time/zoneinfo.zip, where the time package looks next), so
// that Norway must come from the zone database embedded in the binary. Without time/tzdata
// that process panics at start.
func TestNorwayWithoutZoneDatabase(t *testing.T) {
	if os.Getenv("NIR_NO_ZONEINFO_CHILD") == "1" {
		if entries, err := os.ReadDir("/usr/share/zoneinfo"); err != nil || len(entries) != 0 {
			t.Fatalf("the child still sees a zone database: %d entries, %v", len(entries), err)
		}
		TestToday(t)
		return
	}
	if _, err := os.Stat("/usr/share/zoneinfo"); err != nil {
		// No system zone database at all: this process already runs without one.
		TestToday(t)
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) is missing: cannot hide the system zone database")
	}
	empty := t.TempDir()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	zip := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "time", "zoneinfo.zip")
	script := `mount --bind "$1" /usr/share/zoneinfo && { [ ! -e "$2" ] || mount --bind /dev/null "$2"; } && ` +
		`exec "$3" -test.run='^TestNorwayWithoutZoneDatabase$' -test.v`
	cmd := exec.Command(unshare, "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", empty, zip, os.Args[0])
	cmd.Env = append(os.Environ(), "NIR_NO_ZONEINFO_CHILD=1", "TZ=", "ZONEINFO=")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && strings.Contains(string(out), "mount") && !strings.Contains(string(out), "=== RUN") {
		t.Skipf("this machine does not allow a private mount namespace: %s", strings.TrimSpace(string(out)))
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNorwayWithoutZoneDatabase") {
		t.Fatalf("without a system zone database: %v\n%s", err, out)
	}
}
