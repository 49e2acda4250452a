package fsck

import (
	"errors"
	"fmt"
	"sort"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Refcount trees (fsck.ocfs2's refcount.c). A tree is checked block by
// block when the first inode naming it is seen: every refcount block must
// be where it says, of this volume, under its root (RB_BLKNO, RB_GEN,
// RB_GEN_FIX, RB_PARENT); a root grown into a tree has an extent list of
// leaves, each leaf checked in turn (REFCOUNT_BLOCK_INVALID for one that
// is not a refcount block) and counted (REFCOUNT_CLUSTERS); a block of
// records has a sane count and used count (REFCOUNT_LIST_COUNT,
// REFCOUNT_LIST_USED), records inside the volume (REFCOUNT_CLUSTER_RANGE),
// in order and apart (REFCOUNT_CLUSTER_COLLISION), and a leaf holds at
// least one (REFCOUNT_LIST_EMPTY). A tree whose root is not a refcount
// block is REFCOUNT_ROOT_BLOCK_INVALID for every inode naming it.
//
// The REFCOUNTED extents of the inodes sharing a valid tree are kept per
// inode; at the end of pass 1 they are taken in the order of their
// physical clusters, a run of clusters with the same sharers at a time:
// the run is recorded in use and the tree's records over it must count
// its sharers (REFCOUNT_COUNT_INVALID), and records between runs and past
// the last one count nothing (REFCOUNT_REC_REDUNDANT).

// Raw refcount block layout (package ondisk documents it).
const (
	rfFSGen      = 0x0C
	rfBlkno      = 0x10
	rfParent     = 0x18
	rfCount      = 0x30
	rfFlags      = 0x34
	rfClusters   = 0x38
	rfBody       = 0x80 // rf_records or rf_list
	rlCount      = rfBody + 0x00
	rlUsed       = rfBody + 0x02
	rlRecs       = rfBody + 0x10
	refRecSize   = 16
	refMaxNested = 8 // leaves below leaves: damage, not a tree
)

var errBadRefcountMagic = errors.New("bad refcount block signature")

// refExt is one REFCOUNTED extent of a file: clusters physical clusters
// from p, at logical cluster v.
type refExt struct {
	p        uint64
	clusters uint32
	v        uint32
}

// refFile is a file sharing a tree and its REFCOUNTED extents, sorted by
// physical cluster.
type refFile struct {
	ino  uint64
	exts []refExt
}

// refTree is one refcount tree and what points at it.
type refTree struct {
	root  uint64
	valid bool
	end   uint64 // the end of the last record the tree check passed
	pEnd  uint64 // where the comparison with the extents has got to
	files []*refFile
	last  *refFile // the file extents were last added to
}

// checkRefcountTree registers the inode with its tree, checking the tree
// the first time (o2fsck_check_refcount_tree).
func (c *checker) checkRefcountTree(d dinode) {
	if d.dyn()&ondisk.DynHasRefcount == 0 {
		return
	}
	loc := get64(d, diRefcountLoc)
	t := c.refTrees[loc]
	if t == nil {
		var end uint64
		t = &refTree{root: loc}
		t.valid = c.checkRefcountBlock(loc, loc, &end, 0, false, 0)
		t.end = end
		c.refTrees[loc] = t
	}
	if !t.valid && c.p.ask(RefcountRootBlockInvalid, "Refcount tree %d for inode %d is invalid. Remove it and clear the flag for the inode?", loc, d.blkno()) {
		put64(d, diRefcountLoc, 0)
		d.setDyn(d.dyn() &^ ondisk.DynHasRefcount)
		c.writeInode(d.blkno(), d)
		return
	}
	t.files = append(t.files, &refFile{ino: d.blkno()})
}

// readRefcountBlock is ocfs2_read_refcount_block_nocheck: range,
// META_ECC, signature.
func (c *checker) readRefcountBlock(blk uint64) ([]byte, error) {
	b, err := c.readSignedBlock(blk, ondisk.RefcountBlockCheckOffset, "refcount block", ondisk.RefcountBlockSignature, errBadRefcountMagic)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// readRefcountBlockChecked is ocfs2_read_refcount_block: also refuses a
// list that claims more in use than it holds.
func (c *checker) readRefcountBlockChecked(blk uint64) ([]byte, error) {
	b, err := c.readRefcountBlock(blk)
	if err != nil {
		return nil, err
	}
	if get32(b, rfFlags)&ondisk.RefcountTreeFlag != 0 {
		if l := extList(b[rfBody:]); l.nextFree() > l.count() {
			return nil, fmt.Errorf("refcount block %d: %w", blk, errCorruptEB)
		}
	} else if get16(b, rlUsed) > get16(b, rlCount) {
		return nil, fmt.Errorf("refcount block %d: %w", blk, errCorruptEB)
	}
	return b, nil
}

func refRecsPerBlock(bs int) int { return (bs - rlRecs) / refRecSize }

// checkRefcountBlock checks the refcount block blk of the tree at root
// and what it leads to (check_rb); cEnd carries the end of the last
// record seen, for the next block's records. It returns false when the
// block is to be taken as invalid: it is not a refcount block, or the
// operator said so.
func (c *checker) checkRefcountBlock(blk, root uint64, cEnd *uint64, offset uint32, noHoles bool, nested int) bool {
	b, err := c.readRefcountBlock(blk)
	if err != nil {
		c.fail("reading refcount block at %d in refcount tree %d for verification: %v", blk, root, err)
		return !errors.Is(err, errBadRefcountMagic)
	}
	valid, changed := true, false
	if get64(b, rfBlkno) != blk && c.p.ask(RbBlkno, "A refcount block at %d in refcount tree %d claims to be located at block %d.  Update the refcount block's location?", blk, root, get64(b, rfBlkno)) {
		put64(b, rfBlkno, blk)
		changed = true
	}
	if gen := get32(b, rfFSGen); gen != c.gen {
		if c.p.ask(RbGen, "A refcount block at %d in refcount tree %d has a generation of %x which doesn't match the volume's generation of %x.  Consider this refcount block invalid?", blk, root, gen, c.gen) {
			return false
		}
		if c.p.ask(RbGenFix, "Update the refcount block's generation to match the volume?") {
			put32(b, rfFSGen, c.gen)
			changed = true
		}
	}
	if get64(b, rfBlkno) != root && get64(b, rfParent) != root &&
		c.p.ask(RbParent, "A refcount block at %d in refcount tree %d claims to belong to tree %d.  Update the parent's information?", blk, root, get64(b, rfParent)) {
		put64(b, rfParent, root)
		changed = true
	}
	if get32(b, rfFlags)&ondisk.RefcountTreeFlag != 0 {
		end := *cEnd
		ei := &extentInfo{owner: get64(b, rfBlkno)}
		ei.leafCheck = func(_ extList, er extRec, off uint32, nh bool, ch *bool) {
			if nested >= refMaxNested {
				return
			}
			if !c.checkRefcountBlock(er.blkno(), root, &end, off, nh, nested+1) &&
				c.p.ask(RefcountBlockInvalid, "Refcount block %d for tree %d is invalid. Remove it from the tree?", er.blkno(), root) {
				er.setBlkno(0)
				*ch = true
			}
		}
		c.checkEL(ei, extList(b[rfBody:]), refRecsPerBlock(c.bs), offset, noHoles, &changed)
		*cEnd = end
		if n := get32(b, rfClusters); uint64(n) != ei.clusters &&
			c.p.ask(RefcountClusters, "Refcount tree %d claims to have %d clusters, but we only found %d. Fix it?", root, n, uint32(ei.clusters)) {
			put32(b, rfClusters, uint32(ei.clusters))
			changed = true
		}
	} else {
		c.checkRefcountList(b, blk, root, cEnd, &changed)
		if root != blk && get16(b, rlUsed) == 0 &&
			c.p.ask(RefcountListEmpty, "Refcount block %d claims to have no refcount record in it. Consider it as invalid and Remove from tree?", get64(b, rfBlkno)) {
			valid = false
			changed = true
		}
	}
	if changed {
		if err := c.writeBlock(blk, b, ondisk.RefcountBlockCheckOffset); err != nil {
			c.fail("while writing an updated refcount block at %d for refcount tree %d: %v", blk, root, err)
		}
	}
	return valid
}

// checkRefcountList checks the records of a refcount block (check_rl).
// fsck.ocfs2 names the block and the tree the other way round in these
// questions; so does o2go.
func (c *checker) checkRefcountList(b []byte, blk, root uint64, cEnd *uint64, changed *bool) {
	maxRecs := refRecsPerBlock(c.bs)
	if n := int(get16(b, rlCount)); n > maxRecs && c.p.ask(RefcountListCount, "Refcount list in refcount tree %d claims to have %d records, but the maximum is %d. Fix the list's count?", blk, n, maxRecs) {
		put16(b, rlCount, uint16(maxRecs))
		*changed = true
	}
	maxRecs = min(maxRecs, int(get16(b, rlCount)))
	trust := true
	if used := int(get16(b, rlUsed)); used > maxRecs {
		if c.p.ask(RefcountListUsed, "Refcount list in refcount tree %d claims %d as the used record, but fsck believes the largest valid value is %d.  Clamp the used record value?", blk, used, maxRecs) {
			put16(b, rlUsed, get16(b, rlCount))
			*changed = true
		} else {
			trust = false
		}
	}
	if trust {
		maxRecs = min(int(get16(b, rlUsed)), refRecsPerBlock(c.bs))
	}
	rec := func(i int) []byte { return b[rlRecs+i*refRecSize : rlRecs+(i+1)*refRecSize] }
	for i := 0; i < maxRecs; i++ {
		r := rec(i)
		cpos, n := get64(r, 0), uint64(get32(r, 8))
		remove := false
		if c.outOfRange((cpos+n-1)<<(c.csBits-c.bsBits)) &&
			c.p.ask(RefcountClusterRange, "Refcount record %d in refcount block %d of refcount tree %d refers to a cluster that is out of range.  Remove this record from the refcount list?", i, root, blk) {
			if !trust {
				c.printf("Can't remove the record because rl_used hasn't been fixed\n")
				continue
			}
			remove = true
		}
		if !remove && cpos < *cEnd &&
			c.p.ask(RefcountClusterCollision, "Refcount record %d in refcount block %d of refcount tree %d refers to a cluster that is collided with the previous record.  Remove this record from the refcount list?", i, root, blk) {
			if !trust {
				c.printf("Can't remove the record because rl_used hasn't been fixed\n")
				continue
			}
			remove = true
		}
		if !remove {
			*cEnd = cpos + n
			continue
		}
		if i < maxRecs-1 {
			copy(b[rlRecs+i*refRecSize:rlRecs+(maxRecs-1)*refRecSize], b[rlRecs+(i+1)*refRecSize:rlRecs+maxRecs*refRecSize])
			clear(rec(maxRecs - 1))
			i--
		}
		put16(b, rlUsed, get16(b, rlUsed)-1)
		maxRecs--
		*changed = true
	}
}

// markRefcounted records a REFCOUNTED extent of the inode against its
// tree (o2fsck_mark_clusters_refcounted).
func (c *checker) markRefcounted(d dinode, pcluster, clusters, vcpos uint32) {
	t := c.refTrees[get64(d, diRefcountLoc)]
	if t == nil {
		c.markClusters(pcluster, clusters)
		return
	}
	f := t.last
	if f == nil || f.ino != d.blkno() {
		f = nil
		for _, g := range t.files {
			if g.ino == d.blkno() {
				f = g
				break
			}
		}
		if f == nil {
			c.markClusters(pcluster, clusters)
			return
		}
		t.last = f
	}
	e := refExt{p: uint64(pcluster), clusters: clusters, v: vcpos}
	i := sort.Search(len(f.exts), func(i int) bool { return f.exts[i].p >= e.p })
	if i < len(f.exts) && f.exts[i].p == e.p {
		// Two extents of one file at one physical cluster: fsck.ocfs2
		// stops on an assertion; the second is counted as a plain claim.
		c.markClusters(pcluster, clusters)
		return
	}
	f.exts = append(f.exts, refExt{})
	copy(f.exts[i+1:], f.exts[i:])
	f.exts[i] = e
}

// nextRun finds the lowest run of physical clusters the files share with
// the same sharers: its start, length and number of sharers
// (get_refcounted_extent).
func (t *refTree) nextRun() (uint64, uint32, uint32, bool) {
	cpos, clusters, refcount := ^uint64(0), uint32(0), uint32(0)
	found := false
	for _, f := range t.files {
		if len(f.exts) == 0 {
			continue
		}
		found = true
		e := f.exts[0]
		switch {
		case e.p < cpos:
			clusters = e.clusters
			if cpos-e.p < uint64(e.clusters) {
				clusters = uint32(cpos - e.p)
			}
			cpos, refcount = e.p, 1
		case e.p == cpos:
			clusters = min(clusters, e.clusters)
			refcount++
		case e.p < cpos+uint64(clusters):
			clusters = uint32(e.p - cpos)
		}
	}
	return cpos, clusters, refcount, found
}

// removeRun takes a run nextRun found off the files' extents
// (remove_refcounted_extent).
func (t *refTree) removeRun(cpos uint64, clusters uint32) {
	end := cpos + uint64(clusters)
	for _, f := range t.files {
		if len(f.exts) == 0 || end <= f.exts[0].p {
			continue
		}
		e := &f.exts[0]
		if e.p+uint64(e.clusters) <= end {
			f.exts = f.exts[1:]
			continue
		}
		e.clusters = uint32(e.p + uint64(e.clusters) - end)
		e.p = end
	}
}

// checkRefcountedClusters records the shared clusters in use and checks
// each valid tree's users and counts (o2fsck_check_mark_refcounted_clusters).
// An error stops the checks of this and the remaining trees, as in
// fsck.ocfs2, and then pass 1 (after its bitmaps are written).
func (c *checker) checkRefcountedClusters() error {
	if c.sb.Features.Incompat&ondisk.IncompatRefcountTree == 0 {
		return nil
	}
	roots := make([]uint64, 0, len(c.refTrees))
	for r := range c.refTrees {
		roots = append(roots, r)
	}
	sort.Slice(roots, func(i, j int) bool { return roots[i] < roots[j] })
	for _, root := range roots {
		t := c.refTrees[root]
		if !t.valid {
			continue
		}
		if err := c.checkRefcount(t); err != nil {
			return c.fail("while checking refcounted clusters: %v", err)
		}
	}
	return nil
}

// checkRefcount compares one tree with the extents of its files
// (o2fsck_check_refcount).
func (c *checker) checkRefcount(t *refTree) error {
	b, err := c.readRefcountBlockChecked(t.root)
	if err != nil {
		return fmt.Errorf("while reading root refcount block at %d: %w", t.root, err)
	}
	if n := get32(b, rfCount); n != uint32(len(t.files)) &&
		c.p.ask(RefcountCount, "Refcount tree at %d claims to have %d files associated with it, but we only found %d.Update the count number?", t.root, n, len(t.files)) {
		put32(b, rfCount, uint32(len(t.files)))
		if err := c.writeBlock(t.root, b, ondisk.RefcountBlockCheckOffset); err != nil {
			return fmt.Errorf("while updating rf_count for tree %d: %w", t.root, err)
		}
	}
	var cpos uint64
	var clusters uint32
	for {
		p, n, refcount, ok := t.nextRun()
		if !ok {
			break
		}
		cpos, clusters = p, n
		if err := c.checkRefcountClusters(t, p, n, refcount); err != nil {
			return fmt.Errorf("while checking refcount clusters (%d, %d, %d) in tree %d: %w", p, n, refcount, t.root, err)
		}
		t.removeRun(p, n)
	}
	if end := cpos + uint64(clusters); t.end > end {
		if err := c.removeRefcountRange(t, end, t.end); err != nil {
			c.fail("while deleting redundant refcount rec: %v", err)
		}
	}
	return nil
}

// checkRefcountClusters records a run in use and checks the tree's
// records over it (o2fsck_check_refcount_clusters). A cluster of the run
// that something else claims too is left to pass 1b: fsck.ocfs2 takes it
// out of the tree and clears the REFCOUNTED flags of its extents, which
// fails (and stops the checks) without write access, as here.
func (c *checker) checkRefcountClusters(t *refTree, start uint64, n uint32, refcount uint32) error {
	c.markClusters(uint32(start), n)
	for n > 0 {
		end := start + uint64(n)
		if c.dups != nil {
			for cl := start; cl < start+uint64(n); cl++ {
				if c.dups.test(cl) {
					end = cl
					break
				}
			}
		}
		k := uint32(end - start)
		if err := c.checkClustersInRefcount(t, start, k, refcount); err != nil {
			return err
		}
		if n > k {
			if !c.rw {
				if err := c.readOnlyUnshare(t, end, 1); err != nil {
					return err
				}
			}
			end++
		}
		n = uint32(start + uint64(n) - end)
		start = end
	}
	return nil
}

// refRec is a refcount record, or a hole between records (refcount 0).
type refRec struct {
	cpos     uint64
	clusters uint32
	refcount uint32
}

// refcountRec finds the record holding cpos, or makes up one for the hole
// there, no longer than n (ocfs2_get_refcount_rec).
func (c *checker) refcountRec(t *refTree, cpos uint64, n uint32) (refRec, error) {
	b, err := c.readRefcountBlockChecked(t.root)
	if err != nil {
		return refRec{}, err
	}
	if get32(b, rfFlags)&ondisk.RefcountTreeFlag != 0 {
		el := extList(b[rfBody:])
		low := uint32(cpos)
		for depth := 0; el.depth() > 0; depth++ {
			if depth > 8 {
				return refRec{}, errCorruptEB
			}
			next := uint64(0)
			for i := min(int(el.nextFree()), el.room()) - 1; i >= 0 && next == 0; i-- {
				if r := el.rec(i); r.cpos() <= low || i == 0 {
					next = r.blkno()
				}
			}
			eb, err := c.readExtentBlock(next)
			if err != nil {
				return refRec{}, fmt.Errorf("extent block %d: %w", next, err)
			}
			el = extentBlock(eb).list()
		}
		last := min(int(el.nextFree()), el.room()) - 1
		if last < 0 {
			return refRec{}, fmt.Errorf("refcount tree %d: an index without leaves", t.root)
		}
		i := last
		for ; i > 0 && el.rec(i).cpos() > low; i-- {
		}
		if i < last && el.rec(i).cpos() <= low {
			if next := uint64(el.rec(i + 1).cpos()); next < cpos+uint64(n) {
				n = uint32(next - cpos)
			}
		}
		if b, err = c.readRefcountBlockChecked(el.rec(i).blkno()); err != nil {
			return refRec{}, err
		}
	}
	used := min(int(get16(b, rlUsed)), refRecsPerBlock(c.bs))
	for i := 0; i < used; i++ {
		r := b[rlRecs+i*refRecSize:]
		rc, rn := get64(r, 0), get32(r, 8)
		if rc+uint64(rn) <= cpos {
			continue
		}
		if rc > cpos {
			if rc < cpos+uint64(n) {
				n = uint32(rc - cpos)
			}
			break
		}
		return refRec{cpos: rc, clusters: rn, refcount: get32(r, 12)}, nil
	}
	return refRec{cpos: cpos, clusters: n}, nil
}

// checkClustersInRefcount compares the records over a run with its
// sharers (o2fsck_check_clusters_in_refcount): records before the run,
// back to where the last run ended, count nothing.
func (c *checker) checkClustersInRefcount(t *refTree, p uint64, n uint32, refcount uint32) error {
	if n == 0 {
		return nil
	}
	if err := c.removeRefcountRange(t, t.pEnd, p); err != nil {
		return err
	}
	t.pEnd = p + uint64(n)
	for {
		rec, err := c.refcountRec(t, p, n)
		if err != nil {
			return fmt.Errorf("while getting refcount rec at %d in tree %d: %w", p, t.root, err)
		}
		recEnd := rec.cpos + uint64(rec.clusters)
		recLen := uint32(min(p+uint64(n), recEnd) - p)
		if rec.refcount != refcount {
			if c.p.ask(RefcountCountInvalid, "clusters %d with len %d have %d refcount while there are %d files point to them. Correct the refcount value?", p, recLen, rec.refcount, refcount) {
				if err := c.changeRefcount(t.root, p, recLen, refcount); err != nil {
					c.p.found[len(c.p.found)-1].Fixed = false
					return fmt.Errorf("while updating refcount %d at %d len %d in tree %d: %w", refcount, p, recLen, t.root, err)
				}
			} else if !c.rw {
				// fsck.ocfs2 then claims the clusters once more (a
				// duplicate for pass 1b) and takes them out of the
				// tree, which stops it when that needs a write.
				c.markClusters(uint32(p), recLen)
				if err := c.readOnlyUnshare(t, p, recLen); err != nil {
					return err
				}
			}
		}
		if p+uint64(n) <= recEnd || recLen == 0 {
			return nil
		}
		n = uint32(p + uint64(n) - recEnd)
		p = recEnd
	}
}

// removeRefcountRange offers to remove the records in [cpos, end), where
// no extent counts (o2fsck_remove_refcount_range).
func (c *checker) removeRefcountRange(t *refTree, cpos, end uint64) error {
	for cpos < end {
		n := uint32(min(end-cpos, 0xFFFFFFFF))
		rec, err := c.refcountRec(t, cpos, n)
		if err != nil {
			return fmt.Errorf("while getting refcount rec at %d in tree %d: %w", cpos, t.root, err)
		}
		if rec.refcount == 0 {
			if rec.clusters == 0 {
				return nil
			}
			cpos += uint64(rec.clusters)
			continue
		}
		if c.p.ask(RefcountRecRedundant, "refcount records among clusters (%d, %d) are found with no physical clusters corresponding to them. Remove them?", cpos, n) {
			if err := c.punchRefcount(t, cpos, n); err != nil {
				c.p.found[len(c.p.found)-1].Fixed = false
				return fmt.Errorf("while punching hole in (%d, %d) in refcount tree %d: %w", cpos, n, t.root, err)
			}
		}
		cpos += uint64(n)
	}
	return nil
}

// punchRefcount removes every record over [cpos, cpos+n).
func (c *checker) punchRefcount(t *refTree, cpos uint64, n uint32) error {
	end := cpos + uint64(n)
	for cpos < end {
		rec, err := c.refcountRec(t, cpos, uint32(min(end-cpos, 0xFFFFFFFF)))
		if err != nil {
			return err
		}
		k := uint32(min(end, rec.cpos+uint64(rec.clusters)) - cpos)
		if k == 0 {
			return nil
		}
		if rec.refcount != 0 {
			if err := c.changeRefcount(t.root, cpos, k, 0); err != nil {
				return err
			}
		}
		cpos += uint64(k)
	}
	return nil
}

// changeRefcount sets the count of n clusters from cpos to want, whatever
// the records over them say now (ocfs2_change_refcount).
func (c *checker) changeRefcount(root, cpos uint64, n, want uint32) error {
	return c.withTx(func(tx metacache.Tx, e *repairEnv) error {
		rt := &extent.RefcountTree{C: c.v.Cache, Tx: tx, Alloc: e.fs.W.Alloc.Blocks, Root: root}
		for n > 0 {
			r, err := rt.Lookup(cpos, n)
			if err != nil {
				return err
			}
			end := min(cpos+uint64(n), r.End())
			if end <= cpos {
				return fmt.Errorf("refcount tree %d: no record or hole at cluster %d", root, cpos)
			}
			k := uint32(end - cpos)
			for have := r.Refcount; have < want; have++ {
				if err := rt.Increase(cpos, k); err != nil {
					return err
				}
			}
			for have := r.Refcount; have > want; have-- {
				if err := rt.Decrease(cpos, k, nil); err != nil {
					return err
				}
			}
			cpos += uint64(k)
			n -= k
		}
		return nil
	})
}

// readOnlyUnshare models, for a check without write access, fsck.ocfs2
// taking n clusters from p out of a tree and clearing the REFCOUNTED
// flag of the extents naming them (o2fsck_refcount_punch_hole, then
// o2fsck_clear_refcount): it fails where that needs a write. Punching
// writes only where records count the clusters. Clearing a flag writes
// only an extent block: libocfs2 changes a tree held in the inode in
// memory and never writes it; and it looks the extent up at the logical
// cluster the extent had when first seen, which after a first run of the
// extent was checked names another cluster (then nothing is written).
func (c *checker) readOnlyUnshare(t *refTree, p uint64, n uint32) error {
	end := p + uint64(n)
	for pos := p; pos < end; {
		rec, err := c.refcountRec(t, pos, uint32(end-pos))
		if err != nil {
			return fmt.Errorf("while punching hole at %d in refcount tree %d: %w", p, t.root, err)
		}
		if rec.refcount != 0 {
			return fmt.Errorf("while punching hole at %d in refcount tree %d: the check is read-only", p, t.root)
		}
		if rec.clusters == 0 {
			break
		}
		pos = rec.cpos + uint64(rec.clusters)
	}
	for _, f := range t.files {
		var e *refExt
		for i := range f.exts {
			if x := &f.exts[i]; x.p <= p && x.p+uint64(x.clusters) >= end {
				e = x
				break
			}
		}
		if e == nil {
			continue
		}
		v := uint32(p-e.p) + e.v
		d, err := c.v.Cache.Dinode(f.ino)
		if err != nil || d.Extents == nil {
			return fmt.Errorf("while clearing refcount flag at %d in file %d: %v", v, f.ino, err)
		}
		if d.Extents.TreeDepth == 0 {
			continue
		}
		m, err := extent.Lookup(c.v.Cache, d.Extents, v, fmt.Sprintf("inode %d", f.ino))
		if err != nil {
			return fmt.Errorf("while clearing refcount flag at %d in file %d: %w", v, f.ino, err)
		}
		if m.Found && m.Rec.Blkno>>(c.csBits-c.bsBits)+uint64(v-m.Rec.Cpos) == p {
			return fmt.Errorf("while clearing refcount flag at %d in file %d: the check is read-only", v, f.ino)
		}
	}
	return nil
}
