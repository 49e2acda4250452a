// Package extent owns OCFS2 extent trees: mapping a logical cluster of a
// file (or a hash, in indexed-directory and xattr trees) to the physical
// blocks that hold it, walking every leaf record in order, and — for the
// write engine — inserting, splitting, merging and removing records, growing
// and shrinking tree depth, the truncate log and refcount trees.
//
// A tree's root list lives in its owner (a dinode's id2, a dx root, an xattr
// value root, a refcount root); interior records point at EXBLK01 extent
// blocks read through fs/metacache. Every step down checks what the kernel
// checks: the child's signature, identity and generation, that its depth is
// one less than its parent's, and that its records are sorted.
package extent
