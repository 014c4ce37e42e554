package projections

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"
)

// A read-model file is checked before bbolt opens it, because bbolt trusts its pages:
// opening a file whose pages lie beyond its end (a truncated file) or whose elements point
// outside their page faults inside bbolt, and some of that runs in goroutines bbolt starts
// itself (the freelist scan of Open, Tx.Check), where no recover can catch it: the process
// dies, at every start. checkFile walks the file's B+trees itself, bounds-checked on a
// read-only mapping, with bbolt's page layout (go.etcd.io/bbolt/internal/common: page header
// id u64, flags u16, count u16, overflow u32; branch elements pos u32, ksize u32, pgid u64;
// leaf elements flags u32, pos u32, ksize u32, vsize u32; a bucket value is root u64,
// sequence u64, then an inline page when root is 0; meta magic, version, page size, flags,
// root bucket, freelist, high water mark, txid, FNV-64a checksum). Once it passed, every
// page bbolt reaches lies within the file and every element within its page.

const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16
	elemSize         = 16 // branch and leaf elements alike
	bucketHeaderSize = 16
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	bucketLeafFlag   = 0x01
	pgidNoFreelist   = ^uint64(0)
	maxTreeDepth     = 64
)

// FileCheck says what checkFile looked at.
type FileCheck struct {
	// Size is the file's size in bytes; Pages the pages below its high water mark.
	Size  int64
	Pages uint64
	// Values is how many values had their checksum verified (0 when values were not
	// checked).
	Values uint64
	// MetaDamaged says that one of bbolt's two meta pages is damaged. The file is usable:
	// bbolt opens the other, which is the previous transaction's when the newest was
	// damaged (the models of an earlier checkpoint, as after a crash before the last
	// commit), and the next commit writes the damaged page again.
	MetaDamaged bool
}

// CheckFile is checkFile, for tools that measure it (nirbench rebuild).
func CheckFile(path string, values bool) (FileCheck, error) { return checkFile(path, values) }

// checkFile checks the read-model file at path before bbolt opens it: a meta page that is
// valid (bbolt's choice of the two), a high water mark within the file, every page of every
// bucket's tree within the file and visited once, every element within its page and keys in
// order, and the read models' buckets present. With values, it also verifies every value's
// checksum. Any damage is an error wrapping ErrCorrupt; it never faults or panics.
func checkFile(path string, values bool) (fc FileCheck, err error) {
	f, err := os.Open(path)
	if err != nil {
		return fc, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fc, err
	}
	fc.Size = fi.Size()
	data, unmap, err := mapFile(f, fi.Size())
	if err != nil {
		return fc, err
	}
	defer unmap()
	// The mapping is the file as it is; if it shrinks meanwhile, a read faults.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: reading the file failed (%v)", ErrCorrupt, path, r)
		}
	}()
	c := &fileChecker{data: data, values: values}
	if err := c.run(); err != nil {
		return fc, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	fc.Pages, fc.Values, fc.MetaDamaged = c.hwm, c.nvalues, c.metaDamaged
	return fc, nil
}

type fileChecker struct {
	data    []byte
	psize   uint64
	hwm     uint64 // pages below the high water mark
	seen    []uint64
	values  bool
	nvalues uint64
	// metaDamaged: one of the two meta pages is not valid.
	metaDamaged bool
	// bucketNames are the top-level buckets found.
	bucketNames map[string]bool
}

var ne = binary.NativeEndian

// boltMeta is a meta page as checkFile needs it.
type boltMeta struct {
	pageSize            uint32
	root, freelist, hwm uint64
	txid                uint64
	valid               bool
}

