package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/dlm"
	"o2go/internal/node"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
	"o2go/internal/transport"
)

// dlmCluster is agents of this process on an in-memory network sharing an
// image, each running the DLM with its control methods on a socket of its
// own (the commands under test reach it with --socket).
type dlmCluster struct {
	agents   []*node.Agent
	dlms     []*node.DLM
	sockets  []string
	controls []*node.ControlServer
}

func newDLMCluster(t *testing.T, n int) *dlmCluster {
	t.Helper()
	realtools.Require(t)
	img := realtools.MkfsImage(t, 32<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M")
	c := &config.ClusterConf{}
	cl, err := c.AddCluster("locktest")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := cl.AddNode(config.NodeSpec{Name: fmt.Sprintf("l%d", i), IP: fmt.Sprintf("127.0.0.%d", i+1), Port: 7777, Number: i}, nil); err != nil {
			t.Fatal(err)
		}
	}
	st := config.DefaultSettings()
	st.Timeouts = config.Timeouts{HeartbeatThreshold: testThreshold, HeartbeatInterval: testInterval,
		IdleTimeout: testIdle, KeepaliveDelay: time.Second, ReconnectDelay: 2 * time.Second, KillAckTimeout: 3 * testInterval}
	st.FenceMethod = config.FenceExit
	mem := transport.NewMem()
	dir := t.TempDir()
	dc := &dlmCluster{}
	ctx, cancel := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	t.Cleanup(func() { cancel(); runs.Wait() })
	for i := 0; i < n; i++ {
		a, err := node.New(node.Config{Cluster: cl, Node: fmt.Sprintf("l%d", i), Settings: st,
			Secret: []byte("the lock test cluster's secret.."), Socket: "-",
			Log: slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Network: func(id transport.Identity, log transport.Logger) (transport.Endpoint, error) {
				return mem.Endpoint(id, log), nil
			},
			Fence: func(config.FenceMethod, string) {}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := node.StartDLM(a)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := node.ListenControl(filepath.Join(dir, fmt.Sprintf("l%d.sock", i)), t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		d.RegisterControl(cs)
		runs.Add(1)
		go func() { defer runs.Done(); _ = a.Run(ctx) }()
		dc.agents = append(dc.agents, a)
		dc.dlms = append(dc.dlms, d)
		dc.sockets = append(dc.sockets, cs.Path())
		dc.controls = append(dc.controls, cs)
	}
	var wg sync.WaitGroup
	for _, a := range dc.agents {
		wg.Add(1)
		go func(a *node.Agent) {
			defer wg.Done()
			if _, err := a.StartHeartbeat(img); err != nil {
				t.Errorf("heartbeat: %v", err)
			}
		}(a)
	}
	wg.Wait()
	var all base.NodeMap
	for i := 0; i < n; i++ {
		all.Add(base.NodeID(i))
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range dc.agents {
		for a.View().Members != all {
			if time.Now().After(deadline) {
				t.Fatalf("no cluster view of %v: %v", all, a.View())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return dc
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestLockCommand(t *testing.T) {
	dc := newDLMCluster(t, 2)
	s0, s1 := dc.sockets[0], dc.sockets[1]

	out, errOut, code := runO2go(t, "", "lock", "--socket", s0, "app/X", "--", "sh", "-c", "echo held")
	if code != 0 || out != "held\n" {
		t.Fatalf("lock -- echo: code %d out %q err %q", code, out, errOut)
	}
	if _, _, code = runO2go(t, "", "lock", "--socket", s1, "app/X", "--", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("the command's exit status: got %d, want 3", code)
	}

	// While node 0 holds EX, --try fails at once with 75 and --timeout
	// gives up with 75.
	ctx := context.Background()
	if err := dc.dlms[0].Join(ctx, "app", false); err != nil {
		t.Fatal(err)
	}
	held, _, err := dc.dlms[0].Lock(ctx, "app", "X", dlm.ModeEX, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, errOut, code = runO2go(t, "", "lock", "--socket", s1, "--try", "--mode", "PR", "app/X", "--", "true")
	if code != exitTempFail || !strings.Contains(errOut, "busy") {
		t.Fatalf("--try while held: code %d err %q", code, errOut)
	}
	if d := time.Since(start); d > 5*time.Second { // it would wait as long as the holder holds
		t.Fatalf("--try took %v", d)
	}
	_, errOut, code = runO2go(t, "", "lock", "--socket", s1, "--timeout", "300ms", "app/X", "--", "true")
	if code != exitTempFail || !strings.Contains(errOut, "not granted within") {
		t.Fatalf("--timeout while held: code %d err %q", code, errOut)
	}
	// The debug views show the holder and the queue.
	out, errOut, code = runO2go(t, "", "dlm", "locks", "--socket", s0, "app", "X")
	if code != 0 || !strings.Contains(out, "Lockres: X") {
		t.Fatalf("dlm locks: code %d\n%s%s", code, out, errOut)
	}
	// Every domain, and DOMAIN/NAME as o2go lock takes it; JSON names the
	// domain of each resource.
	out, errOut, code = runO2go(t, "", "dlm", "locks", "--socket", s0)
	if code != 0 || !strings.Contains(out, "Domain: app\nLockres: X") || !strings.Contains(out, "Local lock") {
		t.Fatalf("dlm locks (every domain): code %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runO2go(t, "", "dlm", "locks", "--socket", s0, "--json", "app/X")
	var rs []dlm.ResourceState
	if err := json.Unmarshal([]byte(out), &rs); code != 0 || err != nil || len(rs) != 1 || rs[0].Domain != "app" || rs[0].Name != "X" {
		t.Fatalf("dlm locks --json app/X: code %d err %v\n%s%s", code, err, out, errOut)
	}
	if _, errOut, code = runO2go(t, "", "dlm", "locks", "--socket", s0, "app/nothing"); code != 1 || !strings.Contains(errOut, `resource "nothing" is not known`) {
		t.Fatalf("dlm locks of an unknown resource: code %d %s", code, errOut)
	}
	// A bare NAME, as debugfs.ocfs2's "dlm_locks NAME": looked up in every
	// domain; a bare DOMAIN still shows the domain.
	out, errOut, code = runO2go(t, "", "dlm", "locks", "--socket", s0, "X")
	if code != 0 || !strings.Contains(out, "Domain: app\nLockres: X") || !strings.Contains(out, ": EX") {
		t.Fatalf("dlm locks X: code %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runO2go(t, "", "dlm", "locks", "--socket", s0, "app")
	if code != 0 || !strings.Contains(out, "Lockres: X") {
		t.Fatalf("dlm locks app: code %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code = runO2go(t, "", "dlm", "locks", "--socket", s0, "nothing"); code != 1 || !strings.Contains(errOut, `resource "nothing" is not known on this node in any of its domains (app)`) {
		t.Fatalf("dlm locks of a bare unknown name: code %d %s", code, errOut)
	}
	if _, errOut, code = runO2go(t, "", "lock", "--socket", s1, "--timeout", "-1s", "app/X", "--", "true"); code != 1 || !strings.Contains(errOut, "--timeout -1s") {
		t.Fatalf("a negative --timeout: code %d err %q", code, errOut)
	}
	if err := held.Unlock(nil); err != nil {
		t.Fatal(err)
	}

	// The value block: written by one node on release, read by the other.
	if _, errOut, code = runO2go(t, "", "lock", "--socket", s0, "--lvb-set", "generation 42", "app/V"); code != 0 {
		t.Fatalf("--lvb-set: code %d err %q", code, errOut)
	}
	out, errOut, code = runO2go(t, "", "lock", "--socket", s1, "--mode", "PR", "--lvb-get", "app/V")
	if code != 0 || out != "generation 42\n" {
		t.Fatalf("--lvb-get: code %d out %q err %q", code, out, errOut)
	}

	out, _, code = runO2go(t, "", "dlm", "state", "--socket", s1)
	if code != 0 || !strings.Contains(out, "Domain: app") || !strings.Contains(out, "State: JOINED") {
		t.Fatalf("dlm state: code %d\n%s", code, out)
	}
	out, _, code = runO2go(t, "", "dlm", "state", "--socket", s1, "--json", "app")
	var st []dlm.DomainState
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st) != 1 || len(st[0].DomainMap) != 2 {
		t.Fatalf("dlm state --json: code %d err %v\n%s", code, err, out)
	}
	if _, errOut, code = runO2go(t, "", "lock", "--socket", s0, "app/X"); code != 1 || !strings.Contains(errOut, "nothing to do") {
		t.Fatalf("lock without command: code %d err %q", code, errOut)
	}
}

// TestLockReleasedWhenTheCommandDies: the lock belongs to the o2go lock
// process's connection; kill -9 of that process releases it.
func TestLockReleasedWhenTheCommandDies(t *testing.T) {
	dc := newDLMCluster(t, 2)
	bin := o2goBinary(t)
	c := exec.Command(bin, "lock", "--socket", dc.sockets[0], "app/Y", "--", "sh", "-c", "echo go; sleep 60")
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "go\n" {
		t.Fatalf("the command did not start: %q %v", line, err)
	}
	if _, _, code := runO2go(t, "", "lock", "--socket", dc.sockets[1], "--try", "app/Y", "--", "true"); code != exitTempFail {
		t.Fatalf("--try while the other command runs: code %d", code)
	}
	_ = c.Process.Kill()
	_ = c.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, code := runO2go(t, "", "lock", "--socket", dc.sockets[1], "--try", "app/Y", "--", "true")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lock of the killed command was not released (code %d)", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLockCommandKilledWhenTheAgentGoes: when the agent that holds the lock
// goes away under a running command (here its control socket closes, as
// when the agent is killed), the lock protects nothing any more: o2go lock
// kills the command at once and fails.
func TestLockCommandKilledWhenTheAgentGoes(t *testing.T) {
	dc := newDLMCluster(t, 2)
	bin := o2goBinary(t)
	mark := filepath.Join(t.TempDir(), "ran-on")
	c := exec.Command(bin, "lock", "--socket", dc.sockets[0], "app/K", "--", "sh", "-c", "echo go; sleep 3; echo unprotected > "+mark)
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// A file, not a pipe: the killed shell's sleep keeps its copy open.
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	c.Stderr = stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "go\n" {
		t.Fatalf("the command did not start: %q %v", line, err)
	}
	gone := time.Now()
	go dc.controls[0].Close() // as when the agent is killed: its end of the connection goes
	err = c.Wait()
	took := time.Since(gone)
	msg, _ := os.ReadFile(stderr.Name())
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(msg), "lost the lock") {
		t.Fatalf("o2go lock: %v, stderr %q", err, msg)
	}
	if took > time.Second {
		t.Errorf("the command was stopped %v after the agent went away", took)
	}
	time.Sleep(3500*time.Millisecond - took)
	if _, err := os.Stat(mark); err == nil {
		t.Errorf("the command ran on after the agent went away")
	}
}

// dlmAgentsRun reports whether the agents of pc serve the DLM's control
// methods; under CI their absence is a failure.
func dlmAgentsRun(t *testing.T, pc *procCluster, i int) {
	t.Helper()
	var methods []string
	if err := pc.call(i, "methods", &methods); err != nil {
		t.Fatal(err)
	}
	for _, m := range methods {
		if m == "dlm.lock" {
			return
		}
	}
	testutil.Unavailable(t, "the o2go agent does not run the DLM yet (cmd/o2go/agent.go must call node.StartDLM)")
}

// TestLockContentionAcrossAgentProcesses: real agents on one machine; from
// each node, o2go lock in random modes on one resource, every grant logged
// by the command it runs; a grant overlapping one it conflicts with is a
// violation. The resource's master is killed -9 in the middle; the others
// carry on. Then --try fails fast while another node holds EX.
func TestLockContentionAcrossAgentProcesses(t *testing.T) {
	testutil.Long(t)
	pc := newProcCluster(t, 3, loopbackIPs(3))
	for i := 0; i < 3; i++ {
		pc.start(i)
	}
	pc.waitView([]int{0, 1, 2}, []base.NodeID{0, 1, 2}, 30*time.Second)
	dlmAgentsRun(t, pc, 0)
	bin := pc.bin
	logPath := filepath.Join(pc.dir, "grants.log")
	lockOnce := func(i int, mode string) error {
		script := fmt.Sprintf(`echo "begin %d %s $(date +%%s%%N)" >> %s; sleep 0.0$((RANDOM %% 5)); echo "end %d %s $(date +%%s%%N)" >> %s`,
			i, mode, logPath, i, mode, logPath)
		c := exec.Command(bin, "lock", "--socket", pc.agents[i].socket, "--mode", mode, "--timeout", "20s", "app/R", "--", "bash", "-c", script)
		out, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("node %d %s: %v: %s", i, mode, err, out)
		}
		return nil
	}
	// Which node masters R?
	if err := lockOnce(0, "CR"); err != nil {
		t.Fatal(err)
	}
	var rs []dlm.ResourceState
	cl, err := node.DialControl(pc.agents[0].socket)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Call("dlm.locks", node.LocksParams{Domain: "app", Name: "R"}, &rs); err != nil || len(rs) != 1 {
		t.Fatalf("dlm.locks: %v %v", err, rs)
	}
	cl.Close()
	master := int(rs[0].Master)
	modes := []string{"CR", "CW", "PR", "PW", "EX"}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	grants := map[int]int{}
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := base.NewRand(uint64(i + 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := lockOnce(i, modes[rng.Intn(len(modes))]); err != nil {
					if i == master {
						return // killed
					}
					t.Errorf("%v", err)
					return
				}
				mu.Lock()
				grants[i]++
				mu.Unlock()
			}
		}(i)
	}
	time.Sleep(4 * time.Second)
	_ = pc.agents[master].cmd.Process.Kill()
	markKill(t, logPath, master)
	mu.Lock()
	before := map[int]int{}
	for k, v := range grants {
		before[k] = v
	}
	mu.Unlock()
	time.Sleep(testDeadTime() + testIdle + 6*time.Second)
	close(stop)
	wg.Wait()
	for i := 0; i < 3; i++ {
		if i != master && grants[i] <= before[i] {
			t.Errorf("node %d: no grant after the master died (%d before)", i, before[i])
		}
	}
	checkGrantLog(t, logPath, master)

	// --try fails fast while another node holds EX.
	var survivors []int
	for i := 0; i < 3; i++ {
		if i != master {
			survivors = append(survivors, i)
		}
	}
	holder := exec.Command(bin, "lock", "--socket", pc.agents[survivors[0]].socket, "app/T", "--", "sh", "-c", "echo go; sleep 30")
	hout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()
	if line, _ := bufio.NewReader(hout).ReadString('\n'); line != "go\n" {
		t.Fatalf("holder did not start: %q", line)
	}
	start := time.Now()
	c := exec.Command(bin, "lock", "--socket", pc.agents[survivors[1]].socket, "--try", "app/T", "--", "true")
	err = c.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitTempFail {
		t.Fatalf("--try while held: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second { // the holder keeps it 30 s
		t.Fatalf("--try took %v", d)
	}
}

// markKill appends "killed N - TIME" to the grant log when agent N is
// killed.
func markKill(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "killed %d - %d\n", n, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
}

// killGrace is how soon after its agent is killed a node's commands must
// have stopped: o2go lock kills COMMAND when its connection to the agent
// breaks (it looks every 50 ms). The survivors may grant the dead node's
// locks only once they declared it dead, a dead time later.
const killGrace = time.Second

// checkGrantLog reads the "begin N MODE TIME"/"end N MODE TIME" lines the
// commands run under the lock append (in the order they held it) and the
// "killed N - TIME" line of the test, and fails on two overlapping holds
// in conflicting modes. The killed node's holds count until killGrace
// after its death (its command is killed then: no "end" line); a line of
// the killed node after that means its command ran on unprotected.
func checkGrantLog(t *testing.T, path string, killed int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type hold struct {
		node int
		mode dlm.Mode
	}
	var open []hold
	var killedAt int64 = -1
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var what, ms string
		var who int
		var at int64
		if _, err := fmt.Sscanf(line, "%s %d %s %d", &what, &who, &ms, &at); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if what == "killed" {
			killedAt = at
			continue
		}
		if killedAt >= 0 && at > killedAt+int64(killGrace) {
			if who == killed {
				t.Errorf("node %d's command ran on %v after its agent was killed: %q", who, time.Duration(at-killedAt), line)
			}
			// The dead node's commands are gone by now.
			kept := open[:0]
			for _, h := range open {
				if h.node != killed {
					kept = append(kept, h)
				}
			}
			open = kept
		}
		m, err := dlm.ParseMode(ms)
		if err != nil {
			t.Fatal(err)
		}
		switch what {
		case "begin":
			n++
			for _, h := range open {
				if !dlm.Compatible(h.mode, m) {
					t.Errorf("node %d got %s while node %d held %s", who, m, h.node, h.mode)
				}
			}
			open = append(open, hold{who, m})
		case "end":
			for k, h := range open {
				if h == (hold{who, m}) {
					open = append(open[:k], open[k+1:]...)
					break
				}
			}
		}
	}
	if killedAt < 0 {
		t.Errorf("no kill in the grant log")
	}
	t.Logf("%d grants checked", n)
}
