package inode

import (
	"errors"
	"fmt"
	"syscall"

	"o2go/internal/blockdev"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Reflinks: regular files that share data clusters through a refcount tree
// (the REFCOUNT_TREE feature), as the kernel's FICLONE/FICLONERANGE and
// copy_file_range do on OCFS2 (fs/ocfs2/refcounttree.c,
// ocfs2_reflink_remap_blocks):
//
//   - Both inodes point at one tree (i_refcount_loc, DynHasRefcount); the
//     first reflink of a file creates it, attached to the source. Inodes
//     already attached to different trees cannot share (EOPNOTSUPP).
//   - Shared extent records carry ExtentRefcounted in every inode that
//     maps them; the tree counts, per physical run, how many records do.
//     Sharing moves no data and allocates no clusters.
//   - Whole clusters are shared; bytes of a partial cluster at either end
//     of a range are copied, unless the range runs to the source's end of
//     file and nothing of the destination lies past it (the kernel's
//     to-EOF rule). Unwritten source extents become holes, inline sources
//     are copied.
//   - A write to a shared cluster copies it first (unshare); the last
//     holder just clears the flag. Removing a shared extent drops a
//     reference (dropShared); clusters whose count reaches zero go to the
//     truncate log like any freed cluster.
//   - Deleting an inode lets go of its tree (releaseRefcount); the last
//     inode frees it.

func (f *FS) refcountSupported() bool {
	return f.SB.Features.Incompat&ondisk.IncompatRefcountTree != 0
}

// refcountLock is the cluster lock of the refcount tree rooted at root.
func refcountLock(root uint64) LockID { return LockID{Kind: LockRefcount, Blkno: root} }

// refTree returns the refcount tree of d, which must have one: an extent
// flagged REFCOUNTED in an inode without a tree is damage.
func (f *FS) refTree(tx metacache.Tx, d *ondisk.Dinode) (*extent.RefcountTree, error) {
	switch {
	case d.DynFeatures&ondisk.DynHasRefcount == 0 || d.RefcountLoc == 0:
		return nil, f.C.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "i_refcount_loc",
			Msg: "an extent is flagged REFCOUNTED, but the inode has no refcount tree"}, d.Blkno)
	case !f.refcountSupported():
		return nil, f.C.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "i_dyn_features",
			Msg: "the inode has a refcount tree, but the volume lacks the refcount feature"}, d.Blkno)
	}
	if err := f.W.Need(refcountLock(d.RefcountLoc), tx != nil); err != nil {
		return nil, err
	}
	var alloc extent.MetaAllocator
	if f.W != nil {
		alloc = f.W.Alloc.Blocks
	}
	return &extent.RefcountTree{C: f.C, Tx: tx, Alloc: alloc, Root: d.RefcountLoc}, nil
}

// physCluster is the physical cluster of logical cluster c inside rec.
func (f *FS) physCluster(rec ondisk.ExtentRec, c uint64) uint64 {
	return rec.Blkno/f.bpc() + (c - uint64(rec.Cpos))
}

