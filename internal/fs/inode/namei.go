package inode

import (
	"errors"
	"fmt"
	"syscall"

	"o2go/internal/fs/dir"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Caller is who asks for an operation: the owner of what it creates.
type Caller struct {
	UID, GID uint32
}

// NewNode describes an inode to create.
type NewNode struct {
	Mode   uint32 // type and permission bits (S_IF*, after umask)
	Rdev   uint32 // device number for character and block devices
	Target string // symlink target
	// Umask applies to the permission bits unless the parent directory
	// has a default ACL, which then decides them (POSIX).
	Umask uint32
}

func (f *FS) dirEnv(tx metacache.Tx) dir.Env {
	return dir.Env{C: f.C, SB: f.SB, Tx: tx, Meta: f.W.Alloc.Blocks, Data: f.W.Alloc.Clusters}
}

func (f *FS) linkMax() uint32 {
	if f.SB.Features.Incompat&ondisk.IncompatIndexedDirs != 0 {
		return ondisk.DxLinkMax
	}
	return ondisk.LinkMax
}

// Create makes a new inode called name in directory parent: a regular
// file, directory, symlink, device, FIFO or socket. It returns its inode.
func (f *FS) Create(parent Ref, name string, n NewNode, who Caller) (uint64, error) {
	if err := dir.ValidateName(name); err != nil {
		return 0, err
	}
	var ino uint64
	err := f.run(inodes(true, parent.Ino), 16, func(tx metacache.Tx) error {
		pd, pb, err := f.refForWrite(tx, parent)
		if err != nil {
			return err
		}
		if err := newNameIn(pd); err != nil {
			return err
		}
		if _, found, err := (dir.Dir{C: f.C, SB: f.SB, Inode: pd}).Lookup(name); err != nil {
			return err
		} else if found {
			return syscall.EEXIST
		}
		isDir := n.Mode&syscall.S_IFMT == syscall.S_IFDIR
		if isDir && pd.Links >= f.linkMax() {
			return syscall.EMLINK
		}
		d, b, err := f.newInode(tx, pd, n, who)
		if err != nil {
			return err
		}
		env := f.dirEnv(tx)
		if isDir {
			if err := dir.Init(env, d, parent.Ino); err != nil {
				return err
			}
		}
		if d.IsLnk() && d.FastSymlink == nil {
			if err := f.writeLocked(tx, d, []byte(n.Target), 0); err != nil {
				return err
			}
		}
		if !d.IsLnk() {
			if err := f.inheritACL(tx, pd, pb, d, b, n.Umask); err != nil {
				return err
			}
		}
		if err := saveInode(tx, d, b); err != nil {
			return err
		}
		if err := dir.Add(env, pd, name, d.Blkno, d.FileType()); err != nil {
			return err
		}
		if isDir {
			pd.Links++
		}
		now := diskTime(f.W.now())
		pd.Mtime, pd.Ctime = now, now
		ino = d.Blkno
		return saveInode(tx, pd, pb)
	})
	return ino, err
}

// newNameIn says whether a new name may go into directory d: ENOTDIR
// when it is none, ENOENT when it was removed. A removed directory can
// still be asked (on a clustered mount, by a node whose kernel knew it
// before another node's rmdir); as the VFS refuses a dead directory,
// nothing is created, linked or moved into it, or the name would vanish
// with it.
func newNameIn(d *ondisk.Dinode) error {
	switch {
	case !d.IsDir():
		return syscall.ENOTDIR
	case d.Links == 0:
		return syscall.ENOENT
	}
	return nil
}

// newInode allocates and initialises an inode in the slot's inode_alloc,
// the way the kernel's mknod does: inline data for files and directories
// when the volume has inline-data, a fast symlink when the target fits.
func (f *FS) newInode(tx metacache.Tx, parent *ondisk.Dinode, n NewNode, who Caller) (*ondisk.Dinode, *metacache.Buffer, error) {
	obj, err := f.W.Alloc.Inodes.NewMetaBlock(tx)
	if err != nil {
		return nil, nil, err
	}
	// Another node may still cache what this block held (an inode it saw
	// before this one's deletion): taking the new inode's lock makes it
	// let go.
	if err := f.W.Need(InodeLock(obj.Blkno), true); err != nil {
		return nil, nil, err
	}
	now := diskTime(f.W.now())
	mode := n.Mode
	gid := who.GID
	if parent.Mode&syscall.S_ISGID != 0 {
		gid = parent.GID
		if mode&syscall.S_IFMT == syscall.S_IFDIR {
			mode |= syscall.S_ISGID
		}
	}
	d := &ondisk.Dinode{
		Generation: f.W.nextGeneration(), SuballocSlot: obj.Slot, SuballocBit: obj.Bit, SuballocLoc: obj.GroupBlkno,
		Links: 1, UID: who.UID, GID: gid, Mode: uint16(mode), Flags: ondisk.InodeValid,
		Atime: now, Ctime: now, Mtime: now, Blkno: obj.Blkno, FSGeneration: f.C.FSGeneration(),
	}
	bs := f.SB.BlockSize()
	switch mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		d.Links = 2
		fallthrough
	case syscall.S_IFREG:
		if f.inlineSupported() {
			d.DynFeatures |= ondisk.DynInlineData
			d.Inline = &ondisk.InlineData{Data: make([]byte, ondisk.InlineDataBytes(bs, 0))}
		}
	case syscall.S_IFLNK:
		if len(n.Target) == 0 || len(n.Target) >= 4096 {
			return nil, nil, syscall.ENAMETOOLONG
		}
		if len(n.Target) < ondisk.FastSymlinkBytes(bs, 0) {
			d.FastSymlink = []byte(n.Target)
			d.Size = uint64(len(n.Target))
		}
	case syscall.S_IFCHR, syscall.S_IFBLK:
		if err := d.SetRdev(uint32(n.Rdev>>8)&0xfff, n.Rdev&0xff|(n.Rdev>>12)&0xfff00); err != nil {
			return nil, nil, syscall.EINVAL
		}
	case syscall.S_IFIFO, syscall.S_IFSOCK:
	default:
		return nil, nil, syscall.EINVAL
	}
	if d.Inline == nil && d.FastSymlink == nil {
		d.Extents = &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(bs, 0))}
	}
	b, err := tx.New(obj.Blkno)
	if err != nil {
		return nil, nil, err
	}
	return d, b, nil
}

