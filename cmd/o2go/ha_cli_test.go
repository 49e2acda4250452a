package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"o2go/internal/ha"
	"o2go/internal/testutil"
)

// startHAAgent runs agent i of pc as `o2go ha agent` (agent, DLM and HA).
func startHAAgent(pc *procCluster, i int) *procAgent {
	pc.t.Helper()
	a := &procAgent{i: i, done: make(chan struct{}), socket: filepath.Join(pc.dir, pc.names[i]+".sock")}
	a.cmd = exec.Command(pc.bin, "ha", "agent", "--config", pc.conf, "--sysconfig", pc.sysconf, "--node", pc.names[i],
		"--socket", a.socket, "--heartbeat", pc.img, "--ha-dir", filepath.Join(pc.dir, "ha-"+pc.names[i]))
	a.cmd.Stdout, a.cmd.Stderr = a, a
	if err := a.cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	pc.agents[i] = a
	go func() {
		err := a.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			a.exit = ee.ExitCode()
		}
		close(a.done)
	}()
	return a
}

// TestHACommands drives the operator's commands of issue 8 against two HA
// agents on the loopback network: status (table and --json), add refusing
// bad configurations whole (acceptance 3: unknown node, duplicate address,
// dependency cycle), verify (OK, pure --json, and a missing script found
// on every node), emulate (nothing is done), move --sticky, stop, remove,
// snapshot save and restore, stop and start, events --json and show.
func TestHACommands(t *testing.T) {
	testutil.Long(t)
	pc := newProcCluster(t, 2, loopbackIPs(2))
	for i := 0; i < 2; i++ {
		startHAAgent(pc, i)
	}
	pc.waitView([]int{0, 1}, nodes(0, 1), 30*time.Second)
	n0, n1 := pc.names[0], pc.names[1]
	sock := []string{pc.agents[0].socket, pc.agents[1].socket}
	cli := func(i int, args ...string) (string, string, int) {
		t.Helper()
		return runO2go(t, "", append([]string{"ha", "--socket", sock[i]}, args...)...)
	}
	status := func(i int) ha.Status {
		t.Helper()
		out, errOut, code := cli(i, "status", "--json")
		var st ha.Status
		if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
			t.Fatalf("ha status --json: code %d, %v\n%s%s", code, err, out, errOut)
		}
		return st
	}
	waitGroup := func(group, state, node string) ha.GroupStatus {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := status(1)
			for _, g := range st.Groups {
				if g.Name == group && g.State == state && strings.Join(g.Nodes, ",") == node {
					return g
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("group %s not %s on %q: %+v", group, state, node, st.Groups)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The coordinator is elected once both agents run HA.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, code := cli(0, "status"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ha status never answered")
		}
		time.Sleep(200 * time.Millisecond)
	}

	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(pc.dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pre := write("pre.sh", "#!/bin/sh\nexit 0\n", 0o755)

	// Acceptance 3: what is wrong is listed, nothing is applied. (A
	// dependency cycle is looked for once the groups themselves are valid.)
	bad := write("bad.json", fmt.Sprintf(`{"groups":[
		{"name":"a","nodes":[%q,"nosuchnode"],"resources":[{"name":"ip1","type":"ip","address":"10.250.0.9/24","interface":"lo"}]},
		{"name":"b","nodes":[%q,%q],"resources":[{"name":"ip2","type":"ip","address":"10.250.0.9/24","interface":"lo"}]}]}`,
		n0, n0, n1), 0o644)
	_, errOut, code := cli(0, "add", "-f", bad)
	for _, want := range []string{`node "nosuchnode" is not a node of the cluster`, "address 10.250.0.9 is already the address of resource ip1"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("add of a bad configuration: code %d, no %q in:\n%s", code, want, errOut)
		}
	}
	cycle := write("cycle.json", fmt.Sprintf(`{"groups":[{"name":"a","nodes":[%q],"parents":["b"]},{"name":"b","nodes":[%q],"parents":["a"]}]}`,
		n0, n1), 0o644)
	if _, errOut, code := cli(1, "add", "-f", cycle); code != 1 || !strings.Contains(errOut, "dependency cycle: a -> b -> a: remove one of these dependencies") {
		t.Errorf("add of a dependency cycle: code %d\n%s", code, errOut)
	}
	if st := status(1); st.ConfigVersion != 0 || len(st.Groups) != 0 {
		t.Fatalf("a refused addition changed the configuration: version %d, groups %+v", st.ConfigVersion, st.Groups)
	}

	good := write("web.json", fmt.Sprintf(`{"groups":[{"name":"web","nodes":[%q,%q],"startup":"home","fallback":"never",
		"resources":[{"name":"sleeper","type":"process","command":["/bin/sleep","1000"]}]}],
		"events":[{"event":"rg_online","pre":%q}]}`, n0, n1, pre), 0o644)
	if out, errOut, code := cli(1, "add", "-f", good); code != 0 || !strings.Contains(out, "committed on every node") {
		t.Fatalf("add: code %d\n%s%s", code, out, errOut)
	}
	waitGroup("web", "online", n0)
	out, _, code := cli(0, "status")
	if code != 0 || !strings.Contains(out, "GROUP  STATE   NODE") || !strings.Contains(out, "web    online  "+n0) ||
		!strings.Contains(out, "web on "+n0+": online sleeper=running") {
		t.Errorf("ha status table:\n%s", out)
	}

	// verify: OK; --json is JSON only; a script missing on the nodes is
	// found on each, with what to do.
	if out, errOut, code := cli(1, "verify"); code != 0 || !strings.Contains(out, "verify: OK") {
		t.Errorf("verify: code %d\n%s%s", code, out, errOut)
	}
	out, _, code = cli(1, "verify", "--json")
	var vr ha.VerifyReport
	if err := json.Unmarshal([]byte(out), &vr); code != 0 || err != nil || len(vr.Nodes) != 2 {
		t.Errorf("verify --json: code %d, %v\n%s", code, err, out)
	}
	if err := os.Remove(pre); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = cli(1, "verify")
	if code != 1 || strings.Count(out, "pre.sh does not exist here: install it on every node") != 2 {
		t.Errorf("verify with the pre-event script gone: code %d\n%s%s", code, out, errOut)
	}
	write("pre.sh", "#!/bin/sh\nexit 0\n", 0o755)

	// emulate: what node_down of the owner would do, and nothing happens.
	out, errOut, code = cli(0, "emulate", "node_down", n0)
	if code != 0 || !strings.Contains(out, "(nothing is done)") || !strings.Contains(out, "group web: "+n0+" -> "+n1) {
		t.Errorf("emulate node_down: code %d\n%s%s", code, out, errOut)
	}
	time.Sleep(time.Second)
	waitGroup("web", "online", n0)

	// A sticky move, saved in a snapshot; then stop, remove, and restore:
	// the group comes back where the snapshot had it.
	if out, errOut, code := cli(1, "move", "web", n1, "--sticky", "--wait", "30s"); code != 0 {
		t.Fatalf("move --sticky: code %d\n%s%s", code, out, errOut)
	}
	snap := filepath.Join(pc.dir, "snap.json")
	if out, errOut, code := cli(0, "snapshot", "save", snap); code != 0 {
		t.Fatalf("snapshot save: code %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := cli(0, "stop", "web", "--wait", "30s"); code != 0 || !strings.Contains(out, "group web is offline") {
		t.Fatalf("stop: code %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := cli(0, "remove", "group", "web"); code != 0 {
		t.Fatalf("remove group: code %d\n%s%s", code, out, errOut)
	}
	if st := status(0); len(st.Groups) != 0 {
		t.Fatalf("the removed group is still there: %+v", st.Groups)
	}
	if out, errOut, code := cli(1, "snapshot", "restore", snap); code != 0 {
		t.Fatalf("snapshot restore: code %d\n%s%s", code, out, errOut)
	}
	if g := waitGroup("web", "online", n1); g.Sticky != n1 {
		t.Errorf("after the restore the group is not sticky on %s: %+v", n1, g)
	}
	// stop keeps it offline; start brings it back where its policies say.
	if out, errOut, code := cli(1, "stop", "web", "--wait", "30s"); code != 0 {
		t.Fatalf("stop: code %d\n%s%s", code, out, errOut)
	}
	if g := waitGroup("web", "offline", ""); !g.Offline {
		t.Errorf("a stopped group is not kept offline: %+v", g)
	}
	if out, errOut, code := cli(0, "start", "web", "--wait", "30s"); code != 0 || !strings.Contains(out, "group web is online on "+n1) {
		t.Fatalf("start: code %d\n%s%s", code, out, errOut)
	}

	// show prints what apply takes; events --json is one record per line,
	// in the history's order, with the operator's requests in it.
	out, _, code = cli(1, "show")
	if _, err := ha.ParseConfig([]byte(out)); code != 0 || err != nil {
		t.Errorf("show does not print a configuration apply takes: %v\n%s", err, out)
	}
	out, _, code = cli(1, "events", "--json", "-n", "0")
	var last uint64
	var seen []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r ha.Record
		if err := json.Unmarshal([]byte(l), &r); code != 0 || err != nil {
			t.Fatalf("events --json line %q: %v", l, err)
		}
		if r.Seq <= last {
			t.Errorf("events out of order: #%d after #%d", r.Seq, last)
		}
		last = r.Seq
		seen = append(seen, r.Event+" "+r.Phase)
	}
	all := strings.Join(seen, ", ")
	for _, want := range []string{"rg_move start", "rg_offline complete", "reconfig complete"} {
		if !strings.Contains(all, want) {
			t.Errorf("events lack %q: %s", want, all)
		}
	}
}
