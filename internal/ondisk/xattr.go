package ondisk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Xattr sizes and limits.
const (
	XattrHeaderSize      = 16
	XattrEntrySize       = 16
	XattrInlineValueMax  = 80   // OCFS2_XATTR_INLINE_SIZE: longer values live in clusters
	XattrValueRootSize   = 48   // a value root with room for one extent record
	XattrBucketSize      = 4096 // buckets are 4 KiB whatever the block size
	XattrBucketCheckOff  = 0x08 // xh_check, over the whole bucket
	XattrMaxNameLen      = 255
	XattrEntryLocal      = 0x80 // xe_type: the value is stored after the name
	XattrTypeMask        = 0x7F // xe_type: the name prefix index
	structXattrHeader    = "xattr header"
	structXattrBlock     = "xattr block"
	structXattrBucket    = "xattr bucket"
	structXattrInline    = "inline xattr area"
	structXattrValueRoot = "xattr value root"
)

// Name prefix indexes stored in xe_type & 0x7F.
const (
	XattrIndexUser            uint8 = 1 // "user."
	XattrIndexPosixACLAccess  uint8 = 2 // "system.posix_acl_access" (name suffix is empty)
	XattrIndexPosixACLDefault uint8 = 3 // "system.posix_acl_default" (name suffix is empty)
	XattrIndexTrusted         uint8 = 4 // "trusted."
	XattrIndexSecurity        uint8 = 5 // "security."
	xattrIndexMax                   = 6
	XattrNamePosixACLAccess         = "system.posix_acl_access"
	XattrNamePosixACLDefault        = "system.posix_acl_default"
)

// XattrPrefixes maps a prefix index to the prefix of the full attribute
// name; for the two ACL indexes the prefix is the whole name.
var XattrPrefixes = map[uint8]string{
	XattrIndexUser:            "user.",
	XattrIndexPosixACLAccess:  XattrNamePosixACLAccess,
	XattrIndexPosixACLDefault: XattrNamePosixACLDefault,
	XattrIndexTrusted:         "trusted.",
	XattrIndexSecurity:        "security.",
}

// SplitXattrName splits a full attribute name ("user.foo") into the prefix
// index and the suffix stored on disk ("foo"). The ACL names have an empty
// suffix. ok is false for names OCFS2 cannot store (unknown namespace, or a
// namespace prefix with nothing after it).
func SplitXattrName(full string) (index uint8, suffix string, ok bool) {
	switch full {
	case XattrNamePosixACLAccess:
		return XattrIndexPosixACLAccess, "", true
	case XattrNamePosixACLDefault:
		return XattrIndexPosixACLDefault, "", true
	}
	for _, i := range []uint8{XattrIndexUser, XattrIndexTrusted, XattrIndexSecurity} {
		p := XattrPrefixes[i]
		if strings.HasPrefix(full, p) && len(full) > len(p) {
			return i, full[len(p):], true
		}
	}
	return 0, "", false
}

// JoinXattrName is the inverse of SplitXattrName.
func JoinXattrName(index uint8, suffix string) (string, bool) {
	p, ok := XattrPrefixes[index]
	if !ok {
		return "", false
	}
	return p + suffix, true
}

// XattrNameHash is xe_name_hash: the rotate-xor hash of the name suffix
// (without its prefix) seeded with s_uuid_hash (UUIDHash of the volume
// UUID, whose bytes are taken unsigned). Name bytes are C chars:
// see CharSignedness (ocfs2-tools on x86 sign-extends).
func XattrNameHash(uuidHash uint32, suffix []byte, cs CharSignedness) uint32 {
	h := uuidHash
	for _, c := range suffix {
		h = h<<5 ^ h>>27 ^ cs.widen(c)
	}
	return h
}

// xattrRound4 is OCFS2_XATTR_SIZE: name and value lengths rounded up to 4.
func xattrRound4(n uint64) uint64 { return (n + 3) &^ 3 }

