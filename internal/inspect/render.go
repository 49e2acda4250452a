package inspect

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"o2go/internal/ondisk"
)

// view prints OCFS2 structures in debugfs.ocfs2 1.8.7's text layout, field
// for field (dump.c). It knows the volume's block size and whether block
// checks are in use, which the layouts depend on.
type view struct {
	w       io.Writer
	bs      int
	metaECC bool
}

func (v *view) f(format string, args ...any) { fmt.Fprintf(v.w, format, args...) }

// blockCheck prints a block's stored check and, on a META_ECC volume, the
// check computed over the block when they differ.
func (v *view) blockCheck(block []byte, off int) {
	if off+ondisk.BlockCheckSize > len(block) {
		return
	}
	crc := binary.LittleEndian.Uint32(block[off:])
	ecc := binary.LittleEndian.Uint16(block[off+4:])
	v.f("\tCRC32: %08x   ECC: %04x\n", crc, ecc)
	if !v.metaECC {
		return
	}
	c := ondisk.ComputeBlockCheck(block, off)
	if c.CRC32e != crc || c.ECC != ecc {
		v.f("\t**FAILED CHECKSUM** Computed CRC32: %08x   ECC: %04x\n", c.CRC32e, c.ECC)
	}
}

// superBlock is debugfs's "stats" superblock part.
func (v *view) superBlock(sb *ondisk.SuperBlock) {
	v.f("\tRevision: %d.%d\n", sb.MajorRev, sb.MinorRev)
	v.f("\tMount Count: %d   Max Mount Count: %d\n", sb.MntCount, sb.MaxMntCount)
	v.f("\tState: %d   Errors: %d\n", sb.State, sb.Errors)
	v.f("\tCheck Interval: %d   Last Check: %s", sb.CheckInterval, ctimeLine(int64(sb.LastCheck)))
	v.f("\tCreator OS: %d\n", sb.CreatorOS)
	v.f("\tFeature Compat: %d %s\n", sb.Features.Compat, strings.Join(featureWords(ondisk.CategoryCompat, sb.Features.Compat), " "))
	v.f("\tFeature Incompat: %d %s\n", sb.Features.Incompat, strings.Join(featureWords(ondisk.CategoryIncompat, sb.Features.Incompat), " "))
	v.f("\tTunefs Incomplete: %d %s\n", sb.TunefsFlag, flagNames(uint32(sb.TunefsFlag), tunefsFlagNames))
	v.f("\tFeature RO compat: %d %s\n", sb.Features.RoCompat, strings.Join(featureWords(ondisk.CategoryRoCompat, sb.Features.RoCompat), " "))
	v.f("\tRoot Blknum: %d   System Dir Blknum: %d\n", sb.RootBlkno, sb.SystemDirBlkno)
	v.f("\tFirst Cluster Group Blknum: %d\n", sb.FirstClusterGroup)
	v.f("\tBlock Size Bits: %d   Cluster Size Bits: %d\n", sb.BlockSizeBits, sb.ClusterSizeBits)
	v.f("\tMax Node Slots: %d\n", sb.MaxSlots)
	v.f("\tExtended Attributes Inline Size: %d\n", sb.XattrInlineSize)
	v.f("\tLabel: %s\n", cstr(sb.VolumeLabel[:]))
	v.f("\tUUID: %s\n", hexUpper(sb.UUID[:]))
	v.f("\tHash: %d (0x%x)\n", sb.UUIDHash, sb.UUIDHash)
	s := sb.DxSeed
	v.f("\tDX Seeds: %d %d %d (0x%08x 0x%08x 0x%08x)\n", s[0], s[1], s[2], s[0], s[1], s[2])
	if sb.HasClusterInfo() {
		v.f("\tCluster stack: %s\n", cstr(sb.ClusterInfo.Stack[:]))
		v.f("\tCluster name: %s\n", cstr(sb.ClusterInfo.Cluster[:]))
	} else {
		v.f("\tCluster stack: classic o2cb\n")
	}
	flags := ""
	if isO2CBStack(sb) {
		flags = flagNames(uint32(sb.ClusterInfo.StackFlags), o2cbFlagNames)
	}
	v.f("\tCluster flags: %d %s\n", sb.ClusterInfo.StackFlags, flags)
}

