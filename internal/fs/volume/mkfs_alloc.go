package volume

import (
	"fmt"
	"slices"

	"o2go/internal/ondisk"
)

// The allocators of a volume being formatted, in memory. mkfs.ocfs2 lays
// out a volume in two phases with two allocation policies, and the layout
// (and so every block number debugfs.ocfs2 shows) depends on both:
//
//   - Phase 1 (mkfs.c) walks the global bitmap's chains in chain order and
//     takes the first run of free bits in the first group whose free count
//     is large enough (alloc_from_bitmap); system inodes come from one
//     group it builds itself (global_inode_alloc).
//   - Phase 2 (libocfs2: journals, allocator groups, slot map, quota files,
//     indexes, lost+found) sees each group as a region of one bit space in
//     ascending address order and, for n bits wanted with at least m,
//     takes the first free run of n bits in the first group that has m
//     free, or else that group's longest free run (bitmap.c
//     alloc_range_func). Suballocators hand out the lowest free bit.

// allocGroup is one block group of a chain allocator.
type allocGroup struct {
	gd *ondisk.GroupDesc
	// base is the bit number of the group's bit 0 in its allocator's bit
	// space: a cluster number in the global bitmap, a block number in a
	// suballocator.
	base uint64
	// size is bg_size. gd.Bitmap stays nil while only bit 0 (the
	// descriptor) is set: most groups of a large volume never get another
	// bit at mkfs time, and their bitmaps would cost a block each.
	size int
}

func newAllocGroup(gd *ondisk.GroupDesc, base uint64, size int) *allocGroup {
	g := &allocGroup{gd: gd, base: base, size: size}
	g.gd.FreeBitsCount = g.gd.Bits - 1 // bit 0: the descriptor
	return g
}

func (g *allocGroup) bits() int { return int(g.gd.Bits) }

func (g *allocGroup) test(i int) bool {
	if g.gd.Bitmap == nil {
		return i == 0
	}
	return g.gd.Bitmap[i>>3]&(1<<(i&7)) != 0
}

func (g *allocGroup) set(i int) {
	if g.gd.Bitmap == nil {
		g.gd.Bitmap = g.bitmap()
	}
	g.gd.Bitmap[i>>3] |= 1 << (i & 7)
	g.gd.FreeBitsCount--
}

// bitmap returns the group's bitmap, materialised.
func (g *allocGroup) bitmap() []byte {
	if g.gd.Bitmap != nil {
		return g.gd.Bitmap
	}
	b := make([]byte, g.size)
	b[0] = 1
	return b
}

// nextClear returns the first clear bit at or after i (bits() if none).
func (g *allocGroup) nextClear(i int) int {
	if g.gd.Bitmap == nil {
		return min(max(i, 1), g.bits())
	}
	for ; i < g.bits(); i++ {
		if g.gd.Bitmap[i>>3] == 0xFF && i&7 == 0 && i+8 <= g.bits() {
			i += 7
			continue
		}
		if !g.test(i) {
			return i
		}
	}
	return g.bits()
}

// nextSet returns the first set bit at or after i (bits() if none).
func (g *allocGroup) nextSet(i int) int {
	if g.gd.Bitmap == nil {
		if i == 0 {
			return 0
		}
		return g.bits()
	}
	for ; i < g.bits(); i++ {
		if g.gd.Bitmap[i>>3] == 0 && i&7 == 0 && i+8 <= g.bits() {
			i += 7
			continue
		}
		if g.test(i) {
			return i
		}
	}
	return g.bits()
}

// encode writes the group descriptor into a block.
func (g *allocGroup) encode(data []byte) error {
	gd := *g.gd
	gd.Bitmap = g.bitmap()
	return gd.Encode(data)
}

// firstRun returns the first run of n clear bits (mkfs.c find_clear_bits).
func (g *allocGroup) firstRun(n int) (int, bool) {
	for s := g.nextClear(0); s+n <= g.bits(); {
		e := g.nextSet(s)
		if e-s >= n {
			return s, true
		}
		s = g.nextClear(e)
	}
	return 0, false
}

// chainAllocator is a chain allocator's dinode and groups: the global
// bitmap (bits are clusters) or a suballocator (bits are blocks).
type chainAllocator struct {
	name   string
	dinode *ondisk.Dinode
	// chains[c] lists chain c's groups from head to tail.
	chains [][]*allocGroup
	// byAddr lists every group in ascending bit order.
	byAddr []*allocGroup
}

