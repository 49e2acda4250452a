package ondisk

import (
	"bytes"
	"errors"
	"testing"
)

// Hash vectors measured with ocfs2-tools 1.8.7 on x86: names written into a
// root directory block, index rebuilt by fsck.ocfs2 -fy (DX_TREE_MISSING),
// hashes read back with debugfs.ocfs2 dx_dump. Volume dx seeds
// 0x9f9b80a5 0x3474d816 0xe021e186. golden_b_test.go repeats the experiment
// on a fresh volume.
var dxToolVectors = []struct {
	name         string
	major, minor uint32
}{
	{".", 0, 0},
	{"..", 0, 0},
	{"lost+found", 0xba676e3f, 0x5fa5dd2f},
	{"caf\xc3\xa9", 0xd63055c7, 0xafd6328c},
	{"\xff\xfe\x80abc", 0x68b27484, 0xc613d9f9},
	{"na\xefve_name_that_is_longer_than_sixteen_bytes\xe9", 0xcb1973e6, 0xaedda498},
	{"plain", 0xd461015e, 0xc0af7b4b},
	{"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\x90", 0x9e98a9a7, 0x6db64738},
}

func TestDXHashMatchesTools(t *testing.T) {
	seed := [3]uint32{0x9f9b80a5, 0x3474d816, 0xe021e186}
	for _, v := range dxToolVectors {
		if ma, mi := DXHashString(v.name, seed, SignedChar); ma != v.major || mi != v.minor {
			t.Errorf("%q: (0x%08x 0x%08x), tools say (0x%08x 0x%08x)", v.name, ma, mi, v.major, v.minor)
		}
	}
	// Unsigned chars (kernel >= 6.2) agree on ASCII and differ on high bytes.
	for _, v := range dxToolVectors {
		ma, mi := DXHashString(v.name, seed, UnsignedChar)
		ascii := true
		for i := 0; i < len(v.name); i++ {
			ascii = ascii && v.name[i] < 0x80
		}
		if same := ma == v.major && mi == v.minor; same != ascii {
			t.Errorf("%q: unsigned hash equal to signed = %v, want %v", v.name, same, ascii)
		}
	}
	// seed[2] does not matter.
	a1, b1 := DXHashString("plain", [3]uint32{1, 2, 3}, SignedChar)
	a2, b2 := DXHashString("plain", [3]uint32{1, 2, 99}, SignedChar)
	if a1 != a2 || b1 != b2 {
		t.Error("seed[2] changes the hash")
	}
}

func FuzzDXHash(f *testing.F) {
	f.Add([]byte("lost+found"), uint32(1), uint32(2))
	f.Add(make([]byte, 300), uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, name []byte, s0, s1 uint32) {
		a, b := DXHash(name, [3]uint32{s0, s1, 0}, SignedChar)
		c, d := DXHash(name, [3]uint32{s0, s1, 0}, SignedChar)
		if a != c || b != d {
			t.Fatal("hash not deterministic")
		}
		high := false
		for _, c := range name {
			high = high || c >= 0x80
		}
		if !high {
			if e, f := DXHash(name, [3]uint32{s0, s1, 0}, UnsignedChar); e != a || f != b {
				t.Fatal("signedness changes the hash of an ASCII name")
			}
		}
	})
}

func sampleDXRoot(bs int, inline bool) *DXRoot {
	r := &DXRoot{SuballocSlot: 0, SuballocBit: 2, FSGeneration: 0xe3094535, Blkno: 66075,
		DirBlkno: 12, NumEntries: 3, FreeBlk: 531, SuballocLoc: 66073}
	if inline {
		r.Flags = DXRootFlagInline
		r.Entries = DXEntryList{Count: uint16(DXRootEntryCapacity(bs)), Entries: []DXEntry{
			{0, 0, 531}, {0, 0, 531}, {0xba676e3f, 0x5fa5dd2f, 531}}}
	} else {
		r.Clusters, r.LastEBBlk = 4, 0
		r.List = ExtentList{Count: uint16(DXRootExtentCapacity(bs)), Recs: []ExtentRec{
			{Cpos: 0, Clusters: 2, Blkno: 8000}, {Cpos: 0x80000000, Clusters: 2, Blkno: 9000}}}
	}
	return r
}

