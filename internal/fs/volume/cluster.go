package volume

import (
	"errors"
	"fmt"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/journal"
	"o2go/internal/ondisk"
)

// What a clustered mount needs of the volume beyond a local one: the slot
// map, another slot's recovery, and dropping what this node cached (all
// of it, or what one inode's lock covered). The caller (the cluster
// mount) holds the volume's cluster lock as each says.

// slotMapLocation returns the block holding the slot map and its size.
func (v *Volume) slotMapLocation() (blk uint64, size int, err error) {
	ino, err := v.SystemFile(ondisk.SysSlotMap, -1)
	if err != nil {
		return 0, 0, err
	}
	d, err := v.Cache.Dinode(ino)
	if err != nil {
		return 0, 0, err
	}
	if d.Extents == nil || d.Extents.TreeDepth != 0 || len(d.Extents.Recs) == 0 {
		return 0, 0, fmt.Errorf("%s: slot_map (inode %d) is not one extent", v.Path, ino)
	}
	extended := v.SB.Features.Incompat&ondisk.IncompatExtendedSlotMap != 0
	size = ondisk.SlotMapSize(extended, int(v.SB.MaxSlots))
	if size > v.SB.BlockSize() {
		return 0, 0, fmt.Errorf("%s: a slot map of %d bytes spans blocks; o2go handles one block", v.Path, size)
	}
	return d.Extents.Recs[0].Blkno, size, nil
}

// ReadSlotMap reads the slot map from the disk (not the cache: other nodes
// write it). The caller holds the cluster lock, at least shared.
func (v *Volume) ReadSlotMap() (*ondisk.SlotMap, error) {
	blk, size, err := v.slotMapLocation()
	if err != nil {
		return nil, err
	}
	v.Cache.Forget(blk)
	buf, err := v.Cache.Get(blk)
	if err != nil {
		return nil, err
	}
	return ondisk.DecodeSlotMap(buf.Data[:size], v.SB.Features.Incompat&ondisk.IncompatExtendedSlotMap != 0, int(v.SB.MaxSlots))
}

// WriteSlotMap writes the slot map home and syncs it, as the kernel does
// (the slot map is not journaled). The caller holds the cluster lock
// exclusive.
func (v *Volume) WriteSlotMap(m *ondisk.SlotMap) error {
	blk, size, err := v.slotMapLocation()
	if err != nil {
		return err
	}
	v.Cache.Forget(blk)
	buf, err := v.Cache.Get(blk)
	if err != nil {
		return err
	}
	data := append([]byte(nil), buf.Data...)
	if err := m.Encode(data[:size]); err != nil {
		return err
	}
	if err := v.Cache.WriteBlock(blk, data); err != nil {
		return fmt.Errorf("%s: writing the slot map: %w", v.Path, err)
	}
	v.Cache.Forget(blk)
	if err := v.Dev.Sync(); err != nil {
		return fmt.Errorf("%s: syncing the slot map: %w", v.Path, err)
	}
	return nil
}

// WriteBack commits the journal and writes every logged block home, so
// that another node reading the disk sees this node's changes (before a
// downconvert from EX).
func (m *Mounted) WriteBack() error {
	return m.Journal.Checkpoint()
}

// ForgetCached drops every metadata block this node cached: another node
// may change them once this node's lock goes down to NL. A block the
// journal still pins would survive and later be read stale: that is an
// error (the lock must then not go down).
func (m *Mounted) ForgetCached() error {
	return m.forget("cached metadata blocks", m.Cache.ForgetAll)
}

// ForgetInode drops what this node cached under the cluster lock of inode
// (or refcount tree) blkno, and every block whose owner it does not know,
// when that lock goes down to NL: another node may change them now. The
// caller wrote everything home first (WriteBack), so a block of blkno the
// journal still pins is an error, as in ForgetCached.
func (m *Mounted) ForgetInode(blkno uint64) error {
	return m.forget(fmt.Sprintf("cached metadata blocks of inode %d", blkno), func() int { return m.Cache.ForgetOwner(blkno) })
}

// ForgetUnowned drops the cached blocks whose owner is not known (see
// metacache.Cache.ForgetUnowned).
func (m *Mounted) ForgetUnowned() {
	m.forget("", func() int { m.Cache.ForgetUnowned(); return 0 })
}

