package extent

import (
	"fmt"
	"slices"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// MetaBlock is a metadata block taken from a suballocator, with the
// identity the block must carry in its *_suballoc_* fields.
type MetaBlock struct {
	Blkno      uint64
	Slot       uint16
	Bit        uint16
	GroupBlkno uint64
}

// MetaAllocator hands out and takes back extent blocks (the slot's
// extent_alloc in the write engine; fakes in tests).
type MetaAllocator interface {
	NewMetaBlock(tx metacache.Tx) (MetaBlock, error)
	FreeMetaBlock(tx metacache.Tx, b MetaBlock) error
}

// ClusterAllocator hands out and takes back data clusters: the slot's
// local alloc window falling back to the global bitmap in the write engine
// (fs/alloc), fakes in tests. owner is the inode the clusters are for, so
// the allocator can keep a reservation window per file (resv_level); goal
// is the cluster the caller would like to continue from (0: no preference).
type ClusterAllocator interface {
	ClaimClusters(tx metacache.Tx, owner uint64, goal, min, max uint32) (start, n uint32, err error)
	FreeClusters(tx metacache.Tx, start, n uint32) error
}

// Tree edits one extent tree. Root is the owner's root list, changed in
// place; after any edit the owner must be written by the caller (its
// block is not this package's), with LastEB as its *_last_eb_blk.
//
// The tree it leaves has the shape the kernel and fsck.ocfs2 expect:
// all leaves at one depth, records sorted and not overlapping, interior
// records whose ranges tile the cpos space left to right (each covers up
// to the next one's e_cpos; the last up to the end of its subtree), leaves
// chained left to right by h_next_leaf_blk, LastEB the rightmost leaf.
type Tree struct {
	C     *metacache.Cache
	Tx    metacache.Tx
	Alloc MetaAllocator
	Root  *ondisk.ExtentList
	// BlocksPerCluster converts clusters to blocks for merging decisions.
	BlocksPerCluster uint64
	Owner            string
	// LastEB is the rightmost leaf block after the last edit (0: depth 0).
	LastEB uint64
	// Blocks counts extent blocks added (+) and freed (-) by edits, for
	// callers that account metadata (quota, stats).
	Blocks int
}

// node is one list on a path from the root to a leaf.
type node struct {
	list  *ondisk.ExtentList
	eb    *ondisk.ExtentBlock // nil for the root
	buf   *metacache.Buffer   // nil for the root and for new blocks before writeback
	fresh bool                // allocated by this edit
	dirty bool
	freed bool
}

// path runs from the root (nodes[0]) to a leaf; idx[i] is the record of
// nodes[i] that leads to nodes[i+1]. others holds blocks touched off the
// path (new siblings, a relinked left neighbour).
type path struct {
	nodes  []*node
	idx    []int
	others []*node
}

func (p *path) leaf() *node { return p.nodes[len(p.nodes)-1] }

func (p *path) all() []*node { return append(slices.Clone(p.nodes), p.others...) }

// descendIndex picks the child of an interior list for cpos: the last
// record whose e_cpos <= cpos, or the first one.
func descendIndex(l *ondisk.ExtentList, cpos uint32) int {
	i := 0
	for j, r := range l.Recs {
		if r.Cpos <= cpos {
			i = j
		}
	}
	return i
}

func (t *Tree) loadBlock(blkno uint64, wantDepth uint16) (*node, error) {
	eb, err := t.C.ExtentBlock(blkno)
	if err != nil {
		return nil, fmt.Errorf("%s: extent tree: %w", t.Owner, err)
	}
	if eb.List.TreeDepth != wantDepth {
		return nil, fmt.Errorf("%s: extent tree: %w", t.Owner, t.C.Annotate(&ondisk.CorruptError{Struct: "extent block", Field: "l_tree_depth",
			Msg: fmt.Sprintf("is %d, want %d", eb.List.TreeDepth, wantDepth)}, blkno))
	}
	buf, err := t.C.Get(blkno)
	if err != nil {
		return nil, err
	}
	cp := *eb // the cached decoded block is shared: edit a copy
	cp.List.Recs = slices.Clone(eb.List.Recs)
	return &node{list: &cp.List, eb: &cp, buf: buf}, nil
}

func (t *Tree) pathTo(cpos uint32) (*path, error) {
	p := &path{nodes: []*node{{list: t.Root}}}
	for l := t.Root; l.TreeDepth > 0; {
		if len(l.Recs) == 0 {
			return nil, fmt.Errorf("%s: extent tree: %w", t.Owner, &ondisk.CorruptError{Struct: "extent list", Field: "l_next_free_rec", Msg: fmt.Sprintf("interior list of depth %d is empty", l.TreeDepth)})
		}
		i := descendIndex(l, cpos)
		n, err := t.loadBlock(l.Recs[i].Blkno, l.TreeDepth-1)
		if err != nil {
			return nil, err
		}
		p.idx = append(p.idx, i)
		p.nodes = append(p.nodes, n)
		l = n.list
	}
	return p, nil
}

// subtreeEnd is the first cpos after the records of list l (for interior
// lists the last record's range ends where its subtree does).
func subtreeEnd(l *ondisk.ExtentList) uint64 {
	if len(l.Recs) == 0 {
		return 0
	}
	return l.Recs[len(l.Recs)-1].End()
}

// edit applies fn to the records of the leaf that holds cpos, then
// restores the tree's shape (splits, removals, interior ranges, depth) and
// writes every changed block through the Tx.
func (t *Tree) edit(cpos uint32, fn func(recs []ondisk.ExtentRec) ([]ondisk.ExtentRec, error)) error {
	p, err := t.pathTo(cpos)
	if err != nil {
		return err
	}
	leaf := p.leaf()
	recs, err := fn(slices.Clone(leaf.list.Recs))
	if err != nil {
		return err
	}
	leaf.list.Recs = mergeAdjacent(recs, t.BlocksPerCluster)
	leaf.dirty = true
	if err := t.rebalance(p); err != nil {
		return err
	}
	return t.writeBack(p)
}

// rebalance fixes the path bottom-up: removes empty nodes, splits overfull
// ones, refreshes the parent records, then deepens the tree if the root
// overflowed and shrinks it when the root has one child that fits in it.
func (t *Tree) rebalance(p *path) error {
	for level := len(p.nodes) - 1; level > 0; level-- {
		n := p.nodes[level]
		parent := p.nodes[level-1]
		pi := p.idx[level-1]
		switch {
		case len(n.list.Recs) == 0:
			if err := t.removeNode(p, level); err != nil {
				return err
			}
		case len(n.list.Recs) > int(n.list.Count):
			if err := t.splitNode(p, level); err != nil {
				return err
			}
		default:
			parent.list.Recs[pi].Cpos = n.list.Recs[0].Cpos
		}
		if err := t.fixInteriorRanges(p, level-1); err != nil {
			return err
		}
		parent.dirty = true
	}
	if root := p.nodes[0]; len(root.list.Recs) > int(root.list.Count) {
		if err := t.shiftDepth(p); err != nil {
			return err
		}
	}
	return t.shrinkDepth(p)
}

// childList returns the current (possibly edited) list of the child at
// blkno, loading it when this edit has not touched it.
func (t *Tree) childList(p *path, blkno uint64, depth uint16) (*node, error) {
	for _, n := range p.all() {
		if n.eb != nil && n.eb.Blkno == blkno && !n.freed {
			return n, nil
		}
	}
	n, err := t.loadBlock(blkno, depth)
	if err != nil {
		return nil, err
	}
	p.others = append(p.others, n)
	return n, nil
}

// fixInteriorRanges recomputes e_int_clusters of the interior list at
// level so its records tile the cpos space: each covers up to the next
// one's e_cpos, the last one up to the end of its subtree.
func (t *Tree) fixInteriorRanges(p *path, level int) error {
	l := p.nodes[level].list
	for i := range l.Recs {
		if i+1 < len(l.Recs) {
			l.Recs[i].Clusters = l.Recs[i+1].Cpos - l.Recs[i].Cpos
			continue
		}
		child, err := t.childList(p, l.Recs[i].Blkno, l.TreeDepth-1)
		if err != nil {
			return err
		}
		end := subtreeEnd(child.list)
		l.Recs[i].Clusters = 0
		if end > uint64(l.Recs[i].Cpos) {
			l.Recs[i].Clusters = uint32(end - uint64(l.Recs[i].Cpos))
		}
	}
	return nil
}

// newNode allocates an extent block for a list of the given depth.
func (t *Tree) newNode(depth uint16) (*node, error) {
	mb, err := t.Alloc.NewMetaBlock(t.Tx)
	if err != nil {
		return nil, fmt.Errorf("%s: allocating an extent block: %w", t.Owner, err)
	}
	t.Blocks++
	eb := &ondisk.ExtentBlock{
		SuballocSlot: mb.Slot, SuballocBit: mb.Bit, SuballocLoc: mb.GroupBlkno,
		FSGeneration: t.C.FSGeneration(), Blkno: mb.Blkno,
		List: ondisk.ExtentList{TreeDepth: depth, Count: uint16(ondisk.ExtentBlockListCapacity(t.C.BlockSize()))},
	}
	return &node{list: &eb.List, eb: eb, fresh: true, dirty: true}, nil
}

// shiftDepth moves the root's records into a new extent block and makes
// the root a single interior record pointing at it (the kernel's "shift
// tree depth"). The root's capacity is never more than a block's, and a
// level grows by at most two records per edit, so the new block fits them.
func (t *Tree) shiftDepth(p *path) error {
	root := p.nodes[0]
	n, err := t.newNode(root.list.TreeDepth)
	if err != nil {
		return err
	}
	if len(root.list.Recs) > int(n.list.Count) {
		return fmt.Errorf("%s: extent tree: root holds %d records, more than an extent block's %d", t.Owner, len(root.list.Recs), n.list.Count)
	}
	n.list.Recs = root.list.Recs
	root.list.Recs = []ondisk.ExtentRec{{Cpos: n.list.Recs[0].Cpos, Blkno: n.eb.Blkno}}
	root.list.TreeDepth++
	root.dirty = true
	p.nodes = slices.Insert(p.nodes, 1, n)
	p.idx = slices.Insert(p.idx, 0, 0)
	return t.fixInteriorRanges(p, 0)
}

// splitNode moves the upper records of an overfull node into a new sibling
// inserted right after it in the parent. On the right edge of the tree it
// moves only what does not fit, so sequentially written files get full
// leaves; elsewhere it splits in half.
func (t *Tree) splitNode(p *path, level int) error {
	n := p.nodes[level]
	parent := p.nodes[level-1]
	pi := p.idx[level-1]
	sib, err := t.newNode(n.list.TreeDepth)
	if err != nil {
		return err
	}
	recs := n.list.Recs
	keep := len(recs) / 2
	if rightmostPath(p, level) {
		keep = min(int(n.list.Count), len(recs)-1)
	}
	sib.list.Recs = slices.Clone(recs[keep:])
	n.list.Recs = slices.Clip(recs[:keep])
	if n.list.TreeDepth == 0 {
		sib.eb.NextLeafBlk = n.eb.NextLeafBlk
		n.eb.NextLeafBlk = sib.eb.Blkno
	}
	n.dirty = true
	parent.list.Recs[pi].Cpos = n.list.Recs[0].Cpos
	parent.list.Recs = slices.Insert(parent.list.Recs, pi+1, ondisk.ExtentRec{Cpos: sib.list.Recs[0].Cpos, Blkno: sib.eb.Blkno})
	p.others = append(p.others, sib)
	return nil
}

// rightmostPath reports whether the path down to level follows the last
// record at every level above it.
func rightmostPath(p *path, level int) bool {
	for i := 0; i < level; i++ {
		if p.idx[i] != len(p.nodes[i].list.Recs)-1 {
			return false
		}
	}
	return true
}

// freeBlock returns an extent block to its allocator; a block allocated
// by this very edit was never written and is simply dropped.
func (t *Tree) freeBlock(n *node) error {
	n.freed, n.dirty = true, false
	t.Blocks--
	if n.fresh {
		return t.Alloc.FreeMetaBlock(t.Tx, MetaBlock{Blkno: n.eb.Blkno, Slot: n.eb.SuballocSlot, Bit: n.eb.SuballocBit, GroupBlkno: n.eb.SuballocLoc})
	}
	if err := t.Alloc.FreeMetaBlock(t.Tx, MetaBlock{Blkno: n.eb.Blkno, Slot: n.eb.SuballocSlot, Bit: n.eb.SuballocBit, GroupBlkno: n.eb.SuballocLoc}); err != nil {
		return fmt.Errorf("%s: freeing extent block %d: %w", t.Owner, n.eb.Blkno, err)
	}
	t.Tx.Revoke(n.eb.Blkno)
	return nil
}

// removeNode frees an empty node and drops its record from its parent;
// for a leaf, the left neighbour's h_next_leaf_blk skips it.
func (t *Tree) removeNode(p *path, level int) error {
	n := p.nodes[level]
	parent := p.nodes[level-1]
	pi := p.idx[level-1]
	childCpos := parent.list.Recs[pi].Cpos
	if n.list.TreeDepth == 0 && pi+len(p.nodes) > 0 && childCpos > 0 {
		if err := t.relinkLeftNeighbour(p, childCpos-1, n.eb.Blkno, n.eb.NextLeafBlk); err != nil {
			return err
		}
	}
	if err := t.freeBlock(n); err != nil {
		return err
	}
	parent.list.Recs = slices.Delete(parent.list.Recs, pi, pi+1)
	if pi > 0 {
		p.idx[level-1] = pi - 1
	}
	if len(parent.list.Recs) == 0 && level-1 == 0 {
		parent.list.TreeDepth = 0 // the whole tree is empty again
	}
	return nil
}

// relinkLeftNeighbour points the leaf holding cpos (the removed leaf's left
// neighbour, if any) at the removed leaf's successor.
func (t *Tree) relinkLeftNeighbour(p *path, cpos uint32, removed, next uint64) error {
	lp, err := t.pathTo(cpos)
	if err != nil {
		return err
	}
	left := lp.leaf()
	if left.eb == nil || left.eb.Blkno == removed || left.eb.NextLeafBlk != removed {
		return nil
	}
	// Edit the copy this edit already holds, if any.
	for _, n := range p.all() {
		if n.eb != nil && n.eb.Blkno == left.eb.Blkno {
			left = n
		}
	}
	left.eb.NextLeafBlk = next
	left.dirty = true
	p.others = append(p.others, left)
	return nil
}

// shrinkDepth pulls a lone child's records up into the root while they
// fit, freeing the child: trees shrink as files do.
func (t *Tree) shrinkDepth(p *path) error {
	root := t.Root
	for root.TreeDepth > 0 && len(root.Recs) == 1 {
		child, err := t.childList(p, root.Recs[0].Blkno, root.TreeDepth-1)
		if err != nil {
			return err
		}
		if len(child.list.Recs) > int(root.Count) {
			return nil
		}
		root.Recs = slices.Clone(child.list.Recs)
		root.TreeDepth--
		if err := t.freeBlock(child); err != nil {
			return err
		}
		p.nodes[0].dirty = true
	}
	return nil
}

// writeBack encodes every dirty block into its buffer through the Tx and
// records the rightmost leaf.
func (t *Tree) writeBack(p *path) error {
	seen := map[uint64]bool{}
	for _, n := range p.all() {
		if n.eb == nil || !n.dirty || n.freed || seen[n.eb.Blkno] {
			continue
		}
		seen[n.eb.Blkno] = true
		var buf *metacache.Buffer
		var err error
		if n.fresh {
			buf, err = t.Tx.New(n.eb.Blkno)
		} else {
			buf = n.buf
			err = t.Tx.Access(buf)
		}
		if err != nil {
			return err
		}
		n.eb.Encode(buf.Data)
		t.Tx.Dirty(buf, ondisk.ExtentBlockCheckOffset)
		n.buf, n.fresh = buf, false
	}
	return t.updateLastEB()
}

func (t *Tree) updateLastEB() error {
	t.LastEB = 0
	l := t.Root
	for l.TreeDepth > 0 && len(l.Recs) > 0 {
		t.LastEB = l.Recs[len(l.Recs)-1].Blkno
		eb, err := t.C.ExtentBlock(t.LastEB)
		if err != nil {
			return err
		}
		l = &eb.List
	}
	return nil
}

// mergeAdjacent joins neighbouring leaf records that continue each other
// logically and physically with the same flags (up to MaxLeafClusters).
func mergeAdjacent(recs []ondisk.ExtentRec, bpc uint64) []ondisk.ExtentRec {
	out := recs[:0]
	for _, r := range recs {
		if r.Clusters == 0 {
			continue
		}
		if n := len(out); n > 0 {
			l := &out[n-1]
			if l.End() == uint64(r.Cpos) && l.Flags == r.Flags &&
				l.Blkno+uint64(l.Clusters)*bpc == r.Blkno &&
				uint64(l.Clusters)+uint64(r.Clusters) <= ondisk.MaxLeafClusters {
				l.Clusters += r.Clusters
				continue
			}
		}
		out = append(out, r)
	}
	return out
}
