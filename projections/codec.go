package projections

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/introreg/nir/rules"
)

// A tiny append-style binary codec for read-model values. Rows are decoded on every list query
// (20 000 per kommune), so they avoid reflection and allocation where they can.

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *encoder) date(d rules.Date) { e.uvarint(dateKey(d)) }

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated value", ErrCorrupt)
	}
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if uint64(len(d.b)) < n {
		d.fail()
		d.b = nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) bool() bool {
	if len(d.b) < 1 {
		d.fail()
		return false
	}
	v := d.b[0] != 0
	d.b = d.b[1:]
	return v
}

func (d *decoder) date() rules.Date { return dateFromKey(d.uvarint()) }

// dateKey packs a date as YYYYMMDD (0 for the zero date), which sorts like the date.
func dateKey(d rules.Date) uint64 {
	if d.IsZero() {
		return 0
	}
	return uint64(d.Y)*10000 + uint64(d.M)*100 + uint64(d.D)
}

func dateFromKey(k uint64) rules.Date {
	if k == 0 {
		return rules.Date{}
	}
	return rules.Date{Y: int(k / 10000), M: time.Month(k / 100 % 100), D: int(k % 100)}
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func btou64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
