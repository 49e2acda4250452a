package inspect

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// maxSystemFileRead bounds what commands that read a whole system file
// (hb, slotmap, symlinks) load into memory, like debugfs's 100 MiB.
const maxSystemFileRead = 100 << 20

func (d *Debugger) doHelp(args []string) error {
	width := 40
	for _, c := range commands {
		width = max(width, len(c.usage))
	}
	for _, c := range commands {
		if c.usage != "" {
			fmt.Fprintf(d.out, "%-*s  %s\n", width, c.usage, c.desc)
		}
	}
	return nil
}

func (d *Debugger) doOpen(args []string) error {
	const usage = usageError("open <device> [-s backup#]")
	if len(args) < 2 {
		return usage
	}
	dev, backup := "", 0
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-s" && i+1 < len(args):
			n, err := strconv.ParseUint(args[i+1], 0, 8)
			if err != nil || n < 1 || n > ondisk.MaxBackupSuperBlocks {
				return fmt.Errorf("backup superblock %q is outside the valid range 1..%d", args[i+1], ondisk.MaxBackupSuperBlocks)
			}
			backup = int(n)
			i++
		case a == "-i":
			return errors.New("o2image files are not supported; open the device or a raw image file")
		case strings.HasPrefix(a, "-"):
			return usage
		case dev == "":
			dev = a
		default:
			return usage
		}
	}
	if dev == "" {
		return usage
	}
	return d.Open(dev, backup)
}

func (d *Debugger) doClose(args []string) error {
	if err := d.needVolume(); err != nil {
		return err
	}
	d.Close()
	return nil
}

func (d *Debugger) doCurdev(args []string) error {
	if d.vol == nil {
		fmt.Fprintln(d.out, "No device")
	} else {
		fmt.Fprintln(d.out, d.device)
	}
	return nil
}

func (d *Debugger) dirArg(args []string, usage usageError) (uint64, error) {
	if err := d.needVolume(); err != nil {
		return 0, err
	}
	if len(args) != 2 {
		return 0, usage
	}
	blk, err := d.resolve(args[1])
	if err != nil {
		return 0, err
	}
	if _, err := d.vol.FS.Dir(blk); err != nil {
		return 0, fmt.Errorf("checking directory at block %d: %w", blk, err)
	}
	return blk, nil
}

func (d *Debugger) doCd(args []string) error {
	blk, err := d.dirArg(args, "cd <filespec>")
	if err == nil {
		d.cwd = blk
	}
	return err
}

func (d *Debugger) doChroot(args []string) error {
	blk, err := d.dirArg(args, "chroot <filespec>")
	if err == nil {
		d.root = blk
	}
	return err
}

func (d *Debugger) doLcd(args []string) error {
	if len(args) < 2 {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		fmt.Fprintln(d.out, wd)
		return nil
	}
	return os.Chdir(args[1])
}

// inodeArg resolves the one filespec a command takes.
func (d *Debugger) inodeArg(args []string, usage usageError) (uint64, error) {
	if err := d.needVolume(); err != nil {
		return 0, err
	}
	if len(args) != 2 {
		return 0, usage
	}
	return d.resolve(args[1])
}

func (d *Debugger) doLs(args []string) error {
	args, asJSON := takeFlag(args, "--json")
	args, long := takeFlag(args, "-l")
	asJSON = asJSON || d.JSON
	if err := d.needVolume(); err != nil {
		return err
	}
	spec := "."
	switch len(args) {
	case 1:
	case 2:
		spec = args[1]
	default:
		return usageError("ls [-l] [--json] <filespec>")
	}
	blk, err := d.resolve(spec)
	if err != nil {
		return err
	}
	dir, err := d.vol.FS.Dir(blk)
	if err != nil {
		return fmt.Errorf("checking directory at block %d: %w", blk, err)
	}
	v := d.view()
	var entries []DirEntryJSON
	err = dir.ForEach(func(e ondisk.DirEntry) error {
		var ino *ondisk.Dinode
		if long {
			var err error
			if ino, _, err = d.rawInode(e.Inode); err != nil {
				return fmt.Errorf("entry %q: %w", e.Name, err)
			}
		}
		if asJSON {
			j := DirEntryJSON{Inode: e.Inode, Name: e.Name, FileType: e.FileType, RecLen: e.RecLen}
			if ino != nil {
				j.Perms, j.Links, j.UID, j.GID, j.Size = permString(ino.Mode), ino.Links, ino.UID, ino.GID, ino.Size
				j.Mtime = jsonTime(ino.Mtime.Sec, ino.Mtime.Nsec)
			}
			entries = append(entries, j)
			return nil
		}
		v.dirEntry(e, long, ino)
		return nil
	})
	if err != nil {
		return fmt.Errorf("iterating directory at block %d: %w", blk, err)
	}
	if asJSON {
		if entries == nil {
			entries = []DirEntryJSON{}
		}
		return writeJSON(d.out, entries)
	}
	return nil
}

func (d *Debugger) doStat(args []string) error {
	args, asJSON := takeFlag(args, "--json")
	asJSON = asJSON || d.JSON
	traverse := true
	if len(args) > 1 && (strings.HasPrefix(args[1], "-t") || strings.HasPrefix(args[1], "-T")) {
		traverse = args[1][1] == 't'
		args = append(args[:1:1], args[2:]...)
	}
	blk, err := d.inodeArg(args, "stat [-t|-T] [--json] <filespec>")
	if err != nil {
		return err
	}
	ino, raw, err := d.rawInode(blk)
	if err != nil {
		return fmt.Errorf("reading inode %d: %w", blk, err)
	}
	if asJSON {
		j, err := d.statJSON(ino, raw, traverse)
		if err != nil {
			return err
		}
		if err := writeJSON(d.out, j); err != nil {
			return err
		}
		return d.identityProblem(ino, blk)
	}
	v := d.view()
	v.inode(ino, raw)
	if traverse {
		if err := d.showID2(v, ino, raw); err != nil {
			return fmt.Errorf("traversing inode at block %d: %w", blk, err)
		}
	}
	if err := d.checkProblem(raw, blk, ondisk.DinodeCheckOffset, "dinode"); err != nil {
		return err
	}
	return d.identityProblem(ino, blk)
}

