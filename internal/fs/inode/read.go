package inode

import (
	"fmt"
	"strings"
	"syscall"

	"o2go/internal/fs/dir"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/fs/xattr"
	"o2go/internal/ondisk"
)

// FS is a volume's file namespace.
type FS struct {
	C  *metacache.Cache
	SB *ondisk.SuperBlock
	// W is the write side of a read-write mount; nil for read-only access
	// (tools, ro mounts), and then every change fails with EROFS.
	W *Writer
}

// RootBlkno is the root directory's inode.
func (f *FS) RootBlkno() uint64 { return f.SB.RootBlkno }

// SystemDirBlkno is the system directory's inode ("//" in debugfs).
func (f *FS) SystemDirBlkno() uint64 { return f.SB.SystemDirBlkno }

// Inode reads and checks the inode at blkno. An inode deleted since the
// caller learned its number is ESTALE (like a stale NFS handle: the kernel
// looks the name up again), not corruption.
func (f *FS) Inode(blkno uint64) (*ondisk.Dinode, error) {
	if err := f.W.Need(InodeLock(blkno), false); err != nil {
		return nil, err
	}
	d, err := f.C.Dinode(blkno)
	if isFreedInode(err) {
		return nil, &PathError{Op: "read", Path: fmt.Sprintf("inode %d", blkno), Err: fmt.Errorf("deleted: %w", syscall.ESTALE)}
	}
	if err == nil && f.W != nil && f.W.Cluster != nil {
		// The first read under a fresh grant checks what the lock's value
		// block says the last node to change the inode left.
		if v, ok := f.W.Cluster.TakeValue(InodeLock(blkno)); ok {
			if err := checkLockValue(v, d); err != nil {
				return nil, err
			}
		}
	}
	return d, err
}

// Ref names an inode the way a caller that found it earlier knows it:
// its block and the generation it had then. A FUSE node ID outlives its
// inode: on a clustered mount another node may delete the inode and make
// a new one in the same block while this node's kernel still holds the
// ID. An operation through a Ref whose block now holds another inode is
// ESTALE and changes nothing; Gen 0 is not checked (the root, and callers
// that found the inode under the same lock or hold it open).
type Ref struct {
	Ino uint64
	Gen uint32
}

// sameGeneration is ESTALE when gen is not 0 and d is not of
// generation gen: the caller named an inode whose block was freed and
// now holds another one.
func sameGeneration(d *ondisk.Dinode, gen uint32) error {
	if gen != 0 && d.Generation != gen {
		return &PathError{Op: "stat", Path: fmt.Sprintf("inode %d", d.Blkno), Err: fmt.Errorf("generation %d, not %d: deleted: %w", d.Generation, gen, syscall.ESTALE)}
	}
	return nil
}

// Dir returns the directory inode at blkno, or ENOTDIR.
func (f *FS) Dir(blkno uint64) (dir.Dir, error) {
	d, err := f.Inode(blkno)
	if err != nil {
		return dir.Dir{}, err
	}
	if !d.IsDir() {
		return dir.Dir{}, &PathError{Op: "opendir", Path: fmt.Sprintf("inode %d", blkno), Err: syscall.ENOTDIR}
	}
	return dir.Dir{C: f.C, SB: f.SB, Inode: d}, nil
}

// PathError is an error about a name, wrapping the errno a local file
// system would give (ENOENT, ENOTDIR, ELOOP...) or a corruption error.
type PathError struct {
	Op, Path string
	Err      error
}

func (e *PathError) Error() string { return e.Op + " " + e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

// Lookup finds name in directory dirBlkno and returns its inode number.
func (f *FS) Lookup(dirBlkno uint64, name string) (uint64, error) {
	d, err := f.Dir(dirBlkno)
	if err != nil {
		return 0, err
	}
	e, found, err := d.Lookup(name)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, &PathError{Op: "lookup", Path: name, Err: syscall.ENOENT}
	}
	return e.Inode, nil
}

// maxSymlinkHops bounds symlink resolution, like the kernel's 40.
const maxSymlinkHops = 40

// Resolve walks an absolute path to an inode number. "//" at the start
// names the system directory, as in debugfs.ocfs2 ("//journal:0000").
// Symlinks in the middle of the path are followed; a final symlink is
// followed only when follow is true.
func (f *FS) Resolve(path string, follow bool) (uint64, error) {
	return f.resolve(path, follow, 0)
}

func (f *FS) resolve(path string, follow bool, hops int) (uint64, error) {
	cur := f.SB.RootBlkno
	rest := path
	if strings.HasPrefix(path, "//") {
		cur, rest = f.SB.SystemDirBlkno, path[2:]
	} else if !strings.HasPrefix(path, "/") {
		return 0, &PathError{Op: "resolve", Path: path, Err: fmt.Errorf("path must be absolute (start with / or //)")}
	}
	parts := strings.Split(rest, "/")
	for i, name := range parts {
		if name == "" || name == "." {
			continue
		}
		next, err := f.Lookup(cur, name)
		if err != nil {
			return 0, &PathError{Op: "resolve", Path: path, Err: unwrapPath(err)}
		}
		last := i == len(parts)-1 || strings.Trim(strings.Join(parts[i+1:], ""), "/.") == ""
		if !last || follow {
			d, err := f.Inode(next)
			if err != nil {
				return 0, err
			}
			if d.IsLnk() {
				if hops >= maxSymlinkHops {
					return 0, &PathError{Op: "resolve", Path: path, Err: syscall.ELOOP}
				}
				target, err := f.Readlink(d)
				if err != nil {
					return 0, err
				}
				if !strings.HasPrefix(target, "/") {
					target = f.pathOf(parts[:i]) + "/" + target
				}
				remaining := strings.Join(parts[i+1:], "/")
				if remaining != "" {
					target += "/" + remaining
				}
				return f.resolve(target, follow, hops+1)
			}
		}
		cur = next
	}
	return cur, nil
}

