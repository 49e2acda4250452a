package fsck

import (
	"errors"
	"fmt"

	"o2go/internal/ondisk"
)

// Extent trees (fsck.ocfs2's extent.c): every list is checked against
// its container and its position in the tree, every record against the
// volume, and the data clusters of the leaves are recorded as in use.

// extentInfo carries one tree's walk (struct extent_info).
type extentInfo struct {
	owner         uint64
	di            dinode // the inode owning the tree (flags for the leaf checks)
	expectDepth   bool
	expectedDepth uint16
	clusters      uint64
	maxSize       uint64
	// leaves are the data records as they stand after the repairs, in
	// tree order: what libocfs2's block iteration then sees.
	leaves []leafRec
	// iterErr is what ocfs2_extent_iterate_inode would fail with on the
	// tree as it stands after the repairs.
	iterErr error
	// lastEB is the rightmost leaf block, as the iteration computes it.
	lastEB, lastEBCpos uint64
	// mark records the clusters of a leaf (nil: do not).
	mark func(r extRec, clusters uint32)
	// leafCheck, when set, checks a leaf record instead of the data
	// extent checks (a refcount tree's leaves are refcount blocks).
	leafCheck func(el extList, er extRec, offset uint32, noHoles bool, changed *bool)
}

type leafRec struct {
	cpos, clusters uint32
	blkno          uint64
	flags          uint8
}

var errCorruptEB = errors.New("corrupt extent block")

// checkEL checks one extent list (check_el).
func (c *checker) checkEL(ei *extentInfo, el extList, maxRecs int, offset uint32, noHoles bool, changed *bool) {
	owner := ei.owner
	c.verbosef("depth %d count %d next_free %d\n", el.depth(), el.count(), el.nextFree())
	if ei.expectDepth && el.depth() != ei.expectedDepth &&
		c.p.ask(ExtentListDepth, "Extent list in owner %d is recorded as being at depth %d but we expect it to be at depth %d. update the list?", owner, el.depth(), ei.expectedDepth) {
		el.setDepth(ei.expectedDepth)
		*changed = true
	}
	if int(el.count()) > maxRecs && c.p.ask(ExtentListCount, "Extent list in owner %d claims to have %d records, but the maximum is %d. Fix the list's count?", owner, el.count(), maxRecs) {
		el.setCount(uint16(maxRecs))
		*changed = true
	}
	if maxRecs > int(el.count()) {
		maxRecs = int(el.count())
	}
	trust := true
	if int(el.nextFree()) > maxRecs {
		if c.p.ask(ExtentListFree, "Extent list in owner %d claims %d as the next free chain record, but fsck believes the largest valid value is %d.  Clamp the next record value?", owner, el.nextFree(), maxRecs) {
			el.setNextFree(el.count())
			*changed = true
		} else {
			trust = false
		}
	}
	if trust {
		maxRecs = int(el.nextFree())
	}
	maxRecs = min(maxRecs, el.room())
	sparse := c.sb.Features.Incompat&ondisk.IncompatSparseAlloc != 0
	depth := el.depth()
	for i := 0; i < maxRecs; i++ {
		er := el.rec(i)
		clusters := er.clusters(depth)
		if sparse && depth > 0 && i == 0 && clusters == 0 {
			continue
		}
		c.checkER(ei, el, er, offset, noHoles, changed)
		offset += er.clusters(depth)
		clusters = er.clusters(depth)
		if c.outOfRange(er.blkno()) && c.p.ask(ExtentBlknoRange, "Extent record %d in owner %d refers to a block that is out of range.  Remove this record from the extent list?", i, owner) {
			if !trust {
				c.printf("Can't remove the record because next_free_rec hasn't been fixed\n")
				continue
			}
			for j := i; j < maxRecs-1; j++ {
				copy(el.rec(j), el.rec(j+1))
			}
			if maxRecs-1 > i {
				el.rec(maxRecs - 1).clear()
			} else {
				er.clear()
			}
			i--
			el.setNextFree(el.nextFree() - 1)
			maxRecs--
			*changed = true
			continue
		}
		if depth > 0 {
			continue
		}
		if ei.mark != nil {
			ei.mark(er, clusters)
		}
		ei.clusters += uint64(clusters)
		if end := uint64(er.cpos()+clusters) << c.csBits; end > ei.maxSize {
			ei.maxSize = end
		}
	}
}

