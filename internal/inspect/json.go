package inspect

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"o2go/internal/ondisk"
)

// The --json forms of the inspection commands. Field names are part of
// o2go's interface: scripts read them, so they only ever grow. Every
// number is a plain JSON number (64-bit values may exceed 2^53: read them
// as integers, not floats); times are RFC 3339 strings in UTC; block
// numbers are file-system blocks.

// SuperBlockJSON is `stats --json`: the superblock, and the superblock's
// own inode unless -h.
type SuperBlockJSON struct {
	Device            string     `json:"device"`
	SuperBlockBlkno   uint64     `json:"superblock_blkno"` // 2, or a backup's block
	Revision          string     `json:"revision"`         // "0.90"
	MountCount        uint16     `json:"mount_count"`
	MaxMountCount     uint16     `json:"max_mount_count"`
	State             uint16     `json:"state"`
	Errors            uint16     `json:"errors"`
	CheckInterval     uint32     `json:"check_interval"`
	LastCheck         string     `json:"last_check"`
	CreatorOS         uint32     `json:"creator_os"`
	FeatureCompat     uint32     `json:"feature_compat"`
	FeatureIncompat   uint32     `json:"feature_incompat"`
	FeatureRoCompat   uint32     `json:"feature_ro_compat"`
	Features          []string   `json:"features"` // names, as o2info --fs-features prints them
	TunefsFlag        uint16     `json:"tunefs_incomplete"`
	RootBlkno         uint64     `json:"root_blkno"`
	SystemDirBlkno    uint64     `json:"system_dir_blkno"`
	FirstClusterGroup uint64     `json:"first_cluster_group_blkno"`
	BlockSize         int        `json:"block_size"`
	ClusterSize       int        `json:"cluster_size"`
	Clusters          uint32     `json:"clusters"`
	MaxSlots          uint16     `json:"max_slots"`
	XattrInlineSize   uint16     `json:"xattr_inline_size"`
	Label             string     `json:"label"`
	UUID              string     `json:"uuid"` // 32 uppercase hex digits
	UUIDHash          uint32     `json:"uuid_hash"`
	DxSeeds           [3]uint32  `json:"dx_seeds"`
	ClusterStack      string     `json:"cluster_stack"` // "o2cb" for classic o2cb, "" for local volumes
	ClusterName       string     `json:"cluster_name,omitempty"`
	ClusterFlags      uint8      `json:"cluster_flags"`
	GlobalHeartbeat   bool       `json:"global_heartbeat"`
	Inode             *InodeJSON `json:"inode,omitempty"`
	Generation        uint32     `json:"fs_generation"`
	Notes             []string   `json:"notes,omitempty"` // what opening the volume found worth saying
}

// InodeJSON is `stat --json`: the dinode's fields and, for the kinds that
// have one, what its id2 holds.
type InodeJSON struct {
	Inode          uint64   `json:"inode"`
	Type           string   `json:"type"` // regular, directory, symlink, chardev, blockdev, fifo, socket, unknown
	Mode           string   `json:"mode"` // permission bits in octal, e.g. "0755"
	Generation     uint32   `json:"generation"`
	FSGeneration   uint32   `json:"fs_generation"`
	Flags          []string `json:"flags"` // valid, system, superblock, ... (debugfs's words, lower case)
	FlagsRaw       uint32   `json:"flags_raw"`
	DynFeatures    []string `json:"dyn_features"`
	DynFeaturesRaw uint16   `json:"dyn_features_raw"`
	Attr           uint32   `json:"attr"`
	UID            uint32   `json:"uid"`
	User           string   `json:"user"`
	GID            uint32   `json:"gid"`
	Group          string   `json:"group"`
	Size           uint64   `json:"size"`
	Links          uint32   `json:"links"`
	Clusters       uint32   `json:"clusters"`
	Ctime          string   `json:"ctime"`
	Atime          string   `json:"atime"`
	Mtime          string   `json:"mtime"`
	Dtime          string   `json:"dtime,omitempty"` // absent when zero
	XattrBlock     uint64   `json:"xattr_block,omitempty"`
	XattrInline    uint16   `json:"xattr_inline_size,omitempty"`
	RefcountBlock  uint64   `json:"refcount_block,omitempty"`
	LastExtBlock   uint64   `json:"last_extent_block,omitempty"`
	OrphanSlot     uint16   `json:"orphan_slot"`
	SuballocSlot   int      `json:"suballoc_slot"` // -1: the global inode allocator
	SuballocBit    uint16   `json:"suballoc_bit"`
	SuballocGroup  uint64   `json:"suballoc_group,omitempty"`
	Check          struct {
		CRC32e uint32 `json:"crc32e"`
		ECC    uint16 `json:"ecc"`
		// OK is false when the volume has metaecc and the stored check
		// does not match the block.
		OK bool `json:"ok"`
	} `json:"check"`
	Bitmap *struct {
		Total uint32 `json:"total"`
		Used  uint32 `json:"used"`
		Free  uint32 `json:"free"`
	} `json:"bitmap,omitempty"`
	Journal *struct {
		Dirty              bool   `json:"dirty"`
		RecoveryGeneration uint32 `json:"recovery_generation"`
	} `json:"journal,omitempty"`
	InlineDataMax *uint16          `json:"inline_data_max,omitempty"`
	DxRoot        uint64           `json:"dx_root,omitempty"`
	SymlinkTarget *string          `json:"symlink_target,omitempty"`
	LocalAlloc    *LocalAllocJSON  `json:"local_alloc,omitempty"`
	TruncateLog   []TruncateRecord `json:"truncate_log,omitempty"`
	Chains        []ChainJSON      `json:"chains,omitempty"`
	// Extents are the data extents in file order (the leaves of the tree);
	// ExtentTreeDepth is the depth of the tree above them.
	Extents         []ExtentJSON `json:"extents,omitempty"`
	ExtentTreeDepth *uint16      `json:"extent_tree_depth,omitempty"`
}

