package fusefs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/journal"
	"o2go/internal/fs/xattr"
	"o2go/internal/ondisk"
)

// Options tune the adapter.
type Options struct {
	// AttrTimeout and EntryTimeout are how long the kernel may cache
	// attributes and names without asking (single node: safe; the cluster
	// layer invalidates).
	AttrTimeout, EntryTimeout time.Duration
	// ReadOnly refuses every change with EROFS.
	ReadOnly bool
	// Statfs reports total and free clusters (the volume's allocators).
	Statfs func() (total, free uint64, err error)
	// OnUnmount runs after the kernel unmounted (flush, clean journal).
	OnUnmount func()
	// NoUserXattr (nouser_xattr) refuses user.* attributes; NoACL (noacl)
	// refuses POSIX ACLs and leaves permission checks to the mode bits.
	NoUserXattr, NoACL bool
	// Errors is the errors= policy for metadata errors (a block that fails
	// its checks: ondisk.ErrCorrupt) and journal aborts: ErrorsRemountRO
	// (the default), ErrorsPanic or ErrorsContinue.
	Errors string
	// OnReadOnly is called once, with the first such error, when
	// remount-ro makes the mount read-only (the Session makes the volume
	// refuse changes below the adapter too).
	OnReadOnly func(error)
	// Panic is errors=panic: stop serving at once, writing nothing more
	// (the Session crashes the volume and exits the process). Without it,
	// panic acts as remount-ro.
	Panic func(error)
	// Log receives the error reports (nil: slog.Default()).
	Log *slog.Logger
	// Clustered: other nodes change the volume too, so the kernel caches
	// nothing it serves without asking (attributes and names expire at
	// once, read(2) and write(2) are direct): every access reaches the
	// volume, under the cluster lock. Mappings use the page cache, which
	// DropPages empties when another node takes an inode's lock.
	Clustered bool
	// Locks serves flock(2) and fcntl(2) locks across the nodes of a
	// clustered mount (nil: the kernel keeps them, for this node only).
	Locks FileLocks
	// BufferedCoherency is coherency=buffered: writes through O_DIRECT
	// descriptors that overwrite written data inside the file's size take
	// the file's lock shared (inode.FS.Overwrite), so they run at once
	// from every node; other writes stay exclusive (coherency=full).
	BufferedCoherency bool
}

// The errors= policies of mount.ocfs2(8).
const (
	// ErrorsRemountRO: after a metadata error or a journal abort, every
	// change fails with EROFS; reads go on.
	ErrorsRemountRO = "remount-ro"
	// ErrorsPanic: the server stops at once; the next mount replays.
	ErrorsPanic = "panic"
	// ErrorsContinue: the operation that met the error fails with EIO,
	// the mount goes on read-write.
	ErrorsContinue = "continue"
)

// FS implements fuse.RawFileSystem over an inode.FS.
type FS struct {
	fuse.RawFileSystem
	fs   *inode.FS
	root uint64
	opts Options

	nodes   *nodeTable
	pages   *pageDropper
	bases   *pageBases
	mu      sync.Mutex
	handles map[uint64]uint64 // file handle -> inode
	nextFh  uint64
	server  atomic.Pointer[fuse.Server] // set by Init, read by the page dropper

	// failed is the error that made the mount read-only (remount-ro).
	failed atomic.Pointer[error]
	// reported are the damaged blocks already logged (each once).
	reportMu sync.Mutex
	reported map[string]bool
}

// openFlags are the flags of an open file: the kernel keeps its page cache
// across opens on one node; on a clustered volume read(2) and write(2)
// bypass it (mappings still use it, see pageDropper).
func (f *FS) openFlags() uint32 {
	if f.opts.Clustered {
		return fuse.FOPEN_DIRECT_IO
	}
	return fuse.FOPEN_KEEP_CACHE
}

