package ondisk

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Where the superblock lives and what identifies it.
const (
	// SuperBlockBlkno is the superblock's block number, in fs blocks (so
	// byte 2*blocksize of the device).
	SuperBlockBlkno = 2
	// SuperBlockSignature is the superblock dinode's i_signature.
	SuperBlockSignature = "OCFSV2\x00\x00"
	// SuperMagic is the f_type statfs(2) reports for an OCFS2 mount.
	SuperMagic = 0x7461636f
)

// The only on-disk revision there is: 0.90.
const (
	MajorRevLevel = 0
	MinorRevLevel = 90
)

// Geometry limits of a volume.
const (
	MinBlockBits   = 9  // 512-byte blocks
	MaxBlockBits   = 12 // 4 KiB blocks (a block never exceeds the smallest cluster)
	MinClusterBits = 12 // 4 KiB clusters
	MaxClusterBits = 20 // 1 MiB clusters

	MinBlockSize   = 1 << MinBlockBits
	MaxBlockSize   = 1 << MaxBlockBits
	MinClusterSize = 1 << MinClusterBits
	MaxClusterSize = 1 << MaxClusterBits

	// MaxSlots is the most node slots a volume can have (s_max_slots).
	MaxSlots = 255
)

// Sizes of the superblock's fixed-length fields.
const (
	VolumeLabelLen = 64 // s_label, NUL padded; mkfs allows at most 63 characters
	UUIDLen        = 16 // s_uuid
	StackLabelLen  = 4  // ci_stack, e.g. "o2cb", "pcmk" (no NUL)
	ClusterNameLen = 16 // ci_cluster, NUL padded
)

// s_tunefs_flag bits: which interrupted tunefs.ocfs2 operation
// IncompatTunefsInProg is guarding.
const (
	TunefsInProgRemoveSlot uint16 = 0x0001 // removing node slots
	TunefsInProgDirTrailer uint16 = 0x0002 // adding directory block trailers
)

// StateErrorFS is the s_state bit the kernel sets when it saw on-disk errors.
const StateErrorFS uint16 = 0x0001

// ClusterO2CBGlobalHeartbeat is the ci_stackflags bit that selects o2cb's
// global heartbeat mode; it is meaningful only with IncompatClusterInfo.
const ClusterO2CBGlobalHeartbeat uint8 = 0x01

// Backup superblocks: copies at byte offsets 1 GiB, 4 GiB, 16 GiB, 64 GiB,
// 256 GiB and 1 TiB, each with i_blkno set to its own location.
const (
	BackupSuperBlockStart = 1 << 30
	MaxBackupSuperBlocks  = 6
)

// superBlockSize is the size of struct ocfs2_super_block in id2; it fits a
// 512-byte block (0xC0 + 0x140 == 0x200).
const superBlockSize = 0x140

const structSuperBlock = "superblock"

// ClusterInfo is struct ocfs2_cluster_info (s_cluster_info), the cluster
// stack the volume is stamped for. It is valid only when IncompatUserspaceStack
// or IncompatClusterInfo is set; without either the stack is classic o2cb.
//
//	0x00 u8[4]  ci_stack        stack label, e.g. "o2cb", "pcmk" (no NUL)
//	0x04 u8     ci_stackflags   ClusterO2CBGlobalHeartbeat (with CLUSTERINFO only)
//	0x05 u8[3]  ci_reserved1..3
//	0x08 u8[16] ci_cluster      cluster name, NUL terminated when shorter than 16
//
// The fields are kept as raw bytes: mkfs.ocfs2 copies all 16 bytes of its
// name buffer, so real volumes carry stray bytes after the NUL, and a
// decode/encode cycle must keep them.
type ClusterInfo struct {
	Stack      [StackLabelLen]byte
	StackFlags uint8
	Cluster    [ClusterNameLen]byte
}

// StackName is ci_stack as text, up to a NUL.
func (c *ClusterInfo) StackName() string { return cstring(c.Stack[:]) }

// ClusterName is ci_cluster as text, up to its NUL.
func (c *ClusterInfo) ClusterName() string { return cstring(c.Cluster[:]) }

// Set stores a stack label (at most 4 bytes), a cluster name (at most 16
// bytes) and the stack flags, zero padding both fields.
func (c *ClusterInfo) Set(stack, cluster string, flags uint8) error {
	var st [StackLabelLen]byte
	var cl [ClusterNameLen]byte
	if err := putPaddedString(st[:], stack, "ci_stack"); err != nil {
		return err
	}
	if err := putPaddedString(cl[:], cluster, "ci_cluster"); err != nil {
		return err
	}
	c.Stack, c.Cluster, c.StackFlags = st, cl, flags
	return nil
}

