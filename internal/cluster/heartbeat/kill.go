package heartbeat

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"o2go/internal/base"
	"o2go/internal/ondisk"
)

// KillBlockVersion is the layout version written in kill blocks.
const KillBlockVersion = 1

const (
	killHeaderSize = 0x40
	killOrderSize  = 16
)

var killMagic = [8]byte{'O', '2', 'G', 'O', 'K', 'I', 'L', 'L'}

// FenceReason codes carried by a fencing acknowledgement.
type FenceReason uint8

const (
	FenceUnknown    FenceReason = iota
	FenceKilled                 // evicted through a kill block or an Evict message
	FenceQuorum                 // o2quo: lost quorum
	FenceWriteStall             // heartbeat writes stalled past the safe bound
	FenceHang                   // the agent was paused past the safe bound
	FenceRemoved                // the committed view left this node out
	FenceOperator               // an operator asked for it
	maxFenceReason
)

func (r FenceReason) String() string {
	return [...]string{"unknown", "killed", "lost quorum", "heartbeat write stall", "hang", "removed from view", "operator"}[r]
}

// KillOrder asks the node Victim, in its incarnation Generation (its
// heartbeat generation), to fence itself.
type KillOrder struct {
	Victim     base.NodeID
	Generation uint64
}

// KillBlock is one node's sector of the kill area. Only its owner writes it.
// Little-endian, like the o2hb block beside it:
//
//	0x00 [8]  magic "O2GOKILL"
//	0x08 u8   owner node number
//	0x09 u8   version (1)
//	0x0A le16 number of orders
//	0x0C le32 checksum: o2hb's (crc32_le, seed 0) of the whole sector
//	          with this field zero
//	0x10 le64 owner's heartbeat generation when written
//	0x18 le64 seq: grows with every write
//	0x20 le64 fenced generation: non-zero means the owner's incarnation of
//	          that generation has fenced — its writes are latched off and
//	          none is in flight; this is the acknowledgement survivors wait for
//	0x28 u8   fence reason (FenceReason)
//	0x29 ...  zero to 0x40
//	0x40      orders, 16 bytes each: u8 victim, u8[7] zero, le64 victim's
//	          heartbeat generation
//
// A sector of 512 bytes holds 28 orders; survivors that must evict more
// nodes at once fall back to waiting out the dead threshold for the rest.
type KillBlock struct {
	Owner       base.NodeID
	Generation  uint64
	Seq         uint64
	FencedGen   uint64
	FenceReason FenceReason
	Orders      []KillOrder
}

// MaxKillOrders is how many orders fit a sector of sectorSize bytes.
func MaxKillOrders(sectorSize int) int { return (sectorSize - killHeaderSize) / killOrderSize }

// Encode writes the block into sector (the whole sector is rewritten).
func (k *KillBlock) Encode(sector []byte) error {
	if len(sector) < 512 || len(sector) > 4096 || len(sector)&(len(sector)-1) != 0 {
		return fmt.Errorf("kill block: sector is %d bytes, want a power of two from 512 to 4096", len(sector))
	}
	if len(k.Orders) > MaxKillOrders(len(sector)) {
		return fmt.Errorf("kill block: %d orders, at most %d fit a %d-byte sector", len(k.Orders), MaxKillOrders(len(sector)), len(sector))
	}
	clear(sector)
	le := binary.LittleEndian
	copy(sector, killMagic[:])
	sector[0x08] = byte(k.Owner)
	sector[0x09] = KillBlockVersion
	le.PutUint16(sector[0x0A:], uint16(len(k.Orders)))
	le.PutUint64(sector[0x10:], k.Generation)
	le.PutUint64(sector[0x18:], k.Seq)
	le.PutUint64(sector[0x20:], k.FencedGen)
	sector[0x28] = byte(k.FenceReason)
	for i, o := range k.Orders {
		b := sector[killHeaderSize+i*killOrderSize:]
		b[0] = byte(o.Victim)
		le.PutUint64(b[8:], o.Generation)
	}
	le.PutUint32(sector[ondisk.HeartbeatCksumOffset:], ondisk.HeartbeatChecksum(sector))
	return nil
}

// DecodeKillBlock reads the kill block of node owner. A sector never
// written (all zero) is no block: (nil, nil). Anything else that is not a
// valid block of owner is an error naming what is wrong.
func DecodeKillBlock(sector []byte, owner base.NodeID) (*KillBlock, error) {
	if len(sector) < 512 || len(sector) > 4096 || len(sector)&(len(sector)-1) != 0 {
		return nil, fmt.Errorf("kill block of node %d: sector is %d bytes", owner, len(sector))
	}
	if !bytes.ContainsFunc(sector, func(r rune) bool { return r != 0 }) {
		return nil, nil
	}
	if !bytes.Equal(sector[:8], killMagic[:]) {
		return nil, fmt.Errorf("kill block of node %d: bad magic %q", owner, sector[:8])
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(sector[ondisk.HeartbeatCksumOffset:]), ondisk.HeartbeatChecksum(sector); got != want {
		return nil, fmt.Errorf("kill block of node %d: checksum 0x%08x, computed 0x%08x", owner, got, want)
	}
	if sector[0x09] != KillBlockVersion {
		return nil, fmt.Errorf("kill block of node %d: version %d, this o2go reads %d", owner, sector[0x09], KillBlockVersion)
	}
	if base.NodeID(sector[0x08]) != owner {
		return nil, fmt.Errorf("kill block of node %d: written by node %d", owner, sector[0x08])
	}
	n := int(le.Uint16(sector[0x0A:]))
	if n > MaxKillOrders(len(sector)) {
		return nil, fmt.Errorf("kill block of node %d: %d orders, at most %d fit", owner, n, MaxKillOrders(len(sector)))
	}
	k := &KillBlock{
		Owner:       owner,
		Generation:  le.Uint64(sector[0x10:]),
		Seq:         le.Uint64(sector[0x18:]),
		FencedGen:   le.Uint64(sector[0x20:]),
		FenceReason: FenceReason(sector[0x28]),
	}
	if k.FenceReason >= maxFenceReason {
		return nil, fmt.Errorf("kill block of node %d: unknown fence reason %d", owner, sector[0x28])
	}
	for i := 0; i < n; i++ {
		b := sector[killHeaderSize+i*killOrderSize:]
		o := KillOrder{Victim: base.NodeID(b[0]), Generation: le.Uint64(b[8:])}
		if !o.Victim.Valid() {
			return nil, fmt.Errorf("kill block of node %d: order %d names node %d", owner, i, b[0])
		}
		k.Orders = append(k.Orders, o)
	}
	return k, nil
}

// OrdersKill reports whether the block orders victim, in incarnation gen, to fence.
func (k *KillBlock) OrdersKill(victim base.NodeID, gen uint64) bool {
	for _, o := range k.Orders {
		if o.Victim == victim && o.Generation == gen {
			return true
		}
	}
	return false
}
