package dir

import (
	"fmt"
	"slices"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// dirFacts is what checkDir learned about a directory.
type dirFacts struct {
	names      map[string]ondisk.DirEntry // live entries but "." and ".."
	blocks     uint64                     // directory blocks (0: inline)
	clusters   uint32
	indexed    bool
	inlineRoot bool
	dxClusters uint32
	listed     int // blocks on the free-space list
}

// checkDir verifies every invariant the write side promises about a
// directory (see doc.go): "." and ".." first, i_size and i_clusters
// matching the blocks, trailers where the kernel expects them with an exact
// db_free_rec_len, the free-space list holding exactly the blocks with
// room, and an index that holds exactly one entry, in the right leaf, for
// every name. Directories made by mkfs.ocfs2 break some of these (stale
// trailers, a block off the free list): strict=false skips those.
func checkDir(c *metacache.Cache, sb *ondisk.SuperBlock, d *ondisk.Dinode, strict bool) (dirFacts, error) {
	f := dirFacts{names: map[string]ondisk.DirEntry{}}
	dr := Dir{C: c, SB: sb, Inode: d}
	bs := sb.BlockSize()
	bpc := uint64(sb.BlocksPerCluster())
	fail := func(format string, args ...any) (dirFacts, error) {
		return f, fmt.Errorf("directory %d: %s", d.Blkno, fmt.Sprintf(format, args...))
	}
	metaECC := sb.Features.Incompat&ondisk.IncompatMetaECC != 0
	f.indexed = d.Inline == nil && d.DynFeatures&ondisk.DynIndexedDir != 0

	type blockInfo struct {
		phys    uint64
		trailer *ondisk.DirTrailer
		largest int
	}
	var blocks []blockInfo
	var used []struct {
		name string
		blk  uint64
	}
	pos := 0
	err := dr.ForEachBlock(func(blkno uint64, area []byte) error {
		it := ondisk.NewDirIter(area)
		for it.Next() {
			e := it.Entry()
			if !e.Used() {
				continue
			}
			switch {
			case pos == 0 && (e.Name != "." || it.Offset() != 0 || e.Inode != d.Blkno):
				return fmt.Errorf("first entry is %q -> %d at %d, want \".\" -> %d at 0", e.Name, e.Inode, it.Offset(), d.Blkno)
			case pos == 1 && (e.Name != ".." || it.Offset() != ondisk.RecLen(1)):
				return fmt.Errorf("second entry is %q at %d, want \"..\" at 16", e.Name, it.Offset())
			case pos > 1:
				if e.Name == "." || e.Name == ".." {
					return fmt.Errorf("%q appears again in block %d", e.Name, blkno)
				}
				if _, dup := f.names[e.Name]; dup {
					return fmt.Errorf("%q appears twice", e.Name)
				}
				f.names[e.Name] = e
			}
			pos++
			used = append(used, struct {
				name string
				blk  uint64
			}{e.Name, blkno})
		}
		if err := it.Err(); err != nil {
			return err
		}
		if d.Inline == nil {
			b, err := c.Get(blkno)
			if err != nil {
				return err
			}
			bi := blockInfo{phys: blkno}
			if ondisk.HasDirTrailerSignature(b.Data) {
				if bi.trailer, err = ondisk.DecodeDirTrailer(b.Data); err != nil {
					return err
				}
			}
			bi.largest, _ = ondisk.LargestFreeSpace(area)
			blocks = append(blocks, bi)
		}
		return nil
	})
	if err != nil {
		return fail("%v", err)
	}
	if pos < 2 {
		return fail("has %d entries, want at least \".\" and \"..\"", pos)
	}

	if d.Inline != nil {
		if d.Size != uint64(len(d.Inline.Data)) {
			return fail("inline i_size %d, id_count %d", d.Size, len(d.Inline.Data))
		}
		if d.Clusters != 0 || d.DynFeatures&ondisk.DynIndexedDir != 0 {
			return fail("inline directory with %d clusters, dyn features 0x%x", d.Clusters, d.DynFeatures)
		}
		return f, nil
	}
	s, err := extent.CheckShape(c, d.Extents, d.LastEBBlk, "dir")
	if err != nil {
		return fail("%v", err)
	}
	f.blocks, f.clusters = uint64(len(blocks)), d.Clusters
	if s.Clusters != uint64(d.Clusters) {
		return fail("i_clusters %d, tree maps %d", d.Clusters, s.Clusters)
	}
	if strict {
		if d.Size != f.blocks*uint64(bs) {
			return fail("i_size %d for %d blocks", d.Size, f.blocks)
		}
		if (f.blocks-1)/bpc != uint64(d.Clusters)-1 {
			return fail("%d blocks in %d clusters", f.blocks, d.Clusters)
		}
	}
	wantTrailer := ondisk.DirHasTrailer(metaECC, false, f.indexed)
	withRoom := map[uint64]bool{}
	for i, b := range blocks {
		if wantTrailer && b.trailer == nil {
			return fail("block %d (%d) has no trailer", i, b.phys)
		}
		if b.trailer == nil {
			continue
		}
		if b.trailer.Blkno != b.phys || b.trailer.ParentDinode != d.Blkno {
			return fail("block %d trailer says block %d of %d", b.phys, b.trailer.Blkno, b.trailer.ParentDinode)
		}
		if strict && int(b.trailer.FreeRecLen) != b.largest {
			return fail("block %d: db_free_rec_len %d, largest hole %d", b.phys, b.trailer.FreeRecLen, b.largest)
		}
		if !f.indexed && b.trailer.FreeNext != 0 {
			return fail("block %d of an unindexed directory has db_free_next %d", b.phys, b.trailer.FreeNext)
		}
		if b.trailer.FreeRecLen != 0 {
			withRoom[b.phys] = true
		}
	}
	if !f.indexed {
		return f, nil
	}

	root, err := c.DXRoot(d.DxRoot, d.Blkno)
	if err != nil {
		return fail("%v", err)
	}
	if root.NumEntries != uint32(len(used)) {
		return fail("dr_num_entries %d, %d live entries", root.NumEntries, len(used))
	}
	trailers := map[uint64]*ondisk.DirTrailer{}
	for _, b := range blocks {
		trailers[b.phys] = b.trailer
	}
	onList := map[uint64]bool{}
	for next := root.FreeBlk; next != 0; {
		t, ok := trailers[next]
		if !ok {
			return fail("free list reaches block %d, not one of the directory's", next)
		}
		if onList[next] {
			return fail("free list loops at block %d", next)
		}
		onList[next] = true
		next = t.FreeNext
	}
	f.listed = len(onList)
	for blk, t := range trailers {
		if !onList[blk] && t.FreeNext != 0 {
			return fail("block %d is off the free list but has db_free_next %d", blk, t.FreeNext)
		}
		if strict && onList[blk] != withRoom[blk] {
			return fail("block %d: on the free list %v, db_free_rec_len %d", blk, onList[blk], t.FreeRecLen)
		}
	}

	type key struct {
		major, minor uint32
		blk          uint64
	}
	want := map[key]int{}
	for _, u := range used {
		ma, mi := ondisk.DXHashString(u.name, sb.DxSeed, ondisk.SignedChar)
		want[key{ma, mi, u.blk}]++
	}
	have := map[key]int{}
	f.inlineRoot = root.Inline()
	if root.Inline() {
		if root.Clusters != 0 || int(root.Entries.Count) != ondisk.DXRootEntryCapacity(bs) {
			return fail("inline dx root: dr_clusters %d, de_count %d", root.Clusters, root.Entries.Count)
		}
		for _, x := range root.Entries.Entries {
			have[key{x.MajorHash, x.MinorHash, x.DirentBlk}]++
		}
	} else {
		rs, err := extent.CheckShape(c, &root.List, root.LastEBBlk, "dx")
		if err != nil {
			return fail("%v", err)
		}
		if rs.Clusters != uint64(root.Clusters) {
			return fail("dr_clusters %d, index tree maps %d", root.Clusters, rs.Clusters)
		}
		f.dxClusters = root.Clusters
		err = extent.Walk(c, &root.List, "dx", func(r ondisk.ExtentRec) error {
			for blk := r.Blkno; blk < r.Blkno+uint64(r.Clusters)*bpc; blk++ {
				leaf, err := c.DXLeaf(blk)
				if err != nil {
					return err
				}
				if int(leaf.List.Count) != ondisk.DXLeafCapacity(bs) {
					return fmt.Errorf("leaf %d: de_count %d", blk, leaf.List.Count)
				}
				for _, x := range leaf.List.Entries {
					at, ok, err := dr.dxLeafFor(root, x.MajorHash, x.MinorHash)
					if err != nil || !ok || at != blk {
						return fmt.Errorf("entry %s sits in leaf %d, lookups go to %d (%v %v)", x, blk, at, ok, err)
					}
					have[key{x.MajorHash, x.MinorHash, x.DirentBlk}]++
				}
			}
			return nil
		})
		if err != nil {
			return fail("%v", err)
		}
	}
	if len(have) != len(want) {
		return fail("index holds %d distinct entries, the blocks %d", len(have), len(want))
	}
	for k, n := range want {
		if have[k] != n {
			return fail("index entry (0x%08x 0x%08x) %d: %d times, want %d", k.major, k.minor, k.blk, have[k], n)
		}
	}
	return f, nil
}

// sortedNames lists a model's names in order, for deterministic picks.
func sortedNames(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
