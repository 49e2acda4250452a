package ondisk

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Fuzz targets for the decoders the per-structure fuzzers did not reach:
// xattr buckets and value roots, bare extent lists, inline xattr areas,
// the metaecc check (corrected bits must really be corrected, two flipped
// bits must never be "corrected" into something else) and feature lists.
// Each decoder must return a CorruptError or a value that re-encodes to
// something it decodes again; none may panic.

// corruptOnly fails t when err is outside the corruption class.
func corruptOnly(t *testing.T, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error outside the corruption class: %v", err)
	}
	return err == nil
}

func FuzzDecodeXattrBucket(f *testing.F) {
	b := make([]byte, XattrBucketSize)
	h := sampleXattrHeader(XattrBucketSize, 0xce9bc0c7)
	h.Entries = append(h.Entries[:0:0], h.Entries...)
	// A bucket keeps its entries sorted by name hash.
	for i := 1; i < len(h.Entries); i++ {
		for j := i; j > 0 && h.Entries[j].NameHash < h.Entries[j-1].NameHash; j-- {
			h.Entries[j], h.Entries[j-1] = h.Entries[j-1], h.Entries[j]
		}
	}
	h.NumBuckets = 1
	h.Encode(b)
	f.Add(b)
	f.Add(b[:100])
	f.Fuzz(func(t *testing.T, data []byte) {
		bucket := make([]byte, XattrBucketSize)
		copy(bucket, data)
		h, err := DecodeXattrBucket(bucket)
		if !corruptOnly(t, err) {
			return
		}
		for i := range h.Entries {
			if _, _, err := XattrEntryBytes(bucket, i); err != nil {
				t.Fatalf("entry %d decoded but not located: %v", i, err)
			}
		}
		if h.CheckSortedByHash(structXattrBucket) != nil {
			t.Fatal("a decoded bucket is not sorted by hash")
		}
		if h.Validate(len(bucket)) != nil {
			return // overlapping names decode but do not encode
		}
		out := make([]byte, len(bucket))
		h.Encode(out)
		h2, err := DecodeXattrBucket(out)
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzDecodeXattrValueRoot(f *testing.F) {
	r := NewXattrValueRoot()
	r.Clusters = 3
	r.List.Recs = []ExtentRec{{Cpos: 0, Clusters: 3, Blkno: 777}}
	b := make([]byte, XattrValueRootSize)
	r.Encode(b)
	f.Add(b)
	f.Add(b[:20])
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeXattrValueRoot(data)
		if !corruptOnly(t, err) {
			return
		}
		out := make([]byte, len(data))
		r.Encode(out)
		r2, err := DecodeXattrValueRoot(out)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzDecodeExtentList(f *testing.F) {
	eb := sampleExtentBlock(512)
	b := make([]byte, 512)
	eb.List.Encode(b)
	f.Add(b)
	f.Add(b[:ExtentListHeaderSize])
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeExtentList(data, "fuzzed list")
		if !corruptOnly(t, err) {
			return
		}
		if err != nil && !strings.Contains(err.Error(), "fuzzed list") {
			t.Fatalf("error does not name the holder: %v", err)
		}
		l.CheckOrder("fuzzed list")
		l.Find(12345)
		out := make([]byte, len(data))
		l.Encode(out)
		l2, err := DecodeExtentList(out, "fuzzed list")
		if err != nil || !reflect.DeepEqual(l, l2) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzInlineXattrArea(f *testing.F) {
	for _, bs := range []int{512, 4096} {
		blk := make([]byte, bs)
		sampleXattrHeader(256, 1).Encode(blk[bs-256:])
		f.Add(blk, uint16(256))
	}
	f.Fuzz(func(t *testing.T, block []byte, inlineSize uint16) {
		area, err := InodeInlineXattrArea(block, inlineSize)
		if !corruptOnly(t, err) {
			return
		}
		h, err := DecodeXattrHeader(area, structXattrInline)
		if !corruptOnly(t, err) {
			return
		}
		for i := range h.Entries {
			if _, _, err := XattrEntryBytes(area, i); err != nil {
				t.Fatalf("entry %d decoded but not located: %v", i, err)
			}
		}
	})
}

// FuzzBlockCheck: on any block, Verify answers without panicking; a block
// whose check was just set verifies; one flipped bit outside the check
// field is corrected back to the original; two flipped bits are an error
// that leaves the block as it was given.
func FuzzBlockCheck(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0xA5}, 512), uint16(100), uint16(7), uint16(3000), uint16(2))
	f.Add(make([]byte, 4096), uint16(0), uint16(0), uint16(32767), uint16(5))
	f.Fuzz(func(t *testing.T, data []byte, checkAt, bit1, bit2, _ uint16) {
		if len(data) < 64 || len(data) > 4096 {
			return
		}
		off := int(checkAt) % (len(data) - BlockCheckSize + 1)
		raw := append([]byte(nil), data...)
		if _, err := VerifyBlockCheck(raw, off, "fuzzed block"); !corruptOnly(t, err) {
			// the random check may match by chance; nothing more to see
		}
		b := append([]byte(nil), data...)
		SetBlockCheck(b, off)
		orig := append([]byte(nil), b...)
		if corrected, err := VerifyBlockCheck(b, off, "fuzzed block"); err != nil || corrected {
			t.Fatalf("fresh check: corrected=%v err=%v", corrected, err)
		}
		inCheck := func(bit int) bool { return bit/8 >= off && bit/8 < off+BlockCheckSize }
		nbits := len(b) * 8
		b1, b2 := int(bit1)%nbits, int(bit2)%nbits
		if inCheck(b1) {
			return
		}
		b[b1/8] ^= 1 << (b1 % 8)
		corrected, err := VerifyBlockCheck(b, off, "fuzzed block")
		if err != nil || !corrected || !bytes.Equal(b, orig) {
			t.Fatalf("one flipped bit %d: corrected=%v err=%v, restored=%v", b1, corrected, err, bytes.Equal(b, orig))
		}
		if b2 == b1 || inCheck(b2) {
			return
		}
		b[b1/8] ^= 1 << (b1 % 8)
		b[b2/8] ^= 1 << (b2 % 8)
		damaged := append([]byte(nil), b...)
		corrected, err = VerifyBlockCheck(b, off, "fuzzed block")
		if err == nil || corrected {
			t.Fatalf("two flipped bits %d and %d passed the check (corrected=%v)", b1, b2, corrected)
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "fuzzed block") {
			t.Fatalf("two flipped bits: %v", err)
		}
		if !bytes.Equal(b, damaged) {
			t.Fatal("a failed correction changed the block")
		}
	})
}

func FuzzParseFeatureList(f *testing.F) {
	f.Add("sparse,noinline-data")
	f.Add("no,nono,,metaecc , local")
	settable := Features{}
	for _, fi := range KnownFeatures {
		if fi.Settable {
			settable.Set(fi.Category, fi.Bit, true)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		on, off, err := ParseFeatureList(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error that says nothing")
			}
			return
		}
		for _, x := range []Features{on, off} {
			if x.Compat&^settable.Compat != 0 || x.Incompat&^settable.Incompat != 0 || x.RoCompat&^settable.RoCompat != 0 {
				t.Fatalf("%q parsed to bits no settable feature has: on %+v off %+v", s, on, off)
			}
		}
	})
}
