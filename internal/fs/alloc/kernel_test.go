package alloc_test

import (
	"strings"
	"testing"

	"o2go/internal/fs/alloc"
	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// TestKernelAllocatesFromGroupsO2goAdded: o2go grows inode_alloc:0000 and
// extent_alloc:0000 by contiguous and (on a fragmented volume)
// discontiguous groups; the real kernel driver then mounts the volume and
// creates thousands of inodes and a file of hundreds of extents, taking
// bits from those groups; fsck.ocfs2 and the Checker find the result
// clean.
func TestKernelAllocatesFromGroupsO2goAdded(t *testing.T) {
	testutil.Long(t)
	kernelvm.Require(t)
	realtools.Require(t)
	img := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-C", "4096", "-N", "1", "-J", "size=4M", "--fs-features=local")
	w := openVol(t, img)
	ia := w.suballoc(ondisk.SysInodeAlloc, 0)
	ea := w.suballoc(ondisk.SysExtentAlloc, 0)
	var ours []uint64
	for _, a := range []*alloc.ChainAllocator{ia, ea} {
		g, err := a.Grow(w.tx)
		if err != nil {
			t.Fatal(err)
		}
		ours = append(ours, g)
	}
	held := checkerboard(t, w, fillGlobal(t, w), 16, 8)
	discontig := map[uint64]bool{}
	for _, a := range []*alloc.ChainAllocator{ia, ea} {
		g, err := a.Grow(w.tx)
		if err != nil {
			t.Fatal(err)
		}
		gd, err := w.c.GroupDesc(g)
		if err != nil || !gd.Discontig() {
			t.Fatalf("group %d is not discontiguous (%v)", g, err)
		}
		ours = append(ours, g)
		discontig[g] = true
	}
	if err := w.gb.FreeClusterRuns(w.tx, held); err != nil {
		t.Fatal(err)
	}
	w.check("before the kernel")
	sysf := w.sysf
	w.close()
	realtools.RequireFsckClean(t, img)

	kernelvm.RunT(t, kernelvm.Options{Image: img}, `
		set -e
		mkdir d
		i=0
		while [ $i -lt 3000 ]; do : > d/f$i; i=$((i+1)); done
		i=0
		while [ $i -lt 400 ]; do
			dd if=/dev/zero of=sparse bs=4096 count=1 seek=$((i*2)) conv=notrunc 2>/dev/null
			i=$((i+1))
		done
		sync`)
	realtools.RequireFsckClean(t, img)

	w = openVolFiles(t, img, sysf)
	w.check("after the kernel")
	usedInOurs := 0
	for _, g := range ours {
		gd, err := w.c.GroupDesc(g)
		if err != nil {
			t.Fatal(err)
		}
		used := int(gd.Bits - gd.FreeBitsCount)
		t.Logf("group %d (discontiguous %v): %d of %d bits used by the kernel", g, discontig[g], used-1, gd.Bits)
		if used > 1 {
			usedInOurs++
		}
	}
	if usedInOurs < 2 {
		t.Fatalf("the kernel used only %d of the groups o2go added", usedInOurs)
	}
	out := realtools.Debugfs(t, img, "stat //inode_alloc:0000")
	if !strings.Contains(out, "Bitmap Total") {
		t.Fatalf("debugfs: %s", out)
	}
	w.close()
}
