package sim

import (
	"flag"
	"os"
	"strconv"
	"testing"
	"time"
)

var dlmSeedFlag = flag.Uint64("dlmseed", 0, "DLM over the cluster stack: run only this seed")

// TestDLMOverTheClusterStack runs the lock manager on the simulated
// cluster stack — real member state machines, simulated disks and network,
// crashes, power losses, pauses, partitions, cut links, connection
// resets, message delays, disk stalls — with applications locking in
// random modes on every node, and checks what the DLM promises (dlm.go):
// no conflicting grant while the other holder may still act, nothing
// granted past an unrecovered dead node's lock in the file system's
// domain, every request ended once the cluster converged, one master per
// resource. A failure prints the seed; -dlmseed replays it.
func TestDLMOverTheClusterStack(t *testing.T) {
	n := 500 // about 30 s
	if testing.Short() {
		n = 20
	}
	if s := os.Getenv("O2GO_SIM_DLM_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("O2GO_SIM_DLM_SEEDS=%q: %v", s, err)
		}
		n = v
	}
	first := uint64(1)
	if *dlmSeedFlag != 0 {
		first, n = *dlmSeedFlag, 1
	}
	grants, deaths := 0, 0
	for seed := first; seed < first+uint64(n); seed++ {
		opt := DefaultOptions(3 + int(seed%3))
		opt.DLM = true
		opt.Duration, opt.Settle = 60*time.Second, 75*time.Second
		c := newCluster(seed, opt)
		c.run()
		if len(c.chk.violations) > 0 {
			r := &Result{Seed: seed, Violations: c.chk.violations, Fences: c.fences, Faults: c.faults, Trace: c.trace, Nodes: c.dump()}
			t.Fatalf("%s\nreplay: go test ./internal/sim -run TestDLMOverTheClusterStack -dlmseed %d -v", r, seed)
		}
		grants += c.dlm.grants
		deaths += len(c.dlm.dead)
	}
	t.Logf("%d seeds: %d grants checked, %d deaths (crash or fence) of lock holders' nodes", n, grants, deaths)
	if n >= 100 && (grants < 100*n || deaths < n/2) {
		t.Errorf("the runs checked too little: %d grants, %d deaths over %d seeds", grants, deaths, n)
	}
}
