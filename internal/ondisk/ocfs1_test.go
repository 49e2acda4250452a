package ondisk

import (
	"bytes"
	"testing"
)

func TestOCFS1FakeHeader(t *testing.T) {
	for _, bs := range allBlockSizes {
		b := make([]byte, OCFS1HeaderBytes(bs))
		if err := EncodeOCFS1Header(b); err != nil {
			t.Fatal(err)
		}
		if !HasOCFS1FakeHeader(b) {
			t.Fatal("own header not recognised")
		}
		if IsOCFS1(b) {
			t.Fatal("the fake header must not look like a real OCFS1 volume to the kernel")
		}
		// Offsets of the text, each followed by strcpy's NUL; 0x02 elsewhere.
		for _, off := range []int{0x08, 0x88, 512 + 0x30, 512 + 0x84} {
			if !bytes.Equal(b[off:off+24], []byte(OCFS1FakeText+"\x00")) {
				t.Fatalf("bs %d: text at 0x%x: %q", bs, off, b[off:off+24])
			}
		}
		if b[0] != 2 || b[7] != 2 || b[0x20] != 2 || b[len(b)-1] != 2 {
			t.Fatalf("bs %d: fill bytes", bs)
		}
	}
	if EncodeOCFS1Header(make([]byte, 1000)) == nil {
		t.Error("short buffer accepted")
	}
	real := make([]byte, 512)
	real[4] = 2
	if !IsOCFS1(real) {
		t.Error("major_version 2 not recognised")
	}
	real = make([]byte, 512)
	copy(real[8:], "OracleCFS")
	if !IsOCFS1(real) || HasOCFS1FakeHeader(real) {
		t.Error("OCFS1 signature")
	}
	if IsOCFS1(make([]byte, 512)) || IsOCFS1(nil) || HasOCFS1FakeHeader(nil) {
		t.Error("zero sector")
	}
}
