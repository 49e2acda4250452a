package xattr

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"o2go/internal/ondisk"
)

// errNoRoom says a storage area cannot take an attribute; the caller tries
// the next place. It never leaves this package.
var errNoRoom = errors.New("no room in this xattr storage area")

// headerGap is OCFS2_XATTR_HEADER_GAP: the bytes that must stay free
// between the entry table and the lowest name, so that a reader walking the
// table meets a zero hash after the last entry.
const headerGap = 4

// store is one storage area under change: the in-inode area, the body of a
// non-indexed xattr block, or a bucket. Entries carry their names, values
// and value roots; the area is encoded whole when it is written.
//
// Names and values sit at xe_name_offset, packed down from the area's end.
// The inode area and the block keep them compact — removing one slides the
// lower ones up — and append entries in arrival order (the kernel's "block
// storage"). Buckets keep entries sorted by name hash, leave holes where
// names were removed until a defragmentation packs them, never let a name
// and value straddle two blocks, and keep xh_free_start and
// xh_name_value_len exact (fsck.ocfs2 checks both).
type store struct {
	where Where
	size  int // bytes from the header to the end of the area
	h     *ondisk.XattrHeader
	blkno uint64 // inode, xattr block, or the bucket's first block
	// slot0 is the raw first entry slot of a bucket. An empty bucket keeps
	// the hash of its last entry there: the kernel's bucket search reads
	// it, so it must survive the last removal.
	slot0 [ondisk.XattrEntrySize]byte
	dirty bool
}

// newValue is the attribute a change stores.
type newValue struct {
	index uint8
	name  []byte
	hash  uint32
	value []byte // the stored bytes
}

func (nv *newValue) local() bool { return len(nv.value) <= ondisk.XattrInlineValueMax }

func (nv *newValue) size() int { return nameValueSize(len(nv.name), uint64(len(nv.value))) }

func round4(n int) int { return (n + 3) &^ 3 }

// nameValueSize is namevalue_size: the bytes a name and its value (or its
// value root) take in an area.
func nameValueSize(nameLen int, valueLen uint64) int {
	if valueLen > ondisk.XattrInlineValueMax {
		return round4(nameLen) + ondisk.XattrValueRootSize
	}
	return round4(nameLen) + round4(int(valueLen))
}

func entrySize(e *ondisk.XattrEntry) int { return nameValueSize(len(e.Name), e.ValueSize) }

func (s *store) bucket() bool { return s.where == InBucket }

// find returns the index of the entry with this prefix index and suffix,
// or -1.
func (s *store) find(index uint8, name []byte, hash uint32) int {
	for i := range s.h.Entries {
		e := &s.h.Entries[i]
		if s.bucket() {
			if e.NameHash < hash {
				continue
			}
			if e.NameHash > hash {
				break
			}
		}
		if e.Index() == index && bytes.Equal(e.Name, name) {
			return i
		}
	}
	return -1
}

// lowest is the offset of the lowest name, or the area's end.
func (s *store) lowest(except int) int {
	low := s.size
	for i := range s.h.Entries {
		if i != except {
			low = min(low, int(s.h.Entries[i].NameOffset))
		}
	}
	return low
}

// tableEnd is where the entry table of count entries ends.
func tableEnd(count int) int { return ondisk.XattrHeaderSize + count*ondisk.XattrEntrySize }

// room checks that `needed` bytes fit under freeStart with the gap kept.
func (s *store) room(needed, freeStart int) error {
	if needed == 0 {
		return nil
	}
	free := freeStart - tableEnd(len(s.h.Entries)) - headerGap
	if free < 0 {
		return &ondisk.CorruptError{Struct: s.where.structName(), Field: "xh_count",
			Msg: fmt.Sprintf("%d entries reach past the lowest name at %d", len(s.h.Entries), freeStart)}
	}
	if free < needed {
		return errNoRoom
	}
	return nil
}

// canReuse says whether entry i's name/value space can take nv in place:
// the same size in compact areas, no bigger in buckets.
func (s *store) canReuse(i int, nv *newValue) bool {
	old := entrySize(&s.h.Entries[i])
	if s.bucket() {
		return old >= nv.size()
	}
	return old == nv.size()
}

