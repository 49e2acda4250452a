package fsck

import (
	"encoding/binary"
	"errors"
	"fmt"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/journal"
	"o2go/internal/fs/metacache"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
)

// sysFiles are the system inodes fsck works with.
type sysFiles struct {
	globalBitmap, globalInodeAlloc, slotMap uint64
	orphanDirs                              []uint64 // 0: missing
	extentAllocs, inodeAllocs               []uint64
	journals, localAllocs, truncateLogs     []uint64
}

func (c *checker) lookupSystemFiles() error {
	var err error
	get := func(kind ondisk.SystemFileKind, slot int) uint64 {
		if err != nil {
			return 0
		}
		var b uint64
		b, err = c.v.SystemFile(kind, slot)
		return b
	}
	s := sysFiles{}
	s.globalBitmap = get(ondisk.SysGlobalBitmap, -1)
	s.globalInodeAlloc = get(ondisk.SysGlobalInodeAlloc, -1)
	s.slotMap = get(ondisk.SysSlotMap, -1)
	for i := 0; i < c.maxSlots; i++ {
		s.extentAllocs = append(s.extentAllocs, get(ondisk.SysExtentAlloc, i))
		s.inodeAllocs = append(s.inodeAllocs, get(ondisk.SysInodeAlloc, i))
		s.journals = append(s.journals, get(ondisk.SysJournal, i))
		s.localAllocs = append(s.localAllocs, get(ondisk.SysLocalAlloc, i))
		s.truncateLogs = append(s.truncateLogs, get(ondisk.SysTruncateLog, i))
	}
	if err != nil {
		return fmt.Errorf("while looking up the system files: %w", err)
	}
	for i := 0; i < c.maxSlots; i++ {
		b, e := c.v.SystemFile(ondisk.SysOrphanDir, i)
		if e != nil {
			b = 0 // pass 4 offers to create it
		}
		s.orphanDirs = append(s.orphanDirs, b)
	}
	c.sys = s
	return nil
}

// recoverBackupSuper is fsck.ocfs2 -r N: open the volume through backup
// superblock N and offer to copy it over the primary. With -n (or a "no")
// the check goes on with the backup's view of the volume, read-only: o2go
// departs here from fsck.ocfs2, which reopens the primary and so cannot
// check a volume whose primary superblock is gone.
func (c *checker) recoverBackupSuper() error {
	n := c.o.Backup
	if n < 1 || n > 6 {
		return fmt.Errorf("backup superblock number %d out of range 1..6", n)
	}
	v, err := volume.Open(c.o.Device, volume.OpenOptions{ReadOnly: true, Lenient: true, Backup: n})
	if err != nil {
		return err
	}
	blk := v.SuperBlkno
	bs := v.Cache.BlockSize()
	buf := make([]byte, bs)
	_, err = v.Dev.ReadAt(buf, int64(blk)*int64(bs))
	v.Close()
	if err != nil {
		return err
	}
	if !c.p.ask(RecoverBackupSuperblock, "Recover superblock information from backup block#%d?", blk) || !c.rw {
		if !c.rw {
			c.useBackup = n
		}
		return nil
	}
	w, err := volume.Open(c.o.Device, volume.OpenOptions{Lenient: true, Backup: n})
	if err != nil {
		return err
	}
	defer w.Close()
	put64(buf, diBlkno, ondisk.SuperBlockBlkno)
	if w.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 {
		ondisk.SetBlockCheck(buf, ondisk.DinodeCheckOffset)
	}
	if _, err := w.Dev.WriteAt(buf, int64(ondisk.SuperBlockBlkno)*int64(bs)); err != nil {
		return err
	}
	return w.Dev.Sync()
}

// journalSuper reads slot's journal inode and its JBD2 superblock.
func (c *checker) journalSuper(slot int) (*ondisk.Dinode, uint64, []byte, error) {
	ino := c.sys.journals[slot]
	d, err := c.v.Cache.Dinode(ino)
	if err != nil {
		return nil, 0, nil, err
	}
	if d.Extents == nil {
		return d, 0, nil, fmt.Errorf("journal inode %d has no extent list", ino)
	}
	m, err := extent.Lookup(c.v.Cache, d.Extents, 0, fmt.Sprintf("journal inode %d", ino))
	if err != nil {
		return d, 0, nil, err
	}
	if !m.Found {
		return d, 0, nil, fmt.Errorf("journal inode %d has no block 0", ino)
	}
	blk := m.Rec.Blkno
	if blk < ondisk.SuperBlockBlkno || blk > c.blocks {
		return d, 0, nil, fmt.Errorf("journal inode %d: block 0 at %d is out of range", ino, blk)
	}
	b, err := c.readBlock(blk)
	return d, blk, b, err
}

