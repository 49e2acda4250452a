package ondisk

import "encoding/binary"

const localAllocHeaderSize = 0x10

// LocalAlloc is struct ocfs2_local_alloc, the id2 of a local_alloc:NNNN
// dinode (LOCAL_ALLOC_FL): a window of the global bitmap that one slot
// allocates clusters from without taking the global bitmap lock. Offsets
// are relative to id2 (0xC0 in the block):
//
//	0x00 le32 la_bm_off     first cluster (global bitmap bit) of the window
//	0x04 le16 la_size       bitmap bytes (mkfs and the kernel: B - 0xD0)
//	0x06 le16 la_reserved1
//	0x08 le64 la_reserved2
//	0x10 u8   la_bitmap[la_size]  bit i set = cluster la_bm_off+i used by this slot
//
// The dinode's id1 (Bitmap) gives the window size in bits (i_total, 0 = no
// window) and the bits used (i_used). A clean volume has no window.
type LocalAlloc struct {
	BmOff  uint32
	Bitmap []byte // len(Bitmap) == la_size
}

func decodeLocalAlloc(b []byte) (*LocalAlloc, error) {
	if len(b) < localAllocHeaderSize {
		return nil, corrupt(structDinode, "la_size", "local alloc area is %d bytes, need at least %d", len(b), localAllocHeaderSize)
	}
	le := binary.LittleEndian
	size := int(le.Uint16(b[4:]))
	if max := len(b) - localAllocHeaderSize; size > max {
		return nil, corrupt(structDinode, "la_size", "is %d, but only %d bitmap bytes fit", size, max)
	}
	return &LocalAlloc{
		BmOff:  le.Uint32(b),
		Bitmap: cloneBytes(b[localAllocHeaderSize : localAllocHeaderSize+size]),
	}, nil
}

// encode writes the local alloc into b and returns the bytes written; the
// caller has checked that they fit.
func (l *LocalAlloc) encode(b []byte) int {
	le := binary.LittleEndian
	le.PutUint32(b, l.BmOff)
	le.PutUint16(b[4:], uint16(len(l.Bitmap)))
	clear(b[6:localAllocHeaderSize])
	return localAllocHeaderSize + copy(b[localAllocHeaderSize:], l.Bitmap)
}

// Test reports whether window bit i is set (false outside the bitmap).
func (l *LocalAlloc) Test(i int) bool {
	return i >= 0 && i>>3 < len(l.Bitmap) && l.Bitmap[i>>3]&(1<<(i&7)) != 0
}
