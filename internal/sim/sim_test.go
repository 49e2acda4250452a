package sim

import (
	"os"
	"strconv"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/heartbeat"
)

func TestHealthyClusterNeverFences(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5} {
		opt := DefaultOptions(n)
		opt.Faults = []Fault{}
		opt.Duration, opt.Settle = 60*time.Second, 60*time.Second
		r := Run(1, opt)
		if r.Failed() || r.Fences > 0 || r.Freezes > 0 {
			t.Fatalf("%d nodes: %s", n, r)
		}
	}
}

// TestNoFalseFences: disk latency spikes up to the bound o2go is configured
// for (MaxWriteStall - 3 intervals: a heartbeat iteration may meet one spike
// and must still renew its lease), on any nodes, one at a time, and slow
// networks, never fence anyone.
func TestNoFalseFences(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		opt := DefaultOptions(2 + int(seed%4))
		tm := opt.Timeouts
		r := base.NewRand(seed)
		opt.MaxSpike = tm.MaxWriteStall() - 3*tm.HeartbeatInterval
		var fs []Fault
		at := 10 * time.Second
		for at < opt.Duration {
			if r.Chance(0.3) {
				fs = append(fs, Fault{At: at, Kind: NetDelay, Latency: 300 * time.Millisecond, Dur: 5 * time.Second, Region: -1})
			}
			f := Fault{At: at, Kind: DiskSpike, Latency: time.Duration(1+r.Intn(int(opt.MaxSpike/time.Millisecond))) * time.Millisecond,
				Dur: time.Duration(r.Intn(3000)) * time.Millisecond, Region: -1}
			for n := 0; n < opt.Nodes; n++ {
				if r.Chance(0.5) {
					f.Nodes = append(f.Nodes, base.NodeID(n))
				}
			}
			fs = append(fs, f)
			// The next spike comes after this one's I/O completed and the
			// heartbeat had time to renew the lease.
			at += f.Dur + f.Latency + tm.MaxWriteStall() + time.Duration(r.Intn(10_000))*time.Millisecond
		}
		opt.Faults = fs
		res := Run(seed, opt)
		if res.Failed() || res.Fences > 0 {
			t.Fatalf("%s", res)
		}
	}
}

// TestWriteStallFencesBeforeDeath: a node whose disk hangs fences itself
// (end of its lease) strictly before any survivor declares it dead; the
// checker would flag the opposite, and here the order is checked again.
func TestWriteStallFencesBeforeDeath(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		opt := DefaultOptions(3)
		opt.KillArea = seed%2 == 0
		victim := base.NodeID(seed % 3)
		opt.Faults = []Fault{{At: 30 * time.Second, Kind: DiskStall, Nodes: []base.NodeID{victim}, Dur: 40 * time.Second, Region: -1}}
		c := newCluster(seed, opt)
		c.run()
		if len(c.chk.violations) > 0 {
			t.Fatalf("seed %d: %v", seed, c.chk.violations)
		}
		var fencedAt time.Duration = -1
		for inc, s := range c.chk.incs {
			if inc.node == victim && s.fenced && fencedAt < 0 {
				fencedAt = s.fencedAt
			}
		}
		var deadAt time.Duration = -1
		for inc, r := range c.chk.recovery {
			if inc.node == victim && (deadAt < 0 || r < deadAt) {
				deadAt = r
			}
		}
		if fencedAt < 0 || deadAt < 0 || !(fencedAt < deadAt) {
			t.Fatalf("seed %d: node %d fenced at %v, declared dead at %v", seed, victim, fencedAt, deadAt)
		}
		t.Logf("seed %d: node %d fenced at %v, %v before the survivors declared it dead", seed, victim, fencedAt, deadAt-fencedAt)
	}
}

// TestArrayDownFreezes: when the shared disk goes away for every node at
// once for longer than the self-fence bound, the cluster freezes instead of
// fencing itself to death, and resumes when the disk returns.
func TestArrayDownFreezes(t *testing.T) {
	for _, n := range []int{2, 3, 5} {
		opt := DefaultOptions(n)
		d := 3 * opt.Timeouts.DeadTime()
		opt.Faults = []Fault{{At: 30 * time.Second, Kind: ArrayDown, Dur: d, Region: -1}}
		r := Run(uint64(n), opt)
		if r.Failed() || r.Fences > 0 || r.Freezes == 0 {
			t.Fatalf("%d nodes, array down %v: %s", n, d, r)
		}
		t.Logf("%d nodes: %d froze, none fenced", n, r.Freezes)
	}
}

// TestPartitionWithKillBlocks: the survivors of a partition proceed (node
// down delivered) once the idle timeout noticed it, plus a few intervals —
// without kill blocks only after the victim's own quorum decision and the
// dead time.
func TestPartitionWithKillBlocks(t *testing.T) {
	for _, kill := range []bool{true, false} {
		opt := DefaultOptions(3)
		opt.Restart = false
		if !kill {
			opt.Timeouts.KillAckTimeout = 0
		}
		opt.Faults = []Fault{{At: 30 * time.Second, Kind: Partition, Nodes: []base.NodeID{2}, Dur: time.Hour, Region: -1}}
		c := newCluster(7, opt)
		c.run()
		if len(c.chk.violations) > 0 {
			t.Fatalf("%v", c.chk.violations)
		}
		var at time.Duration = -1
		for inc, r := range c.chk.recovery {
			if inc.node == 2 {
				at = r
			}
		}
		if at < 0 {
			t.Fatalf("kill blocks %v: node 2 never declared dead", kill)
		}
		took := at - 30*time.Second
		t.Logf("kill blocks %v: survivors proceeded %v after the cut", kill, took)
		tm := opt.Timeouts
		if kill && took > tm.IdleTimeout+5*tm.HeartbeatInterval {
			t.Errorf("with kill blocks the survivors took %v", took)
		}
		if !kill && took < tm.IdleTimeout+tm.DeadTime() {
			t.Errorf("without kill blocks the survivors proceeded after %v, before the victim could have fenced and been found dead", took)
		}
	}
}

