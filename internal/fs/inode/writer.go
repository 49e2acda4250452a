package inode

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Journal is what the write engine needs from the slot's journal
// (fs/journal's *Journal satisfies it through JournalAdapter in fs/volume).
type Journal interface {
	// Begin opens a handle for one operation; credits is a hint of the
	// blocks it will dirty.
	Begin(credits int) (Handle, error)
	// CommitAndWait makes every stopped handle durable (fsync). Never
	// called with the metadata lock held.
	CommitAndWait() error
	// Checkpoint commits and writes every logged block home (before a
	// truncate log flush; before another node reads home locations).
	Checkpoint() error
}

// Handle is one journaled operation.
type Handle interface {
	metacache.Tx
	Stop() error
}

// Allocators are the slot's allocators, behind the interfaces the lower
// layers declare (fs/alloc implements them; fs/volume wires them).
type Allocators struct {
	Inodes   extent.MetaAllocator    // inode_alloc:NNNN
	Blocks   extent.MetaAllocator    // extent_alloc:NNNN: extent, dx, xattr, refcount blocks
	Clusters extent.ClusterAllocator // local alloc window, then the global bitmap
	Truncate *extent.TruncateLog     // truncate_log:NNNN
	// DiscardReservation forgets an inode's allocation window (on close
	// and delete); may be nil.
	DiscardReservation func(owner uint64)
}

// Options are the mount options the write engine honours.
type Options struct {
	// DataWriteback is data=writeback: data may reach the disk after the
	// commit that references it. Default (false) is data=ordered.
	DataWriteback bool
	// AtimeQuantum is atime_quantum=N seconds (default 60): atime is
	// written only when it moves by at least that much. NoAtime disables
	// atime updates altogether.
	AtimeQuantum time.Duration
	NoAtime      bool
	// Now is the clock (tests pass a fake one).
	Now func() time.Time
}

// Writer is the write side of a mounted volume: one per mount, owning the
// volume's metadata lock. Every operation that changes metadata holds Meta
// exclusively and runs in one journal handle; readers hold it shared.
type Writer struct {
	Meta    sync.RWMutex
	Journal Journal
	Alloc   Allocators
	Slot    int
	// OrphanDir is orphan_dir:NNNN of the slot.
	OrphanDir uint64
	Opts      Options

	// Cluster are the cluster locks of a clustered mount (nil: a local
	// mount), taken before Meta (see clusterlocks.go).
	Cluster ClusterLocks
	// SlotLocks are the inodes of the slot's own system files (its
	// allocators, truncate log, orphan directory) whose locks every change
	// holds exclusive on a clustered mount: only this node uses them, so
	// they stay cached here and cost nothing.
	SlotLocks []uint64
	// GlobalBitmap is the global bitmap's inode (its lock is taken by what
	// frees or claims clusters there).
	GlobalBitmap uint64
	// Opens are the open locks of a clustered mount (nil: a local mount):
	// an unlinked inode lives until no node uses it any more.
	Opens OpenLocks

	held     LockSet  // the running operation's cluster locks (under Meta)
	extra    []func() // releases of the locks Need took on the spot
	restarts atomic.Uint64

	mu      sync.Mutex
	gen     uint32
	open    map[uint64]int // uses per inode: handles and kernel references (unlinked files live until 0)
	handles map[uint64]int // open handles per inode (OpenHandle)
	deletes map[uint64]int // orphans this node is deleting (deleting)

	// afterRemoveStep, when set (tests), runs between two steps of a
	// removeRange, once the first is durable; an error stops the removal.
	afterRemoveStep func() error
}

// OpenLocks are OCFS2's open locks, one per inode: a node holds an
// inode's shared while it uses the inode (an open file, or its kernel
// knowing the inode); the node that would delete an unlinked inode first
// claims it exclusive without waiting, and leaves the inode in an orphan
// directory when another node still holds it; that node deletes it when
// it lets go. Hold and Drop pair up and count; Hold may wait for a claim
// to end. Neither is called with the cluster lock or Meta held.
type OpenLocks interface {
	Hold(ino uint64)
	Drop(ino uint64)
	// Claim takes ino's open lock exclusive if no node (this one
	// included) uses ino; done ends the claim. ok false: in use.
	Claim(ino uint64) (done func(), ok bool, err error)
}

