package extent

import (
	"fmt"
	"slices"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// RefcountTree edits one refcount tree (the REFCOUNT_TREE feature, reflinks):
// for every run of physical clusters that extent records of the inodes
// sharing the tree point at, how many such records there are. Clusters no
// record of the tree mentions are not shared; a count of 1 means one extent
// record still carries the REFCOUNTED flag for them (copy on write then just
// clears the flag). Records with count 0 are never stored.
//
// The tree starts as one REFCNT1 root whose body is a sorted list of
// records. When that list overflows, the records move into a leaf block and
// the root becomes an index: an extent list (the ordinary extent tree code,
// with EXBLK01 blocks once it outgrows the root) whose records are keyed by
// the first physical cluster a leaf covers, each one cluster long and never
// merged. A full leaf splits in two; a leaf that empties is freed; when one
// leaf is left its records move back into the root. Leaf i covers physical
// clusters from its key up to the next leaf's key; the first leaf also
// covers everything below its key (its key moves down when a record lands
// there), as in the kernel's fs/ocfs2/refcounttree.c.
//
// Physical cluster numbers are 64-bit on disk but OCFS2 volumes have fewer
// than 2^32 clusters, and the index keys are the low 32 bits; a record at
// or past 2^32 is rejected as corruption.
//
// Every block goes through Tx (Access before a change, New for new blocks,
// Dirty with the META_ECC seal, Revoke for freed ones); blocks come from and
// go back to Alloc (the slot's extent_alloc).
type RefcountTree struct {
	C     *metacache.Cache
	Tx    metacache.Tx
	Alloc MetaAllocator
	// Root is the tree's REFCNT1 root block (an inode's i_refcount_loc).
	Root uint64
	// Blocks counts blocks added (+) and freed (-) by edits.
	Blocks int
}

// refcountLimit is the first physical cluster a refcount record may not
// reach: cluster numbers are 32-bit in OCFS2.
const refcountLimit = NoMore

func (t *RefcountTree) owner() string { return fmt.Sprintf("refcount tree %d", t.Root) }

func (t *RefcountTree) corrupt(blkno uint64, field, format string, args ...any) error {
	return fmt.Errorf("%s: %w", t.owner(), t.C.Annotate(&ondisk.CorruptError{Struct: "refcount block", Field: field, Msg: fmt.Sprintf(format, args...)}, blkno))
}

// NewRefcountTree allocates an empty refcount tree for one inode (rf_count
// 1) and returns its root block. generation is the tree's rf_generation
// (the kernel takes the next inode generation); it names the tree's cluster
// lock.
func NewRefcountTree(c *metacache.Cache, tx metacache.Tx, alloc MetaAllocator, generation uint32) (uint64, error) {
	mb, err := alloc.NewMetaBlock(tx)
	if err != nil {
		return 0, fmt.Errorf("allocating a refcount tree root: %w", err)
	}
	rb := &ondisk.RefcountBlock{
		SuballocSlot: mb.Slot, SuballocBit: mb.Bit, SuballocLoc: mb.GroupBlkno,
		FSGeneration: c.FSGeneration(), Blkno: mb.Blkno, Count: 1, Generation: generation,
		Records: ondisk.RefcountList{Count: uint16(ondisk.RefcountRecCapacity(c.BlockSize()))},
	}
	buf, err := tx.New(mb.Blkno)
	if err != nil {
		return 0, err
	}
	rb.Encode(buf.Data)
	tx.Dirty(buf, ondisk.RefcountBlockCheckOffset)
	return mb.Blkno, nil
}

// cloneRefcountBlock copies rb deeply: decoded blocks are shared with
// other readers of the cache.
func cloneRefcountBlock(rb *ondisk.RefcountBlock) *ondisk.RefcountBlock {
	c := *rb
	c.Records.Recs = slices.Clone(rb.Records.Recs)
	c.List.Recs = slices.Clone(rb.List.Recs)
	return &c
}

// loadRoot reads the root, checked, as a private copy with its buffer.
func (t *RefcountTree) loadRoot() (*ondisk.RefcountBlock, *metacache.Buffer, error) {
	rb, err := t.C.RefcountBlock(t.Root)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", t.owner(), err)
	}
	if rb.Leaf() {
		return nil, nil, t.corrupt(t.Root, "rf_flags", "is 0x%x: an inode's refcount root is a leaf of tree %d", rb.Flags, rb.Parent)
	}
	if !rb.Tree() {
		if err := t.checkList(rb, t.Root, 0, refcountLimit); err != nil {
			return nil, nil, err
		}
	}
	buf, err := t.C.Get(t.Root)
	if err != nil {
		return nil, nil, err
	}
	return cloneRefcountBlock(rb), buf, nil
}