// checkSpace is the kernel's check_space: errNoRoom when nv does not fit
// (replacing entry i when i >= 0).
func (s *store) checkSpace(i int, nv *newValue, bs int) error {
	size := nv.size()
	needed := ondisk.XattrEntrySize + size
	if !s.bucket() {
		if i >= 0 {
			if s.canReuse(i, nv) {
				needed = 0
			} else {
				needed -= ondisk.XattrEntrySize + entrySize(&s.h.Entries[i])
			}
		}
		return s.room(max(needed, 0), s.lowest(-1))
	}
	if i >= 0 {
		if s.canReuse(i, nv) {
			needed = 0
		} else {
			needed = size // the entry slot is reused
		}
	}
	fs := int(s.h.FreeStart)
	if fs < size {
		if needed > 0 {
			return errNoRoom
		}
		return nil
	}
	if err := s.room(needed, fs); err != nil {
		return err
	}
	return s.room(needed, alignFreeStart(fs, size, bs))
}

// alignFreeStart moves a bucket's free start down to a block boundary when
// a name/value of size bytes placed under it would straddle two blocks.
func alignFreeStart(freeStart, size, bs int) int {
	if (freeStart-size)/bs != (freeStart-1)/bs {
		freeStart -= freeStart % bs
	}
	return freeStart
}

// addEntry inserts a blank entry for hash and returns its index: at the end
// of a compact area, at its hash position in a bucket (the kernel's
// bisection, which puts it before an equal hash it lands on).
func (s *store) addEntry(hash uint32) int {
	n := len(s.h.Entries)
	pos := n
	if s.bucket() {
		low, high := 0, n-1
	search:
		for low <= high {
			mid := (low + high) / 2
			switch h := s.h.Entries[mid].NameHash; {
			case hash > h:
				low = mid + 1
			case hash < h:
				high = mid - 1
			default:
				low = mid
				break search
			}
		}
		pos = low
	}
	s.h.Entries = slices.Insert(s.h.Entries, pos, ondisk.XattrEntry{NameHash: hash, NameOffset: uint16(s.size)})
	return pos
}

// wipe releases entry i's name/value space before it gets a new one: a
// compact area slides the names below it up; a bucket leaves a hole.
func (s *store) wipe(i int) {
	if s.bucket() {
		return
	}
	off := s.h.Entries[i].NameOffset
	size := uint16(entrySize(&s.h.Entries[i]))
	for j := range s.h.Entries {
		if j != i && s.h.Entries[j].NameOffset < off {
			s.h.Entries[j].NameOffset += size
		}
	}
	s.h.Entries[i].NameOffset = uint16(s.size)
}

// place gives entry i size bytes of name/value space under the others.
func (s *store) place(i, size, bs int) {
	if !s.bucket() {
		s.h.Entries[i].NameOffset = uint16(s.lowest(i) - size)
		return
	}
	fs := alignFreeStart(int(s.h.FreeStart), size, bs)
	s.h.Entries[i].NameOffset = uint16(fs - size)
	s.h.FreeStart = uint16(fs - size)
}

// removeEntry drops entry i and its name/value.
func (s *store) removeEntry(i int) {
	s.wipe(i)
	if len(s.h.Entries) == 1 {
		s.keepSlot0(&s.h.Entries[0])
	}
	s.h.Entries = slices.Delete(s.h.Entries, i, i+1)
	s.dirty = true
}

// keepSlot0 records e's raw entry bytes as what an empty bucket shows.
func (s *store) keepSlot0(e *ondisk.XattrEntry) {
	binary.LittleEndian.PutUint32(s.slot0[0:], e.NameHash)
	binary.LittleEndian.PutUint16(s.slot0[4:], e.NameOffset)
	s.slot0[6] = uint8(len(e.Name))
	s.slot0[7] = e.Type
	binary.LittleEndian.PutUint64(s.slot0[8:], e.ValueSize)
}

// firstHash is the hash the kernel's bucket search sees first: the first
// entry's, or the one an empty bucket kept.
func (s *store) firstHash() uint32 {
	if len(s.h.Entries) > 0 {
		return s.h.Entries[0].NameHash
	}
	return binary.LittleEndian.Uint32(s.slot0[:])
}

