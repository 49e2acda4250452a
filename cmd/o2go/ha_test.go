package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"o2go/internal/cluster/config"
	"o2go/internal/ha"
	"o2go/internal/node"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// TestHAEchoHelper is not a test: run with O2GO_HA_ECHO=ADDR,FILE it is the
// application of the HA tests, a TCP line server whose data lives in FILE:
// "PUT x" appends x (fsync'd) and answers "OK n", "GET" answers every line
// joined by spaces. With O2GO_HA_CLIENT=ADDR,REQUEST it is the client: it
// sends REQUEST and prints the answer.
func TestHAEchoHelper(t *testing.T) {
	if spec := os.Getenv("O2GO_HA_ECHO"); spec != "" {
		addr, file, _ := strings.Cut(spec, ",")
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(3)
			}
			go serveEcho(c, file)
		}
	}
	if spec := os.Getenv("O2GO_HA_CLIENT"); spec != "" {
		addr, req, _ := strings.Cut(spec, ",")
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintln(c, req)
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Print(line)
		os.Exit(0)
	}
}

func serveEcho(c net.Conn, file string) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "PUT":
			f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err == nil {
				_, err = fmt.Fprintln(f, arg)
				if err == nil {
					err = f.Sync()
				}
				f.Close()
			}
			if err != nil {
				fmt.Fprintln(c, "ERR", err)
				continue
			}
			b, _ := os.ReadFile(file)
			fmt.Fprintf(c, "OK %d\n", strings.Count(string(b), "\n"))
		case "GET":
			b, err := os.ReadFile(file)
			if err != nil && !os.IsNotExist(err) {
				fmt.Fprintln(c, "ERR", err)
				continue
			}
			fmt.Fprintln(c, strings.Join(strings.Fields(string(b)), " "))
		default:
			fmt.Fprintln(c, "ERR unknown command")
		}
	}
}

// haCluster is agents running HA, each in its own network namespace on a
// bridge, plus a client namespace.
type haCluster struct {
	*netnsCluster
	client string
	haDir  string
	vip    string
	sub    int
}

func newHACluster(t *testing.T, n int) *haCluster {
	return newHAClusterWith(t, n, config.Timeouts{HeartbeatThreshold: testThreshold, HeartbeatInterval: testInterval,
		IdleTimeout: testIdle, KeepaliveDelay: time.Second, ReconnectDelay: 2 * time.Second, KillAckTimeout: 3 * testInterval})
}

func newHAClusterWith(t *testing.T, n int, tm config.Timeouts) *haCluster {
	testutil.RequireFUSE(t)
	nc := newNetnsClusterWith(t, n, tm)
	hc := &haCluster{netnsCluster: nc, client: nc.tag + "c", haDir: t.TempDir(), sub: 10 + os.Getpid()%200}
	hc.vip = fmt.Sprintf("10.%d.0.50", hc.sub)
	br := nc.tag + "br"
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", hc.client).Run()
		_ = exec.Command("ip", "link", "del", nc.tag+"vc").Run()
	})
	run(t, "ip", "netns", "add", hc.client)
	run(t, "ip", "link", "add", nc.tag+"vc", "type", "veth", "peer", "name", nc.tag+"pc")
	run(t, "ip", "link", "set", nc.tag+"pc", "netns", hc.client)
	run(t, "ip", "link", "set", nc.tag+"vc", "master", br)
	run(t, "ip", "link", "set", nc.tag+"vc", "up")
	run(t, "ip", "-n", hc.client, "addr", "add", fmt.Sprintf("10.%d.0.100/24", hc.sub), "dev", nc.tag+"pc")
	run(t, "ip", "-n", hc.client, "link", "set", nc.tag+"pc", "up")
	return hc
}

