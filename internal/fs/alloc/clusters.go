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
//
// It keeps one Reservation per owner inode for the callers that name the
// inode rather than hold its reservation (ClaimClusters, the interface
// fs/extent declares); DiscardOwner drops it when the inode goes.
type ClusterAllocator struct {
	Global *GlobalBitmap
	// Local is the slot's local alloc; nil when mounted without one.
	Local *LocalAlloc

	owners map[uint64]*Reservation
}

// NewClusterAllocator pairs a global bitmap with a slot's local alloc
// (which may be nil).
func NewClusterAllocator(global *GlobalBitmap, local *LocalAlloc) *ClusterAllocator {
	return &ClusterAllocator{Global: global, Local: local, owners: map[uint64]*Reservation{}}
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

// ClaimClusters is ClaimClustersFor with the reservation of inode owner
// (0: none), in the shape fs/extent's ClusterAllocator interface asks for.
func (a *ClusterAllocator) ClaimClusters(tx metacache.Tx, owner uint64, goal, minN, maxN uint32) (start, n uint32, err error) {
	var r *Reservation
	if owner != 0 {
		if a.owners == nil {
			a.owners = map[uint64]*Reservation{}
		}
		if r = a.owners[owner]; r == nil {
			r = &Reservation{}
			a.owners[owner] = r
		}
	}
	run, err := a.ClaimClustersFor(tx, r, goal, int(minN), int(maxN))
	if err != nil {
		return 0, 0, err
	}
	return run.Start, uint32(run.Count), nil
}

// Reservation returns the reservation ClaimClusters keeps for owner,
// making it (dir sets Reservation.Dir on a new one).
func (a *ClusterAllocator) Reservation(owner uint64, dir bool) *Reservation {
	if a.owners == nil {
		a.owners = map[uint64]*Reservation{}
	}
	r := a.owners[owner]
	if r == nil {
		r = &Reservation{Dir: dir}
		a.owners[owner] = r
	}
	return r
}

// DiscardOwner gives back owner's reservation window and forgets it.
func (a *ClusterAllocator) DiscardOwner(owner uint64) {
	if r := a.owners[owner]; r != nil {
		a.DiscardReservation(r)
		delete(a.owners, owner)
	}
}

// FreeClusters returns n clusters from start to the global bitmap (freed
// file data goes there directly, also when it came from the local alloc
// window).
func (a *ClusterAllocator) FreeClusters(tx metacache.Tx, start, n uint32) error {
	return a.Global.FreeClusterRuns(tx, []ClusterRun{{Start: start, Count: int(n)}})
}

// DiscardReservation gives back r's window.
func (a *ClusterAllocator) DiscardReservation(r *Reservation) {
	if a.Local != nil {
		a.Local.Discard(r)
	}
}