func (a *chainAllocator) addToAddr(g *allocGroup) {
	i, _ := slices.BinarySearchFunc(a.byAddr, g.base, func(x *allocGroup, b uint64) int {
		switch {
		case x.base < b:
			return -1
		case x.base > b:
			return 1
		}
		return 0
	})
	a.byAddr = slices.Insert(a.byAddr, i, g)
}

// syncDinode recomputes the dinode's chain records, bit counts and size
// from the groups, as the incremental updates of mkfs.ocfs2 and libocfs2
// leave them.
func (a *chainAllocator) syncDinode(clusterSize int) {
	cl := a.dinode.Chain
	cl.Recs = cl.Recs[:0]
	var used, total uint32
	for _, ch := range a.chains {
		rec := ondisk.ChainRec{}
		if len(ch) > 0 {
			rec.Blkno = ch[0].gd.Blkno
		}
		for _, g := range ch {
			rec.Total += uint32(g.gd.Bits)
			rec.Free += uint32(g.gd.FreeBitsCount)
		}
		used += rec.Total - rec.Free
		total += rec.Total
		cl.Recs = append(cl.Recs, rec)
	}
	a.dinode.SetBitmap(ondisk.Bitmap{Used: used, Total: total})
}

// globalBitmap is the cluster allocator.
type globalBitmap struct {
	chainAllocator
	cpg        int    // clusters per group (the last may be shorter)
	bpc        uint64 // blocks per cluster
	firstGroup uint64 // s_first_cluster_group
}

// newGlobalBitmap builds the groups of the cluster bitmap (mkfs.c
// initialize_bitmap): group g covers clusters [g*cpg, g*cpg+bits), its
// descriptor is the first block of its first cluster (group 0's sits in
// the first cluster after the superblock, and group 0 also marks the
// clusters before it used), and group g goes on chain g mod cl_count.
func newGlobalBitmap(p *mkfsPlan, dinode *ondisk.Dinode, gen uint32) *globalBitmap {
	bpc := uint64(p.bpc())
	cbBits := p.clusterBits - p.blockBits
	firstCluster := (uint64(ondisk.SuperBlockBlkno) + 1 + bpc - 1) >> cbBits
	gb := &globalBitmap{cpg: p.globalCPG, bpc: bpc, firstGroup: firstCluster << cbBits}
	gb.name, gb.dinode = "global bitmap", dinode
	nChains := ondisk.ChainRecsPerInode(p.blockSize)
	size := ondisk.GroupBitmapBytes(p.blockSize, false, 0)
	for i := 0; i < p.groups; i++ {
		bits := p.globalCPG
		if i == p.groups-1 {
			bits = p.tailBits
		}
		blkno := uint64(i) * uint64(p.globalCPG) * bpc
		if i == 0 {
			blkno = gb.firstGroup
		}
		g := newAllocGroup(&ondisk.GroupDesc{
			Bits:       uint16(bits),
			Chain:      uint16(i % nChains),
			Generation: gen,
			Blkno:      blkno,
		}, uint64(i)*uint64(p.globalCPG), size)
		if i == 0 {
			for c := 1; uint64(c) <= firstCluster; c++ {
				g.set(c)
			}
		}
		c := i % nChains
		if c == len(gb.chains) {
			gb.chains = append(gb.chains, nil)
		}
		if n := len(gb.chains[c]); n > 0 {
			gb.chains[c][n-1].gd.NextGroup = blkno
		}
		gb.chains[c] = append(gb.chains[c], g)
		gb.byAddr = append(gb.byAddr, g)
	}
	return gb
}

// clusterBlkno is the first block of cluster c.
func (gb *globalBitmap) clusterBlkno(c uint64) uint64 { return c * gb.bpc }

// mkfsAlloc is phase 1's allocation of n contiguous clusters: chains in
// order, each chain's groups in order, the first group with n free bits,
// the first run there (it is an error if that group's free bits are not
// contiguous, as it is for mkfs.ocfs2).
func (gb *globalBitmap) mkfsAlloc(n int) (uint64, error) {
	for _, ch := range gb.chains {
		for _, g := range ch {
			if int(g.gd.FreeBitsCount) < n {
				continue
			}
			s, ok := g.firstRun(n)
			if !ok {
				return 0, fmt.Errorf("could not allocate %d contiguous clusters from the global bitmap (group %d is fragmented)", n, g.gd.Blkno)
			}
			for i := s; i < s+n; i++ {
				g.set(i)
			}
			return g.base + uint64(s), nil
		}
	}
	return 0, fmt.Errorf("could not allocate %d clusters from the global bitmap: the volume is too small", n)
}

