package ondisk

import (
	"math/rand/v2"
	"testing"
)

func TestCodePositionSkipsParityBits(t *testing.T) {
	// Data bits land on code positions 3,5,6,7,9,10,... (1-based, powers of two skipped).
	want := []uint32{3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 17}
	for d, w := range want {
		if got := codePosition(uint32(d)); got != w {
			t.Fatalf("codePosition(%d) = %d, want %d", d, got, w)
		}
		if back, ok := dataBitOf(w); !ok || back != uint32(d) {
			t.Fatalf("dataBitOf(%d) = %d,%v want %d", w, back, ok, d)
		}
	}
}

func TestBlockCheckCorrectsSingleBitFlip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{512, 1024, 2048, 4096} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		const off = 0x80
		SetBlockCheck(b, off)
		if _, err := VerifyBlockCheck(b, off, "test"); err != nil {
			t.Fatalf("fresh block fails: %v", err)
		}
		orig := append([]byte(nil), b...)
		for trial := 0; trial < 50; trial++ {
			i := r.IntN(size)
			if i >= off && i < off+BlockCheckSize {
				continue
			}
			bit := byte(1) << r.IntN(8)
			b[i] ^= bit
			corrected, err := VerifyBlockCheck(b, off, "test")
			if err != nil || !corrected {
				t.Fatalf("size %d: flip at byte %d not corrected: %v", size, i, err)
			}
			if string(b) != string(orig) {
				t.Fatalf("size %d: correction did not restore the block", size)
			}
		}
		// Two flips cannot be corrected and must be reported.
		b[10] ^= 1
		b[900%size] ^= 4
		if _, err := VerifyBlockCheck(b, off, "test"); err == nil {
			t.Fatalf("size %d: double flip not detected", size)
		}
	}
}