// readBoltMeta reads the meta page at the start of b and validates it as bbolt does.
func readBoltMeta(b []byte) boltMeta {
	var m boltMeta
	if len(b) < pageHeaderSize+64 {
		return m
	}
	mb := b[pageHeaderSize : pageHeaderSize+64]
	m.pageSize = ne.Uint32(mb[8:])
	m.root = ne.Uint64(mb[16:])
	m.freelist = ne.Uint64(mb[32:])
	m.hwm = ne.Uint64(mb[40:])
	m.txid = ne.Uint64(mb[48:])
	h := fnv.New64a()
	h.Write(mb[:56])
	m.valid = ne.Uint32(mb[0:]) == boltMagic && ne.Uint32(mb[4:]) == boltVersion && ne.Uint64(mb[56:]) == h.Sum64()
	return m
}

func (c *fileChecker) run() error {
	if len(c.data) < pageHeaderSize+64 {
		return fmt.Errorf("%d bytes: too short for a meta page", len(c.data))
	}
	m0 := readBoltMeta(c.data)
	off := uint64(os.Getpagesize())
	if m0.valid {
		off = uint64(m0.pageSize)
	}
	var m1 boltMeta
	if off > 0 && off < uint64(len(c.data)) {
		m1 = readBoltMeta(c.data[off:])
	}
	// As bbolt chooses: the one with the higher txid if it is valid, else the other.
	a, b := m0, m1
	if m1.txid > m0.txid {
		a, b = m1, m0
	}
	m := a
	if !a.valid {
		m = b
	}
	if !m.valid {
		return errors.New("no valid meta page (not a bbolt file, or both meta pages damaged)")
	}
	c.metaDamaged = !a.valid || !b.valid
	ps := uint64(m.pageSize)
	if ps < 512 || ps > 1<<16 || ps&(ps-1) != 0 {
		return fmt.Errorf("page size %d", ps)
	}
	c.psize = ps
	size := uint64(len(c.data))
	switch {
	case m.hwm < 2 || m.hwm > size/ps:
		return fmt.Errorf("the meta page says %d pages of %d bytes, the file holds %d bytes (truncated?)", m.hwm, ps, size)
	case m.root < 2 || m.root >= m.hwm:
		return fmt.Errorf("root page %d outside the file's %d pages", m.root, m.hwm)
	case m.freelist != pgidNoFreelist && m.freelist >= m.hwm:
		return fmt.Errorf("freelist page %d outside the file's %d pages", m.freelist, m.hwm)
	}
	c.hwm = m.hwm
	c.seen = make([]uint64, (m.hwm+63)/64)
	c.bucketNames = map[string]bool{}
	if err := c.tree(m.root, "", 0); err != nil {
		return err
	}
	for _, name := range allBuckets {
		if !c.bucketNames[string(name)] {
			return fmt.Errorf("bucket %s is missing", name)
		}
	}
	return nil
}

// page returns the bytes of page id with its overflow pages, after checking its header.
func (c *fileChecker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("page %d outside the file's %d pages", id, c.hwm)
	}
	start := id * c.psize
	hdr := c.data[start : start+pageHeaderSize]
	if got := ne.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if overflow >= c.hwm-id {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the file's %d pages", id, overflow, c.hwm)
	}
	for i := id; i <= id+overflow; i++ {
		if c.seen[i/64]&(1<<(i%64)) != 0 {
			return nil, fmt.Errorf("page %d is reached twice", i)
		}
		c.seen[i/64] |= 1 << (i % 64)
	}
	return c.data[start : start+(1+overflow)*c.psize], nil
}

// tree checks the B+tree rooted at page id of the bucket named name ("" for the root
// bucket, whose entries are the read models' buckets).
func (c *fileChecker) tree(id uint64, name string, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("bucket %q: tree deeper than %d", name, maxTreeDepth)
	}
	p, err := c.page(id)
	if err != nil {
		return fmt.Errorf("bucket %q: %w", name, err)
	}
	return c.nodes(p, name, depth)
}