// ExtentJSON is one data extent.
type ExtentJSON struct {
	Cpos     uint32   `json:"cpos"`     // first logical cluster
	Clusters uint32   `json:"clusters"` // length in clusters
	Blkno    uint64   `json:"blkno"`    // first physical block
	Flags    []string `json:"flags,omitempty"`
}

// LocalAllocJSON is a local alloc's window.
type LocalAllocJSON struct {
	BitmapOffset uint32 `json:"bitmap_offset"`
	Size         int    `json:"size"` // bitmap bytes
}

// TruncateRecord is one truncate log record.
type TruncateRecord struct {
	Start    uint32 `json:"start"`
	Clusters uint32 `json:"clusters"`
}

// ChainJSON is one chain of an allocator with its groups.
type ChainJSON struct {
	Total  uint32      `json:"total"`
	Used   uint32      `json:"used"`
	Free   uint32      `json:"free"`
	Blkno  uint64      `json:"blkno"`
	Groups []GroupJSON `json:"groups"`
}

// GroupJSON is one group descriptor.
type GroupJSON struct {
	Blkno         uint64 `json:"blkno"`
	Total         uint16 `json:"total"`
	Used          int    `json:"used"`
	Free          uint16 `json:"free"`
	LongestFree   int    `json:"longest_free"`
	BitmapBytes   int    `json:"bitmap_bytes"`
	Chain         uint16 `json:"chain"`
	Discontiguous bool   `json:"discontiguous,omitempty"`
}

// DirEntryJSON is one `ls --json` entry; Inode fields are present with -l.
type DirEntryJSON struct {
	Inode    uint64 `json:"inode"`
	Name     string `json:"name"`
	FileType uint8  `json:"file_type"` // the dirent's type: 1 regular, 2 directory, 7 symlink...
	RecLen   uint16 `json:"rec_len"`
	Perms    string `json:"perms,omitempty"` // ls -l mode column, "drwxr-xr-x"
	Links    uint32 `json:"links,omitempty"`
	UID      uint32 `json:"uid"`
	GID      uint32 `json:"gid"`
	Size     uint64 `json:"size"`
	Mtime    string `json:"mtime,omitempty"`
}

// SlotMapJSON is `slotmap --json`: the occupied slots.
type SlotMapJSON struct {
	Extended bool       `json:"extended"`
	MaxSlots int        `json:"max_slots"`
	Slots    []SlotJSON `json:"slots"`
}

// SlotJSON is one occupied slot.
type SlotJSON struct {
	Slot int    `json:"slot"`
	Node uint32 `json:"node"`
}

// HeartbeatJSON is `hb --json`: the heartbeat sectors with a non-zero
// sequence (a node has written there).
type HeartbeatJSON struct {
	SectorSize int                   `json:"sector_size"`
	Sectors    []HeartbeatSectorJSON `json:"sectors"`
}

