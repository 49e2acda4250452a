package sim

import (
	"os"
	"strconv"
	"testing"
	"time"
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
		t.Logf("%d nodes: %d events", n, r.Events)
	}
}

// TestSeeds runs many seeded clusters with random faults. O2GO_SIM_SEEDS
// sets how many (default 200); O2GO_SIM_SEED replays one.
func TestSeeds(t *testing.T) {
	count := 200
	if s := os.Getenv("O2GO_SIM_SEEDS"); s != "" {
		count, _ = strconv.Atoi(s)
	}
	first := uint64(1)
	if s := os.Getenv("O2GO_SIM_SEED"); s != "" {
		first, _ = strconv.ParseUint(s, 10, 64)
		count = 1
	}
	for seed := first; seed < first+uint64(count); seed++ {
		opt := DefaultOptions(2 + int(seed%4))
		r := Run(seed, opt)
		if r.Failed() {
			t.Fatalf("%s\nreplay: O2GO_SIM_SEED=%d go test -run TestSeeds ./internal/sim", r, seed)
		}
	}
}
