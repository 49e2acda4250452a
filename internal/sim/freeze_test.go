package sim

import (
	"testing"
	"time"
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
