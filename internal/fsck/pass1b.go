package fsck

import (
	"fmt"
	"math"
	"sort"

	"o2go/internal/blockdev"
	"o2go/internal/fs/dir"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Passes 1b to 1d (fsck.ocfs2's pass1b.c) run when pass 1 found clusters
// claimed twice: 1b scans the inodes again to learn every owner of those
// clusters, 1c names the owners by walking the namespace, 1d resolves
// each cluster: by sharing it through a refcount tree where the volume
// has them, else by giving each owner a private copy (or, if refused,
// by deleting it).

type dupOwner struct {
	ino   uint64
	vcpos uint32
}

type dupInode struct {
	ino    uint64
	path   string
	flags  uint32
	refLoc uint64
	state  int // dupCloned | dupRemoved
}

const (
	dupCloned  = 1
	dupRemoved = 2
)

type dupContext struct {
	clusters map[uint32][]dupOwner
	inodes   map[uint64]*dupInode
}

func (c *checker) pass1Dups() error {
	dc := &dupContext{clusters: map[uint32][]dupOwner{}, inodes: map[uint64]*dupInode{}}
	c.printf("Running additional passes to resolve clusters claimed by more than one inode...\nPass 1b: Determining ownership of multiply-claimed clusters\n")
	if err := c.pass1b(dc); err != nil {
		return err
	}
	c.pass1c(dc)
	return c.pass1d(dc)
}

func (dc *dupContext) insert(cl uint32, d dinode, vcpos uint32) {
	ino := d.blkno()
	if dc.inodes[ino] == nil {
		dc.inodes[ino] = &dupInode{ino: ino, flags: d.flags(), refLoc: get64(d, diRefcountLoc)}
	}
	for _, o := range dc.clusters[cl] {
		if o.ino == ino {
			return
		}
	}
	dc.clusters[cl] = append(dc.clusters[cl], dupOwner{ino, vcpos})
}

func (c *checker) dupCheck(dc *dupContext, d dinode, pcl, n, vcpos uint32) {
	for i := uint32(0); i < n; i++ {
		if c.dups.test(uint64(pcl + i)) {
			dc.insert(pcl+i, d, vcpos+i)
		}
	}
}

func (c *checker) pass1b(dc *dupContext) error {
	buf := blockdev.AlignedBuffer(scanChunkBytes, 4096)
	for _, a := range c.inodeAllocs {
		if a.di.bmTotal() == 0 {
			continue
		}
		for _, gr := range a.groups {
			err := c.forEachGroupBlock(gr, buf, func(bit int, blk uint64, b []byte) error {
				d := dinode(b)
				if !d.valid() || d.fsGen() != c.gen || d.flags()&ondisk.InodeValid == 0 {
					return nil
				}
				return c.pass1bInode(dc, blk, d)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *checker) pass1bInode(dc *dupContext, blk uint64, d dinode) error {
	toCl := func(b uint64) uint32 { return uint32(b >> (c.csBits - c.bsBits)) }
	switch {
	case d.flags()&(ondisk.InodeSuperBlock|ondisk.InodeLocalAlloc|ondisk.InodeDealloc) != 0, d.inline(), d.isLink() && d.clusters() == 0:
	case d.flags()&ondisk.InodeChain != 0:
		cl := chainList(d[diID2:])
		global := blk == c.sys.globalBitmap
		seen := map[uint64]bool{}
		for i := 0; i < min(int(cl.nextFree()), cl.room()); i++ {
			for gb := cl.rec(i).blkno(); gb != 0 && !seen[gb]; {
				seen[gb] = true
				g, err := c.readGroup(gb)
				if err != nil {
					break
				}
				switch {
				case global:
					c.dupCheck(dc, d, toCl(gb), 1, 0)
				case !g.discontig():
					c.dupCheck(dc, d, toCl(gb), uint32(cl.cpg()), 0)
				default:
					l := g.list()
					for j := 0; j < min(int(l.nextFree()), l.room()); j++ {
						r := l.rec(j)
						c.dupCheck(dc, d, toCl(r.blkno()), r.leafClusters(), r.cpos())
					}
				}
				gb = g.next()
			}
		}
	default:
		ei := &extentInfo{owner: blk}
		c.iterateTree(ei, extList(d[diID2:]))
		if ei.iterErr != nil {
			return c.fail("while processing inode %d: %v", blk, ei.iterErr)
		}
		for _, r := range ei.leaves {
			c.dupCheck(dc, d, toCl(r.blkno), r.clusters, r.cpos)
		}
	}
	for _, r := range c.xattrExtents(d) {
		c.dupCheck(dc, d, toCl(r.blkno), r.clusters, r.cpos)
	}
	return nil
}

// pass1c names the owners by walking the namespace from "/" and "//".
func (c *checker) pass1c(dc *dupContext) {
	c.printf("Pass 1c: Determining the names of inodes owning multiply-claimed clusters\n")
	left := len(dc.inodes)
	type todo struct {
		ino  uint64
		path string
	}
	stack := []todo{{c.sb.RootBlkno, "/"}, {c.sb.SystemDirBlkno, "//"}}
	warned := false
	join := func(cwd, name string) string {
		sep := "/"
		if len(cwd) > 0 && cwd[len(cwd)-1] == '/' {
			sep = ""
		}
		if len(name) > 0 && name[0] == '/' {
			sep = ""
		}
		return cwd + sep + name
	}
	name := func(ino uint64, path string) {
		if di := dc.inodes[ino]; di != nil && di.path == "" {
			di.path = path
			left--
		}
	}
	for left > 0 && len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		name(cur.ino, cur.path)
		d, err := c.v.Cache.Dinode(cur.ino)
		if err == nil && d.IsDir() {
			err = dir.Dir{C: c.v.Cache, SB: c.sb, Inode: d}.ForEach(func(e ondisk.DirEntry) error {
				if e.Name == "." || e.Name == ".." || e.Inode == 0 {
					return nil
				}
				if e.FileType == ondisk.FileTypeDir {
					stack = append(stack, todo{e.Inode, join(cur.path, e.Name)})
				} else {
					name(e.Inode, join(cur.path, e.Name))
				}
				return nil
			})
		}
		if err != nil && !warned {
			warned = true
			c.fail("while finding path names in Pass 1c: %v.  The pass will continue, but some inodes may be described by inode number instead of name.", err)
		}
	}
}

func (di *dupInode) name() string {
	if di.path != "" {
		return di.path
	}
	return fmt.Sprintf("<%d>", di.ino)
}

func (c *checker) pass1d(dc *dupContext) error {
	c.printf("Pass 1d: Reconciling multiply-claimed clusters\n")
	keys := make([]uint32, 0, len(dc.clusters))
	for cl := range dc.clusters {
		keys = append(keys, cl)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	chainWarned := false
	for _, cl := range keys {
		owners := dc.clusters[cl]
		unhandled := 0
		for _, o := range owners {
			if dc.inodes[o.ino].state == 0 {
				unhandled++
			}
		}
		if unhandled < 2 {
			continue
		}
		c.printf("Cluster %d is claimed by the following inodes:\n", cl)
		for _, o := range owners {
			c.printf("  %s\n", dc.inodes[o.ino].name())
		}
		if c.sb.Features.Incompat&ondisk.IncompatRefcountTree != 0 {
			loc := uint64(0)
			for _, o := range owners {
				di := dc.inodes[o.ino]
				if di.flags&ondisk.InodeSystem != 0 {
					loc = math.MaxUint64
					break
				}
				if di.refLoc == 0 {
					continue
				}
				if loc == 0 {
					loc = di.refLoc
				} else if loc != di.refLoc {
					loc = math.MaxUint64
					break
				}
			}
			if loc != math.MaxUint64 && c.p.ask(DupClustersAddRefcount, "Create refcount record for it?") {
				if err := c.shareCluster(dc, cl, owners, loc); err != nil {
					c.fail("while creating a refcount record for cluster %d: %v", cl, err)
					c.p.found[len(c.p.found)-1].Fixed = false
					return opError{err}
				}
				continue
			}
		}
		for _, o := range owners {
			di := dc.inodes[o.ino]
			if di.flags&ondisk.InodeChain != 0 {
				c.printf("Inode \"%s\" is a chain allocator and cannot be cloned or deleted.\n", di.name())
				if !chainWarned {
					c.printf("The filesystem is safe to read.  You may wish to mount it read-only and copy data to a new filesystem.\n")
					chainWarned = true
				}
				continue
			}
			if di.state != 0 {
				continue
			}
			var clone bool
			if di.flags&ondisk.InodeSystem != 0 {
				clone = c.p.ask(DupClustersSysfileClone, "Inode \"%s\" is a system file. It may be cloned but not deleted. Clone inode \"%s\" to break claims on clusters it shares with other inodes?", di.name(), di.name())
			} else {
				clone = c.p.ask(DupClustersClone, "Inode \"%s\" may be cloned or deleted to break the claim it has on its clusters. Clone inode \"%s\" to break claims on clusters it shares with other inodes?", di.name(), di.name())
				if !clone && c.p.ask(DupClustersDelete, "Delete inode \"%s\" to break claims on clusters it shares with other inodes?", di.name()) {
					c.printf("** o2go fsck does not delete inodes to break shared claims; inode %d is left as it is **\n", di.ino)
					c.p.found[len(c.p.found)-1].Fixed = false
					continue
				}
			}
			if !clone {
				continue
			}
			if err := c.cloneInode(dc, di); err != nil {
				c.fail("while cloning inode %d: %v", di.ino, err)
				c.p.found[len(c.p.found)-1].Fixed = false
				return opError{err}
			}
			di.state |= dupCloned
		}
	}
	return nil
}

// shareCluster makes every owner share cluster cl through one refcount
// tree (o2fsck_create_refcount): a new tree when none has one, the
// REFCOUNTED flag on each owner's extent of it, one count per owner.
func (c *checker) shareCluster(dc *dupContext, cl uint32, owners []dupOwner, loc uint64) error {
	return c.withTx(func(tx metacache.Tx, e *repairEnv) error {
		fresh := loc == 0
		if fresh {
			var err error
			loc, err = extent.NewRefcountTree(c.v.Cache, tx, e.fs.W.Alloc.Blocks, c.gen)
			if err != nil {
				return err
			}
		}
		rt := &extent.RefcountTree{C: c.v.Cache, Tx: tx, Alloc: e.fs.W.Alloc.Blocks, Root: loc}
		for _, o := range owners {
			di := dc.inodes[o.ino]
			d, err := c.v.Cache.Dinode(o.ino)
			if err != nil {
				return err
			}
			cp, err := cloneTyped(d, c.bs)
			if err != nil {
				return err
			}
			if di.refLoc == 0 {
				if !fresh {
					if err := rt.Attach(); err != nil {
						return err
					}
				}
				fresh = false
				cp.RefcountLoc = loc
				cp.DynFeatures |= ondisk.DynHasRefcount
				di.refLoc = loc
			}
			if cp.Extents == nil {
				return fmt.Errorf("inode %d has no extent list", o.ino)
			}
			t := &extent.Tree{C: c.v.Cache, Tx: tx, Alloc: e.fs.W.Alloc.Blocks, Root: cp.Extents,
				BlocksPerCluster: c.bpc, Owner: fmt.Sprintf("inode %d", o.ino), LastEB: cp.LastEBBlk}
			if _, err := t.Update(o.vcpos, 1, func(r ondisk.ExtentRec) ondisk.ExtentRec {
				r.Flags |= ondisk.ExtentRefcounted
				return r
			}); err != nil {
				return err
			}
			cp.LastEBBlk = t.LastEB
			if err := rt.Increase(uint64(cl), 1); err != nil {
				return err
			}
			if err := saveDinode(c.v.Cache, tx, cp); err != nil {
				return err
			}
		}
		return nil
	})
}

// cloneInode gives an owner of shared clusters private copies of all its
// data (fsck.ocfs2's clone: new clusters, the data copied, the extent
// records pointed at them), then frees the old clusters no other
// unresolved owner still claims.
func (c *checker) cloneInode(dc *dupContext, di *dupInode) error {
	return c.withTx(func(tx metacache.Tx, e *repairEnv) error {
		d, err := c.v.Cache.Dinode(di.ino)
		if err != nil {
			return err
		}
		cp, err := cloneTyped(d, c.bs)
		if err != nil {
			return err
		}
		if cp.Extents == nil {
			return fmt.Errorf("inode %d has no extent list to clone", di.ino)
		}
		var leaves []ondisk.ExtentRec
		owner := fmt.Sprintf("inode %d", di.ino)
		if err := extent.Walk(c.v.Cache, cp.Extents, owner, func(r ondisk.ExtentRec) error {
			leaves = append(leaves, r)
			return nil
		}); err != nil {
			return err
		}
		t := &extent.Tree{C: c.v.Cache, Tx: tx, Alloc: e.fs.W.Alloc.Blocks, Root: cp.Extents,
			BlocksPerCluster: c.bpc, Owner: owner, LastEB: cp.LastEBBlk}
		var old []uint32
		buf := make([]byte, int(c.bpc)*c.bs)
		for _, r := range leaves {
			if r.Flags&ondisk.ExtentRefcounted != 0 {
				continue // already shared on purpose
			}
			cpos, left, from := r.Cpos, r.Clusters, r.Blkno
			for left > 0 {
				run, err := e.global.ClaimClusters(tx, 0, 1, int(left))
				if err != nil {
					return err
				}
				to := uint64(run.Start) * c.bpc
				for k := 0; k < run.Count; k++ {
					src := from + uint64(k)*c.bpc
					if err := c.readBlocks(src, buf); err != nil {
						return err
					}
					if _, err := c.dev.WriteAt(buf, int64(to+uint64(k)*c.bpc)*int64(c.bs)); err != nil {
						return err
					}
					old = append(old, uint32(src/c.bpc))
				}
				base := cpos
				if _, err := t.Update(cpos, uint32(run.Count), func(p ondisk.ExtentRec) ondisk.ExtentRec {
					p.Blkno = to + uint64(p.Cpos-base)*c.bpc
					return p
				}); err != nil {
					return err
				}
				cpos += uint32(run.Count)
				from += uint64(run.Count) * c.bpc
				left -= uint32(run.Count)
			}
		}
		cp.LastEBBlk = t.LastEB
		if err := saveDinode(c.v.Cache, tx, cp); err != nil {
			return err
		}
		for _, cl := range old {
			if owners, shared := dc.clusters[cl]; shared {
				others := 0
				for _, o := range owners {
					if o.ino != di.ino && dc.inodes[o.ino].state == 0 {
						others++
					}
				}
				if others > 0 {
					continue
				}
			}
			if err := e.global.FreeClusters(tx, cl, 1); err != nil {
				return err
			}
		}
		return nil
	})
}
