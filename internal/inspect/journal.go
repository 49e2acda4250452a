package inspect

import (
	"encoding/binary"
	"fmt"
	"strings"

	"o2go/internal/ondisk"
)

// logdump prints a slot's journal as debugfs's logdump does: the JBD2
// superblock, then every block of the journal file in order — descriptor,
// commit and revoke blocks with their contents, logged copies of OCFS2
// metadata recognised by their signatures, and runs of anything else as
// "Unknown -- Probably Data". It walks the whole file, not just the live
// part of the log between s_start and the end of the last transaction,
// because what older transactions left behind is often what one is
// looking for.
func (d *Debugger) logdump(v *view, blk uint64) error {
	ino, err := d.vol.FS.Inode(blk)
	if err != nil {
		return fmt.Errorf("reading inode %d: %w", blk, err)
	}
	if ino.Extents == nil {
		return fmt.Errorf("inode %d is not a journal: it maps no blocks", blk)
	}
	bs := d.vol.SB.BlockSize()
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	var jsb []byte
	tagBytes := ondisk.JournalTagSize32
	blocknum, lastUnknown := uint64(0), uint64(0)
	for off := int64(0); off < int64(ino.Size); off += chunk {
		n, err := d.vol.FS.ReadAt(ino, buf, off)
		if err != nil {
			return err
		}
		p := buf[:n/bs*bs]
		if off == 0 {
			if len(p) < bs {
				return fmt.Errorf("journal inode %d is smaller than one block", blk)
			}
			jsb = append([]byte(nil), p[:bs]...)
			v.jbdSuper(jsb)
			if binary.BigEndian.Uint32(jsb[0x28:])&ondisk.JBD2FeatureIncompat64Bit != 0 {
				tagBytes = ondisk.JournalTagSize64
			}
			blocknum++
			p = p[bs:]
		}
		for len(p) >= bs {
			block := p[:bs]
			if ondisk.IsJournalBlock(block) {
				if lastUnknown != 0 {
					v.jbdUnknown(lastUnknown, blocknum)
					lastUnknown = 0
				}
				v.jbdBlock(p, bs, tagBytes, blocknum)
			} else if kind := detectBlock(block); kind == "" {
				if lastUnknown == 0 {
					lastUnknown = blocknum
				}
			} else {
				if lastUnknown != 0 {
					v.jbdUnknown(lastUnknown, blocknum)
					lastUnknown = 0
				}
				v.jbdMetadata(kind, block, blocknum)
			}
			blocknum++
			p = p[bs:]
		}
	}
	if lastUnknown != 0 {
		v.jbdUnknown(lastUnknown, blocknum)
	}
	return nil
}

// blockSignatures are the signatures libocfs2's block detector looks for,
// in its order, with where they sit in the block. A directory block is
// recognised by its trailer's signature at 0x10 of the block (where the
// trailer's fields would be if the block were the trailer), so a logged
// directory block is practically never recognised — as in debugfs.
var blockSignatures = []struct {
	kind, sig string
	off       int
}{
	{"inode", "INODE01", 0}, {"super", "OCFSV2", 0}, {"extent", "EXBLK01", 0},
	{"group", "GROUP01", 0}, {"dir", "DIRTRL1", 0x10}, {"xattr", "XATTR01", 0},
	{"refcount", "REFCNT1", 0}, {"dxroot", "DXDIR01", 0}, {"dxleaf", "DXLEAF1", 0},
}

func detectBlock(b []byte) string {
	for _, s := range blockSignatures {
		if s.off+len(s.sig) <= len(b) && string(b[s.off:s.off+len(s.sig)]) == s.sig {
			return s.kind
		}
	}
	return ""
}

func jbdTypeName(t uint32) string {
	switch t {
	case ondisk.JBD2DescriptorBlock:
		return "JBD2_DESCRIPTOR_BLOCK"
	case ondisk.JBD2CommitBlock:
		return "JBD2_COMMIT_BLOCK"
	case ondisk.JBD2SuperblockV1:
		return "JBD2_SUPERBLOCK_V1"
	case ondisk.JBD2SuperblockV2:
		return "JBD2_SUPERBLOCK_V2"
	case ondisk.JBD2RevokeBlock:
		return "JBD2_REVOKE_BLOCK"
	}
	return "none"
}

func (v *view) jbdHeader(b []byte) {
	t := binary.BigEndian.Uint32(b[4:])
	v.f("\tSeq: %d   Type: %d (%s)\n", binary.BigEndian.Uint32(b[8:]), int32(t), jbdTypeName(t))
}

