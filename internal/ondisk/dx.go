package ondisk

import (
	"encoding/binary"
	"fmt"
)

// Signatures of the indexed-directory blocks.
const (
	DXRootSignature = "DXDIR01\x00"
	DXLeafSignature = "DXLEAF1\x00"
)

// Offsets in dx root and dx leaf blocks.
const (
	DXRootCheckOffset   = 0x08
	DXRootUnionOffset   = 0xC0 // dr_entries or dr_list
	DXLeafCheckOffset   = 0x08
	DXLeafListOffset    = 0x28
	DXEntrySize         = 16
	DXEntryListHdrSize  = 8
	DXRootFlagInline    = 0x01 // dr_flags: the entries live in the root block
	structDXRoot        = "dx root"
	structDXLeaf        = "dx leaf"
	structDXEntryList   = "dx entry list"
	dxRootMinBlockBytes = 512
)

// DXRootEntryCapacity is how many dx entries an inline root holds:
// (blocksize - 0xC8) / 16, 243 at 4 KiB.
func DXRootEntryCapacity(blockSize int) int {
	return (blockSize - DXRootUnionOffset - DXEntryListHdrSize) / DXEntrySize
}

// DXRootExtentCapacity is the record capacity of a non-inline root's extent
// list: (blocksize - 0xD0) / 16, 243 at 4 KiB.
func DXRootExtentCapacity(blockSize int) int {
	return ExtentListCapacity(blockSize - DXRootUnionOffset)
}

// DXLeafCapacity is how many dx entries a leaf holds: (blocksize - 0x30) / 16,
// 253 at 4 KiB.
func DXLeafCapacity(blockSize int) int {
	return (blockSize - DXLeafListOffset - DXEntryListHdrSize) / DXEntrySize
}

// DXEntry is struct ocfs2_dx_entry, one name in a directory index (16 bytes):
//
//	0x00 le32 dx_major_hash  picks the cluster (the index's extent cpos space is the major hash)
//	0x04 le32 dx_minor_hash  low bits pick the block within the cluster
//	0x08 le64 dx_dirent_blk  directory block holding the dirent
type DXEntry struct {
	MajorHash uint32
	MinorHash uint32
	DirentBlk uint64
}

// DXEntryList is struct ocfs2_dx_entry_list, the entry array of an inline
// dx root or of a dx leaf:
//
//	0x00 le32 de_reserved
//	0x04 le16 de_count     capacity (trust the on-disk value)
//	0x06 le16 de_num_used  entries in use
//	0x08 DXEntry de_entries[de_count]
//
// Entries are appended as names are added; a leaf is sorted by hash only
// when it is split.
type DXEntryList struct {
	Count   uint16
	Entries []DXEntry // len == de_num_used
}

// DXEntryListSize is the byte size of a list with capacity count.
func DXEntryListSize(count int) int { return DXEntryListHdrSize + count*DXEntrySize }

func decodeDXEntryList(b []byte, structName string) (DXEntryList, error) {
	if len(b) < DXEntryListHdrSize {
		return DXEntryList{}, corrupt(structName, "de_count", "entry list area is %d bytes", len(b))
	}
	l := DXEntryList{Count: binary.LittleEndian.Uint16(b[4:])}
	used := binary.LittleEndian.Uint16(b[6:])
	if max := (len(b) - DXEntryListHdrSize) / DXEntrySize; int(l.Count) > max {
		return DXEntryList{}, corrupt(structName, "de_count", "is %d, but only %d entries fit", l.Count, max)
	}
	if used > l.Count {
		return DXEntryList{}, corrupt(structName, "de_num_used", "is %d, beyond de_count %d", used, l.Count)
	}
	l.Entries = make([]DXEntry, used)
	for i := range l.Entries {
		e := b[DXEntryListHdrSize+i*DXEntrySize:]
		l.Entries[i] = DXEntry{
			MajorHash: binary.LittleEndian.Uint32(e),
			MinorHash: binary.LittleEndian.Uint32(e[4:]),
			DirentBlk: binary.LittleEndian.Uint64(e[8:]),
		}
	}
	return l, nil
}

// Encode writes the list into b (which must hold Count entries), zeroing the
// reserved word and the unused entry slots.
func (l *DXEntryList) Encode(b []byte) {
	clear(b[:4])
	binary.LittleEndian.PutUint16(b[4:], l.Count)
	binary.LittleEndian.PutUint16(b[6:], uint16(len(l.Entries)))
	for i, e := range l.Entries {
		p := b[DXEntryListHdrSize+i*DXEntrySize:]
		binary.LittleEndian.PutUint32(p, e.MajorHash)
		binary.LittleEndian.PutUint32(p[4:], e.MinorHash)
		binary.LittleEndian.PutUint64(p[8:], e.DirentBlk)
	}
	clear(b[DXEntryListSize(len(l.Entries)):DXEntryListSize(int(l.Count))])
}