// XattrEntry is struct ocfs2_xattr_entry (16 bytes) plus the name and value
// it points at:
//
//	0x00 le32 xe_name_hash   XattrNameHash of the suffix
//	0x04 le16 xe_name_offset where the name starts, from the start of the xattr header
//	0x06 u8   xe_name_len    suffix length (no prefix, no NUL)
//	0x07 u8   xe_type        prefix index | XattrEntryLocal
//	0x08 le64 xe_value_size  value length in bytes
//
// The name is stored at xe_name_offset; the value (local) or an
// XattrValueRoot (not local, value in clusters) follows at
// xe_name_offset + round4(xe_name_len). The stored value takes
// round4(xe_value_size) bytes when local, XattrValueRootSize otherwise.
type XattrEntry struct {
	NameHash   uint32
	NameOffset uint16
	Type       uint8
	ValueSize  uint64
	Name       []byte          // len == xe_name_len
	Value      []byte          // local value, ValueSize bytes
	Root       *XattrValueRoot // value root when !Local()
}

// Local reports whether the value is stored right after the name.
func (e *XattrEntry) Local() bool { return e.Type&XattrEntryLocal != 0 }

// Index is the name prefix index (XattrIndex*).
func (e *XattrEntry) Index() uint8 { return e.Type & XattrTypeMask }

// StoredSize is the bytes the entry's name and value take in the storage
// area (namevalue_size in the kernel).
func (e *XattrEntry) StoredSize() int {
	return int(xattrStoredSize(len(e.Name), e.ValueSize, e.Local()))
}

func xattrStoredSize(nameLen int, valueSize uint64, local bool) uint64 {
	v := uint64(XattrValueRootSize)
	if local {
		v = xattrRound4(valueSize)
	}
	return xattrRound4(uint64(nameLen)) + v
}

// XattrHeader is struct ocfs2_xattr_header with its entries, names and
// values. It heads every xattr storage area: the inline area at the end of
// an inode, the body of a non-indexed xattr block, and each bucket of an
// indexed block. All offsets are relative to the header:
//
//	0x00 le16 xh_count          entries
//	0x02 le16 xh_free_start     lowest name/value offset (kept up to date in buckets)
//	0x04 le16 xh_name_value_len bytes of names and values (buckets)
//	0x06 le16 xh_num_buckets    buckets in this extent (first bucket of a run only)
//	0x08 BlockCheck xh_check    buckets only, over the whole 4 KiB bucket; 0 elsewhere
//	0x10 XattrEntry xh_entries[xh_count]
//	...  free space
//	...  names and values, packed down from the end of the area
//
// Entries of a bucket are sorted by name hash; in an inode or block they
// are in insertion order.
type XattrHeader struct {
	FreeStart    uint16
	NameValueLen uint16
	NumBuckets   uint16
	Entries      []XattrEntry
}

// XattrEntryBytes returns the name and the stored value bytes (the local
// value or the raw value root) of entry i of the header at the start of
// area, bounds-checked against area and against the entry table: a name
// or value outside [end of entries, len(area)) is a CorruptError.
func XattrEntryBytes(area []byte, i int) (name, stored []byte, err error) {
	if len(area) < XattrHeaderSize {
		return nil, nil, corrupt(structXattrHeader, "xh_count", "storage area is %d bytes, need %d", len(area), XattrHeaderSize)
	}
	count := int(binary.LittleEndian.Uint16(area))
	tableEnd := XattrHeaderSize + count*XattrEntrySize
	if tableEnd > len(area) {
		return nil, nil, corrupt(structXattrHeader, "xh_count", "is %d: the entry table overruns the %d-byte area", count, len(area))
	}
	if i < 0 || i >= count {
		return nil, nil, fmt.Errorf("xattr entry %d out of range (xh_count %d)", i, count)
	}
	e := area[XattrHeaderSize+i*XattrEntrySize:]
	off := int(binary.LittleEndian.Uint16(e[4:]))
	nameLen := int(e[6])
	local := e[7]&XattrEntryLocal != 0
	size := binary.LittleEndian.Uint64(e[8:])
	field := fmt.Sprintf("xh_entries[%d]", i)
	if nameLen == 0 && e[7]&XattrTypeMask != XattrIndexPosixACLAccess && e[7]&XattrTypeMask != XattrIndexPosixACLDefault {
		return nil, nil, corrupt(structXattrHeader, field+".xe_name_len", "is 0 for prefix index %d", e[7]&XattrTypeMask)
	}
	if idx := e[7] & XattrTypeMask; idx == 0 || idx >= xattrIndexMax {
		return nil, nil, corrupt(structXattrHeader, field+".xe_type", "prefix index %d is unknown", idx)
	}
	if local && size > XattrInlineValueMax {
		return nil, nil, corrupt(structXattrHeader, field+".xe_value_size", "is %d for a local value, at most %d", size, XattrInlineValueMax)
	}
	if !local && size <= XattrInlineValueMax {
		return nil, nil, corrupt(structXattrHeader, field+".xe_value_size", "is %d for a value outside the area, want more than %d", size, XattrInlineValueMax)
	}
	if off < tableEnd {
		return nil, nil, corrupt(structXattrHeader, field+".xe_name_offset", "is %d, inside the entry table ending at %d", off, tableEnd)
	}
	total := xattrStoredSize(nameLen, size, local)
	if uint64(off)+total > uint64(len(area)) {
		return nil, nil, corrupt(structXattrHeader, field+".xe_name_offset", "name and value at %d..%d overrun the %d-byte area", off, uint64(off)+total, len(area))
	}
	vOff := off + int(xattrRound4(uint64(nameLen)))
	if local {
		return area[off : off+nameLen], area[vOff : vOff+int(size)], nil
	}
	return area[off : off+nameLen], area[vOff : vOff+XattrValueRootSize], nil
}

