package ondisk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Directory entry sizes and limits.
const (
	DirEntryHeaderSize = 12  // bytes before the name
	MaxNameLen         = 255 // longest name a dirent can hold (u8 name_len)
	DirEntryMinRecLen  = 16  // RecLen(1): no entry is shorter
	dirRecAlign        = 4
)

// The dirent file_type values (FileTypeReg, FileTypeDir, ...) and
// FileTypeOfMode live with the dinode's mode bits in dinode.go.

// RecLen is the smallest rec_len of an entry whose name is nameLen bytes:
// the 12-byte header plus the name, rounded up to 4 (OCFS2_DIR_REC_LEN).
func RecLen(nameLen int) int {
	return (nameLen + DirEntryHeaderSize + dirRecAlign - 1) &^ (dirRecAlign - 1)
}

// DirEntry is struct ocfs2_dir_entry, one name in a directory (packed,
// little-endian, 4-byte aligned within its area):
//
//	0x00 le64 inode      dinode block number; 0 = unused slot
//	0x08 le16 rec_len    bytes to the next entry (>= RecLen(name_len), multiple of 4)
//	0x0A u8   name_len   bytes of name
//	0x0B u8   file_type  FileType* (0..7; FileTypeOfMode of the inode's mode)
//	0x0C u8   name[name_len]  no NUL required
//
// Entries chain by rec_len from the start of a directory area to its end:
// the area is a whole directory block, the block minus its 64-byte
// DirTrailer, or the inline-data bytes of an inline directory. Space an
// entry does not need (rec_len - RecLen(name_len)) is free for a new entry.
type DirEntry struct {
	Inode    uint64
	RecLen   uint16
	FileType uint8
	Name     string
}

// Used reports whether the entry names an inode (inode != 0).
func (e DirEntry) Used() bool { return e.Inode != 0 }

// Slack is the free space inside the entry: all of it when unused,
// otherwise what its name does not need (ocfs2_figure_dirent_hole).
func (e DirEntry) Slack() int {
	if e.Inode == 0 {
		return int(e.RecLen)
	}
	return int(e.RecLen) - e.minRecLen()
}

// minRecLen is the rec_len the entry can be cut back to: RecLen of its
// name, but never below DirEntryMinRecLen (a used entry with an empty name
// is damaged, and cutting it to 12 bytes would make it invalid).
func (e DirEntry) minRecLen() int { return max(RecLen(len(e.Name)), DirEntryMinRecLen) }

const structDirEntry = "dir entry"

// checkDirEntryAt applies the kernel's ocfs2_check_dir_entry rules to the
// entry at off in area and returns its rec_len and name_len.
func checkDirEntryAt(area []byte, off int) (recLen, nameLen int, err error) {
	if off < 0 || off > len(area) || len(area)-off < DirEntryMinRecLen {
		return 0, 0, corrupt(structDirEntry, "rec_len", "entry at offset %d: too close to the end of the %d-byte area", off, len(area))
	}
	recLen = int(binary.LittleEndian.Uint16(area[off+8:]))
	nameLen = int(area[off+10])
	switch {
	case recLen < DirEntryMinRecLen:
		return 0, 0, corrupt(structDirEntry, "rec_len", "entry at offset %d: rec_len %d is smaller than the minimum %d", off, recLen, DirEntryMinRecLen)
	case recLen%dirRecAlign != 0:
		return 0, 0, corrupt(structDirEntry, "rec_len", "entry at offset %d: rec_len %d is not a multiple of 4", off, recLen)
	case recLen < RecLen(nameLen):
		return 0, 0, corrupt(structDirEntry, "name_len", "entry at offset %d: rec_len %d is too small for name_len %d", off, recLen, nameLen)
	case off+recLen > len(area):
		return 0, 0, corrupt(structDirEntry, "rec_len", "entry at offset %d: rec_len %d crosses the end of the %d-byte area", off, recLen, len(area))
	}
	return recLen, nameLen, nil
}

