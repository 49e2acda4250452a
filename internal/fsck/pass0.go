package fsck

import (
	"errors"
	"fmt"

	"o2go/internal/ondisk"
)

// Pass 0 checks the chain allocators (fsck.ocfs2's pass0.c): the global
// bitmap, whose group descriptors sit at places the geometry fixes, then
// every inode allocator, then every extent block allocator. Each chain is
// walked group by group; a descriptor whose fields disagree with where it
// was found is repaired, a reference to garbage truncates the chain, and
// the chain records and the inode's totals are summed again. The clusters
// the groups cover are recorded as in use for pass 1.

// chainState sums one chain (fsck.ocfs2's struct chain_state).
type chainState struct {
	free, total uint32
	chainNo     int
	cpg         uint16
}

var (
	errBadGroupMagic = errors.New("bad group descriptor signature")
	errBadBlkno      = errors.New("block number out of range")
	errBadCRC        = errors.New("bad metadata block check (CRC32)")
)

// outOfRange is ocfs2_block_out_of_range.
func (c *checker) outOfRange(blk uint64) bool {
	return blk < ondisk.SuperBlockBlkno || blk > c.blocks
}

// readGroup is ocfs2_read_group_desc: range, META_ECC, then signature.
func (c *checker) readGroup(blk uint64) (groupDesc, error) {
	if c.outOfRange(blk) {
		return nil, errBadBlkno
	}
	b, err := c.readBlock(blk)
	if err != nil {
		return nil, err
	}
	if c.metaECC {
		if _, err := ondisk.VerifyBlockCheck(b, gdCheckOff, "group descriptor"); err != nil {
			return nil, errBadCRC
		}
	}
	if !hasSig(b, ondisk.GroupDescSignature) {
		return nil, errBadGroupMagic
	}
	return groupDesc(b), nil
}

func (c *checker) writeGroup(g groupDesc) error {
	return c.writeBlock(g.blkno(), g, gdCheckOff)
}

// readInode is ocfs2_read_inode: range, signature, META_ECC.
func (c *checker) readInode(blk uint64) (dinode, error) {
	if c.outOfRange(blk) {
		return nil, errBadBlkno
	}
	b, err := c.readBlock(blk)
	if err != nil {
		return nil, err
	}
	if !hasSig(b, ondisk.InodeSignature) {
		return nil, fmt.Errorf("inode %d: bad inode signature", blk)
	}
	if c.metaECC {
		if _, err := ondisk.VerifyBlockCheck(b, ondisk.DinodeCheckOffset, "dinode"); err != nil {
			return nil, errBadCRC
		}
	}
	return dinode(b), nil
}

