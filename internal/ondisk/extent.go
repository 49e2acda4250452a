package ondisk

import (
	"encoding/binary"
	"fmt"
)

// ExtentRecSize is the on-disk size of an ExtentRec.
const ExtentRecSize = 16

// ExtentListHeaderSize is the size of an ExtentList header before its records.
const ExtentListHeaderSize = 16

// Extent record flags (e_flags).
const (
	ExtentUnwritten  uint8 = 0x01 // allocated but never written: reads as zeros
	ExtentRefcounted uint8 = 0x02 // shared through a refcount tree: copy on write
)

// ExtentRec is struct ocfs2_extent_rec, one mapping of logical clusters to
// physical blocks (16 bytes, little-endian):
//
//	0x00 le32 e_cpos          first logical cluster covered
//	0x04 le16 e_leaf_clusters clusters covered (leaf records, depth 0)
//	0x06 u8   e_reserved1
//	0x07 u8   e_flags         ExtentUnwritten | ExtentRefcounted (leaves)
//	     le32 e_int_clusters  0x04..0x07 as one le32 in interior records
//	0x08 le64 e_blkno         first physical block (leaf: data; interior: child EXBLK01)
//
// Which of e_leaf_clusters/e_int_clusters applies depends on the depth of the
// list holding the record; Clusters holds whichever it is, Flags is zero in
// interior records. A leaf record with Clusters == 0 is an "empty extent"
// the kernel can leave at index 0; readers skip it.
type ExtentRec struct {
	Cpos     uint32
	Clusters uint32
	Flags    uint8
	Blkno    uint64
}

// End is the first logical cluster after the record.
func (r ExtentRec) End() uint64 { return uint64(r.Cpos) + uint64(r.Clusters) }

// Contains reports whether logical cluster cpos lies in the record.
func (r ExtentRec) Contains(cpos uint32) bool {
	return cpos >= r.Cpos && uint64(cpos) < r.End()
}

func decodeExtentRec(b []byte, leaf bool) ExtentRec {
	r := ExtentRec{Cpos: binary.LittleEndian.Uint32(b), Blkno: binary.LittleEndian.Uint64(b[8:])}
	if leaf {
		r.Clusters = uint32(binary.LittleEndian.Uint16(b[4:]))
		r.Flags = b[7]
	} else {
		r.Clusters = binary.LittleEndian.Uint32(b[4:])
	}
	return r
}

func (r ExtentRec) encode(b []byte, leaf bool) {
	binary.LittleEndian.PutUint32(b, r.Cpos)
	if leaf {
		binary.LittleEndian.PutUint16(b[4:], uint16(r.Clusters))
		b[6] = 0
		b[7] = r.Flags
	} else {
		binary.LittleEndian.PutUint32(b[4:], r.Clusters)
	}
	binary.LittleEndian.PutUint64(b[8:], r.Blkno)
}

// MaxLeafClusters is the most clusters one leaf record can cover (u16).
const MaxLeafClusters = 0xFFFF

// ExtentList is struct ocfs2_extent_list, the root or a node of an extent
// tree. It lives in a dinode's id2, an extent block, a dx root, an xattr
// value/tree root or a refcount tree root:
//
//	0x00 le16 l_tree_depth    0: records map data; n>0: records point at EXBLK01 of depth n-1
//	0x02 le16 l_count         capacity in records (trust the on-disk value)
//	0x04 le16 l_next_free_rec records in use
//	0x06 le16 l_reserved1
//	0x08 le64 l_reserved2
//	0x10 ExtentRec l_recs[l_count]
//
// Records are sorted by e_cpos and do not overlap.
type ExtentList struct {
	TreeDepth uint16
	Count     uint16
	Recs      []ExtentRec // len(Recs) == l_next_free_rec
}

// Leaf reports whether the list's records map data (depth 0).
func (l *ExtentList) Leaf() bool { return l.TreeDepth == 0 }

// ExtentListSize is the byte size of a list with capacity count.
func ExtentListSize(count int) int { return ExtentListHeaderSize + count*ExtentRecSize }

// ExtentListCapacity is how many records fit in n bytes of list.
func ExtentListCapacity(n int) int { return (n - ExtentListHeaderSize) / ExtentRecSize }