// HeartbeatSectorJSON is one written heartbeat sector.
type HeartbeatSectorJSON struct {
	Sector     int    `json:"sector"` // = the node number o2hb gives the writer
	Node       uint8  `json:"node"`   // hb_node as written
	Seq        uint64 `json:"seq"`
	Generation uint64 `json:"generation"`
	Checksum   uint32 `json:"checksum"`
	ChecksumOK bool   `json:"checksum_ok"`
	DeadMs     uint32 `json:"dead_ms"`
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

func jsonTime(sec uint64, nsec uint32) string {
	return time.Unix(int64(sec), int64(nsec)).UTC().Format(time.RFC3339Nano)
}

var jsonTypeNames = map[uint16]string{
	ondisk.ModeReg: "regular", ondisk.ModeDir: "directory", ondisk.ModeLnk: "symlink",
	ondisk.ModeChr: "chardev", ondisk.ModeBlk: "blockdev", ondisk.ModeFifo: "fifo", ondisk.ModeSock: "socket",
}

func lowerWords(bits uint32, table []flagName) []string {
	out := []string{}
	for _, f := range table {
		if bits&f.bit != 0 {
			b := []byte(f.name)
			for i, c := range b {
				if c >= 'A' && c <= 'Z' {
					b[i] = c + 'a' - 'A'
				}
			}
			out = append(out, string(b))
		}
	}
	return out
}

// inodeJSON fills the header part of InodeJSON.
func inodeJSON(d *ondisk.Dinode, raw []byte, metaECC bool) *InodeJSON {
	j := &InodeJSON{
		Inode: d.Blkno, Type: "unknown", Mode: fmt.Sprintf("0%o", d.Mode&0o7777),
		Generation: d.Generation, FSGeneration: d.FSGeneration,
		Flags: lowerWords(d.Flags, inodeFlagWords), FlagsRaw: d.Flags,
		DynFeatures: lowerWords(uint32(d.DynFeatures), dynFeatureWords), DynFeaturesRaw: d.DynFeatures,
		Attr: d.Attr, UID: d.UID, User: userName(d.UID), GID: d.GID, Group: groupName(d.GID),
		Size: d.Size, Links: d.Links, Clusters: d.Clusters,
		Ctime: jsonTime(d.Ctime.Sec, d.Ctime.Nsec), Atime: jsonTime(d.Atime.Sec, d.Atime.Nsec), Mtime: jsonTime(d.Mtime.Sec, d.Mtime.Nsec),
		XattrBlock: d.XattrLoc, XattrInline: d.XattrInlineSize, RefcountBlock: d.RefcountLoc,
		LastExtBlock: d.LastEBBlk, OrphanSlot: d.OrphanedSlot, SuballocSlot: int(d.SuballocSlot),
		SuballocBit: d.SuballocBit, SuballocGroup: d.SuballocLoc,
	}
	if t, ok := jsonTypeNames[d.Mode&ondisk.ModeTypeMask]; ok {
		j.Type = t
	}
	if d.SuballocSlot == ondisk.SuballocSlotGlobal {
		j.SuballocSlot = -1
	}
	if d.Dtime != 0 {
		j.Dtime = jsonTime(d.Dtime, 0)
	}
	if len(raw) >= ondisk.DinodeCheckOffset+8 {
		j.Check.CRC32e = binary.LittleEndian.Uint32(raw[ondisk.DinodeCheckOffset:])
		j.Check.ECC = binary.LittleEndian.Uint16(raw[ondisk.DinodeCheckOffset+4:])
		j.Check.OK = true
		if metaECC {
			c := ondisk.ComputeBlockCheck(raw, ondisk.DinodeCheckOffset)
			j.Check.OK = c.CRC32e == j.Check.CRC32e && c.ECC == j.Check.ECC
		}
	}
	if d.Flags&ondisk.InodeBitmap != 0 {
		b := d.Bitmap()
		j.Bitmap = &struct {
			Total uint32 `json:"total"`
			Used  uint32 `json:"used"`
			Free  uint32 `json:"free"`
		}{b.Total, b.Used, b.Total - b.Used}
	}
	if d.Flags&ondisk.InodeJournal != 0 {
		jr := d.Journal()
		j.Journal = &struct {
			Dirty              bool   `json:"dirty"`
			RecoveryGeneration uint32 `json:"recovery_generation"`
		}{jr.Flags&ondisk.JournalDirty != 0, jr.RecoveryGeneration}
	}
	if d.DynFeatures&ondisk.DynInlineData != 0 && len(raw) >= ondisk.DinodeID2Offset+2 {
		n := binary.LittleEndian.Uint16(raw[ondisk.DinodeID2Offset:])
		j.InlineDataMax = &n
	} else if d.DynFeatures&ondisk.DynIndexedDir != 0 {
		j.DxRoot = d.DxRoot
	}
	return j
}

func extentFlagWords(f uint8) []string {
	if f == 0 {
		return nil
	}
	return lowerWords(uint32(f), extentFlagNames)
}