// DecodeXattrHeader decodes the header at the start of area, where area is
// the whole storage the header governs (inline area, block body from 0x30
// to the block end, or a 4 KiB bucket). Every entry's name and value must
// lie inside area, after the entry table; structName names the holder.
func DecodeXattrHeader(area []byte, structName string) (*XattrHeader, error) {
	if len(area) < XattrHeaderSize {
		return nil, corrupt(structName, "xh_count", "storage area is %d bytes, need %d", len(area), XattrHeaderSize)
	}
	if len(area) > 0xFFFF {
		return nil, corrupt(structName, "", "storage area is %d bytes, more than 16-bit offsets reach", len(area))
	}
	count := int(binary.LittleEndian.Uint16(area))
	h := &XattrHeader{
		FreeStart:    binary.LittleEndian.Uint16(area[2:]),
		NameValueLen: binary.LittleEndian.Uint16(area[4:]),
		NumBuckets:   binary.LittleEndian.Uint16(area[6:]),
		Entries:      make([]XattrEntry, 0, min(count, len(area)/XattrEntrySize)),
	}
	for i := 0; i < count; i++ {
		name, stored, err := XattrEntryBytes(area, i)
		if err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				ce.Struct = structName
			}
			return nil, err
		}
		e := area[XattrHeaderSize+i*XattrEntrySize:]
		xe := XattrEntry{
			NameHash:   binary.LittleEndian.Uint32(e),
			NameOffset: binary.LittleEndian.Uint16(e[4:]),
			Type:       e[7],
			ValueSize:  binary.LittleEndian.Uint64(e[8:]),
			Name:       append([]byte(nil), name...),
		}
		if xe.Local() {
			xe.Value = append([]byte(nil), stored...)
		} else {
			r, err := DecodeXattrValueRoot(stored)
			if err != nil {
				var ce *CorruptError
				if errors.As(err, &ce) {
					ce.Struct, ce.Field = structName, fmt.Sprintf("xh_entries[%d].%s", i, ce.Field)
				}
				return nil, err
			}
			xe.Root = r
		}
		h.Entries = append(h.Entries, xe)
	}
	return h, nil
}

// CheckSortedByHash verifies the entries are in name-hash order, as a
// bucket's must be for the kernel's binary search.
func (h *XattrHeader) CheckSortedByHash(structName string) error {
	for i := 1; i < len(h.Entries); i++ {
		if h.Entries[i].NameHash < h.Entries[i-1].NameHash {
			return corrupt(structName, fmt.Sprintf("xh_entries[%d].xe_name_hash", i), "0x%08x sorts before the previous entry's 0x%08x", h.Entries[i].NameHash, h.Entries[i-1].NameHash)
		}
	}
	return nil
}

// CheckNameHashes verifies every entry's xe_name_hash against its name, for
// a volume whose s_uuid_hash is uuidHash.
func (h *XattrHeader) CheckNameHashes(uuidHash uint32, cs CharSignedness, structName string) error {
	for i := range h.Entries {
		e := &h.Entries[i]
		if want := XattrNameHash(uuidHash, e.Name, cs); e.NameHash != want {
			return corrupt(structName, fmt.Sprintf("xh_entries[%d].xe_name_hash", i), "is 0x%08x, but name %q hashes to 0x%08x", e.NameHash, e.Name, want)
		}
	}
	return nil
}

