package inode

import (
	"fmt"
	"syscall"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// unshare gives inode d private copies of the shared clusters [cpos,
// cpos+n) before a write: new clusters, the old contents copied, the
// mapping replaced, one reference dropped from the refcount tree (the
// kernel's ocfs2_refcount_cow). When d holds the last reference, the
// clusters just stop being shared.
func (f *FS) unshare(tx metacache.Tx, d *ondisk.Dinode, t *extent.Tree, cpos, n uint32) error {
	return fmt.Errorf("inode %d: copy on write of shared clusters: %w", d.Blkno, syscall.EOPNOTSUPP)
}

// dropShared drops d's reference to the shared clusters of piece (a
// truncate or punch removed them from d's tree); clusters whose count
// reaches zero are freed.
func (f *FS) dropShared(tx metacache.Tx, d *ondisk.Dinode, piece ondisk.ExtentRec) error {
	return fmt.Errorf("inode %d: freeing shared (reflinked) clusters: %w", d.Blkno, syscall.EOPNOTSUPP)
}
