package fsck

import (
	"bytes"
	"fmt"
	"sort"

	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
)

// Pass 1 (fsck.ocfs2's pass1.c) reads every block of every inode
// allocator group once, in large sequential reads: each is checked as an
// inode when it carries the signature and the volume's generation, its
// extent tree and extended attributes are walked, and the clusters they
// use are recorded. The inode allocators' bitmaps must then match the
// inodes found valid, and the global bitmap the clusters found in use
// (plus local alloc windows and truncate logs).

// scanChunkBytes is how much of a group one read takes (fsck.ocfs2 reads
// 4 MiB at a time too).
const scanChunkBytes = 4 << 20

// inodeAllocAsked/inodeAllocWrite record the one INODE_ALLOC_REPAIR
// question (it covers "this and all future inodes").
type inodeAllocAnswer struct{ asked, write bool }

func (c *checker) pass1() error {
	c.printf("Pass 1: Checking inodes and blocks\n")
	var total uint64
	for _, a := range c.inodeAllocs {
		total += uint64(a.di.clusters()) * c.bpc
	}
	bar := c.newProgress(int64(total), "Scanning inodes")
	var ans inodeAllocAnswer
	buf := blockdev.AlignedBuffer(scanChunkBytes, 4096)
	for _, a := range c.inodeAllocs {
		if a.di.bmTotal() == 0 {
			continue
		}
		for _, gr := range a.groups {
			err := c.forEachGroupBlock(gr, buf, func(bit int, blk uint64, b []byte) error {
				valid, err := c.checkScannedInode(blk, dinode(b))
				if err != nil {
					return err
				}
				c.updateInodeAlloc(a, gr, bit, blk, dinode(b), valid, &ans)
				bar.add(1)
				return nil
			})
			if err != nil {
				bar.done()
				return err
			}
		}
	}
	bar.done()
	c.markLocalAllocs()
	c.markTruncateLogs()
	// A failed refcount check still lets the bitmaps be written, then
	// ends pass 1 before the duplicate passes, as in fsck.ocfs2.
	refErr := c.checkRefcountedClusters()
	if err := c.writeClusterAlloc(); err != nil {
		return err
	}
	if ans.write {
		for _, a := range c.inodeAllocs {
			if err := c.writeChainAlloc(a); err != nil {
				c.fail("while trying to write back slot %d's inode allocator: %v", a.slot, err)
			}
		}
	}
	if refErr != nil {
		return opError{refErr}
	}
	if c.dups != nil {
		return c.pass1Dups()
	}
	return nil
}

