package ondisk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestDirTrailerRoundTrip(t *testing.T) {
	for _, bs := range blockSizes {
		b := make([]byte, bs)
		InitDirArea(DirEntryArea(b, true), 70, 5)
		tr := &DirTrailer{FreeRecLen: 123, FreeNext: 999, Blkno: 4242, ParentDinode: 70}
		tr.Encode(b)
		SetBlockCheck(b, DirBlockCheckOffset(bs))
		if !HasDirTrailerSignature(b) {
			t.Fatalf("bs %d: no signature", bs)
		}
		d, err := DecodeDirTrailer(b)
		if err != nil {
			t.Fatalf("bs %d: %v", bs, err)
		}
		if *d != *tr {
			t.Fatalf("bs %d: decoded %+v, want %+v", bs, d, tr)
		}
		if err := d.SelfCheck(4242, 70); err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyBlockCheck(b, DirBlockCheckOffset(bs), structDirTrailer); err != nil {
			t.Fatalf("bs %d: %v", bs, err)
		}
		// Offsets are the real ones, not the upstream comments'.
		off := TrailerOffset(bs)
		if binary.LittleEndian.Uint16(b[off+0x0E:]) != 123 || binary.LittleEndian.Uint64(b[off+0x28:]) != 4242 ||
			binary.LittleEndian.Uint64(b[off+0x30:]) != 70 || binary.LittleEndian.Uint64(b[off+0x20:]) != 999 {
			t.Fatalf("bs %d: fields at the wrong offsets", bs)
		}
		b2 := make([]byte, bs)
		copy(b2, b)
		d.Encode(b2)
		SetBlockCheck(b2, DirBlockCheckOffset(bs))
		if !bytes.Equal(b, b2) {
			t.Fatalf("bs %d: re-encode differs", bs)
		}
	}
	if !DirHasTrailer(true, false, false) || !DirHasTrailer(false, false, true) ||
		DirHasTrailer(false, false, false) || DirHasTrailer(true, true, true) {
		t.Error("DirHasTrailer rule")
	}
}

func TestDirTrailerRejectsDamage(t *testing.T) {
	b := make([]byte, 1024)
	(&DirTrailer{Blkno: 1, ParentDinode: 2}).Encode(b)
	off := TrailerOffset(1024)
	for name, c := range map[string]struct {
		mutate func([]byte)
		field  string
	}{
		"signature": {func(b []byte) { b[off+0x10] = 'X' }, "db_signature"},
		"inode":     {func(b []byte) { b[off] = 1 }, "db_compat_inode"},
		"rec_len":   {func(b []byte) { b[off+8] = 60 }, "db_compat_rec_len"},
		"short":     {nil, ""},
	} {
		c2 := append([]byte(nil), b...)
		if c.mutate == nil {
			c2 = c2[:100]
		} else {
			c.mutate(c2)
		}
		_, err := DecodeDirTrailer(c2)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%s: got %v, want a corruption of %q", name, err, c.field)
		}
	}
	d, _ := DecodeDirTrailer(b)
	if err := d.SelfCheck(3, 2); !errors.Is(err, ErrCorrupt) {
		t.Error("wrong db_blkno accepted")
	}
	if err := d.SelfCheck(1, 3); !errors.Is(err, ErrCorrupt) {
		t.Error("wrong db_parent_dinode accepted")
	}
}

func FuzzDecodeDirTrailer(f *testing.F) {
	b := make([]byte, 512)
	(&DirTrailer{Blkno: 1, ParentDinode: 2}).Encode(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDirTrailer(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		out := make([]byte, len(data))
		d.Encode(out)
		d2, err := DecodeDirTrailer(out)
		if err != nil || *d2 != *d {
			t.Fatalf("re-decode: %+v %v", d2, err)
		}
	})
}
