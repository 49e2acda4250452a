package volume

import (
	"encoding/binary"
	"fmt"
	"sort"

	"o2go/internal/ondisk"
)

// Directories of a volume being formatted: the root, the system directory,
// the orphan directories and lost+found.

// mkDir is a directory under construction.
type mkDir struct {
	ino *ondisk.Dinode
	// inline: the entries live in the inode (buf is then one block whose
	// first id_count bytes become the inline data).
	inline bool
	// buf holds the directory's data blocks back to back (block dirs),
	// or one block for an inline dir.
	buf []byte
	// blknos[i] is where data block i lives (block dirs).
	blknos  []uint64
	lastOff int // offset of the last entry added (mkfs.c add_entry_to_directory)
	trailer bool
	bs      int

	dx *ondisk.DXRoot // the index root, when indexed
	// dxLeaves are the index leaf blocks by block number.
	dxLeaves map[uint64]*ondisk.DXLeaf
}

// area returns the entry area of data block i (or the inline area).
func (d *mkDir) area(i int) []byte {
	if d.inline {
		return d.ino.Inline.Data
	}
	b := d.buf[i*d.bs : (i+1)*d.bs]
	return ondisk.DirEntryArea(b, d.trailer)
}

func (d *mkDir) nblocks() int {
	if d.inline {
		return 1
	}
	return len(d.buf) / d.bs
}

func putDirent(b []byte, inode uint64, recLen int, fileType uint8, name string) {
	binary.LittleEndian.PutUint64(b, inode)
	binary.LittleEndian.PutUint16(b[8:], uint16(recLen))
	b[10] = uint8(len(name))
	b[11] = fileType
	n := copy(b[ondisk.DirEntryHeaderSize:], name)
	if ondisk.DirEntryHeaderSize+n < recLen {
		b[ondisk.DirEntryHeaderSize+n] = 0 // mkfs.ocfs2 strcpy's the name
	}
}

// mkfsAdd adds an entry the way mkfs.ocfs2's first phase does
// (add_entry_to_directory): the new entry goes after the last one if that
// one has room, else it starts a new block. Directories count one link per
// directory entry added ("." and ".." included).
func (d *mkDir) mkfsAdd(name string, inode uint64, fileType uint8) error {
	need := ondisk.RecLen(len(name))
	le := binary.LittleEndian
	if d.buf != nil {
		de := d.buf[d.lastOff:]
		recLen := int(le.Uint16(de[8:]))
		used := le.Uint64(de) != 0
		real := ondisk.RecLen(int(de[10]))
		switch {
		case !used && recLen >= need:
			return d.fill(d.lastOff, name, inode, fileType, recLen)
		case used && recLen >= real+need:
			le.PutUint16(de[8:], uint16(real))
			return d.fill(d.lastOff+real, name, inode, fileType, recLen-real)
		}
		if d.inline {
			return fmt.Errorf("directory %d: no room inline for %q", d.ino.Blkno, name)
		}
		if len(d.buf)/d.bs >= len(d.blknos) {
			return fmt.Errorf("directory %d: its %d blocks are full (adding %q)", d.ino.Blkno, len(d.blknos), name)
		}
	}
	off := len(d.buf)
	d.buf = append(d.buf, make([]byte, d.bs)...)
	recLen := d.bs
	if d.trailer {
		recLen = ondisk.TrailerOffset(d.bs)
		t := ondisk.DirTrailer{Blkno: d.blknos[off/d.bs], ParentDinode: d.ino.Blkno}
		t.Encode(d.buf[off : off+d.bs])
	}
	le.PutUint16(d.buf[off+8:], uint16(recLen))
	return d.fill(off, name, inode, fileType, recLen)
}

func (d *mkDir) fill(off int, name string, inode uint64, fileType uint8, recLen int) error {
	putDirent(d.buf[off:], inode, recLen, fileType, name)
	d.lastOff = off
	if fileType == ondisk.FileTypeDir {
		d.ino.Links++
	}
	return nil
}

