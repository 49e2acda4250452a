package ondisk

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// allBlockSizes are the block sizes OCFS2 supports.
var allBlockSizes = []int{512, 1024, 2048, 4096}

// baseDinode has every header field non-zero and distinct, so that a field
// written at the wrong offset shows up in a round trip.
func baseDinode() Dinode {
	return Dinode{
		Signature: InodeSignature, Generation: 0x11223344, SuballocSlot: 3, SuballocBit: 77,
		Links: 0x0002_0005, Clusters: 0x55, UID: 1000, GID: 1001, Size: 0x1234_5678_9abc,
		Mode: ModeReg | 0o640, Flags: InodeValid,
		Atime: DiskTime{0x6000_0001, 11}, Ctime: DiskTime{0x6000_0002, 22}, Mtime: DiskTime{0x6000_0003, 33},
		Dtime: 0x6000_0004, Blkno: 70165, LastEBBlk: 80000, FSGeneration: 0xdeadbeef, Attr: 0x10,
		OrphanedSlot: 2, XattrLoc: 90000, DxRoot: 90001, RefcountLoc: 90002, SuballocLoc: 70164,
		DIOOrphanedSlot: 1, ID1: 0x0102030405060708,
	}
}

func sampleSuperBlock() *SuperBlock {
	s := &SuperBlock{
		MajorRev: 0, MinorRev: 90, MntCount: 3, MaxMntCount: 20, State: StateErrorFS, Errors: 1,
		CheckInterval: 99, LastCheck: 0x6b04abba, CreatorOS: 0,
		Features:  Features{Compat: 3, Incompat: 0xB758, RoCompat: 1},
		RootBlkno: 5, SystemDirBlkno: 6, BlockSizeBits: 12, ClusterSizeBits: 12, MaxSlots: 4,
		TunefsFlag: TunefsInProgDirTrailer, FirstClusterGroup: 3,
		UUID:            [16]byte{0x2f, 0x62, 0x0b, 0xc0, 0x01, 0x89, 0x43, 0xbc, 0x80, 0xac, 0x7f, 0xb3, 0xe1, 0x5a, 0x0f, 0x82},
		XattrInlineSize: 256, DxSeed: [3]uint32{0x8a799d0e, 0x015946cb, 0x5db7a297},
	}
	s.UUIDHash = UUIDHash(s.UUID)
	if err := s.SetLabel("lbl"); err != nil {
		panic(err)
	}
	if err := s.ClusterInfo.Set("pcmk", "mycluster", 1); err != nil {
		panic(err)
	}
	return s
}

