package dlm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"o2go/internal/base"
)

// ErrMessage is the class of every error about a peer's message that cannot
// be decoded or makes no sense in the receiver's state. The message is
// refused and nothing changes. Test with errors.Is(err, dlm.ErrMessage).
var ErrMessage = errors.New("bad DLM message")

// MessageError says which message, from which node, was refused and why.
type MessageError struct {
	Kind string // message kind, e.g. "lock request"
	From base.NodeID
	Msg  string
}

func (e *MessageError) Error() string {
	if e.From.Valid() {
		return fmt.Sprintf("dlm: %s from node %d: %s", e.Kind, e.From, e.Msg)
	}
	return fmt.Sprintf("dlm: %s: %s", e.Kind, e.Msg)
}

// Is makes errors.Is(err, ErrMessage) true for every MessageError.
func (e *MessageError) Is(target error) bool { return target == ErrMessage }

func badMsg(kind string, format string, args ...any) *MessageError {
	return &MessageError{Kind: kind, From: base.InvalidNode, Msg: fmt.Sprintf(format, args...)}
}

// enc appends big-endian fields to a byte slice.
type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *enc) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}
func (e *enc) mode(m Mode)        { e.u8(uint8(m)) }
func (e *enc) str(s string)       { e.u8(uint8(len(s))); e.b = append(e.b, s...) }
func (e *enc) lvb(v *LVB)         { e.b = append(e.b, v[:]...) }
func (e *enc) node(n base.NodeID) { e.u8(uint8(n)) }
func (e *enc) nodeMap(m base.NodeMap) {
	var w [32]byte
	for _, n := range m.Nodes() {
		w[n>>3] |= 1 << (n & 7)
	}
	e.b = append(e.b, w[:]...)
}
func (e *enc) deadList(l []DeadNode) {
	e.u16(uint16(len(l)))
	for _, d := range l {
		e.node(d.Node)
		e.u64(d.Seq)
	}
}

// dec reads what enc wrote; the first failure sticks and every later read
// returns zero values, so decoders check err once at the end.
type dec struct {
	b    []byte
	kind string
	err  error
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = badMsg(d.kind, format, args...)
	}
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated: need %d more bytes, have %d", n, len(d.b))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) u8() uint8 {
	p := d.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *dec) u16() uint16 {
	p := d.take(2)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

func (d *dec) u32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (d *dec) u64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (d *dec) bool(field string) bool {
	v := d.u8()
	if v > 1 {
		d.fail("%s: %d is not a boolean", field, v)
	}
	return v == 1
}

// mode reads a mode; none allows ModeNone.
func (d *dec) mode(field string, none bool) Mode {
	v := Mode(int8(d.u8()))
	if d.err != nil {
		return ModeNone
	}
	if v.Valid() || (none && v == ModeNone) {
		return v
	}
	d.fail("%s: %d is not a lock mode", field, int8(v))
	return ModeNone
}

// str reads a length-prefixed string of 1..max bytes (0..max when empty is
// allowed).
func (d *dec) str(field string, max int, empty bool) string {
	n := int(d.u8())
	p := d.take(n)
	if d.err != nil {
		return ""
	}
	if n > max || (n == 0 && !empty) {
		d.fail("%s: length %d out of range 1..%d", field, n, max)
		return ""
	}
	return string(p)
}

func (d *dec) lvb(v *LVB) {
	p := d.take(LVBLen)
	if p != nil {
		copy(v[:], p)
	}
}

func (d *dec) node(field string) base.NodeID {
	n := base.NodeID(d.u8())
	if d.err == nil && !n.Valid() {
		d.fail("%s: %d is not a node number", field, n)
	}
	return n
}

func (d *dec) nodeMap(field string) base.NodeMap {
	p := d.take(32)
	var m base.NodeMap
	if p == nil {
		return m
	}
	if p[31]&0x80 != 0 {
		d.fail("%s: holds node 255, which is not a node number", field)
	}
	for i, b := range p {
		for j := 0; j < 8; j++ {
			if b&(1<<j) != 0 && i*8+j < base.MaxNodes {
				m.Add(base.NodeID(i*8 + j))
			}
		}
	}
	return m
}

// count reads a u16/u32 element count and refuses counts that could not fit
// in what is left, given the smallest encoding of one element, so a hostile
// count never drives a huge allocation.
func (d *dec) count(field string, wide bool, minElem int) int {
	var n int
	if wide {
		n = int(d.u32())
	} else {
		n = int(d.u16())
	}
	if d.err != nil {
		return 0
	}
	if n*minElem > len(d.b) {
		d.fail("%s: %d elements cannot fit in %d bytes", field, n, len(d.b))
		return 0
	}
	return n
}

func (d *dec) deadList(field string) []DeadNode {
	n := d.count(field, false, 9)
	if n == 0 {
		return nil
	}
	l := make([]DeadNode, n)
	for i := range l {
		l[i].Node = d.node(field)
		l[i].Seq = d.u64()
	}
	return l
}

// end refuses trailing bytes: every message has one encoding.
func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}
