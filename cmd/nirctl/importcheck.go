package main

import (
	"fmt"
	"unsafe"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/regfile"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// readFunc reads the registrations of a file in one format: regfile.ReadJSONL or ReadCSV.
type readFunc func(data []byte, yield func(regfile.Line) error) error

// maxKeptRegistrations is the most bytes of encoded registrations checkFile keeps for the
// send. A registration is some 80 bytes encoded, a third of its protojson line, and decoding
// it takes a tenth of the time reading the line does (nirctl demo's 101 067 lines: 7.7 MB
// kept of 24 MB, decoded in 0.47 s where reading them took 5.8 s, on a busy machine; the
// import's CPU fell from 2.3-3.2 s to 1.5-1.8 s): the lines of a file of some 800 000 are
// read once, those of a larger one past the bound read again, as all were before.
const maxKeptRegistrations = 64 << 20

// checkedFile is an input as checkFile read it: the lines after the acknowledged one, kept
// encoded within a bound, so that sending them decodes them instead of reading the file again.
// Its memory is the bound, with what the buffer's growth leaves spare (at most as much again).
type checkedFile struct {
	skipped int        // registrations at or before the acknowledged line
	buf     []byte     // the kept registrations, encoded, one after another
	kept    []keptLine // in file order
	last    int        // the number of the last line kept, or the acknowledged line
	whole   bool       // every line after the acknowledged one is kept
	read    readFunc   // reads the lines past the kept ones again
	data    []byte     // the input
}

type keptLine struct {
	number int
	end    int64 // as regfile.Line.End
	size   int   // bytes of its registration in buf
}

// keptLineSize is a keptLine's bytes, which count against the bound with the registration's:
// a CSV row of a few cells is some 30 bytes encoded.
const keptLineSize = int(unsafe.Sizeof(keptLine{}))

// checkFile reads the whole of data before any of it is sent: a line refused half-way left
// the batches before it stored, and the corrected file, another hash, derives other ids for
// them. It keeps the registrations after line acked, encoded, up to maxKept bytes with their
// keptLines.
func checkFile(data []byte, read readFunc, acked, maxKept int) (*checkedFile, error) {
	c := &checkedFile{last: acked, whole: true, read: read, data: data}
	err := read(data, func(l regfile.Line) error {
		switch {
		case l.Number <= acked:
			c.skipped++
			return nil
		case !c.whole:
			return nil
		}
		n := len(c.buf)
		b, err := proto.MarshalOptions{}.MarshalAppend(c.buf, l.Registration)
		if err != nil {
			return fmt.Errorf("line %d: %w", l.Number, err)
		}
		if len(b)+(len(c.kept)+1)*keptLineSize > maxKept {
			c.whole = false
			return nil
		}
		c.buf = b
		c.kept = append(c.kept, keptLine{number: l.Number, end: l.End, size: len(b) - n})
		c.last = l.Number
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// each calls yield with every line after the acknowledged one, in file order: the kept
// ones decoded, then, when the bound stopped the keeping, those after them read again.
func (c *checkedFile) each(yield func(regfile.Line) error) error {
	off := 0
	for _, k := range c.kept {
		reg := &nirv1.Registration{}
		if err := proto.Unmarshal(c.buf[off:off+k.size], reg); err != nil {
			return fmt.Errorf("line %d: %w", k.number, err)
		}
		off += k.size
		if err := yield(regfile.Line{Number: k.number, End: k.end, Registration: reg}); err != nil {
			return err
		}
	}
	if c.whole {
		return nil
	}
	return c.read(c.data, func(l regfile.Line) error {
		if l.Number <= c.last {
			return nil
		}
		return yield(l)
	})
}
