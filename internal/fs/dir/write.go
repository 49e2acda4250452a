package dir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Env is what a change to a directory needs: the volume's metadata cache
// and superblock, the transaction the change joins, and the allocators of
// the slot doing it (Meta for dx roots and extent blocks, Data for
// directory and index clusters).
//
// Every operation takes the directory's dinode as a private, mutable copy:
// it may change i_size, i_clusters, id2 (inline data or extent list),
// i_last_eb_blk, i_dyn_features (INLINE_DATA, INDEXED_DIR) and i_dx_root,
// never times or link counts; the caller encodes and dirties that copy
// when the operation returns — also when it fails, since a failure after
// the first change (an allocator running dry half way, a device error)
// leaves the other blocks consistent with the copy, not with the old inode.
// Every other block goes through Tx.
type Env struct {
	C    *metacache.Cache
	SB   *ondisk.SuperBlock
	Tx   metacache.Tx
	Meta extent.MetaAllocator
	Data extent.ClusterAllocator
}

// MaxIndexedEntries is the most names an indexed directory can hold
// (dr_num_entries is 32 bits; the kernel's OCFS2_DX_ENTRIES_MAX).
const MaxIndexedEntries = 1<<32 - 1

// ValidateName returns the error a local file system gives for a name
// that cannot be a directory entry: ENAMETOOLONG beyond 255 bytes, EINVAL
// for an empty name or one holding '/' or NUL.
func ValidateName(name string) error {
	if len(name) > ondisk.MaxNameLen {
		return fmt.Errorf("name of %d bytes: %w", len(name), syscall.ENAMETOOLONG)
	}
	if len(name) == 0 {
		return fmt.Errorf("empty name: %w", syscall.EINVAL)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return fmt.Errorf("name %q holds '/' or NUL: %w", name, syscall.EINVAL)
		}
	}
	return nil
}

func isDot(name string) bool { return name == "." || name == ".." }

// editor is one operation on one directory.
type editor struct {
	Env
	d   *ondisk.Dinode
	bs  int
	bpc int
}

func newEditor(env Env, d *ondisk.Dinode) (*editor, error) {
	if env.C == nil || env.SB == nil || env.Tx == nil {
		return nil, errors.New("dir: Env needs a cache, a superblock and a transaction")
	}
	if d == nil || !d.IsDir() {
		return nil, fmt.Errorf("dir: inode is not a directory")
	}
	e := &editor{Env: env, d: d, bs: env.SB.BlockSize(), bpc: env.SB.BlocksPerCluster()}
	if d.Inline == nil && d.Extents == nil {
		return nil, e.corrupt(d.Blkno, "dinode", "id2", "directory is neither inline nor extent-mapped")
	}
	return e, nil
}

func (e *editor) dir() Dir      { return Dir{C: e.C, SB: e.SB, Inode: e.d} }
func (e *editor) owner() string { return fmt.Sprintf("directory inode %d", e.d.Blkno) }
func (e *editor) inline() bool  { return e.d.Inline != nil }
func (e *editor) indexed() bool { return !e.inline() && e.d.DynFeatures&ondisk.DynIndexedDir != 0 }
func (e *editor) metaECC() bool { return e.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 }
func (e *editor) volIndexed() bool {
	return e.SB.Features.Incompat&ondisk.IncompatIndexedDirs != 0
}

// hasTrailer is the kernel's ocfs2_supports_dir_trailer for this (block)
// directory: blocks it adds end in a trailer.
func (e *editor) hasTrailer() bool { return ondisk.DirHasTrailer(e.metaECC(), false, e.indexed()) }

// newDirWantsTrailer is the kernel's rule for a directory's first block
// (mkdir, inline expansion): trailers when the volume has META_ECC or
// indexed directories.
func (e *editor) newDirWantsTrailer() bool { return e.metaECC() || e.volIndexed() }

func (e *editor) areaSize(trailer bool) int {
	if trailer {
		return ondisk.TrailerOffset(e.bs)
	}
	return e.bs
}

// corrupt is a corruption error at blkno, prefixed with the directory.
func (e *editor) corrupt(blkno uint64, structName, field, format string, args ...any) error {
	return fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(&ondisk.CorruptError{Struct: structName, Field: field, Msg: fmt.Sprintf(format, args...)}, blkno))
}

