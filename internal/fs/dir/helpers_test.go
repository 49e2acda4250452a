package dir

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/fs/alloc"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// volConfig is one mkfs.ocfs2 layout the write tests run on.
type volConfig struct {
	name string
	size int64
	args []string
}

func (g volConfig) mkfs(t testing.TB) string {
	t.Helper()
	args := append([]string{"-M", "local", "-N", "2", "-J", "size=4M"}, g.args...)
	img := realtools.MkfsImage(t, g.size, args...)
	// mkfs.ocfs2 1.8.7 leaves the system directory of some layouts
	// unindexed on an indexed-dirs volume, which its own fsck reports
	// (DX_TREE_MISSING); let fsck build that index so that the volume
	// starts clean and every later problem is ours.
	if !realtools.Fsck(t, img, "-fn").Clean() {
		realtools.Fsck(t, img, "-fy")
	}
	realtools.RequireFsckClean(t, img)
	return img
}

// chainMeta hands out extent blocks and dx roots from an extent_alloc.
type chainMeta struct{ a *alloc.ChainAllocator }

func (m chainMeta) NewMetaBlock(tx metacache.Tx) (extent.MetaBlock, error) {
	o, err := m.a.ClaimObject(tx, 0)
	return extent.MetaBlock(o), err
}

func (m chainMeta) FreeMetaBlock(tx metacache.Tx, b extent.MetaBlock) error {
	return m.a.FreeObject(tx, alloc.Object(b))
}

// vol is a volume opened read-write with slot 0's allocators, reached
// through nothing above fs/alloc and this package.
type vol struct {
	t      testing.TB
	img    string
	dev    blockdev.Device
	c      *metacache.Cache
	super  *ondisk.Dinode
	sb     *ondisk.SuperBlock
	tx     *metacache.DirectTx
	data   *alloc.ClusterAllocator
	meta   chainMeta
	inodes *alloc.ChainAllocator
	now    uint64
}

func readSuper(t testing.TB, dev blockdev.Device) (*ondisk.Dinode, int) {
	t.Helper()
	for bs := 512; bs <= 4096; bs *= 2 {
		b := make([]byte, bs)
		if _, err := dev.ReadAt(b, int64(ondisk.SuperBlockBlkno)*int64(bs)); err != nil {
			t.Fatal(err)
		}
		d, err := ondisk.DecodeDinode(b)
		if err == nil && d.Super != nil && ondisk.ValidateSuperBlock(d, bs) == nil {
			return d, bs
		}
	}
	t.Fatalf("%s: no superblock", dev.Name())
	return nil, 0
}

func openImage(t testing.TB, img string) *vol {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.OpenOptions{Direct: blockdev.DirectOff})
	if err != nil {
		t.Fatal(err)
	}
	return openDev(t, img, dev, 0)
}

// openDev opens the volume on dev; limit bounds the cache (0: default).
func openDev(t testing.TB, img string, dev blockdev.Device, limit int) *vol {
	t.Helper()
	super, bs := readSuper(t, dev)
	c := metacache.New(dev, bs, metacache.Options{
		MetaECC:      super.Super.Features.Incompat&ondisk.IncompatMetaECC != 0,
		FSGeneration: super.FSGeneration,
		LimitBlocks:  limit,
	})
	v := &vol{t: t, img: img, dev: dev, c: c, super: super, sb: super.Super, tx: &metacache.DirectTx{C: c}, now: 1_800_000_000}
	geo, err := alloc.NewGeometry(super)
	if err != nil {
		t.Fatal(err)
	}
	gb, err := alloc.OpenGlobalBitmap(c, geo, v.sys(ondisk.SysGlobalBitmap, -1))
	if err != nil {
		t.Fatal(err)
	}
	v.data = alloc.NewClusterAllocator(gb, nil)
	ea, err := alloc.OpenSuballocator(c, geo, v.sys(ondisk.SysExtentAlloc, 0), 0, gb, "extent_alloc:0000")
	if err != nil {
		t.Fatal(err)
	}
	v.meta = chainMeta{ea}
	if v.inodes, err = alloc.OpenSuballocator(c, geo, v.sys(ondisk.SysInodeAlloc, 0), 0, gb, "inode_alloc:0000"); err != nil {
		t.Fatal(err)
	}
	return v
}

// sys looks a system file up in the system directory with this package's
// read side.
func (v *vol) sys(kind ondisk.SystemFileKind, slot int) uint64 {
	v.t.Helper()
	name, err := ondisk.SystemFileName(kind, slot)
	if err != nil {
		v.t.Fatal(err)
	}
	sd, err := v.c.Dinode(v.sb.SystemDirBlkno)
	if err != nil {
		v.t.Fatal(err)
	}
	e, ok, err := Dir{C: v.c, SB: v.sb, Inode: sd}.Lookup(name)
	if err != nil || !ok {
		v.t.Fatalf("system file %s: found %v, %v", name, ok, err)
	}
	return e.Inode
}

func (v *vol) env() Env {
	return Env{C: v.c, SB: v.sb, Tx: v.tx, Meta: v.meta, Data: v.data}
}