// Link adds name in directory parent for inode ino (link(2)).
func (f *FS) Link(ino Ref, parent Ref, name string) error {
	if err := dir.ValidateName(name); err != nil {
		return err
	}
	return f.run(inodes(true, ino.Ino, parent.Ino), 8, func(tx metacache.Tx) error {
		d, b, err := f.refForWrite(tx, ino)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syscall.EPERM
		}
		if d.Links >= f.linkMax() {
			return syscall.EMLINK
		}
		if d.Links == 0 {
			return syscall.ENOENT
		}
		pd, pb, err := f.refForWrite(tx, parent)
		if err != nil {
			return err
		}
		if err := newNameIn(pd); err != nil {
			return err
		}
		if err := dir.Add(f.dirEnv(tx), pd, name, ino.Ino, d.FileType()); err != nil {
			return err
		}
		now := diskTime(f.W.now())
		d.Links++
		d.Ctime = now
		pd.Mtime, pd.Ctime = now, now
		if err := saveInode(tx, d, b); err != nil {
			return err
		}
		return saveInode(tx, pd, pb)
	})
}

// Unlink removes name from directory parent (unlink(2), or rmdir(2) when
// isDir). An inode left without links goes to the slot's orphan directory
// in the same transaction, and is deleted once nobody has it open.
func (f *FS) Unlink(parent Ref, name string, isDir bool) error {
	var victim uint64
	err := f.run(inodes(true, parent.Ino), 16, func(tx metacache.Tx) error {
		victim = 0 // a round that starts again starts from nothing
		pd, pb, err := f.refForWrite(tx, parent)
		if err != nil {
			return err
		}
		if !pd.IsDir() {
			return syscall.ENOTDIR
		}
		if name == "." || name == ".." {
			if isDir {
				return syscall.ENOTEMPTY
			}
			return syscall.EISDIR
		}
		e, found, err := (dir.Dir{C: f.C, SB: f.SB, Inode: pd}).Lookup(name)
		if err != nil {
			return err
		}
		if !found {
			return syscall.ENOENT
		}
		d, b, err := f.inodeForWrite(tx, e.Inode)
		if err != nil {
			return err
		}
		if d.IsDir() != isDir {
			if isDir {
				return syscall.ENOTDIR
			}
			return syscall.EISDIR
		}
		if isDir {
			if empty, err := (dir.Dir{C: f.C, SB: f.SB, Inode: d}).IsEmpty(); err != nil {
				return err
			} else if !empty {
				return syscall.ENOTEMPTY
			}
		}
		if _, err := dir.Remove(f.dirEnv(tx), pd, name); err != nil {
			return err
		}
		now := diskTime(f.W.now())
		pd.Mtime, pd.Ctime = now, now
		if isDir {
			pd.Links--
		}
		if err := f.dropLink(tx, d, isDir); err != nil {
			return err
		}
		d.Ctime = now
		if err := saveInode(tx, d, b); err != nil {
			return err
		}
		if d.Links == 0 {
			victim = d.Blkno
		}
		return saveInode(tx, pd, pb)
	})
	if err == nil && victim != 0 {
		_, err = f.deleteIfUnused(victim)
	}
	return err
}

