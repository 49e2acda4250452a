package sim

import (
	"flag"
	"os"
	"strconv"
	"testing"
)

var (
	haSeed  = flag.Uint64("haseed", 0, "HA simulation: run only this seed, with its trace")
	haSeeds = flag.Int("haseeds", 0, "HA simulation: how many seeds (default 1000, 100 with -short, $O2GO_HA_SEEDS)")
)

// TestHASimulation runs seeded HA clusters with crashes, partitions,
// stalls, flapping monitors, failed starts and stops and operator moves, and
// checks the HA invariants (see ha.go): never active on two nodes, only
// under the DLM lock, eventually active where the placement rules say.
// A failure prints the seed; -haseed replays it with its trace.
func TestHASimulation(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	if s := os.Getenv("O2GO_HA_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("O2GO_HA_SEEDS=%q: %v", s, err)
		}
		n = v
	}
	if *haSeeds > 0 {
		n = *haSeeds
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	if *haSeed != 0 {
		seeds = []uint64{*haSeed}
	}
	var total HAStats
	for _, seed := range seeds {
		r := RunHA(seed, DefaultHAOptions())
		total.Crashes += r.Stats.Crashes
		total.Fences += r.Stats.Fences
		total.Moves += r.Stats.Moves
		total.Restarts += r.Stats.Restarts
		if r.Failed() {
			t.Fatalf("%v\nreplay: go test ./internal/sim -run TestHASimulation -haseed %d -v", r, seed)
		}
		if *haSeed != 0 {
			t.Logf("%v", r)
			for _, l := range r.Trace {
				t.Log(l)
			}
		}
	}
	t.Logf("%d runs: %d crashes, %d fences, %d operator moves, %d monitor failures", len(seeds), total.Crashes, total.Fences, total.Moves, total.Restarts)
}
