package fsck

import (
	"fmt"
	"sort"

	"o2go/internal/fs/dir"
	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// Pass 3 (fsck.ocfs2's pass3.c) makes sure the root directory and
// /lost+found exist, then follows every directory's first parent entry up
// to the root: a directory that never gets there is moved to lost+found,
// and a ".." that does not name the parent is repointed.

func (c *checker) pass3() error {
	c.printf("Pass 3: Checking directory connectivity\n")
	c.checkRoot()
	c.checkLostFound()
	root := c.dirParents[c.sb.RootBlkno]
	if root == nil {
		return c.fail("root inode %d wasn't marked as a directory in pass1", c.sb.RootBlkno)
	}
	root.connected = true
	sys := c.dirParents[c.sb.SystemDirBlkno]
	if sys == nil {
		return c.fail("system dir inode %d wasn't marked as a directory in pass1", c.sb.SystemDirBlkno)
	}
	sys.connected = true
	inos := make([]uint64, 0, len(c.dirParents))
	for ino := range c.dirParents {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		if err := c.connectDirectory(c.dirParents[ino]); err != nil {
			return err
		}
	}
	return nil
}

// checkRoot recreates a root directory that is not allocated.
func (c *checker) checkRoot() {
	old := c.sb.RootBlkno
	if c.inodeInUse(old) {
		if !c.dirInodes.test(old) {
			c.printf("The root inode exists but isn't a directory.\n")
		}
		return
	}
	if !c.p.ask(RootDirMissing, "The super block claims that inode %d is the root directory but it isn't allocated.  Create a new root directory and update the super block?", old) {
		return
	}
	blk, err := c.newDirectory(0, false)
	if err != nil {
		c.fail("while trying to allocate a new inode for the root directory: %v", err)
		c.p.found[len(c.p.found)-1].Fixed = false
		return
	}
	b, err := c.readBlock(ondisk.SuperBlockBlkno)
	if err == nil {
		put64(b, diID2+0x28, blk)
		err = c.writeBlock(ondisk.SuperBlockBlkno, b, ondisk.DinodeCheckOffset)
	}
	if err != nil {
		c.fail("while writing the super block with a new root directory inode: %v", err)
		c.p.found[len(c.p.found)-1].Fixed = false
		return
	}
	c.sb.RootBlkno = blk
	c.v.SB.RootBlkno = blk
	c.dirInodes.set(blk)
	c.inLinks.set(blk, 2)
	c.refs.set(blk, 2)
	c.dirParents[blk] = &dirParent{ino: blk, dotDot: blk, dirent: blk}
}

// checkLostFound finds /lost+found, creating it when it is missing.
func (c *checker) checkLostFound() {
	if ino, err := c.lookup(c.sb.RootBlkno, "lost+found"); err == nil {
		c.lostFound = ino
		return
	}
	if !c.p.ask(LostFoundMissing, "/lost+found does not exist.  Create it so that we can possibly fill it with orphaned inodes?") {
		return
	}
	root := c.sb.RootBlkno
	blk, err := c.newDirectory(root, false)
	if err == nil {
		err = c.link(root, "lost+found", blk, ondisk.FileTypeDir)
	}
	if err != nil {
		c.fail("while creating /lost+found: %v", err)
		c.p.found[len(c.p.found)-1].Fixed = false
		return
	}
	c.dirInodes.set(blk)
	c.inLinks.set(blk, 2)
	c.refs.set(blk, 2)
	c.refs.delta(root, 1) // its ".."
	c.dirParents[blk] = &dirParent{ino: blk, dotDot: root, dirent: root, connected: true}
	c.lostFound = blk
}

// lookup finds name in directory parent.
func (c *checker) lookup(parent uint64, name string) (uint64, error) {
	d, err := c.v.Cache.Dinode(parent)
	if err != nil {
		return 0, err
	}
	if !d.IsDir() {
		return 0, fmt.Errorf("inode %d is not a directory", parent)
	}
	e, ok, err := dir.Dir{C: c.v.Cache, SB: c.v.SB, Inode: d}.Lookup(name)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%s not found in directory %d", name, parent)
	}
	return e.Inode, nil
}

// reconnectFile names inode ino "#ino" in /lost+found (o2fsck_reconnect_file).
func (c *checker) reconnectFile(ino uint64) {
	if c.lostFound == 0 {
		lf, err := c.lookup(c.sb.RootBlkno, "lost+found")
		if err != nil {
			c.fail("while trying to find the /lost+found directory so that inode %d could be moved there: %v", ino, err)
			c.p.found[len(c.p.found)-1].Fixed = false
			return
		}
		c.lostFound = lf
	}
	b, err := c.readInode(ino)
	if err != nil {
		c.fail("while reading inode %d to discover its file type: %v", ino, err)
		c.p.found[len(c.p.found)-1].Fixed = false
		return
	}
	ft := ondisk.FileTypeOfMode(dinode(b).mode())
	if err := c.link(c.lostFound, fmt.Sprintf("#%d", ino), ino, ft); err != nil {
		c.fail("while trying to link inode %d into /lost+found: %v", ino, err)
		c.p.found[len(c.p.found)-1].Fixed = false
		return
	}
	c.refs.delta(ino, 1)
	if ft == ondisk.FileTypeDir {
		if dp := c.dirParents[ino]; dp != nil {
			dp.dirent = c.lostFound
		}
	}
}