// ErrReadOnly is returned by every change to a volume mounted read-only.
var ErrReadOnly = syscall.EROFS

func (f *FS) writer() (*Writer, error) {
	if f.W == nil {
		return nil, ErrReadOnly
	}
	return f.W, nil
}

func (w *Writer) now() time.Time {
	if w.Opts.Now != nil {
		return w.Opts.Now()
	}
	return time.Now()
}

func diskTime(t time.Time) ondisk.DiskTime {
	return ondisk.DiskTime{Sec: uint64(t.Unix()), Nsec: uint32(t.Nanosecond())}
}

// SeedGeneration sets where new inodes' i_generation values start (the
// kernel seeds its counter randomly at mount).
func (w *Writer) SeedGeneration(g uint32) {
	w.mu.Lock()
	w.gen = g
	w.mu.Unlock()
}

func (w *Writer) nextGeneration() uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	if w.gen == 0 {
		w.gen++
	}
	return w.gen
}

func (f *FS) runLocked(credits int, fn func(tx metacache.Tx) error) error {
	h, err := f.W.Journal.Begin(credits)
	if err != nil {
		return err
	}
	u := metacache.NewUndoTx(f.C, h)
	err = fn(u)
	if err != nil {
		u.Rollback()
	} else {
		u.Finish()
	}
	if serr := h.Stop(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// inodeForWrite returns a private, mutable copy of inode blkno and its
// buffer, already joined to tx.
func (f *FS) inodeForWrite(tx metacache.Tx, blkno uint64) (*ondisk.Dinode, *metacache.Buffer, error) {
	if err := f.W.Need(InodeLock(blkno), true); err != nil {
		return nil, nil, err
	}
	// f.Inode: an inode deleted meanwhile (by another node of a clustered
	// volume) is ESTALE, not damage for errors= to act on.
	d, err := f.Inode(blkno)
	if err != nil {
		return nil, nil, err
	}
	if d.Links == 0 && d.Flags&ondisk.InodeOrphaned != 0 && !f.mayChangeOrphan(blkno) {
		// Unlinked, and perhaps being deleted by another node: to this
		// caller the inode is gone, as if the unlink came first.
		return nil, nil, &PathError{Op: "change", Path: fmt.Sprintf("inode %d", blkno), Err: fmt.Errorf("unlinked and not open here: %w", syscall.ESTALE)}
	}
	b, err := f.C.Get(blkno)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.Access(b); err != nil {
		return nil, nil, err
	}
	return d.Clone(), b, nil
}

// refForWrite is inodeForWrite for an inode named by a Ref: ESTALE when
// its block holds another inode now.
func (f *FS) refForWrite(tx metacache.Tx, r Ref) (*ondisk.Dinode, *metacache.Buffer, error) {
	d, b, err := f.inodeForWrite(tx, r.Ino)
	if err != nil {
		return nil, nil, err
	}
	if err := sameGeneration(d, r.Gen); err != nil {
		return nil, nil, err
	}
	return d, b, nil
}

// saveInode encodes d into its buffer and logs it.
func saveInode(tx metacache.Tx, d *ondisk.Dinode, b *metacache.Buffer) error {
	if err := d.Encode(b.Data); err != nil {
		return fmt.Errorf("inode %d: %w", d.Blkno, err)
	}
	tx.Dirty(b, ondisk.DinodeCheckOffset)
	return nil
}

// errnoOf returns the errno an error maps to for FUSE, in one place:
// corruption is EIO (the operator reads the log for the block), a full
// volume ENOSPC, and a wrapped errno itself.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e
	case errors.Is(err, ondisk.ErrCorrupt):
		return syscall.EIO
	}
	return syscall.EIO
}

// Errno is errnoOf for the FUSE layer.
func Errno(err error) syscall.Errno { return errnoOf(err) }
