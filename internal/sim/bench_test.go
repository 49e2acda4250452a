package sim

import (
	"fmt"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/testutil"
)

// TestBenchFastSettingsPassTheSimulator: the fast timing (FastTimeouts)
// passes the simulator's random faults, and 10 simulated minutes of 5 s
// disk stalls on random nodes without a single fence. Reported against
// O2CB's default dead time, which tolerates the same spikes at 62 s.
func TestBenchFastSettingsPassTheSimulator(t *testing.T) {
	testutil.Bench(t)
	seeds := 500
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		opt := DefaultOptions(2 + int(seed%4))
		opt.Timeouts = FastTimeouts()
		if r := Run(seed, opt); r.Failed() {
			t.Fatalf("fast timing fails the simulator: %s", r)
		}
	}
	fences, spikes := 0, 0
	for seed := uint64(1); seed <= 10; seed++ {
		opt := DefaultOptions(3)
		opt.Timeouts = FastTimeouts()
		opt.Duration, opt.Settle = 10*time.Minute, 30*time.Second
		r := base.NewRand(seed)
		var fs []Fault
		for at := 20 * time.Second; at < opt.Duration; at += time.Duration(15+r.Intn(30)) * time.Second {
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
		if res.Failed() {
			t.Fatalf("%s", res)
		}
		fences += res.Fences
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