// New returns the adapter for fs.
func New(fs *inode.FS, opts Options) *FS {
	switch {
	case opts.Clustered:
		opts.AttrTimeout, opts.EntryTimeout = 0, 0
	default:
		if opts.AttrTimeout == 0 {
			opts.AttrTimeout = time.Second
		}
		if opts.EntryTimeout == 0 {
			opts.EntryTimeout = time.Second
		}
	}
	var rootGen uint32
	if d, err := fs.Stat(fs.RootBlkno()); err == nil {
		rootGen = d.Generation
	}
	f := &FS{RawFileSystem: fuse.NewDefaultRawFileSystem(), fs: fs, root: fs.RootBlkno(), opts: opts,
		handles: map[uint64]uint64{}, nodes: newNodeTable(fs.RootBlkno(), rootGen)}
	f.pages = newPageDropper(f.notifyPages)
	f.bases = newPageBases(os.Getpagesize(), basesLimit)
	f.nodes.hold = fs.Open
	f.nodes.release = func(ino uint64) {
		f.bases.forget(ino) // the kernel has no page of it any more
		fs.Release(ino)
	}
	return f
}

func (f *FS) String() string { return "o2go" }

// Init keeps the server to send invalidations.
func (f *FS) Init(s *fuse.Server) { f.server.Store(s) }

// OnUnmount runs the volume's clean unmount.
func (f *FS) OnUnmount() {
	f.pages.stop()
	if f.opts.OnUnmount != nil {
		f.opts.OnUnmount()
	}
}

// ino returns the inode of a node ID the kernel sent; an ID the table
// does not know (forgotten) maps to 0, which reads as ESTALE.
func (f *FS) ino(node uint64) uint64 {
	ino, _, _ := f.nodes.lookup(node)
	return ino
}

// ref is the inode and generation of node, for the operations that
// check the generation under the inode's lock (another node may have
// freed the inode and used its block again since the kernel looked it
// up); the root's generation is not checked (0).
func (f *FS) ref(node uint64) inode.Ref {
	ino, gen, _ := f.nodes.lookup(node)
	if node == fuse.FUSE_ROOT_ID {
		gen = 0
	}
	return inode.Ref{Ino: ino, Gen: gen}
}

// Forget implements fuse.RawFileSystem.
func (f *FS) Forget(node, nlookup uint64) { f.nodes.forget(node, nlookup) }

// status maps an error to the errno FUSE returns: the one place it
// happens, and where errors= applies to metadata errors and journal aborts.
func (f *FS) status(err error) fuse.Status {
	if err == nil {
		return fuse.OK
	}
	errno := inode.Errno(err)
	switch {
	case isVolumeError(err):
		f.volumeError(err)
	case errno == syscall.EIO && f.firstReport(err):
		// Not damage (errors= is not about it) and no errno of its own:
		// the caller sees EIO, the log says what it was.
		f.log().Error("an operation failed with EIO", "err", err)
	}
	if errno == syscall.ESTALE && f.opts.Clustered {
		// The kernel looked the name up, then asked about the inode it
		// found, which another node deleted in between (only open
		// handles keep an inode alive across nodes, see
		// inode.FS.OpenHandle): to the caller the name is gone, as if
		// the removal had come first.
		errno = syscall.ENOENT
	}
	return fuse.Status(errno)
}

func (f *FS) fillAttr(d *ondisk.Dinode, a *fuse.Attr) {
	a.Ino = d.Blkno
	a.Size = d.Size
	a.Blocks = uint64(d.Clusters) << (f.fs.SB.ClusterSizeBits - 9)
	if d.Inline != nil {
		// As the kernel's getattr: inline data counts its sectors, so
		// tar and rsync do not take the file for a sparse one.
		a.Blocks += (d.Size + 511) >> 9
	}
	a.Atime, a.Atimensec = d.Atime.Sec, d.Atime.Nsec
	a.Mtime, a.Mtimensec = d.Mtime.Sec, d.Mtime.Nsec
	a.Ctime, a.Ctimensec = d.Ctime.Sec, d.Ctime.Nsec
	a.Mode = uint32(d.Mode)
	a.Nlink = d.Links
	a.Uid, a.Gid = d.UID, d.GID
	if d.IsChr() || d.IsBlk() {
		maj, min := d.Rdev()
		a.Rdev = uint32(min&0xff | maj<<8 | (min&^0xff)<<12)
	}
	a.Blksize = uint32(f.fs.SB.ClusterSize())
}

