package ondisk

import (
	"bytes"
	"errors"
	"testing"
)

func sampleRefcountBlock(bs int, tree bool) *RefcountBlock {
	r := &RefcountBlock{SuballocSlot: 2, SuballocBit: 9, FSGeneration: 0x1234, Blkno: 66100, Count: 2,
		Generation: 0xfeed, SuballocLoc: 66091}
	if tree {
		r.Flags, r.Clusters, r.LastEBBlk = RefcountTreeFlag, 1, 0
		r.List = ExtentList{Count: uint16(RefcountTreeCapacity(bs)), Recs: []ExtentRec{
			{Cpos: 0, Clusters: 1, Blkno: 66101}, {Cpos: 5000, Clusters: 1, Blkno: 66102}}}
	} else {
		r.Records = RefcountList{Count: uint16(RefcountRecCapacity(bs)), Recs: []RefcountRec{
			{Cpos: 100, Clusters: 10, Refcount: 2}, {Cpos: 110, Clusters: 1, Refcount: 3}, {Cpos: 1 << 33, Clusters: 4, Refcount: 2}}}
	}
	return r
}

func TestRefcountBlockRoundTrip(t *testing.T) {
	if RefcountRecCapacity(4096) != 247 {
		t.Fatal("capacity at 4 KiB")
	}
	for _, bs := range blockSizes {
		for _, tree := range []bool{false, true} {
			r := sampleRefcountBlock(bs, tree)
			b := make([]byte, bs)
			r.Encode(b)
			SetBlockCheck(b, RefcountBlockCheckOffset)
			d, err := DecodeRefcountBlock(b)
			if err != nil {
				t.Fatalf("bs %d tree %v: %v", bs, tree, err)
			}
			b2 := make([]byte, bs)
			d.Encode(b2)
			SetBlockCheck(b2, RefcountBlockCheckOffset)
			if !bytes.Equal(b, b2) {
				t.Fatalf("bs %d tree %v: re-encode differs", bs, tree)
			}
			if d.Tree() != tree || d.Leaf() || d.SelfCheck(66100, 0x1234) != nil || d.Generation != 0xfeed {
				t.Fatalf("decoded %+v", d)
			}
			if !tree {
				if err := d.Records.CheckOrder(); err != nil {
					t.Fatal(err)
				}
				if i, ok := d.Records.Find(105); !ok || i != 0 {
					t.Fatalf("Find(105) = %d %v", i, ok)
				}
				if _, ok := d.Records.Find(111); ok {
					t.Fatal("Find in a gap")
				}
				if i, ok := d.Records.Find(1<<33 + 3); !ok || i != 2 {
					t.Fatal("Find above 2^32")
				}
			}
		}
	}
}

func TestRefcountBlockRejectsDamage(t *testing.T) {
	leaf := make([]byte, 4096)
	sampleRefcountBlock(4096, false).Encode(leaf)
	tree := make([]byte, 4096)
	sampleRefcountBlock(4096, true).Encode(tree)
	for name, c := range map[string]struct {
		b      []byte
		mutate func([]byte)
		field  string
	}{
		"signature":    {leaf, func(b []byte) { b[1] = 'x' }, "rf_signature"},
		"both flags":   {leaf, func(b []byte) { b[0x34] = 3 }, "rf_flags"},
		"rl_count":     {leaf, func(b []byte) { b[0x80] = 0xff; b[0x81] = 0xff }, "rl_count"},
		"rl_used":      {leaf, func(b []byte) { b[0x82] = 0xf8 }, "rl_used"},
		"tree l_count": {tree, func(b []byte) { b[0x83] = 0x10 }, "l_count"},
		"short":        {leaf[:300], nil, ""},
	} {
		b := append([]byte(nil), c.b...)
		if c.mutate != nil {
			c.mutate(b)
		}
		_, err := DecodeRefcountBlock(b)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%s: got %v, want a corruption of %q", name, err, c.field)
		}
	}
	r := sampleRefcountBlock(4096, false)
	r.Records.Recs[1].Cpos = 105
	if err := r.Records.CheckOrder(); !errors.Is(err, ErrCorrupt) {
		t.Error("overlap accepted")
	}
	r = sampleRefcountBlock(4096, false)
	r.Records.Recs[0].Refcount = 0
	if err := r.Records.CheckOrder(); !errors.Is(err, ErrCorrupt) {
		t.Error("zero refcount accepted")
	}
	if r.SelfCheck(66100, 1) == nil {
		t.Error("wrong generation accepted")
	}
}

func FuzzDecodeRefcountBlock(f *testing.F) {
	for _, tree := range []bool{false, true} {
		b := make([]byte, 512)
		sampleRefcountBlock(512, tree).Encode(b)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRefcountBlock(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		_ = r.Records.CheckOrder()
		r.Records.Find(12345)
		out := make([]byte, len(data))
		r.Encode(out)
		if _, err := DecodeRefcountBlock(out); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
