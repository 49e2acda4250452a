package ondisk

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// InodeSignature is the i_signature of every dinode but the superblock.
const InodeSignature = "INODE01\x00"

// Offsets in a dinode block.
const (
	DinodeCheckOffset = 0x80 // i_check (BlockCheck)
	DinodeID1Offset   = 0xB8 // id1 union (8 bytes)
	DinodeID2Offset   = 0xC0 // id2 union, to the end of the block
)

// i_flags bits.
const (
	InodeValid       uint32 = 0x00000001 // in use
	InodeUnused2     uint32 = 0x00000002
	InodeOrphaned    uint32 = 0x00000004 // on an orphan list (i_orphaned_slot says whose)
	InodeUnused3     uint32 = 0x00000008
	InodeSystem      uint32 = 0x00000010 // system file
	InodeSuperBlock  uint32 = 0x00000020 // the superblock (id2 = SuperBlock)
	InodeLocalAlloc  uint32 = 0x00000040 // a slot's local alloc (id2 = LocalAlloc)
	InodeBitmap      uint32 = 0x00000080 // an allocator (id1 = Bitmap)
	InodeJournal     uint32 = 0x00000100 // a slot's journal (id1 = Journal)
	InodeHeartbeat   uint32 = 0x00000200 // the heartbeat area
	InodeChain       uint32 = 0x00000400 // a chain allocator (id2 = ChainList)
	InodeDealloc     uint32 = 0x00000800 // a truncate log (id2 = TruncateLog)
	InodeQuota       uint32 = 0x00001000 // a quota file
	InodeDIOOrphaned uint32 = 0x00002000 // orphaned by an append direct I/O write
)

// i_dyn_features bits.
const (
	DynInlineData  uint16 = 0x0001 // data or dirents in id2 (id2 = InlineData)
	DynHasXattr    uint16 = 0x0002 // i_xattr_loc points at an XATTR01 block
	DynInlineXattr uint16 = 0x0004 // the last i_xattr_inline_size bytes hold xattrs
	DynIndexedDir  uint16 = 0x0008 // i_dx_root points at a DXDIR01 block
	DynHasRefcount uint16 = 0x0010 // i_refcount_loc points at a REFCNT1 tree
)

// JournalDirty is the id1 journal flag that says the journal needs replay.
const JournalDirty uint32 = 0x00000001

// Link count limits: without indexed directories a directory holds at most
// LinkMax links; with them the high 16 bits (i_links_count_hi) are used too.
const (
	LinkMax   = 32000
	DxLinkMax = 1<<31 - 1
)

const structDinode = "dinode"

// DiskTime is a dinode timestamp: seconds since the epoch and nanoseconds.
// (i_dtime has no nanoseconds and is a plain uint64.)
type DiskTime struct {
	Sec  uint64
	Nsec uint32
}

// Bitmap is id1 of an allocator dinode (BITMAP_FL): bits used and total.
type Bitmap struct {
	Used  uint32 // i_used
	Total uint32 // i_total
}

// Journal is id1 of a journal dinode (JOURNAL_FL).
type Journal struct {
	Flags              uint32 // ij_flags: JournalDirty
	RecoveryGeneration uint32 // ij_recovery_generation: bumped at each replay by another node
}