// checkList verifies a record list read from blkno: sorted, counted, and
// inside [lo, hi).
func (t *RefcountTree) checkList(rb *ondisk.RefcountBlock, blkno, lo, hi uint64) error {
	l := &rb.Records
	if err := l.CheckOrder(); err != nil {
		return fmt.Errorf("%s: %w", t.owner(), t.C.Annotate(err, blkno))
	}
	if n := len(l.Recs); n > 0 {
		if l.Recs[0].Cpos < lo {
			return t.corrupt(blkno, "rl_recs[0].r_cpos", "is %d, below the leaf's key %d", l.Recs[0].Cpos, lo)
		}
		if end := l.Recs[n-1].End(); end > hi {
			return t.corrupt(blkno, fmt.Sprintf("rl_recs[%d]", n-1), "ends at cluster %d, past the leaf's range end %d", end, hi)
		}
	}
	return nil
}

// refLeaf is the record list an edit works on: the root's own list, or a
// leaf block below an index.
type refLeaf struct {
	rb    *ondisk.RefcountBlock // private copy
	buf   *metacache.Buffer     // nil for a block allocated by this edit
	root  bool                  // the root's inline list
	key   uint32                // the leaf's index key (tree leaves)
	first bool                  // the leftmost leaf: also covers clusters below key
	hi    uint64                // first cluster past the leaf's range
}

// findLeaf returns the list whose range holds physical cluster cpos.
func (t *RefcountTree) findLeaf(root *ondisk.RefcountBlock, rootBuf *metacache.Buffer, cpos uint64) (*refLeaf, error) {
	if !root.Tree() {
		return &refLeaf{rb: root, buf: rootBuf, root: true, first: true, hi: refcountLimit}, nil
	}
	lf, err := FindLeaf(t.C, &root.List, uint32(cpos), t.owner())
	if err != nil {
		return nil, err
	}
	l := lf.List
	if len(l.Recs) == 0 {
		return nil, t.corrupt(t.Root, "rf_list", "the root is an index (TREE_FL) without leaves")
	}
	i, _ := l.Find(uint32(cpos))
	hi := lf.Next
	if i+1 < len(l.Recs) {
		hi = uint64(l.Recs[i+1].Cpos)
	}
	first := i == 0 && t.leftmost(root, lf.Blkno)
	key := l.Recs[i].Cpos
	rb, buf, err := t.loadLeaf(root, l.Recs[i].Blkno, key, first, hi)
	if err != nil {
		return nil, err
	}
	return &refLeaf{rb: rb, buf: buf, key: key, first: first, hi: hi}, nil
}

// leftmost reports whether the index leaf at blk (0: the root list) is the
// first one of the index.
func (t *RefcountTree) leftmost(root *ondisk.RefcountBlock, blk uint64) bool {
	l := &root.List
	for l.TreeDepth > 0 {
		if len(l.Recs) == 0 {
			return false
		}
		child := l.Recs[0].Blkno
		if child == blk {
			return true
		}
		eb, err := t.C.ExtentBlock(child)
		if err != nil {
			return false
		}
		l = &eb.List
	}
	return blk == 0
}

// loadLeaf reads leaf block blk of root, checked, as a private copy.
func (t *RefcountTree) loadLeaf(root *ondisk.RefcountBlock, blk uint64, key uint32, first bool, hi uint64) (*ondisk.RefcountBlock, *metacache.Buffer, error) {
	rb, err := t.C.RefcountBlock(blk)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: leaf: %w", t.owner(), err)
	}
	switch {
	case !rb.Leaf():
		return nil, nil, t.corrupt(blk, "rf_flags", "is 0x%x, want a leaf (0x%x) under root %d", rb.Flags, ondisk.RefcountLeafFlag, root.Blkno)
	case rb.Parent != root.Blkno:
		return nil, nil, t.corrupt(blk, "rf_parent", "is %d, want the root %d", rb.Parent, root.Blkno)
	}
	lo := uint64(key)
	if first {
		lo = 0
	}
	if err := t.checkList(rb, blk, lo, hi); err != nil {
		return nil, nil, err
	}
	buf, err := t.C.Get(blk)
	if err != nil {
		return nil, nil, err
	}
	return cloneRefcountBlock(rb), buf, nil
}

