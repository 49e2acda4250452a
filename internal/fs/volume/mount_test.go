package volume

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// newFileForTest creates an empty regular file in the (inline) root
// directory by hand, until fs/inode's Create exists.
func newFileForTest(t *testing.T, m *Mounted, name string) uint64 {
	t.Helper()
	w := m.FS.W
	w.Meta.Lock()
	defer w.Meta.Unlock()
	h, err := w.Journal.Begin(8)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	obj, err := w.Alloc.Inodes.NewMetaBlock(h)
	if err != nil {
		t.Fatal(err)
	}
	bs := m.SB.BlockSize()
	d := &ondisk.Dinode{Generation: 1, SuballocSlot: obj.Slot, SuballocBit: obj.Bit, SuballocLoc: obj.GroupBlkno,
		Links: 1, Mode: 0o100644, Flags: ondisk.InodeValid, Blkno: obj.Blkno, FSGeneration: m.Super.FSGeneration,
		Extents: &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(bs, 0))}}
	b, err := h.New(obj.Blkno)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Encode(b.Data); err != nil {
		t.Fatal(err)
	}
	h.Dirty(b, ondisk.DinodeCheckOffset)
	root, _ := m.Cache.Dinode(m.SB.RootBlkno)
	rb, _ := m.Cache.Get(m.SB.RootBlkno)
	h.Access(rb)
	rd := *root
	rd.Inline = &ondisk.InlineData{Data: append([]byte(nil), root.Inline.Data...)}
	if _, err := ondisk.InsertDirEntry(rd.Inline.Data, obj.Blkno, ondisk.FileTypeReg, name); err != nil {
		t.Fatal(err)
	}
	if err := rd.Encode(rb.Data); err != nil {
		t.Fatal(err)
	}
	h.Dirty(rb, ondisk.DinodeCheckOffset)
	return obj.Blkno
}

func readAll(t *testing.T, fs *inode.FS, ino uint64) []byte {
	t.Helper()
	d, err := fs.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, d.Size)
	if _, err := fs.ReadAt(d, buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf
}

// TestDataPathAgainstModel writes, truncates, punches and preallocates a
// file at random through the write engine, comparing its bytes with a
// model after every step; the volume must then pass fsck.ocfs2 and read
// back the same through debugfs.
func TestDataPathAgainstModel(t *testing.T) {
	realtools.Require(t)
	for _, geo := range [][]string{
		// (mkfs.ocfs2 leaves the 1K volume's system directory unindexed,
		// which its own fsck reports: indexed-dirs is off there.)
		{"-b", "4096", "-C", "4096", "--fs-features=local"},
		{"-b", "1024", "-C", "8192", "--fs-features=local,noindexed-dirs"},
		{"-b", "2048", "-C", "65536", "--fs-features=local"},
	} {
		t.Run(geo[1]+"-"+geo[3], func(t *testing.T) {
			img := realtools.MkfsImage(t, 300<<20, append(geo, "-N", "2")...)
			m, err := Mount(img, DefaultMountOptions())
			if err != nil {
				t.Fatal(err)
			}
			ino := newFileForTest(t, m, "data")
			fs := m.FS
			rng := rand.New(rand.NewPCG(3, 4))
			var model []byte
			const maxSize = 6 << 20
			for op := 0; op < 300; op++ {
				switch k := rng.IntN(10); {
				case k < 5:
					off := rng.Int64N(maxSize)
					n := 1 + rng.IntN(200000)
					if rng.IntN(4) == 0 {
						off, n = rng.Int64N(4000), 1+rng.IntN(300) // small writes: inline data
					}
					p := make([]byte, n)
					for i := range p {
						p[i] = byte(rng.Uint32() | 1)
					}
					if _, err := fs.Write(ino, p, off); err != nil {
						t.Fatalf("op %d write: %v", op, err)
					}
					if end := off + int64(n); end > int64(len(model)) {
						model = append(model, make([]byte, end-int64(len(model)))...)
					}
					copy(model[off:], p)
				case k < 7:
					size := rng.Int64N(maxSize)
					if err := fs.Truncate(ino, size); err != nil {
						t.Fatalf("op %d truncate %d: %v", op, size, err)
					}
					if size < int64(len(model)) {
						model = model[:size]
					} else {
						model = append(model, make([]byte, size-int64(len(model)))...)
					}
				case k < 9:
					off := rng.Int64N(maxSize)
					n := 1 + rng.Int64N(1<<20)
					if err := fs.Fallocate(ino, inode.FallocPunchHole|inode.FallocKeepSize, off, n); err != nil {
						t.Fatalf("op %d punch: %v", op, err)
					}
					for i := off; i < min(off+n, int64(len(model))); i++ {
						model[i] = 0
					}
				default:
					off := rng.Int64N(maxSize)
					n := 1 + rng.Int64N(1<<20)
					mode := uint32(0)
					if rng.IntN(2) == 0 {
						mode = inode.FallocKeepSize
					}
					if err := fs.Fallocate(ino, mode, off, n); err != nil {
						t.Fatalf("op %d fallocate: %v", op, err)
					}
					if mode == 0 && off+n > int64(len(model)) {
						model = append(model, make([]byte, off+n-int64(len(model)))...)
					}
				}
				if got := readAll(t, fs, ino); !bytes.Equal(got, model) {
					t.Fatalf("op %d: file differs from the model (%d vs %d bytes)", op, len(got), len(model))
				}
			}
			// SEEK_DATA/SEEK_HOLE agree with the bytes: a hole never holds data.
			if len(model) > 0 {
				if h, err := fs.Seek(ino, 0, 4); err == nil && h < int64(len(model)) {
					if d, err := fs.Seek(ino, h, 3); err == nil {
						for i := h; i < d; i++ {
							if model[i] != 0 {
								t.Fatalf("byte %d in a reported hole [%d,%d) is %d", i, h, d, model[i])
							}
						}
					} else if err != syscall.ENXIO {
						t.Fatal(err)
					}
				}
			}
			if err := m.Unmount(); err != nil {
				t.Fatal(err)
			}
			realtools.RequireFsckClean(t, img)
			out := filepath.Join(t.TempDir(), "data")
			realtools.Debugfs(t, img, "dump /data "+out)
			got, _ := os.ReadFile(out)
			if !bytes.Equal(got, model) {
				t.Fatalf("debugfs dump differs from the model (%d vs %d bytes)", len(got), len(model))
			}
		})
	}
}