// xattrInline is the in-inode xattr area that id2 must leave alone.
func (e *editor) xattrInline() int {
	if e.d.DynFeatures&ondisk.DynInlineXattr != 0 {
		return int(e.d.XattrInlineSize)
	}
	return 0
}

// dirBlock is a directory block read for change.
type dirBlock struct {
	blkno   uint64
	buf     *metacache.Buffer
	area    []byte             // the entries: the block up to its trailer
	trailer *ondisk.DirTrailer // private copy; nil without a trailer
}

// readBlock reads directory block blkno and checks it: its trailer (when
// it has one, or must have one because the directory is indexed) and every
// entry, so that nothing is written on top of damage.
func (e *editor) readBlock(blkno uint64) (*dirBlock, error) {
	// The checked read first: it may replace a cached copy that is not
	// this directory's (see metacache), and buf must be the one cached.
	if _, _, err := e.C.DirBlock(blkno, e.d.Blkno); err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), err)
	}
	buf, err := e.C.Get(blkno)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), err)
	}
	b := &dirBlock{blkno: blkno, buf: buf}
	if ondisk.HasDirTrailerSignature(buf.Data) {
		t, err := ondisk.DecodeDirTrailer(buf.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, blkno))
		}
		b.trailer = t
	} else if e.indexed() {
		return nil, e.corrupt(blkno, "dir block trailer", "db_signature", "block of an indexed directory has no DIRTRL1 trailer")
	}
	b.area = ondisk.DirEntryArea(buf.Data, b.trailer != nil)
	if err := ondisk.CheckDirArea(b.area); err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, blkno))
	}
	return b, nil
}

// writeBlock seals a changed directory block: the trailer's copy goes back
// into the block and the block check is recomputed over it.
func (e *editor) writeBlock(b *dirBlock) {
	off := -1
	if b.trailer != nil {
		b.trailer.Encode(b.buf.Data)
		off = ondisk.DirBlockCheckOffset(e.bs)
	}
	e.Tx.Dirty(b.buf, off)
}

// newBlock formats directory block blkno as an empty block (one unused
// entry over the whole area) with a trailer when trailer is set.
func (e *editor) newBlock(blkno uint64, trailer bool) (*dirBlock, error) {
	buf, err := e.Tx.New(blkno)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), err)
	}
	b := &dirBlock{blkno: blkno, buf: buf, area: buf.Data[:e.areaSize(trailer)]}
	ondisk.InitEmptyDirArea(b.area)
	if trailer {
		b.trailer = &ondisk.DirTrailer{Blkno: blkno, ParentDinode: e.d.Blkno, FreeRecLen: uint16(len(b.area))}
	}
	return b, nil
}

// largestFree is db_free_rec_len for an area that was checked.
func largestFree(area []byte) uint16 {
	n, _ := ondisk.LargestFreeSpace(area)
	return uint16(n)
}

// insertInto stores the entry in the first slot of b that takes it and
// refreshes the trailer's db_free_rec_len. The caller has done Access.
func (e *editor) insertInto(b *dirBlock, name string, ino uint64, ft uint8) error {
	if _, err := ondisk.InsertDirEntry(b.area, ino, ft, name); err != nil {
		if errors.Is(err, ondisk.ErrDirAreaFull) {
			return fmt.Errorf("%s: block %d has no room for %q although it was chosen for it", e.owner(), b.blkno, name)
		}
		return fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, b.blkno))
	}
	if b.trailer != nil {
		b.trailer.FreeRecLen = largestFree(b.area)
	}
	return nil
}

// deleteAt removes the used entry at off as the kernel does: the previous
// entry absorbs it (or, first in the area, it becomes unused), and its
// inode field is cleared either way.
func deleteAt(area []byte, off int) error {
	if err := ondisk.DeleteDirEntry(area, off); err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(area[off:], 0)
	return nil
}

// location is where a name lives.
type location struct {
	blkno uint64 // directory block, or the inode block when inline
	off   int    // entry offset within the area
	e     ondisk.DirEntry
	// Indexed directories: the index entry naming it.
	leafBlk uint64 // dx leaf holding the index entry; 0: the inline root
	idx     int    // position in that entry list
}

