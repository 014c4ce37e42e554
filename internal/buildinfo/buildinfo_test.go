package buildinfo

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v1.2.3"
	if got := Text("nird"); !strings.HasPrefix(got, "nird v1.2.3") || !strings.Contains(got, "go1.") {
		t.Errorf("Text = %q, want the name, the version and the Go version", got)
	}
	Version = ""
	if in := Read(); in.Version == "" || in.GoVersion == "" {
		t.Errorf("Read = %+v, want a version (devel at least) and the Go version", in)
	}
}