// Full reports whether no entry slot is free.
func (l *DXEntryList) Full() bool { return len(l.Entries) >= int(l.Count) }

// DXRoot is struct ocfs2_dx_root_block ("DXDIR01"), the root of a
// directory's name index, one block from an extent_alloc suballocator:
//
//	0x00 u8[8] dr_signature     "DXDIR01\0"
//	0x08 BlockCheck dr_check
//	0x10 le16 dr_suballoc_slot
//	0x12 le16 dr_suballoc_bit
//	0x14 le32 dr_fs_generation  volume generation
//	0x18 le64 dr_blkno          this block
//	0x20 le64 dr_last_eb_blk    rightmost leaf extent block of the index tree
//	0x28 le32 dr_clusters       clusters of dx leaves
//	0x2C u8   dr_flags          DXRootFlagInline
//	0x2D u8   dr_reserved0
//	0x2E le16 dr_reserved1
//	0x30 le64 dr_dir_blkno      the directory inode
//	0x38 le32 dr_num_entries    names indexed, "." and ".." included
//	0x3C le32 dr_reserved2
//	0x40 le64 dr_free_blk       first dir block with free space (list through trailers' db_free_next)
//	0x48 le64 dr_suballoc_loc   owning group descriptor
//	0x50 le64 dr_reserved3[14]
//	0xC0 union: DXEntryList dr_entries (inline; entries at 0xC8)
//	            ExtentList dr_list (otherwise; records at 0xD0, e_cpos = major hash)
type DXRoot struct {
	SuballocSlot uint16
	SuballocBit  uint16
	FSGeneration uint32
	Blkno        uint64
	LastEBBlk    uint64
	Clusters     uint32
	Flags        uint8
	DirBlkno     uint64
	NumEntries   uint32
	FreeBlk      uint64
	SuballocLoc  uint64
	Entries      DXEntryList // when Inline()
	List         ExtentList  // when !Inline()
}

// Inline reports whether the index entries live in the root block.
func (r *DXRoot) Inline() bool { return r.Flags&DXRootFlagInline != 0 }

// DecodeDXRoot decodes a whole dx root block, checking its signature and
// the counts of whichever union member dr_flags selects.
func DecodeDXRoot(b []byte) (*DXRoot, error) {
	if len(b) < dxRootMinBlockBytes {
		return nil, corrupt(structDXRoot, "", "block is %d bytes, want at least %d", len(b), dxRootMinBlockBytes)
	}
	if string(b[:8]) != DXRootSignature {
		return nil, corrupt(structDXRoot, "dr_signature", "is %q, want %q", cstring(b[:8]), "DXDIR01")
	}
	r := &DXRoot{
		SuballocSlot: binary.LittleEndian.Uint16(b[0x10:]),
		SuballocBit:  binary.LittleEndian.Uint16(b[0x12:]),
		FSGeneration: binary.LittleEndian.Uint32(b[0x14:]),
		Blkno:        binary.LittleEndian.Uint64(b[0x18:]),
		LastEBBlk:    binary.LittleEndian.Uint64(b[0x20:]),
		Clusters:     binary.LittleEndian.Uint32(b[0x28:]),
		Flags:        b[0x2C],
		DirBlkno:     binary.LittleEndian.Uint64(b[0x30:]),
		NumEntries:   binary.LittleEndian.Uint32(b[0x38:]),
		FreeBlk:      binary.LittleEndian.Uint64(b[0x40:]),
		SuballocLoc:  binary.LittleEndian.Uint64(b[0x48:]),
	}
	if r.Inline() {
		l, err := decodeDXEntryList(b[DXRootUnionOffset:], structDXRoot)
		if err != nil {
			return nil, err
		}
		if r.Clusters != 0 {
			return nil, corrupt(structDXRoot, "dr_clusters", "is %d in an inline root, want 0", r.Clusters)
		}
		r.Entries = l
		return r, nil
	}
	l, err := DecodeExtentList(b[DXRootUnionOffset:], structDXRoot)
	if err != nil {
		return nil, err
	}
	r.List = *l
	return r, nil
}

