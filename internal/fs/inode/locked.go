package inode

import (
	"errors"

	"o2go/internal/fs/xattr"
	"o2go/internal/ondisk"
)

// Stat returns a snapshot of inode ino (the FUSE getattr path). An inode
// that was deleted since the caller learned its number is ESTALE, as for
// a stale NFS handle: the kernel then looks the name up again.
func (f *FS) Stat(ino uint64) (*ondisk.Dinode, error) {
	unlock, err := f.rlock(ino)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return f.Inode(ino)
}

// isFreedInode reports whether err is the identity check failing on an
// inode block whose VALID flag is off: a deleted inode, not damage.
func isFreedInode(err error) bool {
	var ce *ondisk.CorruptError
	return errors.As(err, &ce) && ce.Struct == "dinode" && ce.Field == "i_flags"
}

// LookupStat finds name in directory parent and returns its inode: the
// name under the directory's lock, then the inode under its own (on a
// clustered mount the two steps may see another node's change between
// them, as a lookup racing with a rename may on any file system).
func (f *FS) LookupStat(parent Ref, name string) (*ondisk.Dinode, error) {
	unlock, err := f.rlock(parent.Ino)
	if err != nil {
		return nil, err
	}
	ino, err := f.lookupIn(parent, name)
	unlock()
	if err != nil {
		return nil, err
	}
	return f.Stat(ino)
}

// ReadFile reads file data like pread, under the metadata lock.
func (f *FS) ReadFile(ino uint64, p []byte, off int64) (int, error) {
	unlock, err := f.rlock(ino)
	if err != nil {
		return 0, err
	}
	defer unlock()
	d, err := f.Inode(ino)
	if err != nil {
		return 0, err
	}
	return f.ReadAt(d, p, off)
}

// ReadLink returns the target of symlink ino.
func (f *FS) ReadLink(ino Ref) (string, error) {
	unlock, err := f.rlock(ino.Ino)
	if err != nil {
		return "", err
	}
	defer unlock()
	d, err := f.refInode(ino)
	if err != nil {
		return "", err
	}
	return f.Readlink(d)
}

// ListXattrs returns the full names of ino's xattrs.
func (f *FS) ListXattrs(ino Ref) ([]string, error) {
	unlock, err := f.rlock(ino.Ino)
	if err != nil {
		return nil, err
	}
	defer unlock()
	x, err := f.refXattrs(ino)
	if err != nil {
		return nil, err
	}
	attrs, err := x.List()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(attrs))
	for i, a := range attrs {
		names[i] = a.Name
	}
	return names, nil
}

// GetXattr returns the value of ino's xattr name; found is false without it.
func (f *FS) GetXattr(ino Ref, name string) ([]byte, bool, error) {
	unlock, err := f.rlock(ino.Ino)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	x, err := f.refXattrs(ino)
	if err != nil {
		return nil, false, err
	}
	return x.Get(name)
}

// DirEntry is one name read from a directory, with the cookie that
// resumes a listing right after it.
type DirEntry struct {
	ondisk.DirEntry
	Next uint64
}

// ReadDir lists directory ino from cookie (0: the start), calling fn for
// each live entry until fn returns false. Cookies are positions (block
// index and offset in the block, plus one), so they stay valid while the
// directory changes: a listing resumed after an insert or delete neither
// repeats nor skips names that were there all along.
func (f *FS) ReadDir(ino Ref, cookie uint64, fn func(e DirEntry) bool) error {
	unlock, err := f.rlock(ino.Ino)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := f.refInode(ino); err != nil {
		return err
	}
	d, err := f.Dir(ino.Ino)
	if err != nil {
		return err
	}
	bs := uint64(f.SB.BlockSize())
	visit := func(base uint64, area []byte, blkno uint64) (bool, error) {
		it := ondisk.NewDirIter(area)
		for it.Next() {
			pos := base + uint64(it.Offset()) + 1
			if pos <= cookie || !it.Entry().Used() {
				continue
			}
			if !fn(DirEntry{DirEntry: it.Entry(), Next: pos}) {
				return false, nil
			}
		}
		if err := it.Err(); err != nil {
			return false, f.C.Annotate(err, blkno)
		}
		return true, nil
	}
	if d.Inode.Inline != nil {
		_, err := visit(0, d.Inode.Inline.Data, ino.Ino)
		return err
	}
	n := d.NumBlocks()
	for i := cookie / bs; i < n; i++ {
		phys, err := d.BlockAt(i)
		if err != nil {
			return err
		}
		area, _, err := f.C.DirBlock(phys, ino.Ino)
		if err != nil {
			return err
		}
		more, err := visit(i*bs, area, phys)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// refInode reads the inode r names (under its lock, held by the caller):
// ESTALE when its block holds another inode now.
func (f *FS) refInode(r Ref) (*ondisk.Dinode, error) {
	d, err := f.Inode(r.Ino)
	if err != nil {
		return nil, err
	}
	if err := sameGeneration(d, r.Gen); err != nil {
		return nil, err
	}
	return d, nil
}

// refXattrs is Xattrs for the inode r names (see refInode).
func (f *FS) refXattrs(r Ref) (xattr.Inode, error) {
	x, err := f.Xattrs(r.Ino)
	if err != nil {
		return xattr.Inode{}, err
	}
	if err := sameGeneration(x.Inode, r.Gen); err != nil {
		return xattr.Inode{}, err
	}
	return x, nil
}

// lookupIn is Lookup in the directory r names (see refInode).
func (f *FS) lookupIn(r Ref, name string) (uint64, error) {
	if _, err := f.refInode(r); err != nil {
		return 0, err
	}
	return f.Lookup(r.Ino, name)
}
