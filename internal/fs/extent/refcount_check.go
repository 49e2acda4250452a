package extent

import (
	"fmt"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// RefcountShape describes a checked refcount tree.
type RefcountShape struct {
	Users       uint32   // rf_count
	Generation  uint32   // rf_generation
	Depth       int      // index depth (-1: the root holds the records itself)
	Leaves      []uint64 // leaf blocks left to right (none when Depth is -1)
	FirstKey    uint32   // the first leaf's index key (o2go keeps it 0)
	IndexBlocks int      // EXBLK01 blocks of the index
	Records     int
	Clusters    uint64 // clusters counted (sum of r_clusters)
}

// CheckRefcountTree verifies everything RefcountTree promises about the
// tree rooted at root, beyond what each read checks: the index has the
// shape of an extent tree (CheckShape) with one-cluster records, rf_clusters
// is the number of leaves, every leaf names the root as parent, carries the
// tree's generation and its index key as rf_cpos, is not empty, and holds
// sorted records inside its key range, and records are sorted across
// leaves. Tests and fsck judge trees with it.
func CheckRefcountTree(c *metacache.Cache, root uint64) (RefcountShape, error) {
	t := &RefcountTree{C: c, Root: root}
	s := RefcountShape{Depth: -1}
	rb, _, err := t.loadRoot()
	if err != nil {
		return s, err
	}
	s.Users, s.Generation = rb.Count, rb.Generation
	bad := func(blk uint64, format string, args ...any) error {
		return t.corrupt(blk, "", format, args...)
	}
	if rb.Tree() {
		sh, err := CheckShape(c, &rb.List, rb.LastEBBlk, t.owner())
		if err != nil {
			return s, err
		}
		s.Depth, s.IndexBlocks = sh.Depth, sh.Blocks
		var keys []ondisk.ExtentRec
		if err := Walk(c, &rb.List, t.owner(), func(r ondisk.ExtentRec) error {
			keys = append(keys, r)
			return nil
		}); err != nil {
			return s, err
		}
		if len(keys) == 0 {
			return s, bad(root, "the root is an index (TREE_FL) without leaves")
		}
		s.FirstKey = keys[0].Cpos
		if rb.Clusters != uint32(len(keys)) {
			return s, bad(root, "rf_clusters is %d, the index has %d leaves", rb.Clusters, len(keys))
		}
		for i, k := range keys {
			if k.Clusters != 1 || k.Flags != 0 {
				return s, bad(root, "index record %d covers %d clusters with flags 0x%x, want 1 and 0", i, k.Clusters, k.Flags)
			}
			leaf, err := c.RefcountBlock(k.Blkno)
			if err != nil {
				return s, err
			}
			switch {
			case leaf.Generation != rb.Generation:
				return s, bad(k.Blkno, "leaf rf_generation 0x%x, the root's is 0x%x", leaf.Generation, rb.Generation)
			case leaf.Cpos != k.Cpos:
				return s, bad(k.Blkno, "leaf rf_cpos %d, its index key is %d", leaf.Cpos, k.Cpos)
			case len(leaf.Records.Recs) == 0:
				return s, bad(k.Blkno, "leaf holds no records")
			case leaf.Records.Recs[0].Cpos < uint64(k.Cpos):
				// The kernel finds a leaf by the last key <= the cluster
				// (and, in a deeper index, the rightmost subtree for
				// clusters below every key): nothing may lie below a key.
				return s, bad(k.Blkno, "leaf record at cluster %d lies below its key %d", leaf.Records.Recs[0].Cpos, k.Cpos)
			}
			s.Leaves = append(s.Leaves, k.Blkno)
		}
	}
	err = t.Walk(func(r ondisk.RefcountRec) error {
		s.Records++
		s.Clusters += uint64(r.Clusters)
		return nil
	})
	return s, err
}

// String summarises the shape for test logs.
func (s RefcountShape) String() string {
	return fmt.Sprintf("users %d, depth %d, %d leaves, %d index blocks, %d records over %d clusters",
		s.Users, s.Depth, len(s.Leaves), s.IndexBlocks, s.Records, s.Clusters)
}
