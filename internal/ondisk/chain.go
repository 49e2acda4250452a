package ondisk

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// ChainRecSize is the on-disk size of a ChainRec.
const ChainRecSize = 16

const chainListHeaderSize = 16

// ChainRec is struct ocfs2_chain_rec, one chain of block groups:
//
//	0x00 le32 c_free   free bits over the chain's groups
//	0x04 le32 c_total  total bits over the chain's groups
//	0x08 le64 c_blkno  first group descriptor of the chain
type ChainRec struct {
	Free  uint32
	Total uint32
	Blkno uint64
}

// ChainList is struct ocfs2_chain_list, the id2 of an allocator dinode
// (CHAIN_FL): global_bitmap, global_inode_alloc, inode_alloc:N, extent_alloc:N.
// Offsets are relative to id2 (0xC0 in the block):
//
//	0x00 le16 cl_cpg            clusters per group
//	0x02 le16 cl_bpc            bits per cluster (1 for the global bitmap,
//	                            blocks per cluster for suballocators)
//	0x04 le16 cl_count          capacity in chains ((B - 0xD0) / 16)
//	0x06 le16 cl_next_free_rec  chains in use
//	0x08 le64 cl_reserved1
//	0x10 ChainRec cl_recs[cl_count]
//
// The dinode's id1 (Bitmap) holds the totals over all chains.
type ChainList struct {
	CPG   uint16
	BPC   uint16
	Count uint16
	Recs  []ChainRec // len(Recs) == cl_next_free_rec
}

// BitsPerGroup is cl_cpg * cl_bpc, the bits a full group holds.
func (c *ChainList) BitsPerGroup() int { return int(c.CPG) * int(c.BPC) }

func decodeChainList(b []byte) (*ChainList, error) {
	if len(b) < chainListHeaderSize {
		return nil, corrupt(structDinode, "cl_count", "chain list area is %d bytes, need at least %d", len(b), chainListHeaderSize)
	}
	le := binary.LittleEndian
	c := &ChainList{CPG: le.Uint16(b), BPC: le.Uint16(b[2:]), Count: le.Uint16(b[4:])}
	next := le.Uint16(b[6:])
	if max := (len(b) - chainListHeaderSize) / ChainRecSize; int(c.Count) > max {
		return nil, corrupt(structDinode, "cl_count", "is %d, but only %d chain records fit", c.Count, max)
	}
	if next > c.Count {
		return nil, corrupt(structDinode, "cl_next_free_rec", "is %d, beyond cl_count %d", next, c.Count)
	}
	c.Recs = make([]ChainRec, next)
	for i := range c.Recs {
		r := b[chainListHeaderSize+i*ChainRecSize:]
		c.Recs[i] = ChainRec{Free: le.Uint32(r), Total: le.Uint32(r[4:]), Blkno: le.Uint64(r[8:])}
	}
	return c, nil
}

// encode writes the list and its Count record slots into b and returns the
// bytes written; the caller has checked that they fit.
func (c *ChainList) encode(b []byte) int {
	le := binary.LittleEndian
	le.PutUint16(b, c.CPG)
	le.PutUint16(b[2:], c.BPC)
	le.PutUint16(b[4:], c.Count)
	le.PutUint16(b[6:], uint16(len(c.Recs)))
	clear(b[8:chainListHeaderSize])
	for i, r := range c.Recs {
		p := b[chainListHeaderSize+i*ChainRecSize:]
		le.PutUint32(p, r.Free)
		le.PutUint32(p[4:], r.Total)
		le.PutUint64(p[8:], r.Blkno)
	}
	end := chainListHeaderSize + int(c.Count)*ChainRecSize
	clear(b[chainListHeaderSize+len(c.Recs)*ChainRecSize : end])
	return end
}

// GroupDescSignature identifies a block group descriptor.
const GroupDescSignature = "GROUP01\x00"