// SuperBlock is struct ocfs2_super_block, held in the id2 area of the
// dinode at block SuperBlockBlkno whose i_signature is "OCFSV2". Offsets are
// relative to id2 (add 0xC0 for the offset in the block):
//
//	0x00 le16 s_major_rev_level      0
//	0x02 le16 s_minor_rev_level      90
//	0x04 le16 s_mnt_count
//	0x06 le16 s_max_mnt_count        mkfs: 20
//	0x08 le16 s_state                StateErrorFS
//	0x0A le16 s_errors
//	0x0C le32 s_checkinterval
//	0x10 le64 s_lastcheck            seconds since the epoch
//	0x18 le32 s_creator_os           0 = Linux
//	0x1C le32 s_feature_compat
//	0x20 le32 s_feature_incompat
//	0x24 le32 s_feature_ro_compat
//	0x28 le64 s_root_blkno           root directory dinode
//	0x30 le64 s_system_dir_blkno     system directory ("//") dinode
//	0x38 le32 s_blocksize_bits       9..12
//	0x3C le32 s_clustersize_bits     12..20
//	0x40 le16 s_max_slots            node slots, <= 255
//	0x42 le16 s_tunefs_flag          TunefsInProg* while IncompatTunefsInProg
//	0x44 le32 s_uuid_hash            UUIDHash(s_uuid), with XATTR or INDEXED_DIRS
//	0x48 le64 s_first_cluster_group  blkno of global bitmap group 0's descriptor
//	0x50 u8[64] s_label              NUL padded
//	0x90 u8[16] s_uuid
//	0xA0 ClusterInfo s_cluster_info  (24 bytes)
//	0xB8 le16 s_xattr_inline_size    256 with XATTR
//	0xBA le16 s_reserved0
//	0xBC le32 s_dx_seed[3]           indexed-dir hash seeds
//	0xC8 le64 s_reserved2[15]        zero, up to 0x140
//
// (The upstream header's "/*C0*/" mark on s_reserved2 is off by 8; the
// reserved area starts at 0xC8.)
type SuperBlock struct {
	MajorRev          uint16
	MinorRev          uint16
	MntCount          uint16
	MaxMntCount       uint16
	State             uint16
	Errors            uint16
	CheckInterval     uint32
	LastCheck         uint64
	CreatorOS         uint32
	Features          Features
	RootBlkno         uint64
	SystemDirBlkno    uint64
	BlockSizeBits     uint32
	ClusterSizeBits   uint32
	MaxSlots          uint16
	TunefsFlag        uint16
	UUIDHash          uint32
	FirstClusterGroup uint64
	VolumeLabel       [VolumeLabelLen]byte // raw s_label; Label() is the text
	UUID              [UUIDLen]byte
	ClusterInfo       ClusterInfo
	XattrInlineSize   uint16
	DxSeed            [3]uint32
}

// BlockSize is the fs block size in bytes.
func (s *SuperBlock) BlockSize() int { return 1 << s.BlockSizeBits }

// ClusterSize is the cluster size in bytes.
func (s *SuperBlock) ClusterSize() int { return 1 << s.ClusterSizeBits }

// BlocksPerCluster is clustersize / blocksize (zero for a superblock whose
// cluster is smaller than its block; ValidateSuperBlock rejects those).
func (s *SuperBlock) BlocksPerCluster() int {
	if s.ClusterSizeBits < s.BlockSizeBits {
		return 0
	}
	return 1 << (s.ClusterSizeBits - s.BlockSizeBits)
}

// UUIDString is the UUID as 32 uppercase hex digits: the DLM domain and the
// o2hb region name of the volume.
func (s *SuperBlock) UUIDString() string { return fmt.Sprintf("%X", s.UUID[:]) }

// Label is the volume label, up to its first NUL.
func (s *SuperBlock) Label() string { return cstring(s.VolumeLabel[:]) }

// SetLabel stores a label of at most VolumeLabelLen-1 bytes, NUL padded.
func (s *SuperBlock) SetLabel(label string) error {
	if len(label) >= VolumeLabelLen {
		return fmt.Errorf("volume label %q is %d bytes, at most %d allowed", label, len(label), VolumeLabelLen-1)
	}
	return putPaddedString(s.VolumeLabel[:], label, "s_label")
}

// HasClusterInfo reports whether ClusterInfo is meaningful: the volume has
// USERSPACE_STACK or CLUSTERINFO. Otherwise the stack is classic o2cb.
func (s *SuperBlock) HasClusterInfo() bool {
	return s.Features.Incompat&(IncompatUserspaceStack|IncompatClusterInfo) != 0
}

