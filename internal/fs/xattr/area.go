package xattr

import (
	"errors"
	"fmt"
	"slices"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// put stores nv in s, replacing entry i when i >= 0: the kernel's
// ocfs2_xa_set. It returns errNoRoom, having changed nothing, when nv does
// not fit.
func (e *editor) put(s *store, i int, nv *newValue) error {
	if err := s.checkSpace(i, nv, e.bs); err != nil {
		if errors.Is(err, errNoRoom) {
			return errNoRoom
		}
		return fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, s.blkno))
	}
	s.dirty = true
	if i >= 0 && s.canReuse(i, nv) {
		ent := &s.h.Entries[i]
		switch {
		case ent.Local() && !nv.local():
			ent.Root = ondisk.NewXattrValueRoot()
		case !ent.Local() && nv.local():
			if err := e.resizeValue(ent.Root, s.blkno, 0); err != nil {
				return err
			}
			ent.Root = nil
		}
	} else {
		if i >= 0 {
			if old := &s.h.Entries[i]; !old.Local() {
				if err := e.resizeValue(old.Root, s.blkno, 0); err != nil {
					return err
				}
			}
			s.wipe(i)
		} else {
			i = s.addEntry(nv.hash)
		}
		s.place(i, nv.size(), e.bs)
		ent := &s.h.Entries[i]
		ent.Root = nil
		if !nv.local() {
			ent.Root = ondisk.NewXattrValueRoot()
		}
	}
	ent := &s.h.Entries[i]
	ent.NameHash = nv.hash
	ent.Name = slices.Clone(nv.name)
	ent.ValueSize = uint64(len(nv.value))
	ent.Type = nv.index
	if nv.local() {
		ent.Type |= ondisk.XattrEntryLocal
		ent.Value = slices.Clone(nv.value)
		return nil
	}
	ent.Value = nil
	if err := e.resizeValue(ent.Root, s.blkno, len(nv.value)); err != nil {
		return err
	}
	return e.writeValue(ent.Root, nv.value)
}

// inlineAllowed says whether attributes may live in the inode at all: not
// on 512-byte blocks, where the kernel never puts them there.
func (e *editor) inlineAllowed() bool { return e.bs > 512 }

// loadInline decodes the in-inode area, when the inode has one.
func (e *editor) loadInline() (*store, error) {
	if e.inline != nil {
		return e.inline, nil
	}
	d := e.d
	if d.DynFeatures&ondisk.DynInlineXattr == 0 {
		return nil, nil
	}
	area, err := ondisk.InodeInlineXattrArea(e.buf.Data, d.XattrInlineSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, d.Blkno))
	}
	h, err := ondisk.DecodeXattrHeader(area, "inline xattr area")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, d.Blkno))
	}
	s := &store{where: InInode, size: len(area), h: h, blkno: d.Blkno}
	if err := s.check(e.bs); err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, d.Blkno))
	}
	e.inline = s
	return s, nil
}

// inlineFree is the room id2 can give the in-inode area (the kernel's
// ocfs2_xattr_has_space_inline), or -1 when this inode kind has none.
func (e *editor) inlineFree() int {
	d := e.d
	switch {
	case d.Inline != nil:
		return len(d.Inline.Data) - int(min(d.Size, 1<<20))
	case d.FastSymlink != nil:
		return e.bs - ondisk.DinodeID2Offset - int(min(d.Size, 1<<20))
	case d.Extents != nil:
		return (int(d.Extents.Count) - len(d.Extents.Recs)) * ondisk.ExtentRecSize
	}
	return -1
}

// canTakeInline says whether the inode can set up its in-inode area for nv:
// id2 can spare s_xattr_inline_size bytes and nv fits in the empty area.
func (e *editor) canTakeInline(nv *newValue) bool {
	size := int(e.SB.XattrInlineSize)
	if size < 256 || size%ondisk.ExtentRecSize != 0 || size > e.bs-ondisk.DinodeID2Offset-ondisk.ExtentListHeaderSize {
		return false
	}
	if e.inlineFree() < size {
		return false
	}
	return ondisk.XattrEntrySize+nv.size() <= size-tableEnd(0)-headerGap
}

// takeInline reserves the block's last s_xattr_inline_size bytes for
// attributes, shrinking id2 by as much (ocfs2_xattr_ibody_init).
func (e *editor) takeInline() (*store, error) {
	d := e.d
	size := int(e.SB.XattrInlineSize)
	switch {
	case d.Inline != nil:
		d.Inline.Data = slices.Clone(d.Inline.Data[:len(d.Inline.Data)-size])
	case d.Extents != nil:
		d.Extents.Count -= uint16(size / ondisk.ExtentRecSize)
	}
	d.XattrInlineSize = uint16(size)
	d.DynFeatures |= ondisk.DynInlineXattr | ondisk.DynHasXattr
	clear(e.buf.Data[e.bs-size:])
	e.inline = &store{where: InInode, size: size, h: &ondisk.XattrHeader{}, blkno: d.Blkno, dirty: true}
	return e.inline, nil
}