// jbdSuper prints the journal superblock from its raw (big-endian) bytes.
func (v *view) jbdSuper(b []byte) {
	be := binary.BigEndian
	v.f("\tBlock 0: Journal Superblock\n")
	v.jbdHeader(b)
	v.f("\tBlocksize: %d   Total Blocks: %d   First Block: %d\n", be.Uint32(b[0x0C:]), be.Uint32(b[0x10:]), be.Uint32(b[0x14:]))
	v.f("\tFirst Commit ID: %d   Start Log Blknum: %d\n", be.Uint32(b[0x18:]), be.Uint32(b[0x1C:]))
	v.f("\tError: %d\n", int32(be.Uint32(b[0x20:])))
	compat, incompat, ro := be.Uint32(b[0x24:]), be.Uint32(b[0x28:]), be.Uint32(b[0x2C:])
	var cs string
	if compat&ondisk.JBD2FeatureCompatChecksum != 0 {
		cs += "checksum "
	}
	if compat&^ondisk.JBD2FeatureCompatChecksum != 0 {
		cs += "unknown"
	}
	v.f("\tFeature Compat: %d %s\n", compat, cs)
	var is string
	if incompat&ondisk.JBD2FeatureIncompatRevoke != 0 {
		is += "revoke "
	}
	if incompat&ondisk.JBD2FeatureIncompat64Bit != 0 {
		is += "block64 "
	} else {
		is += "block32 "
	}
	if incompat&ondisk.JBD2FeatureIncompatAsyncCommit != 0 {
		is += "async-commit "
	}
	if incompat&^(ondisk.JBD2FeatureIncompatRevoke|ondisk.JBD2FeatureIncompat64Bit|ondisk.JBD2FeatureIncompatAsyncCommit) != 0 {
		is += "unknown"
	}
	v.f("\tFeature Incompat: %d %s\n", incompat, is)
	rs := ""
	if ro != 0 {
		rs = "unknown"
	}
	v.f("\tFeature RO compat: %d %s\n", ro, rs)
	v.f("\tJournal UUID: %s\n", hexUpper(b[0x30:0x40]))
	v.f("\tFS Share Cnt: %d   Dynamic Superblk Blknum: %d\n", be.Uint32(b[0x40:]), be.Uint32(b[0x44:]))
	v.f("\tPer Txn Block Limit    Journal: %d    Data: %d\n", be.Uint32(b[0x48:]), be.Uint32(b[0x4C:]))
	v.f("\n")
}

func (v *view) jbdUnknown(start, end uint64) {
	if start == end-1 {
		v.f("\tBlock %d: ", start)
	} else {
		v.f("\tBlock %d to %d: ", start, end-1)
	}
	v.f("Unknown -- Probably Data\n\n")
}

func tagFlagString(flags uint32) string {
	if flags == 0 {
		return "none"
	}
	var sb strings.Builder
	if flags&uint32(ondisk.JBD2FlagEscape) != 0 {
		sb.WriteString("JBD2_FLAG_ESCAPE ")
	}
	if flags&uint32(ondisk.JBD2FlagSameUUID) != 0 {
		sb.WriteString("JBD2_FLAG_SAME_UUID ")
	}
	if flags&uint32(ondisk.JBD2FlagDeleted) != 0 {
		sb.WriteString("JBD2_FLAG_DELETED ")
	}
	if flags&uint32(ondisk.JBD2FlagLastTag) != 0 {
		sb.WriteString("JBD2_FLAG_LAST_TAG")
	}
	return sb.String()
}

// jbdBlock prints a JBD2 metadata block. rest starts with the block and
// runs on to the end of what was read: debugfs reads a tag or a UUID that
// straddles the block's end from the bytes that follow, and so does this
// (zeros past the end of the read).
func (v *view) jbdBlock(rest []byte, bs, tagBytes int, blocknum uint64) {
	at := func(off, n int) []byte {
		out := make([]byte, n)
		if off < len(rest) {
			copy(out, rest[off:])
		}
		return out
	}
	b := rest[:bs]
	be := binary.BigEndian
	v.f("\tBlock %d: ", blocknum)
	switch be.Uint32(b[4:]) {
	case ondisk.JBD2DescriptorBlock:
		v.f("Journal Descriptor\n")
		v.jbdHeader(b)
		v.f("\t%3s %-15s %-s\n", "No.", "Blocknum", "Flags")
		count := 0
		for i := ondisk.JournalHeaderSize; i < bs; i += tagBytes {
			tag := at(i, 12)
			flags := be.Uint32(tag[4:])
			blk := uint64(be.Uint32(tag[0:]))
			if tagBytes > ondisk.JournalTagSize32 {
				blk |= uint64(be.Uint32(tag[8:])) << 32
			}
			v.f("\t%2d. %-15d %-s\n", count, blk, tagFlagString(flags))
			if flags&uint32(ondisk.JBD2FlagLastTag) != 0 {
				break
			}
			if flags&uint32(ondisk.JBD2FlagSameUUID) == 0 {
				v.f("\tUUID: %s\n", signedCharHex(at(i+tagBytes, 16)))
				i += 16
			}
			count++
		}
	case ondisk.JBD2CommitBlock:
		v.f("Journal Commit Block\n")
		v.jbdHeader(b)
	case ondisk.JBD2RevokeBlock:
		v.f("Journal Revoke Block\n")
		v.jbdHeader(b)
		rcount := be.Uint32(b[12:])
		v.f("\tr_count:\t\t%d\n", int32(rcount))
		// debugfs reads 32-bit records whatever the journal's block
		// size; a count beyond the block is cut at the block's end.
		n := 0
		if rcount >= ondisk.RevokeHeaderSize {
			n = int(rcount-ondisk.RevokeHeaderSize) / 4
		}
		n = min(n, (bs-ondisk.RevokeHeaderSize)/4)
		for i := 0; i < n; i++ {
			v.f("\trevoke[%d]:\t\t%d\n", i, be.Uint32(b[ondisk.RevokeHeaderSize+4*i:]))
		}
	default:
		v.f("Unknown Block Type\n")
	}
	v.f("\n")
}

