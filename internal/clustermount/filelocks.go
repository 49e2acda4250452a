package clustermount

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"time"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/dlm"
	"o2go/internal/fs/lockglue"
	"o2go/internal/fusefs"
	"o2go/internal/node"
	"o2go/internal/ondisk"
)

// fileLocks implements fusefs.FileLocks for one clustered mount.
//
// flock(2): one DLM lock per open handle on OCFS2's flock lock of the
// inode ("F…"), PR for LOCK_SH and EX for LOCK_EX, NOQUEUE for LOCK_NB, as
// the kernel's ocfs2 does. Each handle that ever took a flock has a
// flockHandle until it is released (the kernel's lock resource lives in
// the open file likewise): the fs_locks view lists it, with its level,
// the request under way and its wait counts.
//
// fcntl(2) byte-range locks, which O2CB does not offer: every node keeps
// the locks of its own processes (a lockglue.PosixTable per inode). A node
// sets a lock only while it holds the inode's byte-range mutex (the DLM
// lock "o2go-posix:<inode>" EX) and after every other node of the lock
// domain answered that none of its locks conflicts; so no two nodes can
// set conflicting locks. Unlocking is local. A dead node's locks die with
// it (nobody asks it any more), as its processes did. A waiting F_SETLKW
// retries with backoff until the range is free or the process is
// interrupted. F_GETLK reports a remote conflict's type with the range
// asked and pid 0 (its process lives on another node).
//
// Lock order: mu before the lock manager's (fs_locks reads both at once,
// so that every DLM lock of the file locks has its entry here); nothing
// here waits for the lock manager under mu.
type fileLocks struct {
	agent  *node.Agent
	d      *node.DLM
	domain string
	key    uint32
	log    *slog.Logger

	mu      sync.Mutex
	flocks  map[uint64]*flockHandle         // by handle
	posix   map[uint64]*lockglue.PosixTable // by inode
	mutexes map[uint64]int                  // byte-range mutexes asked for or held, by inode
}

// flockHandle is the flock of one open handle. Its fields but ino and op
// are under fileLocks.mu; op serializes the handle's flock calls.
type flockHandle struct {
	ino uint64
	op  sync.Mutex

	lock      *node.Lock // the DLM lock, nil while none is held
	mode      dlm.Mode   // granted, while lock is held: ModePR or ModeEX
	pending   string     // the request under way: lock, convert, unlock
	requested dlm.Mode   // with pending lock or convert
	blocked   bool       // since the grant another node asked for blocking (the strongest)
	blocking  dlm.Mode
	pid       uint32 // the process that asked last
	stats     lockglue.Stats
}

// msgPosixQuery asks a node whether one of its byte-range locks conflicts.
const msgPosixQuery = cnet.TypeFSFirst

// Answers to msgPosixQuery.
const (
	posixFree      int32 = 0
	posixReadHeld  int32 = 1 // a read lock conflicts
	posixWriteHeld int32 = 2
)

const posixQueryLen = 8 + 8 + 8 + 1

func newFileLocks(a *node.Agent, d *node.DLM, domain string, log *slog.Logger) (*fileLocks, error) {
	fl := &fileLocks{agent: a, d: d, domain: domain, key: dlm.Key(domain), log: log,
		flocks: map[uint64]*flockHandle{}, posix: map[uint64]*lockglue.PosixTable{}, mutexes: map[uint64]int{}}
	if err := a.Handle(msgPosixQuery, fl.key, posixQueryLen, fl.onQuery); err != nil {
		return nil, fmt.Errorf("byte-range locks of %s: %w", domain, err)
	}
	return fl, nil
}

// close stops answering other nodes (the mount ends: its locks with it).
func (fl *fileLocks) close() { fl.agent.Unhandle(msgPosixQuery, fl.key) }

func flockName(ino uint64) string {
	n, _ := ondisk.LockName{Type: ondisk.LockFlock, Blkno: ino}.Encode()
	return n
}

