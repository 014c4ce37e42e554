package projections

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// mappedRSS is the resident size, in kB, of this process's mappings of path (from
// /proc/self/smaps).
func mappedRSS(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) == 6 && fields[5] == path
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			total += n
		}
	}
	return total
}

// A rebuild drops the model file's mapped pages as it goes (issue 17: its resident set
// stayed as large as the file): the pages leave the process's resident set, and every
// value reads back the same afterwards.
func TestDropMapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	val := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 4000) }
	if err := b.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := range 4000 { // about 16 MB
			if err := bk.Put([]byte(strconv.Itoa(i)), val(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		if err := b.View(func(tx *bolt.Tx) error {
			bk := tx.Bucket([]byte("b"))
			for i := range 4000 {
				if !bytes.Equal(bk.Get([]byte(strconv.Itoa(i))), val(i)) {
					t.Fatalf("value %d differs after the pages were dropped", i)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	check() // every page read through the mapping
	before := mappedRSS(t, path)
	if before < 8000 {
		t.Fatalf("the file's mapping holds %d kB after reading 16 MB through it; the test measures nothing", before)
	}
	dropMapped(b, 64<<20) // a file of no more than 64 MiB keeps its pages
	if kept := mappedRSS(t, path); kept < before*3/4 {
		t.Fatalf("dropMapped above 64 MiB dropped the pages of a 16 MB file: %d kB of %d left", kept, before)
	}
	dropMapped(b, 1<<20)
	after := mappedRSS(t, path)
	if after > before/4 {
		t.Fatalf("after dropMapped the mapping still holds %d kB (before: %d kB)", after, before)
	}
	check()
	t.Logf("mapped RSS %d kB → %d kB", before, after)
}