// sampleDinodes returns one dinode per id2 variant (and the inline-xattr
// cases) for a block size.
func sampleDinodes(bs int) map[string]*Dinode {
	out := map[string]*Dinode{}
	add := func(name string, f func(d *Dinode)) {
		d := baseDinode()
		f(&d)
		out[name] = &d
	}
	add("super", func(d *Dinode) {
		d.Signature = SuperBlockSignature
		d.Flags = InodeValid | InodeSystem | InodeSuperBlock
		d.Blkno = SuperBlockBlkno
		d.Super = sampleSuperBlock()
		d.Super.BlockSizeBits = uint32(log2(bs))
	})
	add("local alloc", func(d *Dinode) {
		d.Flags = InodeValid | InodeSystem | InodeBitmap | InodeLocalAlloc
		bm := make([]byte, LocalAllocBitmapBytes(bs))
		bm[0], bm[len(bm)-1] = 0x0f, 0x80
		d.LocalAlloc = &LocalAlloc{BmOff: 4242, Bitmap: bm}
		d.SetBitmap(Bitmap{Used: 5, Total: uint32(8 * len(bm))})
	})
	add("local alloc short", func(d *Dinode) {
		d.Flags = InodeValid | InodeSystem | InodeBitmap | InodeLocalAlloc
		d.LocalAlloc = &LocalAlloc{BmOff: 1, Bitmap: []byte{1, 2, 3}}
	})
	add("chain", func(d *Dinode) {
		d.Flags = InodeValid | InodeSystem | InodeBitmap | InodeChain
		d.Chain = &ChainList{CPG: 32256, BPC: 1, Count: uint16(ChainRecsPerInode(bs)), Recs: []ChainRec{
			{Free: 100, Total: 32256, Blkno: 3}, {Free: 0, Total: 8192, Blkno: 32256},
		}}
		d.SetBitmap(Bitmap{Used: 40348, Total: 40448})
	})
	add("truncate log", func(d *Dinode) {
		d.Flags = InodeValid | InodeSystem | InodeDealloc
		d.TruncateLog = &TruncateLog{Count: uint16(TruncateRecsPerInode(bs)), Recs: []TruncateRec{{Start: 10, Clusters: 5}, {Start: 99, Clusters: 1}}}
	})
	add("inline file", func(d *Dinode) {
		d.DynFeatures = DynInlineData
		data := make([]byte, InlineDataBytes(bs, 0))
		copy(data, "hello, inline world")
		d.Inline = &InlineData{Data: data}
		d.Size = 19
	})
	add("inline dir with xattr", func(d *Dinode) {
		d.Mode = ModeDir | 0o755
		d.DynFeatures = DynInlineData | DynInlineXattr | DynHasXattr
		d.XattrInlineSize = 256
		data := make([]byte, InlineDataBytes(bs, 256))
		data[0] = 6
		d.Inline = &InlineData{Data: data}
		d.Size = uint64(len(data))
	})
	add("fast symlink", func(d *Dinode) {
		d.Mode = ModeLnk | 0o777
		d.Clusters = 0
		d.FastSymlink = []byte("../some/target")
		d.Size = uint64(len(d.FastSymlink))
	})
	add("fast symlink with xattr", func(d *Dinode) {
		d.Mode = ModeLnk | 0o777
		d.Clusters = 0
		d.DynFeatures = DynInlineXattr
		d.XattrInlineSize = 256
		d.FastSymlink = bytes.Repeat([]byte{'x'}, FastSymlinkBytes(bs, 256))
		d.Size = uint64(len(d.FastSymlink))
	})
	add("extents", func(d *Dinode) {
		d.Extents = &ExtentList{TreeDepth: 0, Count: uint16(ExtentRecsPerInode(bs, 0)), Recs: []ExtentRec{
			{Cpos: 0, Clusters: 16384, Blkno: 529}, {Cpos: 16384, Clusters: 3, Blkno: 70000, Flags: ExtentUnwritten},
		}}
	})
	add("extents with xattr", func(d *Dinode) {
		d.DynFeatures = DynInlineXattr
		d.XattrInlineSize = 256
		d.Extents = &ExtentList{TreeDepth: 1, Count: uint16(ExtentRecsPerInode(bs, 256)), Recs: []ExtentRec{
			{Cpos: 0, Clusters: 0x12345, Blkno: 81234},
		}}
	})
	add("slow symlink", func(d *Dinode) {
		d.Mode = ModeLnk | 0o777
		d.Clusters = 1
		d.Extents = &ExtentList{Count: uint16(ExtentRecsPerInode(bs, 0)), Recs: []ExtentRec{{Cpos: 0, Clusters: 1, Blkno: 5000}}}
	})
	add("char device", func(d *Dinode) {
		d.Mode = ModeChr | 0o600
		d.Clusters = 0
		if err := d.SetRdev(259, 0x12345); err != nil {
			panic(err)
		}
		d.Extents = &ExtentList{Count: uint16(ExtentRecsPerInode(bs, 0)), Recs: []ExtentRec{}}
	})
	return out
}