// UUIDHash is the hash that gives s_uuid_hash (and seeds xattr name hashes):
// for each UUID byte, rotate the hash left by 5 and xor the byte in.
func UUIDHash(uuid [UUIDLen]byte) uint32 {
	var h uint32
	for _, c := range uuid {
		h = (h << 5) ^ (h >> 27) ^ uint32(c)
	}
	return h
}

// BackupSuperBlockBlknos lists the block numbers of the backup superblocks a
// volume of totalBlocks blocks has room for, in ascending order.
func BackupSuperBlockBlknos(blockSize int, totalBlocks uint64) []uint64 {
	var out []uint64
	if blockSize <= 0 {
		return nil
	}
	for i := 0; i < MaxBackupSuperBlocks; i++ {
		blkno := (uint64(BackupSuperBlockStart) << (2 * i)) / uint64(blockSize)
		if blkno >= totalBlocks {
			break
		}
		out = append(out, blkno)
	}
	return out
}

// isBackupSuperBlockBlkno reports whether blkno is where some backup
// superblock lives for this block size, whatever the volume size.
func isBackupSuperBlockBlkno(blockSize int, blkno uint64) bool {
	return slices.Contains(BackupSuperBlockBlknos(blockSize, ^uint64(0)), blkno)
}

func decodeSuperBlock(b []byte) (*SuperBlock, error) {
	if len(b) < superBlockSize {
		return nil, corrupt(structSuperBlock, "", "superblock needs %d bytes of id2, the block leaves %d", superBlockSize, len(b))
	}
	le := binary.LittleEndian
	s := &SuperBlock{
		MajorRev:      le.Uint16(b[0x00:]),
		MinorRev:      le.Uint16(b[0x02:]),
		MntCount:      le.Uint16(b[0x04:]),
		MaxMntCount:   le.Uint16(b[0x06:]),
		State:         le.Uint16(b[0x08:]),
		Errors:        le.Uint16(b[0x0A:]),
		CheckInterval: le.Uint32(b[0x0C:]),
		LastCheck:     le.Uint64(b[0x10:]),
		CreatorOS:     le.Uint32(b[0x18:]),
		Features: Features{
			Compat:   le.Uint32(b[0x1C:]),
			Incompat: le.Uint32(b[0x20:]),
			RoCompat: le.Uint32(b[0x24:]),
		},
		RootBlkno:         le.Uint64(b[0x28:]),
		SystemDirBlkno:    le.Uint64(b[0x30:]),
		BlockSizeBits:     le.Uint32(b[0x38:]),
		ClusterSizeBits:   le.Uint32(b[0x3C:]),
		MaxSlots:          le.Uint16(b[0x40:]),
		TunefsFlag:        le.Uint16(b[0x42:]),
		UUIDHash:          le.Uint32(b[0x44:]),
		FirstClusterGroup: le.Uint64(b[0x48:]),
		ClusterInfo:       ClusterInfo{StackFlags: b[0xA4]},
		XattrInlineSize:   le.Uint16(b[0xB8:]),
	}
	copy(s.ClusterInfo.Stack[:], b[0xA0:0xA4])
	copy(s.ClusterInfo.Cluster[:], b[0xA8:0xB8])
	copy(s.VolumeLabel[:], b[0x50:0x90])
	copy(s.UUID[:], b[0x90:0xA0])
	for i := range s.DxSeed {
		s.DxSeed[i] = le.Uint32(b[0xBC+4*i:])
	}
	return s, nil
}

