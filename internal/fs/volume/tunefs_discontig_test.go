package volume

import (
	"errors"
	"os"
	"strings"
	"testing"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// growDiscontigGroup gives extent_alloc:0000 of img a discontiguous group:
// the global bitmap is filled, every other run of 8 clusters freed, the
// allocator grown from the holes, then the filler freed. It returns the
// new group's block.
func growDiscontigGroup(t *testing.T, img string) uint64 {
	t.Helper()
	v, err := Open(img, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tx := &metacache.DirectTx{C: v.Cache}
	tv := &tunefsVol{Volume: v, tx: tx}
	if tv.geo, err = alloc.NewGeometry(v.Super); err != nil {
		t.Fatal(err)
	}
	gb, err := tv.globalBitmap()
	if err != nil {
		t.Fatal(err)
	}
	var full, held []alloc.ClusterRun
	for {
		r, err := gb.ClaimClusters(tx, 0, 1, gb.MaxRun())
		if errors.Is(err, alloc.ErrNoSpace) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		full = append(full, r)
	}
	var holes []alloc.ClusterRun
	for _, r := range full {
		for c := r.Start; uint64(c) < r.End(); c += 16 {
			n := min(8, int(r.End()-uint64(c)))
			holes = append(holes, alloc.ClusterRun{Start: c, Count: n})
			if k := min(8, int(r.End()-uint64(c))-n); k > 0 {
				held = append(held, alloc.ClusterRun{Start: c + uint32(n), Count: k})
			}
		}
	}
	if err := gb.FreeClusterRuns(tx, holes); err != nil {
		t.Fatal(err)
	}
	ea, err := tv.extentAlloc(0)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ea.Grow(tx)
	if err != nil {
		t.Fatalf("growing extent_alloc:0000 on a fragmented volume: %v", err)
	}
	if err := gb.FreeClusterRuns(tx, held); err != nil {
		t.Fatal(err)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	v.Close()
	return blk
}

// TestTunefsNodiscontigBGRefusesDiscontiguousGroups: with a discontiguous
// group in extent_alloc, o2go tunefs refuses to turn discontig-bg off,
// naming the group, and leaves the volume as it was, flag on (as
// tunefs.ocfs2 does, which says so and exits 0). Without one, on the same
// geometry, the flag goes and every group gets a whole block's bitmap.
func TestTunefsNodiscontigBGRefusesDiscontiguousGroups(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	img := realtools.MkfsImage(t, 300<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local")
	clean := copyImage(t, img)
	blk := growDiscontigGroup(t, img)
	tv := openTunefsVol(t, img)
	g, err := tv.Cache.GroupDesc(blk)
	tv.Close()
	if err != nil || !g.Discontig() {
		t.Fatalf("group %d is not discontiguous (%v)", blk, err)
	}
	requireClean(t, img, "growing a discontiguous group")
	before, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	real := copyImage(t, img)

	_, err = tunefsO2goErr(img, TunefsOptions{Features: "nodiscontig-bg"})
	if err == nil || !IsTunefsRefusal(err) || !strings.Contains(err.Error(), "discontiguous block group") {
		t.Fatalf("nodiscontig-bg with a discontiguous group: %v", err)
	}
	after, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("the refused nodiscontig-bg changed the volume")
	}

	out := tunefsReal(t, real, "--fs-features=nodiscontig-bg")
	if !strings.Contains(out, "discontiguous block groups") {
		t.Errorf("tunefs.ocfs2 no longer says it refuses:\n%s", out)
	}
	if superWith(t, real).Super.Features.Incompat&ondisk.IncompatDiscontigBG == 0 {
		t.Error("tunefs.ocfs2 turned discontig-bg off with a discontiguous group on disk")
	}

	tunefsO2go(t, clean, TunefsOptions{Features: "nodiscontig-bg"})
	requireClean(t, clean, "nodiscontig-bg")
	full := 4096 - ondisk.GroupDescBitmapOffset
	if got := suballocBitmapSizes(t, clean); len(got) != 1 || got[full] == 0 {
		t.Errorf("after nodiscontig-bg: suballocator bitmap sizes %v, want all %d", got, full)
	}
}