// Encode writes the root into b (one whole block), with a zero check: with
// META_ECC, call SetBlockCheck(b, DXRootCheckOffset) after.
func (r *DXRoot) Encode(b []byte) {
	copy(b, DXRootSignature)
	clear(b[0x08:0x10])
	binary.LittleEndian.PutUint16(b[0x10:], r.SuballocSlot)
	binary.LittleEndian.PutUint16(b[0x12:], r.SuballocBit)
	binary.LittleEndian.PutUint32(b[0x14:], r.FSGeneration)
	binary.LittleEndian.PutUint64(b[0x18:], r.Blkno)
	binary.LittleEndian.PutUint64(b[0x20:], r.LastEBBlk)
	binary.LittleEndian.PutUint32(b[0x28:], r.Clusters)
	b[0x2C] = r.Flags
	clear(b[0x2D:0x30])
	binary.LittleEndian.PutUint64(b[0x30:], r.DirBlkno)
	binary.LittleEndian.PutUint32(b[0x38:], r.NumEntries)
	clear(b[0x3C:0x40])
	binary.LittleEndian.PutUint64(b[0x40:], r.FreeBlk)
	binary.LittleEndian.PutUint64(b[0x48:], r.SuballocLoc)
	clear(b[0x50:DXRootUnionOffset])
	u := b[DXRootUnionOffset:]
	if r.Inline() {
		r.Entries.Encode(u)
		clear(u[DXEntryListSize(int(r.Entries.Count)):])
		return
	}
	r.List.Encode(u)
	clear(u[ExtentListSize(int(r.List.Count)):])
}

// SelfCheck verifies the root belongs where it was read from: its own block
// number, the volume generation and, when dirInode != 0, its directory.
func (r *DXRoot) SelfCheck(blkno uint64, fsGeneration uint32, dirInode uint64) error {
	if r.Blkno != blkno {
		return corrupt(structDXRoot, "dr_blkno", "is %d, want %d", r.Blkno, blkno)
	}
	if r.FSGeneration != fsGeneration {
		return corrupt(structDXRoot, "dr_fs_generation", "is 0x%x, want the volume's 0x%x", r.FSGeneration, fsGeneration)
	}
	if dirInode != 0 && r.DirBlkno != dirInode {
		return corrupt(structDXRoot, "dr_dir_blkno", "is %d, want directory %d", r.DirBlkno, dirInode)
	}
	return nil
}

// DXLeaf is struct ocfs2_dx_leaf ("DXLEAF1"), one block of index entries
// (leaves fill whole clusters of the index tree):
//
//	0x00 u8[8] dl_signature    "DXLEAF1\0"
//	0x08 BlockCheck dl_check
//	0x10 le64 dl_blkno         this block
//	0x18 le32 dl_fs_generation volume generation
//	0x1C le32 dl_reserved0
//	0x20 le64 dl_reserved1
//	0x28 DXEntryList dl_list   (entries at 0x30)
type DXLeaf struct {
	Blkno        uint64
	FSGeneration uint32
	List         DXEntryList
}

// DecodeDXLeaf decodes a whole dx leaf block.
func DecodeDXLeaf(b []byte) (*DXLeaf, error) {
	if len(b) < dxRootMinBlockBytes {
		return nil, corrupt(structDXLeaf, "", "block is %d bytes, want at least %d", len(b), dxRootMinBlockBytes)
	}
	if string(b[:8]) != DXLeafSignature {
		return nil, corrupt(structDXLeaf, "dl_signature", "is %q, want %q", cstring(b[:8]), "DXLEAF1")
	}
	l, err := decodeDXEntryList(b[DXLeafListOffset:], structDXLeaf)
	if err != nil {
		return nil, err
	}
	return &DXLeaf{
		Blkno:        binary.LittleEndian.Uint64(b[0x10:]),
		FSGeneration: binary.LittleEndian.Uint32(b[0x18:]),
		List:         l,
	}, nil
}

// Encode writes the leaf into b (one whole block), with a zero check: with
// META_ECC, call SetBlockCheck(b, DXLeafCheckOffset) after.
func (l *DXLeaf) Encode(b []byte) {
	copy(b, DXLeafSignature)
	clear(b[0x08:0x10])
	binary.LittleEndian.PutUint64(b[0x10:], l.Blkno)
	binary.LittleEndian.PutUint32(b[0x18:], l.FSGeneration)
	clear(b[0x1C:DXLeafListOffset])
	l.List.Encode(b[DXLeafListOffset:])
	clear(b[DXLeafListOffset+DXEntryListSize(int(l.List.Count)):])
}

// SelfCheck verifies the leaf belongs where it was read from.
func (l *DXLeaf) SelfCheck(blkno uint64, fsGeneration uint32) error {
	if l.Blkno != blkno {
		return corrupt(structDXLeaf, "dl_blkno", "is %d, want %d", l.Blkno, blkno)
	}
	if l.FSGeneration != fsGeneration {
		return corrupt(structDXLeaf, "dl_fs_generation", "is 0x%x, want the volume's 0x%x", l.FSGeneration, fsGeneration)
	}
	return nil
}