// TestGlobalHeartbeat: three heartbeat regions; a node that loses one keeps
// going, one that loses two fences.
func TestGlobalHeartbeat(t *testing.T) {
	opt := DefaultOptions(3)
	opt.Mode, opt.Regions = heartbeat.Global, 3
	opt.Restart = false
	opt.Faults = []Fault{
		{At: 20 * time.Second, Kind: DiskErrors, Nodes: []base.NodeID{1}, Region: 0, Dur: time.Hour},
		{At: 20 * time.Second, Kind: DiskErrors, Nodes: []base.NodeID{2}, Region: 0, Dur: time.Hour},
		{At: 20 * time.Second, Kind: DiskErrors, Nodes: []base.NodeID{2}, Region: 1, Dur: time.Hour},
	}
	c := newCluster(3, opt)
	c.run()
	if len(c.chk.violations) > 0 {
		t.Fatalf("%v", c.chk.violations)
	}
	if c.nodes[1].state != stRunning || c.nodes[2].state != stFenced {
		t.Fatalf("node 1 (lost 1 of 3 regions) is %v, node 2 (lost 2 of 3) is %v", c.nodes[1].state, c.nodes[2].state)
	}
}

// TestSeeds runs many seeded clusters with random faults: issue 5 asks for
// thousands (2000 take under a minute on one core). O2GO_SIM_SEEDS sets how
// many (default 2000, 50 with -short); O2GO_SIM_SEED replays one and
// shrinks it.
func TestSeeds(t *testing.T) {
	count := 2000
	if testing.Short() {
		count = 50
	}
	if s := os.Getenv("O2GO_SIM_SEEDS"); s != "" {
		count, _ = strconv.Atoi(s)
	}
	first := uint64(1)
	replay := false
	if s := os.Getenv("O2GO_SIM_SEED"); s != "" {
		first, _ = strconv.ParseUint(s, 10, 64)
		count, replay = 1, true
	}
	for seed := first; seed < first+uint64(count); seed++ {
		opt := DefaultOptions(2 + int(seed%4))
		if seed%5 == 0 {
			opt.Mode, opt.Regions = heartbeat.Global, 3
		}
		r := Run(seed, opt)
		if r.Failed() {
			if replay {
				small, sr := Shrink(seed, opt, r.Faults)
				t.Logf("shrunk to %d faults: %v\n%s", len(small), small, sr)
			}
			t.Fatalf("%s\nreplay and shrink: O2GO_SIM_SEED=%d go test -run TestSeeds ./internal/sim", r, seed)
		}
	}
}

func TestRunsAreReproducible(t *testing.T) {
	a, b := Run(42, DefaultOptions(4)), Run(42, DefaultOptions(4))
	if a.Events != b.Events || a.Fences != b.Fences || len(a.Faults) != len(b.Faults) {
		t.Fatalf("same seed, different runs: %d/%d events, %d/%d fences", a.Events, b.Events, a.Fences, b.Fences)
	}
}

func TestShrinkFindsTheCulprit(t *testing.T) {
	// Make "node 1 fenced" the failure: the shrinker must keep the fault
	// that fences it and drop the others.
	opt := DefaultOptions(3)
	opt.Restart = false
	faults := []Fault{
		{At: 10 * time.Second, Kind: NetDelay, Latency: 100 * time.Millisecond, Dur: time.Second, Region: -1},
		{At: 20 * time.Second, Kind: DiskErrors, Nodes: []base.NodeID{1}, Dur: time.Hour, Region: -1},
		{At: 25 * time.Second, Kind: ClockJump, Nodes: []base.NodeID{0}, Latency: time.Hour, Region: -1},
	}
	small := ShrinkBy(faults, func(fs []Fault) bool {
		o := opt
		o.Faults = fs
		c := newCluster(1, o)
		c.run()
		return c.nodes[1].state == stFenced
	})
	if len(small) != 1 || small[0].Kind != DiskErrors {
		t.Fatalf("shrunk to %v", small)
	}
}

// TestMajoritySurvivesAPartition: when a partition leaves a minority, the
// majority continues and the minority fences — whichever side's idle timers
// run out first. With 2|3 of five nodes, and with the middle node of three
// cut off, the minority used to count its silent links, find quorum and
// evict the majority (the checker's eviction rule now catches that too).
func TestMajoritySurvivesAPartition(t *testing.T) {
	for _, tc := range []struct {
		nodes    int
		minority []base.NodeID
	}{{5, []base.NodeID{0, 1}}, {3, []base.NodeID{1}}, {3, []base.NodeID{0}}, {4, []base.NodeID{1}}} {
		for seed := uint64(1); seed <= 30; seed++ {
			opt := DefaultOptions(tc.nodes)
			opt.Restart = false
			opt.Faults = []Fault{{At: 30 * time.Second, Kind: Partition, Nodes: tc.minority, Dur: time.Hour, Region: -1}}
			c := newCluster(seed, opt)
			c.run()
			if len(c.chk.violations) > 0 {
				t.Fatalf("%d nodes, minority %v, seed %d: %v", tc.nodes, tc.minority, seed, c.chk.violations)
			}
			minority := base.NodeMapOf(tc.minority...)
			for _, n := range c.nodes {
				if minority.Has(n.id) != (n.state == stFenced) {
					t.Fatalf("%d nodes, minority %v, seed %d: node %d is %v", tc.nodes, tc.minority, seed, n.id, n.state)
				}
			}
		}
	}
}
