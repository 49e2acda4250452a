package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/testutil"
)

// spikeSoak runs three nodes for runs x 10 simulated minutes while their
// heartbeat I/O stalls for 5 s every 15-45 s (one node, or the whole array
// at once), and counts the fences; failed is the first run a checker
// flagged.
func spikeSoak(tm config.Timeouts, runs int) (fences, spikes int, failed *Result) {
	for seed := uint64(1); seed <= uint64(runs); seed++ {
		opt := DefaultOptions(3)
		opt.Timeouts = tm
		opt.Duration, opt.Settle = 10*time.Minute, 30*time.Second
		r := base.NewRand(seed)
		var fs []Fault
		// Stalls start at any millisecond: a stall that begins just before
		// a heartbeat read is the worst case for the lease.
		for at := 20 * time.Second; at < opt.Duration; at += time.Duration(15000+r.Intn(30000)) * time.Millisecond {
			f := Fault{At: at, Kind: DiskStall, Dur: 5 * time.Second, Region: -1}
			if r.Chance(0.3) {
				f.Kind, f.Nodes = ArrayDown, nil
			} else {
				f.Nodes = []base.NodeID{base.NodeID(r.Intn(3))}
			}
			fs = append(fs, f)
			spikes++
		}
		opt.Faults = fs
		res := Run(seed, opt)
		if res.Failed() && failed == nil {
			failed = res
		}
		fences += res.Fences
	}
	return fences, spikes, failed
}

// randomSeeds runs seeds 1..n with random faults (TestSeeds' mix) and
// returns the first failing run.
func randomSeeds(tm config.Timeouts, n int) *Result {
	for seed := uint64(1); seed <= uint64(n); seed++ {
		opt := DefaultOptions(2 + int(seed%4))
		opt.Timeouts = tm
		if r := Run(seed, opt); r.Failed() {
			return r
		}
	}
	return nil
}

// TestBenchFastSettingsPassTheSimulator: the fast timing (FastTimeouts)
// passes the simulator's random faults, and 10 simulated minutes of 5 s
// disk stalls on random nodes without a single fence. Reported against
// O2CB's default dead time, which tolerates the same spikes at 62 s.
func TestBenchFastSettingsPassTheSimulator(t *testing.T) {
	testutil.Bench(t)
	if r := randomSeeds(FastTimeouts(), 500); r != nil {
		t.Fatalf("fast timing fails the simulator: %s", r)
	}
	fences, spikes, failed := spikeSoak(FastTimeouts(), 10)
	if failed != nil {
		t.Fatalf("%s", failed)
	}
	dead := FastTimeouts().DeadTime()
	testutil.BenchResult{
		Name:     "sim: fast timing, 10 x 10 simulated minutes of 5 s disk stalls + 500 random-fault seeds",
		O2go:     fmt.Sprintf("%d false fences in %d spikes (dead time %v)", fences, spikes, dead),
		Baseline: "O2CB default dead time 62 s (31 x 2 s)",
		Ratio:    dead.Seconds() / 62,
		Goal:     "0 false fences",
		Met:      fences == 0,
	}.Report(t)
}

// spike is the disk latency spike the fast timing must ride out.
const spike = 5 * time.Second

// ridesOutSpikes reports whether a timing can let a spike complete as
// latency and stay safe: the host I/O timeout must be above the spike (or
// the spike is an I/O error) and below the dead time minus four intervals
// (or a data write let through may land after the survivors declared this
// node dead; see node/member's write gate).
func ridesOutSpikes(tm config.Timeouts) bool {
	return tm.DeadTime()-4*tm.HeartbeatInterval > spike
}

