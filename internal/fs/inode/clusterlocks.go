package inode

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"o2go/internal/fs/metacache"
)

// How a clustered mount stays coherent, seen from the write engine: every
// operation names the cluster locks it needs (LockSet) and gets them all
// before it starts (ClusterLocks.Lock, in one order on every node, so two
// operations never wait for each other in a cycle); then it holds the
// mount's metadata lock (Writer.Meta) as on a local mount. The locks are
// OCFS2's: one per inode (its metadata lock, which o2go also uses for the
// inode's data), one per refcount tree, and the rename lock.
//
// OCFS2 also has a per-inode read-write lock ('W'): its writes hold it
// exclusive for a whole write(2) because they take the metadata lock only
// page by page, around each block they map, while the page cache serves
// reads without any cluster lock. o2go serves read(2) and write(2)
// without the page cache (only mappings use it, filled and written back
// by FUSE requests like any other; a store into a mapped page reaches o2go
// only when the page is written back, which writes the stored bytes
// alone): every read and write of a FUSE request runs entirely under the
// inode's metadata lock
// (shared to read, exclusive to change, and shared for a coherency=buffered
// O_DIRECT overwrite, where OCFS2 takes its 'W' lock shared), so the 'W'
// role is the metadata lock's and a separate 'W' lock would only add a
// second hand-over to every write that moves between nodes. Neither lock
// could span a write(2) that the kernel splits into several FUSE
// requests: those are serialized on the node (the kernel holds the
// inode's lock) but not across nodes.
//
// An operation cannot always know its locks before it reads: unlink finds
// the victim in the directory, a delete finds the slot whose allocator
// gets the inode back. Every read of an inode and every change of an
// allocator checks that the operation holds the lock (Writer.Need); one it
// lacks is taken on the spot when that needs no waiting (this node holds it
// cached and nobody else asks for it), else the operation is undone (its
// UndoTx), everything is let go, and it runs again with the lock added to
// its set. Readers name their locks up front and read only those inodes.

// LockKind says what a LockID locks.
type LockKind uint8

// The kinds, in the order a set is taken in: the rename lock before any
// inode (as OCFS2 takes it first), refcount trees after the inodes that
// point at them.
const (
	LockRename   LockKind = iota // the volume's rename lock (Blkno 0)
	LockInode                    // an inode, by its block: OCFS2's metadata lock
	LockRefcount                 // a refcount tree, by its root block
)

// LockID names one of the file system's cluster locks.
type LockID struct {
	Kind  LockKind
	Blkno uint64
}

// InodeLock is the lock of inode blkno.
func InodeLock(blkno uint64) LockID { return LockID{Kind: LockInode, Blkno: blkno} }

func (id LockID) String() string {
	switch id.Kind {
	case LockRename:
		return "rename lock"
	case LockRefcount:
		return fmt.Sprintf("refcount tree %d", id.Blkno)
	}
	return fmt.Sprintf("inode %d", id.Blkno)
}

// LockSet is the cluster locks an operation holds, each with its level
// (true: exclusive, to change; false: shared, to read).
type LockSet map[LockID]bool

// Add asks for id at exclusive or more.
func (s LockSet) Add(id LockID, exclusive bool) { s[id] = s[id] || exclusive }

// Covers reports whether s holds id at exclusive or more.
func (s LockSet) Covers(id LockID, exclusive bool) bool {
	ex, ok := s[id]
	return ok && (ex || !exclusive)
}

// Sorted lists s's locks in the order every node takes them.
func (s LockSet) Sorted() []LockID {
	ids := make([]LockID, 0, len(s))
	for id := range s {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b LockID) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Blkno, b.Blkno))
	})
	return ids
}

// inodes is the set of the inodes in blknos, shared (readers) or
// exclusive.
func inodes(exclusive bool, blknos ...uint64) LockSet {
	s := make(LockSet, len(blknos))
	for _, b := range blknos {
		s.Add(InodeLock(b), exclusive)
	}
	return s
}

// ClusterLocks are the cluster locks of a clustered mount
// (internal/clustermount implements them over the DLM, with
// internal/fs/lockglue caching each on the node). Before a lock goes to
// another node, its holder writes home what it changed under it and
// forgets what it cached under it.
type ClusterLocks interface {
	// Lock waits until this node holds every lock of set at the level
	// asked (and the volume's lock shared: recovery and mounts take it
	// exclusive), taking them in the order of set.Sorted; release ends
	// these uses. On error nothing is held.
	Lock(set LockSet) (release func(), err error)
	// TryLock takes one more lock in the middle of an operation, only if
	// it needs no waiting: this node holds it at the level asked and no
	// other node waits for it.
	TryLock(id LockID, exclusive bool) (release func(), ok bool)
	// TakeValue returns, once per grant of inode lock id, the value block
	// the grant read (LockValue), for the first read of the inode to
	// check; ok false when there is none to check.
	TakeValue(id LockID) (v [LockValueLen]byte, ok bool)
}

