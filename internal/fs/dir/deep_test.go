package dir

import (
	"fmt"
	"testing"

	"o2go/internal/base"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// TestDeepTrees grows two directories in turn on 512-byte blocks, so that
// their clusters interleave and neither the directory's extent list (19
// records in the inode) nor the dx root's (19 records) can hold its tree:
// both trees grow extent blocks from extent_alloc. One directory is then
// emptied and destroyed, which must give every block back.
func TestDeepTrees(t *testing.T) {
	realtools.Require(t)
	g := volConfig{"512-4k", 64 << 20, []string{"-b", "512", "-C", "4096"}}
	v := memVol(t, g)
	root := v.load(v.sb.RootBlkno)
	a := v.mkdir(root, "a")
	b := v.mkdir(root, "b")
	f := v.newInode(ondisk.ModeReg)
	f.Links = 0
	r := base.NewRand(testSeed(t))
	gen := nameGen{r}
	names := map[*ondisk.Dinode][]string{}
	mask := uint32(v.sb.BlocksPerCluster() - 1)
	deep := func(d *ondisk.Dinode) bool {
		if d.Extents == nil || d.Extents.TreeDepth == 0 || d.DxRoot == 0 {
			return false
		}
		dr, err := v.c.DXRoot(d.DxRoot, d.Blkno)
		return err == nil && !dr.Inline() && dr.List.TreeDepth > 0
	}
	for i := 0; !(deep(a) && deep(b)); i++ {
		if i > 20000 {
			t.Fatalf("trees still shallow after %d names: dir depth %d", i, a.Extents.TreeDepth)
		}
		d := a
		if i%2 == 1 {
			d = b
		}
		var n string
		for {
			n = gen.name()
			n = fmt.Sprintf("%d-%s", i, n[:min(len(n), 1+r.Intn(12))])
			if _, minor := ondisk.DXHashString(n, v.sb.DxSeed, ondisk.SignedChar); minor&mask == 0 {
				break
			}
		}
		if err := Add(v.env(), d, n, f.Blkno, ondisk.FileTypeReg); err != nil {
			t.Fatal(err)
		}
		f.Links++
		names[d] = append(names[d], n)
		v.store(d)
	}
	for _, d := range []*ondisk.Dinode{a, b} {
		fc, err := checkDir(v.c, v.sb, d, true)
		if err != nil {
			t.Fatal(err)
		}
		dr, _ := v.c.DXRoot(d.DxRoot, d.Blkno)
		t.Logf("dir %d: %d names, %d blocks, %d clusters, tree depth %d; index: %d clusters, depth %d",
			d.Blkno, len(fc.names), fc.blocks, fc.clusters, d.Extents.TreeDepth, dr.Clusters, dr.List.TreeDepth)
	}
	for _, n := range names[a] {
		if _, err := Remove(v.env(), a, n); err != nil {
			t.Fatal(err)
		}
		f.Links--
	}
	if _, err := checkDir(v.c, v.sb, a, true); err != nil {
		t.Fatal(err)
	}
	if err := Destroy(v.env(), a); err != nil {
		t.Fatal(err)
	}
	if _, err := Remove(v.env(), root, "a"); err != nil {
		t.Fatal(err)
	}
	root.Links--
	v.store(root)
	v.freeInode(a)
	v.store(b)
	v.store(f)
	img := v.save()
	realtools.RequireFsckClean(t, img)
	compareWithDebugfs(t, img, "/b")
}
