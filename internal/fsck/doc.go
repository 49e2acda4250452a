// Package fsck owns o2go's file system checker: fsck.ocfs2 1.8.7's
// passes, in its order, with its named problem codes (fsck.ocfs2.checks(8))
// and the fix that page gives each, its prompts and its report, so that an
// operator (or a script) reading o2go fsck's output sees what fsck.ocfs2
// would have said.
//
// # A run
//
//	journals   every slot's journal inode and JBD2 superblock must agree
//	           (JOURNAL_*); a slot marked dirty with a non-empty log is
//	           replayed (fs/journal.Replay), then the volume is opened again.
//	           -n skips the replay and says so.
//	cluster    with write access, a clustered volume must be stamped for
//	           the cluster this node runs (RECOVER_CLUSTER_INFO, cluster.go)
//	           and show no live node in its heartbeat area.
//	recovery   with write access: local alloc windows and truncate logs go
//	           back to the global bitmap, orphans are finished (without -f).
//	clean?     without -f a volume not marked with errors and not due is
//	           left alone ("... is clean.").
//	Pass 0a    the global bitmap's chains: descriptors only at the places
//	           the geometry fixes, all of them linked (GROUP_*, CHAIN_*).
//	Pass 0b    the inode allocators, 0c the extent block allocators.
//	Pass 1     every block of every inode allocator group, read in 4 MiB
//	           runs: inode fields, extent trees, symlinks, sizes, extended
//	           attributes (xattr.go), refcount trees (refcount.go); then
//	           the inode bitmaps against the valid inodes
//	           (INODE_ALLOC_REPAIR) and the global bitmap against the
//	           clusters found in use (CLUSTER_ALLOC_BIT).
//	Pass 1b-d  only when a cluster has two owners: find the owners, name
//	           them, share the cluster through a refcount tree or clone.
//	Pass 2     every directory block in block order: dots, lengths, names,
//	           inode numbers, types, one parent per directory, duplicate
//	           names, trailers, the name index.
//	Pass 3     the root and lost+found exist; every directory reaches the
//	           root, else it moves to lost+found; ".." names the parent.
//	Pass 4a    orphans (asked for with -f), 4b link counts; an inode no
//	           entry names moves to lost+found.
//	Pass 5     with quotas: the global quota files' limits are read, every
//	           user's and group's usage counted again, and the quota files
//	           written from them as fsck.ocfs2 writes them (pass5.go).
//
// The volume is read as raw blocks and checked field by field (raw.go):
// the ondisk decoders refuse exactly the damage fsck exists to report.
// Repairs are written in place, without a journal, as fsck.ocfs2 writes
// them; the ones that allocate or free (lost+found, orphans, clones,
// refcount records) run through fs/alloc, fs/dir, fs/extent and an offline
// fs/inode write engine whose "transactions" write their blocks when they
// end (repair.go).
//
// # Memory and I/O for large volumes
//
// Clusters in use are one bit per cluster of the volume; directory and
// regular inodes, and link counts of one, are sparse bitmaps over block
// numbers; other link counts and directory parents are maps. The inode
// allocators are read once, sequentially, a group at a time; their group
// descriptors stay in memory for pass 1's bitmap comparison and pass 2's
// "is this inode allocated" test. Each inode block is read once; extent
// blocks, directory blocks and symlink blocks once more each.
//
// # Answers and exit codes
//
// -n answers no and opens the device read-only; -y answers yes; -p fixes
// only the problems whose fix restores a count or a back pointer from data
// already on disk (codeInfo.safe) and answers no to the rest, as fsck(8)'s
// preen; without them o2go asks on the terminal, with fsck.ocfs2's
// default answer. Exit codes are fsck(8)'s, summed: 0 nothing wrong, 1
// errors corrected (or journals replayed, orphans finished), 4 errors
// left, 8 an operational error, 32 cancelled at a question.
//
// # Where o2go departs from fsck.ocfs2 1.8.7
//
//   - Exit codes: fsck.ocfs2 exits 0 whenever its passes complete, even
//     with problems left; o2go reports them (4) and repairs (1).
//   - Clustered volumes: fsck.ocfs2 needs the O2CB cluster lock for a
//     read-write check. o2go instead watches the heartbeat area
//     (volume.LiveHeartbeatNodes) and refuses when any node is alive;
//     -F skips the watch. -n never needs either. A volume stamped for
//     another cluster than Options.RunningStack is RECOVER_CLUSTER_INFO
//     as in fsck.ocfs2 (cluster.go); with no running cluster configured
//     there is nothing to compare and the heartbeat watch alone decides.
//   - After replaying journals fsck.ocfs2 tries to lock the cluster even
//     on a local volume and stops ("fsck encountered unrecoverable errors
//     while replaying the journals"); o2go goes on with the check.
//   - -r N with -n (or answered no) checks the volume through the backup
//     superblock, read-only; fsck.ocfs2 reopens the primary and so cannot
//     check a volume whose primary is gone.
//   - Directory indexes: fsck.ocfs2 rebuilds the index of every indexed
//     directory whose blocks it changed; o2go removes the index entries
//     of the names it removes and rebuilds indexes with buildDxIndex.
//   - Refcount trees (refcount.go): a count answered "no" with write
//     access, and a shared cluster something else claims too, leave the
//     tree as it is (fsck.ocfs2 takes the clusters out of the tree and
//     clears the REFCOUNTED flags of their extents; pass 1b deals with
//     the second claim). Without write access o2go stops where
//     fsck.ocfs2's attempt to do so would fail.
//   - An xattr block that cannot be one (out of range, wrong signature,
//     failed check) is XATTR_BLOCK_INVALID and its reference is dropped;
//     fsck.ocfs2 asks only when the signature's last byte is not NUL and
//     stops pass 1 on the rest. An entry fixed for its hash keeps the fix
//     when another entry of its header is dropped (fsck.ocfs2 moves the
//     entries down from copies taken before the fix), and an entry
//     answered "no" keeps the entries after it.
//   - The prompts print the values they mean where fsck.ocfs2 prints a
//     wrong one (GROUP_BLKNO names the recorded block, CHAIN_I_SIZE the
//     clusters); a dot entry's excess becomes an empty entry of the right
//     length; DIRENT_DUPLICATE never grows a name past its entry.
//   - Quota files (pass 5): fsck.ocfs2 -y writes them again on every run,
//     silently; o2go writes them only when limits, usage or grace times
//     differ from what it counted (or a problem was found, or a node's
//     local file is not clean), and says so; out-of-date usage is not a
//     problem (no code, no exit status), as fsck.ocfs2 reports nothing.
package fsck
