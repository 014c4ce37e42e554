package projections

// A rebuild's spill: as the store pass stores each event into the new file, it also appends
// it to the spill file of its person's key range, so that the fold reads each range's events
// with one sequential read instead of looking them up all over the new file. At 3.3 M events
// (a file larger than the rebuild may keep resident) those look-ups faulted most of the
// file's pages in again for every chunk of the fold: 6.2 of 38 CPU-seconds in the look-ups
// and about 3 more in decoding what they returned (issue 17).
//
// The spill holds nothing the new file does not: it is written from the same events, in the
// same order, as the store pass stores them, and read only by foldAll. Each record carries a
// checksum, and the reader checks the records and persons it finds against the counts the
// writer kept in memory; a range whose spill fails either check is folded from the new file,
// as every range is without a spill.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// spillEvents is about how many events a spill range holds: the fold reads a range whole
// into memory (at most 23 MB of the 730 MB spilled at the bench's 3.3 M events). (A variable for the tests.)
var spillEvents = 100000

// spillMinRanges is how many ranges a stream of spillMinRanges*spillMinEvents events or
// more is spread over at least.
const (
	spillMinRanges = 8
	spillMinEvents = 4096
)

// spillMaxRanges bounds the spill's files: a larger stream has larger ranges.
const spillMaxRanges = 512

// spillMaxRead bounds the range the fold reads into memory: a larger one (a person with a
// great many events, or keys that are not digests and crowd into one range) is folded from
// the new file, as without a spill. (A variable for the tests.)
var spillMaxRead int64 = 256 << 20

// errSpillTooLarge is returned by read for a range larger than spillMaxRead.
var errSpillTooLarge = errors.New("projections: spill range too large to read whole")

// The spill is the rebuild's only optional use of disk. It gives way before it takes the
// last of its filesystem, which the new file, the live file and, on a single machine,
// JetStream's store need: the writer stops, and the fold reads every range from the new
// file, when the free space would fall below spillKeepFree bytes or spillKeepFreeShare of
// the filesystem, whichever is more. It looks every spillCheckBytes it writes. (Variables
// for the tests, as is spillDiskFree.)
var (
	spillKeepFree      int64 = 1 << 30
	spillKeepFreeShare       = 0.05
	spillCheckBytes    int64 = 64 << 20
	spillDiskFree            = diskFree
)

// errSpillDiskLow is the spill's error once it stopped to leave its disk the space above.
var errSpillDiskLow = errors.New("projections: spill stopped: its disk is nearly full")

// spillBuffer is each range's write buffer (a variable for the tests).
var spillBuffer = 64 << 10

// spillPrefix names the spill files next to the new file; New removes any left by a
// process that died before it unlinked them.
const spillPrefix = ".spill-"

// spill is the store pass's spill files, one per range of person keys.
type spill struct {
	// bounds are the ranges' upper bounds: range i holds the keys below bounds[i] (and at
	// or above bounds[i-1]); the last range has none.
	bounds []string
	files  []*os.File
	w      []*bufio.Writer
	// What the writer wrote to each range, kept in memory to check the files against.
	size    []int64
	records []int
	persons []map[string]uint32 // each person's number in its range, in order of first event
	err     error               // the first write error: the spill is not used

	head []byte // add's buffers
	sum  [4]byte

	dir       string // where the files are, for spillDiskFree
	unchecked int64  // bytes written since the disk's free space was last looked at

	// The ranges the fold read from their spill files, and those it read from the file.
	spilled, unusable int

	// The writer: a goroutine of its own takes the stored events from queue (the store
	// pass's writer commits meanwhile), and closes written once it has flushed them.
	queue   chan []added
	written chan struct{}
	ended   sync.Once
}

// spillHook, when set (tests), is given the spill once the store pass is over, before the
// fold reads it.
var spillHook func(*spill)

// newSpill makes a spill of about expected events in dir: files created and unlinked at
// once, so that nothing is left behind whatever happens to the process (the name lives for
// an instant; New removes it if the process dies in it).
func newSpill(dir string, expected uint64) (*spill, error) {
	if err := spillRoom(dir, 0); err != nil {
		return nil, err
	}
	n := min(max(1, int((expected+uint64(spillEvents)-1)/uint64(max(spillEvents, 1)))), spillMaxRanges)
	// The fold waits for the first range's read alone: a small stream is spread over at least
	// spillMinRanges (of spillMinEvents or more), so that the fold starts early.
	n = max(n, min(spillMinRanges, int(expected/uint64(max(spillMinEvents, 1)))))
	s := &spill{
		dir:     dir,
		bounds:  spillBounds(n),
		files:   make([]*os.File, n),
		w:       make([]*bufio.Writer, n),
		size:    make([]int64, n),
		records: make([]int, n),
		persons: make([]map[string]uint32, n),
	}
	for i := range n {
		f, err := os.CreateTemp(dir, spillPrefix+"*")
		if err != nil {
			s.close()
			return nil, fmt.Errorf("projections: spill: %w", err)
		}
		os.Remove(f.Name())
		s.files[i] = f
		s.w[i] = bufio.NewWriterSize(f, spillBuffer)
		s.persons[i] = map[string]uint32{}
	}
	s.queue, s.written = make(chan []added, spillQueue), make(chan struct{})
	go func() {
		defer close(s.written)
		for adds := range s.queue {
			for _, a := range adds {
				s.add(a.pk, a.seq, a.raw)
			}
		}
		s.flush()
	}()
	return s, nil
}

