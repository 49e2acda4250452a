package extent

import (
	"errors"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

const (
	bs    = 512
	fsGen = 0x1234
)

// buildTree writes a depth-2 tree over 3 leaves into a memory device and
// returns the cache and the root list. Leaves (cpos ranges):
//
//	leaf 100: [0,10) [20,30)      leaf 101: [30,40) [50,60)    leaf 102: [100,101)
//	interior 200 -> 100, 101      interior 201 -> 102
func buildTree(t *testing.T) (*metacache.Cache, *ondisk.ExtentList) {
	t.Helper()
	dev := blockdev.NewMemory("mem", 512*bs, 512)
	cap := uint16(ondisk.ExtentBlockListCapacity(bs))
	put := func(blk uint64, depth uint16, recs ...ondisk.ExtentRec) {
		eb := &ondisk.ExtentBlock{FSGeneration: fsGen, Blkno: blk, List: ondisk.ExtentList{TreeDepth: depth, Count: cap, Recs: recs}}
		b := make([]byte, bs)
		eb.Encode(b)
		if _, err := dev.WriteAt(b, int64(blk)*bs); err != nil {
			t.Fatal(err)
		}
	}
	put(100, 0, ondisk.ExtentRec{Cpos: 0, Clusters: 10, Blkno: 1000}, ondisk.ExtentRec{Cpos: 20, Clusters: 10, Blkno: 2000, Flags: ondisk.ExtentUnwritten})
	put(101, 0, ondisk.ExtentRec{Cpos: 30, Clusters: 10, Blkno: 3000}, ondisk.ExtentRec{Cpos: 50, Clusters: 10, Blkno: 4000})
	put(102, 0, ondisk.ExtentRec{Cpos: 100, Clusters: 1, Blkno: 5000})
	put(200, 1, ondisk.ExtentRec{Cpos: 0, Clusters: 30, Blkno: 100}, ondisk.ExtentRec{Cpos: 30, Clusters: 30, Blkno: 101})
	put(201, 1, ondisk.ExtentRec{Cpos: 100, Clusters: 1, Blkno: 102})
	root := &ondisk.ExtentList{TreeDepth: 2, Count: 4, Recs: []ondisk.ExtentRec{{Cpos: 0, Clusters: 60, Blkno: 200}, {Cpos: 100, Clusters: 1, Blkno: 201}}}
	return metacache.New(dev, bs, metacache.Options{FSGeneration: fsGen}), root
}

func TestLookupFindsExtentsAndHoles(t *testing.T) {
	c, root := buildTree(t)
	for _, tc := range []struct {
		cpos  uint32
		found bool
		blk   uint64
		next  uint64
	}{
		{0, true, 1000, 10}, {9, true, 1000, 10},
		{10, false, 0, 20}, {25, true, 2000, 30},
		{30, true, 3000, 40}, {45, false, 0, 50}, // hole inside a leaf
		{60, false, 0, 100}, // hole across subtrees
		{100, true, 5000, 101}, {101, false, 0, NoMore}, {1 << 30, false, 0, NoMore},
	} {
		m, err := Lookup(c, root, tc.cpos, "test")
		if err != nil {
			t.Fatalf("cpos %d: %v", tc.cpos, err)
		}
		if m.Found != tc.found || m.Next != tc.next || (m.Found && m.Rec.Blkno != tc.blk) {
			t.Errorf("cpos %d: got %+v, want found=%v blk=%d next=%d", tc.cpos, m, tc.found, tc.blk, tc.next)
		}
	}
}

func TestWalkVisitsAllLeavesInOrder(t *testing.T) {
	c, root := buildTree(t)
	var got []uint64
	if err := Walk(c, root, "test", func(r ondisk.ExtentRec) error {
		got = append(got, r.Blkno)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []uint64{1000, 2000, 3000, 4000, 5000}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
}

func TestLookupRejectsBadChildren(t *testing.T) {
	c, root := buildTree(t)
	// Point the root at a leaf directly: depth mismatch.
	bad := *root
	bad.Recs = []ondisk.ExtentRec{{Cpos: 0, Clusters: 60, Blkno: 100}}
	if _, err := Lookup(c, &bad, 5, "inode 7"); !errors.Is(err, ondisk.ErrCorrupt) {
		t.Fatalf("depth mismatch: %v", err)
	}
	// Point at a block that is no extent block.
	bad.Recs = []ondisk.ExtentRec{{Cpos: 0, Clusters: 60, Blkno: 300}}
	_, err := Lookup(c, &bad, 5, "inode 7")
	var ce *ondisk.CorruptError
	if !errors.As(err, &ce) || ce.Blkno != 300 || ce.Field != "h_signature" {
		t.Fatalf("garbage child: %v", err)
	}
	// Beyond the device.
	bad.Recs = []ondisk.ExtentRec{{Cpos: 0, Clusters: 60, Blkno: 1 << 40}}
	if _, err := Lookup(c, &bad, 5, "inode 7"); !errors.Is(err, ondisk.ErrCorrupt) {
		t.Fatalf("child beyond device: %v", err)
	}
}