// DecodeExtentList decodes the list at the start of b, where b spans the
// whole area the list may occupy. It checks that l_count fits in b and
// l_next_free_rec <= l_count; structName names the holder in errors.
func DecodeExtentList(b []byte, structName string) (*ExtentList, error) {
	if len(b) < ExtentListHeaderSize {
		return nil, corrupt(structName, "l_count", "extent list area is %d bytes, need at least %d", len(b), ExtentListHeaderSize)
	}
	l := &ExtentList{
		TreeDepth: binary.LittleEndian.Uint16(b),
		Count:     binary.LittleEndian.Uint16(b[2:]),
	}
	next := binary.LittleEndian.Uint16(b[4:])
	if max := ExtentListCapacity(len(b)); int(l.Count) > max {
		return nil, corrupt(structName, "l_count", "is %d, but only %d records fit", l.Count, max)
	}
	if next > l.Count {
		return nil, corrupt(structName, "l_next_free_rec", "is %d, beyond l_count %d", next, l.Count)
	}
	if l.TreeDepth > MaxExtentTreeDepth {
		return nil, corrupt(structName, "l_tree_depth", "is %d, more than the possible %d", l.TreeDepth, MaxExtentTreeDepth)
	}
	l.Recs = make([]ExtentRec, next)
	leaf := l.TreeDepth == 0
	for i := range l.Recs {
		l.Recs[i] = decodeExtentRec(b[ExtentListHeaderSize+i*ExtentRecSize:], leaf)
	}
	return l, nil
}

// MaxExtentTreeDepth bounds l_tree_depth: with at least 19 records per block
// and 2^32 clusters, no valid tree is deeper than this.
const MaxExtentTreeDepth = 8

// Encode writes the list into b (which must hold Count records), zeroing the
// reserved fields and the unused record slots.
func (l *ExtentList) Encode(b []byte) {
	binary.LittleEndian.PutUint16(b, l.TreeDepth)
	binary.LittleEndian.PutUint16(b[2:], l.Count)
	binary.LittleEndian.PutUint16(b[4:], uint16(len(l.Recs)))
	clear(b[6:ExtentListHeaderSize])
	leaf := l.TreeDepth == 0
	for i, r := range l.Recs {
		r.encode(b[ExtentListHeaderSize+i*ExtentRecSize:], leaf)
	}
	clear(b[ExtentListHeaderSize+len(l.Recs)*ExtentRecSize : ExtentListSize(int(l.Count))])
}

// CheckOrder verifies that the records are sorted and do not overlap, and
// that no non-empty leaf record exceeds MaxLeafClusters. It is the check a
// reader applies before trusting a lookup.
func (l *ExtentList) CheckOrder(structName string) error {
	var end uint64
	for i, r := range l.Recs {
		if l.Leaf() && r.Clusters == 0 {
			if i != 0 {
				return corrupt(structName, fmt.Sprintf("l_recs[%d]", i), "empty extent record not at index 0")
			}
			continue
		}
		if uint64(r.Cpos) < end {
			return corrupt(structName, fmt.Sprintf("l_recs[%d].e_cpos", i), "is %d, overlapping the previous record ending at %d", r.Cpos, end)
		}
		end = r.End()
	}
	return nil
}

