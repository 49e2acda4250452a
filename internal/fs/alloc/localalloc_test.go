package alloc_test

import (
	"testing"

	"o2go/internal/fs/alloc"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// TestLocalAllocThrottlesAndComesBack: when the global bitmap has no run of
// a window's size the local alloc halves its window (throttled); when even
// a window over 1 MiB cannot be had it turns off and claims go to the
// global bitmap; once a window's worth of clusters has been freed it turns
// on again with the full window (localalloc.c's ocfs2_recalc_la_window).
func TestLocalAllocThrottlesAndComesBack(t *testing.T) {
	realtools.Require(t)
	w := mkvol(t, geometries[0]) // 4K clusters: 2048-cluster window, 1 MiB = 256
	opts := alloc.DefaultLocalAllocOptions()

	// Holes of 600 clusters: 2048 and 1024 fail, 512 fits.
	held := checkerboard(t, w, fillGlobal(t, w), 1200, 600)
	la := w.localAlloc(0, opts)
	if la.WindowBits() != 2048 {
		t.Fatalf("default window %d clusters, want 2048 (8 MiB)", la.WindowBits())
	}
	ca := alloc.NewClusterAllocator(w.gb, la)
	var files []alloc.ClusterRun
	r, err := ca.ClaimClustersFor(w.tx, nil, 0, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, r)
	win, err := la.Window()
	if err != nil {
		t.Fatal(err)
	}
	if la.WindowBits() != 512 || win.Total != 512 || win.Used != 1 {
		t.Fatalf("throttled window: target %d, on disk %+v; want 512 clusters, 1 used", la.WindowBits(), win)
	}
	if r.Start < win.Off || r.End() > uint64(win.Off)+uint64(win.Total) {
		t.Fatalf("claim %+v outside the window %d+%d", r, win.Off, win.Total)
	}
	w.check("throttled")
	if err := la.Shutdown(w.tx); err != nil {
		t.Fatal(err)
	}

	// Holes of 200 clusters: no window above 1 MiB fits; off.
	held = append(held, fillGlobal(t, w)...)
	held = checkerboard(t, w, mergeRuns(held), 400, 200)
	la = w.localAlloc(0, opts)
	ca = alloc.NewClusterAllocator(w.gb, la)
	r, err = ca.ClaimClustersFor(w.tx, nil, 0, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, r)
	if la.Enabled() {
		t.Fatalf("local alloc still on with only 200-cluster holes (window %d)", la.WindowBits())
	}
	if win, _ := la.Window(); win.Total != 0 {
		t.Fatalf("a disabled local alloc holds a window: %+v", win)
	}
	w.check("local alloc off")

	// Free a window's worth: it comes back at full size.
	if err := w.gb.FreeClusterRuns(w.tx, held); err != nil {
		t.Fatal(err)
	}
	held = nil
	if !la.Enabled() || la.WindowBits() != 2048 {
		t.Fatalf("after freeing %d+ clusters: enabled %v, window %d; want on with 2048", 2048, la.Enabled(), la.WindowBits())
	}
	r, err = ca.ClaimClustersFor(w.tx, nil, 0, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, r)
	if win, _ := la.Window(); win.Total != 2048 {
		t.Fatalf("window after coming back: %+v, want 2048 clusters", win)
	}
	w.check("local alloc back")

	if err := w.gb.FreeClusterRuns(w.tx, files); err != nil {
		t.Fatal(err)
	}
	if err := la.Shutdown(w.tx); err != nil {
		t.Fatal(err)
	}
	w.check("after freeing")
	img := w.img
	w.close()
	realtools.RequireFsckClean(t, img)
}

// TestDeadSlotLocalAllocRecovery: a node dies with a window in its local
// alloc and files using part of it. The window survives on disk (its
// clusters set in the global bitmap); a reopened local alloc keeps using
// it; recovery by another node empties it and gives back exactly the
// clusters no file took.
func TestDeadSlotLocalAllocRecovery(t *testing.T) {
	realtools.Require(t)
	w := mkvol(t, geometries[0])
	initial := w.usage(w.gb)
	la1 := w.localAlloc(1, alloc.DefaultLocalAllocOptions())
	ca := alloc.NewClusterAllocator(w.gb, la1)
	var files []alloc.ClusterRun
	resv := &alloc.Reservation{}
	for i := 0; i < 10; i++ {
		r, err := ca.ClaimClustersFor(w.tx, resv, 0, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, r)
	}
	win, err := la1.Window()
	if err != nil {
		t.Fatal(err)
	}
	if u := w.usage(w.gb); u.Used != initial.Used+uint32(win.Total) {
		t.Fatalf("global used %d, want %d + the %d-cluster window", u.Used, initial.Used, win.Total)
	}
	w.check("node alive with a window")

	// The node dies; its window stays on disk. A new local alloc on the
	// slot adopts the window and continues in it.
	img, sysf := w.img, w.sysf
	w.close()
	w = openVolFiles(t, img, sysf)
	w.check("after the crash")
	la1 = w.localAlloc(1, alloc.DefaultLocalAllocOptions())
	r, err := alloc.NewClusterAllocator(w.gb, la1).ClaimClustersFor(w.tx, nil, 0, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Start < win.Off || r.End() > uint64(win.Off)+uint64(win.Total) {
		t.Fatalf("claim %+v after reopening is outside the adopted window %+v", r, win)
	}
	files = append(files, r)

	// Another node recovers slot 1, in the kernel's two steps.
	old, err := alloc.EmptyLocalAlloc(w.tx, w.c, w.geo, w.sys(ondisk.SysLocalAlloc, 1))
	if err != nil {
		t.Fatal(err)
	}
	if old.Off != win.Off || old.Total != win.Total || old.Used != 11 {
		t.Fatalf("recovered window %+v, want %d clusters from %d with 11 used", old, win.Total, win.Off)
	}
	if err := w.gb.ReturnWindow(w.tx, old); err != nil {
		t.Fatal(err)
	}
	if u := w.usage(w.gb); u.Used != initial.Used+11 {
		t.Fatalf("after recovery global used %d, want %d + the 11 file clusters", u.Used, initial.Used)
	}
	if now, _ := la1.Window(); now.Total != 0 || now.Used != 0 || now.Off != 0 {
		t.Fatalf("recovered local alloc not empty: %+v", now)
	}
	// Recovering again is harmless.
	if err := alloc.RecoverLocalAlloc(w.tx, w.c, w.geo, w.sys(ondisk.SysLocalAlloc, 1), w.gb); err != nil {
		t.Fatal(err)
	}
	w.check("after recovery")
	if err := w.gb.FreeClusterRuns(w.tx, files); err != nil {
		t.Fatal(err)
	}
	if u := w.usage(w.gb); u != initial {
		t.Fatalf("global bitmap %+v after freeing the files, want the initial %+v", u, initial)
	}
	w.close()
	realtools.RequireFsckClean(t, img)
}