// finishInline moves an inline directory's entries into the inode, the
// last entry stretched to the end of the inline area (mkfs.c format_file).
func (d *mkDir) finishInline() error {
	cap := ondisk.InlineDataBytes(d.bs, 0)
	le := binary.LittleEndian
	last := d.buf[d.lastOff:]
	if d.lastOff+ondisk.RecLen(int(last[10])) > cap {
		return fmt.Errorf("directory %d does not fit inline", d.ino.Blkno)
	}
	le.PutUint16(last[8:], le.Uint16(last[8:])-uint16(d.bs-cap))
	d.ino.Inline = &ondisk.InlineData{Data: append([]byte(nil), d.buf[:cap]...)}
	d.ino.DynFeatures |= ondisk.DynInlineData
	d.ino.Size = uint64(cap)
	d.ino.Extents = nil
	return nil
}

// dirEntryRef is an entry of a directory in iteration order.
type dirEntryRef struct {
	name  string
	block uint64 // physical block holding it (the inode's block when inline)
}

// entries lists the used entries in iteration order, dots included.
func (d *mkDir) entries() ([]dirEntryRef, error) {
	var out []dirEntryRef
	for i := 0; i < d.nblocks(); i++ {
		it := ondisk.NewDirIter(d.area(i))
		for it.Next() {
			if e := it.Entry(); e.Used() {
				blk := d.ino.Blkno
				if !d.inline {
					blk = d.blknos[i]
				}
				out = append(out, dirEntryRef{name: e.Name, block: blk})
			}
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("directory %d block %d: %w", d.ino.Blkno, i, err)
		}
	}
	return out, nil
}

// link adds name the way libocfs2's ocfs2_link does: the first entry, in
// order, that is unused and big enough or used with enough slack to split.
// It returns the block that holds the new entry.
func (d *mkDir) link(name string, inode uint64, fileType uint8) (uint64, error) {
	for i := 0; i < d.nblocks(); i++ {
		off, err := ondisk.InsertDirEntry(d.area(i), inode, fileType, name)
		if err == ondisk.ErrDirAreaFull {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("directory %d: %w", d.ino.Blkno, err)
		}
		_ = off
		if d.inline {
			return d.ino.Blkno, nil
		}
		return d.blknos[i], nil
	}
	return 0, fmt.Errorf("directory %d is full (adding %q)", d.ino.Blkno, name)
}

// largestHole is libocfs2's ocfs2_find_max_rec_len: the largest free
// space of a block's entry area, 0 if below the minimum entry size.
func largestHole(area []byte) int {
	best := 0
	it := ondisk.NewDirIter(area)
	for it.Next() {
		e := it.Entry()
		hole := int(e.RecLen)
		if e.Used() {
			hole -= ondisk.RecLen(len(e.Name))
		}
		best = max(best, hole)
	}
	if best < ondisk.DirEntryMinRecLen {
		return 0
	}
	return best
}

// refreshTrailers sets each block's trailer free space and, for an
// indexed directory, threads the blocks with free space into the index
// root's free list, last block first (libocfs2 ocfs2_init_dir_trailers).
func (d *mkDir) refreshTrailers() {
	if d.inline || !d.trailer {
		return
	}
	if d.dx != nil {
		d.dx.FreeBlk = 0
	}
	for i := 0; i < d.nblocks(); i++ {
		b := d.buf[i*d.bs : (i+1)*d.bs]
		t := ondisk.DirTrailer{Blkno: d.blknos[i], ParentDinode: d.ino.Blkno}
		t.FreeRecLen = uint16(largestHole(ondisk.DirEntryArea(b, true)))
		if d.dx != nil && t.FreeRecLen > 0 {
			t.FreeNext = d.dx.FreeBlk
			d.dx.FreeBlk = d.blknos[i]
		}
		t.Encode(b)
	}
}

// dxHashed is an index entry before placement.
type dxHashed struct {
	major, minor uint32
	block        uint64
}