// isO2CBStack is libocfs2's ocfs2_o2cb_stack: cluster info stamped "o2cb".
func isO2CBStack(sb *ondisk.SuperBlock) bool {
	return sb.HasClusterInfo() && string(sb.ClusterInfo.Stack[:]) == "o2cb"
}

var inodeFlagWords = []flagName{
	{"Valid", ondisk.InodeValid}, {"Unused2", ondisk.InodeUnused2}, {"Orphan", ondisk.InodeOrphaned},
	{"Unused3", ondisk.InodeUnused3}, {"System", ondisk.InodeSystem}, {"Superblock", ondisk.InodeSuperBlock},
	{"Localalloc", ondisk.InodeLocalAlloc}, {"Allocbitmap", ondisk.InodeBitmap}, {"Journal", ondisk.InodeJournal},
	{"Heartbeat", ondisk.InodeHeartbeat}, {"Chain", ondisk.InodeChain}, {"Dealloc", ondisk.InodeDealloc},
}

var dynFeatureWords = []flagName{
	{"InlineData", uint32(ondisk.DynInlineData)}, {"HasXattr", uint32(ondisk.DynHasXattr)},
	{"InlineXattr", uint32(ondisk.DynInlineXattr)}, {"IndexedDir", uint32(ondisk.DynIndexedDir)},
	{"Refcounted", uint32(ondisk.DynHasRefcount)},
}

// words prints each set flag's name followed by a space, as debugfs builds
// its flag lists (unknown bits are not named).
func words(bits uint32, table []flagName) string {
	var sb strings.Builder
	for _, f := range table {
		if bits&f.bit != 0 {
			sb.WriteString(f.name)
			sb.WriteByte(' ')
		}
	}
	return sb.String()
}

// inode is debugfs's dump_inode: the dinode header fields. raw is the
// inode's block, for the block check.
func (v *view) inode(d *ondisk.Dinode, raw []byte) {
	v.f("\tInode: %d   Mode: 0%o   Generation: %d (0x%x)\n", d.Blkno, d.Mode&0o777, d.Generation, d.Generation)
	v.f("\tFS Generation: %d (0x%x)\n", d.FSGeneration, d.FSGeneration)
	v.blockCheck(raw, ondisk.DinodeCheckOffset)
	v.f("\tType: %s   Attr: 0x%x   Flags: %s\n", typeName(d.Mode), d.Attr, words(d.Flags, inodeFlagWords))
	v.f("\tDynamic Features: (0x%x) %s\n", d.DynFeatures, words(uint32(d.DynFeatures), dynFeatureWords))
	if d.DynFeatures&ondisk.DynHasXattr != 0 {
		v.f("\tExtended Attributes Block: %d  Extended Attributes Inline Size: %d\n", d.XattrLoc, d.XattrInlineSize)
	}
	v.f("\tUser: %d (%s)   Group: %d (%s)   Size: %d\n", int32(d.UID), userName(d.UID), int32(d.GID), groupName(d.GID), d.Size)
	v.f("\tLinks: %d   Clusters: %d\n", d.Links&0xFFFF, d.Clusters)
	showTime := func(name string, t ondisk.DiskTime) {
		v.f("\t%s: 0x%x 0x%x -- %s", name, t.Sec, t.Nsec, ctimeNano(int64(t.Sec), t.Nsec))
	}
	showTime("ctime", d.Ctime)
	showTime("atime", d.Atime)
	showTime("mtime", d.Mtime)
	v.f("\tdtime: 0x%x -- %s", d.Dtime, ctimeLine(int64(d.Dtime)))
	v.f("\tRefcount Block: %d\n", d.RefcountLoc)
	v.f("\tLast Extblk: %d   Orphan Slot: %d\n", d.LastEBBlk, d.OrphanedSlot)
	slot := "Global"
	if d.SuballocSlot != ondisk.SuballocSlotGlobal {
		slot = fmt.Sprint(d.SuballocSlot)
	}
	v.f("\tSub Alloc Slot: %s   Sub Alloc Bit: %d", slot, d.SuballocBit)
	if d.SuballocLoc != 0 {
		v.f("   Sub Alloc Group %d\n", d.SuballocLoc)
	} else {
		v.f("\n")
	}
	if d.Flags&ondisk.InodeBitmap != 0 {
		b := d.Bitmap()
		v.f("\tBitmap Total: %d   Used: %d   Free: %d\n", b.Total, b.Used, b.Total-b.Used)
	}
	if d.Flags&ondisk.InodeJournal != 0 {
		j := d.Journal()
		v.f("\tJournal Flags: ")
		if j.Flags&ondisk.JournalDirty != 0 {
			v.f("Dirty ")
		}
		v.f("\n")
		v.f("\tRecovery Generation: %d\n", j.RecoveryGeneration)
	}
	if d.DynFeatures&ondisk.DynInlineData != 0 {
		idCount := 0
		if len(raw) >= ondisk.DinodeID2Offset+2 {
			idCount = int(binary.LittleEndian.Uint16(raw[ondisk.DinodeID2Offset:]))
		}
		v.f("\tInline Data Max: %d\n", idCount)
	} else if d.DynFeatures&ondisk.DynIndexedDir != 0 {
		v.f("\tIndexed Tree Root: %d\n", d.DxRoot)
	}
}

