package quorum

import (
	"fmt"

	"o2go/internal/base"
)

// EvictInput is what the eviction rule looks at, all from this node's view.
type EvictInput struct {
	Self      base.NodeID
	Members   base.NodeMap // the committed view's members (empty: no view yet)
	Live      base.NodeMap // heartbeating nodes, Self included
	Connected base.NodeMap // peers with an established connection
	Lost      base.NodeMap // heartbeating peers this node gave up connecting to
	// Reach returns what peer y last reported about its own connections,
	// and whether that report is fresh; nil when no reports are known.
	Reach     func(y base.NodeID) (connected base.NodeMap, fresh bool)
	HasQuorum bool // Quorum.Evaluate allows this node to continue
}

// Eviction is one node this node should evict (kill block and Evict message).
type Eviction struct {
	Target base.NodeID
	// Cut is true when no peer of this node reaches the target either (a
	// partition), false when only the link between this node and the target
	// is broken (an asymmetric cut).
	Cut    bool
	Reason string
}

// Evictions decides which nodes this node evicts. O2CB leaves a lost link to
// a node that still heartbeats to o2quo, which lets the minority fence itself
// only QuorumDelay after the loss, and never resolves a cut between two
// nodes that each still reach a majority. o2go's survivors act at once:
//
//   - A partition (no peer of this node reaches the target either): the
//     lowest-numbered node of this node's side evicts every heartbeating node
//     it cannot reach, provided its side has quorum by o2quo's rule. Two
//     sides of a partition cannot both have quorum, so they never evict
//     each other.
//   - An asymmetric cut (some peer still reaches the target): of the two
//     nodes that cannot talk, the higher-numbered goes, evicted by the
//     lower, which must have quorum. A node that is not yet a member of the
//     view goes before one that is.
//
// Only members of the committed view evict, and only while every peer they
// count on their side is heard from (a fresh report): when a partition
// starts, every link across it goes silent at once but each idle timer runs
// out on its own, so the first link given up says nothing about the others.
// A node cut off from the majority that still counted its silent links
// would find quorum on its side and evict the majority (seen with five
// nodes split 2|3, and with the middle node of three cut off). Until the
// silent peers are heard again or given up, it decides nothing; by then
// o2quo has the true picture. An evicted node fences itself (see
// cluster/heartbeat's kill blocks and the Evict message).
func Evictions(in EvictInput) []Eviction {
	if !in.HasQuorum || !in.Members.Has(in.Self) || !in.Live.Has(in.Self) {
		return nil
	}
	if in.Reach != nil {
		for _, y := range in.Connected.Intersect(in.Live).Nodes() {
			if _, fresh := in.Reach(y); !fresh && y != in.Self {
				return nil
			}
		}
	}
	side := in.Connected.Intersect(in.Live)
	side.Add(in.Self)
	sideLeader := side.Lowest()
	var out []Eviction
	for _, x := range in.Lost.Intersect(in.Live).Nodes() {
		if x == in.Self {
			continue
		}
		reached := false
		if in.Reach != nil {
			for _, y := range in.Connected.Nodes() {
				if c, fresh := in.Reach(y); fresh && c.Has(x) {
					reached = true
					break
				}
			}
		}
		switch {
		case reached && (!in.Members.Has(x) || in.Self < x):
			out = append(out, Eviction{Target: x, Reason: fmt.Sprintf(
				"node %d cannot reach node %d while others can; the higher-numbered node of such a pair is evicted", in.Self, x)})
		case !reached && in.Self == sideLeader:
			out = append(out, Eviction{Target: x, Cut: true, Reason: fmt.Sprintf(
				"node %d is cut off from this node's side, which has quorum", x)})
		}
	}
	return out
}
