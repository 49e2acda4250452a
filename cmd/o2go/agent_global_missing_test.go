package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/node"
)

// TestRealGlobalMissingDevicesNoSplitBrain is issue 5's audit with real
// agents: three global heartbeat devices; node 0 finds only hb0, nodes 1
// and 2 only hb1 and hb2 (each agent's --scan folder holds links to the
// devices it may see). Before the fix node 0 took the majority over the one
// device it found and went on alone in [0] beside [1 2].
//
// What the minority node does: it refuses to start — it stays up, writes
// no heartbeat and joins no view, says which devices are missing, and
// keeps looking for them (the issue asks for that retry, so it cannot just
// exit). It does not fence, because it never held a lease: it never wrote
// anything a survivor would have to recover. The majority side (two of
// three devices) goes on. At no poll are there two views that both
// continue. When a second device appears in node 0's folder, node 0 finds
// it by UUID, heartbeats on two of three and joins [0 1 2].
func TestRealGlobalMissingDevicesNoSplitBrain(t *testing.T) {
	pc := newProcCluster(t, 3, loopbackIPs(3))
	uuids := pc.makeGlobal(3)
	devices := pc.global
	sees := map[int][]int{0: {0}, 1: {1, 2}, 2: {1, 2}}
	views := map[int]string{}
	for i := 0; i < 3; i++ {
		views[i] = filepath.Join(pc.dir, fmt.Sprintf("sees%d", i))
		if err := os.Mkdir(views[i], 0o755); err != nil {
			t.Fatal(err)
		}
		for _, d := range sees[i] {
			if err := os.Symlink(devices[d], filepath.Join(views[i], filepath.Base(devices[d]))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 3; i++ {
		// pc.start scans the folder of pc.global[0]: give each agent its own.
		pc.global = []string{filepath.Join(views[i], "any")}
		pc.start(i)
	}
	pc.global = devices

	pc.waitView([]int{1, 2}, nodes(1, 2), 30*time.Second)
	slot0 := hbSlot(t, devices[0], 0)
	hold := time.Now().Add(3 * testDeadTime())
	for time.Now().Before(hold) {
		select {
		case <-pc.agents[0].done:
			t.Fatalf("node 0 exited (status %d): it should wait for the missing devices", pc.agents[0].exit)
		default:
		}
		var st0 node.Status
		if err := pc.call(0, "status", &st0); err != nil {
			t.Fatalf("node 0 status: %v", err)
		}
		if st0.Epoch != 0 || len(st0.Members) != 0 {
			t.Fatalf("node 0, with one of three devices, is in view %v (epoch %d) while nodes 1 and 2 are in %v",
				st0.Members, st0.Epoch, pc.view(1))
		}
		for _, i := range []int{1, 2} {
			if v := pc.view(i); fmt.Sprint(v) != fmt.Sprint(nodes(1, 2)) {
				t.Fatalf("agent %d left view [1 2]: %v", i, v)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := hbSlot(t, devices[0], 0); !bytes.Equal(got, slot0) {
		t.Errorf("node 0 wrote its heartbeat on hb0 although it has one of three devices")
	}

	// Node 0 says why, in its log and in o2go cluster status.
	log0 := pc.agents[0].logText()
	for _, want := range []string{"found 1 of the 3 heartbeat devices and needs 2", uuids[1], uuids[2], "not found"} {
		if !strings.Contains(log0, want) {
			t.Errorf("node 0's log lacks %q:\n%s", want, log0)
		}
	}
	common := []string{"cluster", "--config", pc.conf, "--sysconfig", pc.sysconf, "status", "--node", pc.names[0], "--socket", pc.agents[0].socket}
	out, err := runCLI(common...)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"1 of 3 devices in use; this node needs 2", "MISSING " + uuids[1] + ": not found", "MISSING " + uuids[2] + ": not found",
		"idle: too few devices", "found 1 of the 3 global heartbeat devices and needs 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(append(common, "--json")...)
	if err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var rep struct {
		Status node.Status `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	st := rep.Status
	if st.RegionsConfigured != 3 || st.RegionsNeeded != 2 || len(st.MissingRegions) != 2 ||
		st.MissingRegions[0].UUID != uuids[1] || st.MissingRegions[1].UUID != uuids[2] ||
		!strings.Contains(st.MissingRegions[0].Reason, "not found") || len(st.Regions) != 1 || !st.Regions[0].Idle {
		t.Errorf("status --json: configured %d, needed %d, missing %+v, regions %+v", st.RegionsConfigured, st.RegionsNeeded, st.MissingRegions, st.Regions)
	}

	// hb1 appears for node 0: it finds it and joins.
	if err := os.Symlink(devices[1], filepath.Join(views[0], filepath.Base(devices[1]))); err != nil {
		t.Fatal(err)
	}
	pc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 30*time.Second)
	var after node.Status
	if err := pc.call(0, "status", &after); err != nil {
		t.Fatal(err)
	}
	if len(after.MissingRegions) != 1 || after.MissingRegions[0].UUID != uuids[2] || len(after.Regions) != 2 || after.Regions[0].Idle || after.Regions[1].Idle {
		t.Errorf("after hb1 appeared: missing %+v, regions %+v", after.MissingRegions, after.Regions)
	}
	if !strings.Contains(pc.agents[0].logText(), "global heartbeat device "+uuids[1]+" found") {
		t.Errorf("node 0 does not log that it found hb1:\n%s", pc.agents[0].logText())
	}
	pc.sameOrder([]int{0, 1, 2})
}

// hbSlot reads node n's heartbeat sector on a heartbeat device.
func hbSlot(t *testing.T, dev string, n int) []byte {
	t.Helper()
	info, err := node.ProbeVolume(dev)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, info.Geometry.SectorSize)
	if _, err := f.ReadAt(b, info.Geometry.SlotOffset(base.NodeID(n))); err != nil {
		t.Fatal(err)
	}
	return b
}
