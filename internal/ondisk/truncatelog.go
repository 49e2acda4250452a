package ondisk

import "encoding/binary"

// TruncateRecSize is the on-disk size of a TruncateRec.
const TruncateRecSize = 8

const truncateLogHeaderSize = 8

// TruncateRec is struct ocfs2_truncate_rec: a run of clusters freed by a
// truncate and not yet returned to the global bitmap.
//
//	0x00 le32 t_start     first cluster
//	0x04 le32 t_clusters  clusters in the run
type TruncateRec struct {
	Start    uint32
	Clusters uint32
}

// TruncateLog is struct ocfs2_truncate_log, the id2 of a truncate_log:NNNN
// dinode (DEALLOC_FL). Offsets are relative to id2 (0xC0 in the block):
//
//	0x00 le16 tl_count     capacity in records ((B - 0xC8) / 8, 487 at 4 KiB)
//	0x02 le16 tl_used      records in use
//	0x04 le32 tl_reserved1
//	0x08 TruncateRec tl_recs[tl_count]
//
// A clean volume has tl_used == 0; recovery of a dead slot flushes its log.
// The kernel leaves flushed records in the slots behind tl_used; they mean
// nothing, and Encode zeroes them like any unused slot.
type TruncateLog struct {
	Count uint16
	Recs  []TruncateRec // len(Recs) == tl_used
}

func decodeTruncateLog(b []byte) (*TruncateLog, error) {
	if len(b) < truncateLogHeaderSize {
		return nil, corrupt(structDinode, "tl_count", "truncate log area is %d bytes, need at least %d", len(b), truncateLogHeaderSize)
	}
	le := binary.LittleEndian
	t := &TruncateLog{Count: le.Uint16(b)}
	used := le.Uint16(b[2:])
	if max := (len(b) - truncateLogHeaderSize) / TruncateRecSize; int(t.Count) > max {
		return nil, corrupt(structDinode, "tl_count", "is %d, but only %d truncate records fit", t.Count, max)
	}
	if used > t.Count {
		return nil, corrupt(structDinode, "tl_used", "is %d, beyond tl_count %d", used, t.Count)
	}
	t.Recs = make([]TruncateRec, used)
	for i := range t.Recs {
		r := b[truncateLogHeaderSize+i*TruncateRecSize:]
		t.Recs[i] = TruncateRec{Start: le.Uint32(r), Clusters: le.Uint32(r[4:])}
	}
	return t, nil
}

// encode writes the log and its Count record slots into b and returns the
// bytes written; the caller has checked that they fit.
func (t *TruncateLog) encode(b []byte) int {
	le := binary.LittleEndian
	le.PutUint16(b, t.Count)
	le.PutUint16(b[2:], uint16(len(t.Recs)))
	le.PutUint32(b[4:], 0)
	for i, r := range t.Recs {
		p := b[truncateLogHeaderSize+i*TruncateRecSize:]
		le.PutUint32(p, r.Start)
		le.PutUint32(p[4:], r.Clusters)
	}
	end := truncateLogHeaderSize + int(t.Count)*TruncateRecSize
	clear(b[truncateLogHeaderSize+len(t.Recs)*TruncateRecSize : end])
	return end
}
