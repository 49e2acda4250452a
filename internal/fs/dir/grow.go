package dir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// noMeta stands in for a missing MetaAllocator: directories that never
// need an extent block or a dx root work without one.
type noMeta struct{}

func (noMeta) NewMetaBlock(tx metacache.Tx) (extent.MetaBlock, error) {
	return extent.MetaBlock{}, errors.New("dir: no metadata allocator in the environment")
}

func (noMeta) FreeMetaBlock(tx metacache.Tx, b extent.MetaBlock) error {
	return errors.New("dir: no metadata allocator in the environment")
}

func (e *editor) meta() extent.MetaAllocator {
	if e.Meta == nil {
		return noMeta{}
	}
	return e.Meta
}

// dataTree is the directory's own extent tree (its blocks).
func (e *editor) dataTree() *extent.Tree {
	return &extent.Tree{C: e.C, Tx: e.Tx, Alloc: e.meta(), Root: e.d.Extents,
		BlocksPerCluster: uint64(e.bpc), Owner: e.owner(), LastEB: e.d.LastEBBlk}
}

func (e *editor) clusterBlock(c uint32) uint64 { return uint64(c) * uint64(e.bpc) }

// claim takes min..max contiguous clusters for the directory.
func (e *editor) claim(goal, min, max uint32) (uint32, uint32, error) {
	if e.Data == nil {
		return 0, 0, errors.New("dir: no cluster allocator in the environment")
	}
	start, n, err := e.Data.ClaimClusters(e.Tx, e.d.Blkno, goal, min, max)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: claiming clusters: %w", e.owner(), err)
	}
	if n < min || n > max || uint64(start)+uint64(n) > e.C.Blocks()/uint64(e.bpc) {
		return 0, 0, fmt.Errorf("%s: cluster allocator returned %d clusters at %d for a claim of %d..%d", e.owner(), n, start, min, max)
	}
	return start, n, nil
}

// claims remembers what an operation took so a failure before its first
// write can give it all back.
type claims struct {
	e        *editor
	clusters [][2]uint32
	metas    []extent.MetaBlock
}

func (c *claims) cluster(goal, min, max uint32) (uint32, uint32, error) {
	s, n, err := c.e.claim(goal, min, max)
	if err == nil {
		c.clusters = append(c.clusters, [2]uint32{s, n})
	}
	return s, n, err
}

func (c *claims) metaBlock() (extent.MetaBlock, error) {
	mb, err := c.e.meta().NewMetaBlock(c.e.Tx)
	if err != nil {
		return mb, fmt.Errorf("%s: allocating a dx root: %w", c.e.owner(), err)
	}
	c.metas = append(c.metas, mb)
	return mb, nil
}

// undo frees everything claimed, newest first, and returns err.
func (c *claims) undo(err error) error {
	for i := len(c.metas) - 1; i >= 0; i-- {
		if ferr := c.e.meta().FreeMetaBlock(c.e.Tx, c.metas[i]); ferr != nil {
			return errors.Join(err, ferr)
		}
	}
	for i := len(c.clusters) - 1; i >= 0; i-- {
		if ferr := c.e.Data.FreeClusters(c.e.Tx, c.clusters[i][0], c.clusters[i][1]); ferr != nil {
			return errors.Join(err, ferr)
		}
	}
	c.clusters, c.metas = nil, nil
	return err
}

// insertData maps directory clusters [cpos, cpos+n) to physical cluster
// start, updating i_clusters and i_last_eb_blk.
func (e *editor) insertData(cpos, start, n uint32) error {
	t := e.dataTree()
	saved := *e.d.Extents
	saved.Recs = slices.Clone(saved.Recs)
	if err := t.Insert(ondisk.ExtentRec{Cpos: cpos, Clusters: n, Blkno: e.clusterBlock(start)}); err != nil {
		// A failed edit wrote nothing, but may have changed the list in
		// memory; the caller writes the inode even when this fails.
		*e.d.Extents = saved
		return err
	}
	e.d.LastEBBlk = t.LastEB
	e.d.Clusters += n
	return nil
}

