package alloc

import (
	"errors"
	"fmt"
	"sort"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Problem is one broken allocator invariant: the block, structure and
// field, and what is wrong with the expected value.
type Problem struct {
	Blkno  uint64
	Struct string
	Field  string
	Msg    string
}

func (p Problem) String() string {
	s := fmt.Sprintf("block %d: %s", p.Blkno, p.Struct)
	if p.Field != "" {
		s += ": " + p.Field
	}
	return s + ": " + p.Msg
}

// Checker verifies allocators against every rule in the package doc,
// reading blocks through the cache without trusting them: damage becomes a
// Problem, and only device errors are returned as errors. Tests use it
// after every change; fsck will build its allocator passes on it.
type Checker struct {
	C   *metacache.Cache
	Geo Geometry
	// GlobalBitmap is the global_bitmap inode: suballocator groups and
	// local alloc windows are checked against it (0: no cross-checks).
	GlobalBitmap uint64

	problems []Problem
	owners   []owned
	global   map[uint64]*ondisk.GroupDesc // global bitmap groups by block
}

// owned is a cluster run some allocator structure occupies.
type owned struct {
	run  ClusterRun
	what string
	blk  uint64
}

func (k *Checker) add(blk uint64, structName, field, format string, args ...any) {
	k.problems = append(k.problems, Problem{Blkno: blk, Struct: structName, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// absorb turns a corruption error into a Problem; other errors are
// returned.
func (k *Checker) absorb(err error, blk uint64, structName string) error {
	var ce *ondisk.CorruptError
	if errors.As(err, &ce) {
		b := blk
		if ce.HasBlk {
			b = ce.Blkno
		}
		k.problems = append(k.problems, Problem{Blkno: b, Struct: ce.Struct, Field: ce.Field, Msg: ce.Msg})
		return nil
	}
	if err != nil && structName != "" {
		return fmt.Errorf("%s at block %d: %w", structName, blk, err)
	}
	return err
}

// Check verifies the chain allocators and local allocs given by inode
// block, then that no two of them (nor the volume's own clusters) claim
// the same cluster. It returns every problem found.
func (k *Checker) Check(chainAllocators, localAllocs []uint64) ([]Problem, error) {
	k.problems, k.owners, k.global = nil, nil, nil
	if k.GlobalBitmap != 0 {
		if err := k.loadGlobal(); err != nil {
			return nil, err
		}
	}
	for _, blk := range chainAllocators {
		if err := k.chainAllocator(blk); err != nil {
			return nil, err
		}
	}
	for _, blk := range localAllocs {
		if err := k.localAlloc(blk); err != nil {
			return nil, err
		}
	}
	k.overlaps()
	out := k.problems
	k.problems = nil
	return out, nil
}

// readDinode reads an inode block for checking; nil when damaged (a
// problem was recorded).
func (k *Checker) readDinode(blk uint64) (*ondisk.Dinode, error) {
	if blk >= k.C.Blocks() {
		k.add(blk, "dinode", "", "block beyond the device's %d blocks", k.C.Blocks())
		return nil, nil
	}
	b, err := k.C.GetChecked(blk, ondisk.DinodeCheckOffset, "dinode")
	if err != nil {
		return nil, k.absorb(err, blk, "dinode")
	}
	d, err := ondisk.DecodeDinode(b.Data)
	if err == nil {
		err = d.SelfCheck(blk, k.C.FSGeneration())
	}
	if err != nil {
		return nil, k.absorb(err, blk, "dinode")
	}
	return d, nil
}

// readGroup reads a group descriptor for checking; nil when damaged.
func (k *Checker) readGroup(blk uint64) (*ondisk.GroupDesc, error) {
	if blk == 0 || blk >= k.C.Blocks() {
		k.add(blk, structGroup, "bg_blkno", "group block %d outside the device's %d blocks", blk, k.C.Blocks())
		return nil, nil
	}
	b, err := k.C.GetChecked(blk, ondisk.GroupDescCheckOffset, structGroup)
	if err != nil {
		return nil, k.absorb(err, blk, structGroup)
	}
	g, err := ondisk.DecodeGroupDesc(b.Data)
	if err == nil {
		err = g.SelfCheck(blk, k.C.FSGeneration())
	}
	if err != nil {
		return nil, k.absorb(err, blk, structGroup)
	}
	return g, nil
}

func (k *Checker) loadGlobal() error {
	k.global = map[uint64]*ondisk.GroupDesc{}
	d, err := k.readDinode(k.GlobalBitmap)
	if err != nil || d == nil || d.Chain == nil {
		return err
	}
	for _, r := range d.Chain.Recs {
		seen := map[uint64]bool{}
		for blk := r.Blkno; blk != 0 && !seen[blk] && len(seen) <= 1<<20; {
			seen[blk] = true
			g, err := k.readGroup(blk)
			if err != nil {
				return err
			}
			if g == nil {
				break
			}
			k.global[blk] = g
			blk = g.NextGroup
		}
	}
	return nil
}

// clusterUsed tests cluster c in the global bitmap groups loaded.
func (k *Checker) clusterUsed(c uint32) (bool, bool) {
	if c >= k.Geo.Clusters {
		return false, false
	}
	idx := k.Geo.globalGroupIndex(c)
	g := k.global[k.Geo.globalGroupBlkno(idx)]
	if g == nil {
		return false, false
	}
	return g.Test(int(c) - idx*k.Geo.GlobalCPG), true
}

func (k *Checker) chainAllocator(blk uint64) error {
	d, err := k.readDinode(blk)
	if err != nil || d == nil {
		return err
	}
	if d.Flags&ondisk.InodeChain == 0 || d.Flags&ondisk.InodeBitmap == 0 || d.Chain == nil {
		k.add(blk, structAllocator, "i_flags", "is 0x%x, a chain allocator needs CHAIN_FL|BITMAP_FL", d.Flags)
		return nil
	}
	isGlobal := blk == k.GlobalBitmap
	cl := d.Chain
	wantBPC := k.Geo.BlocksPerCluster
	if isGlobal {
		wantBPC = 1
		if int(cl.CPG) != k.Geo.GlobalCPG {
			k.add(blk, structAllocator, "cl_cpg", "is %d, want %d", cl.CPG, k.Geo.GlobalCPG)
		}
	}
	if int(cl.BPC) != wantBPC {
		k.add(blk, structAllocator, "cl_bpc", "is %d, want %d", cl.BPC, wantBPC)
		return nil
	}
	if cl.CPG == 0 {
		k.add(blk, structAllocator, "cl_cpg", "is 0")
		return nil
	}
	if want := ondisk.ChainRecsPerInode(k.Geo.BlockSize); int(cl.Count) != want {
		k.add(blk, structAllocator, "cl_count", "is %d, want %d", cl.Count, want)
	}
	var sumFree, sumTotal uint64
	seen := map[uint64]bool{}
	globalIdx := map[int]bool{}
	for ci, rec := range cl.Recs {
		field := fmt.Sprintf("cl_recs[%d]", ci)
		sumFree += uint64(rec.Free)
		sumTotal += uint64(rec.Total)
		if rec.Blkno == 0 {
			k.add(blk, structAllocator, field, "chain is empty (c_blkno 0)")
			continue
		}
		var free, total uint64
		prev := uint64(0)
		for g := rec.Blkno; g != 0; {
			if g >= k.C.Blocks() {
				if prev == 0 {
					k.add(blk, structAllocator, field+".c_blkno", "is %d, beyond the device's %d blocks", g, k.C.Blocks())
				} else {
					k.add(prev, structGroup, "bg_next_group", "is %d, beyond the device's %d blocks", g, k.C.Blocks())
				}
				break
			}
			if seen[g] {
				at, st, f := blk, structAllocator, field+".c_blkno"
				if prev != 0 {
					at, st, f = prev, structGroup, "bg_next_group"
				}
				k.add(at, st, f, "reaches group %d a second time (chain %d loops or shares a group)", g, ci)
				break
			}
			seen[g] = true
			gd, err := k.readGroup(g)
			if err != nil {
				return err
			}
			if gd == nil {
				break
			}
			k.group(d, gd, ci, isGlobal, globalIdx)
			free += uint64(gd.FreeBitsCount)
			total += uint64(gd.Bits)
			prev, g = g, gd.NextGroup
		}
		if free != uint64(rec.Free) || total != uint64(rec.Total) {
			k.add(blk, structAllocator, field, "c_free %d / c_total %d, but the groups hold %d free of %d", rec.Free, rec.Total, free, total)
		}
	}
	bm := d.Bitmap()
	if uint64(bm.Total) != sumTotal || int64(bm.Used) != int64(sumTotal)-int64(sumFree) {
		k.add(blk, structAllocator, "bitmap1", "i_used %d / i_total %d, but the chains have %d used of %d", bm.Used, bm.Total, int64(sumTotal)-int64(sumFree), sumTotal)
	}
	if wantClusters := sumTotal / uint64(cl.BPC); uint64(d.Clusters) != wantClusters {
		k.add(blk, structAllocator, "i_clusters", "is %d, the chains hold %d clusters", d.Clusters, wantClusters)
	}
	if wantSize := uint64(d.Clusters) << k.Geo.ClusterBits; d.Size != wantSize {
		k.add(blk, structAllocator, "i_size", "is %d, want i_clusters * cluster size = %d", d.Size, wantSize)
	}
	if isGlobal {
		if bm.Total != k.Geo.Clusters {
			k.add(blk, structAllocator, "bitmap1.i_total", "is %d, the volume has %d clusters", bm.Total, k.Geo.Clusters)
		}
		for i := 0; i < ondisk.GlobalBitmapGroups(k.Geo.Clusters, k.Geo.GlobalCPG); i++ {
			if !globalIdx[i] {
				k.add(blk, structAllocator, "cl_recs", "global bitmap group %d (block %d) is in no chain", i, k.Geo.globalGroupBlkno(i))
			}
		}
		if k.global != nil {
			for _, c := range k.Geo.protectedClusters() {
				if used, ok := k.clusterUsed(c); ok && !used {
					k.add(k.Geo.globalGroupBlkno(k.Geo.globalGroupIndex(c)), structGroup, "bg_bitmap", "cluster %d holds the superblock, a group descriptor or a backup superblock but is free", c)
				}
			}
		}
	}
	return nil
}

// group checks one group descriptor of allocator d, chain ci.
func (k *Checker) group(d *ondisk.Dinode, g *ondisk.GroupDesc, ci int, isGlobal bool, globalIdx map[int]bool) {
	blk := g.Blkno
	cl := d.Chain
	if g.ParentDinode != d.Blkno {
		k.add(blk, structGroup, "bg_parent_dinode", "is %d, want %d", g.ParentDinode, d.Blkno)
	}
	if int(g.Chain) != ci {
		k.add(blk, structGroup, "bg_chain", "is %d, but the group is in chain %d", g.Chain, ci)
	}
	if int(g.Bits) > cl.BitsPerGroup() {
		k.add(blk, structGroup, "bg_bits", "is %d, more than cl_cpg*cl_bpc %d", g.Bits, cl.BitsPerGroup())
	}
	if used := g.CountSet(); int(g.Bits)-used != int(g.FreeBitsCount) {
		k.add(blk, structGroup, "bg_free_bits_count", "is %d, the bitmap has %d of %d free", g.FreeBitsCount, int(g.Bits)-used, g.Bits)
	}
	if !g.Test(0) {
		k.add(blk, structGroup, "bg_bitmap", "bit 0 (the group's own descriptor) is free")
	}
	// bg_size: the rest of the block, or 256 for suballocator groups made
	// after discontig-bg was turned on (tunefs can turn it on later, so
	// both sizes are valid there).
	full := k.Geo.BlockSize - ondisk.GroupDescBitmapOffset
	if size := len(g.Bitmap); size != full && (isGlobal || !k.Geo.DiscontigBG() || size != ondisk.MaxSuballocBitmapBytes) {
		k.add(blk, structGroup, "bg_size", "is %d, want %d", size, ondisk.GroupBitmapBytes(k.Geo.BlockSize, !isGlobal, k.Geo.Incompat))
	}
	if isGlobal {
		first, idx, ok := k.Geo.globalGroupFirstCluster(blk)
		if !ok {
			k.add(blk, structGroup, "bg_blkno", "no global bitmap group lives at block %d", blk)
			return
		}
		globalIdx[idx] = true
		if want := ondisk.GlobalBitmapGroupBits(idx, k.Geo.Clusters, k.Geo.GlobalCPG); int(g.Bits) != want {
			k.add(blk, structGroup, "bg_bits", "is %d, group %d (clusters from %d) has %d", g.Bits, idx, first, want)
		}
		return
	}
	// Suballocator group: which clusters it covers.
	var runs []ClusterRun
	if g.Discontig() {
		if g.List.TreeDepth != 0 {
			k.add(blk, structGroup, "bg_list.l_tree_depth", "is %d, want 0", g.List.TreeDepth)
		}
		if want := ondisk.ExtentRecsPerGroupDesc(k.Geo.BlockSize); int(g.List.Count) != want {
			k.add(blk, structGroup, "bg_list.l_count", "is %d, want %d", g.List.Count, want)
		}
		if !k.Geo.DiscontigBG() {
			k.add(blk, structGroup, "bg_list", "a discontiguous group on a volume without discontig-bg")
		}
		cpos := uint32(0)
		for i, r := range g.List.Recs {
			if r.Cpos != cpos || r.Clusters == 0 || r.Blkno%uint64(k.Geo.BlocksPerCluster) != 0 {
				k.add(blk, structGroup, fmt.Sprintf("bg_list.l_recs[%d]", i), "cpos %d, %d clusters at block %d; want cpos %d, clusters > 0, a cluster-aligned block", r.Cpos, r.Clusters, r.Blkno, cpos)
			}
			cpos += r.Clusters
			runs = append(runs, ClusterRun{Start: k.Geo.BlockCluster(r.Blkno), Count: int(r.Clusters)})
		}
		if g.List.Recs[0].Blkno != blk {
			k.add(blk, structGroup, "bg_list.l_recs[0]", "starts at block %d, not at the descriptor", g.List.Recs[0].Blkno)
		}
		if int(cpos)*int(cl.BPC) != int(g.Bits) {
			k.add(blk, structGroup, "bg_bits", "is %d, the extents hold %d clusters of %d bits", g.Bits, cpos, cl.BPC)
		}
	} else {
		if int(g.Bits) != cl.BitsPerGroup() {
			k.add(blk, structGroup, "bg_bits", "is %d, a contiguous group has cl_cpg*cl_bpc = %d", g.Bits, cl.BitsPerGroup())
		}
		if blk%uint64(k.Geo.BlocksPerCluster) != 0 {
			k.add(blk, structGroup, "bg_blkno", "block %d is not the first of a cluster", blk)
		}
		runs = []ClusterRun{{Start: k.Geo.BlockCluster(blk), Count: int(cl.CPG)}}
	}
	for _, r := range runs {
		k.owners = append(k.owners, owned{run: r, what: fmt.Sprintf("group %d of allocator %d", blk, d.Blkno), blk: blk})
		if k.global == nil {
			continue
		}
		for c := uint64(r.Start); c < r.End(); c++ {
			if used, ok := k.clusterUsed(uint32(c)); ok && !used {
				k.add(blk, structGroup, "bg_blkno", "cluster %d of the group is free in the global bitmap", c)
				break
			} else if !ok {
				k.add(blk, structGroup, "bg_blkno", "cluster %d of the group lies outside the global bitmap", c)
				break
			}
		}
	}
}

func (k *Checker) localAlloc(blk uint64) error {
	d, err := k.readDinode(blk)
	if err != nil || d == nil {
		return err
	}
	if d.Flags&ondisk.InodeLocalAlloc == 0 || d.Flags&ondisk.InodeBitmap == 0 || d.LocalAlloc == nil {
		k.add(blk, structLocalAlloc, "i_flags", "is 0x%x, a local alloc needs LOCAL_ALLOC_FL|BITMAP_FL", d.Flags)
		return nil
	}
	l := d.LocalAlloc
	bm := d.Bitmap()
	if max := ondisk.LocalAllocBitmapBytes(k.Geo.BlockSize); len(l.Bitmap) == 0 || len(l.Bitmap) > max {
		k.add(blk, structLocalAlloc, "la_size", "is %d, want 1..%d", len(l.Bitmap), max)
		return nil
	}
	if int(bm.Total) > 8*len(l.Bitmap) {
		k.add(blk, structLocalAlloc, "bitmap1.i_total", "is %d, la_bitmap holds %d bits", bm.Total, 8*len(l.Bitmap))
		return nil
	}
	if n := countSet(l.Bitmap, 8*len(l.Bitmap)); n != int(bm.Used) {
		k.add(blk, structLocalAlloc, "bitmap1.i_used", "is %d, la_bitmap has %d bits set", bm.Used, n)
	}
	if n := countSet(l.Bitmap, 8*len(l.Bitmap)) - countSet(l.Bitmap, int(bm.Total)); n != 0 {
		k.add(blk, structLocalAlloc, "la_bitmap", "%d bits set past the %d-bit window", n, bm.Total)
	}
	if bm.Total == 0 {
		if l.BmOff != 0 {
			k.add(blk, structLocalAlloc, "la_bm_off", "is %d for an empty window", l.BmOff)
		}
		return nil
	}
	if uint64(l.BmOff)+uint64(bm.Total) > uint64(k.Geo.Clusters) {
		k.add(blk, structLocalAlloc, "la_bm_off", "window of %d clusters from %d runs past the volume's %d", bm.Total, l.BmOff, k.Geo.Clusters)
		return nil
	}
	k.owners = append(k.owners, owned{run: ClusterRun{Start: l.BmOff, Count: int(bm.Total)}, what: fmt.Sprintf("local alloc %d window", blk), blk: blk})
	if k.global != nil {
		for i := 0; i < int(bm.Total); i++ {
			if testBit(l.Bitmap, i) {
				continue
			}
			if used, ok := k.clusterUsed(l.BmOff + uint32(i)); ok && !used {
				k.add(blk, structLocalAlloc, "la_bitmap", "window cluster %d (bit %d) is unused but free in the global bitmap", l.BmOff+uint32(i), i)
				break
			}
		}
	}
	return nil
}

// overlaps reports clusters claimed twice among the runs collected, and
// runs over the volume's own clusters.
func (k *Checker) overlaps() {
	all := append([]owned(nil), k.owners...)
	for _, c := range k.Geo.protectedClusters() {
		all = append(all, owned{run: ClusterRun{Start: c, Count: 1}, what: "the volume's own cluster"})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].run.Start < all[j].run.Start })
	// far: the run reaching furthest among those already seen.
	var far owned
	for i, cur := range all {
		if i > 0 && uint64(cur.run.Start) < far.run.End() {
			blk := cur.blk
			if blk == 0 {
				blk = far.blk
			}
			k.add(blk, structGroup, "", "clusters %d..%d of %s overlap %s", cur.run.Start, min(far.run.End(), cur.run.End())-1, cur.what, far.what)
		}
		if i == 0 || cur.run.End() > far.run.End() {
			far = cur
		}
	}
}