// buildIndex indexes the directory (libocfs2 ocfs2_dx_dir_build): a root
// block from the extent allocator whose entries stay inline while they
// fit; beyond that, clusters of leaf blocks from the global bitmap, each
// cluster covering a range of major hashes and each leaf within it the
// entries whose minor hash selects it.
func (b *mkfsBuilder) buildIndex(d *mkDir) error {
	blkno, group, bit, err := b.extentAlloc0().alloc(b.p.clusterSize)
	if err != nil {
		return fmt.Errorf("indexing directory %d: %w", d.ino.Blkno, err)
	}
	slot := uint16(0)
	d.dx = &ondisk.DXRoot{
		SuballocSlot: slot,
		SuballocBit:  bit,
		SuballocLoc:  group,
		FSGeneration: b.gen,
		Blkno:        blkno,
		Flags:        ondisk.DXRootFlagInline,
		DirBlkno:     d.ino.Blkno,
		Entries:      ondisk.DXEntryList{Count: uint16(ondisk.DXRootEntryCapacity(b.p.blockSize))},
	}
	d.ino.DynFeatures |= ondisk.DynIndexedDir
	d.ino.DxRoot = blkno
	d.refreshTrailers()
	ents, err := d.entries()
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := b.indexInsert(d, e.name, e.block); err != nil {
			return err
		}
	}
	return nil
}

func (b *mkfsBuilder) dxHash(name string) (uint32, uint32) {
	return ondisk.DXHashString(name, b.seeds, ondisk.SignedChar)
}

// indexInsert adds one name to the directory's index.
func (b *mkfsBuilder) indexInsert(d *mkDir, name string, block uint64) error {
	major, minor := b.dxHash(name)
	r := d.dx
	if r.Inline() && len(r.Entries.Entries) < int(r.Entries.Count) {
		r.Entries.Entries = append(r.Entries.Entries, ondisk.DXEntry{MajorHash: major, MinorHash: minor, DirentBlk: block})
		r.NumEntries++
		return nil
	}
	all := make([]dxHashed, 0, len(r.Entries.Entries)+1)
	if r.Inline() {
		for _, e := range r.Entries.Entries {
			all = append(all, dxHashed{e.MajorHash, e.MinorHash, e.DirentBlk})
		}
	} else {
		all = b.dxAll(d)
	}
	all = append(all, dxHashed{major, minor, block})
	if err := b.layoutLeaves(d, all); err != nil {
		return fmt.Errorf("indexing directory %d: %w", d.ino.Blkno, err)
	}
	r.NumEntries++
	return nil
}

// dxAll collects a non-inline index's entries, cluster by cluster, leaf by
// leaf.
func (b *mkfsBuilder) dxAll(d *mkDir) []dxHashed {
	var all []dxHashed
	bpc := uint64(b.p.bpc())
	for _, rec := range d.dx.List.Recs {
		for i := uint64(0); i < bpc; i++ {
			for _, e := range d.dxLeaves[rec.Blkno+i].List.Entries {
				all = append(all, dxHashed{e.MajorHash, e.MinorHash, e.DirentBlk})
			}
		}
	}
	return all
}

