package ondisk

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sampleGroups returns a global bitmap group, a contiguous suballocator
// group with a DISCONTIG_BG-sized bitmap, and a discontiguous group.
func sampleGroups(bs int) map[string]*GroupDesc {
	global := &GroupDesc{
		Bits: uint16(GlobalBitmapClustersPerGroup(bs)), FreeBitsCount: 100, Chain: 0, Generation: 0xdeadbeef,
		NextGroup: 0, ParentDinode: 11, Blkno: 3, Bitmap: make([]byte, GroupBitmapBytes(bs, false, 0)),
	}
	for i := 0; i < int(global.Bits)-100; i++ {
		global.Bitmap[i/8] |= 1 << (i % 8)
	}
	sub := &GroupDesc{
		Bits: 1024, FreeBitsCount: 1022, Chain: 1, Generation: 0xdeadbeef, NextGroup: 69139,
		ParentDinode: 16, Blkno: 66067, Bitmap: make([]byte, GroupBitmapBytes(bs, true, IncompatDiscontigBG)),
	}
	sub.Bitmap[0] = 0x03
	disc := &GroupDesc{
		Bits: 48, FreeBitsCount: 47, Chain: 0, Generation: 0xdeadbeef, ParentDinode: 20, Blkno: 5000,
		Bitmap: make([]byte, MaxSuballocBitmapBytes),
		List: &ExtentList{Count: uint16(ExtentRecsPerGroupDesc(bs)), Recs: []ExtentRec{
			{Cpos: 0, Clusters: 2, Blkno: 5000}, {Cpos: 2, Clusters: 1, Blkno: 9000},
		}},
	}
	disc.Bitmap[0] = 0x01
	return map[string]*GroupDesc{"global": global, "suballoc": sub, "discontig": disc}
}

func TestGroupDescRoundTrip(t *testing.T) {
	for _, bs := range allBlockSizes {
		for name, g := range sampleGroups(bs) {
			b := bytes.Repeat([]byte{0xCC}, bs)
			if err := g.Encode(b); err != nil {
				t.Fatalf("bs %d %s: %v", bs, name, err)
			}
			got, err := DecodeGroupDesc(b)
			if err != nil {
				t.Fatalf("bs %d %s: %v", bs, name, err)
			}
			if diff := cmp.Diff(g, got); diff != "" {
				t.Fatalf("bs %d %s (-want +got):\n%s", bs, name, diff)
			}
			b2 := make([]byte, bs)
			if err := got.Encode(b2); err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("bs %d %s: re-encode differs (%v)", bs, name, err)
			}
			if err := got.SelfCheck(g.Blkno, 0xdeadbeef); err != nil {
				t.Fatal(err)
			}
			if got.CountSet() != int(got.Bits-got.FreeBitsCount) {
				t.Fatalf("bs %d %s: %d bits set, want %d", bs, name, got.CountSet(), got.Bits-got.FreeBitsCount)
			}
		}
	}
	b := make([]byte, 4096)
	if err := sampleGroups(4096)["global"].Encode(b); err != nil {
		t.Fatal(err)
	}
	// Offsets of struct ocfs2_group_desc.
	if string(b[:8]) != "GROUP01\x00" || b[0x08] != 0xC0 || b[0x09] != 0x0F || b[0x0A] != 0x00 || b[0x0B] != 0x7E ||
		b[0x0C] != 100 || b[0x10] != 0xef || b[0x20] != 11 || b[0x28] != 3 || b[0x40] != 0xFF {
		t.Fatalf("group descriptor fields misplaced:\n% x", b[:0x48])
	}
}

func TestGroupDescRejectsDamage(t *testing.T) {
	enc := func(name string) []byte {
		b := make([]byte, 4096)
		if err := sampleGroups(4096)[name].Encode(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name, sample, field string
		mutate              func(b []byte) []byte
	}{
		{"signature", "global", "bg_signature", func(b []byte) []byte { b[5] = '2'; return b }},
		{"short", "global", "", func(b []byte) []byte { return b[:100] }},
		{"bg_size", "global", "bg_size", func(b []byte) []byte { b[0x08], b[0x09] = 0xC1, 0x0F; return b }},
		{"bg_bits", "suballoc", "bg_bits", func(b []byte) []byte { b[0x0A], b[0x0B] = 0x01, 0x08; return b }},
		{"bg_free_bits_count", "suballoc", "bg_free_bits_count", func(b []byte) []byte { b[0x0C], b[0x0D] = 0x01, 0x04; return b }},
		{"list count", "discontig", "l_count", func(b []byte) []byte { b[0x142] = 0xff; return b }},
		{"list next", "discontig", "l_next_free_rec", func(b []byte) []byte { b[0x144] = 0xff; return b }},
		{"list depth", "discontig", "bg_list.l_tree_depth", func(b []byte) []byte { b[0x140] = 1; return b }},
	} {
		_, err := DecodeGroupDesc(c.mutate(enc(c.sample)))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v", c.name, err)
			continue
		}
		if f := corruptField(t, err); f != c.field {
			t.Errorf("%s: names %q, want %q", c.name, f, c.field)
		}
	}
	g := sampleGroups(4096)["suballoc"]
	if f := corruptField(t, g.SelfCheck(1, 0xdeadbeef)); f != "bg_blkno" {
		t.Error(f)
	}
	if f := corruptField(t, g.SelfCheck(66067, 1)); f != "bg_generation" {
		t.Error(f)
	}
}

