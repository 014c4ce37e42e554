package adversarial

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	bolt "go.etcd.io/bbolt"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// TestDamage_ModelFileEventForged: a local process rewrites an event in nird's read-model
// file while nird is stopped, and makes the entry's checksum good again, so that nird's
// start-up checks pass. The models are not folded again until a rebuild, and a rebuild takes
// the live file's events: it must find the forgery against the stream's signed checkpoint,
// read the whole stream instead, and serve what the stream says.
func TestDamage_ModelFileEventForged(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data, "--checkpoint-every", "1", "--checkpoint-interval", "1s")
	registerPersons(t, nd, 0, 6)
	want := settledAnswers(t, nd)
	// protojson writes the 64-bit sequence as a string.
	last, err := strconv.ParseFloat(fmt.Sprint(status(t, nd)["lastSequence"]), 64)
	if err != nil || last == 0 {
		t.Fatalf("the status gives no last sequence: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); metric(t, nd, "nir_checkpoint_stream_seq") < last; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint through seq %v within 30 s", last)
		}
	}
	nd.Stop(t, syscall.SIGTERM)

	// Every event of kommune 0301 but the last moved to 4601, each entry's checksum made good.
	if n := forgeEvents(t, filepath.Join(data, "projections", "models.db"), []byte(kommune), []byte("4601")); n == 0 {
		t.Fatal("no stored event names the kommune")
	}
	nd = startNird(t, data, "--checkpoint-every", "1", "--checkpoint-interval", "1s")
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Fatal("the answers changed before any fold")
	}
	admin := nirv1connect.NewAdminServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor("operator")))
	stream, err := admin.Rebuild(context.Background(), connect.NewRequest(&nirv1.RebuildRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var fromFile uint64
	for stream.Receive() {
		fromFile = max(fromFile, stream.Msg().GetProgress().GetFromFileThrough())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if fromFile != 0 {
		t.Errorf("the rebuild took the forged file's events through seq %d", fromFile)
	}
	if logs := strings.Join(nd.Logs(), "\n"); !strings.Contains(logs, "the live file's events are not used") {
		t.Error("nird did not log that it read the whole stream instead of the forged file")
	}
	if got := settledAnswers(t, nd); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the rebuild nird serves the forged events (%d persons listed in %s, want %d)", personCount(got), kommune, personCount(want))
	}
}

// forgeEvents replaces old by new (of the same length) in every stored event but the last of the read-model file
// at path that holds it, and makes each entry's checksum good again (a CRC-32C of its sequence and data,
// as projections writes it); it returns how many events it changed.
func forgeEvents(t *testing.T, path string, old, new []byte) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	table := crc32.MakeTable(crc32.Castagnoli)
	changed := 0
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		if b == nil {
			return errors.New("no events bucket")
		}
		// The last event is left alone: nird compares it with the stream at start-up and
		// would rebuild from the stream at once.
		var lastSeq uint64
		if err := b.ForEach(func(_, v []byte) error {
			for off := 0; off < len(v); {
				seq, n := binary.Uvarint(v[off:])
				l, m := binary.Uvarint(v[off+n:])
				lastSeq, off = max(lastSeq, seq), off+n+m+int(l)
			}
			return nil
		}); err != nil {
			return err
		}
		blocks := map[string][]byte{}
		if err := b.ForEach(func(k, v []byte) error {
			block := bytes.Clone(v)
			for off := 0; off < len(block); {
				seq, n := binary.Uvarint(block[off:])
				l, m := binary.Uvarint(block[off+n:])
				start := off + n + m
				data := block[start : start+int(l)-4]
				if bytes.Contains(data, old) && seq < lastSeq {
					copy(data, bytes.ReplaceAll(data, old, new))
					var sk [8]byte
					binary.BigEndian.PutUint64(sk[:], seq)
					binary.BigEndian.PutUint32(block[start+int(l)-4:], crc32.Update(crc32.Update(0, table, sk[:]), table, data))
					blocks[string(k)] = block
					changed++
				}
				off = start + int(l)
			}
			return nil
		}); err != nil {
			return err
		}
		for k, v := range blocks {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

// TestDamage_ModelFileValueAtStart: a byte flipped inside one stored value of models.db
// (bucket persons) while nird is stopped leaves the file's structure whole. nird checks
// every value's checksum when it opens the file (projections.Options.VerifyAtStart), so the
// damage is found at start, before any query reads the value: the file is kept aside and
// the models rebuilt from the stream. Found by mutation testing on 2026-12-07: nird could
// open the file without verifying its values (found only once a query read the damaged
// one) without a test failing.
func TestDamage_ModelFileValueAtStart(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	registerPersons(t, nd, 0, 5)
	want := settledAnswers(t, nd)
	nd.Stop(t, syscall.SIGTERM)
	models := filepath.Join(data, "projections", "models.db")
	flipInValue(t, models, "persons")

	nd = startNird(t, data)
	if kept, _ := filepath.Glob(models + ".damaged-*"); len(kept) != 1 {
		t.Errorf("nird started over a damaged value without finding it (kept aside: %v)", kept)
	}
	if !slices.ContainsFunc(nd.Logs(), func(l string) bool { return strings.Contains(l, "read-model file damaged") }) {
		t.Error("nird did not log the damage found at start")
	}
	awaitAnswers(t, nd, want)
}

// flipInValue flips a byte in the middle of a value of bucket in the bbolt file at path: the
// first value of 8 bytes or more found once in the file.
func flipInValue(t *testing.T, path, bucket string) {
	t.Helper()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	at := -1
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return fmt.Errorf("no bucket %s", bucket)
		}
		return b.ForEach(func(_, v []byte) error {
			if at < 0 && len(v) >= 8 && bytes.Count(file, v) == 1 {
				at = bytes.Index(file, v) + len(v)/2
			}
			return nil
		})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil || at < 0 {
		t.Fatalf("no value of bucket %s found once in the file (%v)", bucket, err)
	}
	file[at] ^= 0x01
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
}
