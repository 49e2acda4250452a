package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/sim"
	"o2go/internal/testutil"
)

// O2CB's figures for the same events, from its timers (the kernel's
// fs/ocfs2/cluster): a dead node is noticed after O2CB_HEARTBEAT_THRESHOLD
// unchanged samples, one every 2 s; a cut node decides to fence only when
// the idle timeout expired and then O2NET_QUORUM_DELAY_MS ((threshold+2) x
// 2 s) more, and the survivors see it dead a heartbeat dead time later.
const (
	o2cbKillToDown = 62 * time.Second                                 // 31 x 2 s
	o2cbCutToDown  = 30*time.Second + 66*time.Second + 62*time.Second // idle + quorum delay + dead threshold
)

// benchKill9 starts three agents, kills one, and returns how long the
// survivors took to deliver its down event (the slower of the two).
func benchKill9(t *testing.T, tm config.Timeouts) time.Duration {
	pc := newProcClusterWith(t, 3, loopbackIPs(3), tm)
	for i := 0; i < 3; i++ {
		pc.start(i)
	}
	pc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 2*tm.DeadTime()+60*time.Second)
	killed := time.Now()
	if err := pc.agents[2].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for _, i := range []int{0, 1} {
		at, ok := pc.downAt(i, 2, 3*tm.DeadTime()+30*time.Second)
		if !ok {
			t.Fatalf("agent %d never saw the killed node go down", i)
		}
		if d := at.Sub(killed); d > worst {
			worst = d
		}
	}
	return worst
}

func TestBenchKill9ToNodeDownDefaults(t *testing.T) {
	testutil.Bench(t)
	d := benchKill9(t, config.DefaultTimeouts())
	testutil.BenchResult{Name: "kill -9 to the survivors' node-down event, O2CB's default timeouts",
		O2go: fmt.Sprintf("%.1f s", d.Seconds()), Baseline: "O2CB default: 62 s (31 x 2 s)",
		Ratio: d.Seconds() / o2cbKillToDown.Seconds(), Goal: "<= 1.05", Met: d.Seconds() <= 1.05*o2cbKillToDown.Seconds()}.Report(t)
}

// fastName names the fast timing in a benchmark's name.
func fastName() string {
	tm := sim.FastTimeouts()
	return fmt.Sprintf("%v x %d", tm.HeartbeatInterval, tm.HeartbeatThreshold)
}

func TestBenchKill9ToNodeDownFast(t *testing.T) {
	testutil.Bench(t)
	d := benchKill9(t, sim.FastTimeouts())
	testutil.BenchResult{Name: "kill -9 to the survivors' node-down event, fast timing (" + fastName() + ")",
		O2go: fmt.Sprintf("%.1f s", d.Seconds()), Baseline: "O2CB default: 62 s (31 x 2 s)",
		Ratio: d.Seconds() / o2cbKillToDown.Seconds(), Goal: "<= 0.20", Met: d.Seconds() <= 0.2*o2cbKillToDown.Seconds()}.Report(t)
}

// benchCut cuts one of three agents off the network (network namespaces)
// and returns when the survivors proceeded (node-down, the slower of two).
func benchCut(t *testing.T, tm config.Timeouts) time.Duration {
	nc := newNetnsClusterWith(t, 3, tm)
	for i := 0; i < 3; i++ {
		nc.start(i)
	}
	nc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 2*tm.DeadTime()+60*time.Second)
	cut := time.Now()
	nc.cut(2)
	var worst time.Duration
	for _, i := range []int{0, 1} {
		at, ok := nc.downAt(i, 2, tm.IdleTimeout+3*tm.DeadTime()+60*time.Second)
		if !ok {
			t.Fatalf("agent %d never saw the cut node go down", i)
		}
		if d := at.Sub(cut); d > worst {
			worst = d
		}
	}
	return worst
}

