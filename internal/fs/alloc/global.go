package alloc

import (
	"fmt"
	"slices"
	"sort"

	"o2go/internal/fs/metacache"
)

// ClusterRun is a run of contiguous clusters: Count clusters from cluster
// Start (the global bitmap bit; its first block is Start * blocks per
// cluster).
type ClusterRun struct {
	Start uint32
	Count int
}

// End is the first cluster after the run.
func (r ClusterRun) End() uint64 { return uint64(r.Start) + uint64(r.Count) }

// GlobalBitmap is the global_bitmap: one bit per cluster of the volume, in
// groups of cl_cpg = 8 * (block size - 64) clusters whose descriptor is the
// first block of the group's first cluster (group 0's sits right after the
// superblock, at s_first_cluster_group).
//
// A claim takes one contiguous run inside one group, as the kernel's
// __ocfs2_claim_clusters does: at most cpg-1 clusters, and a request whose
// minimum exceeds that fails. Frees may span groups. The clusters the
// volume's own structures occupy — the superblock and everything before
// group 0's descriptor, every group descriptor's cluster, every backup
// superblock's cluster — are never freed: asking is an error.
type GlobalBitmap struct {
	a         *ChainAllocator
	protected []uint32
	// freed counts clusters freed since the bitmap was opened: a disabled
	// local alloc looks at it to know when to try again (the kernel's
	// ocfs2_local_alloc_seen_free_bits).
	freed uint64
	hint  uint64
}

// OpenGlobalBitmap returns the global bitmap at inode blkno.
func OpenGlobalBitmap(c *metacache.Cache, geo Geometry, blkno uint64) (*GlobalBitmap, error) {
	a := &ChainAllocator{c: c, geo: geo, blkno: blkno, name: "global_bitmap", global: true, slot: GlobalInodeAllocSlot}
	ai, err := a.load()
	if err != nil {
		return nil, err
	}
	if int(ai.d.Chain.CPG) != geo.GlobalCPG {
		return nil, a.corrupt(blkno, structAllocator, "cl_cpg", "is %d, the global bitmap of %d-byte blocks has %d", ai.d.Chain.CPG, geo.BlockSize, geo.GlobalCPG)
	}
	return &GlobalBitmap{a: a, protected: geo.protectedClusters()}, nil
}

// Blkno is the global bitmap inode's block.
func (gb *GlobalBitmap) Blkno() uint64 { return gb.a.blkno }

// Allocator is the chain allocator underneath (for the Checker and tools).
func (gb *GlobalBitmap) Allocator() *ChainAllocator { return gb.a }

// Usage reads the bitmap's cluster counts.
func (gb *GlobalBitmap) Usage() (Usage, error) { return gb.a.Usage() }

// MaxRun is the longest run one claim can return: cpg - 1 clusters.
func (gb *GlobalBitmap) MaxRun() int { return gb.a.geo.GlobalCPG - 1 }

// ClaimClusters takes one run of min..max contiguous clusters. With goal
// != 0 the group holding cluster goal is searched first, from goal on, then
// from its start; then the kernel's order (see ChainAllocator). max is cut
// to MaxRun; a min above it is ErrNoSpace, as in the kernel.
func (gb *GlobalBitmap) ClaimClusters(tx metacache.Tx, goal uint32, min, max int) (ClusterRun, error) {
	hint, goalBit := uint64(0), -1
	if goal != 0 && goal < gb.a.geo.Clusters {
		idx := gb.a.geo.globalGroupIndex(goal)
		hint = gb.a.geo.globalGroupBlkno(idx)
		goalBit = int(goal) - idx*gb.a.geo.GlobalCPG
	}
	start, n, err := gb.claimRun(tx, max, min, hint, goalBit, false)
	if err != nil {
		return ClusterRun{}, err
	}
	return ClusterRun{Start: start, Count: n}, nil
}