func (f *FS) fillEntry(d *ondisk.Dinode, out *fuse.EntryOut) {
	out.NodeId = f.nodes.ref(d.Blkno, d.Generation)
	out.Generation = uint64(d.Generation)
	out.SetEntryTimeout(f.opts.EntryTimeout)
	out.SetAttrTimeout(f.opts.AttrTimeout)
	f.fillAttr(d, &out.Attr)
}

// stat returns the inode of node id, ESTALE when the node's inode was
// deleted or its block now holds another inode.
func (f *FS) stat(id uint64) (*ondisk.Dinode, error) {
	ino, gen, ok := f.nodes.lookup(id)
	if !ok {
		return nil, syscall.ESTALE
	}
	d, err := f.fs.Stat(ino)
	if err == nil && d.Generation != gen && id != fuse.FUSE_ROOT_ID {
		return nil, syscall.ESTALE
	}
	return d, err
}

func (f *FS) entryOf(ino uint64, out *fuse.EntryOut) fuse.Status {
	d, err := f.fs.Stat(ino)
	if err != nil {
		return f.status(err)
	}
	f.fillEntry(d, out)
	return fuse.OK
}

func (f *FS) writable() fuse.Status {
	if f.opts.ReadOnly || f.fs.W == nil || f.failed.Load() != nil {
		return fuse.EROFS
	}
	return fuse.OK
}

// ReadOnlyCause is the error that made the mount read-only under
// errors=remount-ro, or nil.
func (f *FS) ReadOnlyCause() error {
	if p := f.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// isVolumeError reports whether err is one errors= is about: metadata that
// failed its checks, or a journal that aborted. A deleted inode, whose
// block fails the identity check on its VALID flag, is a stale handle, not
// damage (fs/inode's rule).
func isVolumeError(err error) bool {
	if errors.Is(err, journal.ErrAborted) {
		return true
	}
	var ce *ondisk.CorruptError
	if !errors.As(err, &ce) {
		return false
	}
	return !(ce.Struct == "dinode" && ce.Field == "i_flags")
}

// volumeError applies the errors= policy to err. Each damaged block is
// logged once, with the device and block the error names.
func (f *FS) volumeError(err error) {
	log := f.log()
	first := f.firstReport(err)
	what := "metadata error"
	if errors.Is(err, journal.ErrAborted) {
		what = "journal abort"
	}
	switch f.opts.Errors {
	case ErrorsContinue:
		if first {
			log.Error(what+": the operation fails with EIO, the mount goes on (errors=continue); run fsck.ocfs2 once it is unmounted", "err", err)
		}
		return
	case ErrorsPanic:
		if f.opts.Panic != nil {
			log.Error(what+": stopping the file system at once (errors=panic); the next mount replays the journal; run fsck.ocfs2 first", "err", err)
			f.opts.Panic(err)
			return
		}
	}
	if f.failed.CompareAndSwap(nil, &err) {
		log.Error(what+": the file system is now read-only (errors=remount-ro); run fsck.ocfs2 once it is unmounted", "err", err)
		if f.opts.OnReadOnly != nil {
			f.opts.OnReadOnly(err)
		}
	} else if first {
		log.Error(what+" (the file system is read-only since an earlier error)", "err", err)
	}
}

func (f *FS) log() *slog.Logger {
	if f.opts.Log == nil {
		return slog.Default()
	}
	return f.opts.Log
}

// firstReport reports whether err names a block (or, without one, says
// something) not logged yet, and remembers it.
func (f *FS) firstReport(err error) bool {
	key := err.Error()
	var ce *ondisk.CorruptError
	if errors.As(err, &ce) && ce.HasBlk {
		key = fmt.Sprintf("%s block %d", ce.Device, ce.Blkno)
	} else if errors.Is(err, journal.ErrAborted) {
		key = "journal aborted"
	}
	f.reportMu.Lock()
	defer f.reportMu.Unlock()
	if f.reported == nil {
		f.reported = map[string]bool{}
	}
	if f.reported[key] || len(f.reported) >= maxReported {
		return false
	}
	f.reported[key] = true
	return true
}

// maxReported bounds the damaged blocks remembered (and logged).
const maxReported = 1000

// Lookup implements fuse.RawFileSystem.
func (f *FS) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	d, err := f.fs.LookupStat(f.ref(h.NodeId), name)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			out.NodeId = 0 // negative entry, cached for EntryTimeout
			out.SetEntryTimeout(f.opts.EntryTimeout)
		}
		return f.status(err)
	}
	f.fillEntry(d, out)
	return fuse.OK
}