func (v *view) localAlloc(la *ondisk.LocalAlloc) {
	v.f("\tLocal Bitmap Offset: %d   Size: %d\n", la.BmOff, len(la.Bitmap))
}

func (v *view) truncateLog(tl *ondisk.TruncateLog) {
	v.f("\tTotal Records: %d   Used: %d\n", tl.Count, len(tl.Recs))
	v.f("\t##   %-10s   %-10s\n", "Start Cluster", "Num Clusters")
	for i, r := range tl.Recs {
		v.f("\t%-2d   %-10d   %-10d\n", i, r.Start, r.Clusters)
	}
}

func (v *view) fastSymlink(target []byte) {
	v.f("\tFast Symlink Destination: %s\n", cstr(target))
}

func (v *view) chainList(cl *ondisk.ChainList) {
	v.f("\tClusters per Group: %d   Bits per Cluster: %d\n", cl.CPG, cl.BPC)
	v.f("\tCount: %d   Next Free Rec: %d\n", cl.Count, len(cl.Recs))
	if len(cl.Recs) == 0 {
		return
	}
	v.f("\t##   %-10s   %-10s   %-10s   %s\n", "Total", "Used", "Free", "Block#")
	for i, r := range cl.Recs {
		v.f("\t%-2d   %-10d   %-10d   %-10d   %d\n", i, r.Total, r.Total-r.Free, r.Free, r.Blkno)
	}
}

func (v *view) extentList(el *ondisk.ExtentList) {
	v.f("\tTree Depth: %d   Count: %d   Next Free Rec: %d\n", el.TreeDepth, el.Count, len(el.Recs))
	if len(el.Recs) == 0 {
		return
	}
	if el.TreeDepth > 0 {
		v.f("\t## %-11s   %-12s   %-s\n", "Offset", "Clusters", "Block#")
	} else {
		v.f("\t## %-11s   %-12s   %-13s   %s\n", "Offset", "Clusters", "Block#", "Flags")
	}
	for i, r := range el.Recs {
		if el.TreeDepth > 0 {
			v.f("\t%-2d %-11d   %-12d   %d\n", i, r.Cpos, r.Clusters, r.Blkno)
		} else {
			v.f("\t%-2d %-11d   %-12d   %-13d   0x%x %s\n", i, r.Cpos, r.Clusters, r.Blkno, r.Flags, flagNames(uint32(r.Flags), extentFlagNames))
		}
	}
}