// layoutLeaves places entries (in insertion order) into leaf clusters
// (dxPartition), reusing the clusters the index already has.
func (b *mkfsBuilder) layoutLeaves(d *mkDir, all []dxHashed) error {
	bpc := b.p.bpc()
	leafCap := ondisk.DXLeafCapacity(b.p.blockSize)
	mask := uint32(bpc - 1)
	ranges, err := dxPartition(all, bpc, leafCap)
	if err != nil {
		return err
	}
	if len(ranges) > ondisk.DXRootExtentCapacity(b.p.blockSize) {
		return fmt.Errorf("the index needs %d leaf clusters, more than the %d its root can map", len(ranges), ondisk.DXRootExtentCapacity(b.p.blockSize))
	}
	r := d.dx
	// Reuse the clusters the index already has, in order; take new ones
	// from the global bitmap as libocfs2 does (one cluster at a time).
	old := r.List.Recs
	if r.Inline() {
		old = nil
		r.Flags &^= ondisk.DXRootFlagInline
		r.Entries = ondisk.DXEntryList{}
		r.List = ondisk.ExtentList{Count: uint16(ondisk.DXRootExtentCapacity(b.p.blockSize))}
	}
	if d.dxLeaves == nil {
		d.dxLeaves = map[uint64]*ondisk.DXLeaf{}
	}
	var recs []ondisk.ExtentRec
	for i, rg := range ranges {
		var start uint64
		if i < len(old) {
			start = old[i].Blkno
		} else {
			c, _, err := b.gb.allocRange(1, 1)
			if err != nil {
				return err
			}
			start = b.gb.clusterBlkno(c)
			b.zeroClusters(c, 1)
		}
		cpos := uint32(0)
		if i > 0 {
			cpos = rg[0].major
		}
		recs = append(recs, ondisk.ExtentRec{Cpos: cpos, Clusters: 1, Blkno: start})
		for l := 0; l < bpc; l++ {
			d.dxLeaves[start+uint64(l)] = &ondisk.DXLeaf{
				Blkno:        start + uint64(l),
				FSGeneration: b.gen,
				List:         ondisk.DXEntryList{Count: uint16(leafCap)},
			}
		}
		for _, e := range rg {
			leaf := d.dxLeaves[start+uint64(e.minor&mask)]
			leaf.List.Entries = append(leaf.List.Entries, ondisk.DXEntry{MajorHash: e.major, MinorHash: e.minor, DirentBlk: e.block})
		}
	}
	r.List.Recs = recs
	r.Clusters = uint32(len(recs))
	return nil
}

// dxPartition cuts a directory's index entries (in insertion order) into
// the hash ranges of leaf clusters of bpc leaves of leafCap entries, each
// entry going to the leaf its minor hash picks. One cluster at hash 0
// holds them all when no leaf overflows, exactly as libocfs2 leaves an
// index it expanded from its root; otherwise the entries, sorted by major
// hash, are cut into consecutive hash ranges of one cluster each, every
// range as long as its leaves allow. mkfs and tunefs (indexing existing
// directories) share it.
func dxPartition(all []dxHashed, bpc, leafCap int) ([][]dxHashed, error) {
	mask := uint32(bpc - 1)
	var ranges [][]dxHashed
	counts := make([]int, bpc)
	fits := true
	for _, e := range all {
		counts[e.minor&mask]++
		if counts[e.minor&mask] > leafCap {
			fits = false
		}
	}
	if fits {
		return [][]dxHashed{all}, nil
	}
	sorted := append([]dxHashed(nil), all...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].major < sorted[j].major })
	var cur []dxHashed
	clear(counts)
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].major == sorted[i].major {
			j++
		}
		ok := true
		for _, e := range sorted[i:j] {
			counts[e.minor&mask]++
			if counts[e.minor&mask] > leafCap {
				ok = false
			}
		}
		if !ok {
			if len(cur) == 0 {
				return nil, fmt.Errorf("%d names share major hash 0x%x: more than a leaf holds", j-i, sorted[i].major)
			}
			ranges = append(ranges, cur)
			cur = nil
			clear(counts)
			continue
		}
		cur = append(cur, sorted[i:j]...)
		i = j
	}
	return append(ranges, cur), nil
}

// emitDir stores a directory's blocks (data blocks, index root and leaves)
// in the image. Inline directories live in their inode.
func (b *mkfsBuilder) emitDir(d *mkDir) {
	if !d.inline {
		// Blocks past the directory's size stay as zeroed with their
		// clusters.
		for i := 0; i < d.nblocks(); i++ {
			data := append([]byte(nil), d.buf[i*d.bs:(i+1)*d.bs]...)
			check := -1
			if d.trailer {
				check = ondisk.DirBlockCheckOffset(d.bs)
			}
			b.img.put(d.blknos[i], data, check)
		}
	}
	if d.dx != nil {
		data := make([]byte, d.bs)
		d.dx.Encode(data)
		b.img.put(d.dx.Blkno, data, ondisk.DXRootCheckOffset)
		for blk, l := range d.dxLeaves {
			data := make([]byte, d.bs)
			l.Encode(data)
			b.img.put(blk, data, ondisk.DXLeafCheckOffset)
		}
	}
}