// GetAttr implements fuse.RawFileSystem.
func (f *FS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	d, err := f.stat(in.NodeId)
	if err != nil {
		return f.status(err)
	}
	out.SetTimeout(f.opts.AttrTimeout)
	f.fillAttr(d, &out.Attr)
	return fuse.OK
}

// SetAttr implements fuse.RawFileSystem.
func (f *FS) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	if s := f.writable(); !s.Ok() {
		return s
	}
	var c inode.AttrChange
	v := in.Valid
	if v&fuse.FATTR_MODE != 0 {
		m := in.Mode
		c.Mode = &m
	}
	if v&fuse.FATTR_UID != 0 {
		u := in.Uid
		c.UID = &u
	}
	if v&fuse.FATTR_GID != 0 {
		g := in.Gid
		c.GID = &g
	}
	if v&fuse.FATTR_SIZE != 0 {
		s := int64(in.Size)
		c.Size = &s
	}
	if v&fuse.FATTR_ATIME_NOW != 0 {
		c.AtimeNow = true
	} else if v&fuse.FATTR_ATIME != 0 {
		t := time.Unix(int64(in.Atime), int64(in.Atimensec))
		c.Atime = &t
	}
	if v&fuse.FATTR_MTIME_NOW != 0 {
		c.MtimeNow = true
	} else if v&fuse.FATTR_MTIME != 0 {
		t := time.Unix(int64(in.Mtime), int64(in.Mtimensec))
		c.Mtime = &t
	}
	c.KillSUIDGID = v&fuse.FATTR_KILL_SUIDGID != 0
	if err := f.fs.Setattr(f.ref(in.NodeId), c); err != nil {
		return f.status(err)
	}
	if c.Size != nil {
		f.bases.cut(f.ino(in.NodeId), *c.Size) // as the kernel cuts its pages
	}
	d, err := f.stat(in.NodeId)
	if err != nil {
		return f.status(err)
	}
	out.SetTimeout(f.opts.AttrTimeout)
	f.fillAttr(d, &out.Attr)
	return fuse.OK
}

func (f *FS) create(parent uint64, name string, n inode.NewNode, caller *fuse.Caller, out *fuse.EntryOut) fuse.Status {
	if s := f.writable(); !s.Ok() {
		return s
	}
	ino, err := f.fs.Create(f.ref(parent), name, n, inode.Caller{UID: caller.Uid, GID: caller.Gid})
	if err != nil {
		return f.status(err)
	}
	return f.entryOf(ino, out)
}

// Mknod implements fuse.RawFileSystem.
func (f *FS) Mknod(_ <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return f.create(in.NodeId, name, inode.NewNode{Mode: in.Mode, Umask: in.Umask, Rdev: in.Rdev}, &in.Caller, out)
}

