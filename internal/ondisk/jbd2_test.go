package ondisk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func sampleJournalSB(bs int) *JournalSuperBlock {
	s := &JournalSuperBlock{BlockType: JBD2SuperblockV2, BlockSize: uint32(bs), MaxLen: 16384, First: 1,
		SSequence: 1, Start: 1, FeatureIncompat: JBD2FeatureIncompat64Bit | JBD2FeatureIncompatRevoke,
		Users: make([][16]byte, 1)}
	copy(s.UUID[:], "0123456789abcdef")
	return s
}

func TestJournalSuperBlockRoundTrip(t *testing.T) {
	for _, bs := range blockSizes {
		s := sampleJournalSB(bs)
		b := make([]byte, max(bs, JournalSuperBlockSize)) // 512-byte journals: blocks 0 and 1
		s.Encode(b)
		if binary.BigEndian.Uint32(b) != JBD2Magic || binary.BigEndian.Uint32(b[0x0C:]) != uint32(bs) ||
			binary.BigEndian.Uint32(b[0x40:]) != 1 || !bytes.Equal(b[0x30:0x40], s.UUID[:]) {
			t.Fatalf("bs %d: fields at the wrong offsets", bs)
		}
		d, err := DecodeJournalSuperBlock(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(d, s) {
			t.Fatalf("decoded %+v\nwant %+v", d, s)
		}
		b2 := make([]byte, len(b))
		d.Encode(b2)
		if !bytes.Equal(b, b2) {
			t.Fatal("re-encode differs")
		}
		if d.CheckFor(bs, 16384) != nil || d.CheckFor(bs*2, 16384) == nil || d.CheckFor(bs, 100) == nil {
			t.Fatal("CheckFor")
		}
		if !d.Has64Bit() || d.UnsupportedIncompat() != 0 || d.Clean() {
			t.Fatal("feature helpers")
		}
	}
	s := sampleJournalSB(4096)
	s.FeatureIncompat |= JBD2FeatureIncompatCsumV3
	if s.UnsupportedIncompat() != JBD2FeatureIncompatCsumV3 {
		t.Fatal("csum v3 must be unsupported")
	}
}

func TestJournalSuperBlockRejectsDamage(t *testing.T) {
	b := make([]byte, 4096)
	sampleJournalSB(4096).Encode(b)
	be := binary.BigEndian
	for name, c := range map[string]struct {
		mutate func([]byte)
		field  string
	}{
		"magic":      {func(b []byte) { b[0] = 0 }, "h_magic"},
		"block type": {func(b []byte) { be.PutUint32(b[4:], JBD2CommitBlock) }, "h_blocktype"},
		"nr_users":   {func(b []byte) { be.PutUint32(b[0x40:], 49) }, "s_nr_users"},
		"blocksize":  {func(b []byte) { be.PutUint32(b[0x0C:], 3000) }, "s_blocksize"},
		"first 0":    {func(b []byte) { be.PutUint32(b[0x14:], 0) }, "s_first"},
		"first big":  {func(b []byte) { be.PutUint32(b[0x14:], 16384) }, "s_first"},
		"start big":  {func(b []byte) { be.PutUint32(b[0x1C:], 16384) }, "s_start"},
		"short":      {nil, ""},
	} {
		c2 := append([]byte(nil), b...)
		if c.mutate == nil {
			c2 = c2[:1000]
		} else {
			c.mutate(c2)
		}
		_, err := DecodeJournalSuperBlock(c2)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Field != c.field || ce.Struct != structJournalSB {
			t.Errorf("%s: got %v, want a corruption of %q", name, err, c.field)
		}
	}
}

func TestDescriptorBlock(t *testing.T) {
	for _, bs := range blockSizes {
		for _, is64 := range []bool{false, true} {
			n := DescriptorCapacity(bs, is64)
			d := &DescriptorBlock{Sequence: 42}
			for i := 0; i < n; i++ {
				blk := uint64(1000 + i)
				if is64 {
					blk |= uint64(i) << 33
				}
				d.Tags = append(d.Tags, JournalBlockTag{Blocknr: blk})
			}
			d.Tags[1].Flags = JBD2FlagEscape
			copy(d.Tags[0].UUID[:], "uuid-of-the-fs!!")
			d.SetStandardTagFlags()
			b := make([]byte, bs)
			if err := d.Encode(b, is64); err != nil {
				t.Fatalf("bs %d is64 %v: %d tags: %v", bs, is64, n, err)
			}
			got, err := DecodeDescriptorBlock(b, is64)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, d) {
				t.Fatalf("bs %d is64 %v: decoded differs", bs, is64)
			}
			if got.Tags[1].Flags != JBD2FlagEscape|JBD2FlagSameUUID || got.Tags[n-1].Flags&JBD2FlagLastTag == 0 {
				t.Fatal("flags")
			}
			// jbd2 would not add another tag: less than tag+16 bytes are left.
			if left := bs - JournalHeaderSize - d.DescriptorBytes(is64); left >= JournalTagSize(is64)+16 {
				t.Fatalf("bs %d: %d bytes left, capacity too small", bs, left)
			}
			d.Tags = append(d.Tags, JournalBlockTag{Blocknr: 1})
			d.Tags = append(d.Tags, make([]JournalBlockTag, bs)...)
			if err := d.Encode(b, is64); err == nil {
				t.Fatal("overfull descriptor encoded")
			}
		}
	}
	if DescriptorCapacity(4096, false) != 506 || DescriptorCapacity(4096, true) != 337 {
		t.Fatal("capacity at 4 KiB")
	}
	d := &DescriptorBlock{Tags: []JournalBlockTag{{Blocknr: 1 << 32}}}
	if err := d.Encode(make([]byte, 1024), false); err == nil {
		t.Fatal("64-bit block in a 32-bit journal")
	}
}