// nodes checks one page (p holds its header and elements; an inline page is a value's
// tail) and what it leads to.
func (c *fileChecker) nodes(p []byte, name string, depth int) error {
	if len(p) < pageHeaderSize {
		return fmt.Errorf("bucket %q: page shorter than its header", name)
	}
	flags := ne.Uint16(p[8:])
	count := int(ne.Uint16(p[10:]))
	if pageHeaderSize+count*elemSize > len(p) {
		return fmt.Errorf("bucket %q: page %d: %d elements do not fit", name, ne.Uint64(p), count)
	}
	span := func(e, pos, n uint64) ([]byte, error) {
		start := e + pos
		if pos == 0 || start < e || start+n < start || start+n > uint64(len(p)) {
			return nil, fmt.Errorf("bucket %q: page %d: an element points outside its page", name, ne.Uint64(p))
		}
		return p[start : start+n], nil
	}
	var prev []byte
	for i := range count {
		e := uint64(pageHeaderSize + i*elemSize)
		el := p[e : e+elemSize]
		var key []byte
		var err error
		switch flags {
		case branchPageFlag:
			if key, err = span(e, uint64(ne.Uint32(el)), uint64(ne.Uint32(el[4:]))); err != nil {
				return err
			}
			if err := c.tree(ne.Uint64(el[8:]), name, depth+1); err != nil {
				return err
			}
		case leafPageFlag:
			lflags, pos, ksize, vsize := ne.Uint32(el), uint64(ne.Uint32(el[4:])), uint64(ne.Uint32(el[8:])), uint64(ne.Uint32(el[12:]))
			kv, err := span(e, pos, ksize+vsize)
			if err != nil {
				return err
			}
			key = kv[:ksize]
			if err := c.leaf(name, key, kv[ksize:], lflags, depth); err != nil {
				return err
			}
		default:
			return fmt.Errorf("bucket %q: page %d has flags %#x, not a branch or leaf page", name, ne.Uint64(p), flags)
		}
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return fmt.Errorf("bucket %q: page %d: keys out of order", name, ne.Uint64(p))
		}
		prev = key
	}
	return nil
}

// leaf checks one key and value of bucket name.
func (c *fileChecker) leaf(name string, key, v []byte, lflags uint32, depth int) error {
	isBucket := lflags&bucketLeafFlag != 0
	if name != "" {
		if isBucket {
			return fmt.Errorf("bucket %q holds a nested bucket", name)
		}
		if !c.values {
			return nil
		}
		if name == string(bucketEvents) {
			return c.block(key, v)
		}
		if _, ok := unseal(key, v); !ok {
			return fmt.Errorf("bucket %s key %x: stored value does not match its checksum", name, key)
		}
		c.nvalues++
		return nil
	}
	// The root bucket holds the read models' buckets and nothing else.
	if !isBucket || !knownBucket(key) {
		return fmt.Errorf("the file holds an entry %q that is not a read-model bucket", key)
	}
	if len(v) < bucketHeaderSize {
		return fmt.Errorf("bucket %s: header too short", key)
	}
	c.bucketNames[string(key)] = true
	if root := ne.Uint64(v); root != 0 {
		return c.tree(root, string(key), depth+1)
	}
	return c.nodes(v[bucketHeaderSize:], string(key), depth+1)
}

func knownBucket(name []byte) bool {
	for _, b := range allBuckets {
		if bytes.Equal(b, name) {
			return true
		}
	}
	return false
}

// block checks every entry of a block of the events bucket (appendEntry).
func (c *fileChecker) block(key, b []byte) error {
	var k [8]byte
	for len(b) > 0 {
		seq, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("bucket events key %x: a malformed entry", key)
		}
		l, m := binary.Uvarint(b[n:])
		if m <= 0 || uint64(len(b)-n-m) < l {
			return fmt.Errorf("bucket events key %x: a malformed entry", key)
		}
		binary.BigEndian.PutUint64(k[:], seq)
		if _, ok := unseal(k[:], b[n+m:n+m+int(l)]); !ok {
			return fmt.Errorf("bucket events key %x: the event at seq %d does not match its checksum", key, seq)
		}
		c.nvalues++
		b = b[n+m+int(l):]
	}
	return nil
}