// Mkdir implements fuse.RawFileSystem.
func (f *FS) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return f.create(in.NodeId, name, inode.NewNode{Mode: syscall.S_IFDIR | in.Mode&07777, Umask: in.Umask}, &in.Caller, out)
}

// Symlink implements fuse.RawFileSystem.
func (f *FS) Symlink(_ <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	return f.create(h.NodeId, name, inode.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: target}, &h.Caller, out)
}

// Create implements fuse.RawFileSystem.
func (f *FS) Create(c <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	s := f.create(in.NodeId, name, inode.NewNode{Mode: syscall.S_IFREG | in.Mode&07777, Umask: in.Umask}, &in.Caller, &out.EntryOut)
	if s == fuse.Status(syscall.EEXIST) && f.opts.Clustered && in.Flags&(syscall.O_EXCL|syscall.O_TRUNC) == 0 {
		// The kernel looked the name up before another node created it:
		// O_CREAT without O_EXCL opens what is there now, as on a local
		// file system.
		h := in.InHeader
		if s = f.Lookup(c, &h, name, &out.EntryOut); s.Ok() && out.Attr.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			return fuse.Status(syscall.EISDIR)
		}
	}
	if !s.Ok() {
		return s
	}
	out.Fh = f.openHandle(f.ino(out.NodeId))
	out.OpenFlags = f.openFlags()
	return fuse.OK
}

// Link implements fuse.RawFileSystem.
func (f *FS) Link(_ <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	if s := f.writable(); !s.Ok() {
		return s
	}
	ino := f.ref(in.Oldnodeid)
	if err := f.fs.Link(ino, f.ref(in.NodeId), name); err != nil {
		return f.status(err)
	}
	return f.entryOf(ino.Ino, out)
}

// Unlink implements fuse.RawFileSystem.
func (f *FS) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	if s := f.writable(); !s.Ok() {
		return s
	}
	return f.status(f.fs.Unlink(f.ref(h.NodeId), name, false))
}

// Rmdir implements fuse.RawFileSystem.
func (f *FS) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	if s := f.writable(); !s.Ok() {
		return s
	}
	return f.status(f.fs.Unlink(f.ref(h.NodeId), name, true))
}

// Rename implements fuse.RawFileSystem (rename and rename2).
func (f *FS) Rename(_ <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	if s := f.writable(); !s.Ok() {
		return s
	}
	return f.status(f.fs.Rename(f.ref(in.NodeId), oldName, f.ref(in.Newdir), newName, in.Flags))
}

// Readlink implements fuse.RawFileSystem.
func (f *FS) Readlink(_ <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	t, err := f.fs.ReadLink(f.ref(h.NodeId))
	return []byte(t), f.status(err)
}

func (f *FS) openHandle(ino uint64) uint64 {
	f.fs.OpenHandle(ino)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextFh++
	f.handles[f.nextFh] = ino
	return f.nextFh
}

// Open implements fuse.RawFileSystem.
func (f *FS) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	ino := f.ino(in.NodeId)
	if in.Flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC) != 0 {
		if s := f.writable(); !s.Ok() {
			return s
		}
	}
	d, err := f.stat(in.NodeId)
	if err != nil {
		return f.status(err)
	}
	if d.IsDir() && in.Flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return fuse.EISDIR
	}
	out.Fh = f.openHandle(ino)
	out.OpenFlags = f.openFlags()
	return fuse.OK
}

// Read implements fuse.RawFileSystem.
func (f *FS) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	ino := f.ino(in.NodeId)
	n, err := f.fs.ReadFile(ino, buf[:in.Size], int64(in.Offset))
	if err != nil {
		return nil, f.status(err)
	}
	if f.opts.Clustered && in.ReadFlags&fuse.READ_LOCKOWNER == 0 {
		// Read into the page cache (a mapping's fault or read-ahead: the
		// kernel names the lock owner on every direct read): keep what
		// the page holds, for its write-back (pageBases).
		f.bases.record(ino, int64(in.Offset), buf[:n], int(in.Size))
	}
	return fuse.ReadResultData(buf[:n]), fuse.OK
}