// unshare gives inode d private copies of the shared clusters [cpos,
// cpos+n) before a write: new clusters, the old contents copied (unless
// unwritten), the mapping replaced, one reference dropped from the refcount
// tree (the kernel's ocfs2_refcount_cow, without its 1 MiB rounding: a 4 KiB
// write costs one cluster). When d holds the last reference, the clusters
// just stop being shared. Unshared parts of the range are left alone.
func (f *FS) unshare(tx metacache.Tx, d *ondisk.Dinode, t *extent.Tree, cpos, n uint32) error {
	rt, err := f.refTree(tx, d)
	if err != nil {
		return err
	}
	defer func() { d.LastEBBlk = t.LastEB }()
	end := uint64(cpos) + uint64(n)
	for c := uint64(cpos); c < end; {
		m, err := extent.Lookup(f.C, d.Extents, uint32(c), t.Owner)
		if err != nil {
			return err
		}
		if !m.Found {
			c = min(m.Next, end)
			continue
		}
		stop := min(m.Rec.End(), end)
		if m.Rec.Flags&ondisk.ExtentRefcounted == 0 {
			c = stop
			continue
		}
		phys := f.physCluster(m.Rec, c)
		rec, err := rt.Lookup(phys, uint32(stop-c))
		if err != nil {
			return err
		}
		run := uint32(min(rec.End(), phys+(stop-c)) - phys)
		switch {
		case rec.Refcount == 0:
			return fmt.Errorf("inode %d: %w", d.Blkno, f.C.Annotate(&ondisk.CorruptError{Struct: "refcount tree", Field: "rl_recs",
				Msg: fmt.Sprintf("clusters [%d,+%d) are shared by logical cluster %d but have no refcount record", phys, run, c)}, d.RefcountLoc))
		case rec.Refcount == 1:
			if _, err := t.Update(uint32(c), run, func(r ondisk.ExtentRec) ondisk.ExtentRec {
				r.Flags &^= ondisk.ExtentRefcounted
				return r
			}); err != nil {
				return err
			}
			if err := rt.Decrease(phys, run, nil); err != nil {
				return err
			}
		default:
			start, got, err := f.W.Alloc.Clusters.ClaimClusters(tx, d.Blkno, 0, 1, run)
			if err != nil {
				return err
			}
			if m.Rec.Flags&ondisk.ExtentUnwritten == 0 {
				if err := f.copyClusters(phys, uint64(start), got); err != nil {
					return err
				}
			}
			newBlk := uint64(start) * f.bpc()
			if _, err := t.Update(uint32(c), got, func(r ondisk.ExtentRec) ondisk.ExtentRec {
				r.Blkno = newBlk + uint64(r.Cpos-uint32(c))*f.bpc()
				r.Flags &^= ondisk.ExtentRefcounted
				return r
			}); err != nil {
				return err
			}
			if err := rt.Decrease(phys, got, func(z uint64, k uint32) error {
				return fmt.Errorf("inode %d: copy on write of clusters [%d,+%d) took their last reference (internal error)", d.Blkno, z, k)
			}); err != nil {
				return err
			}
			run = got
		}
		c += uint64(run)
	}
	return nil
}

// copyClusters copies n clusters of data from physical cluster from to
// physical cluster to, through the device (data=ordered: it is on the
// device before the transaction that maps it commits).
func (f *FS) copyClusters(from, to uint64, n uint32) error {
	const chunk = 1 << 20
	cbits := f.SB.ClusterSizeBits
	dev := f.C.Device()
	// Cluster-aligned offsets and an aligned buffer: O_DIRECT without a
	// bounce copy.
	buf := blockdev.AlignedBuffer(int(min(int64(n)<<cbits, chunk)), 4096)
	src, dst := int64(from)<<cbits, int64(to)<<cbits
	for left := int64(n) << cbits; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := dev.ReadAt(buf[:k], src); err != nil {
			return fmt.Errorf("%s: copy on write: reading %d bytes at %d: %w", dev.Name(), k, src, err)
		}
		if _, err := dev.WriteAt(buf[:k], dst); err != nil {
			return fmt.Errorf("%s: copy on write: writing %d bytes at %d: %w", dev.Name(), k, dst, err)
		}
		src, dst, left = src+k, dst+k, left-k
	}
	return nil
}

// unshareBytes unshares the clusters holding file bytes [from, to).
func (f *FS) unshareBytes(tx metacache.Tx, d *ondisk.Dinode, from, to int64) error {
	if to <= from {
		return nil
	}
	cbits := f.SB.ClusterSizeBits
	first, last := uint32(from>>cbits), uint32((to-1)>>cbits)
	return f.unshare(tx, d, f.tree(tx, d), first, last-first+1)
}

// dropShared drops d's reference to the shared clusters of piece (a
// truncate or punch removed them from d's tree); clusters whose count
// reaches zero go to the truncate log, as freePieces does with unshared
// ones. removeRange counts those runs in advance (sharedFreeStarts).
func (f *FS) dropShared(tx metacache.Tx, d *ondisk.Dinode, piece ondisk.ExtentRec) error {
	rt, err := f.refTree(tx, d)
	if err != nil {
		return err
	}
	return rt.Decrease(piece.Blkno/f.bpc(), piece.Clusters, func(c uint64, n uint32) error {
		return f.W.Alloc.Truncate.Append(tx, uint32(c), n)
	})
}

