package extent

import (
	"fmt"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Shape describes a checked tree.
type Shape struct {
	Depth    int
	Blocks   int      // extent blocks
	Leaves   []uint64 // leaf blocks left to right
	Clusters uint64   // clusters mapped
}

// CheckShape verifies everything Tree promises about a tree rooted at
// root: one depth for all leaves, sorted non-overlapping records, interior
// records that tile the cpos space and start where their child starts, the
// leaf chain, and lastEB as the rightmost leaf. It is what tests and fsck
// use to judge a tree.
func CheckShape(c *metacache.Cache, root *ondisk.ExtentList, lastEB uint64, owner string) (Shape, error) {
	s := Shape{Depth: int(root.TreeDepth)}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: extent tree: %s: %w", owner, fmt.Sprintf(format, args...), ondisk.ErrCorrupt)
	}
	var walk func(l *ondisk.ExtentList, blk uint64) error
	walk = func(l *ondisk.ExtentList, blk uint64) error {
		if err := l.CheckOrder(owner); err != nil {
			return err
		}
		if l.TreeDepth == 0 {
			if blk != 0 {
				s.Leaves = append(s.Leaves, blk)
			}
			for _, r := range l.Recs {
				s.Clusters += uint64(r.Clusters)
			}
			return nil
		}
		if len(l.Recs) == 0 {
			return bad("interior list at block %d is empty", blk)
		}
		for i, r := range l.Recs {
			eb, err := c.ExtentBlock(r.Blkno)
			if err != nil {
				return err
			}
			s.Blocks++
			if eb.List.TreeDepth+1 != l.TreeDepth {
				return bad("block %d has depth %d under depth %d", r.Blkno, eb.List.TreeDepth, l.TreeDepth)
			}
			if len(eb.List.Recs) == 0 {
				return bad("block %d is empty", r.Blkno)
			}
			if first := eb.List.Recs[0].Cpos; first != r.Cpos {
				return bad("record %d of block %d starts at %d, its child %d at %d", i, blk, r.Cpos, r.Blkno, first)
			}
			wantEnd := subtreeEnd(&eb.List)
			if i+1 < len(l.Recs) {
				if r.End() != uint64(l.Recs[i+1].Cpos) {
					return bad("record %d of block %d ends at %d, the next starts at %d", i, blk, r.End(), l.Recs[i+1].Cpos)
				}
				if wantEnd > r.End() {
					return bad("child %d ends at %d beyond its range end %d", r.Blkno, wantEnd, r.End())
				}
			} else if r.End() != wantEnd {
				return bad("last record of block %d ends at %d, its subtree at %d", blk, r.End(), wantEnd)
			}
			if err := walk(&eb.List, r.Blkno); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, 0); err != nil {
		return s, err
	}
	for i, blk := range s.Leaves {
		eb, _ := c.ExtentBlock(blk)
		want := uint64(0)
		if i+1 < len(s.Leaves) {
			want = s.Leaves[i+1]
		}
		if eb.NextLeafBlk != want {
			return s, bad("leaf %d points to %d, the next leaf is %d", blk, eb.NextLeafBlk, want)
		}
	}
	want := uint64(0)
	if len(s.Leaves) > 0 {
		want = s.Leaves[len(s.Leaves)-1]
	}
	if lastEB != want {
		return s, bad("last extent block is %d, the rightmost leaf is %d", lastEB, want)
	}
	return s, nil
}