func log2(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

func TestDinodeRoundTrip(t *testing.T) {
	for _, bs := range allBlockSizes {
		for name, d := range sampleDinodes(bs) {
			b := make([]byte, bs)
			if err := d.Encode(b); err != nil {
				t.Fatalf("bs %d %s: encode: %v", bs, name, err)
			}
			got, err := DecodeDinode(b)
			if err != nil {
				t.Fatalf("bs %d %s: decode: %v", bs, name, err)
			}
			if diff := cmp.Diff(d, got); diff != "" {
				t.Fatalf("bs %d %s: decode(encode(d)) differs (-want +got):\n%s", bs, name, diff)
			}
			b2 := make([]byte, bs)
			if err := got.Encode(b2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, b2) {
				t.Fatalf("bs %d %s: re-encode differs", bs, name)
			}
			if err := got.SelfCheck(d.Blkno, 0xdeadbeef); (err != nil) != (name == "super") {
				t.Fatalf("bs %d %s: SelfCheck: %v", bs, name, err)
			}
		}
	}
}

// The header fields land at the offsets of struct ocfs2_dinode.
func TestDinodeFieldOffsets(t *testing.T) {
	d := baseDinode()
	d.Extents = &ExtentList{Count: 243}
	b := make([]byte, 4096)
	if err := d.Encode(b); err != nil {
		t.Fatal(err)
	}
	le := func(off, n int) uint64 {
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[off+i])
		}
		return v
	}
	for _, c := range []struct {
		name   string
		off, n int
		want   uint64
	}{
		{"i_generation", 0x08, 4, 0x11223344}, {"i_suballoc_slot", 0x0C, 2, 3}, {"i_suballoc_bit", 0x0E, 2, 77},
		{"i_links_count_hi", 0x10, 2, 2}, {"i_clusters", 0x14, 4, 0x55}, {"i_uid", 0x18, 4, 1000},
		{"i_gid", 0x1C, 4, 1001}, {"i_size", 0x20, 8, 0x1234_5678_9abc}, {"i_mode", 0x28, 2, uint64(ModeReg | 0o640)},
		{"i_links_count", 0x2A, 2, 5}, {"i_flags", 0x2C, 4, 1}, {"i_atime", 0x30, 8, 0x6000_0001},
		{"i_ctime", 0x38, 8, 0x6000_0002}, {"i_mtime", 0x40, 8, 0x6000_0003}, {"i_dtime", 0x48, 8, 0x6000_0004},
		{"i_blkno", 0x50, 8, 70165}, {"i_last_eb_blk", 0x58, 8, 80000}, {"i_fs_generation", 0x60, 4, 0xdeadbeef},
		{"i_atime_nsec", 0x64, 4, 11}, {"i_ctime_nsec", 0x68, 4, 22}, {"i_mtime_nsec", 0x6C, 4, 33},
		{"i_attr", 0x70, 4, 0x10}, {"i_orphaned_slot", 0x74, 2, 2}, {"i_xattr_loc", 0x78, 8, 90000},
		{"i_dx_root", 0x88, 8, 90001}, {"i_refcount_loc", 0x90, 8, 90002}, {"i_suballoc_loc", 0x98, 8, 70164},
		{"i_dio_orphaned_slot", 0xA0, 2, 1}, {"id1", 0xB8, 8, 0x0102030405060708}, {"l_count", 0xC2, 2, 243},
	} {
		if got := le(c.off, c.n); got != c.want {
			t.Errorf("%s at 0x%x = 0x%x, want 0x%x", c.name, c.off, got, c.want)
		}
	}
	if string(b[:8]) != "INODE01\x00" {
		t.Errorf("signature %q", b[:8])
	}
}

func TestSuperBlockFieldOffsets(t *testing.T) {
	d := sampleDinodes(4096)["super"]
	b := make([]byte, 4096)
	if err := d.Encode(b); err != nil {
		t.Fatal(err)
	}
	// Absolute offsets from ondisk-format.md §1.3, verified there by hexdump.
	if string(b[:8]) != "OCFSV2\x00\x00" || b[0xC2] != 90 || b[0xF8] != 12 || b[0x100] != 4 ||
		string(b[0x110:0x113]) != "lbl" || b[0x150] != 0x2f || string(b[0x160:0x164]) != "pcmk" ||
		b[0x164] != 1 || string(b[0x168:0x171]) != "mycluster" || b[0x178] != 0 || b[0x179] != 1 ||
		b[0x17C] != 0x0e || b[0x108] != 3 || b[0xE0] != 0x58 || b[0x102] != 2 {
		t.Fatalf("superblock fields misplaced:\n% x", b[0xC0:0x200])
	}
	if !allZero(b[0x188:]) {
		t.Fatal("reserved area not zero")
	}
}

