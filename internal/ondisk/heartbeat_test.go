package ondisk

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// crc32LERef is the kernel's crc32_le(seed, p, len) done bit by bit: the
// reflected polynomial 0xEDB88320, no inversion on entry or exit.
func crc32LERef(seed uint32, p []byte) uint32 {
	crc := seed
	for _, b := range p {
		crc ^= uint32(b)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xEDB88320
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

func TestHeartbeatChecksumMatchesKernelCRC(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{512, 1024, 4096} {
		for trial := 0; trial < 20; trial++ {
			sector := make([]byte, size)
			for i := range 0x20 {
				sector[i] = byte(r.Uint32())
			}
			withZero := append([]byte(nil), sector...)
			clear(withZero[HeartbeatCksumOffset : HeartbeatCksumOffset+4])
			want := crc32LERef(0, withZero)
			if got := HeartbeatChecksum(sector); got != want {
				t.Fatalf("size %d: checksum 0x%08x, want 0x%08x", size, got, want)
			}
		}
	}
	// A sector never written is all zero and passes its checksum
	// (crc32_le(0, zeros) == 0 == hb_cksum): liveness comes from hb_seq
	// changing, never from the checksum alone.
	if err := VerifyHeartbeat(make([]byte, 512)); err != nil {
		t.Fatalf("zero sector: %v", err)
	}
}

func TestHeartbeatRoundTrip(t *testing.T) {
	h := &HeartbeatBlock{Seq: 0x6b04abba, Node: 7, Generation: 0x1122334455667788, DeadMs: 62000}
	sector := make([]byte, 512)
	for i := range sector {
		sector[i] = 0xAA
	}
	if err := h.Encode(sector); err != nil {
		t.Fatal(err)
	}
	if !allZero(sector[HeartbeatBlockSize:]) || sector[9] != 0 || sector[10] != 0 || sector[11] != 0 {
		t.Fatal("padding and the rest of the sector must be zero")
	}
	if sector[0] != 0xba || sector[8] != 7 || sector[0x10] != 0x88 || sector[0x18] != 0x30 || sector[0x19] != 0xf2 {
		t.Fatalf("fields misplaced: % x", sector[:0x1C])
	}
	if err := VerifyHeartbeat(sector); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHeartbeatBlock(sector)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, got); diff != "" {
		t.Fatal(diff)
	}
	sector[100] ^= 1
	if err := VerifyHeartbeat(sector); !errors.Is(err, ErrCorrupt) || corruptField(t, err) != "hb_cksum" {
		t.Fatalf("flipped bit: %v", err)
	}
	for _, n := range []int{0, 28, 511, 513, 8192} {
		if _, err := DecodeHeartbeatBlock(make([]byte, n)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d-byte sector: %v", n, err)
		}
		if h.Encode(make([]byte, n)) == nil {
			t.Errorf("encode into %d bytes accepted", n)
		}
		if VerifyHeartbeat(make([]byte, n)) == nil {
			t.Errorf("verify of %d bytes accepted", n)
		}
	}
}

func FuzzDecodeHeartbeatBlock(f *testing.F) {
	s := make([]byte, 512)
	(&HeartbeatBlock{Seq: 1, Node: 3, Generation: 9, DeadMs: 62000}).Encode(s)
	f.Add(s)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := DecodeHeartbeatBlock(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error outside the corruption class: %v", err)
			}
			return
		}
		if err := VerifyHeartbeat(data); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		out := make([]byte, len(data))
		if err := h.Encode(out); err != nil {
			t.Fatal(err)
		}
		if err := VerifyHeartbeat(out); err != nil {
			t.Fatalf("encoded sector fails its checksum: %v", err)
		}
		h2, err := DecodeHeartbeatBlock(out)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(h, h2); diff != "" {
			t.Fatal(diff)
		}
	})
}

// kernelHeartbeatSector is the start of a heartbeat sector written by the
// Linux 6.1 o2hb (node 3, default dead threshold), captured from an image
// after a kernel VM ran a heartbeat region on it; the rest of the sector is
// zero.
const kernelHeartbeatSector = "27b0046b00000000030000009a0635c4234986afdd22f60330f20000"

func TestHeartbeatKernelSector(t *testing.T) {
	sector := make([]byte, 512)
	if _, err := hex.Decode(sector, []byte(kernelHeartbeatSector)); err != nil {
		t.Fatal(err)
	}
	if err := VerifyHeartbeat(sector); err != nil {
		t.Fatalf("the kernel's sector fails our checksum: %v", err)
	}
	h, err := DecodeHeartbeatBlock(sector)
	if err != nil {
		t.Fatal(err)
	}
	want := &HeartbeatBlock{Seq: 0x6b04b027, Node: 3, Cksum: 0xc435069a, Generation: 0x03f622ddaf864923, DeadMs: 62000}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Fatal(diff)
	}
	out := make([]byte, 512)
	if err := h.Encode(out); err != nil || !bytes.Equal(out, sector) {
		t.Fatalf("re-encoded sector differs from the kernel's (%v)", err)
	}
}
