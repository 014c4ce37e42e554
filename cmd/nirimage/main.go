// Command nirimage builds the register's container image without a container daemon: it
// compiles nird and nirctl as static Linux binaries and writes one archive that is an OCI
// image layout and a `docker save` archive at once (internal/ociimage).
//
//	go run ./cmd/nirimage --out nir-image.tar [--name nir:1.0] [--arch amd64]
//	docker load -i nir-image.tar            # or: podman load -i …
//	crane push nir-image.tar registry.example/nir:1.0
//	skopeo copy oci-archive:nir-image.tar docker://registry.example/nir:1.0
//
// The image has no base and no shell: the two binaries (CGO off, so no libc; the time zone
// database is compiled into nird), /etc/passwd and /etc/group naming the unprivileged user
// nird (65532), and /var/lib/nird, the data directory, owned by that user. It runs as that
// user with a read-only root file system: nird writes only to its data directory (mount a
// volume there). TLS to NATS needs --nats-ca, since there are no system CA certificates.
// The same sources and Go version give the same image digest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/introreg/nir/internal/ociimage"
)

// Image layout facts the manifests in deploy/ rely on.
const (
	UID        = 65532
	DataDir    = "/var/lib/nird"
	NirdPath   = "/usr/local/bin/nird"
	NirctlPath = "/usr/local/bin/nirctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "nirimage:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nirimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "archive to write (required)")
	name := fs.String("name", "nir:dev", "image reference the archive loads as")
	arch := fs.String("arch", runtime.GOARCH, "target architecture (amd64, arm64)")
	version := fs.String("version", "", "org.opencontainers.image.version label")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("--out is required and there are no arguments")
	}
	bins, err := os.MkdirTemp("", "nirimage")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bins)
	w, err := Build(ctx, BuildOptions{Out: *out, Name: *name, Arch: *arch, Version: *version, WorkDir: bins})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s (%s/%s) %s\n", *out, *name, "linux", *arch, w.Digest)
	return nil
}

// BuildOptions say what Build makes.
type BuildOptions struct {
	Out, Name, Arch, Version string
	// WorkDir receives the compiled binaries.
	WorkDir string
}

// Build compiles nird and nirctl for linux/Arch and writes the image archive to Out.
func Build(ctx context.Context, o BuildOptions) (ociimage.Written, error) {
	binaries := map[string]string{NirdPath: "github.com/introreg/nir/cmd/nird", NirctlPath: "github.com/introreg/nir/cmd/nirctl"}
	files := []ociimage.File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnird:x:%d:%d:nird:%s:/sbin/nologin\n", UID, UID, DataDir))},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(fmt.Sprintf("root:x:0:\nnird:x:%d:\n", UID))},
		// Go's resolver reads it to look in /etc/hosts before DNS.
		{Path: "/etc/nsswitch.conf", Mode: 0o644, Data: []byte("hosts: files dns\n")},
		{Path: DataDir, Dir: true, Mode: 0o700, UID: UID, GID: UID},
		{Path: "/tmp", Dir: true, Mode: 0o1777},
	}
	for dst, pkg := range binaries {
		bin := filepath.Join(o.WorkDir, filepath.Base(dst))
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.Arch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return ociimage.Written{}, fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return ociimage.Written{}, err
		}
		// Owned by root and not writable by the user the image runs as.
		files = append(files, ociimage.File{Path: dst, Mode: 0o755, Data: data})
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "nir",
		"org.opencontainers.image.description": "nird, the national introduction register server, and nirctl",
		"org.opencontainers.image.source":      "https://github.com/introreg/nir",
	}
	if o.Version != "" {
		labels["org.opencontainers.image.version"] = o.Version
	}
	img := ociimage.Image{
		Name: o.Name, OS: "linux", Architecture: o.Arch,
		Config: ociimage.Config{
			User:       fmt.Sprintf("%d:%d", UID, UID),
			Entrypoint: []string{NirdPath},
			// Listen on every interface inside the container; the data directory is the
			// volume. Everything else comes from NIR_* variables (deploy/kubernetes).
			Env:          []string{"NIR_DATA=" + DataDir, "NIR_HTTP=0.0.0.0:8080", "NIR_ADMIN=0.0.0.0:8081", "NIR_LOG_FORMAT=json"},
			ExposedPorts: map[string]struct{}{"8080/tcp": {}, "8081/tcp": {}},
			Volumes:      map[string]struct{}{DataDir: {}},
			WorkingDir:   DataDir,
			Labels:       labels,
			StopSignal:   "SIGTERM",
		},
		Files: files,
	}
	f, err := os.Create(o.Out)
	if err != nil {
		return ociimage.Written{}, err
	}
	w, err := ociimage.Write(f, img)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(o.Out)
	}
	return w, err
}