// With INLINE_XATTR the tail of the block belongs to the xattr code.
func TestDinodeLeavesInlineXattrAreaAlone(t *testing.T) {
	for _, bs := range allBlockSizes {
		for _, name := range []string{"inline dir with xattr", "fast symlink with xattr", "extents with xattr"} {
			d := sampleDinodes(bs)[name]
			b := bytes.Repeat([]byte{0xAB}, bs)
			if err := d.Encode(b); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if tail := b[bs-256:]; !bytes.Equal(tail, bytes.Repeat([]byte{0xAB}, 256)) {
				t.Fatalf("bs %d %s: encode wrote into the inline xattr area", bs, name)
			}
			got, err := DecodeDinode(b)
			if err != nil {
				t.Fatalf("bs %d %s: %v", bs, name, err)
			}
			if diff := cmp.Diff(d, got); diff != "" {
				t.Fatalf("bs %d %s: xattr bytes leaked into id2:\n%s", bs, name, diff)
			}
		}
	}
	// Without INLINE_XATTR the whole rest of the block is id2 and is zeroed.
	d := sampleDinodes(4096)["extents"]
	b := bytes.Repeat([]byte{0xAB}, 4096)
	if err := d.Encode(b); err != nil {
		t.Fatal(err)
	}
	if !allZero(b[0xD0+2*16:]) {
		t.Fatal("unused extent records not zeroed")
	}
}

func corruptField(t *testing.T, err error) string {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a CorruptError", err)
	}
	return ce.Field
}

func TestDinodeRejectsDamage(t *testing.T) {
	enc := func(name string) []byte {
		b := make([]byte, 4096)
		if err := sampleDinodes(4096)[name].Encode(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name, sample, field string
		mutate              func(b []byte) []byte
	}{
		{"signature", "extents", "i_signature", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"short block", "extents", "", func(b []byte) []byte { return b[:300] }},
		{"odd block", "extents", "", func(b []byte) []byte { return b[:3000] }},
		{"xattr size", "extents with xattr", "i_xattr_inline_size", func(b []byte) []byte { b[0x12], b[0x13] = 0xff, 0xff; return b }},
		{"l_count", "extents", "l_count", func(b []byte) []byte { b[0xC2] = 244; return b }},
		{"l_count with xattr", "extents with xattr", "l_count", func(b []byte) []byte { b[0xC2] = 243; return b }},
		{"l_next_free_rec", "extents", "l_next_free_rec", func(b []byte) []byte { b[0xC4] = 250; return b }},
		{"l_tree_depth", "extents", "l_tree_depth", func(b []byte) []byte { b[0xC0] = 9; return b }},
		{"cl_count", "chain", "cl_count", func(b []byte) []byte { b[0xC4] = 244; return b }},
		{"cl_next_free_rec", "chain", "cl_next_free_rec", func(b []byte) []byte { b[0xC6] = 244; return b }},
		{"tl_count", "truncate log", "tl_count", func(b []byte) []byte { b[0xC0], b[0xC1] = 0xe8, 0x01; return b }},
		{"tl_used", "truncate log", "tl_used", func(b []byte) []byte { b[0xC2], b[0xC3] = 0xe8, 0x01; return b }},
		{"la_size", "local alloc", "la_size", func(b []byte) []byte { b[0xC4], b[0xC5] = 0x31, 0x0f; return b }},
		{"id_count", "inline file", "id_count", func(b []byte) []byte { b[0xC0], b[0xC1] = 0x39, 0x0f; return b }},
		{"id_count with xattr", "inline dir with xattr", "id_count", func(b []byte) []byte { b[0xC0], b[0xC1] = 0x38, 0x0f; return b }},
		{"superblock under xattr", "super", "", func(b []byte) []byte {
			b[0x76] = byte(DynInlineXattr)
			b[0x12], b[0x13] = 0x00, 0x0f
			return b
		}},
	}
	for _, c := range cases {
		b := c.mutate(enc(c.sample))
		_, err := DecodeDinode(b)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want a corruption error", c.name, err)
			continue
		}
		if f := corruptField(t, err); f != c.field {
			t.Errorf("%s: error names field %q, want %q (%v)", c.name, f, c.field, err)
		}
	}
}

