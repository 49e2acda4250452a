// Package metacache owns the metadata blocks of one open volume in memory:
// reading them from the device, verifying their META_ECC checks once per
// read from disk, decoding them into ondisk types with identity checks, and
// forgetting them when told to (the cluster lock layer invalidates what
// another node may have changed; a node never trusts a cached block it does
// not hold a lock for).
//
// Every error names the device, the block and the structure, so that an
// operator can find the damage (ondisk.CorruptError for bad bytes; a wrapped
// I/O error for a failed read).
//
// metacache is the bottom of the fs/ stack: journal, alloc, extent, dir,
// xattr, inode and volume read and write blocks through it.
package metacache

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"sync"

	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
)

// Buffer is one cached metadata block. Data is shared by every reader:
// readers must not modify it (writers go through the journal, which owns
// the rules for changing a cached block).
type Buffer struct {
	Blkno uint64
	Data  []byte

	checked bool   // META_ECC check verified (or corrected) since it was read
	decoded any    // the ondisk structure decoded from Data, shared read-only
	pins    int    // > 0: the journal holds it; never evicted
	owner   uint64 // the inode whose cluster lock covers it; 0: not known
	elem    *list.Element
}

// Options configure a Cache.
type Options struct {
	// MetaECC verifies block checks on read (the volume has META_ECC).
	MetaECC bool
	// FSGeneration is the volume generation every metadata block carries.
	FSGeneration uint32
	// LimitBlocks bounds the cache; 0 means DefaultLimitBytes worth.
	LimitBlocks int
}

// DefaultLimitBytes is the default cache size: enough for the inodes,
// directory blocks and allocator groups of a busy working set, small next
// to the 24 GiB machines o2go targets.
const DefaultLimitBytes = 256 << 20

// Cache is the metadata block cache of one volume. It is safe for
// concurrent use.
type Cache struct {
	dev   blockdev.Device
	bs    int
	opts  Options
	mu    sync.Mutex
	bufs  map[uint64]*Buffer
	lru   *list.List // front = most recently used
	limit int
	// byOwner indexes bufs by Buffer.owner (0 included), for ForgetOwner.
	byOwner map[uint64]map[uint64]*Buffer

	hits, misses, corrected uint64
}

// New returns a cache over dev for blocks of blockSize bytes.
func New(dev blockdev.Device, blockSize int, opts Options) *Cache {
	limit := opts.LimitBlocks
	if limit <= 0 {
		limit = DefaultLimitBytes / blockSize
	}
	return &Cache{dev: dev, bs: blockSize, opts: opts, bufs: map[uint64]*Buffer{}, lru: list.New(), limit: limit,
		byOwner: map[uint64]map[uint64]*Buffer{}}
}

// Device is the device under the cache.
func (c *Cache) Device() blockdev.Device { return c.dev }

// BlockSize is the volume block size.
func (c *Cache) BlockSize() int { return c.bs }

// MetaECC reports whether block checks are verified.
func (c *Cache) MetaECC() bool { return c.opts.MetaECC }

// FSGeneration is the volume generation blocks are checked against.
func (c *Cache) FSGeneration() uint32 { return c.opts.FSGeneration }

// Blocks is the number of blocks on the device.
func (c *Cache) Blocks() uint64 { return uint64(c.dev.Size()) / uint64(c.bs) }

// Get returns block blkno, from memory or from the device.
func (c *Cache) Get(blkno uint64) (*Buffer, error) {
	c.mu.Lock()
	if b, ok := c.bufs[blkno]; ok {
		c.lru.MoveToFront(b.elem)
		c.hits++
		c.mu.Unlock()
		return b, nil
	}
	c.misses++
	c.mu.Unlock()

	data := make([]byte, c.bs)
	if err := c.ReadBlocks(blkno, data); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.bufs[blkno]; ok { // raced with another reader
		c.lru.MoveToFront(b.elem)
		return b, nil
	}
	b := &Buffer{Blkno: blkno, Data: data}
	c.addLocked(b)
	c.evictLocked()
	return b, nil
}

