package ondisk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSlotMapRoundTrip(t *testing.T) {
	for _, extended := range []bool{false, true} {
		m := &SlotMap{Extended: extended, Slots: []Slot{{true, 0}, {}, {true, 254}, {}, {true, 7}}}
		data := bytes.Repeat([]byte{0xEE}, 4096)
		if err := m.Encode(data); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data[SlotMapSize(extended, 5):], bytes.Repeat([]byte{0xEE}, 4096-SlotMapSize(extended, 5))) {
			t.Fatalf("extended=%v: encode wrote past the slots", extended)
		}
		got, err := DecodeSlotMap(data, extended, 5)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Fatalf("extended=%v (-want +got):\n%s", extended, diff)
		}
		if s, ok := got.SlotOf(254); !ok || s != 2 {
			t.Errorf("SlotOf(254) = %d %v", s, ok)
		}
		if _, ok := got.SlotOf(1); ok {
			t.Error("SlotOf found an absent node")
		}
		if s, ok := got.FirstFree(); !ok || s != 1 {
			t.Errorf("FirstFree = %d %v", s, ok)
		}
	}
	// Layouts: old = le16 node or 0xFFFF; extended = {valid u8, pad[3], node le32}.
	old := make([]byte, 8)
	(&SlotMap{Slots: []Slot{{true, 3}, {}}}).Encode(old)
	if !bytes.Equal(old[:4], []byte{3, 0, 0xFF, 0xFF}) {
		t.Errorf("old layout % x", old[:4])
	}
	ext := make([]byte, 16)
	(&SlotMap{Extended: true, Slots: []Slot{{true, 0x01020304}, {false, 9}}}).Encode(ext)
	if !bytes.Equal(ext, []byte{1, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0, 9, 0, 0, 0}) {
		t.Errorf("extended layout % x", ext)
	}
}

// The kernel clears only es_valid when a node leaves: the stale node
// number survives a decode/encode cycle.
func TestSlotMapKeepsStaleNode(t *testing.T) {
	data := make([]byte, 16)
	binary.LittleEndian.PutUint32(data[4:], 42)
	m, err := DecodeSlotMap(data, true, 2)
	if err != nil || m.Slots[0] != (Slot{false, 42}) {
		t.Fatalf("%v %+v", err, m)
	}
	out := make([]byte, 16)
	if err := m.Encode(out); err != nil || !bytes.Equal(out, data) {
		t.Fatalf("stale node lost: % x", out)
	}
}

func TestSlotMapErrors(t *testing.T) {
	for _, c := range []struct {
		n        int
		size     int
		extended bool
		field    string
	}{
		{0, 4096, true, "s_max_slots"},
		{256, 4096, true, "s_max_slots"},
		{5, 39, true, "i_size"},
		{5, 9, false, "i_size"},
	} {
		_, err := DecodeSlotMap(make([]byte, c.size), c.extended, c.n)
		if !errors.Is(err, ErrCorrupt) || corruptField(t, err) != c.field {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if err := (&SlotMap{Slots: []Slot{{true, 0xFFFF}}}).Encode(make([]byte, 2)); err == nil {
		t.Error("node 0xFFFF accepted in the old format")
	}
	if err := (&SlotMap{Extended: true, Slots: make([]Slot, 3)}).Encode(make([]byte, 23)); err == nil {
		t.Error("short buffer accepted")
	}
}

func FuzzDecodeSlotMap(f *testing.F) {
	f.Add(make([]byte, 64), true, uint8(8))
	f.Add([]byte{1, 0, 0xFF, 0xFF, 5, 0}, false, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, extended bool, n uint8) {
		m, err := DecodeSlotMap(data, extended, int(n))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error outside the corruption class: %v", err)
			}
			return
		}
		out := make([]byte, len(data))
		if err := m.Encode(out); err != nil {
			t.Fatalf("encode of a decoded map fails: %v", err)
		}
		m2, err := DecodeSlotMap(out, extended, int(n))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, m2); diff != "" {
			t.Fatalf("decode(encode(x)) != x:\n%s", diff)
		}
	})
}