// index is the extent tree editor over the root's index list. Index
// records are one cluster long and never merge (BlocksPerCluster 0: no two
// leaves are "physically contiguous").
func (t *RefcountTree) index(root *ondisk.RefcountBlock) *Tree {
	return &Tree{C: t.C, Tx: t.Tx, Alloc: t.Alloc, Root: &root.List, Owner: t.owner(), LastEB: root.LastEBBlk}
}

// write encodes rb into its buffer through the Tx (New for a fresh block).
func (t *RefcountTree) write(rb *ondisk.RefcountBlock, buf *metacache.Buffer) (*metacache.Buffer, error) {
	var err error
	if buf == nil {
		buf, err = t.Tx.New(rb.Blkno)
	} else {
		err = t.Tx.Access(buf)
	}
	if err != nil {
		return nil, err
	}
	rb.Encode(buf.Data)
	t.Tx.Dirty(buf, ondisk.RefcountBlockCheckOffset)
	return buf, nil
}

// newLeaf allocates a leaf block of root keyed at key.
func (t *RefcountTree) newLeaf(root *ondisk.RefcountBlock, key uint32, recs []ondisk.RefcountRec) (*ondisk.RefcountBlock, error) {
	mb, err := t.Alloc.NewMetaBlock(t.Tx)
	if err != nil {
		return nil, fmt.Errorf("%s: allocating a leaf block: %w", t.owner(), err)
	}
	t.Blocks++
	return &ondisk.RefcountBlock{
		SuballocSlot: mb.Slot, SuballocBit: mb.Bit, SuballocLoc: mb.GroupBlkno,
		FSGeneration: t.C.FSGeneration(), Blkno: mb.Blkno, Parent: root.Blkno,
		Flags: ondisk.RefcountLeafFlag, Cpos: key, Generation: root.Generation,
		Records: ondisk.RefcountList{Count: uint16(ondisk.RefcountRecCapacity(t.C.BlockSize())), Recs: recs},
	}, nil
}

// free returns a metadata block of the tree to its allocator.
func (t *RefcountTree) free(m MetaBlock) error {
	if err := t.Alloc.FreeMetaBlock(t.Tx, m); err != nil {
		return fmt.Errorf("%s: freeing block %d: %w", t.owner(), m.Blkno, err)
	}
	t.Tx.Revoke(m.Blkno)
	t.Blocks--
	return nil
}

func refcountMeta(rb *ondisk.RefcountBlock) MetaBlock {
	return MetaBlock{Blkno: rb.Blkno, Slot: rb.SuballocSlot, Bit: rb.SuballocBit, GroupBlkno: rb.SuballocLoc}
}

// Attach adds one inode to the tree's users (rf_count).
func (t *RefcountTree) Attach() error {
	root, buf, err := t.loadRoot()
	if err != nil {
		return err
	}
	if root.Count == ^uint32(0) {
		return t.corrupt(t.Root, "rf_count", "is at its maximum %d", root.Count)
	}
	root.Count++
	_, err = t.write(root, buf)
	return err
}

// Detach removes one inode from the tree's users. The last one frees the
// tree's blocks (root, leaves, index blocks) and reports freed. By then
// every extent that referenced the tree is gone, so records left over mean
// damage: that is an error and nothing changes.
func (t *RefcountTree) Detach() (freed bool, err error) {
	root, buf, err := t.loadRoot()
	if err != nil {
		return false, err
	}
	if root.Count == 0 {
		return false, t.corrupt(t.Root, "rf_count", "is 0 while an inode still points at the tree")
	}
	if root.Count > 1 {
		root.Count--
		_, err = t.write(root, buf)
		return false, err
	}
	var left int
	var leaves []*ondisk.RefcountBlock
	if err := t.walkLeaves(root, func(rb *ondisk.RefcountBlock) error {
		left += len(rb.Records.Recs)
		if rb.Blkno != root.Blkno {
			leaves = append(leaves, rb)
		}
		return nil
	}); err != nil {
		return false, err
	}
	if left > 0 {
		return false, t.corrupt(t.Root, "rf_count", "the last inode of the tree lets go while %d refcount records remain", left)
	}
	for _, rb := range leaves {
		if err := t.free(refcountMeta(rb)); err != nil {
			return false, err
		}
	}
	if root.Tree() {
		if err := t.freeIndexBlocks(&root.List); err != nil {
			return false, err
		}
	}
	return true, t.free(refcountMeta(root))
}