// dropLink takes one name away from d; the last one (both, for a
// directory: its name and its ".") makes it an orphan.
func (f *FS) dropLink(tx metacache.Tx, d *ondisk.Dinode, isDir bool) error {
	if isDir || d.Links <= 1 {
		d.Links = 0
		return f.orphan(tx, d)
	}
	d.Links--
	return nil
}

// orphanName is the orphan directory entry of an inode.
func orphanName(blkno uint64) string { return fmt.Sprintf("%016x", blkno) }

// orphan puts d in the slot's orphan directory (ORPHANED_FL,
// i_orphaned_slot), so that a crash before its deletion finishes leaves it
// for recovery, as the kernel's ocfs2_orphan_add does.
func (f *FS) orphan(tx metacache.Tx, d *ondisk.Dinode) error {
	od, ob, err := f.inodeForWrite(tx, f.W.OrphanDir)
	if err != nil {
		return err
	}
	if err := dir.Add(f.dirEnv(tx), od, orphanName(d.Blkno), d.Blkno, d.FileType()); err != nil {
		return fmt.Errorf("adding inode %d to orphan_dir:%04d: %w", d.Blkno, f.W.Slot, err)
	}
	if d.IsDir() {
		od.Links++
	}
	d.Flags |= ondisk.InodeOrphaned
	d.OrphanedSlot = uint16(f.W.Slot)
	return saveInode(tx, od, ob)
}

// Open notes that ino is in use (the kernel knowing the inode); Release
// the reverse. An unlinked inode lives until its last use is released, as
// an unlinked file does on a local file system.
func (f *FS) Open(ino uint64) {
	if f.W == nil {
		return
	}
	f.W.mu.Lock()
	countUse(&f.W.open, ino, 1)
	f.W.mu.Unlock()
}

// Release drops a use and deletes the inode when it was what kept it
// alive (isOpen) and the inode has no name left.
func (f *FS) Release(ino uint64) error { return f.release(ino, false) }

// OpenHandle is Open for an open file or directory handle; on a clustered
// mount it also holds the inode's open lock, so that the inode outlives a
// removal on another node until the handle is released (ReleaseHandle).
// There, only handles keep an unlinked inode: the kernel here may know an
// inode another node deleted, and then hears ENOENT (see fusefs).
func (f *FS) OpenHandle(ino uint64) {
	if f.W == nil {
		return
	}
	f.W.mu.Lock()
	countUse(&f.W.handles, ino, 1)
	countUse(&f.W.open, ino, 1)
	f.W.mu.Unlock()
	if f.W.Opens != nil {
		f.W.Opens.Hold(ino)
	}
}

