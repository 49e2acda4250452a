package heartbeat

import (
	"slices"
	"time"
)

// Mode is how a node's regions decide its fate when its writes stall.
type Mode int

const (
	// Local: one region per mounted volume; a stall on any of them fences
	// (each volume's data is only safe while its own heartbeat is).
	Local Mode = iota
	// Global: the cluster's heartbeat devices, like voting disks. A node
	// needs a lease on a strict majority of the devices the cluster is
	// configured with, found or not: it fences when it has lost half of
	// them or more (as o2hb does in global mode: it fences once the failed
	// regions are at least half of its quorum regions).
	Global
)

// MajorityOf is how many of n global heartbeat regions a node must hold a
// lease on: a strict majority, n/2 + 1. Two nodes that each hold such a
// majority share a region, so each sees the other heartbeat; two disjoint
// halves (possible with "at least half") never do, and could both go on.
func MajorityOf(n int) int { return n/2 + 1 }

// LeaseExpiry is when a node must have fenced whose regions last renewed
// their leases at bases (the start of each region's last good heartbeat
// write; regions that never wrote, or that this node could not find or
// open, are left out): maxStall after the base that decides.
//
// Local mode: the oldest base; configured is ignored. Global mode:
// configured is how many heartbeat regions the cluster is configured with
// (at least len(bases)); the base that decides is the MajorityOf(configured)
// newest, so a region missing from bases counts as lost. ok is false when
// no lease is held: no base in local mode, fewer than a strict majority of
// the configured regions in global mode.
func LeaseExpiry(mode Mode, configured int, bases []time.Duration, maxStall time.Duration) (expiry time.Duration, ok bool) {
	if len(bases) == 0 {
		return 0, false
	}
	s := slices.Clone(bases)
	slices.Sort(s)
	if mode == Local {
		return s[0] + maxStall, true
	}
	need := MajorityOf(max(configured, len(s)))
	if len(s) < need {
		return 0, false
	}
	return s[len(s)-need] + maxStall, true
}