func TestDescriptorWithoutLastTag(t *testing.T) {
	// Tags run to the end of the block; the last UUID does not fit.
	b := make([]byte, 64)
	JournalHeader{BlockType: JBD2DescriptorBlock, Sequence: 3}.Encode(b)
	p := 12
	for _, f := range []uint16{0, JBD2FlagSameUUID, JBD2FlagSameUUID, 0} {
		binary.BigEndian.PutUint32(b[p:], 77)
		binary.BigEndian.PutUint16(b[p+6:], f)
		p += 8
		if f == 0 {
			p += 16
		}
	}
	d, err := DecodeDescriptorBlock(b, false)
	if err != nil || len(d.Tags) != 4 {
		t.Fatalf("%+v %v", d, err)
	}
	if _, err := DecodeDescriptorBlock(b[:16], false); !errors.Is(err, ErrCorrupt) {
		t.Fatal("descriptor without room for a tag accepted")
	}
	b[7] = byte(JBD2CommitBlock)
	if _, err := DecodeDescriptorBlock(b, false); !errors.Is(err, ErrCorrupt) {
		t.Fatal("wrong type accepted")
	}
}

func TestEscape(t *testing.T) {
	b := make([]byte, 512)
	binary.BigEndian.PutUint32(b, JBD2Magic)
	b[4] = 9
	if !EscapeJournalData(b) || IsJournalBlock(b) || b[4] != 9 {
		t.Fatal("escape")
	}
	UnescapeJournalData(b)
	if !IsJournalBlock(b) {
		t.Fatal("unescape")
	}
	if EscapeJournalData(make([]byte, 512)) {
		t.Fatal("escaped a block without the magic")
	}
}

