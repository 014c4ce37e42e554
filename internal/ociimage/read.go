package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Archive is an image archive as Read found it, every digest checked.
type Archive struct {
	Index    Index
	Manifest Manifest
	Config   ImageConfig
	Docker   []DockerManifest
	// Files are the layer's entries in archive order, with the content of regular files.
	Files []LayerFile
}

// LayerFile is one entry of the layer.
type LayerFile struct {
	Header *tar.Header
	Data   []byte
}

// File returns the layer entry at the absolute path p, or nil.
func (a *Archive) File(p string) *LayerFile {
	name := strings.TrimPrefix(p, "/")
	for i := range a.Files {
		if strings.TrimSuffix(a.Files[i].Header.Name, "/") == name {
			return &a.Files[i]
		}
	}
	return nil
}

// Read reads an archive written by Write (or any single-image OCI layout archive with one
// gzipped layer) and checks it: the layout marker, that index.json names one manifest,
// every blob's digest and size, the config's diff id against the uncompressed layer, and
// that docker's manifest.json points at the same config and layer.
func Read(r io.Reader) (*Archive, error) {
	entries := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("ociimage: read archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("ociimage: read %s: %w", h.Name, err)
		}
		entries[h.Name] = b
	}
	var a Archive
	if string(entries["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		return nil, fmt.Errorf("ociimage: oci-layout is %q", entries["oci-layout"])
	}
	blob := func(d Descriptor, mediaType string) ([]byte, error) {
		if d.MediaType != mediaType {
			return nil, fmt.Errorf("ociimage: %s has media type %q, want %q", d.Digest, d.MediaType, mediaType)
		}
		b, ok := entries[blobPath(d.Digest)]
		if !ok {
			return nil, fmt.Errorf("ociimage: blob %s missing", d.Digest)
		}
		if digest(b) != d.Digest || int64(len(b)) != d.Size {
			return nil, fmt.Errorf("ociimage: blob %s: digest %s, size %d (descriptor says %d)", d.Digest, digest(b), len(b), d.Size)
		}
		return b, nil
	}
	if err := strictJSON(entries["index.json"], &a.Index); err != nil {
		return nil, fmt.Errorf("ociimage: index.json: %w", err)
	}
	if a.Index.SchemaVersion != 2 || a.Index.MediaType != MediaTypeIndex || len(a.Index.Manifests) != 1 {
		return nil, fmt.Errorf("ociimage: index.json: schema %d, media type %q, %d manifests; want 2, %s, 1", a.Index.SchemaVersion, a.Index.MediaType, len(a.Index.Manifests), MediaTypeIndex)
	}
	manJSON, err := blob(a.Index.Manifests[0], MediaTypeManifest)
	if err != nil {
		return nil, err
	}
	if err := strictJSON(manJSON, &a.Manifest); err != nil {
		return nil, fmt.Errorf("ociimage: manifest: %w", err)
	}
	if a.Manifest.SchemaVersion != 2 || len(a.Manifest.Layers) != 1 {
		return nil, fmt.Errorf("ociimage: manifest: schema %d, %d layers; want 2, 1", a.Manifest.SchemaVersion, len(a.Manifest.Layers))
	}
	cfgJSON, err := blob(a.Manifest.Config, MediaTypeConfig)
	if err != nil {
		return nil, err
	}
	if err := strictJSON(cfgJSON, &a.Config); err != nil {
		return nil, fmt.Errorf("ociimage: config: %w", err)
	}
	layer, err := blob(a.Manifest.Layers[0], MediaTypeLayer)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return nil, fmt.Errorf("ociimage: layer: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("ociimage: layer: %w", err)
	}
	if len(a.Config.RootFS.DiffIDs) != 1 || a.Config.RootFS.DiffIDs[0] != digest(raw) {
		return nil, fmt.Errorf("ociimage: config diff ids %v, uncompressed layer is %s", a.Config.RootFS.DiffIDs, digest(raw))
	}
	lr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("ociimage: layer: %w", err)
		}
		b, err := io.ReadAll(lr)
		if err != nil {
			return nil, fmt.Errorf("ociimage: layer %s: %w", h.Name, err)
		}
		a.Files = append(a.Files, LayerFile{Header: h, Data: b})
	}
	if err := strictJSON(entries["manifest.json"], &a.Docker); err != nil {
		return nil, fmt.Errorf("ociimage: manifest.json: %w", err)
	}
	if len(a.Docker) != 1 || a.Docker[0].Config != blobPath(a.Manifest.Config.Digest) ||
		len(a.Docker[0].Layers) != 1 || a.Docker[0].Layers[0] != blobPath(a.Manifest.Layers[0].Digest) {
		return nil, fmt.Errorf("ociimage: manifest.json %+v does not match the OCI manifest", a.Docker)
	}
	return &a, nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