// startHA runs agent i as `o2go ha agent`, on its node's default control
// socket (/run/o2go/NODE.sock), as deployed: its resource agents reach it
// there (o2go mount --node, o2go lock --node).
func (hc *haCluster) startHA(i int) {
	pc := hc.procCluster
	a := &procAgent{i: i, done: make(chan struct{}), socket: node.DefaultSocket(pc.names[i])}
	// An agent killed with -9 leaves its socket file behind.
	pc.t.Cleanup(func() { _ = os.Remove(a.socket) })
	args := []string{"ip", "netns", "exec", fmt.Sprintf("%sn%d", hc.tag, i), pc.bin, "ha", "agent", "--config", pc.conf,
		"--sysconfig", pc.sysconf, "--node", pc.names[i], "--socket", a.socket, "--heartbeat", pc.img,
		"--ha-dir", filepath.Join(hc.haDir, pc.names[i])}
	a.cmd = exec.Command(args[0], args[1:]...)
	a.cmd.Stdout, a.cmd.Stderr = a, a
	if err := a.cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	pc.agents[i] = a
	go func() {
		err := a.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			a.exit = ee.ExitCode()
		}
		close(a.done)
	}()
}

// cli runs o2go ha ... against agent i.
func (hc *haCluster) cli(i int, args ...string) (string, error) {
	full := append([]string{"ha", "--socket", hc.agents[i].socket}, args...)
	out, err := exec.Command(hc.bin, full...).CombinedOutput()
	return string(out), err
}

func (hc *haCluster) status(i int) *ha.Status {
	hc.t.Helper()
	out, err := hc.cli(i, "status", "--json")
	if err != nil {
		return nil
	}
	var st ha.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		hc.t.Fatalf("status: %v\n%s", err, out)
	}
	return &st
}

