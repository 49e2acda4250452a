package fusefs

import (
	"fmt"

	"o2go/internal/ondisk"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// MountConfig says how to present the volume to the kernel.
type MountConfig struct {
	// Device is shown as the mount's source in /proc/mounts ("o2go" is
	// the subtype, so the type reads fuse.o2go).
	Device string
	// AllowOther lets every user use the mount (root mounts, as a local
	// file system does), with the kernel checking permissions.
	AllowOther bool
	// Debug logs every FUSE request.
	Debug bool
}

// MaxWrite is the largest write the kernel sends: large requests raise
// write throughput 1.3-1.5x over the 128 KiB default (measured, see
// ARCHITECTURE.md).
const MaxWrite = 1 << 20

// Mount serves f at mountpoint and returns once the kernel has the mount.
// Wait on the server to know when it is unmounted.
func Mount(f *FS, mountpoint string, cfg MountConfig) (*fuse.Server, error) {
	opts := &fuse.MountOptions{
		FsName:        cfg.Device,
		Name:          "o2go",
		AllowOther:    cfg.AllowOther,
		MaxWrite:      MaxWrite,
		MaxReadAhead:  MaxWrite,
		Options:       []string{"default_permissions"},
		Debug:         cfg.Debug,
		EnableLocks:   f.opts.Locks != nil,
		DisableXAttrs: false,
		// The kernel checks ACLs (reading system.posix_acl_access) and
		// rewrites the access ACL on chmod; fs/inode inherits default ACLs.
		EnableAcl: !f.opts.NoACL && f.fs.SB.Features.Incompat&ondisk.IncompatXattr != 0,
	}
	if f.opts.Clustered {
		// Clustered files are direct (every read(2) and write(2) reaches
		// the volume under the cluster lock); shared mappings still go
		// through the page cache, which the kernel writes back before a
		// direct read or write of the range and drops after a write, and
		// which DropPages empties when another node takes the lock
		// (Linux 6.6 and later; older kernels refuse MAP_SHARED there).
		opts.ExtraCapabilities |= fuse.CAP_DIRECT_IO_ALLOW_MMAP
	}
	if opts.EnableAcl {
		// The umask then reaches fs/inode, which applies it only when
		// the parent has no default ACL (POSIX's rule).
		opts.ExtraCapabilities |= fuse.CAP_DONT_MASK
	}
	if f.opts.ReadOnly || f.fs.W == nil {
		opts.Options = append(opts.Options, "ro")
	}
	srv, err := fuse.NewServer(f, mountpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("mounting %s on %s: %w", cfg.Device, mountpoint, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		srv.Unmount()
		return nil, fmt.Errorf("mounting %s on %s: %w", cfg.Device, mountpoint, err)
	}
	return srv, nil
}
