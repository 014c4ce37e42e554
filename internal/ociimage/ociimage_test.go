package ociimage

import (
	"bytes"
	"strings"
	"testing"
)

func testImage() Image {
	return Image{
		Name: "example/nir:dev", OS: "linux", Architecture: "amd64",
		Config: Config{User: "65532:65532", Entrypoint: []string{"/usr/local/bin/tool"}},
		Files: []File{
			{Path: "/usr/local/bin/tool", Mode: 0o755, Data: []byte("\x7fELF…")},
			{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0::/:/sbin/nologin\n")},
			{Path: "/var/lib/data", Dir: true, Mode: 0o700, UID: 65532, GID: 65532},
		},
	}
}

func TestWrite_ReadBack(t *testing.T) {
	var a, b bytes.Buffer
	wa, err := Write(&a, testImage())
	if err != nil {
		t.Fatal(err)
	}
	wb, err := Write(&b, testImage())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) || wa != wb {
		t.Fatalf("two writes of one image differ: %s vs %s", wa.Digest, wb.Digest)
	}
	arc, err := Read(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if arc.Index.Manifests[0].Digest != wa.Digest || arc.Index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "dev" {
		t.Errorf("index = %+v, want manifest %s tagged dev", arc.Index.Manifests[0], wa.Digest)
	}
	if arc.Config.Config.User != "65532:65532" || arc.Config.OS != "linux" || arc.Config.Architecture != "amd64" {
		t.Errorf("config = %+v", arc.Config)
	}
	var names []string
	for _, f := range arc.Files {
		names = append(names, f.Header.Name)
		if !f.Header.ModTime.Equal(Epoch) {
			t.Errorf("%s: mtime %v, want %v", f.Header.Name, f.Header.ModTime, Epoch)
		}
	}
	want := "etc/ etc/passwd usr/ usr/local/ usr/local/bin/ usr/local/bin/tool var/ var/lib/ var/lib/data/"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("layer entries\n%s\nwant\n%s", got, want)
	}
	if d := arc.File("/var/lib/data"); d == nil || d.Header.Uid != 65532 || d.Header.Mode != 0o700 {
		t.Errorf("/var/lib/data = %+v", d)
	}
	if f := arc.File("/usr/local/bin/tool"); f == nil || string(f.Data) != "\x7fELF…" || f.Header.Uid != 0 {
		t.Errorf("/usr/local/bin/tool = %+v", f)
	}
}

// TestRead_Damaged: a changed byte anywhere in a blob fails the digest check.
func TestRead_Damaged(t *testing.T) {
	var buf bytes.Buffer
	w, err := Write(&buf, testImage())
	if err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// The config blob is JSON holding the user; change it in place.
	i := bytes.Index(b, []byte(`"User":"65532:65532"`))
	if i < 0 {
		t.Fatal("config not found in the archive")
	}
	b[i+9] = '0'
	if _, err := Read(bytes.NewReader(b)); err == nil || !strings.Contains(err.Error(), hexOf(w.Config)) {
		t.Fatalf("Read of a changed config = %v, want a digest error naming %s", err, w.Config)
	}
}

func TestWrite_Invalid(t *testing.T) {
	for name, files := range map[string][]File{
		"relative":     {{Path: "etc/passwd"}},
		"duplicate":    {{Path: "/a"}, {Path: "/a/"}},
		"fileAsParent": {{Path: "/a", Data: []byte("x")}, {Path: "/a/b"}},
		"dirWithData":  {{Path: "/a", Dir: true, Data: []byte("x")}},
	} {
		t.Run(name, func(t *testing.T) {
			img := testImage()
			img.Files = files
			if _, err := Write(&bytes.Buffer{}, img); err == nil {
				t.Fatal("Write accepted it")
			}
		})
	}
}
