package ondisk

import (
	"encoding/binary"
	"fmt"
)

// Slot map entry sizes.
const (
	OldSlotSize      = 2 // le16 node number per slot
	ExtendedSlotSize = 8 // struct ocfs2_extended_slot (upstream's "/*10*/" mark is wrong)
)

// OldSlotEmpty marks a free slot in the old slot map (OCFS2_INVALID_SLOT).
const OldSlotEmpty = 0xFFFF

const structSlotMap = "slot map"

// Slot is one slot map entry: whether a node holds the slot, and which.
// Node is kept as read even when Valid is false: the kernel clears only
// es_valid when a node leaves, and keeping Node preserves the bytes.
type Slot struct {
	Valid bool
	Node  uint32
}

// SlotMap is the content of the slot_map system file: which node has
// mounted the volume in each slot. Two formats exist:
//
// Old (no EXTENDED_SLOT_MAP): one le16 per slot, the node number, or
// 0xFFFF for an empty slot:
//
//	0x00 le16 sm_slots[s_max_slots]
//
// Extended (EXTENDED_SLOT_MAP; forced by mkfs when a cluster stack is
// named, default otherwise), 8 bytes per slot:
//
//	0x00 u8    es_valid       non-zero: the slot is in use
//	0x01 u8[3] es_reserved1
//	0x04 le32  es_node_num
//
// mkfs sizes the file to whole clusters and zeroes it; only the first
// s_max_slots entries mean anything.
type SlotMap struct {
	Extended bool
	Slots    []Slot // len(Slots) == s_max_slots
}

// SlotMapSize is the bytes numSlots entries take.
func SlotMapSize(extended bool, numSlots int) int {
	if extended {
		return numSlots * ExtendedSlotSize
	}
	return numSlots * OldSlotSize
}

// DecodeSlotMap decodes the first numSlots entries of the slot map file's
// data. It fails when numSlots is outside 1..MaxSlots or data is too short.
func DecodeSlotMap(data []byte, extended bool, numSlots int) (*SlotMap, error) {
	if numSlots < 1 || numSlots > MaxSlots {
		return nil, corrupt(structSlotMap, "s_max_slots", "is %d, want 1..%d", numSlots, MaxSlots)
	}
	if need := SlotMapSize(extended, numSlots); len(data) < need {
		return nil, corrupt(structSlotMap, "i_size", "slot map data is %d bytes, %d slots need %d", len(data), numSlots, need)
	}
	le := binary.LittleEndian
	m := &SlotMap{Extended: extended, Slots: make([]Slot, numSlots)}
	for i := range m.Slots {
		if extended {
			e := data[i*ExtendedSlotSize:]
			m.Slots[i] = Slot{Valid: e[0] != 0, Node: le.Uint32(e[4:])}
		} else {
			n := le.Uint16(data[i*OldSlotSize:])
			if n == OldSlotEmpty {
				m.Slots[i] = Slot{}
			} else {
				m.Slots[i] = Slot{Valid: true, Node: uint32(n)}
			}
		}
	}
	return m, nil
}

// Encode writes the entries into the start of data, leaving the rest of
// data alone. In the old format an empty slot is written as 0xFFFF (its
// Node is not kept) and node numbers must be below 0xFFFF.
func (m *SlotMap) Encode(data []byte) error {
	if need := SlotMapSize(m.Extended, len(m.Slots)); len(data) < need {
		return fmt.Errorf("slot map encode: %d slots need %d bytes, have %d", len(m.Slots), need, len(data))
	}
	le := binary.LittleEndian
	if !m.Extended {
		for i, s := range m.Slots {
			if s.Valid && s.Node >= OldSlotEmpty {
				return fmt.Errorf("slot map encode: slot %d: node %d does not fit the old slot map", i, s.Node)
			}
		}
	}
	for i, s := range m.Slots {
		if m.Extended {
			e := data[i*ExtendedSlotSize:]
			e[0] = 0
			if s.Valid {
				e[0] = 1
			}
			clear(e[1:4])
			le.PutUint32(e[4:], s.Node)
		} else if s.Valid {
			le.PutUint16(data[i*OldSlotSize:], uint16(s.Node))
		} else {
			le.PutUint16(data[i*OldSlotSize:], OldSlotEmpty)
		}
	}
	return nil
}

// SlotOf returns the slot held by node.
func (m *SlotMap) SlotOf(node uint32) (int, bool) {
	for i, s := range m.Slots {
		if s.Valid && s.Node == node {
			return i, true
		}
	}
	return 0, false
}

// FirstFree returns the lowest empty slot.
func (m *SlotMap) FirstFree() (int, bool) {
	for i, s := range m.Slots {
		if !s.Valid {
			return i, true
		}
	}
	return 0, false
}