func TestDXRootRoundTrip(t *testing.T) {
	if DXRootEntryCapacity(4096) != 243 || DXRootExtentCapacity(4096) != 243 || DXLeafCapacity(4096) != 253 {
		t.Fatal("capacities at 4 KiB")
	}
	for _, bs := range blockSizes {
		for _, inline := range []bool{true, false} {
			r := sampleDXRoot(bs, inline)
			b := make([]byte, bs)
			r.Encode(b)
			SetBlockCheck(b, DXRootCheckOffset)
			d, err := DecodeDXRoot(b)
			if err != nil {
				t.Fatalf("bs %d inline %v: %v", bs, inline, err)
			}
			b2 := make([]byte, bs)
			d.Encode(b2)
			SetBlockCheck(b2, DXRootCheckOffset)
			if !bytes.Equal(b, b2) {
				t.Fatalf("bs %d inline %v: re-encode differs", bs, inline)
			}
			if d.Inline() != inline || d.SelfCheck(66075, 0xe3094535, 12) != nil {
				t.Fatalf("bs %d: decoded %+v", bs, d)
			}
			if inline && (len(d.Entries.Entries) != 3 || d.Entries.Entries[2].MajorHash != 0xba676e3f) {
				t.Fatalf("entries %+v", d.Entries)
			}
			if _, err := VerifyBlockCheck(b, DXRootCheckOffset, structDXRoot); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestDXLeafRoundTrip(t *testing.T) {
	for _, bs := range blockSizes {
		l := &DXLeaf{Blkno: 8001, FSGeneration: 7, List: DXEntryList{Count: uint16(DXLeafCapacity(bs)),
			Entries: []DXEntry{{1, 2, 3}, {0xffffffff, 0xfffffffe, 1 << 40}}}}
		b := make([]byte, bs)
		l.Encode(b)
		d, err := DecodeDXLeaf(b)
		if err != nil {
			t.Fatal(err)
		}
		b2 := make([]byte, bs)
		d.Encode(b2)
		if !bytes.Equal(b, b2) || d.SelfCheck(8001, 7) != nil || d.List.Full() {
			t.Fatalf("bs %d: round trip %+v", bs, d)
		}
	}
}

func TestDXRejectsDamage(t *testing.T) {
	root := make([]byte, 4096)
	sampleDXRoot(4096, true).Encode(root)
	ext := make([]byte, 4096)
	sampleDXRoot(4096, false).Encode(ext)
	leaf := make([]byte, 4096)
	(&DXLeaf{Blkno: 1, List: DXEntryList{Count: 253}}).Encode(leaf)
	for name, c := range map[string]struct {
		b      []byte
		mutate func([]byte)
		field  string
		leaf   bool
	}{
		"root signature":     {root, func(b []byte) { b[0] = 'x' }, "dr_signature", false},
		"root de_count":      {root, func(b []byte) { b[0xC4] = 0xff; b[0xC5] = 0 }, "de_count", false},
		"root de_num_used":   {root, func(b []byte) { b[0xC6] = 0xf4 }, "de_num_used", false},
		"inline clusters":    {root, func(b []byte) { b[0x28] = 1 }, "dr_clusters", false},
		"root l_count":       {ext, func(b []byte) { b[0xC2] = 0xff }, "l_count", false},
		"root next_free_rec": {ext, func(b []byte) { b[0xC4] = 0xf4 }, "l_next_free_rec", false},
		"root short":         {root[:100], nil, "", false},
		"leaf signature":     {leaf, func(b []byte) { b[7] = 'x' }, "dl_signature", true},
		"leaf de_count":      {leaf, func(b []byte) { b[0x2C] = 0xfe }, "de_count", true},
		"leaf de_num_used":   {leaf, func(b []byte) { b[0x2E] = 0xfe }, "de_num_used", true},
		"leaf short":         {leaf[:200], nil, "", true},
	} {
		b := append([]byte(nil), c.b...)
		if c.mutate != nil {
			c.mutate(b)
		}
		var err error
		if c.leaf {
			_, err = DecodeDXLeaf(b)
		} else {
			_, err = DecodeDXRoot(b)
		}
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%s: got %v, want a corruption of %q", name, err, c.field)
		}
	}
	d, _ := DecodeDXRoot(root)
	if d.SelfCheck(1, 0xe3094535, 0) == nil || d.SelfCheck(66075, 1, 0) == nil || d.SelfCheck(66075, 0xe3094535, 13) == nil {
		t.Error("SelfCheck accepts a wrong identity")
	}
}

func TestDXLeafBlock(t *testing.T) {
	rec := ExtentRec{Cpos: 100, Clusters: 3, Blkno: 1000}
	for _, c := range []struct {
		major, minor uint32
		want         uint64
	}{
		{100, 0, 1000}, {101, 5, 1000 + 8 + 5}, {102, 9, 1000 + 16 + 1}, {500, 7, 1000 + 16 + 7},
	} {
		if got := DXLeafBlock(rec, c.major, c.minor, 8); got != c.want {
			t.Errorf("major %d minor %d: block %d, want %d", c.major, c.minor, got, c.want)
		}
	}
}

func TestDXIndexRec(t *testing.T) {
	l := &ExtentList{Recs: []ExtentRec{{Cpos: 0, Clusters: 1}, {Cpos: 1000, Clusters: 2}, {Cpos: 5000, Clusters: 1}}}
	for major, want := range map[uint32]int{0: 0, 999: 0, 1000: 1, 4999: 1, 5000: 2, 0xffffffff: 2} {
		if i, ok := DXIndexRec(l, major); !ok || i != want {
			t.Errorf("major %d: rec %d %v, want %d", major, i, ok, want)
		}
	}
	l.Recs[0].Cpos = 10
	if _, ok := DXIndexRec(l, 5); ok {
		t.Error("hash before the first record found a record")
	}
}

func FuzzDecodeDXRoot(f *testing.F) {
	for _, inline := range []bool{true, false} {
		b := make([]byte, 512)
		sampleDXRoot(512, inline).Encode(b)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeDXRoot(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
		} else {
			out := make([]byte, len(data))
			r.Encode(out)
			if _, err := DecodeDXRoot(out); err != nil {
				t.Fatalf("re-decode: %v", err)
			}
		}
		l, err := DecodeDXLeaf(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		out := make([]byte, len(data))
		l.Encode(out)
		if _, err := DecodeDXLeaf(out); err != nil {
			t.Fatalf("leaf re-decode: %v", err)
		}
	})
}