// DXIndexRec picks the record of a dx root's leaf-level extent list that
// covers major hash major: the last one whose e_cpos <= major. Unlike a file
// extent lookup the record need not contain major: a run of leaf clusters
// also serves every hash above it up to the next record (DXLeafBlock clamps
// to its last cluster). ok is false when major precedes the first record,
// which a valid index never allows (the first record starts at 0).
func DXIndexRec(l *ExtentList, major uint32) (idx int, ok bool) {
	for i := len(l.Recs) - 1; i >= 0; i-- {
		if l.Recs[i].Cpos <= major {
			return i, true
		}
	}
	return 0, false
}

// DXLeafBlock returns the dx leaf block that holds (or would hold) a name
// with the given hashes, given the index extent record rec that DXIndexRec
// picked: the cluster at offset major - e_cpos (clamped to the record's last
// cluster), then block minor & (blocksPerCluster-1) within it, as the
// kernel's ocfs2_dx_dir_lookup computes it. blocksPerCluster must be a
// power of two.
func DXLeafBlock(rec ExtentRec, major, minor uint32, blocksPerCluster uint32) uint64 {
	c := uint64(0)
	if major > rec.Cpos {
		c = uint64(major - rec.Cpos)
	}
	if rec.Clusters > 0 && c >= uint64(rec.Clusters) {
		c = uint64(rec.Clusters) - 1
	}
	return rec.Blkno + c*uint64(blocksPerCluster) + uint64(minor&(blocksPerCluster-1))
}

// CharSignedness says how a name hash widens a name byte >= 0x80 to 32
// bits. OCFS2's hashes (DXHash, XattrNameHash) take the bytes as C "char",
// whose signedness depends on how the hashing code was compiled:
// ocfs2-tools on x86 and Linux kernels before 6.2 on x86 (including this
// project's reference kernel, 6.1) sign-extend; Linux 6.2 and later build
// with -funsigned-char, and ARM/PowerPC/s390 kernels always used unsigned
// char. Names of pure ASCII hash the same either way. o2go matches
// ocfs2-tools on x86: SignedChar.
type CharSignedness int

const (
	SignedChar   CharSignedness = iota // x86 tools and kernels < 6.2: byte 0xE9 counts as -23
	UnsignedChar                       // kernels >= 6.2, non-x86: byte 0xE9 counts as 233
)

func (cs CharSignedness) widen(c byte) uint32 {
	if cs == SignedChar {
		return uint32(int32(int8(c)))
	}
	return uint32(c)
}

func (cs CharSignedness) String() string {
	if cs == SignedChar {
		return "signed char"
	}
	return "unsigned char"
}

// DXHash is the name hash of indexed directories: the ext3 TEA hash seeded
// with the superblock's s_dx_seed. "." and ".." hash to (0, 0). Only
// seed[0] and seed[1] influence the result (the TEA state that becomes the
// output is two words; seed[2] and the uuid hash are copied but unused).
func DXHash(name []byte, seed [3]uint32, cs CharSignedness) (major, minor uint32) {
	if string(name) == "." || string(name) == ".." {
		return 0, 0
	}
	buf := [2]uint32{seed[0], seed[1]}
	var in [4]uint32
	for p := name; len(p) > 0; p = p[min(16, len(p)):] {
		dxHashBlock(p, &in, cs)
		teaTransform(&buf, &in)
	}
	return buf[0], buf[1]
}

// dxHashBlock packs up to 16 bytes of p into four words the way ext3's
// str2hashbuf does, padding with a word made of the remaining length
// (len(p), not just this chunk's) repeated in each byte.
func dxHashBlock(p []byte, in *[4]uint32, cs CharSignedness) {
	n := uint32(len(p))
	pad := n | n<<8
	pad |= pad << 16
	val := pad
	w := 0
	for i := 0; i < len(p) && i < 16; i++ {
		if i%4 == 0 {
			val = pad
		}
		val = cs.widen(p[i]) + val<<8
		if i%4 == 3 {
			in[w] = val
			w++
			val = pad
		}
	}
	if w < 4 {
		in[w] = val
		w++
	}
	for ; w < 4; w++ {
		in[w] = pad
	}
}

// teaTransform runs 16 rounds of TEA over buf keyed by in.
func teaTransform(buf *[2]uint32, in *[4]uint32) {
	const delta = 0x9E3779B9
	var sum uint32
	b0, b1 := buf[0], buf[1]
	a, b, c, d := in[0], in[1], in[2], in[3]
	for range 16 {
		sum += delta
		b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >> 5) + b)
		b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >> 5) + d)
	}
	buf[0] += b0
	buf[1] += b1
}

// DXHashString is DXHash for a string name.
func DXHashString(name string, seed [3]uint32, cs CharSignedness) (major, minor uint32) {
	return DXHash([]byte(name), seed, cs)
}

// String formats an entry like debugfs.ocfs2's dx_dump.
func (e DXEntry) String() string {
	return fmt.Sprintf("(0x%08x 0x%08x) %d", e.MajorHash, e.MinorHash, e.DirentBlk)
}
