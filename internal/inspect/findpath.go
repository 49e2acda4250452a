package inspect

import (
	"errors"
	"fmt"

	"o2go/internal/ondisk"
)

// errFound stops a findpath walk once every inode has a path.
var errFound = errors.New("all found")

// pathFinder walks the system directory and then the root tree looking for
// directory entries that name given inodes, as debugfs's findpath/ncheck.
type pathFinder struct {
	d       *Debugger
	targets []uint64
	all     bool // ncheck/locate: every path; findpath: stop at the first of each
	found   int
	visited map[uint64]bool
}

func (d *Debugger) doFindpath(args []string) error { return d.findPaths(args, false) }
func (d *Debugger) doLocate(args []string) error   { return d.findPaths(args, true) }

func (d *Debugger) findPaths(args []string, all bool) error {
	if err := d.needVolume(); err != nil {
		return err
	}
	if len(args) < 2 {
		return usageError(args[0] + " <block#> ...")
	}
	const maxTargets = 50
	var targets []uint64
	for _, a := range args[1:min(len(args), maxTargets+1)] {
		blk, err := d.blockArg(a)
		if err != nil {
			return err
		}
		targets = append(targets, blk)
	}
	pf := &pathFinder{d: d, targets: targets, all: all, visited: map[uint64]bool{}}
	root, sysdir := d.vol.SB.RootBlkno, d.vol.SB.SystemDirBlkno
	printedRoot, printedSys := false, false
	for _, t := range targets {
		if t == root {
			if !printedRoot {
				fmt.Fprintf(d.out, "\t%d\t%s\n", t, "/")
			}
			printedRoot = true
			pf.found++
		}
		if t == sysdir {
			if !printedSys {
				fmt.Fprintf(d.out, "\t%d\t%s\n", t, "//")
			}
			printedSys = true
			pf.found++
		}
	}
	if !all && pf.found >= len(targets) {
		return nil
	}
	err := pf.walk(sysdir, "//", 0)
	if err == nil {
		err = pf.walk(root, "/", 0)
	}
	if errors.Is(err, errFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if pf.found == 0 {
		return errors.New("no directory entry names the inode(s)")
	}
	return nil
}

func (pf *pathFinder) walk(dirBlk uint64, prefix string, depth int) error {
	if depth > 4096 || pf.visited[dirBlk] {
		return nil // a directory reached twice (a corrupt loop) is walked once
	}
	pf.visited[dirBlk] = true
	dir, err := pf.d.vol.FS.Dir(dirBlk)
	if err != nil {
		return fmt.Errorf("walking %s: %w", prefix, err)
	}
	return dir.ForEach(func(e ondisk.DirEntry) error {
		if e.Name == "." || e.Name == ".." || e.Name == "" {
			return nil
		}
		path := prefix + e.Name
		if e.FileType == ondisk.FileTypeDir {
			path += "/"
		}
		printed := false
		for _, t := range pf.targets {
			if e.Inode == t {
				if !printed {
					fmt.Fprintf(pf.d.out, "\t%d\t%s\n", e.Inode, path)
				}
				printed = true
				pf.found++
			}
		}
		if !pf.all && pf.found >= len(pf.targets) {
			return errFound
		}
		if e.FileType == ondisk.FileTypeDir {
			return pf.walk(e.Inode, path, depth+1)
		}
		return nil
	})
}