// forget runs drop under the metadata lock (no operation holds a cached
// block meanwhile); drop returns how many of the blocks it was to drop
// the journal still pins. A block can be pinned again between the
// caller's write-back and drop: a recovery of a dead node changes the
// allocators it frees into (the global bitmap...) under the volume lock
// alone, without their inode locks, while one of those locks goes down
// here. Such blocks are written home once more, and dropped then; they
// stay right meanwhile because every other node reads them only under the
// volume lock, which the recovery holds exclusive and writes home before
// it lets go. A block still pinned after that is an error.
func (m *Mounted) forget(what string, drop func() (kept int)) error {
	w := m.FS.W
	for attempt := 0; ; attempt++ {
		w.Meta.Lock()
		kept := drop()
		w.Meta.Unlock()
		if kept == 0 {
			return nil
		}
		if attempt == forgetAttempts {
			return fmt.Errorf("%s: %d %s are still pinned by the journal: another node's changes to them would be missed", m.Path, kept, what)
		}
		if err := m.WriteBack(); err != nil {
			return err
		}
	}
}

// forgetAttempts bounds forget's write-backs: a recovery pins a few
// blocks once, nothing pins them again and again.
const forgetAttempts = 3

// SlotRecovery says what RecoverSlot did.
type SlotRecovery struct {
	Slot    int
	Journal *journal.RecoveryReport
}

// RecoverSlot recovers the slot of a node that died: it replays the
// slot's journal if it is dirty, then gives back the clusters of its local
// alloc window and truncate log, as the kernel's ocfs2_recover_node does
// (the slot's orphans are deleted afterwards, through normal operations:
// RecoverOrphansOf). The caller holds the cluster lock exclusive with the
// recovery flag, and no operation of this node runs.
func (m *Mounted) RecoverSlot(slot int) (*SlotRecovery, error) {
	if slot == m.Slot || slot < 0 || slot >= int(m.SB.MaxSlots) {
		return nil, fmt.Errorf("%s: cannot recover slot %d (mounted in slot %d, %d slots)", m.Path, slot, m.Slot, m.SB.MaxSlots)
	}
	jblk, err := m.SystemFile(ondisk.SysJournal, slot)
	if err != nil {
		return nil, err
	}
	laBlk, err := m.SystemFile(ondisk.SysLocalAlloc, slot)
	if err != nil {
		return nil, err
	}
	tlBlk, err := m.SystemFile(ondisk.SysTruncateLog, slot)
	if err != nil {
		return nil, err
	}
	rep := &SlotRecovery{Slot: slot}
	if err := m.recoverSlotLocked(rep, jblk, laBlk, tlBlk); err != nil {
		return rep, err
	}
	// Home before the lock can go to another node (the checkpoint takes
	// the metadata lock itself: it must not be held here).
	if err := m.Journal.Checkpoint(); err != nil {
		return rep, err
	}
	return rep, nil
}

// recoverSlotLocked is RecoverSlot's work under the metadata lock.
func (m *Mounted) recoverSlotLocked(rep *SlotRecovery, jblk, laBlk, tlBlk uint64) error {
	slot := rep.Slot
	w := m.FS.W
	w.Meta.Lock()
	defer w.Meta.Unlock()
	// The dead node's journal holds changes made under the lock this
	// node now has: nothing this node cached of them is current.
	m.Cache.ForgetAll()
	var err error
	rep.Journal, err = journal.Recover(m.Cache, jblk, journal.Config{ClusterSize: m.SB.ClusterSize(), Name: fmt.Sprintf("journal:%04d", slot)})
	if err != nil {
		return fmt.Errorf("%s: replaying journal:%04d: %w", m.Path, slot, err)
	}
	m.Cache.ForgetAll()
	geo, err := alloc.NewGeometry(m.Volume.Super)
	if err != nil {
		return err
	}
	h, err := m.Journal.Begin(16)
	if err != nil {
		return err
	}
	tl := &extent.TruncateLog{C: m.Cache, Blkno: tlBlk, FreeClusters: m.global.FreeClusters}
	errs := []error{alloc.RecoverLocalAlloc(h, m.Cache, geo, laBlk, m.global)}
	if _, err := tl.Flush(h); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, h.Stop())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: recovering slot %d's local alloc and truncate log: %w", m.Path, slot, err)
	}
	return nil
}

// RecoverOrphansOf deletes the inodes left in slot's orphan directory
// (a dead node's files unlinked while open). Each is an ordinary delete,
// under the cluster lock like any change.
func (m *Mounted) RecoverOrphansOf(slot int) (int, error) {
	dir, err := m.SystemFile(ondisk.SysOrphanDir, slot)
	if err != nil {
		return 0, err
	}
	return m.FS.RecoverOrphanDir(dir)
}
