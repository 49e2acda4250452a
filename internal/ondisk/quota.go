package ondisk

import "encoding/binary"

// Quota files (ro-compat USRQUOTA and GRPQUOTA): for each quota type one
// global file (aquota.user, aquota.group) holding every id's limits and
// usage, and one local file per slot (aquota.user:NNNN) where a node keeps
// the changes it has not yet carried to the global file. They are regular
// system files (InodeQuota); these are the structures inside them, by
// logical block of the file.
//
// Every quota block, global or local, ends with an 8-byte trailer
// (QuotaBlockReserved) holding its META_ECC check at QuotaCheckOffset(bs).
// Block 0 of every quota file starts with the header {dqh_magic,
// dqh_version le32} and the file's info right after it (QuotaInfoOffset).
//
// A global file is a radix tree over the 32-bit ids (the kernel's qtree):
// block 0 holds GlobalQuotaInfo, block 1 (QuotaTreeRootBlock) is the root.
// A tree block is an array of QuotaRefsPerBlock(bs) le32 block numbers (0:
// nothing); the tree has QuotaTreeDepth(bs) levels, an id's slot at level k
// being its k-th digit in base QuotaRefsPerBlock (QuotaTreeIndex), and a
// reference at the last level names a data block: a QuotaDataHeader and
// GlobalDquotsPerBlock(bs) GlobalDquot records after it, a record whose
// bytes are all zero being unused. Data blocks with a free record form a
// doubly linked list from dqi_free_entry; blocks given back form a list
// from dqi_free_blk.
//
// A new local file is two blocks: LocalQuotaInfo (clean, one chunk, two
// blocks) and an all-zero chunk header (NewLocalQuotaFile).
//
// The reference is ocfs2_fs.h's ocfs2_disk_dqheader,
// ocfs2_global_disk_dqinfo, ocfs2_global_disk_dqblk and
// ocfs2_local_disk_dqinfo, with qt_disk_dqdbheader and the tree arithmetic
// of libocfs2's quota.c and the kernel's quota_tree.c.

// QuotaType is a quota type, and the index of its pair of files.
type QuotaType int

const (
	UserQuota  QuotaType = 0 // USRQUOTA: aquota.user, aquota.user:NNNN
	GroupQuota QuotaType = 1 // GRPQUOTA: aquota.group, aquota.group:NNNN
)

const (
	// QuotaBlockReserved is OCFS2_QBLK_RESERVED_SPACE: the trailer at the
	// end of every quota block, holding its block check.
	QuotaBlockReserved = 8
	// QuotaInfoOffset is where a quota file's info follows its header
	// (OCFS2_GLOBAL_INFO_OFF, OCFS2_LOCAL_INFO_OFF).
	QuotaInfoOffset = 8
	// QuotaTreeRootBlock is QT_TREEOFF, the global file's tree root.
	QuotaTreeRootBlock = 1
	// QuotaDataHeaderSize is sizeof(struct qt_disk_dqdbheader).
	QuotaDataHeaderSize = 16
	// GlobalDquotSize is sizeof(struct ocfs2_global_disk_dqblk).
	GlobalDquotSize = 88
	// QuotaInitBlocks is the size in blocks of a new global file (header
	// and empty root) and of a new local file (header and chunk header).
	QuotaInitBlocks = 2
	// QuotaDefaultGrace is OCFS2_DEF_BLOCK_GRACE and OCFS2_DEF_INODE_GRACE,
	// in seconds (one week).
	QuotaDefaultGrace = 604800
	// QuotaDefaultSyncMS is OCFS2_DEF_QUOTA_SYNC, in milliseconds.
	QuotaDefaultSyncMS = 10000
	// LocalQuotaClean is OLQF_CLEAN in dqi_flags: the local file holds no
	// change the global file lacks.
	LocalQuotaClean = 0x0001
)

const (
	structGlobalQuota = "global quota info"
	structLocalQuota  = "local quota info"
	structQuotaData   = "quota data block"

	globalQuotaInfoEnd = QuotaInfoOffset + 24 // header and ocfs2_global_disk_dqinfo
	localQuotaInfoEnd  = QuotaInfoOffset + 12 // header and ocfs2_local_disk_dqinfo
)

// GlobalMagic is OCFS2_GLOBAL_QMAGICS[t]: dqh_magic of the type's global
// file (0 for a type that is neither).
func (t QuotaType) GlobalMagic() uint32 {
	switch t {
	case UserQuota:
		return 0x0cf52470
	case GroupQuota:
		return 0x0cf52471
	}
	return 0
}