// Validate checks that the header can be encoded into an area of areaLen
// bytes: the same rules DecodeXattrHeader applies, plus non-overlapping
// names and values. Encode requires a header that passes it.
func (h *XattrHeader) Validate(areaLen int) error {
	if areaLen > 0xFFFF || areaLen < XattrHeaderSize {
		return fmt.Errorf("xattr area of %d bytes is out of range", areaLen)
	}
	tableEnd := XattrHeaderSize + len(h.Entries)*XattrEntrySize
	if tableEnd > areaLen {
		return fmt.Errorf("%d xattr entries do not fit in %d bytes", len(h.Entries), areaLen)
	}
	type span struct{ lo, hi int }
	spans := make([]span, 0, len(h.Entries))
	for i := range h.Entries {
		e := &h.Entries[i]
		if len(e.Name) > XattrMaxNameLen {
			return fmt.Errorf("xattr entry %d: name of %d bytes", i, len(e.Name))
		}
		if e.Local() {
			if e.ValueSize > XattrInlineValueMax || uint64(len(e.Value)) != e.ValueSize {
				return fmt.Errorf("xattr entry %d: local value of %d bytes, ValueSize %d", i, len(e.Value), e.ValueSize)
			}
		} else if e.Root == nil || e.ValueSize <= XattrInlineValueMax {
			return fmt.Errorf("xattr entry %d: a non-local value needs a Root and ValueSize > %d", i, XattrInlineValueMax)
		}
		lo, hi := int(e.NameOffset), int(e.NameOffset)+e.StoredSize()
		if lo < tableEnd || hi > areaLen {
			return fmt.Errorf("xattr entry %d: name/value %d..%d outside %d..%d", i, lo, hi, tableEnd, areaLen)
		}
		spans = append(spans, span{lo, hi})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	for i := 1; i < len(spans); i++ {
		if spans[i].lo < spans[i-1].hi {
			return fmt.Errorf("xattr names/values overlap at offset %d", spans[i].lo)
		}
	}
	return nil
}

// Encode writes the header, its entries and every name and value into area
// and zeroes everything else in it, including xh_check (buckets: call
// SetBlockCheck(bucket, XattrBucketCheckOff) after, with META_ECC). The
// header must pass Validate(len(area)).
func (h *XattrHeader) Encode(area []byte) {
	clear(area)
	binary.LittleEndian.PutUint16(area, uint16(len(h.Entries)))
	binary.LittleEndian.PutUint16(area[2:], h.FreeStart)
	binary.LittleEndian.PutUint16(area[4:], h.NameValueLen)
	binary.LittleEndian.PutUint16(area[6:], h.NumBuckets)
	for i := range h.Entries {
		e := &h.Entries[i]
		p := area[XattrHeaderSize+i*XattrEntrySize:]
		binary.LittleEndian.PutUint32(p, e.NameHash)
		binary.LittleEndian.PutUint16(p[4:], e.NameOffset)
		p[6] = uint8(len(e.Name))
		p[7] = e.Type
		binary.LittleEndian.PutUint64(p[8:], e.ValueSize)
		off := int(e.NameOffset)
		copy(area[off:], e.Name)
		v := area[off+int(xattrRound4(uint64(len(e.Name)))):]
		if e.Local() {
			copy(v, e.Value)
		} else {
			e.Root.Encode(v[:XattrValueRootSize])
		}
	}
}

// FreeSpace is the room between the entry table and the lowest name in an
// area of areaLen bytes: what is left for one more entry and its name/value.
func (h *XattrHeader) FreeSpace(areaLen int) int {
	low := areaLen
	for i := range h.Entries {
		low = min(low, int(h.Entries[i].NameOffset))
	}
	return low - (XattrHeaderSize + len(h.Entries)*XattrEntrySize)
}

// XattrValueRoot is struct ocfs2_xattr_value_root, stored in place of a
// value longer than XattrInlineValueMax; the value lives in the clusters of
// its extent tree:
//
//	0x00 le32 xr_clusters     clusters of value
//	0x04 le32 xr_reserved0
//	0x08 le64 xr_last_eb_blk  rightmost leaf extent block (depth > 0)
//	0x10 ExtentList xr_list   l_count 1 in the 48 bytes an entry reserves
type XattrValueRoot struct {
	Clusters  uint32
	LastEBBlk uint64
	List      ExtentList
}

// DecodeXattrValueRoot decodes a value root from b (normally the
// XattrValueRootSize bytes after the name).
func DecodeXattrValueRoot(b []byte) (*XattrValueRoot, error) {
	if len(b) < 0x10+ExtentListHeaderSize {
		return nil, corrupt(structXattrValueRoot, "", "is %d bytes, want at least %d", len(b), 0x10+ExtentListHeaderSize)
	}
	l, err := DecodeExtentList(b[0x10:], structXattrValueRoot)
	if err != nil {
		return nil, err
	}
	return &XattrValueRoot{
		Clusters:  binary.LittleEndian.Uint32(b),
		LastEBBlk: binary.LittleEndian.Uint64(b[8:]),
		List:      *l,
	}, nil
}

// Encode writes the value root into b, zeroing reserved bytes and unused
// record slots up to len(b).
func (r *XattrValueRoot) Encode(b []byte) {
	binary.LittleEndian.PutUint32(b, r.Clusters)
	clear(b[4:8])
	binary.LittleEndian.PutUint64(b[8:], r.LastEBBlk)
	r.List.Encode(b[0x10:])
	clear(b[0x10+ExtentListSize(int(r.List.Count)):])
}

// NewXattrValueRoot is an empty value root of the standard 48-byte size.
func NewXattrValueRoot() *XattrValueRoot {
	return &XattrValueRoot{List: ExtentList{Count: uint16(ExtentListCapacity(XattrValueRootSize - 0x10))}}
}

// XattrTreeRoot is struct ocfs2_xattr_tree_root, the body of an indexed
// xattr block: an extent tree whose cpos space is the name hash and whose
// leaves are runs of buckets.
//
//	0x00 le32 xt_clusters     clusters of buckets
//	0x04 le32 xt_reserved0
//	0x08 le64 xt_last_eb_blk  rightmost leaf extent block
//	0x10 ExtentList xt_list
type XattrTreeRoot struct {
	Clusters  uint32
	LastEBBlk uint64
	List      ExtentList
}

// XattrBlockSignature identifies an xattr block.
const XattrBlockSignature = "XATTR01\x00"

// Offsets in an xattr block.
const (
	XattrBlockCheckOffset = 0x18
	XattrBlockAttrsOffset = 0x30
	XattrBlockIndexed     = 0x1 // xb_flags: body is an XattrTreeRoot
)

// XattrTreeRootCapacity is the extent record capacity of an indexed xattr
// block: (blocksize - 0x50) / 16.
func XattrTreeRootCapacity(blockSize int) int {
	return ExtentListCapacity(blockSize - XattrBlockAttrsOffset - 0x10)
}

// XattrBlock is struct ocfs2_xattr_block ("XATTR01"), the block at an
// inode's i_xattr_loc, from an extent_alloc suballocator:
//
//	0x00 u8[8] xb_signature     "XATTR01\0"
//	0x08 le16 xb_suballoc_slot
//	0x0A le16 xb_suballoc_bit
//	0x0C le32 xb_fs_generation  volume generation
//	0x10 le64 xb_blkno          this block
//	0x18 BlockCheck xb_check    (the header's own xh_check stays 0)
//	0x20 le16 xb_flags          XattrBlockIndexed
//	0x22 le16 xb_reserved0
//	0x24 le32 xb_reserved1
//	0x28 le64 xb_suballoc_loc   owning group descriptor
//	0x30 union: XattrHeader (not indexed; storage runs to the block end)
//	            XattrTreeRoot (indexed)
type XattrBlock struct {
	SuballocSlot uint16
	SuballocBit  uint16
	FSGeneration uint32
	Blkno        uint64
	Flags        uint16
	SuballocLoc  uint64
	Header       *XattrHeader   // when !Indexed()
	Tree         *XattrTreeRoot // when Indexed()
}

// Indexed reports whether the block roots a bucket tree.
func (x *XattrBlock) Indexed() bool { return x.Flags&XattrBlockIndexed != 0 }

// DecodeXattrBlock decodes a whole xattr block.
func DecodeXattrBlock(b []byte) (*XattrBlock, error) {
	if len(b) < 512 {
		return nil, corrupt(structXattrBlock, "", "block is %d bytes, want at least 512", len(b))
	}
	if string(b[:8]) != XattrBlockSignature {
		return nil, corrupt(structXattrBlock, "xb_signature", "is %q, want %q", cstring(b[:8]), "XATTR01")
	}
	x := &XattrBlock{
		SuballocSlot: binary.LittleEndian.Uint16(b[0x08:]),
		SuballocBit:  binary.LittleEndian.Uint16(b[0x0A:]),
		FSGeneration: binary.LittleEndian.Uint32(b[0x0C:]),
		Blkno:        binary.LittleEndian.Uint64(b[0x10:]),
		Flags:        binary.LittleEndian.Uint16(b[0x20:]),
		SuballocLoc:  binary.LittleEndian.Uint64(b[0x28:]),
	}
	body := b[XattrBlockAttrsOffset:]
	if x.Indexed() {
		l, err := DecodeExtentList(body[0x10:], structXattrBlock)
		if err != nil {
			return nil, err
		}
		x.Tree = &XattrTreeRoot{
			Clusters:  binary.LittleEndian.Uint32(body),
			LastEBBlk: binary.LittleEndian.Uint64(body[8:]),
			List:      *l,
		}
		return x, nil
	}
	h, err := DecodeXattrHeader(body, structXattrBlock)
	if err != nil {
		return nil, err
	}
	x.Header = h
	return x, nil
}

// Encode writes the block into b (one whole block), with a zero check: with
// META_ECC, call SetBlockCheck(b, XattrBlockCheckOffset) after.
func (x *XattrBlock) Encode(b []byte) {
	copy(b, XattrBlockSignature)
	binary.LittleEndian.PutUint16(b[0x08:], x.SuballocSlot)
	binary.LittleEndian.PutUint16(b[0x0A:], x.SuballocBit)
	binary.LittleEndian.PutUint32(b[0x0C:], x.FSGeneration)
	binary.LittleEndian.PutUint64(b[0x10:], x.Blkno)
	clear(b[0x18:0x20])
	binary.LittleEndian.PutUint16(b[0x20:], x.Flags)
	clear(b[0x22:0x28])
	binary.LittleEndian.PutUint64(b[0x28:], x.SuballocLoc)
	body := b[XattrBlockAttrsOffset:]
	if x.Indexed() {
		clear(body)
		binary.LittleEndian.PutUint32(body, x.Tree.Clusters)
		binary.LittleEndian.PutUint64(body[8:], x.Tree.LastEBBlk)
		x.Tree.List.Encode(body[0x10:])
		return
	}
	x.Header.Encode(body)
}

// SelfCheck verifies the block belongs where it was read from.
func (x *XattrBlock) SelfCheck(blkno uint64, fsGeneration uint32) error {
	if x.Blkno != blkno {
		return corrupt(structXattrBlock, "xb_blkno", "is %d, want %d", x.Blkno, blkno)
	}
	if x.FSGeneration != fsGeneration {
		return corrupt(structXattrBlock, "xb_fs_generation", "is 0x%x, want the volume's 0x%x", x.FSGeneration, fsGeneration)
	}
	return nil
}

// XattrBucketBlocks is how many fs blocks a 4 KiB bucket spans.
func XattrBucketBlocks(blockSize int) int { return XattrBucketSize / blockSize }

// DecodeXattrBucket decodes the header of a bucket, given the bucket's
// XattrBucketSize bytes (its blocks concatenated). Entries must be sorted
// by name hash.
func DecodeXattrBucket(bucket []byte) (*XattrHeader, error) {
	if len(bucket) != XattrBucketSize {
		return nil, corrupt(structXattrBucket, "", "is %d bytes, want %d", len(bucket), XattrBucketSize)
	}
	h, err := DecodeXattrHeader(bucket, structXattrBucket)
	if err != nil {
		return nil, err
	}
	if err := h.CheckSortedByHash(structXattrBucket); err != nil {
		return nil, err
	}
	return h, nil
}

// InodeInlineXattrArea returns the inline xattr storage of an inode block:
// its last inlineSize (i_xattr_inline_size) bytes, which start with an
// XattrHeader. The area must leave the 0xC0-byte dinode header alone.
func InodeInlineXattrArea(inodeBlock []byte, inlineSize uint16) ([]byte, error) {
	n := int(inlineSize)
	if n < XattrHeaderSize || n > len(inodeBlock)-0xC0 {
		return nil, corrupt(structXattrInline, "i_xattr_inline_size", "is %d, want %d..%d", n, XattrHeaderSize, len(inodeBlock)-0xC0)
	}
	return inodeBlock[len(inodeBlock)-n:], nil
}
