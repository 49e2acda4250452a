package volume

import (
	"errors"
	"fmt"
	"io/fs"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/dir"
	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// tunefs -N (tunefs.ocfs2's op_set_slot_count.c): more node slots. Each new
// slot gets its system files, made as mkfs makes them (initSystemInodeBody,
// localQuotaFileBlocks) from global_inode_alloc (which grows by a group when
// it is full) and linked into the system directory through fs/dir (which
// turns an inline system directory into a block one, and indexes it, when
// the new names no longer fit); then every journal is sized like the
// largest one and formatted, the slot map is reformatted for the new
// count, and s_max_slots is written last.
//
// Where o2go differs: tunefs.ocfs2 1.8.7 marks nothing while it adds slots.
// o2go sets TUNEFS_INPROG (with no s_tunefs_flag bit: fsck.ocfs2 knows
// none for this) from the first new file to the final superblock, so that
// an interrupted -N leaves a volume the kernel and o2go refuse to mount
// and that fsck.ocfs2 checks whole ("incomplete tunefs operation
// detected") and clears; run again, -N then reuses the files made so far,
// as tunefs.ocfs2 does.
//
// Removing slots (which tunefs.ocfs2 does by relinking the removed slots'
// allocator groups into the remaining ones) is not done yet: a smaller -N
// is refused.

// setSlotCount is -N.
func (t *tunefsVol) setSlotCount(n int) error {
	old := int(t.SB.MaxSlots)
	if n == old {
		t.verbosef("Device %q already has %d node slots; nothing to do\n", t.Path, n)
		return nil
	}
	if n < old {
		return tunefsRefuse("o2go tunefs cannot remove node slots yet (%d to %d): it would have to move the removed slots' allocator groups to the others; format a new volume, or keep the slots", old, n)
	}
	ok, err := t.r.interact("Change the number of node slots on device %q from %d to %d? ", t.Path, old, n)
	if err != nil || !ok {
		return err
	}
	if err := t.setInProgress(false, 0); err != nil {
		return err
	}
	if err := t.addSlotFiles(old, n); err != nil {
		return err
	}
	t.SB.MaxSlots = uint16(n)
	t.verbosef("Allocating space for the new journals\n")
	if err := t.resizeJournals(t.r.journalClusters, t.r.journalIncompat); err != nil {
		return err
	}
	if err := t.formatSlotMap(); err != nil {
		return err
	}
	if err := t.r.interrupt("slots-before-super"); err != nil {
		return err
	}
	t.clearInProgress(false, 0)
	return t.writeSuper()
}

// addSlotFiles makes the per-slot system files of slots [from, to), kind
// by kind as tunefs.ocfs2 does, skipping those that exist.
func (t *tunefsVol) addSlotFiles(from, to int) error {
	env, err := t.dirEnv()
	if err != nil {
		return err
	}
	giaBlk, err := t.SystemFile(ondisk.SysGlobalInodeAlloc, -1)
	if err != nil {
		return err
	}
	gia, err := alloc.OpenSuballocator(t.Cache, t.geo, giaBlk, alloc.GlobalInodeAllocSlot, t.gb, "global_inode_alloc")
	if err != nil {
		return err
	}
	total, done := 0, 0
	for _, info := range ondisk.SystemFiles {
		if info.PerSlot && (info.RoCompat == 0 || t.SB.Features.RoCompat&info.RoCompat != 0) {
			total += to - from
		}
	}
	for _, info := range ondisk.SystemFiles {
		if !info.PerSlot || info.RoCompat != 0 && t.SB.Features.RoCompat&info.RoCompat == 0 {
			continue
		}
		for slot := from; slot < to; slot++ {
			name, err := ondisk.SystemFileName(info.Kind, slot)
			if err != nil {
				return err
			}
			if err := t.addSystemFile(env, gia, info, name); err != nil {
				return fmt.Errorf("system file %s: %w", name, err)
			}
			done++
			t.r.progress("Adding slots", int64(done), int64(total))
			if err := t.r.interrupt("slot-file"); err != nil {
				return err
			}
		}
	}
	return nil
}

// addSystemFile makes one system file and links it into the system
// directory, unless it exists.
func (t *tunefsVol) addSystemFile(env dir.Env, gia *alloc.ChainAllocator, info ondisk.SystemFileInfo, name string) error {
	sysdir, err := t.inodeForWrite(t.SB.SystemDirBlkno)
	if err != nil {
		return err
	}
	if _, found, err := (dir.Dir{C: t.Cache, SB: t.SB, Inode: sysdir}).Lookup(name); err != nil {
		return err
	} else if found {
		t.verbosef("System file %q already exists\n", name)
		return nil
	}
	t.verbosef("Creating system file %q\n", name)
	obj, err := gia.ClaimObject(t.tx, 0)
	if err != nil {
		return noSpace(err)
	}
	now := t.now()
	gen := t.Super.FSGeneration
	d := &ondisk.Dinode{
		Generation: gen, FSGeneration: gen,
		SuballocSlot: ondisk.SuballocSlotGlobal, SuballocBit: obj.Bit, SuballocLoc: obj.GroupBlkno,
		Blkno: obj.Blkno, Mode: info.Mode, Flags: ondisk.InodeValid | ondisk.InodeSystem | info.Flags,
		Links: 1, Atime: now, Ctime: now, Mtime: now,
	}
	isDir := d.IsDir()
	if isDir {
		d.Links = 2
		if err := dir.Init(env, d, sysdir.Blkno); err != nil {
			return err
		}
	} else {
		initSystemInodeBody(d, t.bs(), uint(t.SB.ClusterSizeBits))
	}
	if err := t.writeNewInode(d); err != nil {
		return err
	}
	if info.RoCompat != 0 {
		if err := t.initLocalQuotaFile(d, info); err != nil {
			return err
		}
	}
	addErr := dir.Add(env, sysdir, name, d.Blkno, ondisk.FileTypeOfMode(info.Mode))
	if addErr == nil && isDir {
		sysdir.Links++
	}
	if err := t.writeInode(sysdir); err != nil {
		return err
	}
	if errors.Is(addErr, fs.ErrExist) {
		return fmt.Errorf("the system directory already holds the name: %w", addErr)
	}
	return addErr
}

// initLocalQuotaFile gives a new local quota file its two blocks (mkfs's
// content, localQuotaFileBlocks).
func (t *tunefsVol) initLocalQuotaFile(d *ondisk.Dinode, info ondisk.SystemFileInfo) error {
	typ := 0
	if info.RoCompat == ondisk.RoCompatGrpQuota {
		typ = 1
	}
	blocks := localQuotaFileBlocks(typ, t.bs())
	clusters := (uint64(len(blocks)) + t.bpc() - 1) / t.bpc()
	if err := t.resizeFile(d, uint32(clusters)); err != nil {
		return err
	}
	if err := t.zeroFile(d, ""); err != nil {
		return err
	}
	d.Size = uint64(len(blocks) * t.bs())
	if err := t.writeInode(d); err != nil {
		return err
	}
	for i, b := range blocks {
		if err := t.writeFileBlock(d, uint64(i), b, t.bs()-quotaReserved); err != nil {
			return err
		}
	}
	return nil
}

// writeFileBlock writes logical block i of file d, sealing its META_ECC
// check at checkOffset (when the volume has META_ECC and the offset is not
// negative).
func (t *tunefsVol) writeFileBlock(d *ondisk.Dinode, i uint64, data []byte, checkOffset int) error {
	blk, err := t.fileBlock(d, i)
	if err != nil {
		return err
	}
	if checkOffset >= 0 && t.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 {
		ondisk.SetBlockCheck(data, checkOffset)
	}
	return t.writeRaw(blk, data)
}

// fileBlock maps logical block i of extent-mapped file d.
func (t *tunefsVol) fileBlock(d *ondisk.Dinode, i uint64) (uint64, error) {
	c := uint32(i / t.bpc())
	m, err := extent.Lookup(t.Cache, d.Extents, c, fmt.Sprintf("inode %d", d.Blkno))
	if err != nil {
		return 0, err
	}
	if !m.Found {
		return 0, t.Cache.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "extents", Msg: fmt.Sprintf("block %d of the file is not mapped", i)}, d.Blkno)
	}
	return m.Rec.Blkno + (uint64(c-m.Rec.Cpos))*t.bpc() + i%t.bpc(), nil
}

