package ondisk

import (
	"encoding/binary"
	"fmt"
)

// RefcountBlockSignature identifies a refcount block.
const RefcountBlockSignature = "REFCNT1\x00"

// Offsets and sizes in a refcount block.
const (
	RefcountBlockCheckOffset = 0x20
	RefcountBlockUnionOffset = 0x80 // rf_records or rf_list
	RefcountRecSize          = 16
	RefcountListHeaderSize   = 16
	structRefcountBlock      = "refcount block"
)

// rf_flags bits.
const (
	RefcountLeafFlag uint32 = 0x1 // a leaf below a tree root (rf_parent valid)
	RefcountTreeFlag uint32 = 0x2 // a root whose body is an extent list of leaves
)

// RefcountRecCapacity is the record capacity of a refcount block:
// (blocksize - 0x90) / 16, 247 at 4 KiB.
func RefcountRecCapacity(blockSize int) int {
	return (blockSize - RefcountBlockUnionOffset - RefcountListHeaderSize) / RefcountRecSize
}

// RefcountTreeCapacity is the extent record capacity of a tree root:
// (blocksize - 0x90) / 16.
func RefcountTreeCapacity(blockSize int) int {
	return ExtentListCapacity(blockSize - RefcountBlockUnionOffset)
}

// RefcountRec is struct ocfs2_refcount_rec (16 bytes): how many extent
// records (across the inodes sharing the tree) point at a run of physical
// clusters.
//
//	0x00 le64 r_cpos      first physical cluster of the run
//	0x08 le32 r_clusters  clusters in the run
//	0x0C le32 r_refcount  references to each of them
type RefcountRec struct {
	Cpos     uint64
	Clusters uint32
	Refcount uint32
}

// End is the first physical cluster after the run.
func (r RefcountRec) End() uint64 { return r.Cpos + uint64(r.Clusters) }

// RefcountList is struct ocfs2_refcount_list, the records of a leaf (or of a
// root that has not grown into a tree):
//
//	0x00 le16 rl_count     capacity (trust the on-disk value)
//	0x02 le16 rl_used      records in use
//	0x04 le32 rl_reserved2
//	0x08 le64 rl_reserved1
//	0x10 RefcountRec rl_recs[rl_count]
//
// Records are sorted by r_cpos and do not overlap.
type RefcountList struct {
	Count uint16
	Recs  []RefcountRec // len == rl_used
}

// RefcountListSize is the byte size of a list with capacity count.
func RefcountListSize(count int) int { return RefcountListHeaderSize + count*RefcountRecSize }

func decodeRefcountList(b []byte) (RefcountList, error) {
	l := RefcountList{Count: binary.LittleEndian.Uint16(b)}
	used := binary.LittleEndian.Uint16(b[2:])
	if max := (len(b) - RefcountListHeaderSize) / RefcountRecSize; int(l.Count) > max {
		return RefcountList{}, corrupt(structRefcountBlock, "rl_count", "is %d, but only %d records fit", l.Count, max)
	}
	if used > l.Count {
		return RefcountList{}, corrupt(structRefcountBlock, "rl_used", "is %d, beyond rl_count %d", used, l.Count)
	}
	l.Recs = make([]RefcountRec, used)
	for i := range l.Recs {
		p := b[RefcountListHeaderSize+i*RefcountRecSize:]
		l.Recs[i] = RefcountRec{
			Cpos:     binary.LittleEndian.Uint64(p),
			Clusters: binary.LittleEndian.Uint32(p[8:]),
			Refcount: binary.LittleEndian.Uint32(p[12:]),
		}
	}
	return l, nil
}

// Encode writes the list into b (which must hold Count records), zeroing
// reserved fields and unused slots.
func (l *RefcountList) Encode(b []byte) {
	binary.LittleEndian.PutUint16(b, l.Count)
	binary.LittleEndian.PutUint16(b[2:], uint16(len(l.Recs)))
	clear(b[4:RefcountListHeaderSize])
	for i, r := range l.Recs {
		p := b[RefcountListHeaderSize+i*RefcountRecSize:]
		binary.LittleEndian.PutUint64(p, r.Cpos)
		binary.LittleEndian.PutUint32(p[8:], r.Clusters)
		binary.LittleEndian.PutUint32(p[12:], r.Refcount)
	}
	clear(b[RefcountListSize(len(l.Recs)):RefcountListSize(int(l.Count))])
}