// ReleaseHandle is Release for a handle OpenHandle counted.
func (f *FS) ReleaseHandle(ino uint64) error {
	if f.W != nil && f.W.Opens != nil {
		f.W.Opens.Drop(ino)
	}
	return f.release(ino, true)
}

func (f *FS) release(ino uint64, handle bool) error {
	if f.W == nil {
		return nil
	}
	f.W.mu.Lock()
	uses := countUse(&f.W.open, ino, -1)
	handles := f.W.handles[ino]
	if handle {
		handles = countUse(&f.W.handles, ino, -1)
	}
	f.W.mu.Unlock()
	if uses == 0 && f.W.Alloc.DiscardReservation != nil {
		f.W.Alloc.DiscardReservation(ino)
	}
	// Only the end of what isOpen counts can free an unlinked inode.
	if f.W.clustered() && (!handle || handles > 0) || !f.W.clustered() && uses > 0 {
		return nil
	}
	_, err := f.deleteIfUnused(ino)
	return err
}

// countUse adds delta to (*m)[ino], dropping the entry at zero, and
// returns the new count. Under W.mu.
func countUse(m *map[uint64]int, ino uint64, delta int) int {
	if *m == nil {
		*m = map[uint64]int{}
	}
	n := (*m)[ino] + delta
	if n <= 0 {
		delete(*m, ino)
		return 0
	}
	(*m)[ino] = n
	return n
}

// clustered says whether other nodes share the volume.
func (w *Writer) clustered() bool { return w.Opens != nil }

// isOpen says whether this node keeps ino alive: any use on a local
// mount, an open handle on a clustered one (see OpenHandle).
func (f *FS) isOpen(ino uint64) bool {
	f.W.mu.Lock()
	defer f.W.mu.Unlock()
	if f.W.clustered() {
		return f.W.handles[ino] > 0
	}
	return f.W.open[ino] > 0
}

// deleteIfUnused deletes an orphaned inode nobody uses: not this node,
// nor, on a clustered mount, any other (its open lock). It reports whether
// it deleted.
func (f *FS) deleteIfUnused(ino uint64) (bool, error) {
	if f.isOpen(ino) {
		return false, nil
	}
	unused := func() (bool, error) {
		d, err := f.Stat(ino)
		if errors.Is(err, syscall.ESTALE) {
			return false, nil // another node deleted it first
		}
		if err != nil {
			return false, err
		}
		return d.Links == 0 && d.Flags&ondisk.InodeOrphaned != 0, nil
	}
	if ok, err := unused(); !ok || err != nil {
		return false, err
	}
	if f.W.Opens != nil {
		done, ok, err := f.W.Opens.Claim(ino)
		if err != nil || !ok {
			return false, err
		}
		defer done()
		// Look again under the claim: another node may have deleted it
		// (and the block may hold a new inode) meanwhile.
		if ok, err := unused(); !ok || err != nil {
			return false, err
		}
	}
	return true, f.deleting(ino, func() error { return f.Delete(ino) })
}

// deleting runs fn (the deletion of orphan ino) with ino marked as being
// deleted by this node, which lets inodeForWrite change it.
func (f *FS) deleting(ino uint64, fn func() error) error {
	w := f.W
	w.mu.Lock()
	countUse(&w.deletes, ino, 1)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		countUse(&w.deletes, ino, -1)
		w.mu.Unlock()
	}()
	return fn()
}