// TestBenchFastestTimingInTheSimulator searches, for heartbeat intervals of
// 500 ms, 750 ms and 1 s, the lowest threshold that rides out 5 s disk
// latency spikes: the host I/O timeout bound allows it (ridesOutSpikes),
// no fence in 10 x 10 simulated minutes of 5 s stalls, 200 random-fault
// seeds clean. The shortest dead time found must be FastTimeouts' — what
// the agents' benchmarks and their 10-minute real soak run with. It also
// reports how low the simulator alone goes (its I/O fails at the bound, so
// there a spike is an error, not latency).
//
// Shorter intervals would allow shorter dead times (the bound is 5 s plus
// four intervals), but there the random faults find a heartbeat write that
// a node issued just before its lease ran out, that met a latency spike of
// several intervals and landed after the survivors declared the node dead
// (O2GO_SIM_SEED=80 at 100, 200 or 250 ms intervals): the lease keeps one
// interval of margin for the heartbeat write, so intervals shorter than
// the disk's slow I/O are not offered as safe.
func TestBenchFastestTimingInTheSimulator(t *testing.T) {
	testutil.Bench(t)
	fast := FastTimeouts()
	passes := func(tm config.Timeouts) (bool, string) {
		fences, _, failed := spikeSoak(tm, 10)
		switch {
		case failed != nil:
			return false, fmt.Sprintf("stall soak: %s", strings.SplitN(failed.String(), "\n", 3)[1])
		case fences > 0:
			return false, fmt.Sprintf("%d false fences under 5 s stalls", fences)
		}
		if r := randomSeeds(tm, 200); r != nil {
			return false, fmt.Sprintf("random seeds: %s", strings.SplitN(r.String(), "\n", 3)[1])
		}
		return true, ""
	}
	var best config.Timeouts
	var found []string
	for _, interval := range []time.Duration{500 * time.Millisecond, 750 * time.Millisecond, time.Second} {
		tm := fast
		tm.HeartbeatInterval = interval
		tm.KillAckTimeout = 3 * interval
		tm.HeartbeatThreshold = config.MinHeartbeatThreshold
		for !ridesOutSpikes(tm) {
			tm.HeartbeatThreshold++
		}
		// The lowest threshold the I/O bound allows; a few above it if
		// the simulator objects.
		safe := 0
		for try := 0; try < 4; try, tm.HeartbeatThreshold = try+1, tm.HeartbeatThreshold+1 {
			ok, why := passes(tm)
			if ok {
				safe = tm.HeartbeatThreshold
				break
			}
			t.Logf("interval %v, threshold %d (dead time %v): fails: %s", interval, tm.HeartbeatThreshold, tm.DeadTime(), why)
		}
		if safe == 0 {
			found = append(found, fmt.Sprintf("%v fails up to x %d", interval, tm.HeartbeatThreshold-1))
			continue
		}
		// Below it, where the I/O bound turns a spike into an error, how
		// far does the simulator still pass?
		simOnly := safe
		for tm.HeartbeatThreshold = safe - 1; tm.HeartbeatThreshold >= config.MinHeartbeatThreshold; tm.HeartbeatThreshold-- {
			if ok, why := passes(tm); !ok {
				t.Logf("interval %v, threshold %d (dead time %v), spikes as I/O errors: fails: %s", interval, tm.HeartbeatThreshold, tm.DeadTime(), why)
				break
			}
			simOnly = tm.HeartbeatThreshold
		}
		tm.HeartbeatThreshold = safe
		found = append(found, fmt.Sprintf("%v x %d = %v (simulator alone: x %d)", interval, safe, tm.DeadTime(), simOnly))
		if best.HeartbeatThreshold == 0 || tm.DeadTime() < best.DeadTime() {
			best = tm
		}
	}
	if best.HeartbeatThreshold == 0 {
		t.Fatalf("no timing rides out 5 s spikes: %s", strings.Join(found, "; "))
	}
	testutil.BenchResult{
		Name:     "sim: fastest timing that rides out 5 s disk latency spikes safely (I/O timeout bound, stall soak, random faults)",
		O2go:     fmt.Sprintf("%v; %s", best.DeadTime(), strings.Join(found, "; ")),
		Baseline: fmt.Sprintf("o2go fast timing %v x %d = %v (agents' benchmarks and 10-minute soak)", fast.HeartbeatInterval, fast.HeartbeatThreshold, fast.DeadTime()),
		Ratio:    best.DeadTime().Seconds() / fast.DeadTime().Seconds(),
		Goal:     "1.00 (the fast timing is the fastest found)",
		Met:      best.DeadTime() == fast.DeadTime(),
	}.Report(t)
}