func (c *checker) pass0() error {
	c.printf("Pass 0a: Checking cluster allocation chains\n")
	di, err := c.readInode(c.sys.globalBitmap)
	if err != nil {
		return c.fail("reading global bitmap inode %d for verification: %v", c.sys.globalBitmap, err)
	}
	if err := c.maybeFixClustersPerGroup(di); err != nil {
		return err
	}
	if c.v.Super.Clusters != di.clusters() {
		if c.p.ask(SuperblockClusters, "Superblock has clusters set to %d instead of %d recorded in global_bitmap, it may be caused by an unsuccessful resize. Trust global_bitmap?", c.v.Super.Clusters, di.clusters()) {
			c.trustBitmapClusters(di.clusters())
		}
	}
	retried := false
	for {
		pre := di.clusters()
		if err := c.verifyBitmapDescs(di); err != nil {
			return err
		}
		if pre == di.clusters() {
			break
		}
		if !c.p.ask(FixedChainClusters, "Repair of global_bitmap changed the filesystem from %d clusters to %d clusters.  Trust global_bitmap?", pre, di.clusters()) {
			break
		}
		c.trustBitmapClusters(di.clusters())
		if retried && c.o.Answer != AnswerAsk {
			break
		}
		retried = true
	}

	c.printf("Pass 0b: Checking inode allocation chains\n")
	c.inodeAllocs = nil
	allocs := append([]uint64{c.sys.globalInodeAlloc}, c.sys.inodeAllocs...)
	for i, blk := range allocs {
		di, err := c.readInode(blk)
		if err != nil {
			return c.fail("reading inode alloc inode %d for verification: %v", blk, err)
		}
		if err := c.verifyChainAlloc(di, nil, nil); err != nil {
			return err
		}
		a, err := c.loadChainAlloc(blk, i-1)
		if err != nil {
			return c.fail("while loading inode %d as a chain allocator: %v", blk, err)
		}
		c.inodeAllocs = append(c.inodeAllocs, a)
	}

	c.printf("Pass 0c: Checking extent block allocation chains\n")
	for _, blk := range c.sys.extentAllocs {
		di, err := c.readInode(blk)
		if err != nil {
			return c.fail("reading extent alloc inode %d for verification: %v", blk, err)
		}
		if err := c.verifyChainAlloc(di, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// trustBitmapClusters makes the global bitmap's size the volume's (a
// resize that did not finish), and starts the bookkeeping again.
func (c *checker) trustBitmapClusters(n uint32) {
	c.numClusters = n
	c.clusters = n
	c.blocks = uint64(n) * c.bpc
	c.initState()
	c.markMagicalClusters()
}

// maybeFixClustersPerGroup fixes the global bitmap's cl_cpg on a volume of
// one group (an old mkfs glitch).
func (c *checker) maybeFixClustersPerGroup(di dinode) error {
	cl := chainList(di[diID2:])
	if cl.nextFree() > 1 {
		return nil
	}
	blk := cl.rec(0).blkno()
	g, err := c.readGroup(blk)
	if err == errBadGroupMagic || (err == nil && g.gen() != c.gen) {
		if c.p.ask(GroupExpectedDesc, "Group descriptor at block %d is corrupted. Go fixing it in the following steps?", blk) {
			return nil
		}
		if err != nil {
			return c.fail("while reading group descriptor at block %d to fix cl_cpg: %v", blk, err)
		}
		return nil
	} else if err != nil {
		return c.fail("while reading group descriptor at block %d to fix cl_cpg: %v", blk, err)
	}
	want := 8 * g.size()
	if cl.cpg() == want {
		return nil
	}
	if c.p.ask(ChainCpg, "Global bitmap at block %d has clusters per group set to %d instead of %d. Fix?", di.blkno(), cl.cpg(), want) {
		cl.setCpg(want)
		c.writeInode(di.blkno(), di)
	}
	return nil
}

// verifyBitmapDescs checks the global bitmap: its chains may hold only the
// descriptors at the places the geometry fixes, and every one of those
// must be in a chain.
func (c *checker) verifyBitmapDescs(di dinode) error {
	cl := chainList(di[diID2:])
	cs := chainState{cpg: cl.cpg()}
	allowed, forbidden := newSparseBits(), newSparseBits()
	cpg := ondisk.GlobalBitmapClustersPerGroup(c.bs)
	groups := ondisk.GlobalBitmapGroups(c.clusters, cpg)
	expected := make([]uint64, groups)
	for i := range expected {
		expected[i] = ondisk.GlobalBitmapGroupBlkno(i, cpg, int(c.bpc), c.sb.FirstClusterGroup)
		allowed.set(expected[i])
	}
	if err := c.verifyChainAlloc(di, allowed, forbidden); err != nil {
		return err
	}
	var extra []uint64
	forbidden.each(func(b uint64) {
		if b >= c.sb.FirstClusterGroup {
			extra = append(extra, b)
		}
	})
	for _, blk := range extra {
		if !c.p.ask(GroupUnexpectedDesc, "Block %d is a group descriptor in the bitmap chain allocator but it isn't at one of the pre-determined locations and so shouldn't be in the allocator.  Remove it from the chain?", blk) {
			c.markGroupUsed(&cs, blk, true, nil)
			continue
		}
		g, err := c.readGroup(blk)
		if err != nil {
			c.fail("while reading a cluster bitmap group descriptor from block %d: %v", blk, err)
			continue
		}
		c.unlinkGroupDesc(di, g, blk)
	}
	maxRecs := chainRecsPerInode(c.bs)
	for i, blk := range expected {
		if !allowed.test(blk) {
			continue
		}
		if !c.p.ask(GroupExpectedDesc, "Block %d should be a group descriptor for the bitmap chain allocator but it wasn't found in any chains.  Reinitialize it as a group desc and link it into the bitmap allocator?", blk) {
			continue
		}
		bits := ondisk.GlobalBitmapGroupBits(i, c.clusters, cpg)
		chain := i % maxRecs
		g, err := c.readGroup(blk)
		if err == errBadGroupMagic || (err == nil && g.gen() != c.gen) {
			b := make([]byte, c.bs)
			copy(b, ondisk.GroupDescSignature)
			g = groupDesc(b)
			g.setGen(c.gen)
			g.setChain(uint16(chain))
		} else if err != nil {
			c.fail("while reading a cluster bitmap group descriptor from block %d: %v", blk, err)
			continue
		}
		put16(g, gdSize, uint16(ondisk.GroupBitmapBytes(c.bs, false, c.sb.Features.Incompat)))
		g.setBits(uint16(bits))
		g.setParent(di.blkno())
		g.setBlkno(blk)
		setBit(g[gdBitmap:], 0)
		g.setFree(uint16(bits - bitcount(g[gdBitmap:gdBitmap+(bits+7)/8])))
		chain = min(chain, int(cl.nextFree()), maxRecs)
		g.setChain(uint16(chain))
		rec := cl.rec(chain)
		g.setNext(rec.blkno())
		if err := c.writeGroup(g); err != nil {
			c.fail("while writing a cluster group descriptor at block %d: %v", blk, err)
			continue
		}
		rec.setFree(rec.free() + uint32(g.free()))
		rec.setTotal(rec.total() + uint32(g.bits()))
		rec.setBlkno(blk)
		if int(cl.nextFree()) == chain && int(cl.nextFree()) < maxRecs {
			cl.setNextFree(cl.nextFree() + 1)
		}
		di.setBmUsed(di.bmUsed() + uint32(g.bits()-g.free()))
		di.setBmTotal(di.bmTotal() + uint32(g.bits()))
		di.setClusters(di.clusters() + uint32(g.bits())/uint32(max(cl.bpc(), 1)))
		di.setSize(uint64(di.clusters()) << c.csBits)
		if err := c.writeBlock(di.blkno(), di, ondisk.DinodeCheckOffset); err != nil {
			return c.fail("while writing global bitmap inode %d: %v", di.blkno(), err)
		}
		c.markGroupUsed(&cs, blk, true, g)
	}
	return nil
}

// markGroupUsed records the clusters a group covers: just its descriptor's
// for the global bitmap, cpg clusters (or its extents, discontiguous) for
// a suballocator group.
func (c *checker) markGroupUsed(cs *chainState, blk uint64, justDesc bool, g groupDesc) {
	var n uint32
	switch {
	case justDesc:
		n = 1
	case g == nil || !g.discontig():
		n = uint32(cs.cpg)
	}
	if n > 0 {
		c.markClusters(uint32(blk>>(c.csBits-c.bsBits)), n)
		return
	}
	l := g.list()
	for i := 0; i < int(l.nextFree()) && i < l.room(); i++ {
		r := l.rec(i)
		c.markClusters(uint32(r.blkno()>>(c.csBits-c.bsBits)), r.leafClusters())
	}
}

// unlinkGroupDesc takes an unexpected descriptor out of the global bitmap's
// chains and its counts out of the totals.
func (c *checker) unlinkGroupDesc(di dinode, g groupDesc, blk uint64) {
	cl := chainList(di[diID2:])
	maxCount := min(int(cl.nextFree()), chainRecsPerInode(c.bs))
	unlinked := false
	i := 0
	var cr chainRec
	for ; i < maxCount; i++ {
		cr = cl.rec(i)
		if cr.blkno() == 0 {
			break
		}
		if cr.blkno() == blk {
			cr.setBlkno(g.next())
			unlinked = true
			break
		}
		seen := map[uint64]bool{}
		for next := cr.blkno(); next != 0 && !seen[next]; {
			seen[next] = true
			link, err := c.readGroup(next)
			if err != nil {
				c.fail("while reading a group descriptor from block %d: %v", next, err)
				return
			}
			if link.next() != blk {
				next = link.next()
				continue
			}
			link.setNext(g.next())
			if err := c.writeGroup(link); err != nil {
				c.fail("while writing a group descriptor to block %d somewhere in chain %d in group allocator inode %d: %v", next, i, di.blkno(), err)
				c.sawError = true
				return
			}
			unlinked = true
			break
		}
		if unlinked {
			break
		}
	}
	if !unlinked {
		return
	}
	if int(cl.nextFree()) == i+1 && cr.blkno() == 0 {
		cl.setNextFree(cl.nextFree() - 1)
	}
	cr.setFree(cr.free() - uint32(g.free()))
	cr.setTotal(cr.total() - uint32(g.bits()))
	di.setBmUsed(di.bmUsed() - uint32(g.bits()-g.free()))
	di.setBmTotal(di.bmTotal() - uint32(g.bits()))
	di.setClusters(di.clusters() - uint32(g.bits())/uint32(max(cl.bpc(), 1)))
	di.setSize(uint64(di.clusters()) << c.csBits)
	if err := c.writeBlock(di.blkno(), di, ondisk.DinodeCheckOffset); err != nil {
		c.fail("while writing global bitmap inode %d: %v", di.blkno(), err)
		c.sawError = true
	}
}

// verifyChainAlloc checks one chain allocator inode and its chains.
// allowed/forbidden are set for the global bitmap only.
func (c *checker) verifyChainAlloc(di dinode, allowed, forbidden *sparseBits) error {
	blk := di.blkno()
	if !di.valid() {
		c.printf("Allocator inode %d doesn't have an inode signature.  fsck won't repair this.\n", blk)
		return opError{errors.New("bad inode signature on an allocator")}
	}
	if di.flags()&ondisk.InodeValid == 0 {
		c.printf("Allocator inode %d is not active.  fsck won't repair this.\n", blk)
		return opError{errors.New("allocator inode not valid")}
	}
	if di.flags()&ondisk.InodeChain == 0 {
		c.printf("Allocator inode %d doesn't have the CHAIN_FL flag set.  fsck won't repair this.\n", blk)
		return opError{errors.New("allocator inode without CHAIN_FL")}
	}
	cl := chainList(di[diID2:])
	numGDs, maxChainLen := uint32(0), uint32(0)
	if cl.cpg() != 0 {
		numGDs = (di.clusters() + uint32(cl.cpg())) / uint32(cl.cpg())
	}
	if cl.count() != 0 {
		maxChainLen = (numGDs + uint32(cl.count())) / uint32(cl.count())
	}
	c.verbosef("cl cpg %d bpc %d count %d next %d gds %d max_ch_len %d\n", cl.cpg(), cl.bpc(), cl.count(), cl.nextFree(), numGDs, maxChainLen)
	maxCount := chainRecsPerInode(c.bs)
	changed := false
	for i := 0; i < maxCount; i++ {
		cr := cl.rec(i)
		if cr.blkno() != 0 && c.outOfRange(cr.blkno()) &&
			c.p.ask(ChainHeadLinkRange, "Chain %d in allocator inode %d contains an initial block reference to %d which is out of range.  Clear this reference?", i, blk, cr.blkno()) {
			cr.setBlkno(0)
			changed = true
		}
	}
	if int(cl.count()) > maxCount && c.p.ask(ChainCount, "Allocator inode %d claims to have %d chains, but the maximum is %d. Fix the inode's count?", blk, cl.count(), maxCount) {
		cl.setCount(uint16(maxCount))
		changed = true
	}
	if maxCount > int(cl.count()) {
		maxCount = int(cl.count())
	}
	trustNextFree := true
	if int(cl.nextFree()) > maxCount {
		if c.p.ask(ChainNextFree, "Allocator inode %d claims %d as the next free chain record, but fsck believes the largest valid value is %d.  Clamp the next record value?", blk, cl.nextFree(), maxCount) {
			cl.setNextFree(cl.count())
			changed = true
		} else {
			trustNextFree = false
		}
	}
	if trustNextFree {
		maxCount = int(cl.nextFree())
	}
	var free, total uint32
	// Like fsck.ocfs2, the error of the last chain walked (a descriptor
	// that could not be read) is the verdict, unless the inode is then
	// rewritten.
	var ret error
	for i := 0; i < maxCount; i++ {
		cr := cl.rec(i)
		cs := chainState{chainNo: i, cpg: cl.cpg()}
		ret = c.checkChain(di, &cs, cr, &changed, allowed, forbidden, maxChainLen)
		if cr.blkno() != 0 {
			free += cs.free
			total += cs.total
			continue
		} else if allowed != nil && forbidden != nil {
			continue
		}
		if c.p.ask(ChainEmpty, "Chain %d in allocator inode %d is empty.  Remove it from the chain record array in the inode and shift further chains into its place?", cs.chainNo, blk) {
			if !trustNextFree {
				c.printf("Can't remove the chain because next_free_rec hasn't been fixed\n")
				continue
			}
			last := int(cl.nextFree()) - 1
			if i < last {
				copy(cr, cl.rec(last))
				cl.rec(last).clear()
				i--
			}
			cl.setNextFree(cl.nextFree() - 1)
			maxCount--
			changed = true
		}
	}
	for i := int(cl.nextFree()); i < int(cl.count()) && i < cl.room(); i++ {
		cl.rec(i).clear()
	}
	if di.bmTotal() != total || di.bmUsed() != total-free {
		if c.p.ask(ChainGroupBits, "Allocator inode %d has %d bits marked used out of %d total bits but the chains have %d used out of %d total.  Fix this by updating the inode counts?", blk, di.bmUsed(), di.bmTotal(), total-free, total) {
			di.setBmUsed(total - free)
			di.setBmTotal(total)
			changed = true
		}
	}
	if cl.bpc() != 0 {
		total /= uint32(cl.bpc())
	}
	if di.clusters() != total && c.p.ask(ChainIClusters, "Allocator inode %d has %d clusters represented in its allocator chains but has an i_clusters value of %d. Fix this by updating i_clusters?", blk, total, di.clusters()) {
		di.setClusters(total)
		changed = true
	}
	chainBytes := uint64(total) << c.csBits
	if di.size() != chainBytes && c.p.ask(ChainISize, "Allocator inode %d has %d clusters represented in its allocator chain which accounts for %d total bytes, but its i_size is %d. Fix this by updating i_size?", blk, total, chainBytes, di.size()) {
		di.setSize(chainBytes)
		changed = true
	}
	if changed {
		if err := c.writeBlock(blk, di, ondisk.DinodeCheckOffset); err != nil {
			c.fail("while writing inode alloc inode %d: %v", blk, err)
			c.sawError = true
		}
		ret = nil
	}
	if ret != nil {
		return opError{ret}
	}
	return nil
}

// checkChain walks one chain, repairing descriptors and cutting it where
// it leads to garbage (fsck.ocfs2's check_chain).
func (c *checker) checkChain(di dinode, cs *chainState, cr chainRec, changed *bool, allowed, forbidden *sparseBits, maxDepth uint32) error {
	var bg1 groupDesc
	depth := uint32(0)
	clearRef := false
	for {
		var blk uint64
		if depth == 0 {
			blk = cr.blkno()
		} else {
			blk = bg1.blkno()
			if allowed != nil {
				if allowed.test(blk) {
					allowed.clear(blk)
					c.markGroupUsed(cs, bg1.blkno(), true, bg1)
				} else if forbidden != nil {
					forbidden.set(blk)
				}
			} else {
				c.markGroupUsed(cs, bg1.blkno(), false, bg1)
			}
			blk = bg1.next()
		}
		if blk == 0 {
			break
		}
		if c.outOfRange(blk) && c.p.ask(ChainLinkRange, "Chain %d in allocator at inode %d contains a reference at depth %d to block %d which is out of range. Truncate this chain?", cs.chainNo, di.blkno(), depth, blk) {
			clearRef = true
			break
		}
		bg2, err := c.readGroup(blk)
		if err == errBadGroupMagic {
			if c.p.ask(ChainLinkMagic, "Chain %d in allocator at inode %d contains a reference at depth %d to block %d which doesn't have a valid checksum.  Truncate this chain?", cs.chainNo, di.blkno(), depth, blk) {
				clearRef = true
			}
			break
		}
		if err != nil {
			// fsck.ocfs2 leaves the chain as it is, without summing it
			return c.fail("while reading a group descriptor from block %d as pointed to by chain %d in allocator at inode %d at depth %d: %v", blk, cs.chainNo, di.blkno(), depth, err)
		}
		if bg2.gen() != c.gen && c.p.ask(ChainLinkGen, "Group descriptor at block %d has a generation of %x which doesn't match the volume's generation of %x.  Unlink this group descriptor?", blk, bg2.gen(), c.gen) {
			clearRef = true
			break
		}
		if err := c.repairGroupDesc(di, cs, bg2, blk, &clearRef); err != nil {
			return err
		}
		if clearRef {
			break
		}
		bg1 = bg2
		depth++
		if depth > maxDepth {
			if c.p.ask(GroupChainLoop, "Loop detected in chain %d at block %d. Break the loop?", cs.chainNo, cr.blkno()) {
				c.breakLoop(cr, maxDepth)
			}
			break
		}
	}
	if clearRef {
		if depth == 0 {
			cr.setBlkno(0)
			*changed = true
		} else {
			bg1.setNext(0)
			if err := c.writeGroup(bg1); err != nil {
				c.fail("while writing a group descriptor at depth %d in chain %d in group allocator inode %d to block %d: %v", depth, cs.chainNo, di.blkno(), bg1.blkno(), err)
				c.sawError = true
			}
		}
	}
	if cs.total != cr.total() || cs.free != cr.free() {
		if c.p.ask(ChainBits, "Chain %d in allocator inode %d has %d bits marked free out of %d total bits but the block groups in the chain have %d free out of %d total.  Fix this by updating the chain record?", cs.chainNo, di.blkno(), cr.free(), cr.total(), cs.free, cs.total) {
			cr.setTotal(cs.total)
			cr.setFree(cs.free)
			*changed = true
		}
	}
	return nil
}

// breakLoop cuts a chain that loops back on itself where it first does.
func (c *checker) breakLoop(cr chainRec, maxDepth uint32) {
	var list []uint64
	blk := cr.blkno()
	for blk != 0 && uint32(len(list)) <= maxDepth {
		list = append(list, blk)
		g, err := c.readGroup(blk)
		if err != nil {
			return
		}
		blk = g.next()
		for _, b := range list {
			if b == blk {
				g.setNext(0)
				c.verbosef("Breaking gd loop %d\n", blk)
				if err := c.writeGroup(g); err != nil {
					c.fail("while writing group descriptor %d: %v", g.blkno(), err)
				}
				return
			}
		}
	}
}

// repairGroupDesc checks a descriptor found in a chain against where it
// was found (fsck.ocfs2's repair_group_desc).
func (c *checker) repairGroupDesc(di dinode, cs *chainState, bg groupDesc, blk uint64, clearRef *bool) error {
	changed := false
	c.verbosef("checking desc at %d; blkno %d size %d bits %d free_bits %d chain %d generation %d\n", blk, bg.blkno(), bg.size(), bg.bits(), bg.free(), bg.chain(), bg.gen())
	if bg.gen() != c.gen && c.p.ask(GroupGen, "Group descriptor at block %d has a generation of %x which doesn't match the volume's generation of %x.  Change the generation in the descriptor to match the volume?", blk, bg.gen(), c.gen) {
		bg.setGen(c.gen)
		changed = true
	}
	if bg.parent() != di.blkno() {
		if c.groupInParent(bg.blkno(), bg.parent(), int(bg.chain())) &&
			c.p.ask(GroupDuplicate, "Group descriptor at block %d is referenced by inode %d but thinks its parent inode is %d and we can also see it in that inode. So it may be duplicated.  Remove it from this inode?", blk, di.blkno(), bg.parent()) {
			*clearRef = true
			return nil
		}
		if c.p.ask(GroupParent, "Group descriptor at block %d is referenced by inode %d but thinks its parent inode is %d.  Fix the descriptor's parent inode?", blk, di.blkno(), bg.parent()) {
			bg.setParent(di.blkno())
			changed = true
		}
	}
	if bg.blkno() != blk && c.p.ask(GroupBlkno, "Group descriptor read from block %d claims to be located at block %d.  Update its recorded block location?", blk, bg.blkno()) {
		bg.setBlkno(blk)
		changed = true
	}
	if int(bg.chain()) != cs.chainNo && c.p.ask(GroupChain, "Group descriptor at block %d was found in chain %d but it claims to be in chain %d. Update the descriptor's recorded chain?", blk, cs.chainNo, bg.chain()) {
		bg.setChain(uint16(cs.chainNo))
		changed = true
	}
	bm := bg.bitmap()
	maxFree := int(bg.bits()) - bitcount(bm)
	if n := len(bm) * 8; n > int(bg.bits()) {
		// bits past bg_bits in the last byte are not counted
		for i := int(bg.bits()); i < n; i++ {
			if testBit(bm, i) {
				maxFree++
			}
		}
	} else if n < int(bg.bits()) {
		maxFree -= int(bg.bits()) - n
	}
	if int(bg.free()) > maxFree && c.p.ask(GroupFreeBits, "Group descriptor at block %d claims to have %d free bits which is more than %d bits indicated by the bitmap. Drop its free bit count down to the total?", blk, bg.free(), maxFree) {
		bg.setFree(uint16(maxFree))
		changed = true
	}
	if bg.discontig() {
		c.checkDiscontigBG(int(cs.cpg), bg, &changed, clearRef)
	}
	if *clearRef {
		return nil
	}
	if changed {
		if err := c.writeBlock(blk, bg, gdCheckOff); err != nil {
			c.fail("while writing a group descriptor to block %d somewhere in chain %d in group allocator inode %d: %v", bg.blkno(), cs.chainNo, di.blkno(), err)
			c.sawError = true
		}
	}
	cs.total += uint32(bg.bits())
	cs.free += uint32(bg.free())
	return nil
}

// groupInParent reports whether group sits in chain of allocator ino
// (check_group_parent).
func (c *checker) groupInParent(group, ino uint64, chain int) bool {
	di, err := c.readInode(ino)
	if err != nil {
		return false
	}
	want := ondisk.InodeValid | ondisk.InodeBitmap | ondisk.InodeChain
	if di.flags()&want != want || di.bmTotal() == 0 {
		return false
	}
	cl := chainList(di[diID2:])
	if int(cl.nextFree()) <= chain || chain >= cl.room() {
		return false
	}
	seen := map[uint64]bool{}
	for blk := cl.rec(chain).blkno(); blk != 0 && !seen[blk]; {
		if blk == group {
			return true
		}
		seen[blk] = true
		g, err := c.readGroup(blk)
		if err != nil {
			return false
		}
		blk = g.next()
	}
	return false
}

// checkDiscontigBG checks a discontiguous group's extent list against the
// clusters a group must have (check_discontig_bg).
func (c *checker) checkDiscontigBG(cpg int, bg groupDesc, changed, clearRef *bool) {
	blk := bg.blkno()
	l := bg.list()
	maxRecs := extentRecsPerGD(c.bs)
	if l.depth() != 0 && c.p.ask(DiscontigBGDepth, "Discontiguous Group descriptor at block %d has a tree depth %d which is greater than 0. Change it to 0?", blk, l.depth()) {
		l.setDepth(0)
		*changed = true
	}
	if int(l.count()) > maxRecs && c.p.ask(DiscontigBGCount, "Discontiguous group descriptor at block %d has an extent count of %d, but discontiguous groups can only hold %d records.  Set it to %d?", blk, l.count(), maxRecs, maxRecs) {
		l.setCount(uint16(maxRecs))
		*changed = true
	}
	nextFree := min(int(l.nextFree()), int(l.count()), l.room())
	total := 0
	fixPos := -1
	i := 0
	for ; i < nextFree; i++ {
		r := l.rec(i)
		if r.blkno() == 0 && r.leafClusters() == 0 {
			break
		}
		n := int(r.leafClusters())
		if c.outOfRange(r.blkno()) || c.outOfRange(r.blkno()+uint64(n)*c.bpc-1) {
			if c.p.ask(DiscontigBGRecRange, "Discontiguous block group %d in chain %d of inode %d claims clusters which is out of range. Drop this group?", blk, bg.chain(), bg.parent()) {
				*clearRef = true
			}
			return
		}
		if n > cpg {
			if fixPos >= 0 {
				if c.p.ask(DiscontigBGCorruptLeaves, "Discontiguous block group %d in chain %d of inode %d has errors in more than one extent record.  Record %d claims %d clusters and record %d claims %d clusters, but a group does not contain more than %d clusters. Drop this group?", blk, bg.chain(), bg.parent(), fixPos, l.rec(fixPos).leafClusters(), i, n, cpg) {
					*clearRef = true
				}
				return
			}
			fixPos = i
			continue
		}
		if total+n > cpg {
			if total == cpg {
				if fixPos >= 0 {
					if c.p.ask(DiscontigBGListCorrupt, "Discontiguous group descriptor at block %d claims to use %d extents but only has %d filled in.  The filled in records contain errors. Drop this group?", blk, l.nextFree(), i) {
						*clearRef = true
					}
					return
				}
				break
			}
			if c.p.ask(DiscontigBGClusters, "Discontiguous group descriptor at block %d claims to have %d clusters but a group does not contain more than %d clusters. Drop the group?", blk, total+n, cpg) {
				*clearRef = true
			}
			return
		}
		total += n
	}
	if int(l.nextFree()) != i {
		if c.p.ask(DiscontigBGNextFreeRec, "Discontiguous group descriptor at block %d claims to use %d extents but only has %d filled in. The filled in records appear to be correct.  Set the used extent count to the number filled in?", blk, l.nextFree(), i) {
			l.setNextFree(uint16(i))
			*changed = true
		}
	}
	if fixPos < 0 && total < cpg {
		if c.p.ask(DiscontigBGLessClusters, "Discontiguous group descriptor at block %d claims to have %d clusters but a group does not contain less than %d clusters. Drop the group?", blk, total, cpg) {
			*clearRef = true
		}
		return
	}
	if fixPos >= 0 {
		r := l.rec(fixPos)
		if total == cpg {
			if c.p.ask(DiscontigBGRecCorrupt, "Extent record %d of discontiguous group descriptor at block %d claims %d clusters, but a group does not contain more than %d clusters. Drop the group?", fixPos, blk, r.leafClusters(), cpg) {
				*clearRef = true
			}
			return
		}
		if c.p.ask(DiscontigBGLeafClusters, "Extent record %d of discontiguous group descriptor %d claims %d clusters, but it should only have %d.  Correct it?", fixPos, blk, r.leafClusters(), cpg-total) {
			r.setClusters(0, uint32(cpg-total))
			*changed = true
		}
	}
}

// chainAlloc is a chain allocator loaded for pass 1: its inode and every
// group its chains reach, in chain order (ocfs2_load_chain_allocator).
type chainAlloc struct {
	blkno  uint64
	slot   int // -1: global (bitmap or inode alloc)
	di     dinode
	groups []*group
	dirty  bool // the inode's counts changed
}

// group is one loaded group descriptor and where its bits map.
type group struct {
	g     groupDesc
	dirty bool
}

// loadChainAlloc reads an allocator and the groups of its chains the way
// ocfs2_load_chain_allocator does: an unreadable descriptor ends the walk
// (the groups before it stay loaded), a descriptor that does not name its
// own block and chain fails the load.
func (c *checker) loadChainAlloc(blk uint64, slot int) (*chainAlloc, error) {
	di, err := c.readInode(blk)
	if err != nil {
		return nil, err
	}
	a := &chainAlloc{blkno: blk, slot: slot, di: di}
	cl := chainList(di[diID2:])
	n := min(int(cl.nextFree()), cl.room())
	seen := map[uint64]bool{}
	for i := 0; i < n; i++ {
		for gb := cl.rec(i).blkno(); gb != 0; {
			if seen[gb] {
				return a, nil // a loop: fsck.ocfs2 would spin here
			}
			seen[gb] = true
			g, err := c.readGroup(gb)
			if err != nil {
				return a, nil
			}
			a.groups = append(a.groups, &group{g: g})
			if g.blkno() != gb || int(g.chain()) != i {
				return nil, fmt.Errorf("group descriptor %d is corrupt (it names block %d, chain %d; found in chain %d)", gb, g.blkno(), g.chain(), i)
			}
			gb = g.next()
		}
	}
	return a, nil
}

// setBit changes bit i of group gr and keeps the group's, chain's and
// inode's counts in step (chainalloc_bit_change_notify).
func (a *chainAlloc) setBit(gr *group, i int, on bool) (was bool) {
	bm := gr.g.bitmap()
	if i >= len(bm)*8 {
		return on
	}
	was = testBit(bm, i)
	if was == on {
		return was
	}
	putBit(bm, i, on)
	cl := chainList(a.di[diID2:])
	var cr chainRec
	if ch := int(gr.g.chain()); ch < cl.room() {
		cr = cl.rec(ch)
	}
	if on {
		gr.g.setFree(gr.g.free() - 1)
		if cr != nil {
			cr.setFree(cr.free() - 1)
		}
		a.di.setBmUsed(a.di.bmUsed() + 1)
	} else {
		gr.g.setFree(gr.g.free() + 1)
		if cr != nil {
			cr.setFree(cr.free() + 1)
		}
		a.di.setBmUsed(a.di.bmUsed() - 1)
	}
	gr.dirty = true
	a.dirty = true
	return was
}

// write writes back the changed groups and the inode.
func (c *checker) writeChainAlloc(a *chainAlloc) error {
	for _, gr := range a.groups {
		if !gr.dirty {
			continue
		}
		if err := c.writeBlock(gr.g.blkno(), gr.g, gdCheckOff); err != nil {
			return err
		}
		gr.dirty = false
	}
	if a.dirty {
		if err := c.writeBlock(a.blkno, a.di, ondisk.DinodeCheckOffset); err != nil {
			return err
		}
		a.dirty = false
	}
	return nil
}
