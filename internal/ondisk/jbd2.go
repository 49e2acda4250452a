package ondisk

import (
	"encoding/binary"
	"fmt"
)

// JBD2Magic starts every journal metadata block (big-endian).
const JBD2Magic uint32 = 0xC03B3998

// Journal block types (h_blocktype).
const (
	JBD2DescriptorBlock uint32 = 1
	JBD2CommitBlock     uint32 = 2
	JBD2SuperblockV1    uint32 = 3
	JBD2SuperblockV2    uint32 = 4
	JBD2RevokeBlock     uint32 = 5
)

// Journal feature bits. OCFS2 uses none of the checksum features: its
// metadata checks (META_ECC) live in the blocks themselves.
const (
	JBD2FeatureCompatChecksum      uint32 = 0x1  // v1 commit checksums
	JBD2FeatureIncompatRevoke      uint32 = 0x1  // revoke blocks
	JBD2FeatureIncompat64Bit       uint32 = 0x2  // 64-bit block numbers in tags and revokes
	JBD2FeatureIncompatAsyncCommit uint32 = 0x4  // commit block may precede its data
	JBD2FeatureIncompatCsumV2      uint32 = 0x8  // per-tag and block checksums (v2)
	JBD2FeatureIncompatCsumV3      uint32 = 0x10 // per-tag and block checksums (v3)
	JBD2FeatureIncompatFastCommit  uint32 = 0x20 // ext4 fast commits

	// Supported by o2go's journal, as by ocfs2-tools: REVOKE and 64BIT.
	JBD2KnownCompat   uint32 = 0
	JBD2KnownIncompat uint32 = JBD2FeatureIncompatRevoke | JBD2FeatureIncompat64Bit
	JBD2KnownRoCompat uint32 = 0
)

// Descriptor tag flags (t_flags).
const (
	JBD2FlagEscape   uint16 = 0x1 // the logged copy had its first 4 bytes (the magic) zeroed
	JBD2FlagSameUUID uint16 = 0x2 // no UUID follows this tag
	JBD2FlagDeleted  uint16 = 0x4 // block deleted by this transaction (unused by jbd2 today)
	JBD2FlagLastTag  uint16 = 0x8 // last tag of the descriptor
)

// Sizes.
const (
	JournalHeaderSize     = 12
	JournalSuperBlockSize = 1024
	JournalMaxUsers       = 48
	JournalUUIDSize       = 16
	JournalTagSize32      = 8
	JournalTagSize64      = 12
	RevokeHeaderSize      = 16
	structJournalSB       = "journal superblock"
	structDescriptor      = "journal descriptor block"
	structCommit          = "journal commit block"
	structRevoke          = "journal revoke block"
	structJournalHdr      = "journal header"
)

// JournalHeader is journal_header_t, the first 12 bytes of every journal
// metadata block (big-endian):
//
//	0x00 be32 h_magic      JBD2Magic
//	0x04 be32 h_blocktype  JBD2*Block / JBD2SuperblockV*
//	0x08 be32 h_sequence   transaction ID (0 in the superblock)
type JournalHeader struct {
	BlockType uint32
	Sequence  uint32
}

