package alloc

import (
	"errors"
	"fmt"

	"o2go/internal/ondisk"
)

// ErrNoSpace says an allocator has no run of bits that satisfies a request
// (ENOSPC). It is wrapped with the allocator and the request; test with
// errors.Is.
var ErrNoSpace = errors.New("no space left")

// Geometry is what the allocators need to know about the volume, taken
// from its superblock.
type Geometry struct {
	BlockSize        int
	BlockBits        uint
	ClusterSize      int
	ClusterBits      uint
	BlocksPerCluster int
	// Clusters is the volume size in clusters: the global bitmap's bits.
	Clusters uint32
	// FirstClusterGroup is the block of global bitmap group 0's descriptor
	// (s_first_cluster_group); every other group's descriptor is the first
	// block of its first cluster.
	FirstClusterGroup uint64
	// GlobalCPG is the global bitmap's clusters per group (cl_cpg there).
	GlobalCPG int
	// Incompat is s_feature_incompat (DISCONTIG_BG decides how
	// suballocators grow and how big their bitmaps are).
	Incompat uint32
	// Slots is s_max_slots: a local alloc window never takes more than a
	// slot's share of the volume.
	Slots int
	// Generation is the volume's generation, stamped into new groups.
	Generation uint32
}

// NewGeometry reads a Geometry from the superblock's dinode.
func NewGeometry(super *ondisk.Dinode) (Geometry, error) {
	if super == nil || super.Super == nil {
		return Geometry{}, errors.New("alloc: geometry needs the superblock dinode")
	}
	sb := super.Super
	if sb.BlockSizeBits < 9 || sb.BlockSizeBits > 12 || sb.ClusterSizeBits < 12 || sb.ClusterSizeBits > 20 {
		return Geometry{}, &ondisk.CorruptError{Struct: "superblock", Field: "s_blocksize_bits",
			Msg: fmt.Sprintf("block size 2^%d / cluster size 2^%d outside 512..4096 / 4K..1M", sb.BlockSizeBits, sb.ClusterSizeBits)}
	}
	g := Geometry{
		BlockSize:         1 << sb.BlockSizeBits,
		BlockBits:         uint(sb.BlockSizeBits),
		ClusterSize:       1 << sb.ClusterSizeBits,
		ClusterBits:       uint(sb.ClusterSizeBits),
		BlocksPerCluster:  1 << (sb.ClusterSizeBits - sb.BlockSizeBits),
		Clusters:          super.Clusters,
		FirstClusterGroup: sb.FirstClusterGroup,
		GlobalCPG:         ondisk.GlobalBitmapClustersPerGroup(1 << sb.BlockSizeBits),
		Incompat:          sb.Features.Incompat,
		Slots:             int(sb.MaxSlots),
		Generation:        super.FSGeneration,
	}
	return g, nil
}

// DiscontigBG reports whether suballocators may grow by discontiguous
// block groups.
func (g Geometry) DiscontigBG() bool { return g.Incompat&ondisk.IncompatDiscontigBG != 0 }

// ClusterBlock is the first block of cluster c.
func (g Geometry) ClusterBlock(c uint32) uint64 { return uint64(c) * uint64(g.BlocksPerCluster) }

// BlockCluster is the cluster holding block b.
func (g Geometry) BlockCluster(b uint64) uint32 { return uint32(b / uint64(g.BlocksPerCluster)) }

// MegabytesToClusters converts a size in MiB to clusters (at least 1).
func (g Geometry) MegabytesToClusters(mb int) int {
	n := int((uint64(mb) << 20) >> g.ClusterBits)
	return max(n, 1)
}

// globalGroupIndex is the global bitmap group holding cluster c.
func (g Geometry) globalGroupIndex(c uint32) int { return int(c) / g.GlobalCPG }

// globalGroupBlkno is the descriptor block of global bitmap group i.
func (g Geometry) globalGroupBlkno(i int) uint64 {
	return ondisk.GlobalBitmapGroupBlkno(i, g.GlobalCPG, g.BlocksPerCluster, g.FirstClusterGroup)
}

// globalGroupFirstCluster is the cluster global bitmap group descriptor
// blkno starts at, as the kernel computes it (group 0 starts at cluster 0
// although its descriptor sits in a later block). ok is false when blkno is
// not where any group's descriptor lives.
func (g Geometry) globalGroupFirstCluster(blkno uint64) (c uint32, index int, ok bool) {
	if blkno == g.FirstClusterGroup {
		return 0, 0, true
	}
	if blkno%uint64(g.BlocksPerCluster) != 0 {
		return 0, 0, false
	}
	cl := blkno / uint64(g.BlocksPerCluster)
	if cl == 0 || cl%uint64(g.GlobalCPG) != 0 || cl >= uint64(g.Clusters) {
		return 0, 0, false
	}
	return uint32(cl), int(cl / uint64(g.GlobalCPG)), true
}

// protectedClusters lists the clusters the volume's own structures occupy in
// the global bitmap and that no free may clear: the superblock's cluster(s)
// up to group 0's descriptor, each group descriptor's cluster, and the
// cluster of every backup superblock. Sorted ascending.
func (g Geometry) protectedClusters() []uint32 {
	var out []uint32
	for c := uint32(0); c <= g.BlockCluster(g.FirstClusterGroup); c++ {
		out = append(out, c)
	}
	groups := ondisk.GlobalBitmapGroups(g.Clusters, g.GlobalCPG)
	backups := ondisk.BackupSuperBlockBlknos(g.BlockSize, uint64(g.Clusters)*uint64(g.BlocksPerCluster))
	bi := 0
	for i := 1; i < groups; i++ {
		c := uint32(i * g.GlobalCPG)
		for bi < len(backups) && g.BlockCluster(backups[bi]) < c {
			out = append(out, g.BlockCluster(backups[bi]))
			bi++
		}
		out = append(out, c)
	}
	for ; bi < len(backups); bi++ {
		out = append(out, g.BlockCluster(backups[bi]))
	}
	// A backup superblock could share a cluster with a group descriptor
	// only if it sat at a multiple of cpg clusters; dedupe anyway.
	dst := out[:0]
	for i, c := range out {
		if i == 0 || c != out[i-1] {
			dst = append(dst, c)
		}
	}
	return dst
}