// claimRun is ClaimClusters with the kernel's knobs: a hint group, a goal
// bit inside it, and no chain relink (discontiguous group growth).
func (gb *GlobalBitmap) claimRun(tx metacache.Tx, want, min int, hint uint64, goalBit int, noRelink bool) (uint32, int, error) {
	maxRun := gb.MaxRun()
	if min <= 0 || want < min {
		return 0, 0, fmt.Errorf("global_bitmap: claim of %d..%d clusters", min, want)
	}
	if min > maxRun {
		return 0, 0, gb.a.noSpace("a run of %d clusters exceeds a group's %d", min, maxRun)
	}
	want = minInt(want, maxRun)
	if hint == 0 {
		hint = gb.hint
	}
	res, err := gb.a.claim(tx, claimRequest{want: want, min: min, hint: hint, goalBit: goalBit, noRelink: noRelink})
	if err != nil {
		return 0, 0, err
	}
	gb.hint = gb.a.hint
	first, _, ok := gb.a.geo.globalGroupFirstCluster(res.group.Blkno)
	if !ok {
		return 0, 0, fmt.Errorf("global_bitmap: claimed from block %d, which is no group (o2go bug)", res.group.Blkno)
	}
	return first + uint32(res.bit), res.n, nil
}

// FreeClusters frees count clusters from start.
func (gb *GlobalBitmap) FreeClusters(tx metacache.Tx, start uint32, count int) error {
	return gb.FreeClusterRuns(tx, []ClusterRun{{Start: start, Count: count}})
}

// FreeClusterRuns frees runs of clusters in one go: every cluster must be
// in use and none may be one of the volume's own (see GlobalBitmap); all
// runs are checked before anything is written.
func (gb *GlobalBitmap) FreeClusterRuns(tx metacache.Tx, runs []ClusterRun) error {
	geo := gb.a.geo
	var bitRuns []bitRun
	for _, r := range runs {
		if r.Count <= 0 {
			continue
		}
		if r.End() > uint64(geo.Clusters) {
			return fmt.Errorf("global_bitmap: freeing clusters %d..%d beyond the volume's %d", r.Start, r.End()-1, geo.Clusters)
		}
		if i := sort.Search(len(gb.protected), func(i int) bool { return gb.protected[i] >= r.Start }); i < len(gb.protected) && uint64(gb.protected[i]) < r.End() {
			return fmt.Errorf("global_bitmap: freeing clusters %d..%d would free cluster %d, which holds the superblock, a group descriptor or a backup superblock", r.Start, r.End()-1, gb.protected[i])
		}
		for c := uint64(r.Start); c < r.End(); {
			idx := int(c) / geo.GlobalCPG
			groupEnd := uint64(idx+1) * uint64(geo.GlobalCPG)
			n := minInt(int(r.End()-c), int(groupEnd-c))
			bitRuns = append(bitRuns, bitRun{group: geo.globalGroupBlkno(idx), bit: int(c) - idx*geo.GlobalCPG, n: n})
			c += uint64(n)
		}
	}
	if err := gb.a.free(tx, bitRuns); err != nil {
		return err
	}
	for _, r := range bitRuns {
		gb.freed += uint64(r.n)
	}
	return nil
}

// ClusterUsed reports whether cluster c is set in the bitmap.
func (gb *GlobalBitmap) ClusterUsed(c uint32) (bool, error) {
	geo := gb.a.geo
	if c >= geo.Clusters {
		return false, fmt.Errorf("global_bitmap: cluster %d beyond the volume's %d", c, geo.Clusters)
	}
	idx := geo.globalGroupIndex(c)
	g, err := gb.a.c.GroupDesc(geo.globalGroupBlkno(idx))
	if err != nil {
		return false, err
	}
	return g.Test(int(c) - idx*geo.GlobalCPG), nil
}

// Protected lists the clusters no free may clear (see GlobalBitmap).
func (gb *GlobalBitmap) Protected() []uint32 { return slices.Clone(gb.protected) }

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}