func posixMutexName(ino uint64) string { return fmt.Sprintf("o2go-posix:%016x", ino) }

func busyErr(err error) error {
	if isBusy(err) {
		return syscall.EAGAIN
	}
	return err
}

// Flock implements fusefs.FileLocks.
func (fl *fileLocks) Flock(ctx context.Context, ino, fh uint64, pid, typ uint32, wait bool) error {
	fl.mu.Lock()
	h := fl.flocks[fh]
	if h == nil {
		if typ == syscall.F_UNLCK {
			fl.mu.Unlock()
			return nil
		}
		h = &flockHandle{ino: ino}
		fl.flocks[fh] = h
	}
	fl.mu.Unlock()
	h.op.Lock()
	defer h.op.Unlock()
	if typ == syscall.F_UNLCK {
		return fl.unlockFlock(h)
	}
	mode := dlm.ModePR
	if typ == syscall.F_WRLCK {
		mode = dlm.ModeEX
	}
	var flags dlm.Flags
	if !wait {
		flags = dlm.NoQueue
	}
	fl.mu.Lock()
	held, from := h.lock, h.mode
	if held != nil && from == mode {
		fl.mu.Unlock()
		return nil
	}
	h.pending, h.requested, h.pid = "lock", mode, pid
	if held != nil {
		// The lock manager notifies again after the grant whoever is
		// still in the way: what it said of the old level is forgotten
		// now, before a notification for the new one can come.
		h.pending, h.blocked = "convert", false
	}
	h.stats.Requests++
	fl.mu.Unlock()

	start := time.Now()
	var err error
	if held != nil {
		_, err = held.Convert(ctx, mode, flags, nil)
	} else {
		held, _, err = fl.d.Lock(ctx, fl.domain, flockName(ino), mode, flags, func(b dlm.BAST) { fl.blocked(h, b.Mode) })
	}
	waited := time.Since(start)

	fl.mu.Lock()
	defer fl.mu.Unlock()
	h.pending = ""
	if err != nil {
		return busyErr(err)
	}
	if h.lock != nil && mode < from {
		h.stats.Downconverts++
	}
	h.lock, h.mode = held, mode
	// Every flock asks the lock manager: each get is a wait.
	w := &h.stats.PR
	if mode == dlm.ModeEX {
		w = &h.stats.EX
	}
	w.Gets++
	w.Waits++
	w.Total += waited
	w.Max = max(w.Max, waited)
	return nil
}

// unlockFlock gives h's flock back, if it holds one. Under h.op.
func (fl *fileLocks) unlockFlock(h *flockHandle) error {
	fl.mu.Lock()
	held := h.lock
	if held == nil {
		fl.mu.Unlock()
		return nil
	}
	h.pending = "unlock"
	fl.mu.Unlock()
	err := held.Unlock(nil)
	fl.mu.Lock()
	defer fl.mu.Unlock()
	h.pending = ""
	if err != nil {
		return err
	}
	h.lock, h.blocked = nil, false
	return nil
}

// blocked records a blocking notification on h's flock: another node waits
// for mode (it may come before the handle has recorded its grant). The
// flock stays until its process lets go, as flock(2) does.
func (fl *fileLocks) blocked(h *flockHandle, mode dlm.Mode) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	h.stats.Blocks++
	if !h.blocked || mode > h.blocking {
		h.blocking = mode
	}
	h.blocked = true
}

// ReleaseHandle implements fusefs.FileLocks: the handle's flock goes with
// it. A flock whose unlock fails stays with the lock manager (fs_locks then
// lists it as untracked: a leak).
func (fl *fileLocks) ReleaseHandle(ino, fh uint64) {
	fl.mu.Lock()
	h := fl.flocks[fh]
	fl.mu.Unlock()
	if h == nil {
		return
	}
	h.op.Lock()
	defer h.op.Unlock()
	if err := fl.unlockFlock(h); err != nil {
		fl.log.Warn("releasing a flock", "inode", ino, "err", err)
	}
	fl.mu.Lock()
	delete(fl.flocks, fh)
	fl.mu.Unlock()
}

