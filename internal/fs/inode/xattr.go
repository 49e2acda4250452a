package inode

import (
	"errors"
	"syscall"

	"o2go/internal/fs/metacache"
	"o2go/internal/fs/xattr"
	"o2go/internal/ondisk"
)

func (f *FS) xattrEnv(tx metacache.Tx) xattr.Env {
	return xattr.Env{C: f.C, SB: f.SB, Tx: tx, Meta: f.W.Alloc.Blocks, Data: f.W.Alloc.Clusters, Freed: f.W.Alloc.Truncate}
}

func (f *FS) xattrSupported() bool {
	return f.SB.Features.Incompat&ondisk.IncompatXattr != 0
}

// SetXattr sets extended attribute name of ino (setxattr(2); flags are
// xattr.Create / xattr.Replace).
func (f *FS) SetXattr(ino Ref, name string, value []byte, flags xattr.SetFlags) error {
	if !f.xattrSupported() {
		return syscall.EOPNOTSUPP
	}
	return f.retryFreedFull(func() error { return f.setXattr(ino, name, value, flags) })
}

// retryFreedFull runs an xattr change again after flushing the truncate
// log when the change found no room there for the clusters it frees.
func (f *FS) retryFreedFull(op func() error) error {
	err := op()
	if errors.Is(err, xattr.ErrFreedFull) {
		if ferr := f.FlushTruncateLog(); ferr != nil {
			return ferr
		}
		err = op()
	}
	return err
}

func (f *FS) setXattr(ino Ref, name string, value []byte, flags xattr.SetFlags) error {
	return f.run(inodes(true, ino.Ino), 16, func(tx metacache.Tx) error {
		d, b, err := f.refForWrite(tx, ino)
		if err != nil {
			return err
		}
		if err := xattr.Set(f.xattrEnv(tx), d, b, name, value, flags); err != nil {
			return err
		}
		d.Ctime = diskTime(f.W.now())
		return saveInode(tx, d, b)
	})
}

// RemoveXattr removes extended attribute name of ino (removexattr(2)).
func (f *FS) RemoveXattr(ino Ref, name string) error {
	if !f.xattrSupported() {
		return syscall.EOPNOTSUPP
	}
	return f.retryFreedFull(func() error { return f.removeXattr(ino, name) })
}

func (f *FS) removeXattr(ino Ref, name string) error {
	return f.run(inodes(true, ino.Ino), 16, func(tx metacache.Tx) error {
		d, b, err := f.refForWrite(tx, ino)
		if err != nil {
			return err
		}
		if err := xattr.Remove(f.xattrEnv(tx), d, b, name); err != nil {
			return err
		}
		d.Ctime = diskTime(f.W.now())
		return saveInode(tx, d, b)
	})
}

// destroyXattrsAll frees an inode's out-of-inode xattrs before deletion,
// in as many transactions as the truncate log needs.
func (f *FS) destroyXattrsAll(ino uint64) error {
	for {
		var done bool
		err := f.run(inodes(true, ino), 16, func(tx metacache.Tx) error {
			d, b, err := f.inodeForWrite(tx, ino)
			if err != nil {
				return err
			}
			if d.DynFeatures&ondisk.DynHasXattr == 0 {
				done = true
				return nil
			}
			if done, err = xattr.Destroy(f.xattrEnv(tx), d, b); err != nil {
				return err
			}
			return saveInode(tx, d, b)
		})
		if err != nil || done {
			return err
		}
		if err := f.FlushTruncateLog(); err != nil {
			return err
		}
	}
}

// inheritACL gives a new inode its parent's default ACL (access and, for
// directories, default), with the mode the ACL allows (no umask); without
// a default ACL the umask applies. It runs inside Create's transaction.
func (f *FS) inheritACL(tx metacache.Tx, parent *ondisk.Dinode, pbuf *metacache.Buffer, d *ondisk.Dinode, b *metacache.Buffer, umask uint32) error {
	if !f.xattrSupported() {
		d.Mode &^= uint16(umask & 0o777)
		return nil
	}
	x := xattr.Inode{C: f.C, SB: f.SB, Inode: parent, Block: pbuf.Data}
	raw, found, err := x.Get("system.posix_acl_default")
	if err != nil {
		return err
	}
	if !found {
		d.Mode &^= uint16(umask & 0o777)
		return nil
	}
	def, err := xattr.ParseVFSACL(raw)
	if err != nil {
		return err
	}
	access, dflt, mode, err := xattr.InheritACL(def, d.Mode)
	if err != nil {
		return err
	}
	d.Mode = mode
	env := f.xattrEnv(tx)
	if len(access) > 0 {
		if err := xattr.SetACL(env, d, b, xattr.AccessACL, access); err != nil {
			return err
		}
	}
	if d.IsDir() && len(dflt) > 0 {
		if err := xattr.SetACL(env, d, b, xattr.DefaultACL, dflt); err != nil {
			return err
		}
	}
	return nil
}