// mayChangeOrphan reports whether this node may change orphan ino: on a
// local mount always (nothing deletes it while the kernel uses it); on a
// clustered one only through an open handle here (whose open lock keeps
// every node from deleting it) or as its deleter. Without either, another
// node may be deleting it: a change now (a setxattr by a path this
// node's kernel looked up before the unlink) would be lost with the inode
// or leak what it allocated.
func (f *FS) mayChangeOrphan(ino uint64) bool {
	w := f.W
	if !w.clustered() {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.handles[ino] > 0 || w.deletes[ino] > 0
}

// Delete frees an orphaned inode: its data (in steps, through the truncate
// log), directory blocks, xattrs, then its orphan entry and its inode bit.
func (f *FS) Delete(ino uint64) error {
	d, err := f.Stat(ino)
	if err != nil {
		return err
	}
	if d.Flags&ondisk.InodeOrphaned == 0 || d.Links != 0 {
		return fmt.Errorf("inode %d: delete of an inode that is not an unlinked orphan (links %d)", ino, d.Links)
	}
	slot := int(d.OrphanedSlot)
	if err := f.destroyXattrsAll(ino); err != nil {
		return err
	}
	if d.Extents != nil && !d.IsDir() {
		if err := f.removeRange(ino, 0, ^uint32(0), &shrinkTo{}); err != nil {
			return err
		}
	}
	return f.run(inodes(true, ino), 16, func(tx metacache.Tx) error {
		d, b, err := f.inodeForWrite(tx, ino)
		if err != nil {
			return err
		}
		if d.IsDir() && d.Inline == nil {
			if err := dir.Destroy(f.dirEnv(tx), d); err != nil {
				return err
			}
		}
		if err := f.releaseRefcount(tx, d); err != nil {
			return err
		}
		orphanDir := f.W.OrphanDir
		if slot != f.W.Slot {
			if orphanDir, err = f.orphanDirOf(slot); err != nil {
				return err
			}
		}
		od, ob, err := f.inodeForWrite(tx, orphanDir)
		if err != nil {
			return err
		}
		if _, err := dir.Remove(f.dirEnv(tx), od, orphanName(ino)); err != nil {
			return fmt.Errorf("removing inode %d from its orphan directory: %w", ino, err)
		}
		if d.IsDir() {
			od.Links--
		}
		if err := saveInode(tx, od, ob); err != nil {
			return err
		}
		d.Flags &^= ondisk.InodeValid | ondisk.InodeOrphaned
		d.Dtime = uint64(f.W.now().Unix())
		if err := saveInode(tx, d, b); err != nil {
			return err
		}
		return f.W.Alloc.Inodes.FreeMetaBlock(tx, metaBlockOf(d))
	})
}

// RecoverOrphans deletes the inodes left in the slot's orphan directory
// (by a crash, or by uses that ended with the mount). It is called when the
// mount has no user: at mount time (the kernel's orphan recovery) and once
// the file system is detached at unmount, so it first forgets the uses
// still counted (the kernel need not send all its FORGETs before it
// unmounts). It returns how many it deleted; on a clustered mount an inode
// another node still uses stays for that node to delete.
func (f *FS) RecoverOrphans() (int, error) {
	w, err := f.writer()
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	handles := w.handles
	w.open, w.handles = nil, nil
	w.mu.Unlock()
	if w.Opens != nil {
		for ino, n := range handles {
			for range n {
				w.Opens.Drop(ino)
			}
		}
	}
	return f.RecoverOrphanDir(w.OrphanDir)
}

// RecoverOrphanDir deletes the inodes in orphan directory dir (this
// slot's, or a dead node's on a clustered volume) that nobody uses, and
// returns how many.
func (f *FS) RecoverOrphanDir(dir uint64) (int, error) {
	if _, err := f.writer(); err != nil {
		return 0, err
	}
	victims, err := f.orphans(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ino := range victims {
		// One still in use (here, or by another node of a clustered
		// mount) is deleted by its last user instead.
		deleted, err := f.deleteIfUnused(ino)
		if err != nil {
			return n, fmt.Errorf("orphan inode %d: %w", ino, err)
		}
		if deleted {
			n++
		}
	}
	return n, nil
}

// orphans lists the inodes in orphan directory dir.
func (f *FS) orphans(dir uint64) ([]uint64, error) {
	unlock, err := f.rlock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	od, err := f.Dir(dir)
	if err != nil {
		return nil, err
	}
	var victims []uint64
	err = od.ForEach(func(e ondisk.DirEntry) error {
		if e.Name != "." && e.Name != ".." {
			victims = append(victims, e.Inode)
		}
		return nil
	})
	return victims, err
}