// sharedFreeStarts returns, for the part of shared extent r inside logical
// clusters [from, to), the logical cluster where each run that removing it
// would free begins (clusters d holds the last reference to): each may take
// a truncate log record, and removeRange sizes its steps by them.
func (f *FS) sharedFreeStarts(d *ondisk.Dinode, r ondisk.ExtentRec, from, to uint32) ([]uint32, error) {
	rt, err := f.refTree(nil, d)
	if err != nil {
		return nil, err
	}
	var starts []uint32
	lo, hi := max(uint64(r.Cpos), uint64(from)), min(r.End(), uint64(to))
	for c := lo; c < hi; {
		phys := f.physCluster(r, c)
		rec, err := rt.Lookup(phys, uint32(hi-c))
		if err != nil {
			return nil, err
		}
		run := min(rec.End(), phys+(hi-c)) - phys
		if rec.Refcount <= 1 {
			starts = append(starts, uint32(c))
		}
		c += run
	}
	return starts, nil
}

// releaseRefcount lets go of d's refcount tree when d is deleted (its
// extents are gone by then); the last inode frees the tree.
func (f *FS) releaseRefcount(tx metacache.Tx, d *ondisk.Dinode) error {
	if d.DynFeatures&ondisk.DynHasRefcount == 0 {
		return nil
	}
	rt, err := f.refTree(tx, d)
	if err != nil {
		return err
	}
	if _, err := rt.Detach(); err != nil {
		return fmt.Errorf("inode %d: %w", d.Blkno, err)
	}
	d.DynFeatures &^= ondisk.DynHasRefcount
	d.RefcountLoc = 0
	return nil
}

// Reflink makes regular file dst a writable snapshot of src, sharing its
// clusters (FICLONE): the whole of src over the start of dst, whose size
// becomes at least src's.
func (f *FS) Reflink(src, dst uint64) error {
	_, err := f.remap(src, 0, dst, 0, 0, true)
	return err
}

// CloneRange shares n bytes of src from srcOff into dst at dstOff
// (FICLONERANGE; n 0 means up to src's end of file) with the kernel's
// rules: offsets aligned to the block size, n too unless the range ends at
// src's end of file, the range inside src, no overlap within one file
// (EINVAL otherwise). Whole clusters are shared, partial ones copied.
func (f *FS) CloneRange(src uint64, srcOff int64, dst uint64, dstOff, n int64) error {
	_, err := f.remap(src, srcOff, dst, dstOff, n, true)
	return err
}

// CopyRange copies up to n bytes of src from srcOff into dst at dstOff
// (copy_file_range) and returns how many: fewer when src ends first, 0 at
// or past its end. What can be shared is (whole clusters at the same
// offset within a cluster on both sides, on a volume with refcount
// trees); the rest is copied.
func (f *FS) CopyRange(src uint64, srcOff int64, dst uint64, dstOff, n int64) (int64, error) {
	return f.remap(src, srcOff, dst, dstOff, n, false)
}

