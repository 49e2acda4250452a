package inode

import (
	"fmt"
	"syscall"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// maxFileBytes is the largest file size the format can map: 2^32 clusters.
func (f *FS) maxFileBytes() int64 {
	return int64(1) << (32 + f.SB.ClusterSizeBits)
}

func (f *FS) sparse() bool { return f.SB.Features.Incompat&ondisk.IncompatSparseAlloc != 0 }

func (f *FS) unwrittenSupported() bool {
	return f.SB.Features.RoCompat&ondisk.RoCompatUnwritten != 0 && f.sparse()
}

func (f *FS) inlineSupported() bool {
	return f.SB.Features.Incompat&ondisk.IncompatInlineData != 0
}

func (f *FS) bpc() uint64 { return uint64(f.SB.BlocksPerCluster()) }

// tree returns the extent tree editor for a file inode's root list.
func (f *FS) tree(tx metacache.Tx, d *ondisk.Dinode) *extent.Tree {
	return &extent.Tree{C: f.C, Tx: tx, Alloc: f.W.Alloc.Blocks, Root: d.Extents,
		BlocksPerCluster: f.bpc(), Owner: fmt.Sprintf("inode %d", d.Blkno), LastEB: d.LastEBBlk}
}

// zeroBytes writes n zero bytes at byte offset off of the device.
func (f *FS) zeroBytes(off, n int64) error {
	const chunk = 1 << 20
	var zero [chunk]byte
	dev := f.C.Device()
	for n > 0 {
		k := min(n, chunk)
		if _, err := dev.WriteAt(zero[:k], off); err != nil {
			return fmt.Errorf("%s: zeroing %d bytes at %d: %w", dev.Name(), k, off, err)
		}
		off += k
		n -= k
	}
	return nil
}

// AtEOF as Write's offset writes at the end of the file (O_APPEND), found
// when the write holds its locks.
const AtEOF int64 = -1

// Write writes p at byte offset off of regular file ino, allocating
// clusters for holes, converting unwritten extents it covers, and moving
// inline data out to an extent when it no longer fits. Data reaches the
// device before the handle stops (data=ordered: the commit that references
// it syncs the device first).
func (f *FS) Write(ino uint64, p []byte, off int64) (int, error) {
	return f.write(ino, []Part{{Off: off, Data: p}}, false)
}

// Part is a run of bytes at a byte offset of a file.
type Part struct {
	Off  int64
	Data []byte
}

// WriteInsideParts writes the runs of bytes of one file at once, in one
// operation, for pages of a shared mapping written back: the bytes that
// changed since the kernel read the pages in (the others may be stale:
// another node may have written them since). Only the bytes inside the
// file's size as the volume has it now are written, the rest dropped
// (another node cut the file since the kernel last knew its size).
func (f *FS) WriteInsideParts(ino uint64, parts []Part) error {
	_, err := f.write(ino, parts, true)
	return err
}

// write is Write and WriteInsideParts (inside): AtEOF is an offset only
// for Write.
func (f *FS) write(ino uint64, parts []Part, inside bool) (int, error) {
	total := 0
	for _, pt := range parts {
		off, p := pt.Off, pt.Data
		if off < 0 && (inside || off != AtEOF) {
			return 0, syscall.EINVAL
		}
		if end := off + int64(len(p)); off != AtEOF && (end > f.maxFileBytes() || end < off) {
			return 0, syscall.EFBIG
		}
		total += len(p)
	}
	if total == 0 {
		return 0, nil
	}
	err := f.run(inodes(true, ino), 8, func(tx metacache.Tx) error {
		d, b, err := f.inodeForWrite(tx, ino)
		if err != nil {
			return err
		}
		if !d.IsReg() {
			return syscall.EINVAL
		}
		if inside && len(parts) > 1 {
			if parts, err = f.mergeRuns(d, parts); err != nil {
				return err
			}
		}
		wrote := false
		for _, pt := range parts {
			at, q := pt.Off, pt.Data // not pt.Off itself: a round that starts again sees AtEOF
			if at == AtEOF {
				// O_APPEND: the end as the volume has it now, under the
				// lock that orders this write with every other node's.
				at = int64(d.Size)
				if end := at + int64(len(q)); end > f.maxFileBytes() || end < at {
					return syscall.EFBIG
				}
			}
			if inside {
				q = q[:max(0, min(int64(len(q)), int64(d.Size)-at))]
			}
			if len(q) == 0 {
				continue
			}
			if err := f.writeLocked(tx, d, q, at); err != nil {
				return err
			}
			wrote = true
		}
		if !wrote {
			return nil
		}
		now := diskTime(f.W.now())
		d.Mtime, d.Ctime = now, now
		return saveInode(tx, d, b)
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}

// mergeRuns turns runs of bytes that fall in one cluster into one run
// over the cluster's bytes from the first to the last, the bytes between
// them as the volume holds them now (read under the write's lock, so
// nobody else's write is undone): a write-back of scattered stores then
// writes each cluster once instead of each run with its own
// read-modify-write. Runs are in ascending order; a merged run ends at
// the size at most.
func (f *FS) mergeRuns(d *ondisk.Dinode, runs []Part) ([]Part, error) {
	cbits := f.SB.ClusterSizeBits
	size := int64(d.Size)
	var out []Part
	end := func(r Part) int64 { return r.Off + int64(len(r.Data)) }
	for i := 0; i < len(runs); {
		lo, hi := runs[i].Off, end(runs[i])
		c := lo >> cbits
		j := i + 1
		if (hi-1)>>cbits == c { // the first run stays in its cluster: take the next ones that do
			for j < len(runs) && runs[j].Off >= hi && (end(runs[j])-1)>>cbits == c {
				hi = end(runs[j])
				j++
			}
		}
		if j == i+1 {
			out = append(out, runs[i])
			i = j
			continue
		}
		hi = min(hi, size)
		if lo >= hi {
			i = j
			continue
		}
		buf := make([]byte, hi-lo)
		if _, err := f.ReadAt(d, buf, lo); err != nil {
			return nil, err
		}
		for _, r := range runs[i:j] {
			if r.Off < hi {
				copy(buf[r.Off-lo:], r.Data[:min(int64(len(r.Data)), hi-r.Off)])
			}
		}
		out = append(out, Part{Off: lo, Data: buf})
		i = j
	}
	return out, nil
}

// writeLocked is Write's body, on a mutable inode whose caller saves it.
func (f *FS) writeLocked(tx metacache.Tx, d *ondisk.Dinode, p []byte, off int64) error {
	end := off + int64(len(p))
	if d.Inline != nil {
		if end <= int64(len(d.Inline.Data)) {
			copy(d.Inline.Data[off:], p)
			d.Size = max(d.Size, uint64(end))
			return nil
		}
		if err := f.inlineToExtents(tx, d); err != nil {
			return err
		}
	}
	if !f.sparse() && off > int64(d.Size) {
		// Without sparse files every cluster up to the write exists.
		if err := f.ensureAllocated(tx, d, int64(d.Size), off, true); err != nil {
			return err
		}
	}
	if err := f.ensureAllocated(tx, d, off, end, false); err != nil {
		return err
	}
	if err := f.writeMapped(d, p, off); err != nil {
		return err
	}
	d.Size = max(d.Size, uint64(end))
	return nil
}

// inlineToExtents moves an inline file's bytes into a newly allocated
// cluster and turns the inode into an extent-mapped one.
func (f *FS) inlineToExtents(tx metacache.Tx, d *ondisk.Dinode) error {
	data := d.Inline.Data[:d.Size]
	d.Inline = nil
	d.DynFeatures &^= ondisk.DynInlineData
	xattrInline := 0
	if d.DynFeatures&ondisk.DynInlineXattr != 0 {
		xattrInline = int(d.XattrInlineSize)
	}
	d.Extents = &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(f.SB.BlockSize(), xattrInline))}
	d.LastEBBlk = 0
	if len(data) == 0 {
		return nil
	}
	if err := f.ensureAllocated(tx, d, 0, int64(len(data)), false); err != nil {
		return err
	}
	return f.writeMapped(d, data, 0)
}

// ensureAllocated makes every cluster of [from, to) mapped and written:
// holes get new clusters (zeroed where the coming write will not cover
// them: the whole range when zeroAll), unwritten extents are converted
// (their uncovered parts zeroed first), shared extents are copied.
func (f *FS) ensureAllocated(tx metacache.Tx, d *ondisk.Dinode, from, to int64, zeroAll bool) error {
	if to <= from {
		return nil
	}
	cbits := f.SB.ClusterSizeBits
	cs := int64(1) << cbits
	bs := int64(f.SB.BlockSize())
	t := f.tree(tx, d)
	defer func() { d.LastEBBlk = t.LastEB }()
	first, last := uint32(from>>cbits), uint32((to-1)>>cbits)
	for c := first; c <= last; {
		m, err := extent.Lookup(f.C, d.Extents, c, t.Owner)
		if err != nil {
			return err
		}
		if m.Found && m.Rec.Flags == 0 {
			c = uint32(min(m.Next, uint64(last)+1))
			continue
		}
		// The part of [from, to) inside cluster range [c, stop).
		stop := uint32(min(m.Next, uint64(last)+1))
		if m.Found && m.Rec.Flags&ondisk.ExtentRefcounted != 0 {
			// Shared with a reflink: copy on write, then look again.
			if err := f.unshare(tx, d, t, c, stop-c); err != nil {
				return err
			}
			continue
		}
		if m.Found { // unwritten: zero what the write does not cover, then convert
			lo, hi := int64(c)<<cbits, int64(stop)<<cbits
			recStart := int64(m.Rec.Cpos) << cbits
			phys := int64(m.Rec.Blkno)*bs + (lo - recStart)
			if err := f.zeroUncovered(phys, lo, hi, from, to, zeroAll); err != nil {
				return err
			}
			if _, err := t.Update(c, stop-c, func(r ondisk.ExtentRec) ondisk.ExtentRec {
				r.Flags &^= ondisk.ExtentUnwritten
				return r
			}); err != nil {
				return err
			}
			c = stop
			continue
		}
		// A hole: allocate, preferring to continue the previous extent.
		goal := uint32(0)
		if c > 0 {
			if pm, err := extent.Lookup(f.C, d.Extents, c-1, t.Owner); err == nil && pm.Found {
				goal = uint32((pm.Rec.Blkno + uint64(c-pm.Rec.Cpos)*f.bpc()) / f.bpc())
			}
		}
		start, n, err := f.W.Alloc.Clusters.ClaimClusters(tx, d.Blkno, goal, 1, stop-c)
		if err != nil {
			return err
		}
		lo, hi := int64(c)<<cbits, int64(c+n)<<cbits
		if err := f.zeroUncovered(int64(start)*cs, lo, hi, from, to, zeroAll); err != nil {
			return err
		}
		if err := t.Insert(ondisk.ExtentRec{Cpos: c, Clusters: n, Blkno: uint64(start) * f.bpc()}); err != nil {
			return err
		}
		d.Clusters += n
		c += n
	}
	return nil
}

// zeroUncovered zeroes the bytes of file range [lo, hi) (stored from
// device byte phys on) that the write [from, to) will not overwrite.
func (f *FS) zeroUncovered(phys, lo, hi, from, to int64, zeroAll bool) error {
	if zeroAll {
		return f.zeroBytes(phys, hi-lo)
	}
	if from > lo {
		if err := f.zeroBytes(phys, min(from, hi)-lo); err != nil {
			return err
		}
	}
	if to < hi {
		s := max(to, lo)
		if err := f.zeroBytes(phys+(s-lo), hi-s); err != nil {
			return err
		}
	}
	return nil
}

// writeMapped writes p at off into clusters that are all mapped and
// written (ensureAllocated ran).
func (f *FS) writeMapped(d *ondisk.Dinode, p []byte, off int64) error {
	cbits := f.SB.ClusterSizeBits
	bs := int64(f.SB.BlockSize())
	dev := f.C.Device()
	owner := fmt.Sprintf("inode %d", d.Blkno)
	for done := 0; done < len(p); {
		pos := off + int64(done)
		m, err := extent.Lookup(f.C, d.Extents, uint32(pos>>cbits), owner)
		if err != nil {
			return err
		}
		if !m.Found || m.Rec.Flags != 0 {
			return fmt.Errorf("inode %d: cluster %d not allocated for writing (internal error)", d.Blkno, pos>>cbits)
		}
		recStart := int64(m.Rec.Cpos) << cbits
		recEnd := int64(m.Rec.End()) << cbits
		n := min(recEnd-pos, int64(len(p)-done))
		phys := int64(m.Rec.Blkno)*bs + (pos - recStart)
		if _, err := dev.WriteAt(p[done:done+int(n)], phys); err != nil {
			return fmt.Errorf("%s: writing inode %d data at byte %d: %w", dev.Name(), d.Blkno, pos, err)
		}
		done += int(n)
	}
	return nil
}

// Overwrite is the write of coherency=buffered for O_DIRECT writers (the
// databases that mount OCFS2 that way and order their own I/O): when p
// lands wholly inside regular file ino's size, on clusters that are
// allocated, written and not shared with a reflink, the bytes go to those
// clusters under the inode's lock held shared, so writers on every node
// (and every writer on this one) proceed at once, while a change of the
// file's metadata (size, extents, truncate) still waits for them and they
// for it. Such a write changes no metadata: the file's times are left as
// they are, as the kernel's direct I/O leaves them on disk. ok false says
// the write is not of that kind and nothing was written: the caller
// writes it with Write.
func (f *FS) Overwrite(ino uint64, p []byte, off int64) (ok bool, err error) {
	if _, err := f.writer(); err != nil {
		return false, err
	}
	if off < 0 || len(p) == 0 {
		return false, nil
	}
	unlock, err := f.rlock(ino)
	if err != nil {
		return false, err
	}
	defer unlock()
	d, err := f.Inode(ino)
	if err != nil {
		return false, err
	}
	end := off + int64(len(p))
	if !d.IsReg() || d.Inline != nil || end > int64(d.Size) || end < off {
		return false, nil
	}
	if ok, err := f.allWritten(d, off, end); !ok || err != nil {
		return false, err
	}
	return true, f.writeMapped(d, p, off)
}

// allWritten says whether every cluster of bytes [from, to) of d is
// mapped by an extent with no flag (neither unwritten nor refcounted).
func (f *FS) allWritten(d *ondisk.Dinode, from, to int64) (bool, error) {
	cbits := f.SB.ClusterSizeBits
	owner := fmt.Sprintf("inode %d", d.Blkno)
	for pos := from; pos < to; {
		m, err := extent.Lookup(f.C, d.Extents, uint32(pos>>cbits), owner)
		if err != nil {
			return false, err
		}
		if !m.Found || m.Rec.Flags != 0 {
			return false, nil
		}
		pos = int64(m.Rec.End()) << cbits
	}
	return true, nil
}