// Offsets in a group descriptor block.
const (
	GroupDescCheckOffset  = 0x30
	GroupDescBitmapOffset = 0x40
	// GroupDescListOffset is where a discontiguous group's extent list sits,
	// right after a MaxSuballocBitmapBytes bitmap.
	GroupDescListOffset = 0x140
)

// MaxSuballocBitmapBytes is the bg_size of suballocator groups when
// DISCONTIG_BG is on (OCFS2_MAX_BG_BITMAP_SIZE); without it, and for the
// global bitmap, a group's bitmap runs to the end of the block.
const MaxSuballocBitmapBytes = 256

const structGroupDesc = "group descriptor"

// GroupDesc is struct ocfs2_group_desc ("GROUP01"), the first block of a
// block group of a chain allocator, holding the group's bitmap (one bit per
// cluster in the global bitmap, per block in suballocators; 1 = used, bit
// i = byte i/8, bit i%8):
//
//	0x00 u8[8] bg_signature        "GROUP01\0"
//	0x08 le16  bg_size             bitmap bytes
//	0x0A le16  bg_bits             bits in the group (<= 8*bg_size)
//	0x0C le16  bg_free_bits_count
//	0x0E le16  bg_chain            chain index in the parent's ChainList
//	0x10 le32  bg_generation       the volume's generation
//	0x14 le32  bg_reserved1
//	0x18 le64  bg_next_group       next group of the chain (0 = last)
//	0x20 le64  bg_parent_dinode    the allocator dinode
//	0x28 le64  bg_blkno            this block
//	0x30 BlockCheck bg_check
//	0x38 le64  bg_reserved2
//	0x40 u8    bg_bitmap[bg_size]
//	0x140 ExtentList bg_list       discontiguous groups only (bg_size == 256)
//
// Bit 0 is the descriptor block itself. A suballocator group is
// discontiguous when bg_size is 256 and bg_list.l_next_free_rec is non-zero:
// its bits then map, in order, onto the clusters of bg_list's flat (depth 0)
// extent list. List is nil when the 16-byte list header is all zero.
type GroupDesc struct {
	Bits          uint16
	FreeBitsCount uint16
	Chain         uint16
	Generation    uint32
	NextGroup     uint64
	ParentDinode  uint64
	Blkno         uint64
	Bitmap        []byte // len(Bitmap) == bg_size
	List          *ExtentList
}

// DecodeGroupDesc decodes a group descriptor block. It checks the
// signature, that the bitmap fits the block, bg_bits <= 8*bg_size,
// bg_free_bits_count <= bg_bits and the discontiguous extent list's counts.
func DecodeGroupDesc(b []byte) (*GroupDesc, error) {
	if err := checkBlockSize(b, structGroupDesc); err != nil {
		return nil, err
	}
	if string(b[:8]) != GroupDescSignature {
		return nil, corrupt(structGroupDesc, "bg_signature", "is %q, want %q", cstring(b[:8]), "GROUP01")
	}
	le := binary.LittleEndian
	size := int(le.Uint16(b[0x08:]))
	g := &GroupDesc{
		Bits:          le.Uint16(b[0x0A:]),
		FreeBitsCount: le.Uint16(b[0x0C:]),
		Chain:         le.Uint16(b[0x0E:]),
		Generation:    le.Uint32(b[0x10:]),
		NextGroup:     le.Uint64(b[0x18:]),
		ParentDinode:  le.Uint64(b[0x20:]),
		Blkno:         le.Uint64(b[0x28:]),
	}
	if GroupDescBitmapOffset+size > len(b) {
		return nil, corrupt(structGroupDesc, "bg_size", "is %d, but only %d bitmap bytes fit the block", size, len(b)-GroupDescBitmapOffset)
	}
	if int(g.Bits) > 8*size {
		return nil, corrupt(structGroupDesc, "bg_bits", "is %d, more than the %d bits of a %d-byte bitmap", g.Bits, 8*size, size)
	}
	if g.FreeBitsCount > g.Bits {
		return nil, corrupt(structGroupDesc, "bg_free_bits_count", "is %d, more than bg_bits %d", g.FreeBitsCount, g.Bits)
	}
	g.Bitmap = cloneBytes(b[GroupDescBitmapOffset : GroupDescBitmapOffset+size])
	if GroupDescBitmapOffset+size == GroupDescListOffset && !allZero(b[GroupDescListOffset:GroupDescListOffset+ExtentListHeaderSize]) {
		l, err := DecodeExtentList(b[GroupDescListOffset:], structGroupDesc)
		if err != nil {
			return nil, err
		}
		if l.TreeDepth != 0 {
			return nil, corrupt(structGroupDesc, "bg_list.l_tree_depth", "is %d, a group's extent list is flat (0)", l.TreeDepth)
		}
		g.List = l
	}
	return g, nil
}

