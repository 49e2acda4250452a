// Package lockglue owns the cluster locks of a clustered OCFS2 mount and
// their caching on one node — the userspace counterpart of the kernel's
// dlmglue. It declares the lock service it needs (Service: the agent's DLM
// implements it, tests fake it) and never imports the DLM, the agent or
// the cluster cores.
//
// # Locks and names
//
// Lock names follow OCFS2's lockid format (ondisk.LockName), so a lock
// shown by `o2go dlm locks` decodes to an inode like the kernel's:
//
//	S  SUPER   the volume lock: PR to read and cache any metadata, EX to
//	           change any of it (see Coherence below)
//	O  OPEN    one per inode in use on this node, PR; a delete tries EX
//	           without waiting and leaves the inode orphaned while another
//	           node still uses it
//	F  FLOCK   flock(2) across nodes: PR for LOCK_SH, EX for LOCK_EX
//
// # Coherence
//
// The first clustered mount serializes metadata with one lock per volume
// (the superblock lock) rather than OCFS2's lock per inode: readers on
// every node share it, a node that changes anything holds it alone. That
// is coarse — two nodes writing different files take turns — but it makes
// every path of the single-node write engine coherent at once, with no
// path that could touch metadata unlocked. Per-inode locks are the next
// step; the Lock type below is already per resource.
//
// A node keeps a lock at the level it last needed after an operation ends:
// the next operation finds it cached and asks no one. When another node
// wants a conflicting level, the DLM sends a blocking notification; the
// lock is then blocked (new local users wait), and once its last local
// user is done the node flushes before it gives the lock up — its journal
// commits and every logged block is written home (checkpoint); when it
// keeps nothing (down to NL) it also forgets its metadata cache and the
// kernel's FUSE caches — and converts down to the highest level compatible
// with the request. The other node then reads home locations that are
// current: "a read on a node gets the last write".
//
// # Recovery
//
// After a node dies, the DLM keeps the dead node's locks as ghosts until
// the file system has recovered the node (its journal replayed...); a
// survivor takes the volume lock with the recovery flag, which passes the
// ghosts, while its own users wait (Lock.Recover).
package lockglue
