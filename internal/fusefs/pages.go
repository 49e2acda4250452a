package fusefs

import (
	"context"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// pageDropper empties the kernel's page cache of the inodes another node
// is about to change, one at a time, in the order asked.
//
// On a clustered mount read(2) and write(2) are direct; only shared and
// private mappings fill the page cache, through reads taken under the
// inode's cluster lock. When the node gives that lock up (to NL), another
// node may change the file, so the pages must go. It cannot happen inside
// the lock's downconvert: the kernel waits for every page being read in,
// and that read waits for the lock. So the downconvert queues the inode
// here and goes on; the kernel then writes the dirty pages back (a write
// that asks for the lock again, after the other node, and writes only the
// bytes the mapping changed: pageBases) and drops them, and the next
// fault reads the other node's data. A mapping on another node
// therefore sees a write a moment after the writer took the lock, not
// with it; read(2) sees it with it.
type pageDropper struct {
	notify func(ino uint64) // the kernel's invalidation of one inode

	mu      sync.Mutex
	cond    sync.Cond
	queue   []uint64
	queued  map[uint64]bool
	current uint64 // the inode being dropped, while running
	running bool
	stopped bool
}

func newPageDropper(notify func(ino uint64)) *pageDropper {
	d := &pageDropper{notify: notify, queued: map[uint64]bool{}}
	d.cond.L = &d.mu
	return d
}

// drop queues ino. An inode already waiting is not queued twice; one
// whose pages are being dropped is queued again, since pages read in
// while the kernel went through the file may be behind it.
func (d *pageDropper) drop(ino uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.queued[ino] {
		return
	}
	d.queued[ino] = true
	d.queue = append(d.queue, ino)
	if !d.running {
		d.running = true
		go d.run()
	}
	d.cond.Broadcast()
}

// run drops the queued inodes until the queue is empty.
func (d *pageDropper) run() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.queue) > 0 && !d.stopped {
		ino := d.queue[0]
		d.queue = d.queue[1:]
		delete(d.queued, ino)
		d.current = ino
		d.mu.Unlock()
		d.notify(ino)
		d.mu.Lock()
		d.current = 0
		d.cond.Broadcast()
	}
	d.running = false
	d.cond.Broadcast()
}

// wait waits until ino's pages are dropped, if they are queued or being
// dropped, or until ctx ends (its error then). It waits for nothing the
// dropping itself may wait for (a page read in or written back waits for
// the inode's cluster lock only), so it ends; but that lock may wait for
// a dead node's recovery, hence ctx.
func (d *pageDropper) wait(ctx context.Context, ino uint64) error {
	stop := context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.queued[ino] || d.current == ino && d.running {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.cond.Wait()
	}
	return nil
}

// stop drops nothing more (the mount is going away).
func (d *pageDropper) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	d.queue, d.queued = nil, map[uint64]bool{}
	d.cond.Broadcast()
}

// DropPages has the kernel write back and forget its cached pages of inode
// ino, soon and without waiting (see pageDropper): the cluster lock layer
// calls it when this node gives the inode's lock up.
func (f *FS) DropPages(ino uint64) { f.pages.drop(ino) }

// notifyPages is the kernel's invalidation of inode ino's pages and
// attributes, when the kernel knows the inode.
func (f *FS) notifyPages(ino uint64) {
	seq := f.bases.mark()
	srv := f.server.Load() // nil until serving: the kernel has no page then
	if id, ok := f.nodes.current(ino); ok && srv != nil {
		if st := srv.InodeNotify(id, 0, -1); st != fuse.OK && st != fuse.ENOENT {
			f.log().Debug("dropping the kernel's pages of an inode", "inode", ino, "status", st)
		}
	}
	f.bases.dropBefore(ino, seq)
}