// Write implements fuse.RawFileSystem.
func (f *FS) Write(_ <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	if s := f.writable(); !s.Ok() {
		return 0, s
	}
	off := int64(in.Offset)
	if f.opts.Clustered && in.WriteFlags&fuse.WRITE_CACHE != 0 {
		// Pages of a shared mapping written back: only the bytes the
		// mapping changed (pageBases), and only inside the file's size
		// now, which another node may have cut since the kernel learnt
		// it: what lies past the end stays cut, as a truncate drops the
		// pages past the end on a local file system.
		ino := f.ino(in.NodeId)
		if err := f.fs.WriteInsideParts(ino, f.bases.changes(ino, off, data)); err != nil {
			return 0, f.status(err)
		}
		f.bases.settle(ino, off, data)
		return uint32(len(data)), fuse.OK
	}
	if f.opts.Clustered && in.Flags&syscall.O_APPEND != 0 {
		// The kernel placed the write at the end it knows, which another
		// node may have moved since: append where the end is now.
		off = inode.AtEOF
	}
	if f.opts.BufferedCoherency && in.Flags&syscall.O_DIRECT != 0 && off != inode.AtEOF {
		ok, err := f.fs.Overwrite(f.ino(in.NodeId), data, off)
		if err != nil {
			return 0, f.status(err)
		}
		if ok {
			return uint32(len(data)), fuse.OK
		}
	}
	n, err := f.fs.Write(f.ino(in.NodeId), data, off)
	return uint32(n), f.status(err)
}

// Release implements fuse.RawFileSystem.
func (f *FS) Release(_ <-chan struct{}, in *fuse.ReleaseIn) {
	f.mu.Lock()
	ino, ok := f.handles[in.Fh]
	delete(f.handles, in.Fh)
	f.mu.Unlock()
	if ok && f.opts.Locks != nil {
		f.opts.Locks.ReleaseHandle(ino, in.Fh)
	}
	if ok {
		// Release cannot fail; deleting an unlinked file can meet damage.
		if err := f.fs.ReleaseHandle(ino); err != nil {
			f.status(err)
		}
	}
}

// Flush implements fuse.RawFileSystem (close(2)): the data already went
// to the device; the closing process's POSIX locks on the file end here
// when this file system keeps them (FUSE's contract for lock owners).
func (f *FS) Flush(_ <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	if f.opts.Locks != nil {
		f.opts.Locks.ReleaseOwner(f.ino(in.NodeId), in.LockOwner)
	}
	return fuse.OK
}

// Fsync implements fuse.RawFileSystem: a journal commit.
func (f *FS) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status { return f.status(f.fs.Fsync()) }

