package fsck

import (
	"bytes"
	"fmt"
	"sort"

	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// Pass 2 (fsck.ocfs2's pass2.c) reads every directory block pass 1 found,
// in block order, and checks each entry: the first two must be "." and
// "..", lengths must chain the block, names must be non-empty and
// without '/', inode numbers must be in range and allocated, file types
// must match the inodes, a directory may be named only once, and names
// must be unique within the directory. It counts the references each
// inode gets, for pass 4, and records where each ".." points, for pass 3.

// dxIndex is what a directory's name index holds: every (hash, block)
// entry, and where it sits.
type dxIndex struct {
	entries map[dxKey]uint64 // -> block holding the entry (root or leaf)
	broken  error
}

type dxKey struct {
	major, minor uint32
	blk          uint64
}

// pass2Dir is the state of the directory pass 2 is in.
type pass2Dir struct {
	ino      uint64
	di       dinode
	names    map[string]bool
	nameByte int
	indexed  bool
	dx       *dxIndex
	skip     bool
}

func (c *checker) pass2() error {
	c.printf("Pass 2: Checking directory entries\n")
	sort.SliceStable(c.dirBlocks, func(i, j int) bool { return c.dirBlocks[i].blkno < c.dirBlocks[j].blkno })
	if dp := c.dirParents[c.sb.RootBlkno]; dp != nil {
		dp.dirent = c.sb.RootBlkno
	}
	if dp := c.dirParents[c.sb.SystemDirBlkno]; dp != nil {
		dp.dirent = c.sb.SystemDirBlkno
	}
	bar := c.newProgress(int64(len(c.dirBlocks)), "Scanning directories")
	defer bar.done()
	var cur *pass2Dir
	for i := range c.dirBlocks {
		dbe := &c.dirBlocks[i]
		abort, err := c.pass2Block(dbe, &cur)
		if err != nil {
			return err
		}
		bar.add(1)
		if abort {
			break
		}
	}
	c.finishDirIndexes()
	return nil
}

// inodeInUse is o2fsck_test_inode_allocated: an inode no allocator covers
// counts as allocated, with a warning, as in fsck.ocfs2.
func (c *checker) inodeInUse(blk uint64) bool {
	a, ok := c.inodeAllocated(blk)
	if !ok {
		c.fail("while testing if inode %d is allocated: no inode allocator group covers it.  Continuing as though it is.", blk)
		return true
	}
	return a
}

func (c *checker) pass2Block(dbe *dirBlock, curp **pass2Dir) (abort bool, err error) {
	if !c.inodeInUse(dbe.ino) {
		c.printf("Directory block %d belongs to directory inode %d which isn't allocated.  Ignoring this block.", dbe.blkno, dbe.ino)
		return false, nil
	}
	cur := *curp
	if cur == nil || cur.ino != dbe.ino {
		cur = &pass2Dir{ino: dbe.ino, names: map[string]bool{}}
		*curp = cur
		b, err := c.readBlock(dbe.ino)
		if err == nil && !hasSig(b, ondisk.InodeSignature) {
			err = fmt.Errorf("bad inode signature")
		}
		if err == nil && c.metaECC {
			if _, e := ondisk.VerifyBlockCheck(b, ondisk.DinodeCheckOffset, "dinode"); e != nil {
				if c.p.ask(BadCRC32, "Directory inode %d has bad CRC32. Recalculate CRC32 and write inode block?", dbe.ino) {
					c.writeInode(dbe.ino, dinode(b))
				}
			}
		}
		if err != nil {
			c.fail("while reading dir inode %d: %v", dbe.ino, err)
			return true, nil
		}
		cur.di = dinode(b)
		cur.indexed = !cur.di.inline() && cur.di.dyn()&ondisk.DynIndexedDir != 0 && c.sb.Features.Incompat&ondisk.IncompatIndexedDirs != 0
		c.verbosef("dir inode %d i_size %d\n", dbe.ino, cur.di.size())
	}
	di := cur.di
	changed := false
	if dbe.count == 0 && !cur.skip && c.sb.Features.Incompat&ondisk.IncompatIndexedDirs != 0 && !di.inline() && di.dyn()&ondisk.DynIndexedDir == 0 {
		if c.p.ask(DxTreeMissing, "Directory %d is missing index. Rebuild?", dbe.ino) {
			c.wantReindex(dbe.ino, true)
		}
	}
	var buf []byte
	var offset, end int
	var blkToWrite uint64
	hasTrailer := false
	if di.inline() {
		if dbe.ino != dbe.blkno {
			return false, nil
		}
		buf = di
		offset = diID2 + 8
		end = offset + int(get16(di, diID2))
		if end > c.bs {
			end = c.bs
		}
		blkToWrite = dbe.ino
	} else {
		if dbe.count >= (di.size()+uint64(c.bs)-1)/uint64(c.bs) {
			return false, nil
		}
		b, err := c.readBlock(dbe.blkno)
		if err != nil {
			c.fail("while reading dir block %d: %v", dbe.blkno, err)
			return false, nil
		}
		hasTrailer = ondisk.DirHasTrailer(c.metaECC, false, cur.indexed)
		if hasTrailer {
			if c.metaECC {
				if _, err := ondisk.VerifyBlockCheck(b, ondisk.DirBlockCheckOffset(c.bs), "directory block"); err != nil {
					c.fail("while reading dir block %d: %v", dbe.blkno, errBadCRC)
					return false, nil
				}
			}
			if !ondisk.HasDirTrailerSignature(b) {
				c.fail("while reading dir block %d: bad directory block trailer signature", dbe.blkno)
				return false, nil
			}
			end = ondisk.TrailerOffset(c.bs)
		} else {
			end = c.bs
		}
		buf = b
		blkToWrite = dbe.blkno
	}
	if cur.indexed && cur.dx == nil {
		cur.dx = c.loadDxIndex(dbe.ino, di)
		if cur.dx.broken != nil && c.p.ask(DxLookupFailed, "Directory inode %d has invalid index. Rebuild index tree?", dbe.ino) {
			c.wantReindex(dbe.ino, true)
		}
	}
	var prev dirent
	for offset < end {
		left := end - offset
		if left < direntHeader {
			if !c.p.ask(DirentLength, "Directory inode %d corrupted in logical block %d physical block %d offset %d. Attempt to repair this block's directory entries?", dbe.ino, dbe.count, dbe.blkno, offset) {
				break
			}
			// a sliver too small for an entry: fold it into the previous one
			if prev != nil {
				prev.setRecLen(prev.recLen() + left)
			}
			changed = true
			break
		}
		de := dirent(buf[offset:end])
		if corruptDirentLengths(de, left) {
			if !c.p.ask(DirentLength, "Directory inode %d corrupted in logical block %d physical block %d offset %d. Attempt to repair this block's directory entries?", dbe.ino, dbe.count, dbe.blkno, offset) {
				break
			}
			fixDirentLengths(de, left)
			changed = true
			continue
		}
		if !c.checkDirent(cur, dbe, de, offset, &changed) {
			break
		}
		prev = de
		offset += de.recLen()
	}
	if hasTrailer {
		c.fixDirTrailer(dbe, buf[ondisk.TrailerOffset(c.bs):], &changed)
	}
	if changed && !di.inline() && c.sb.Features.Incompat&ondisk.IncompatIndexedDirs != 0 {
		c.wantReindex(dbe.ino, false)
	}
	if changed {
		var err error
		if di.inline() {
			err = c.writeBlock(blkToWrite, buf, ondisk.DinodeCheckOffset)
		} else {
			if hasTrailer {
				if n, e := ondisk.LargestFreeSpace(buf[:ondisk.TrailerOffset(c.bs)]); e == nil {
					put16(buf, ondisk.TrailerOffset(c.bs)+trFreeRec, uint16(n))
				}
				err = c.writeBlock(blkToWrite, buf, ondisk.DirBlockCheckOffset(c.bs))
			} else {
				err = c.writeBlock(blkToWrite, buf, -1)
			}
		}
		if err != nil {
			c.fail("while writing dir block %d: %v", dbe.blkno, err)
			c.sawError = true
		}
	}
	if c.sb.Features.Incompat&ondisk.IncompatIndexedDirs == 0 && di.dyn()&ondisk.DynIndexedDir != 0 && dbe.count == 0 {
		if c.p.ask(IVDxTree, "A directory index was found on inode %d but this filesystem doesnot support directory indexes. Truncate the invalid index?", dbe.ino) {
			c.printf("** o2go fsck does not truncate directory indexes; inode %d keeps its index **\n", dbe.ino)
			c.p.found[len(c.p.found)-1].Fixed = false
		}
	}
	return false, nil
}

// corruptDirentLengths is fsck.ocfs2's test for lengths it cannot follow.
func corruptDirentLengths(de dirent, left int) bool {
	rl := de.recLen()
	return !(rl >= ondisk.RecLen(1) && rl%4 == 0 && rl <= left && ondisk.RecLen(de.nameLen()) <= rl && !leavesPartial(rl, left))
}

func leavesPartial(recLen, left int) bool {
	left -= recLen
	return left > 0 && left < direntHeader
}

// fixDirentLengths repairs the lengths of an entry as far as they can be
// trusted (fix_dirent_lengths); left is the room from the entry to the
// end of the area.
func fixDirentLengths(de dirent, left int) {
	rl, nl := de.recLen(), de.nameLen()
	switch {
	case rl < direntHeader || rl > left || nl > left:
		// wipe: nothing can be trusted
		de.setRecLen(left)
		de.setNameLen(0)
		de.setInode(0)
		de.setFileType(0)
		left = 0
	case rl == direntHeader:
		// an entry without room for a name: drop it, shifting the rest
		copy(de, de[rl:left])
		clear(de[left-rl : left])
		left -= rl
	case ondisk.RecLen(nl) != rl && ondisk.RecLen(nl) == ondisk.RecLen(rl):
		de.setRecLen(ondisk.RecLen(nl))
		left -= de.recLen()
	case rl%4 == 0 && !leavesPartial(rl, left):
		left -= rl
		de.setNameLen(0)
		de.setInode(0)
		de.setFileType(0)
	default:
		de.setRecLen(left)
		de.setNameLen(0)
		de.setInode(0)
		de.setFileType(0)
		left = 0
	}
	if leavesPartial(de.recLen(), left+de.recLen()) {
		de.setRecLen(de.recLen() + left)
	}
}

// expectedDots says whether the entry at offset must be "." (1) or ".." (2).
func expectedDots(dbe *dirBlock, offset int) int {
	if dbe.count != 0 {
		return 0
	}
	inlineOff := diID2 + 8
	inline := dbe.ino == dbe.blkno
	switch {
	case offset == 0 || (inline && offset == inlineOff):
		return 1
	case offset == ondisk.RecLen(1) || (inline && offset == inlineOff+ondisk.RecLen(1)):
		return 2
	}
	return 0
}

func hasDots(de dirent, n int) bool {
	if n < 1 || n > 2 || de.nameLen() != n {
		return false
	}
	nm := de.name()
	if len(nm) < n {
		return false
	}
	if n == 2 && nm[1] != '.' {
		return false
	}
	return nm[0] == '.'
}

// checkDirent runs the per-entry checks of pass 2 in fsck.ocfs2's order.
// It returns false when the rest of the block must be skipped (an entry
// whose inode cannot be read, as fsck.ocfs2 gives up on the block).
func (c *checker) checkDirent(cur *pass2Dir, dbe *dirBlock, de dirent, offset int, changed *bool) bool {
	c.fixDirentDots(dbe, de, offset, changed)
	if de.inode() == 0 {
		return true
	}
	c.fixDirentName(de, changed)
	if de.inode() == 0 {
		return true
	}
	nm := de.name()
	if c.outOfRange(de.inode()) {
		if c.p.ask(DirentInodeRange, "Directory entry '%s' refers to inode number %d which is out of range, clear the entry?", nm, de.inode()) {
			de.setInode(0)
			*changed = true
			return true
		}
	} else if !c.inodeInUse(de.inode()) && c.p.ask(DirentInodeFree, "Directory entry '%s' refers to inode number %d which isn't allocated, clear the entry?", nm, de.inode()) {
		de.setInode(0)
		*changed = true
		return true
	}
	if de.inode() == 0 {
		return true
	}
	if !c.fixDirentType(de, changed) {
		return false
	}
	if de.inode() == 0 {
		return true
	}
	c.fixDirentLinkage(dbe, de, offset, changed)
	if de.inode() == 0 {
		return true
	}
	c.fixDirentDups(cur, de, changed)
	if de.inode() == 0 {
		return true
	}
	if cur.indexed && cur.dx != nil && cur.dx.broken == nil && !hasDots(de, 1) && !hasDots(de, 2) {
		major, minor := ondisk.DXHash(de.name(), c.sb.DxSeed, ondisk.SignedChar)
		_, ok := cur.dx.entries[dxKey{major, minor, dbe.blkno}]
		if !ok {
			// names with high bytes may have been indexed by a kernel
			// that hashes chars unsigned
			major, minor = ondisk.DXHash(de.name(), c.sb.DxSeed, ondisk.UnsignedChar)
			_, ok = cur.dx.entries[dxKey{major, minor, dbe.blkno}]
		}
		if !ok && c.p.ask(DxLookupFailed, "Directory inode %d is missing an index entry for the file \"%s\" (inode # %d)\n. Repair this by rebuilding the directory index?", dbe.ino, de.name(), de.inode()) {
			c.wantReindex(dbe.ino, true)
		}
	}
	c.refs.delta(de.inode(), 1)
	return true
}

// fixDirentDots checks the "." and ".." entries (fix_dirent_dots).
func (c *checker) fixDirentDots(dbe *dirBlock, de dirent, offset int, changed *bool) {
	expect := expectedDots(dbe, offset)
	changedLen := false
	if expect == 0 {
		if de.inode() == 0 || (!hasDots(de, 1) && !hasDots(de, 2)) {
			return
		}
		if c.p.ask(DirentDottyDup, "Duplicate '%s' directory entry found, remove it?", de.name()) {
			de.setInode(0)
			*changed = true
			return
		}
	}
	if !hasDots(de, expect) {
		which := "second"
		if expect == 1 {
			which = "first"
		}
		if c.p.ask(DirentNotDotty, "The %s directory entry in directory inode %d is '%s' instead of '%s'.  Clobber the current name with the expected dot name?", which, dbe.ino, de.name(), ".."[:expect]) {
			room := de.recLen() - direntHeader
			if room >= expect {
				de.setNameLen(expect)
				for i := 0; i < expect; i++ {
					de[direntHeader+i] = '.'
				}
				de.setFileType(ondisk.FileTypeDir)
				changedLen = true
				*changed = true
			}
		}
	}
	if expect == 2 {
		if dp := c.dirParents[dbe.ino]; dp != nil {
			dp.dotDot = de.inode()
		} else {
			c.fail("no dir parents for '..' entry for inode %d", dbe.ino)
		}
		return
	}
	if de.inode() != dbe.ino && c.p.ask(DirentDotInode, "The '.' entry in directory inode %d points to inode %d instead of itself.  Fix the '.' entry?", dbe.ino, de.inode()) {
		de.setInode(dbe.ino)
		*changed = true
	}
	want := ondisk.RecLen(de.nameLen())
	if uint16(want-de.recLen()) != 0 && (changedLen || c.p.ask(DirentDotExcess, "The '.' entry in directory inode %d is too long.  Try to create another directory entry from the excess?", dbe.ino)) {
		if rest := de.recLen() - want; rest >= ondisk.RecLen(1) {
			de.setRecLen(want)
			next := dirent(de[want:])
			next.setInode(0)
			next.setNameLen(0)
			next.setFileType(0)
			next.setRecLen(rest)
			*changed = true
		}
	}
}

// fixDirentName offers to drop a nameless entry and to replace leading
// '/' and NUL characters (fix_dirent_name).
func (c *checker) fixDirentName(de dirent, changed *bool) {
	if de.nameLen() == 0 && c.p.ask(DirentZero, "Directory entry has a zero-length name, clear it?") {
		de.setInode(0)
		*changed = true
	}
	nm := de.name()
	fix := false
	for i := 0; i < len(nm) && (nm[i] == '/' || nm[i] == 0); i++ {
		if !fix {
			fix = c.p.ask(DirentNameChars, "Directory entry '%s' contains invalid characters, replace them with dots?", nm)
			if !fix {
				break
			}
		}
		nm[i] = '.'
		*changed = true
	}
}

var fileTypeNames = []string{"OCFS2_FT_UNKNOWN", "OCFS2_FT_REG_FILE", "OCFS2_FT_DIR", "OCFS2_FT_CHRDEV",
	"OCFS2_FT_BLKDEV", "OCFS2_FT_FIFO", "OCFS2_FT_SOCK", "OCFS2_FT_SYMLINK"}

func fileTypeName(t uint8) string {
	if int(t) < len(fileTypeNames) {
		return fileTypeNames[t]
	}
	return "(unknown)"
}

// fixDirentType makes the entry's type follow its inode (fix_dirent_filetype);
// false when the inode could not be read.
func (c *checker) fixDirentType(de dirent, changed *bool) bool {
	var want uint8
	switch {
	case c.dirInodes.test(de.inode()):
		want = ondisk.FileTypeDir
	case c.regInodes.test(de.inode()):
		want = ondisk.FileTypeReg
	default:
		b, err := c.readInode(de.inode())
		if err != nil {
			c.fail("while trying to verify the file type of directory entry %s: %v", de.name(), err)
			return false
		}
		want = ondisk.FileTypeOfMode(dinode(b).mode())
	}
	if de.fileType() != want && c.p.ask(DirentType, "Directory entry %s contains file type %s (%d) but its inode %d leads to type %s (%d).  Reset the entry's type to match the inode's?", de.name(), fileTypeName(de.fileType()), de.fileType(), de.inode(), fileTypeName(want), want) {
		de.setFileType(want)
		*changed = true
	}
	return true
}

// fixDirentLinkage allows one entry per directory (fix_dirent_linkage).
func (c *checker) fixDirentLinkage(dbe *dirBlock, de dirent, offset int, changed *bool) {
	if expectedDots(dbe, offset) != 0 || !c.dirInodes.test(de.inode()) {
		return
	}
	dp := c.dirParents[de.inode()]
	if dp == nil {
		c.fail("no dir parents recorded for inode %d", de.inode())
		return
	}
	if dp.dirent == 0 {
		dp.dirent = dbe.ino
		return
	}
	if c.p.ask(DirParentDup, "Directory inode %d is not the first to claim to be the parent of subdir '%s' (inode %d). Clear this directory entry and leave the previous parent of the subdir's inode intact?", dbe.ino, de.name(), de.inode()) {
		de.setInode(0)
		*changed = true
	}
}

// fixDirentDups renames a name seen before in the directory (fix_dirent_dups).
func (c *checker) fixDirentDups(cur *pass2Dir, de dirent, changed *bool) {
	if cur.nameByte > 4<<20 {
		cur.names, cur.nameByte = map[string]bool{}, 0
	}
	name := string(de.name())
	if !cur.names[name] {
		cur.names[name] = true
		cur.nameByte += len(name)
		return
	}
	room := de.recLen() - direntHeader
	nn := []byte(name)
	unique := false
	for i := len(nn); !unique && i < room && i < 255; i++ {
		nn = append(nn, '_')
		unique = !cur.names[string(nn)]
	}
	if !unique {
		nn = []byte(name)
		for i := len(nn) - 1; !unique && i >= 0; i-- {
			nn[i] = '_'
			unique = !cur.names[string(nn)]
		}
	}
	if !unique {
		c.printf("Directory inode %d contains a duplicate occurrence of the file name '%s' but fsck was unable to come up with a unique name so this duplicate name will not be dealt with.\n.", cur.ino, name)
		return
	}
	if !c.p.ask(DirentDuplicate, "Directory inode %d contains a duplicate occurrence of the file name '%s'.  Replace this duplicate name with '%s'?", cur.ino, name, nn) {
		return
	}
	cur.names[string(nn)] = true
	de.setNameLen(len(nn))
	copy(de[direntHeader:], nn)
	*changed = true
}

// fixDirTrailer checks a directory block trailer's dirent-compatible
// fields and back pointers (fix_dir_trailer).
func (c *checker) fixDirTrailer(dbe *dirBlock, tr []byte, changed *bool) {
	if get64(tr, trInode) != 0 && c.p.ask(DirTrailerInode, "Directory block trailer for logical block %d physcal block %d in directory inode %d has a non-zero inode number.  Clear it?", dbe.count, dbe.blkno, dbe.ino) {
		put64(tr, trInode, 0)
		*changed = true
	}
	if tr[trNameLen] != 0 && c.p.ask(DirTrailerNameLen, "Directory block trailer for logical block %d physcal block %d in directory inode %d has a non-zero name_len.  Clear it?", dbe.count, dbe.blkno, dbe.ino) {
		tr[trNameLen] = 0
		*changed = true
	}
	if get16(tr, trRecLen) != ondisk.DirTrailerSize && c.p.ask(DirTrailerRecLen, "Directory block trailer for logical block %d physcal block %d in directory inode %d has an invalid rec_len.  Fix it?", dbe.count, dbe.blkno, dbe.ino) {
		put16(tr, trRecLen, ondisk.DirTrailerSize)
		*changed = true
	}
	if get64(tr, trBlkno) != dbe.blkno && c.p.ask(DirTrailerBlkno, "Directory block trailer for logical block %d physcal block %d in directory inode %d has an invalid db_blkno of %d.  Fix it?", dbe.count, dbe.blkno, dbe.ino, get64(tr, trBlkno)) {
		put64(tr, trBlkno, dbe.blkno)
		*changed = true
	}
	if get64(tr, trParent) != dbe.ino && c.p.ask(DirTrailerParentInode, "Directory block trailer for logical block %d physcal block %d in directory inode %d claims it belongs to inoe %d.  Fix it?", dbe.count, dbe.blkno, dbe.ino, get64(tr, trParent)) {
		put64(tr, trParent, dbe.ino)
		*changed = true
	}
}

// loadDxIndex reads every entry of a directory's name index.
func (c *checker) loadDxIndex(ino uint64, di dinode) *dxIndex {
	x := &dxIndex{entries: map[dxKey]uint64{}}
	rootBlk := get64(di, diDxRoot)
	root, err := c.v.Cache.DXRoot(rootBlk, ino)
	if err != nil {
		x.broken = err
		return x
	}
	if root.Flags&0x01 != 0 {
		for _, e := range root.Entries.Entries {
			x.entries[dxKey{e.MajorHash, e.MinorHash, e.DirentBlk}] = rootBlk
		}
		return x
	}
	err = extent.Walk(c.v.Cache, &root.List, fmt.Sprintf("directory %d index", ino), func(r ondisk.ExtentRec) error {
		for i := uint64(0); i < uint64(r.Clusters)*c.bpc; i++ {
			l, err := c.v.Cache.DXLeaf(r.Blkno + i)
			if err != nil {
				return err
			}
			for _, e := range l.List.Entries {
				x.entries[dxKey{e.MajorHash, e.MinorHash, e.DirentBlk}] = r.Blkno + i
			}
		}
		return nil
	})
	if err != nil {
		x.broken = err
	}
	return x
}

// finishDirIndexes rebuilds the indexes of the directories pass 2
// changed, or found without an index or with a broken one (fsck.ocfs2's
// o2fsck_rebuild_indexed_dirs).
func (c *checker) finishDirIndexes() {
	inos := make([]uint64, 0, len(c.reindex))
	for ino := range c.reindex {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		if err := c.reindexDir(ino); err != nil {
			c.fail("while rebuilding the index of directory %d: %v", ino, err)
			for _, i := range c.reindex[ino] {
				c.p.found[i].Fixed = false
			}
			c.sawError = true
		}
	}
	c.reindex = nil
}

// wantReindex records that directory ino needs its index rebuilt; the
// last problem (if it asked for it) is undone should the rebuild fail.
func (c *checker) wantReindex(ino uint64, byProblem bool) {
	if !c.rw {
		return
	}
	if c.reindex == nil {
		c.reindex = map[uint64][]int{}
	}
	l := c.reindex[ino]
	if byProblem {
		l = append(l, len(c.p.found)-1)
	}
	c.reindex[ino] = l
}

var _ = bytes.IndexByte
