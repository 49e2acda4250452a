// Package alloc owns OCFS2 space allocation, done bit for bit the way the
// kernel (fs/ocfs2/suballoc.c, localalloc.c, reservations.c) and libocfs2
// (chainalloc.c, alloc.c) do it, so that the kernel, fsck.ocfs2 and
// debugfs.ocfs2 agree with every bitmap o2go touches:
//
//   - ChainAllocator: one chain allocator inode (global_bitmap,
//     global_inode_alloc, inode_alloc:N, extent_alloc:N): claiming and
//     freeing runs of bits, and growing a suballocator by a new block group
//     (contiguous, or discontiguous on DISCONTIG_BG volumes).
//   - GlobalBitmap: the global_bitmap, whose bits are clusters: contiguous
//     runs near a goal, and frees that never release the clusters the
//     volume's own structures live in.
//   - LocalAlloc: a slot's local_alloc window of the global bitmap, refilled
//     when it runs dry and emptied back into the global bitmap at shutdown or
//     for a dead slot.
//   - Reservation: per-inode windows inside the local
//     alloc (mount options resv_level and dir_resv_level) that keep files
//     written round-robin contiguous.
//   - ClusterAllocator: the entry point of the write path, ClaimClustersFor,
//     which picks the local alloc or the global bitmap as the kernel does.
//   - Checker: every invariant of an allocator, for tests now and fsck later.
//
// # On-disk rules every change keeps, in the same transaction
//
// A chain allocator inode (CHAIN_FL|BITMAP_FL) carries a chain list in id2:
// cl_cpg clusters per group, cl_bpc bits per cluster (1 for the global
// bitmap, blocks per cluster for suballocators), and cl_next_free_rec chain
// records {c_free, c_total, c_blkno}. Each chain is a singly linked list of
// group descriptors (GROUP01) through bg_next_group, starting at c_blkno.
// For every allocator, after every operation of this package:
//
//   - a group's bg_free_bits_count = bg_bits - (bits set in bg_bitmap);
//   - bit 0 of every group is set (the descriptor block itself; in the
//     global bitmap the first cluster of the group, which holds it);
//   - a chain's c_free and c_total are the sums over its groups, and every
//     group names its chain in bg_chain and its allocator in
//     bg_parent_dinode;
//   - the inode's bitmap1 {i_used, i_total} is the sum over its chains;
//     i_clusters = i_total / cl_bpc and i_size = i_clusters * cluster size;
//   - every cluster a suballocator group covers, and every cluster of a
//     local alloc window not yet used by a file, is set in the global
//     bitmap;
//   - the clusters of the superblock, of every global bitmap group
//     descriptor and of every backup superblock stay set.
//
// Before writing, every operation checks the counts it is about to change
// against the blocks it read (the chain it walks, the group it changes, the
// inode's totals); damage is an ondisk.CorruptError naming the device, the
// block and the field, and nothing is written.
//
// # Where o2go differs from the kernel, and why
//
// The on-disk results are always ones the kernel and fsck.ocfs2 accept
// (the kernel test mounts a volume o2go grew and allocates from it):
//
//   - Objects always carry i_suballoc_loc, as libocfs2 writes them; the
//     kernel leaves it 0 for contiguous groups.
//   - A suballocator remembers the last group it used as its hint; the
//     kernel does so for inodes (through the parent directory) but starts
//     metadata claims from the victim chain each time.
//   - ClaimClusters takes a goal cluster and searches its group from there
//     first; the kernel has no goal for the global bitmap (data locality
//     comes from the local alloc and reservations, as here).
//   - The kernel's cluster search trusts group 0 only up to
//     clusters - (block of its descriptor), a quirk of computing the
//     group's first cluster from s_first_cluster_group; o2go uses the
//     group's true first cluster (0).
//   - The local alloc window defaults to 8 MiB (OCFS2_DEFAULT_LOCAL_ALLOC_SIZE,
//     mount option localalloc= to change it); newer kernels size it from the
//     group size (ocfs2_la_default_mb). A disabled local alloc comes back
//     when a window's worth of clusters has been freed; the kernel also
//     retries after 30 s, which a package without a clock leaves to its
//     caller (open a new LocalAlloc).
//   - Stealing inodes or extent blocks from other slots' allocators when
//     one's own cannot grow, and the inode64 limit on inode block numbers,
//     are the callers' (fs/inode) business: they pick the allocator.
//
// # Concurrency
//
// The types here are not safe for concurrent use: as the metacache.Tx
// contract says, callers serialize changes to a volume (fs/inode holds the
// volume's metadata lock, and the cluster lock of each allocator inode, for
// the whole transaction). They keep only hints and the reservation windows
// in memory; everything else is read through the metadata cache each time.
//
// # Transactions
//
// Every change goes through a metacache.Tx: the journal's transactions when
// mounted, metacache.DirectTx for offline tools and for tests. A failed
// operation may have dirtied blocks of its transaction only when the device
// failed; corrupt metadata is always detected before the first change.
package alloc