// Encode writes the descriptor into b (one whole block), leaving bg_check
// zero: with META_ECC, call SetBlockCheck(b, GroupDescCheckOffset) after.
// Bytes after the bitmap (or after the extent list's capacity) are zeroed.
// It fails, writing nothing, when the bitmap or list does not fit b or
// bg_bits exceeds the bitmap.
func (g *GroupDesc) Encode(b []byte) error {
	if !isBlockSize(len(b)) {
		return fmt.Errorf("group descriptor encode: buffer is %d bytes, not a block", len(b))
	}
	size := len(g.Bitmap)
	if GroupDescBitmapOffset+size > len(b) {
		return fmt.Errorf("group descriptor encode: bitmap of %d bytes does not fit a %d-byte block", size, len(b))
	}
	if int(g.Bits) > 8*size {
		return fmt.Errorf("group descriptor encode: bg_bits %d exceeds the %d-byte bitmap", g.Bits, size)
	}
	end := GroupDescBitmapOffset + size
	if g.List != nil {
		if end != GroupDescListOffset {
			return fmt.Errorf("group descriptor encode: an extent list needs bg_size %d, have %d", MaxSuballocBitmapBytes, size)
		}
		if g.List.TreeDepth != 0 || len(g.List.Recs) > int(g.List.Count) ||
			GroupDescListOffset+ExtentListSize(int(g.List.Count)) > len(b) {
			return fmt.Errorf("group descriptor encode: extent list (depth %d, %d of %d records) does not fit", g.List.TreeDepth, len(g.List.Recs), g.List.Count)
		}
	}
	le := binary.LittleEndian
	copy(b, GroupDescSignature)
	le.PutUint16(b[0x08:], uint16(size))
	le.PutUint16(b[0x0A:], g.Bits)
	le.PutUint16(b[0x0C:], g.FreeBitsCount)
	le.PutUint16(b[0x0E:], g.Chain)
	le.PutUint32(b[0x10:], g.Generation)
	le.PutUint32(b[0x14:], 0)
	le.PutUint64(b[0x18:], g.NextGroup)
	le.PutUint64(b[0x20:], g.ParentDinode)
	le.PutUint64(b[0x28:], g.Blkno)
	clear(b[GroupDescCheckOffset:GroupDescBitmapOffset])
	copy(b[GroupDescBitmapOffset:], g.Bitmap)
	if g.List != nil {
		g.List.Encode(b[GroupDescListOffset:])
		end = GroupDescListOffset + ExtentListSize(int(g.List.Count))
	}
	clear(b[end:])
	return nil
}

// SelfCheck verifies the descriptor belongs where it was read from on this
// volume: bg_blkno and bg_generation.
func (g *GroupDesc) SelfCheck(blkno uint64, fsGeneration uint32) error {
	if g.Blkno != blkno {
		return corrupt(structGroupDesc, "bg_blkno", "is %d, want %d", g.Blkno, blkno)
	}
	if g.Generation != fsGeneration {
		return corrupt(structGroupDesc, "bg_generation", "is 0x%x, want the volume's 0x%x", g.Generation, fsGeneration)
	}
	return nil
}

