package inode

import (
	"fmt"
	"syscall"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// xattrDestroy frees an inode's xattr block, buckets and value clusters.
func (f *FS) xattrDestroy(tx metacache.Tx, d *ondisk.Dinode, b *metacache.Buffer) error {
	return fmt.Errorf("inode %d: freeing an xattr block: %w", d.Blkno, syscall.EOPNOTSUPP)
}
