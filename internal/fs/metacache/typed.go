package metacache

import "o2go/internal/ondisk"

// decodedOf returns the structure decoded from b earlier, if any. Decoded
// structures are shared and read-only, like Data; whoever changes Data
// (the journal) drops them with b.Invalidate.
func (c *Cache) decodedOf(b *Buffer, owner uint64) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ownLocked(b, owner)
	return b.decoded
}

// ownerNone is the owner the typed readers of blocks that never have a
// known owner (extent, xattr, dx leaf and refcount blocks) pass: a cached
// copy that a reader with an owner left (a directory block, an inode) is
// one from before the block was freed and used again.
const ownerNone = ^uint64(0)

// GetUnowned is Get for a block read without a typed reader that never
// has an owner (xattr buckets and value blocks): a cached copy an owner's
// read left is from before the block was freed and used again, and is
// read anew.
func (c *Cache) GetUnowned(blkno uint64) (*Buffer, error) {
	c.forgetIfOtherOwner(blkno, ownerNone)
	return c.Get(blkno)
}

// forgetIfOtherOwner drops a cached, unpinned copy of blkno that another
// owner's read left: the block was freed and used again since (another
// node's cluster lock covered the new use, not this node's copy), so it
// is read anew.
func (c *Cache) forgetIfOtherOwner(blkno, owner uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.bufs[blkno]; b != nil && b.owner != 0 && b.owner != owner && b.pins == 0 {
		c.removeLocked(b)
	}
}

// dropIfDecodedOther drops b, unless pinned, when it is cached decoded
// as something isType rejects, and reports whether it did.
func (c *Cache) dropIfDecodedOther(b *Buffer, isType func(any) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.decoded == nil || isType(b.decoded) || b.pins > 0 || c.bufs[b.Blkno] != b {
		return false
	}
	c.removeLocked(b)
	return true
}

// ownLocked records owner (when known) for b if b is still cached. Under mu.
func (c *Cache) ownLocked(b *Buffer, owner uint64) {
	if owner != 0 && c.bufs[b.Blkno] == b {
		c.setOwnerLocked(b, owner)
	}
}

func (c *Cache) setDecoded(b *Buffer, v any) {
	c.mu.Lock()
	b.decoded = v
	c.mu.Unlock()
}

// InvalidateDecoded drops the decoded form of b after its Data changed.
func (c *Cache) InvalidateDecoded(b *Buffer) { c.setDecoded(b, nil) }

// ExtentBlock returns the extent block at blkno, checked (META_ECC,
// signature, counts, own block number, volume generation, record order).
func (c *Cache) ExtentBlock(blkno uint64) (*ondisk.ExtentBlock, error) {
	return typed(c, blkno, ownerNone, ondisk.ExtentBlockCheckOffset, "extent block", ondisk.DecodeExtentBlock,
		func(eb *ondisk.ExtentBlock) error {
			if err := eb.SelfCheck(blkno, c.opts.FSGeneration); err != nil {
				return err
			}
			return eb.List.CheckOrder("extent block")
		})
}

// typed is the common path of the typed getters: a checked read, the
// decoded form if a previous call left one, else decode + identity checks.
// A known owner (not 0) is recorded for the block (SetOwner).
func typed[T any](c *Cache, blkno, owner uint64, checkOff int, name string, decode func([]byte) (T, error), self func(T) error) (T, error) {
	var zero T
	if owner != 0 {
		c.forgetIfOtherOwner(blkno, owner)
	}
	if owner == ownerNone {
		owner = 0
	}
	b, err := c.GetChecked(blkno, checkOff, name)
	if err != nil {
		return zero, err
	}
	if c.dropIfDecodedOther(b, func(v any) bool { _, ok := v.(T); return ok }) {
		// Cached as another structure: the block was freed and used
		// again since (by another node); read it anew.
		if b, err = c.GetChecked(blkno, checkOff, name); err != nil {
			return zero, err
		}
	}
	if v, ok := c.decodedOf(b, owner).(T); ok {
		return v, nil
	}
	v, err := decode(b.Data)
	if err == nil && self != nil {
		err = self(v)
	}
	if err != nil {
		return zero, c.annotate(err, blkno)
	}
	c.setDecoded(b, v)
	return v, nil
}

