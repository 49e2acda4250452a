package clustermount

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/lockglue"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
)

// lockTable is a mount's cluster locks of the file system: one
// lockglue.Lock per inode (OCFS2's metadata lock, "M"), per refcount tree
// ("T") and the rename lock ("R"), made on first use and given up (flushed
// to NL and unlocked) once idle when the table outgrows its bound. It
// implements inode.ClusterLocks: an operation's locks are taken in the
// order inode.LockSet.Sorted gives, then the volume lock (S) shared, last,
// so that an operation waiting for a dead node's lock (which stays until
// the node is recovered) never holds the volume lock the recovery needs.
type lockTable struct {
	mt    *Mount
	svc   lockglue.Service
	limit int // locks kept; idle ones past it are given up

	mu       sync.Mutex
	locks    map[inode.LockID]*tableLock
	closing  map[inode.LockID]chan struct{} // given up, not yet unlocked
	tick     uint64                         // use clock, for the idle order
	evicting bool
	retired  lockglue.Stats // counts of the locks given up
}

// tableLock is one lock of the table.
type tableLock struct {
	id   inode.LockID
	lock *lockglue.Lock
	refs int    // acquisitions and uses under way: not evictable while > 0
	used uint64 // lockTable.tick at the last use
}

// defaultLockLimit is how many file-system locks a mount keeps cached:
// OCFS2 keeps one per inode in memory; o2go bounds them so that listing a
// huge directory does not pin a lock (and its lock resource on the
// master) per file forever.
const defaultLockLimit = 16384

func newLockTable(mt *Mount, svc lockglue.Service) *lockTable {
	return &lockTable{mt: mt, svc: svc, limit: defaultLockLimit,
		locks: map[inode.LockID]*tableLock{}, closing: map[inode.LockID]chan struct{}{}}
}

// lockName is id's OCFS2 lock name (generation 0: the block alone says
// which inode, see openLocks).
func lockName(id inode.LockID) string {
	n := ondisk.LockName{Type: ondisk.LockMeta, Blkno: id.Blkno}
	switch id.Kind {
	case inode.LockRename:
		n = ondisk.LockName{Type: ondisk.LockRename}
	case inode.LockRefcount:
		n.Type = ondisk.LockRefcount
	}
	s, _ := n.Encode()
	return s
}

// get returns id's lock, counting a reference put gives back.
func (t *lockTable) get(id inode.LockID) *tableLock {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		ch := t.closing[id]
		if ch == nil {
			break
		}
		// The old lock is being given up: the new one starts after it.
		t.mu.Unlock()
		<-ch
		t.mu.Lock()
	}
	l := t.locks[id]
	if l == nil {
		l = &tableLock{id: id, lock: lockglue.NewLock(t.svc, lockName(id), t.flusher(id))}
		if id.Kind == inode.LockInode {
			l.lock.SetValue(t.valueOf(id.Blkno))
		}
		if id.Kind != inode.LockRename {
			l.lock.OnFreshGrant(t.forgetUnowned)
		}
		t.locks[id] = l
	}
	l.refs++
	t.tick++
	l.used = t.tick
	return l
}

func (t *lockTable) put(l *tableLock) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l.refs--
	if len(t.locks) > t.limit && !t.evicting {
		t.evicting = true
		go t.evict()
	}
}

// Lock implements inode.ClusterLocks.
func (t *lockTable) Lock(set inode.LockSet) (func(), error) {
	ctx := context.Background()
	var releases []func()
	undo := func() {
		for _, r := range slices.Backward(releases) {
			r()
		}
	}
	for _, id := range set.Sorted() {
		l := t.get(id)
		r, err := l.lock.Acquire(ctx, level(set[id]))
		if err != nil {
			t.put(l)
			undo()
			return nil, err
		}
		releases = append(releases, func() { r(); t.put(l) })
	}
	r, err := t.mt.lock.Acquire(ctx, lockglue.PR)
	if err != nil {
		undo()
		return nil, err
	}
	releases = append(releases, r)
	var once sync.Once
	return func() { once.Do(undo) }, nil
}

