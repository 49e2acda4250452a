package fsck

import (
	"encoding/binary"

	"o2go/internal/ondisk"
)

// fsck reads metadata as raw blocks and reads and changes fields in place,
// the way fsck.ocfs2 works on its buffers: the ondisk decoders refuse the
// damage fsck exists to find (a cl_count above capacity, a bad signature),
// so the passes look at the bytes through the small views below. Offsets
// are the on-disk layout documented in package ondisk.

var le = binary.LittleEndian

func get16(b []byte, off int) uint16    { return le.Uint16(b[off:]) }
func get32(b []byte, off int) uint32    { return le.Uint32(b[off:]) }
func get64(b []byte, off int) uint64    { return le.Uint64(b[off:]) }
func put16(b []byte, off int, v uint16) { le.PutUint16(b[off:], v) }
func put32(b []byte, off int, v uint32) { le.PutUint32(b[off:], v) }
func put64(b []byte, off int, v uint64) { le.PutUint64(b[off:], v) }
func hasSig(b []byte, sig string) bool  { return len(b) >= 8 && string(b[:7]) == sig[:7] }
func setBit(bm []byte, i int)           { bm[i>>3] |= 1 << (i & 7) }
func clearBit(bm []byte, i int)         { bm[i>>3] &^= 1 << (i & 7) }
func testBit(bm []byte, i int) bool     { return bm[i>>3]&(1<<(i&7)) != 0 }
func putBit(bm []byte, i int, on bool)  { bm[i>>3] = bm[i>>3]&^(1<<(i&7)) | b2u8(on)<<(i&7) }
func b2u8(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// dinode is a raw inode block.
type dinode []byte

const (
	diGeneration      = 0x08
	diSuballocSlot    = 0x0C
	diSuballocBit     = 0x0E
	diLinksHi         = 0x10
	diXattrInlineSize = 0x12
	diClusters        = 0x14
	diSize            = 0x20
	diMode            = 0x28
	diLinks           = 0x2A
	diFlags           = 0x2C
	diDtime           = 0x48
	diBlkno           = 0x50
	diLastEB          = 0x58
	diFSGeneration    = 0x60
	diOrphanedSlot    = 0x74
	diDynFeatures     = 0x76
	diXattrLoc        = 0x78
	diDxRoot          = 0x88
	diRefcountLoc     = 0x90
	diSuballocLoc     = 0x98
	diID1             = ondisk.DinodeID1Offset
	diID2             = ondisk.DinodeID2Offset
)

func (d dinode) valid() bool          { return hasSig(d, ondisk.InodeSignature) }
func (d dinode) flags() uint32        { return get32(d, diFlags) }
func (d dinode) setFlags(v uint32)    { put32(d, diFlags, v) }
func (d dinode) dyn() uint16          { return get16(d, diDynFeatures) }
func (d dinode) setDyn(v uint16)      { put16(d, diDynFeatures, v) }
func (d dinode) mode() uint16         { return get16(d, diMode) }
func (d dinode) blkno() uint64        { return get64(d, diBlkno) }
func (d dinode) size() uint64         { return get64(d, diSize) }
func (d dinode) setSize(v uint64)     { put64(d, diSize, v) }
func (d dinode) clusters() uint32     { return get32(d, diClusters) }
func (d dinode) setClusters(v uint32) { put32(d, diClusters, v) }
func (d dinode) fsGen() uint32        { return get32(d, diFSGeneration) }
func (d dinode) dtime() uint64        { return get64(d, diDtime) }
func (d dinode) suballocSlot() uint16 { return get16(d, diSuballocSlot) }
func (d dinode) xattrInline() int     { return int(get16(d, diXattrInlineSize)) }

// links is the 32-bit link count (i_links_count_hi:i_links_count).
func (d dinode) links() uint32 { return uint32(get16(d, diLinks)) | uint32(get16(d, diLinksHi))<<16 }
func (d dinode) setLinks(v uint32) {
	put16(d, diLinks, uint16(v))
	put16(d, diLinksHi, uint16(v>>16))
}

func (d dinode) isDir() bool  { return d.mode()&ondisk.ModeTypeMask == ondisk.ModeDir }
func (d dinode) isReg() bool  { return d.mode()&ondisk.ModeTypeMask == ondisk.ModeReg }
func (d dinode) isLink() bool { return d.mode()&ondisk.ModeTypeMask == ondisk.ModeLnk }
func (d dinode) inline() bool { return d.dyn()&ondisk.DynInlineData != 0 }

// usesExtentList says whether id2 is an extent list (fsck.ocfs2's
// o2fsck_check_blocks rule: not the superblock, an allocator, a local
// alloc or truncate log, and not a fast symlink or inline data).
func (d dinode) usesExtentList() bool {
	if d.flags()&(ondisk.InodeSuperBlock|ondisk.InodeLocalAlloc|ondisk.InodeBitmap|ondisk.InodeChain|ondisk.InodeDealloc) != 0 {
		return false
	}
	if d.isLink() && d.clusters() == 0 {
		return false
	}
	return !d.inline()
}

// id1 bitmap (allocators, local alloc).
func (d dinode) bmUsed() uint32      { return get32(d, diID1) }
func (d dinode) bmTotal() uint32     { return get32(d, diID1+4) }
func (d dinode) setBmUsed(v uint32)  { put32(d, diID1, v) }
func (d dinode) setBmTotal(v uint32) { put32(d, diID1+4, v) }

// id1 journal.
func (d dinode) journalFlags() uint32     { return get32(d, diID1) }
func (d dinode) setJournalFlags(v uint32) { put32(d, diID1, v) }

// extList is an extent list inside a larger buffer: a dinode's id2, an
// extent block's h_list, a dx root's dr_list, a group's bg_list, a value
// root's list. It is a slice starting at the list header and running to
// the end of its block.
type extList []byte

const extRecSize = ondisk.ExtentRecSize

func (l extList) depth() uint16        { return get16(l, 0) }
func (l extList) setDepth(v uint16)    { put16(l, 0, v) }
func (l extList) count() uint16        { return get16(l, 2) }
func (l extList) setCount(v uint16)    { put16(l, 2, v) }
func (l extList) nextFree() uint16     { return get16(l, 4) }
func (l extList) setNextFree(v uint16) { put16(l, 4, v) }
func (l extList) room() int            { return (len(l) - ondisk.ExtentListHeaderSize) / extRecSize }
func (l extList) rec(i int) extRec {
	o := ondisk.ExtentListHeaderSize + i*extRecSize
	return extRec(l[o : o+extRecSize])
}

// extRec is one 16-byte extent record.
type extRec []byte

func (r extRec) cpos() uint32         { return get32(r, 0) }
func (r extRec) setCpos(v uint32)     { put32(r, 0, v) }
func (r extRec) leafClusters() uint32 { return uint32(get16(r, 4)) }
func (r extRec) intClusters() uint32  { return get32(r, 4) }
func (r extRec) flags() uint8         { return r[7] }
func (r extRec) setFlags(v uint8)     { r[7] = v }
func (r extRec) blkno() uint64        { return get64(r, 8) }
func (r extRec) setBlkno(v uint64)    { put64(r, 8, v) }
func (r extRec) clear()               { clear(r) }

// clusters is ocfs2_rec_clusters: the leaf count at depth 0, the interior
// count above.
func (r extRec) clusters(depth uint16) uint32 {
	if depth > 0 {
		return r.intClusters()
	}
	return r.leafClusters()
}

func (r extRec) setClusters(depth uint16, v uint32) {
	if depth > 0 {
		put32(r, 4, v)
		return
	}
	put16(r, 4, uint16(v))
}

// groupDesc is a raw group descriptor block.
type groupDesc []byte

const (
	gdSize     = 0x08
	gdBits     = 0x0A
	gdFree     = 0x0C
	gdChain    = 0x0E
	gdGen      = 0x10
	gdNext     = 0x18
	gdParent   = 0x20
	gdBlkno    = 0x28
	gdBitmap   = ondisk.GroupDescBitmapOffset
	gdListOff  = ondisk.GroupDescListOffset
	gdCheckOff = ondisk.GroupDescCheckOffset
)

func (g groupDesc) valid() bool        { return hasSig(g, ondisk.GroupDescSignature) }
func (g groupDesc) size() uint16       { return get16(g, gdSize) }
func (g groupDesc) bits() uint16       { return get16(g, gdBits) }
func (g groupDesc) setBits(v uint16)   { put16(g, gdBits, v) }
func (g groupDesc) free() uint16       { return get16(g, gdFree) }
func (g groupDesc) setFree(v uint16)   { put16(g, gdFree, v) }
func (g groupDesc) chain() uint16      { return get16(g, gdChain) }
func (g groupDesc) setChain(v uint16)  { put16(g, gdChain, v) }
func (g groupDesc) gen() uint32        { return get32(g, gdGen) }
func (g groupDesc) setGen(v uint32)    { put32(g, gdGen, v) }
func (g groupDesc) next() uint64       { return get64(g, gdNext) }
func (g groupDesc) setNext(v uint64)   { put64(g, gdNext, v) }
func (g groupDesc) parent() uint64     { return get64(g, gdParent) }
func (g groupDesc) setParent(v uint64) { put64(g, gdParent, v) }
func (g groupDesc) blkno() uint64      { return get64(g, gdBlkno) }
func (g groupDesc) setBlkno(v uint64)  { put64(g, gdBlkno, v) }
func (g groupDesc) list() extList      { return extList(g[gdListOff:]) }

// bitmap is bg_bitmap, bounded by the block and by bg_bits.
func (g groupDesc) bitmap() []byte {
	n := (int(g.bits()) + 7) / 8
	if max := len(g) - gdBitmap; n > max {
		n = max
	}
	return g[gdBitmap : gdBitmap+n]
}

// discontig is ocfs2_gd_is_discontig: a 256-byte bitmap followed by a
// non-empty extent list.
func (g groupDesc) discontig() bool {
	return int(g.size())+gdBitmap == gdListOff && len(g) > gdListOff+ondisk.ExtentListHeaderSize && g.list().nextFree() != 0
}

// chainList is the chain list in a chain allocator's id2.
type chainList []byte

func (c chainList) cpg() uint16          { return get16(c, 0) }
func (c chainList) setCpg(v uint16)      { put16(c, 0, v) }
func (c chainList) bpc() uint16          { return get16(c, 2) }
func (c chainList) count() uint16        { return get16(c, 4) }
func (c chainList) setCount(v uint16)    { put16(c, 4, v) }
func (c chainList) nextFree() uint16     { return get16(c, 6) }
func (c chainList) setNextFree(v uint16) { put16(c, 6, v) }
func (c chainList) room() int            { return (len(c) - 0x10) / ondisk.ChainRecSize }
func (c chainList) rec(i int) chainRec {
	o := 0x10 + i*ondisk.ChainRecSize
	return chainRec(c[o : o+ondisk.ChainRecSize])
}

type chainRec []byte

func (r chainRec) free() uint32      { return get32(r, 0) }
func (r chainRec) setFree(v uint32)  { put32(r, 0, v) }
func (r chainRec) total() uint32     { return get32(r, 4) }
func (r chainRec) setTotal(v uint32) { put32(r, 4, v) }
func (r chainRec) blkno() uint64     { return get64(r, 8) }
func (r chainRec) setBlkno(v uint64) { put64(r, 8, v) }
func (r chainRec) clear()            { clear(r) }

// extentBlock is a raw EXBLK01 block.
type extentBlock []byte

const (
	ebFSGen = 0x14
	ebBlkno = 0x18
)

func (e extentBlock) valid() bool       { return hasSig(e, ondisk.ExtentBlockSignature) }
func (e extentBlock) fsGen() uint32     { return get32(e, ebFSGen) }
func (e extentBlock) setFSGen(v uint32) { put32(e, ebFSGen, v) }
func (e extentBlock) blkno() uint64     { return get64(e, ebBlkno) }
func (e extentBlock) setBlkno(v uint64) { put64(e, ebBlkno, v) }
func (e extentBlock) list() extList     { return extList(e[ondisk.ExtentBlockListOffset:]) }

// dirent is a directory entry at the start of the slice.
type dirent []byte

const direntHeader = ondisk.DirEntryHeaderSize

func (e dirent) inode() uint64       { return get64(e, 0) }
func (e dirent) setInode(v uint64)   { put64(e, 0, v) }
func (e dirent) recLen() int         { return int(get16(e, 8)) }
func (e dirent) setRecLen(v int)     { put16(e, 8, uint16(v)) }
func (e dirent) nameLen() int        { return int(e[10]) }
func (e dirent) setNameLen(v int)    { e[10] = byte(v) }
func (e dirent) fileType() uint8     { return e[11] }
func (e dirent) setFileType(v uint8) { e[11] = v }

// name returns the entry's name bytes, cut at the end of the slice.
func (e dirent) name() []byte {
	end := direntHeader + e.nameLen()
	if end > len(e) {
		end = len(e)
	}
	return e[direntHeader:end]
}

// Directory trailer fields, relative to the trailer's start.
const (
	trInode   = 0x00
	trRecLen  = 0x08
	trNameLen = 0x0A
	trFreeRec = 0x0E
	trBlkno   = 0x28
	trParent  = 0x30
)

// Dx root and leaf fields.
const (
	dxrDirBlkno   = 0x30
	dxrNumEntries = 0x38
	dxrFlags      = 0x2C
	dxrUnion      = ondisk.DXRootUnionOffset
	dxlList       = ondisk.DXLeafListOffset
)

// capacities, as fsck.ocfs2 computes them from the block size alone.
func extentRecsPerInode(bs int) int { return (bs - diID2 - ondisk.ExtentListHeaderSize) / extRecSize }
func extentRecsPerEB(bs int) int {
	return (bs - ondisk.ExtentBlockListOffset - ondisk.ExtentListHeaderSize) / extRecSize
}
func extentRecsPerGD(bs int) int { return (bs - gdListOff - ondisk.ExtentListHeaderSize) / extRecSize }
func extentRecsPerDxRoot(bs int) int {
	return (bs - dxrUnion - ondisk.ExtentListHeaderSize) / extRecSize
}
func chainRecsPerInode(bs int) int { return (bs - diID2 - 0x10) / ondisk.ChainRecSize }
func localAllocSize(bs int) int    { return bs - diID2 - 0x10 }
func truncRecsPerInode(bs int) int { return (bs - diID2 - 8) / ondisk.TruncateRecSize }

// bitcount counts the set bits of b.
func bitcount(b []byte) int {
	n := 0
	for len(b) >= 8 {
		n += popcount64(le.Uint64(b))
		b = b[8:]
	}
	for _, c := range b {
		n += popcount64(uint64(c))
	}
	return n
}