// encode writes the superblock into the first superBlockSize bytes of b (the
// dinode's id2), zeroing the reserved fields.
func (s *SuperBlock) encode(b []byte) error {
	if len(b) < superBlockSize {
		return fmt.Errorf("superblock: needs %d bytes of id2, have %d", superBlockSize, len(b))
	}
	le := binary.LittleEndian
	le.PutUint16(b[0x00:], s.MajorRev)
	le.PutUint16(b[0x02:], s.MinorRev)
	le.PutUint16(b[0x04:], s.MntCount)
	le.PutUint16(b[0x06:], s.MaxMntCount)
	le.PutUint16(b[0x08:], s.State)
	le.PutUint16(b[0x0A:], s.Errors)
	le.PutUint32(b[0x0C:], s.CheckInterval)
	le.PutUint64(b[0x10:], s.LastCheck)
	le.PutUint32(b[0x18:], s.CreatorOS)
	le.PutUint32(b[0x1C:], s.Features.Compat)
	le.PutUint32(b[0x20:], s.Features.Incompat)
	le.PutUint32(b[0x24:], s.Features.RoCompat)
	le.PutUint64(b[0x28:], s.RootBlkno)
	le.PutUint64(b[0x30:], s.SystemDirBlkno)
	le.PutUint32(b[0x38:], s.BlockSizeBits)
	le.PutUint32(b[0x3C:], s.ClusterSizeBits)
	le.PutUint16(b[0x40:], s.MaxSlots)
	le.PutUint16(b[0x42:], s.TunefsFlag)
	le.PutUint32(b[0x44:], s.UUIDHash)
	le.PutUint64(b[0x48:], s.FirstClusterGroup)
	copy(b[0x50:0x90], s.VolumeLabel[:])
	copy(b[0x90:0xA0], s.UUID[:])
	copy(b[0xA0:0xA4], s.ClusterInfo.Stack[:])
	b[0xA4] = s.ClusterInfo.StackFlags
	clear(b[0xA5:0xA8])
	copy(b[0xA8:0xB8], s.ClusterInfo.Cluster[:])
	le.PutUint16(b[0xB8:], s.XattrInlineSize)
	le.PutUint16(b[0xBA:], 0)
	for i, v := range s.DxSeed {
		le.PutUint32(b[0xBC+4*i:], v)
	}
	clear(b[0xC8:superBlockSize])
	return nil
}

// ValidateSuperBlock applies the probe rules the kernel and libocfs2 use to
// accept block 2 (or a backup) read at blockSize: signature "OCFSV2",
// 1<<s_blocksize_bits == blockSize, revision 0.90, i_blkno 2 or a backup
// location, cluster bits 12..20, non-zero root and system directory, at most
// MaxSlots slots. Every failure is a CorruptError naming the field. With
// META_ECC the caller also verifies the block check (VerifyBlockCheck at
// DinodeCheckOffset) before trusting the rest, as the kernel does, and
// checks that i_blkno is the block it read (2, or the backup's location).
func ValidateSuperBlock(d *Dinode, blockSize int) error {
	if !isBlockSize(blockSize) {
		return fmt.Errorf("superblock probe: block size %d is not a power of two from %d to %d", blockSize, MinBlockSize, MaxBlockSize)
	}
	if d == nil {
		return fmt.Errorf("superblock probe: no dinode")
	}
	if d.Signature != SuperBlockSignature {
		return corrupt(structSuperBlock, "i_signature", "is %q, want %q", cstring([]byte(d.Signature)), "OCFSV2")
	}
	s := d.Super
	if s == nil {
		return corrupt(structSuperBlock, "i_flags", "0x%x lacks SUPER_BLOCK_FL", d.Flags)
	}
	if s.BlockSizeBits < MinBlockBits || s.BlockSizeBits > MaxBlockBits {
		return corrupt(structSuperBlock, "s_blocksize_bits", "is %d, want %d..%d", s.BlockSizeBits, MinBlockBits, MaxBlockBits)
	}
	if s.BlockSize() != blockSize {
		return corrupt(structSuperBlock, "s_blocksize_bits", "is %d (%d-byte blocks), but the block was read with %d-byte blocks", s.BlockSizeBits, s.BlockSize(), blockSize)
	}
	if s.MajorRev != MajorRevLevel {
		return corrupt(structSuperBlock, "s_major_rev_level", "is %d, want %d (revision %d.%d)", s.MajorRev, MajorRevLevel, MajorRevLevel, MinorRevLevel)
	}
	if s.MinorRev != MinorRevLevel {
		return corrupt(structSuperBlock, "s_minor_rev_level", "is %d, want %d (revision %d.%d)", s.MinorRev, MinorRevLevel, MajorRevLevel, MinorRevLevel)
	}
	if d.Blkno != SuperBlockBlkno && !isBackupSuperBlockBlkno(blockSize, d.Blkno) {
		return corrupt(structSuperBlock, "i_blkno", "is %d, want %d or a backup superblock location", d.Blkno, SuperBlockBlkno)
	}
	if s.ClusterSizeBits < MinClusterBits || s.ClusterSizeBits > MaxClusterBits {
		return corrupt(structSuperBlock, "s_clustersize_bits", "is %d, want %d..%d (4 KiB to 1 MiB clusters)", s.ClusterSizeBits, MinClusterBits, MaxClusterBits)
	}
	if s.RootBlkno == 0 {
		return corrupt(structSuperBlock, "s_root_blkno", "is 0")
	}
	if s.SystemDirBlkno == 0 {
		return corrupt(structSuperBlock, "s_system_dir_blkno", "is 0")
	}
	if s.MaxSlots > MaxSlots {
		return corrupt(structSuperBlock, "s_max_slots", "is %d, more than the maximum %d", s.MaxSlots, MaxSlots)
	}
	return nil
}