// level is the lockglue mode of an exclusive or shared use.
func level(exclusive bool) lockglue.Mode {
	if exclusive {
		return lockglue.EX
	}
	return lockglue.PR
}

// TryLock implements inode.ClusterLocks.
func (t *lockTable) TryLock(id inode.LockID, exclusive bool) (func(), bool) {
	t.mu.Lock()
	l := t.locks[id]
	if l == nil {
		t.mu.Unlock()
		return nil, false
	}
	l.refs++
	t.mu.Unlock()
	r, ok := l.lock.TryAcquire(level(exclusive))
	if !ok {
		t.put(l)
		return nil, false
	}
	return func() { r(); t.put(l) }, true
}

// forgetUnowned runs when an inode or refcount lock is granted to this
// node anew: a metadata block this node freed and still caches (its owner
// unknown) may have been used again by another node under this lock.
// Blocks with a known owner are checked on read instead (metacache).
func (t *lockTable) forgetUnowned() {
	if m := t.mt.live(); m != nil {
		m.ForgetUnowned()
	}
}

// TakeValue implements inode.ClusterLocks.
func (t *lockTable) TakeValue(id inode.LockID) ([inode.LockValueLen]byte, bool) {
	t.mu.Lock()
	l := t.locks[id]
	t.mu.Unlock()
	if l == nil {
		return [inode.LockValueLen]byte{}, false
	}
	v, ok := l.lock.TakeValue()
	return v, ok
}

// valueOf is the value block inode blkno's lock stores going down from
// EX: the inode as this node leaves it (no operation uses the lock any
// more; the flush that follows writes it home), read from the cache.
func (t *lockTable) valueOf(blkno uint64) func() *lockglue.ValueBlock {
	return func() *lockglue.ValueBlock {
		m := t.mt.live()
		if m == nil {
			// Unmounted: the inode cannot be read any more. Store an
			// empty block rather than leave an older holder's value,
			// which the next holder would check a newer inode against.
			return new(lockglue.ValueBlock)
		}
		d, err := m.Cache.Dinode(blkno)
		if err != nil {
			d = nil // deleted (or unreadable): the value says not in use
		}
		v := lockglue.ValueBlock(inode.LockValueOf(d).Encode())
		return &v
	}
}

// flusher is lock id's Flusher: write home what EX allowed to change,
// forget what NL no longer protects (the kernel's pages of the inode too).
// The rename lock protects no block.
func (t *lockTable) flusher(id inode.LockID) lockglue.Flusher {
	return func(from, to lockglue.Mode) error {
		m := t.mt.live()
		if m == nil || id.Kind == inode.LockRename {
			return nil
		}
		if from == lockglue.EX {
			if err := m.WriteBack(); err != nil {
				return err
			}
		}
		if to == lockglue.NL {
			if id.Kind == inode.LockInode {
				// The kernel's pages of a mapped file go too, a moment
				// later (fusefs.pageDropper says why not now).
				t.mt.dropPages(id.Blkno)
			}
			return m.ForgetInode(id.Blkno)
		}
		return nil
	}
}

