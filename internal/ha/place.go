package ha

import (
	"fmt"
	"time"

	"o2go/internal/base"
)

// PlaceInput is everything placement depends on.
type PlaceInput struct {
	Config *Resolved
	// Up are the live nodes running HA that may take groups: members of
	// the view that reported ready and are not leaving.
	Up base.NodeMap
	// NetDown lists, per node, the networks it has lost.
	NetDown map[base.NodeID][]string
	State   *State
	// Now and the timers: when each group's best eligible node became
	// what it is (fallback delay) and when an offline group first had an
	// eligible node (settling time). Both are kept by the coordinator.
	Now        time.Duration
	BestSince  map[string]time.Duration
	PlaceSince map[string]time.Duration
}

// Decision is where one group belongs.
type Decision struct {
	Group  string
	Target base.NodeMap
	Why    string
	// Best is the highest priority eligible node (InvalidNode: none), and
	// Eligible every node the group may run on now; the coordinator keeps
	// its timers from them.
	Best     base.NodeID
	Eligible base.NodeMap
	// Wait, when not zero, is when the decision may change by itself
	// (settling time or fallback delay ending): evaluate again then.
	Wait time.Duration
}

// Place is the one placement function: from the configuration, the live
// membership and the history (State, timers) it decides, for every group in
// placement order, the nodes it belongs on. It is deterministic and has no
// side effect; the coordinator runs it after every change, `o2go ha
// emulate` runs it on a hypothetical membership.
//
// The rules, for a group that is not concurrent, in order:
//
//  1. offline (operator stop, or fallover policy "offline" applied): nowhere;
//     unmanaged after a failed stop: where it is; parked by a graceful
//     node_down, or left running by a forced one: nowhere else.
//  2. eligible nodes: in the group's node list, up, not failed there, with
//     every network its addresses need; restricted by dependencies (each
//     parent placed somewhere, on the node of each same-node group, not on the
//     node of a different-node group). Parents come first in the order.
//  3. a sticky node that is eligible; else a non-sticky move's node that is
//     eligible.
//  4. where it is online: stays, unless fallback is "higher" and a higher
//     priority node is eligible (after fallback_delay).
//  5. it was online and its node is gone or failed (fallover): "next" takes
//     the highest priority eligible node, "offline" leaves it offline.
//  6. not online yet (start-up): "home" only on the first node of its list;
//     "first" on the home node if eligible, else on the highest priority
//     eligible node once settling_time has passed since one appeared.
//
// A concurrent group (start-up "all") belongs on every eligible node.
func Place(in *PlaceInput) []Decision {
	out := make([]Decision, len(in.Config.Groups))
	for _, g := range in.Config.Groups {
		out[g.Index] = placeGroup(in, g, out)
	}
	return out
}

// Eligible returns the nodes group g may run on, dependencies aside.
func (in *PlaceInput) eligible(g *RGroup, gs *GroupState) base.NodeMap {
	var m base.NodeMap
	failed := nodeMap(gs.Failed)
	for _, n := range g.NodeIDs {
		if !in.Up.Has(n) || failed.Has(n) {
			continue
		}
		ok := true
		for _, net := range g.Networks {
			for _, d := range in.NetDown[n] {
				if d == net {
					ok = false
				}
			}
		}
		if ok {
			m.Add(n)
		}
	}
	return m
}

func best(g *RGroup, m base.NodeMap) base.NodeID {
	for _, n := range g.NodeIDs {
		if m.Has(n) {
			return n
		}
	}
	return base.InvalidNode
}

func placeGroup(in *PlaceInput, g *RGroup, decided []Decision) Decision {
	gs := in.State.Group(g.Name)
	topo := &in.Config.Topo
	d := Decision{Group: g.Name, Best: base.InvalidNode}
	switch {
	case gs.Offline:
		d.Why = "offline: " + gs.OfflineWhy
		return d
	case gs.Unmanaged.Valid():
		d.Target.Add(gs.Unmanaged)
		d.Why = fmt.Sprintf("unmanaged on %s (a stop failed): stop or start it to manage it again", topo.Name(gs.Unmanaged))
		return d
	case gs.Forced.Valid():
		d.Why = fmt.Sprintf("left running on %s by a forced node_down, until it is back", topo.Name(gs.Forced))
		return d
	case gs.Parked.Valid():
		d.Why = fmt.Sprintf("offline since the graceful node_down of %s, until it is back", topo.Name(gs.Parked))
		return d
	}
	elig := in.eligible(g, &gs)
	for _, p := range g.Parents {
		if decided[p.Index].Target.Empty() {
			d.Why = "waiting for parent group " + p.Name
			return d
		}
	}
	for _, s := range g.SameNode {
		elig = elig.Intersect(decided[s.Index].Target)
	}
	for _, o := range g.DifferentNode {
		elig = elig.Minus(decided[o.Index].Target)
	}
	d.Eligible = elig
	d.Best = best(g, elig)
	if elig.Empty() {
		d.Why = "no eligible node"
		return d
	}
	if g.Concurrent() {
		d.Target = elig
		d.Why = "concurrent: on every available node"
		return d
	}
	one := func(n base.NodeID, why string) Decision {
		d.Target = base.NodeMapOf(n)
		d.Why = why
		return d
	}
	if gs.Sticky.Valid() && elig.Has(gs.Sticky) {
		return one(gs.Sticky, "sticky location")
	}
	if gs.Prefer.Valid() && elig.Has(gs.Prefer) {
		return one(gs.Prefer, "moved there by the operator")
	}
	owners := nodeMap(gs.Owners)
	if cur := best(g, owners.Intersect(elig)); cur.Valid() {
		if g.Fallback == FallbackHigher && d.Best != cur && !gs.Sticky.Valid() {
			since, ok := in.BestSince[g.Name]
			if g.FallbackDelay == 0 || (ok && in.Now-since >= g.FallbackDelay.D()) {
				return one(d.Best, "fallback to a higher priority node")
			}
			if ok {
				d.Wait = since + g.FallbackDelay.D()
			}
			return one(cur, fmt.Sprintf("stays until the fallback delay (%v) ends", g.FallbackDelay))
		}
		return one(cur, "stays where it is online")
	}
	if !owners.Empty() {
		if g.Fallover == FalloverOffline {
			d.Why = "fallover policy: bring offline"
			return d
		}
		return one(d.Best, "fallover to the next priority node")
	}
	home := g.NodeIDs[0]
	switch {
	case elig.Has(home):
		return one(home, "start-up on its home node")
	case g.Startup == StartupHome:
		d.Why = fmt.Sprintf("start-up policy: home node %s only, and it is not available", topo.Name(home))
		return d
	}
	if st := in.Config.Config.Settings.SettlingTime.D(); st > 0 {
		since, ok := in.PlaceSince[g.Name]
		if !ok || in.Now-since < st {
			if ok {
				d.Wait = since + st
			}
			d.Why = fmt.Sprintf("settling time (%v): waiting for a higher priority node", st)
			return d
		}
	}
	return one(d.Best, "start-up on the first available node")
}