// FsyncDir implements fuse.RawFileSystem.
func (f *FS) FsyncDir(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status { return f.status(f.fs.Fsync()) }

// Fallocate implements fuse.RawFileSystem.
func (f *FS) Fallocate(_ <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	if s := f.writable(); !s.Ok() {
		return s
	}
	ino, off, n := f.ino(in.NodeId), int64(in.Offset), int64(in.Length)
	if err := f.fs.Fallocate(ino, in.Mode, off, n); err != nil {
		return f.status(err)
	}
	switch {
	case in.Mode&(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_ZERO_RANGE) != 0:
		f.bases.zero(ino, off, n) // as the kernel zeroes its pages
	case in.Mode&(unix.FALLOC_FL_COLLAPSE_RANGE|unix.FALLOC_FL_INSERT_RANGE) != 0:
		f.bases.cut(ino, off) // the data past off moved: no base holds there
	}
	return fuse.OK
}

// maxCopyFileRange bounds one copy_file_range reply, which counts bytes in
// 32 bits; callers loop.
const maxCopyFileRange = 1 << 30

// CopyFileRange implements fuse.RawFileSystem (copy_file_range(2), and what
// cp does when FICLONE fails): whole clusters are shared with the source,
// reflink style, the rest copied. (Linux answers FICLONE and FICLONERANGE
// in the VFS and sends them to no FUSE file system, so there is no ioctl
// to implement for them.)
func (f *FS) CopyFileRange(_ <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	if s := f.writable(); !s.Ok() {
		return 0, s
	}
	n, err := f.fs.CopyRange(f.ino(in.NodeId), int64(in.OffIn), f.ino(in.NodeIdOut), int64(in.OffOut), int64(min(in.Len, maxCopyFileRange)))
	return uint32(n), f.status(err)
}

// Lseek implements fuse.RawFileSystem (SEEK_DATA, SEEK_HOLE).
func (f *FS) Lseek(_ <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	off, err := f.fs.Seek(f.ino(in.NodeId), int64(in.Offset), int(in.Whence))
	out.Offset = uint64(off)
	return f.status(err)
}

// OpenDir implements fuse.RawFileSystem.
func (f *FS) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	d, err := f.stat(in.NodeId)
	if err != nil {
		return f.status(err)
	}
	if !d.IsDir() {
		return fuse.ENOTDIR
	}
	return fuse.OK
}

// ReadDir implements fuse.RawFileSystem.
func (f *FS) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return f.readDir(in, out, false)
}

// ReadDirPlus implements fuse.RawFileSystem.
func (f *FS) ReadDirPlus(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return f.readDir(in, out, true)
}

func (f *FS) readDir(in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	if !plus {
		return f.status(f.fs.ReadDir(f.ref(in.NodeId), in.Offset, func(e inode.DirEntry) bool {
			return out.AddDirEntry(fuse.DirEntry{Name: e.Name, Ino: e.Inode, Mode: dtToMode(e.FileType), Off: e.Next})
		}))
	}
	// ReadDir holds the metadata lock shared while it calls back: taking
	// it again there for each entry's attributes deadlocks as soon as a
	// writer queues in between. Collect the names first (no more than
	// the reply can hold), then stat them.
	limit := int(in.Size)/readDirPlusMinEntry + 1
	var ents []inode.DirEntry
	err := f.fs.ReadDir(f.ref(in.NodeId), in.Offset, func(e inode.DirEntry) bool {
		ents = append(ents, e)
		return len(ents) < limit
	})
	if err != nil {
		return f.status(err)
	}
	// The kernel does not look "." and ".." up; the others' inodes are
	// read together (cold inodes lie side by side on the disk).
	inos := make([]uint64, 0, len(ents))
	for _, e := range ents {
		if e.Name != "." && e.Name != ".." {
			inos = append(inos, e.Inode)
		}
	}
	ds, errs := f.fs.StatMany(inos)
	for _, e := range ents {
		var d *ondisk.Dinode
		if e.Name != "." && e.Name != ".." {
			d, err = ds[0], errs[0]
			ds, errs = ds[1:], errs[1:]
			if err != nil {
				if !errors.Is(err, syscall.ESTALE) {
					return f.status(err)
				}
				d = nil // deleted since the listing: a plain entry, no lookup
			}
		}
		eo := out.AddDirLookupEntry(fuse.DirEntry{Name: e.Name, Ino: e.Inode, Mode: dtToMode(e.FileType), Off: e.Next})
		if eo == nil {
			break
		}
		if d != nil {
			f.fillEntry(d, eo)
		}
	}
	return fuse.OK
}

// readDirPlusMinEntry is the fewest bytes one READDIRPLUS entry takes
// (entry_out, dirent header, a one-byte name padded to 8).
const readDirPlusMinEntry = 128 + 24 + 8

