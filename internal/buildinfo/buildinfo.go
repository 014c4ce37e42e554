// Package buildinfo says which build of nir a binary is: for nird --version, nirctl
// --version and nird's nir_build_info metric.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// Version is set at build time:
//
//	go build -ldflags "-X github.com/introreg/nir/internal/buildinfo.Version=v1.2.3" ./cmd/nird
//
// Without it the module version Go recorded is used ("devel" for a build from a checkout).
var Version = ""

// Info is what a binary knows about its build.
type Info struct {
	// Version is the release version, or "devel".
	Version string
	// Revision is the VCS revision, with "+modified" for a dirty tree; empty when Go did not
	// record it (-buildvcs=false).
	Revision string
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// Read returns the binary's build information.
func Read() Info {
	in := Info{Version: Version}
	if bi, ok := debug.ReadBuildInfo(); ok {
		in.GoVersion = bi.GoVersion
		if in.Version == "" {
			in.Version = bi.Main.Version
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && in.Revision != "" {
			in.Revision += "+modified"
		}
	}
	if in.Version == "" || in.Version == "(devel)" {
		in.Version = "devel"
	}
	return in
}

// Text is the one-line version of the binary called name: "nird v1.2.3 (abc123) go1.26.8".
func Text(name string) string {
	in := Read()
	out := fmt.Sprintf("%s %s", name, in.Version)
	if in.Revision != "" {
		out += " (" + in.Revision + ")"
	}
	if in.GoVersion != "" {
		out += " " + in.GoVersion
	}
	return out
}