func (f *FS) pathOf(parts []string) string {
	return "/" + strings.Trim(strings.Join(parts, "/"), "/")
}

func unwrapPath(err error) error {
	if pe, ok := err.(*PathError); ok {
		return pe.Err
	}
	return err
}

// Readlink returns a symlink's target: fast symlinks keep it in the inode,
// slow ones in data blocks.
func (f *FS) Readlink(d *ondisk.Dinode) (string, error) {
	if !d.IsLnk() {
		return "", &PathError{Op: "readlink", Path: fmt.Sprintf("inode %d", d.Blkno), Err: syscall.EINVAL}
	}
	if d.FastSymlink != nil {
		return string(d.FastSymlink), nil
	}
	if d.Size > 4096 {
		return "", f.C.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "i_size", Msg: fmt.Sprintf("symlink of %d bytes, more than PATH_MAX", d.Size)}, d.Blkno)
	}
	buf := make([]byte, d.Size)
	if _, err := f.ReadAt(d, buf, 0); err != nil {
		return "", err
	}
	return strings.TrimRight(string(buf), "\x00"), nil
}

// ReadAt reads file data at byte offset off, like pread: it returns fewer
// bytes than len(p) only at the end of the file. Holes and unwritten
// extents read as zeros; shared (refcounted) extents read like any other.
func (f *FS) ReadAt(d *ondisk.Dinode, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	size := int64(d.Size)
	if off >= size {
		return 0, nil
	}
	if int64(len(p)) > size-off {
		p = p[:size-off]
	}
	if d.Inline != nil {
		if size > int64(len(d.Inline.Data)) {
			return 0, f.C.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "i_size", Msg: fmt.Sprintf("is %d, more than the %d inline bytes", size, len(d.Inline.Data))}, d.Blkno)
		}
		return copy(p, d.Inline.Data[off:size]), nil
	}
	if d.Extents == nil {
		// Chain allocators, local alloc and truncate log files keep
		// structures, not data, in id2: there are no bytes to read.
		return 0, &PathError{Op: "read", Path: fmt.Sprintf("inode %d", d.Blkno),
			Err: fmt.Errorf("a %s system file has no data to read: %w", id2KindName(d.ID2Kind()), syscall.EINVAL)}
	}
	cbits := f.SB.ClusterSizeBits
	csize := int64(1) << cbits
	owner := fmt.Sprintf("inode %d", d.Blkno)
	dev := f.C.Device()
	bs := int64(f.SB.BlockSize())
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		cpos := pos >> cbits
		if cpos > int64(^uint32(0)) {
			return done, f.C.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "i_size", Msg: "beyond the 2^32 clusters a file can map"}, d.Blkno)
		}
		m, err := extent.Lookup(f.C, d.Extents, uint32(cpos), owner)
		if err != nil {
			return done, err
		}
		if !m.Found || m.Rec.Flags&ondisk.ExtentUnwritten != 0 {
			end := int64(m.Next) << cbits
			if !m.Found && m.Next == extent.NoMore {
				end = off + int64(len(p))
			}
			n := min(end-pos, int64(len(p)-done))
			clear(p[done : done+int(n)])
			done += int(n)
			continue
		}
		recStart := int64(m.Rec.Cpos) << cbits
		recEnd := recStart + int64(m.Rec.Clusters)*csize
		n := min(recEnd-pos, int64(len(p)-done))
		phys := int64(m.Rec.Blkno)*bs + (pos - recStart)
		if phys+n > dev.Size() {
			return done, f.C.Annotate(&ondisk.CorruptError{Struct: "extent record", Field: "e_blkno",
				Msg: fmt.Sprintf("maps cluster %d of inode %d beyond the end of the device", m.Rec.Cpos, d.Blkno)}, d.Blkno)
		}
		if _, err := dev.ReadAt(p[done:done+int(n)], phys); err != nil {
			return done, fmt.Errorf("%s: reading inode %d data at byte %d: %w", dev.Name(), d.Blkno, pos, err)
		}
		done += int(n)
	}
	return done, nil
}

// Xattrs returns the xattr view of inode blkno.
func (f *FS) Xattrs(blkno uint64) (xattr.Inode, error) {
	d, blk, err := f.C.DinodeBlock(blkno)
	if err != nil {
		return xattr.Inode{}, err
	}
	return xattr.Inode{C: f.C, SB: f.SB, Inode: d, Block: blk}, nil
}

// Extents calls fn for every data extent of the inode in file order.
func (f *FS) Extents(d *ondisk.Dinode, fn func(ondisk.ExtentRec) error) error {
	if d.Extents == nil {
		return nil
	}
	return extent.Walk(f.C, d.Extents, fmt.Sprintf("inode %d", d.Blkno), fn)
}

func id2KindName(k ondisk.ID2Kind) string {
	switch k {
	case ondisk.ID2Chain:
		return "chain allocator"
	case ondisk.ID2LocalAlloc:
		return "local alloc"
	case ondisk.ID2TruncateLog:
		return "truncate log"
	case ondisk.ID2Super:
		return "superblock"
	}
	return "special"
}