// checkProblem verifies a displayed block's metaecc check the way the file
// system would: a single flipped bit is corrected (and not reported), more
// damage is an error naming the block.
func (d *Debugger) checkProblem(raw []byte, blk uint64, off int, structName string) error {
	if d.vol.SB.Features.Incompat&ondisk.IncompatMetaECC == 0 {
		return nil
	}
	cp := append([]byte(nil), raw...)
	if _, err := ondisk.VerifyBlockCheck(cp, off, structName); err != nil {
		return d.vol.Cache.Annotate(err, blk)
	}
	return nil
}

// showID2 prints what an inode's id2 holds, as debugfs's stat does: the
// local alloc window, the chains with every group, a fast symlink, the
// truncate log, or the extent tree with its extent blocks.
func (d *Debugger) showID2(v *view, ino *ondisk.Dinode, raw []byte) error {
	switch {
	case ino.Flags&ondisk.InodeLocalAlloc != 0 && ino.LocalAlloc != nil:
		v.localAlloc(ino.LocalAlloc)
	case ino.Flags&ondisk.InodeChain != 0 && ino.Chain != nil:
		return d.traverseChains(v, ino.Chain)
	case ino.IsLnk() && ino.Clusters == 0:
		v.fastSymlink(raw[ondisk.DinodeID2Offset:])
	case ino.Flags&ondisk.InodeDealloc != 0 && ino.TruncateLog != nil:
		v.truncateLog(ino.TruncateLog)
	case ino.DynFeatures&ondisk.DynInlineData == 0 && ino.Extents != nil:
		return d.traverseExtents(v, ino.Extents, 0)
	}
	return nil
}

// traverseChains prints a chain list and every group of every chain.
func (d *Debugger) traverseChains(v *view, cl *ondisk.ChainList) error {
	v.chainList(cl)
	for _, r := range cl.Recs {
		v.f("\n")
		if err := d.walkGroups(r.Blkno, func(g *ondisk.GroupDesc, raw []byte, i int) { v.groupDesc(g, raw, i) }); err != nil {
			return err
		}
	}
	return nil
}

// walkGroups follows a chain of group descriptors from blkno.
func (d *Debugger) walkGroups(blkno uint64, fn func(g *ondisk.GroupDesc, raw []byte, index int)) error {
	seen := map[uint64]bool{}
	for i := 0; blkno != 0; i++ {
		if seen[blkno] {
			return d.vol.Cache.Annotate(&ondisk.CorruptError{Struct: "group descriptor", Field: "bg_next_group", Msg: "the chain loops back to this group"}, blkno)
		}
		seen[blkno] = true
		if blkno >= d.maxBlock {
			return fmt.Errorf("group descriptor %d is beyond the end of the volume", blkno)
		}
		b, err := d.vol.Cache.Get(blkno)
		if err != nil {
			return err
		}
		g, err := ondisk.DecodeGroupDesc(b.Data)
		if err != nil {
			return fmt.Errorf("reading block group descriptor %d: %w", blkno, d.vol.Cache.Annotate(err, blkno))
		}
		fn(g, b.Data, i)
		blkno = g.NextGroup
	}
	return nil
}