// lastHash is the hash of the last entry (firstHash when empty).
func (s *store) lastHash() uint32 {
	if n := len(s.h.Entries); n > 0 {
		return s.h.Entries[n-1].NameHash
	}
	return s.firstHash()
}

// normalize recomputes a bucket's xh_free_start (the lowest name, or the
// bucket's end) and xh_name_value_len, the two fields fsck.ocfs2 checks.
func (s *store) normalize() {
	if !s.bucket() {
		return
	}
	s.h.FreeStart = uint16(s.lowest(-1))
	total := 0
	for i := range s.h.Entries {
		e := &s.h.Entries[i]
		// fsck.ocfs2 1.8.7 sizes each value with its length cut to 16 bits
		// (ocfs2_xattr_value_real_size takes a uint16_t), so a value of
		// exactly 64 KiB counts as an empty local one there. The kernel
		// never reads xh_name_value_len back; fsck does, so it gets the
		// sum it computes.
		total += nameValueSize(len(e.Name), uint64(uint16(e.ValueSize)))
	}
	s.h.NameValueLen = uint16(total)
}

// defrag packs a bucket's names and values against its end, keeping their
// order and the one-block rule, and sorts the entries by hash again: the
// kernel's ocfs2_defrag_xattr_bucket.
func (s *store) defrag(bs int) {
	order := make([]int, len(s.h.Entries))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return s.h.Entries[order[a]].NameOffset > s.h.Entries[order[b]].NameOffset
	})
	end := s.size
	for _, i := range order {
		n := entrySize(&s.h.Entries[i])
		if (end-n)/bs != (end-1)/bs {
			end -= end % bs
		}
		s.h.Entries[i].NameOffset = uint16(end - n)
		end -= n
	}
	s.h.FreeStart = uint16(end)
	sort.SliceStable(s.h.Entries, func(a, b int) bool { return s.h.Entries[a].NameHash < s.h.Entries[b].NameHash })
	s.normalize()
	s.dirty = true
}

// check verifies the area can be encoded: what XattrHeader.Validate
// checks, the gap after the table, and for buckets the one-block rule and
// hash order.
func (s *store) check(bs int) error {
	if err := s.h.Validate(s.size); err != nil {
		return &ondisk.CorruptError{Struct: s.where.structName(), Msg: err.Error()}
	}
	if len(s.h.Entries) > 0 && s.lowest(-1)-tableEnd(len(s.h.Entries)) < headerGap {
		return &ondisk.CorruptError{Struct: s.where.structName(), Field: "xh_count",
			Msg: fmt.Sprintf("%d entries leave no gap before the lowest name at %d", len(s.h.Entries), s.lowest(-1))}
	}
	if !s.bucket() {
		return nil
	}
	for i := range s.h.Entries {
		e := &s.h.Entries[i]
		off := int(e.NameOffset)
		if off/bs != (off+entrySize(e)-1)/bs {
			return &ondisk.CorruptError{Struct: s.where.structName(), Field: fmt.Sprintf("xh_entries[%d].xe_name_offset", i),
				Msg: fmt.Sprintf("name and value at %d..%d straddle two blocks", off, off+entrySize(e))}
		}
	}
	return s.h.CheckSortedByHash(s.where.structName())
}

// encode writes the area into b (len(b) == s.size).
func (s *store) encode(b []byte) {
	s.h.Encode(b)
	if s.bucket() && len(s.h.Entries) == 0 {
		copy(b[ondisk.XattrHeaderSize:], s.slot0[:])
	}
}

func (w Where) structName() string {
	return [...]string{"inline xattr area", "xattr block", "xattr bucket"}[w]
}

// clone copies a store deeply: entries, names, values and value roots.
func (s *store) clone() *store {
	c := *s
	h := *s.h
	h.Entries = make([]ondisk.XattrEntry, len(s.h.Entries))
	for i, e := range s.h.Entries {
		e.Name = slices.Clone(e.Name)
		e.Value = slices.Clone(e.Value)
		if e.Root != nil {
			r := *e.Root
			r.List.Recs = slices.Clone(e.Root.List.Recs)
			e.Root = &r
		}
		h.Entries[i] = e
	}
	c.h = &h
	return &c
}