func decodeDirEntry(area []byte, off, recLen, nameLen int) DirEntry {
	return DirEntry{
		Inode:    binary.LittleEndian.Uint64(area[off:]),
		RecLen:   uint16(recLen),
		FileType: area[off+11],
		Name:     string(area[off+DirEntryHeaderSize : off+DirEntryHeaderSize+nameLen]),
	}
}

// DecodeDirEntry decodes and checks the single entry at offset off of area.
func DecodeDirEntry(area []byte, off int) (DirEntry, error) {
	recLen, nameLen, err := checkDirEntryAt(area, off)
	if err != nil {
		return DirEntry{}, err
	}
	return decodeDirEntry(area, off, recLen, nameLen), nil
}

// Encode writes the entry's header and name at the start of b and zeroes
// the rest of its RecLen bytes.
func (e DirEntry) Encode(b []byte) {
	binary.LittleEndian.PutUint64(b, e.Inode)
	binary.LittleEndian.PutUint16(b[8:], e.RecLen)
	b[10] = uint8(len(e.Name))
	b[11] = e.FileType
	n := copy(b[DirEntryHeaderSize:], e.Name)
	clear(b[DirEntryHeaderSize+n : e.RecLen])
}

// DirIter walks the entries of one directory area in on-disk order,
// checking each one as the kernel does. Use it as
//
//	it := NewDirIter(area)
//	for it.Next() { off, e := it.Offset(), it.Entry(); ... }
//	if err := it.Err(); err != nil { ... }
//
// Unused entries (inode 0) are returned too; skip them with Used. The walk
// stops at the first bad entry; Err then returns a CorruptError naming its
// offset. The area must not include a DirTrailer.
type DirIter struct {
	area []byte
	next int
	off  int
	e    DirEntry
	err  error
}

// NewDirIter starts a walk over area.
func NewDirIter(area []byte) *DirIter { return &DirIter{area: area, off: -1} }

// Next advances to the next entry and reports whether there is one.
func (it *DirIter) Next() bool {
	if it.err != nil || it.next >= len(it.area) {
		return false
	}
	recLen, nameLen, err := checkDirEntryAt(it.area, it.next)
	if err != nil {
		it.err = err
		return false
	}
	it.off = it.next
	it.e = decodeDirEntry(it.area, it.next, recLen, nameLen)
	it.next += recLen
	return true
}

// Offset is the byte offset of the current entry within the area.
func (it *DirIter) Offset() int { return it.off }

// Entry is the current entry.
func (it *DirIter) Entry() DirEntry { return it.e }

// Err is the corruption that stopped the walk, or nil.
func (it *DirIter) Err() error { return it.err }

// CheckDirArea walks the whole area and returns the first bad entry.
func CheckDirArea(area []byte) error {
	it := NewDirIter(area)
	for it.Next() {
	}
	return it.Err()
}

// DirEntries decodes every entry of the area (used and unused) with its offset.
func DirEntries(area []byte) (offs []int, entries []DirEntry, err error) {
	it := NewDirIter(area)
	for it.Next() {
		offs = append(offs, it.Offset())
		entries = append(entries, it.Entry())
	}
	return offs, entries, it.Err()
}

// FindDirEntry looks name up among the used entries of area.
func FindDirEntry(area []byte, name string) (off int, e DirEntry, found bool, err error) {
	it := NewDirIter(area)
	for it.Next() {
		if e := it.Entry(); e.Used() && e.Name == name {
			return it.Offset(), e, true, nil
		}
	}
	return 0, DirEntry{}, false, it.Err()
}

// LargestFreeSpace is the biggest Slack of any entry in area, or 0 when no
// entry has room for even a one-character name: the value a directory
// block trailer keeps in db_free_rec_len.
func LargestFreeSpace(area []byte) (int, error) {
	largest := 0
	it := NewDirIter(area)
	for it.Next() {
		largest = max(largest, it.Entry().Slack())
	}
	if err := it.Err(); err != nil {
		return 0, err
	}
	if largest < DirEntryMinRecLen {
		return 0, nil
	}
	return largest, nil
}

