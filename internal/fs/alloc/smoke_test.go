package alloc_test

import (
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// TestFreshVolumesPassChecker: the Checker agrees with mkfs.ocfs2 about
// every allocator of every geometry (it reports nothing on a clean volume).
func TestFreshVolumesPassChecker(t *testing.T) {
	realtools.Require(t)
	for _, g := range geometries {
		t.Run(g.name, func(t *testing.T) {
			w := mkvol(t, g)
			w.check("fresh mkfs volume")
			w.close()
		})
	}
}

// TestClaimObjectsMatchDebugfs claims inodes while debugfs watches: the
// counts it prints are ours, then everything is freed and fsck is clean.
func TestClaimObjectsMatchDebugfs(t *testing.T) {
	realtools.Require(t)
	g := geometries[0]
	w := mkvol(t, g)
	ia := w.suballoc(ondisk.SysInodeAlloc, 0)
	before := w.usage(ia)
	objs, err := ia.ClaimObjects(w.tx, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.check("after claiming 5 inodes")
	after := w.usage(ia)
	if after.Used != before.Used+5 {
		t.Fatalf("i_used %d -> %d, want +5", before.Used, after.Used)
	}
	img := w.img
	w.close()
	du, _, _ := debugfsUsage(t, img, "inode_alloc:0000")
	if du != after {
		t.Fatalf("debugfs says %+v, o2go %+v", du, after)
	}
	w = openVol(t, img)
	ia = w.suballoc(ondisk.SysInodeAlloc, 0)
	if err := ia.FreeObjects(w.tx, objs); err != nil {
		t.Fatal(err)
	}
	w.check("after freeing them")
	w.close()
	realtools.RequireFsckClean(t, img)
}
