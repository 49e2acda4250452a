package inode

import (
	"syscall"

	"o2go/internal/fs/dir"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Rename flags (renameat2(2)).
const (
	RenameNoReplace = 1
	RenameExchange  = 2
)

func metaBlockOf(d *ondisk.Dinode) extent.MetaBlock {
	loc := d.SuballocLoc
	if loc == 0 {
		loc = d.Blkno - uint64(d.SuballocBit) // kernel-made inodes in contiguous groups
	}
	return extent.MetaBlock{Blkno: d.Blkno, Slot: d.SuballocSlot, Bit: d.SuballocBit, GroupBlkno: loc}
}

func (f *FS) orphanDirOf(slot int) (uint64, error) {
	name, err := ondisk.SystemFileName(ondisk.SysOrphanDir, slot)
	if err != nil {
		return 0, err
	}
	return f.Lookup(f.SB.SystemDirBlkno, name)
}

// editSet keeps one mutable copy per inode touched by an operation, so an
// inode seen twice (same parent, a directory and its parent) is changed
// through one copy and written once.
type editSet struct {
	f     *FS
	tx    metacache.Tx
	inode map[uint64]*ondisk.Dinode
	buf   map[uint64]*metacache.Buffer
	order []uint64
}

func (s *editSet) get(ino uint64) (*ondisk.Dinode, error) {
	if d, ok := s.inode[ino]; ok {
		return d, nil
	}
	d, b, err := s.f.inodeForWrite(s.tx, ino)
	if err != nil {
		return nil, err
	}
	s.inode[ino], s.buf[ino] = d, b
	s.order = append(s.order, ino)
	return d, nil
}

// getRef is get for an inode named by a Ref (ESTALE when its block
// holds another inode now).
func (s *editSet) getRef(r Ref) (*ondisk.Dinode, error) {
	d, err := s.get(r.Ino)
	if err != nil {
		return nil, err
	}
	if err := sameGeneration(d, r.Gen); err != nil {
		return nil, err
	}
	return d, nil
}

func (s *editSet) save() error {
	for _, ino := range s.order {
		if err := saveInode(s.tx, s.inode[ino], s.buf[ino]); err != nil {
			return err
		}
	}
	return nil
}

// Rename moves oldName in oldParent to newName in newParent (rename(2),
// renameat2(2) with RENAME_NOREPLACE or RENAME_EXCHANGE), in one
// transaction: the names, "..", link counts and an inode it replaces
// (orphaned when it loses its last name).
func (f *FS) Rename(from Ref, oldName string, to Ref, newName string, flags uint32) error {
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return syscall.EINVAL
	}
	if err := dir.ValidateName(newName); err != nil {
		return err
	}
	if oldName == "." || oldName == ".." || newName == "." || newName == ".." {
		return syscall.EBUSY
	}
	var victim uint64
	oldParent, newParent := from.Ino, to.Ino
	locks := inodes(true, oldParent, newParent)
	if oldParent != newParent {
		// A move between directories is serialized cluster-wide, as OCFS2
		// does, so that two nodes never move directories into each other.
		locks.Add(LockID{Kind: LockRename}, true)
	}
	err := f.run(locks, 32, func(tx metacache.Tx) error {
		victim = 0 // a round that starts again starts from nothing
		s := &editSet{f: f, tx: tx, inode: map[uint64]*ondisk.Dinode{}, buf: map[uint64]*metacache.Buffer{}}
		op, err := s.getRef(from)
		if err != nil {
			return err
		}
		np, err := s.getRef(to)
		if err != nil {
			return err
		}
		if !op.IsDir() {
			return syscall.ENOTDIR
		}
		if err := newNameIn(np); err != nil {
			return err
		}
		src, found, err := (dir.Dir{C: f.C, SB: f.SB, Inode: op}).Lookup(oldName)
		if err != nil {
			return err
		}
		if !found {
			return syscall.ENOENT
		}
		dst, exists, err := (dir.Dir{C: f.C, SB: f.SB, Inode: np}).Lookup(newName)
		if err != nil {
			return err
		}
		if exists && dst.Inode == src.Inode {
			return nil // same inode: rename(2) does nothing
		}
		switch {
		case flags&RenameNoReplace != 0 && exists:
			return syscall.EEXIST
		case flags&RenameExchange != 0 && !exists:
			return syscall.ENOENT
		}
		sd, err := s.get(src.Inode)
		if err != nil {
			return err
		}
		if sd.IsDir() && oldParent != newParent {
			if err := f.checkNotAncestor(s, src.Inode, newParent); err != nil {
				return err
			}
		}
		env := f.dirEnv(tx)
		now := diskTime(f.W.now())
		op.Mtime, op.Ctime, np.Mtime, np.Ctime = now, now, now, now
		sd.Ctime = now

		if flags&RenameExchange != 0 {
			dd, err := s.get(dst.Inode)
			if err != nil {
				return err
			}
			if dd.IsDir() && oldParent != newParent {
				if err := f.checkNotAncestor(s, dst.Inode, oldParent); err != nil {
					return err
				}
			}
			if _, err := dir.Retarget(env, op, oldName, dst.Inode, dd.FileType()); err != nil {
				return err
			}
			if _, err := dir.Retarget(env, np, newName, src.Inode, sd.FileType()); err != nil {
				return err
			}
			dd.Ctime = now
			if oldParent != newParent {
				if err := f.moveDotDot(env, s, sd, op, np); err != nil {
					return err
				}
				if err := f.moveDotDot(env, s, dd, np, op); err != nil {
					return err
				}
			}
			return s.save()
		}

		if exists {
			dd, err := s.get(dst.Inode)
			if err != nil {
				return err
			}
			switch {
			case sd.IsDir() && !dd.IsDir():
				return syscall.ENOTDIR
			case !sd.IsDir() && dd.IsDir():
				return syscall.EISDIR
			case dd.IsDir():
				if empty, err := (dir.Dir{C: f.C, SB: f.SB, Inode: dd}).IsEmpty(); err != nil {
					return err
				} else if !empty {
					return syscall.ENOTEMPTY
				}
			}
			if _, err := dir.Retarget(env, np, newName, src.Inode, sd.FileType()); err != nil {
				return err
			}
			if dd.IsDir() {
				np.Links-- // the replaced directory's ".." no longer points here
			}
			if err := f.dropLink(tx, dd, dd.IsDir()); err != nil {
				return err
			}
			dd.Ctime = now
			if dd.Links == 0 {
				victim = dd.Blkno
			}
		} else {
			if sd.IsDir() && oldParent != newParent && np.Links >= f.linkMax() {
				return syscall.EMLINK
			}
			if err := dir.Add(env, np, newName, src.Inode, sd.FileType()); err != nil {
				return err
			}
		}
		if _, err := dir.Remove(env, op, oldName); err != nil {
			return err
		}
		if oldParent != newParent {
			if err := f.moveDotDot(env, s, sd, op, np); err != nil {
				return err
			}
		}
		return s.save()
	})
	if err == nil && victim != 0 {
		_, err = f.deleteIfUnused(victim)
	}
	return err
}

// moveDotDot points a directory moved from parent from to parent to at
// its new parent, moving one link count with it.
func (f *FS) moveDotDot(env dir.Env, s *editSet, d, from, to *ondisk.Dinode) error {
	if !d.IsDir() {
		return nil
	}
	if _, err := dir.Retarget(env, d, "..", to.Blkno, ondisk.FileTypeDir); err != nil {
		return err
	}
	from.Links--
	to.Links++
	return nil
}

// checkNotAncestor refuses to move directory ino under itself: walking up
// from target through ".." must reach the root without meeting ino.
func (f *FS) checkNotAncestor(s *editSet, ino, target uint64) error {
	for cur, hops := target, 0; cur != f.SB.RootBlkno; hops++ {
		if cur == ino {
			return syscall.EINVAL
		}
		if hops > 1<<16 {
			return syscall.ELOOP
		}
		d, ok := s.inode[cur]
		if !ok {
			var err error
			if d, err = f.Inode(cur); err != nil {
				return err
			}
		}
		e, found, err := (dir.Dir{C: f.C, SB: f.SB, Inode: d}).Lookup("..")
		if err != nil {
			return err
		}
		if !found {
			return syscall.EIO
		}
		cur = e.Inode
	}
	return nil
}
