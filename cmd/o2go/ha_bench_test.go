package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"o2go/internal/ha"
	"o2go/internal/sim"
	"o2go/internal/testutil"
)

// The defaults of the HA managers o2go is compared with, for a dead node:
// PowerHA's failure detection (network module "normal": about 20 s), Oracle
// CSS's misscount (30 s), Pacemaker/corosync's token timeout and consensus
// (about 7 s) — each followed by fencing (Pacemaker) and the start of the
// service, which is the same work whoever does it: it is measured here.
const (
	powerHADetect   = 20 * time.Second
	cssMisscount    = 30 * time.Second
	pacemakerDetect = 7 * time.Second
)

// TestBenchHAFailover: three agents with o2go's fast timing
// (sim.FastTimeouts), the echo group (service address, o2go volume, application) on the
// first; kill -9 of the owner's whole namespace; the time until the client
// gets its data from the next node, next to the other managers' detection
// plus the start time measured in the same run.
func TestBenchHAFailover(t *testing.T) {
	testutil.Bench(t)
	tm := sim.FastTimeouts()
	hc := newHAClusterWith(t, 3, tm)
	for i := 0; i < 3; i++ {
		hc.startHA(i)
	}
	hc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 2*tm.DeadTime()+60*time.Second)
	cfg, _ := hc.echoGroup()
	f := filepath.Join(hc.dir, "echo.json")
	b, _ := json.Marshal(cfg)
	os.WriteFile(f, b, 0o644)
	if out, err := hc.cli(1, "add", "-f", f); err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	hc.waitOnline(1, "echo", hc.names[0], 60*time.Second)
	if _, err := retryAsk(hc, "PUT a", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	hc.killNode(0)
	if got, err := retryAsk(hc, "GET", 3*tm.DeadTime()+60*time.Second); err != nil || got != "a" {
		t.Fatalf("after kill -9: %q %v", got, err)
	}
	failover := time.Since(killed)
	hc.waitOnline(1, "echo", hc.names[1], 30*time.Second)
	// The start: rg_online start to complete on the new owner.
	var recs []ha.Record
	out, err := hc.cli(1, "events", "--json", "-n", "0")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r ha.Record
		if json.Unmarshal([]byte(l), &r) == nil {
			recs = append(recs, r)
		}
	}
	var startAt, doneAt int64
	for _, r := range recs {
		if r.Event == ha.EvRGOnline && r.Node == hc.names[1] {
			switch r.Phase {
			case ha.PhaseStart:
				startAt = r.At
			case ha.PhaseComplete:
				doneAt = r.At
			}
		}
	}
	start := time.Duration(doneAt-startAt) * time.Millisecond
	if startAt == 0 || doneAt < startAt {
		t.Fatalf("no rg_online of %s in the history:\n%s", hc.names[1], out)
	}
	base := powerHADetect + start
	testutil.BenchResult{Name: fmt.Sprintf("HA: kill -9 of the owner to the service answering on the next node (o2go fast timing, dead time %s)", tm.DeadTime()),
		O2go: fmt.Sprintf("%.1f s (start %.1f s)", failover.Seconds(), start.Seconds()),
		Baseline: fmt.Sprintf("PowerHA 20 s detection + start = %.1f s; Oracle CSS 30 s + start = %.1f s; Pacemaker ~7 s + fencing + start >= %.1f s",
			base.Seconds(), (cssMisscount + start).Seconds(), (pacemakerDetect + start).Seconds()),
		Ratio: failover.Seconds() / base.Seconds(), Goal: "<= 1.0 (vs PowerHA)", Met: failover <= base}.Report(t)
}