// Dinode is struct ocfs2_dinode, one fs block per inode (the superblock is
// one too, with i_signature "OCFSV2"):
//
//	0x00 u8[8] i_signature        "INODE01\0" or "OCFSV2\0\0"
//	0x08 le32 i_generation        NFS handle / RW and FLOCK lock generation
//	0x0C le16 i_suballoc_slot     owning inode_alloc slot; 0xFFFF = global_inode_alloc
//	0x0E le16 i_suballoc_bit      bit in the owning group
//	0x10 le16 i_links_count_hi    high 16 bits of the link count
//	0x12 le16 i_xattr_inline_size bytes at the block's end kept for inline xattrs
//	0x14 le32 i_clusters          clusters allocated
//	0x18 le32 i_uid
//	0x1C le32 i_gid
//	0x20 le64 i_size              bytes
//	0x28 le16 i_mode              POSIX mode
//	0x2A le16 i_links_count       low 16 bits of the link count
//	0x2C le32 i_flags             Inode* flags
//	0x30 le64 i_atime
//	0x38 le64 i_ctime
//	0x40 le64 i_mtime
//	0x48 le64 i_dtime             deletion time
//	0x50 le64 i_blkno             this block
//	0x58 le64 i_last_eb_blk       rightmost leaf extent block (tree depth > 0)
//	0x60 le32 i_fs_generation     the volume's generation
//	0x64 le32 i_atime_nsec
//	0x68 le32 i_ctime_nsec
//	0x6C le32 i_mtime_nsec
//	0x70 le32 i_attr              chattr flags (ext2 FS_*_FL values)
//	0x74 le16 i_orphaned_slot     with InodeOrphaned
//	0x76 le16 i_dyn_features      Dyn* flags
//	0x78 le64 i_xattr_loc         XATTR01 block (DynHasXattr)
//	0x80 BlockCheck i_check
//	0x88 le64 i_dx_root           DXDIR01 block (DynIndexedDir)
//	0x90 le64 i_refcount_loc      REFCNT1 root (DynHasRefcount)
//	0x98 le64 i_suballoc_loc      owning group descriptor (0: i_blkno - i_suballoc_bit)
//	0xA0 le16 i_dio_orphaned_slot
//	0xA2 le16 i_reserved1[3]
//	0xA8 le64 i_reserved2[2]
//	0xB8 id1 (8 bytes)            i_rdev le64 | bitmap1 {i_used le32, i_total le32}
//	                              | journal1 {ij_flags le32, ij_recovery_generation le32}
//	0xC0 id2 (to the block end)   SuperBlock | LocalAlloc | ChainList | ExtentList
//	                              | TruncateLog | InlineData | fast symlink target
//
// When DynInlineXattr is set, the last i_xattr_inline_size bytes of the block
// belong to the in-inode xattr header, not to id2: Decode never reads id2
// there and Encode never writes there.
//
// Exactly one id2 variant is non-nil, chosen by ID2Kind from the flags: the
// superblock (SUPER_BLOCK_FL or the "OCFSV2" signature), LOCAL_ALLOC_FL,
// CHAIN_FL, DEALLOC_FL, DynInlineData, a fast symlink (S_IFLNK with a
// non-zero size and no clusters), otherwise an extent list.
type Dinode struct {
	Signature       string // InodeSignature or SuperBlockSignature; "" encodes as InodeSignature
	Generation      uint32
	SuballocSlot    uint16
	SuballocBit     uint16
	Links           uint32 // i_links_count | i_links_count_hi<<16
	XattrInlineSize uint16
	Clusters        uint32
	UID             uint32
	GID             uint32
	Size            uint64
	Mode            uint16
	Flags           uint32
	Atime           DiskTime
	Ctime           DiskTime
	Mtime           DiskTime
	Dtime           uint64
	Blkno           uint64
	LastEBBlk       uint64
	FSGeneration    uint32
	Attr            uint32
	OrphanedSlot    uint16
	DynFeatures     uint16
	XattrLoc        uint64
	DxRoot          uint64
	RefcountLoc     uint64
	SuballocLoc     uint64
	DIOOrphanedSlot uint16
	// ID1 is the raw id1 union (the 8 bytes at 0xB8 read as one le64); use
	// Rdev, Bitmap and Journal to read it as the inode's type requires.
	ID1 uint64

	Super       *SuperBlock
	LocalAlloc  *LocalAlloc
	Chain       *ChainList
	TruncateLog *TruncateLog
	Inline      *InlineData
	FastSymlink []byte // the target, up to its NUL (non-nil for a fast symlink)
	Extents     *ExtentList
}

