package alloc

import (
	"fmt"

	"o2go/internal/fs/metacache"
)

// ClusterAllocator hands out data clusters the way the kernel's
// ocfs2_reserve_clusters / ocfs2_claim_clusters pair does: from the slot's
// local alloc when it is on and the request is at most half a window
// (ocfs2_alloc_should_use_local), else — or when the local alloc has no
// room — from the global bitmap.
type ClusterAllocator struct {
	Global *GlobalBitmap
	// Local is the slot's local alloc; nil when mounted without one.
	Local *LocalAlloc
}

// NewClusterAllocator pairs a global bitmap with a slot's local alloc
// (which may be nil).
func NewClusterAllocator(global *GlobalBitmap, local *LocalAlloc) *ClusterAllocator {
	return &ClusterAllocator{Global: global, Local: local}
}

// ClaimClustersFor takes one run of min..max contiguous clusters for an
// inode whose reservation is r (nil: none, e.g. metadata or a one-off
// allocation). Through the local alloc the run comes from r's window, which
// the next claim continues; goal only steers claims that go to the global
// bitmap (the group holding goal is searched first, from goal). The run
// may be shorter than max; callers loop for the rest.
func (a *ClusterAllocator) ClaimClustersFor(tx metacache.Tx, r *Reservation, goal uint32, minN, maxN int) (ClusterRun, error) {
	if minN <= 0 || maxN < minN {
		return ClusterRun{}, fmt.Errorf("claim of %d..%d clusters", minN, maxN)
	}
	if a.Local != nil && a.Local.Enabled() && maxN <= a.Local.WindowBits()/2 {
		run, err := a.Local.Claim(tx, r, minN, maxN)
		if err == nil || !errIsNoSpace(err) {
			return run, err
		}
	}
	return a.Global.ClaimClusters(tx, goal, minN, maxN)
}

// FreeClusters returns clusters to the global bitmap (freed file data goes
// there directly, also when it came from the local alloc window).
func (a *ClusterAllocator) FreeClusters(tx metacache.Tx, run ClusterRun) error {
	return a.Global.FreeClusterRuns(tx, []ClusterRun{run})
}

// DiscardReservation gives back r's window.
func (a *ClusterAllocator) DiscardReservation(r *Reservation) {
	if a.Local != nil {
		a.Local.Discard(r)
	}
}