// allocRange is phase 2's allocation (libocfs2 ocfs2_new_clusters): up
// to want clusters, at least min, contiguous. It returns the first
// cluster and how many it got.
func (gb *globalBitmap) allocRange(min, want int) (uint64, int, error) {
	for _, g := range gb.byAddr {
		if int(g.gd.FreeBitsCount) < min {
			continue
		}
		bestStart, bestLen := -1, 0
		for s := 0; s+min <= g.bits(); {
			s = g.nextClear(s)
			if s == g.bits() {
				break
			}
			e := g.nextSet(s)
			if e-s >= want {
				bestStart, bestLen = s, want
				break
			}
			if e-s > bestLen {
				bestStart, bestLen = s, e-s
			}
			s = e + 1
		}
		if bestStart < 0 || bestLen < min {
			continue
		}
		for i := bestStart; i < bestStart+bestLen; i++ {
			g.set(i)
		}
		return g.base + uint64(bestStart), bestLen, nil
	}
	return 0, 0, fmt.Errorf("could not allocate %d clusters from the global bitmap: the volume is full", min)
}

// allocSpecific marks cluster c used (ocfs2_new_specific_cluster); it
// fails if c is already used.
func (gb *globalBitmap) allocSpecific(c uint64) error {
	gi := int(c / uint64(gb.cpg))
	if gi >= len(gb.byAddr) {
		return fmt.Errorf("cluster %d is beyond the volume", c)
	}
	g := gb.byAddr[gi]
	bit := int(c - g.base)
	if g.test(bit) {
		return fmt.Errorf("cluster %d is already in use", c)
	}
	g.set(bit)
	return nil
}

// freeClusters is the global bitmap's free bit count.
func (gb *globalBitmap) freeClusters() uint64 {
	var n uint64
	for _, g := range gb.byAddr {
		n += uint64(g.gd.FreeBitsCount)
	}
	return n
}

// subAllocator is an inode or extent allocator (bits are blocks), grown
// one group at a time from the global bitmap the way libocfs2's
// ocfs2_chain_add_group does.
type subAllocator struct {
	chainAllocator
	gb         *globalBitmap
	bitmapSize int // bg_size of new groups
	gen        uint32
}

// addGroup grows the allocator by cl_cpg contiguous clusters: a new group
// prepended to chain cl_next_free_rec (or, once every chain is in use, to
// chain (i_clusters/cpg) mod cl_count), its descriptor in its first block.
func (s *subAllocator) addGroup(clusterSize int) (*allocGroup, error) {
	cl := s.dinode.Chain
	cpg := int(cl.CPG)
	c, n, err := s.gb.allocRange(cpg, cpg)
	if err != nil {
		return nil, fmt.Errorf("growing %s by %d clusters: %w", s.name, cpg, err)
	}
	if n != cpg {
		return nil, fmt.Errorf("growing %s: got %d clusters, want %d", s.name, n, cpg)
	}
	chain := len(s.chains)
	if chain >= int(cl.Count) {
		chain = int(s.dinode.Clusters/uint32(cpg)) % int(cl.Count)
	}
	blkno := s.gb.clusterBlkno(c)
	bits := cpg * int(cl.BPC)
	g := newAllocGroup(&ondisk.GroupDesc{
		Bits:         uint16(bits),
		Chain:        uint16(chain),
		Generation:   s.gen,
		ParentDinode: s.dinode.Blkno,
		Blkno:        blkno,
	}, blkno, s.bitmapSize)
	if chain == len(s.chains) {
		s.chains = append(s.chains, nil)
	}
	if old := s.chains[chain]; len(old) > 0 {
		g.gd.NextGroup = old[0].gd.Blkno
	}
	s.chains[chain] = append([]*allocGroup{g}, s.chains[chain]...)
	s.addToAddr(g)
	s.dinode.Clusters += uint32(cpg)
	s.dinode.Size = uint64(s.dinode.Clusters) * uint64(clusterSize)
	return g, nil
}

// alloc hands out the lowest free block, growing the allocator when it is
// full (ocfs2_new_inode, ocfs2_new_extent_block, ocfs2_new_dx_root). It
// returns the block, its group descriptor's block and its bit.
func (s *subAllocator) alloc(clusterSize int) (blkno, group uint64, bit uint16, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		for _, g := range s.byAddr {
			if i := g.nextClear(0); i < g.bits() {
				g.set(i)
				return g.base + uint64(i), g.gd.Blkno, uint16(i), nil
			}
		}
		if attempt == 0 {
			if _, err := s.addGroup(clusterSize); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	return 0, 0, 0, fmt.Errorf("%s: no free block after growing", s.name)
}