func dtToMode(ft uint8) uint32 {
	switch ft {
	case ondisk.FileTypeReg:
		return syscall.S_IFREG
	case ondisk.FileTypeDir:
		return syscall.S_IFDIR
	case ondisk.FileTypeChr:
		return syscall.S_IFCHR
	case ondisk.FileTypeBlk:
		return syscall.S_IFBLK
	case ondisk.FileTypeFifo:
		return syscall.S_IFIFO
	case ondisk.FileTypeSock:
		return syscall.S_IFSOCK
	case ondisk.FileTypeSymlink:
		return syscall.S_IFLNK
	}
	return 0
}

// ReleaseDir implements fuse.RawFileSystem.
func (f *FS) ReleaseDir(in *fuse.ReleaseIn) {}

// StatFs implements fuse.RawFileSystem.
func (f *FS) StatFs(_ <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	cs := uint64(f.fs.SB.ClusterSize())
	out.Bsize = uint32(cs)
	out.Frsize = uint32(cs)
	out.NameLen = ondisk.MaxNameLen
	if f.opts.Statfs != nil {
		total, free, err := f.opts.Statfs()
		if err != nil {
			return f.status(err)
		}
		out.Blocks, out.Bfree, out.Bavail = total, free, free
		// OCFS2 allocates inodes from free space: report files the same way.
		out.Files, out.Ffree = total, free
	}
	return fuse.OK
}

// GetXAttr implements fuse.RawFileSystem.
func (f *FS) GetXAttr(_ <-chan struct{}, h *fuse.InHeader, name string, dest []byte) (uint32, fuse.Status) {
	v, found, err := f.fs.GetXattr(f.ref(h.NodeId), name)
	if err != nil {
		return 0, f.status(err)
	}
	if !found {
		return 0, fuse.ENOATTR
	}
	if len(dest) < len(v) {
		return uint32(len(v)), fuse.ERANGE
	}
	copy(dest, v)
	return uint32(len(v)), fuse.OK
}

// ListXAttr implements fuse.RawFileSystem.
func (f *FS) ListXAttr(_ <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	names, err := f.fs.ListXattrs(f.ref(h.NodeId))
	if err != nil {
		return 0, f.status(err)
	}
	var b []byte
	for _, n := range names {
		// As a local file system lists them: trusted.* only to root,
		// nothing a mount option turned off.
		if strings.HasPrefix(n, "trusted.") && h.Caller.Uid != 0 || f.xattrAllowed(n) != fuse.OK {
			continue
		}
		b = append(append(b, n...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), fuse.ERANGE
	}
	copy(dest, b)
	return uint32(len(b)), fuse.OK
}

// SetXAttr implements fuse.RawFileSystem.
func (f *FS) SetXAttr(_ <-chan struct{}, in *fuse.SetXAttrIn, name string, data []byte) fuse.Status {
	if s := f.writable(); !s.Ok() {
		return s
	}
	if s := f.xattrAllowed(name); !s.Ok() {
		return s
	}
	return f.status(f.fs.SetXattr(f.ref(in.NodeId), name, data, xattr.SetFlags(in.Flags&3)))
}

// RemoveXAttr implements fuse.RawFileSystem.
func (f *FS) RemoveXAttr(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	if s := f.writable(); !s.Ok() {
		return s
	}
	if s := f.xattrAllowed(name); !s.Ok() {
		return s
	}
	return f.status(f.fs.RemoveXattr(f.ref(h.NodeId), name))
}

// xattrAllowed applies the user_xattr and acl mount options.
func (f *FS) xattrAllowed(name string) fuse.Status {
	switch {
	case strings.HasPrefix(name, "user.") && f.opts.NoUserXattr,
		strings.HasPrefix(name, "system.posix_acl_") && f.opts.NoACL:
		return fuse.Status(syscall.EOPNOTSUPP)
	}
	return fuse.OK
}