// freeIndexBlocks frees the EXBLK01 blocks below an index list.
func (t *RefcountTree) freeIndexBlocks(l *ondisk.ExtentList) error {
	if l.TreeDepth == 0 {
		return nil
	}
	for _, r := range l.Recs {
		eb, err := t.C.ExtentBlock(r.Blkno)
		if err != nil {
			return fmt.Errorf("%s: index: %w", t.owner(), err)
		}
		if err := t.freeIndexBlocks(&eb.List); err != nil {
			return err
		}
		if err := t.free(MetaBlock{Blkno: eb.Blkno, Slot: eb.SuballocSlot, Bit: eb.SuballocBit, GroupBlkno: eb.SuballocLoc}); err != nil {
			return err
		}
	}
	return nil
}

// walkLeaves calls fn for every record list of the tree in cluster order:
// the root itself, or each leaf block (checked) of its index.
func (t *RefcountTree) walkLeaves(root *ondisk.RefcountBlock, fn func(rb *ondisk.RefcountBlock) error) error {
	if !root.Tree() {
		return fn(root)
	}
	var keys []ondisk.ExtentRec
	if err := Walk(t.C, &root.List, t.owner(), func(r ondisk.ExtentRec) error {
		keys = append(keys, r)
		return nil
	}); err != nil {
		return err
	}
	for i, k := range keys {
		hi := refcountLimit
		if i+1 < len(keys) {
			hi = uint64(keys[i+1].Cpos)
		}
		rb, _, err := t.loadLeaf(root, k.Blkno, k.Cpos, i == 0, hi)
		if err != nil {
			return err
		}
		if err := fn(rb); err != nil {
			return err
		}
	}
	return nil
}

