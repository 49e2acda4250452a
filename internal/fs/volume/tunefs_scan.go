package volume

import (
	"fmt"

	"o2go/internal/ondisk"
)

// Walking a volume for the feature changes that touch every inode or every
// metadata block (tunefs.ocfs2's tunefs_foreach_inode and the metaecc
// walk). Inodes are found the way libocfs2's inode scan finds them: every
// bit set in the groups of global_inode_alloc and of each slot's
// inode_alloc (bit 0, the group descriptor, excepted). Blocks whose
// signature, VALID flag or generation say they are not live inodes are
// skipped, as tunefs.ocfs2 skips them.

// allocatorGroups lists the group descriptors of chain allocator blkno,
// chain by chain, each chain from its head.
func (t *tunefsVol) allocatorGroups(blkno uint64) (*ondisk.Dinode, []*ondisk.GroupDesc, error) {
	d, err := t.Cache.Dinode(blkno)
	if err != nil {
		return nil, nil, err
	}
	if d.Chain == nil {
		return nil, nil, t.Cache.Annotate(&ondisk.CorruptError{Struct: "allocator dinode", Field: "id2", Msg: "has no chain list"}, blkno)
	}
	var out []*ondisk.GroupDesc
	seen := map[uint64]bool{}
	for ci, rec := range d.Chain.Recs {
		for blk := rec.Blkno; blk != 0; {
			if seen[blk] || blk >= t.Cache.Blocks() {
				return nil, nil, t.Cache.Annotate(&ondisk.CorruptError{Struct: "allocator dinode", Field: fmt.Sprintf("chain %d", ci), Msg: fmt.Sprintf("reaches group block %d twice or beyond the device", blk)}, blkno)
			}
			seen[blk] = true
			g, err := t.Cache.GroupDesc(blk)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, g)
			blk = g.NextGroup
		}
	}
	return d, out, nil
}

// forEachExtentAllocBlock calls fn with every block in use in the slots'
// extent_alloc files (extent, xattr, dx root and refcount blocks), slot by
// slot, and stops at fn's first error.
func (t *tunefsVol) forEachExtentAllocBlock(fn func(slot int, blk uint64) error) error {
	for slot := 0; slot < int(t.SB.MaxSlots); slot++ {
		a, err := t.SystemFile(ondisk.SysExtentAlloc, slot)
		if err != nil {
			return err
		}
		blks, err := t.allocatedBlocks(a)
		if err != nil {
			return err
		}
		for _, blk := range blks {
			if err := fn(slot, blk); err != nil {
				return err
			}
		}
	}
	return nil
}

// allocatedBlocks lists the blocks suballocator blkno hands out that are
// in use.
func (t *tunefsVol) allocatedBlocks(blkno uint64) ([]uint64, error) {
	d, groups, err := t.allocatorGroups(blkno)
	if err != nil {
		return nil, err
	}
	bpc := int(d.Chain.BPC)
	var out []uint64
	for _, g := range groups {
		for bit := 1; bit < int(g.Bits); bit++ {
			if g.Bitmap[bit>>3]&(1<<(bit&7)) == 0 {
				continue
			}
			b, err := g.BitBlock(bit, bpc)
			if err != nil {
				return nil, t.Cache.Annotate(err, g.Blkno)
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// chainAllocators lists every chain allocator inode: the global bitmap,
// global_inode_alloc, and each slot's inode_alloc and extent_alloc.
func (t *tunefsVol) chainAllocators() ([]uint64, error) {
	var out []uint64
	for _, k := range []ondisk.SystemFileKind{ondisk.SysGlobalBitmap, ondisk.SysGlobalInodeAlloc} {
		b, err := t.SystemFile(k, -1)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	for _, k := range []ondisk.SystemFileKind{ondisk.SysInodeAlloc, ondisk.SysExtentAlloc} {
		for slot := 0; slot < int(t.SB.MaxSlots); slot++ {
			b, err := t.SystemFile(k, slot)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// inodeBlocks lists every live inode's block, in allocator order.
func (t *tunefsVol) inodeBlocks() ([]uint64, error) {
	allocs := []uint64{}
	b, err := t.SystemFile(ondisk.SysGlobalInodeAlloc, -1)
	if err != nil {
		return nil, err
	}
	allocs = append(allocs, b)
	for slot := 0; slot < int(t.SB.MaxSlots); slot++ {
		b, err := t.SystemFile(ondisk.SysInodeAlloc, slot)
		if err != nil {
			return nil, err
		}
		allocs = append(allocs, b)
	}
	var out []uint64
	for _, a := range allocs {
		blks, err := t.allocatedBlocks(a)
		if err != nil {
			return nil, err
		}
		for _, blk := range blks {
			if t.liveInode(blk) {
				out = append(out, blk)
			}
		}
	}
	return out, nil
}

// liveInode reports whether blk holds a live inode of this volume
// (tunefs_validate_inode).
func (t *tunefsVol) liveInode(blk uint64) bool {
	b, err := t.Cache.Get(blk)
	if err != nil || string(b.Data[:8]) != ondisk.InodeSignature {
		return false
	}
	d, err := ondisk.DecodeDinode(b.Data)
	return err == nil && d.FSGeneration == t.Super.FSGeneration && d.Flags&ondisk.InodeValid != 0 && d.Blkno == blk
}

// forEachInode calls fn with every live inode (read afresh, so fn may
// change inodes it was called with before).
func (t *tunefsVol) forEachInode(stage string, fn func(d *ondisk.Dinode) error) error {
	blks, err := t.inodeBlocks()
	if err != nil {
		return err
	}
	for i, blk := range blks {
		d, err := t.Cache.Dinode(blk)
		if err != nil {
			return err
		}
		if err := fn(d); err != nil {
			return fmt.Errorf("inode %d: %w", blk, err)
		}
		if stage != "" && len(blks) >= 1000 {
			t.r.progress(stage, int64(i+1), int64(len(blks)))
		}
	}
	return nil
}