// LocalMagic is OCFS2_LOCAL_QMAGICS[t]: dqh_magic of the type's local
// files (0 for a type that is neither).
func (t QuotaType) LocalMagic() uint32 {
	switch t {
	case UserQuota:
		return 0x0cf524c0
	case GroupQuota:
		return 0x0cf524c1
	}
	return 0
}

// QuotaCheckOffset is where a quota block of bs bytes holds its META_ECC
// check (struct ocfs2_disk_dqtrailer).
func QuotaCheckOffset(bs int) int { return bs - QuotaBlockReserved }

// QuotaRefsPerBlock is how many le32 block references a global file's
// tree block holds.
func QuotaRefsPerBlock(bs int) int { return (bs - QuotaBlockReserved) >> 2 }

// GlobalDquotsPerBlock is ocfs2_global_dqstr_in_blk: the records of a data
// block of bs bytes.
func GlobalDquotsPerBlock(bs int) int {
	return (bs - QuotaBlockReserved - QuotaDataHeaderSize) / GlobalDquotSize
}

// QuotaTreeDepth is ocfs2_qtree_depth: the tree levels needed for 2^32 ids
// (5 for 512- and 1024-byte blocks, 4 for 2048 and 4096).
func QuotaTreeDepth(bs int) int {
	epb := uint64(QuotaRefsPerBlock(bs))
	if epb < 2 {
		return 0
	}
	depth := 1
	for n := epb; n < 1<<32; n *= epb {
		depth++
	}
	return depth
}

// QuotaTreeIndex is ocfs2_qtree_index: the slot of id in a tree block at
// depth (0: the root).
func QuotaTreeIndex(bs int, id uint32, depth int) int {
	epb := uint32(QuotaRefsPerBlock(bs))
	if epb == 0 {
		return 0
	}
	for range QuotaTreeDepth(bs) - depth - 1 {
		id /= epb
	}
	return int(id % epb)
}

// GlobalDquotRecord is record i of data block b (nil when it is not in b).
func GlobalDquotRecord(b []byte, i int) []byte {
	off := QuotaDataHeaderSize + i*GlobalDquotSize
	if i < 0 || off+GlobalDquotSize > len(b) {
		return nil
	}
	return b[off : off+GlobalDquotSize : off+GlobalDquotSize]
}

// GlobalDquotUnused reports whether record rec is free: all zero, as
// libocfs2 and the kernel tell (qtree_entry_unused).
func GlobalDquotUnused(rec []byte) bool { return allZero(rec) }

// GlobalQuotaInfo is block 0 of a global quota file: the header and struct
// ocfs2_global_disk_dqinfo.
//
//	0x00 le32 dqh_magic      QuotaType.GlobalMagic
//	0x04 le32 dqh_version    0
//	0x08 le32 dqi_bgrace     seconds over the space soft limit allowed
//	0x0C le32 dqi_igrace     seconds over the inode soft limit allowed
//	0x10 le32 dqi_syncms     ms between a node's syncs to this file
//	0x14 le32 dqi_blocks     blocks in the file
//	0x18 le32 dqi_free_blk   first block of the free block list (0: none)
//	0x1C le32 dqi_free_entry first data block with a free record (0: none)
type GlobalQuotaInfo struct {
	Magic, Version         uint32
	BlockGrace, InodeGrace uint32
	SyncMS                 uint32
	Blocks                 uint32
	FreeBlk, FreeEntry     uint32
}

// NewGlobalQuotaInfo is the info libocfs2 gives a new global file of type
// t, before any block count: default grace times and sync interval.
func NewGlobalQuotaInfo(t QuotaType) GlobalQuotaInfo {
	return GlobalQuotaInfo{Magic: t.GlobalMagic(), BlockGrace: QuotaDefaultGrace, InodeGrace: QuotaDefaultGrace, SyncMS: QuotaDefaultSyncMS}
}

// DecodeGlobalQuotaInfo parses the start of block 0 of a global quota file.
// It checks only that b holds it: the magic depends on the file's type,
// which the bytes do not say (Check does).
func DecodeGlobalQuotaInfo(b []byte) (GlobalQuotaInfo, error) {
	if len(b) < globalQuotaInfoEnd {
		return GlobalQuotaInfo{}, corrupt(structGlobalQuota, "", "info is %d bytes, need %d", len(b), globalQuotaInfoEnd)
	}
	le := binary.LittleEndian
	i := b[QuotaInfoOffset:]
	return GlobalQuotaInfo{
		Magic: le.Uint32(b), Version: le.Uint32(b[4:]),
		BlockGrace: le.Uint32(i), InodeGrace: le.Uint32(i[4:]), SyncMS: le.Uint32(i[8:]),
		Blocks: le.Uint32(i[12:]), FreeBlk: le.Uint32(i[16:]), FreeEntry: le.Uint32(i[20:]),
	}, nil
}

