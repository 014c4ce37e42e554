package main

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/ociimage"
)

// TestBuild builds the image as .ci/run does and checks what a cluster relies on: it runs as
// an unprivileged user with nird as its entrypoint, holds nothing but the two static
// binaries and the files they need (no shell, no package manager), the user cannot change
// the binaries, and the binaries in it run.
//
// Building compiles both binaries again without the race detector, which takes minutes on a
// small machine; .ci/run has just built the image, so it hands the test that image in
// NIR_IMAGE and the test checks it instead of building another.
func TestBuild(t *testing.T) {
	dir := t.TempDir()
	out := os.Getenv("NIR_IMAGE")
	var built *ociimage.Written
	if out == "" {
		if testing.Short() {
			t.Skip("compiles nird and nirctl; run without -short, or set NIR_IMAGE to a built image")
		}
		out = filepath.Join(dir, "nir-image.tar")
		w, err := Build(context.Background(), BuildOptions{Out: out, Name: "nir:test", Arch: runtime.GOARCH, WorkDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		built = &w
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	arc, err := ociimage.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if built != nil && arc.Index.Manifests[0].Digest != built.Digest {
		t.Errorf("index names %s, Build returned %s", arc.Index.Manifests[0].Digest, built.Digest)
	}

	cfg := arc.Config.Config
	if cfg.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (not root)", cfg.User)
	}
	if !slices.Equal(cfg.Entrypoint, []string{NirdPath}) || len(cfg.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want [%s] and none (exec form: no shell)", cfg.Entrypoint, cfg.Cmd, NirdPath)
	}
	if cfg.WorkingDir != DataDir || !slices.Contains(cfg.Env, "NIR_DATA="+DataDir) {
		t.Errorf("working dir %q, env %q: want the data directory %s", cfg.WorkingDir, cfg.Env, DataDir)
	}

	var names []string
	for _, lf := range arc.Files {
		names = append(names, "/"+strings.TrimSuffix(lf.Header.Name, "/"))
	}
	sort.Strings(names)
	want := []string{"/etc", "/etc/group", "/etc/nsswitch.conf", "/etc/passwd", "/tmp", "/usr", "/usr/local", "/usr/local/bin",
		NirctlPath, NirdPath, "/var", "/var/lib", DataDir}
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Errorf("image files\n%q\nwant exactly\n%q", names, want)
	}
	for _, shell := range []string{"/bin/sh", "/bin/bash", "/bin/busybox", "/usr/bin/env"} {
		if arc.File(shell) != nil {
			t.Errorf("the image has %s", shell)
		}
	}
	if d := arc.File(DataDir); d == nil || d.Header.Uid != UID || d.Header.Mode&0o077 != 0 {
		t.Errorf("%s = %+v, want owned by %d, mode 0700", DataDir, d, UID)
	}
	if p := arc.File("/etc/passwd"); p == nil || !strings.Contains(string(p.Data), "nird:x:65532:65532:") {
		t.Errorf("/etc/passwd does not name the user 65532")
	}

	for _, bin := range []string{NirdPath, NirctlPath} {
		lf := arc.File(bin)
		if lf == nil {
			t.Fatalf("%s missing", bin)
		}
		if lf.Header.Uid != 0 || lf.Header.Mode&0o022 != 0 || lf.Header.Mode&0o111 == 0 {
			t.Errorf("%s: uid %d mode %o, want root-owned, executable, writable by root only", bin, lf.Header.Uid, lf.Header.Mode)
		}
		ef, err := elf.NewFile(bytes.NewReader(lf.Data))
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		for _, p := range ef.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has a program interpreter: it is not static", bin)
			}
		}
		if libs, _ := ef.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s needs shared libraries %q", bin, libs)
		}
		path := filepath.Join(dir, "extracted-"+filepath.Base(bin))
		if err := os.WriteFile(path, lf.Data, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The binaries from the image run (here, outside a container).
	out2, err := exec.Command(filepath.Join(dir, "extracted-nird"), "--check-config", "--data", filepath.Join(dir, "data")).CombinedOutput()
	if err != nil || !strings.Contains(string(out2), "configuration ok") {
		t.Errorf("nird --check-config from the image: %v\n%s", err, out2)
	}
	out3, err := exec.Command(filepath.Join(dir, "extracted-nirctl"), "help").CombinedOutput()
	if err != nil || !strings.Contains(string(out3), "append") {
		t.Errorf("nirctl help from the image: %v\n%s", err, out3)
	}
}
