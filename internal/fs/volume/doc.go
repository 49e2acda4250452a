// Package volume owns an OCFS2 volume as a whole: finding and validating its
// superblock (or a backup), applying the feature-flag rules of ocfs2(7)
// (unknown incompat: refuse; unknown ro-compat: read-only), the system
// directory and its per-slot files, slots and journals, mount-time and
// dead-slot recovery, and the volume-wide operations mkfs and tunefs.
//
// It is the top of the fs/ stack: it opens the device, builds the metadata
// cache and hands the namespace (fs/inode) to fusefs, fsck and inspect.
package volume