// remap is the engine behind Reflink, CloneRange and CopyRange.
func (f *FS) remap(src uint64, srcOff int64, dst uint64, dstOff, n int64, clone bool) (int64, error) {
	if _, err := f.writer(); err != nil {
		return 0, err
	}
	if srcOff < 0 || dstOff < 0 || n < 0 {
		return 0, syscall.EINVAL
	}
	sd, err := f.Stat(src)
	if err != nil {
		return 0, err
	}
	dd, err := f.Stat(dst)
	if err != nil {
		return 0, err
	}
	for _, d := range []*ondisk.Dinode{sd, dd} {
		switch {
		case d.IsDir():
			return 0, syscall.EISDIR
		case !d.IsReg():
			return 0, syscall.EINVAL
		}
	}
	if clone && !f.refcountSupported() {
		return 0, fmt.Errorf("reflink of inode %d: the volume has no refcount trees (feature refcount): %w", src, syscall.EOPNOTSUPP)
	}
	srcSize := int64(sd.Size)
	if clone {
		if n, err = f.cloneLength(srcOff, dstOff, n, srcSize); err != nil || n == 0 {
			return 0, err
		}
	} else {
		if srcOff >= srcSize || n == 0 {
			return 0, nil
		}
		n = min(n, srcSize-srcOff)
	}
	if srcOff+n < srcOff || dstOff+n < dstOff || dstOff+n > f.maxFileBytes() {
		return 0, syscall.EFBIG
	}
	if src == dst && dstOff < srcOff+f.roundUp(n) && srcOff < dstOff+f.roundUp(n) {
		return 0, syscall.EINVAL
	}

	cbits := f.SB.ClusterSizeBits
	cs := int64(1) << cbits
	srcEnd, dstEnd := srcOff+n, dstOff+n
	lo, hi := (srcOff+cs-1)&^(cs-1), srcEnd&^(cs-1) // whole clusters of the source range
	if srcEnd == srcSize && int64(dd.Size) <= dstEnd {
		hi = (srcEnd + cs - 1) &^ (cs - 1) // to EOF: the last partial cluster goes too
	}
	// Within one file nothing is shared: fsck.ocfs2 1.8.7 aborts on a file
	// that maps a physical cluster twice (see shareStep).
	share := f.refcountSupported() && f.sparse() && sd.Inline == nil && src != dst &&
		(srcOff-dstOff)%cs == 0 && hi > lo
	if share {
		err := f.attachTrees(src, dst)
		if errors.Is(err, syscall.EOPNOTSUPP) && !clone {
			share = false // two different trees: copy instead
		} else if err != nil {
			return 0, err
		}
	}
	if !share {
		if clone && !f.sparse() {
			return 0, fmt.Errorf("reflink of inode %d: the volume has no sparse files, which sharing needs: %w", src, syscall.EOPNOTSUPP)
		}
		if err := f.copyData(src, srcOff, dst, dstOff, n); err != nil {
			return 0, err
		}
		return n, nil
	}
	if err := f.copyData(src, srcOff, dst, dstOff, min(lo, srcEnd)-srcOff); err != nil {
		return 0, err
	}
	if hi < srcEnd {
		if err := f.copyData(src, hi, dst, dstOff+(hi-srcOff), srcEnd-hi); err != nil {
			return 0, err
		}
	}
	delta := dstOff - srcOff
	if err := f.removeRange(dst, uint32((lo+delta)>>cbits), uint32((hi+delta)>>cbits), nil); err != nil {
		return 0, err
	}
	for c := uint32(lo >> cbits); c < uint32(hi>>cbits); {
		next, err := f.shareStep(src, dst, c, uint32(hi>>cbits), delta>>cbits)
		if err != nil {
			return 0, err
		}
		c = next
	}
	now := diskTime(f.W.now())
	return n, f.run(inodes(true, dst), 4, func(tx metacache.Tx) error {
		d, b, err := f.inodeForWrite(tx, dst)
		if err != nil {
			return err
		}
		d.Size = max(d.Size, uint64(dstEnd))
		d.Mtime, d.Ctime = now, now
		return saveInode(tx, d, b)
	})
}

// roundUp rounds n up to the block size (the unit of the overlap check).
func (f *FS) roundUp(n int64) int64 {
	bs := int64(f.SB.BlockSize())
	return (n + bs - 1) &^ (bs - 1)
}

// cloneLength applies the kernel's FICLONERANGE checks
// (generic_remap_checks) and returns the byte count to share.
func (f *FS) cloneLength(srcOff, dstOff, n, srcSize int64) (int64, error) {
	bs := int64(f.SB.BlockSize())
	if n == 0 {
		if srcOff == srcSize {
			return 0, nil
		}
		if srcOff > srcSize {
			return 0, syscall.EINVAL
		}
		n = srcSize - srcOff
	}
	if srcOff%bs != 0 || dstOff%bs != 0 || srcOff >= srcSize {
		return 0, syscall.EINVAL
	}
	if srcOff+n > srcSize || (srcOff+n != srcSize && n%bs != 0) {
		return 0, syscall.EINVAL
	}
	return n, nil
}