// Add links name to inode ino with dirent file type ft (FileType*). It
// fails with EEXIST when the name is present, ENAMETOOLONG/EINVAL for a
// name no directory can hold, ENOSPC when the index cannot take it, and
// with the allocators' errors when the directory cannot grow.
func Add(env Env, d *ondisk.Dinode, name string, ino uint64, ft uint8) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	e, err := newEditor(env, d)
	if err != nil {
		return err
	}
	if isDot(name) {
		return fmt.Errorf("%s: adding %q: %w", e.owner(), name, syscall.EEXIST)
	}
	if ino == 0 {
		return fmt.Errorf("%s: adding %q: inode number 0", e.owner(), name)
	}
	if e.inline() {
		done, err := e.addInline(name, ino, ft)
		if done || err != nil {
			return err
		}
		// expanded: the directory is a block directory now
	}
	if e.indexed() {
		return e.addIndexed(name, ino, ft)
	}
	return e.addLinear(name, ino, ft)
}

// inlineArea returns the entries of an inline directory after checking
// them and that i_size covers exactly id_count bytes, as the kernel keeps it.
func (e *editor) inlineArea() ([]byte, error) {
	area := e.d.Inline.Data
	if e.d.Size != uint64(len(area)) {
		return nil, e.corrupt(e.d.Blkno, "dinode", "i_size", "is %d for an inline directory of id_count %d", e.d.Size, len(area))
	}
	if err := ondisk.CheckDirArea(area); err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, e.d.Blkno))
	}
	return area, nil
}

// addInline adds to an inline directory. It reports done=false after
// turning the directory into a block directory because the name did not
// fit; the caller then adds it there.
func (e *editor) addInline(name string, ino uint64, ft uint8) (bool, error) {
	area, err := e.inlineArea()
	if err != nil {
		return false, err
	}
	if _, _, found, _ := ondisk.FindDirEntry(area, name); found {
		return false, fmt.Errorf("%s: adding %q: %w", e.owner(), name, syscall.EEXIST)
	}
	if _, err := ondisk.InsertDirEntry(area, ino, ft, name); err == nil {
		return true, nil
	} else if !errors.Is(err, ondisk.ErrDirAreaFull) {
		return false, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, e.d.Blkno))
	}
	return false, e.expandInline(ondisk.RecLen(len(name)))
}

// addLinear adds to an unindexed block directory: one pass over its
// blocks looks for the name and remembers the first block with room, as
// ocfs2_find_dir_space_el does; a full directory grows by a block.
func (e *editor) addLinear(name string, ino uint64, ft uint8) error {
	need := ondisk.RecLen(len(name))
	var target *dirBlock
	err := e.forEachBlockNo(func(i, phys uint64) error {
		b, err := e.readBlock(phys)
		if err != nil {
			return err
		}
		if _, _, found, _ := ondisk.FindDirEntry(b.area, name); found {
			return fmt.Errorf("%s: adding %q: %w", e.owner(), name, syscall.EEXIST)
		}
		if target == nil && int(largestFree(b.area)) >= need {
			target = b
		}
		return nil
	})
	if err != nil {
		return err
	}
	if target == nil {
		if target, err = e.extend(nil); err != nil {
			return err
		}
	}
	if err := e.Tx.Access(target.buf); err != nil {
		return err
	}
	if err := e.insertInto(target, name, ino, ft); err != nil {
		return err
	}
	e.writeBlock(target)
	return nil
}

