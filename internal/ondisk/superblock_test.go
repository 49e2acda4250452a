package ondisk

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSuperBlockHelpers(t *testing.T) {
	s := sampleSuperBlock()
	s.ClusterSizeBits = 16
	if s.BlockSize() != 4096 || s.ClusterSize() != 65536 || s.BlocksPerCluster() != 16 {
		t.Fatalf("geometry %d %d %d", s.BlockSize(), s.ClusterSize(), s.BlocksPerCluster())
	}
	if got := s.UUIDString(); got != "2F620BC0018943BC80AC7FB3E15A0F82" {
		t.Fatalf("UUIDString %q", got)
	}
	if s.Label() != "lbl" {
		t.Fatalf("Label %q", s.Label())
	}
	if err := s.SetLabel(strings.Repeat("x", 63)); err != nil || s.Label() != strings.Repeat("x", 63) {
		t.Fatalf("63-byte label: %v", err)
	}
	if err := s.SetLabel(strings.Repeat("x", 64)); err == nil {
		t.Fatal("64-byte label accepted")
	}
	if err := s.SetLabel("a"); err != nil || s.VolumeLabel[1] != 0 {
		t.Fatal("shorter label must clear the old bytes")
	}
	if !s.HasClusterInfo() == (s.Features.Incompat&(IncompatUserspaceStack|IncompatClusterInfo) != 0) {
		t.Fatal("HasClusterInfo")
	}
	s.BlockSizeBits, s.ClusterSizeBits = 12, 9
	if s.BlocksPerCluster() != 0 {
		t.Fatal("cluster smaller than block must give 0")
	}
}

func TestUUIDHash(t *testing.T) {
	if UUIDHash([16]byte{}) != 0 {
		t.Fatal("zero uuid")
	}
	// One byte followed by 15 rotations by 5 bits: rotl(1, 75 mod 32).
	if got := UUIDHash([16]byte{1}); got != 1<<11 {
		t.Fatalf("got 0x%x, want 0x800", got)
	}
	if got := UUIDHash([16]byte{15: 0xff}); got != 0xff {
		t.Fatalf("got 0x%x", got)
	}
}

func TestBackupSuperBlockBlknos(t *testing.T) {
	for _, c := range []struct {
		bs    int
		total uint64
		want  []uint64
	}{
		{4096, 262144, nil}, // exactly 1 GiB: no backup
		{4096, 262145, []uint64{262144}},
		{4096, 1 << 30, []uint64{262144, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28}},
		{512, 1<<21 + 1, []uint64{1 << 21}},
		{1024, 1 << 40, []uint64{1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28, 1 << 30}},
	} {
		if got := BackupSuperBlockBlknos(c.bs, c.total); !slices.Equal(got, c.want) {
			t.Errorf("bs %d total %d: %v, want %v", c.bs, c.total, got, c.want)
		}
	}
}

func TestValidateSuperBlock(t *testing.T) {
	good := func() *Dinode { return sampleDinodes(4096)["super"] }
	if err := ValidateSuperBlock(good(), 4096); err != nil {
		t.Fatal(err)
	}
	backup := good()
	backup.Blkno = 262144
	if err := ValidateSuperBlock(backup, 4096); err != nil {
		t.Fatalf("backup location refused: %v", err)
	}
	for _, c := range []struct {
		field  string
		bs     int
		mutate func(d *Dinode)
	}{
		{"i_signature", 4096, func(d *Dinode) { d.Signature = InodeSignature }},
		{"i_flags", 4096, func(d *Dinode) { d.Super = nil }},
		{"s_blocksize_bits", 2048, func(d *Dinode) {}},
		{"s_blocksize_bits", 4096, func(d *Dinode) { d.Super.BlockSizeBits = 13 }},
		{"s_blocksize_bits", 4096, func(d *Dinode) { d.Super.BlockSizeBits = 200 }},
		{"s_major_rev_level", 4096, func(d *Dinode) { d.Super.MajorRev = 1 }},
		{"s_minor_rev_level", 4096, func(d *Dinode) { d.Super.MinorRev = 91 }},
		{"i_blkno", 4096, func(d *Dinode) { d.Blkno = 3 }},
		{"i_blkno", 4096, func(d *Dinode) { d.Blkno = 262144 * 2 }},
		{"s_clustersize_bits", 4096, func(d *Dinode) { d.Super.ClusterSizeBits = 11 }},
		{"s_clustersize_bits", 4096, func(d *Dinode) { d.Super.ClusterSizeBits = 21 }},
		{"s_root_blkno", 4096, func(d *Dinode) { d.Super.RootBlkno = 0 }},
		{"s_system_dir_blkno", 4096, func(d *Dinode) { d.Super.SystemDirBlkno = 0 }},
		{"s_max_slots", 4096, func(d *Dinode) { d.Super.MaxSlots = 256 }},
	} {
		d := good()
		c.mutate(d)
		err := ValidateSuperBlock(d, c.bs)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want a corruption error", c.field, err)
			continue
		}
		if f := corruptField(t, err); f != c.field {
			t.Errorf("error names %q, want %q: %v", f, c.field, err)
		}
	}
	if err := ValidateSuperBlock(good(), 3000); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("bad probe size: %v", err)
	}
	if err := ValidateSuperBlock(nil, 4096); err == nil {
		t.Error("nil dinode accepted")
	}
}

func TestClusterInfo(t *testing.T) {
	var c ClusterInfo
	if c.Set("pcmk2", "x", 0) == nil {
		t.Error("5-byte stack label accepted")
	}
	if c.Set("o2cb", strings.Repeat("c", 17), 0) == nil {
		t.Error("17-byte cluster name accepted")
	}
	if err := c.Set("o2cb", strings.Repeat("c", 16), ClusterO2CBGlobalHeartbeat); err != nil {
		t.Fatal(err)
	}
	if c.StackName() != "o2cb" || c.ClusterName() != strings.Repeat("c", 16) || c.StackFlags != 1 {
		t.Fatalf("%+v", c)
	}
	// mkfs.ocfs2 leaves stray bytes after the name's NUL: they are kept.
	d := sampleDinodes(4096)["super"]
	d.Super.ClusterInfo.Cluster = [16]byte{'x', 0, 0xa3, 0x59, 5}
	b := make([]byte, 4096)
	if err := d.Encode(b); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeDinode(b)
	if err != nil || got.Super.ClusterInfo.Cluster != d.Super.ClusterInfo.Cluster || got.Super.ClusterInfo.ClusterName() != "x" {
		t.Fatalf("%v %+v", err, got.Super.ClusterInfo)
	}
}