// checkER checks one record, descending into its extent block (check_er).
func (c *checker) checkER(ei *extentInfo, el extList, er extRec, offset uint32, noHoles bool, changed *bool) {
	if c.outOfRange(er.blkno()) {
		return
	}
	owner := ei.owner
	if noHoles && er.cpos() != offset && c.p.ask(NoHoles, "Extent record of owner %d is incorrectly set to %d instead of %d. Fix?", owner, er.cpos(), offset) {
		er.setCpos(offset)
		*changed = true
	}
	if er.cpos() < offset && c.p.ask(ExtentOverlap, "Extent record of owner %d is incorrectly set to %d instead of %d. Fix?", owner, er.cpos(), offset) {
		er.setCpos(offset)
		*changed = true
	}
	if el.depth() > 0 {
		ei.expectDepth = true
		ei.expectedDepth = el.depth() - 1
		if !c.checkEB(ei, er.blkno(), offset, noHoles) &&
			c.p.ask(ExtentEBInvalid, "The extent record for cluster offset %d in owner %d refers to an invalid extent block at %d.  Clear the reference to this invalid block?", er.cpos(), owner, er.blkno()) {
			er.setBlkno(0)
			*changed = true
		}
		return
	}
	switch {
	case ei.leafCheck != nil:
		ei.leafCheck(el, er, offset, noHoles, changed)
	case ei.di != nil:
		c.checkExtentRec(ei, el, er, changed)
	}
}

// checkEB checks an extent block and its list; it is invalid only when it
// could be read and is not an extent block, or belongs to another volume
// (check_eb).
func (c *checker) checkEB(ei *extentInfo, blk uint64, offset uint32, noHoles bool) bool {
	b, err := c.readExtentBlock(blk)
	if err != nil {
		c.fail("reading extent block at %d in owner %d for verification: %v", blk, ei.owner, err)
		return !errors.Is(err, errBadEBMagic)
	}
	eb := extentBlock(b)
	changed := false
	if eb.blkno() != blk && c.p.ask(EBBlkno, "An extent block at %d in owner %d claims to be located at block %d.  Update the extent block's location?", blk, ei.owner, eb.blkno()) {
		eb.setBlkno(blk)
		changed = true
	}
	if eb.fsGen() != c.gen {
		if c.p.ask(EBGen, "An extent block at %d in owner %d has a generation of %x which doesn't match the volume's generation of %x.  Consider this extent block invalid?", blk, ei.owner, eb.fsGen(), c.gen) {
			return false
		}
		if c.p.ask(EBGenFix, "Update the extent block's generation to match the volume?") {
			eb.setFSGen(c.gen)
			changed = true
		}
	}
	depth := ei.expectedDepth
	c.checkEL(ei, eb.list(), extentRecsPerEB(c.bs), offset, noHoles, &changed)
	if changed {
		if err := c.writeBlock(blk, b, ondisk.ExtentBlockCheckOffset); err != nil {
			c.fail("while writing an updated extent block at %d for owner %d: %v", blk, ei.owner, err)
		}
	}
	_ = depth
	return true
}

var errBadEBMagic = errors.New("bad extent block signature")

