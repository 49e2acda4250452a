package dir

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"o2go/internal/base"
	"o2go/internal/blockdev"
	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// fuzzBase is a volume with one directory of each kind and the blocks
// that make them up, for FuzzCorruptDirectory to damage.
type fuzzBase struct {
	cfg   volConfig
	image []byte
	bs    int
	dirs  []fuzzDir
}

type fuzzDir struct {
	ino    uint64
	names  []string
	blocks []uint64 // inode, directory blocks, dx root and leaves, extent blocks
}

var fuzzBases struct {
	sync.Mutex
	m map[string]*fuzzBase
}

func buildFuzzBase(t testing.TB, g volConfig) *fuzzBase {
	fuzzBases.Lock()
	defer fuzzBases.Unlock()
	if fb := fuzzBases.m[g.name]; fb != nil {
		return fb
	}
	v := memVol(t, g)
	root := v.load(v.sb.RootBlkno)
	f := v.newInode(ondisk.ModeReg)
	f.Links = 0
	fb := &fuzzBase{cfg: g, bs: v.sb.BlockSize()}
	for i, count := range []int{6, 400} {
		d := v.mkdir(root, fmt.Sprintf("d%d", i))
		fd := fuzzDir{ino: d.Blkno}
		for j := 0; j < count; j++ {
			n := fmt.Sprintf("name-%d-%s", j, strings.Repeat("x", j%40))
			if err := Add(v.env(), d, n, f.Blkno, ondisk.FileTypeReg); err != nil {
				t.Fatal(err)
			}
			fd.names = append(fd.names, n)
			f.Links++
		}
		v.store(d)
		fd.blocks = dirBlocks(t, v, d)
		fb.dirs = append(fb.dirs, fd)
	}
	v.store(root)
	v.store(f)
	if err := v.tx.Close(); err != nil {
		t.Fatal(err)
	}
	fb.image = v.dev.(*blockdev.Memory).Snapshot()
	if fuzzBases.m == nil {
		fuzzBases.m = map[string]*fuzzBase{}
	}
	fuzzBases.m[g.name] = fb
	return fb
}

