package fsck

import (
	"errors"
	"fmt"
	"sort"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Directory indexes (libocfs2's ocfs2_dx_dir_truncate and
// ocfs2_dx_dir_build, which fsck.ocfs2 runs for every directory pass 2
// changed or found without an index). The index o2go builds is what the
// kernel's lookup expects: every entry with a name (dots included) hashed
// with the volume's seeds, inline in the root when they fit, else in
// clusters of leaves whose extent records are keyed by the first major
// hash they serve; the directory blocks with room are chained as the
// free-space list.

// dxBuildEntry is one name to index.
type dxBuildEntry struct {
	major, minor uint32
	blk          uint64
}

// reindexDir drops a directory's index, if any, and builds a new one.
func (c *checker) reindexDir(ino uint64) error {
	return c.withTx(func(tx metacache.Tx, e *repairEnv) error {
		d, err := c.v.Cache.Dinode(ino)
		if err != nil {
			return err
		}
		cp, err := cloneTyped(d, c.bs)
		if err != nil {
			return err
		}
		if cp.Inline != nil || cp.Extents == nil {
			return fmt.Errorf("directory %d is inline: it needs no index", ino)
		}
		if cp.DynFeatures&ondisk.DynIndexedDir != 0 && cp.DxRoot != 0 {
			if err := c.truncateDxIndex(tx, e, cp); err != nil {
				c.verbosef("directory %d: old index not freed: %v\n", ino, err)
			}
		}
		cp.DynFeatures &^= ondisk.DynIndexedDir
		cp.DxRoot = 0
		if err := c.buildDxIndex(tx, e, cp); err != nil {
			return err
		}
		return saveDinode(c.v.Cache, tx, cp)
	})
}

// truncateDxIndex frees an index: its leaf clusters, extent blocks and root.
func (c *checker) truncateDxIndex(tx metacache.Tx, e *repairEnv, d *ondisk.Dinode) error {
	root, err := c.v.Cache.DXRoot(d.DxRoot, d.Blkno)
	if err != nil {
		return err
	}
	if !root.Inline() {
		list := root.List
		list.Recs = append([]ondisk.ExtentRec(nil), root.List.Recs...)
		t := &extent.Tree{C: c.v.Cache, Tx: tx, Alloc: e.fs.W.Alloc.Blocks, Root: &list,
			BlocksPerCluster: c.bpc, Owner: fmt.Sprintf("directory %d index", d.Blkno), LastEB: root.LastEBBlk}
		removed, err := t.Remove(0, ^uint32(0))
		if err != nil {
			return err
		}
		for _, r := range removed {
			if err := e.global.FreeClusters(tx, uint32(r.Blkno/c.bpc), int(r.Clusters)); err != nil {
				return err
			}
		}
	}
	mb := extent.MetaBlock{Blkno: root.Blkno, Slot: root.SuballocSlot, Bit: root.SuballocBit, GroupBlkno: root.SuballocLoc}
	tx.Revoke(root.Blkno)
	return e.fs.W.Alloc.Blocks.FreeMetaBlock(tx, mb)
}

// buildDxIndex indexes every name of directory d (which has no index)
// and links its blocks with free space.
func (c *checker) buildDxIndex(tx metacache.Tx, e *repairEnv, d *ondisk.Dinode) error {
	var ents []dxBuildEntry
	var freeBlks []uint64
	nblocks := (d.Size + uint64(c.bs) - 1) / uint64(c.bs)
	trOff := ondisk.TrailerOffset(c.bs)
	var blocks []uint64
	err := extent.Walk(c.v.Cache, d.Extents, fmt.Sprintf("directory %d", d.Blkno), func(r ondisk.ExtentRec) error {
		for i := uint64(0); i < uint64(r.Clusters)*c.bpc; i++ {
			if uint64(r.Cpos)*c.bpc+i < nblocks {
				blocks = append(blocks, r.Blkno+i)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	bufs := make([]*metacache.Buffer, len(blocks))
	for i, blk := range blocks {
		b, err := c.v.Cache.Get(blk)
		if err != nil {
			return err
		}
		if !ondisk.HasDirTrailerSignature(b.Data) {
			return fmt.Errorf("directory %d: block %d has no trailer, which an indexed directory needs", d.Blkno, blk)
		}
		bufs[i] = b
		area := b.Data[:trOff]
		_, des, err := ondisk.DirEntries(area)
		if err != nil {
			return c.v.Cache.Annotate(err, blk)
		}
		for _, de := range des {
			if de.Inode == 0 {
				continue
			}
			major, minor := ondisk.DXHashString(de.Name, c.sb.DxSeed, ondisk.SignedChar)
			ents = append(ents, dxBuildEntry{major, minor, blk})
		}
		if n, err := ondisk.LargestFreeSpace(area); err == nil && n > 0 {
			freeBlks = append(freeBlks, blk)
		}
	}
	// The free-space list through the trailers.
	for i, b := range bufs {
		if err := tx.Access(b); err != nil {
			return err
		}
		tr := b.Data[trOff:]
		n, _ := ondisk.LargestFreeSpace(b.Data[:trOff])
		put16(tr, trFreeRec, uint16(n))
		put64(tr, 0x20, 0)
		for j, fb := range freeBlks {
			if fb == blocks[i] && j+1 < len(freeBlks) {
				put64(tr, 0x20, freeBlks[j+1])
			}
		}
		tx.Dirty(b, ondisk.DirBlockCheckOffset(c.bs))
	}
	mb, err := e.fs.W.Alloc.Blocks.NewMetaBlock(tx)
	if err != nil {
		return err
	}
	root := &ondisk.DXRoot{SuballocSlot: mb.Slot, SuballocBit: mb.Bit, SuballocLoc: mb.GroupBlkno,
		FSGeneration: c.gen, Blkno: mb.Blkno, DirBlkno: d.Blkno, NumEntries: uint32(len(ents))}
	if len(freeBlks) > 0 {
		root.FreeBlk = freeBlks[0]
	}
	if len(ents) <= ondisk.DXRootEntryCapacity(c.bs) {
		root.Flags = ondisk.DXRootFlagInline
		root.Entries.Count = uint16(ondisk.DXRootEntryCapacity(c.bs))
		for _, x := range ents {
			root.Entries.Entries = append(root.Entries.Entries, ondisk.DXEntry{MajorHash: x.major, MinorHash: x.minor, DirentBlk: x.blk})
		}
	} else {
		root.List.Count = uint16(ondisk.DXRootExtentCapacity(c.bs))
		if err := c.fillDxLeaves(tx, e, d, root, ents); err != nil {
			return err
		}
	}
	rb, err := tx.New(mb.Blkno)
	if err != nil {
		return err
	}
	root.Encode(rb.Data)
	tx.Dirty(rb, ondisk.DXRootCheckOffset)
	d.DxRoot = mb.Blkno
	d.DynFeatures |= ondisk.DynIndexedDir
	return nil
}

var errHashCollisions = errors.New("too many names share one hash to index them")

// fillDxLeaves spreads the entries over clusters of leaves: sorted by
// major hash, each cluster takes the majors from its key up to the next
// cluster's key, as many as its leaves (picked by minor hash) can hold.
func (c *checker) fillDxLeaves(tx metacache.Tx, e *repairEnv, d *ondisk.Dinode, root *ondisk.DXRoot, ents []dxBuildEntry) error {
	sort.SliceStable(ents, func(i, j int) bool { return ents[i].major < ents[j].major })
	leafCap := ondisk.DXLeafCapacity(c.bs)
	bpc := int(c.bpc)
	type rng struct {
		key   uint32
		slots [][]ondisk.DXEntry
	}
	var ranges []*rng
	cur := &rng{key: 0, slots: make([][]ondisk.DXEntry, bpc)}
	empty := true
	for i := 0; i < len(ents); {
		j := i
		for j < len(ents) && ents[j].major == ents[i].major {
			j++
		}
		need := make([]int, bpc)
		for _, x := range ents[i:j] {
			need[int(x.minor)&(bpc-1)]++
		}
		fits := true
		for s, n := range need {
			if len(cur.slots[s])+n > leafCap {
				fits = false
			}
		}
		if !fits {
			if empty {
				return errHashCollisions
			}
			ranges = append(ranges, cur)
			cur = &rng{key: ents[i].major, slots: make([][]ondisk.DXEntry, bpc)}
			for _, n := range need {
				if n > leafCap {
					return errHashCollisions
				}
			}
		}
		for _, x := range ents[i:j] {
			s := int(x.minor) & (bpc - 1)
			cur.slots[s] = append(cur.slots[s], ondisk.DXEntry{MajorHash: x.major, MinorHash: x.minor, DirentBlk: x.blk})
		}
		empty = false
		i = j
	}
	ranges = append(ranges, cur)
	list := &root.List
	t := &extent.Tree{C: c.v.Cache, Tx: tx, Alloc: e.fs.W.Alloc.Blocks, Root: list,
		BlocksPerCluster: c.bpc, Owner: fmt.Sprintf("directory %d index", d.Blkno)}
	goal := uint32(0)
	for _, r := range ranges {
		run, err := e.global.ClaimClusters(tx, goal, 1, 1)
		if err != nil {
			return err
		}
		goal = run.Start + 1
		first := uint64(run.Start) * c.bpc
		for s := 0; s < bpc; s++ {
			lb, err := tx.New(first + uint64(s))
			if err != nil {
				return err
			}
			leaf := &ondisk.DXLeaf{Blkno: first + uint64(s), FSGeneration: c.gen,
				List: ondisk.DXEntryList{Count: uint16(leafCap), Entries: r.slots[s]}}
			leaf.Encode(lb.Data)
			tx.Dirty(lb, ondisk.DXLeafCheckOffset)
		}
		if err := t.Insert(ondisk.ExtentRec{Cpos: r.key, Clusters: 1, Blkno: first}); err != nil {
			return err
		}
		root.Clusters++
	}
	root.LastEBBlk = t.LastEB
	return nil
}
