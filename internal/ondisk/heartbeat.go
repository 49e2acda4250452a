package ondisk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Heartbeat area geometry (o2hb).
const (
	// HeartbeatMaxNodes is O2NM_MAX_NODES: node numbers 0..254, one sector each.
	HeartbeatMaxNodes = 255
	// HeartbeatFileBlocks is the fs blocks mkfs gives the heartbeat system
	// file (O2NM_MAX_NODES + 1).
	HeartbeatFileBlocks = HeartbeatMaxNodes + 1
	// HeartbeatBlockSize is the bytes of o2hb_disk_heartbeat_block; the rest
	// of the sector is zero.
	HeartbeatBlockSize = 0x1C
	// HeartbeatCksumOffset is where hb_cksum sits in the sector.
	HeartbeatCksumOffset = 0x0C
)

const structHeartbeat = "heartbeat block"

// HeartbeatBlock is struct o2hb_disk_heartbeat_block, what node N writes
// into sector N of a heartbeat region (the "heartbeat" system file, or a
// heartbeat-only device) every heartbeat interval:
//
//	0x00 le64  hb_seq         a value that changes every beat (the kernel
//	                          writes the wall-clock seconds)
//	0x08 u8    hb_node        the writer's node number
//	0x09 u8[3] hb_pad1
//	0x0C le32  hb_cksum       HeartbeatChecksum of the whole sector
//	0x10 le64  hb_generation  random, chosen when the node starts heartbeating
//	0x18 le32  hb_dead_ms     the writer's dead threshold in milliseconds
//	0x1C ...   zero to the end of the sector
//
// The sector is the device's logical sector size (block_bytes in o2hb,
// 512 for image files and most disks); it is written in one I/O.
type HeartbeatBlock struct {
	Seq        uint64
	Node       uint8
	Cksum      uint32 // as stored; Encode sets it
	Generation uint64
	DeadMs     uint32
}

// isSectorSize reports whether n is a sector size o2hb supports.
func isSectorSize(n int) bool { return n >= 512 && n <= 4096 && n&(n-1) == 0 }

// HeartbeatChecksum is o2hb's checksum of a heartbeat sector: the kernel's
// crc32_le seeded with 0 (reflected CRC-32, no final inversion) over the
// whole sector with hb_cksum taken as zero. sector is not modified.
func HeartbeatChecksum(sector []byte) uint32 {
	if len(sector) < HeartbeatBlockSize {
		return 0
	}
	var zero [4]byte
	// crc32.Update inverts on entry and exit; seeding with ^0 and inverting
	// the result gives the raw register starting from 0.
	c := crc32.Update(^uint32(0), crc32.IEEETable, sector[:HeartbeatCksumOffset])
	c = crc32.Update(c, crc32.IEEETable, zero[:])
	c = crc32.Update(c, crc32.IEEETable, sector[HeartbeatCksumOffset+4:])
	return ^c
}

// DecodeHeartbeatBlock decodes one heartbeat sector (512..4096 bytes). It
// does not check the checksum: to o2hb a bad checksum is a missed sample,
// not corruption, so the caller decides with VerifyHeartbeat. (A sector
// never written is all zero and passes the checksum; hb_seq not changing is
// what keeps such a node dead.)
func DecodeHeartbeatBlock(sector []byte) (*HeartbeatBlock, error) {
	if !isSectorSize(len(sector)) {
		return nil, corrupt(structHeartbeat, "", "sector is %d bytes, want a power of two from 512 to 4096", len(sector))
	}
	le := binary.LittleEndian
	return &HeartbeatBlock{
		Seq:        le.Uint64(sector),
		Node:       sector[0x08],
		Cksum:      le.Uint32(sector[HeartbeatCksumOffset:]),
		Generation: le.Uint64(sector[0x10:]),
		DeadMs:     le.Uint32(sector[0x18:]),
	}, nil
}

// VerifyHeartbeat checks a heartbeat sector's hb_cksum.
func VerifyHeartbeat(sector []byte) error {
	if !isSectorSize(len(sector)) {
		return corrupt(structHeartbeat, "", "sector is %d bytes, want a power of two from 512 to 4096", len(sector))
	}
	stored := binary.LittleEndian.Uint32(sector[HeartbeatCksumOffset:])
	if got := HeartbeatChecksum(sector); got != stored {
		return corrupt(structHeartbeat, "hb_cksum", "is 0x%08x, the sector's checksum is 0x%08x", stored, got)
	}
	return nil
}

// Encode writes the block into sector (the whole sector, zeroed after the
// block), computes the checksum over it, stores it, and sets h.Cksum.
func (h *HeartbeatBlock) Encode(sector []byte) error {
	if !isSectorSize(len(sector)) {
		return fmt.Errorf("heartbeat encode: sector is %d bytes, want a power of two from 512 to 4096", len(sector))
	}
	clear(sector)
	le := binary.LittleEndian
	le.PutUint64(sector, h.Seq)
	sector[0x08] = h.Node
	le.PutUint64(sector[0x10:], h.Generation)
	le.PutUint32(sector[0x18:], h.DeadMs)
	h.Cksum = HeartbeatChecksum(sector)
	le.PutUint32(sector[HeartbeatCksumOffset:], h.Cksum)
	return nil
}