// spillRoom returns errSpillDiskLow (with the figures) when writing more bytes to dir would
// leave less free than the spill must leave; nil also when the free space is not known.
func spillRoom(dir string, more int64) error {
	free, size, ok := spillDiskFree(dir)
	if !ok {
		return nil
	}
	keep := max(spillKeepFree, int64(spillKeepFreeShare*float64(size)))
	if free-more < keep {
		return fmt.Errorf("%w: %d bytes free of %d, the spill leaves %d", errSpillDiskLow, free, size, keep)
	}
	return nil
}

// spillQueue is how many batches of stored events the spill's writer may lag behind.
const spillQueue = 4

// send queues stored events for the spill's writer, which reads their encodings after send
// returns: they must not change (a feed's records, or blocks copied from the live file).
func (s *spill) send(adds []added) { s.queue <- adds }

// finish waits for the writer to write every event sent; the files may then be read.
func (s *spill) finish() {
	s.ended.Do(func() { close(s.queue) })
	<-s.written
}

// spillBounds returns the upper bounds of n ranges that share person keys (lower-case hex
// digests, personkey) evenly: the first 16 hex digits of i/n of the key space. Any other key
// falls into the range its bytes order it into.
func spillBounds(n int) []string {
	bounds := make([]string, n-1)
	for i := range bounds {
		q, _ := bits.Div64(uint64(i+1), 0, uint64(n)) // (i+1) * 2^64 / n
		bounds[i] = fmt.Sprintf("%016x", q)
	}
	return bounds
}

// rangeOf returns the range of key pk.
func (s *spill) rangeOf(pk string) int {
	i, _ := slices.BinarySearchFunc(s.bounds, pk, func(b, pk string) int {
		if b <= pk {
			return -1
		}
		return 1
	})
	return i
}

// add (the writer's) appends person pk's event at seq, encoded as data, to its range. A record is the
// sequence, the person's number in the range (in order of their first events), the key when
// the person is new to the range (its length, then its bytes), the encoding's length, the
// encoding, and a CRC-32C of all that.
func (s *spill) add(pk string, seq uint64, data []byte) {
	if s.err != nil {
		return
	}
	i := s.rangeOf(pk)
	pid, known := s.persons[i][pk]
	if !known {
		pid = uint32(len(s.persons[i]))
		s.persons[i][pk] = pid
	}
	h := binary.AppendUvarint(s.head[:0], seq)
	h = binary.AppendUvarint(h, uint64(pid))
	if !known {
		h = binary.AppendUvarint(h, uint64(len(pk)))
		h = append(h, pk...)
	}
	h = binary.AppendUvarint(h, uint64(len(data)))
	s.head = h
	crc := crc32.Update(crc32.Update(0, crcTable, h), crcTable, data)
	w := s.w[i]
	w.Write(h)
	w.Write(data)
	if _, err := w.Write(binary.BigEndian.AppendUint32(s.sum[:0], crc)); err != nil {
		s.stop(err) // a full disk, most likely: give back what was written
		return
	}
	n := int64(len(h) + len(data) + 4)
	s.size[i] += n
	s.records[i]++
	if s.unchecked += n; s.unchecked >= spillCheckBytes {
		// The next spillCheckBytes must fit too: the check is ahead of the writes.
		s.unchecked = 0
		if err := spillRoom(s.dir, spillCheckBytes); err != nil {
			s.stop(err)
		}
	}
}

// stop ends the writing with err (the writer's): nothing more is written, and the space
// written is given back at once.
func (s *spill) stop(err error) {
	s.err = err
	for i, f := range s.files {
		s.w[i].Reset(f)
		f.Truncate(0)
	}
}

// flush writes what the buffers hold; the spill is not used if it fails (the writer's).
func (s *spill) flush() {
	if s.err != nil {
		return
	}
	for _, w := range s.w {
		if err := w.Flush(); err != nil {
			s.stop(err)
			return
		}
	}
}

