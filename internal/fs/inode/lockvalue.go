package inode

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"o2go/internal/ondisk"
)

// LockValueLen is the size of a cluster lock's value block.
const LockValueLen = 64

// LockValue is what an inode's cluster lock carries in its value block,
// as OCFS2's metadata lock does (ocfs2_meta_lvb): the inode's size and
// times and the attributes a stat shows, as the last node to hold the lock
// exclusive left them (written home before it let go). The next holder
// checks the inode block it reads against it: a block that disagrees is a
// stale copy, and o2go refuses it rather than serve it.
//
// Layout (little-endian), version 1:
//
//	0x00  u8   version (0: no value)
//	0x01  u8   flags (1: the inode is in use)
//	0x02  u16  i_mode
//	0x04  u32  i_generation
//	0x08  u64  i_size
//	0x10  u32  i_clusters
//	0x14  u32  i_links_count
//	0x18  u32  i_uid
//	0x1C  u32  i_gid
//	0x20  u64  i_ctime (seconds)
//	0x28  u64  i_mtime (seconds)
//	0x30  u32  i_ctime_nsec
//	0x34  u32  i_mtime_nsec
//	0x38  u64  i_atime (seconds)
type LockValue struct {
	InUse      bool
	Mode       uint16
	Generation uint32
	Size       uint64
	Clusters   uint32
	Links      uint32
	UID, GID   uint32
	Ctime      ondisk.DiskTime
	Mtime      ondisk.DiskTime
	AtimeSec   uint64
}

const lockValueVersion = 1

// LockValueOf is the value block an inode's lock carries for d (nil: the
// inode is not in use any more).
func LockValueOf(d *ondisk.Dinode) LockValue {
	if d == nil || d.Flags&ondisk.InodeValid == 0 {
		return LockValue{}
	}
	return LockValue{InUse: true, Mode: d.Mode, Generation: d.Generation, Size: d.Size, Clusters: d.Clusters,
		Links: d.Links, UID: d.UID, GID: d.GID, Ctime: d.Ctime, Mtime: d.Mtime, AtimeSec: d.Atime.Sec}
}

// Encode returns v's value block.
func (v LockValue) Encode() [LockValueLen]byte {
	var b [LockValueLen]byte
	le := binary.LittleEndian
	b[0] = lockValueVersion
	if v.InUse {
		b[1] = 1
	}
	le.PutUint16(b[0x02:], v.Mode)
	le.PutUint32(b[0x04:], v.Generation)
	le.PutUint64(b[0x08:], v.Size)
	le.PutUint32(b[0x10:], v.Clusters)
	le.PutUint32(b[0x14:], v.Links)
	le.PutUint32(b[0x18:], v.UID)
	le.PutUint32(b[0x1C:], v.GID)
	le.PutUint64(b[0x20:], v.Ctime.Sec)
	le.PutUint64(b[0x28:], v.Mtime.Sec)
	le.PutUint32(b[0x30:], v.Ctime.Nsec)
	le.PutUint32(b[0x34:], v.Mtime.Nsec)
	le.PutUint64(b[0x38:], v.AtimeSec)
	return b
}

// DecodeLockValue decodes a value block; ok is false for a block that
// holds no value (never written, or by another version or program).
func DecodeLockValue(b [LockValueLen]byte) (v LockValue, ok bool) {
	if b[0] != lockValueVersion || b[1] > 1 {
		return LockValue{}, false
	}
	le := binary.LittleEndian
	v = LockValue{InUse: b[1] == 1, Mode: le.Uint16(b[0x02:]), Generation: le.Uint32(b[0x04:]),
		Size: le.Uint64(b[0x08:]), Clusters: le.Uint32(b[0x10:]), Links: le.Uint32(b[0x14:]),
		UID: le.Uint32(b[0x18:]), GID: le.Uint32(b[0x1C:]),
		Ctime:    ondisk.DiskTime{Sec: le.Uint64(b[0x20:]), Nsec: le.Uint32(b[0x30:])},
		Mtime:    ondisk.DiskTime{Sec: le.Uint64(b[0x28:]), Nsec: le.Uint32(b[0x34:])},
		AtimeSec: le.Uint64(b[0x38:])}
	return v, true
}

// checkLockValue compares the inode block just read under a fresh grant
// of its lock with the value the lock carried. System inodes are not
// checked: a recovery changes them under the volume lock alone.
func checkLockValue(b [LockValueLen]byte, d *ondisk.Dinode) error {
	v, ok := DecodeLockValue(b)
	if !ok || !v.InUse || d.Flags&ondisk.InodeSystem != 0 {
		return nil
	}
	if got := LockValueOf(d); got != v {
		return &PathError{Op: "read", Path: fmt.Sprintf("inode %d", d.Blkno), Err: fmt.Errorf(
			"the inode block this node read (size %d, %d links, mtime %d.%09d, generation %d) is not what the last node to change it left (size %d, %d links, mtime %d.%09d, generation %d): a stale copy, refused (%w)",
			got.Size, got.Links, got.Mtime.Sec, got.Mtime.Nsec, got.Generation, v.Size, v.Links, v.Mtime.Sec, v.Mtime.Nsec, v.Generation, syscall.EIO)}
	}
	return nil
}
