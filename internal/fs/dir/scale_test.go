package dir

import (
	"fmt"
	"testing"

	"o2go/internal/base"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// TestHundredThousandNames adds 100,000 names to one indexed directory
// on an in-memory copy of a volume and shows, by counting block accesses
// rather than time, that the cost of an add and of a lookup does not grow
// with the directory: the last thousand adds touch about as many blocks
// as the first thousand, and a lookup on a cold cache reads a handful of
// blocks (root, index tree, leaf, directory block).
func TestHundredThousandNames(t *testing.T) {
	realtools.Require(t)
	total := 100_000
	if testing.Short() {
		total = 20_000
	}
	v := memVol(t, cfg4kNoInl)
	root := v.load(v.sb.RootBlkno)
	d := v.mkdir(root, "big")
	f := v.newInode(ondisk.ModeReg)
	f.Links = 0
	r := base.NewRand(testSeed(t))
	name := func(i int) string { return fmt.Sprintf("%x-%d", uint32(i)*2654435761, i) }
	accesses := func() uint64 { s := v.c.Stats(); return s.Hits + s.Misses }
	var first, last uint64
	for i := 0; i < total; i++ {
		a0 := accesses()
		if err := Add(v.env(), d, name(i), f.Blkno, ondisk.FileTypeReg); err != nil {
			t.Fatal(i, err)
		}
		v.store(d)
		switch n := accesses() - a0; {
		case i < 1000:
			first += n
		case i >= total-1000:
			last += n
		}
	}
	f.Links = uint32(total)
	v.store(f)
	fc, err := checkDir(v.c, v.sb, d, true)
	if err != nil {
		t.Fatal(err)
	}
	dr, _ := v.c.DXRoot(d.DxRoot, d.Blkno)
	t.Logf("%d names: %d blocks, %d clusters, index %d clusters of depth %d; block accesses per add: %.1f for the first 1000, %.1f for the last 1000",
		len(fc.names), fc.blocks, fc.clusters, dr.Clusters, dr.List.TreeDepth, float64(first)/1000, float64(last)/1000)
	if len(fc.names) != total || dr.NumEntries != uint32(total)+2 {
		t.Fatalf("%d names, dr_num_entries %d", len(fc.names), dr.NumEntries)
	}
	if last > 3*first {
		t.Fatalf("adds touch %d blocks per thousand at the end, %d at the start", last, first)
	}

	// Lookups on a cold cache: count the blocks each one reads.
	cold := metacache.New(v.dev, v.sb.BlockSize(), metacache.Options{FSGeneration: v.super.FSGeneration})
	worst := uint64(0)
	for k := 0; k < 2000; k++ {
		i := r.Intn(total)
		cold.ForgetAll()
		m0 := cold.Stats().Misses
		e, ok, err := Dir{C: cold, SB: v.sb, Inode: d}.Lookup(name(i))
		if err != nil || !ok || e.Inode != f.Blkno {
			t.Fatalf("Lookup(%q) = %+v %v %v", name(i), e, ok, err)
		}
		worst = max(worst, cold.Stats().Misses-m0)
	}
	limit := uint64(3 + dr.List.TreeDepth + 1)
	t.Logf("a cold lookup reads at most %d blocks (root, %d index tree levels, leaf, directory block)", worst, dr.List.TreeDepth)
	if worst > limit {
		t.Fatalf("a lookup read %d blocks, want at most %d", worst, limit)
	}
	if testing.Short() {
		return
	}
	realtools.RequireFsckClean(t, v.save())
}