// forEachBlockNo calls fn with each block of a block directory, logical
// index and physical block, walking the extent tree once.
func (e *editor) forEachBlockNo(fn func(i, phys uint64) error) error {
	n := e.dir().NumBlocks()
	bpc := uint64(e.bpc)
	next := uint64(0)
	err := extent.Walk(e.C, e.d.Extents, e.owner(), func(r ondisk.ExtentRec) error {
		first := uint64(r.Cpos) * bpc
		if first != next {
			return e.corrupt(e.d.Blkno, "dinode", "i_size", "directory block %d (cluster %d) is a hole", next, next/bpc)
		}
		for j := uint64(0); j < uint64(r.Clusters)*bpc && first+j < n; j++ {
			if err := fn(first+j, r.Blkno+j); err != nil {
				return err
			}
		}
		next = first + uint64(r.Clusters)*bpc
		if next >= n {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	if err == nil && next < n {
		return e.corrupt(e.d.Blkno, "dinode", "i_size", "directory block %d (cluster %d) is a hole", next, next/bpc)
	}
	return err
}

// Remove unlinks name and returns the entry it removed. "." and ".." cannot
// be removed (EINVAL); a missing name is ENOENT.
func Remove(env Env, d *ondisk.Dinode, name string) (ondisk.DirEntry, error) {
	if err := ValidateName(name); err != nil {
		return ondisk.DirEntry{}, err
	}
	e, err := newEditor(env, d)
	if err != nil {
		return ondisk.DirEntry{}, err
	}
	if isDot(name) {
		return ondisk.DirEntry{}, fmt.Errorf("%s: removing %q: %w", e.owner(), name, syscall.EINVAL)
	}
	switch {
	case e.inline():
		area, err := e.inlineArea()
		if err != nil {
			return ondisk.DirEntry{}, err
		}
		off, de, found, _ := ondisk.FindDirEntry(area, name)
		if !found {
			return ondisk.DirEntry{}, fmt.Errorf("%s: removing %q: %w", e.owner(), name, syscall.ENOENT)
		}
		if err := deleteAt(area, off); err != nil {
			return ondisk.DirEntry{}, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, e.d.Blkno))
		}
		return de, nil
	case e.indexed():
		return e.removeIndexed(name)
	}
	loc, b, err := e.locateLinear(name)
	if err != nil {
		return ondisk.DirEntry{}, err
	}
	if b == nil {
		return ondisk.DirEntry{}, fmt.Errorf("%s: removing %q: %w", e.owner(), name, syscall.ENOENT)
	}
	if err := e.Tx.Access(b.buf); err != nil {
		return ondisk.DirEntry{}, err
	}
	if err := deleteAt(b.area, loc.off); err != nil {
		return ondisk.DirEntry{}, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, b.blkno))
	}
	if b.trailer != nil {
		b.trailer.FreeRecLen = largestFree(b.area)
	}
	e.writeBlock(b)
	return loc.e, nil
}

// locateLinear scans an unindexed block directory for name; b is nil when
// it is absent.
func (e *editor) locateLinear(name string) (location, *dirBlock, error) {
	var loc location
	var hit *dirBlock
	err := e.forEachBlockNo(func(i, phys uint64) error {
		b, err := e.readBlock(phys)
		if err != nil {
			return err
		}
		off, de, found, _ := ondisk.FindDirEntry(b.area, name)
		if found {
			loc, hit = location{blkno: phys, off: off, e: de}, b
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return location{}, nil, err
	}
	return loc, hit, nil
}

// Retarget points the existing entry name at inode ino with file type ft
// (rename over an existing name; ".." of a directory moved elsewhere) and
// returns the entry as it was. The index does not change: it maps names,
// not inodes.
func Retarget(env Env, d *ondisk.Dinode, name string, ino uint64, ft uint8) (ondisk.DirEntry, error) {
	if err := ValidateName(name); err != nil {
		return ondisk.DirEntry{}, err
	}
	e, err := newEditor(env, d)
	if err != nil {
		return ondisk.DirEntry{}, err
	}
	if name == "." {
		return ondisk.DirEntry{}, fmt.Errorf("%s: retargeting \".\": %w", e.owner(), syscall.EINVAL)
	}
	if ino == 0 {
		return ondisk.DirEntry{}, fmt.Errorf("%s: retargeting %q: inode number 0", e.owner(), name)
	}
	set := func(area []byte, off int) {
		binary.LittleEndian.PutUint64(area[off:], ino)
		area[off+11] = ft
	}
	if e.inline() {
		area, err := e.inlineArea()
		if err != nil {
			return ondisk.DirEntry{}, err
		}
		off, de, found, _ := ondisk.FindDirEntry(area, name)
		if !found {
			return ondisk.DirEntry{}, fmt.Errorf("%s: retargeting %q: %w", e.owner(), name, syscall.ENOENT)
		}
		set(area, off)
		return de, nil
	}
	var loc location
	var b *dirBlock
	if e.indexed() {
		var found bool
		loc, found, err = e.locateIndexed(name)
		if err == nil && found {
			b, err = e.readBlock(loc.blkno)
		}
	} else {
		loc, b, err = e.locateLinear(name)
	}
	if err != nil {
		return ondisk.DirEntry{}, err
	}
	if b == nil {
		return ondisk.DirEntry{}, fmt.Errorf("%s: retargeting %q: %w", e.owner(), name, syscall.ENOENT)
	}
	if err := e.Tx.Access(b.buf); err != nil {
		return ondisk.DirEntry{}, err
	}
	set(b.area, loc.off)
	e.writeBlock(b)
	return loc.e, nil
}