// Clone copies d deeply: changing the copy (its lists, bitmaps, inline
// data) never changes d, which may be a cached original others share.
func (d *Dinode) Clone() *Dinode {
	c := *d
	if d.Extents != nil {
		l := *d.Extents
		l.Recs = slices.Clone(d.Extents.Recs)
		c.Extents = &l
	}
	if d.Inline != nil {
		c.Inline = &InlineData{Data: slices.Clone(d.Inline.Data)}
	}
	if d.FastSymlink != nil {
		c.FastSymlink = slices.Clone(d.FastSymlink)
	}
	if d.Super != nil {
		s := *d.Super
		c.Super = &s
	}
	if d.Chain != nil {
		cl := *d.Chain
		cl.Recs = slices.Clone(d.Chain.Recs)
		c.Chain = &cl
	}
	if d.LocalAlloc != nil {
		la := *d.LocalAlloc
		la.Bitmap = slices.Clone(d.LocalAlloc.Bitmap)
		c.LocalAlloc = &la
	}
	if d.TruncateLog != nil {
		tl := *d.TruncateLog
		tl.Recs = slices.Clone(d.TruncateLog.Recs)
		c.TruncateLog = &tl
	}
	return &c
}

// SuballocSlotGlobal is i_suballoc_slot for inodes of global_inode_alloc
// (system files), and the "no slot" value of other slot fields.
const SuballocSlotGlobal = 0xFFFF

// ID2Kind says which variant of the id2 union a dinode holds.
type ID2Kind int

const (
	ID2Extents ID2Kind = iota
	ID2Super
	ID2LocalAlloc
	ID2Chain
	ID2TruncateLog
	ID2Inline
	ID2FastSymlink
)

func (k ID2Kind) String() string {
	switch k {
	case ID2Extents:
		return "extent list"
	case ID2Super:
		return "superblock"
	case ID2LocalAlloc:
		return "local alloc"
	case ID2Chain:
		return "chain list"
	case ID2TruncateLog:
		return "truncate log"
	case ID2Inline:
		return "inline data"
	case ID2FastSymlink:
		return "fast symlink"
	}
	return fmt.Sprintf("ID2Kind(%d)", int(k))
}

// ID2Kind is the id2 variant the dinode's flags select, in the precedence
// libocfs2 and the kernel use.
func (d *Dinode) ID2Kind() ID2Kind {
	switch {
	case d.Flags&InodeSuperBlock != 0 || d.Signature == SuperBlockSignature:
		return ID2Super
	case d.Flags&InodeLocalAlloc != 0:
		return ID2LocalAlloc
	case d.Flags&InodeChain != 0:
		return ID2Chain
	case d.Flags&InodeDealloc != 0:
		return ID2TruncateLog
	case d.DynFeatures&DynInlineData != 0:
		return ID2Inline
	case d.IsLnk() && d.Size != 0 && d.Clusters == 0:
		return ID2FastSymlink
	}
	return ID2Extents
}

// Rdev is the device number of a character or block device inode, decoded
// from the kernel's huge_encode_dev packing of id1:
// minor&0xff | major<<8 | (minor&^0xff)<<12 (12-bit major, 20-bit minor).
func (d *Dinode) Rdev() (major, minor uint32) {
	v := uint32(d.ID1)
	major = (v & 0xfff00) >> 8
	minor = (v & 0xff) | ((v >> 12) & 0xfff00)
	return major, minor
}

// SetRdev stores a device number in id1 with the kernel's packing. Majors
// above 0xfff or minors above 0xfffff do not fit and are an error.
func (d *Dinode) SetRdev(major, minor uint32) error {
	if major > 0xfff || minor > 0xfffff {
		return fmt.Errorf("device number %d:%d does not fit (major <= 4095, minor <= 1048575)", major, minor)
	}
	d.ID1 = uint64(minor&0xff | major<<8 | (minor&^0xff)<<12)
	return nil
}

// Bitmap reads id1 as an allocator's bit counts.
func (d *Dinode) Bitmap() Bitmap {
	return Bitmap{Used: uint32(d.ID1), Total: uint32(d.ID1 >> 32)}
}

// SetBitmap stores an allocator's bit counts in id1.
func (d *Dinode) SetBitmap(b Bitmap) { d.ID1 = uint64(b.Used) | uint64(b.Total)<<32 }

// Journal reads id1 as a journal's flags.
func (d *Dinode) Journal() Journal {
	return Journal{Flags: uint32(d.ID1), RecoveryGeneration: uint32(d.ID1 >> 32)}
}