// Walk calls fn for every record of the tree in cluster order.
func (t *RefcountTree) Walk(fn func(r ondisk.RefcountRec) error) error {
	root, _, err := t.loadRoot()
	if err != nil {
		return err
	}
	var last uint64
	return t.walkLeaves(root, func(rb *ondisk.RefcountBlock) error {
		for i, r := range rb.Records.Recs {
			if r.Cpos < last {
				return t.corrupt(rb.Blkno, fmt.Sprintf("rl_recs[%d].r_cpos", i), "is %d, overlapping a record of the previous leaf ending at %d", r.Cpos, last)
			}
			last = r.End()
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// Lookup returns the record covering physical cluster cpos, whole, or
// when none does a record with Refcount 0 from cpos to the next record,
// the end of the leaf's range or cpos+n, whichever comes first.
func (t *RefcountTree) Lookup(cpos uint64, n uint32) (ondisk.RefcountRec, error) {
	if cpos >= refcountLimit {
		return ondisk.RefcountRec{}, fmt.Errorf("%s: cluster %d is beyond the 32-bit cluster space: %w", t.owner(), cpos, ondisk.ErrCorrupt)
	}
	root, buf, err := t.loadRoot()
	if err != nil {
		return ondisk.RefcountRec{}, err
	}
	lf, err := t.findLeaf(root, buf, cpos)
	if err != nil {
		return ondisk.RefcountRec{}, err
	}
	l := &lf.rb.Records
	if i, ok := l.Find(cpos); ok {
		return l.Recs[i], nil
	}
	end := min(cpos+uint64(n), lf.hi)
	for _, r := range l.Recs {
		if r.Cpos > cpos {
			end = min(end, r.Cpos)
			break
		}
	}
	return ondisk.RefcountRec{Cpos: cpos, Clusters: uint32(end - cpos)}, nil
}

// Increase adds one reference to each of the n physical clusters from
// cpos: counted clusters go up by one, uncounted ones get a count of 1.
func (t *RefcountTree) Increase(cpos uint64, n uint32) error {
	return t.change(cpos, n, +1, nil)
}

// Decrease drops one reference from each of the n physical clusters from
// cpos, which must all be counted. Runs whose count reaches zero leave the
// tree and are passed to freed (nil: nobody needs to know, as when copy on
// write takes the last reference and keeps the clusters).
func (t *RefcountTree) Decrease(cpos uint64, n uint32, freed func(cpos uint64, n uint32) error) error {
	return t.change(cpos, n, -1, freed)
}

// change applies delta to [cpos, cpos+n), one leaf at a time.
func (t *RefcountTree) change(cpos uint64, n uint32, delta int64, freed func(uint64, uint32) error) error {
	end := cpos + uint64(n)
	if end > refcountLimit {
		return fmt.Errorf("%s: clusters [%d,%d) reach beyond the 32-bit cluster space: %w", t.owner(), cpos, end, ondisk.ErrCorrupt)
	}
	for cur := cpos; cur < end; {
		root, rootBuf, err := t.loadRoot()
		if err != nil {
			return err
		}
		lf, err := t.findLeaf(root, rootBuf, cur)
		if err != nil {
			return err
		}
		stop := min(end, lf.hi)
		if stop <= cur {
			return t.corrupt(lf.rb.Blkno, "rf_cpos", "the leaf found for cluster %d ends at %d", cur, lf.hi)
		}
		recs, zero, err := applyRefcountDelta(lf.rb.Records.Recs, cur, stop, delta)
		if err != nil {
			return fmt.Errorf("%s: %w", t.owner(), t.C.Annotate(err, lf.rb.Blkno))
		}
		lf.rb.Records.Recs = recs
		if err := t.store(root, rootBuf, lf); err != nil {
			return err
		}
		if freed != nil {
			for _, z := range zero {
				if err := freed(z.Cpos, z.Clusters); err != nil {
					return err
				}
			}
		}
		cur = stop
	}
	return nil
}

// applyRefcountDelta changes the counts of clusters [lo, hi) in recs by
// delta (+1 or -1). Uncounted clusters become records of count 1 when
// delta is +1 and are an error when it is -1. It returns the new records,
// merged where they continue each other with the same count, and the runs
// whose count reached zero.
func applyRefcountDelta(recs []ondisk.RefcountRec, lo, hi uint64, delta int64) (out, zero []ondisk.RefcountRec, err error) {
	hole := func(from, to uint64) error {
		if delta < 0 {
			return &ondisk.CorruptError{Struct: "refcount block", Field: "rl_recs",
				Msg: fmt.Sprintf("no record counts clusters [%d,%d), which an extent still shares", from, to)}
		}
		out = append(out, ondisk.RefcountRec{Cpos: from, Clusters: uint32(to - from), Refcount: 1})
		return nil
	}
	i := 0
	for ; i < len(recs) && recs[i].End() <= lo; i++ {
		out = append(out, recs[i])
	}
	cur := lo
	for ; i < len(recs) && recs[i].Cpos < hi; i++ {
		r := recs[i]
		if r.Cpos > cur {
			if err := hole(cur, r.Cpos); err != nil {
				return nil, nil, err
			}
		}
		if r.Cpos < lo {
			out = append(out, ondisk.RefcountRec{Cpos: r.Cpos, Clusters: uint32(lo - r.Cpos), Refcount: r.Refcount})
		}
		s, e := max(r.Cpos, lo), min(r.End(), hi)
		switch c := int64(r.Refcount) + delta; {
		case c == 0:
			if k := len(zero); k > 0 && zero[k-1].End() == s {
				zero[k-1].Clusters += uint32(e - s)
			} else {
				zero = append(zero, ondisk.RefcountRec{Cpos: s, Clusters: uint32(e - s)})
			}
		case c > int64(^uint32(0)):
			return nil, nil, &ondisk.CorruptError{Struct: "refcount block", Field: "r_refcount",
				Msg: fmt.Sprintf("clusters [%d,%d) already have the most references a record can count (%d)", s, e, r.Refcount)}
		default:
			out = append(out, ondisk.RefcountRec{Cpos: s, Clusters: uint32(e - s), Refcount: uint32(c)})
		}
		if r.End() > hi {
			out = append(out, ondisk.RefcountRec{Cpos: hi, Clusters: uint32(r.End() - hi), Refcount: r.Refcount})
		}
		cur = e
	}
	if cur < hi {
		if err := hole(cur, hi); err != nil {
			return nil, nil, err
		}
	}
	out = append(out, recs[i:]...)
	return mergeRefcountRecs(out), zero, nil
}

// mergeRefcountRecs joins records that continue each other with the same
// count, as the kernel does after every change.
func mergeRefcountRecs(recs []ondisk.RefcountRec) []ondisk.RefcountRec {
	out := recs[:0]
	for _, r := range recs {
		if n := len(out); n > 0 {
			l := &out[n-1]
			if l.End() == r.Cpos && l.Refcount == r.Refcount && uint64(l.Clusters)+uint64(r.Clusters) <= uint64(^uint32(0)) {
				l.Clusters += r.Clusters
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// store writes an edited record list back, reshaping the tree: an
// overflowing root list moves into a leaf under a new index, an
// overflowing leaf splits, an empty leaf is freed (and a lone remaining
// leaf folds back into the root), and the first leaf's key follows a record
// that landed below it.
func (t *RefcountTree) store(root *ondisk.RefcountBlock, rootBuf *metacache.Buffer, lf *refLeaf) error {
	recs := lf.rb.Records.Recs
	if lf.root {
		if len(recs) <= int(root.Records.Count) {
			_, err := t.write(root, rootBuf)
			return err
		}
		if err := t.expandRoot(root, lf); err != nil {
			return err
		}
	}
	idx := t.index(root)
	switch capacity := int(lf.rb.Records.Count); {
	case len(recs) == 0:
		if err := t.dropLeaf(root, idx, lf); err != nil {
			return err
		}
		return t.finishIndex(root, rootBuf, idx)
	case len(recs) > capacity:
		pieces := splitRefcountRecs(recs, capacity)
		lf.rb.Records.Recs = pieces[0]
		if err := t.moveKeyDown(idx, lf); err != nil {
			return err
		}
		for _, p := range pieces[1:] {
			key := uint32(p[0].Cpos)
			leaf, err := t.newLeaf(root, key, p)
			if err != nil {
				return err
			}
			if _, err := t.write(leaf, nil); err != nil {
				return err
			}
			if err := idx.Insert(ondisk.ExtentRec{Cpos: key, Clusters: 1, Blkno: leaf.Blkno}); err != nil {
				return err
			}
			root.Clusters++
		}
	default:
		if err := t.moveKeyDown(idx, lf); err != nil {
			return err
		}
	}
	if _, err := t.write(lf.rb, lf.buf); err != nil {
		return err
	}
	return t.finishIndex(root, rootBuf, idx)
}

// finishIndex records the index's last leaf in the root and writes it.
func (t *RefcountTree) finishIndex(root *ondisk.RefcountBlock, rootBuf *metacache.Buffer, idx *Tree) error {
	if root.Tree() {
		root.LastEBBlk = idx.LastEB
	}
	_, err := t.write(root, rootBuf)
	return err
}

// expandRoot moves the root's records into a new leaf keyed at 0 and turns
// the root into an index with that one leaf (the kernel's
// ocfs2_expand_inline_ref_root); lf becomes the new leaf.
func (t *RefcountTree) expandRoot(root *ondisk.RefcountBlock, lf *refLeaf) error {
	leaf, err := t.newLeaf(root, 0, lf.rb.Records.Recs)
	if err != nil {
		return err
	}
	root.Flags = (root.Flags &^ ondisk.RefcountLeafFlag) | ondisk.RefcountTreeFlag
	root.Records = ondisk.RefcountList{}
	root.List = ondisk.ExtentList{Count: uint16(ondisk.RefcountTreeCapacity(t.C.BlockSize())),
		Recs: []ondisk.ExtentRec{{Cpos: 0, Clusters: 1, Blkno: leaf.Blkno}}}
	root.Clusters = 1
	root.LastEBBlk = 0
	*lf = refLeaf{rb: leaf, key: 0, first: true, hi: refcountLimit}
	return nil
}

// moveKeyDown re-keys the first leaf to 0 when a record landed below its
// key (o2go keeps the first key at 0; a tree the kernel left with a higher
// one gets it back here, where the kernel would move the key to the record).
func (t *RefcountTree) moveKeyDown(idx *Tree, lf *refLeaf) error {
	recs := lf.rb.Records.Recs
	if len(recs) == 0 || recs[0].Cpos >= uint64(lf.key) {
		return nil
	}
	if !lf.first {
		return t.corrupt(lf.rb.Blkno, "rf_cpos", "record at cluster %d lies below the key %d of a leaf that is not the first", recs[0].Cpos, lf.key)
	}
	return t.rekey(idx, lf, 0, false)
}

// rekey moves leaf lf to index key key, writing the leaf now when asked
// (otherwise its caller writes it).
func (t *RefcountTree) rekey(idx *Tree, lf *refLeaf, key uint32, write bool) error {
	if _, err := idx.Remove(lf.key, 1); err != nil {
		return err
	}
	lf.key = key
	lf.rb.Cpos = key
	if err := idx.Insert(ondisk.ExtentRec{Cpos: key, Clusters: 1, Blkno: lf.rb.Blkno}); err != nil {
		return err
	}
	if write {
		_, err := t.write(lf.rb, lf.buf)
		return err
	}
	return nil
}

// dropLeaf frees an emptied leaf and takes it out of the index; with no
// leaf left the root becomes an empty record list again, with one leaf
// left that leaf's records move back into the root.
func (t *RefcountTree) dropLeaf(root *ondisk.RefcountBlock, idx *Tree, lf *refLeaf) error {
	if _, err := idx.Remove(lf.key, 1); err != nil {
		return err
	}
	root.Clusters--
	if lf.buf != nil {
		if err := t.free(refcountMeta(lf.rb)); err != nil {
			return err
		}
	}
	var keys []ondisk.ExtentRec
	if err := Walk(t.C, &root.List, t.owner(), func(r ondisk.ExtentRec) error {
		keys = append(keys, r)
		return nil
	}); err != nil {
		return err
	}
	if len(keys) > 1 {
		if keys[0].Cpos == 0 {
			return nil
		}
		// The new first leaf covers everything below its key: say so with
		// key 0 (debugfs.ocfs2 walks leaves down from the top and stops
		// only at a key of 0).
		first, buf, err := t.loadLeaf(root, keys[0].Blkno, keys[0].Cpos, true, uint64(keys[1].Cpos))
		if err != nil {
			return err
		}
		return t.rekey(idx, &refLeaf{rb: first, buf: buf, key: keys[0].Cpos, first: true}, 0, true)
	}
	var recs []ondisk.RefcountRec
	if len(keys) == 1 {
		last, _, err := t.loadLeaf(root, keys[0].Blkno, keys[0].Cpos, true, refcountLimit)
		if err != nil {
			return err
		}
		recs = last.Records.Recs
		if len(recs) > ondisk.RefcountRecCapacity(t.C.BlockSize()) {
			return nil // cannot happen with the format's capacities; keep the leaf
		}
		if _, err := idx.Remove(keys[0].Cpos, 1); err != nil {
			return err
		}
		if err := t.free(refcountMeta(last)); err != nil {
			return err
		}
	}
	if root.List.TreeDepth != 0 || len(root.List.Recs) != 0 {
		return t.corrupt(root.Blkno, "rf_list", "index still has records after its last leaf left")
	}
	root.Flags &^= ondisk.RefcountTreeFlag
	root.List = ondisk.ExtentList{}
	root.Clusters, root.LastEBBlk, root.Cpos = 0, 0, 0
	root.Records = ondisk.RefcountList{Count: uint16(ondisk.RefcountRecCapacity(t.C.BlockSize())), Recs: recs}
	idx.LastEB = 0
	return nil
}

// splitRefcountRecs cuts an overfull list into the fewest pieces of at
// most capacity records, of nearly equal size (the kernel splits a full
// leaf in half).
func splitRefcountRecs(recs []ondisk.RefcountRec, capacity int) [][]ondisk.RefcountRec {
	k := (len(recs) + capacity - 1) / capacity
	out := make([][]ondisk.RefcountRec, 0, k)
	for i := 0; i < k; i++ {
		lo, hi := i*len(recs)/k, (i+1)*len(recs)/k
		out = append(out, slices.Clone(recs[lo:hi]))
	}
	return out
}
