package alloc_test

import (
	"testing"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/metacache"
	"o2go/internal/testutil/realtools"
)

// countRuns is how many extents a file whose clusters are these (in file
// order) needs: a new one wherever a cluster does not follow the previous.
func countRuns(clusters []uint32) int {
	runs := 0
	for i, c := range clusters {
		if i == 0 || c != clusters[i-1]+1 {
			runs++
		}
	}
	return runs
}

// roundRobin extends `files` files by one cluster each, in turn, `writes`
// times, through ClaimClustersFor with one reservation per file, and
// returns each file's clusters in order.
func roundRobin(t *testing.T, w *vol, ca *alloc.ClusterAllocator, files, writes int) ([][]uint32, []alloc.ClusterRun) {
	t.Helper()
	resv := make([]*alloc.Reservation, files)
	for i := range resv {
		resv[i] = &alloc.Reservation{}
	}
	got := make([][]uint32, files)
	var runs []alloc.ClusterRun
	for n := 0; n < writes; n++ {
		for f := 0; f < files; f++ {
			goal := uint32(0)
			if k := len(got[f]); k > 0 {
				goal = got[f][k-1] + 1 // what the write path asks for: continue the file
			}
			r, err := ca.ClaimClustersFor(w.tx, resv[f], goal, 1, 1)
			if err != nil {
				t.Fatalf("file %d write %d: %v", f, n, err)
			}
			got[f] = append(got[f], r.Start)
			runs = append(runs, r)
		}
	}
	for _, r := range resv {
		ca.DiscardReservation(r)
	}
	return got, runs
}

// TestRoundRobinExtensionsStayContiguous is the ocfs2(7) example for
// allocation reservations: four files extended round-robin with 100 4 KiB
// writes each end with no more than ~7-10 extents per file. With
// reservations off (resv_level=0) the same workload interleaves the files
// cluster by cluster, which shows what the windows buy.
func TestRoundRobinExtensionsStayContiguous(t *testing.T) {
	realtools.Require(t)
	for _, g := range []geometry{geometries[0], geometries[3]} { // 4K and 512-byte blocks, 4K clusters
		t.Run(g.name, func(t *testing.T) {
			w := mkvol(t, g)
			la := w.localAlloc(0, alloc.DefaultLocalAllocOptions())
			ca := alloc.NewClusterAllocator(w.gb, la)
			files, runs := roundRobin(t, w, ca, 4, 100)
			for f, cl := range files {
				if n := countRuns(cl); n > 10 {
					t.Errorf("file %d: %d extents, want at most 10 (%v)", f, n, cl)
				} else {
					t.Logf("file %d: %d extents", f, n)
				}
			}
			w.check("after the round-robin writes")

			// The same without reservations.
			la0 := w.localAlloc(1, alloc.LocalAllocOptions{ResvLevel: 0})
			ca0 := alloc.NewClusterAllocator(w.gb, la0)
			files0, runs0 := roundRobin(t, w, ca0, 4, 100)
			if n := countRuns(files0[0]); n < 50 {
				t.Errorf("without reservations file 0 has only %d extents: the comparison proves nothing", n)
			}
			w.check("after the writes without reservations")

			// Everything back: the files, both windows.
			if err := w.gb.FreeClusterRuns(w.tx, append(runs, runs0...)); err != nil {
				t.Fatal(err)
			}
			for _, l := range []*alloc.LocalAlloc{la, la0} {
				if err := l.Shutdown(w.tx); err != nil {
					t.Fatal(err)
				}
			}
			w.check("after freeing")
			img := w.img
			w.close()
			realtools.RequireFsckClean(t, img)
		})
	}
}

// TestClaimClustersByOwnerKeepsAWindowPerInode: the owner-keyed entry point
// fs/extent uses gives each inode its own window, like ClaimClustersFor.
func TestClaimClustersByOwnerKeepsAWindowPerInode(t *testing.T) {
	realtools.Require(t)
	w := mkvol(t, geometries[0])
	ca := alloc.NewClusterAllocator(w.gb, w.localAlloc(0, alloc.DefaultLocalAllocOptions()))
	got := map[uint64][]uint32{}
	for n := 0; n < 100; n++ {
		for _, ino := range []uint64{1001, 1002, 1003, 1004} {
			start, k, err := ca.ClaimClusters(w.tx, ino, 0, 1, 1)
			if err != nil || k != 1 {
				t.Fatalf("inode %d: %d clusters, %v", ino, k, err)
			}
			got[ino] = append(got[ino], start)
		}
	}
	for ino, cl := range got {
		if n := countRuns(cl); n > 10 {
			t.Errorf("inode %d: %d extents", ino, n)
		}
		ca.DiscardOwner(ino)
		for _, c := range cl {
			if err := ca.FreeClusters(w.tx, c, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ca.Local.Shutdown(w.tx); err != nil {
		t.Fatal(err)
	}
	w.check("after freeing")
	img := w.img
	w.close()
	realtools.RequireFsckClean(t, img)
}

// ClusterAllocator satisfies fs/extent's ClusterAllocator interface
// (restated here: this package's tests do not import the layers above).
var _ interface {
	ClaimClusters(tx metacache.Tx, owner uint64, goal, min, max uint32) (start, n uint32, err error)
	FreeClusters(tx metacache.Tx, start, n uint32) error
} = (*alloc.ClusterAllocator)(nil)
