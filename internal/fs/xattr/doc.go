// Package xattr owns extended attributes on OCFS2: the three places a name
// can live (the inline area at the end of the inode block, a XATTR01 block,
// 4 KiB buckets under an indexed xattr block's hash-keyed extent tree), values
// stored locally or in clusters under a value root, the name hash, and POSIX
// ACLs kept in system.posix_acl_* attributes in OCFS2's own entry format.
package xattr