func TestGroupDescEncodeRefuses(t *testing.T) {
	for name, mutate := range map[string]func(g *GroupDesc){
		"bitmap too big":          func(g *GroupDesc) { g.Bitmap = make([]byte, 4096) },
		"bits over bitmap":        func(g *GroupDesc) { g.Bits = 8*256 + 1 },
		"list with wrong bg_size": func(g *GroupDesc) { g.Bitmap = make([]byte, 255) },
		"list too long":           func(g *GroupDesc) { g.List.Count = 300 },
		"list deep":               func(g *GroupDesc) { g.List.TreeDepth = 1 },
	} {
		g := sampleGroups(4096)["discontig"]
		mutate(g)
		if err := g.Encode(make([]byte, 4096)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestGroupBitmapOps(t *testing.T) {
	g := &GroupDesc{Bits: 20, Bitmap: make([]byte, 256)}
	for _, bit := range []int{0, 1, 2, 9, 19} {
		if err := g.Set(bit); err != nil {
			t.Fatal(err)
		}
	}
	if !g.Test(9) || g.Test(10) || g.Test(-1) || g.Test(20) {
		t.Fatal("Test")
	}
	if g.Set(20) == nil || g.Clear(-1) == nil || g.Set(2000) == nil {
		t.Fatal("out-of-range bits accepted")
	}
	if g.CountSet() != 5 {
		t.Fatalf("CountSet %d", g.CountSet())
	}
	if i, ok := g.FindClear(0); !ok || i != 3 {
		t.Fatalf("FindClear(0) = %d %v", i, ok)
	}
	if i, ok := g.FindClear(19); ok {
		t.Fatalf("FindClear(19) = %d, want none (bit 19 used, 20 is past bg_bits)", i)
	}
	if i, ok := g.FindClearRun(0, 6); !ok || i != 3 {
		t.Fatalf("FindClearRun(0,6) = %d %v", i, ok)
	}
	if i, ok := g.FindClearRun(0, 7); !ok || i != 10 {
		t.Fatalf("FindClearRun(0,7) = %d %v", i, ok)
	}
	if _, ok := g.FindClearRun(0, 10); ok {
		t.Fatal("run of 10 found in 20 bits with 9 free after bit 9")
	}
	if err := g.Clear(9); err != nil || g.Test(9) {
		t.Fatal("Clear")
	}
	// Bits beyond bg_bits never count, even when set in the bitmap.
	g.Bitmap[3] = 0xFF
	if g.CountSet() != 4 {
		t.Fatalf("CountSet counted bits beyond bg_bits: %d", g.CountSet())
	}
	// Whole used bytes are skipped correctly.
	h := &GroupDesc{Bits: 64, Bitmap: []byte{0xFF, 0xFF, 0x7F, 0, 0, 0, 0, 0}}
	if i, ok := h.FindClear(0); !ok || i != 23 {
		t.Fatalf("FindClear after full bytes = %d %v", i, ok)
	}
	if i, ok := h.FindClearRun(1, 3); !ok || i != 23 {
		t.Fatalf("FindClearRun after full bytes = %d %v", i, ok)
	}
}

func TestGroupBitBlock(t *testing.T) {
	disc := sampleGroups(4096)["discontig"] // 2 clusters at 5000, 1 at 9000, 16 bits each
	const bpc = 16
	for bit, want := range map[int]uint64{0: 5000, 31: 5031, 32: 9000, 47: 9015} {
		got, err := disc.BitBlock(bit, bpc)
		if err != nil || got != want {
			t.Errorf("bit %d -> %d (%v), want %d", bit, got, err, want)
		}
		back, ok := disc.BlockBit(want, bpc)
		if !ok || back != bit {
			t.Errorf("block %d -> bit %d %v, want %d", want, back, ok, bit)
		}
	}
	if _, err := disc.BitBlock(48, bpc); err == nil {
		t.Error("bit past bg_bits accepted")
	}
	if _, ok := disc.BlockBit(5032, bpc); ok {
		t.Error("block outside the extents mapped")
	}
	short := sampleGroups(4096)["discontig"]
	short.Bits = 64 // more bits than the extents cover
	if _, err := short.BitBlock(50, bpc); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bit beyond extents: %v", err)
	}
	sub := sampleGroups(4096)["suballoc"]
	if b, err := sub.BitBlock(7, 1); err != nil || b != 66074 {
		t.Errorf("contiguous: %d %v", b, err)
	}
	if bit, ok := sub.BlockBit(66074, 1); !ok || bit != 7 {
		t.Errorf("contiguous inverse: %d %v", bit, ok)
	}
	if _, ok := sub.BlockBit(66067+1024, 1); ok {
		t.Error("block past the group mapped")
	}
}

func TestGroupCheckParent(t *testing.T) {
	g := sampleGroups(4096)["suballoc"]
	cl := &ChainList{CPG: 1024, BPC: 1, Count: 243, Recs: make([]ChainRec, 2)}
	if err := g.CheckParent(16, cl); err != nil {
		t.Fatal(err)
	}
	if f := corruptField(t, g.CheckParent(17, cl)); f != "bg_parent_dinode" {
		t.Error(f)
	}
	if f := corruptField(t, g.CheckParent(16, &ChainList{CPG: 512, BPC: 1, Recs: make([]ChainRec, 2)})); f != "bg_bits" {
		t.Error(f)
	}
	if f := corruptField(t, g.CheckParent(16, &ChainList{CPG: 1024, BPC: 1, Recs: make([]ChainRec, 1)})); f != "bg_chain" {
		t.Error(f)
	}
}

func TestGlobalBitmapGeometry(t *testing.T) {
	for bs, cpg := range map[int]int{4096: 32256, 2048: 15872, 1024: 7680, 512: 3584} { // 2048: mkfs gives 15872 (the digest's 16128 is wrong)
		if got := GlobalBitmapClustersPerGroup(bs); got != cpg {
			t.Errorf("bs %d: cpg %d, want %d", bs, got, cpg)
		}
	}
	// 2 GiB at 4K/4K: 524288 clusters, 17 groups, the last with 8192 bits.
	if n := GlobalBitmapGroups(524288, 32256); n != 17 {
		t.Errorf("groups %d", n)
	}
	if b := GlobalBitmapGroupBits(16, 524288, 32256); b != 8192 {
		t.Errorf("tail group bits %d", b)
	}
	if b := GlobalBitmapGroupBits(3, 524288, 32256); b != 32256 {
		t.Errorf("full group bits %d", b)
	}
	if b := GlobalBitmapGroupBits(17, 524288, 32256); b != 0 {
		t.Errorf("group past the end has %d bits", b)
	}
	if blk := GlobalBitmapGroupBlkno(0, 32256, 1, 3); blk != 3 {
		t.Errorf("group 0 at %d", blk)
	}
	if blk := GlobalBitmapGroupBlkno(2, 7680, 8, 8); blk != 2*7680*8 {
		t.Errorf("group 2 at %d", blk)
	}
	if GroupBitmapBytes(4096, true, IncompatDiscontigBG) != 256 || GroupBitmapBytes(4096, true, 0) != 4032 ||
		GroupBitmapBytes(1024, false, IncompatDiscontigBG) != 960 {
		t.Error("GroupBitmapBytes")
	}
	if ExtentRecsPerGroupDesc(4096) != 235 {
		t.Error("ExtentRecsPerGroupDesc")
	}
}

func FuzzDecodeGroupDesc(f *testing.F) {
	for _, bs := range allBlockSizes {
		for _, g := range sampleGroups(bs) {
			b := make([]byte, bs)
			if err := g.Encode(b); err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := DecodeGroupDesc(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error outside the corruption class: %v", err)
			}
			return
		}
		g.CountSet()
		g.FindClearRun(3, 5)
		for _, bit := range []int{0, int(g.Bits) - 1, int(g.Bits)} {
			if blk, err := g.BitBlock(bit, 8); err == nil {
				g.BlockBit(blk, 8)
			}
		}
		out := make([]byte, len(data))
		if err := g.Encode(out); err != nil {
			t.Fatalf("encode of a decoded group fails: %v", err)
		}
		g2, err := DecodeGroupDesc(out)
		if err != nil {
			t.Fatalf("re-decode fails: %v", err)
		}
		if diff := cmp.Diff(g, g2); diff != "" {
			t.Fatalf("decode(encode(x)) != x:\n%s", diff)
		}
	})
}
