package metacache

import (
	"errors"
	"strings"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
)

// An inode whose root extent records overlap is corrupt, named by its
// block, like an extent block with the same list: a lookup would
// binary-search the list and map clusters to the wrong blocks.
func TestDinodeWithOverlappingExtentsIsCorrupt(t *testing.T) {
	dev := blockdev.NewMemory("mem0", 16*4096, 512)
	write := func(blkno uint64, recs []ondisk.ExtentRec) {
		d := &ondisk.Dinode{Signature: ondisk.InodeSignature, Flags: ondisk.InodeValid, Mode: ondisk.ModeReg | 0o644,
			Blkno: blkno, FSGeneration: 7, Links: 1, Size: 64 << 10, Clusters: 16,
			Extents: &ondisk.ExtentList{Count: uint16(ondisk.ExtentListCapacity(4096 - ondisk.DinodeID2Offset)), Recs: recs}}
		b := make([]byte, 4096)
		if err := d.Encode(b); err != nil {
			t.Fatal(err)
		}
		if _, err := dev.WriteAt(b, int64(blkno)*4096); err != nil {
			t.Fatal(err)
		}
	}
	write(5, []ondisk.ExtentRec{{Cpos: 0, Clusters: 8, Blkno: 100}, {Cpos: 8, Clusters: 8, Blkno: 200}})
	write(6, []ondisk.ExtentRec{{Cpos: 0, Clusters: 8, Blkno: 100}, {Cpos: 4, Clusters: 8, Blkno: 200}})
	c := New(dev, 4096, Options{FSGeneration: 7})
	if _, err := c.Dinode(5); err != nil {
		t.Fatalf("ordered records: %v", err)
	}
	_, err := c.Dinode(6)
	if !errors.Is(err, ondisk.ErrCorrupt) || !strings.Contains(err.Error(), "mem0: block 6: ") || !strings.Contains(err.Error(), "e_cpos") {
		t.Fatalf("overlapping records: %v, want a corruption error naming mem0 block 6 and e_cpos", err)
	}
}
