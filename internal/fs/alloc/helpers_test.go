package alloc_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/fs/alloc"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// geometry is one mkfs.ocfs2 layout the tests run on.
type geometry struct {
	name string
	size int64
	args []string
}

// The acceptance matrix: block/cluster sizes 4K/4K, 1K/8K, 512/4K, 4K/1M,
// with discontig-bg on (the default) and off. Small volumes and 4 MiB
// journals keep mkfs and fsck fast; every one has several global bitmap
// groups or (4K/1M) a single short one.
//
// With 1K and 512-byte blocks the system directory does not fit inline,
// and mkfs.ocfs2 1.8.7 then leaves it without the index indexed-dirs asks
// for: its own fsck reports [DX_TREE_MISSING] on the fresh volume
// (ondisk-format.md §13). Those geometries turn indexed-dirs off so that
// "fsck -fn is clean" means what it says.
var geometries = []geometry{
	{"4k-4k", 200 << 20, []string{"-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M"}},
	{"4k-4k-nodiscontig", 200 << 20, []string{"-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M", "--fs-features=nodiscontig-bg"}},
	{"1k-8k", 160 << 20, []string{"-b", "1024", "-C", "8192", "-N", "2", "-J", "size=4M", "--fs-features=noindexed-dirs"}},
	{"512-4k", 48 << 20, []string{"-b", "512", "-C", "4096", "-N", "2", "-J", "size=4M", "--fs-features=noindexed-dirs"}},
	{"512-4k-nodiscontig", 48 << 20, []string{"-b", "512", "-C", "4096", "-N", "2", "-J", "size=4M", "--fs-features=noindexed-dirs,nodiscontig-bg"}},
	{"4k-4k-metaecc", 200 << 20, []string{"-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M", "--fs-features=metaecc"}},
	{"4k-1m", 512 << 20, []string{"-b", "4096", "-C", "1048576", "-N", "2", "-J", "size=16M"}},
}

// vol is a volume opened read-write with its allocators. It reads the
// superblock and takes the system files' inode numbers from debugfs.ocfs2,
// so these tests depend on nothing above fs/metacache.
type vol struct {
	t     testing.TB
	img   string
	dev   blockdev.Device
	c     *metacache.Cache
	super *ondisk.Dinode
	sysf  map[string]uint64
	geo   alloc.Geometry
	gb    *alloc.GlobalBitmap
	tx    *metacache.DirectTx
	slots int
}

var lsSys = regexp.MustCompile(`(?m)^\s*(\d+)\s+\S+\s+\d+\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s+(\S+)\s*$`)

func openVol(t testing.TB, img string) *vol {
	t.Helper()
	sysf := map[string]uint64{}
	for _, m := range lsSys.FindAllStringSubmatch(realtools.Debugfs(t, img, "ls -l //"), -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		sysf[m[2]] = n
	}
	return openVolFiles(t, img, sysf)
}

// openVolFiles opens img knowing its system files.
func openVolFiles(t testing.TB, img string, sysf map[string]uint64) *vol {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return openDevice(t, img, dev, sysf)
}