// attachTrees puts src and dst on one refcount tree, creating one for src
// when neither has one (the kernel's ocfs2_reflink_remap_blocks), and
// turns an inline dst into an extent-mapped one. Inodes already on two
// different trees cannot share: EOPNOTSUPP.
func (f *FS) attachTrees(src, dst uint64) error {
	return f.run(inodes(true, src, dst), 8, func(tx metacache.Tx) error {
		sd, sb, err := f.inodeForWrite(tx, src)
		if err != nil {
			return err
		}
		dd, db := sd, sb
		if dst != src {
			if dd, db, err = f.inodeForWrite(tx, dst); err != nil {
				return err
			}
		}
		sHas, dHas := sd.DynFeatures&ondisk.DynHasRefcount != 0, dd.DynFeatures&ondisk.DynHasRefcount != 0
		switch {
		case sHas && dHas && sd.RefcountLoc != dd.RefcountLoc:
			return fmt.Errorf("inodes %d and %d belong to different refcount trees (%d, %d): %w", src, dst, sd.RefcountLoc, dd.RefcountLoc, syscall.EOPNOTSUPP)
		case !sHas && !dHas:
			root, err := extent.NewRefcountTree(f.C, tx, f.W.Alloc.Blocks, f.W.nextGeneration())
			if err != nil {
				return err
			}
			// A tree that another node's cache may know under this block
			// (an older tree there, deleted) must be dropped there.
			if err := f.W.Need(refcountLock(root), true); err != nil {
				return err
			}
			sd.DynFeatures |= ondisk.DynHasRefcount
			sd.RefcountLoc = root
			if dst != src {
				if err := f.join(tx, dd, root); err != nil {
					return err
				}
			}
		case !sHas:
			if err := f.join(tx, sd, dd.RefcountLoc); err != nil {
				return err
			}
		case !dHas:
			if err := f.join(tx, dd, sd.RefcountLoc); err != nil {
				return err
			}
		}
		if dd.Inline != nil {
			if err := f.inlineToExtents(tx, dd); err != nil {
				return err
			}
		}
		if err := saveInode(tx, sd, sb); err != nil {
			return err
		}
		if dst == src {
			return nil
		}
		return saveInode(tx, dd, db)
	})
}

// join attaches d to the refcount tree at root.
func (f *FS) join(tx metacache.Tx, d *ondisk.Dinode, root uint64) error {
	if err := f.W.Need(refcountLock(root), true); err != nil {
		return err
	}
	rt := &extent.RefcountTree{C: f.C, Tx: tx, Alloc: f.W.Alloc.Blocks, Root: root}
	if err := rt.Attach(); err != nil {
		return err
	}
	d.DynFeatures |= ondisk.DynHasRefcount
	d.RefcountLoc = root
	return nil
}

// shareStepPieces bounds the source extents one transaction shares.
const shareStepPieces = 32

// shareStep shares the source clusters [c, end) (a step of them) into dst
// at c+delta: source extents not yet shared are flagged and counted, then
// mapped into dst flagged and counted again. Unwritten source extents and
// holes leave dst's clusters unmapped (removeRange emptied them). It
// returns where the next step starts.
func (f *FS) shareStep(src, dst uint64, c, end uint32, delta int64) (uint32, error) {
	next := c
	err := f.run(inodes(true, src, dst), 8+4*shareStepPieces, func(tx metacache.Tx) error {
		next = c
		sd, sb, err := f.inodeForWrite(tx, src)
		if err != nil {
			return err
		}
		dd, db := sd, sb
		if dst != src {
			if dd, db, err = f.inodeForWrite(tx, dst); err != nil {
				return err
			}
		}
		if dd.Inline != nil || sd.Inline != nil || dd.RefcountLoc != sd.RefcountLoc || sd.DynFeatures&ondisk.DynHasRefcount == 0 {
			return fmt.Errorf("reflink of inode %d into %d: the inodes changed under the reflink: %w", src, dst, syscall.EBUSY)
		}
		rt, err := f.refTree(tx, sd)
		if err != nil {
			return err
		}
		st := f.tree(tx, sd)
		dt := st
		if dst != src {
			dt = f.tree(tx, dd)
		}
		// The physical clusters dst maps that a source piece could also be:
		// its shared ones, or all of them within one file.
		taken, err := f.physRuns(dd, dst == src)
		if err != nil {
			return err
		}
		for pieces := 0; pieces < shareStepPieces && next < end; {
			m, err := extent.Lookup(f.C, sd.Extents, next, st.Owner)
			if err != nil {
				return err
			}
			if !m.Found {
				next = uint32(min(m.Next, uint64(end)))
				continue
			}
			stop := uint32(min(m.Rec.End(), uint64(end)))
			cnt := stop - next
			if m.Rec.Flags&ondisk.ExtentUnwritten != 0 {
				next = stop
				continue
			}
			phys := f.physCluster(m.Rec, uint64(next))
			dc := uint32(int64(next) + delta)
			// removeRange emptied the range; a write that raced into it
			// since is replaced, as if it came first.
			old, err := dt.Remove(dc, cnt)
			if err != nil {
				return err
			}
			if len(old) > 0 {
				dd.LastEBBlk = dt.LastEB
				if err := f.freePieces(tx, dd, old); err != nil {
					return err
				}
			}
			if overlapsRuns(taken, phys, phys+uint64(cnt)) {
				// dst maps some of these clusters already (a clone back
				// into a file they came from): fsck.ocfs2 1.8.7 aborts on
				// a file that maps a physical cluster twice (refcount.c,
				// refcount_extent_insert), so this piece is copied, not
				// shared.
				if err := f.copyPiece(tx, dd, dt, phys, dc, cnt); err != nil {
					return err
				}
				next = stop
				pieces++
				continue
			}
			if m.Rec.Flags&ondisk.ExtentRefcounted == 0 {
				if _, err := st.Update(next, cnt, func(r ondisk.ExtentRec) ondisk.ExtentRec {
					r.Flags |= ondisk.ExtentRefcounted
					return r
				}); err != nil {
					return err
				}
				if err := rt.Increase(phys, cnt); err != nil {
					return err
				}
			}
			taken = append(taken, [2]uint64{phys, phys + uint64(cnt)})
			if err := dt.Insert(ondisk.ExtentRec{Cpos: dc, Clusters: cnt, Blkno: phys * f.bpc(), Flags: ondisk.ExtentRefcounted}); err != nil {
				return err
			}
			dd.Clusters += cnt
			if err := rt.Increase(phys, cnt); err != nil {
				return err
			}
			next = stop
			pieces++
		}
		sd.LastEBBlk, dd.LastEBBlk = st.LastEB, dt.LastEB
		if err := saveInode(tx, sd, sb); err != nil {
			return err
		}
		if dst == src {
			return nil
		}
		return saveInode(tx, dd, db)
	})
	return next, err
}

