// Package dir owns OCFS2 directories: walking their entries (inline in the
// inode, or in blocks with or without DIRTRL1 trailers), looking names up
// linearly or through the indexed-directory tree (DXDIR01 root, DXLEAF1
// leaves, the TEA name hash seeded from the superblock), and — for the write
// engine — adding and removing names while keeping the index, the trailers'
// free-space list and the block checks right.
package dir
