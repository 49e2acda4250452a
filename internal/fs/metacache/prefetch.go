package metacache

import (
	"slices"

	"o2go/internal/blockdev"
)

// Prefetch tuning: blocks at most prefetchGap apart are read together,
// through the gap, in runs of at most prefetchRun blocks.
const (
	prefetchGap = 8
	prefetchRun = 64
)

// Prefetch reads into the cache those of blocks blknos it does not hold,
// coalescing blocks that lie close together into one device read: a
// caller about to Get many neighbouring blocks — the inodes of a directory
// listing, which a suballocator hands out side by side — pays one read per
// run instead of one per block. Only the blocks asked for are cached (a
// block in a gap may be file data, which the cache must never hold).
// Errors are left for the Get that follows to report.
func (c *Cache) Prefetch(blknos []uint64) {
	want := slices.Clone(blknos)
	slices.Sort(want)
	want = slices.Compact(want)
	end := c.Blocks()
	c.mu.Lock()
	want = slices.DeleteFunc(want, func(b uint64) bool {
		_, ok := c.bufs[b]
		return ok || b >= end
	})
	c.mu.Unlock()
	for i := 0; i < len(want); {
		j := i + 1
		for j < len(want) && want[j]-want[j-1] <= prefetchGap+1 && want[j]-want[i] < prefetchRun {
			j++
		}
		first, last := want[i], want[j-1]
		buf := blockdev.AlignedBuffer(int(last-first+1)*c.bs, c.bs)
		if c.ReadBlocks(first, buf) == nil {
			c.insert(first, buf, want[i:j])
		}
		i = j
	}
}

// insert caches blocks run (all within the blocks read into buf from
// first on) that are not cached yet.
func (c *Cache) insert(first uint64, buf []byte, run []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range run {
		if _, ok := c.bufs[b]; ok {
			continue // a reader or writer got there first: theirs is current
		}
		off := int(b-first) * c.bs
		c.addLocked(&Buffer{Blkno: b, Data: slices.Clone(buf[off : off+c.bs])})
		c.misses++
	}
	c.evictLocked()
}
