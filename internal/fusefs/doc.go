// Package fusefs is the thin FUSE adapter over fs/inode: it unpacks the
// kernel's requests (go-fuse's raw protocol API), calls the volume's POSIX
// operations, packs attributes and directory listings, and maps errors to
// errno in one place (inode.Errno). It owns nothing about OCFS2.
//
// Node IDs are inode block numbers (the root directory is FUSE's node 1),
// generations are i_generation, so the kernel's caches key on the same
// identity the cluster lock layer uses. Attribute and entry timeouts let the
// kernel cache safely on a single node; Invalidate* drop those caches when
// another node changes an inode (the cluster lock layer calls them on a
// downconvert).
//
// Known deadlock to avoid (go-fuse's guide): never call a notify function
// (InodeNotify, EntryNotify, DeleteNotify) from inside a request handler of
// the same inode's operation; the cluster layer calls them from its own
// goroutine.
package fusefs
