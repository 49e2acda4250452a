package ondisk

import (
	"encoding/binary"
	"hash/crc32"
)

// BlockCheck is struct ocfs2_block_check, the 8-byte metadata checksum the
// META_ECC feature ("metaecc") adds to every metadata block:
//
//	0x00 le32 bc_crc32e  CRC-32 (reflected 0xEDB88320), seed ~0, no final xor
//	0x04 le16 bc_ecc     16-bit Hamming code over the data bits
//	0x06 le16 bc_reserved1
//
// Both are computed over the whole block with the 8 check bytes zeroed. For
// an xattr bucket the "block" is the whole 4 KiB bucket. Without META_ECC the
// field is all zero and is neither computed nor checked.
type BlockCheck struct {
	CRC32e uint32
	ECC    uint16
}

// BlockCheckSize is the on-disk size of a BlockCheck.
const BlockCheckSize = 8

func decodeBlockCheck(b []byte) BlockCheck {
	return BlockCheck{CRC32e: binary.LittleEndian.Uint32(b), ECC: binary.LittleEndian.Uint16(b[4:])}
}

func (c BlockCheck) encode(b []byte) {
	binary.LittleEndian.PutUint32(b, c.CRC32e)
	binary.LittleEndian.PutUint16(b[4:], c.ECC)
	binary.LittleEndian.PutUint16(b[6:], 0)
}

// crc32e is the kernel's crc32_le(~0, p, len) without the final inversion.
func crc32e(p []byte) uint32 { return ^crc32.ChecksumIEEE(p) }

// hammingParity returns the 16-bit Hamming parity of p, numbering data bits
// LSB-first within each byte and skipping the power-of-two code positions
// that parity bits occupy (the kernel's ocfs2_hamming_encode).
func hammingParity(p []byte) uint16 {
	var parity uint32
	for i, v := range p {
		if v == 0 {
			continue
		}
		for bit := 0; bit < 8; bit++ {
			if v&(1<<bit) == 0 {
				continue
			}
			parity ^= codePosition(uint32(i*8 + bit))
		}
	}
	return uint16(parity)
}

// codePosition maps data bit d (0-based) to its 1-based Hamming code word
// position: positions that are powers of two hold parity bits.
func codePosition(d uint32) uint32 {
	b := d + 1
	for p := uint32(0); (uint32(1) << p) < b+1; p++ {
		b++
	}
	return b
}

// ComputeBlockCheck returns the check of block b whose check field starts at
// offset off. b itself is not modified.
func ComputeBlockCheck(b []byte, off int) BlockCheck {
	var saved [BlockCheckSize]byte
	copy(saved[:], b[off:off+BlockCheckSize])
	clear(b[off : off+BlockCheckSize])
	c := BlockCheck{CRC32e: crc32e(b), ECC: hammingParity(b)}
	copy(b[off:], saved[:])
	return c
}

// SetBlockCheck computes the check of b and stores it at offset off. Writers
// call it last, after every other byte of the block is final.
func SetBlockCheck(b []byte, off int) {
	ComputeBlockCheck(b, off).encode(b[off:])
}

// VerifyBlockCheck checks b against the check stored at offset off. A single
// flipped data bit is corrected in place, as the kernel does, and the result
// is still nil (corrected reports that it happened). Anything else returns a
// CorruptError naming structName.
func VerifyBlockCheck(b []byte, off int, structName string) (corrected bool, err error) {
	stored := decodeBlockCheck(b[off:])
	got := ComputeBlockCheck(b, off)
	if got.CRC32e == stored.CRC32e {
		return false, nil
	}
	// The syndrome is the code position of a single-bit error.
	syn := uint32(got.ECC ^ stored.ECC)
	if syn != 0 && syn&(syn-1) != 0 {
		if d, ok := dataBitOf(syn); ok && int(d/8) < len(b) && !(int(d/8) >= off && int(d/8) < off+BlockCheckSize) {
			b[d/8] ^= 1 << (d % 8)
			if ComputeBlockCheck(b, off).CRC32e == stored.CRC32e {
				return true, nil
			}
			b[d/8] ^= 1 << (d % 8) // not a single-bit error: put it back
		}
	}
	return false, corrupt(structName, "check", "metadata checksum mismatch: crc32e 0x%08x stored, 0x%08x computed", stored.CRC32e, got.CRC32e)
}

// dataBitOf inverts codePosition: the data bit at code position pos.
func dataBitOf(pos uint32) (uint32, bool) {
	if pos == 0 || pos&(pos-1) == 0 {
		return 0, false
	}
	// Number of parity positions below pos is floor(log2(pos)) + 1.
	n := uint32(0)
	for (uint32(1) << n) <= pos {
		n++
	}
	return pos - n - 1, true
}