// copyData copies n bytes of src at srcOff to dst at dstOff through the
// ordinary read and write paths (the partial clusters of a reflink, and
// whatever cannot be shared).
func (f *FS) copyData(src uint64, srcOff int64, dst uint64, dstOff, n int64) error {
	const chunk = 1 << 20
	if n <= 0 {
		return nil
	}
	buf := make([]byte, min(n, chunk))
	for n > 0 {
		k, err := f.ReadFile(src, buf[:min(n, int64(len(buf)))], srcOff)
		if err != nil {
			return err
		}
		if k == 0 {
			return nil
		}
		if _, err := f.Write(dst, buf[:k], dstOff); err != nil {
			return err
		}
		srcOff, dstOff, n = srcOff+int64(k), dstOff+int64(k), n-int64(k)
	}
	return nil
}

// physRuns lists the physical cluster runs [lo, hi) of d's shared extents,
// or of all its extents.
func (f *FS) physRuns(d *ondisk.Dinode, all bool) ([][2]uint64, error) {
	var runs [][2]uint64
	if d.Extents == nil {
		return nil, nil
	}
	err := extent.Walk(f.C, d.Extents, fmt.Sprintf("inode %d", d.Blkno), func(r ondisk.ExtentRec) error {
		if all || r.Flags&ondisk.ExtentRefcounted != 0 {
			lo := r.Blkno / f.bpc()
			runs = append(runs, [2]uint64{lo, lo + uint64(r.Clusters)})
		}
		return nil
	})
	return runs, err
}

func overlapsRuns(runs [][2]uint64, lo, hi uint64) bool {
	for _, r := range runs {
		if r[0] < hi && lo < r[1] {
			return true
		}
	}
	return false
}

// copyPiece maps n new clusters at logical cluster dc of d (a hole) and
// copies physical clusters from phys on into them.
func (f *FS) copyPiece(tx metacache.Tx, d *ondisk.Dinode, t *extent.Tree, phys uint64, dc, n uint32) error {
	defer func() { d.LastEBBlk = t.LastEB }()
	for n > 0 {
		start, got, err := f.W.Alloc.Clusters.ClaimClusters(tx, d.Blkno, 0, 1, n)
		if err != nil {
			return err
		}
		if err := f.copyClusters(phys, uint64(start), got); err != nil {
			return err
		}
		if err := t.Insert(ondisk.ExtentRec{Cpos: dc, Clusters: got, Blkno: uint64(start) * f.bpc()}); err != nil {
			return err
		}
		d.Clusters += got
		phys, dc, n = phys+uint64(got), dc+got, n-got
	}
	return nil
}
