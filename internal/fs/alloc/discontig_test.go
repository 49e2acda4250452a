package alloc_test

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"testing"

	"o2go/internal/fs/alloc"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// fillGlobal claims every free cluster of the global bitmap.
func fillGlobal(t *testing.T, w *vol) []alloc.ClusterRun {
	t.Helper()
	var runs []alloc.ClusterRun
	for {
		r, err := w.gb.ClaimClusters(w.tx, 0, 1, w.gb.MaxRun())
		if errors.Is(err, alloc.ErrNoSpace) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if u := w.usage(w.gb); u.Used != u.Total {
		t.Fatalf("global bitmap not full after filling: %+v", u)
	}
	return runs
}

// checkerboard frees, in every held run, `free` clusters out of each
// `period` (the first ones of each period), and returns what stays held.
func checkerboard(t *testing.T, w *vol, runs []alloc.ClusterRun, period, free int) []alloc.ClusterRun {
	t.Helper()
	var toFree, kept []alloc.ClusterRun
	for _, r := range runs {
		for c := r.Start; uint64(c) < r.End(); c += uint32(period) {
			f := min(free, int(r.End()-uint64(c)))
			toFree = append(toFree, alloc.ClusterRun{Start: c, Count: f})
			if k := min(period-free, int(r.End()-uint64(c))-f); k > 0 {
				kept = append(kept, alloc.ClusterRun{Start: c + uint32(f), Count: k})
			}
		}
	}
	if err := w.gb.FreeClusterRuns(w.tx, toFree); err != nil {
		t.Fatal(err)
	}
	return kept
}

var extentRecLine = regexp.MustCompile(`(?m)^\s*\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+0x`)

// TestDiscontigGroupOnFragmentedVolume: with no run of cl_cpg clusters
// left, a DISCONTIG_BG volume grows extent_alloc by a discontiguous group
// gathered from the holes; fsck.ocfs2 and debugfs.ocfs2 read it as we
// wrote it, objects come from its extents, and a pure one-cluster
// checkerboard (which would need more extents than a group holds) fails
// cleanly, leaving nothing behind.
func TestDiscontigGroupOnFragmentedVolume(t *testing.T) {
	realtools.Require(t)
	w := mkvol(t, geometries[0]) // 4K/4K, discontig-bg on
	ea := w.suballoc(ondisk.SysExtentAlloc, 0)
	cpg, err := ea.ClustersPerGroup()
	if err != nil {
		t.Fatal(err)
	}
	held := fillGlobal(t, w)

	// One free cluster in two: a group would need cpg extents.
	heldSingles := checkerboard(t, w, held, 2, 1)
	beforeGlobal, beforeEA := w.usage(w.gb), w.usage(ea)
	if _, err := ea.Grow(w.tx); !errors.Is(err, alloc.ErrNoSpace) {
		t.Fatalf("grow over a one-cluster checkerboard: err %v, want ErrNoSpace", err)
	}
	if g, e := w.usage(w.gb), w.usage(ea); g != beforeGlobal || e != beforeEA {
		t.Fatalf("failed grow left changes: global %+v -> %+v, extent_alloc %+v -> %+v", beforeGlobal, g, beforeEA, e)
	}
	w.check("after the failed grow")

	// Start over from a full bitmap, then leave holes of 8 clusters in
	// every 16: cpg/8 extents fit a group.
	if err := w.gb.FreeClusterRuns(w.tx, heldSingles); err != nil {
		t.Fatal(err)
	}
	held = checkerboard(t, w, fillGlobal(t, w), 16, 8)
	w.check("fragmented")
	blk, err := ea.Grow(w.tx)
	if err != nil {
		t.Fatalf("grow on a fragmented discontig-bg volume: %v", err)
	}
	g, err := w.c.GroupDesc(blk)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Discontig() {
		t.Fatalf("group %d is contiguous on a fragmented volume", blk)
	}
	if n := len(g.List.Recs); n != cpg/8 {
		t.Errorf("discontiguous group has %d extents, want %d runs of 8", n, cpg/8)
	}
	w.check("after the discontiguous grow")

	// Objects from the new group map through its extents.
	objs, err := ea.ClaimObjects(w.tx, 40, blk)
	if err != nil {
		t.Fatal(err)
	}
	inGroup := 0
	for _, o := range objs {
		if o.GroupBlkno != blk {
			continue
		}
		inGroup++
		found := false
		for _, r := range g.List.Recs {
			if o.Blkno >= r.Blkno && o.Blkno < r.Blkno+uint64(r.Clusters)*uint64(w.geo.BlocksPerCluster) {
				found = true
			}
		}
		if !found {
			t.Errorf("object %+v lies outside the group's extents", o)
		}
	}
	if inGroup == 0 {
		t.Fatal("no object came from the hinted discontiguous group")
	}
	w.check("after claiming from it")

	img := w.img
	w.close()
	// debugfs prints the group with its extent list, as we wrote it.
	out := realtools.Debugfs(t, img, fmt.Sprintf("group <%d>", blk))
	recs := extentRecLine.FindAllStringSubmatch(out, -1)
	if len(recs) != len(g.List.Recs) {
		t.Fatalf("debugfs group <%d> lists %d extents, o2go wrote %d:\n%s", blk, len(recs), len(g.List.Recs), out)
	}
	for i, m := range recs {
		cpos, _ := strconv.ParseUint(m[1], 10, 32)
		clusters, _ := strconv.ParseUint(m[2], 10, 32)
		block, _ := strconv.ParseUint(m[3], 10, 64)
		r := g.List.Recs[i]
		if uint32(cpos) != r.Cpos || uint32(clusters) != r.Clusters || block != r.Blkno {
			t.Errorf("extent %d: debugfs %s/%s/%s, o2go %+v", i, m[1], m[2], m[3], r)
		}
	}

	// Give back the objects and the filler; the group stays and fsck
	// checks it.
	w = openVolFiles(t, img, w.sysf)
	ea = w.suballoc(ondisk.SysExtentAlloc, 0)
	if err := ea.FreeObjects(w.tx, objs); err != nil {
		t.Fatal(err)
	}
	if err := w.gb.FreeClusterRuns(w.tx, held); err != nil {
		t.Fatal(err)
	}
	w.check("after freeing the filler")
	w.close()
	realtools.RequireFsckClean(t, img)
}

// mergeRuns sorts runs and joins adjacent ones.
func mergeRuns(runs []alloc.ClusterRun) []alloc.ClusterRun {
	sorted := append([]alloc.ClusterRun(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Start < sorted[j].Start })
	var out []alloc.ClusterRun
	for _, r := range sorted {
		if n := len(out); n > 0 && out[n-1].End() == uint64(r.Start) {
			out[n-1].Count += r.Count
			continue
		}
		out = append(out, r)
	}
	return out
}

// TestNoDiscontigVolumeDoesNotGrowFragmented: without DISCONTIG_BG a
// fragmented volume cannot grow a suballocator, and nothing changes.
func TestNoDiscontigVolumeDoesNotGrowFragmented(t *testing.T) {
	realtools.Require(t)
	w := mkvol(t, geometries[1])
	ea := w.suballoc(ondisk.SysExtentAlloc, 0)
	held := checkerboard(t, w, fillGlobal(t, w), 16, 8)
	before := w.usage(w.gb)
	if _, err := ea.Grow(w.tx); !errors.Is(err, alloc.ErrNoSpace) {
		t.Fatalf("grow: %v, want ErrNoSpace", err)
	}
	if after := w.usage(w.gb); after != before {
		t.Fatalf("failed grow changed the global bitmap: %+v -> %+v", before, after)
	}
	if err := w.gb.FreeClusterRuns(w.tx, held); err != nil {
		t.Fatal(err)
	}
	w.check("after freeing")
	img := w.img
	w.close()
	realtools.RequireFsckClean(t, img)
}
