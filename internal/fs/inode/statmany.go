package inode

import (
	"sync"

	"o2go/internal/ondisk"
)

// statManyWarmers is how many inode locks StatMany asks the lock manager
// for at once on a clustered mount.
const statManyWarmers = 16

// StatMany returns what Stat returns for each inode of inos, under one
// metadata lock, reading the inode blocks the cache lacks in runs rather
// than one device read each (metacache's Prefetch): the attributes of a
// directory listing (READDIRPLUS, ls -l) of cold inodes.
//
// On a clustered mount each inode has its own cluster lock: they are
// first fetched concurrently, each let go at once (this node keeps it
// cached), so that the round trips to the lock manager overlap; then
// taken all together in the order every node uses, which then waits only
// for a lock another node took back meanwhile.
func (f *FS) StatMany(inos []uint64) ([]*ondisk.Dinode, []error) {
	ds, errs := make([]*ondisk.Dinode, len(inos)), make([]error, len(inos))
	if w := f.W; w != nil && w.Cluster != nil && len(inos) > 1 {
		f.warmLocks(inos)
	}
	unlock, err := f.rlock(inos...)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return ds, errs
	}
	defer unlock()
	f.C.Prefetch(inos)
	for i, ino := range inos {
		ds[i], errs[i] = f.Inode(ino)
	}
	return ds, errs
}

// warmLocks gets this node the shared cluster lock of each of inos,
// statManyWarmers at a time, without keeping any in use. Errors are left
// for the real acquisition to report.
func (f *FS) warmLocks(inos []uint64) {
	next := make(chan uint64)
	var wg sync.WaitGroup
	for range min(statManyWarmers, len(inos)) {
		wg.Go(func() {
			for ino := range next {
				if release, err := f.W.Cluster.Lock(inodes(false, ino)); err == nil {
					release()
				}
			}
		})
	}
	for _, ino := range inos {
		next <- ino
	}
	close(next)
	wg.Wait()
}
