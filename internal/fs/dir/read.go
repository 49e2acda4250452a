package dir

import (
	"errors"
	"fmt"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// errStop ends a walk early without an error.
var errStop = errors.New("stop walking")

// Dir is one directory inode as read from the volume.
type Dir struct {
	C     *metacache.Cache
	SB    *ondisk.SuperBlock
	Inode *ondisk.Dinode
}

func (d Dir) owner() string { return fmt.Sprintf("directory inode %d", d.Inode.Blkno) }

// NumBlocks is how many blocks the directory has: ceil(i_size / blocksize)
// (libocfs2's mkfs stores i_size = blocksize - 64 for lost+found), bounded
// by what its clusters hold.
func (d Dir) NumBlocks() uint64 {
	bs := uint64(d.SB.BlockSize())
	n := (d.Inode.Size + bs - 1) / bs
	if max := uint64(d.Inode.Clusters) * uint64(d.SB.BlocksPerCluster()); n > max {
		n = max
	}
	return n
}

// BlockAt maps the directory's i-th block to its physical block.
// Directories have no holes; one is reported as corruption.
func (d Dir) BlockAt(i uint64) (uint64, error) {
	bpc := uint64(d.SB.BlocksPerCluster())
	if d.Inode.Extents == nil {
		return 0, fmt.Errorf("%s: %w", d.owner(), &ondisk.CorruptError{Struct: "dinode", Field: "id2", Msg: "directory is neither inline nor extent-mapped", Blkno: d.Inode.Blkno, HasBlk: true})
	}
	m, err := extent.Lookup(d.C, d.Inode.Extents, uint32(i/bpc), d.owner())
	if err != nil {
		return 0, err
	}
	if !m.Found {
		return 0, fmt.Errorf("%s: %w", d.owner(), &ondisk.CorruptError{Struct: "dinode", Field: "i_size",
			Msg: fmt.Sprintf("directory block %d (cluster %d) is a hole", i, i/bpc), Blkno: d.Inode.Blkno, HasBlk: true})
	}
	return m.Rec.Blkno + (i - uint64(m.Rec.Cpos)*bpc), nil
}

// ForEachBlock calls fn with each directory area in order: the inline data,
// or each block's entry area with its physical block number.
func (d Dir) ForEachBlock(fn func(blkno uint64, area []byte) error) error {
	if d.Inode.Inline != nil {
		return fn(d.Inode.Blkno, d.Inode.Inline.Data)
	}
	n := d.NumBlocks()
	for i := uint64(0); i < n; i++ {
		phys, err := d.BlockAt(i)
		if err != nil {
			return err
		}
		area, _, err := d.C.DirBlock(phys, d.Inode.Blkno)
		if err != nil {
			return fmt.Errorf("%s: %w", d.owner(), err)
		}
		if err := fn(phys, area); err != nil {
			return err
		}
	}
	return nil
}

// ForEach calls fn for every live entry ("." and ".." included) in on-disk
// order. Returning a non-nil error from fn stops the walk with that error.
func (d Dir) ForEach(fn func(e ondisk.DirEntry) error) error {
	return d.ForEachBlock(func(blkno uint64, area []byte) error {
		it := ondisk.NewDirIter(area)
		for it.Next() {
			if e := it.Entry(); e.Used() {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("%s: %w", d.owner(), d.C.Annotate(err, blkno))
		}
		return nil
	})
}

// Lookup finds name in the directory: through the index when the directory
// is indexed, otherwise by scanning its blocks.
func (d Dir) Lookup(name string) (ondisk.DirEntry, bool, error) {
	if d.Inode.DynFeatures&ondisk.DynIndexedDir != 0 && d.Inode.Inline == nil {
		e, found, err := d.lookupIndexed(name, ondisk.SignedChar)
		if err != nil || found || !hasHighBytes(name) {
			return e, found, err
		}
		// Kernels from 6.2 (and non-x86 ones) hash bytes >= 0x80 unsigned.
		return d.lookupIndexed(name, ondisk.UnsignedChar)
	}
	return d.lookupLinear(name)
}

func hasHighBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

func (d Dir) lookupLinear(name string) (ondisk.DirEntry, bool, error) {
	var found ondisk.DirEntry
	ok := false
	err := d.ForEachBlock(func(blkno uint64, area []byte) error {
		_, e, f, err := ondisk.FindDirEntry(area, name)
		if err != nil {
			return fmt.Errorf("%s: %w", d.owner(), d.C.Annotate(err, blkno))
		}
		if f {
			found, ok = e, true
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return ondisk.DirEntry{}, false, err
	}
	return found, ok, nil
}

// lookupIndexed hashes name, finds the index entries with its hashes and
// checks the directory blocks they point at for the name.
func (d Dir) lookupIndexed(name string, cs ondisk.CharSignedness) (ondisk.DirEntry, bool, error) {
	loc, found, err := d.locateIndexed(name, cs)
	return loc.e, found, err
}

// locateIndexed is lookupIndexed that also says where the entry and its
// index entry are.
func (d Dir) locateIndexed(name string, cs ondisk.CharSignedness) (location, bool, error) {
	root, err := d.C.DXRoot(d.Inode.DxRoot, d.Inode.Blkno)
	if err != nil {
		return location{}, false, fmt.Errorf("%s: index: %w", d.owner(), err)
	}
	major, minor := ondisk.DXHashString(name, d.SB.DxSeed, cs)
	var entries []ondisk.DXEntry
	leafBlk := uint64(0)
	if root.Inline() {
		entries = root.Entries.Entries
	} else {
		blk, ok, err := d.dxLeafFor(root, major, minor)
		if err != nil || !ok {
			return location{}, false, err
		}
		leaf, err := d.C.DXLeaf(blk)
		if err != nil {
			return location{}, false, fmt.Errorf("%s: index: %w", d.owner(), err)
		}
		entries, leafBlk = leaf.List.Entries, blk
	}
	for i, x := range entries {
		if x.MajorHash != major || x.MinorHash != minor {
			continue
		}
		area, _, err := d.C.DirBlock(x.DirentBlk, d.Inode.Blkno)
		if err != nil {
			return location{}, false, fmt.Errorf("%s: index entry %s: %w", d.owner(), x, err)
		}
		off, e, found, err := ondisk.FindDirEntry(area, name)
		if err != nil {
			return location{}, false, fmt.Errorf("%s: %w", d.owner(), d.C.Annotate(err, x.DirentBlk))
		}
		if found {
			return location{blkno: x.DirentBlk, off: off, e: e, leafBlk: leafBlk, idx: i}, true, nil
		}
	}
	return location{}, false, nil
}

// dxLeafFor returns the leaf block that holds hashes (major, minor): the
// index record with the greatest e_cpos <= major, then the cluster and
// block within it that the hashes select.
func (d Dir) dxLeafFor(root *ondisk.DXRoot, major, minor uint32) (uint64, bool, error) {
	leaf, err := extent.FindLeaf(d.C, &root.List, major, d.owner()+" index")
	if err != nil {
		return 0, false, err
	}
	recs := leaf.List.Recs
	idx := -1
	for i, r := range recs {
		if r.Clusters > 0 && r.Cpos <= major {
			idx = i
		}
	}
	if idx < 0 {
		return 0, false, nil
	}
	return ondisk.DXLeafBlock(recs[idx], major, minor, uint32(d.SB.BlocksPerCluster())), true, nil
}

// Names lists the directory's live names (no "." and ".."), for tests and
// tools; large directories should use ForEach.
func (d Dir) Names() ([]string, error) {
	var out []string
	err := d.ForEach(func(e ondisk.DirEntry) error {
		if e.Name != "." && e.Name != ".." {
			out = append(out, e.Name)
		}
		return nil
	})
	return out, err
}

// IsEmpty reports whether the directory holds only "." and "..".
func (d Dir) IsEmpty() (bool, error) {
	empty := true
	err := d.ForEach(func(e ondisk.DirEntry) error {
		if e.Name != "." && e.Name != ".." {
			empty = false
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return empty, err
}
