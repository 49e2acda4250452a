package sim

import (
	"strings"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/heartbeat"
)

// auditLayout is the split brain of issue 5's audit: three global
// heartbeat devices; node 0 finds only R0, nodes 1 and 2 only R1 and R2,
// from the start and for window.
func auditLayout(window time.Duration) []Fault {
	return []Fault{
		{At: 0, Kind: Invisible, Nodes: []base.NodeID{0}, Region: 1, Dur: window},
		{At: 0, Kind: Invisible, Nodes: []base.NodeID{0}, Region: 2, Dur: window},
		{At: 0, Kind: Invisible, Nodes: []base.NodeID{1, 2}, Region: 0, Dur: window},
	}
}

func globalOptions() Options {
	opt := DefaultOptions(3)
	opt.Mode, opt.Regions = heartbeat.Global, 3
	opt.Restart = false
	return opt
}

// TestInvisibleRegionSplitBrain replays the audit's layout. With the rule
// before the fix (the lease's majority over the regions a node found)
// node 0 goes on alone in [0] while nodes 1 and 2 go on in [1 2]: the
// checker sees two disjoint groups. With the majority over the configured
// regions node 0, holding one of three, never heartbeats nor joins while
// the devices are missing; nodes 1 and 2 (two of three) go on; when the
// devices appear, node 0 finds them and joins, and nobody fences.
func TestInvisibleRegionSplitBrain(t *testing.T) {
	const window = 60 * time.Second
	for seed := uint64(1); seed <= 5; seed++ {
		old := globalOptions()
		old.Faults = auditLayout(window)
		old.LeaseOverFoundRegions = true
		r := Run(seed, old)
		split := false
		for _, v := range r.Violations {
			if strings.Contains(v, "two disjoint groups continue") {
				split = true
			}
		}
		if !split {
			t.Fatalf("seed %d, the old rule: the checker saw no split brain\n%s", seed, r)
		}

		opt := globalOptions()
		opt.Faults = auditLayout(window)
		c := newCluster(seed, opt)
		var node0InView, pairInView bool
		for at := time.Second; at < window; at += time.Second {
			c.q.at(at, func() {
				if m := c.nodes[0].m; m != nil && m.View().Epoch != 0 {
					node0InView = true
				}
				if m := c.nodes[1].m; m != nil && m.View().Members == base.NodeMapOf(1, 2) {
					pairInView = true
				}
			})
		}
		c.run()
		if len(c.chk.violations) > 0 {
			t.Fatalf("seed %d, the fix: %v", seed, c.chk.violations)
		}
		if node0InView {
			t.Errorf("seed %d: node 0 formed or joined a view with one of three devices", seed)
		}
		if !pairInView {
			t.Errorf("seed %d: nodes 1 and 2 (two of three devices) did not go on", seed)
		}
		if c.fences > 0 {
			t.Errorf("seed %d: %d fences", seed, c.fences)
		}
		for _, n := range c.nodes {
			if v := n.m.View(); n.state != stRunning || v.Members != base.NodeMapOf(0, 1, 2) || len(n.regions) != 3 {
				t.Errorf("seed %d: at the end node %d is %v in %v with %d regions", seed, n.id, n.state, v, len(n.regions))
			}
		}
	}
}

// TestInvisibleRegionFromTimeT: a device goes away from one node of a
// running cluster and the node restarts while it is missing. With one of
// three devices gone the node goes on, and after a crash it starts again on
// the two it finds; with two gone it fences (its lease), starts again on
// the one left without heartbeating, and joins once the devices are back.
func TestInvisibleRegionFromTimeT(t *testing.T) {
	for _, tc := range []struct {
		name    string
		regions []int
		fences  bool
	}{{"one of three", []int{0}, false}, {"two of three", []int{0, 1}, true}} {
		for seed := uint64(1); seed <= 5; seed++ {
			opt := globalOptions()
			opt.Restart = true
			for _, r := range tc.regions {
				opt.Faults = append(opt.Faults, Fault{At: 30 * time.Second, Kind: Invisible, Nodes: []base.NodeID{0}, Region: r, Dur: 40 * time.Second})
			}
			if !tc.fences {
				opt.Faults = append(opt.Faults, Fault{At: 40 * time.Second, Kind: CrashProcess, Nodes: []base.NodeID{0}, Dur: 5 * time.Second, Region: -1})
			}
			c := newCluster(seed, opt)
			var regionsAfterRestart = -1
			c.q.at(69*time.Second, func() { regionsAfterRestart = len(c.nodes[0].regions) })
			c.run()
			if len(c.chk.violations) > 0 {
				t.Fatalf("%s, seed %d: %v", tc.name, seed, c.chk.violations)
			}
			if (c.fences > 0) != tc.fences || c.fences > 1 {
				t.Errorf("%s, seed %d: %d fences", tc.name, seed, c.fences)
			}
			if want := 3 - len(tc.regions); regionsAfterRestart != want {
				t.Errorf("%s, seed %d: node 0 restarted with %d regions, want %d", tc.name, seed, regionsAfterRestart, want)
			}
			for _, n := range c.nodes {
				if v := n.m.View(); n.state != stRunning || v.Members != base.NodeMapOf(0, 1, 2) || len(n.regions) != 3 {
					t.Errorf("%s, seed %d: at the end node %d is %v in %v with %d regions", tc.name, seed, n.id, n.state, v, len(n.regions))
				}
			}
		}
	}
}