func posixType(t uint32) (lockglue.PosixType, error) {
	switch t {
	case syscall.F_RDLCK:
		return lockglue.PosixRead, nil
	case syscall.F_WRLCK:
		return lockglue.PosixWrite, nil
	}
	return 0, syscall.EINVAL
}

// SetPosix implements fusefs.FileLocks.
func (fl *fileLocks) SetPosix(ctx context.Context, ino uint64, r fusefs.PosixRequest, wait bool) error {
	if r.Type == syscall.F_UNLCK {
		fl.unlockPosix(ino, r.Owner, r.Start, r.End)
		return nil
	}
	typ, err := posixType(r.Type)
	if err != nil {
		return err
	}
	backoff := 10 * time.Millisecond
	for {
		set, err := fl.trySet(ctx, ino, r, typ)
		if err != nil || set {
			return err
		}
		if !wait {
			return syscall.EAGAIN
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// trySet sets r if nothing conflicts, here or on any other node.
func (fl *fileLocks) trySet(ctx context.Context, ino uint64, r fusefs.PosixRequest, typ lockglue.PosixType) (bool, error) {
	// Counted from before the request until after the unlock: fs_locks
	// tells the mutex from a leaked lock by it.
	fl.mu.Lock()
	fl.mutexes[ino]++
	fl.mu.Unlock()
	defer func() {
		fl.mu.Lock()
		if fl.mutexes[ino]--; fl.mutexes[ino] == 0 {
			delete(fl.mutexes, ino)
		}
		fl.mu.Unlock()
	}()
	mutex, _, err := fl.d.Lock(ctx, fl.domain, posixMutexName(ino), dlm.ModeEX, 0, nil)
	if err != nil {
		return false, err
	}
	defer func() {
		if err := mutex.Unlock(nil); err != nil {
			fl.log.Warn("releasing a byte-range mutex", "inode", ino, "err", err)
		}
	}()
	fl.mu.Lock()
	_, local := fl.table(ino).Conflict(r.Owner, r.Start, r.End, typ)
	fl.mu.Unlock()
	if local {
		return false, nil
	}
	held, err := fl.askOthers(ctx, ino, r.Start, r.End, typ)
	if err != nil || held != posixFree {
		return false, err
	}
	fl.mu.Lock()
	fl.table(ino).Set(r.Owner, r.Pid, r.Start, r.End, typ)
	fl.mu.Unlock()
	return true, nil
}

// table returns ino's table, made on first use. Under mu.
func (fl *fileLocks) table(ino uint64) *lockglue.PosixTable {
	t := fl.posix[ino]
	if t == nil {
		t = &lockglue.PosixTable{}
		fl.posix[ino] = t
	}
	return t
}

// GetPosix implements fusefs.FileLocks.
func (fl *fileLocks) GetPosix(ctx context.Context, ino uint64, r fusefs.PosixRequest) (fusefs.PosixRequest, error) {
	typ, err := posixType(r.Type)
	if err != nil {
		return r, err
	}
	fl.mu.Lock()
	l, local := fl.table(ino).Conflict(r.Owner, r.Start, r.End, typ)
	fl.mu.Unlock()
	if local {
		t := uint32(syscall.F_RDLCK)
		if l.Type == lockglue.PosixWrite {
			t = syscall.F_WRLCK
		}
		return fusefs.PosixRequest{Owner: l.Owner, Pid: l.Pid, Start: l.Start, End: l.End, Type: t}, nil
	}
	held, err := fl.askOthers(ctx, ino, r.Start, r.End, typ)
	if err != nil {
		return r, err
	}
	out := r
	out.Pid = 0
	switch held {
	case posixFree:
		out.Type = syscall.F_UNLCK
	case posixReadHeld:
		out.Type = syscall.F_RDLCK
	default:
		out.Type = syscall.F_WRLCK
	}
	return out, nil
}

// ReleaseOwner implements fusefs.FileLocks.
func (fl *fileLocks) ReleaseOwner(ino, owner uint64) { fl.unlockPosix(ino, owner, 0, lockglue.ToEOF) }

// unlockPosix drops owner's byte-range locks on [start, end] of ino
// (local: unlocking never conflicts with anyone).
func (fl *fileLocks) unlockPosix(ino, owner, start, end uint64) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if t := fl.posix[ino]; t != nil {
		t.Unlock(owner, start, end)
		if t.Empty() {
			delete(fl.posix, ino)
		}
	}
}

// askOthers asks every other node of the lock domain whether one of its
// locks excludes typ on [start, end]; the strongest answer wins. A node
// that cannot answer is asked again until it does or leaves the domain
// (its locks then died with it).
func (fl *fileLocks) askOthers(ctx context.Context, ino, start, end uint64, typ lockglue.PosixType) (int32, error) {
	p := encodePosixQuery(posixQuery{ino, start, end, typ})
	self := fl.agent.Self().Number
	answer := posixFree
	for _, n := range fl.d.DomainMembers(fl.domain) {
		if n == self {
			continue
		}
		for {
			st, err := fl.agent.Call(ctx, n, msgPosixQuery, fl.key, p)
			if err == nil && (st < posixFree || st > posixWriteHeld) {
				return 0, fmt.Errorf("node %d refused a byte-range lock query: status %d", n, st)
			}
			if err == nil {
				answer = max(answer, st)
				break
			}
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			if !slices.Contains(fl.d.DomainMembers(fl.domain), n) {
				break
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		if answer == posixWriteHeld {
			break
		}
	}
	return answer, nil
}

// posixQuery is msgPosixQuery's payload: inode, first and last byte
// (big-endian 64-bit each), lock type (one byte).
type posixQuery struct {
	ino, start, end uint64
	typ             lockglue.PosixType
}

func encodePosixQuery(q posixQuery) []byte {
	p := make([]byte, posixQueryLen)
	binary.BigEndian.PutUint64(p[0:], q.ino)
	binary.BigEndian.PutUint64(p[8:], q.start)
	binary.BigEndian.PutUint64(p[16:], q.end)
	p[24] = byte(q.typ)
	return p
}

func decodePosixQuery(p []byte) (posixQuery, error) {
	if len(p) != posixQueryLen {
		return posixQuery{}, fmt.Errorf("byte-range lock query of %d bytes, want %d", len(p), posixQueryLen)
	}
	q := posixQuery{binary.BigEndian.Uint64(p[0:]), binary.BigEndian.Uint64(p[8:]), binary.BigEndian.Uint64(p[16:]), lockglue.PosixType(p[24])}
	if q.typ != lockglue.PosixRead && q.typ != lockglue.PosixWrite {
		return posixQuery{}, fmt.Errorf("byte-range lock query: lock type %d", q.typ)
	}
	if q.start > q.end {
		return posixQuery{}, fmt.Errorf("byte-range lock query: range %d-%d ends before it starts", q.start, q.end)
	}
	return q, nil
}

// onQuery answers another node's msgPosixQuery from this node's locks.
func (fl *fileLocks) onQuery(from base.NodeID, _ uint32, p []byte) int32 {
	q, err := decodePosixQuery(p)
	if err != nil {
		fl.log.Warn("bad message", "from", from, "err", err)
		return int32(syscall.EINVAL)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	t := fl.posix[q.ino]
	if t == nil {
		return posixFree
	}
	// Every local owner counts: none is the asking node's (^0 is no
	// kernel lock owner: they are addresses).
	l, ok := t.Conflict(^uint64(0), q.start, q.end, q.typ)
	switch {
	case !ok:
		return posixFree
	case l.Type == lockglue.PosixWrite:
		return posixWriteHeld
	}
	return posixReadHeld
}