// DecodeJournalHeader decodes a header; a block without the magic is not a
// journal metadata block (during replay: the end of the log).
func DecodeJournalHeader(b []byte) (JournalHeader, error) {
	if len(b) < JournalHeaderSize {
		return JournalHeader{}, corrupt(structJournalHdr, "h_magic", "block is %d bytes", len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != JBD2Magic {
		return JournalHeader{}, corrupt(structJournalHdr, "h_magic", "is 0x%08x, want 0x%08x", m, JBD2Magic)
	}
	return JournalHeader{BlockType: binary.BigEndian.Uint32(b[4:]), Sequence: binary.BigEndian.Uint32(b[8:])}, nil
}

// Encode writes the header with the magic into b.
func (h JournalHeader) Encode(b []byte) {
	binary.BigEndian.PutUint32(b, JBD2Magic)
	binary.BigEndian.PutUint32(b[4:], h.BlockType)
	binary.BigEndian.PutUint32(b[8:], h.Sequence)
}

// IsJournalBlock reports whether b starts with the JBD2 magic.
func IsJournalBlock(b []byte) bool {
	return len(b) >= 4 && binary.BigEndian.Uint32(b) == JBD2Magic
}

func expectJournalType(b []byte, structName string, want uint32) (JournalHeader, error) {
	h, err := DecodeJournalHeader(b)
	if err != nil {
		ce := err.(*CorruptError)
		ce.Struct = structName
		return h, ce
	}
	if h.BlockType != want {
		return h, corrupt(structName, "h_blocktype", "is %d, want %d", h.BlockType, want)
	}
	return h, nil
}

// JournalSuperBlock is journal_superblock_t, block 0 of every journal:NNNN
// file (1024 bytes used, big-endian; V2 fields are ignored in V1):
//
//	0x000 JournalHeader s_header     blocktype 4 (V2; 3 = V1), sequence 0
//	0x00C be32 s_blocksize            must equal the fs block size
//	0x010 be32 s_maxlen               blocks in the journal
//	0x014 be32 s_first                first log block (1)
//	0x018 be32 s_sequence             first transaction ID expected in the log
//	0x01C be32 s_start                first log block of the log; 0 = empty (clean)
//	0x020 be32 s_errno                error recorded by an abort
//	0x024 be32 s_feature_compat
//	0x028 be32 s_feature_incompat     JBD2FeatureIncompat*
//	0x02C be32 s_feature_ro_compat
//	0x030 u8[16] s_uuid               = the volume's UUID (mkfs.ocfs2)
//	0x040 be32 s_nr_users             file systems sharing the log (1)
//	0x044 be32 s_dynsuper
//	0x048 be32 s_max_transaction
//	0x04C be32 s_max_trans_data
//	0x050 u8   s_checksum_type
//	0x051 u8[3] s_padding2
//	0x054 be32 s_num_fc_blks          fast-commit blocks (ext4)
//	0x058 be32 s_head                 head of the log when clean (ext4)
//	0x05C be32 s_padding[40]
//	0x0FC be32 s_checksum             superblock checksum (csum v2/v3 only)
//	0x100 u8[16*48] s_users           UUIDs of the sharing file systems
//
// mkfs.ocfs2 writes nr_users 1 with an all-zero s_users[0], s_start 1 and
// s_sequence 1; a clean unmount or fsck leaves s_start 0. With 512-byte
// blocks the superblock spans journal blocks 0 and 1 (s_first is then 2):
// decode it from the first 1024 bytes of the file.
type JournalSuperBlock struct {
	BlockType       uint32
	Sequence        uint32 // h_sequence
	BlockSize       uint32
	MaxLen          uint32
	First           uint32
	SSequence       uint32 // s_sequence
	Start           uint32
	Errno           int32
	FeatureCompat   uint32
	FeatureIncompat uint32
	FeatureRoCompat uint32
	UUID            [16]byte
	DynSuper        uint32
	MaxTransaction  uint32
	MaxTransData    uint32
	ChecksumType    uint8
	NumFCBlocks     uint32
	Head            uint32
	Checksum        uint32
	Users           [][16]byte // len == s_nr_users
}

// DecodeJournalSuperBlock decodes the journal superblock at the start of b.
func DecodeJournalSuperBlock(b []byte) (*JournalSuperBlock, error) {
	if len(b) < JournalSuperBlockSize {
		return nil, corrupt(structJournalSB, "", "is %d bytes, want %d", len(b), JournalSuperBlockSize)
	}
	h, err := DecodeJournalHeader(b)
	if err != nil {
		ce := err.(*CorruptError)
		ce.Struct = structJournalSB
		return nil, ce
	}
	if h.BlockType != JBD2SuperblockV1 && h.BlockType != JBD2SuperblockV2 {
		return nil, corrupt(structJournalSB, "h_blocktype", "is %d, want %d (V2) or %d (V1)", h.BlockType, JBD2SuperblockV2, JBD2SuperblockV1)
	}
	be := binary.BigEndian
	s := &JournalSuperBlock{
		BlockType:       h.BlockType,
		Sequence:        h.Sequence,
		BlockSize:       be.Uint32(b[0x0C:]),
		MaxLen:          be.Uint32(b[0x10:]),
		First:           be.Uint32(b[0x14:]),
		SSequence:       be.Uint32(b[0x18:]),
		Start:           be.Uint32(b[0x1C:]),
		Errno:           int32(be.Uint32(b[0x20:])),
		FeatureCompat:   be.Uint32(b[0x24:]),
		FeatureIncompat: be.Uint32(b[0x28:]),
		FeatureRoCompat: be.Uint32(b[0x2C:]),
		DynSuper:        be.Uint32(b[0x44:]),
		MaxTransaction:  be.Uint32(b[0x48:]),
		MaxTransData:    be.Uint32(b[0x4C:]),
		ChecksumType:    b[0x50],
		NumFCBlocks:     be.Uint32(b[0x54:]),
		Head:            be.Uint32(b[0x58:]),
		Checksum:        be.Uint32(b[0xFC:]),
	}
	copy(s.UUID[:], b[0x30:0x40])
	n := be.Uint32(b[0x40:])
	if n > JournalMaxUsers {
		return nil, corrupt(structJournalSB, "s_nr_users", "is %d, at most %d", n, JournalMaxUsers)
	}
	s.Users = make([][16]byte, n)
	for i := range s.Users {
		copy(s.Users[i][:], b[0x100+i*16:])
	}
	if s.BlockSize < 512 || s.BlockSize > 65536 || s.BlockSize&(s.BlockSize-1) != 0 {
		return nil, corrupt(structJournalSB, "s_blocksize", "is %d, not a power of two in 512..65536", s.BlockSize)
	}
	if s.First == 0 || s.First >= s.MaxLen {
		return nil, corrupt(structJournalSB, "s_first", "is %d, want 1..s_maxlen-1 (s_maxlen %d)", s.First, s.MaxLen)
	}
	// s_start is not checked against s_first: mkfs.ocfs2 1.8.7 writes
	// s_start 1 with s_first 2 on 512-byte blocks, and jbd2 then finds no
	// journal block at block 1 (the superblock's second half): empty log.
	if s.Start >= s.MaxLen {
		return nil, corrupt(structJournalSB, "s_start", "is %d, beyond the journal's %d blocks", s.Start, s.MaxLen)
	}
	return s, nil
}

// Encode writes the 1024-byte superblock into b, zeroing the padding and
// the unused s_users slots.
func (s *JournalSuperBlock) Encode(b []byte) {
	be := binary.BigEndian
	b = b[:JournalSuperBlockSize]
	clear(b)
	JournalHeader{BlockType: s.BlockType, Sequence: s.Sequence}.Encode(b)
	be.PutUint32(b[0x0C:], s.BlockSize)
	be.PutUint32(b[0x10:], s.MaxLen)
	be.PutUint32(b[0x14:], s.First)
	be.PutUint32(b[0x18:], s.SSequence)
	be.PutUint32(b[0x1C:], s.Start)
	be.PutUint32(b[0x20:], uint32(s.Errno))
	be.PutUint32(b[0x24:], s.FeatureCompat)
	be.PutUint32(b[0x28:], s.FeatureIncompat)
	be.PutUint32(b[0x2C:], s.FeatureRoCompat)
	copy(b[0x30:], s.UUID[:])
	be.PutUint32(b[0x40:], uint32(len(s.Users)))
	be.PutUint32(b[0x44:], s.DynSuper)
	be.PutUint32(b[0x48:], s.MaxTransaction)
	be.PutUint32(b[0x4C:], s.MaxTransData)
	b[0x50] = s.ChecksumType
	be.PutUint32(b[0x54:], s.NumFCBlocks)
	be.PutUint32(b[0x58:], s.Head)
	be.PutUint32(b[0xFC:], s.Checksum)
	for i, u := range s.Users {
		copy(b[0x100+i*16:], u[:])
	}
}

// UnsupportedIncompat returns the incompat bits o2go's journal cannot handle.
func (s *JournalSuperBlock) UnsupportedIncompat() uint32 {
	if s.BlockType == JBD2SuperblockV1 {
		return 0
	}
	return s.FeatureIncompat &^ JBD2KnownIncompat
}

// Has64Bit reports whether tags and revoke records carry 64-bit blocks.
func (s *JournalSuperBlock) Has64Bit() bool {
	return s.BlockType == JBD2SuperblockV2 && s.FeatureIncompat&JBD2FeatureIncompat64Bit != 0
}

// CheckFor checks the superblock against the journal file it was read
// from: the fs block size and the file's length in blocks.
func (s *JournalSuperBlock) CheckFor(fsBlockSize int, fileBlocks uint64) error {
	if int(s.BlockSize) != fsBlockSize {
		return corrupt(structJournalSB, "s_blocksize", "is %d, want the volume's %d", s.BlockSize, fsBlockSize)
	}
	if uint64(s.MaxLen) > fileBlocks {
		return corrupt(structJournalSB, "s_maxlen", "is %d, but the journal file has only %d blocks", s.MaxLen, fileBlocks)
	}
	return nil
}

// Clean reports whether the log is empty (nothing to replay).
func (s *JournalSuperBlock) Clean() bool { return s.Start == 0 }

// JournalTagSize is the size of a descriptor tag: 8 bytes, 12 with 64BIT.
func JournalTagSize(is64 bool) int {
	if is64 {
		return JournalTagSize64
	}
	return JournalTagSize32
}

// JournalBlockTag is journal_block_tag_t without checksums (what OCFS2
// journals use), one logged block in a descriptor (big-endian):
//
//	0x00 be32 t_blocknr       fs block the logged copy belongs to (low 32 bits)
//	0x04 be16 t_checksum      0 (csum v2 only)
//	0x06 be16 t_flags         JBD2Flag*
//	0x08 be32 t_blocknr_high  high 32 bits (64BIT journals only)
//	     u8[16] uuid          after the tag unless JBD2FlagSameUUID
//
// ocfs2-tools reads t_flags as a be32 at 0x04; with t_checksum 0 that is the
// same value.
type JournalBlockTag struct {
	Blocknr uint64
	Flags   uint16
	UUID    [16]byte // present on disk only when Flags lacks JBD2FlagSameUUID
}

// DescriptorBlock is a descriptor block (type 1): a header followed by the
// tags of the blocks logged after it, in log order.
//
//	0x00 JournalHeader  blocktype 1, the transaction's sequence
//	0x0C tags...        each JournalTagSize bytes, + 16-byte UUID when not SAME_UUID;
//	                    the last carries JBD2FlagLastTag
type DescriptorBlock struct {
	Sequence uint32
	Tags     []JournalBlockTag
}

// DecodeDescriptorBlock parses a descriptor block of a journal whose tags
// are 64-bit when is64. Like jbd2's recovery it reads tags while a whole
// tag still fits in the block, stopping after the one flagged LAST_TAG; a
// UUID that would run past the block is left zero.
func DecodeDescriptorBlock(b []byte, is64 bool) (*DescriptorBlock, error) {
	h, err := expectJournalType(b, structDescriptor, JBD2DescriptorBlock)
	if err != nil {
		return nil, err
	}
	d := &DescriptorBlock{Sequence: h.Sequence}
	ts := JournalTagSize(is64)
	for p := JournalHeaderSize; p+ts <= len(b); {
		t := JournalBlockTag{
			Blocknr: uint64(binary.BigEndian.Uint32(b[p:])),
			Flags:   binary.BigEndian.Uint16(b[p+6:]),
		}
		if is64 {
			t.Blocknr |= uint64(binary.BigEndian.Uint32(b[p+8:])) << 32
		}
		p += ts
		if t.Flags&JBD2FlagSameUUID == 0 {
			if p+JournalUUIDSize <= len(b) {
				copy(t.UUID[:], b[p:])
			}
			p += JournalUUIDSize
		}
		d.Tags = append(d.Tags, t)
		if t.Flags&JBD2FlagLastTag != 0 {
			break
		}
	}
	if len(d.Tags) == 0 {
		return nil, corrupt(structDescriptor, "tags", "block of %d bytes has no room for a tag", len(b))
	}
	return d, nil
}

// DescriptorBytes is the space the tags take after the header.
func (d *DescriptorBlock) DescriptorBytes(is64 bool) int {
	n := 0
	for _, t := range d.Tags {
		n += JournalTagSize(is64)
		if t.Flags&JBD2FlagSameUUID == 0 {
			n += JournalUUIDSize
		}
	}
	return n
}

// DescriptorCapacity is how many tags jbd2 packs into one descriptor block
// of blockSize bytes: the first tag carries the UUID, the rest SAME_UUID,
// and jbd2 closes the block once fewer than tag+16 bytes remain. That is
// floor((blockSize - 44) / tagSize): 506 at 4 KiB with 32-bit tags.
func DescriptorCapacity(blockSize int, is64 bool) int {
	return (blockSize - JournalHeaderSize - 2*JournalUUIDSize) / JournalTagSize(is64)
}

// SetStandardTagFlags sets the flags jbd2 gives a descriptor's tags: the
// first carries the UUID, every other one SAME_UUID, the last LAST_TAG.
// ESCAPE and DELETED are kept.
func (d *DescriptorBlock) SetStandardTagFlags() {
	for i := range d.Tags {
		f := d.Tags[i].Flags &^ (JBD2FlagSameUUID | JBD2FlagLastTag)
		if i > 0 {
			f |= JBD2FlagSameUUID
		}
		if i == len(d.Tags)-1 {
			f |= JBD2FlagLastTag
		}
		d.Tags[i].Flags = f
	}
}

// Encode writes the descriptor into b (one whole journal block) and zeroes
// the rest. Flags are written as given (see SetStandardTagFlags). It fails
// when the tags do not fit or a 32-bit journal is given a block number
// above 2^32.
func (d *DescriptorBlock) Encode(b []byte, is64 bool) error {
	if n := JournalHeaderSize + d.DescriptorBytes(is64); n > len(b) {
		return fmt.Errorf("journal descriptor: %d tags need %d bytes, block has %d", len(d.Tags), n, len(b))
	}
	clear(b)
	JournalHeader{BlockType: JBD2DescriptorBlock, Sequence: d.Sequence}.Encode(b)
	ts := JournalTagSize(is64)
	p := JournalHeaderSize
	for i, t := range d.Tags {
		if !is64 && t.Blocknr>>32 != 0 {
			return fmt.Errorf("journal descriptor: tag %d: block %d needs a 64-bit journal", i, t.Blocknr)
		}
		binary.BigEndian.PutUint32(b[p:], uint32(t.Blocknr))
		binary.BigEndian.PutUint16(b[p+6:], t.Flags)
		if is64 {
			binary.BigEndian.PutUint32(b[p+8:], uint32(t.Blocknr>>32))
		}
		p += ts
		if t.Flags&JBD2FlagSameUUID == 0 {
			copy(b[p:], t.UUID[:])
			p += JournalUUIDSize
		}
	}
	return nil
}

// EscapeJournalData prepares a copy of a block for logging: when it begins
// with the JBD2 magic, the magic is zeroed (in b) and true is returned; the
// tag must then carry JBD2FlagEscape.
func EscapeJournalData(b []byte) bool {
	if !IsJournalBlock(b) {
		return false
	}
	clear(b[:4])
	return true
}

// UnescapeJournalData restores the magic of a logged block whose tag has
// JBD2FlagEscape, before it is written home during replay.
func UnescapeJournalData(b []byte) {
	binary.BigEndian.PutUint32(b, JBD2Magic)
}

// CommitBlock is struct commit_header (type 2), which ends a transaction:
//
//	0x00 JournalHeader       blocktype 2, the transaction's sequence
//	0x0C u8   h_chksum_type  0 without checksums
//	0x0D u8   h_chksum_size
//	0x0E u8[2] h_padding
//	0x10 be32 h_chksum[8]
//	0x30 be64 h_commit_sec   commit time, seconds
//	0x38 be32 h_commit_nsec  nanoseconds
type CommitBlock struct {
	Sequence     uint32
	ChecksumType uint8
	ChecksumSize uint8
	Checksum     [8]uint32
	CommitSec    uint64
	CommitNsec   uint32
}

const commitBlockSize = 0x3C

// DecodeCommitBlock decodes a commit block.
func DecodeCommitBlock(b []byte) (*CommitBlock, error) {
	if len(b) < commitBlockSize {
		return nil, corrupt(structCommit, "", "is %d bytes, want at least %d", len(b), commitBlockSize)
	}
	h, err := expectJournalType(b, structCommit, JBD2CommitBlock)
	if err != nil {
		return nil, err
	}
	c := &CommitBlock{
		Sequence:     h.Sequence,
		ChecksumType: b[0x0C],
		ChecksumSize: b[0x0D],
		CommitSec:    binary.BigEndian.Uint64(b[0x30:]),
		CommitNsec:   binary.BigEndian.Uint32(b[0x38:]),
	}
	for i := range c.Checksum {
		c.Checksum[i] = binary.BigEndian.Uint32(b[0x10+4*i:])
	}
	if c.CommitNsec >= 1_000_000_000 {
		return nil, corrupt(structCommit, "h_commit_nsec", "is %d, not below one second", c.CommitNsec)
	}
	return c, nil
}

// Encode writes the commit block into b (one whole journal block) and zeroes
// the rest.
func (c *CommitBlock) Encode(b []byte) {
	clear(b)
	JournalHeader{BlockType: JBD2CommitBlock, Sequence: c.Sequence}.Encode(b)
	b[0x0C] = c.ChecksumType
	b[0x0D] = c.ChecksumSize
	for i, v := range c.Checksum {
		binary.BigEndian.PutUint32(b[0x10+4*i:], v)
	}
	binary.BigEndian.PutUint64(b[0x30:], c.CommitSec)
	binary.BigEndian.PutUint32(b[0x38:], c.CommitNsec)
}

// RevokeBlock is jbd2_journal_revoke_header_t (type 5) with its records:
// blocks whose logged copies in this or earlier transactions must not be
// replayed.
//
//	0x00 JournalHeader  blocktype 5, the transaction's sequence
//	0x0C be32 r_count   bytes used, including this 16-byte header
//	0x10 be32 or be64 (64BIT) block numbers
type RevokeBlock struct {
	Sequence uint32
	Blocks   []uint64
}

// RevokeCapacity is how many records fit in one revoke block.
func RevokeCapacity(blockSize int, is64 bool) int {
	return (blockSize - RevokeHeaderSize) / revokeRecSize(is64)
}

func revokeRecSize(is64 bool) int {
	if is64 {
		return 8
	}
	return 4
}

// DecodeRevokeBlock decodes a revoke block. As in jbd2's recovery, a
// partial record at the end of r_count is ignored; r_count beyond the
// block or below the header is corrupt.
func DecodeRevokeBlock(b []byte, is64 bool) (*RevokeBlock, error) {
	if len(b) < RevokeHeaderSize {
		return nil, corrupt(structRevoke, "", "is %d bytes, want at least %d", len(b), RevokeHeaderSize)
	}
	h, err := expectJournalType(b, structRevoke, JBD2RevokeBlock)
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(b[0x0C:]))
	if n < RevokeHeaderSize || n > len(b) {
		return nil, corrupt(structRevoke, "r_count", "is %d, want %d..%d", n, RevokeHeaderSize, len(b))
	}
	rs := revokeRecSize(is64)
	r := &RevokeBlock{Sequence: h.Sequence, Blocks: make([]uint64, 0, (n-RevokeHeaderSize)/rs)}
	for p := RevokeHeaderSize; p+rs <= n; p += rs {
		if is64 {
			r.Blocks = append(r.Blocks, binary.BigEndian.Uint64(b[p:]))
		} else {
			r.Blocks = append(r.Blocks, uint64(binary.BigEndian.Uint32(b[p:])))
		}
	}
	return r, nil
}

// Encode writes the revoke block into b (one whole journal block) and
// zeroes the rest. It fails when the records do not fit or a 32-bit
// journal is given a block number above 2^32.
func (r *RevokeBlock) Encode(b []byte, is64 bool) error {
	if len(r.Blocks) > RevokeCapacity(len(b), is64) {
		return fmt.Errorf("journal revoke block: %d records, at most %d fit", len(r.Blocks), RevokeCapacity(len(b), is64))
	}
	clear(b)
	JournalHeader{BlockType: JBD2RevokeBlock, Sequence: r.Sequence}.Encode(b)
	rs := revokeRecSize(is64)
	p := RevokeHeaderSize
	for i, blk := range r.Blocks {
		if is64 {
			binary.BigEndian.PutUint64(b[p:], blk)
		} else {
			if blk>>32 != 0 {
				return fmt.Errorf("journal revoke block: record %d: block %d needs a 64-bit journal", i, blk)
			}
			binary.BigEndian.PutUint32(b[p:], uint32(blk))
		}
		p += rs
	}
	binary.BigEndian.PutUint32(b[0x0C:], uint32(p))
	return nil
}
