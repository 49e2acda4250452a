// Package xattr owns extended attributes on OCFS2: the three places a name
// can live (the inline area at the end of the inode block, a XATTR01 block,
// 4 KiB buckets under an indexed xattr block's hash-keyed extent tree), values
// stored locally or in clusters under a value root, the name hash, and POSIX
// ACLs kept in system.posix_acl_* attributes in OCFS2's own entry format.
//
// # Reading
//
// Inode{C, SB, Inode, Block} lists and reads attributes (List, Get, Value,
// ACL) and checks them (Check). Value blocks are read through the metadata
// cache: the write side journals them.
//
// # Writing
//
// Set, Remove, SetACL and Destroy change one inode inside the caller's
// transaction (see Env for the contract with fs/inode). They follow the
// kernel's fs/ocfs2/xattr.c, so that the kernel finds every name where it
// looks:
//
//   - Set always tries the inode first: an attribute that fits goes (or
//     moves) into the in-inode area, which is set up on demand
//     (s_xattr_inline_size bytes, 256, taken from id2 when id2 can spare
//     them; never on 512-byte blocks). Otherwise it goes into the XATTR01
//     block, created on demand from Meta; a full block turns into buckets.
//   - The inode area and the block keep names and values packed down from
//     their end, entries in arrival order, 4 bytes free after the table.
//   - Buckets keep entries sorted by name hash; a name goes to the bucket the
//     kernel's bisection finds. A full bucket is defragmented, then split at
//     a change of hash into the next bucket, shifting the run's later buckets
//     down; a full run gets a cluster, appended when contiguous (up to 64 KiB
//     a run), otherwise as a new run that takes the upper half of the old
//     run's last cluster, its e_cpos the first hash it holds.
//   - Values over 80 bytes live in clusters from Data under a value root of
//     one record (l_count 1); a value needing a second run grows the tree a
//     level, with an extent block from Meta, as the kernel's value trees do.
//
// Where o2go departs from the kernel, on purpose:
//
//   - Removing the last attribute gives the in-inode area back to id2 and
//     frees an empty non-indexed block (the kernel keeps both until the inode
//     dies). Both states are ones the kernel reads and makes. Bucket trees
//     stay, as in the kernel, until Destroy.
//   - A value is rewritten into one run of clusters whenever the allocator
//     has one, rather than extended in place: fsck.ocfs2 1.8.7 carries the
//     expected depth of one value tree over to the next in the same header
//     and reports a second tree of depth 1 (EXTENT_LIST_DEPTH), so deep
//     value trees are kept for fragmented volumes.
//   - Buckets keep xh_free_start at their lowest name and xh_name_value_len
//     at the sum fsck.ocfs2 computes — which cuts a value's length to 16
//     bits, so a 64 KiB value counts as empty. The kernel lets both drift,
//     and fsck then reports its buckets (XATTR_FREE_START_INVALID,
//     XATTR_VALUE_LEN_INVALID); o2go's pass.
//
// Freed value and bucket clusters go to Env.Freed, the slot's truncate log
// as in the kernel (ocfs2_cache_cluster_dealloc, ocfs2_rm_xattr_cluster):
// they are reused only after the journal made their release durable. An
// operation that would free more runs than the log has room for returns
// ErrFreedFull before changing anything; Destroy works in steps.
//
// # ACLs
//
// The POSIX ACL functions are the kernel's fs/posix_acl.c, pure:
// ParseVFSACL and ValidateACL (posix_acl_from_xattr, posix_acl_valid),
// CheckAccess (acl_permission_check with posix_acl_permission),
// ModeFromACL (posix_acl_equiv_mode), ChmodACL (__posix_acl_chmod) and
// InheritACL (posix_acl_create). Set and SetACL store an access ACL as the
// kernel's ocfs2_iop_set_acl does: the mode's permission bits follow it,
// and an ACL the mode says in full is not stored.
package xattr
