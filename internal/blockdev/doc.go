// Package blockdev owns o2go's access to shared disks: the Device interface
// every layer above reads and writes through, the real implementation over a
// block device or image file (direct I/O, aligned, sector-atomic), an
// in-memory device for tests and the simulator, a fault-injecting wrapper
// (errors, latency, torn and lost writes, crash images) and the fencing latch.
//
// Rules it enforces for the layers above (ARCHITECTURE.md, "Shared device I/O"):
//
//   - Shared metadata bypasses the host page cache: File opens block devices
//     and image files with O_DIRECT when the underlying file system supports
//     it, so a node never reads a stale copy another node has overwritten.
//   - Writes are issued in whole sectors; a write of one sector is atomic on
//     disks, which is what heartbeat and kill blocks rely on.
//   - Once a node is fenced, Latch rejects every further write from this
//     process, and Fence returns only after in-flight writes have finished.
//
// blockdev is an edge (rank R2'): it touches the operating system, and
// nothing in it decides anything about OCFS2.
package blockdev

import (
	"errors"
	"io"
)

// Device is a shared disk as o2go sees it. Offsets and lengths are bytes.
// Implementations are safe for concurrent use.
type Device interface {
	io.ReaderAt
	io.WriterAt
	// Size is the device size in bytes.
	Size() int64
	// SectorSize is the logical sector size: the unit of atomic writes and
	// of heartbeat slots (512 for image files and most disks).
	SectorSize() int
	// Sync makes every completed write durable.
	Sync() error
	// Name is the path or a description, for messages.
	Name() string
	Close() error
}

// ErrFenced is returned by every write after the node fenced itself.
var ErrFenced = errors.New("blockdev: node is fenced: writes to shared disks are latched off")

// ErrReadOnly is returned by writes to a device opened read-only.
var ErrReadOnly = errors.New("blockdev: device is open read-only")