// waitOnline waits until group is online on node name, as agent i reports.
func (hc *haCluster) waitOnline(i int, group, name string, within time.Duration) time.Duration {
	hc.t.Helper()
	start := time.Now()
	var last *ha.Status
	for time.Since(start) < within {
		if st := hc.status(i); st != nil {
			last = st
			for _, g := range st.Groups {
				if g.Name == group && g.State == "online" && strings.Join(g.Nodes, ",") == name {
					return time.Since(start)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", "  ")
	hc.t.Fatalf("group %s not online on %s within %v; status:\n%s", group, name, within, b)
	return 0
}

// ask sends one request to the service address from the client namespace.
func (hc *haCluster) ask(req string) (string, error) {
	cmd := exec.Command("ip", "netns", "exec", hc.client, os.Args[0], "-test.run=^TestHAEchoHelper$")
	cmd.Env = append(os.Environ(), "O2GO_HA_CLIENT="+hc.vip+":7000,"+req)
	out, err := cmd.Output()
	s := strings.TrimSpace(string(out))
	if err != nil || strings.HasPrefix(s, "ERR") {
		return s, fmt.Errorf("%s: %v %s", req, err, s)
	}
	return s, nil
}

// killNode kills every process of node i's namespace (kill -9 of the
// machine: the agent, its application, its mount).
func (hc *haCluster) killNode(i int) {
	out, _ := exec.Command("ip", "netns", "pids", fmt.Sprintf("%sn%d", hc.tag, i)).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	<-hc.agents[i].done
}

// appPid finds the echo server in node i's namespace.
func (hc *haCluster) appPid(i int) int {
	out, _ := exec.Command("ip", "netns", "pids", fmt.Sprintf("%sn%d", hc.tag, i)).Output()
	for _, f := range strings.Fields(string(out)) {
		env, _ := os.ReadFile("/proc/" + f + "/environ")
		if strings.Contains(string(env), "O2GO_HA_ECHO=") {
			pid, _ := strconv.Atoi(f)
			return pid
		}
	}
	return 0
}

// Acceptance 2: a service address and an application whose data lives on
// an o2go clustered mount, in one group over three nodes, a client in its
// own namespace. kill -9 of the owner: the group comes up on the next node
// and the client finds its data; killing the application restarts it, then
// the group falls over; o2go ha move loses nothing; the event scripts run
// in order and show in o2go ha events. Acceptance 3 through the command: a
// bad addition is refused with what to fix, and nothing changes.
//
// The data volume is mounted the usual OCFS2 way: by every node at once, in
// a concurrent group (echo-data) that the application's group (echo)
// depends on. The first node to start it checks it (o2go fsck), the others
// find it in use and skip the check, saying so in the history. When the
// owner dies, a survivor that has the volume mounted recovers its slot
// (journal replay), and the application starts on the next node over data
// that is already there.
func TestHAFailoverInNetns(t *testing.T) {
	testutil.Long(t)
	hc := newHACluster(t, 3)
	for i := 0; i < 3; i++ {
		hc.startHA(i)
	}
	hc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 30*time.Second)
	cfg, evlog := hc.echoGroup()
	names := hc.names
	// Acceptance 3 through the command: a missing script is refused by
	// verify on every node, nothing is applied.
	bad := cfg
	bad.Events = []ha.EventScripts{{Event: ha.EvRGOnline, Pre: filepath.Join(hc.dir, "missing.sh")}}
	badFile := filepath.Join(hc.dir, "bad.json")
	b, _ := json.Marshal(bad)
	os.WriteFile(badFile, b, 0o644)
	out, err := hc.cli(1, "add", "-f", badFile)
	if err == nil || !strings.Contains(out, "missing.sh does not exist here: install it on every node") {
		t.Fatalf("a missing script was not refused: %v\n%s", err, out)
	}
	if st := hc.status(0); st == nil || st.ConfigVersion != 0 {
		t.Fatalf("a refused addition changed the configuration: %+v", st)
	}
	good := filepath.Join(hc.dir, "echo.json")
	b, _ = json.Marshal(cfg)
	os.WriteFile(good, b, 0o644)
	if out, err := hc.cli(1, "add", "-f", good); err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	hc.waitOnline(2, "echo-data", strings.Join(names, ","), 60*time.Second)
	hc.waitOnline(2, "echo", names[0], 30*time.Second)
	if out, err := hc.cli(2, "verify"); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	for _, v := range []string{"PUT a", "PUT b"} {
		if _, err := retryAsk(hc, v, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// Scripts in order on the owner.
	evs := groupLines(evlog, "echo")
	if want := "rg_online notify " + names[0] + " \nrg_online pre " + names[0] + " \nrg_online post " + names[0] + " ok\nrg_online notify " + names[0] + " ok\n"; evs != want {
		t.Errorf("event scripts ran as\n%s\nwant\n%s", evs, want)
	}
	// The volume came online on every node; one checked it, the two
	// others found it mounted and said why they did not.
	data := groupLines(evlog, "echo-data")
	for _, n := range names {
		if !strings.Contains(data, "rg_online post "+n+" ok\n") {
			t.Errorf("echo-data did not come online on %s:\n%s", n, data)
		}
	}
	out, err = hc.cli(1, "events", "-n", "0")
	if err != nil {
		t.Fatal(err)
	}
	if skips := strings.Count(out, "resource=echo-fs: fsck of "); skips != 2 || !strings.Contains(out, "skipped: nodes hold slots in its slot map — node ") {
		t.Errorf("want two starts of echo-fs that skip fsck with the reason (the volume is in use), got %d:\n%s", skips, out)
	}
	fscked := 0
	for i := 0; i < 3; i++ {
		if strings.Contains(hc.agents[i].logText(), "echo-fs: o2go fsck -p ") {
			fscked++
		}
	}
	if fscked != 1 {
		t.Errorf("%d nodes ran fsck on the volume, want exactly the first to start it", fscked)
	}

	// kill -9 of the owner.
	killed := time.Now()
	hc.killNode(0)
	got, err := retryAsk(hc, "GET", 60*time.Second)
	if err != nil || got != "a b" {
		t.Fatalf("after kill -9 of the owner: %q %v", got, err)
	}
	failover := time.Since(killed)
	hc.waitOnline(1, "echo", names[1], 10*time.Second)
	hc.waitOnline(1, "echo-data", names[1]+","+names[2], 10*time.Second)
	if !strings.Contains(hc.agents[1].logText()+hc.agents[2].logText(), "recovered a dead node's slot") {
		t.Errorf("no survivor logged the recovery of %s's slot", names[0])
	}
	// Within the cluster stack's bound plus the group's start time on the
	// new node (rg_online start to complete in the history), plus a margin
	// for a loaded machine.
	start := hc.onlineTook(1, names[1])
	bound := testDeadTime() + 3*testInterval
	t.Logf("kill -9 of the owner -> service answers on the next node: %v (detection bound %v, start %v)", failover, bound, start)
	if failover > bound+start+2*time.Second {
		t.Errorf("failover took %v: more than the detection bound %v plus the start %v (+2 s)", failover, bound, start)
	}

	// Kill the application: restarted twice, then the group falls over.
	for k := 0; k < 3; k++ {
		var pid int
		deadline := time.Now().Add(20 * time.Second)
		for pid == 0 && time.Now().Before(deadline) {
			pid = hc.appPid(1)
			time.Sleep(100 * time.Millisecond)
		}
		if pid == 0 {
			t.Fatalf("kill %d: the application does not run on %s", k, names[1])
		}
		syscall.Kill(pid, syscall.SIGKILL)
		if k < 2 {
			if _, err := retryAsk(hc, "GET", 20*time.Second); err != nil {
				t.Fatalf("restart %d: %v", k+1, err)
			}
			time.Sleep(time.Second) // let the restart settle before the next kill
		}
	}
	hc.waitOnline(1, "echo", names[2], 30*time.Second)
	if got, err := retryAsk(hc, "GET", 20*time.Second); err != nil || got != "a b" {
		t.Fatalf("after the fallover: %q %v", got, err)
	}

	// o2go ha move: no data lost.
	if out, err := hc.cli(2, "move", "echo", names[1], "--wait", "60s"); err != nil {
		t.Fatalf("move: %v\n%s", err, out)
	}
	if _, err := retryAsk(hc, "PUT c", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := retryAsk(hc, "GET", 10*time.Second); err != nil || got != "a b c" {
		t.Fatalf("after the move: %q %v", got, err)
	}
	out, err = hc.cli(1, "events", "-n", "0")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rg_online pre group=echo", "rg_online post group=echo", "node_down start args=" + names[0] + ",failed",
		"resource_failed start group=echo resource=echo-app", "restarts within 1m0s used up", "rg_error start group=echo",
		"rg_move start group=echo args=echo,move," + names[1]} {
		if !containsRecord(out, want) {
			t.Errorf("events lack %q:\n%s", want, out)
		}
	}
	// The volume stayed where it was through all of it.
	if containsRecord(out, "rg_offline start group=echo-data") || containsRecord(out, "rg_error start group=echo-data") {
		t.Errorf("the volume's group moved or failed:\n%s", out)
	}
	if t.Failed() {
		t.Logf("events:\n%s", out)
		return
	}

	// Stopping the groups, the application first, unmounts the volume on
	// every node; it is left clean (the dead node's slot was recovered).
	for _, g := range []string{"echo", "echo-data"} {
		if out, err := hc.cli(2, "stop", g, "--wait", "60s"); err != nil {
			t.Fatalf("stop %s: %v\n%s", g, err, out)
		}
	}
	for _, i := range []int{1, 2} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var ms []map[string]any
			if err := hc.call(i, "fs.mounts", &ms); err == nil && len(ms) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("agent %d still serves the volume 30 s after echo-data stopped", i)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	realtools.RequireFsckClean(t, cfg.Groups[0].Resources[0].Device)
}

// groupLines are the lines of the event script log about group, without
// the group's name.
func groupLines(evlog, group string) string {
	b, _ := os.ReadFile(evlog)
	var out strings.Builder
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, group+" "); ok {
			out.WriteString(rest)
		}
	}
	return out.String()
}

// containsRecord reports whether the history text holds want as a whole
// record or the start of one whose next field follows (so that
// "group=echo" does not match "group=echo-data").
func containsRecord(history, want string) bool {
	for _, l := range strings.Split(history, "\n") {
		if i := strings.Index(l, want); i >= 0 {
			if rest := l[i+len(want):]; rest == "" || rest[0] == ' ' || rest[0] == ':' || rest[0] == ',' {
				return true
			}
		}
	}
	return false
}

// onlineTook is how long group echo's last rg_online on node took (start
// to complete), from agent i's history.
func (hc *haCluster) onlineTook(i int, node string) time.Duration {
	hc.t.Helper()
	out, err := hc.cli(i, "events", "--json", "-n", "0")
	if err != nil {
		hc.t.Fatalf("events: %v\n%s", err, out)
	}
	var began, took int64 = -1, -1
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r ha.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			hc.t.Fatalf("events --json line %q: %v", l, err)
		}
		if r.Event != ha.EvRGOnline || r.Node != node || r.Group != "echo" {
			continue
		}
		switch r.Phase {
		case ha.PhaseStart:
			began = r.At
		case ha.PhaseComplete:
			if began >= 0 {
				took = r.At - began
			}
		}
	}
	if took < 0 {
		hc.t.Fatalf("no rg_online on %s in the history:\n%s", node, out)
	}
	return time.Duration(took) * time.Millisecond
}

func retryAsk(hc *haCluster, req string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		got, err := hc.ask(req)
		if err == nil || time.Now().After(deadline) {
			return got, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// echoGroup describes the test's groups: echo-data, concurrent, mounts a
// clustered o2go volume on every node; echo, a service address and the
// echo server with its data on the volume, runs on one node where
// echo-data is online (parent and same node). The event scripts of
// rg_online log "GROUP EVENT PHASE NODE STATUS" lines to the returned file.
func (hc *haCluster) echoGroup() (ha.Fragment, string) {
	t := hc.t
	// Four slots (three nodes and a spare), each node's journal and local
	// alloc window, and the data.
	data := realtools.MkfsImage(t, 128<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M")
	mp := filepath.Join(hc.dir, "data")
	evlog := filepath.Join(hc.dir, "events.log")
	script := filepath.Join(hc.dir, "ev.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$O2GO_HA_GROUP $O2GO_HA_EVENT $O2GO_HA_PHASE $O2GO_HA_NODE $O2GO_HA_STATUS\" >> "+evlog+"\n"), 0o755)
	names := hc.names
	perNode := map[string][]string{}
	for i, n := range names {
		perNode[n] = []string{fmt.Sprintf("%sp%d", hc.tag, i)}
	}
	cfg := ha.Fragment{
		Networks: []ha.Network{{Name: "pub", PerNode: perNode}},
		Events:   []ha.EventScripts{{Event: ha.EvRGOnline, Pre: script, Post: script, Notify: script}},
		Groups: []ha.Group{
			{Name: "echo-data", Nodes: names, Startup: ha.StartupAll, Resources: []ha.Resource{
				{Name: "echo-fs", Type: ha.TypeFS, Device: data, Mountpoint: mp, FSType: "o2go"},
			}},
			{Name: "echo", Nodes: names, Startup: ha.StartupHome, Fallback: ha.FallbackNever,
				Parents: []string{"echo-data"}, SameNode: []string{"echo-data"}, Resources: []ha.Resource{
					{Name: "echo-ip", Type: ha.TypeIP, Address: hc.vip + "/24", Network: "pub"},
					{Name: "echo-app", Type: ha.TypeProcess, Command: []string{os.Args[0], "-test.run=^TestHAEchoHelper$"},
						Env: []string{"O2GO_HA_ECHO=" + hc.vip + ":7000," + filepath.Join(mp, "data.txt")}, RestartAttempts: 2,
						MonitorInterval: ha.Duration(300 * time.Millisecond), RestartInterval: ha.Duration(time.Minute)},
				}},
		},
	}
	return cfg, evlog
}