// evict gives up the least recently used idle locks until the table is
// back to three quarters of its bound.
func (t *lockTable) evict() {
	t.mu.Lock()
	var idle []*tableLock
	for _, l := range t.locks {
		if l.refs == 0 {
			idle = append(idle, l)
		}
	}
	slices.SortFunc(idle, func(a, b *tableLock) int { return cmp.Compare(a.used, b.used) })
	n := min(len(idle), len(t.locks)-t.limit*3/4)
	victims := idle[:max(n, 0)]
	for _, l := range victims {
		delete(t.locks, l.id)
		t.closing[l.id] = make(chan struct{})
	}
	t.mu.Unlock()
	for _, l := range victims {
		if err := l.lock.Close(); err != nil {
			t.mt.mg.Log.Error("giving up an idle file-system lock", "lock", l.lock.Name, "err", err)
		}
		st := l.lock.State().Stats
		t.mu.Lock()
		t.retired.Add(st)
		close(t.closing[l.id])
		delete(t.closing, l.id)
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.evicting = false
	t.mu.Unlock()
}

// closeAll gives every lock up (unmount, once the volume is unmounted:
// nothing is left to flush).
func (t *lockTable) closeAll() error {
	locks := t.snapshot()
	// Many at once: each is a round trip or two to the lock manager, and
	// a mount may hold thousands.
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan *tableLock)
	)
	for range min(closeWorkers, len(locks)) {
		wg.Go(func() {
			for l := range next {
				if err := l.lock.Close(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, l := range locks {
		next <- l
	}
	close(next)
	wg.Wait()
	return first
}

// closeWorkers is how many locks closeAll gives up at once.
const closeWorkers = 16

// totals sums the counts of every lock the table has or had.
func (t *lockTable) totals() lockglue.Stats {
	states := t.states()
	t.mu.Lock()
	sum := t.retired
	t.mu.Unlock()
	for _, st := range states {
		sum.Add(st.Stats)
	}
	return sum
}

// states returns the state of every lock of the table, by name.
func (t *lockTable) states() []lockglue.LockState {
	locks := t.snapshot()
	out := make([]lockglue.LockState, 0, len(locks))
	for _, l := range locks {
		out = append(out, l.lock.State())
	}
	slices.SortFunc(out, func(a, b lockglue.LockState) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// snapshot lists the table's locks now.
func (t *lockTable) snapshot() []*tableLock {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Collect(maps.Values(t.locks))
}

// journalLockID is slot s's journal lock: the metadata lock of the slot's
// journal inode, as in OCFS2.
func journalLockID(v *volume.Volume, s int) (inode.LockID, error) {
	blk, err := v.SystemFile(ondisk.SysJournal, s)
	if err != nil {
		return inode.LockID{}, fmt.Errorf("%s: the journal of slot %d: %w", v.Path, s, err)
	}
	return inode.LockID{Kind: inode.LockInode, Blkno: blk}, nil
}

// holdJournal takes slot s's journal lock EX for the node mounting in it
// and returns what lets it go. A survivor that recovered the slot's last
// node may cache it: that survivor gives it up on request. If that
// survivor died meanwhile, its lock is a ghost until its recovery, which
// needs the volume lock the caller holds: so the request passes ghosts,
// as the kernel's does (the slot's journal was recovered already).
func (t *lockTable) holdJournal(ctx context.Context, v *volume.Volume, s int) (func(), error) {
	id, err := journalLockID(v, s)
	if err != nil {
		return nil, err
	}
	l := t.get(id)
	r, err := l.lock.AcquirePastGhosts(ctx, lockglue.EX)
	if err != nil {
		t.put(l)
		return nil, fmt.Errorf("%s: taking the journal lock of slot %d: %w", v.Path, s, err)
	}
	var once sync.Once
	return func() { once.Do(func() { r(); t.put(l) }) }, nil
}

// recoverJournal runs fn, the recovery of dead slot s, holding the slot's
// journal lock EX with the recovery flag, which passes the ghost of the
// dead node's own.
func (t *lockTable) recoverJournal(v *volume.Volume, s int, fn func() error) error {
	id, err := journalLockID(v, s)
	if err != nil {
		return err
	}
	l := t.get(id)
	defer t.put(l)
	var ferr error
	err = l.lock.Recover(context.Background(), func() error {
		ferr = fn()
		return ferr
	})
	if err != nil && ferr == nil {
		return fmt.Errorf("taking the journal lock of slot %d: %w", s, err)
	}
	return err
}