// traverseExtents prints an extent list and, below it, every extent block
// of the tree with its own list, depth first.
func (d *Debugger) traverseExtents(v *view, el *ondisk.ExtentList, depth int) error {
	v.extentList(el)
	if el.TreeDepth == 0 {
		return nil
	}
	if depth > ondisk.MaxExtentTreeDepth {
		return errors.New("extent tree deeper than any valid tree")
	}
	for i, r := range el.Recs {
		if r.Clusters == 0 && i == len(el.Recs)-1 {
			break
		}
		eb, raw, err := d.rawExtentBlock(r.Blkno)
		if err != nil {
			return err
		}
		v.extentBlock(eb, raw)
		if err := d.traverseExtents(v, &eb.List, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// rawBlock reads block blk and decodes it with decode: beyond is how an
// out-of-range number is named, reading how a decode failure is.
func rawBlock[T any](d *Debugger, blk uint64, beyond, reading string, decode func([]byte) (T, error)) (T, []byte, error) {
	var zero T
	if blk >= d.maxBlock {
		return zero, nil, fmt.Errorf("%s %d is beyond the end of the volume", beyond, blk)
	}
	b, err := d.vol.Cache.Get(blk)
	if err != nil {
		return zero, nil, err
	}
	v, err := decode(b.Data)
	if err != nil {
		return zero, nil, fmt.Errorf("reading %s %d: %w", reading, blk, d.vol.Cache.Annotate(err, blk))
	}
	return v, b.Data, nil
}

func (d *Debugger) rawExtentBlock(blkno uint64) (*ondisk.ExtentBlock, []byte, error) {
	return rawBlock(d, blkno, "extent block", "extent block", ondisk.DecodeExtentBlock)
}

func (d *Debugger) statJSON(ino *ondisk.Dinode, raw []byte, traverse bool) (*InodeJSON, error) {
	j := inodeJSON(ino, raw, d.view().metaECC)
	if !traverse {
		return j, nil
	}
	switch {
	case ino.Flags&ondisk.InodeLocalAlloc != 0 && ino.LocalAlloc != nil:
		j.LocalAlloc = &LocalAllocJSON{BitmapOffset: ino.LocalAlloc.BmOff, Size: len(ino.LocalAlloc.Bitmap)}
	case ino.Flags&ondisk.InodeChain != 0 && ino.Chain != nil:
		j.Chains = []ChainJSON{}
		for _, r := range ino.Chain.Recs {
			c := ChainJSON{Total: r.Total, Used: r.Total - r.Free, Free: r.Free, Blkno: r.Blkno, Groups: []GroupJSON{}}
			err := d.walkGroups(r.Blkno, func(g *ondisk.GroupDesc, _ []byte, _ int) {
				c.Groups = append(c.Groups, GroupJSON{Blkno: g.Blkno, Total: g.Bits, Used: int(g.Bits) - int(g.FreeBitsCount),
					Free: g.FreeBitsCount, LongestFree: longestFree(g), BitmapBytes: len(g.Bitmap), Chain: g.Chain, Discontiguous: g.Discontig()})
			})
			if err != nil {
				return nil, err
			}
			j.Chains = append(j.Chains, c)
		}
	case ino.IsLnk() && ino.Clusters == 0:
		t := cstr(raw[ondisk.DinodeID2Offset:])
		j.SymlinkTarget = &t
	case ino.Flags&ondisk.InodeDealloc != 0 && ino.TruncateLog != nil:
		j.TruncateLog = []TruncateRecord{}
		for _, r := range ino.TruncateLog.Recs {
			j.TruncateLog = append(j.TruncateLog, TruncateRecord{r.Start, r.Clusters})
		}
	case ino.DynFeatures&ondisk.DynInlineData == 0 && ino.Extents != nil:
		depth := ino.Extents.TreeDepth
		j.ExtentTreeDepth = &depth
		j.Extents = []ExtentJSON{}
		err := extent.Walk(d.vol.Cache, ino.Extents, fmt.Sprintf("inode %d", ino.Blkno), func(r ondisk.ExtentRec) error {
			j.Extents = append(j.Extents, ExtentJSON{Cpos: r.Cpos, Clusters: r.Clusters, Blkno: r.Blkno, Flags: extentFlagWords(r.Flags)})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if ino.IsLnk() && ino.Clusters > 0 {
		if t, err := d.vol.FS.Readlink(ino); err == nil {
			j.SymlinkTarget = &t
		}
	}
	return j, nil
}

func (d *Debugger) doStats(args []string) error {
	args, asJSON := takeFlag(args, "--json")
	asJSON = asJSON || d.JSON
	if err := d.needVolume(); err != nil {
		return err
	}
	onlySuper, backup := false, 0
	for i := 1; i < len(args); i++ {
		switch {
		case args[i] == "-h":
			onlySuper = true
		case args[i] == "-s" && i+1 < len(args):
			n, err := strconv.ParseUint(args[i+1], 0, 8)
			if err != nil || n < 1 || n > ondisk.MaxBackupSuperBlocks {
				return usageError("stats [-h] [-s backup#] [--json]")
			}
			backup = int(n)
			i++
		default:
			return usageError("stats [-h] [-s backup#] [--json]")
		}
	}
	super, raw, blk := d.vol.Super, []byte(nil), d.vol.SuperBlkno
	if backup > 0 {
		var err error
		if super, raw, blk, err = d.backupSuper(backup); err != nil {
			return err
		}
	} else {
		b, err := d.vol.Cache.Get(blk)
		if err != nil {
			return err
		}
		raw = b.Data
	}
	sb := super.Super
	if asJSON {
		j := SuperBlockJSON{
			Device: d.device, SuperBlockBlkno: blk, Revision: fmt.Sprintf("%d.%d", sb.MajorRev, sb.MinorRev),
			MountCount: sb.MntCount, MaxMountCount: sb.MaxMntCount, State: sb.State, Errors: sb.Errors,
			CheckInterval: sb.CheckInterval, LastCheck: jsonTime(sb.LastCheck, 0), CreatorOS: sb.CreatorOS,
			FeatureCompat: sb.Features.Compat, FeatureIncompat: sb.Features.Incompat, FeatureRoCompat: sb.Features.RoCompat,
			Features: allFeatureWords(sb.Features), TunefsFlag: sb.TunefsFlag, RootBlkno: sb.RootBlkno,
			SystemDirBlkno: sb.SystemDirBlkno, FirstClusterGroup: sb.FirstClusterGroup, BlockSize: sb.BlockSize(),
			ClusterSize: sb.ClusterSize(), Clusters: super.Clusters, MaxSlots: sb.MaxSlots, XattrInlineSize: sb.XattrInlineSize,
			Label: sb.Label(), UUID: sb.UUIDString(), UUIDHash: sb.UUIDHash, DxSeeds: sb.DxSeed,
			ClusterStack: stackName(sb), ClusterName: clusterName(sb), ClusterFlags: sb.ClusterInfo.StackFlags,
			GlobalHeartbeat: isO2CBStack(sb) && sb.ClusterInfo.StackFlags&ondisk.ClusterO2CBGlobalHeartbeat != 0,
			Generation:      super.FSGeneration, Notes: d.vol.Notes,
		}
		if !onlySuper {
			j.Inode = inodeJSON(super, raw, d.view().metaECC)
		}
		return writeJSON(d.out, j)
	}
	v := d.view()
	v.superBlock(sb)
	if !onlySuper {
		v.inode(super, raw)
	}
	return nil
}

// backupSuper reads backup superblock n (1-based) of the open volume.
func (d *Debugger) backupSuper(n int) (*ondisk.Dinode, []byte, uint64, error) {
	bs := uint64(d.vol.SB.BlockSize())
	blk := (uint64(ondisk.BackupSuperBlockStart) << (2 * (n - 1))) / bs
	if blk >= d.vol.Cache.Blocks() {
		return nil, nil, 0, fmt.Errorf("backup superblock %d would be at block %d, beyond the device's %d blocks", n, blk, d.vol.Cache.Blocks())
	}
	b, err := d.vol.Cache.Get(blk)
	if err != nil {
		return nil, nil, 0, err
	}
	sup, err := ondisk.DecodeDinode(b.Data)
	if err == nil {
		err = ondisk.ValidateSuperBlock(sup, int(bs))
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("reading backup superblock %d: %w", n, d.vol.Cache.Annotate(err, blk))
	}
	return sup, b.Data, blk, nil
}

// stackName is the cluster stack as mounted.ocfs2 names it: "None" for
// local volumes is left to the callers that want it; here "" is local and
// "o2cb" classic o2cb without cluster info.
func stackName(sb *ondisk.SuperBlock) string {
	switch {
	case sb.Features.Incompat&ondisk.IncompatLocalMount != 0:
		return ""
	case sb.HasClusterInfo():
		return cstr(sb.ClusterInfo.Stack[:])
	}
	return "o2cb"
}

func clusterName(sb *ondisk.SuperBlock) string {
	if sb.Features.Incompat&ondisk.IncompatLocalMount == 0 && sb.HasClusterInfo() {
		return cstr(sb.ClusterInfo.Cluster[:])
	}
	return ""
}

// allFeatureWords is compat, incompat and ro-compat names in o2info's order.
func allFeatureWords(f ondisk.Features) []string {
	out := featureWords(ondisk.CategoryCompat, f.Compat)
	out = append(out, featureWords(ondisk.CategoryIncompat, f.Incompat)...)
	return append(out, featureWords(ondisk.CategoryRoCompat, f.RoCompat)...)
}

func (d *Debugger) doCat(args []string) error {
	blk, err := d.inodeArg(args, "cat <filespec>")
	if err != nil {
		return err
	}
	ino, err := d.vol.FS.Inode(blk)
	if err != nil {
		return fmt.Errorf("reading inode %d: %w", blk, err)
	}
	if !ino.IsReg() {
		return fmt.Errorf("inode %d is not a regular file", blk)
	}
	if err := d.out.Flush(); err != nil {
		return err
	}
	if _, err := copyFileData(d.vol, ino, d.Out, nil); err != nil {
		return fmt.Errorf("reading file for inode %d: %w", blk, err)
	}
	return nil
}

func (d *Debugger) doDump(args []string) error {
	const usage = usageError("dump [-p] <filespec> <outfile>")
	if err := d.needVolume(); err != nil {
		return err
	}
	preserve := false
	if len(args) > 1 && strings.EqualFold(args[1], "-p") {
		preserve = true
		args = append(args[:1:1], args[2:]...)
	}
	if len(args) != 3 {
		return usage
	}
	blk, err := d.resolve(args[1])
	if err != nil {
		return err
	}
	return d.dumpInode(blk, args[2], preserve)
}

// dumpInode writes inode blk's contents to the host file out: a symlink
// becomes a symlink, anything else its bytes. With preserve the file gets
// the inode's mode, owner and times.
func (d *Debugger) dumpInode(blk uint64, out string, preserve bool) error {
	ino, err := d.vol.FS.Inode(blk)
	if err != nil {
		return fmt.Errorf("reading inode %d: %w", blk, err)
	}
	if ino.IsLnk() {
		target, err := d.vol.FS.Readlink(ino)
		if err != nil {
			return err
		}
		if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return os.Symlink(target, out)
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o666)
	if err != nil {
		return err
	}
	if _, err := copyFileData(d.vol, ino, f, f); err != nil {
		f.Close()
		return fmt.Errorf("dumping inode %d to %s: %w", blk, out, err)
	}
	if preserve {
		if err := fixPerms(f, out, ino); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// fixPerms gives a dumped file or directory the inode's mode, owner (when
// running as root: nobody else may give files away) and times.
func fixPerms(f *os.File, path string, ino *ondisk.Dinode) error {
	mode := os.FileMode(ino.Mode & 0o777)
	if ino.Mode&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if ino.Mode&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if ino.Mode&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	chmod, chown := os.Chmod, os.Lchown
	if f != nil {
		chmod = func(_ string, m os.FileMode) error { return f.Chmod(m) }
		chown = func(_ string, u, g int) error { return f.Chown(u, g) }
	}
	if err := chmod(path, mode); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if err := chown(path, int(ino.UID), int(ino.GID)); err != nil {
			return err
		}
	}
	return os.Chtimes(path, time.Unix(int64(ino.Atime.Sec), 0), time.Unix(int64(ino.Mtime.Sec), 0))
}

func (d *Debugger) doRdump(args []string) error {
	const usage = usageError("rdump [-v] <filespec> <outdir>")
	if err := d.needVolume(); err != nil {
		return err
	}
	verbose := false
	if len(args) > 1 && args[1] == "-v" {
		verbose = true
		args = append(args[:1:1], args[2:]...)
	}
	if len(args) != 3 {
		return usage
	}
	blk, err := d.resolve(args[1])
	if err != nil {
		return err
	}
	st, err := os.Stat(args[2])
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("'%s': not a directory", args[2])
	}
	name := args[1]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if name == "" || name == "." || name == ".." || strings.HasPrefix(name, "<") {
		// debugfs names the copy of "/" (or ".") after the time; it
		// forgets to add 1 to the month, o2go does not.
		name = time.Now().Format("2006-01-02_15:04:05")
	}
	dst := strings.TrimSuffix(args[2], "/")
	fmt.Fprintf(d.out, "Copying to %s/%s\n", dst, name)
	if err := d.out.Flush(); err != nil {
		return err
	}
	if err := d.rdump(blk, name, dst, verbose, 0); err != nil {
		return fmt.Errorf("recursively dumping inode %d: %w", blk, err)
	}
	return nil
}

func (d *Debugger) rdump(blk uint64, name, dir string, verbose bool, depth int) error {
	if depth > 4096 {
		return errors.New("directories nested deeper than 4096: the tree loops")
	}
	full := dir + "/" + name
	ino, err := d.vol.FS.Inode(blk)
	if err != nil {
		return fmt.Errorf("reading inode %d: %w", blk, err)
	}
	switch {
	case ino.IsLnk():
		return d.dumpInode(blk, full, false)
	case ino.IsReg():
		if verbose {
			fmt.Fprintln(d.Out, full)
		}
		f, err := os.OpenFile(full, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o700)
		if err != nil {
			return err
		}
		if _, err := copyFileData(d.vol, ino, f, f); err != nil {
			f.Close()
			return fmt.Errorf("dumping inode %d to %s: %w", blk, full, err)
		}
		if err := fixPerms(f, full, ino); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case ino.IsDir():
		if verbose {
			fmt.Fprintln(d.Out, full)
		}
		if err := os.Mkdir(full, 0o700); err != nil {
			return err
		}
		dir, err := d.vol.FS.Dir(blk)
		if err != nil {
			return err
		}
		err = dir.ForEach(func(e ondisk.DirEntry) error {
			if e.Name == "." || e.Name == ".." {
				return nil
			}
			if strings.ContainsRune(e.Name, '/') {
				return fmt.Errorf("directory %d holds the name %q, which cannot be a host file name", blk, e.Name)
			}
			return d.rdump(e.Inode, e.Name, full, verbose, depth+1)
		})
		if err != nil {
			return err
		}
		return fixPerms(nil, full, ino)
	}
	return nil // device files, fifos and sockets are not copied, as in debugfs
}

// systemFileData reads a system file's bytes, rounded up to whole blocks
// with zeros as debugfs reads them.
func (d *Debugger) systemFileData(kind ondisk.SystemFileKind, slot int) ([]byte, error) {
	blk, err := d.vol.SystemFile(kind, slot)
	if err != nil {
		return nil, err
	}
	ino, err := d.vol.FS.Inode(blk)
	if err != nil {
		return nil, err
	}
	data, err := d.readData(ino, maxSystemFileRead)
	if err != nil {
		return nil, err
	}
	bs := d.vol.SB.BlockSize()
	if r := len(data) % bs; r != 0 {
		data = append(data, make([]byte, bs-r)...)
	}
	return data, nil
}

func (d *Debugger) doSlotmap(args []string) error {
	args, asJSON := takeFlag(args, "--json")
	asJSON = asJSON || d.JSON
	if err := d.needVolume(); err != nil {
		return err
	}
	data, err := d.systemFileData(ondisk.SysSlotMap, -1)
	if err != nil {
		return fmt.Errorf("reading slotmap system file: %w", err)
	}
	sb := d.vol.SB
	m, err := ondisk.DecodeSlotMap(data, sb.Features.Incompat&ondisk.IncompatExtendedSlotMap != 0, int(sb.MaxSlots))
	if err != nil {
		return fmt.Errorf("reading slotmap system file: %w", err)
	}
	if asJSON {
		j := SlotMapJSON{Extended: m.Extended, MaxSlots: len(m.Slots), Slots: []SlotJSON{}}
		for i, s := range m.Slots {
			if s.Valid {
				j.Slots = append(j.Slots, SlotJSON{i, s.Node})
			}
		}
		return writeJSON(d.out, j)
	}
	d.view().slots(m)
	return nil
}

func (d *Debugger) doHb(args []string) error {
	args, asJSON := takeFlag(args, "--json")
	asJSON = asJSON || d.JSON
	if err := d.needVolume(); err != nil {
		return err
	}
	data, err := d.systemFileData(ondisk.SysHeartbeat, -1)
	if err != nil {
		return fmt.Errorf("reading heartbeat system file: %w", err)
	}
	if asJSON {
		j := HeartbeatJSON{SectorSize: 512, Sectors: []HeartbeatSectorJSON{}}
		for i := 0; i < ondisk.HeartbeatMaxNodes && (i+1)*512 < len(data); i++ {
			s := data[i*512 : (i+1)*512]
			h, err := ondisk.DecodeHeartbeatBlock(s)
			if err != nil || h.Seq == 0 {
				continue
			}
			j.Sectors = append(j.Sectors, HeartbeatSectorJSON{Sector: i, Node: h.Node, Seq: h.Seq, Generation: h.Generation,
				Checksum: h.Cksum, ChecksumOK: ondisk.VerifyHeartbeat(s) == nil, DeadMs: h.DeadMs})
		}
		return writeJSON(d.out, j)
	}
	d.view().heartbeat(data)
	return nil
}

func (d *Debugger) oneBlockArg(args []string, usage usageError) (uint64, error) {
	if err := d.needVolume(); err != nil {
		return 0, err
	}
	if len(args) != 2 {
		return 0, usage
	}
	return d.blockArg(args[1])
}

func (d *Debugger) doExtent(args []string) error {
	blk, err := d.oneBlockArg(args, "extent <block#>")
	if err != nil {
		return err
	}
	eb, raw, err := d.rawExtentBlock(blk)
	if err != nil {
		return err
	}
	v := d.view()
	v.extentBlock(eb, raw)
	v.extentList(&eb.List)
	return nil
}

// groupArg reads the block a group command starts its chain at. Block 0
// would be the end of a chain, which walkGroups takes as nothing to show;
// named by the operator it is a block that holds no group, and is
// reported as such.
func (d *Debugger) groupArg(args []string, usage usageError) (uint64, error) {
	blk, err := d.oneBlockArg(args, usage)
	if err != nil {
		return 0, err
	}
	if blk == 0 {
		if _, _, err := rawBlock(d, 0, "group descriptor", "group descriptor", ondisk.DecodeGroupDesc); err != nil {
			return 0, err
		}
		return 0, errors.New("block 0 holds no group descriptor")
	}
	return blk, nil
}

func (d *Debugger) doGroup(args []string) error {
	blk, err := d.groupArg(args, "group <block#>")
	if err != nil {
		return err
	}
	v := d.view()
	return d.walkGroups(blk, func(g *ondisk.GroupDesc, raw []byte, i int) { v.groupDesc(g, raw, i) })
}

func (d *Debugger) doGrpextents(args []string) error {
	blk, err := d.groupArg(args, "grpextents <block#>")
	if err != nil {
		return err
	}
	v := d.view()
	return d.walkGroups(blk, func(g *ondisk.GroupDesc, _ []byte, _ int) { v.groupExtents(g) })
}

func (d *Debugger) rawDXRoot(blk uint64) (*ondisk.DXRoot, []byte, error) {
	return rawBlock(d, blk, "dx root", "dx dir root block", ondisk.DecodeDXRoot)
}

func (d *Debugger) rawDXLeaf(blk uint64) (*ondisk.DXLeaf, []byte, error) {
	return rawBlock(d, blk, "dx leaf", "dx dir leaf block", ondisk.DecodeDXLeaf)
}

func (d *Debugger) doDxRoot(args []string) error {
	blk, err := d.oneBlockArg(args, "dx_root <blkno>")
	if err != nil {
		return err
	}
	r, raw, err := d.rawDXRoot(blk)
	if err != nil {
		return err
	}
	v := d.view()
	v.dxRoot(r, raw)
	if !r.Inline() {
		return d.traverseExtents(v, &r.List, 0)
	}
	return nil
}

func (d *Debugger) doDxLeaf(args []string) error {
	blk, err := d.oneBlockArg(args, "dx_leaf <blkno>")
	if err != nil {
		return err
	}
	l, raw, err := d.rawDXLeaf(blk)
	if err != nil {
		return err
	}
	d.view().dxLeaf(l, raw)
	return nil
}

func (d *Debugger) doDxDump(args []string) error {
	blk, err := d.inodeArg(args, "dx_dump <filespec>")
	if err != nil {
		return err
	}
	ino, _, err := d.rawInode(blk)
	if err != nil {
		return fmt.Errorf("reading inode %d: %w", blk, err)
	}
	if !ino.IsDir() || ino.DynFeatures&ondisk.DynIndexedDir == 0 {
		return nil
	}
	r, raw, err := d.rawDXRoot(ino.DxRoot)
	if err != nil {
		return err
	}
	v := d.view()
	v.dxRoot(r, raw)
	if r.Inline() {
		v.dxEntryList(&r.Entries, true)
		return nil
	}
	bpc := uint64(d.vol.SB.BlocksPerCluster())
	return extent.Walk(d.vol.Cache, &r.List, fmt.Sprintf("directory %d index", blk), func(rec ondisk.ExtentRec) error {
		for i := uint64(0); i < uint64(rec.Clusters)*bpc; i++ {
			l, lraw, err := d.rawDXLeaf(rec.Blkno + i)
			if err != nil {
				return err
			}
			v.dxLeaf(l, lraw)
		}
		return nil
	})
}

func (d *Debugger) doDxSpace(args []string) error {
	blk, err := d.inodeArg(args, "dx_space <filespec>")
	if err != nil {
		return err
	}
	ino, _, err := d.rawInode(blk)
	if err != nil {
		return fmt.Errorf("reading inode %d: %w", blk, err)
	}
	if ino.DynFeatures&ondisk.DynIndexedDir == 0 {
		fmt.Fprintf(d.out, "Inode %d is not indexed\n", blk)
		return nil
	}
	if !ino.IsDir() {
		return nil
	}
	r, _, err := d.rawDXRoot(ino.DxRoot)
	if err != nil {
		return err
	}
	if r.Inline() {
		return nil // an inline index keeps no free space list
	}
	v := d.view()
	seen := map[uint64]bool{}
	for b := r.FreeBlk; b != 0; {
		if seen[b] || b >= d.maxBlock {
			return d.vol.Cache.Annotate(&ondisk.CorruptError{Struct: "directory block", Field: "db_free_next", Msg: "the free space list loops or leaves the volume"}, b)
		}
		seen[b] = true
		buf, err := d.vol.Cache.Get(b)
		if err != nil {
			return err
		}
		if !ondisk.HasDirTrailerSignature(buf.Data) {
			return d.vol.Cache.Annotate(&ondisk.CorruptError{Struct: "directory block", Field: "db_signature", Msg: "a block on the free space list has no trailer"}, b)
		}
		tr, err := ondisk.DecodeDirTrailer(buf.Data)
		if err != nil {
			return d.vol.Cache.Annotate(err, b)
		}
		off := ondisk.TrailerOffset(len(buf.Data))
		v.f("\tTrailer Block: %d   Inode: %d   Len: %d\n", tr.Blkno, tr.ParentDinode, ondisk.DirTrailerSize)
		v.f("\tLargest Hole: %d   Next Block: %d\n", tr.FreeRecLen, tr.FreeNext)
		v.blockCheck(buf.Data, off+ondisk.DirTrailerCheckOffset)
		b = tr.FreeNext
	}
	return nil
}

func (d *Debugger) doDirblocks(args []string) error {
	blk, err := d.inodeArg(args, "dirblocks <filespec>")
	if err != nil {
		return err
	}
	dir, err := d.vol.FS.Dir(blk)
	if err != nil {
		return fmt.Errorf("checking directory at block %d: %w", blk, err)
	}
	if dir.Inode.Inline != nil {
		return fmt.Errorf("directory %d keeps its entries inline in the inode: it has no directory blocks (use ls)", blk)
	}
	v := d.view()
	n := dir.NumBlocks()
	for i := uint64(0); i < n; i++ {
		phys, err := dir.BlockAt(i)
		if err != nil {
			return err
		}
		b, err := d.vol.Cache.Get(phys)
		if err != nil {
			return fmt.Errorf("reading dirblock %d on inode %d: %w", phys, blk, err)
		}
		v.f("\tDirblock: %d\n", phys)
		v.dirBlock(b.Data)
	}
	return nil
}

func (d *Debugger) doFrag(args []string) error {
	blk, err := d.inodeArg(args, "frag <filespec>")
	if err != nil {
		return err
	}
	ino, _, err := d.rawInode(blk)
	if err != nil {
		return fmt.Errorf("reading inode %d: %w", blk, err)
	}
	extents := uint32(0)
	if ino.DynFeatures&ondisk.DynInlineData == 0 && ino.Extents != nil {
		if extents, err = d.countExtents(ino.Extents, 0); err != nil {
			return fmt.Errorf("traversing inode at block %d: %w", blk, err)
		}
	}
	d.view().frag(ino.Blkno, ino.Clusters, extents, d.vol.SB.ClusterSize())
	return nil
}

// countExtents counts the leaf records under el as debugfs's frag does:
// every record but a trailing empty one counts.
func (d *Debugger) countExtents(el *ondisk.ExtentList, depth int) (uint32, error) {
	if depth > ondisk.MaxExtentTreeDepth {
		return 0, errors.New("extent tree deeper than any valid tree")
	}
	n := uint32(0)
	for i, r := range el.Recs {
		if r.Clusters == 0 && i == len(el.Recs)-1 {
			break
		}
		if el.TreeDepth == 0 {
			n++
			continue
		}
		eb, _, err := d.rawExtentBlock(r.Blkno)
		if err != nil {
			return 0, err
		}
		c, err := d.countExtents(&eb.List, depth+1)
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

func (d *Debugger) doBmap(args []string) error {
	if err := d.needVolume(); err != nil {
		return err
	}
	if len(args) != 3 {
		return usageError("bmap <filespec> <logical_blk>")
	}
	blk, err := d.resolve(args[1])
	if err != nil {
		return err
	}
	lblk, err := strconv.ParseUint(args[2], 0, 64)
	if err != nil {
		return fmt.Errorf("%q is not a block number", args[2])
	}
	ino, _, err := d.rawInode(blk)
	if err != nil {
		return fmt.Errorf("reading inode %d: %w", blk, err)
	}
	phys := uint64(0)
	bits := d.vol.SB.BlockSizeBits
	if ino.Extents != nil && ino.Flags&(ondisk.InodeLocalAlloc|ondisk.InodeChain|ondisk.InodeDealloc) == 0 &&
		lblk <= ino.Size>>bits && lblk>>(d.vol.SB.ClusterSizeBits-bits) <= uint64(^uint32(0)) {
		bpc := uint64(d.vol.SB.BlocksPerCluster())
		m, err := extent.Lookup(d.vol.Cache, ino.Extents, uint32(lblk/bpc), fmt.Sprintf("inode %d", blk))
		if err != nil {
			return err
		}
		if m.Found {
			phys = m.Rec.Blkno + lblk - uint64(m.Rec.Cpos)*bpc
		}
	}
	fmt.Fprintf(d.out, "\t%d\n", phys)
	return nil
}

func (d *Debugger) doEncode(args []string) error {
	blk, err := d.inodeArg(args, "encode <filespec>")
	if err != nil {
		return err
	}
	n := ondisk.LockName{Type: ondisk.LockMeta, Blkno: blk}
	if blk == ondisk.SuperBlockBlkno {
		n.Type = ondisk.LockSuper
	} else {
		ino, _, err := d.rawInode(blk)
		if err != nil {
			return fmt.Errorf("reading inode %d: %w", blk, err)
		}
		if ino.Flags&ondisk.InodeSystem != 0 {
			n.Generation = ino.Generation
		}
	}
	s, err := n.Encode()
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\t%s \n", s)
	return nil
}

func (d *Debugger) doDecode(args []string) error {
	if len(args) < 2 {
		return usageError("decode <lockname#> ...")
	}
	for _, a := range args[1:] {
		blk, err := parseBlockArg(a)
		if err != nil || !strings.HasPrefix(a, "<") {
			return fmt.Errorf("%q is not a lock name in angle brackets (<M000000...>)", a)
		}
		fmt.Fprintf(d.out, "\t%s\t%d\n", a, blk)
	}
	return nil
}

// DecodeLockNames prints what each lock name means, like debugfs.ocfs2 -d.
// Names that do not parse are reported in the returned error, after the
// others are printed.
func DecodeLockNames(w io.Writer, names []string) error {
	var bad []string
	for _, s := range names {
		n, err := parseLockArg(s)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		fmt.Fprintf(w, "Lockres:    %s\n", s)
		fmt.Fprintf(w, "Type:       %s\n", n.Type.Name())
		if n.Blkno != 0 {
			fmt.Fprintf(w, "Block:      %d\n", n.Blkno)
		}
		if n.Generation != 0 {
			fmt.Fprintf(w, "Generation: 0x%08x\n", n.Generation)
		}
		if n.Parent != 0 {
			fmt.Fprintf(w, "Parent:\t    %d\n", n.Parent)
		}
		fmt.Fprintln(w)
	}
	if bad != nil {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// EncodeLockName is debugfs.ocfs2 -e: the lock name of a type, a block and
// a generation (or, for dentry locks, the parent directory), printed in
// its printable form.
func EncodeLockName(typ, blkno, extra string) (string, error) {
	if len(typ) != 1 || !ondisk.LockType(typ[0]).Valid() {
		return "", fmt.Errorf("%q is not a lock type (one of M, D, S, R, W, N, O, F, Q, Y, P, T, I)", typ)
	}
	blk, err := strconv.ParseUint(blkno, 0, 64)
	if err != nil {
		return "", fmt.Errorf("%q is not a block number", blkno)
	}
	x, err := strconv.ParseUint(extra, 0, 64)
	if err != nil {
		return "", fmt.Errorf("%q is not a generation or parent block number", extra)
	}
	n := ondisk.LockName{Type: ondisk.LockType(typ[0]), Blkno: blk}
	if n.Type == ondisk.LockDentry {
		n.Parent = x
		return n.String(), nil
	}
	if x > uint64(^uint32(0)) {
		return "", fmt.Errorf("generation %s does not fit in 32 bits", extra)
	}
	n.Generation = uint32(x)
	return n.Encode()
}

func (d *Debugger) doXattr(args []string) error {
	verbose := false
	if len(args) > 1 && args[1] == "-v" {
		verbose = true
		args = append(args[:1:1], args[2:]...)
	}
	blk, err := d.inodeArg(args, "xattr [-v] <filespec>")
	if err != nil {
		return err
	}
	ino, raw, err := d.rawInode(blk)
	if err != nil {
		return fmt.Errorf("reading inode %d: %w", blk, err)
	}
	if ino.DynFeatures&ondisk.DynHasXattr == 0 {
		return nil
	}
	v := d.view()
	total := uint64(0)
	if ino.DynFeatures&ondisk.DynInlineXattr != 0 {
		area, err := ondisk.InodeInlineXattrArea(raw, ino.XattrInlineSize)
		var h *ondisk.XattrHeader
		if err == nil {
			h, err = ondisk.DecodeXattrHeader(area, "inline xattr")
		}
		if err != nil {
			return fmt.Errorf("traversing inode at block %d: %w", blk, d.vol.Cache.Annotate(err, blk))
		}
		v.f("\tExtended Attributes inline: %d\n", len(h.Entries))
		if verbose {
			v.xattrHeader(h)
		}
		total += uint64(len(h.Entries))
	} else {
		v.f("\tExtended Attributes inline: 0\n")
	}
	if ino.XattrLoc != 0 {
		n, err := d.showXattrBlock(v, ino, verbose)
		if err != nil {
			return fmt.Errorf("traversing inode at block %d: %w", blk, err)
		}
		total += n
	}
	v.f("\n\tExtended attributes in total: %d\n", total)
	return nil
}

func (d *Debugger) showXattrBlock(v *view, ino *ondisk.Dinode, verbose bool) (uint64, error) {
	if ino.XattrLoc >= d.maxBlock {
		return 0, fmt.Errorf("xattr block %d is beyond the end of the volume", ino.XattrLoc)
	}
	b, err := d.vol.Cache.Get(ino.XattrLoc)
	if err != nil {
		return 0, err
	}
	xb, err := ondisk.DecodeXattrBlock(b.Data)
	if err != nil {
		return 0, d.vol.Cache.Annotate(err, ino.XattrLoc)
	}
	if !xb.Indexed() {
		v.f("\tExtended Attributes in block #%d: %d\n", ino.XattrLoc, len(xb.Header.Entries))
		if verbose {
			v.xattrHeader(xb.Header)
		}
		return uint64(len(xb.Header.Entries)), nil
	}
	el := &xb.Tree.List
	if len(el.Recs) == 0 {
		return 0, nil
	}
	v.f("\tExtended Attributes extent tree in index block #%d  Depth: %d  Records: %d\n", ino.XattrLoc, el.TreeDepth, len(el.Recs))
	if verbose {
		v.extentList(el)
	}
	var recs []ondisk.ExtentRec
	if err := extent.Walk(d.vol.Cache, el, fmt.Sprintf("inode %d xattr tree", ino.Blkno), func(r ondisk.ExtentRec) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		return 0, err
	}
	xi, err := d.vol.FS.Xattrs(ino.Blkno)
	if err != nil {
		return 0, err
	}
	bs := d.vol.SB.BlockSize()
	perBucket := uint64(ondisk.XattrBucketBlocks(bs))
	bucketsPerCluster := uint64(d.vol.SB.ClusterSize()) / ondisk.XattrBucketSize
	total := uint64(0)
	// debugfs visits the records from the highest name hash down.
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		v.f("\tExtended Attributes extent record start at #%d  Has clusters: %d", r.Blkno, r.Clusters)
		n := uint64(r.Clusters) * bucketsPerCluster
		for j := uint64(0); j < n; j++ {
			h, err := xi.Bucket(r.Blkno + j*perBucket)
			if err != nil {
				return 0, err
			}
			if j == 0 {
				n = min(uint64(h.NumBuckets), uint64(r.Clusters)*bucketsPerCluster)
				v.f("  Has buckets: %d\n", h.NumBuckets)
			}
			v.f("\t\tExtended Attributes in bucket #%d: %d\n", j, len(h.Entries))
			if verbose {
				v.xattrHeader(h)
			}
			total += uint64(len(h.Entries))
		}
	}
	return total, nil
}

func (d *Debugger) doRefcount(args []string) error {
	extentTree := false
	if len(args) > 1 && args[1] == "-e" {
		extentTree = true
		args = append(args[:1:1], args[2:]...)
	}
	blk, err := d.inodeArg(args, "refcount [-e] <filespec>")
	if err != nil {
		return err
	}
	if ino, _, err := d.rawInode(blk); err == nil && ino.Signature == ondisk.InodeSignature {
		if ino.DynFeatures&ondisk.DynHasRefcount == 0 {
			return fmt.Errorf("inode %d does not have a refcount tree", blk)
		}
		blk = ino.RefcountLoc
	}
	rb, raw, err := d.rawRefcount(blk)
	if err != nil {
		return err
	}
	v := d.view()
	v.refcountBlock(rb, raw)
	return d.walkRefcount(v, rb, extentTree, 0)
}

func (d *Debugger) rawRefcount(blk uint64) (*ondisk.RefcountBlock, []byte, error) {
	return rawBlock(d, blk, "refcount block", "refcount block", ondisk.DecodeRefcountBlock)
}

func (d *Debugger) walkRefcount(v *view, rb *ondisk.RefcountBlock, extentTree bool, depth int) error {
	if !rb.Tree() {
		v.refcountRecords(rb)
		return nil
	}
	if depth > ondisk.MaxExtentTreeDepth {
		return errors.New("refcount tree deeper than any valid tree")
	}
	if extentTree {
		v.f("\tExtent tree in refcount block %d\n\tDepth: %d  Records: %d\n", rb.Blkno, rb.List.TreeDepth, len(rb.List.Recs))
		if err := d.traverseExtents(v, &rb.List, 0); err != nil {
			return err
		}
	}
	var leaves []ondisk.ExtentRec
	if err := extent.Walk(d.vol.Cache, &rb.List, fmt.Sprintf("refcount block %d", rb.Blkno), func(r ondisk.ExtentRec) error {
		leaves = append(leaves, r)
		return nil
	}); err != nil {
		return err
	}
	for i := len(leaves) - 1; i >= 0; i-- {
		leaf, raw, err := d.rawRefcount(leaves[i].Blkno)
		if err != nil {
			return err
		}
		v.refcountBlock(leaf, raw)
		if err := d.walkRefcount(v, leaf, extentTree, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (d *Debugger) doLogdump(args []string) error {
	if err := d.needVolume(); err != nil {
		return err
	}
	if len(args) > 1 && strings.HasPrefix(args[1], "-T") {
		args = append(args[:1:1], args[2:]...)
	}
	if len(args) != 2 {
		return usageError("logdump [-T] <slot#>")
	}
	slot, err := strconv.ParseUint(args[1], 0, 16)
	if err != nil || slot >= uint64(d.vol.SB.MaxSlots) {
		return fmt.Errorf("invalid node slot number %q: the volume has slots 0..%d", args[1], d.vol.SB.MaxSlots-1)
	}
	blk, err := d.vol.SystemFile(ondisk.SysJournal, int(slot))
	if err != nil {
		return err
	}
	if err := d.logdump(d.view(), blk); err != nil {
		return fmt.Errorf("reading journal: %w", err)
	}
	return nil
}

func (d *Debugger) doStatSysdir(args []string) error {
	if err := d.needVolume(); err != nil {
		return err
	}
	v := d.view()
	b, err := d.vol.Cache.Get(d.vol.SuperBlkno)
	if err != nil {
		return err
	}
	v.f("Device: %s\n", d.device)
	v.f("  superblock\n")
	v.superBlock(d.vol.SB)
	v.inode(d.vol.Super, b.Data)
	sysdir, err := d.vol.FS.Dir(d.vol.SB.SystemDirBlkno)
	if err != nil {
		return err
	}
	return sysdir.ForEach(func(e ondisk.DirEntry) error {
		if e.Name == ".." {
			return nil
		}
		ino, raw, err := d.rawInode(e.Inode)
		if err != nil {
			return err
		}
		if e.Name == "." {
			v.f("\n  //\n")
		} else {
			v.f("\n  //%s\n", e.Name)
		}
		v.inode(ino, raw)
		if err := d.showID2(v, ino, raw); err != nil {
			return fmt.Errorf("traversing inode at block %d: %w", e.Inode, err)
		}
		if ino.IsDir() {
			dir, err := d.vol.FS.Dir(e.Inode)
			if err != nil {
				return err
			}
			if err := dir.ForEach(func(c ondisk.DirEntry) error {
				ci, _, err := d.rawInode(c.Inode)
				if err != nil {
					return err
				}
				v.dirEntry(c, true, ci)
				return nil
			}); err != nil {
				return err
			}
		}
		if e.Name == "slot_map" {
			data, err := d.systemFileData(ondisk.SysSlotMap, -1)
			if err != nil {
				return err
			}
			m, err := ondisk.DecodeSlotMap(data, d.vol.SB.Features.Incompat&ondisk.IncompatExtendedSlotMap != 0, int(d.vol.SB.MaxSlots))
			if err != nil {
				return err
			}
			v.slots(m)
		}
		return nil
	})
}