func TestBenchCutToProceedDefaults(t *testing.T) {
	testutil.Bench(t)
	d := benchCut(t, config.DefaultTimeouts())
	testutil.BenchResult{Name: "network cut to the survivors proceeding, kill blocks, O2CB's default timeouts",
		O2go: fmt.Sprintf("%.1f s", d.Seconds()), Baseline: "O2CB default: 158 s (idle 30 + quorum delay 66 + dead 62)",
		Ratio: d.Seconds() / o2cbCutToDown.Seconds(), Goal: "<= 0.30", Met: d.Seconds() <= 0.3*o2cbCutToDown.Seconds()}.Report(t)
}

func TestBenchCutToProceedFast(t *testing.T) {
	testutil.Bench(t)
	d := benchCut(t, sim.FastTimeouts())
	testutil.BenchResult{Name: "network cut to the survivors proceeding, kill blocks, fast timing (" + fastName() + ", idle 5 s)",
		O2go: fmt.Sprintf("%.1f s", d.Seconds()), Baseline: "O2CB default: 158 s (idle 30 + quorum delay 66 + dead 62)",
		Ratio: d.Seconds() / o2cbCutToDown.Seconds(), Goal: "<= 0.05", Met: d.Seconds() <= 0.05*o2cbCutToDown.Seconds()}.Report(t)
}

// TestBenchSoakLatencySpikes runs three agents with the fast timing for ten
// minutes (O2GO_SOAK sets another length) while their heartbeat I/O stalls
// for 5 s every 15-45 s — one node at a time or all at once, as a SAN
// hiccup does — and counts fences and membership changes: there must be
// none.
func TestBenchSoakLatencySpikes(t *testing.T) {
	testutil.Bench(t)
	length := 10 * time.Minute
	if s := os.Getenv("O2GO_SOAK"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			length = d
		}
	}
	tm := sim.FastTimeouts()
	if s := os.Getenv("O2GO_SOAK_THRESHOLD"); s != "" {
		// Try the soak at another threshold (the simulator's search,
		// TestBenchFastestTimingInTheSimulator, tells which ones to try).
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("O2GO_SOAK_THRESHOLD=%q: %v", s, err)
		}
		tm.HeartbeatThreshold = n
	}
	pc := newProcClusterWith(t, 3, loopbackIPs(3), tm)
	faults := make([]string, 3)
	for i := 0; i < 3; i++ {
		faults[i] = filepath.Join(pc.dir, fmt.Sprintf("fault%d", i))
		pc.start(i, "--fault-file", faults[i])
	}
	pc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 2*tm.DeadTime()+60*time.Second)
	start := time.Now()
	spikes := 0
	r := base.NewRand(uint64(start.UnixNano()))
	for time.Since(start) < length {
		time.Sleep(time.Duration(15+r.Intn(30)) * time.Second)
		until := strconv.FormatInt(time.Now().Add(5*time.Second).UnixMilli(), 10)
		who := []int{r.Intn(3)}
		if r.Chance(0.3) {
			who = []int{0, 1, 2}
		}
		for _, i := range who {
			if err := os.WriteFile(faults[i], []byte("stall-until="+until+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		spikes++
		for _, a := range pc.agents {
			select {
			case <-a.done:
				t.Fatalf("agent %d exited (status %d) during the soak", a.i, a.exit)
			default:
			}
		}
	}
	time.Sleep(10 * time.Second)
	fences := 0
	for i, a := range pc.agents {
		select {
		case <-a.done:
			fences++
			t.Errorf("agent %d fenced", i)
		default:
		}
	}
	changes := 0
	for _, e := range pc.events(0) {
		if !e.Initial {
			changes++
		}
	}
	testutil.BenchResult{Name: fmt.Sprintf("%v with a 5 s heartbeat I/O stall every 15-45 s, timing %v x %d (dead time %v)", length, tm.HeartbeatInterval, tm.HeartbeatThreshold, tm.DeadTime()),
		O2go:     fmt.Sprintf("%d false fences, %d membership changes, %d spikes", fences, changes, spikes),
		Baseline: "O2CB default dead time 62 s",
		Ratio:    tm.DeadTime().Seconds() / o2cbKillToDown.Seconds(), Goal: "0 false fences", Met: fences == 0 && changes == 0}.Report(t)
	if changes > 0 {
		t.Errorf("membership changed %d times during the soak", changes)
	}
}