// Encode writes the header and info into the first 32 bytes of b, which
// must hold them; the rest of b is left alone.
func (h *GlobalQuotaInfo) Encode(b []byte) {
	le := binary.LittleEndian
	_ = b[globalQuotaInfoEnd-1]
	le.PutUint32(b, h.Magic)
	le.PutUint32(b[4:], h.Version)
	i := b[QuotaInfoOffset:]
	le.PutUint32(i, h.BlockGrace)
	le.PutUint32(i[4:], h.InodeGrace)
	le.PutUint32(i[8:], h.SyncMS)
	le.PutUint32(i[12:], h.Blocks)
	le.PutUint32(i[16:], h.FreeBlk)
	le.PutUint32(i[20:], h.FreeEntry)
}

// Check checks the header against a global file of type t.
func (h *GlobalQuotaInfo) Check(t QuotaType) error {
	return checkQuotaHeader(structGlobalQuota, h.Magic, h.Version, t.GlobalMagic())
}

// checkQuotaHeader checks a quota file's dqh_magic against want and its
// dqh_version against 0, the only version there is.
func checkQuotaHeader(structName string, magic, version, want uint32) error {
	if magic != want {
		return corrupt(structName, "dqh_magic", "is %#x, want %#x", magic, want)
	}
	if version != 0 {
		return corrupt(structName, "dqh_version", "is %d, want 0", version)
	}
	return nil
}

// LocalQuotaInfo is block 0 of a local quota file: the header and struct
// ocfs2_local_disk_dqinfo.
//
//	0x00 le32 dqh_magic   QuotaType.LocalMagic
//	0x04 le32 dqh_version 0
//	0x08 le32 dqi_flags   LocalQuotaClean
//	0x0C le32 dqi_chunks  chunks of records, each with a bitmap block
//	0x10 le32 dqi_blocks  blocks in the file
type LocalQuotaInfo struct {
	Magic, Version uint32
	Flags          uint32
	Chunks         uint32
	Blocks         uint32
}

// DecodeLocalQuotaInfo parses the start of block 0 of a local quota file,
// checking only that b holds it (Check checks the magic).
func DecodeLocalQuotaInfo(b []byte) (LocalQuotaInfo, error) {
	if len(b) < localQuotaInfoEnd {
		return LocalQuotaInfo{}, corrupt(structLocalQuota, "", "info is %d bytes, need %d", len(b), localQuotaInfoEnd)
	}
	le := binary.LittleEndian
	i := b[QuotaInfoOffset:]
	return LocalQuotaInfo{Magic: le.Uint32(b), Version: le.Uint32(b[4:]), Flags: le.Uint32(i), Chunks: le.Uint32(i[4:]), Blocks: le.Uint32(i[8:])}, nil
}

// Encode writes the header and info into the first 20 bytes of b, which
// must hold them; the rest of b is left alone.
func (h *LocalQuotaInfo) Encode(b []byte) {
	le := binary.LittleEndian
	_ = b[localQuotaInfoEnd-1]
	le.PutUint32(b, h.Magic)
	le.PutUint32(b[4:], h.Version)
	i := b[QuotaInfoOffset:]
	le.PutUint32(i, h.Flags)
	le.PutUint32(i[4:], h.Chunks)
	le.PutUint32(i[8:], h.Blocks)
}

// Check checks the header against a local file of type t.
func (h *LocalQuotaInfo) Check(t QuotaType) error {
	return checkQuotaHeader(structLocalQuota, h.Magic, h.Version, t.LocalMagic())
}

// NewLocalQuotaFile is the content of a new local quota file of type t (as
// ocfs2_init_local_quota_file writes it, for mkfs, new slots and tunefs):
// the info block (clean, one chunk, two blocks) and an empty chunk header.
// The blocks' check trailers are left for the caller to seal.
func NewLocalQuotaFile(t QuotaType, bs int) [][]byte {
	blocks := [][]byte{make([]byte, bs), make([]byte, bs)}
	info := LocalQuotaInfo{Magic: t.LocalMagic(), Flags: LocalQuotaClean, Chunks: 1, Blocks: QuotaInitBlocks}
	info.Encode(blocks[0])
	return blocks
}

// QuotaDataHeader is struct qt_disk_dqdbheader, the start of a global
// file's data block.
//
//	0x00 le32 dqdh_next_free next block on the free entry list (0: none)
//	0x04 le32 dqdh_prev_free previous one (0: this block is the head)
//	0x08 le16 dqdh_entries   records in use
//	0x0A le16 dqdh_pad1, 0x0C le32 dqdh_pad2
type QuotaDataHeader struct {
	NextFree, PrevFree uint32
	Entries            uint16
}