// Dinode returns the inode at blkno, checked: META_ECC, signature, VALID,
// own block number and volume generation, as the kernel checks an inode
// before trusting it, and the order of its root extent records.
func (c *Cache) Dinode(blkno uint64) (*ondisk.Dinode, error) {
	return typed(c, blkno, blkno, ondisk.DinodeCheckOffset, "dinode", ondisk.DecodeDinode,
		func(d *ondisk.Dinode) error {
			if err := d.SelfCheck(blkno, c.opts.FSGeneration); err != nil {
				return err
			}
			if d.Extents != nil {
				// The root of the extent tree, checked as an extent
				// block's list is: lookups binary-search it.
				return d.Extents.CheckOrder("dinode")
			}
			return nil
		})
}

// DinodeBlock returns the raw block of the inode at blkno after Dinode's
// checks (for the in-inode xattr area, which the Dinode type leaves alone).
func (c *Cache) DinodeBlock(blkno uint64) (*ondisk.Dinode, []byte, error) {
	d, err := c.Dinode(blkno)
	if err != nil {
		return nil, nil, err
	}
	b, err := c.Get(blkno)
	if err != nil {
		return nil, nil, err
	}
	return d, b.Data, nil
}

// GroupDesc returns the group descriptor at blkno, checked.
func (c *Cache) GroupDesc(blkno uint64) (*ondisk.GroupDesc, error) {
	g, err := typed(c, blkno, 0, ondisk.GroupDescCheckOffset, "group descriptor", ondisk.DecodeGroupDesc,
		func(g *ondisk.GroupDesc) error { return g.SelfCheck(blkno, c.opts.FSGeneration) })
	if err == nil {
		// A group belongs to its allocator: that inode's lock covers it.
		c.mu.Lock()
		if b := c.bufs[blkno]; b != nil {
			c.ownLocked(b, g.ParentDinode)
		}
		c.mu.Unlock()
	}
	return g, err
}

// DXRoot returns the indexed-directory root at blkno of directory dir.
func (c *Cache) DXRoot(blkno, dir uint64) (*ondisk.DXRoot, error) {
	return typed(c, blkno, dir, ondisk.DXRootCheckOffset, "dx root", ondisk.DecodeDXRoot,
		func(r *ondisk.DXRoot) error { return r.SelfCheck(blkno, c.opts.FSGeneration, dir) })
}

// DXLeaf returns the indexed-directory leaf at blkno.
func (c *Cache) DXLeaf(blkno uint64) (*ondisk.DXLeaf, error) {
	return typed(c, blkno, ownerNone, ondisk.DXLeafCheckOffset, "dx leaf", ondisk.DecodeDXLeaf,
		func(l *ondisk.DXLeaf) error { return l.SelfCheck(blkno, c.opts.FSGeneration) })
}

// XattrBlock returns the xattr block at blkno.
func (c *Cache) XattrBlock(blkno uint64) (*ondisk.XattrBlock, error) {
	return typed(c, blkno, ownerNone, ondisk.XattrBlockCheckOffset, "xattr block", ondisk.DecodeXattrBlock,
		func(x *ondisk.XattrBlock) error { return x.SelfCheck(blkno, c.opts.FSGeneration) })
}

// RefcountBlock returns the refcount tree block at blkno.
func (c *Cache) RefcountBlock(blkno uint64) (*ondisk.RefcountBlock, error) {
	return typed(c, blkno, ownerNone, ondisk.RefcountBlockCheckOffset, "refcount block", ondisk.DecodeRefcountBlock,
		func(r *ondisk.RefcountBlock) error { return r.SelfCheck(blkno, c.opts.FSGeneration) })
}

// DirBlock returns directory block blkno of directory dir and the part of
// it that holds entries. A block ending in a DIRTRL1 trailer has its trailer
// (and, with META_ECC, its check) verified; blocks without one are taken
// whole, which is how unindexed directories of non-META_ECC volumes look.
func (c *Cache) DirBlock(blkno, dir uint64) (area []byte, trailer *ondisk.DirTrailer, err error) {
	c.forgetIfOtherOwner(blkno, dir)
	b, err := c.Get(blkno)
	if err != nil {
		return nil, nil, err
	}
	if !ondisk.HasDirTrailerSignature(b.Data) {
		c.SetOwner(b, dir)
		return b.Data, nil, nil
	}
	if _, err := c.GetChecked(blkno, ondisk.DirBlockCheckOffset(c.bs), "directory block"); err != nil {
		return nil, nil, err
	}
	t, err := typed(c, blkno, dir, -1, "directory block", ondisk.DecodeDirTrailer,
		func(t *ondisk.DirTrailer) error { return t.SelfCheck(blkno, dir) })
	if err != nil {
		return nil, nil, err
	}
	return ondisk.DirEntryArea(b.Data, true), t, nil
}