// Find returns the index of the record covering logical cluster cpos. For
// an interior list it is the last record whose e_cpos <= cpos (the child
// subtree that would hold cpos); for a leaf it must contain cpos. ok is false
// when no record covers cpos (a hole, or before the first record).
func (l *ExtentList) Find(cpos uint32) (idx int, ok bool) {
	lo, hi := 0, len(l.Recs)
	for lo < hi { // first record with Cpos > cpos
		mid := (lo + hi) / 2
		if l.Recs[mid].Cpos <= cpos {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	idx = lo - 1
	if idx < 0 {
		return 0, false
	}
	if l.Leaf() {
		return idx, l.Recs[idx].Contains(cpos)
	}
	return idx, true
}

// ExtentBlockSignature identifies an extent block.
const ExtentBlockSignature = "EXBLK01\x00"

// Offsets in an extent block.
const (
	ExtentBlockCheckOffset = 0x08
	ExtentBlockListOffset  = 0x30
)

// ExtentBlockListCapacity is the record capacity of an extent block's list
// for a block size: (blocksize - 0x40) / 16, e.g. 252 at 4 KiB.
func ExtentBlockListCapacity(blockSize int) int {
	return ExtentListCapacity(blockSize - ExtentBlockListOffset)
}

// ExtentBlock is struct ocfs2_extent_block ("EXBLK01"), an interior or leaf
// node of an extent tree, allocated from an extent_alloc suballocator:
//
//	0x00 u8[8] h_signature      "EXBLK01\0"
//	0x08 BlockCheck h_check
//	0x10 le16 h_suballoc_slot   slot of the extent_alloc that owns it
//	0x12 le16 h_suballoc_bit    bit in the owning group
//	0x14 le32 h_fs_generation   volume generation
//	0x18 le64 h_blkno           this block
//	0x20 le64 h_suballoc_loc    owning group descriptor (0: h_blkno - bit)
//	0x28 le64 h_next_leaf_blk   next leaf to the right (leaves; 0 at the end)
//	0x30 ExtentList h_list      (records at 0x40)
type ExtentBlock struct {
	SuballocSlot uint16
	SuballocBit  uint16
	FSGeneration uint32
	Blkno        uint64
	SuballocLoc  uint64
	NextLeafBlk  uint64
	List         ExtentList
}

const structExtentBlock = "extent block"

// DecodeExtentBlock decodes a whole extent block. It checks the signature
// and the list's counts; SelfCheck checks identity against the volume.
func DecodeExtentBlock(b []byte) (*ExtentBlock, error) {
	if len(b) < 512 {
		return nil, corrupt(structExtentBlock, "", "block is %d bytes, want at least 512", len(b))
	}
	if string(b[:8]) != ExtentBlockSignature {
		return nil, corrupt(structExtentBlock, "h_signature", "is %q, want %q", cstring(b[:8]), "EXBLK01")
	}
	l, err := DecodeExtentList(b[ExtentBlockListOffset:], structExtentBlock)
	if err != nil {
		return nil, err
	}
	return &ExtentBlock{
		SuballocSlot: binary.LittleEndian.Uint16(b[0x10:]),
		SuballocBit:  binary.LittleEndian.Uint16(b[0x12:]),
		FSGeneration: binary.LittleEndian.Uint32(b[0x14:]),
		Blkno:        binary.LittleEndian.Uint64(b[0x18:]),
		SuballocLoc:  binary.LittleEndian.Uint64(b[0x20:]),
		NextLeafBlk:  binary.LittleEndian.Uint64(b[0x28:]),
		List:         *l,
	}, nil
}

// Encode writes the extent block into b (one whole block), leaving the check
// zero: with META_ECC, call SetBlockCheck(b, ExtentBlockCheckOffset) after.
func (e *ExtentBlock) Encode(b []byte) {
	copy(b, ExtentBlockSignature)
	clear(b[0x08:0x10])
	binary.LittleEndian.PutUint16(b[0x10:], e.SuballocSlot)
	binary.LittleEndian.PutUint16(b[0x12:], e.SuballocBit)
	binary.LittleEndian.PutUint32(b[0x14:], e.FSGeneration)
	binary.LittleEndian.PutUint64(b[0x18:], e.Blkno)
	binary.LittleEndian.PutUint64(b[0x20:], e.SuballocLoc)
	binary.LittleEndian.PutUint64(b[0x28:], e.NextLeafBlk)
	e.List.Encode(b[ExtentBlockListOffset:])
	clear(b[ExtentBlockListOffset+ExtentListSize(int(e.List.Count)):])
}

// SelfCheck verifies the block belongs where it was read from on this volume.
func (e *ExtentBlock) SelfCheck(blkno uint64, fsGeneration uint32) error {
	if e.Blkno != blkno {
		return corrupt(structExtentBlock, "h_blkno", "is %d, want %d", e.Blkno, blkno)
	}
	if e.FSGeneration != fsGeneration {
		return corrupt(structExtentBlock, "h_fs_generation", "is 0x%x, want the volume's 0x%x", e.FSGeneration, fsGeneration)
	}
	return nil
}

// cstring returns b up to its first NUL, for messages and names.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
