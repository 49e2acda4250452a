package fsck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// The corruption corpus: one case per problem class of the issue, each
// damaging a volume made by mkfs.ocfs2 (and filled by o2go's write
// engine) in a defined way, as ocfs2-tools' fswreck does for its codes.
// For every case:
//
//  1. o2go fsck -fn reports the same problem codes, in the same order, as
//     fsck.ocfs2 -fn;
//  2. o2go fsck -fy repairs it so that fsck.ocfs2 -fn then finds nothing;
//  3. a copy repaired by fsck.ocfs2 -fy is clean for o2go fsck -fn.

// bases are the populated volumes the cases damage copies of, made once
// per test binary.
var bases struct {
	sync.Mutex
	dir  string
	imgs map[string]string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "o2go-fsck-bases-")
	if err == nil {
		bases.dir = dir
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// baseImage returns a copy of the named base volume, making the base on
// first use.
func baseImage(t *testing.T, name string) string {
	t.Helper()
	realtools.Require(t)
	bases.Lock()
	defer bases.Unlock()
	if bases.imgs == nil {
		bases.imgs = map[string]string{}
	}
	p, ok := bases.imgs[name]
	if !ok {
		var img string
		switch name {
		case "populated":
			img = mkfs(t, 400<<20)
			populate(t, img)
		case "populated-1k":
			img = mkfs(t, 300<<20, "-b", "1024", "-C", "4096", "-N", "2", "--fs-features=local,noindexed-dirs")
			populate(t, img)
		case "populated-norefcount":
			img = mkfs(t, 300<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local,norefcount")
			populate(t, img)
		case "xattrs":
			img = mkfs(t, 200<<20)
			populateXattrs(t, img)
		case "quota":
			img = mkfs(t, 200<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local,usrquota,grpquota")
			populateQuota(t, img, 120)
		case "quota-1k-ecc":
			img = mkfs(t, 200<<20, "-b", "1024", "-C", "4096", "-N", "2", "--fs-features=local,usrquota,grpquota,metaecc,noindexed-dirs")
			populateQuota(t, img, 120)
		case "refcount":
			img = mkfs(t, 200<<20, "-b", "1024", "-C", "4096", "-N", "2", "--fs-features=local,noindexed-dirs")
			populateRefcount(t, img)
		case "xattrs-1k-ecc":
			img = mkfs(t, 200<<20, "-b", "1024", "-C", "4096", "-N", "2", "--fs-features=local,metaecc,noindexed-dirs")
			populateXattrs(t, img)
		default:
			t.Fatalf("no base %q", name)
		}
		p = filepath.Join(bases.dir, name+".img")
		if err := os.Rename(img, p); err != nil {
			t.Fatal(err)
		}
		bases.imgs[name] = p
	}
	return copyFile(t, p)
}

// corruption is one corpus case.
type corruption struct {
	name string
	base string
	// damage breaks the volume.
	damage func(t *testing.T, img string)
	// want are codes fsck.ocfs2 -fn must report (the case damages what it
	// means to).
	want []string
	// img, when set, is the volume to damage instead of a copy of base.
	img string
	// sameYes also compares the codes of o2go fsck -fy and fsck.ocfs2 -fy
	// (for problems that only a "yes" before them can show).
	sameYes bool
	// wantYes are codes o2go fsck -fy must report.
	wantYes []string
}

// checkCase runs the three comparisons of a case.
func checkCase(t *testing.T, tc corruption) {
	img := tc.img
	if img == "" {
		img = baseImage(t, tc.base)
	}
	tc.damage(t, img)

	real := realtools.Fsck(t, img, "-fn")
	realCodes := codesOf(real.Output)
	for _, w := range tc.want {
		if !slices.Contains(realCodes, w) {
			t.Fatalf("the damage did not produce [%s] for fsck.ocfs2 -fn:\n%s", w, real.Output)
		}
	}
	res, out := runO2go(t, img, AnswerNo, true)
	if got := codesOf(out); !slices.Equal(got, realCodes) {
		if d := os.Getenv("O2GO_FSCK_DIFF_DIR"); d != "" {
			os.WriteFile(filepath.Join(d, "o2go.txt"), []byte(out), 0o644)
			os.WriteFile(filepath.Join(d, "real.txt"), []byte(real.Output), 0o644)
		}
		t.Fatalf("-fn problem codes differ\n o2go:       %v\n fsck.ocfs2: %v\n--- o2go:\n%s\n--- fsck.ocfs2:\n%s", got, realCodes, out, real.Output)
	}
	if len(realCodes) > 0 && res.ExitCode&ExitUncorrected == 0 {
		t.Errorf("o2go fsck -fn exit %d, want 4 set: problems were left", res.ExitCode)
	}

	fixed := copyFile(t, img)
	res, out = runO2go(t, fixed, AnswerYes, true)
	if res.ExitCode&(ExitError|ExitUncorrected) != 0 {
		t.Fatalf("o2go fsck -fy: exit %d\n%s", res.ExitCode, out)
	}
	for _, w := range tc.wantYes {
		if !slices.Contains(codesOf(out), w) {
			t.Fatalf("o2go fsck -fy did not report [%s]:\n%s", w, out)
		}
	}
	if after := realtools.Fsck(t, fixed, "-fn"); !after.Clean() {
		t.Fatalf("fsck.ocfs2 -fn after o2go fsck -fy: exit %d, problems %q\n--- o2go -fy:\n%s\n--- fsck.ocfs2 -fn:\n%s", after.ExitCode, after.Problems, out, after.Output)
	}
	if res, out := runO2go(t, fixed, AnswerNo, true); res.ExitCode != 0 {
		t.Fatalf("o2go fsck -fn after its own repair: exit %d\n%s", res.ExitCode, out)
	}

	theirs := copyFile(t, img)
	if r := realtools.Fsck(t, theirs, "-fy"); r.ExitCode&^1 != 0 {
		t.Logf("fsck.ocfs2 -fy exit %d (its journal-replay quirk may need a second run)", r.ExitCode)
		realtools.Fsck(t, theirs, "-fy")
	} else if tc.sameYes {
		if ours := codesOf(out); !slices.Equal(ours, codesOf(r.Output)) {
			t.Fatalf("-fy problem codes differ\n o2go:       %v\n fsck.ocfs2: %v\n--- o2go:\n%s\n--- fsck.ocfs2:\n%s", ours, codesOf(r.Output), out, r.Output)
		}
	}
	if res, out := runO2go(t, theirs, AnswerNo, true); res.ExitCode != 0 || len(res.Problems) > 0 {
		t.Fatalf("o2go fsck -fn after fsck.ocfs2 -fy: exit %d\n%s", res.ExitCode, out)
	}
}

// allocGroupWithFree returns a group of the allocator at blk and a clear
// bit in it past the descriptor.
func allocGroupWithFree(t *testing.T, im *image, alloc uint64) (uint64, int) {
	t.Helper()
	d := dinode(im.block(alloc))
	cl := chainList(d[diID2:])
	for i := 0; i < int(cl.nextFree()); i++ {
		for gb := cl.rec(i).blkno(); gb != 0; {
			g := groupDesc(im.block(gb))
			bm := g.bitmap()
			for bit := 1; bit < int(g.bits()); bit++ {
				if !testBit(bm, bit) {
					return gb, bit
				}
			}
			gb = g.next()
		}
	}
	t.Fatalf("allocator %d has no free bit", alloc)
	return 0, 0
}

// groupOf returns the group descriptor and bit of an object of a
// contiguous suballocator group (i_suballoc_loc or blkno - bit).
func groupOf(im *image, blk uint64) (uint64, int) {
	d := dinode(im.block(blk))
	bit := int(get16(d, diSuballocBit))
	g := get64(d, diSuballocLoc)
	if g == 0 {
		g = blk - uint64(bit)
	}
	return g, bit
}

// flipAllocBit flips a bit of a chain allocator group and keeps every
// count consistent with it, as a real (mistaken) allocation or free would.
func flipAllocBit(im *image, alloc, group uint64, bit int) {
	var on bool
	var chain uint16
	im.edit(group, gdCheckOff, func(b []byte) {
		g := groupDesc(b)
		on = !testBit(g.bitmap(), bit)
		putBit(g.bitmap(), bit, on)
		if on {
			g.setFree(g.free() - 1)
		} else {
			g.setFree(g.free() + 1)
		}
		chain = g.chain()
	})
	im.editInode(alloc, func(d dinode) {
		cr := chainList(d[diID2:]).rec(int(chain))
		if on {
			cr.setFree(cr.free() - 1)
			d.setBmUsed(d.bmUsed() + 1)
		} else {
			cr.setFree(cr.free() + 1)
			d.setBmUsed(d.bmUsed() - 1)
		}
	})
}

// firstExtent returns the first leaf record of an inode with a depth-0 tree.
func firstExtent(t *testing.T, im *image, ino uint64) extRec {
	t.Helper()
	l := extList(dinode(im.block(ino))[diID2:])
	if l.depth() != 0 || l.nextFree() == 0 {
		t.Fatalf("inode %d: want a depth-0 tree with records, got depth %d, %d records", ino, l.depth(), l.nextFree())
	}
	return l.rec(0)
}

// direntIn finds name in a directory's blocks (inline or not) and
// returns the block and the entry's offset in it.
func direntIn(t *testing.T, im *image, dirIno uint64, name string) (uint64, int) {
	t.Helper()
	d := dinode(im.block(dirIno))
	scan := func(blk uint64, b []byte, off, end int) (int, bool) {
		for off+direntHeader <= end {
			de := dirent(b[off:end])
			if de.recLen() < direntHeader {
				return 0, false
			}
			if de.inode() != 0 && string(de.name()) == name {
				return off, true
			}
			off += de.recLen()
		}
		return 0, false
	}
	if d.inline() {
		if off, ok := scan(dirIno, d, diID2+8, diID2+8+int(get16(d, diID2))); ok {
			return dirIno, off
		}
		t.Fatalf("%s not in inline directory %d", name, dirIno)
	}
	l := extList(d[diID2:])
	if l.depth() != 0 {
		t.Fatalf("directory %d: deep trees not handled by the corruptor", dirIno)
	}
	bpc := im.v.SB.ClusterSize() / im.bs
	for i := 0; i < int(l.nextFree()); i++ {
		r := l.rec(i)
		for k := uint64(0); k < uint64(r.leafClusters())*uint64(bpc); k++ {
			b := im.block(r.blkno() + k)
			end := im.bs
			if ondisk.HasDirTrailerSignature(b) {
				end = ondisk.TrailerOffset(im.bs)
			}
			if off, ok := scan(r.blkno()+k, b, 0, end); ok {
				return r.blkno() + k, off
			}
		}
	}
	t.Fatalf("%s not in directory %d", name, dirIno)
	return 0, 0
}

// editDirent changes the entry name of dirIno in place.
func editDirent(t *testing.T, im *image, dirIno uint64, name string, fn func(de dirent)) {
	t.Helper()
	blk, off := direntIn(t, im, dirIno, name)
	check := -1
	if blk == dirIno {
		check = ondisk.DinodeCheckOffset
	} else if ondisk.HasDirTrailerSignature(im.block(blk)) {
		check = ondisk.DirBlockCheckOffset(im.bs)
	}
	im.edit(blk, check, func(b []byte) { fn(dirent(b[off:])) })
}

var corpus = []corruption{
	{
		name: "chain/group free bits",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			g, _ := groupOf(im, locate(t, img, "/file1"))
			im.edit(g, gdCheckOff, func(b []byte) { groupDesc(b).setFree(groupDesc(b).bits()) })
		},
		want: []string{"GROUP_FREE_BITS", "CHAIN_BITS"},
	},
	{
		name: "chain/chain record bits",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(im.sysFile(ondisk.SysExtentAlloc, 0), func(d dinode) {
				r := chainList(d[diID2:]).rec(0)
				r.setTotal(r.total() + 64)
			})
		},
		want: []string{"CHAIN_BITS"},
	},
	{
		name: "chain/count",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(im.sysFile(ondisk.SysGlobalBitmap, -1), func(d dinode) { chainList(d[diID2:]).setCount(1000) })
		},
		want: []string{"CHAIN_COUNT"},
	},
	{
		name: "chain/group chain and parent",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			g, _ := groupOf(im, locate(t, img, "/file1"))
			im.edit(g, gdCheckOff, func(b []byte) {
				groupDesc(b).setChain(groupDesc(b).chain() + 3)
				groupDesc(b).setParent(groupDesc(b).parent() + 1)
			})
		},
		want: []string{"GROUP_PARENT", "GROUP_CHAIN"},
	},
	{
		// (On an inode allocator's group fsck.ocfs2 -y would unlink the
		// group and its inodes with it: a global bitmap group is
		// relinked, rebuilt and its bits restored from what pass 1 finds.)
		name: "chain/group generation",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			gb := dinode(im.block(im.sysFile(ondisk.SysGlobalBitmap, -1)))
			blk := chainList(gb[diID2:]).rec(1).blkno()
			im.edit(blk, gdCheckOff, func(b []byte) { groupDesc(b).setGen(groupDesc(b).gen() + 1) })
		},
		want: []string{"CHAIN_LINK_GEN", "GROUP_GEN"},
	},
	{
		name: "chain/descriptor signature",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			gb := dinode(im.block(im.sysFile(ondisk.SysGlobalBitmap, -1)))
			blk := chainList(gb[diID2:]).rec(1).blkno()
			im.edit(blk, gdCheckOff, func(b []byte) { copy(b, "BROKEN!!") })
		},
		want: []string{"CHAIN_LINK_MAGIC"},
	},
	{
		name: "bitmap/cluster in use marked free",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			r := firstExtent(t, im, locate(t, img, "/dir1/file2"))
			cl := r.blkno() / uint64(im.v.SB.ClusterSize()/im.bs)
			gbm := im.sysFile(ondisk.SysGlobalBitmap, -1)
			cpg := uint64(ondisk.GlobalBitmapClustersPerGroup(im.bs))
			grp := ondisk.GlobalBitmapGroupBlkno(int(cl/cpg), int(cpg), im.v.SB.ClusterSize()/im.bs, im.v.SB.FirstClusterGroup)
			flipAllocBit(im, gbm, grp, int(cl%cpg))
		},
		want: []string{"CLUSTER_ALLOC_BIT"},
	},
	{
		name: "bitmap/free cluster marked in use",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			gbm := im.sysFile(ondisk.SysGlobalBitmap, -1)
			d := dinode(im.block(gbm))
			last := chainList(d[diID2:]).rec(int(chainList(d[diID2:]).nextFree()) - 1).blkno()
			g := groupDesc(im.block(last))
			flipAllocBit(im, gbm, last, int(g.bits())-2)
		},
		want: []string{"CLUSTER_ALLOC_BIT"},
	},
	{
		name: "bitmap/inode marked free",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			ino := locate(t, img, "/dir1/dir2/dir3")
			g, bit := groupOf(im, ino)
			flipAllocBit(im, im.sysFile(ondisk.SysInodeAlloc, 0), g, bit)
		},
		want: []string{"INODE_ALLOC_REPAIR"},
	},
	{
		name: "inode/fields",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/dir1/file2"), func(d dinode) {
				put64(d, diDtime, 12345)
				d.setClusters(d.clusters() + 2)
			})
			im.editInode(locate(t, img, "/file1"), func(d dinode) { d.setSize(1 << 20) })
		},
		want: []string{"INODE_NZ_DTIME", "INODE_SPARSE_CLUSTERS", "INODE_SPARSE_SIZE"},
	},
	{
		name: "inode/symlink size",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/slowlink"), func(d dinode) { d.setSize(d.size() - 7) })
			im.editInode(locate(t, img, "/fastlink"), func(d dinode) { d.setSize(2) })
		},
		want: []string{"LINK_SIZE"},
	},
	{
		name: "extent/record beyond the volume",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			ino := locate(t, img, "/file1")
			im.editInode(ino, func(d dinode) {
				l := extList(d[diID2:])
				l.rec(int(l.nextFree()) - 1).setBlkno(1)
			})
		},
		want: []string{"EXTENT_BLKNO_RANGE"},
	},
	{
		name: "extent/list counts",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/dir1/file2"), func(d dinode) { extList(d[diID2:]).setCount(500) })
		},
		want: []string{"EXTENT_LIST_COUNT"},
	},
	{
		name: "dup/two files claim one cluster",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			a := firstExtent(t, im, locate(t, img, "/file1"))
			ino := locate(t, img, "/dir1/file2")
			im.editInode(ino, func(d dinode) { extList(d[diID2:]).rec(0).setBlkno(a.blkno()) })
		},
		want: []string{"DUP_CLUSTERS_ADD_REFCOUNT"},
	},
	{
		name: "dup/no refcount trees: clone",
		base: "populated-norefcount",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			a := firstExtent(t, im, locate(t, img, "/file1"))
			ino := locate(t, img, "/dir1/file2")
			im.editInode(ino, func(d dinode) { extList(d[diID2:]).rec(0).setBlkno(a.blkno()) })
		},
		want: []string{"DUP_CLUSTERS_CLONE"},
	},
	{
		name: "dirent/names a free inode",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			g, bit := allocGroupWithFree(t, im, im.sysFile(ondisk.SysInodeAlloc, 0))
			free := g + uint64(bit)
			editDirent(t, im, locate(t, img, "/dir1"), "file2", func(de dirent) { de.setInode(free) })
		},
		want: []string{"DIRENT_INODE_FREE"},
	},
	{
		name: "dirent/free inode in an indexed directory",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			g, bit := allocGroupWithFree(t, im, im.sysFile(ondisk.SysInodeAlloc, 0))
			free := g + uint64(bit)
			editDirent(t, im, locate(t, img, "/big"), "entry-with-a-longish-name-0007", func(de dirent) { de.setInode(free) })
		},
		want: []string{"DIRENT_INODE_FREE"},
	},
	{
		name: "dir index/missing",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/big"), func(d dinode) {
				put64(d, diDxRoot, 0)
				d.setDyn(d.dyn() &^ ondisk.DynIndexedDir)
			})
		},
		want: []string{"DX_TREE_MISSING"},
	},
	{
		name: "dir index/entry missing",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			d := dinode(im.block(locate(t, img, "/big")))
			root := im.block(get64(d, diDxRoot))
			leaf := extList(root[dxrUnion:]).rec(0).blkno()
			im.edit(leaf, ondisk.DXLeafCheckOffset, func(b []byte) {
				n := get16(b, dxlList+6)
				put16(b, dxlList+6, n-1)
			})
		},
		want: []string{"DX_LOOKUP_FAILED"},
	},
	{
		name: "connectivity/directory without a parent entry",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			editDirent(t, im, locate(t, img, "/dir1"), "dir2", func(de dirent) { de.setInode(0) })
		},
		want: []string{"DIR_NOT_CONNECTED", "DIR_DOTDOT"},
	},
	{
		name: "connectivity/file without an entry",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			editDirent(t, im, locate(t, img, "/big"), "entry-with-a-longish-name-0100", func(de dirent) { de.setInode(0) })
		},
		want: []string{"INODE_NOT_CONNECTED"},
	},
	{
		name: "links/counts",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/dir1/file2"), func(d dinode) { d.setLinks(7) })
			im.editInode(locate(t, img, "/dir1"), func(d dinode) { d.setLinks(2) })
		},
		want: []string{"INODE_COUNT"},
	},
	{
		name: "dir/dot dot",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			d3 := locate(t, img, "/dir1/dir2/dir3")
			root := im.v.SB.RootBlkno
			editDirent(t, im, d3, "..", func(de dirent) { de.setInode(root) })
		},
		want: []string{"DIR_DOTDOT"},
	},
	{
		name: "1k blocks/mixed damage",
		base: "populated-1k",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/dir1/file2"), func(d dinode) { d.setLinks(3) })
			g, _ := groupOf(im, locate(t, img, "/file1"))
			im.edit(g, gdCheckOff, func(b []byte) { groupDesc(b).setFree(groupDesc(b).bits()) })
		},
		want: []string{"GROUP_FREE_BITS", "INODE_COUNT"},
	},
}

func TestCorruptionCorpus(t *testing.T) {
	realtools.Require(t)
	for _, tc := range corpus {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) { checkCase(t, tc) })
	}
}

var _ = fmt.Sprintf
