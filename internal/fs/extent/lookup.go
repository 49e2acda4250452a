package extent

import (
	"fmt"
	"math"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Leaf is a leaf extent list reached by a lookup, with where it came from.
type Leaf struct {
	List  *ondisk.ExtentList
	Blkno uint64 // extent block holding the list; 0 when it is the root
	// Next is the first cpos covered by a record to the right of this leaf
	// (the next leaf's first record), or math.MaxUint32+1 when none.
	Next uint64
}

// NoMore marks "no record to the right" in Leaf.Next and Mapping.Next.
const NoMore = uint64(math.MaxUint32) + 1

// FindLeaf descends from root to the leaf list whose range holds cpos.
// owner names the tree's owner in errors ("inode 70165").
func FindLeaf(c *metacache.Cache, root *ondisk.ExtentList, cpos uint32, owner string) (Leaf, error) {
	list, blk, next := root, uint64(0), NoMore
	for depth := int(root.TreeDepth); depth > 0; depth-- {
		i, ok := list.Find(cpos)
		if !ok {
			// cpos lies before the first child: descend into the first one,
			// whose records all start after cpos.
			if len(list.Recs) == 0 {
				return Leaf{List: &ondisk.ExtentList{}, Next: next}, nil
			}
			i = 0
		}
		if i+1 < len(list.Recs) {
			next = uint64(list.Recs[i+1].Cpos)
		}
		child := list.Recs[i].Blkno
		eb, err := c.ExtentBlock(child)
		if err != nil {
			return Leaf{}, fmt.Errorf("%s: extent tree: %w", owner, err)
		}
		if int(eb.List.TreeDepth) != depth-1 {
			return Leaf{}, fmt.Errorf("%s: extent tree: %w", owner, c.Annotate(&ondisk.CorruptError{
				Struct: "extent block", Field: "l_tree_depth",
				Msg: fmt.Sprintf("is %d under a parent of depth %d, want %d", eb.List.TreeDepth, depth, depth-1)}, child))
		}
		list, blk = &eb.List, child
	}
	return Leaf{List: list, Blkno: blk, Next: next}, nil
}

// Mapping is what a lookup finds at a logical cluster.
type Mapping struct {
	// Found is true when a record covers the cluster.
	Found bool
	Rec   ondisk.ExtentRec
	// Next is the first cpos after the queried one where a record starts
	// (the end of a hole), or NoMore.
	Next uint64
}

// Lookup maps logical cluster cpos through the tree rooted at root.
func Lookup(c *metacache.Cache, root *ondisk.ExtentList, cpos uint32, owner string) (Mapping, error) {
	leaf, err := FindLeaf(c, root, cpos, owner)
	if err != nil {
		return Mapping{}, err
	}
	return mapIn(leaf, cpos), nil
}

func mapIn(leaf Leaf, cpos uint32) Mapping {
	l := leaf.List
	i, ok := l.Find(cpos)
	if ok && l.Recs[i].Clusters > 0 {
		return Mapping{Found: true, Rec: l.Recs[i], Next: l.Recs[i].End()}
	}
	// A hole: find the next record start in this leaf, else the next leaf's.
	for j := max(i, 0); j < len(l.Recs); j++ {
		if l.Recs[j].Clusters > 0 && l.Recs[j].Cpos > cpos {
			return Mapping{Next: uint64(l.Recs[j].Cpos)}
		}
	}
	return Mapping{Next: leaf.Next}
}

// Walk calls fn for every non-empty leaf record of the tree in cpos order,
// checking the tree's shape on the way (depths, record order, and that each
// child's records lie inside the range its parent record claims).
func Walk(c *metacache.Cache, root *ondisk.ExtentList, owner string, fn func(rec ondisk.ExtentRec) error) error {
	if err := root.CheckOrder(owner); err != nil {
		return err
	}
	return walk(c, root, 0, NoMore, owner, fn)
}

func walk(c *metacache.Cache, l *ondisk.ExtentList, lo, hi uint64, owner string, fn func(ondisk.ExtentRec) error) error {
	for i, r := range l.Recs {
		if l.Leaf() {
			if r.Clusters == 0 {
				continue
			}
			if uint64(r.Cpos) < lo || r.End() > hi {
				return fmt.Errorf("%s: extent tree: record [%d,%d) outside its parent's range [%d,%d): %w", owner, r.Cpos, r.End(), lo, hi, ondisk.ErrCorrupt)
			}
			if err := fn(r); err != nil {
				return err
			}
			continue
		}
		childHi := hi
		if i+1 < len(l.Recs) {
			childHi = uint64(l.Recs[i+1].Cpos)
		}
		eb, err := c.ExtentBlock(r.Blkno)
		if err != nil {
			return fmt.Errorf("%s: extent tree: %w", owner, err)
		}
		if eb.List.TreeDepth+1 != l.TreeDepth {
			return fmt.Errorf("%s: extent tree: %w", owner, c.Annotate(&ondisk.CorruptError{
				Struct: "extent block", Field: "l_tree_depth",
				Msg: fmt.Sprintf("is %d under a parent of depth %d", eb.List.TreeDepth, l.TreeDepth)}, r.Blkno))
		}
		if err := walk(c, &eb.List, max(lo, uint64(r.Cpos)), childHi, owner, fn); err != nil {
			return err
		}
	}
	return nil
}
