package volume

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/testutil/realtools"
)

// TestMkfsOverOldData formats a device full of old data twice with the
// same random values: once through the fast path (an image file, zeroed
// with fallocate) and once through plain writes (an in-memory device).
// The two must come out byte for byte the same, and fsck.ocfs2 must find
// the volume clean: nothing of the old data may show through where mkfs
// promises zeros.
func TestMkfsOverOldData(t *testing.T) {
	fastFsck(t)
	const size = 96 << 20
	old := bytes.Repeat([]byte("old data, not a volume. "), size/24+1)[:size]
	// Make the old data look like an OCFS2 volume's debris in places.
	copy(old[8192:], "OCFSV2")
	for _, o := range []MkfsOptions{
		{BlockSize: 1024, Slots: 4, Features: "metaecc"},
		{BlockSize: 4096, ClusterSize: 8192, Slots: 2, Features: "noinline-data,usrquota,grpquota"},
	} {
		img := filepath.Join(t.TempDir(), "vol.img")
		if err := os.WriteFile(img, old, 0o644); err != nil {
			t.Fatal(err)
		}
		r := mkfsRandom{gen: 0x11223344, uuid: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, seeds: [3]uint32{7, 8, 9}, now: 1700000000}
		write := func(dev blockdev.Device) {
			oo := o
			p, err := planMkfs(&oo, dev.Size(), dev.SectorSize())
			if err != nil {
				t.Fatal(err)
			}
			b := newMkfsBuilder(p, r)
			im, err := b.build()
			if err != nil {
				t.Fatal(err)
			}
			if err := writeMkfsImage(dev, p, b, im, &oo, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		f, err := blockdev.Open(img, blockdev.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		write(f)
		f.Close()
		mem := blockdev.NewMemoryFrom("mem", old, 512)
		write(mem)
		got, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		if want := mem.Snapshot(); !bytes.Equal(got, want) {
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%+v: the file and the in-memory device differ first at byte %d (block %d of 1K)", o, i, i/1024)
				}
			}
		}
		realtools.RequireFsckClean(t, img)
	}
}
