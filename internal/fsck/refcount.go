package fsck

import (
	"sort"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Refcount trees (fsck.ocfs2's refcount.c, in part): a tree is judged
// whole (extent.CheckRefcountTree) when its first inode is seen; the
// REFCOUNTED extents of the inodes sharing it are counted per physical
// cluster, and at the end of pass 1 those clusters are recorded in use
// once each and the tree's counts are compared with the extents.

// refTree is one refcount tree and what points at it.
type refTree struct {
	root   uint64
	valid  bool
	files  []uint64
	counts map[uint32]uint32 // physical cluster -> REFCOUNTED extent records naming it
}

// checkRefcountTree registers the inode with its tree, validating the tree
// the first time (o2fsck_check_refcount_tree).
func (c *checker) checkRefcountTree(d dinode) {
	if d.dyn()&ondisk.DynHasRefcount == 0 {
		return
	}
	loc := get64(d, diRefcountLoc)
	t := c.refTrees[loc]
	if t == nil {
		t = &refTree{root: loc, counts: map[uint32]uint32{}}
		if !c.outOfRange(loc) {
			_, err := extent.CheckRefcountTree(c.v.Cache, loc)
			t.valid = err == nil
			if err != nil {
				c.verbosef("refcount tree %d: %v\n", loc, err)
			}
		}
		c.refTrees[loc] = t
	}
	if !t.valid && c.p.ask(RefcountRootBlockInvalid, "Refcount tree %d for inode %d is invalid. Remove it and clear the flag for the inode?", loc, d.blkno()) {
		put64(d, diRefcountLoc, 0)
		d.setDyn(d.dyn() &^ ondisk.DynHasRefcount)
		c.writeInode(d.blkno(), d)
		return
	}
	t.files = append(t.files, d.blkno())
}

// markRefcounted counts a REFCOUNTED extent against the inode's tree.
func (c *checker) markRefcounted(d dinode, pcluster, clusters, vcpos uint32) {
	t := c.refTrees[get64(d, diRefcountLoc)]
	if t == nil {
		c.markClusters(pcluster, clusters)
		return
	}
	for i := uint32(0); i < clusters; i++ {
		t.counts[pcluster+i]++
	}
}

// checkRefcountedClusters records the shared clusters in use and checks
// each valid tree's users and counts (o2fsck_check_mark_refcounted_clusters).
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
			return err
		}
	}
	return nil
}

func (c *checker) checkRefcount(t *refTree) error {
	b, err := c.readBlock(t.root)
	if err != nil {
		return c.fail("while reading root refcount block at %d: %v", t.root, err)
	}
	const rfCount = 0x30
	if n := get32(b, rfCount); n != uint32(len(t.files)) &&
		c.p.ask(RefcountCount, "Refcount tree at %d claims to have %d files associated with it, but we only found %d.Update the count number?", t.root, n, len(t.files)) {
		put32(b, rfCount, uint32(len(t.files)))
		if err := c.writeBlock(t.root, b, ondisk.RefcountBlockCheckOffset); err != nil {
			return c.fail("while updating rf_count for tree %d: %v", t.root, err)
		}
	}
	clusters := make([]uint32, 0, len(t.counts))
	for cl := range t.counts {
		clusters = append(clusters, cl)
	}
	sort.Slice(clusters, func(i, j int) bool { return clusters[i] < clusters[j] })
	for _, cl := range clusters {
		c.markCluster(cl)
	}
	have := map[uint32]uint32{}
	rt := &extent.RefcountTree{C: c.v.Cache, Root: t.root}
	if err := rt.Walk(func(r ondisk.RefcountRec) error {
		for i := uint64(0); i < uint64(r.Clusters); i++ {
			if r.Cpos+i < 1<<32 {
				have[uint32(r.Cpos+i)] = r.Refcount
			}
		}
		return nil
	}); err != nil {
		return c.fail("while walking refcount tree %d: %v", t.root, err)
	}
	all := map[uint32]bool{}
	for cl := range t.counts {
		all[cl] = true
	}
	for cl := range have {
		all[cl] = true
	}
	keys := make([]uint32, 0, len(all))
	for cl := range all {
		keys = append(keys, cl)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	// Runs of consecutive clusters with the same mismatch.
	for i := 0; i < len(keys); {
		cl := keys[i]
		want, got := t.counts[cl], have[cl]
		if want == got {
			i++
			continue
		}
		j := i + 1
		for j < len(keys) && keys[j] == keys[j-1]+1 && t.counts[keys[j]] == want && have[keys[j]] == got {
			j++
		}
		n := uint32(j - i)
		if want == 0 {
			if c.p.ask(RefcountRecRedundant, "refcount records among clusters (%d, %d) are found with no physical clusters corresponding to them. Remove them?", cl, n) {
				c.adjustRefcount(t.root, cl, n, got, 0)
			}
		} else if c.p.ask(RefcountCountInvalid, "clusters %d with len %d have %d refcount while there are %d files point to them. Correct the refcount value?", cl, n, got, want) {
			c.adjustRefcount(t.root, cl, n, got, want)
		}
		i = j
	}
	return nil
}

// adjustRefcount moves the count of n clusters from have to want.
func (c *checker) adjustRefcount(root uint64, cl, n, have, want uint32) {
	err := c.withTx(func(tx metacache.Tx, e *repairEnv) error {
		rt := &extent.RefcountTree{C: c.v.Cache, Tx: tx, Alloc: e.fs.W.Alloc.Blocks, Root: root}
		for ; have < want; have++ {
			if err := rt.Increase(uint64(cl), n); err != nil {
				return err
			}
		}
		for ; have > want; have-- {
			if err := rt.Decrease(uint64(cl), n, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.fail("while updating refcount at %d len %d in tree %d: %v", cl, n, root, err)
		c.p.found[len(c.p.found)-1].Fixed = false
	}
}