// SetJournal stores a journal's flags in id1.
func (d *Dinode) SetJournal(j Journal) {
	d.ID1 = uint64(j.Flags) | uint64(j.RecoveryGeneration)<<32
}

// POSIX file type bits of i_mode.
const (
	ModeTypeMask uint16 = 0o170000
	ModeSock     uint16 = 0o140000
	ModeLnk      uint16 = 0o120000
	ModeReg      uint16 = 0o100000
	ModeBlk      uint16 = 0o060000
	ModeDir      uint16 = 0o040000
	ModeChr      uint16 = 0o020000
	ModeFifo     uint16 = 0o010000
)

// Directory entry file types (ocfs2_dir_entry.file_type).
const (
	FileTypeUnknown uint8 = 0
	FileTypeReg     uint8 = 1
	FileTypeDir     uint8 = 2
	FileTypeChr     uint8 = 3
	FileTypeBlk     uint8 = 4
	FileTypeFifo    uint8 = 5
	FileTypeSock    uint8 = 6
	FileTypeSymlink uint8 = 7
)

// Mode predicates: the file type of i_mode.

func (d *Dinode) IsDir() bool  { return d.Mode&ModeTypeMask == ModeDir }
func (d *Dinode) IsReg() bool  { return d.Mode&ModeTypeMask == ModeReg }
func (d *Dinode) IsLnk() bool  { return d.Mode&ModeTypeMask == ModeLnk }
func (d *Dinode) IsChr() bool  { return d.Mode&ModeTypeMask == ModeChr }
func (d *Dinode) IsBlk() bool  { return d.Mode&ModeTypeMask == ModeBlk }
func (d *Dinode) IsFifo() bool { return d.Mode&ModeTypeMask == ModeFifo }
func (d *Dinode) IsSock() bool { return d.Mode&ModeTypeMask == ModeSock }

// FileType is the directory entry file_type for the inode's mode.
func (d *Dinode) FileType() uint8 { return FileTypeOfMode(d.Mode) }

// FileTypeOfMode maps a POSIX mode to a directory entry file_type
// (FileTypeUnknown for a mode with no valid type).
func FileTypeOfMode(mode uint16) uint8 {
	switch mode & ModeTypeMask {
	case ModeReg:
		return FileTypeReg
	case ModeDir:
		return FileTypeDir
	case ModeChr:
		return FileTypeChr
	case ModeBlk:
		return FileTypeBlk
	case ModeFifo:
		return FileTypeFifo
	case ModeSock:
		return FileTypeSock
	case ModeLnk:
		return FileTypeSymlink
	}
	return FileTypeUnknown
}

// Capacities of the id2 variants for a block size. xattrInlineSize is the
// in-inode xattr area (i_xattr_inline_size with DynInlineXattr), 0 without.
// Readers trust the on-disk counts (l_count, cl_count, ...); writers use
// these to fill them in.

// ExtentRecsPerInode is the l_count of a dinode's extent list:
// (B - 0xD0 - xattr) / 16, e.g. 243 at 4 KiB.
func ExtentRecsPerInode(blockSize, xattrInlineSize int) int {
	return ExtentListCapacity(blockSize - DinodeID2Offset - xattrInlineSize)
}

// ChainRecsPerInode is the cl_count of a chain allocator: (B - 0xD0) / 16.
func ChainRecsPerInode(blockSize int) int {
	return (blockSize - DinodeID2Offset - chainListHeaderSize) / ChainRecSize
}

// TruncateRecsPerInode is the tl_count of a truncate log: (B - 0xC8) / 8.
func TruncateRecsPerInode(blockSize int) int {
	return (blockSize - DinodeID2Offset - truncateLogHeaderSize) / TruncateRecSize
}

// LocalAllocBitmapBytes is the la_size of a local alloc: B - 0xD0.
func LocalAllocBitmapBytes(blockSize int) int {
	return blockSize - DinodeID2Offset - localAllocHeaderSize
}

// InlineDataBytes is the id_count of inline data: B - 0xC8 - xattr.
func InlineDataBytes(blockSize, xattrInlineSize int) int {
	return blockSize - DinodeID2Offset - inlineDataHeaderSize - xattrInlineSize
}