func (v *view) extentBlock(eb *ondisk.ExtentBlock, raw []byte) {
	v.f("\tSubAlloc Bit: %d   SubAlloc Slot: %d", eb.SuballocBit, eb.SuballocSlot)
	if eb.SuballocLoc != 0 {
		v.f("   SubAlloc Group: %d\n", eb.SuballocLoc)
	} else {
		v.f("\n")
	}
	v.f("\tBlknum: %d   Next Leaf: %d\n", eb.Blkno, eb.NextLeafBlk)
	v.blockCheck(raw, ondisk.ExtentBlockCheckOffset)
}

// longestFree is the longest run of clear bits in a group's bitmap.
func longestFree(g *ondisk.GroupDesc) int {
	best, run := 0, 0
	for i := 0; i < int(g.Bits); i++ {
		if g.Test(i) {
			run = 0
			continue
		}
		run++
		best = max(best, run)
	}
	return best
}

// groupDesc is debugfs's dump_group_descriptor: index 0 prints the chain
// header before the group's row.
func (v *view) groupDesc(g *ondisk.GroupDesc, raw []byte, index int) {
	if index == 0 {
		v.f("\tGroup Chain: %d   Parent Inode: %d  Generation: %d\n", g.Chain, g.ParentDinode, g.Generation)
		v.blockCheck(raw, ondisk.GroupDescCheckOffset)
		v.f("\t##   %-15s   %-6s   %-6s   %-6s   %-6s   %-6s\n", "Block#", "Total", "Used", "Free", "Contig", "Size")
	}
	v.f("\t%-2d   %-15d   %-6d   %-6d   %-6d   %-6d   %-6d\n", index, g.Blkno, g.Bits,
		int(g.Bits)-int(g.FreeBitsCount), g.FreeBitsCount, longestFree(g), len(g.Bitmap))
	if g.Discontig() && g.List != nil {
		v.extentList(g.List)
	}
}

// groupExtents is debugfs's grpextents: the free runs of a group, three per
// line.
func (v *view) groupExtents(g *ondisk.GroupDesc) {
	v.f("\tGroup# %d   Total: %d   Used: %d   Free: %d\n", g.Blkno, g.Bits, int(g.Bits)-int(g.FreeBitsCount), g.FreeBitsCount)
	found, total, longest := 0, 0, 0
	end := 0
	for end < int(g.Bits) {
		start := end
		for start < int(g.Bits) && g.Test(start) {
			start++
		}
		if start >= int(g.Bits) {
			break
		}
		end = start
		for end < int(g.Bits) && !g.Test(end) {
			end++
		}
		n := end - start
		if found == 0 {
			v.f("\t%-3s   %-6s   %-6s    ", "###", "Start", "Length")
			v.f("%-3s   %-6s   %-6s    ", "###", "Start", "Length")
			v.f("%-3s   %-6s   %-6s\n", "###", "Start", "Length")
		}
		found++
		switch found % 3 {
		case 1:
			v.f("\t%-3d   %-6d   %-6d    ", found, start, n)
		case 2:
			v.f("%-3d   %-6d   %-6d    ", found, start, n)
		default:
			v.f("%-3d   %-6d   %-6d\n", found, start, n)
		}
		total += n
		longest = max(longest, n)
	}
	avg := 0
	if found > 0 {
		avg = total / found
		if found%3 != 0 {
			v.f("\n")
		}
	}
	v.f("\tFree Extent Count: %d   Longest: %d   Average: %d\n\n", found, longest, avg)
}

// dirEntry is one line of debugfs's ls: short form, or long form with the
// entry's inode (nil when it could not be read).
func (v *view) dirEntry(e ondisk.DirEntry, long bool, d *ondisk.Dinode) {
	if !long {
		v.f("\t%-15d %-4d %-4d %-2d %s\n", e.Inode, e.RecLen, len(e.Name), e.FileType, cstr([]byte(e.Name)))
		return
	}
	v.f("\t%-15d %10s %3d %5d %5d %15d %s %s\n", e.Inode, permString(d.Mode), d.Links&0xFFFF,
		d.UID, d.GID, d.Size, lsTime(int64(d.Mtime.Sec)), cstr([]byte(e.Name)))
}

