package ondisk

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

func TestUUIDHashVector(t *testing.T) {
	// UUID and s_uuid_hash of a volume made by mkfs.ocfs2 1.8.7 (debugfs "stats").
	raw, _ := hex.DecodeString("3814E31745F74BF3AFC20B9ADAA77208")
	var u [16]byte
	copy(u[:], raw)
	if h := UUIDHash(u); h != 0xce9bc0c7 {
		t.Fatalf("uuid hash 0x%08x, want 0xce9bc0c7", h)
	}
}

func TestXattrNameHash(t *testing.T) {
	if XattrNameHash(0x1234, nil, SignedChar) != 0x1234 {
		t.Error("empty name (ACLs) must hash to the uuid hash")
	}
	// h = rotl5(h) ^ c, by hand for "ab" from 1.
	h := uint32(1)
	h = h<<5 ^ h>>27 ^ 'a'
	h = h<<5 ^ h>>27 ^ 'b'
	if got := XattrNameHash(1, []byte("ab"), SignedChar); got != h {
		t.Errorf("got 0x%x want 0x%x", got, h)
	}
	// A high byte: signed chars xor in 0xFFFFFFxx.
	s := XattrNameHash(0, []byte{0xE9}, SignedChar)
	u := XattrNameHash(0, []byte{0xE9}, UnsignedChar)
	if s != 0xFFFFFFE9 || u != 0xE9 {
		t.Errorf("signed 0x%x unsigned 0x%x", s, u)
	}
}

func TestXattrNames(t *testing.T) {
	for full, want := range map[string]struct {
		idx    uint8
		suffix string
		ok     bool
	}{
		"user.foo":                 {XattrIndexUser, "foo", true},
		"trusted.x":                {XattrIndexTrusted, "x", true},
		"security.selinux":         {XattrIndexSecurity, "selinux", true},
		"system.posix_acl_access":  {XattrIndexPosixACLAccess, "", true},
		"system.posix_acl_default": {XattrIndexPosixACLDefault, "", true},
		"user.":                    {0, "", false},
		"system.other":             {0, "", false},
		"foo":                      {0, "", false},
	} {
		i, s, ok := SplitXattrName(full)
		if i != want.idx || s != want.suffix || ok != want.ok {
			t.Errorf("%q: %d %q %v", full, i, s, ok)
			continue
		}
		if ok {
			if j, _ := JoinXattrName(i, s); j != full {
				t.Errorf("join %d %q = %q", i, s, j)
			}
		}
	}
}

// sampleXattrHeader lays three attributes out from the end of an area of n
// bytes, as the kernel packs them.
func sampleXattrHeader(n int, uuidHash uint32) *XattrHeader {
	root := NewXattrValueRoot()
	root.Clusters = 1
	root.List.Recs = []ExtentRec{{Cpos: 0, Clusters: 1, Blkno: 12345}}
	acl := EncodeOCFS2ACL([]ACLEntry{{ACLUserObj, 6, 0}, {ACLUser, 4, 1000}, {ACLGroupObj, 4, 0}, {ACLMask, 4, 0}, {ACLOther, 0, 0}})
	es := []XattrEntry{
		{Type: XattrIndexUser | XattrEntryLocal, Name: []byte("foo"), Value: []byte("bar"), ValueSize: 3},
		{Type: XattrIndexPosixACLAccess | XattrEntryLocal, Name: []byte{}, Value: acl, ValueSize: uint64(len(acl))},
		{Type: XattrIndexTrusted, Name: []byte("big\xe9"), Root: root, ValueSize: 5000},
	}
	off := n
	for i := range es {
		e := &es[i]
		e.NameHash = XattrNameHash(uuidHash, e.Name, SignedChar)
		off -= e.StoredSize()
		e.NameOffset = uint16(off)
	}
	return &XattrHeader{FreeStart: uint16(off), NameValueLen: uint16(n - off), Entries: es}
}

func TestXattrHeaderRoundTrip(t *testing.T) {
	for _, n := range []int{256, 512 - 0x30, 4096 - 0x30, XattrBucketSize} {
		h := sampleXattrHeader(n, 0xce9bc0c7)
		if err := h.Validate(n); err != nil {
			t.Fatal(err)
		}
		area := make([]byte, n)
		h.Encode(area)
		d, err := DecodeXattrHeader(area, structXattrHeader)
		if err != nil {
			t.Fatalf("area %d: %v", n, err)
		}
		out := make([]byte, n)
		d.Encode(out)
		if !bytes.Equal(area, out) {
			t.Fatalf("area %d: re-encode differs", n)
		}
		if string(d.Entries[0].Value) != "bar" || d.Entries[2].Local() || d.Entries[2].Root.List.Recs[0].Blkno != 12345 {
			t.Fatalf("decoded %+v", d.Entries)
		}
		acl, err := DecodeOCFS2ACL(d.Entries[1].Value)
		if err != nil || len(acl) != 5 || acl[1].ID != 1000 {
			t.Fatalf("acl %+v %v", acl, err)
		}
		if err := d.CheckNameHashes(0xce9bc0c7, SignedChar, "x"); err != nil {
			t.Fatal(err)
		}
		if err := d.CheckNameHashes(0xce9bc0c7, UnsignedChar, "x"); !errors.Is(err, ErrCorrupt) {
			t.Fatal("a high-byte name hashed unsigned still matches")
		}
		name, stored, err := XattrEntryBytes(area, 0)
		if err != nil || string(name) != "foo" || string(stored) != "bar" {
			t.Fatalf("XattrEntryBytes: %q %q %v", name, stored, err)
		}
		if want := int(h.FreeStart) - (XattrHeaderSize + 3*XattrEntrySize); d.FreeSpace(n) != want {
			t.Fatalf("free space %d, want %d", d.FreeSpace(n), want)
		}
	}
}

