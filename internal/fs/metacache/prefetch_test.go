package metacache

import (
	"bytes"
	"testing"

	"o2go/internal/blockdev"
)

// Prefetch reads neighbouring blocks in one device read, caches only the
// blocks asked for, with their bytes, and leaves cached blocks alone.
func TestPrefetchCoalescesAndCachesOnlyWhatWasAsked(t *testing.T) {
	const bs = 4096
	mem := blockdev.NewMemory("mem0", 256*bs, 512)
	for b := range 256 {
		mem.WriteAt(bytes.Repeat([]byte{byte(b)}, bs), int64(b)*bs)
	}
	dev := blockdev.NewFaulty(mem)
	c := New(dev, bs, Options{})
	if _, err := c.Get(12); err != nil { // already cached: not read again
		t.Fatal(err)
	}
	r0, _, _ := dev.Ops()
	c.Prefetch([]uint64{14, 10, 12, 11, 10, 19, 200, 999})
	r1, _, _ := dev.Ops()
	// 10,11 | 12 cached | 14, 19 (gap 4): one run 10..19; 200 alone; 999
	// lies past the device.
	if reads := r1 - r0; reads != 2 {
		t.Fatalf("Prefetch issued %d device reads, want 2", reads)
	}
	for _, b := range []uint64{10, 11, 12, 14, 19, 200} {
		buf, err := c.Get(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Data, bytes.Repeat([]byte{byte(b)}, bs)) {
			t.Fatalf("block %d: wrong bytes cached", b)
		}
	}
	if r2, _, _ := dev.Ops(); r2 != r1 {
		t.Fatalf("Gets of prefetched blocks read the device %d times", r2-r1)
	}
	if _, err := c.Get(15); err != nil { // in the gap: read now
		t.Fatal(err)
	}
	if r3, _, _ := dev.Ops(); r3 != r1+1 {
		t.Fatal("a block in a gap was cached by Prefetch")
	}
}
