package fsck

import (
	"math/bits"
	"slices"
)

func popcount64(v uint64) int { return bits.OnesCount64(v) }

// denseBits is a bitmap over a known range (clusters of the volume): one
// bit per cluster, sized to the volume, as the issue asks for large
// volumes (a 16 TiB volume of 4 KiB clusters takes 512 MiB of bits; its
// metadata does not fit a smaller design anyway).
type denseBits struct {
	w []uint64
	n uint64
}

func newDenseBits(n uint64) *denseBits { return &denseBits{w: make([]uint64, (n+63)/64), n: n} }

func (b *denseBits) test(i uint64) bool { return i < b.n && b.w[i>>6]&(1<<(i&63)) != 0 }

// set sets bit i and reports whether it was already set.
func (b *denseBits) set(i uint64) bool {
	if i >= b.n {
		return false
	}
	m := uint64(1) << (i & 63)
	was := b.w[i>>6]&m != 0
	b.w[i>>6] |= m
	return was
}

func (b *denseBits) clear(i uint64) {
	if i < b.n {
		b.w[i>>6] &^= 1 << (i & 63)
	}
}

// word returns the 64 bits from bit i (bits past the end read as 0).
func (b *denseBits) word(i uint64) uint64 {
	if i >= b.n {
		return 0
	}
	wi, sh := i>>6, i&63
	w := b.w[wi] >> sh
	if sh != 0 && wi+1 < uint64(len(b.w)) {
		w |= b.w[wi+1] << (64 - sh)
	}
	return w
}

func trailingZeros(v uint64) int { return bits.TrailingZeros64(v) }

// nextSet returns the first set bit at or after i, or b.n.
func (b *denseBits) nextSet(i uint64) uint64 {
	if i >= b.n {
		return b.n
	}
	wi := i >> 6
	w := b.w[wi] >> (i & 63)
	if w != 0 {
		return min(i+uint64(bits.TrailingZeros64(w)), b.n)
	}
	for wi++; wi < uint64(len(b.w)); wi++ {
		if b.w[wi] != 0 {
			return min(wi<<6+uint64(bits.TrailingZeros64(b.w[wi])), b.n)
		}
	}
	return b.n
}

// sparseBits is a bitmap over block numbers that only keeps the chunks
// holding set bits (inode numbers cluster in inode allocator groups).
type sparseBits struct {
	chunks map[uint64]*[chunkWords]uint64
}

const (
	chunkBits  = 1 << 16
	chunkWords = chunkBits / 64
)

func newSparseBits() *sparseBits { return &sparseBits{chunks: map[uint64]*[chunkWords]uint64{}} }

func (s *sparseBits) test(i uint64) bool {
	c := s.chunks[i/chunkBits]
	if c == nil {
		return false
	}
	o := i % chunkBits
	return c[o>>6]&(1<<(o&63)) != 0
}

func (s *sparseBits) set(i uint64) {
	c := s.chunks[i/chunkBits]
	if c == nil {
		c = new([chunkWords]uint64)
		s.chunks[i/chunkBits] = c
	}
	o := i % chunkBits
	c[o>>6] |= 1 << (o & 63)
}

func (s *sparseBits) clear(i uint64) {
	if c := s.chunks[i/chunkBits]; c != nil {
		o := i % chunkBits
		c[o>>6] &^= 1 << (o & 63)
	}
}

// each calls fn for every set bit in ascending order.
func (s *sparseBits) each(fn func(i uint64)) {
	keys := make([]uint64, 0, len(s.chunks))
	for k := range s.chunks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c := s.chunks[k]
		for wi, w := range c {
			for w != 0 {
				t := bits.TrailingZeros64(w)
				fn(k*chunkBits + uint64(wi)*64 + uint64(t))
				w &= w - 1
			}
		}
	}
}

// icount counts references per inode the way fsck.ocfs2's icount does:
// a bitmap for the common count of one and a map for the rest. A count
// of zero is no entry.
type icount struct {
	one  *sparseBits
	many map[uint64]uint32
}

func newICount() *icount { return &icount{one: newSparseBits(), many: map[uint64]uint32{}} }

func (c *icount) get(blk uint64) uint32 {
	if c.one.test(blk) {
		return 1
	}
	return c.many[blk]
}

func (c *icount) set(blk uint64, n uint32) {
	if n == 1 {
		c.one.set(blk)
	} else {
		c.one.clear(blk)
	}
	if n >= 2 {
		c.many[blk] = n
	} else {
		delete(c.many, blk)
	}
}

func (c *icount) delta(blk uint64, d int) {
	n := int64(c.get(blk)) + int64(d)
	if n < 0 {
		n = 0
	}
	c.set(blk, uint32(n))
}

// keys returns every inode with a non-zero count, ascending.
func (c *icount) keys() []uint64 {
	var out []uint64
	c.one.each(func(i uint64) { out = append(out, i) })
	for k := range c.many {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// dirParent is what fsck knows about one directory: who points at it
// (the first dirent found), what its ".." says, and whether pass 3
// reached it from the root (fsck.ocfs2's o2fsck_dir_parent).
type dirParent struct {
	ino       uint64
	dotDot    uint64 // where ".." points
	dirent    uint64 // the directory holding the first entry naming it
	connected bool
	loopNo    uint64
	inOrphan  bool // ORPHANED_FL was set: it sits in an orphan dir
}

// dirBlock is one block of a directory, for pass 2 (fsck.ocfs2's
// o2fsck_dirblock_entry). An inline directory's one "block" is its inode
// (blkno == ino, count 0).
type dirBlock struct {
	ino   uint64
	blkno uint64
	count uint64 // logical block in the directory
}