// readExtentBlock is ocfs2_read_extent_block_nocheck.
func (c *checker) readExtentBlock(blk uint64) ([]byte, error) {
	b, err := c.readSignedBlock(blk, ondisk.ExtentBlockCheckOffset, "extent block", ondisk.ExtentBlockSignature, errBadEBMagic)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// readSignedBlock reads a metadata block the way libocfs2's readers of
// signed blocks do: the block number in range (errBadBlkno), the META_ECC
// check at checkOffset (errBadCRC), then the signature; a block with a
// bad signature is returned with badSig.
func (c *checker) readSignedBlock(blk uint64, checkOffset int, what, sig string, badSig error) ([]byte, error) {
	if c.outOfRange(blk) {
		return nil, errBadBlkno
	}
	b, err := c.readBlock(blk)
	if err != nil {
		return nil, err
	}
	if c.metaECC {
		if _, err := ondisk.VerifyBlockCheck(b, checkOffset, what); err != nil {
			return nil, errBadCRC
		}
	}
	if !hasSig(b, sig) {
		return b, badSig
	}
	return b, nil
}

// checkExtentRec checks a data record (o2fsck_check_extent_rec).
func (c *checker) checkExtentRec(ei *extentInfo, el extList, er extRec, changed *bool) {
	depth := el.depth()
	clusters := er.clusters(depth)
	first := (er.blkno() >> (c.csBits - c.bsBits)) << (c.csBits - c.bsBits)
	if first != er.blkno() && c.p.ask(ExtentBlknoUnaligned, "The extent record for cluster offset %d in owner %d refers to block %d which isn't aligned with the start of a cluster.  Point the extent record at block %d which starts this cluster?", er.cpos(), ei.owner, er.blkno(), first) {
		er.setBlkno(first)
		*changed = true
	}
	last := uint64(er.blkno()>>(c.csBits-c.bsBits)) + uint64(clusters)
	if last > uint64(c.clusters) && c.p.ask(ExtentClustersOverrun, "The extent record for cluster offset %d in inode %d refers to an extent that goes beyond the end of the volume.  Truncate the extent by %d clusters to fit it in the volume?", er.cpos(), ei.owner, last-uint64(c.clusters)) {
		clusters -= uint32(last - uint64(c.clusters))
		er.setClusters(depth, clusters)
		*changed = true
	}
	di := ei.di
	if c.sb.Features.RoCompat&ondisk.RoCompatUnwritten == 0 && er.flags()&ondisk.ExtentUnwritten != 0 &&
		c.p.ask(ExtentMarkedUnwritten, "The extent record for cluster offset %d in owner %d has the UNWRITTEN flag set, but this filesystem does not support unwritten extents.  Clear the UNWRITTEN flag?", er.cpos(), di.blkno()) {
		er.setFlags(er.flags() &^ ondisk.ExtentUnwritten)
		*changed = true
	}
	if (c.sb.Features.Incompat&ondisk.IncompatRefcountTree == 0 || di.dyn()&ondisk.DynHasRefcount == 0) &&
		er.flags()&ondisk.ExtentRefcounted != 0 &&
		c.p.ask(ExtentMarkedRefcounted, "The extent record for cluster offset %d at block %d in inode %d has the REFCOUNTED flag set, while it shouldn't have that flag. Clear the REFCOUNTED flag?", er.cpos(), er.blkno(), di.blkno()) {
		er.setFlags(er.flags() &^ ondisk.ExtentRefcounted)
		*changed = true
	}
}

// iterateTree models libocfs2's extent iteration over a tree after the
// repairs: the leaf records it would visit, the rightmost leaf it would
// find, and the error it would stop on. It reads the extent blocks again
// only for trees deeper than the inode (the blocks are still hot).
func (c *checker) iterateTree(ei *extentInfo, el extList) {
	ei.leaves = ei.leaves[:0]
	ei.iterErr = nil
	ei.lastEB, ei.lastEBCpos = 0, 0
	c.iterateList(ei, el)
}

func (c *checker) iterateList(ei *extentInfo, el extList) {
	depth := el.depth()
	n := min(int(el.nextFree()), el.room())
	for i := 0; i < n && ei.iterErr == nil; i++ {
		r := el.rec(i)
		if depth == 0 {
			if i == 0 && r.leafClusters() == 0 {
				continue
			}
			ei.leaves = append(ei.leaves, leafRec{cpos: r.cpos(), clusters: r.leafClusters(), blkno: r.blkno(), flags: r.flags()})
			continue
		}
		if r.blkno() != 0 {
			c.iterateEB(ei, r, depth-1)
		}
		if r.intClusters() != 0 && uint64(r.cpos()) >= ei.lastEBCpos {
			if depth == 1 {
				ei.lastEB = r.blkno()
			}
			ei.lastEBCpos = uint64(r.cpos())
		}
	}
}

func (c *checker) iterateEB(ei *extentInfo, r extRec, depth uint16) {
	blk := r.blkno()
	if c.outOfRange(blk) {
		ei.iterErr = fmt.Errorf("extent block %d: %w", blk, errBadBlkno)
		return
	}
	b, err := c.readExtentBlock(blk)
	if err != nil {
		ei.iterErr = fmt.Errorf("extent block %d: %w", blk, err)
		return
	}
	eb := extentBlock(b)
	l := eb.list()
	if l.nextFree() > l.count() || l.depth() != depth || eb.blkno() != blk {
		ei.iterErr = fmt.Errorf("extent block %d: %w", blk, errCorruptEB)
		return
	}
	c.iterateList(ei, l)
}
