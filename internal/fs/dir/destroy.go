package dir

import (
	"fmt"
	"math"

	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// Destroy frees everything a directory being deleted owns: its clusters
// (through Data), the extent blocks of its tree, and for an indexed
// directory the index clusters, the index tree's extent blocks and the dx
// root (through Meta). Every freed metadata block — directory blocks, dx
// leaves, extent blocks, the root — is revoked, so that replaying an older
// transaction never writes over whatever reuses it. Both trees are checked
// whole before the first block is freed.
//
// d is left an empty directory: no clusters, no index, i_size 0. The
// caller frees the inode itself.
func Destroy(env Env, d *ondisk.Dinode) error {
	e, err := newEditor(env, d)
	if err != nil {
		return err
	}
	if e.inline() {
		clear(d.Inline.Data)
		d.Size = 0
		return nil
	}
	var root *rootRef
	if d.DynFeatures&ondisk.DynIndexedDir != 0 {
		if root, err = e.readRoot(); err != nil {
			return err
		}
		if !root.r.Inline() {
			s, err := extent.CheckShape(e.C, &root.r.List, root.r.LastEBBlk, e.indexOwner())
			if err != nil {
				return err
			}
			if s.Clusters != uint64(root.r.Clusters) {
				return e.corrupt(root.blkno, "dx root", "dr_clusters", "is %d, the index tree maps %d", root.r.Clusters, s.Clusters)
			}
		}
	}
	s, err := extent.CheckShape(e.C, d.Extents, d.LastEBBlk, e.owner())
	if err != nil {
		return err
	}
	if s.Clusters != uint64(d.Clusters) {
		return e.corrupt(d.Blkno, "dinode", "i_clusters", "is %d, the extent tree maps %d", d.Clusters, s.Clusters)
	}
	if e.Data == nil {
		return fmt.Errorf("%s: no cluster allocator in the environment", e.owner())
	}

	if root != nil {
		if !root.r.Inline() {
			t := &extent.Tree{C: e.C, Tx: e.Tx, Alloc: e.meta(), Root: &root.r.List, BlocksPerCluster: uint64(e.bpc),
				Owner: e.indexOwner(), LastEB: root.r.LastEBBlk}
			if err := e.freeTree(t, math.MaxUint64); err != nil {
				return err
			}
		}
		mb := extent.MetaBlock{Blkno: root.blkno, Slot: root.r.SuballocSlot, Bit: root.r.SuballocBit, GroupBlkno: root.r.SuballocLoc}
		if mb.GroupBlkno == 0 {
			mb.GroupBlkno = mb.Blkno - uint64(mb.Bit)
		}
		if err := e.meta().FreeMetaBlock(e.Tx, mb); err != nil {
			return fmt.Errorf("%s: freeing dx root %d: %w", e.indexOwner(), root.blkno, err)
		}
		e.Tx.Revoke(root.blkno)
		d.DxRoot = 0
		d.DynFeatures &^= ondisk.DynIndexedDir
	}
	t := e.dataTree()
	if err := e.freeTree(t, e.dir().NumBlocks()); err != nil {
		return err
	}
	d.LastEBBlk = t.LastEB
	d.Clusters = 0
	d.Size = 0
	return nil
}

// freeTree unmaps every record of t, revoking the first `used` blocks of
// its logical space (the blocks ever written as metadata) and freeing the
// clusters; the tree's extent blocks go back to Meta as it empties.
func (e *editor) freeTree(t *extent.Tree, used uint64) error {
	var recs []ondisk.ExtentRec
	if err := extent.Walk(e.C, t.Root, t.Owner, func(r ondisk.ExtentRec) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		return err
	}
	bpc := uint64(e.bpc)
	for _, r := range recs {
		removed, err := t.Remove(r.Cpos, r.Clusters)
		if err != nil {
			return err
		}
		for _, p := range removed {
			for i := uint64(0); i < uint64(p.Clusters)*bpc; i++ {
				if uint64(p.Cpos)*bpc+i < used {
					e.Tx.Revoke(p.Blkno + i)
				}
			}
			if err := e.Data.FreeClusters(e.Tx, uint32(p.Blkno/bpc), p.Clusters); err != nil {
				return fmt.Errorf("%s: freeing clusters [%d,+%d): %w", t.Owner, p.Blkno/bpc, p.Clusters, err)
			}
		}
	}
	return nil
}
