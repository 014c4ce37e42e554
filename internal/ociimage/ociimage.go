// Package ociimage writes a container image from files, without a container daemon and
// without a base image: one layer holding exactly the files given, a config, a manifest, in a
// tar archive that is at once an OCI image layout (oci-layout, index.json, blobs/sha256/…)
// and a `docker save` archive (manifest.json), so that `docker load`, `podman load`,
// `crane push`, `skopeo copy oci-archive:` and containerd all read it.
//
// The output is reproducible: the same files and config give the same bytes, digests
// included (fixed modification times, sorted entries, uid/gid from the File, gzip without a
// name or time).
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// Media types of the OCI image specification.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Epoch is the modification time of every file in the layer and the image's creation time:
// a fixed instant keeps the image reproducible.
var Epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one file or directory of the layer.
type File struct {
	// Path is absolute, e.g. "/usr/local/bin/nird"; a directory's ends without a slash.
	Path string
	// Mode holds the permission bits (and sticky bit), e.g. 0o755.
	Mode int64
	// UID and GID own the file.
	UID, GID int
	// Dir makes it a directory (Data must be empty).
	Dir bool
	// Data is the content of a regular file.
	Data []byte
}

// Config is what the image runs: the parts of the OCI image config's "config" object.
type Config struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

// Image is everything the archive holds.
type Image struct {
	// Name is the reference the archive loads as, e.g. "nir:dev".
	Name string
	// OS and Architecture of the binaries, e.g. "linux", "amd64".
	OS, Architecture string
	Config           Config
	Files            []File
}

// ImageConfig is the OCI image config blob.
type ImageConfig struct {
	Created      time.Time `json:"created"`
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Config       Config    `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []History `json:"history,omitempty"`
}

// History is one entry of the config's history.
type History struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// Descriptor points at a blob.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is a descriptor's platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Manifest is the OCI image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Index is the OCI image index (index.json of the layout).
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// DockerManifest is one entry of `docker save`'s manifest.json.
type DockerManifest struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// Written describes a written archive.
type Written struct {
	// Digest is the manifest's digest ("sha256:…"): the image's identity in a registry.
	Digest string
	// Config and Layer are the digests of the config and of the compressed layer; DiffID
	// the digest of the uncompressed layer.
	Config, Layer, DiffID string
}

// Write writes img as a tar archive to w.
func Write(w io.Writer, img Image) (Written, error) {
	if img.Name == "" || img.OS == "" || img.Architecture == "" {
		return Written{}, errors.New("ociimage: Name, OS and Architecture are required")
	}
	layer, diffID, err := writeLayer(img.Files)
	if err != nil {
		return Written{}, err
	}
	layerDigest := digest(layer)

	cfg := ImageConfig{Created: Epoch, Architecture: img.Architecture, OS: img.OS, Config: img.Config}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{diffID}
	cfg.History = []History{{Created: Epoch, CreatedBy: "ociimage: " + strings.Join(paths(img.Files), " ")}}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return Written{}, err
	}
	man := Manifest{
		SchemaVersion: 2,
		MediaType:     MediaTypeManifest,
		Config:        Descriptor{MediaType: MediaTypeConfig, Digest: digest(cfgJSON), Size: int64(len(cfgJSON))},
		Layers:        []Descriptor{{MediaType: MediaTypeLayer, Digest: layerDigest, Size: int64(len(layer))}},
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return Written{}, err
	}
	index := Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{{
		MediaType: MediaTypeManifest, Digest: digest(manJSON), Size: int64(len(manJSON)),
		Annotations: map[string]string{
			"org.opencontainers.image.ref.name": tagOf(img.Name),
			"io.containerd.image.name":          img.Name,
		},
		Platform: &Platform{Architecture: img.Architecture, OS: img.OS},
	}}}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return Written{}, err
	}
	docker, err := json.Marshal([]DockerManifest{{
		Config:   blobPath(digest(cfgJSON)),
		RepoTags: []string{img.Name},
		Layers:   []string{blobPath(layerDigest)},
	}})
	if err != nil {
		return Written{}, err
	}

	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"blobs/sha256/" + hexOf(layerDigest), layer},
		{"blobs/sha256/" + hexOf(digest(cfgJSON)), cfgJSON},
		{"blobs/sha256/" + hexOf(digest(manJSON)), manJSON},
		{"index.json", indexJSON},
		{"manifest.json", docker},
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: Epoch, Format: tar.FormatPAX}); err != nil {
			return Written{}, err
		}
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: Epoch, Format: tar.FormatPAX}); err != nil {
			return Written{}, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return Written{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Written{}, err
	}
	return Written{Digest: digest(manJSON), Config: digest(cfgJSON), Layer: layerDigest, DiffID: diffID}, nil
}

// writeLayer returns the gzipped layer tar and the digest of the uncompressed tar (its
// diff id). Parent directories are added as root-owned 0755 directories unless given.
func writeLayer(files []File) (gz []byte, diffID string, err error) {
	byPath := map[string]File{}
	for _, f := range files {
		p := path.Clean(f.Path)
		if !path.IsAbs(p) || p == "/" {
			return nil, "", fmt.Errorf("ociimage: path %q: must be absolute and not /", f.Path)
		}
		if _, dup := byPath[p]; dup {
			return nil, "", fmt.Errorf("ociimage: path %q given twice", p)
		}
		if f.Dir && len(f.Data) > 0 {
			return nil, "", fmt.Errorf("ociimage: directory %q has data", p)
		}
		f.Path = p
		byPath[p] = f
	}
	for p := range byPath {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = File{Path: d, Dir: true, Mode: 0o755}
			} else if !byPath[d].Dir {
				return nil, "", fmt.Errorf("ociimage: %q is a file and a parent directory", d)
			}
		}
	}
	names := make([]string, 0, len(byPath))
	for p := range byPath {
		names = append(names, p)
	}
	sort.Strings(names)

	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, p := range names {
		f := byPath[p]
		h := &tar.Header{
			Name: strings.TrimPrefix(p, "/"), Mode: f.Mode, Uid: f.UID, Gid: f.GID,
			ModTime: Epoch, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(f.Data)),
		}
		if f.Dir {
			h.Typeflag, h.Name, h.Size = tar.TypeDir, h.Name+"/", 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, "", err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return out.Bytes(), digest(raw.Bytes()), nil
}

func paths(files []File) []string {
	var out []string
	for _, f := range files {
		if !f.Dir {
			out = append(out, f.Path)
		}
	}
	sort.Strings(out)
	return out
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func hexOf(d string) string { return strings.TrimPrefix(d, "sha256:") }

func blobPath(d string) string { return "blobs/sha256/" + hexOf(d) }

// tagOf is the tag of a reference ("nir:dev" → "dev"), "latest" without one.
func tagOf(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}