func TestXattrBlockRoundTrip(t *testing.T) {
	for _, bs := range blockSizes {
		for _, indexed := range []bool{false, true} {
			x := &XattrBlock{SuballocSlot: 1, SuballocBit: 3, FSGeneration: 0xabc, Blkno: 777, SuballocLoc: 770}
			if indexed {
				x.Flags = XattrBlockIndexed
				x.Tree = &XattrTreeRoot{Clusters: 2, LastEBBlk: 0, List: ExtentList{Count: uint16(XattrTreeRootCapacity(bs)),
					Recs: []ExtentRec{{Cpos: 0, Clusters: 1, Blkno: 5000}, {Cpos: 0x7fff0000, Clusters: 1, Blkno: 6000}}}}
			} else {
				x.Header = sampleXattrHeader(bs-XattrBlockAttrsOffset, 42)
			}
			b := make([]byte, bs)
			x.Encode(b)
			SetBlockCheck(b, XattrBlockCheckOffset)
			d, err := DecodeXattrBlock(b)
			if err != nil {
				t.Fatalf("bs %d indexed %v: %v", bs, indexed, err)
			}
			b2 := make([]byte, bs)
			d.Encode(b2)
			SetBlockCheck(b2, XattrBlockCheckOffset)
			if !bytes.Equal(b, b2) {
				t.Fatalf("bs %d indexed %v: re-encode differs", bs, indexed)
			}
			if d.Indexed() != indexed || d.SelfCheck(777, 0xabc) != nil {
				t.Fatalf("decoded %+v", d)
			}
			if !indexed && binary.LittleEndian.Uint64(b[XattrBlockAttrsOffset+XattrBucketCheckOff:]) != 0 {
				t.Fatal("the header's xh_check must stay 0 in a block")
			}
		}
	}
}

func TestXattrBucket(t *testing.T) {
	h := sampleXattrHeader(XattrBucketSize, 7)
	h.NumBuckets = 1
	// Buckets keep entries sorted by hash.
	for i := 0; i < len(h.Entries); i++ {
		for j := i + 1; j < len(h.Entries); j++ {
			if h.Entries[j].NameHash < h.Entries[i].NameHash {
				h.Entries[i], h.Entries[j] = h.Entries[j], h.Entries[i]
			}
		}
	}
	bucket := make([]byte, XattrBucketSize)
	h.Encode(bucket)
	SetBlockCheck(bucket, XattrBucketCheckOff)
	if _, err := DecodeXattrBucket(bucket); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyBlockCheck(bucket, XattrBucketCheckOff, structXattrBucket); err != nil {
		t.Fatal(err)
	}
	if XattrBucketBlocks(512) != 8 || XattrBucketBlocks(4096) != 1 {
		t.Fatal("bucket blocks")
	}
	h.Entries[0], h.Entries[1] = h.Entries[1], h.Entries[0]
	h.Encode(bucket)
	if _, err := DecodeXattrBucket(bucket); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unsorted bucket: %v", err)
	}
	if _, err := DecodeXattrBucket(bucket[:4000]); !errors.Is(err, ErrCorrupt) {
		t.Fatal("short bucket accepted")
	}
}

func TestInodeInlineXattrArea(t *testing.T) {
	ino := make([]byte, 4096)
	a, err := InodeInlineXattrArea(ino, 256)
	if err != nil || len(a) != 256 || &a[0] != &ino[4096-256] {
		t.Fatalf("area: %v", err)
	}
	for _, n := range []uint16{0, 8, 4096 - 0xC0 + 1, 0xFFFF} {
		if _, err := InodeInlineXattrArea(ino, n); !errors.Is(err, ErrCorrupt) {
			t.Errorf("size %d accepted", n)
		}
	}
}