// dirBlock is debugfs's dump_dir_block: the trailer (if any), then every
// entry, used or not, until the first one that does not parse.
func (v *view) dirBlock(block []byte) {
	end := len(block)
	if ondisk.HasDirTrailerSignature(block) {
		off := ondisk.TrailerOffset(len(block))
		tr := block[off:]
		v.f("\tTrailer Block: %d   Inode: %d   Len: %d\n", binary.LittleEndian.Uint64(tr[0x28:]),
			binary.LittleEndian.Uint64(tr[0x30:]), binary.LittleEndian.Uint16(tr[0x08:]))
		v.f("\tLargest Hole: %d   Next Block: %d\n", binary.LittleEndian.Uint16(tr[0x0E:]), binary.LittleEndian.Uint64(tr[0x20:]))
		v.blockCheck(block, off+ondisk.DirTrailerCheckOffset)
		end = off
	}
	v.f("\tEntries:\n")
	area := block[:end]
	for off := 0; off+ondisk.DirEntryHeaderSize <= end; {
		recLen := int(binary.LittleEndian.Uint16(area[off+8:]))
		nameLen := int(area[off+10])
		if off+recLen > end || recLen < 8 || recLen%4 != 0 || nameLen+8 > recLen {
			return
		}
		name := area[off+12 : min(off+12+nameLen, end)]
		v.f("\t%-15d %-4d %-4d %-2d %s\n", binary.LittleEndian.Uint64(area[off:]), recLen, nameLen, area[off+11], cstr(name))
		off += recLen
	}
}

func (v *view) dxEntryList(l *ondisk.DXEntryList, traverse bool) {
	v.f("\tCount: %d  Num Used: %d\n", l.Count, len(l.Entries))
	if !traverse {
		return
	}
	v.f("\t## %-11s         %-13s\n", "Hash (Major Minor)", "Dir Block#")
	for i, e := range l.Entries {
		v.f("\t %-2d (0x%08x 0x%08x)    %-13d\n", i, e.MajorHash, e.MinorHash, e.DirentBlk)
	}
}

func (v *view) dxRoot(r *ondisk.DXRoot, raw []byte) {
	flags := ""
	if r.Flags&ondisk.DXRootFlagInline != 0 {
		flags = "Inline "
	}
	v.f("\tDir Index Root: %d   FS Generation: %d (0x%x)\n", r.Blkno, r.FSGeneration, r.FSGeneration)
	v.f("\tClusters: %d   Last Extblk: %d   Dir Inode: %d\n", r.Clusters, r.LastEBBlk, r.DirBlkno)
	slot := "Invalid Slot"
	if r.SuballocSlot != ondisk.SuballocSlotGlobal {
		slot = fmt.Sprint(r.SuballocSlot)
	}
	v.f("\tSub Alloc Slot: %s   Sub Alloc Bit: %d", slot, r.SuballocBit)
	if r.SuballocLoc != 0 {
		v.f("   SubAlloc Group: %d\n", r.SuballocLoc)
	} else {
		v.f("\n")
	}
	v.f("\tFlags: (0x%x) %s\n", r.Flags, flags)
	v.f("\tTotal Entry Count: %d\n", r.NumEntries)
	v.blockCheck(raw, ondisk.DXRootCheckOffset)
	if r.Inline() {
		v.dxEntryList(&r.Entries, false)
	}
}

func (v *view) dxLeaf(l *ondisk.DXLeaf, raw []byte) {
	v.f("\tDir Index Leaf: %d  FS Generation: %d (0x%x)\n", l.Blkno, l.FSGeneration, l.FSGeneration)
	v.blockCheck(raw, ondisk.DXLeafCheckOffset)
	v.dxEntryList(&l.List, true)
}

