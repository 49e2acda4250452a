package clustermount

import (
	"context"
	"log/slog"
	"sync"

	"o2go/internal/dlm"
	"o2go/internal/node"
	"o2go/internal/ondisk"
)

// openLocks implements inode.OpenLocks on the volume's lock domain: one
// OCFS2 open lock ("O" + inode) per inode this node uses, held PR from its
// first use to its last; a delete claims it EX with NOQUEUE. The names
// carry generation 0: the inode number alone says which file, and a
// reused block's new inode can only be reached once the old one is gone.
type openLocks struct {
	d      *node.DLM
	domain string
	log    *slog.Logger

	mu    sync.Mutex
	locks map[uint64]*openLock
}

// openLock is one inode's open lock on this node.
type openLock struct {
	refs  int        // under openLocks.mu: the entry lives while > 0
	mu    sync.Mutex // serializes the DLM requests of this inode
	holds int        // Hold minus Drop
	held  *node.Lock // PR while holds > 0
}

func newOpenLocks(d *node.DLM, domain string, log *slog.Logger) *openLocks {
	return &openLocks{d: d, domain: domain, log: log, locks: map[uint64]*openLock{}}
}

func openLockName(ino uint64) string {
	n, _ := ondisk.LockName{Type: ondisk.LockOpen, Blkno: ino}.Encode()
	return n
}

// entry returns ino's open lock, counting a reference the caller gives
// back with put.
func (o *openLocks) entry(ino uint64) *openLock {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.locks[ino]
	if l == nil {
		l = &openLock{}
		o.locks[ino] = l
	}
	l.refs++
	return l
}

func (o *openLocks) put(ino uint64, l *openLock) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l.refs--
	if l.refs == 0 && o.locks[ino] == l {
		delete(o.locks, ino)
	}
}

// Hold takes ino's open lock PR on its first use on this node. A failure
// (the lock domain is gone: the mount is ending) is logged: the use goes
// on, unprotected only against deletes by other nodes.
func (o *openLocks) Hold(ino uint64) {
	l := o.entry(ino) // given back by Drop
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holds++
	if l.held != nil {
		return
	}
	held, _, err := o.d.Lock(context.Background(), o.domain, openLockName(ino), dlm.ModePR, 0, nil)
	if err != nil {
		o.log.Warn("taking an open lock", "inode", ino, "err", err)
		return
	}
	l.held = held
}

// Drop ends one use; the last lets the open lock go.
func (o *openLocks) Drop(ino uint64) {
	o.mu.Lock()
	l := o.locks[ino]
	o.mu.Unlock()
	if l == nil {
		return
	}
	l.mu.Lock()
	l.holds--
	if l.holds == 0 && l.held != nil {
		if err := l.held.Unlock(nil); err != nil {
			o.log.Warn("releasing an open lock", "inode", ino, "err", err)
		}
		l.held = nil
	}
	l.mu.Unlock()
	o.put(ino, l)
}

// Claim takes ino's open lock EX if nobody holds it, this node included.
func (o *openLocks) Claim(ino uint64) (func(), bool, error) {
	l := o.entry(ino)
	l.mu.Lock()
	if l.holds > 0 {
		l.mu.Unlock()
		o.put(ino, l)
		return nil, false, nil
	}
	held, _, err := o.d.Lock(context.Background(), o.domain, openLockName(ino), dlm.ModeEX, dlm.NoQueue, nil)
	if err != nil {
		l.mu.Unlock()
		o.put(ino, l)
		if isBusy(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := held.Unlock(nil); err != nil {
				o.log.Warn("releasing a claimed open lock", "inode", ino, "err", err)
			}
			l.mu.Unlock()
			o.put(ino, l)
		})
	}, true, nil
}
