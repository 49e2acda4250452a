package ondisk

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// OCFS1 compatibility. mkfs.ocfs2 makes sure an OCFS1 driver or tool that
// opens an OCFS2 volume refuses it cleanly: it fills the first two fs
// blocks with the byte 0x02 and writes a text into the fields OCFS1 would
// show. The kernel, the other way round, refuses a device whose sector 0 is
// a real OCFS1 header.
//
// Sector 0 is struct ocfs1_vol_disk_hdr (host-endian, little on x86):
//
//	0x000 u32     minor_version
//	0x004 u32     major_version   2 on an OCFS1 volume (0x02020202 in the fake)
//	0x008 u8[128] signature       "OracleCFS" on OCFS1; OCFS1FakeText in the fake
//	0x088 u8[128] mount_point     OCFS1FakeText in the fake
//	0x108 ...     OCFS1 geometry, up to 0x1B0 (0x02 bytes in the fake)
//
// Sector 1 is struct ocfs1_vol_label:
//
//	0x000 u8[48]  disk_lock
//	0x030 u8[64]  label           OCFS1FakeText in the fake
//	0x070 u16     label_len
//	0x072 u8[16]  vol_id
//	0x082 u16     vol_id_len
//	0x084 u8[64]  cluster_name    OCFS1FakeText in the fake
//	0x0A4 u16     cluster_name_len
const (
	OCFS1FakeText      = "this is an ocfs2 volume"
	OCFS1Signature     = "OracleCFS"
	OCFS1MajorVersion  = 2
	ocfs1FillByte      = 0x02
	ocfs1SectorSize    = 512
	ocfs1HdrSignature  = 0x008
	ocfs1HdrMountPoint = 0x088
	ocfs1LblLabel      = 0x030
	ocfs1LblCluster    = 0x084
)

// OCFS1HeaderBytes is how many bytes mkfs.ocfs2 writes at the start of
// the device for the fake OCFS1 headers: two fs blocks.
func OCFS1HeaderBytes(blockSize int) int { return 2 * blockSize }

// EncodeOCFS1Header fills b, the first OCFS1HeaderBytes(blockSize) bytes of
// the device, the way mkfs.ocfs2 does.
func EncodeOCFS1Header(b []byte) error {
	if len(b) < 2*ocfs1SectorSize {
		return fmt.Errorf("ocfs1 header: buffer is %d bytes, need at least %d", len(b), 2*ocfs1SectorSize)
	}
	for i := range b {
		b[i] = ocfs1FillByte
	}
	for _, off := range []int{ocfs1HdrSignature, ocfs1HdrMountPoint, ocfs1SectorSize + ocfs1LblLabel, ocfs1SectorSize + ocfs1LblCluster} {
		n := copy(b[off:], OCFS1FakeText)
		b[off+n] = 0 // strcpy's terminator
	}
	return nil
}

// HasOCFS1FakeHeader reports whether the first two sectors carry the fake
// OCFS1 headers mkfs.ocfs2 writes.
func HasOCFS1FakeHeader(b []byte) bool {
	if len(b) < 2*ocfs1SectorSize {
		return false
	}
	for _, off := range []int{ocfs1HdrSignature, ocfs1HdrMountPoint, ocfs1SectorSize + ocfs1LblLabel, ocfs1SectorSize + ocfs1LblCluster} {
		if cstring(b[off:off+len(OCFS1FakeText)+1]) != OCFS1FakeText {
			return false
		}
	}
	return true
}

// IsOCFS1 reports whether sector 0 is a real OCFS1 volume header, which the
// kernel refuses to mount as OCFS2: major_version 2 or a signature starting
// with "OracleCFS".
func IsOCFS1(sector0 []byte) bool {
	if len(sector0) < ocfs1HdrSignature+len(OCFS1Signature) {
		return false
	}
	return binary.LittleEndian.Uint32(sector0[4:]) == OCFS1MajorVersion ||
		bytes.HasPrefix(sector0[ocfs1HdrSignature:], []byte(OCFS1Signature))
}