// canGiveBackInline says whether an empty in-inode area can go back to
// id2. An inline directory keeps it: its entries span the whole of
// id_count, and its size would not follow.
func (e *editor) canGiveBackInline() bool {
	d := e.d
	n := int(d.XattrInlineSize)
	switch {
	case d.Inline != nil:
		return !d.IsDir() && len(d.Inline.Data)+n <= ondisk.InlineDataBytes(e.bs, 0)
	case d.Extents != nil:
		return n%ondisk.ExtentRecSize == 0 && int(d.Extents.Count)+n/ondisk.ExtentRecSize <= ondisk.ExtentRecsPerInode(e.bs, 0)
	}
	return d.FastSymlink != nil
}

// giveBackInline returns the empty in-inode area to id2.
func (e *editor) giveBackInline() {
	d := e.d
	n := int(d.XattrInlineSize)
	switch {
	case d.Inline != nil:
		d.Inline.Data = append(slices.Clone(d.Inline.Data), make([]byte, n)...)
	case d.Extents != nil:
		d.Extents.Count += uint16(n / ondisk.ExtentRecSize)
	}
	clear(e.buf.Data[e.bs-n:])
	d.XattrInlineSize = 0
	d.DynFeatures &^= ondisk.DynInlineXattr
	e.inline = nil
}

// writeInline encodes the in-inode area into the inode's buffer (the
// caller dirties the buffer with the dinode).
func (e *editor) writeInline() error {
	s := e.inline
	if err := s.check(e.bs); err != nil {
		return fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, s.blkno))
	}
	area, err := ondisk.InodeInlineXattrArea(e.buf.Data, e.d.XattrInlineSize)
	if err != nil || len(area) != s.size {
		return fmt.Errorf("%s: in-inode area changed size under the change (%v)", e.owner(), err)
	}
	s.encode(area)
	s.dirty = false
	return nil
}

// xblock is the inode's XATTR01 block under change.
type xblock struct {
	blkno uint64
	xb    *ondisk.XattrBlock // private copy
	s     *store             // the body of a non-indexed block
	dirty bool
	fresh bool // allocated by this change
	freed bool
}

func (x *xblock) indexed() bool { return x.xb.Indexed() }

// loadBlock reads and checks the xattr block, when the inode has one.
func (e *editor) loadBlock() (*xblock, error) {
	if e.xb != nil {
		if e.xb.freed {
			return nil, nil
		}
		return e.xb, nil
	}
	d := e.d
	if d.DynFeatures&ondisk.DynHasXattr == 0 || d.XattrLoc == 0 {
		return nil, nil
	}
	if _, err := e.C.XattrBlock(d.XattrLoc); err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), err)
	}
	b, err := e.C.Get(d.XattrLoc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), err)
	}
	xb, err := ondisk.DecodeXattrBlock(b.Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, d.XattrLoc))
	}
	x := &xblock{blkno: d.XattrLoc, xb: xb}
	if !xb.Indexed() {
		x.s = &store{where: InBlock, size: e.bs - ondisk.XattrBlockAttrsOffset, h: xb.Header, blkno: d.XattrLoc}
		if err := x.s.check(e.bs); err != nil {
			return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, d.XattrLoc))
		}
	} else if xb.Tree.List.Count > uint16(ondisk.XattrTreeRootCapacity(e.bs)) {
		return nil, e.corrupt(d.XattrLoc, "xattr block", "xt_list.l_count", "is %d, an xattr block holds %d records", xb.Tree.List.Count, ondisk.XattrTreeRootCapacity(e.bs))
	}
	e.xb = x
	return x, nil
}

// createBlock makes an empty, non-indexed xattr block for the inode
// (ocfs2_create_xattr_block).
func (e *editor) createBlock() (*xblock, error) {
	if e.Meta == nil {
		return nil, fmt.Errorf("%s: no metadata block allocator in the environment", e.owner())
	}
	mb, err := e.Meta.NewMetaBlock(e.Tx)
	if err != nil {
		return nil, fmt.Errorf("%s: allocating an xattr block: %w", e.owner(), err)
	}
	xb := &ondisk.XattrBlock{SuballocSlot: mb.Slot, SuballocBit: mb.Bit, FSGeneration: e.C.FSGeneration(),
		Blkno: mb.Blkno, SuballocLoc: mb.GroupBlkno, Header: &ondisk.XattrHeader{}}
	x := &xblock{blkno: mb.Blkno, xb: xb, fresh: true, dirty: true,
		s: &store{where: InBlock, size: e.bs - ondisk.XattrBlockAttrsOffset, h: xb.Header, blkno: mb.Blkno}}
	e.xb = x
	e.d.XattrLoc = mb.Blkno
	e.d.DynFeatures |= ondisk.DynHasXattr
	return x, nil
}

