package volume

import (
	"fmt"
	"slices"

	"o2go/internal/blockdev"
	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// --fs-features=[no]refcount (tunefs.ocfs2's feature_refcount.c over
// libocfs2's refcount.c). On: the flag. Off: every file that shares
// clusters through a refcount tree gets them for itself, offline, then the
// flag goes.
//
// The files found (every inode that is not a system file and carries
// HAS_REFCOUNT) are taken tree by tree, in the order of the trees' root
// blocks, each tree's files in inode scan order, as tunefs.ocfs2 takes
// them. For each file, its data tree and every xattr value tree that maps
// shared (REFCOUNTED) extents, in four steps:
//
//  1. every shared run the tree counts more than once is copied to new
//     clusters (unwritten ones are not copied: their contents do not
//     count), where libocfs2 would take them (claimClusters); a run counted
//     once is this file's alone and is kept;
//  2. the device is synced, then each run is remapped: to its copy, and
//     without the REFCOUNTED flag; the owner of the tree (the inode, or the
//     xattr block or bucket holding the value root) is written after each;
//  3. the device is synced, then one reference is dropped from each run in
//     the refcount tree; a copied run whose count reaches zero (a file that
//     shared clusters with itself) goes back to the global bitmap;
//  4. the inode loses HAS_REFCOUNT and i_refcount_loc, and then lets go of
//     the tree (rf_count); the tree's last file frees it (its root, leaves
//     and index blocks) whatever rf_count says.
//
// Counts a tree holds once its last file let go are stale (an earlier run
// stopped between remapping a file's runs and dropping their references):
// they are dropped with the tree, their clusters left as they are, kept by
// the files that map them or leaked for fsck.ocfs2 -fy to reclaim
// (dropRefcountTree). So is a tree no inode names any more (an earlier run
// stopped before its last file let go; fsck.ocfs2 does not look for
// those). The flag goes last.
//
// Crash safety: at every point the on-disk volume keeps every mapping a
// file had or its complete copy, and each tree counts at least every
// reference to it left; an interruption leaks clusters (copies not yet
// mapped, runs still counted) or a tree no inode names, and never shares
// or frees a cluster in use. fsck.ocfs2 -fy reclaims the leaked clusters,
// and the operation run again (before or after it) finishes the files left
// and frees the trees.
//
// Where o2go differs: tunefs.ocfs2 unshares a file's data only up to its
// size, so clusters preallocated past it stay flagged REFCOUNTED after
// their tree is gone; o2go unshares every mapped extent. It also counts
// the space it needs as every shared cluster; o2go counts the copies
// (every reference but one of each run).

func (t *tunefsVol) enableRefcount() error { return t.toggleFlag("refcount", true, nil) }

// sharedTree is an extent tree that may map shared runs: a file's data
// tree or an xattr value tree. save writes the root back where it lives.
type sharedTree struct {
	tree  *extent.Tree
	save  func() error
	owner string
}

// cowRun is one run of a shared tree and what becomes of it.
type cowRun struct {
	st     *sharedTree
	cpos   uint32 // logical cluster
	n      uint32
	old    uint64 // physical cluster shared
	copied bool
	new    uint64 // physical cluster of the copy (copied)
}

func (t *tunefsVol) disableRefcount() error {
	if t.already("refcount", false) {
		return nil
	}
	ok, err := t.askFeature("refcount", false)
	if err != nil || !ok {
		return err
	}
	users := map[uint64][]uint64{} // tree root -> inodes
	err = t.forEachInode("Scanning filesystem", func(d *ondisk.Dinode) error {
		if d.Flags&ondisk.InodeSystem != 0 || d.DynFeatures&ondisk.DynHasRefcount == 0 {
			return nil
		}
		if d.RefcountLoc == 0 || d.RefcountLoc >= t.Cache.Blocks() {
			return t.Cache.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "i_refcount_loc", Msg: fmt.Sprintf("is %d on an inode with HAS_REFCOUNT", d.RefcountLoc)}, d.Blkno)
		}
		users[d.RefcountLoc] = append(users[d.RefcountLoc], d.Blkno)
		return nil
	})
	if err != nil {
		return err
	}
	roots := slices.Sorted(func(yield func(uint64) bool) {
		for r := range users {
			if !yield(r) {
				return
			}
		}
	})
	if err := t.checkUnshareSpace(roots); err != nil {
		return err
	}
	done, total := 0, 0
	for _, r := range roots {
		total += len(users[r])
	}
	for _, root := range roots {
		rt := &extent.RefcountTree{C: t.Cache, Tx: t.tx, Alloc: slotMeta{t}, Root: root}
		for i, blk := range users[root] {
			if err := t.unshareInode(rt, blk, i == len(users[root])-1); err != nil {
				return fmt.Errorf("inode %d: %w", blk, err)
			}
			done++
			t.r.progress("Replacing files", int64(done), int64(total))
		}
	}
	orphans, err := t.orphanRefcountTrees(users)
	if err != nil {
		return err
	}
	for _, root := range orphans {
		t.verbosef("Freeing refcount tree %d, which no inode names any more\n", root)
		if err := t.dropRefcountTree(&extent.RefcountTree{C: t.Cache, Tx: t.tx, Alloc: slotMeta{t}, Root: root}); err != nil {
			return err
		}
	}
	if err := t.r.interrupt("refcount-before-super"); err != nil {
		return err
	}
	t.setFeature("refcount", false)
	return t.writeSuper()
}