// CheckOrder verifies the records are sorted, non-overlapping, non-empty
// and counted (a record with refcount 0 should have been removed).
func (l *RefcountList) CheckOrder() error {
	var end uint64
	for i, r := range l.Recs {
		f := fmt.Sprintf("rl_recs[%d]", i)
		if r.Clusters == 0 {
			return corrupt(structRefcountBlock, f+".r_clusters", "is 0")
		}
		if r.Refcount == 0 {
			return corrupt(structRefcountBlock, f+".r_refcount", "is 0")
		}
		if i > 0 && r.Cpos < end {
			return corrupt(structRefcountBlock, f+".r_cpos", "is %d, overlapping the previous record ending at %d", r.Cpos, end)
		}
		end = r.End()
	}
	return nil
}

// Find returns the index of the record covering physical cluster cpos.
func (l *RefcountList) Find(cpos uint64) (int, bool) {
	lo, hi := 0, len(l.Recs)
	for lo < hi {
		mid := (lo + hi) / 2
		if l.Recs[mid].Cpos <= cpos {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 || cpos >= l.Recs[lo-1].End() {
		return 0, false
	}
	return lo - 1, true
}

// RefcountBlock is struct ocfs2_refcount_block ("REFCNT1"), the root of an
// inode's refcount tree (at i_refcount_loc) or a leaf of it, one block from
// an extent_alloc suballocator:
//
//	0x00 u8[8] rf_signature     "REFCNT1\0"
//	0x08 le16 rf_suballoc_slot
//	0x0A le16 rf_suballoc_bit
//	0x0C le32 rf_fs_generation  volume generation
//	0x10 le64 rf_blkno          this block
//	0x18 le64 rf_parent         the tree's root (leaves, RefcountLeafFlag)
//	0x20 BlockCheck rf_check
//	0x28 le64 rf_last_eb_blk    rightmost leaf extent block (tree roots)
//	0x30 le32 rf_count          inodes sharing the tree (root)
//	0x34 le32 rf_flags          RefcountLeafFlag | RefcountTreeFlag
//	0x38 le32 rf_clusters       clusters of the tree's extent list (tree roots)
//	0x3C le32 rf_cpos           first physical cluster (low 32 bits) a leaf covers
//	0x40 le32 rf_generation     the tree's generation, the same in every block (lock name)
//	0x44 le32 rf_reserved0
//	0x48 le64 rf_suballoc_loc   owning group descriptor
//	0x50 le64 rf_reserved1[6]
//	0x80 union: RefcountList rf_records (no RefcountTreeFlag; records at 0x90)
//	            ExtentList rf_list (RefcountTreeFlag): e_cpos = low 32 bits
//	              of the physical clusters, e_blkno = leaf refcount block
//
// A new tree is one root holding records; when it fills, the records move
// into leaves and the root becomes an extent list over them.
type RefcountBlock struct {
	SuballocSlot uint16
	SuballocBit  uint16
	FSGeneration uint32
	Blkno        uint64
	Parent       uint64
	LastEBBlk    uint64
	Count        uint32
	Flags        uint32
	Clusters     uint32
	Cpos         uint32
	Generation   uint32
	SuballocLoc  uint64
	Records      RefcountList // when !Tree()
	List         ExtentList   // when Tree()
}

// Tree reports whether the block's body is an extent list of leaves.
func (r *RefcountBlock) Tree() bool { return r.Flags&RefcountTreeFlag != 0 }

// Leaf reports whether the block is a leaf below a tree root.
func (r *RefcountBlock) Leaf() bool { return r.Flags&RefcountLeafFlag != 0 }

// DecodeRefcountBlock decodes a whole refcount block.
func DecodeRefcountBlock(b []byte) (*RefcountBlock, error) {
	if len(b) < 512 {
		return nil, corrupt(structRefcountBlock, "", "block is %d bytes, want at least 512", len(b))
	}
	if string(b[:8]) != RefcountBlockSignature {
		return nil, corrupt(structRefcountBlock, "rf_signature", "is %q, want %q", cstring(b[:8]), "REFCNT1")
	}
	r := &RefcountBlock{
		SuballocSlot: binary.LittleEndian.Uint16(b[0x08:]),
		SuballocBit:  binary.LittleEndian.Uint16(b[0x0A:]),
		FSGeneration: binary.LittleEndian.Uint32(b[0x0C:]),
		Blkno:        binary.LittleEndian.Uint64(b[0x10:]),
		Parent:       binary.LittleEndian.Uint64(b[0x18:]),
		LastEBBlk:    binary.LittleEndian.Uint64(b[0x28:]),
		Count:        binary.LittleEndian.Uint32(b[0x30:]),
		Flags:        binary.LittleEndian.Uint32(b[0x34:]),
		Clusters:     binary.LittleEndian.Uint32(b[0x38:]),
		Cpos:         binary.LittleEndian.Uint32(b[0x3C:]),
		Generation:   binary.LittleEndian.Uint32(b[0x40:]),
		SuballocLoc:  binary.LittleEndian.Uint64(b[0x48:]),
	}
	if r.Tree() && r.Leaf() {
		return nil, corrupt(structRefcountBlock, "rf_flags", "is 0x%x: a block cannot be both a leaf and a tree root", r.Flags)
	}
	body := b[RefcountBlockUnionOffset:]
	if r.Tree() {
		l, err := DecodeExtentList(body, structRefcountBlock)
		if err != nil {
			return nil, err
		}
		r.List = *l
		return r, nil
	}
	l, err := decodeRefcountList(body)
	if err != nil {
		return nil, err
	}
	r.Records = l
	return r, nil
}

// Encode writes the block into b (one whole block), with a zero check: with
// META_ECC, call SetBlockCheck(b, RefcountBlockCheckOffset) after.
func (r *RefcountBlock) Encode(b []byte) {
	copy(b, RefcountBlockSignature)
	binary.LittleEndian.PutUint16(b[0x08:], r.SuballocSlot)
	binary.LittleEndian.PutUint16(b[0x0A:], r.SuballocBit)
	binary.LittleEndian.PutUint32(b[0x0C:], r.FSGeneration)
	binary.LittleEndian.PutUint64(b[0x10:], r.Blkno)
	binary.LittleEndian.PutUint64(b[0x18:], r.Parent)
	clear(b[0x20:0x28])
	binary.LittleEndian.PutUint64(b[0x28:], r.LastEBBlk)
	binary.LittleEndian.PutUint32(b[0x30:], r.Count)
	binary.LittleEndian.PutUint32(b[0x34:], r.Flags)
	binary.LittleEndian.PutUint32(b[0x38:], r.Clusters)
	binary.LittleEndian.PutUint32(b[0x3C:], r.Cpos)
	binary.LittleEndian.PutUint32(b[0x40:], r.Generation)
	clear(b[0x44:0x48])
	binary.LittleEndian.PutUint64(b[0x48:], r.SuballocLoc)
	clear(b[0x50:RefcountBlockUnionOffset])
	body := b[RefcountBlockUnionOffset:]
	if r.Tree() {
		r.List.Encode(body)
		clear(body[ExtentListSize(int(r.List.Count)):])
		return
	}
	r.Records.Encode(body)
	clear(body[RefcountListSize(int(r.Records.Count)):])
}

// SelfCheck verifies the block belongs where it was read from.
func (r *RefcountBlock) SelfCheck(blkno uint64, fsGeneration uint32) error {
	if r.Blkno != blkno {
		return corrupt(structRefcountBlock, "rf_blkno", "is %d, want %d", r.Blkno, blkno)
	}
	if r.FSGeneration != fsGeneration {
		return corrupt(structRefcountBlock, "rf_fs_generation", "is 0x%x, want the volume's 0x%x", r.FSGeneration, fsGeneration)
	}
	return nil
}
