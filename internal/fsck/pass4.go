package fsck

import (
	"fmt"
	"strings"

	"o2go/internal/fs/dir"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Pass 4 (fsck.ocfs2's pass4.c): 4a finishes the deletion of the inodes
// left in the orphan directories (with -f, asking for each); 4b compares
// every inode's link count with the directory entries that name it,
// moving an inode nothing names to lost+found.

func (c *checker) pass4() error {
	c.printf("Pass 4a: Checking for orphaned inodes\n")
	if err := c.replayOrphanDirs(false); err != nil {
		return c.fail("while trying to replay the orphan directory: %v", err)
	}
	c.printf("Pass 4b: Checking inodes link counts\n")
	keys := mergeKeys(c.refs.keys(), c.inLinks.keys())
	for _, blk := range keys {
		c.checkLinkCounts(blk)
	}
	return nil
}

func mergeKeys(a, b []uint64) []uint64 {
	out := make([]uint64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i >= len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// checkLinkCounts settles one inode's link count (check_link_counts).
func (c *checker) checkLinkCounts(blk uint64) {
	refs := c.refs.get(blk)
	in := c.inLinks.get(blk)
	c.verbosef("ino %d, refs %d in %d\n", blk, refs, in)
	if refs == 0 && c.p.ask(InodeNotConnected, "Inode %d isn't referenced by any directory entries.  Move it to lost+found?", blk) {
		c.reconnectFile(blk)
		refs = c.refs.get(blk)
	}
	if refs == in {
		return
	}
	b, err := c.readInode(blk)
	if err != nil {
		c.fail("reading inode %d to update its i_links_count.  Could this be because a directory entry referenced an invalid inode but wasn't fixed? %v", blk, err)
		return
	}
	d := dinode(b)
	if in != d.links() {
		c.verbosef("fsck's thinks inode %d has a link count of %d but on disk it is %d\n", blk, in, d.links())
	}
	if c.p.ask(InodeCount, "Inode %d has a link count of %d on disk but directory entry references come to %d. Update the count on disk to match?", blk, in, refs) {
		d.setLinks(refs)
		c.inLinks.set(blk, refs)
		c.writeInode(blk, d)
	}
}

// replayOrphanDirs finishes the orphans of every slot (replay_orphan_dir):
// in slot recovery without asking, in pass 4a asking with -f.
func (c *checker) replayOrphanDirs(slotRecovery bool) error {
	for slot := 0; slot < c.maxSlots; slot++ {
		name := fmt.Sprintf("orphan_dir:%04d", slot)
		od := c.sys.orphanDirs[slot]
		if od == 0 {
			if slotRecovery {
				return fmt.Errorf("%s is missing", name)
			}
			if c.p.ask(OrphanDirMissing, "%s is missing in system directory. Create it?", name) {
				if err := c.createOrphanDir(slot, name); err != nil {
					c.fail("while creating orphan directory %s: %v", name, err)
					c.p.found[len(c.p.found)-1].Fixed = false
				}
			}
			continue
		}
		var entries []ondisk.DirEntry
		d, err := c.v.Cache.Dinode(od)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := (dir.Dir{C: c.v.Cache, SB: c.v.SB, Inode: d}).ForEach(func(e ondisk.DirEntry) error {
			if e.Inode != 0 && e.Name != "." && e.Name != ".." {
				entries = append(entries, e)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, e := range entries {
			if !c.rw {
				c.printf("** Skipping orphan dir replay because -n was given.\n")
				break
			}
			c.stats.orphans++
			if c.o.Force && !c.p.ask(InodeOrphaned, "Inode %d was found in the orphan directory. Delete its contents and unlink it?", e.Inode) {
				continue
			}
			deleted, err := c.deleteOrphan(od, e)
			if err != nil {
				return fmt.Errorf("while deleting orphan inode %d: %w", e.Inode, err)
			}
			c.changed = true
			if deleted {
				c.stats.orphansDeleted++
			}
			if c.o.Force {
				c.inLinks.delta(e.Inode, -1)
				if e.FileType == ondisk.FileTypeDir {
					c.refs.delta(e.Inode, -2)
					c.refs.delta(od, -1)
				} else {
					c.refs.delta(e.Inode, -1)
				}
			}
		}
	}
	if c.repair != nil && c.rw {
		if err := c.repair.fs.FlushTruncateLog(); err != nil {
			return err
		}
	}
	return nil
}

// deleteOrphan frees an orphan's data and inode and takes it out of its
// orphan directory. An entry of an append-dio orphan ("dio-") only loses
// its entry and flag: its data is the file's. An entry whose inode is not
// an unlinked orphan only loses its entry (pass 4b then gives the inode
// back its place or its count).
func (c *checker) deleteOrphan(od uint64, e ondisk.DirEntry) (bool, error) {
	env, err := c.repairEnvironment()
	if err != nil {
		return false, err
	}
	d, err := c.v.Cache.Dinode(e.Inode)
	if err == nil && !strings.HasPrefix(e.Name, "dio-") && d.Flags&ondisk.InodeOrphaned != 0 && d.Links == 0 &&
		e.Name == fmt.Sprintf("%016x", e.Inode) && d.Flags&ondisk.InodeSystem == 0 {
		return true, env.fs.Delete(e.Inode)
	}
	return false, c.withTx(func(tx metacache.Tx, e2 *repairEnv) error {
		odi, err := c.v.Cache.Dinode(od)
		if err != nil {
			return err
		}
		cp, err := cloneTyped(odi, c.bs)
		if err != nil {
			return err
		}
		if _, err := dir.Remove(e2.dirEnv(c, tx), cp, e.Name); err != nil {
			return err
		}
		if err := saveDinode(c.v.Cache, tx, cp); err != nil {
			return err
		}
		if d != nil && d.Flags&ondisk.InodeDIOOrphaned != 0 {
			nd, err := cloneTyped(d, c.bs)
			if err != nil {
				return err
			}
			nd.Flags &^= ondisk.InodeDIOOrphaned
			return saveDinode(c.v.Cache, tx, nd)
		}
		return nil
	})
}

// createOrphanDir makes a missing orphan directory (create_orphan_dir).
func (c *checker) createOrphanDir(slot int, name string) error {
	sysdir := c.sb.SystemDirBlkno
	blk, err := c.newDirectory(sysdir, true)
	if err != nil {
		return err
	}
	if err := c.link(sysdir, name, blk, ondisk.FileTypeDir); err != nil {
		return err
	}
	// The system directory gains a subdirectory: its link count follows
	// on disk and in both counts, so pass 4b has nothing to say.
	b, err := c.readInode(sysdir)
	if err != nil {
		return err
	}
	sd := dinode(b)
	sd.setLinks(sd.links() + 1)
	if err := c.writeBlock(sysdir, sd, ondisk.DinodeCheckOffset); err != nil {
		return err
	}
	c.refs.delta(sysdir, 1)
	c.inLinks.delta(sysdir, 1)
	c.sys.orphanDirs[slot] = blk
	c.dirInodes.set(blk)
	c.inLinks.set(blk, 2)
	c.refs.set(blk, 2)
	c.dirParents[blk] = &dirParent{ino: blk, dotDot: sysdir, dirent: sysdir, connected: true}
	return nil
}
