package fusefs

import (
	"context"
	"errors"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// FileLocks serve the file locks of a clustered mount, where the kernel's
// own would only see this node: flock(2) locks belong to an open handle,
// fcntl(2) byte-range locks to a lock owner (a process's file table).
// Types are fcntl's F_RDLCK, F_WRLCK and F_UNLCK. A lock that cannot be
// had at once fails with EAGAIN unless wait; a wait ends with ctx.
type FileLocks interface {
	// Flock locks or unlocks (F_UNLCK) handle fh's flock; pid is the
	// process asking, as the kernel reports it.
	Flock(ctx context.Context, ino, fh uint64, pid, typ uint32, wait bool) error
	SetPosix(ctx context.Context, ino uint64, l PosixRequest, wait bool) error
	// GetPosix returns a lock that would stop l (F_GETLK), or one of type
	// F_UNLCK.
	GetPosix(ctx context.Context, ino uint64, l PosixRequest) (PosixRequest, error)
	// ReleaseOwner drops owner's byte-range locks on ino (a close).
	ReleaseOwner(ino, owner uint64)
	// ReleaseHandle drops the flock of handle fh.
	ReleaseHandle(ino, fh uint64)
}

// PosixRequest is a byte-range lock (End inclusive, ^0 to the end).
type PosixRequest struct {
	Owner      uint64
	Pid        uint32
	Start, End uint64
	Type       uint32
}

// lockContext is a context that ends when the kernel interrupts the
// request (a signal to the waiting process).
func lockContext(cancel <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		select {
		case <-cancel:
			stop()
		case <-ctx.Done():
		}
	}()
	return ctx, stop
}

func lockStatus(err error) fuse.Status {
	switch {
	case err == nil:
		return fuse.OK
	case errors.Is(err, context.Canceled):
		return fuse.EINTR
	case errors.Is(err, syscall.EAGAIN):
		return fuse.EAGAIN
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fuse.Status(errno)
	}
	return fuse.EIO
}

// GetLk implements fuse.RawFileSystem (F_GETLK).
func (f *FS) GetLk(cancel <-chan struct{}, in *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	if f.opts.Locks == nil {
		return fuse.ENOSYS
	}
	ctx, stop := lockContext(cancel)
	defer stop()
	l, err := f.opts.Locks.GetPosix(ctx, f.ino(in.NodeId), PosixRequest{Owner: in.Owner, Pid: in.Lk.Pid, Start: in.Lk.Start, End: in.Lk.End, Type: in.Lk.Typ})
	if err != nil {
		return lockStatus(err)
	}
	out.Lk = fuse.FileLock{Start: l.Start, End: l.End, Typ: l.Type, Pid: l.Pid}
	return fuse.OK
}

// SetLk implements fuse.RawFileSystem (F_SETLK, flock with LOCK_NB).
func (f *FS) SetLk(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	return f.setLk(cancel, in, false)
}

// SetLkw implements fuse.RawFileSystem (F_SETLKW, flock).
func (f *FS) SetLkw(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	return f.setLk(cancel, in, true)
}

func (f *FS) setLk(cancel <-chan struct{}, in *fuse.LkIn, wait bool) fuse.Status {
	if f.opts.Locks == nil {
		return fuse.ENOSYS
	}
	ctx, stop := lockContext(cancel)
	defer stop()
	ino := f.ino(in.NodeId)
	var err error
	if in.LkFlags&fuse.FUSE_LK_FLOCK != 0 {
		err = f.opts.Locks.Flock(ctx, ino, in.Fh, in.Lk.Pid, in.Lk.Typ, wait)
	} else {
		err = f.opts.Locks.SetPosix(ctx, ino, PosixRequest{Owner: in.Owner, Pid: in.Lk.Pid, Start: in.Lk.Start, End: in.Lk.End, Type: in.Lk.Typ}, wait)
	}
	if err == nil && in.Lk.Typ != syscall.F_UNLCK {
		// A process that locks the file and then reads its mapping must
		// see what the last holder wrote: the pages this node still had
		// from before are gone first (pageDropper). A signal ends the
		// wait, not the lock: it was granted, and the kernel must know.
		_ = f.pages.wait(ctx, ino)
	}
	return lockStatus(err)
}