// writeBlock encodes the xattr block through the Tx.
func (e *editor) writeBlock() error {
	x := e.xb
	if !x.indexed() {
		if err := x.s.check(e.bs); err != nil {
			return fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, x.blkno))
		}
		x.xb.Header = x.s.h
	}
	var b *metacache.Buffer
	var err error
	if x.fresh {
		b, err = e.Tx.New(x.blkno)
	} else {
		b, err = e.blockFor(x.blkno)
	}
	if err != nil {
		return err
	}
	x.xb.Encode(b.Data)
	e.Tx.Dirty(b, ondisk.XattrBlockCheckOffset)
	x.dirty = false
	return nil
}

// freeBlock returns the (empty) xattr block to its allocator.
func (e *editor) freeBlock() error {
	x := e.xb
	mb := extent.MetaBlock{Blkno: x.blkno, Slot: x.xb.SuballocSlot, Bit: x.xb.SuballocBit, GroupBlkno: x.xb.SuballocLoc}
	if mb.GroupBlkno == 0 {
		mb.GroupBlkno = mb.Blkno - uint64(mb.Bit)
	}
	if e.Meta == nil {
		return fmt.Errorf("%s: no metadata block allocator in the environment", e.owner())
	}
	if err := e.Meta.FreeMetaBlock(e.Tx, mb); err != nil {
		return fmt.Errorf("%s: freeing xattr block %d: %w", e.owner(), x.blkno, err)
	}
	if !x.fresh {
		e.Tx.Revoke(x.blkno)
	}
	x.freed, x.dirty = true, false
	e.d.XattrLoc = 0
	return nil
}

// bucket is one 4 KiB bucket under change.
type bucket struct {
	blkno uint64
	s     *store
	dirty bool
}

// bucketBlocks is how many blocks a bucket spans.
func (e *editor) bucketBlocks() int { return ondisk.XattrBucketBlocks(e.bs) }

// bucketsPerCluster is how many buckets a cluster holds.
func (e *editor) bucketsPerCluster() int { return e.cs / ondisk.XattrBucketSize }

// loadBucket reads and checks the bucket at blkno (once per change).
func (e *editor) loadBucket(blkno uint64) (*bucket, error) {
	if b, ok := e.buckets[blkno]; ok {
		return b, nil
	}
	raw := make([]byte, ondisk.XattrBucketSize)
	for i := 0; i < e.bucketBlocks(); i++ {
		b, err := e.C.GetUnowned(blkno + uint64(i))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.owner(), err)
		}
		copy(raw[i*e.bs:], b.Data)
	}
	if e.C.MetaECC() {
		if _, err := ondisk.VerifyBlockCheck(raw, ondisk.XattrBucketCheckOff, "xattr bucket"); err != nil {
			return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, blkno))
		}
	}
	h, err := ondisk.DecodeXattrBucket(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, blkno))
	}
	s := &store{where: InBucket, size: ondisk.XattrBucketSize, h: h, blkno: blkno}
	copy(s.slot0[:], raw[ondisk.XattrHeaderSize:])
	if err := s.check(e.bs); err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, blkno))
	}
	s.normalize()
	b := &bucket{blkno: blkno, s: s}
	e.buckets[blkno] = b
	return b, nil
}

// newBucket stands for a bucket about to be written whole at blkno
// (inside a new cluster, or an unused slot of a bucket run): nothing is
// read.
func (e *editor) newBucket(blkno uint64) *bucket {
	b := &bucket{blkno: blkno, dirty: true,
		s: &store{where: InBucket, size: ondisk.XattrBucketSize, h: &ondisk.XattrHeader{FreeStart: ondisk.XattrBucketSize}, blkno: blkno, dirty: true}}
	e.buckets[blkno] = b
	return b
}

// markDirty notes that b changed.
func (b *bucket) markDirty() { b.dirty, b.s.dirty = true, true }

// writeBucket encodes a bucket, seals its check over the whole 4 KiB and
// writes its blocks through the Tx.
func (e *editor) writeBucket(b *bucket) error {
	s := b.s
	s.normalize()
	if err := s.check(e.bs); err != nil {
		return fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, b.blkno))
	}
	raw := make([]byte, ondisk.XattrBucketSize)
	s.encode(raw)
	if e.metaECC() {
		ondisk.SetBlockCheck(raw, ondisk.XattrBucketCheckOff)
	}
	for i := 0; i < e.bucketBlocks(); i++ {
		buf, err := e.blockFor(b.blkno + uint64(i))
		if err != nil {
			return err
		}
		copy(buf.Data, raw[i*e.bs:(i+1)*e.bs])
		e.Tx.Dirty(buf, -1)
	}
	b.dirty, s.dirty = false, false
	return nil
}

// sortedBuckets lists the buckets of this change by block number, so
// that writes happen in one order whatever the map says.
func (e *editor) sortedBuckets() []*bucket {
	out := make([]*bucket, 0, len(e.buckets))
	for _, b := range e.buckets {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *bucket) int {
		switch {
		case a.blkno < b.blkno:
			return -1
		case a.blkno > b.blkno:
			return 1
		}
		return 0
	})
	return out
}
