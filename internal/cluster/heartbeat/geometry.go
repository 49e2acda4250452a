package heartbeat

import (
	"fmt"

	"o2go/internal/base"
	"o2go/internal/ondisk"
)

// Slots is the number of node slots in a heartbeat region (o2hb's "blocks":
// O2NM_MAX_NODES).
const Slots = ondisk.HeartbeatMaxNodes

// KillFirstSector is the sector of the heartbeat area, counted from its
// start, where the kill area begins. o2hb uses sectors 0..254 and nothing
// else reads sector 255, which is left unused as a guard.
const KillFirstSector = Slots + 1

// Geometry is where a heartbeat region lives on its device.
type Geometry struct {
	Start      int64 // byte offset of node 0's slot
	SectorSize int   // the device's logical sector size: one slot, one kill block
	Size       int64 // bytes of the heartbeat area (the heartbeat file's extent)
	// KillStart is the byte offset of node 0's kill block when HasKill.
	KillStart int64
	HasKill   bool
}

// SlotOffset is the byte offset of node n's heartbeat slot.
func (g Geometry) SlotOffset(n base.NodeID) int64 { return g.Start + int64(n)*int64(g.SectorSize) }

// KillOffset is the byte offset of node n's kill block.
func (g Geometry) KillOffset(n base.NodeID) int64 {
	return g.KillStart + int64(n)*int64(g.SectorSize)
}

// killAreaSize is the bytes of a kill area: one sector per node number.
func (g Geometry) killAreaSize() int64 { return int64(Slots) * int64(g.SectorSize) }

// PlaceKillInFile puts the kill area in the heartbeat file, at sector
// KillFirstSector, when the file is long enough; it reports whether it is.
func (g *Geometry) PlaceKillInFile() bool {
	if g.Size >= int64(KillFirstSector)*int64(g.SectorSize)+g.killAreaSize() {
		g.KillStart, g.HasKill = g.Start+int64(KillFirstSector)*int64(g.SectorSize), true
	}
	return g.HasKill
}

// PlaceKillAfter puts the kill area at fsEnd, the first byte past a
// heartbeat-only device's file system (mkfs.ocfs2 -H formats 1 MiB of the
// device whatever its size and nothing ever allocates there), when the
// device extends far enough; it reports whether it does.
func (g *Geometry) PlaceKillAfter(fsEnd, devSize int64) bool {
	start := (fsEnd + int64(g.SectorSize) - 1) / int64(g.SectorSize) * int64(g.SectorSize)
	if start+g.killAreaSize() <= devSize {
		g.KillStart, g.HasKill = start, true
	}
	return g.HasKill
}

// Check validates the geometry against a device of devSize bytes.
func (g Geometry) Check(devSize int64) error {
	if g.SectorSize < 512 || g.SectorSize > 4096 || g.SectorSize&(g.SectorSize-1) != 0 {
		return fmt.Errorf("heartbeat area: sector size %d is not a power of two from 512 to 4096", g.SectorSize)
	}
	if g.Start < 0 || g.Start%int64(g.SectorSize) != 0 {
		return fmt.Errorf("heartbeat area: start %d is not sector-aligned", g.Start)
	}
	if g.Size < int64(Slots)*int64(g.SectorSize) {
		return fmt.Errorf("heartbeat area: %d bytes hold fewer than %d slots of %d bytes", g.Size, Slots, g.SectorSize)
	}
	if g.Start+g.Size > devSize {
		return fmt.Errorf("heartbeat area: bytes %d..%d lie past the device's end at %d", g.Start, g.Start+g.Size, devSize)
	}
	if g.HasKill && (g.KillStart%int64(g.SectorSize) != 0 || g.KillStart+g.killAreaSize() > devSize) {
		return fmt.Errorf("kill area at %d does not fit the device (%d bytes) in whole sectors", g.KillStart, devSize)
	}
	return nil
}

// GeometryFromInode finds the heartbeat area of an OCFS2 volume (or of a
// heartbeat-only device made with mkfs.ocfs2 -H) from its heartbeat system
// file, as libocfs2's ocfs2_fill_heartbeat_desc does: the file must hold
// exactly one extent (tree depth 0) of at least 255 blocks, and the fs
// block must be at least the device's sector size.
func GeometryFromInode(hb *ondisk.Dinode, sb *ondisk.SuperBlock, sectorSize int) (Geometry, error) {
	if hb.Extents == nil {
		return Geometry{}, fmt.Errorf("heartbeat system file (inode %d) has no extent list", hb.Blkno)
	}
	el := hb.Extents
	if el.TreeDepth != 0 || len(el.Recs) != 1 {
		return Geometry{}, fmt.Errorf("heartbeat system file (inode %d): want one extent at depth 0, found %d at depth %d",
			hb.Blkno, len(el.Recs), el.TreeDepth)
	}
	blockSize := 1 << sb.BlockSizeBits
	if blockSize < sectorSize {
		return Geometry{}, fmt.Errorf("block size %d is smaller than the device's sector size %d", blockSize, sectorSize)
	}
	rec := el.Recs[0]
	bytes := int64(rec.Clusters) << sb.ClusterSizeBits
	if bytes/int64(blockSize) < Slots {
		return Geometry{}, fmt.Errorf("heartbeat system file (inode %d) has %d blocks, fewer than %d", hb.Blkno, bytes/int64(blockSize), Slots)
	}
	g := Geometry{Start: int64(rec.Blkno) * int64(blockSize), SectorSize: sectorSize, Size: bytes}
	g.PlaceKillInFile()
	return g, nil
}
