package ondisk

import "encoding/binary"

const inlineDataHeaderSize = 8

// InlineData is struct ocfs2_inline_data, the id2 of a dinode with
// DynInlineData: a small file's bytes or a small directory's entries kept
// in the inode block itself. Offsets are relative to id2 (0xC0 in the block):
//
//	0x00 le16 id_count      bytes available for data (B - 0xC8, less the
//	                        inline xattr area with DynInlineXattr)
//	0x02 le16 id_reserved0
//	0x04 le32 id_reserved1
//	0x08 u8   id_data[id_count]
//
// Data is the whole id_count area: a file's content is Data[:i_size]
// (i_size <= id_count, i_clusters == 0); an inline directory's entries
// span all of it (i_size == id_count).
type InlineData struct {
	Data []byte // len(Data) == id_count
}

func decodeInlineData(b []byte) (*InlineData, error) {
	if len(b) < inlineDataHeaderSize {
		return nil, corrupt(structDinode, "id_count", "inline data area is %d bytes, need at least %d", len(b), inlineDataHeaderSize)
	}
	n := int(binary.LittleEndian.Uint16(b))
	if max := len(b) - inlineDataHeaderSize; n > max {
		return nil, corrupt(structDinode, "id_count", "is %d, but only %d bytes fit", n, max)
	}
	return &InlineData{Data: cloneBytes(b[inlineDataHeaderSize : inlineDataHeaderSize+n])}, nil
}

// encode writes the inline data into b and returns the bytes written; the
// caller has checked that they fit.
func (d *InlineData) encode(b []byte) int {
	binary.LittleEndian.PutUint16(b, uint16(len(d.Data)))
	clear(b[2:inlineDataHeaderSize])
	return inlineDataHeaderSize + copy(b[inlineDataHeaderSize:], d.Data)
}