// slots is debugfs's slotmap: the occupied slots only.
func (v *view) slots(m *ondisk.SlotMap) {
	v.f("\t%5s   %5s\n", "Slot#", "Node#")
	for i, s := range m.Slots {
		if !s.Valid {
			continue
		}
		v.f("\t%5d   %5d\n", i, s.Node)
	}
}

// heartbeat is debugfs's hb: every 512-byte sector of the heartbeat file
// whose sequence is non-zero.
func (v *view) heartbeat(data []byte) {
	v.f("\t%4s: %4s %16s %16s %8s %6s\n", "node", "node", "seq", "generation", "checksum", "deadms")
	for i := 0; i < ondisk.HeartbeatMaxNodes && (i+1)*512 < len(data); i++ {
		s := data[i*512 : (i+1)*512]
		h, err := ondisk.DecodeHeartbeatBlock(s)
		if err != nil || h.Seq == 0 {
			continue
		}
		v.f("\t%4d: %4d %016x %016x %08x %6d\n", i, h.Node, h.Seq, h.Generation, h.Cksum, h.DeadMs)
	}
}

// xattrHeader is debugfs's dump_xattr: one line per entry, with the value
// tree of values stored outside the header.
func (v *view) xattrHeader(h *ondisk.XattrHeader) {
	v.f("\t###   %-4s   %-6s  %-13s  %s\n", "Type", "Inline", "Name Length", "Value Length")
	for i, e := range h.Entries {
		local := 0
		if e.Local() {
			local = 1
		}
		v.f("\t#%-2d   %-4d   %-6d  %-13d  %-13d\n", i, e.Index(), local, len(e.Name), e.ValueSize)
		if !e.Local() && e.Root != nil {
			v.extentList(&e.Root.List)
		}
	}
}

// frag is debugfs's frag line.
func (v *view) frag(ino uint64, clusters, extents uint32, clusterSize int) {
	level := float32(0)
	if clusters > 1 && extents > 0 {
		level = 100 * (float32(extents) / float32(clusters))
	}
	perMB := (ondisk.MaxClusterSize + clusterSize - 1) / clusterSize
	// The tool computes in C float and prints the values widened to
	// double; widen the same float32 values before formatting.
	v.f("Inode: %d\t%% fragmented: %.2f\tclusters: %d\textents: %d\tscore: %.0f\n", ino, float64(level), clusters, extents, float64(level*float32(perMB)))
}

func (v *view) refcountBlock(r *ondisk.RefcountBlock, raw []byte) {
	v.f("\tSubAlloc Bit: %d   SubAlloc Slot: %d", r.SuballocBit, r.SuballocSlot)
	if r.SuballocLoc != 0 {
		v.f("   SubAlloc Group: %d\n", r.SuballocLoc)
	} else {
		v.f("\n")
	}
	v.f("\tFS Generation: %d (0x%x)\n", r.FSGeneration, r.FSGeneration)
	v.f("\tBlknum: %d   Parent: %d\n", r.Blkno, r.Parent)
	v.f("\tCpos: %d   Last Leaf block: %d\n", r.Cpos, r.LastEBBlk)
	v.f("\tReftree Count: %d   Ref clusters: %d\n", r.Count, r.Clusters)
	// libocfs2 prints the refcount flags from their low byte.
	v.f("\tFlags: 0x%x %s\n", r.Flags, flagNames(r.Flags&0xFF, refcountFlagNames))
	v.blockCheck(raw, ondisk.RefcountBlockCheckOffset)
}

func (v *view) refcountRecords(r *ondisk.RefcountBlock) {
	l := &r.Records
	v.f("\tRefcount records: %d   Used: %d\n", l.Count, len(l.Recs))
	v.f("\t### %-20s   %-12s   %-12s\n", "Physical cpos", "Clusters", "Reference count")
	for i, rec := range l.Recs {
		v.f("\t%-3d %-20d   %-12d   %d\n", i, rec.Cpos, rec.Clusters, rec.Refcount)
	}
}
