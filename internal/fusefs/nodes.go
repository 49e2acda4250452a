package fusefs

import (
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// nodeTable maps the kernel's node IDs to inodes. A node ID names one
// (inode number, generation) pair for as long as the kernel remembers it
// (until FORGET brings its lookup count to zero): OCFS2 reuses the block of
// a deleted inode for the next one, and the kernel must see that as a new
// node, or it finds a cached regular file turned into a symlink and marks
// it bad (EIO).
type nodeTable struct {
	mu     sync.Mutex
	byNode map[uint64]*nodeEntry
	byIno  map[uint64]uint64 // inode -> current node ID
	next   uint64
	// hold and release keep an inode alive while the kernel knows it, as
	// a local file system keeps an unlinked inode while the VFS holds it:
	// hold runs when a node ID is born, release when it is forgotten.
	hold, release func(ino uint64)
}

type nodeEntry struct {
	ino     uint64
	gen     uint32
	lookups uint64
}

func newNodeTable(root uint64, rootGen uint32) *nodeTable {
	t := &nodeTable{byNode: map[uint64]*nodeEntry{}, byIno: map[uint64]uint64{}, next: fuse.FUSE_ROOT_ID + 1}
	t.byNode[fuse.FUSE_ROOT_ID] = &nodeEntry{ino: root, gen: rootGen, lookups: 1}
	t.byIno[root] = fuse.FUSE_ROOT_ID
	return t
}

// ref returns the node ID for inode ino of generation gen, counting one
// more kernel lookup of it.
func (t *nodeTable) ref(ino uint64, gen uint32) uint64 {
	t.mu.Lock()
	if id, ok := t.byIno[ino]; ok {
		if e := t.byNode[id]; e.gen == gen || id == fuse.FUSE_ROOT_ID {
			e.lookups++
			t.mu.Unlock()
			return id
		}
	}
	id := t.next
	t.next++
	t.byNode[id] = &nodeEntry{ino: ino, gen: gen, lookups: 1}
	t.byIno[ino] = id
	t.mu.Unlock()
	if t.hold != nil {
		// Outside the table lock: on a clustered mount holding an inode
		// may wait for another node (its open lock).
		t.hold(ino)
	}
	return id
}

// lookup returns the inode and generation of node id.
func (t *nodeTable) lookup(id uint64) (uint64, uint32, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byNode[id]
	if !ok {
		return 0, 0, false
	}
	return e.ino, e.gen, true
}

// forget drops n lookups of node id.
func (t *nodeTable) forget(id, n uint64) {
	t.mu.Lock()
	e, ok := t.byNode[id]
	if !ok || id == fuse.FUSE_ROOT_ID {
		t.mu.Unlock()
		return
	}
	if e.lookups > n {
		e.lookups -= n
		t.mu.Unlock()
		return
	}
	delete(t.byNode, id)
	if t.byIno[e.ino] == id {
		delete(t.byIno, e.ino)
	}
	t.mu.Unlock()
	if t.release != nil {
		t.release(e.ino) // may delete an unlinked inode: outside the table lock
	}
}

// current returns the node ID the kernel knows inode ino by, if any.
func (t *nodeTable) current(ino uint64) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.byIno[ino]
	return id, ok
}
