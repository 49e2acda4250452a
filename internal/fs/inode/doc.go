// Package inode owns the POSIX view of an OCFS2 volume: names resolved to
// inodes, file contents (inline, extent-mapped, sparse, unwritten and shared
// extents), symlinks, directories, extended attributes and — for the write
// engine — every operation that changes them, in transactions, with OCFS2's
// lock ordering and orphan handling. It knows nothing of FUSE (fusefs adapts
// it) or of the cluster (it calls the lock interface fs/lockglue declares).
//
// Errors that mean "no such file", "not a directory" and the like wrap the
// syscall.Errno a local file system would return, so errors.Is(err,
// fs.ErrNotExist) works and the FUSE layer maps them in one place.
package inode
