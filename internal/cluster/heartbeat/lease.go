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
	// Global: the cluster's heartbeat devices; a node fences only when it
	// has lost more than half of them, like voting disks.
	Global
)

// LeaseExpiry is when a node whose regions last renewed their leases at
// bases (the start of each region's last good heartbeat write; regions that
// never wrote are left out) must have fenced: maxStall after the base that
// decides. Local mode: the oldest base. Global mode with n regions: the
// ceil(n/2)-th newest, so that losing more than half of the regions is
// what expires the lease. ok is false when no region holds a lease.
func LeaseExpiry(mode Mode, bases []time.Duration, maxStall time.Duration) (expiry time.Duration, ok bool) {
	if len(bases) == 0 {
		return 0, false
	}
	s := slices.Clone(bases)
	slices.Sort(s)
	if mode == Local {
		return s[0] + maxStall, true
	}
	keep := (len(s) + 1) / 2 // regions that may not all be lost
	return s[len(s)-keep] + maxStall, true
}