// DecodeQuotaDataHeader parses a data block's header, checking only that
// b holds it: whether its references and count fit the file is the
// reader's check.
func DecodeQuotaDataHeader(b []byte) (QuotaDataHeader, error) {
	if len(b) < QuotaDataHeaderSize {
		return QuotaDataHeader{}, corrupt(structQuotaData, "", "header is %d bytes, need %d", len(b), QuotaDataHeaderSize)
	}
	le := binary.LittleEndian
	return QuotaDataHeader{NextFree: le.Uint32(b), PrevFree: le.Uint32(b[4:]), Entries: le.Uint16(b[8:])}, nil
}

// Encode writes the header, pads zeroed, into the first 16 bytes of b.
func (h *QuotaDataHeader) Encode(b []byte) {
	le := binary.LittleEndian
	_ = b[QuotaDataHeaderSize-1]
	le.PutUint32(b, h.NextFree)
	le.PutUint32(b[4:], h.PrevFree)
	le.PutUint16(b[8:], h.Entries)
	clear(b[10:QuotaDataHeaderSize])
}

// GlobalDquot is struct ocfs2_global_disk_dqblk, one id's record in a
// global file's data block.
//
//	0x00 le32 dqb_id          0x04 le32 dqb_use_count (nodes holding it)
//	0x08 le64 dqb_ihardlimit  0x10 le64 dqb_isoftlimit
//	0x18 le64 dqb_curinodes   0x20 le64 dqb_bhardlimit (bytes)
//	0x28 le64 dqb_bsoftlimit  0x30 le64 dqb_curspace (bytes)
//	0x38 le64 dqb_btime       0x40 le64 dqb_itime (grace ends, Unix s)
//	0x48 le64 dqb_pad1        0x50 le64 dqb_pad2
type GlobalDquot struct {
	ID, UseCount           uint32
	IHardLimit, ISoftLimit uint64
	CurInodes              uint64
	BHardLimit, BSoftLimit uint64
	CurSpace               uint64
	BTime, ITime           uint64
}

// DecodeGlobalDquot parses a record, checking only that rec holds one.
func DecodeGlobalDquot(rec []byte) (GlobalDquot, error) {
	if len(rec) < GlobalDquotSize {
		return GlobalDquot{}, corrupt(structQuotaData, "dqb_id", "record is %d bytes, need %d", len(rec), GlobalDquotSize)
	}
	le := binary.LittleEndian
	return GlobalDquot{
		ID: le.Uint32(rec), UseCount: le.Uint32(rec[0x04:]),
		IHardLimit: le.Uint64(rec[0x08:]), ISoftLimit: le.Uint64(rec[0x10:]), CurInodes: le.Uint64(rec[0x18:]),
		BHardLimit: le.Uint64(rec[0x20:]), BSoftLimit: le.Uint64(rec[0x28:]), CurSpace: le.Uint64(rec[0x30:]),
		BTime: le.Uint64(rec[0x38:]), ITime: le.Uint64(rec[0x40:]),
	}, nil
}

// Encode writes the record, pads zeroed, into the first 88 bytes of rec.
func (d *GlobalDquot) Encode(rec []byte) {
	le := binary.LittleEndian
	_ = rec[GlobalDquotSize-1]
	le.PutUint32(rec, d.ID)
	le.PutUint32(rec[0x04:], d.UseCount)
	le.PutUint64(rec[0x08:], d.IHardLimit)
	le.PutUint64(rec[0x10:], d.ISoftLimit)
	le.PutUint64(rec[0x18:], d.CurInodes)
	le.PutUint64(rec[0x20:], d.BHardLimit)
	le.PutUint64(rec[0x28:], d.BSoftLimit)
	le.PutUint64(rec[0x30:], d.CurSpace)
	le.PutUint64(rec[0x38:], d.BTime)
	le.PutUint64(rec[0x40:], d.ITime)
	clear(rec[0x48:GlobalDquotSize])
}

// Bytes is the record's on-disk image.
func (d *GlobalDquot) Bytes() [GlobalDquotSize]byte {
	var b [GlobalDquotSize]byte
	d.Encode(b[:])
	return b
}

// ResetGraceTimes drops the grace times that no longer run: a grace time
// runs only while usage is at or over a soft limit that is set (libocfs2's
// write_release_quota_hash, the kernel's dquot rules).
func (d *GlobalDquot) ResetGraceTimes() {
	if d.ISoftLimit == 0 || d.CurInodes < d.ISoftLimit {
		d.ITime = 0
	}
	if d.BSoftLimit == 0 || d.CurSpace < d.BSoftLimit {
		d.BTime = 0
	}
}