// connectDirectory follows a directory's parents to a connected one
// (connect_directory).
func (c *checker) connectDirectory(d *dirParent) error {
	c.verbosef("checking dir inode %d parent %d dot_dot %d\n", d.ino, d.dirent, d.dotDot)
	c.loopNo++
	dp := d
	for !dp.connected {
		dp.connected = true
		if dp.dirent != 0 {
			par := c.dirParents[dp.dirent]
			if par == nil {
				return c.fail("no dir info for parent %d", dp.dirent)
			}
			if par.loopNo != c.loopNo {
				par.loopNo = c.loopNo
				dp = par
				continue
			}
		}
		if c.p.ask(DirNotConnected, "Directory inode %d isn't connected to the filesystem.  Move it to lost+found?", dp.ino) {
			c.reconnectFile(dp.ino)
		}
		break
	}
	if d.inOrphan {
		if d.dotDot != 0 {
			c.refs.delta(d.dotDot, -1)
		}
		d.dotDot = d.dirent
		c.refs.delta(d.dotDot, 1)
	}
	if d.dirent != d.dotDot && c.p.ask(DirDotDot, "Directory inode %d is referenced by a dirent in directory %d but its '..' entry points to inode %d. Fix the '..' entry to reference %d?", d.ino, d.dirent, d.dotDot, d.dirent) {
		c.fixDotDot(d)
	}
	return nil
}

// fixDotDot points a directory's ".." at its parent (fix_dot_dot).
func (c *checker) fixDotDot(d *dirParent) {
	fixed, err := c.forEachDirBlock(d.ino, func(blk uint64, area []byte, seal func() error) (bool, error) {
		for off := 0; off+direntHeader <= len(area); {
			de := dirent(area[off:])
			rl := de.recLen()
			if rl < direntHeader || off+rl > len(area) {
				return false, nil
			}
			if de.nameLen() == 2 && string(de.name()) == ".." {
				if de.inode() != 0 {
					c.refs.delta(de.inode(), -1)
				}
				c.refs.delta(d.dirent, 1)
				de.setInode(d.dirent)
				return true, seal()
			}
			off += rl
		}
		return false, nil
	})
	if err != nil {
		c.fail("while iterating through dir inode %d's directory entries: %v", d.ino, err)
		c.p.found[len(c.p.found)-1].Fixed = false
		return
	}
	if !fixed {
		c.fail("Didn't find a '..' entry to fix.")
		c.p.found[len(c.p.found)-1].Fixed = false
		return
	}
	d.dotDot = d.dirent
}

// forEachDirBlock calls fn with each block's entry area of directory ino
// (the inline area for an inline one) until fn says it is done; seal
// writes the block back.
func (c *checker) forEachDirBlock(ino uint64, fn func(blk uint64, area []byte, seal func() error) (bool, error)) (bool, error) {
	b, err := c.readInode(ino)
	if err != nil {
		return false, err
	}
	d := dinode(b)
	if d.inline() {
		n := int(get16(d, diID2))
		area := d[diID2+8 : min(diID2+8+n, c.bs)]
		return fn(ino, area, func() error { return c.writeBlock(ino, d, ondisk.DinodeCheckOffset) })
	}
	td, err := ondisk.DecodeDinode(d)
	if err != nil || td.Extents == nil {
		return false, fmt.Errorf("directory inode %d: %v", ino, err)
	}
	indexed := d.dyn()&ondisk.DynIndexedDir != 0 && c.sb.Features.Incompat&ondisk.IncompatIndexedDirs != 0
	trailer := ondisk.DirHasTrailer(c.metaECC, false, indexed)
	nblocks := (d.size() + uint64(c.bs) - 1) / uint64(c.bs)
	done := false
	errStop := fmt.Errorf("stop")
	err = extent.Walk(c.v.Cache, td.Extents, fmt.Sprintf("directory inode %d", ino), func(r ondisk.ExtentRec) error {
		for i := uint64(0); i < uint64(r.Clusters)*c.bpc; i++ {
			if uint64(r.Cpos)*c.bpc+i >= nblocks {
				return errStop
			}
			blk := r.Blkno + i
			bb, err := c.readBlock(blk)
			if err != nil {
				return err
			}
			area := bb
			check := -1
			if trailer {
				area = bb[:ondisk.TrailerOffset(c.bs)]
				check = ondisk.DirBlockCheckOffset(c.bs)
			}
			ok, err := fn(blk, area, func() error { return c.writeBlock(blk, bb, check) })
			if err != nil {
				return err
			}
			if ok {
				done = true
				return errStop
			}
		}
		return nil
	})
	if err == errStop {
		err = nil
	}
	return done, err
}