// jbdMetadata prints a logged copy of an OCFS2 metadata block.
func (v *view) jbdMetadata(kind string, b []byte, blocknum uint64) {
	v.f("\tBlock %d: ", blocknum)
	bad := func(err error) { v.f("\t(cannot decode the logged block: %v)\n", err) }
	switch kind {
	case "inode", "super":
		v.f("Inode\n")
		d, err := ondisk.DecodeDinode(b)
		if err != nil {
			bad(err)
			break
		}
		v.inode(d, b)
		switch {
		case d.Flags&ondisk.InodeLocalAlloc != 0 && d.LocalAlloc != nil:
			v.localAlloc(d.LocalAlloc)
		case d.Flags&ondisk.InodeChain != 0 && d.Chain != nil:
			v.chainList(d.Chain)
		case d.IsLnk() && d.Clusters == 0:
			v.fastSymlink(b[ondisk.DinodeID2Offset:])
		case d.Flags&ondisk.InodeDealloc != 0 && d.TruncateLog != nil:
			v.truncateLog(d.TruncateLog)
		case d.DynFeatures&ondisk.DynInlineData == 0:
			// debugfs reads id2 as an extent list whatever it holds
			// (even a superblock's); so does this, within the block.
			v.extentList(rawExtentList(b[ondisk.DinodeID2Offset:]))
		}
	case "extent":
		v.f("Extent\n")
		eb, err := ondisk.DecodeExtentBlock(b)
		if err != nil {
			bad(err)
			break
		}
		v.extentBlock(eb, b)
		v.extentList(&eb.List)
	case "group":
		v.f("Group\n")
		g, err := ondisk.DecodeGroupDesc(b)
		if err != nil {
			bad(err)
			break
		}
		v.groupDesc(g, b, 0)
	case "dir":
		v.f("Dirblock\n")
		v.dirBlock(b)
	case "xattr":
		v.f("Xattr\n")
		xb, err := ondisk.DecodeXattrBlock(b)
		if err != nil {
			bad(err)
			break
		}
		if !xb.Indexed() {
			v.xattrHeader(xb.Header)
		}
	case "refcount":
		v.f("Refcount\n")
		r, err := ondisk.DecodeRefcountBlock(b)
		if err != nil {
			bad(err)
			break
		}
		v.refcountBlock(r, b)
	case "dxroot":
		v.f("DxRoot\n")
		r, err := ondisk.DecodeDXRoot(b)
		if err != nil {
			bad(err)
			break
		}
		v.dxRoot(r, b)
	case "dxleaf":
		v.f("DxLeaf\n")
		l, err := ondisk.DecodeDXLeaf(b)
		if err != nil {
			bad(err)
			break
		}
		v.dxLeaf(l, b)
	}
	v.f("\n")
}

// rawExtentList reads an extent list header and as many of its records
// as l_next_free_rec says and the bytes hold, without judging them.
func rawExtentList(b []byte) *ondisk.ExtentList {
	le := binary.LittleEndian
	if len(b) < ondisk.ExtentListHeaderSize {
		return &ondisk.ExtentList{}
	}
	l := &ondisk.ExtentList{TreeDepth: le.Uint16(b), Count: le.Uint16(b[2:])}
	n := int(le.Uint16(b[4:]))
	for i := 0; i < n; i++ {
		off := ondisk.ExtentListHeaderSize + i*ondisk.ExtentRecSize
		if off+ondisk.ExtentRecSize > len(b) {
			break
		}
		r := ondisk.ExtentRec{Cpos: le.Uint32(b[off:]), Blkno: le.Uint64(b[off+8:])}
		if l.TreeDepth > 0 {
			r.Clusters = le.Uint32(b[off+4:])
		} else {
			r.Clusters, r.Flags = uint32(le.Uint16(b[off+4:])), b[off+7]
		}
		l.Recs = append(l.Recs, r)
	}
	return l
}
