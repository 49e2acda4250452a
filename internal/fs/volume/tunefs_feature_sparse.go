package volume

import (
	"fmt"

	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// --fs-features=[no]sparse and [no]unwritten (tunefs.ocfs2's
// feature_sparse_files.c and feature_unwritten_extents.c). They concern
// regular files that are neither system files nor inline:
//
//   - sparse on: clusters a file holds past its size are freed (their
//     count was allowed without sparse files, not with them) and the rest of
//     the last cluster past the size is zeroed; then the flag.
//   - sparse off: refused while unwritten extents are enabled; every hole
//     below a file's size is filled with newly allocated, zeroed clusters
//     (refused, with nothing written, when the volume has too little free
//     space for them and their extent blocks); clusters past the size are
//     freed; then the flag.
//   - unwritten on: the flag (sparse files are needed).
//   - unwritten off: every unwritten extent is zeroed and marked written;
//     then the flag.
//
// On a quota volume the usage is counted anew after sparse on or off
// (refreshQuotaUsage).

// dataFile reports whether tunefs's sparse and unwritten changes concern d.
func dataFile(d *ondisk.Dinode) bool {
	return d.IsReg() && d.Flags&ondisk.InodeSystem == 0 && d.Inline == nil && d.Extents != nil
}

// fileExtents lists d's leaf records in cpos order.
func (t *tunefsVol) fileExtents(d *ondisk.Dinode) ([]ondisk.ExtentRec, error) {
	var recs []ondisk.ExtentRec
	err := extent.Walk(t.Cache, d.Extents, fmt.Sprintf("inode %d", d.Blkno), func(r ondisk.ExtentRec) error {
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

// sizeClusters is the clusters i_size covers.
func (t *tunefsVol) sizeClusters(d *ondisk.Dinode) uint64 {
	return (d.Size + uint64(t.cs()) - 1) / uint64(t.cs())
}

// holes lists the holes of [0, end) clusters in sorted records recs.
func holes(recs []ondisk.ExtentRec, end uint64) [][2]uint64 {
	var out [][2]uint64
	next := uint64(0)
	for _, r := range recs {
		if uint64(r.Cpos) >= end {
			break
		}
		if uint64(r.Cpos) > next {
			out = append(out, [2]uint64{next, uint64(r.Cpos)})
		}
		next = max(next, r.End())
	}
	if next < end {
		out = append(out, [2]uint64{next, end})
	}
	return out
}

func (t *tunefsVol) enableSparse() error {
	if t.already("sparse", true) {
		return nil
	}
	ok, err := t.askFeature("sparse", true)
	if err != nil || !ok {
		return err
	}
	err = t.forEachInode("Enabling sparse", func(d *ondisk.Dinode) error {
		if !dataFile(d) {
			return nil
		}
		return t.truncateToSize(d.Clone())
	})
	if err != nil {
		return err
	}
	t.setFeature("sparse", true)
	return t.writeSuper()
}

// truncateToSize frees d's clusters past its size and zeroes the last
// cluster past it (ocfs2_zero_tail_and_truncate), writing d when it
// changed.
func (t *tunefsVol) truncateToSize(d *ondisk.Dinode) error {
	recs, err := t.fileExtents(d)
	if err != nil {
		return err
	}
	end := t.sizeClusters(d)
	if len(recs) == 0 {
		return nil
	}
	cs := uint64(t.cs())
	if tail := d.Size % cs; tail != 0 {
		for _, r := range recs {
			if r.Contains(uint32(end-1)) && r.Flags == 0 {
				phys := (r.Blkno + (end-1-uint64(r.Cpos))*t.bpc()) * uint64(t.bs())
				if err := t.zeroBytes(int64(phys+tail), int64(cs-tail)); err != nil {
					return err
				}
			}
		}
	}
	last := recs[len(recs)-1].End()
	if last <= end {
		return nil
	}
	tree, err := t.tree(d)
	if err != nil {
		return err
	}
	pieces, err := tree.Remove(uint32(end), uint32(last-end))
	d.LastEBBlk = tree.LastEB
	if err != nil {
		return err
	}
	for _, p := range pieces {
		if err := t.freeExtent(d, p); err != nil {
			return err
		}
		d.Clusters -= p.Clusters
	}
	return t.writeInode(d)
}

// freeExtent gives a removed piece of d's extents back: to the global
// bitmap, or, when it is shared, to d's refcount tree (which frees what
// nobody references any more).
func (t *tunefsVol) freeExtent(d *ondisk.Dinode, p ondisk.ExtentRec) error {
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	start := p.Blkno / t.bpc()
	if p.Flags&ondisk.ExtentRefcounted == 0 {
		return gb.FreeClusters(t.tx, uint32(start), int(p.Clusters))
	}
	meta, _, err := t.allocators()
	if err != nil {
		return err
	}
	rt := &extent.RefcountTree{C: t.Cache, Tx: t.tx, Alloc: meta, Root: d.RefcountLoc}
	return rt.Decrease(start, p.Clusters, func(c uint64, n uint32) error {
		return gb.FreeClusters(t.tx, uint32(c), int(n))
	})
}

// zeroBytes writes zeros over n device bytes from off (aligned writes).
func (t *tunefsVol) zeroBytes(off, n int64) error {
	bs := int64(t.bs())
	first := off / bs
	last := (off + n + bs - 1) / bs
	buf := make([]byte, (last-first)*bs)
	if err := t.Cache.ReadBlocks(uint64(first), buf); err != nil {
		return err
	}
	clear(buf[off-first*bs : off-first*bs+n])
	return t.writeRaw(uint64(first), buf)
}

// sparseFile is a file whose holes nosparse fills.
type sparseFile struct {
	blkno uint64
	holes [][2]uint64
}

func (t *tunefsVol) disableSparse() error {
	if t.already("sparse", false) {
		return nil
	}
	if on, _ := t.feature("unwritten"); on {
		return tunefsRefuse("unwritten extents are enabled on %s; sparse files cannot be disabled (turn off unwritten too: --fs-features=nosparse does)", t.Path)
	}
	ok, err := t.askFeature("sparse", false)
	if err != nil || !ok {
		return err
	}
	var files []sparseFile
	var clusters, extentBlocks uint64
	recsPerEB := uint64(ondisk.ExtentBlockListCapacity(t.bs()))
	err = t.forEachInode("Scanning filesystem", func(d *ondisk.Dinode) error {
		if !dataFile(d) {
			return nil
		}
		recs, err := t.fileExtents(d)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Flags&ondisk.ExtentUnwritten != 0 {
				return tunefsRefuse("inode %d has unwritten extents although the unwritten feature is off: run fsck.ocfs2", d.Blkno)
			}
		}
		h := holes(recs, t.sizeClusters(d))
		last := uint64(0)
		if len(recs) > 0 {
			last = recs[len(recs)-1].End()
		}
		if len(h) == 0 && last <= t.sizeClusters(d) {
			return nil
		}
		files = append(files, sparseFile{d.Blkno, h})
		for _, x := range h {
			clusters += x[1] - x[0]
		}
		extentBlocks += (uint64(len(h)) + recsPerEB - 1) / recsPerEB
		return nil
	})
	if err != nil {
		return err
	}
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	u, err := gb.Usage()
	if err != nil {
		return err
	}
	ebClusters := (extentBlocks + t.bpc() - 1) / t.bpc()
	t.verbosef("We have %d clusters free, and need %d clusters to fill every sparse file and %d clusters for more extent blocks\n", u.Free(), clusters, ebClusters)
	if uint64(u.Free()) < clusters+ebClusters {
		return tunefsRefuse("there is not enough space to fill all of the sparse files on %s: %d clusters are needed, %d are free", t.Path, clusters+ebClusters, u.Free())
	}
	for i, f := range files {
		d0, err := t.Cache.Dinode(f.blkno)
		if err != nil {
			return err
		}
		d := d0.Clone()
		if err := t.fillHoles(d, f.holes); err != nil {
			return fmt.Errorf("inode %d: %w", f.blkno, err)
		}
		if err := t.writeInode(d); err != nil {
			return err
		}
		if err := t.truncateToSize(d); err != nil {
			return fmt.Errorf("inode %d: %w", f.blkno, err)
		}
		t.r.progress("Filling holes", int64(i+1), int64(len(files)))
	}
	t.setFeature("sparse", false)
	return t.writeSuper()
}

// fillHoles maps every hole with zeroed clusters (fill_one_hole).
func (t *tunefsVol) fillHoles(d *ondisk.Dinode, hs [][2]uint64) error {
	tree, err := t.tree(d)
	if err != nil {
		return err
	}
	defer func() { d.LastEBBlk = tree.LastEB }()
	for _, h := range hs {
		for c := h[0]; c < h[1]; {
			run, err := t.claimClusters(1, int(h[1]-c))
			if err != nil {
				return err
			}
			if err := t.zeroClusters(uint64(run.Start), uint64(run.Count), ""); err != nil {
				return err
			}
			if err := tree.Insert(ondisk.ExtentRec{Cpos: uint32(c), Clusters: uint32(run.Count), Blkno: uint64(run.Start) * t.bpc()}); err != nil {
				return err
			}
			d.Clusters += uint32(run.Count)
			c += uint64(run.Count)
		}
	}
	return nil
}

func (t *tunefsVol) disableUnwritten() error {
	if t.already("unwritten", false) {
		return nil
	}
	ok, err := t.askFeature("unwritten", false)
	if err != nil || !ok {
		return err
	}
	err = t.forEachInode("Disabling unwritten", func(d0 *ondisk.Dinode) error {
		if !dataFile(d0) {
			return nil
		}
		recs, err := t.fileExtents(d0)
		if err != nil {
			return err
		}
		d := d0.Clone()
		changed := false
		for _, r := range recs {
			if r.Flags&ondisk.ExtentUnwritten == 0 {
				continue
			}
			if r.Flags&ondisk.ExtentRefcounted != 0 {
				return tunefsRefuse("inode %d has an unwritten extent whose clusters are shared (reflinked) at cluster %d: o2go tunefs cannot unshare it", d.Blkno, r.Cpos)
			}
			if err := t.zeroClusters(r.Blkno/t.bpc(), uint64(r.Clusters), ""); err != nil {
				return err
			}
			tree, err := t.tree(d)
			if err != nil {
				return err
			}
			_, err = tree.Update(r.Cpos, r.Clusters, func(x ondisk.ExtentRec) ondisk.ExtentRec {
				x.Flags &^= ondisk.ExtentUnwritten
				return x
			})
			d.LastEBBlk = tree.LastEB
			if err != nil {
				return err
			}
			changed = true
		}
		if !changed {
			return nil
		}
		return t.writeInode(d)
	})
	if err != nil {
		return err
	}
	t.setFeature("unwritten", false)
	return t.writeSuper()
}
