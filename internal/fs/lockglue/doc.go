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
//	M  META    one per inode: PR to read the inode and cache what hangs
//	           off it, EX to change it (its data too, in o2go)
//	T  REFCNT  one per refcount tree, the same way
//	R  RENAME  EX while a move between directories runs
//	S  SUPER   the volume lock: every operation holds it PR; a mount, an
//	           unmount or a recovery holds it EX (the slot map, a dead
//	           node's journal)
//	O  OPEN    one per inode in use on this node, PR; a delete tries EX
//	           without waiting and leaves the inode orphaned while another
//	           node still uses it
//	F  FLOCK   flock(2) across nodes: PR for LOCK_SH, EX for LOCK_EX
//
// # Coherence
//
// Each Lock is one of these resources cached on the node. What an
// operation needs, and in which order a node takes a set of them, is the
// write engine's business (fs/inode: LockSet, Writer.Need) and the
// mount's (internal/clustermount: the lock table); lockglue keeps each
// lock coherent.
//
// A node keeps a lock at the level it last needed after an operation ends:
// the next operation finds it cached and asks no one. When another node
// wants a conflicting level, the DLM sends a blocking notification; the
// lock is then blocked (new local users wait), and once its last local
// user is done the node flushes before it gives the lock up — its journal
// commits and every logged block is written home (checkpoint); when it
// keeps nothing (down to NL) it also forgets what it cached under the
// lock — and converts down to the highest level compatible
// with the request. The other node then reads home locations that are
// current: "a read on a node gets the last write". Going down from EX
// it also stores a value block (SetValue: for an inode, its size, times
// and attributes), which the next grant reads (TakeValue).
//
// # Recovery
//
// After a node dies, the DLM keeps the dead node's locks as ghosts until
// the file system has recovered the node (its journal replayed...); a
// survivor takes the volume lock with the recovery flag, which passes the
// ghosts, while its own users wait (Lock.Recover); the dead node's inode
// locks stay ghosts until then, so nothing it changed is read before its
// journal is replayed.
package lockglue