// Errors check_journals_func classifies, as libocfs2 names them.
var (
	errJournalTooSmall  = errors.New("journal is too small")
	errUnsuppFeature    = errors.New("journal has unsupported incompat features")
	errRoUnsuppFeature  = errors.New("journal has unsupported ro-compat features")
	knownJBD2Incompat   = ondisk.JBD2FeatureIncompatRevoke | ondisk.JBD2FeatureIncompat64Bit
	minJournalSizeBytes = uint64(4 << 20)
)

type journalCheck struct {
	err                        error
	clusters                   uint32
	compat, incompat, roCompat uint32
}

// checkJournals is fsck.ocfs2's o2fsck_check_journals: every slot's
// journal must be readable, of one size and with one feature set.
func (c *checker) checkJournals() error {
	info := make([]journalCheck, c.maxSlots)
	var maxClusters uint32
	var maxCompat, maxIncompat, maxRo uint32
	for i := range info {
		ji := &info[i]
		d, _, b, err := c.journalSuper(i)
		if err != nil {
			ji.err = err
			continue
		}
		ji.clusters = d.Clusters
		if binary.BigEndian.Uint32(b) != ondisk.JBD2Magic {
			ji.err = errors.New("bad journal superblock magic")
			continue
		}
		ji.compat = binary.BigEndian.Uint32(b[0x24:])
		ji.incompat = binary.BigEndian.Uint32(b[0x28:])
		ji.roCompat = binary.BigEndian.Uint32(b[0x2C:])
		switch {
		case ji.incompat&^knownJBD2Incompat != 0:
			ji.err = errUnsuppFeature
			continue
		case ji.roCompat != 0:
			ji.err = errRoUnsuppFeature
			continue
		case ji.clusters == 0:
			ji.err = errJournalTooSmall
			continue
		}
		maxClusters = max(maxClusters, ji.clusters)
		maxCompat |= ji.compat
		maxIncompat |= ji.incompat
		maxRo |= ji.roCompat
	}
	haveGood, consistent := false, true
	var known error
	for _, ji := range info {
		if ji.err == nil {
			haveGood = true
			continue
		}
		if ji.err != errJournalTooSmall && ji.err != errUnsuppFeature && ji.err != errRoUnsuppFeature {
			consistent = false
			continue
		}
		if known != nil {
			if known != ji.err {
				consistent = false
			}
			continue
		}
		known = ji.err
	}
	if !haveGood {
		if !consistent || known == nil {
			return c.fail("while checking journals: %v", info[0].err)
		}
		if known != errJournalTooSmall {
			return c.fail("%v on all journals.  Please upgrade to the latest version of fsck", known)
		}
		maxClusters = uint32((minJournalSizeBytes + 1<<c.csBits - 1) >> c.csBits)
	}
	for i := range info {
		ji := &info[i]
		name := fmt.Sprintf("journal:%04d", i)
		if ji.err != nil && ji.err != errJournalTooSmall && ji.err != errUnsuppFeature && ji.err != errRoUnsuppFeature {
			if c.p.ask(JournalFileInvalid, "journal file %s is invalid, regenerate it?", name) {
				ji.err = c.makeJournal(i, maxClusters, maxCompat, maxIncompat, maxRo)
				c.noteUnfixed(ji.err)
			}
			continue
		}
		if ji.err == errUnsuppFeature || ji.err == errRoUnsuppFeature {
			if c.p.ask(JournalUnknownFeature, "journal file %s has unknown features.  However, other journals have only known features, so this is likely a corruption.  If you think your filesystem may be newer than this version of fsck.ocfs2, say N here and grab the latest version of fsck.ocfs2.  Reset the journal features to match other journals?", name) {
				ji.err = c.makeJournal(i, ji.clusters, maxCompat, maxIncompat, maxRo)
				c.noteUnfixed(ji.err)
			}
		} else if ji.compat != maxCompat || ji.incompat != maxIncompat || ji.roCompat != maxRo {
			if c.p.ask(JournalMissingFeature, "journal file %s is missing features that are set on other journal files.  Set these features?", name) {
				ji.err = c.makeJournal(i, ji.clusters, maxCompat, maxIncompat, maxRo)
				c.noteUnfixed(ji.err)
			}
		}
		if ji.clusters != maxClusters {
			if c.p.ask(JournalTooSmall, "journal file %s is too small, extend it?", name) {
				ji.err = c.makeJournal(i, maxClusters, ji.compat, ji.incompat, ji.roCompat)
				c.noteUnfixed(ji.err)
			}
		}
	}
	return nil
}