func TestCommitAndRevokeBlocks(t *testing.T) {
	for _, bs := range blockSizes {
		c := &CommitBlock{Sequence: 9, CommitSec: 1700000000, CommitNsec: 123456789}
		b := make([]byte, bs)
		c.Encode(b)
		if binary.BigEndian.Uint64(b[0x30:]) != 1700000000 || binary.BigEndian.Uint32(b[0x38:]) != 123456789 {
			t.Fatal("commit time offsets")
		}
		d, err := DecodeCommitBlock(b)
		if err != nil || *d != *c {
			t.Fatalf("commit: %+v %v", d, err)
		}
		binary.BigEndian.PutUint32(b[0x38:], 1e9)
		if _, err := DecodeCommitBlock(b); !errors.Is(err, ErrCorrupt) {
			t.Fatal("nsec >= 1e9 accepted")
		}
		for _, is64 := range []bool{false, true} {
			r := &RevokeBlock{Sequence: 9}
			for i := 0; i < RevokeCapacity(bs, is64); i++ {
				v := uint64(i + 5)
				if is64 {
					v |= 1 << 40
				}
				r.Blocks = append(r.Blocks, v)
			}
			if err := r.Encode(b, is64); err != nil {
				t.Fatal(err)
			}
			if want := uint32(16 + len(r.Blocks)*revokeRecSize(is64)); binary.BigEndian.Uint32(b[0x0C:]) != want {
				t.Fatalf("r_count %d, want %d", binary.BigEndian.Uint32(b[0x0C:]), want)
			}
			got, err := DecodeRevokeBlock(b, is64)
			if err != nil || !reflect.DeepEqual(got, r) {
				t.Fatalf("revoke bs %d is64 %v: %v", bs, is64, err)
			}
			r.Blocks = append(r.Blocks, 1)
			if r.Encode(b, is64) == nil {
				t.Fatal("overfull revoke encoded")
			}
		}
		binary.BigEndian.PutUint32(b[0x0C:], uint32(bs+4))
		if _, err := DecodeRevokeBlock(b, true); !errors.Is(err, ErrCorrupt) {
			t.Fatal("r_count beyond the block accepted")
		}
		binary.BigEndian.PutUint32(b[0x0C:], 8)
		if _, err := DecodeRevokeBlock(b, true); !errors.Is(err, ErrCorrupt) {
			t.Fatal("r_count below the header accepted")
		}
		binary.BigEndian.PutUint32(b[0x0C:], 16+8+4) // a partial record is ignored, as jbd2 does
		if got, err := DecodeRevokeBlock(b, true); err != nil || len(got.Blocks) != 1 {
			t.Fatalf("partial record: %+v %v", got, err)
		}
	}
	if err := (&RevokeBlock{Blocks: []uint64{1 << 32}}).Encode(make([]byte, 512), false); err == nil {
		t.Fatal("64-bit revoke in a 32-bit journal")
	}
}

func FuzzJournalBlocks(f *testing.F) {
	b := make([]byte, 1024)
	sampleJournalSB(1024).Encode(b)
	f.Add(b, false)
	d := &DescriptorBlock{Sequence: 1, Tags: []JournalBlockTag{{Blocknr: 5}, {Blocknr: 6}}}
	d.SetStandardTagFlags()
	b2 := make([]byte, 1024)
	d.Encode(b2, true)
	f.Add(b2, true)
	f.Fuzz(func(t *testing.T, data []byte, is64 bool) {
		check := func(err error) bool {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error outside the corruption class: %v", err)
			}
			return err == nil
		}
		if s, err := DecodeJournalSuperBlock(data); check(err) {
			out := make([]byte, len(data))
			s.Encode(out)
			if s2, err := DecodeJournalSuperBlock(out); err != nil || !reflect.DeepEqual(s, s2) {
				t.Fatalf("superblock re-decode: %v", err)
			}
		}
		if d, err := DecodeDescriptorBlock(data, is64); check(err) {
			d.DescriptorBytes(is64)
		}
		if c, err := DecodeCommitBlock(data); check(err) {
			c.Encode(make([]byte, len(data)))
		}
		if r, err := DecodeRevokeBlock(data, is64); check(err) {
			out := make([]byte, len(data))
			if err := r.Encode(out, is64); err != nil {
				t.Fatalf("revoke re-encode: %v", err)
			}
		}
		DecodeJournalHeader(data)
	})
}
