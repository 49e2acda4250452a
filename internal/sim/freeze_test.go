package sim

import (
	"testing"
	"time"

	"o2go/internal/base"
)

// TestFreezeAsksEveryWatcher replays the DLM runs that found split brains
// in the freeze (issue 5):
//
//   - seed 1668: nodes 0 and 1 (the view) both stall on the disk and
//     freeze, each confirmed only by the other, while node 2, heartbeating
//     but not yet a member (cut from node 1), reads on, declares both dead
//     and goes on alone. The freeze must ask every node that may count the
//     frozen node's heartbeat, members or not.
//   - seed 3802: the array goes down, the view freezes, node 3 is paused
//     meanwhile; the others fence, and node 3, resuming, acted on a read
//     held during its pause (their fencing acknowledgements) and committed
//     a view of itself alone, then stayed frozen "confirmed" by nobody. A
//     node alone is never confirmed, and a node whose lease ran out fences
//     before it acts on a read.
//   - seed 4925 (not a freeze): node 0, paused 1.9 s across the start of a
//     partition {1 2 3} | {0 4}, took its peers' last statuses, delivered
//     on resuming, as fresh, counted nodes 2 and 3 on its side and evicted
//     node 1 of the majority. Statuses that may have waited for a stalled
//     node count as received before its stall.
func TestFreezeAsksEveryWatcher(t *testing.T) {
	for _, seed := range []uint64{1668, 3802, 4925} {
		opt := DefaultOptions(3 + int(seed%3))
		opt.DLM = true
		opt.Duration, opt.Settle = 60*time.Second, 75*time.Second
		c := newCluster(seed, opt)
		c.run()
		if len(c.chk.violations) > 0 {
			r := &Result{Seed: seed, Violations: c.chk.violations, Fences: c.fences, Faults: c.faults, Trace: c.trace, Nodes: c.dump()}
			t.Errorf("%s", r)
		}
	}
}

// TestEvictionCheckSeesShortLinks: at interval 750 ms x 11 (one of the
// timings TestBenchFastestTimingInTheSimulator tries), random seed 161 has
// node 0, alone in its view, connect to the joiner node 2 in a 0.8 s gap
// between two partitions, take its status, and evict node 1, which reaches
// neither. That is o2quo's count (node 2 heartbeats and is connected), and
// the order only hastens node 1's own o2quo fence; the checker must see the
// gap (see checker.evicting).
func TestEvictionCheckSeesShortLinks(t *testing.T) {
	tm := FastTimeouts()
	tm.HeartbeatInterval = 750 * time.Millisecond
	tm.KillAckTimeout = 3 * tm.HeartbeatInterval
	tm.HeartbeatThreshold = 11
	opt := DefaultOptions(2 + 161%4)
	opt.Timeouts = tm
	if r := Run(161, opt); r.Failed() {
		t.Errorf("%s", r)
	}
}

// TestFreezeEndsWithAReadBeforeResuming: nodes 0 and 1 stall on the disk
// together and freeze, each confirmed by the other, while node 2, crashed
// meanwhile, restarts with a working path: it sees nobody heartbeating,
// waits a dead time on their unchanged slots and goes on alone (issue 5).
// The frozen pair writes nothing meanwhile; when the disk comes back it
// must not resume: its first read shows node 2's slot changed, so both
// fence (the checker flags a node that resumes from a freeze next to a
// disjoint group that went on).
func TestFreezeEndsWithAReadBeforeResuming(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		opt := DefaultOptions(3)
		opt.Duration = 90 * time.Second
		opt.KillArea = seed%2 == 0
		opt.Faults = []Fault{
			{At: 10 * time.Second, Kind: CrashProcess, Nodes: []base.NodeID{2}, Dur: 25 * time.Second, Region: -1},
			{At: 30 * time.Second, Kind: DiskStall, Nodes: []base.NodeID{0, 1}, Dur: 40 * time.Second, Region: -1},
		}
		c := newCluster(seed, opt)
		c.run()
		if len(c.chk.violations) > 0 {
			r := &Result{Seed: seed, Violations: c.chk.violations, Fences: c.fences, Faults: c.faults, Trace: c.trace, Nodes: c.dump()}
			t.Errorf("%s", r)
		}
		for _, id := range []base.NodeID{0, 1} {
			fenced := false
			for inc, st := range c.chk.incs {
				fenced = fenced || inc.node == id && st.fenced && st.fencedAt >= 70*time.Second
			}
			if !fenced {
				t.Errorf("seed %d: node %d did not fence when the disk came back", seed, id)
			}
		}
	}
}