// GetChecked returns block blkno after verifying its META_ECC check at
// checkOffset (when the volume has META_ECC; a negative offset skips it). A single flipped bit is
// corrected in the cached copy, as the kernel does.
func (c *Cache) GetChecked(blkno uint64, checkOffset int, structName string) (*Buffer, error) {
	b, err := c.Get(blkno)
	if err != nil || !c.opts.MetaECC || checkOffset < 0 {
		return b, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.checked {
		return b, nil
	}
	corrected, err := ondisk.VerifyBlockCheck(b.Data, checkOffset, structName)
	if err != nil {
		c.removeLocked(b) // do not serve unverified bytes later
		return nil, c.annotate(err, blkno)
	}
	if corrected {
		c.corrected++
	}
	b.checked = true
	return b, nil
}

// ReadBlocks reads len(p)/blocksize consecutive blocks starting at blkno,
// bypassing the cache (file data, journal scans). p's length must be a
// multiple of the block size.
func (c *Cache) ReadBlocks(blkno uint64, p []byte) error {
	if len(p)%c.bs != 0 {
		return fmt.Errorf("metacache: read of %d bytes is not whole blocks of %d", len(p), c.bs)
	}
	n := uint64(len(p) / c.bs)
	if blkno >= c.Blocks() || blkno+n > c.Blocks() {
		return c.annotate(&ondisk.CorruptError{Struct: "block reference", Msg: fmt.Sprintf("blocks [%d,%d) lie beyond the end of the device (%d blocks)", blkno, blkno+n, c.Blocks())}, blkno)
	}
	got, err := c.dev.ReadAt(p, int64(blkno)*int64(c.bs))
	if err != nil && !(errors.Is(err, io.EOF) && got == len(p)) {
		return fmt.Errorf("%s: read of block %d (%d blocks): %w", c.dev.Name(), blkno, n, err)
	}
	return nil
}

// Forget drops blocks from the cache (another node may have changed them).
// Pinned blocks stay: the journal holds them and they are this node's.
func (c *Cache) Forget(blknos ...uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, blk := range blknos {
		if b, ok := c.bufs[blk]; ok && b.pins == 0 {
			c.removeLocked(b)
		}
	}
}

// ForgetOwner drops the blocks of inode owner and every block whose owner
// is not known (see SetOwner): what a cluster lock protected once it goes
// down to NL. It returns how many of owner's blocks it had to keep because
// the journal pins them (which the caller, having written everything home
// first, treats as an error).
func (c *Cache) ForgetOwner(owner uint64) (kept int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetOwnedLocked(0)
	return c.forgetOwnedLocked(owner)
}

// ForgetUnowned drops every unpinned block whose owner is not known:
// what a node must not trust once it is granted a lock it did not hold
// (such a block, freed here and used again elsewhere under that lock,
// would otherwise be read stale).
func (c *Cache) ForgetUnowned() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetOwnedLocked(0)
}

// forgetOwnedLocked drops owner's unpinned blocks and returns how many
// pinned ones it kept. Under mu.
func (c *Cache) forgetOwnedLocked(owner uint64) (kept int) {
	for _, b := range c.byOwner[owner] {
		if b.pins == 0 {
			c.removeLocked(b)
		} else {
			kept++
		}
	}
	return kept
}

// SetOwner records that b belongs to inode owner: its cluster lock is the
// one that protects b (ForgetOwner). The typed readers that know the owner
// set it (an inode owns itself, a directory its blocks); other blocks stay
// unowned, which costs only that they are forgotten more often.
func (c *Cache) SetOwner(b *Buffer, owner uint64) {
	c.mu.Lock()
	if c.bufs[b.Blkno] == b {
		c.setOwnerLocked(b, owner)
	}
	c.mu.Unlock()
}

// addLocked caches b, newest in the LRU order. Under mu.
func (c *Cache) addLocked(b *Buffer) {
	b.elem = c.lru.PushFront(b)
	c.bufs[b.Blkno] = b
	c.indexLocked(b)
}

func (c *Cache) indexLocked(b *Buffer) {
	m := c.byOwner[b.owner]
	if m == nil {
		m = map[uint64]*Buffer{}
		c.byOwner[b.owner] = m
	}
	m[b.Blkno] = b
}

func (c *Cache) unindexLocked(b *Buffer) {
	if m := c.byOwner[b.owner]; m != nil {
		delete(m, b.Blkno)
		if len(m) == 0 {
			delete(c.byOwner, b.owner)
		}
	}
}

// setOwnerLocked moves b to owner's index. Under mu.
func (c *Cache) setOwnerLocked(b *Buffer, owner uint64) {
	if b.owner == owner {
		return
	}
	c.unindexLocked(b)
	b.owner = owner
	c.indexLocked(b)
}

// removeLocked drops b from the cache. Under mu.
func (c *Cache) removeLocked(b *Buffer) {
	c.lru.Remove(b.elem)
	delete(c.bufs, b.Blkno)
	c.unindexLocked(b)
}

// ForgetAll drops every unpinned block and returns how many it kept
// (pinned by an open transaction).
func (c *Cache) ForgetAll() (kept int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.bufs {
		if b.pins == 0 {
			c.removeLocked(b)
		}
	}
	return len(c.bufs)
}

// Stats reports cache effectiveness and how many single-bit errors META_ECC
// corrected.
type Stats struct {
	Cached, Limit           int
	Hits, Misses, Corrected uint64
}

// Stats returns current counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Cached: len(c.bufs), Limit: c.limit, Hits: c.hits, Misses: c.misses, Corrected: c.corrected}
}

func (c *Cache) evictLocked() {
	for e := c.lru.Back(); len(c.bufs) > c.limit && e != nil; {
		prev := e.Prev()
		b := e.Value.(*Buffer)
		// Never evict the most recent block: its reader is about to use
		// (and perhaps pin) it, even when every other block is pinned.
		if b.pins == 0 && e != c.lru.Front() {
			c.removeLocked(b)
		}
		e = prev
	}
}

// annotate adds the device and block to a corruption error.
func (c *Cache) annotate(err error, blkno uint64) error {
	return ondisk.OnDevice(ondisk.AtBlock(err, blkno), c.dev.Name())
}

// Annotate is annotate for the layers above, which decode blocks they got
// from the cache and need the same "device: block N: struct: ..." errors.
func (c *Cache) Annotate(err error, blkno uint64) error { return c.annotate(err, blkno) }
