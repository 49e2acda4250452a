package inode

import (
	"fmt"

	"math"
	"syscall"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// freePieces releases the clusters Tree.Remove returned: into the truncate
// log, to be freed once a checkpoint made the removal durable. Shared
// (refcounted) clusters drop a reference instead.
func (f *FS) freePieces(tx metacache.Tx, d *ondisk.Dinode, pieces []ondisk.ExtentRec) error {
	for _, p := range pieces {
		if p.Flags&ondisk.ExtentRefcounted != 0 {
			if err := f.dropShared(tx, d, p); err != nil {
				return err
			}
			d.Clusters -= p.Clusters
			continue
		}
		if err := f.W.Alloc.Truncate.Append(tx, uint32(p.Blkno/f.bpc()), p.Clusters); err != nil {
			return err
		}
		d.Clusters -= p.Clusters
	}
	return nil
}

// FlushTruncateLog frees the clusters parked in the slot's truncate log:
// a checkpoint first (the truncates that parked them are then durable and
// home, so replay can never free them twice), then the flush in its own
// transaction. It takes the metadata lock itself: never call it with it held.
func (f *FS) FlushTruncateLog() error {
	w, err := f.writer()
	if err != nil {
		return err
	}
	if err := w.Journal.Checkpoint(); err != nil {
		return err
	}
	return f.run(LockSet{InodeLock(w.GlobalBitmap): true}, 4, func(tx metacache.Tx) error {
		_, err := w.Alloc.Truncate.Flush(tx)
		return err
	})
}

// removeRange unmaps clusters [from, to) of d in as many steps as the
// truncate log can take, flushing it between steps, from the end of the
// range backwards. Each step is its own transaction; a shrink (non-nil)
// moves the size down with the clusters, so the inode is one fsck.ocfs2
// accepts after every step and a crash mid-way leaves a file cut short, never
// one whose size ends before clusters it still holds (INODE_SPARSE_SIZE) or
// past the clusters it has left on a volume without sparse files
// (INODE_SIZE). It must be called without the metadata lock.
func (f *FS) removeRange(ino uint64, from, to uint32, shrink *shrinkTo) error {
	for {
		var done bool
		err := f.run(inodes(true, ino), 16, func(tx metacache.Tx) error {
			d, b, err := f.inodeForWrite(tx, ino)
			if err != nil {
				return err
			}
			room, err := f.W.Alloc.Truncate.Room()
			if err != nil {
				return err
			}
			cut := from
			if d.Extents != nil && to > from {
				// Count the records to remove; keep the step within the log's room.
				var starts []uint32
				if err := extent.Walk(f.C, d.Extents, fmt.Sprintf("inode %d", ino), func(r ondisk.ExtentRec) error {
					if r.End() > uint64(from) && r.Cpos < to {
						if r.Flags&ondisk.ExtentRefcounted != 0 {
							// A shared extent frees only what d held last, in runs.
							s, err := f.sharedFreeStarts(d, r, from, to)
							starts = append(starts, s...)
							return err
						}
						starts = append(starts, max(r.Cpos, from))
					}
					return nil
				}); err != nil {
					return err
				}
				if k := room - 1; len(starts) > k {
					if k < 1 {
						return nil // flush first, then come back
					}
					cut = starts[len(starts)-k]
				}
				t := f.tree(tx, d)
				pieces, err := t.Remove(cut, to-cut)
				d.LastEBBlk = t.LastEB
				if err != nil {
					return err
				}
				if err := f.freePieces(tx, d, pieces); err != nil {
					return err
				}
			}
			done = cut == from
			if shrink != nil {
				f.shrinkStep(d, shrink, cut, done)
			}
			return saveInode(tx, d, b)
		})
		if err != nil || done {
			return err
		}
		if err := f.FlushTruncateLog(); err != nil {
			return err
		}
		if hook := f.W.afterRemoveStep; hook != nil {
			if err := hook(); err != nil {
				return err
			}
		}
	}
}

// Truncate sets the size of regular file ino (truncate(2), ftruncate(2),
// O_TRUNC): shrinking frees whole clusters past the end and zeroes the tail
// of the last one so a later extension reads zeros; growing is free with
// sparse files and allocates zeroed clusters without.
func (f *FS) Truncate(ino uint64, size int64) error { return f.truncate(ino, 0, size) }

// truncate is Truncate on the inode of generation gen (0: any).
func (f *FS) truncate(ino uint64, gen uint32, size int64) error {
	if size < 0 {
		return syscall.EINVAL
	}
	if size > f.maxFileBytes() {
		return syscall.EFBIG
	}
	if _, err := f.writer(); err != nil {
		return err
	}
	now := diskTime(f.W.now())
	cbits := f.SB.ClusterSizeBits
	keep := uint32((size + int64(1)<<cbits - 1) >> cbits)
	// What to do is decided under the inode's lock, from the inode as it
	// is then: on a clustered mount another node may have grown the file
	// (or moved its inline data out) since any earlier look.
	var shrink bool
	err := f.run(inodes(true, ino), 8, func(tx metacache.Tx) error {
		shrink = false
		d, b, err := f.inodeForWrite(tx, ino)
		if err != nil {
			return err
		}
		if err := sameGeneration(d, gen); err != nil {
			return err
		}
		if !d.IsReg() {
			if d.IsDir() {
				return syscall.EISDIR
			}
			return syscall.EINVAL
		}
		if size < int64(d.Size) && d.Inline == nil {
			// Shrinking extents: removeRange's steps follow. Zero the
			// kept cluster's tail first, as the kernel does: those bytes
			// go whether or not the rest of the truncate survives a crash.
			shrink = true
			if size%(int64(1)<<cbits) == 0 {
				return nil
			}
			if err := f.zeroTail(tx, d, size); err != nil {
				return err
			}
			return saveInode(tx, d, b)
		}
		if err := f.resizeInPlace(tx, d, size); err != nil {
			return err
		}
		d.Mtime, d.Ctime = now, now
		return saveInode(tx, d, b)
	})
	if err != nil || !shrink {
		return err
	}
	return f.removeRange(ino, keep, math.MaxUint32, &shrinkTo{size: size, times: &now})
}

// shrinkTo is the size a truncate or a delete takes a file to, step by step
// in removeRange, and the change time it stamps (nil: times stay).
type shrinkTo struct {
	size  int64
	times *ondisk.DiskTime
}

// shrinkStep sets d's size after a removeRange step that cut the clusters
// from cut on: the final size once done, before that the end of what is
// left (never more than the size was).
func (f *FS) shrinkStep(d *ondisk.Dinode, s *shrinkTo, cut uint32, done bool) {
	size := uint64(s.size)
	if !done {
		size = max(size, min(d.Size, uint64(cut)<<f.SB.ClusterSizeBits))
	}
	d.Size = size
	if s.times != nil {
		d.Mtime, d.Ctime = *s.times, *s.times
	}
}

// resizeInPlace handles the truncates that free nothing: growing, and any
// size change of an inline file.
func (f *FS) resizeInPlace(tx metacache.Tx, d *ondisk.Dinode, size int64) error {
	if d.Inline != nil {
		if size <= int64(len(d.Inline.Data)) {
			if size < int64(d.Size) {
				clear(d.Inline.Data[size:])
			}
			d.Size = uint64(size)
			return nil
		}
		if err := f.inlineToExtents(tx, d); err != nil {
			return err
		}
	}
	if size > int64(d.Size) && !f.sparse() {
		if err := f.ensureAllocated(tx, d, int64(d.Size), size, true); err != nil {
			return err
		}
	}
	d.Size = uint64(size)
	return nil
}

// zeroTail zeroes the bytes from size to the end of its cluster when that
// cluster is allocated and written; a shared cluster is copied first (the
// bytes past a reflink's end are not the other file's to lose).
func (f *FS) zeroTail(tx metacache.Tx, d *ondisk.Dinode, size int64) error {
	cbits := f.SB.ClusterSizeBits
	cs := int64(1) << cbits
	if size%cs == 0 || d.Extents == nil {
		return nil
	}
	m, err := extent.Lookup(f.C, d.Extents, uint32(size>>cbits), fmt.Sprintf("inode %d", d.Blkno))
	if err != nil || !m.Found || m.Rec.Flags&ondisk.ExtentUnwritten != 0 {
		return err
	}
	if m.Rec.Flags&ondisk.ExtentRefcounted != 0 {
		if err := f.unshareBytes(tx, d, size, size+1); err != nil {
			return err
		}
		if m, err = extent.Lookup(f.C, d.Extents, uint32(size>>cbits), fmt.Sprintf("inode %d", d.Blkno)); err != nil {
			return err
		}
	}
	bs := int64(f.SB.BlockSize())
	clusterStart := size &^ (cs - 1)
	phys := int64(m.Rec.Blkno)*bs + (clusterStart - int64(m.Rec.Cpos)<<cbits)
	return f.zeroBytes(phys+(size-clusterStart), cs-(size-clusterStart))
}

// Fallocate modes (fallocate(2)).
const (
	FallocKeepSize  = 0x01
	FallocPunchHole = 0x02
	FallocZeroRange = 0x10
)

// Fallocate preallocates (unwritten extents), punches holes or zeroes
// ranges of regular file ino, as fallocate(2) and the manual describe.
func (f *FS) Fallocate(ino uint64, mode uint32, off, length int64) error {
	if off < 0 || length <= 0 {
		return syscall.EINVAL
	}
	if mode&^(FallocKeepSize|FallocPunchHole|FallocZeroRange) != 0 {
		return syscall.EOPNOTSUPP
	}
	if mode&FallocPunchHole != 0 && (mode&FallocKeepSize == 0 || mode&FallocZeroRange != 0) {
		return syscall.EINVAL
	}
	end := off + length
	if end > f.maxFileBytes() || end < off {
		return syscall.EFBIG
	}
	if !f.unwrittenSupported() {
		return syscall.EOPNOTSUPP // OCFS2 needs sparse + unwritten for fallocate
	}
	if _, err := f.writer(); err != nil {
		return err
	}
	now := diskTime(f.W.now())
	cbits := f.SB.ClusterSizeBits
	cs := int64(1) << cbits
	if mode&(FallocPunchHole|FallocZeroRange) != 0 {
		// Edges inside partial clusters are zeroed in place; whole clusters
		// are removed (punch) or turned into unwritten extents (zero range).
		firstFull := uint32((off + cs - 1) >> cbits)
		lastFull := uint32(end >> cbits) // exclusive
		err := f.run(inodes(true, ino), 8, func(tx metacache.Tx) error {
			d, b, err := f.inodeForWrite(tx, ino)
			if err != nil {
				return err
			}
			if !d.IsReg() {
				return syscall.ENODEV
			}
			if d.Inline != nil {
				if lim := min(end, int64(d.Size)); off < lim {
					clear(d.Inline.Data[off:lim])
				}
				if mode&FallocZeroRange != 0 && mode&FallocKeepSize == 0 && end > int64(d.Size) {
					if err := f.resizeInPlace(tx, d, end); err != nil {
						return err
					}
				}
				d.Mtime, d.Ctime = now, now
				return saveInode(tx, d, b)
			}
			if err := f.zeroPartial(tx, d, off, min(end, int64(firstFull)<<cbits)); err != nil {
				return err
			}
			if lastFull >= firstFull {
				if err := f.zeroPartial(tx, d, max(off, int64(lastFull)<<cbits), end); err != nil {
					return err
				}
			}
			if mode&FallocZeroRange != 0 && lastFull > firstFull {
				// Shared clusters stay shared: unwritten and refcounted,
				// they read as zeros here and are copied (not their
				// data) on the next write.
				t := f.tree(tx, d)
				_, err := t.Update(firstFull, lastFull-firstFull, func(r ondisk.ExtentRec) ondisk.ExtentRec {
					r.Flags |= ondisk.ExtentUnwritten
					return r
				})
				d.LastEBBlk = t.LastEB
				if err != nil {
					return err
				}
				if err := f.preallocate(tx, d, int64(firstFull)<<cbits, int64(lastFull)<<cbits); err != nil {
					return err
				}
			}
			if mode&FallocKeepSize == 0 && end > int64(d.Size) {
				d.Size = uint64(end)
			}
			d.Mtime, d.Ctime = now, now
			return saveInode(tx, d, b)
		})
		if err != nil || mode&FallocPunchHole == 0 || lastFull <= firstFull {
			return err
		}
		return f.removeRange(ino, firstFull, lastFull, nil)
	}
	return f.run(inodes(true, ino), 8, func(tx metacache.Tx) error {
		d, b, err := f.inodeForWrite(tx, ino)
		if err != nil {
			return err
		}
		if !d.IsReg() {
			return syscall.ENODEV
		}
		if d.Inline != nil {
			if end <= int64(len(d.Inline.Data)) {
				if mode&FallocKeepSize == 0 && end > int64(d.Size) {
					d.Size = uint64(end)
					d.Ctime = now
				}
				return saveInode(tx, d, b)
			}
			if err := f.inlineToExtents(tx, d); err != nil {
				return err
			}
		}
		if err := f.preallocate(tx, d, off, end); err != nil {
			return err
		}
		if mode&FallocKeepSize == 0 && end > int64(d.Size) {
			d.Size = uint64(end)
			d.Mtime = now
		}
		d.Ctime = now
		return saveInode(tx, d, b)
	})
}

// preallocate maps every hole of [from, to) with unwritten extents.
func (f *FS) preallocate(tx metacache.Tx, d *ondisk.Dinode, from, to int64) error {
	if to <= from {
		return nil
	}
	cbits := f.SB.ClusterSizeBits
	t := f.tree(tx, d)
	defer func() { d.LastEBBlk = t.LastEB }()
	last := uint32((to - 1) >> cbits)
	for c := uint32(from >> cbits); c <= last; {
		m, err := extent.Lookup(f.C, d.Extents, c, t.Owner)
		if err != nil {
			return err
		}
		stop := uint32(min(m.Next, uint64(last)+1))
		if m.Found {
			c = stop
			continue
		}
		start, n, err := f.W.Alloc.Clusters.ClaimClusters(tx, d.Blkno, 0, 1, stop-c)
		if err != nil {
			return err
		}
		if err := t.Insert(ondisk.ExtentRec{Cpos: c, Clusters: n, Blkno: uint64(start) * f.bpc(), Flags: ondisk.ExtentUnwritten}); err != nil {
			return err
		}
		d.Clusters += n
		c += n
	}
	return nil
}

// zeroPartial writes zeros over file bytes [from, to) where they are
// allocated and written (holes and unwritten extents already read as zero),
// copying shared clusters first.
func (f *FS) zeroPartial(tx metacache.Tx, d *ondisk.Dinode, from, to int64) error {
	cbits := f.SB.ClusterSizeBits
	bs := int64(f.SB.BlockSize())
	for pos := from; pos < to; {
		m, err := extent.Lookup(f.C, d.Extents, uint32(pos>>cbits), fmt.Sprintf("inode %d", d.Blkno))
		if err != nil {
			return err
		}
		next := int64(m.Next) << cbits
		if m.Next == extent.NoMore {
			next = to
		}
		n := min(next, to) - pos
		if m.Found && m.Rec.Flags&ondisk.ExtentUnwritten == 0 {
			if m.Rec.Flags&ondisk.ExtentRefcounted != 0 {
				if err := f.unshareBytes(tx, d, pos, pos+n); err != nil {
					return err
				}
				continue // look again: the range is private now
			}
			phys := int64(m.Rec.Blkno)*bs + (pos - int64(m.Rec.Cpos)<<cbits)
			if err := f.zeroBytes(phys, n); err != nil {
				return err
			}
		}
		pos += n
	}
	return nil
}

// Seek implements lseek's SEEK_DATA (whence 3) and SEEK_HOLE (4): unwritten
// extents count as holes, as in the kernel.
func (f *FS) Seek(ino uint64, off int64, whence int) (int64, error) {
	unlock, err := f.rlock(ino)
	if err != nil {
		return 0, err
	}
	defer unlock()
	d, err := f.Inode(ino)
	if err != nil {
		return 0, err
	}
	size := int64(d.Size)
	if off < 0 || off >= size {
		return 0, syscall.ENXIO
	}
	wantData := whence == 3
	if whence != 3 && whence != 4 {
		return 0, syscall.EINVAL
	}
	if d.Inline != nil || d.Extents == nil {
		if wantData {
			return off, nil
		}
		return size, nil
	}
	cbits := f.SB.ClusterSizeBits
	for pos := off; pos < size; {
		m, err := extent.Lookup(f.C, d.Extents, uint32(pos>>cbits), fmt.Sprintf("inode %d", d.Blkno))
		if err != nil {
			return 0, err
		}
		isData := m.Found && m.Rec.Flags&ondisk.ExtentUnwritten == 0
		if isData == wantData {
			return pos, nil
		}
		if m.Next == extent.NoMore {
			break
		}
		pos = int64(m.Next) << cbits
	}
	if wantData {
		return 0, syscall.ENXIO
	}
	return size, nil
}
