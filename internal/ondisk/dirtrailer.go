package ondisk

import "encoding/binary"

// DirTrailerSignature identifies a directory block trailer.
const DirTrailerSignature = "DIRTRL1\x00"

// DirTrailerSize is the size of a DirTrailer, the last bytes of its block.
const DirTrailerSize = 64

// DirTrailerCheckOffset is the offset of db_check inside the trailer; the
// check covers the whole directory block (see DirBlockCheckOffset).
const DirTrailerCheckOffset = 0x38

// TrailerOffset is where the trailer starts in a directory block, which is
// also the size of the block's entry area when it has one.
func TrailerOffset(blockSize int) int { return blockSize - DirTrailerSize }

// DirBlockCheckOffset is the offset of the trailer's block check within the
// whole directory block: SetBlockCheck(block, DirBlockCheckOffset(bs)).
func DirBlockCheckOffset(blockSize int) int {
	return TrailerOffset(blockSize) + DirTrailerCheckOffset
}

// DirHasTrailer says whether the blocks of a directory end in a trailer,
// by the rule the kernel and libocfs2 share: never for an inline directory;
// always for an indexed one; otherwise when the volume has META_ECC.
// (mkfs.ocfs2 also writes trailers in unindexed directories of volumes with
// INDEXED_DIRS, e.g. the system directory; readers treat those as an unused
// dirent, which is what the trailer's first 12 bytes look like.)
func DirHasTrailer(metaECC, inline, indexed bool) bool {
	if inline {
		return false
	}
	return indexed || metaECC
}

// DirEntryArea is the part of a directory block that holds entries: the
// whole block, or the block up to its trailer.
func DirEntryArea(block []byte, hasTrailer bool) []byte {
	if hasTrailer {
		return block[:TrailerOffset(len(block))]
	}
	return block
}

// DirTrailer is struct ocfs2_dir_block_trailer, the last 64 bytes of a
// directory block of an indexed directory or a META_ECC volume. Its first
// 12 bytes look like an unused dirent of rec_len 64, so code that does not
// know trailers skips it. Offsets within the trailer (the upstream header's
// offset comments for the fields from db_free_rec_len on are wrong; these
// are the real ones, checked on disk):
//
//	0x00 le64 db_compat_inode   0 (an unused dirent's inode)
//	0x08 le16 db_compat_rec_len 64
//	0x0A u8   db_compat_name_len 0
//	0x0B u8   db_reserved0
//	0x0C le16 db_reserved1
//	0x0E le16 db_free_rec_len   largest free space in the block (LargestFreeSpace)
//	0x10 u8[8] db_signature     "DIRTRL1\0"
//	0x18 le64 db_reserved2
//	0x20 le64 db_free_next      next block of the indexed dir's free-space list (0: end)
//	0x28 le64 db_blkno          this block
//	0x30 le64 db_parent_dinode  the directory's inode
//	0x38 BlockCheck db_check    over the whole directory block
//
// db_free_rec_len and db_free_next matter only to indexed directories (the
// dx root's dr_free_blk heads the list); mkfs.ocfs2 leaves a stale
// db_free_rec_len after adding lost+found, so do not treat a mismatch as
// corruption.
type DirTrailer struct {
	FreeRecLen   uint16
	FreeNext     uint64
	Blkno        uint64
	ParentDinode uint64
}

const structDirTrailer = "dir block trailer"

// HasDirTrailerSignature reports whether block ends in a trailer signature.
func HasDirTrailerSignature(block []byte) bool {
	if len(block) < 512 {
		return false
	}
	t := block[TrailerOffset(len(block)):]
	return string(t[0x10:0x18]) == DirTrailerSignature
}

// DecodeDirTrailer decodes the trailer at the end of a whole directory
// block. It checks the signature and that the trailer still masquerades as
// an unused dirent of rec_len 64.
func DecodeDirTrailer(block []byte) (*DirTrailer, error) {
	if len(block) < 512 {
		return nil, corrupt(structDirTrailer, "", "block is %d bytes, want at least 512", len(block))
	}
	t := block[TrailerOffset(len(block)):]
	if string(t[0x10:0x18]) != DirTrailerSignature {
		return nil, corrupt(structDirTrailer, "db_signature", "is %q, want %q", cstring(t[0x10:0x18]), "DIRTRL1")
	}
	if ino := binary.LittleEndian.Uint64(t); ino != 0 {
		return nil, corrupt(structDirTrailer, "db_compat_inode", "is %d, want 0", ino)
	}
	if rl := binary.LittleEndian.Uint16(t[0x08:]); rl != DirTrailerSize {
		return nil, corrupt(structDirTrailer, "db_compat_rec_len", "is %d, want %d", rl, DirTrailerSize)
	}
	return &DirTrailer{
		FreeRecLen:   binary.LittleEndian.Uint16(t[0x0E:]),
		FreeNext:     binary.LittleEndian.Uint64(t[0x20:]),
		Blkno:        binary.LittleEndian.Uint64(t[0x28:]),
		ParentDinode: binary.LittleEndian.Uint64(t[0x30:]),
	}, nil
}

// Encode writes the trailer into the last 64 bytes of the whole directory
// block, zeroing its reserved bytes and its check: with META_ECC, call
// SetBlockCheck(block, DirBlockCheckOffset(len(block))) after.
func (d *DirTrailer) Encode(block []byte) {
	t := block[TrailerOffset(len(block)):]
	clear(t)
	binary.LittleEndian.PutUint16(t[0x08:], DirTrailerSize)
	binary.LittleEndian.PutUint16(t[0x0E:], d.FreeRecLen)
	copy(t[0x10:], DirTrailerSignature)
	binary.LittleEndian.PutUint64(t[0x20:], d.FreeNext)
	binary.LittleEndian.PutUint64(t[0x28:], d.Blkno)
	binary.LittleEndian.PutUint64(t[0x30:], d.ParentDinode)
}

// SelfCheck verifies the trailer belongs to the block and directory it was
// read for (the kernel's ocfs2_check_dir_trailer).
func (d *DirTrailer) SelfCheck(blkno, dirInode uint64) error {
	if d.Blkno != blkno {
		return corrupt(structDirTrailer, "db_blkno", "is %d, want %d", d.Blkno, blkno)
	}
	if d.ParentDinode != dirInode {
		return corrupt(structDirTrailer, "db_parent_dinode", "is %d, want directory %d", d.ParentDinode, dirInode)
	}
	return nil
}