// dirBlocks lists every metadata block of a directory.
func dirBlocks(t testing.TB, v *vol, d *ondisk.Dinode) []uint64 {
	out := []uint64{d.Blkno}
	if d.Inline != nil {
		return out
	}
	dr := Dir{C: v.c, SB: v.sb, Inode: d}
	if err := dr.ForEachBlock(func(blk uint64, _ []byte) error { out = append(out, blk); return nil }); err != nil {
		t.Fatal(err)
	}
	s, err := extent.CheckShape(v.c, d.Extents, d.LastEBBlk, "dir")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, s.Leaves...)
	if d.DxRoot != 0 {
		out = append(out, d.DxRoot)
		r, err := v.c.DXRoot(d.DxRoot, d.Blkno)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Inline() {
			bpc := uint64(v.sb.BlocksPerCluster())
			if err := extent.Walk(v.c, &r.List, "dx", func(rec ondisk.ExtentRec) error {
				for b := rec.Blkno; b < rec.Blkno+uint64(rec.Clusters)*bpc; b++ {
					out = append(out, b)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// recordingDev remembers what every byte range it writes held before, so
// that a test can tell whether an operation left the device as it was.
type recordingDev struct {
	blockdev.Device
	before map[int64][]byte
}

func (r *recordingDev) WriteAt(p []byte, off int64) (int, error) {
	if _, ok := r.before[off]; !ok {
		old := make([]byte, len(p))
		if _, err := r.Device.ReadAt(old, off); err != nil {
			return 0, err
		}
		r.before[off] = old
	}
	return r.Device.WriteAt(p, off)
}

// changed lists the ranges whose bytes differ from before the recording.
func (r *recordingDev) changed() []int64 {
	var out []int64
	for off, old := range r.before {
		now := make([]byte, len(old))
		r.Device.ReadAt(now, off)
		if !bytes.Equal(now, old) {
			out = append(out, off)
		}
	}
	slices.Sort(out)
	return out
}

// FuzzCorruptDirectory damages bytes of a directory's blocks (inode,
// entries, trailers, dx root and leaves, extent blocks) and runs adds,
// removes, retargets and lookups on it: no panic, and an operation that
// reports corruption names a block and has changed nothing on the device.
func FuzzCorruptDirectory(f *testing.F) {
	f.Add(uint8(1), uint16(3), uint16(0x18), uint8(0xff), uint64(1))
	f.Add(uint8(1), uint16(1), uint16(8), uint8(0x7f), uint64(2))      // a dirent's rec_len
	f.Add(uint8(1), uint16(60), uint16(0x1c0), uint8(0x10), uint64(3)) // index entries
	f.Add(uint8(0), uint16(0), uint16(0xc8+8), uint8(0xff), uint64(4)) // inline rec_len
	f.Add(uint8(1), uint16(0), uint16(0x88), uint8(0x01), uint64(5))   // i_dx_root
	f.Add(uint8(1), uint16(2), uint16(0), uint8(0x20), uint64(6))
	f.Add(uint8(1), uint16(40), uint16(0x40), uint8(0x03), uint64(7)) // dr_free_blk
	f.Add(uint8(1), uint16(0), uint16(0xd0+8), uint8(0x05), uint64(8))
	f.Fuzz(func(t *testing.T, which uint8, blkIdx, off uint16, xor uint8, seed uint64) {
		realtools.Require(t)
		if xor == 0 {
			xor = 1
		}
		fb := buildFuzzBase(t, volConfig{"512-4k", 64 << 20, []string{"-b", "512", "-C", "4096"}})
		fd := fb.dirs[int(which)%len(fb.dirs)]
		img := slices.Clone(fb.image)
		blk := fd.blocks[int(blkIdx)%len(fd.blocks)]
		r := base.NewRand(seed)
		for i := 0; i < 1+int(seed%3); i++ {
			o := (int(off) + i*int(r.Intn(fb.bs))) % fb.bs
			img[int(blk)*fb.bs+o] ^= xor
		}
		rec := &recordingDev{Device: blockdev.NewMemoryFrom("fuzz", img, 512), before: map[int64][]byte{}}
		v := openDev(t, "fuzz", rec, 0)
		b, err := v.c.Get(fd.ino)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ondisk.DecodeDinode(b.Data)
		if err != nil || d.SelfCheck(fd.ino, v.super.FSGeneration) != nil || !d.IsDir() {
			return // the inode layer would refuse it before asking us
		}
		names := slices.Clone(fd.names)
		for i := 0; i < 12; i++ {
			rec.before = map[int64][]byte{}
			var opErr error
			var what string
			switch k := r.Intn(5); {
			case k == 0 || len(names) == 0:
				n := fmt.Sprintf("new-%d-%s", i, strings.Repeat("y", r.Intn(120)))
				what, opErr = "add "+n, Add(v.env(), d, n, 4242, ondisk.FileTypeReg)
				if opErr == nil {
					names = append(names, n)
				}
			case k == 1:
				j := r.Intn(len(names))
				what = "remove " + names[j]
				_, opErr = Remove(v.env(), d, names[j])
				if opErr == nil {
					names = slices.Delete(names, j, j+1)
				}
			case k == 2:
				j := r.Intn(len(names))
				what = "retarget " + names[j]
				_, opErr = Retarget(v.env(), d, names[j], 4243, ondisk.FileTypeReg)
			case k == 3:
				j := r.Intn(len(names))
				what = "add again " + names[j]
				opErr = Add(v.env(), d, names[j], 4244, ondisk.FileTypeReg)
			default:
				j := r.Intn(len(names))
				what = "lookup " + names[j]
				_, _, opErr = Dir{C: v.c, SB: v.sb, Inode: d}.Lookup(names[j])
			}
			if errors.Is(opErr, ondisk.ErrCorrupt) {
				if !strings.Contains(opErr.Error(), "block ") {
					t.Fatalf("%s: corruption error names no block: %v", what, opErr)
				}
				if ch := rec.changed(); len(ch) > 0 {
					t.Fatalf("%s failed with %v after changing the device at offsets %v", what, opErr, ch)
				}
			}
			if opErr != nil {
				return // the inode layer rolls the operation back; stop here
			}
			v.store(d)
		}
	})
}

// TestFuzzBaseIsClean: the volume the fuzz target damages is clean as
// built, so that every error the fuzzer sees comes from its damage.
func TestFuzzBaseIsClean(t *testing.T) {
	realtools.Require(t)
	fb := buildFuzzBase(t, volConfig{"512-4k", 64 << 20, []string{"-b", "512", "-C", "4096"}})
	v := openDev(t, "fuzz", blockdev.NewMemoryFrom("fuzz", slices.Clone(fb.image), 512), 0)
	for _, fd := range fb.dirs {
		if _, err := checkDir(v.c, v.sb, v.load(fd.ino), true); err != nil {
			t.Fatal(err)
		}
	}
	if len(fb.dirs[1].blocks) < 10 {
		t.Fatalf("the indexed directory has only %d blocks to damage", len(fb.dirs[1].blocks))
	}
}