// CheckParent verifies the descriptor against the allocator dinode that
// reached it: bg_parent_dinode, bg_bits within cl_cpg*cl_bpc, and bg_chain
// below cl_next_free_rec (the kernel's parent checks).
func (g *GroupDesc) CheckParent(parentBlkno uint64, cl *ChainList) error {
	if g.ParentDinode != parentBlkno {
		return corrupt(structGroupDesc, "bg_parent_dinode", "is %d, want the allocator %d", g.ParentDinode, parentBlkno)
	}
	if max := cl.BitsPerGroup(); int(g.Bits) > max {
		return corrupt(structGroupDesc, "bg_bits", "is %d, more than the allocator's %d bits per group", g.Bits, max)
	}
	if int(g.Chain) >= len(cl.Recs) {
		return corrupt(structGroupDesc, "bg_chain", "is %d, but the allocator uses %d chains", g.Chain, len(cl.Recs))
	}
	return nil
}

// Discontig reports whether the group is a discontiguous block group.
func (g *GroupDesc) Discontig() bool { return g.List != nil && len(g.List.Recs) > 0 }

// Test reports whether bit is set; bits outside [0, bg_bits) read as clear.
func (g *GroupDesc) Test(bit int) bool {
	if bit < 0 || bit >= int(g.Bits) {
		return false
	}
	return g.Bitmap[bit>>3]&(1<<(bit&7)) != 0
}

// Set marks bit used. It does not touch bg_free_bits_count.
func (g *GroupDesc) Set(bit int) error {
	if err := g.checkBit(bit); err != nil {
		return err
	}
	g.Bitmap[bit>>3] |= 1 << (bit & 7)
	return nil
}

// Clear marks bit free. It does not touch bg_free_bits_count.
func (g *GroupDesc) Clear(bit int) error {
	if err := g.checkBit(bit); err != nil {
		return err
	}
	g.Bitmap[bit>>3] &^= 1 << (bit & 7)
	return nil
}

func (g *GroupDesc) checkBit(bit int) error {
	if bit < 0 || bit >= int(g.Bits) || bit>>3 >= len(g.Bitmap) {
		return fmt.Errorf("group %d: bit %d outside the group's %d bits", g.Blkno, bit, g.Bits)
	}
	return nil
}

// FindClear returns the first clear bit at or after from, below bg_bits.
func (g *GroupDesc) FindClear(from int) (int, bool) {
	return g.FindClearRun(from, 1)
}

// FindClearRun returns the start of the first run of n clear bits at or
// after from that ends within bg_bits.
func (g *GroupDesc) FindClearRun(from, n int) (int, bool) {
	if from < 0 {
		from = 0
	}
	if n <= 0 {
		return 0, false
	}
	limit := min(int(g.Bits), 8*len(g.Bitmap))
	run := 0
	for i := from; i < limit; i++ {
		if i&7 == 0 && i+8 <= limit && g.Bitmap[i>>3] == 0xFF {
			run = 0
			i += 7 // the whole byte is used
			continue
		}
		if g.Bitmap[i>>3]&(1<<(i&7)) != 0 {
			run = 0
			continue
		}
		run++
		if run == n {
			return i - n + 1, true
		}
	}
	return 0, false
}

// CountSet is the number of used bits in [0, bg_bits): bg_bits minus it
// should equal bg_free_bits_count.
func (g *GroupDesc) CountSet() int {
	limit := min(int(g.Bits), 8*len(g.Bitmap))
	n := 0
	for i := 0; i < limit>>3; i++ {
		n += bits.OnesCount8(g.Bitmap[i])
	}
	for i := limit &^ 7; i < limit; i++ {
		if g.Bitmap[i>>3]&(1<<(i&7)) != 0 {
			n++
		}
	}
	return n
}