// Init makes d (a new directory inode, with no data yet) a directory
// holding "." (d itself) and ".." (parent), the way the kernel's mkdir
// does: inline in the inode when the volume has inline data; otherwise one
// block in a new cluster, ending in a trailer when the volume has META_ECC
// or indexed directories, and with an inline dx root indexing both names
// when it has indexed directories. i_size becomes the inline area or one
// block; the link count is the caller's (2).
func Init(env Env, d *ondisk.Dinode, parent uint64) error {
	if d == nil || !d.IsDir() {
		return errors.New("dir: Init of an inode that is not a directory")
	}
	if d.Clusters != 0 || d.DxRoot != 0 || d.DynFeatures&ondisk.DynIndexedDir != 0 ||
		(d.Extents != nil && len(d.Extents.Recs) > 0) {
		return fmt.Errorf("directory inode %d: Init of an inode that already has data", d.Blkno)
	}
	if parent == 0 {
		return fmt.Errorf("directory inode %d: Init with parent 0", d.Blkno)
	}
	if env.C == nil || env.SB == nil || env.Tx == nil {
		return errors.New("dir: Env needs a cache, a superblock and a transaction")
	}
	e := &editor{Env: env, d: d, bs: env.SB.BlockSize(), bpc: env.SB.BlocksPerCluster()}
	if e.SB.Features.Incompat&ondisk.IncompatInlineData != 0 {
		data := make([]byte, ondisk.InlineDataBytes(e.bs, e.xattrInline()))
		ondisk.InitDirArea(data, d.Blkno, parent)
		d.DynFeatures |= ondisk.DynInlineData
		d.Extents, d.LastEBBlk = nil, 0
		d.Inline = &ondisk.InlineData{Data: data}
		d.Size = uint64(len(data))
		return nil
	}
	d.DynFeatures &^= ondisk.DynInlineData
	d.Inline = nil
	d.Extents = &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(e.bs, e.xattrInline()))}
	d.LastEBBlk = 0

	cl := &claims{e: e}
	start, _, err := cl.cluster(0, 1, 1)
	if err != nil {
		return err
	}
	var rootMB extent.MetaBlock
	if e.volIndexed() {
		if rootMB, err = cl.metaBlock(); err != nil {
			return cl.undo(err)
		}
	}
	blk := e.clusterBlock(start)
	trailer := e.newDirWantsTrailer()
	b, err := e.newBlock(blk, trailer)
	if err != nil {
		return cl.undo(err)
	}
	ondisk.InitDirArea(b.area, d.Blkno, parent)
	if b.trailer != nil {
		b.trailer.FreeRecLen = largestFree(b.area)
	}
	e.writeBlock(b)
	if err := e.insertData(0, start, 1); err != nil {
		return err
	}
	d.Size = uint64(e.bs)
	if !e.volIndexed() {
		return nil
	}
	root := e.newRoot(rootMB, true)
	for _, name := range []string{".", ".."} {
		root.r.Entries.Entries = append(root.r.Entries.Entries, e.dxEntry(name, blk))
	}
	root.r.NumEntries = 2
	if b.trailer.FreeRecLen != 0 {
		root.r.FreeBlk = blk
	}
	d.DynFeatures |= ondisk.DynIndexedDir
	d.DxRoot = rootMB.Blkno
	return e.writeRoot(root)
}

