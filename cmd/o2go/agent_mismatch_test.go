package main

// Issue 5: "Every node must run the same values; a node whose values differ
// is refused with a message that says which." Real agents as processes on
// 127.0.0.x sharing one image, one of them with a sysconfig file that
// differs in one O2CB timeout.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/node"
)

// mismatchIdle is the cluster's O2CB_IDLE_TIMEOUT_MS in these tests.
const mismatchIdle = 12 * time.Second

// TestMismatchedIdleTimeoutNeverJoins: the odd node is the highest number,
// so it is the one that connects (o2net's rule) and the others refuse it.
func TestMismatchedIdleTimeoutNeverJoins(t *testing.T) {
	testMismatchedTimeout(t, config.VarIdleTimeout, "15000", 2)
}

// TestMismatchedHeartbeatThresholdNeverJoins: the odd node is number 0, so
// the others connect to it and it refuses them.
func TestMismatchedHeartbeatThresholdNeverJoins(t *testing.T) {
	testMismatchedTimeout(t, config.VarHeartbeatThreshold, "13", 0)
}

// testMismatchedTimeout starts three agents; agent odd runs with variable
// set to value, the others with the cluster's value. The others form a view
// without it and keep it; the odd node never joins. `o2go cluster status`
// on every node names the variable, both values and the odd node (by name
// and number), and `o2go cluster doctor` fails its same-configuration check
// and says what to do.
//
// The odd node heartbeats but connects to no one, so after the idle timeout
// O2CB's quorum rule ends it (the others evict it, or it fences itself);
// the checks run before, so the cluster's idle timeout is longer than the
// other tests' to leave them time on a loaded machine.
func testMismatchedTimeout(t *testing.T, variable, value string, odd int) {
	tm := config.Timeouts{HeartbeatThreshold: testThreshold, HeartbeatInterval: testInterval,
		IdleTimeout: mismatchIdle, KeepaliveDelay: time.Second, ReconnectDelay: 2 * time.Second,
		KillAckTimeout: 3 * testInterval}
	pc := newProcClusterWith(t, 3, loopbackIPs(3), tm)
	good, err := os.ReadFile(pc.sysconf)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^` + variable + `=(.*)$`)
	m := line.FindSubmatch(good)
	if m == nil {
		t.Fatalf("the test sysconfig has no %s:\n%s", variable, good)
	}
	goodValue := string(m[1])
	if goodValue == value {
		t.Fatalf("%s=%s is the cluster's value already", variable, value)
	}
	oddSys := filepath.Join(pc.dir, "o2cb.odd")
	if err := os.WriteFile(oddSys, line.ReplaceAll(good, []byte(variable+"="+value)), 0o644); err != nil {
		t.Fatal(err)
	}
	sysconfOf := func(i int) string {
		if i == odd {
			return oddSys
		}
		return pc.sysconf
	}
	var others []int
	for i := 0; i < 3; i++ {
		if i != odd {
			others = append(others, i)
			pc.start(i)
		}
	}
	pc.waitView(others, nodes(others...), 30*time.Second)
	keep := pc.sysconf
	pc.sysconf = oddSys
	oddAgent := pc.start(odd)
	pc.sysconf = keep

	oddName := pc.names[odd]
	// What every node's status must say, in the odd node's row on the
	// others and in the others' rows on the odd node: the variable, each
	// node's value, and the odd node by name and number.
	theirs := fmt.Sprintf("node '%s' (number %d) has %s=%s", oddName, odd, variable, value)
	oursFrom := func(i int) string {
		return fmt.Sprintf("node '%s' (number %d) has %s=%s", pc.names[i], i, variable, goodValue)
	}
	status := func(i int) (string, error) {
		return runCLI("cluster", "--config", pc.conf, "--sysconfig", sysconfOf(i), "status",
			"--node", pc.names[i], "--socket", pc.agents[i].socket)
	}
	said := map[int]bool{}
	var last map[int]string
	deadline := time.Now().Add(40 * time.Second)
	for len(said) < 3 && time.Now().Before(deadline) {
		last = map[int]string{}
		for i := 0; i < 3; i++ {
			if said[i] {
				continue
			}
			out, err := status(i)
			last[i] = fmt.Sprintf("%v\n%s", err, out)
			if err != nil {
				continue
			}
			if i == odd {
				// Each good node's row says why it refused this node.
				ok := true
				for _, o := range others {
					row := nodeRowOf(out, pc.names[o])
					ok = ok && strings.Contains(row, theirs) && strings.Contains(row, oursFrom(o))
				}
				if ok {
					said[i] = true
					t.Logf("status on the odd node %d:\n%s", i, out)
				}
			} else if row := nodeRowOf(out, oddName); strings.Contains(row, theirs) && strings.Contains(row, oursFrom(i)) && strings.Contains(row, "no: ") {
				said[i] = true
				t.Logf("status on node %d, the odd node's row:\n%s", i, row)
			}
		}
		if len(said) < 3 {
			select {
			case <-oddAgent.done:
				t.Fatalf("the odd agent exited (status %d) before every node's status said why it is refused:\n%v", oddAgent.exit, last)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	for i := 0; i < 3; i++ {
		if !said[i] {
			t.Errorf("status on node %d never said that %s differs (want %q and %q):\n%s", i, variable, theirs, oursFrom(others[0]), last[i])
		}
	}

	// Meanwhile the others keep their view, and the odd node's holds no
	// one else.
	for _, i := range others {
		if v := pc.view(i); fmt.Sprint(v) != fmt.Sprint(nodes(others...)) {
			t.Errorf("agent %d's view is %v, want %v", i, v, nodes(others...))
		}
	}
	if v := pc.view(odd); len(v) > 1 {
		t.Errorf("the odd node's view is %v", v)
	}

	// Doctor on a good node and on the odd one: the same-configuration
	// check fails, naming the other node and what to do.
	fix := "-> make cluster.conf and the O2CB_*/O2GO_* timing of the sysconfig file identical on every node"
	for _, i := range []int{others[0], odd} {
		peer := oddName
		if i == odd {
			peer = pc.names[others[0]]
		}
		out, err := runCLI("cluster", "--config", pc.conf, "--sysconfig", sysconfOf(i), "doctor",
			"--node", pc.names[i], "--socket", pc.agents[i].socket)
		if err == nil || !strings.Contains(out, "[FAIL] same configuration: node "+peer+": ") || !strings.Contains(out, theirs) || !strings.Contains(out, fix) {
			t.Errorf("doctor on node %d does not fail the same-configuration check for node %s with %q and %q: %v\n%s", i, peer, theirs, fix, err, out)
		}
	}

	// Both sides log the refusal with the variable and the odd node's name.
	for _, i := range others {
		log := pc.agents[i].logText()
		if !strings.Contains(log, "refused connection from ") || !strings.Contains(log, theirs) {
			t.Errorf("agent %d does not log its refusal of %s naming %s:\n%s", i, oddName, variable, log)
		}
	}
	if log := oddAgent.logText(); !strings.Contains(log, theirs) {
		t.Errorf("the odd agent does not log why it is refused:\n%s", log)
	}

	// O2CB's quorum rule ends the odd node: it heartbeats but reaches no
	// majority, and after the idle timeout the others evict it (or it
	// fences itself). It never joined, and the others go on.
	select {
	case <-oddAgent.done:
		if oddAgent.exit != node.ExitFenced {
			t.Errorf("the odd agent exited with status %d, want %d (fenced)", oddAgent.exit, node.ExitFenced)
		}
	case <-time.After(mismatchIdle + 4*testDeadTime() + 10*time.Second):
		t.Errorf("the odd agent neither joined nor fenced")
	}
	time.Sleep(testDeadTime())
	for _, i := range others {
		select {
		case <-pc.agents[i].done:
			t.Errorf("agent %d stopped (status %d)", i, pc.agents[i].exit)
		default:
		}
		if v := pc.view(i); fmt.Sprint(v) != fmt.Sprint(nodes(others...)) {
			t.Errorf("agent %d's view is %v, want %v", i, v, nodes(others...))
		}
		for _, e := range pc.events(i) {
			if e.Node == base.NodeID(odd) && e.Kind == "up" {
				t.Errorf("agent %d delivered node %d up: %+v", i, odd, e)
			}
		}
	}
}

// nodeRowOf returns the line of the status node table for node name.
func nodeRowOf(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.TrimSuffix(f[0], "*") == name {
			return l
		}
	}
	return ""
}