// BitBlock maps bit of a suballocator group (bits are blocks) to its fs
// block. A contiguous group's bit b is block bg_blkno+b; a discontiguous
// group's bits run over its extents in order, bitsPerCluster (cl_bpc) bits
// per cluster.
func (g *GroupDesc) BitBlock(bit, bitsPerCluster int) (uint64, error) {
	if bit < 0 || bit >= int(g.Bits) {
		return 0, fmt.Errorf("group %d: bit %d outside the group's %d bits", g.Blkno, bit, g.Bits)
	}
	if !g.Discontig() {
		return g.Blkno + uint64(bit), nil
	}
	if bitsPerCluster <= 0 {
		return 0, fmt.Errorf("group %d: bits per cluster %d", g.Blkno, bitsPerCluster)
	}
	base := 0
	for _, r := range g.List.Recs {
		n := int(r.Clusters) * bitsPerCluster
		if bit < base+n {
			return r.Blkno + uint64(bit-base), nil
		}
		base += n
	}
	return 0, corrupt(structGroupDesc, "bg_list", "extents cover %d bits, bit %d of bg_bits %d is beyond them", base, bit, g.Bits)
}

// BlockBit is the inverse of BitBlock: the bit of the group covering blkno.
func (g *GroupDesc) BlockBit(blkno uint64, bitsPerCluster int) (int, bool) {
	if !g.Discontig() {
		if blkno < g.Blkno || blkno-g.Blkno >= uint64(g.Bits) {
			return 0, false
		}
		return int(blkno - g.Blkno), true
	}
	base := 0
	for _, r := range g.List.Recs {
		n := int(r.Clusters) * bitsPerCluster
		if blkno >= r.Blkno && blkno-r.Blkno < uint64(n) {
			if bit := base + int(blkno-r.Blkno); bit < int(g.Bits) {
				return bit, true
			}
			return 0, false
		}
		base += n
	}
	return 0, false
}

// GroupBitmapBytes is the bg_size a new group gets (ocfs2_group_bitmap_size):
// the rest of the block after 0x40, except suballocator groups on volumes
// with DISCONTIG_BG, which get MaxSuballocBitmapBytes.
func GroupBitmapBytes(blockSize int, suballocator bool, incompat uint32) int {
	if suballocator && incompat&IncompatDiscontigBG != 0 {
		return MaxSuballocBitmapBytes
	}
	return blockSize - GroupDescBitmapOffset
}

// ExtentRecsPerGroupDesc is the l_count of a discontiguous group's list:
// (B - 0x150) / 16, e.g. 235 at 4 KiB.
func ExtentRecsPerGroupDesc(blockSize int) int {
	return ExtentListCapacity(blockSize - GroupDescListOffset)
}

// GlobalBitmapClustersPerGroup is the global bitmap's cl_cpg for a block
// size: every bit of a block-sized bitmap, 8*(B-0x40) (32256 at 4 KiB).
func GlobalBitmapClustersPerGroup(blockSize int) int {
	return 8 * (blockSize - GroupDescBitmapOffset)
}

// GlobalBitmapGroups is how many groups cover totalClusters clusters.
func GlobalBitmapGroups(totalClusters uint32, clustersPerGroup int) int {
	if clustersPerGroup <= 0 {
		return 0
	}
	return int((uint64(totalClusters) + uint64(clustersPerGroup) - 1) / uint64(clustersPerGroup))
}

// GlobalBitmapGroupBits is bg_bits of global bitmap group g: cpg for every
// group but the last, which gets the remaining clusters.
func GlobalBitmapGroupBits(group int, totalClusters uint32, clustersPerGroup int) int {
	first := uint64(group) * uint64(clustersPerGroup)
	if first >= uint64(totalClusters) {
		return 0
	}
	return int(min(uint64(clustersPerGroup), uint64(totalClusters)-first))
}

// GlobalBitmapGroupBlkno is the descriptor block of global bitmap group g:
// the first block of cluster g*cpg, except group 0, whose descriptor is at
// s_first_cluster_group (the first cluster after the superblock).
func GlobalBitmapGroupBlkno(group, clustersPerGroup, blocksPerCluster int, firstClusterGroup uint64) uint64 {
	if group == 0 {
		return firstClusterGroup
	}
	return uint64(group) * uint64(clustersPerGroup) * uint64(blocksPerCluster)
}
