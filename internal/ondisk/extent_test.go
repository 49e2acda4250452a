package ondisk

import (
	"bytes"
	"errors"
	"testing"
)

func sampleExtentBlock(bs int) *ExtentBlock {
	return &ExtentBlock{
		SuballocSlot: 1, SuballocBit: 7, FSGeneration: 0xdeadbeef, Blkno: 70200,
		SuballocLoc: 70193, NextLeafBlk: 80000,
		List: ExtentList{TreeDepth: 0, Count: uint16(ExtentBlockListCapacity(bs)), Recs: []ExtentRec{
			{Cpos: 0, Clusters: 0},
			{Cpos: 10, Clusters: 5, Blkno: 1000, Flags: ExtentUnwritten},
			{Cpos: 20, Clusters: 65535, Blkno: 5000, Flags: ExtentRefcounted},
		}},
	}
}

func TestExtentBlockRoundTrip(t *testing.T) {
	for _, bs := range []int{512, 1024, 2048, 4096} {
		e := sampleExtentBlock(bs)
		b := make([]byte, bs)
		e.Encode(b)
		d, err := DecodeExtentBlock(b)
		if err != nil {
			t.Fatalf("bs %d: %v", bs, err)
		}
		b2 := make([]byte, bs)
		d.Encode(b2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("bs %d: re-encode differs", bs)
		}
		if err := d.SelfCheck(70200, 0xdeadbeef); err != nil {
			t.Fatal(err)
		}
		if err := d.List.CheckOrder(structExtentBlock); err != nil {
			t.Fatal(err)
		}
		if i, ok := d.List.Find(14); !ok || i != 1 {
			t.Fatalf("Find(14) = %d,%v", i, ok)
		}
		if _, ok := d.List.Find(15); ok {
			t.Fatal("Find(15) found a record in a hole")
		}
	}
}

func TestExtentBlockRejectsDamage(t *testing.T) {
	b := make([]byte, 4096)
	sampleExtentBlock(4096).Encode(b)
	for name, mutate := range map[string]func([]byte){
		"signature":    func(b []byte) { b[0] = 'X' },
		"count":        func(b []byte) { b[0x32] = 0xff; b[0x33] = 0xff },
		"next_free":    func(b []byte) { b[0x34] = 0xff; b[0x35] = 0x7f },
		"depth":        func(b []byte) { b[0x30] = 200 },
		"short buffer": nil,
	} {
		c := append([]byte(nil), b...)
		if mutate == nil {
			c = c[:100]
		} else {
			mutate(c)
		}
		_, err := DecodeExtentBlock(c)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want a corruption error", name, err)
		}
	}
	d, _ := DecodeExtentBlock(b)
	if err := d.SelfCheck(1, 0xdeadbeef); err == nil {
		t.Error("wrong blkno accepted")
	}
	d.List.Recs[2].Cpos = 12
	if err := d.List.CheckOrder(structExtentBlock); err == nil {
		t.Error("overlap accepted")
	}
}

func FuzzDecodeExtentBlock(f *testing.F) {
	b := make([]byte, 4096)
	sampleExtentBlock(4096).Encode(b)
	f.Add(b)
	f.Add(b[:512])
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeExtentBlock(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error outside the corruption class: %v", err)
			}
			return
		}
		_ = e.List.CheckOrder(structExtentBlock)
		e.List.Find(12345)
		out := make([]byte, len(data))
		e.Encode(out)
		if _, err := DecodeExtentBlock(out); err != nil {
			t.Fatalf("re-decode of encoded block fails: %v", err)
		}
	})
}