func TestXattrHeaderHostileOffsets(t *testing.T) {
	const n = 256
	good := make([]byte, n)
	sampleXattrHeader(n, 1).Encode(good)
	e0 := XattrHeaderSize // first entry
	for name, c := range map[string]struct {
		mutate func([]byte)
		field  string
	}{
		"count overruns area":     {func(b []byte) { binary.LittleEndian.PutUint16(b, 200) }, "xh_count"},
		"name offset in table":    {func(b []byte) { binary.LittleEndian.PutUint16(b[e0+4:], 20) }, "xh_entries[0].xe_name_offset"},
		"name offset past end":    {func(b []byte) { binary.LittleEndian.PutUint16(b[e0+4:], 0xFFF0) }, "xh_entries[0].xe_name_offset"},
		"value runs past end":     {func(b []byte) { binary.LittleEndian.PutUint16(b[e0+4:], n-4) }, "xh_entries[0].xe_name_offset"},
		"local value too big":     {func(b []byte) { binary.LittleEndian.PutUint64(b[e0+8:], 81) }, "xh_entries[0].xe_value_size"},
		"huge value size":         {func(b []byte) { binary.LittleEndian.PutUint64(b[e0+8:], 1<<63) }, "xh_entries[0].xe_value_size"},
		"non-local tiny value":    {func(b []byte) { b[e0+7] &^= XattrEntryLocal }, "xh_entries[0].xe_value_size"},
		"unknown prefix":          {func(b []byte) { b[e0+7] = XattrEntryLocal | 9 }, "xh_entries[0].xe_type"},
		"empty user name":         {func(b []byte) { b[e0+6] = 0 }, "xh_entries[0].xe_name_len"},
		"bad value root l_count":  {func(b []byte) { o := binary.LittleEndian.Uint16(b[e0+32+4:]); b[int(o)+4+0x12] = 9 }, "xh_entries[2].l_count"},
		"value root next_free":    {func(b []byte) { o := binary.LittleEndian.Uint16(b[e0+32+4:]); b[int(o)+4+0x14] = 2 }, "xh_entries[2].l_next_free_rec"},
		"name length past end":    {func(b []byte) { b[e0+6] = 255 }, "xh_entries[0].xe_name_offset"},
		"area shorter than table": {func(b []byte) { binary.LittleEndian.PutUint16(b, 16) }, "xh_count"},
	} {
		b := append([]byte(nil), good...)
		c.mutate(b)
		_, err := DecodeXattrHeader(b, "inline xattr area")
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Field != c.field || ce.Struct != "inline xattr area" {
			t.Errorf("%s: got %v, want a corruption of %q", name, err, c.field)
		}
	}
	if _, err := DecodeXattrHeader(good[:10], "x"); !errors.Is(err, ErrCorrupt) {
		t.Error("tiny area accepted")
	}
}

func TestXattrBlockRejectsDamage(t *testing.T) {
	b := make([]byte, 1024)
	(&XattrBlock{Flags: XattrBlockIndexed, Tree: &XattrTreeRoot{List: ExtentList{Count: uint16(XattrTreeRootCapacity(1024))}}}).Encode(b)
	c := append([]byte(nil), b...)
	c[0] = 'Y'
	if _, err := DecodeXattrBlock(c); !errors.Is(err, ErrCorrupt) {
		t.Error("bad signature accepted")
	}
	c = append([]byte(nil), b...)
	c[0x30+0x12] = 0xff
	if _, err := DecodeXattrBlock(c); !errors.Is(err, ErrCorrupt) {
		t.Error("bad tree l_count accepted")
	}
	d, _ := DecodeXattrBlock(b)
	if d.SelfCheck(1, 0) == nil {
		t.Error("wrong xb_blkno accepted")
	}
}

func TestXattrHeaderValidate(t *testing.T) {
	h := sampleXattrHeader(256, 1)
	h.Entries[1].NameOffset = h.Entries[0].NameOffset + 4
	if err := h.Validate(256); err == nil {
		t.Error("overlap accepted")
	}
	h = sampleXattrHeader(256, 1)
	h.Entries[0].Value = []byte("toolong")
	if err := h.Validate(256); err == nil {
		t.Error("value/size mismatch accepted")
	}
	h = sampleXattrHeader(256, 1)
	h.Entries[2].Root = nil
	if err := h.Validate(256); err == nil {
		t.Error("non-local entry without a root accepted")
	}
}

func FuzzDecodeXattrHeader(f *testing.F) {
	for _, n := range []int{64, 256, 4096} {
		b := make([]byte, n)
		if n >= 256 {
			sampleXattrHeader(n, 1).Encode(b)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := DecodeXattrHeader(data, structXattrHeader)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		for i := range h.Entries {
			if _, _, err := XattrEntryBytes(data, i); err != nil {
				t.Fatalf("entry %d decoded but not located: %v", i, err)
			}
		}
		h.CheckSortedByHash("x")
		h.FreeSpace(len(data))
		if h.Validate(len(data)) != nil {
			return // overlapping names are decodable but not encodable
		}
		out := make([]byte, len(data))
		h.Encode(out)
		h2, err := DecodeXattrHeader(out, structXattrHeader)
		if err != nil || !reflect.DeepEqual(h2, h) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzDecodeXattrBlock(f *testing.F) {
	b := make([]byte, 512)
	(&XattrBlock{Header: sampleXattrHeader(512-XattrBlockAttrsOffset, 3)}).Encode(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := DecodeXattrBlock(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		if !x.Indexed() && x.Header.Validate(len(data)-XattrBlockAttrsOffset) != nil {
			return
		}
		out := make([]byte, len(data))
		x.Encode(out)
		if _, err := DecodeXattrBlock(out); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
