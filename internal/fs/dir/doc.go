// Package dir owns OCFS2 directories: walking their entries (inline in the
// inode, or in blocks with or without DIRTRL1 trailers), looking names up
// linearly or through the indexed-directory tree (DXDIR01 root, DXLEAF1
// leaves, the TEA name hash seeded from the superblock), and changing them:
// Init (mkdir), Add, Remove, Retarget (rename over a name, ".." of a moved
// directory) and Destroy (rmdir's freeing of everything the directory owns).
//
// # Writing
//
// The write side does what the kernel's fs/ocfs2/dir.c does, so that the
// kernel, fsck.ocfs2 and debugfs.ocfs2 accept every directory o2go writes
// and o2go keeps working on directories the kernel wrote:
//
//   - A new directory is inline when the volume has inline data; otherwise
//     it is one block in a new cluster, ending in a trailer when the volume
//     has META_ECC or indexed directories, and indexed (an inline dx root
//     holding "." and "..", both with hash (0, 0)) when it has the latter.
//   - An inline directory that cannot take a name becomes a block directory
//     (ocfs2_expand_inline_dir): the inline entries are the first block,
//     its last entry stretched to the end of the area; a second block is
//     added when the name still does not fit; on an indexed-dirs volume the
//     index is built at once, inline in the root when the entries leave it
//     room for one more, otherwise in a cluster of leaves claimed first.
//   - A block directory grows by the next block of its last cluster, and by
//     a new cluster when that one is full (ocfs2_extend_dir). Directories
//     never shrink; Destroy frees them whole.
//   - Unindexed block directories are searched linearly for the name and for
//     the first block with room.
//   - Indexed directories: every name has one index entry (major, minor,
//     directory block), "." and ".." included; dr_num_entries counts them.
//     A full inline root moves its entries into a cluster of leaves, each
//     entry into the leaf its minor hash picks. A full leaf is split
//     (ocfs2_dx_dir_rebalance): sorted, a split hash chosen by the kernel's
//     rule, a new cluster mapped at that hash, and every entry of the old
//     cluster's leaves at or above it moved to the same leaf position in
//     the new one. Removal shifts the later entries down.
//   - Trailers: db_free_rec_len is the largest hole of the block (o2go keeps
//     it exact in every trailer it writes; the kernel only in indexed
//     directories). In an indexed directory the free-space list (dr_free_blk,
//     then db_free_next) holds exactly the blocks with a hole of 16 bytes or
//     more: a block joins at the head when it is added or when a removal
//     gives room to a block that had none, and leaves when an insert fills it.
//   - Where o2go differs: to find a block with room the kernel walks the
//     whole free-space list, which in a directory whose blocks keep small
//     holes (names of mixed lengths) costs a block per listed block on every
//     add. o2go looks at the first 128 listed blocks, then at 16 blocks
//     picked by the name's hash, then grows the directory; adds, removes and
//     lookups of an indexed directory touch a bounded number of blocks
//     whatever its size. It also writes the true db_free_rec_len in a new
//     directory's first block, where the kernel writes 64 bytes too few.
//
// Every operation takes an Env (cache, superblock, transaction, the
// allocators of the slot) and the directory's dinode as a private copy it
// may change (size, clusters, id2, i_last_eb_blk, the INLINE_DATA and
// INDEXED_DIR flags, i_dx_root — never times or link counts), which the
// caller writes back. All other blocks go through the Tx, each accessed
// before its change and dirtied with its block check offset (the trailer's
// db_check for directory blocks; none for blocks without a trailer). Blocks
// are checked before anything is written: an operation that finds damage
// fails with a corruption error naming the block and the structure, with
// nothing changed.
//
// Names are hashed for the index with signed char, as ocfs2-tools and x86
// kernels before 6.2 do; lookups retry with unsigned char for names with
// bytes >= 0x80, which newer kernels index that way.
package dir