// formatSlotMap sizes the slot map for s_max_slots in the volume's slot
// map format and empties every entry its clusters hold
// (ocfs2_format_slot_map): zeros for the extended format, 0xFFFF entries
// for the old one.
func (t *tunefsVol) formatSlotMap() error {
	blk, err := t.SystemFile(ondisk.SysSlotMap, -1)
	if err != nil {
		return err
	}
	d, err := t.inodeForWrite(blk)
	if err != nil {
		return err
	}
	if d.Extents == nil {
		return t.Cache.Annotate(&ondisk.CorruptError{Struct: "slot map dinode", Field: "id2", Msg: "not extent-mapped"}, blk)
	}
	extended := t.SB.Features.Incompat&ondisk.IncompatExtendedSlotMap != 0
	need := uint64(ondisk.SlotMapSize(extended, int(t.SB.MaxSlots)))
	cs := uint64(t.cs())
	if need > uint64(d.Clusters)*cs {
		if err := t.resizeFile(d, uint32((need+cs-1)/cs)); err != nil {
			return err
		}
	}
	if d.Size < need {
		d.Size = uint64(d.Clusters) * cs
	}
	if err := t.writeInode(d); err != nil {
		return err
	}
	fill := byte(0)
	if !extended {
		fill = 0xFF
	}
	data := make([]byte, t.bs())
	for i := range data {
		data[i] = fill
	}
	for i := uint64(0); i*uint64(t.bs()) < d.Size; i++ {
		if err := t.writeFileBlock(d, i, data, -1); err != nil {
			return err
		}
	}
	return nil
}