func TestDinodeSelfCheck(t *testing.T) {
	d := sampleDinodes(4096)["extents"]
	for _, c := range []struct {
		field  string
		mutate func(d *Dinode)
		blkno  uint64
		gen    uint32
	}{
		{"i_flags", func(d *Dinode) { d.Flags = 0 }, 70165, 0xdeadbeef},
		{"i_blkno", func(d *Dinode) {}, 70166, 0xdeadbeef},
		{"i_fs_generation", func(d *Dinode) {}, 70165, 1},
		{"i_signature", func(d *Dinode) { d.Signature = "garbage!" }, 70165, 0xdeadbeef},
		{"i_signature", func(d *Dinode) { d.Signature = SuperBlockSignature }, 70165, 0xdeadbeef},
	} {
		x := *d
		c.mutate(&x)
		if f := corruptField(t, x.SelfCheck(c.blkno, c.gen)); f != c.field {
			t.Errorf("SelfCheck names %q, want %q", f, c.field)
		}
	}
}

func TestDinodeEncodeRefusesInconsistentUnions(t *testing.T) {
	bs := 4096
	for name, mutate := range map[string]func(d *Dinode){
		"two variants":          func(d *Dinode) { d.Chain = &ChainList{Count: 1} },
		"no variant":            func(d *Dinode) { d.Extents = nil },
		"variant against flags": func(d *Dinode) { d.Flags |= InodeChain },
		"too many records":      func(d *Dinode) { d.Extents.Count = 244 },
		"records over count":    func(d *Dinode) { d.Extents.Count = 1 },
		"extents under xattr": func(d *Dinode) {
			d.DynFeatures = DynInlineXattr
			d.XattrInlineSize = 256
		},
		"bad signature": func(d *Dinode) { d.Signature = "INODE02\x00" },
	} {
		d := sampleDinodes(bs)["extents"]
		mutate(d)
		b := bytes.Repeat([]byte{0x5A}, bs)
		if err := d.Encode(b); err == nil {
			t.Errorf("%s: encode accepted it", name)
		} else if errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: encode error %v is in the corruption class", name, err)
		}
		if !bytes.Equal(b, bytes.Repeat([]byte{0x5A}, bs)) {
			t.Errorf("%s: failed encode wrote to the block", name)
		}
	}
	// Empty signature encodes as an ordinary inode.
	d := sampleDinodes(bs)["extents"]
	d.Signature = ""
	b := make([]byte, bs)
	if err := d.Encode(b); err != nil || string(b[:8]) != InodeSignature {
		t.Fatalf("empty signature: %v %q", err, b[:8])
	}
}

func TestID2KindPrecedence(t *testing.T) {
	for _, c := range []struct {
		d    Dinode
		want ID2Kind
	}{
		{Dinode{Flags: InodeSuperBlock | InodeChain}, ID2Super},
		{Dinode{Signature: SuperBlockSignature}, ID2Super},
		{Dinode{Flags: InodeLocalAlloc | InodeChain | InodeBitmap}, ID2LocalAlloc},
		{Dinode{Flags: InodeChain | InodeDealloc}, ID2Chain},
		{Dinode{Flags: InodeDealloc, DynFeatures: DynInlineData}, ID2TruncateLog},
		{Dinode{Mode: ModeLnk, Size: 5, DynFeatures: DynInlineData}, ID2Inline},
		{Dinode{Mode: ModeLnk, Size: 5}, ID2FastSymlink},
		{Dinode{Mode: ModeLnk, Size: 0}, ID2Extents},
		{Dinode{Mode: ModeLnk, Size: 5000, Clusters: 1}, ID2Extents},
		{Dinode{Mode: ModeReg}, ID2Extents},
	} {
		if got := c.d.ID2Kind(); got != c.want {
			t.Errorf("%+v: ID2Kind %v, want %v", c.d, got, c.want)
		}
	}
}

func TestRdevPacking(t *testing.T) {
	// Values of the kernel's new_encode_dev/huge_encode_dev.
	for _, c := range []struct {
		major, minor uint32
		raw          uint64
	}{
		{1, 3, 0x103},                // /dev/null
		{8, 17, 0x811},               // /dev/sdb1
		{259, 0x12345, 0x12310345},   // a large minor
		{0xfff, 0xfffff, 0xffffffff}, // the largest
	} {
		var d Dinode
		if err := d.SetRdev(c.major, c.minor); err != nil {
			t.Fatal(err)
		}
		if d.ID1 != c.raw {
			t.Errorf("%d:%d packs to 0x%x, want 0x%x", c.major, c.minor, d.ID1, c.raw)
		}
		if ma, mi := d.Rdev(); ma != c.major || mi != c.minor {
			t.Errorf("0x%x unpacks to %d:%d", c.raw, ma, mi)
		}
	}
	var d Dinode
	if d.SetRdev(0x1000, 0) == nil || d.SetRdev(0, 0x100000) == nil {
		t.Error("oversized device numbers accepted")
	}
}