// load returns a private copy of the inode at blkno.
func (v *vol) load(blkno uint64) *ondisk.Dinode {
	v.t.Helper()
	if _, err := v.c.Dinode(blkno); err != nil {
		v.t.Fatal(err)
	}
	b, err := v.c.Get(blkno)
	if err != nil {
		v.t.Fatal(err)
	}
	d, err := ondisk.DecodeDinode(b.Data)
	if err != nil {
		v.t.Fatal(err)
	}
	return d
}

// store writes an inode copy back, as the inode layer does after an
// operation.
func (v *vol) store(d *ondisk.Dinode) {
	v.t.Helper()
	b, err := v.c.Get(d.Blkno)
	if err != nil {
		v.t.Fatal(err)
	}
	if err := v.tx.Access(b); err != nil {
		v.t.Fatal(err)
	}
	if err := d.Encode(b.Data); err != nil {
		v.t.Fatal(err)
	}
	v.tx.Dirty(b, ondisk.DinodeCheckOffset)
	if v.tx.Err != nil {
		v.t.Fatal(v.tx.Err)
	}
}

// newInode allocates an inode from inode_alloc:0000 and returns a valid,
// empty dinode of the given mode (not yet written).
func (v *vol) newInode(mode uint16) *ondisk.Dinode {
	v.t.Helper()
	o, err := v.inodes.ClaimObject(v.tx, 0)
	if err != nil {
		v.t.Fatal(err)
	}
	v.now++
	ts := ondisk.DiskTime{Sec: v.now}
	d := &ondisk.Dinode{
		Generation: uint32(o.Blkno*2654435761) | 1, SuballocSlot: o.Slot, SuballocBit: o.Bit, SuballocLoc: o.GroupBlkno,
		Links: 1, Mode: mode | 0o644, Flags: ondisk.InodeValid, Blkno: o.Blkno, FSGeneration: v.super.FSGeneration,
		Atime: ts, Ctime: ts, Mtime: ts,
		Extents: &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(v.sb.BlockSize(), 0))},
	}
	if mode == ondisk.ModeDir {
		d.Mode = mode | 0o755
		d.Links = 2
	}
	return d
}

// freeInode returns an inode to inode_alloc:0000 and clears it on disk.
func (v *vol) freeInode(d *ondisk.Dinode) {
	v.t.Helper()
	d.Flags &^= ondisk.InodeValid
	d.Links = 0
	d.Dtime = v.now
	v.store(d)
	if err := v.inodes.FreeObject(v.tx, alloc.Object{Blkno: d.Blkno, Slot: d.SuballocSlot, Bit: d.SuballocBit, GroupBlkno: d.SuballocLoc}); err != nil {
		v.t.Fatal(err)
	}
}

// mkdir makes a directory under parent (both copies are updated and
// written back).
func (v *vol) mkdir(parent *ondisk.Dinode, name string) *ondisk.Dinode {
	v.t.Helper()
	d := v.newInode(ondisk.ModeDir)
	if err := Init(v.env(), d, parent.Blkno); err != nil {
		v.t.Fatal(err)
	}
	v.store(d)
	if err := Add(v.env(), parent, name, d.Blkno, ondisk.FileTypeDir); err != nil {
		v.t.Fatal(err)
	}
	parent.Links++
	v.store(parent)
	return d
}

func (v *vol) close() {
	v.t.Helper()
	if err := v.tx.Close(); err != nil {
		v.t.Fatal(err)
	}
	if err := v.dev.Close(); err != nil {
		v.t.Fatal(err)
	}
}

func (v *vol) String() string {
	return fmt.Sprintf("%s (%d/%d)", v.img, v.sb.BlockSize(), v.sb.ClusterSize())
}

// pristine holds one clean mkfs.ocfs2 image per layout for the tests that
// start from a copy in memory.
var pristine struct {
	sync.Mutex
	images map[string][]byte
}

// memVol opens an in-memory copy of a fresh volume of layout g.
func memVol(t testing.TB, g volConfig) *vol {
	t.Helper()
	pristine.Lock()
	data, ok := pristine.images[g.name]
	if !ok {
		img := g.mkfs(t)
		var err error
		if data, err = os.ReadFile(img); err != nil {
			pristine.Unlock()
			t.Fatal(err)
		}
		if pristine.images == nil {
			pristine.images = map[string][]byte{}
		}
		pristine.images[g.name] = data
	}
	pristine.Unlock()
	dev := blockdev.NewMemoryFrom(g.name, slices.Clone(data), 512)
	return openDev(t, g.name, dev, 0)
}

// save writes a memory volume to an image file for the real tools.
func (v *vol) save() string {
	v.t.Helper()
	if err := v.tx.Close(); err != nil {
		v.t.Fatal(err)
	}
	m, ok := v.dev.(*blockdev.Memory)
	if !ok {
		v.t.Fatalf("%s is not a memory volume", v.img)
	}
	img := filepath.Join(v.t.TempDir(), "vol.img")
	if err := os.WriteFile(img, m.Snapshot(), 0o644); err != nil {
		v.t.Fatal(err)
	}
	return img
}