// dropRefcountTree frees a refcount tree none of whose users is left:
// every count it still holds is stale (an earlier run stopped between
// remapping a file's runs and dropping their references), so its records
// are dropped without freeing their clusters (any a file still maps stays
// that file's; any none maps is a leak fsck.ocfs2 -fy reclaims), then the
// tree is let go of until it is freed.
func (t *tunefsVol) dropRefcountTree(rt *extent.RefcountTree) error {
	var stale []ondisk.RefcountRec
	if err := rt.Walk(func(r ondisk.RefcountRec) error {
		stale = append(stale, r)
		return nil
	}); err != nil {
		return err
	}
	if len(stale) > 0 {
		t.verbosef("Refcount tree %d still counts %d runs no file shares; dropping them\n", rt.Root, len(stale))
	}
	for _, r := range stale {
		for range r.Refcount {
			if err := rt.Decrease(r.Cpos, r.Clusters, nil); err != nil {
				return err
			}
		}
	}
	for freed := false; !freed; {
		var err error
		if freed, err = rt.Detach(); err != nil {
			return err
		}
	}
	return nil
}

// orphanRefcountTrees lists the refcount tree roots in use in the slots'
// extent_alloc that no inode names: what an interruption between an
// inode's last step and its letting go of the tree leaves (fsck.ocfs2
// does not look for them).
func (t *tunefsVol) orphanRefcountTrees(named map[uint64][]uint64) ([]uint64, error) {
	var out []uint64
	err := t.forEachExtentAllocBlock(func(_ int, blk uint64) error {
		if _, ok := named[blk]; ok {
			return nil
		}
		b, err := t.Cache.Get(blk)
		if err != nil {
			return err
		}
		if string(b.Data[:8]) != ondisk.RefcountBlockSignature {
			return nil
		}
		rb, err := ondisk.DecodeRefcountBlock(b.Data)
		if err != nil || rb.Blkno != blk || rb.FSGeneration != t.Super.FSGeneration || rb.Flags&ondisk.RefcountLeafFlag != 0 {
			return nil
		}
		out = append(out, blk)
		return nil
	})
	return out, err
}

