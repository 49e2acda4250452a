package inspect

import (
	"encoding/binary"
	"testing"

	"o2go/internal/base"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// TestLogdumpLikeDebugfs writes a journal by hand — descriptors with every
// tag flag, logged copies of an inode, a group, the superblock and data,
// commits, revokes, a block of unknown type — into slot 0's journal of
// real volumes, and compares logdump with debugfs.ocfs2's, for 32- and
// 64-bit journals and small and large blocks.
func TestLogdumpLikeDebugfs(t *testing.T) {
	realtools.Require(t)
	for _, tc := range []struct {
		name string
		args []string
		is64 bool
	}{
		{"4k-block32", []string{"-b", "4096", "-N", "2", "--fs-features=local"}, false},
		{"4k-block64", []string{"-b", "4096", "-N", "2", "-J", "block64", "--fs-features=local"}, true},
		{"1k-metaecc-noinline", []string{"-b", "1024", "-N", "2", "--fs-features=metaecc,noinline-data,local"}, false},
		{"512", []string{"-b", "512", "-C", "4096", "-N", "2", "-J", "size=8M", "--fs-features=local"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := realtools.MkfsImage(t, 150<<20, tc.args...)
			writeJournal(t, img, tc.is64)
			compareDebug(t, img, "logdump 0")
			compareDebug(t, img, "logdump 1")
		})
	}
}

func writeJournal(t *testing.T, img string, is64 bool) {
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	bs := v.SB.BlockSize()
	blockOf := func(blk uint64) []byte {
		b := make([]byte, bs)
		if _, err := v.Dev.ReadAt(b, int64(blk)*int64(bs)); err != nil {
			t.Fatal(err)
		}
		return b
	}
	root, group, super := blockOf(v.SB.RootBlkno), blockOf(v.SB.FirstClusterGroup), blockOf(v.SuperBlkno)
	jblk, err := v.SystemFile(ondisk.SysJournal, 0)
	if err != nil {
		t.Fatal(err)
	}
	jino, err := v.FS.Inode(jblk)
	if err != nil {
		t.Fatal(err)
	}
	jsb := make([]byte, bs)
	if _, err := v.FS.ReadAt(jino, jsb, 0); err != nil {
		t.Fatal(err)
	}
	v.Close()
	if got := binary.BigEndian.Uint32(jsb[0x28:])&ondisk.JBD2FeatureIncompat64Bit != 0; got != is64 {
		t.Fatalf("journal 64bit = %v, want %v", got, is64)
	}

	r := base.NewRand(42)
	random := func() []byte {
		b := make([]byte, bs)
		for i := range b {
			b[i] = byte(r.Uint64())
		}
		return b
	}
	uuid := [16]byte{0x12, 0x9a, 0xff, 0x00, 0x80, 0x7f, 0x01, 0xc3, 0xde, 0xad, 0xbe, 0xef, 0x10, 0x20, 0x30, 0x40}
	desc := func(seq uint32, tags []ondisk.JournalBlockTag) []byte {
		b := make([]byte, bs)
		d := ondisk.DescriptorBlock{Sequence: seq, Tags: tags}
		if err := d.Encode(b, is64); err != nil {
			t.Fatal(err)
		}
		return b
	}
	commit := func(seq uint32) []byte {
		b := make([]byte, bs)
		(&ondisk.CommitBlock{Sequence: seq, CommitSec: 1_800_000_000}).Encode(b)
		return b
	}
	revoke := func(seq uint32, blocks ...uint64) []byte {
		b := make([]byte, bs)
		if err := (&ondisk.RevokeBlock{Sequence: seq, Blocks: blocks}).Encode(b, is64); err != nil {
			t.Fatal(err)
		}
		return b
	}
	escaped := random()
	binary.BigEndian.PutUint32(escaped, ondisk.JBD2Magic)
	ondisk.EscapeJournalData(escaped)
	odd := make([]byte, bs) // a JBD2 block of a type nobody knows
	ondisk.JournalHeader{BlockType: 9, Sequence: 3}.Encode(odd)

	same := ondisk.JBD2FlagSameUUID
	log := [][]byte{
		desc(7, []ondisk.JournalBlockTag{
			{Blocknr: 5, UUID: uuid},
			{Blocknr: 3, Flags: same},
			{Blocknr: 70000, Flags: same | ondisk.JBD2FlagEscape},
			{Blocknr: 99, Flags: same | ondisk.JBD2FlagDeleted},
			{Blocknr: 2, Flags: same | ondisk.JBD2FlagLastTag},
		}),
		root, group, escaped, random(), super,
		commit(7),
		revoke(8, 10, 20, 1<<20),
		desc(8, []ondisk.JournalBlockTag{{Blocknr: 1234, Flags: ondisk.JBD2FlagLastTag, UUID: uuid}}),
		random(),
		commit(8),
		odd,
		random(),
	}
	var data []byte
	for _, b := range log {
		data = append(data, b...)
	}
	// Leave a gap of untouched (zero) blocks, then more log, so that
	// "Unknown" runs of one and many blocks both appear.
	first := int64(bs)
	if bs == 512 {
		first = 1024 // the journal superblock spans two 512-byte blocks
	}
	writeSystemFileData(t, img, "journal:0000", first, data)
	writeSystemFileData(t, img, "journal:0000", first+int64(len(data)+5*bs), append(commit(9), random()...))
}