func TestID1Views(t *testing.T) {
	var d Dinode
	d.SetBitmap(Bitmap{Used: 7, Total: 9})
	if d.ID1 != 9<<32|7 || d.Bitmap() != (Bitmap{7, 9}) {
		t.Fatalf("bitmap id1 0x%x", d.ID1)
	}
	d.SetJournal(Journal{Flags: JournalDirty, RecoveryGeneration: 4})
	if d.ID1 != 4<<32|1 || d.Journal() != (Journal{JournalDirty, 4}) {
		t.Fatalf("journal id1 0x%x", d.ID1)
	}
}

func TestCapacities(t *testing.T) {
	// ondisk-format.md §2.
	want := map[int][6]int{ // extent, chain, truncate, local alloc, inline, symlink
		4096: {243, 243, 487, 3888, 3896, 3904},
		2048: {115, 115, 231, 1840, 1848, 1856},
		1024: {51, 51, 103, 816, 824, 832},
		512:  {19, 19, 39, 304, 312, 320},
	}
	for bs, w := range want {
		got := [6]int{ExtentRecsPerInode(bs, 0), ChainRecsPerInode(bs), TruncateRecsPerInode(bs),
			LocalAllocBitmapBytes(bs), InlineDataBytes(bs, 0), FastSymlinkBytes(bs, 0)}
		if got != w {
			t.Errorf("bs %d: capacities %v, want %v", bs, got, w)
		}
	}
	if ExtentRecsPerInode(4096, 256) != 227 || InlineDataBytes(4096, 256) != 3640 {
		t.Error("inline-xattr capacities wrong")
	}
}

func TestFileTypes(t *testing.T) {
	for mode, ft := range map[uint16]uint8{
		ModeReg | 0o644: 1, ModeDir | 0o755: 2, ModeChr: 3, ModeBlk: 4, ModeFifo: 5, ModeSock: 6, ModeLnk | 0o777: 7, 0o644: 0,
	} {
		d := Dinode{Mode: mode}
		if d.FileType() != ft {
			t.Errorf("mode 0%o: file type %d, want %d", mode, d.FileType(), ft)
		}
	}
	d := Dinode{Mode: ModeDir | 0o755}
	if !d.IsDir() || d.IsReg() || d.IsLnk() {
		t.Error("mode predicates")
	}
}

func FuzzDecodeDinode(f *testing.F) {
	for _, bs := range allBlockSizes {
		for _, d := range sampleDinodes(bs) {
			b := make([]byte, bs)
			if err := d.Encode(b); err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDinode(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error outside the corruption class: %v", err)
			}
			return
		}
		_ = d.SelfCheck(d.Blkno, d.FSGeneration)
		_, _ = d.Rdev()
		if d.Super != nil {
			_ = ValidateSuperBlock(d, len(data))
			_ = d.Super.BlocksPerCluster()
		}
		out := append([]byte(nil), data...) // keeps any inline xattr area
		if err := d.Encode(out); err != nil {
			t.Fatalf("encode of a decoded dinode fails: %v", err)
		}
		d2, err := DecodeDinode(out)
		if err != nil {
			t.Fatalf("re-decode fails: %v", err)
		}
		if diff := cmp.Diff(d, d2); diff != "" {
			t.Fatalf("decode(encode(x)) != x:\n%s", diff)
		}
	})
}

func TestLocalAllocTest(t *testing.T) {
	l := &LocalAlloc{Bitmap: []byte{0x81, 0x01}}
	for i, want := range map[int]bool{0: true, 1: false, 7: true, 8: true, 9: false, 16: false, -1: false} {
		if l.Test(i) != want {
			t.Errorf("Test(%d) != %v", i, want)
		}
	}
}