// noteUnfixed turns the last "yes" into a problem left when its repair
// failed, and says why.
func (c *checker) noteUnfixed(err error) {
	if err == nil {
		return
	}
	if n := len(c.p.found); n > 0 {
		c.p.found[n-1].Fixed = false
	}
	c.printf("** %v **\n", err)
}

// makeJournal is ocfs2_make_journal for a journal of its current size:
// a fresh, empty log. Growing a journal is not done by o2go fsck.
func (c *checker) makeJournal(slot int, clusters, compat, incompat, ro uint32) error {
	ino := c.sys.journals[slot]
	d, err := c.v.Cache.Dinode(ino)
	if err != nil {
		return err
	}
	if uint64(clusters)<<c.csBits < minJournalSizeBytes {
		return fmt.Errorf("journal:%04d: %d clusters is below the 4 MiB minimum", slot, clusters)
	}
	if clusters != d.Clusters {
		return fmt.Errorf("journal:%04d has %d clusters, %d wanted: o2go fsck does not resize journals (tunefs.ocfs2 -J does)", slot, d.Clusters, clusters)
	}
	blocks := uint64(d.Clusters) * c.bpc
	if blocks < 1024 {
		return fmt.Errorf("journal:%04d: too small", slot)
	}
	zero := make([]byte, c.bs)
	first := uint64(0)
	err = extent.Walk(c.v.Cache, d.Extents, fmt.Sprintf("journal inode %d", ino), func(r ondisk.ExtentRec) error {
		for i := uint64(0); i < uint64(r.Clusters)*c.bpc; i++ {
			if first == 0 && r.Cpos == 0 && i == 0 {
				first = r.Blkno
			}
			if err := c.writeBlock(r.Blkno+i, zero, -1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if first == 0 {
		return fmt.Errorf("journal:%04d has no block 0", slot)
	}
	sb := &ondisk.JournalSuperBlock{BlockType: 4, BlockSize: uint32(c.bs), MaxLen: uint32(blocks), First: 1,
		SSequence: 1, Start: 1, FeatureCompat: compat, FeatureIncompat: incompat, FeatureRoCompat: ro,
		UUID: c.sb.UUID, Users: make([][16]byte, 1)}
	if c.bs == 512 {
		sb.First = 2
	}
	b := make([]byte, c.bs)
	sb.Encode(b)
	return c.writeBlock(first, b, -1)
}

// maybeReplayJournals is fsck.ocfs2's: a slot whose journal is marked
// dirty and whose log is not empty is replayed (not under -n), and the
// volume is opened again.
func (c *checker) maybeReplayJournals() error {
	should := false
	var replay []int
	for i := 0; i < c.maxSlots; i++ {
		d, _, b, err := c.journalSuper(i)
		if err != nil {
			return c.fail("while reading the journal super block in slot %d's journal: %v", i, err)
		}
		if d.Journal().Flags&ondisk.JournalDirty == 0 {
			continue
		}
		c.hasDirtyJrnl = true
		if binary.BigEndian.Uint32(b[0x1C:]) != 0 {
			should = true
			replay = append(replay, i)
		}
	}
	if !should {
		return nil
	}
	if !c.rw {
		c.printf("** Skipping journal replay because -n was given.  There may be spurious errors that journal replay would fix. **\n")
		return nil
	}
	c.printf("%s wasn't cleanly unmounted by all nodes.  Attempting to replay the journals for nodes that didn't unmount cleanly\n", c.o.Device)
	c.printf("Checking each slot's journal.\n")
	trouble := false
	for _, i := range replay {
		c.printf("Replaying slot %d's journal.\n", i)
		rep, err := journal.Replay(c.v.Cache, c.sys.journals[i], journal.Config{ClusterSize: 1 << c.csBits, Name: fmt.Sprintf("journal:%04d", i)})
		if err != nil {
			c.printf("Slot %d's journal can not be replayed.\n", i)
			c.verbosef("  %v\n", err)
			trouble = true
			continue
		}
		if rep.Damage != nil {
			c.verbosef("  slot %d's log ended early: %v\n", i, rep.Damage)
		}
		c.printf("Slot %d's journal replayed successfully.\n", i)
		c.replayed = true
	}
	if trouble {
		c.printf("*** There were problems replaying journals.  Be careful in telling fsck to make repairs to this filesystem.\n")
	}
	if c.replayed {
		// The replay may have rewritten any block, the superblock too.
		return c.open()
	}
	return nil
}

// clearJournalFlags drops DIRTY from every journal once the check passed
// (fsck.ocfs2 prints each one).
func (c *checker) clearJournalFlags() error {
	if !c.hasDirtyJrnl {
		return nil
	}
	for i, ino := range c.sys.journals {
		b, err := c.readBlock(ino)
		if err != nil {
			return err
		}
		d := dinode(b)
		if d.flags()&(ondisk.InodeValid|ondisk.InodeSystem|ondisk.InodeJournal) != ondisk.InodeValid|ondisk.InodeSystem|ondisk.InodeJournal {
			return fmt.Errorf("journal inode %d is not a valid system journal", ino)
		}
		if d.journalFlags()&ondisk.JournalDirty == 0 {
			continue
		}
		d.setJournalFlags(d.journalFlags() &^ ondisk.JournalDirty)
		if err := c.writeBlock(ino, d, ondisk.DinodeCheckOffset); err != nil {
			return err
		}
		c.printf("Slot %d's journal dirty flag removed\n", i)
	}
	return nil
}

// formatSlotMap empties the slot map (no node has the volume mounted
// after a check), writing only when an entry is in use.
func (c *checker) formatSlotMap() error {
	d, err := c.v.Cache.Dinode(c.sys.slotMap)
	if err != nil {
		return err
	}
	if d.Flags&(ondisk.InodeValid|ondisk.InodeSystem) != ondisk.InodeValid|ondisk.InodeSystem || d.Extents == nil {
		return fmt.Errorf("slot map inode %d is not a valid system file", c.sys.slotMap)
	}
	extended := c.sb.Features.Incompat&ondisk.IncompatExtendedSlotMap != 0
	size := d.Size
	blocks := (size + uint64(c.bs) - 1) / uint64(c.bs)
	for lb := uint64(0); lb < blocks; lb++ {
		m, err := extent.Lookup(c.v.Cache, d.Extents, uint32(lb/c.bpc), "slot map")
		if err != nil {
			return err
		}
		if !m.Found {
			continue
		}
		phys := m.Rec.Blkno + (lb - uint64(m.Rec.Cpos)*c.bpc)
		b, err := c.readBlock(phys)
		if err != nil {
			return err
		}
		want := make([]byte, c.bs)
		if !extended {
			for off := 0; off+1 < c.bs && uint64(lb)*uint64(c.bs)+uint64(off) < size; off += 2 {
				put16(want, off, 0xFFFF)
			}
		}
		if string(b) == string(want) {
			continue
		}
		if err := c.writeBlock(phys, want, -1); err != nil {
			return err
		}
	}
	return nil
}

// slotRecovery is fsck.ocfs2's o2fsck_slot_recovery: with write access,
// give local alloc windows and truncate logs back to the global bitmap
// and (without -f) finish the orphans, as the kernel's recovery of a dead
// slot would.
func (c *checker) slotRecovery() error {
	if !c.rw {
		c.printf("** Skipping slot recovery because -n was given. **\n")
		return nil
	}
	tx := &metacache.DirectTx{C: c.v.Cache}
	for slot, blk := range c.sys.localAllocs {
		if err := c.clearLocalAlloc(tx, slot, blk); err != nil {
			return err
		}
	}
	for slot, blk := range c.sys.truncateLogs {
		probe := &extent.TruncateLog{C: c.v.Cache, Blkno: blk}
		used, _, err := probe.Used()
		if err != nil {
			return err
		}
		if used == 0 {
			continue
		}
		env, err := c.repairEnvironment()
		if err != nil {
			return err
		}
		tl := &extent.TruncateLog{C: c.v.Cache, Blkno: blk, FreeClusters: env.global.FreeClusters}
		n, err := tl.Flush(tx)
		if err != nil {
			return err
		}
		if tx.Err != nil {
			return tx.Err
		}
		c.changed = true
		if n > 0 {
			c.printf("Slot %d's truncate log replayed successfully\n", slot)
		}
	}
	if c.o.Force {
		return nil
	}
	if err := c.replayOrphanDirs(true); err != nil {
		return err
	}
	for slot, blk := range c.sys.orphanDirs {
		if blk == 0 {
			return fmt.Errorf("orphan_dir:%04d is missing", slot)
		}
		b, err := c.readBlock(blk)
		if err != nil {
			return err
		}
		d := dinode(b)
		if d.flags()&(ondisk.InodeValid|ondisk.InodeSystem) != ondisk.InodeValid|ondisk.InodeSystem || !d.isDir() {
			return fmt.Errorf("orphan dir inode %d is not a valid system directory", blk)
		}
		if d.links() == 2 {
			continue
		}
		d.setLinks(2)
		if err := c.writeBlock(blk, d, ondisk.DinodeCheckOffset); err != nil {
			return err
		}
		c.changed = true
		c.printf("Slot %d's orphan dir replayed successfully\n", slot)
	}
	return nil
}

// clearLocalAlloc empties slot's local alloc, giving the clusters of its
// window that no file took back to the global bitmap (fsck.ocfs2's
// ocfs2_clear_local_alloc). It reads the inode raw and, as fsck.ocfs2,
// trusts the window's fields as they are: damage the checks of pass 1
// would report (a used count past the total) is simply cleared, and a
// window the global bitmap does not hold in use is an error that forces
// the check.
func (c *checker) clearLocalAlloc(tx *metacache.DirectTx, slot int, blk uint64) error {
	b, err := c.readBlock(blk)
	if err != nil {
		return err
	}
	d := dinode(b)
	if d.flags()&(ondisk.InodeValid|ondisk.InodeSystem|ondisk.InodeBitmap) != ondisk.InodeValid|ondisk.InodeSystem|ondisk.InodeBitmap {
		return fmt.Errorf("local alloc inode %d is not a valid system bitmap", blk)
	}
	total := d.bmTotal()
	if total == 0 {
		return nil
	}
	la := d[diID2:]
	var runs []alloc.ClusterRun
	if d.bmUsed() != total {
		bm := la[0x10 : 0x10+localAllocSize(c.bs)]
		off := uint64(get32(la, 0))
		n := min(int(total), len(bm)*8)
		for i := 0; i < n; {
			if testBit(bm, i) {
				i++
				continue
			}
			j := i
			for j < n && !testBit(bm, j) {
				j++
			}
			if off+uint64(j) > uint64(c.clusters) {
				return fmt.Errorf("local alloc inode %d: clusters %d..%d of its window are beyond the volume's %d", blk, off+uint64(i), off+uint64(j)-1, c.clusters)
			}
			runs = append(runs, alloc.ClusterRun{Start: uint32(off) + uint32(i), Count: j - i})
			i = j
		}
	}
	if len(runs) > 0 {
		env, err := c.repairEnvironment()
		if err != nil {
			return err
		}
		if err := env.global.FreeClusterRuns(tx, runs); err != nil {
			return fmt.Errorf("local alloc inode %d: %w", blk, err)
		}
		if tx.Err != nil {
			return tx.Err
		}
	}
	d.setBmTotal(0)
	d.setBmUsed(0)
	put32(la, 0, 0)
	clear(la[0x10 : 0x10+localAllocSize(c.bs)])
	if err := c.writeBlock(blk, d, ondisk.DinodeCheckOffset); err != nil {
		return err
	}
	c.changed = true
	if len(runs) > 0 {
		c.printf("Slot %d's local alloc replayed successfully\n", slot)
	}
	return nil
}
