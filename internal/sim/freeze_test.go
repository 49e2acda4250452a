package sim

import (
	"strings"
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

// startDuringFreeze builds issue 5's blind spot: nodes 0 and 1, the whole
// running cluster, stall on the disk at 30 s and freeze (each confirmed by
// the other) while node 2, crashed at 10 s, starts again at back with a
// working path. It never sees them heartbeat, watches their unchanged slots
// for a dead time and goes on alone: its first view lacks them, so its
// mount may recover their slots, and it never delivers their down events.
// The disk comes back to nodes 0 and 1 at heal. extra faults are added.
func startDuringFreeze(seed uint64, back, heal, ioTimeout time.Duration, extra ...Fault) *Cluster {
	opt := DefaultOptions(3)
	opt.KillArea = seed%2 == 0
	opt.IOTimeout = ioTimeout
	opt.Faults = append([]Fault{
		{At: 10 * time.Second, Kind: CrashProcess, Nodes: []base.NodeID{2}, Dur: back - 10*time.Second, Region: -1},
		{At: 30 * time.Second, Kind: DiskStall, Nodes: []base.NodeID{0, 1}, Dur: heal - 30*time.Second, Region: -1},
	}, extra...)
	c := newCluster(seed, opt)
	c.run()
	return c
}

// wentOnWithout reports whether node by went on in a first view without
// the incarnation of node id before the time before.
func (k *checker) wentOnWithout(by, id base.NodeID, before time.Duration) bool {
	for inc, a := range k.absent {
		if inc.node == id && a.by == by && a.at < before {
			return true
		}
	}
	return false
}

// fencedSince reports whether an incarnation of node id fenced at or after at.
func (k *checker) fencedSince(id base.NodeID, at time.Duration) bool {
	for inc, st := range k.incs {
		if inc.node == id && st.fenced && st.fencedAt >= at {
			return true
		}
	}
	return false
}

func failure(c *Cluster, seed uint64) string {
	r := &Result{Seed: seed, Violations: c.chk.violations, Fences: c.fences, Faults: c.faults, Trace: c.trace, Nodes: c.dump()}
	return r.String()
}

// TestNodeStartingDuringAFreezeGoesOnAlone: the frozen nodes' data writes
// still in flight must not land once node 2 went on without them (the
// checker's absent rule, see checker.write), and nothing else protects
// them but node/member: when node 2 comes back during the stall, before
// the freeze, the write gate (no data write while a heartbeat I/O is
// overdue) keeps the writes issued within a few intervals of the last
// heartbeat, and the host's I/O timeout (DeadTime - 4 intervals) fails
// them before node 2 can have watched a dead time; when it comes back
// after the freeze began, the frozen nodes issue none (ErrFrozen, and the
// write gate too: either alone holds them back). With a
// host I/O timeout beyond that bound the writes land after node 2 went on
// alone, and the checker must say so: that half shows the rule can fail.
// Either way nodes 0 and 1 fence when the disk comes back.
func TestNodeStartingDuringAFreezeGoesOnAlone(t *testing.T) {
	for _, tc := range []struct {
		name       string
		back, heal time.Duration
	}{
		{"back during the stall, before the freeze", 31 * time.Second, 42500 * time.Millisecond},
		{"back after the freeze began", 40 * time.Second, 52500 * time.Millisecond},
	} {
		for seed := uint64(1); seed <= 4; seed++ {
			c := startDuringFreeze(seed, tc.back, tc.heal, 0)
			if len(c.chk.violations) > 0 {
				t.Errorf("%s, seed %d:\n%s", tc.name, seed, failure(c, seed))
				continue
			}
			for _, id := range []base.NodeID{0, 1} {
				if !c.chk.wentOnWithout(2, id, tc.heal) {
					t.Errorf("%s, seed %d: node 2 did not go on without node %d before the disk came back at %v: the scenario is not built\n%s",
						tc.name, seed, id, tc.heal, failure(c, seed))
				}
				if !c.chk.fencedSince(id, tc.heal) {
					t.Errorf("%s, seed %d: node %d did not fence when the disk came back", tc.name, seed, id)
				}
			}
			if c.freezes < 2 {
				t.Errorf("%s, seed %d: %d nodes froze, want 2", tc.name, seed, c.freezes)
			}

			long := 3 * DefaultTimeouts().DeadTime()
			c = startDuringFreeze(seed, tc.back, tc.heal, long)
			caught := false
			for _, v := range c.chk.violations {
				caught = caught || strings.Contains(v, "went on without it")
			}
			if !caught {
				t.Errorf("%s, seed %d, host I/O timeout %v: the checker did not see the frozen nodes' writes land after node 2 went on alone:\n%s",
					tc.name, seed, long, failure(c, seed))
			}
		}
	}
}

// TestFreezeEndsWhenANodeStoppedMeanwhile: as above, node 2 starts during
// the freeze and goes on alone, then stops cleanly (its slot holds a stop
// block, generation 0) before the disk comes back to nodes 0 and 1. Their
// first read shows no heartbeat of node 2, but its slot changed: it read
// the disk while they could not and may have recovered their slots. They
// must fence, not resume (member's heartbeatWhileFrozen used to skip slots
// of generation 0 and let both resume; the checker's absent rule caught
// their first data writes).
func TestFreezeEndsWhenANodeStoppedMeanwhile(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		heal := 60 * time.Second
		c := startDuringFreeze(seed, 31*time.Second, heal, 0,
			Fault{At: 50 * time.Second, Kind: Stop, Nodes: []base.NodeID{2}, Dur: time.Hour, Region: -1})
		if len(c.chk.violations) > 0 {
			t.Errorf("seed %d:\n%s", seed, failure(c, seed))
			continue
		}
		for _, id := range []base.NodeID{0, 1} {
			if !c.chk.wentOnWithout(2, id, 50*time.Second) {
				t.Errorf("seed %d: node 2 did not go on without node %d before it stopped\n%s", seed, id, failure(c, seed))
			}
			if !c.chk.fencedSince(id, heal) {
				t.Errorf("seed %d: node %d did not fence when the disk came back", seed, id)
			}
		}
	}
}
