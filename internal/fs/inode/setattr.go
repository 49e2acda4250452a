package inode

import (
	"syscall"
	"time"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Attr changes, as setattr gives them; nil fields stay.
type AttrChange struct {
	Mode        *uint32 // permission bits (and S_ISUID/S_ISGID/S_ISVTX)
	UID, GID    *uint32
	Size        *int64
	Atime       *time.Time
	Mtime       *time.Time
	AtimeNow    bool
	MtimeNow    bool
	KillSUIDGID bool // a write or chown by someone else: drop set-id bits
}

// Setattr applies chmod, chown, truncate and utimens to ino. Permission
// checks are the kernel's (the mount uses default_permissions).
func (f *FS) Setattr(ino Ref, c AttrChange) error {
	if c.Size != nil {
		if err := f.truncate(ino.Ino, ino.Gen, *c.Size); err != nil {
			return err
		}
	}
	if c.Mode == nil && c.UID == nil && c.GID == nil && c.Atime == nil && c.Mtime == nil && !c.AtimeNow && !c.MtimeNow && !c.KillSUIDGID {
		return nil
	}
	return f.run(inodes(true, ino.Ino), 2, func(tx metacache.Tx) error {
		d, b, err := f.refForWrite(tx, ino)
		if err != nil {
			return err
		}
		now := f.W.now()
		if c.Mode != nil {
			d.Mode = d.Mode&syscall.S_IFMT | uint16(*c.Mode&07777)
		}
		if c.UID != nil {
			d.UID = *c.UID
		}
		if c.GID != nil {
			d.GID = *c.GID
		}
		if c.KillSUIDGID && !d.IsDir() {
			d.Mode &^= syscall.S_ISUID
			if d.Mode&syscall.S_IXGRP != 0 {
				d.Mode &^= syscall.S_ISGID
			}
		}
		switch {
		case c.AtimeNow:
			d.Atime = diskTime(now)
		case c.Atime != nil:
			d.Atime = diskTime(*c.Atime)
		}
		switch {
		case c.MtimeNow:
			d.Mtime = diskTime(now)
		case c.Mtime != nil:
			d.Mtime = diskTime(*c.Mtime)
		}
		d.Ctime = diskTime(now)
		return saveInode(tx, d, b)
	})
}

// TouchAtime records a read access, honouring noatime and atime_quantum
// (the kernel's relatime-like rule for OCFS2: only when atime is older than
// mtime/ctime or than the quantum).
func (f *FS) TouchAtime(ino uint64) error {
	if f.W == nil || f.W.Opts.NoAtime {
		return nil
	}
	d, err := f.Stat(ino)
	if err != nil {
		return err
	}
	now := f.W.now()
	q := f.W.Opts.AtimeQuantum
	if q == 0 {
		q = 60 * time.Second
	}
	at := time.Unix(int64(d.Atime.Sec), int64(d.Atime.Nsec))
	if later(d.Mtime, d.Atime) || later(d.Ctime, d.Atime) || now.Sub(at) >= q {
		return f.run(inodes(true, ino), 1, func(tx metacache.Tx) error {
			d, b, err := f.inodeForWrite(tx, ino)
			if err != nil {
				return err
			}
			d.Atime = diskTime(now)
			return saveInode(tx, d, b)
		})
	}
	return nil
}

func later(a, b ondisk.DiskTime) bool {
	return a.Sec > b.Sec || a.Sec == b.Sec && a.Nsec > b.Nsec
}

// Fsync makes every change to the volume so far durable (a journal
// commit; file data is written before the commit that references it).
func (f *FS) Fsync() error {
	w, err := f.writer()
	if err != nil {
		return nil
	}
	return w.Journal.CommitAndWait()
}