// FastSymlinkBytes is the room for a fast symlink target: B - 0xC0 - xattr.
func FastSymlinkBytes(blockSize, xattrInlineSize int) int {
	return blockSize - DinodeID2Offset - xattrInlineSize
}

// id2End is where id2 ends in a block of n bytes: before the inline xattr
// area when DynInlineXattr is set.
func (d *Dinode) id2End(n int) (int, error) {
	if d.DynFeatures&DynInlineXattr == 0 {
		return n, nil
	}
	if int(d.XattrInlineSize) > n-DinodeID2Offset {
		return 0, corrupt(structDinode, "i_xattr_inline_size", "is %d, more than the %d bytes after id1", d.XattrInlineSize, n-DinodeID2Offset)
	}
	return n - int(d.XattrInlineSize), nil
}

// DecodeDinode decodes one dinode block (512..4096 bytes). It checks the
// signature and that the id2 variant's counts fit its capacity; SelfCheck
// checks identity against the volume, ValidateSuperBlock the superblock.
func DecodeDinode(b []byte) (*Dinode, error) {
	if err := checkBlockSize(b, structDinode); err != nil {
		return nil, err
	}
	sig := string(b[:8])
	if sig != InodeSignature && sig != SuperBlockSignature {
		return nil, corrupt(structDinode, "i_signature", "is %q, want %q", cstring(b[:8]), "INODE01")
	}
	le := binary.LittleEndian
	d := &Dinode{
		Signature:       sig,
		Generation:      le.Uint32(b[0x08:]),
		SuballocSlot:    le.Uint16(b[0x0C:]),
		SuballocBit:     le.Uint16(b[0x0E:]),
		Links:           uint32(le.Uint16(b[0x2A:])) | uint32(le.Uint16(b[0x10:]))<<16,
		XattrInlineSize: le.Uint16(b[0x12:]),
		Clusters:        le.Uint32(b[0x14:]),
		UID:             le.Uint32(b[0x18:]),
		GID:             le.Uint32(b[0x1C:]),
		Size:            le.Uint64(b[0x20:]),
		Mode:            le.Uint16(b[0x28:]),
		Flags:           le.Uint32(b[0x2C:]),
		Atime:           DiskTime{le.Uint64(b[0x30:]), le.Uint32(b[0x64:])},
		Ctime:           DiskTime{le.Uint64(b[0x38:]), le.Uint32(b[0x68:])},
		Mtime:           DiskTime{le.Uint64(b[0x40:]), le.Uint32(b[0x6C:])},
		Dtime:           le.Uint64(b[0x48:]),
		Blkno:           le.Uint64(b[0x50:]),
		LastEBBlk:       le.Uint64(b[0x58:]),
		FSGeneration:    le.Uint32(b[0x60:]),
		Attr:            le.Uint32(b[0x70:]),
		OrphanedSlot:    le.Uint16(b[0x74:]),
		DynFeatures:     le.Uint16(b[0x76:]),
		XattrLoc:        le.Uint64(b[0x78:]),
		DxRoot:          le.Uint64(b[0x88:]),
		RefcountLoc:     le.Uint64(b[0x90:]),
		SuballocLoc:     le.Uint64(b[0x98:]),
		DIOOrphanedSlot: le.Uint16(b[0xA0:]),
		ID1:             le.Uint64(b[DinodeID1Offset:]),
	}
	end, err := d.id2End(len(b))
	if err != nil {
		return nil, err
	}
	id2 := b[DinodeID2Offset:end]
	switch d.ID2Kind() {
	case ID2Super:
		d.Super, err = decodeSuperBlock(id2)
	case ID2LocalAlloc:
		d.LocalAlloc, err = decodeLocalAlloc(id2)
	case ID2Chain:
		d.Chain, err = decodeChainList(id2)
	case ID2TruncateLog:
		d.TruncateLog, err = decodeTruncateLog(id2)
	case ID2Inline:
		d.Inline, err = decodeInlineData(id2)
	case ID2FastSymlink:
		d.FastSymlink = cloneBytes(id2[:len(cstring(id2))])
	default:
		d.Extents, err = DecodeExtentList(id2, structDinode)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Encode writes the dinode into b (one whole block), leaving i_check zero:
// with META_ECC, call SetBlockCheck(b, DinodeCheckOffset) after. It writes
// bytes 0 to the end of id2 and zeroes reserved fields and the unused part
// of id2; with DynInlineXattr the last XattrInlineSize bytes of b are left
// untouched for the xattr code. It fails, writing nothing, when the dinode
// cannot be laid out: b is not a block, the non-nil id2 variant is not the
// one the flags select (ID2Kind), or the variant does not fit.
func (d *Dinode) Encode(b []byte) error {
	if !isBlockSize(len(b)) {
		return fmt.Errorf("dinode encode: buffer is %d bytes, not a block", len(b))
	}
	sig := d.Signature
	if sig == "" {
		sig = InodeSignature
	}
	if sig != InodeSignature && sig != SuperBlockSignature {
		return fmt.Errorf("dinode encode: signature %q is neither %q nor %q", sig, InodeSignature, SuperBlockSignature)
	}
	end, err := d.id2End(len(b))
	if err != nil {
		return fmt.Errorf("dinode encode: %v", err)
	}
	if err := d.checkVariant(end - DinodeID2Offset); err != nil {
		return fmt.Errorf("dinode encode: %w", err)
	}
	le := binary.LittleEndian
	copy(b[0x00:0x08], sig)
	le.PutUint32(b[0x08:], d.Generation)
	le.PutUint16(b[0x0C:], d.SuballocSlot)
	le.PutUint16(b[0x0E:], d.SuballocBit)
	le.PutUint16(b[0x10:], uint16(d.Links>>16))
	le.PutUint16(b[0x12:], d.XattrInlineSize)
	le.PutUint32(b[0x14:], d.Clusters)
	le.PutUint32(b[0x18:], d.UID)
	le.PutUint32(b[0x1C:], d.GID)
	le.PutUint64(b[0x20:], d.Size)
	le.PutUint16(b[0x28:], d.Mode)
	le.PutUint16(b[0x2A:], uint16(d.Links))
	le.PutUint32(b[0x2C:], d.Flags)
	le.PutUint64(b[0x30:], d.Atime.Sec)
	le.PutUint64(b[0x38:], d.Ctime.Sec)
	le.PutUint64(b[0x40:], d.Mtime.Sec)
	le.PutUint64(b[0x48:], d.Dtime)
	le.PutUint64(b[0x50:], d.Blkno)
	le.PutUint64(b[0x58:], d.LastEBBlk)
	le.PutUint32(b[0x60:], d.FSGeneration)
	le.PutUint32(b[0x64:], d.Atime.Nsec)
	le.PutUint32(b[0x68:], d.Ctime.Nsec)
	le.PutUint32(b[0x6C:], d.Mtime.Nsec)
	le.PutUint32(b[0x70:], d.Attr)
	le.PutUint16(b[0x74:], d.OrphanedSlot)
	le.PutUint16(b[0x76:], d.DynFeatures)
	le.PutUint64(b[0x78:], d.XattrLoc)
	clear(b[DinodeCheckOffset : DinodeCheckOffset+BlockCheckSize])
	le.PutUint64(b[0x88:], d.DxRoot)
	le.PutUint64(b[0x90:], d.RefcountLoc)
	le.PutUint64(b[0x98:], d.SuballocLoc)
	le.PutUint16(b[0xA0:], d.DIOOrphanedSlot)
	clear(b[0xA2:DinodeID1Offset])
	le.PutUint64(b[DinodeID1Offset:], d.ID1)

	id2 := b[DinodeID2Offset:end]
	var used int
	switch {
	case d.Super != nil:
		err = d.Super.encode(id2)
		used = superBlockSize
	case d.LocalAlloc != nil:
		used = d.LocalAlloc.encode(id2)
	case d.Chain != nil:
		used = d.Chain.encode(id2)
	case d.TruncateLog != nil:
		used = d.TruncateLog.encode(id2)
	case d.Inline != nil:
		used = d.Inline.encode(id2)
	case d.FastSymlink != nil:
		used = copy(id2, d.FastSymlink)
	default:
		d.Extents.Encode(id2)
		used = ExtentListSize(int(d.Extents.Count))
	}
	if err != nil {
		return fmt.Errorf("dinode encode: %w", err)
	}
	clear(id2[used:])
	return nil
}

// checkVariant verifies that exactly the id2 variant ID2Kind selects is set
// and that it fits in room bytes.
func (d *Dinode) checkVariant(room int) error {
	set := 0
	for _, p := range []bool{d.Super != nil, d.LocalAlloc != nil, d.Chain != nil, d.TruncateLog != nil,
		d.Inline != nil, d.FastSymlink != nil, d.Extents != nil} {
		if p {
			set++
		}
	}
	kind := d.ID2Kind()
	var have ID2Kind
	need := 0
	switch {
	case d.Super != nil:
		have, need = ID2Super, superBlockSize
	case d.LocalAlloc != nil:
		have, need = ID2LocalAlloc, localAllocHeaderSize+len(d.LocalAlloc.Bitmap)
		if len(d.LocalAlloc.Bitmap) > 0xFFFF {
			return fmt.Errorf("local alloc bitmap of %d bytes does not fit la_size", len(d.LocalAlloc.Bitmap))
		}
	case d.Chain != nil:
		have, need = ID2Chain, chainListHeaderSize+int(d.Chain.Count)*ChainRecSize
		if len(d.Chain.Recs) > int(d.Chain.Count) {
			return fmt.Errorf("chain list has %d records, cl_count is %d", len(d.Chain.Recs), d.Chain.Count)
		}
	case d.TruncateLog != nil:
		have, need = ID2TruncateLog, truncateLogHeaderSize+int(d.TruncateLog.Count)*TruncateRecSize
		if len(d.TruncateLog.Recs) > int(d.TruncateLog.Count) {
			return fmt.Errorf("truncate log has %d records, tl_count is %d", len(d.TruncateLog.Recs), d.TruncateLog.Count)
		}
	case d.Inline != nil:
		have, need = ID2Inline, inlineDataHeaderSize+len(d.Inline.Data)
		if len(d.Inline.Data) > 0xFFFF {
			return fmt.Errorf("inline data of %d bytes does not fit id_count", len(d.Inline.Data))
		}
	case d.FastSymlink != nil:
		have, need = ID2FastSymlink, len(d.FastSymlink)
	case d.Extents != nil:
		have, need = ID2Extents, ExtentListSize(int(d.Extents.Count))
		if len(d.Extents.Recs) > int(d.Extents.Count) {
			return fmt.Errorf("extent list has %d records, l_count is %d", len(d.Extents.Recs), d.Extents.Count)
		}
	}
	if set != 1 {
		return fmt.Errorf("%d id2 variants are set, want exactly one (%s)", set, kind)
	}
	if have != kind {
		return fmt.Errorf("id2 holds a %s, but i_flags 0x%x / i_dyn_features 0x%x / i_mode 0%o select a %s", have, d.Flags, d.DynFeatures, d.Mode, kind)
	}
	if need > room {
		return fmt.Errorf("%s needs %d bytes, id2 has %d", have, need, room)
	}
	return nil
}

// SelfCheck verifies the dinode is a live inode of this volume read from
// blkno, as the kernel checks every inode block it reads: signature
// "INODE01", VALID_FL, i_blkno and i_fs_generation. (A superblock, whose
// signature is "OCFSV2", is checked with ValidateSuperBlock instead.)
func (d *Dinode) SelfCheck(blkno uint64, fsGeneration uint32) error {
	if d.Signature != InodeSignature {
		return corrupt(structDinode, "i_signature", "is %q, want %q", cstring([]byte(d.Signature)), "INODE01")
	}
	if d.Flags&InodeValid == 0 {
		return corrupt(structDinode, "i_flags", "0x%x lacks VALID_FL: the inode is not in use", d.Flags)
	}
	if d.Blkno != blkno {
		return corrupt(structDinode, "i_blkno", "is %d, want %d", d.Blkno, blkno)
	}
	if d.FSGeneration != fsGeneration {
		return corrupt(structDinode, "i_fs_generation", "is 0x%x, want the volume's 0x%x", d.FSGeneration, fsGeneration)
	}
	return nil
}