// close stops the writer and closes the files (unlinked: their space is freed).
func (s *spill) close() {
	if s.queue != nil {
		s.finish()
	}
	for _, f := range s.files {
		if f != nil {
			f.Close()
		}
	}
}

// spillPerson is a person's events as a spill range holds them: sequences ascending, the
// encodings pointing into the range's buffer.
type spillPerson struct {
	pk   string
	seqs []uint64
	raws [][]byte
}

// errSpillDamaged is returned by read when a range's file does not hold what was written.
var errSpillDamaged = errors.New("projections: spill file damaged")

// read returns range i's persons in key order, their encodings in buf (grown as needed and
// returned for the next range).
func (s *spill) read(i int, buf []byte) ([]spillPerson, []byte, error) {
	if s.err != nil {
		return nil, buf, s.err
	}
	size := s.size[i]
	if size > spillMaxRead {
		return nil, buf, errSpillTooLarge
	}
	if int64(cap(buf)) < size {
		// Once, for every range it may read.
		most := size
		for _, n := range s.size {
			if n <= spillMaxRead {
				most = max(most, n)
			}
		}
		buf = make([]byte, most)
	}
	buf = buf[:size]
	if _, err := s.files[i].ReadAt(buf, 0); err != nil && !(errors.Is(err, io.EOF) && size == 0) {
		return nil, buf, err
	}
	persons := make([]spillPerson, 0, len(s.persons[i]))
	records := 0
	for rest := buf; len(rest) > 0; records++ {
		start := rest
		seq, n := binary.Uvarint(rest)
		if n <= 0 {
			return nil, buf, errSpillDamaged
		}
		rest = rest[n:]
		pid, n := binary.Uvarint(rest)
		if n <= 0 || pid > uint64(len(persons)) {
			return nil, buf, errSpillDamaged
		}
		rest = rest[n:]
		if pid == uint64(len(persons)) {
			l, n := binary.Uvarint(rest)
			if n <= 0 || l > uint64(len(rest)-n) {
				return nil, buf, errSpillDamaged
			}
			persons = append(persons, spillPerson{pk: string(rest[n : n+int(l)])})
			rest = rest[n+int(l):]
		}
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) || uint64(len(rest)-n)-l < 4 {
			return nil, buf, errSpillDamaged
		}
		data := rest[n : n+int(l)]
		rest = rest[n+int(l):]
		rec := start[:len(start)-len(rest)]
		if crc32.Checksum(rec, crcTable) != binary.BigEndian.Uint32(rest) {
			return nil, buf, errSpillDamaged
		}
		rest = rest[4:]
		p := &persons[pid]
		if len(p.seqs) > 0 && seq <= p.seqs[len(p.seqs)-1] {
			return nil, buf, errSpillDamaged
		}
		p.seqs = append(p.seqs, seq)
		p.raws = append(p.raws, data)
	}
	if records != s.records[i] || len(persons) != len(s.persons[i]) {
		return nil, buf, errSpillDamaged
	}
	for pid, p := range persons {
		if n, ok := s.persons[i][p.pk]; !ok || n != uint32(pid) {
			return nil, buf, errSpillDamaged
		}
	}
	slices.SortFunc(persons, func(a, b spillPerson) int { return strings.Compare(a.pk, b.pk) })
	return persons, buf, nil
}

// spillRange is a range read by readAhead: its persons (spill.read's), the buffer they point
// into, or the error that makes it unusable.
type spillRange struct {
	persons []spillPerson
	buf     []byte
	err     error
}

// readAhead reads the ranges in order on a goroutine of its own and sends them on ready, one
// ahead of the fold: the reading and sorting of the next range overlaps the folding of this
// one. Each range read is handed back with reuse once folded, its buffer to read another
// into; there are two. The reader stops at quit, and closes done when it has stopped.
func (s *spill) readAhead(quit <-chan struct{}) (ready <-chan spillRange, reuse func([]byte), done <-chan struct{}) {
	out := make(chan spillRange)
	free := make(chan []byte, 2)
	free <- nil
	free <- nil
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for r := range s.files {
			var buf []byte
			select {
			case buf = <-free:
			case <-quit:
				return
			}
			persons, buf, err := s.read(r, buf)
			select {
			case out <- spillRange{persons, buf, err}:
			case <-quit:
				return
			}
		}
	}()
	return out, func(buf []byte) { free <- buf }, stopped
}

// removeStaleSpills removes spill files a process left in dir when it died between creating
// and unlinking one.
func removeStaleSpills(dir string) {
	stale, _ := filepath.Glob(filepath.Join(dir, spillPrefix+"*"))
	for _, f := range stale {
		os.Remove(f)
	}
}