// forEachGroupBlock reads a group's blocks (not the descriptor, bit 0) in
// large reads and calls fn for each, with its bit in the group.
func (c *checker) forEachGroupBlock(gr *group, buf []byte, fn func(bit int, blk uint64, b []byte) error) error {
	g := gr.g
	bits := int(g.bits())
	maxBlocks := len(buf) / c.bs
	run := func(bit0 int, blk0 uint64, n int) error {
		for n > 0 {
			k := min(n, maxBlocks)
			if blk0+uint64(k) > c.blocks {
				k = int(c.blocks - blk0)
				if k <= 0 {
					return nil
				}
			}
			p := buf[:k*c.bs]
			if err := c.readBlocks(blk0, p); err != nil {
				return c.fail("while getting next inode: %v", err)
			}
			for i := 0; i < k; i++ {
				if err := fn(bit0+i, blk0+uint64(i), p[i*c.bs:(i+1)*c.bs]); err != nil {
					return err
				}
			}
			bit0 += k
			blk0 += uint64(k)
			n -= k
		}
		return nil
	}
	if !g.discontig() {
		return run(1, g.blkno()+1, bits-1)
	}
	l := g.list()
	for i := 0; i < min(int(l.nextFree()), l.room()); i++ {
		r := l.rec(i)
		start := int(uint64(r.cpos()) * c.bpc)
		n := int(uint64(r.leafClusters()) * c.bpc)
		blk := r.blkno()
		if start == 0 {
			start, blk, n = 1, blk+1, n-1
		}
		if start+n > bits {
			n = bits - start
		}
		if n > 0 {
			if err := run(start, blk, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkScannedInode checks one block of an inode allocator group and
// says whether it holds a valid inode.
func (c *checker) checkScannedInode(blk uint64, d dinode) (bool, error) {
	if !d.valid() {
		return false, nil
	}
	if !c.o.FixGeneration && d.fsGen() != c.gen {
		return false, nil
	}
	if d.flags()&ondisk.InodeValid != 0 {
		c.verifyInodeFields(blk, d)
	}
	if d.flags()&ondisk.InodeValid != 0 {
		c.checkRefcountTree(d)
		if err := c.checkBlocks(blk, d); err != nil {
			return false, err
		}
		if err := c.checkXattrs(blk, d); err != nil {
			return false, err
		}
	}
	return d.flags()&ondisk.InodeValid != 0, nil
}

// updateInodeAlloc makes the allocator bit of a scanned block follow the
// inode's validity, asking once for all of them (update_inode_alloc).
func (c *checker) updateInodeAlloc(a *chainAlloc, gr *group, bit int, blk uint64, d dinode, valid bool, ans *inodeAllocAnswer) {
	if ans.asked && !ans.write {
		return
	}
	bm := gr.g.bitmap()
	if bit >= len(bm)*8 {
		return
	}
	old := testBit(bm, bit)
	if old != valid && !ans.asked {
		ans.write = c.p.ask(InodeAllocRepair, "Inode %d is marked as %s but its position in the inode allocator is marked as %s.  Fix the allocation of this and all future inodes?", blk, map[bool]string{true: "valid", false: "invalid"}[valid], map[bool]string{true: "in use", false: "free"}[old])
		ans.asked = true
	}
	if old != valid && ans.write {
		a.setBit(gr, bit, valid)
	}
	slot := uint16(a.slot)
	if a.slot < 0 {
		slot = ondisk.SuballocSlotGlobal
	}
	if valid && slot != d.suballocSlot() && c.p.ask(InodeSuballoc, "Inode %d indicates that it was allocated from slot %d but slot %d's chain allocator covers the inode.  Fix the inode's record of where it is allocated?", blk, int16(d.suballocSlot()), int16(slot)) {
		put16(d, diSuballocSlot, slot)
		c.writeInode(blk, d)
	}
}

// inodeAllocated says whether the inode allocators mark blk in use
// (ocfs2_test_inode_allocated against the bitmaps as pass 1 left them);
// ok is false when no allocator group covers blk.
func (c *checker) inodeAllocated(blk uint64) (alloc, ok bool) {
	if c.inodeIndex == nil {
		c.buildInodeIndex()
	}
	idx := c.inodeIndex
	i := sort.Search(len(idx), func(i int) bool { return idx[i].end > blk })
	if i == len(idx) || idx[i].start > blk {
		return false, false
	}
	e := idx[i]
	bit := e.bit0 + int(blk-e.start)
	bm := e.gr.g.bitmap()
	if bit >= len(bm)*8 {
		return false, false
	}
	return testBit(bm, bit), true
}

// inodeRange maps a run of blocks to bits of an inode allocator group.
type inodeRange struct {
	start, end uint64
	bit0       int
	gr         *group
}

func (c *checker) buildInodeIndex() {
	var idx []inodeRange
	for _, a := range c.inodeAllocs {
		for _, gr := range a.groups {
			g := gr.g
			if !g.discontig() {
				idx = append(idx, inodeRange{g.blkno(), g.blkno() + uint64(g.bits()), 0, gr})
				continue
			}
			l := g.list()
			for i := 0; i < min(int(l.nextFree()), l.room()); i++ {
				r := l.rec(i)
				n := uint64(r.leafClusters()) * c.bpc
				idx = append(idx, inodeRange{r.blkno(), r.blkno() + n, int(uint64(r.cpos()) * c.bpc), gr})
			}
		}
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i].start < idx[j].start })
	c.inodeIndex = idx
}

// verifyInodeFields checks the inode's own fields and records what it is
// (o2fsck_verify_inode_fields). It may clear VALID.
func (c *checker) verifyInodeFields(blk uint64, d dinode) {
	clearIt := false
	defer func() {
		if clearIt {
			d.setFlags(d.flags() &^ ondisk.InodeValid)
			if c.rw {
				c.writeInode(blk, d)
			}
			c.inLinks.set(d.blkno(), 0)
		}
	}()
	if d.fsGen() != c.gen {
		if c.p.ask(InodeGen, "Inode read from block %d looks like it is valid but it has a generation of %x that doesn't match the current volume's generation of %x.  This is probably a harmless old inode.  Mark it deleted?", blk, d.fsGen(), c.gen) {
			clearIt = true
			return
		}
		if c.p.ask(InodeGenFix, "Update the inode's generation to match the volume?") {
			put32(d, diFSGeneration, c.gen)
			c.writeInode(blk, d)
		}
	}
	if d.blkno() != blk && c.p.ask(InodeBlkno, "Inode read from block %d has i_blkno set to %d.  Set the inode's i_blkno value to reflect its location on disk?", blk, d.blkno()) {
		put64(d, diBlkno, blk)
		c.writeInode(blk, d)
	}
	if d.blkno() == c.sb.RootBlkno && !d.isDir() && c.p.ask(RootNotDir, "Root inode isn't a directory.  Clear it in preparation for fixing it?") {
		clearIt = true
		return
	}
	if d.dtime() != 0 && c.p.ask(InodeNZDtime, "Inode %d is in use but has a non-zero dtime. Reset the dtime to 0?", d.blkno()) {
		put64(d, diDtime, 0)
		c.writeInode(blk, d)
	}
	if d.inline() && c.sb.Features.Incompat&ondisk.IncompatInlineData == 0 &&
		c.p.ask(InlineDataFlagInvalid, "Inode %d has inline flag set but the volume doesn't support it. Clear it?", d.blkno()) {
		d.setDyn(d.dyn() &^ ondisk.DynInlineData)
		c.writeInode(blk, d)
	}
	refcountVol := c.sb.Features.Incompat&ondisk.IncompatRefcountTree != 0
	if d.dyn()&ondisk.DynHasRefcount != 0 && !refcountVol &&
		c.p.ask(RefcountFlagInvalid, "Inode %d has refcount flag set but the volume doesn't support it. Clear it?", d.blkno()) {
		d.setDyn(d.dyn() &^ ondisk.DynHasRefcount)
		c.writeInode(blk, d)
	}
	if refcountVol && d.dyn()&ondisk.DynHasRefcount == 0 && get64(d, diRefcountLoc) != 0 &&
		c.p.ask(RefcountLocInvalid, "Inode %d doesn't have refcount flag set but have refcount loc set. Clear it?", d.blkno()) {
		put64(d, diRefcountLoc, 0)
		c.writeInode(blk, d)
	}
	s := &c.stats
	switch d.mode() & ondisk.ModeTypeMask {
	case ondisk.ModeDir:
		c.dirInodes.set(blk)
		c.dirParents[blk] = &dirParent{ino: blk, inOrphan: d.flags()&ondisk.InodeOrphaned != 0}
		s.dirs++
		if d.inline() {
			s.inlineDirs++
		}
	case ondisk.ModeReg:
		c.regInodes.set(blk)
		s.files++
		if d.inline() {
			s.inlineFiles++
		}
	case ondisk.ModeLnk:
		s.symlinks++
		if d.clusters() == 0 {
			s.fastSymlinks++
		}
	case ondisk.ModeChr:
		s.chardevs++
	case ondisk.ModeBlk:
		s.blockdevs++
	case ondisk.ModeFifo:
		s.fifos++
	case ondisk.ModeSock:
		s.sockets++
	default:
		clearIt = true
		return
	}
	if !(d.isLink() && d.clusters() == 0) && !d.inline() &&
		d.flags()&(ondisk.InodeLocalAlloc|ondisk.InodeChain|ondisk.InodeDealloc) == 0 {
		s.depth[min(int(extList(d[diID2:]).depth()), 5)]++
	}
	if d.dyn()&ondisk.DynHasRefcount != 0 {
		s.reflinks++
	}
	if n := d.links(); n != 0 {
		c.inLinks.set(d.blkno(), n)
		if n > 1 {
			s.links++
		}
	}
	if d.flags()&ondisk.InodeOrphaned != 0 && d.links() == 0 {
		c.inLinks.set(d.blkno(), 1)
	}
	switch {
	case d.flags()&ondisk.InodeLocalAlloc != 0:
		c.verifyLocalAlloc(d)
	case d.flags()&ondisk.InodeDealloc != 0:
		c.verifyTruncateLog(d)
	}
}

// verifyLocalAlloc checks a local alloc inode (verify_local_alloc).
func (c *checker) verifyLocalAlloc(d dinode) {
	la := d[diID2:]
	bmOff := get32(la, 0)
	size := int(get16(la, 4))
	maxSize := localAllocSize(c.bs)
	blk := d.blkno()
	broken, changed, clearIt := false, false, false
	c.verbosef("la_bm_off %d size %d total %d used %d\n", bmOff, size, d.bmTotal(), d.bmUsed())
	if size > maxSize {
		broken = true
		if c.p.ask(LallocSize, "Local alloc inode %d claims to have %d bytes of bitmap data but %d bytes is the maximum allowed.  Set the inode's count to the maximum?", blk, size, maxSize) {
			size = maxSize
			put16(la, 4, uint16(size))
			changed = true
		}
	}
	func() {
		if d.bmTotal() == 0 {
			if d.bmUsed() != 0 && c.p.ask(LallocNZUsed, "Local alloc inode %d isn't in use bit its i_used isn't 0.  Set it to 0?", blk) {
				d.setBmUsed(0)
				changed = true
			}
			if bmOff != 0 && c.p.ask(LallocNZBm, "Local alloc inode %d isn't in use bit its i_bm_off isn't 0.  Set it to 0?", blk) {
				put32(la, 0, 0)
				changed = true
			}
			return
		}
		if bmOff >= c.clusters {
			broken = true
			if c.p.ask(LallocBmOverrun, "Local alloc inode %d claims to contain a bitmap that starts at cluster %d but the volume contains %d clusters.  Mark the local alloc bitmap as unused?", blk, bmOff, c.clusters) {
				clearIt = true
			}
		}
		if d.bmTotal() > uint32(size)*8 {
			broken = true
			if c.p.ask(LallocBmSize, "Local alloc inode %d claims to have a bitmap with %d bits but the inode can only fit %d bits.  Clamp the bitmap size to this maxmum?", blk, d.bmTotal(), size*8) {
				d.setBmTotal(uint32(size) * 8)
				changed = true
			}
		}
		if uint64(bmOff)+uint64(d.bmTotal()) > uint64(c.clusters) {
			broken = true
			if c.p.ask(LallocBmStraddle, "Local alloc inode %d claims to have a bitmap that covers clusters numbered %d through %d but %d is the last valid cluster. Mark the local bitmap as unused?", blk, bmOff, bmOff+d.bmTotal()-1, c.clusters-1) {
				clearIt = true
			}
			return
		}
		if d.bmUsed() > d.bmTotal() {
			broken = true
			if c.p.ask(LallocUsedOverrun, "Local alloc inode %d claims to contain a bitmap with %d bits and %d used.  Set i_used down to %d?", blk, d.bmTotal(), d.bmUsed(), d.bmTotal()) {
				d.setBmUsed(d.bmTotal())
				changed = true
			}
		}
	}()
	if broken && !clearIt && c.p.ask(LallocClear, "Local alloc inode %d contained errors. Mark it as unused instead of trying to correct its bitmap?", blk) {
		clearIt = true
	}
	if clearIt {
		d.setBmTotal(0)
		d.setBmUsed(0)
		put32(la, 0, 0)
		clear(la[0x10 : 0x10+maxSize])
		changed = true
	}
	if changed {
		c.writeInode(blk, d)
	}
}

// verifyTruncateLog checks a truncate log inode (verify_truncate_log).
func (c *checker) verifyTruncateLog(d dinode) {
	tl := d[diID2:]
	blk := d.blkno()
	maxRecs := truncRecsPerInode(c.bs)
	changed := false
	count, used := int(get16(tl, 0)), int(get16(tl, 2))
	if count > maxRecs && c.p.ask(DeallocCount, "Truncate log inode %d claims space for %d records but only %d records are possible.  Set the inode's count to the maximum?", blk, count, maxRecs) {
		count = maxRecs
		put16(tl, 0, uint16(count))
		changed = true
	}
	if used > count && c.p.ask(DeallocUsed, "Truncate log inode %d claims to be using %d records but the inode can only hold %d records.  Change the number used to reflect the maximum possible in the inode?", blk, used, count) {
		used = count
		put16(tl, 2, uint16(used))
		changed = true
	}
	for i := 0; i < min(maxRecs, used); i++ {
		r := tl[8+i*8:]
		start, n := get32(r, 0), get32(r, 4)
		if start == 0 {
			continue
		}
		zero := false
		if start >= c.clusters && c.p.ask(TruncateRecStartRange, "Truncate record at offset %d in truncate log inode %d starts at cluster %d but there are %d clusters in the volume. Remove this record from the log?", i, blk, start, c.clusters) {
			zero = true
		}
		if start+n < start && c.p.ask(TruncateRecWrap, "Truncate record at offset %d in truncate log inode %d starts at cluster %d and contains %d clusters.  It can't have this many clusters as that overflows the number of possible clusters in a volume.  Remove this record from the log?", i, blk, start, n) {
			zero = true
		}
		if uint64(start)+uint64(n) > uint64(c.clusters) && c.p.ask(TruncateRecRange, "Truncate record at offset %d in truncate log inode %d starts at cluster %d and contains %d clusters.  It can't have this many clusters as this volume only has %d clusters. Remove this record from the log?", i, blk, start, n, c.clusters) {
			zero = true
		}
		if zero {
			put32(r, 0, 0)
			put32(r, 4, 0)
			changed = true
		}
	}
	if changed {
		c.writeInode(blk, d)
	}
}

// checkBlocks checks the data an inode maps: its extent tree, directory
// blocks, symlink target, and i_size/i_clusters against them
// (o2fsck_check_blocks).
func (c *checker) checkBlocks(blk uint64, d dinode) error {
	if d.flags()&(ondisk.InodeSuperBlock|ondisk.InodeLocalAlloc|ondisk.InodeBitmap|ondisk.InodeChain|ondisk.InodeDealloc) != 0 ||
		(d.isLink() && d.clusters() == 0) {
		return nil
	}
	var numBlocks, lastBlock uint64
	if d.inline() {
		if d.isDir() {
			c.dirBlocks = append(c.dirBlocks, dirBlock{ino: d.blkno(), blkno: d.blkno()})
		}
		c.checkSizeClusters(blk, d, 0, 0)
		return nil
	}
	ei, err := c.checkExtents(d)
	if err != nil {
		return err
	}
	linkLen, sawNull := uint64(0), false
	for _, r := range ei.leaves {
		bc := uint64(r.cpos) * c.bpc
		n := uint64(r.clusters) * c.bpc
		switch {
		case d.isDir():
			for i := uint64(0); i < n; i++ {
				c.dirBlocks = append(c.dirBlocks, dirBlock{ino: d.blkno(), blkno: r.blkno + i, count: bc + i})
			}
		case d.isLink():
			for i := uint64(0); i < n && !sawNull; i++ {
				b, err := c.readBlock(r.blkno + i)
				if err != nil {
					return c.fail("while iterating over the blocks for inode %d: %v", d.blkno(), err)
				}
				if z := bytes.IndexByte(b, 0); z >= 0 {
					linkLen += uint64(z)
					sawNull = true
				} else {
					linkLen += uint64(c.bs)
				}
			}
		}
		if n > 0 {
			numBlocks += n
			lastBlock = max(lastBlock, bc+n-1)
		}
	}
	if err := c.checkDxDir(d); err != nil && c.p.ask(DxTreeCorrupt, "Inode %d has invalid dx tree. Reset for later rebuild?", d.blkno()) {
		// The index is dropped (its blocks are left to leak: they cannot
		// be trusted); pass 2 then finds the directory without one and
		// offers to build it.
		put64(d, diDxRoot, 0)
		d.setDyn(d.dyn() &^ ondisk.DynIndexedDir)
		c.writeInode(d.blkno(), d)
	}
	clearIt := false
	if d.isLink() {
		clearIt = c.checkLinkData(d, numBlocks, linkLen, sawNull)
	}
	if d.isDir() && numBlocks == 0 && c.p.ask(DirZero, "Inode %d is a zero length directory, clear it?", d.blkno()) {
		clearIt = true
	}
	if clearIt {
		d.setLinks(0)
		c.inLinks.set(d.blkno(), 0)
		put64(d, diDtime, c.unixNow())
		for _, r := range ei.leaves {
			for i := uint32(0); i < r.clusters; i++ {
				c.allocated.clear(uint64(r.blkno>>(c.csBits-c.bsBits)) + uint64(i))
			}
		}
		d.setFlags(d.flags() &^ ondisk.InodeValid)
		c.writeInode(blk, d)
		if d.isDir() {
			delete(c.dirParents, d.blkno())
		}
		return nil
	}
	c.checkSizeClusters(blk, d, numBlocks, lastBlock)
	return nil
}

// checkSizeClusters compares i_size and i_clusters with the blocks the
// tree maps (the size_cluster_check of o2fsck_check_blocks).
func (c *checker) checkSizeClusters(blk uint64, d dinode, numBlocks, lastBlock uint64) {
	csize := uint64(1) << c.csBits
	clustersIn := func(blocks uint64) uint64 { return (blocks + c.bpc - 1) / c.bpc }
	switch {
	case d.inline():
		maxInline := uint64(c.bs - diID2 - 8)
		if d.dyn()&ondisk.DynInlineXattr != 0 {
			maxInline -= uint64(d.xattrInline())
		}
		if uint64(get16(d, diID2)) != maxInline && c.p.ask(InlineDataCountInvalid, "Inode %d is inline file and its id_count is %d which should be %d. Correct this count?", d.blkno(), get16(d, diID2), maxInline) {
			put16(d, diID2, uint16(maxInline))
			c.writeInode(blk, d)
		}
		if d.size() > maxInline && c.p.ask(InodeInlineSize, "Inode %dhas a size of %d which exceeds the max inline data size %d. Correct the file size?", d.blkno(), d.size(), maxInline) {
			d.setSize(maxInline)
			c.writeInode(blk, d)
		}
		if d.clusters() > 0 && c.p.ask(InodeInlineClusters, "Inode %d has %d clusters but it has inline data flag set. Correct the number of clusters?", d.blkno(), d.clusters()) {
			d.setClusters(0)
			c.writeInode(blk, d)
		}
	case c.sb.Features.Incompat&ondisk.IncompatSparseAlloc != 0:
		var expected uint64
		if numBlocks > 0 {
			expected = clustersIn(lastBlock+1) * csize
			unexpected := expected - csize
			if !d.isLink() && !d.isDir() && d.size() <= unexpected &&
				c.p.ask(InodeSparseSize, "Inode %d has a size of %d but has %d blocks of actual data. Correct the file size?", d.blkno(), d.size(), lastBlock+1) {
				d.setSize(expected)
				c.writeInode(blk, d)
			}
			expected = clustersIn(numBlocks)
		}
		if uint64(d.clusters()) != expected && c.p.ask(InodeSparseClusters, "Inode %d has %d clusters but its blocks fit in %d clusters. Correct the number of clusters?", d.blkno(), d.clusters(), expected) {
			d.setClusters(uint32(expected))
			c.writeInode(blk, d)
		}
	default:
		var expected uint64
		if numBlocks > 0 {
			expected = (lastBlock + 1) * uint64(c.bs)
		}
		if !d.isLink() && d.size() > expected && c.p.ask(InodeSize, "Inode %d has a size of %d but has %d bytes of actual data. Correct the file size?", d.blkno(), d.size(), expected) {
			d.setSize(expected)
			c.writeInode(blk, d)
		}
		if numBlocks > 0 {
			expected = clustersIn(lastBlock + 1)
		}
		if uint64(d.clusters()) != expected && c.p.ask(InodeClusters, "Inode %d has %d clusters but its blocks fit in %d clusters.  Correct the number of clusters?", d.blkno(), d.clusters(), expected) {
			d.setClusters(uint32(expected))
			c.writeInode(blk, d)
		}
	}
}

// checkExtents checks the inode's tree (o2fsck_check_extents) and then
// models the block iteration that follows it in fsck.ocfs2.
func (c *checker) checkExtents(d dinode) (*extentInfo, error) {
	ei := &extentInfo{owner: d.blkno(), di: d}
	ei.mark = func(r extRec, clusters uint32) {
		pc := uint32(r.blkno() >> (c.csBits - c.bsBits))
		if r.flags()&ondisk.ExtentRefcounted != 0 {
			c.markRefcounted(d, pc, clusters, r.cpos())
			return
		}
		c.markClusters(pc, clusters)
	}
	el := extList(d[diID2:])
	changed := false
	c.checkEL(ei, el, extentRecsPerInode(c.bs), 0, d.isDir(), &changed)
	if d.isDir() && !d.inline() && el.nextFree() > 0 && int(el.nextFree()) <= el.room() {
		er := el.rec(int(el.nextFree()) - 1)
		expected := uint64(er.cpos()+er.clusters(el.depth())) << c.csBits
		if d.size() > expected && c.p.ask(InodeSize, "Inode %d has a size of %d but has %d bytes of actual data. Correct the file size?", d.blkno(), d.size(), expected) {
			d.setSize(expected)
			if d.dyn()&ondisk.DynIndexedDir != 0 {
				put64(d, diDxRoot, 0)
				d.setDyn(d.dyn() &^ ondisk.DynIndexedDir)
			}
			changed = true
		}
	}
	if changed {
		c.writeInode(d.blkno(), d)
	}
	c.iterateTree(ei, el)
	if ei.iterErr != nil {
		return nil, c.fail("while iterating over the blocks for inode %d: %v", d.blkno(), ei.iterErr)
	}
	if get64(d, diLastEB) != ei.lastEB {
		if !c.rw {
			return nil, c.fail("while iterating over the blocks for inode %d: its i_last_eb_blk is %d but its rightmost leaf is %d (fsck.ocfs2 fixes this only with write access)", d.blkno(), get64(d, diLastEB), ei.lastEB)
		}
		c.verbosef("inode %d: i_last_eb_blk %d -> %d\n", d.blkno(), get64(d, diLastEB), ei.lastEB)
		put64(d, diLastEB, ei.lastEB)
		c.writeInode(d.blkno(), d)
	}
	return ei, nil
}

// checkLinkData checks a slow symlink's target (check_link_data); it
// returns whether to clear the inode.
func (c *checker) checkLinkData(d dinode, numBlocks, linkLen uint64, sawNull bool) bool {
	var expected uint64
	if d.clusters() == 0 && numBlocks > 0 && c.p.ask(LinkFastData, "Symlink inode %d claims to be a fast symlink but has file data.  Clear the inode?", d.blkno()) {
		return true
	}
	if d.clusters() == 0 {
		area := d[diID2:]
		if z := bytes.IndexByte(area, 0); z >= 0 {
			sawNull, linkLen = true, uint64(z)
		} else {
			linkLen = uint64(len(area))
		}
	} else {
		expected = (linkLen + 1 + uint64(c.bs) - 1) / uint64(c.bs)
	}
	if !sawNull && c.p.ask(LinkNullterm, "The target of symlink inode %d isn't null terminated.  Clear the inode?", d.blkno()) {
		return true
	}
	if d.size() != linkLen && c.p.ask(LinkSize, "The target of symlink inode %d is %d bytes long on disk, but i_size is %d bytes long.  Update i_size to reflect the length on disk?", d.blkno(), linkLen, d.size()) {
		d.setSize(linkLen)
		c.writeInode(d.blkno(), d)
		return false
	}
	if numBlocks < expected && c.p.ask(LinkBlocks, "The target of symlink inode %d fits in %d blocks but the inode has %d allocated.  Clear the inode?", d.blkno(), expected, numBlocks) {
		return true
	}
	return false
}

// checkDxDir walks an indexed directory's index tree, recording its
// clusters (o2fsck_check_dx_dir).
func (c *checker) checkDxDir(d dinode) error {
	if c.sb.Features.Incompat&ondisk.IncompatIndexedDirs == 0 || d.dyn()&ondisk.DynIndexedDir == 0 {
		return nil
	}
	root := get64(d, diDxRoot)
	if c.outOfRange(root) {
		return errBadBlkno
	}
	b, err := c.readBlock(root)
	if err != nil {
		return err
	}
	if c.metaECC {
		if _, err := ondisk.VerifyBlockCheck(b, ondisk.DXRootCheckOffset, "dx root"); err != nil {
			return errBadCRC
		}
	}
	if !hasSig(b, ondisk.DXRootSignature) {
		return fmt.Errorf("dx root %d: bad signature", root)
	}
	if b[dxrFlags]&0x01 != 0 {
		return nil
	}
	ei := &extentInfo{owner: d.blkno(), di: d}
	ei.mark = func(r extRec, clusters uint32) {
		c.markClusters(uint32(r.blkno()>>(c.csBits-c.bsBits)), clusters)
	}
	changed := false
	c.checkEL(ei, extList(b[dxrUnion:]), extentRecsPerDxRoot(c.bs), 0, false, &changed)
	if changed {
		if err := c.writeBlock(root, b, ondisk.DXRootCheckOffset); err != nil {
			c.fail("while writing an updated dx_root block at %d for inode %d: %v", root, d.blkno(), err)
		}
	}
	return nil
}

// markLocalAllocs keeps the clusters of local alloc windows that the
// slot has not used in use (mark_local_allocs).
func (c *checker) markLocalAllocs() {
	for _, blk := range c.sys.localAllocs {
		b, err := c.readBlock(blk)
		if err != nil {
			c.fail("while reading local alloc inode %d to verify its bitmap: %v", blk, err)
			return
		}
		d := dinode(b)
		la := d[diID2:]
		total := d.bmTotal()
		if total == 0 {
			continue
		}
		size := int(get16(la, 4))
		if size > localAllocSize(c.bs) || d.bmUsed() > total || total > uint32(size)*8 {
			continue
		}
		start := get32(la, 0)
		end := uint64(start) + uint64(total)
		if start >= c.clusters || end > uint64(c.clusters) {
			continue
		}
		bm := la[0x10:]
		for bit := 0; bit < int(total); bit++ {
			if !testBit(bm, bit) {
				c.markCluster(start + uint32(bit))
			}
		}
	}
}

// markTruncateLogs keeps the clusters the truncate logs still hold in use
// (mark_truncate_logs).
func (c *checker) markTruncateLogs() {
	maxRecs := truncRecsPerInode(c.bs)
	for _, blk := range c.sys.truncateLogs {
		b, err := c.readBlock(blk)
		if err != nil {
			c.fail("while reading truncate log inode %d to account for its records: %v", blk, err)
			return
		}
		tl := b[diID2:]
		for i := 0; i < min(int(get16(tl, 2)), maxRecs); i++ {
			r := tl[8+i*8:]
			if start := get32(r, 0); start != 0 {
				c.markClusters(start, get32(r, 4))
			}
		}
	}
}

// writeClusterAlloc makes the global bitmap follow the clusters found in
// use, cluster by cluster (write_cluster_alloc): set where something uses
// a free cluster, clear where nothing uses a used one (never the clusters
// of backup superblocks, which no inode owns).
func (c *checker) writeClusterAlloc() error {
	ga, err := c.loadChainAlloc(c.sys.globalBitmap, -1)
	if err != nil {
		c.fail("while loading the cluster bitmap allocator from block %d: %v", c.sys.globalBitmap, err)
		return nil
	}
	c.global = ga
	backups := map[uint64]bool{}
	if c.sb.Features.Compat&ondisk.CompatBackupSB != 0 {
		for _, b := range ondisk.BackupSuperBlockBlknos(c.bs, c.blocks) {
			backups[b>>(c.csBits-c.bsBits)] = true
		}
	}
	type span struct {
		start uint64
		gr    *group
	}
	var spans []span
	for _, gr := range ga.groups {
		start := gr.g.blkno() / c.bpc
		if gr.g.blkno() == c.sb.FirstClusterGroup {
			start = 0
		}
		spans = append(spans, span{start, gr})
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	// Clusters no group covers: only the ones found in use can be
	// reported (there is no bit to clear).
	next := uint64(0)
	uncovered := func(from, to uint64) {
		for cl := c.allocated.nextSet(from); cl < to; cl = c.allocated.nextSet(cl + 1) {
			if c.p.ask(ClusterAllocBit, "Cluster %d is in use but isn't set in the global cluster bitmap. Set its bit in the bitmap?", cl) {
				c.fail("while trying to set bit %d in the cluster bitmap: no group covers it", cl)
				c.p.found[len(c.p.found)-1].Fixed = false
			}
		}
	}
	for _, s := range spans {
		g := s.gr.g
		bits := uint64(g.bits())
		if s.start < next {
			continue // overlapping groups: the first one speaks for them
		}
		if s.start > next {
			uncovered(next, min(s.start, uint64(c.clusters)))
		}
		bm := g.bitmap()
		limit := min(bits, uint64(len(bm))*8)
		if s.start+limit > uint64(c.clusters) {
			limit = uint64(c.clusters) - min(s.start, uint64(c.clusters))
		}
		for j := uint64(0); j < limit; j += 64 {
			var disk uint64
			if int(j/8)+8 <= len(bm) {
				disk = le.Uint64(bm[j/8:])
			} else {
				var tmp [8]byte
				copy(tmp[:], bm[j/8:])
				disk = le.Uint64(tmp[:])
			}
			found := c.allocated.word(s.start + j)
			n := min(uint64(64), limit-j)
			mask := ^uint64(0)
			if n < 64 {
				mask = (1 << n) - 1
			}
			diff := (disk ^ found) & mask
			for diff != 0 {
				t := uint64(trailingZeros(diff))
				diff &= diff - 1
				cl := s.start + j + t
				if found&(1<<t) != 0 {
					if c.p.ask(ClusterAllocBit, "Cluster %d is in use but isn't set in the global cluster bitmap. Set its bit in the bitmap?", cl) {
						ga.setBit(s.gr, int(j+t), true)
					}
				} else if !backups[cl] {
					if c.p.ask(ClusterAllocBit, "Cluster %d is marked in the global cluster bitmap but it isn't in use.  Clear its bit in the bitmap?", cl) {
						ga.setBit(s.gr, int(j+t), false)
					}
				}
			}
		}
		next = s.start + bits
	}
	if next < uint64(c.clusters) {
		uncovered(next, uint64(c.clusters))
	}
	if err := c.writeChainAlloc(ga); err != nil {
		c.fail("while trying to write back the cluster bitmap allocator: %v", err)
	}
	return nil
}