// openDevice opens the volume on dev (a file or a memory copy).
func openDevice(t testing.TB, img string, dev blockdev.Device, sysf map[string]uint64) *vol {
	t.Helper()
	var super *ondisk.Dinode
	bs := 0
	for try := 512; try <= 4096; try *= 2 {
		b := make([]byte, try)
		if _, err := dev.ReadAt(b, int64(ondisk.SuperBlockBlkno)*int64(try)); err != nil {
			t.Fatal(err)
		}
		d, err := ondisk.DecodeDinode(b)
		if err == nil && d.Super != nil && ondisk.ValidateSuperBlock(d, try) == nil {
			super, bs = d, try
			break
		}
	}
	if super == nil {
		t.Fatalf("%s: no superblock", img)
	}
	c := metacache.New(dev, bs, metacache.Options{
		MetaECC:      super.Super.Features.Incompat&ondisk.IncompatMetaECC != 0,
		FSGeneration: super.FSGeneration,
	})
	geo, err := alloc.NewGeometry(super)
	if err != nil {
		t.Fatal(err)
	}
	w := &vol{t: t, img: img, dev: dev, c: c, super: super, sysf: sysf, geo: geo,
		tx: &metacache.DirectTx{C: c}, slots: int(super.Super.MaxSlots)}
	w.gb, err = alloc.OpenGlobalBitmap(c, geo, w.sys(ondisk.SysGlobalBitmap, -1))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mkvol(t testing.TB, g geometry) *vol {
	t.Helper()
	return openVol(t, realtools.MkfsImage(t, g.size, g.args...))
}

func (w *vol) sys(kind ondisk.SystemFileKind, slot int) uint64 {
	w.t.Helper()
	name, err := ondisk.SystemFileName(kind, slot)
	if err != nil {
		w.t.Fatal(err)
	}
	blk, ok := w.sysf[name]
	if !ok {
		w.t.Fatalf("no system file %s in debugfs ls -l //", name)
	}
	return blk
}

func (w *vol) suballoc(kind ondisk.SystemFileKind, slot int) *alloc.ChainAllocator {
	w.t.Helper()
	s := uint16(slot)
	if slot < 0 {
		s = alloc.GlobalInodeAllocSlot
	}
	name, _ := ondisk.SystemFileName(kind, slot)
	a, err := alloc.OpenSuballocator(w.c, w.geo, w.sys(kind, slot), s, w.gb, name)
	if err != nil {
		w.t.Fatal(err)
	}
	return a
}

func (w *vol) localAlloc(slot int, opts alloc.LocalAllocOptions) *alloc.LocalAlloc {
	w.t.Helper()
	la, err := alloc.OpenLocalAlloc(w.c, w.geo, w.sys(ondisk.SysLocalAlloc, slot), w.gb, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	return la
}

// allAllocators lists every chain allocator and local alloc of the volume.
func (w *vol) allAllocators() (chains, locals []uint64) {
	chains = []uint64{w.sys(ondisk.SysGlobalBitmap, -1), w.sys(ondisk.SysGlobalInodeAlloc, -1)}
	for s := 0; s < w.slots; s++ {
		chains = append(chains, w.sys(ondisk.SysInodeAlloc, s), w.sys(ondisk.SysExtentAlloc, s))
		locals = append(locals, w.sys(ondisk.SysLocalAlloc, s))
	}
	return chains, locals
}

// check runs the Checker over every allocator and fails on any problem.
func (w *vol) check(when string) {
	w.t.Helper()
	if w.tx.Err != nil {
		w.t.Fatalf("%s: device write failed: %v", when, w.tx.Err)
	}
	chains, locals := w.allAllocators()
	k := &alloc.Checker{C: w.c, Geo: w.geo, GlobalBitmap: chains[0]}
	probs, err := k.Check(chains, locals)
	if err != nil {
		w.t.Fatalf("%s: checker: %v", when, err)
	}
	if len(probs) > 0 {
		var b strings.Builder
		for _, p := range probs {
			fmt.Fprintf(&b, "  %s\n", p)
		}
		w.t.Fatalf("%s: %d allocator problems:\n%s", when, len(probs), b.String())
	}
}

// close syncs and closes the volume so the real tools see every write.
func (w *vol) close() {
	w.t.Helper()
	if err := w.tx.Close(); err != nil {
		w.t.Fatal(err)
	}
	if err := w.dev.Close(); err != nil {
		w.t.Fatal(err)
	}
}

func (w *vol) usage(a interface{ Usage() (alloc.Usage, error) }) alloc.Usage {
	w.t.Helper()
	u, err := a.Usage()
	if err != nil {
		w.t.Fatal(err)
	}
	return u
}

var (
	bitmapLine = regexp.MustCompile(`Bitmap Total: (\d+)\s+Used: (\d+)\s+Free: (\d+)`)
	sizeLine   = regexp.MustCompile(`Size: (\d+)`)
	clusLine   = regexp.MustCompile(`Clusters: (\d+)`)
)

// debugfsUsage is what `debugfs.ocfs2 -R "stat //name"` says of an
// allocator: bitmap used/total, i_clusters and i_size.
func debugfsUsage(t testing.TB, img, name string) (alloc.Usage, uint64, uint64) {
	t.Helper()
	out := realtools.Debugfs(t, img, "stat //"+name)
	m := bitmapLine.FindStringSubmatch(out)
	c := clusLine.FindStringSubmatch(out)
	s := sizeLine.FindStringSubmatch(out)
	if m == nil || c == nil || s == nil {
		t.Fatalf("debugfs stat //%s: unexpected output:\n%s", name, out)
	}
	total, _ := strconv.ParseUint(m[1], 10, 32)
	used, _ := strconv.ParseUint(m[2], 10, 32)
	clusters, _ := strconv.ParseUint(c[1], 10, 64)
	size, _ := strconv.ParseUint(s[1], 10, 64)
	return alloc.Usage{Used: uint32(used), Total: uint32(total)}, clusters, size
}

// debugfsGroups parses the group tables of `debugfs.ocfs2 -R "stat //name"`:
// for every group, its block, bits, used, free, longest free run and
// bitmap size.
type dfsGroup struct {
	Blkno                           uint64
	Total, Used, Free, Contig, Size int
}

var groupRow = regexp.MustCompile(`(?m)^\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$`)

func debugfsGroups(t testing.TB, img, name string) map[uint64]dfsGroup {
	t.Helper()
	out := realtools.Debugfs(t, img, "stat //"+name)
	groups := map[uint64]dfsGroup{}
	for _, m := range groupRow.FindAllStringSubmatch(out, -1) {
		blk, _ := strconv.ParseUint(m[1], 10, 64)
		g := dfsGroup{Blkno: blk}
		g.Total, _ = strconv.Atoi(m[2])
		g.Used, _ = strconv.Atoi(m[3])
		g.Free, _ = strconv.Atoi(m[4])
		g.Contig, _ = strconv.Atoi(m[5])
		g.Size, _ = strconv.Atoi(m[6])
		groups[blk] = g
	}
	return groups
}