// checkUnshareSpace refuses, before anything is written, when the global
// bitmap cannot hold a copy of every shared run (all references of a run
// but one) and the extent blocks remapping may add.
func (t *tunefsVol) checkUnshareSpace(roots []uint64) error {
	var copies, records uint64
	for _, root := range roots {
		rt := &extent.RefcountTree{C: t.Cache, Root: root}
		err := rt.Walk(func(r ondisk.RefcountRec) error {
			if r.Refcount > 1 {
				copies += uint64(r.Refcount-1) * uint64(r.Clusters)
			}
			records += uint64(max(r.Refcount, 1))
			return nil
		})
		if err != nil {
			return err
		}
	}
	// Each remapped run may split a record in three.
	recsPerEB := uint64(ondisk.ExtentBlockListCapacity(t.bs()))
	ebClusters := ((2*records+recsPerEB-1)/recsPerEB + t.bpc() - 1) / t.bpc()
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	u, err := gb.Usage()
	if err != nil {
		return err
	}
	t.verbosef("We have %d clusters free, and need %d clusters to unshare every refcounted file and %d clusters for more extent blocks\n", u.Free(), copies, ebClusters)
	if uint64(u.Free()) < copies+ebClusters {
		return tunefsRefuse("there is not enough space to unshare all of the refcounted files on %s: %d clusters are needed, %d are free", t.Path, copies+ebClusters, u.Free())
	}
	return nil
}

// unshareInode gives inode blk its own copy of every run it shares through
// tree rt, clears its refcount tree, and lets go of the tree; the last of
// the tree's files (last) frees it.
func (t *tunefsVol) unshareInode(rt *extent.RefcountTree, blk uint64, last bool) error {
	d, err := t.inodeForWrite(blk)
	if err != nil {
		return err
	}
	raw, err := t.readBlock(blk)
	if err != nil {
		return err
	}
	var area []byte // the inline xattr area, changed in raw
	if d.DynFeatures&ondisk.DynInlineXattr != 0 {
		if area, err = ondisk.InodeInlineXattrArea(raw, d.XattrInlineSize); err != nil {
			return t.Cache.Annotate(err, blk)
		}
	}
	saveInode := func() error { return t.writeInodeWithArea(d, area) }
	var trees []*sharedTree
	if d.Inline == nil && d.Extents != nil {
		tree, err := t.tree(d)
		if err != nil {
			return err
		}
		st := &sharedTree{tree: tree, owner: tree.Owner}
		st.save = func() error {
			d.LastEBBlk = tree.LastEB
			return saveInode()
		}
		trees = append(trees, st)
	}
	if area != nil {
		vt, err := t.sharedValueTrees(area, fmt.Sprintf("inode %d inline xattrs", blk), saveInode)
		if err != nil {
			return err
		}
		trees = append(trees, vt...)
	}
	if d.DynFeatures&ondisk.DynHasXattr != 0 && d.XattrLoc != 0 {
		vt, err := t.sharedXattrBlockTrees(d.XattrLoc)
		if err != nil {
			return err
		}
		trees = append(trees, vt...)
	}

	var runs []cowRun
	for _, st := range trees {
		r, err := t.copySharedRuns(rt, st)
		if err != nil {
			return err
		}
		runs = append(runs, r...)
	}
	if err := t.Dev.Sync(); err != nil {
		return err
	}
	if err := t.r.interrupt("refcount-copied"); err != nil {
		return err
	}
	bpc := t.bpc()
	for _, r := range runs {
		_, err := r.st.tree.Update(r.cpos, r.n, func(e ondisk.ExtentRec) ondisk.ExtentRec {
			if r.copied {
				e.Blkno = (r.new + uint64(e.Cpos-r.cpos)) * bpc
			}
			e.Flags &^= ondisk.ExtentRefcounted
			return e
		})
		if err == nil {
			err = r.st.save()
		}
		if err != nil {
			return fmt.Errorf("%s: remapping clusters [%d,+%d): %w", r.st.owner, r.cpos, r.n, err)
		}
	}
	if err := t.Dev.Sync(); err != nil {
		return err
	}
	if err := t.r.interrupt("refcount-remapped"); err != nil {
		return err
	}
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	for _, r := range runs {
		var freed func(c uint64, n uint32) error
		if r.copied {
			freed = func(c uint64, n uint32) error { return gb.FreeClusters(t.tx, uint32(c), int(n)) }
		}
		if err := rt.Decrease(r.old, r.n, freed); err != nil {
			return err
		}
	}
	d.DynFeatures &^= ondisk.DynHasRefcount
	d.RefcountLoc = 0
	if err := saveInode(); err != nil {
		return err
	}
	if err := t.Dev.Sync(); err != nil {
		return err
	}
	if err := t.r.interrupt("refcount-inode"); err != nil {
		return err
	}
	if last {
		return t.dropRefcountTree(rt)
	}
	root, err := t.Cache.RefcountBlock(rt.Root)
	if err != nil {
		return err
	}
	if root.Count <= 1 {
		t.verbosef("Refcount tree %d counts %d users while more files name it; its count is left\n", rt.Root, root.Count)
		return nil
	}
	_, err = rt.Detach()
	return err
}

