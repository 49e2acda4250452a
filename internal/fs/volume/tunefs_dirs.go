package volume

import (
	"encoding/binary"
	"fmt"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/dir"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Directory changes the feature operations share (libocfs2ne.c's trailer
// code, libocfs2's dir_indexed.c and ocfs2_convert_inline_data_to_extents):
//
//   - installTrailers gives every block of a directory the DIRTRL1 trailer
//     (metaecc and indexed-dirs need them): entries that reach into the
//     trailer's last 64 bytes move to new blocks at the directory's end,
//     the last entry kept in each block stops at the trailer. New blocks
//     are written first, then the inode's size, then the changed blocks, so
//     an interruption leaves duplicate names (fsck.ocfs2 removes them),
//     never lost ones.
//   - buildIndex indexes a directory whose blocks have trailers: a dx root
//     from extent_alloc:0000 holding every name while they fit, else
//     clusters of dx leaves cut by hash as mkfs cuts them (dxPartition); the
//     blocks with room are threaded into the root's free list.
//   - dropIndex frees a directory's index: its leaf clusters, the extent
//     blocks of its tree and its root.
//   - inlineDirToBlock moves an inline directory into a cluster: the entries
//     become its first block, the last one stretched to the block's end (or
//     its trailer), indexed when the volume has indexed directories.

// slotMeta takes new extent blocks from extent_alloc:0000, as libocfs2
// does, and gives freed ones back to the extent_alloc of the slot that
// made them (the kernel allocates from each node's own slot).
type slotMeta struct{ t *tunefsVol }

func (m slotMeta) NewMetaBlock(tx metacache.Tx) (extent.MetaBlock, error) {
	a, err := m.t.metaAllocator()
	if err != nil {
		return extent.MetaBlock{}, err
	}
	o, err := a.ClaimObject(tx, 0)
	if err != nil {
		return extent.MetaBlock{}, noSpace(err)
	}
	return extent.MetaBlock(o), nil
}

func (m slotMeta) FreeMetaBlock(tx metacache.Tx, b extent.MetaBlock) error {
	a, err := m.t.extentAlloc(b.Slot)
	if err != nil {
		return err
	}
	return a.FreeObject(tx, alloc.Object(b))
}

// extentAlloc opens slot's extent_alloc.
func (t *tunefsVol) extentAlloc(slot uint16) (*alloc.ChainAllocator, error) {
	if slot == 0 {
		return t.metaAllocator()
	}
	if a, ok := t.extentAllocs[slot]; ok {
		return a, nil
	}
	if int(slot) >= int(t.SB.MaxSlots) {
		return nil, fmt.Errorf("a metadata block belongs to slot %d, and the volume has %d slots", slot, t.SB.MaxSlots)
	}
	gb, err := t.globalBitmap()
	if err != nil {
		return nil, err
	}
	blk, err := t.SystemFile(ondisk.SysExtentAlloc, int(slot))
	if err != nil {
		return nil, err
	}
	a, err := alloc.OpenSuballocator(t.Cache, t.geo, blk, slot, gb, fmt.Sprintf("extent_alloc:%04d", slot))
	if err != nil {
		return nil, err
	}
	if t.extentAllocs == nil {
		t.extentAllocs = map[uint16]*alloc.ChainAllocator{}
	}
	t.extentAllocs[slot] = a
	return a, nil
}

// dirBlocks lists the physical blocks of block directory d.
func (t *tunefsVol) dirBlocks(d *ondisk.Dinode) ([]uint64, error) {
	dd := dir.Dir{C: t.Cache, SB: t.SB, Inode: d}
	n := dd.NumBlocks()
	out := make([]uint64, 0, n)
	for i := uint64(0); i < n; i++ {
		b, err := dd.BlockAt(i)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// readBlock reads one block past the cache.
func (t *tunefsVol) readBlock(blk uint64) ([]byte, error) {
	buf := make([]byte, t.bs())
	if err := t.Cache.ReadBlocks(blk, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// writeDirBlock writes a directory block, sealing its trailer's check on a
// META_ECC volume.
func (t *tunefsVol) writeDirBlock(blk uint64, data []byte) error {
	if t.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 && ondisk.HasDirTrailerSignature(data) {
		ondisk.SetBlockCheck(data, ondisk.DirBlockCheckOffset(t.bs()))
	}
	return t.writeRaw(blk, data)
}

func putEntry(b []byte, ino uint64, recLen int, ft uint8, name string) {
	le := binary.LittleEndian
	le.PutUint64(b, ino)
	le.PutUint16(b[8:], uint16(recLen))
	b[10] = uint8(len(name))
	b[11] = ft
	copy(b[ondisk.DirEntryHeaderSize:], name)
}

// newDirBlock is an empty directory block with a trailer.
func (t *tunefsVol) newDirBlock(blk, dirBlkno uint64) []byte {
	b := make([]byte, t.bs())
	binary.LittleEndian.PutUint16(b[8:], uint16(ondisk.TrailerOffset(t.bs())))
	tr := ondisk.DirTrailer{Blkno: blk, ParentDinode: dirBlkno, FreeRecLen: uint16(ondisk.TrailerOffset(t.bs()))}
	tr.Encode(b)
	return b
}

// installTrailers gives every block of block directory d (the caller's
// copy) a trailer; it reports whether anything changed.
func (t *tunefsVol) installTrailers(d *ondisk.Dinode) (bool, error) {
	if d.Inline != nil || d.Extents == nil {
		return false, nil
	}
	blks, err := t.dirBlocks(d)
	if err != nil {
		return false, err
	}
	toff := ondisk.TrailerOffset(t.bs())
	type moved struct {
		ino  uint64
		ft   uint8
		name string
	}
	var moves []moved
	var changed []int
	bufs := make([][]byte, len(blks))
	for i, blk := range blks {
		b, err := t.readBlock(blk)
		if err != nil {
			return false, err
		}
		bufs[i] = b
		if ondisk.HasDirTrailerSignature(b) {
			continue
		}
		it := ondisk.NewDirIter(b)
		lastKept := -1
		for it.Next() {
			off, e := it.Offset(), it.Entry()
			real := ondisk.RecLen(1)
			if e.Used() {
				real = ondisk.RecLen(len(e.Name))
			}
			if off+real <= toff {
				lastKept = off
				continue
			}
			if e.Used() {
				moves = append(moves, moved{e.Inode, e.FileType, e.Name})
			}
		}
		if err := it.Err(); err != nil {
			return false, t.Cache.Annotate(err, blk)
		}
		if lastKept < 0 {
			return false, t.Cache.Annotate(&ondisk.CorruptError{Struct: "directory block", Field: "entries", Msg: "no entry fits before the trailer"}, blk)
		}
		binary.LittleEndian.PutUint16(b[lastKept+8:], uint16(toff-lastKept))
		clear(b[toff:])
		changed = append(changed, i)
	}
	if len(changed) == 0 {
		return false, nil
	}
	// Pack the moved entries into new blocks at the end.
	var newBufs [][]byte
	var cur []byte
	curOff, prevOff := 0, -1
	for _, m := range moves {
		rl := ondisk.RecLen(len(m.name))
		if cur == nil || curOff+rl > toff {
			cur = make([]byte, t.bs())
			newBufs = append(newBufs, cur)
			curOff, prevOff = 0, -1
		}
		if prevOff >= 0 {
			binary.LittleEndian.PutUint16(cur[prevOff+8:], uint16(curOff-prevOff))
		}
		putEntry(cur[curOff:], m.ino, toff-curOff, m.ft, m.name)
		prevOff = curOff
		curOff += rl
	}
	nold := uint64(len(blks))
	need := nold + uint64(len(newBufs))
	if need > uint64(d.Clusters)*t.bpc() {
		if err := t.resizeFile(d, uint32((need+t.bpc()-1)/t.bpc())); err != nil {
			return false, err
		}
	}
	dd := dir.Dir{C: t.Cache, SB: t.SB, Inode: d}
	for j, nb := range newBufs {
		blk, err := dd.BlockAt(nold + uint64(j))
		if err != nil {
			return false, err
		}
		tr := ondisk.DirTrailer{Blkno: blk, ParentDinode: d.Blkno, FreeRecLen: uint16(largestHole(nb[:toff]))}
		tr.Encode(nb)
		if err := t.writeDirBlock(blk, nb); err != nil {
			return false, err
		}
		blks = append(blks, blk)
	}
	d.Size = need * uint64(t.bs())
	if err := t.writeInode(d); err != nil {
		return false, err
	}
	for _, i := range changed {
		tr := ondisk.DirTrailer{Blkno: blks[i], ParentDinode: d.Blkno, FreeRecLen: uint16(largestHole(bufs[i][:toff]))}
		tr.Encode(bufs[i])
		if err := t.writeDirBlock(blks[i], bufs[i]); err != nil {
			return false, err
		}
	}
	return true, nil
}

// dirEntriesByBlock lists block directory d's live entries with the block
// holding each, in on-disk order, and each block's entry area.
func (t *tunefsVol) dirEntriesByBlock(d *ondisk.Dinode) ([]dxNamed, []uint64, [][]byte, error) {
	blks, err := t.dirBlocks(d)
	if err != nil {
		return nil, nil, nil, err
	}
	var out []dxNamed
	var bufs [][]byte
	for _, blk := range blks {
		b, err := t.readBlock(blk)
		if err != nil {
			return nil, nil, nil, err
		}
		if !ondisk.HasDirTrailerSignature(b) {
			return nil, nil, nil, t.Cache.Annotate(&ondisk.CorruptError{Struct: "directory block", Field: "trailer", Msg: "an indexed directory's block has no trailer"}, blk)
		}
		it := ondisk.NewDirIter(ondisk.DirEntryArea(b, true))
		for it.Next() {
			if e := it.Entry(); e.Used() {
				out = append(out, dxNamed{name: e.Name, block: blk})
			}
		}
		if err := it.Err(); err != nil {
			return nil, nil, nil, t.Cache.Annotate(err, blk)
		}
		bufs = append(bufs, b)
	}
	return out, blks, bufs, nil
}

// dxNamed is a name and the directory block holding it.
type dxNamed struct {
	name  string
	block uint64
}

// buildIndex indexes block directory d (the caller's copy, whose blocks
// have trailers) and writes it (ocfs2_dx_dir_build).
func (t *tunefsVol) buildIndex(d *ondisk.Dinode) error {
	names, blks, bufs, err := t.dirEntriesByBlock(d)
	if err != nil {
		return err
	}
	meta := slotMeta{t}
	mb, err := meta.NewMetaBlock(t.tx)
	if err != nil {
		return err
	}
	bs := t.bs()
	r := &ondisk.DXRoot{
		SuballocSlot: mb.Slot, SuballocBit: mb.Bit, SuballocLoc: mb.GroupBlkno,
		FSGeneration: t.Super.FSGeneration, Blkno: mb.Blkno, DirBlkno: d.Blkno,
		NumEntries: uint32(len(names)),
	}
	all := make([]dxHashed, len(names))
	for i, n := range names {
		all[i].major, all[i].minor = ondisk.DXHashString(n.name, t.SB.DxSeed, ondisk.SignedChar)
		all[i].block = n.block
	}
	var leaves []*ondisk.DXLeaf
	if len(all) <= ondisk.DXRootEntryCapacity(bs) {
		r.Flags = ondisk.DXRootFlagInline
		r.Entries = ondisk.DXEntryList{Count: uint16(ondisk.DXRootEntryCapacity(bs))}
		for _, e := range all {
			r.Entries.Entries = append(r.Entries.Entries, ondisk.DXEntry{MajorHash: e.major, MinorHash: e.minor, DirentBlk: e.block})
		}
	} else {
		bpc := int(t.bpc())
		leafCap := ondisk.DXLeafCapacity(bs)
		ranges, err := dxPartition(all, bpc, leafCap)
		if err != nil {
			return fmt.Errorf("indexing directory %d: %w", d.Blkno, err)
		}
		r.List = ondisk.ExtentList{Count: uint16(ondisk.DXRootExtentCapacity(bs))}
		tree := &extent.Tree{C: t.Cache, Tx: t.tx, Alloc: meta, Root: &r.List, BlocksPerCluster: t.bpc(),
			Owner: fmt.Sprintf("directory %d index", d.Blkno)}
		mask := uint32(bpc - 1)
		for i, rg := range ranges {
			run, err := t.claimClusters(1, 1)
			if err != nil {
				return err
			}
			start := uint64(run.Start) * t.bpc()
			if err := t.zeroClusters(uint64(run.Start), 1, ""); err != nil {
				return err
			}
			cpos := uint32(0)
			if i > 0 {
				cpos = rg[0].major
			}
			if err := tree.Insert(ondisk.ExtentRec{Cpos: cpos, Clusters: 1, Blkno: start}); err != nil {
				return err
			}
			cl := make([]*ondisk.DXLeaf, bpc)
			for l := range cl {
				cl[l] = &ondisk.DXLeaf{Blkno: start + uint64(l), FSGeneration: t.Super.FSGeneration, List: ondisk.DXEntryList{Count: uint16(leafCap)}}
			}
			for _, e := range rg {
				lf := cl[e.minor&mask]
				lf.List.Entries = append(lf.List.Entries, ondisk.DXEntry{MajorHash: e.major, MinorHash: e.minor, DirentBlk: e.block})
			}
			leaves = append(leaves, cl...)
			r.Clusters++
		}
		r.LastEBBlk = tree.LastEB
	}
	// Thread the blocks with room into the free list, last block first.
	toff := ondisk.TrailerOffset(bs)
	for i, b := range bufs {
		tr, err := ondisk.DecodeDirTrailer(b)
		if err != nil {
			return t.Cache.Annotate(err, blks[i])
		}
		tr.FreeRecLen = uint16(largestHole(b[:toff]))
		tr.FreeNext = 0
		if tr.FreeRecLen > 0 {
			tr.FreeNext = r.FreeBlk
			r.FreeBlk = blks[i]
		}
		tr.Encode(b)
	}
	for _, lf := range leaves {
		buf := make([]byte, bs)
		lf.Encode(buf)
		if t.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 {
			ondisk.SetBlockCheck(buf, ondisk.DXLeafCheckOffset)
		}
		if err := t.writeRaw(lf.Blkno, buf); err != nil {
			return err
		}
	}
	rb := make([]byte, bs)
	r.Encode(rb)
	if t.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 {
		ondisk.SetBlockCheck(rb, ondisk.DXRootCheckOffset)
	}
	if err := t.writeRaw(r.Blkno, rb); err != nil {
		return err
	}
	for i, b := range bufs {
		if err := t.writeDirBlock(blks[i], b); err != nil {
			return err
		}
	}
	d.DynFeatures |= ondisk.DynIndexedDir
	d.DxRoot = r.Blkno
	return t.writeInode(d)
}

// dropIndex frees directory d's index (the caller's copy) and writes d
// (ocfs2_dx_dir_truncate).
func (t *tunefsVol) dropIndex(d *ondisk.Dinode) error {
	if d.DynFeatures&ondisk.DynIndexedDir == 0 {
		return nil
	}
	r, err := t.Cache.DXRoot(d.DxRoot, d.Blkno)
	if err != nil {
		return err
	}
	if !r.Inline() {
		if err := t.freeTree(&r.List); err != nil {
			return err
		}
	}
	if err := (slotMeta{t}).FreeMetaBlock(t.tx, extent.MetaBlock{Blkno: r.Blkno, Slot: r.SuballocSlot, Bit: r.SuballocBit, GroupBlkno: r.SuballocLoc}); err != nil {
		return err
	}
	d.DynFeatures &^= ondisk.DynIndexedDir
	d.DxRoot = 0
	return t.writeInode(d)
}

// freeTree frees every cluster an extent tree maps and every extent block
// it is made of (the root list itself belongs to its owner).
func (t *tunefsVol) freeTree(l *ondisk.ExtentList) error {
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	for _, rec := range l.Recs {
		if l.TreeDepth == 0 {
			if rec.Clusters > 0 {
				if err := gb.FreeClusters(t.tx, uint32(rec.Blkno/t.bpc()), int(rec.Clusters)); err != nil {
					return err
				}
			}
			continue
		}
		eb, err := t.Cache.ExtentBlock(rec.Blkno)
		if err != nil {
			return err
		}
		if err := t.freeTree(&eb.List); err != nil {
			return err
		}
		if err := (slotMeta{t}).FreeMetaBlock(t.tx, extent.MetaBlock{Blkno: eb.Blkno, Slot: eb.SuballocSlot, Bit: eb.SuballocBit, GroupBlkno: eb.SuballocLoc}); err != nil {
			return err
		}
	}
	return nil
}

// inlineToBlocks moves inline file or directory d (the caller's copy)
// into a cluster and writes it (ocfs2_convert_inline_data_to_extents): a
// directory's entries become its first block, the last one stretched to
// the block's end or its trailer, indexed when the volume has indexed
// directories. An empty file just gets an empty extent list, as the kernel
// leaves it.
func (t *tunefsVol) inlineToBlocks(d *ondisk.Dinode) error {
	data := d.Inline.Data
	size := d.Size
	xattrInline := 0
	if d.DynFeatures&ondisk.DynInlineXattr != 0 {
		xattrInline = int(d.XattrInlineSize)
	}
	d.Inline = nil
	d.DynFeatures &^= ondisk.DynInlineData
	d.Extents = &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(t.bs(), xattrInline))}
	d.LastEBBlk = 0
	if size == 0 && !d.IsDir() {
		return t.writeInode(d)
	}
	run, err := t.claimClusters(1, 1)
	if err != nil {
		return err
	}
	if err := t.zeroClusters(uint64(run.Start), 1, ""); err != nil {
		return err
	}
	blk := uint64(run.Start) * t.bpc()
	d.Extents.Recs = []ondisk.ExtentRec{{Cpos: 0, Clusters: 1, Blkno: blk}}
	d.Clusters = 1
	b := make([]byte, t.bs())
	if d.IsDir() {
		trailer := t.SB.Features.Incompat&(ondisk.IncompatMetaECC|ondisk.IncompatIndexedDirs) != 0
		end := t.bs()
		if trailer {
			end = ondisk.TrailerOffset(t.bs())
		}
		copy(b, data[:size])
		// The last entry now reaches the end of the block's area.
		it := ondisk.NewDirIter(data[:size])
		last := 0
		for it.Next() {
			last = it.Offset()
		}
		if err := it.Err(); err != nil {
			return t.Cache.Annotate(err, d.Blkno)
		}
		binary.LittleEndian.PutUint16(b[last+8:], uint16(end-last))
		if trailer {
			tr := ondisk.DirTrailer{Blkno: blk, ParentDinode: d.Blkno, FreeRecLen: uint16(largestHole(b[:end]))}
			tr.Encode(b)
		}
		d.Size = uint64(t.bs())
		if err := t.writeDirBlock(blk, b); err != nil {
			return err
		}
		if err := t.writeInode(d); err != nil {
			return err
		}
		if t.SB.Features.Incompat&ondisk.IncompatIndexedDirs != 0 {
			return t.buildIndex(d)
		}
		return nil
	}
	copy(b, data[:size])
	if err := t.writeRaw(blk, b); err != nil {
		return err
	}
	return t.writeInode(d)
}