// expandInline turns a full inline directory into a block directory as
// ocfs2_expand_inline_dir does: the inline entries become the first block
// (its last entry stretched to the end of the area, a trailer added when
// the volume wants one), with one more block when an entry of need bytes
// would still not fit; on a volume with indexed directories the directory
// gets its index, inline in the dx root when the entries fit there with
// room for one more, else in a cluster of dx leaves claimed first.
func (e *editor) expandInline(need int) error {
	old := e.d.Inline.Data
	trailer := e.newDirWantsTrailer()
	areaLen := e.areaSize(trailer)
	if len(old) > areaLen || len(old) < ondisk.DirEntryMinRecLen {
		return e.corrupt(e.d.Blkno, "dinode", "id_count", "inline directory area of %d bytes cannot become a %d-byte block area", len(old), areaLen)
	}
	block := make([]byte, e.bs)
	copy(block, old)
	area := block[:areaLen]
	last := -1
	var names []string
	it := ondisk.NewDirIter(old)
	for it.Next() {
		last = it.Offset()
		if de := it.Entry(); de.Used() && de.Name != "" {
			names = append(names, de.Name)
		}
	}
	rl := int(binary.LittleEndian.Uint16(area[last+8:])) + areaLen - len(old)
	binary.LittleEndian.PutUint16(area[last+8:], uint16(rl))
	wanted := 1
	if int(largestFree(area)) < need {
		wanted = 2
	}
	alloc := uint32((wanted*e.bs + e.SB.ClusterSize() - 1) / e.SB.ClusterSize())

	indexed := e.volIndexed()
	dxInline := len(names) < ondisk.DXRootEntryCapacity(e.bs)
	var dxEntries []ondisk.DXEntry
	if indexed && !dxInline {
		// Distribute before claiming anything: a leaf that cannot take its
		// share is an error with nothing changed.
		per := make([]int, e.bpc)
		for _, n := range names {
			x := e.dxEntry(n, 0)
			dxEntries = append(dxEntries, x)
			per[int(x.MinorHash)&(e.bpc-1)]++
		}
		for i, k := range per {
			if k > ondisk.DXLeafCapacity(e.bs) {
				return fmt.Errorf("%s: %d names hash to dx leaf %d of capacity %d", e.owner(), k, i, ondisk.DXLeafCapacity(e.bs))
			}
		}
	}

	cl := &claims{e: e}
	var dxStart uint32
	var err error
	if indexed && !dxInline {
		if dxStart, _, err = cl.cluster(0, 1, 1); err != nil {
			return err
		}
	}
	start, n, err := cl.cluster(0, 1, alloc)
	if err != nil {
		return cl.undo(err)
	}
	var second uint32
	if alloc > n {
		if second, _, err = cl.cluster(start+n, 1, 1); err != nil {
			return cl.undo(err)
		}
	}
	var rootMB extent.MetaBlock
	if indexed {
		if rootMB, err = cl.metaBlock(); err != nil {
			return cl.undo(err)
		}
	}

	blk0 := e.clusterBlock(start)
	b0, err := e.Tx.New(blk0)
	if err != nil {
		return cl.undo(err)
	}
	copy(b0.Data, block)
	first := &dirBlock{blkno: blk0, buf: b0, area: b0.Data[:areaLen]}
	if trailer {
		first.trailer = &ondisk.DirTrailer{Blkno: blk0, ParentDinode: e.d.Blkno, FreeRecLen: largestFree(first.area)}
	}
	e.writeBlock(first)

	var leaves []*leafRef
	if indexed && !dxInline {
		if leaves, err = e.formatLeaves(e.clusterBlock(dxStart)); err != nil {
			return err
		}
		for _, x := range dxEntries {
			x.DirentBlk = blk0
			l := leaves[int(x.MinorHash)&(e.bpc-1)]
			l.l.List.Entries = append(l.l.List.Entries, x)
		}
		for _, l := range leaves {
			e.writeLeaf(l)
		}
	}

	e.d.DynFeatures &^= ondisk.DynInlineData
	e.d.Inline = nil
	e.d.Extents = &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(e.bs, e.xattrInline()))}
	e.d.Size = uint64(e.bs)
	e.d.Clusters, e.d.LastEBBlk = 0, 0
	if err := e.insertData(0, start, n); err != nil {
		return err
	}

	var root *rootRef
	if indexed {
		root = e.newRoot(rootMB, dxInline)
		if dxInline {
			for _, name := range names {
				root.r.Entries.Entries = append(root.r.Entries.Entries, e.dxEntry(name, blk0))
			}
			root.r.NumEntries = uint32(len(names))
		} else {
			root.r.NumEntries = uint32(len(dxEntries))
			if err := e.insertIndexCluster(root, 0, dxStart); err != nil {
				return err
			}
		}
		if first.trailer.FreeRecLen != 0 {
			root.r.FreeBlk = blk0
		}
		e.d.DynFeatures |= ondisk.DynIndexedDir
		e.d.DxRoot = rootMB.Blkno
		if err := e.writeRoot(root); err != nil {
			return err
		}
	}
	if alloc > n {
		if err := e.insertData(n, second, 1); err != nil {
			return err
		}
	}
	if wanted == 2 {
		if _, err := e.extend(root); err != nil {
			return err
		}
	}
	return nil
}

// extend adds a block to a block directory as ocfs2_extend_dir does: the
// next block of its last cluster, or the first block of a new cluster
// when that one is full. The block holds one unused entry (and a trailer
// when the directory has them); an indexed directory's new block goes to
// the head of the free-space list in root.
func (e *editor) extend(root *rootRef) (*dirBlock, error) {
	dr := e.dir()
	n := dr.NumBlocks()
	bpc := uint64(e.bpc)
	if n >= uint64(e.d.Clusters)*bpc {
		goal := uint32(0)
		if n > 0 {
			last, err := dr.BlockAt(n - 1)
			if err != nil {
				return nil, err
			}
			goal = uint32(last/bpc) + 1
		}
		cl := &claims{e: e}
		start, _, err := cl.cluster(goal, 1, 1)
		if err != nil {
			return nil, err
		}
		if err := e.insertData(e.d.Clusters, start, 1); err != nil {
			return nil, cl.undo(err)
		}
	}
	phys, err := dr.BlockAt(n)
	if err != nil {
		return nil, err
	}
	b, err := e.newBlock(phys, e.hasTrailer())
	if err != nil {
		return nil, err
	}
	if root != nil {
		b.trailer.FreeNext = root.r.FreeBlk
		root.r.FreeBlk = phys
		if err := e.writeRoot(root); err != nil {
			return nil, err
		}
	}
	e.writeBlock(b)
	e.d.Size = (n + 1) * uint64(e.bs)
	return b, nil
}
