package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

func init() {
	register("checkpoint", "operator: print the stream's last checkpoint, to hand to an outside party (nirctl verify --checkpoint checks the stream against it later)", runCheckpoint)
}

const checkpointUsage = `usage: nirctl checkpoint (--nats-context FILE | --nats URL | --store DATA) [--out FILE]

Prints the last checkpoint nird made of the event stream as JSON: the sequence it covers, the
running SHA-256 digest of every message through it, when it was made, the signer's ed25519
public key and signature, and the checkpoint's encoding (base64), which is what
"nirctl verify --checkpoint FILE" reads. Hand the file to an outside party (an auditor, the
archive): if any message at or before its sequence is later changed, removed or inserted,
verify reports it. The file holds no personal data.
`

// checkpointFile is a checkpoint as nirctl writes and reads it. Encoding is authoritative;
// the other fields are for people, and must agree with it.
type checkpointFile struct {
	StreamSeq uint64 `json:"stream_seq"`
	Digest    string `json:"digest"`
	CreatedAt string `json:"created_at"`
	StreamID  string `json:"stream_id"`
	PublicKey string `json:"public_key,omitempty"`
	Signature string `json:"signature,omitempty"`
	Encoding  string `json:"encoding"`
}

func toCheckpointFile(cp *nirv1.Checkpoint) (checkpointFile, error) {
	enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(cp)
	if err != nil {
		return checkpointFile{}, err
	}
	return checkpointFile{StreamSeq: cp.GetStreamSeq(), Digest: hex.EncodeToString(cp.GetDigest()),
		CreatedAt: cp.GetCreatedAt().AsTime().UTC().Format(time.RFC3339Nano), StreamID: cp.GetStreamId(),
		PublicKey: hex.EncodeToString(cp.GetPublicKey()), Signature: hex.EncodeToString(cp.GetSignature()),
		Encoding: base64.StdEncoding.EncodeToString(enc)}, nil
}

// readCheckpointFile reads a file written by nirctl checkpoint, given with flag.
func readCheckpointFile(flag, path string) (*nirv1.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s %s: not a checkpoint file: %v", flag, path, err)
	}
	enc, err := base64.StdEncoding.DecodeString(f.Encoding)
	if err != nil || f.Encoding == "" {
		return nil, fmt.Errorf("%s %s: field encoding is not base64", flag, path)
	}
	cp := new(nirv1.Checkpoint)
	if err := proto.Unmarshal(enc, cp); err != nil {
		return nil, fmt.Errorf("%s %s: field encoding is not a checkpoint: %v", flag, path, err)
	}
	if cp.GetStreamSeq() != f.StreamSeq || hex.EncodeToString(cp.GetDigest()) != strings.ToLower(f.Digest) {
		return nil, fmt.Errorf("%s %s: fields stream_seq and digest do not agree with field encoding: the file was edited", flag, path)
	}
	return cp, nil
}

// parsePublicKey reads an ed25519 public key in hex (as nird logs it and nirctl checkpoint
// prints it).
func parsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("--public-key: %q is not an ed25519 public key (%d bytes in hex)", s, ed25519.PublicKeySize)
	}
	return b, nil
}

func runCheckpoint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("checkpoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := addNATSSource(fs, "data directory of a stopped nird, instead of --nats")
	out := fs.String("out", "", "write the checkpoint to `FILE` instead of standard output")
	fs.Usage = func() { fmt.Fprint(stderr, checkpointUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || src.given() == (*src.store != "") {
		return badArgs(fs, err)
	}
	url, natsOpts, err := src.options()
	if err != nil {
		return err
	}
	jsDir := ""
	if *src.store != "" {
		d, unlock, err := offlineStore(*src.store)
		if err != nil {
			return err
		}
		defer unlock()
		jsDir = d
	}
	store, err := eventstore.Open(ctx, eventstore.Config{URL: url, Dir: jsDir, ReadOnly: true, NATSOptions: natsOpts})
	if err != nil {
		return err
	}
	defer store.Close()
	cps, err := store.Checkpoints(ctx)
	if err != nil {
		return err
	}
	if len(cps) == 0 {
		return errors.New("the stream has no checkpoint yet: nird makes one after --checkpoint-every events or --checkpoint-interval")
	}
	last := cps[len(cps)-1]
	if last.Checkpoint == nil {
		return fmt.Errorf("the last checkpoint (sequence %d of %s) does not decode: run nirctl verify", last.Seq, eventstore.CheckpointStreamName)
	}
	f, err := toCheckpointFile(last.Checkpoint)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out != "" {
		return os.WriteFile(*out, b, 0o644)
	}
	_, err = stdout.Write(b)
	return err
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