// copySharedRuns walks st's shared extents and, run by run of the
// refcount tree, copies those it counts more than once to new clusters.
func (t *tunefsVol) copySharedRuns(rt *extent.RefcountTree, st *sharedTree) ([]cowRun, error) {
	var shared []ondisk.ExtentRec
	err := extent.Walk(t.Cache, st.tree.Root, st.owner, func(r ondisk.ExtentRec) error {
		if r.Flags&ondisk.ExtentRefcounted != 0 {
			shared = append(shared, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	bpc := t.bpc()
	var runs []cowRun
	for _, e := range shared {
		for c := uint32(0); c < e.Clusters; {
			phys := e.Blkno/bpc + uint64(c)
			rec, err := rt.Lookup(phys, e.Clusters-c)
			if err != nil {
				return nil, err
			}
			n := uint32(min(rec.End(), phys+uint64(e.Clusters-c)) - phys)
			run := cowRun{st: st, cpos: e.Cpos + c, n: n, old: phys}
			switch {
			case rec.Refcount == 0:
				return nil, t.Cache.Annotate(&ondisk.CorruptError{Struct: "refcount tree", Field: "rl_recs",
					Msg: fmt.Sprintf("clusters [%d,+%d) are shared by %s but have no refcount record", phys, n, st.owner)}, rt.Root)
			case rec.Refcount > 1:
				got, err := t.claimClusters(1, int(n))
				if err != nil {
					return nil, err
				}
				run.n, run.copied, run.new = uint32(got.Count), true, uint64(got.Start)
				if e.Flags&ondisk.ExtentUnwritten == 0 {
					if err := t.copyClusters(phys, run.new, run.n); err != nil {
						return nil, err
					}
				}
			}
			runs = append(runs, run)
			c += run.n
		}
	}
	return runs, nil
}

// copyClusters copies n clusters from physical cluster from to physical
// cluster to, through the device.
func (t *tunefsVol) copyClusters(from, to uint64, n uint32) error {
	cs := int64(t.cs())
	buf := blockdev.AlignedBuffer(int(min(int64(n)*cs, 1<<20)), 4096)
	src, dst := int64(from)*cs, int64(to)*cs
	for left := int64(n) * cs; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := t.Dev.ReadAt(buf[:k], src); err != nil {
			return fmt.Errorf("%s: unsharing: reading %d bytes at %d: %w", t.Path, k, src, err)
		}
		if _, err := t.Dev.WriteAt(buf[:k], dst); err != nil {
			return fmt.Errorf("%s: unsharing: writing %d bytes at %d: %w", t.Path, k, dst, err)
		}
		src, dst, left = src+k, dst+k, left-k
	}
	for b := to * t.bpc(); b < (to+uint64(n))*t.bpc(); b++ {
		t.Cache.Forget(b)
	}
	return nil
}

// writeInodeWithArea writes inode d with area (when not nil) as its inline
// xattr area.
func (t *tunefsVol) writeInodeWithArea(d *ondisk.Dinode, area []byte) error {
	b, err := t.Cache.Get(d.Blkno)
	if err != nil {
		return err
	}
	if err := t.tx.Access(b); err != nil {
		return err
	}
	if area != nil {
		copy(b.Data[len(b.Data)-len(area):], area)
	}
	if err := d.Encode(b.Data); err != nil {
		return t.Cache.Annotate(fmt.Errorf("encoding: %w", err), d.Blkno)
	}
	t.tx.Dirty(b, ondisk.DinodeCheckOffset)
	return t.tx.Err
}

// sharedXattrBlockTrees lists the value trees with shared extents of the
// xattr block at blk: in its own storage, or in each of its buckets.
func (t *tunefsVol) sharedXattrBlockTrees(blk uint64) ([]*sharedTree, error) {
	xb, err := t.Cache.XattrBlock(blk)
	if err != nil {
		return nil, err
	}
	if !xb.Indexed() {
		raw, err := t.readBlock(blk)
		if err != nil {
			return nil, err
		}
		save := func() error {
			if t.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 {
				ondisk.SetBlockCheck(raw, ondisk.XattrBlockCheckOffset)
			}
			return t.writeRaw(blk, raw)
		}
		return t.sharedValueTrees(raw[ondisk.XattrBlockAttrsOffset:], fmt.Sprintf("xattr block %d", blk), save)
	}
	buckets, err := t.xattrBuckets(xb)
	if err != nil {
		return nil, err
	}
	var out []*sharedTree
	for _, bk := range buckets {
		raw := make([]byte, bk.blocks*t.bs())
		if err := t.Cache.ReadBlocks(bk.blkno, raw); err != nil {
			return nil, err
		}
		save := func() error {
			if t.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 {
				ondisk.SetBlockCheck(raw, ondisk.XattrBucketCheckOff)
			}
			return t.writeRaw(bk.blkno, raw)
		}
		vt, err := t.sharedValueTrees(raw, fmt.Sprintf("xattr bucket %d", bk.blkno), save)
		if err != nil {
			return nil, err
		}
		out = append(out, vt...)
	}
	return out, nil
}

// sharedValueTrees lists the value trees with shared extents whose roots
// are in the xattr storage area (headed by an xattr header); save writes
// the area's holder after a root changed.
func (t *tunefsVol) sharedValueTrees(area []byte, holder string, save func() error) ([]*sharedTree, error) {
	h, err := ondisk.DecodeXattrHeader(area, holder)
	if err != nil {
		return nil, err
	}
	var out []*sharedTree
	for i, e := range h.Entries {
		if e.Local() {
			continue
		}
		_, stored, err := ondisk.XattrEntryBytes(area, i)
		if err != nil {
			return nil, err
		}
		root, err := ondisk.DecodeXattrValueRoot(stored)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", holder, i, err)
		}
		owner := fmt.Sprintf("%s value of entry %d", holder, i)
		shared := false
		if err := extent.Walk(t.Cache, &root.List, owner, func(r ondisk.ExtentRec) error {
			shared = shared || r.Flags&ondisk.ExtentRefcounted != 0
			return nil
		}); err != nil {
			return nil, err
		}
		if !shared {
			continue
		}
		tree := &extent.Tree{C: t.Cache, Tx: t.tx, Alloc: slotMeta{t}, Root: &root.List, BlocksPerCluster: t.bpc(),
			Owner: owner, LastEB: root.LastEBBlk}
		out = append(out, &sharedTree{tree: tree, owner: owner, save: func() error {
			root.LastEBBlk = tree.LastEB
			root.Encode(stored)
			return save()
		}})
	}
	return out, nil
}
