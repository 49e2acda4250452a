package ondisk

import (
	"fmt"
	"strings"
)

// SystemFileKind indexes the system file table. The order is the kernel's
// enum and mkfs.ocfs2's creation order.
type SystemFileKind int

const (
	SysBadBlocks        SystemFileKind = iota // bad_blocks
	SysGlobalInodeAlloc                       // global_inode_alloc
	SysSlotMap                                // slot_map
	SysHeartbeat                              // heartbeat
	SysGlobalBitmap                           // global_bitmap
	SysUserQuota                              // aquota.user (USRQUOTA only)
	SysGroupQuota                             // aquota.group (GRPQUOTA only)
	SysOrphanDir                              // orphan_dir:NNNN
	SysExtentAlloc                            // extent_alloc:NNNN
	SysInodeAlloc                             // inode_alloc:NNNN
	SysJournal                                // journal:NNNN
	SysLocalAlloc                             // local_alloc:NNNN
	SysTruncateLog                            // truncate_log:NNNN
	SysLocalUserQuota                         // aquota.user:NNNN (USRQUOTA only)
	SysLocalGroupQuota                        // aquota.group:NNNN (GRPQUOTA only)
	NumSystemFiles
)

// SystemFileInfo describes one system file kind.
type SystemFileInfo struct {
	Kind SystemFileKind
	// Name is the directory entry name; per-slot kinds append
	// ":%04d" with the slot number.
	Name    string
	PerSlot bool
	// Flags are the i_flags bits mkfs.ocfs2 sets besides VALID|SYSTEM.
	// (The kernel's own table lists 0 for global_bitmap; mkfs sets
	// BITMAP|CHAIN, which is what volumes carry.)
	Flags uint32
	Mode  uint16 // i_mode including the file type
	// RoCompat is the quota feature a quota file needs, 0 for the others.
	RoCompat uint32
}

// SystemFiles is the system file table (the kernel's ocfs2_system_inodes,
// with mkfs.ocfs2's flags), indexed by SystemFileKind.
var SystemFiles = [NumSystemFiles]SystemFileInfo{
	{SysBadBlocks, "bad_blocks", false, 0, ModeReg | 0o644, 0},
	{SysGlobalInodeAlloc, "global_inode_alloc", false, InodeBitmap | InodeChain, ModeReg | 0o644, 0},
	{SysSlotMap, "slot_map", false, 0, ModeReg | 0o644, 0},
	{SysHeartbeat, "heartbeat", false, InodeHeartbeat, ModeReg | 0o644, 0},
	{SysGlobalBitmap, "global_bitmap", false, InodeBitmap | InodeChain, ModeReg | 0o644, 0},
	{SysUserQuota, "aquota.user", false, InodeQuota, ModeReg | 0o644, RoCompatUsrQuota},
	{SysGroupQuota, "aquota.group", false, InodeQuota, ModeReg | 0o644, RoCompatGrpQuota},
	{SysOrphanDir, "orphan_dir", true, 0, ModeDir | 0o755, 0},
	{SysExtentAlloc, "extent_alloc", true, InodeBitmap | InodeChain, ModeReg | 0o644, 0},
	{SysInodeAlloc, "inode_alloc", true, InodeBitmap | InodeChain, ModeReg | 0o644, 0},
	{SysJournal, "journal", true, InodeJournal, ModeReg | 0o644, 0},
	{SysLocalAlloc, "local_alloc", true, InodeBitmap | InodeLocalAlloc, ModeReg | 0o644, 0},
	{SysTruncateLog, "truncate_log", true, InodeDealloc, ModeReg | 0o644, 0},
	{SysLocalUserQuota, "aquota.user", true, InodeQuota, ModeReg | 0o644, RoCompatUsrQuota},
	{SysLocalGroupQuota, "aquota.group", true, InodeQuota, ModeReg | 0o644, RoCompatGrpQuota},
}

// Info returns the table entry of the kind.
func (k SystemFileKind) Info() (SystemFileInfo, bool) {
	if k < 0 || k >= NumSystemFiles {
		return SystemFileInfo{}, false
	}
	return SystemFiles[k], true
}

func (k SystemFileKind) String() string {
	if info, ok := k.Info(); ok {
		if info.PerSlot {
			return info.Name + ":NNNN"
		}
		return info.Name
	}
	return fmt.Sprintf("SystemFileKind(%d)", int(k))
}

// SystemFileName is the name of a system file in the system directory:
// "global_bitmap", or "journal:0003" for per-slot kinds (slot is ignored
// for global kinds). It fails for an unknown kind or a slot outside
// 0..MaxSlots-1 on a per-slot kind.
func SystemFileName(kind SystemFileKind, slot int) (string, error) {
	info, ok := kind.Info()
	if !ok {
		return "", fmt.Errorf("unknown system file kind %d", int(kind))
	}
	if !info.PerSlot {
		return info.Name, nil
	}
	if slot < 0 || slot >= MaxSlots {
		return "", fmt.Errorf("%s: slot %d outside 0..%d", info.Name, slot, MaxSlots-1)
	}
	return fmt.Sprintf("%s:%04d", info.Name, slot), nil
}

// ParseSystemFileName is the inverse of SystemFileName: it recognises
// exactly the names SystemFileName makes (slot is -1 for global kinds).
func ParseSystemFileName(name string) (kind SystemFileKind, slot int, ok bool) {
	base, suffix, perSlot := strings.Cut(name, ":")
	if perSlot {
		if len(suffix) != 4 {
			return 0, 0, false
		}
		slot = 0
		for _, c := range suffix {
			if c < '0' || c > '9' {
				return 0, 0, false
			}
			slot = slot*10 + int(c-'0')
		}
		if slot >= MaxSlots {
			return 0, 0, false
		}
	} else {
		slot = -1
	}
	for _, info := range SystemFiles {
		if info.Name == base && info.PerSlot == perSlot {
			return info.Kind, slot, true
		}
	}
	return 0, 0, false
}

// SystemFileDirentType is the dirent file_type of a system file: 2 for the
// orphan directories, 1 for the rest.
func SystemFileDirentType(kind SystemFileKind) uint8 {
	if info, ok := kind.Info(); ok {
		return FileTypeOfMode(info.Mode)
	}
	return FileTypeUnknown
}