// needLockError is an operation finding it needs a lock it does not
// hold; run takes the lock and runs the operation again.
type needLockError struct {
	id        LockID
	exclusive bool
}

func (e *needLockError) Error() string {
	return fmt.Sprintf("the operation needs the cluster lock of %s, which it does not hold (o2go retries it)", e.id)
}

// maxLockRounds bounds how often one operation may start again for a
// lock it found it needed: each round adds a lock, and no operation
// needs this many.
const maxLockRounds = 64

// Need is the check every change of metadata makes on a clustered mount:
// the running operation must hold lock id (exclusive for a change). One
// it lacks is taken now if that needs no waiting, else Need returns the
// error that makes the operation start again with the lock. Outside an
// operation (readers, which name their locks up front; local mounts;
// recovery, which holds the volume lock exclusive) it checks nothing.
// Called under Meta.
func (w *Writer) Need(id LockID, exclusive bool) error {
	if w == nil || w.Cluster == nil || w.held == nil || w.held.Covers(id, exclusive) {
		return nil
	}
	if release, ok := w.Cluster.TryLock(id, exclusive); ok {
		w.held.Add(id, exclusive)
		w.extra = append(w.extra, release)
		return nil
	}
	return &needLockError{id: id, exclusive: exclusive}
}

// LockRestarts counts the operations run again for a lock they found
// they needed (the fs_locks view).
func (w *Writer) LockRestarts() uint64 { return w.restarts.Load() }

// run executes fn as one journaled, undoable operation under the
// exclusive metadata lock, holding the cluster locks of locks plus the
// slot's own (SlotLocks) on a clustered mount: if fn fails, every buffer
// it changed is put back before the handle stops.
func (f *FS) run(locks LockSet, credits int, fn func(tx metacache.Tx) error) error {
	w, err := f.writer()
	if err != nil {
		return err
	}
	if w.Cluster == nil {
		w.Meta.Lock()
		defer w.Meta.Unlock()
		return f.runLocked(credits, fn)
	}
	set := make(LockSet, len(locks)+len(w.SlotLocks))
	for id, ex := range locks {
		set.Add(id, ex)
	}
	for _, b := range w.SlotLocks {
		set.Add(InodeLock(b), true)
	}
	for round := 0; ; round++ {
		release, err := w.Cluster.Lock(set)
		if err != nil {
			return err
		}
		w.Meta.Lock()
		w.held = set
		err = f.runLocked(credits, fn)
		w.held = nil
		extra := w.extra
		w.extra = nil
		w.Meta.Unlock()
		for _, r := range extra {
			r()
		}
		release()
		var need *needLockError
		if !errors.As(err, &need) {
			return err
		}
		if round == maxLockRounds {
			return fmt.Errorf("gave up after %d rounds of cluster locks: %w", round, err)
		}
		w.restarts.Add(1)
		set.Add(need.id, need.exclusive)
	}
}

// Change is run for the layers that wire the engine (fs/volume: the
// local alloc's shutdown, the truncate log's flush).
func (f *FS) Change(locks LockSet, credits int, fn func(tx metacache.Tx) error) error {
	return f.run(locks, credits, fn)
}

// rlock takes what a reader holds: on a clustered mount the cluster locks
// of the inodes it reads, shared (first: they may wait for other nodes),
// then the metadata lock shared (writers change buffers in place under
// the exclusive side). It takes nothing for read-only access, where
// nothing changes.
func (f *FS) rlock(blknos ...uint64) (func(), error) {
	var set LockSet // built only where it is used: a local mount's reads take no cluster lock
	if f.W != nil && f.W.Cluster != nil {
		set = inodes(false, blknos...)
	}
	return f.rlockSet(set)
}

func (f *FS) rlockSet(set LockSet) (func(), error) {
	w := f.W
	if w == nil {
		return func() {}, nil
	}
	release := func() {}
	if w.Cluster != nil {
		r, err := w.Cluster.Lock(set)
		if err != nil {
			return nil, err
		}
		release = r
	}
	w.Meta.RLock()
	return func() {
		w.Meta.RUnlock()
		release()
	}, nil
}

// Read runs fn as a reader holding set (fs/volume's statfs).
func (f *FS) Read(set LockSet, fn func() error) error {
	unlock, err := f.rlockSet(set)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}