// ErrDirAreaFull says a directory area has no slot big enough for a new
// entry: the caller must try another block or grow the directory.
var ErrDirAreaFull = errors.New("no room for the entry in this directory area")

// ValidateName checks that name can be stored in a dirent: 1..255 bytes,
// no '/' and no NUL (fsck.ocfs2 rejects those as DIRENT_NAME_CHARS).
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("directory entry name is %d bytes, want 1..%d", len(name), MaxNameLen)
	}
	if strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("directory entry name %q contains '/' or NUL", name)
	}
	return nil
}

// InsertDirEntry stores a new entry for name in the first slot of area that
// can take it, as the kernel's __ocfs2_add_entry does: an unused entry
// whose rec_len is big enough is reused whole; a used entry with enough
// Slack is cut back to RecLen(its name) and the new entry takes the rest.
// It returns the new entry's offset, ErrDirAreaFull when no slot fits, or a
// CorruptError when the area is damaged. It does not look for duplicates:
// the caller checks the whole directory first.
func InsertDirEntry(area []byte, inode uint64, fileType uint8, name string) (int, error) {
	if err := ValidateName(name); err != nil {
		return 0, err
	}
	if inode == 0 {
		return 0, errors.New("directory entry inode is 0")
	}
	need := RecLen(len(name))
	it := NewDirIter(area)
	for it.Next() {
		off, e := it.Offset(), it.Entry()
		switch {
		case !e.Used() && int(e.RecLen) >= need:
			DirEntry{Inode: inode, RecLen: e.RecLen, FileType: fileType, Name: name}.Encode(area[off:])
			return off, nil
		case e.Used() && e.Slack() >= need:
			own := e.minRecLen()
			binary.LittleEndian.PutUint16(area[off+8:], uint16(own))
			DirEntry{Inode: inode, RecLen: uint16(int(e.RecLen) - own), FileType: fileType, Name: name}.Encode(area[off+own:])
			return off + own, nil
		}
	}
	if err := it.Err(); err != nil {
		return 0, err
	}
	return 0, ErrDirAreaFull
}

// DeleteDirEntry removes the used entry at offset off, as the kernel's
// __ocfs2_delete_entry does: the previous entry absorbs its rec_len, or,
// when it is the first entry of the area, its inode is set to 0.
func DeleteDirEntry(area []byte, off int) error {
	prev := -1
	it := NewDirIter(area)
	for it.Next() {
		if it.Offset() == off {
			if !it.Entry().Used() {
				return fmt.Errorf("directory entry at offset %d is already unused", off)
			}
			if prev < 0 {
				binary.LittleEndian.PutUint64(area[off:], 0)
				return nil
			}
			pl := binary.LittleEndian.Uint16(area[prev+8:])
			binary.LittleEndian.PutUint16(area[prev+8:], pl+it.Entry().RecLen)
			return nil
		}
		if it.Offset() > off {
			break
		}
		prev = it.Offset()
	}
	if err := it.Err(); err != nil {
		return err
	}
	return fmt.Errorf("no directory entry starts at offset %d", off)
}

// InitDirArea formats area as the first block (or inline data) of a new
// directory: "." for self with rec_len 16 and ".." for parent taking the
// rest, as ocfs2_fill_initial_dirents does. area must be a real directory
// area: a multiple of 4 bytes, 32..65532 long.
func InitDirArea(area []byte, self, parent uint64) {
	dot := DirEntry{Inode: self, RecLen: uint16(RecLen(1)), FileType: FileTypeDir, Name: "."}
	dot.Encode(area)
	DirEntry{Inode: parent, RecLen: uint16(len(area) - RecLen(1)), FileType: FileTypeDir, Name: ".."}.Encode(area[dot.RecLen:])
}

// InitEmptyDirArea formats area as an extra, empty directory block: one
// unused entry spanning the whole area (a multiple of 4, 16..65532 bytes).
func InitEmptyDirArea(area []byte) {
	DirEntry{RecLen: uint16(len(area))}.Encode(area)
}
