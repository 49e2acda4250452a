package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/cluster/heartbeat"
	"o2go/internal/node"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary o2goBinary built once the tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// o2goBinary builds the o2go binary once for the package's tests.
func o2goBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "o2go-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "o2go")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// Test timing: interval 200 ms, threshold 11 (dead time 2 s, self-fence
// bound 1.8 s), the network at the init script's minimums (idle 5 s).
const (
	testInterval  = 200 * time.Millisecond
	testThreshold = 11
	testIdle      = 5 * time.Second
)

func testDeadTime() time.Duration { return time.Duration(testThreshold-1) * testInterval }

// procCluster is agents as real processes sharing one image file.
type procCluster struct {
	t       *testing.T
	bin     string
	dir     string
	conf    string
	sysconf string
	img     string
	names   []string
	ips     []string
	port    int
	agents  map[int]*procAgent
	wrap    func(i int, args []string) []string // e.g. ip netns exec
	env     []string                            // added to the agents' environment
	global  []string                            // global mode: the heartbeat devices (no --heartbeat on the volume)
}

type procAgent struct {
	i      int
	cmd    *exec.Cmd
	mu     sync.Mutex
	log    bytes.Buffer
	done   chan struct{}
	exit   int
	socket string
}

func (a *procAgent) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.Write(p)
}

func (a *procAgent) logText() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// freeTCPPort picks a port free on every address.
func freeTCPPort(t *testing.T, ips []string) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		port := 20000 + rand.IntN(30000)
		ok := true
		for _, ip := range ips {
			ln, err := net.Listen("tcp4", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func newProcCluster(t *testing.T, n int, ips []string) *procCluster {
	t.Helper()
	return newProcClusterWith(t, n, ips, config.Timeouts{HeartbeatThreshold: testThreshold, HeartbeatInterval: testInterval,
		IdleTimeout: testIdle, KeepaliveDelay: time.Second, ReconnectDelay: 2 * time.Second,
		KillAckTimeout: 3 * testInterval})
}

func newProcClusterWith(t *testing.T, n int, ips []string, tm config.Timeouts) *procCluster {
	t.Helper()
	realtools.Require(t)
	pc := &procCluster{t: t, bin: o2goBinary(t), dir: t.TempDir(), agents: map[int]*procAgent{}, ips: ips}
	pc.conf = filepath.Join(pc.dir, "cluster.conf")
	pc.sysconf = filepath.Join(pc.dir, "o2cb")
	secret := filepath.Join(pc.dir, "secret")
	if err := os.WriteFile(secret, []byte("a test cluster secret, 32 bytes.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pc.port = 7777
	if ips[0] == "127.0.0.1" {
		pc.port = freeTCPPort(t, ips)
	}
	c := &config.ClusterConf{}
	cl, err := c.AddCluster("proc")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("t%dn%d", os.Getpid()%100000, i)
		pc.names = append(pc.names, name)
		if _, err := cl.AddNode(config.NodeSpec{Name: name, IP: ips[i], Port: pc.port, Number: i}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Save(pc.conf); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, v := range tm.Vars() {
		fmt.Fprintf(&sb, "%s\n", v)
	}
	fmt.Fprintf(&sb, "O2GO_FENCE_METHOD=exit\nO2GO_CLUSTER_SECRET_FILE=%s\n", secret)
	sys := sb.String()
	if err := os.WriteFile(pc.sysconf, []byte(sys), 0o644); err != nil {
		t.Fatal(err)
	}
	pc.img = realtools.MkfsImage(t, 32<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M")
	t.Cleanup(func() {
		for _, a := range pc.agents {
			if a.cmd.Process != nil {
				_ = a.cmd.Process.Signal(syscall.SIGCONT)
				_ = a.cmd.Process.Kill()
				<-a.done
			}
		}
		if t.Failed() {
			for i, a := range pc.agents {
				t.Logf("--- agent %d (exit %d):\n%s", i, a.exit, a.logText())
			}
		}
	})
	return pc
}

// start runs agent i, heartbeating on the image from the start.
func (pc *procCluster) start(i int, extra ...string) *procAgent {
	pc.t.Helper()
	a := &procAgent{i: i, done: make(chan struct{}), socket: filepath.Join(pc.dir, pc.names[i]+".sock")}
	args := []string{pc.bin, "agent", "--config", pc.conf, "--sysconfig", pc.sysconf, "--node", pc.names[i], "--socket", a.socket}
	if pc.global == nil {
		args = append(args, "--heartbeat", pc.img)
	} else {
		args = append(args, "--scan", filepath.Dir(pc.global[0]))
	}
	args = append(args, extra...)
	if pc.wrap != nil {
		args = pc.wrap(i, args)
	}
	a.cmd = exec.Command(args[0], args[1:]...)
	a.cmd.Stdout, a.cmd.Stderr = a, a
	if pc.env != nil {
		a.cmd.Env = append(os.Environ(), pc.env...)
	}
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

func (pc *procCluster) call(i int, method string, result any) error {
	cl, err := node.DialControl(pc.agents[i].socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	_ = cl.SetDeadline(time.Now().Add(5 * time.Second))
	return cl.Call(method, nil, result)
}

func (pc *procCluster) view(i int) node.NodeList {
	var st node.Status
	if err := pc.call(i, "status", &st); err != nil {
		return nil
	}
	return st.Members
}

func (pc *procCluster) waitView(who []int, want node.NodeList, within time.Duration) {
	pc.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ok := true
		for _, i := range who {
			if fmt.Sprint(pc.view(i)) != fmt.Sprint(want) {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var got []string
	for _, i := range who {
		got = append(got, fmt.Sprintf("agent %d: %v", i, pc.view(i)))
	}
	pc.t.Fatalf("no view %v within %v: %s", want, within, strings.Join(got, "; "))
}

func (pc *procCluster) events(i int) []node.EventRecord {
	var evs []node.EventRecord
	_ = pc.call(i, "events", &evs)
	return evs
}

// downAt is when agent i delivered node n's down event.
func (pc *procCluster) downAt(i int, n base.NodeID, within time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, e := range pc.events(i) {
			if e.Kind == "down" && e.Node == n {
				return e.At, true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, false
}

// sameOrder checks that the agents delivered the same events for every
// sequence number they share.
func (pc *procCluster) sameOrder(who []int) {
	pc.t.Helper()
	seen := map[uint64]string{}
	for _, i := range who {
		for _, e := range pc.events(i) {
			if e.Initial {
				continue
			}
			s := fmt.Sprintf("epoch %d node %d %s %s", e.Epoch, e.Node, e.Kind, e.Generation)
			if p, ok := seen[e.Seq]; ok && p != s {
				pc.t.Errorf("agent %d delivered event %d as %q, another as %q", i, e.Seq, s, p)
			}
			seen[e.Seq] = s
		}
	}
}

var hbLine = regexp.MustCompile(`(?m)^\s*(\d+):\s+(\d+)\s+([0-9a-f]{16})\s+([0-9a-f]{16})\s`)

// debugfsHB returns debugfs.ocfs2 -R hb's view: slot -> (seq, generation).
func (pc *procCluster) debugfsHB() map[int][2]string {
	out := realtools.Debugfs(pc.t, pc.img, "hb")
	m := map[int][2]string{}
	for _, l := range hbLine.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(l[1])
		m[n] = [2]string{l[3], l[4]}
	}
	return m
}

func loopbackIPs(n int) []string {
	var ips []string
	for i := 0; i < n; i++ {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", i+1))
	}
	return ips
}

func nodes(ns ...int) node.NodeList {
	var out node.NodeList
	for _, n := range ns {
		out = append(out, base.NodeID(n))
	}
	return out
}

// TestRealAgentsKill9 runs four agents as processes on 127.0.0.1-4 sharing
// one image: they form one view, debugfs.ocfs2 -R hb shows them; after kill
// -9 of one, the others agree it is dead within the dead time (plus a
// margin for a loaded machine) and deliver the same events in the same order.
func TestRealAgentsKill9(t *testing.T) {
	pc := newProcCluster(t, 4, loopbackIPs(4))
	for i := 0; i < 4; i++ {
		pc.start(i)
	}
	pc.waitView([]int{0, 1, 2, 3}, nodes(0, 1, 2, 3), 30*time.Second)
	hb := pc.debugfsHB()
	for i := 0; i < 4; i++ {
		var st node.Status
		if err := pc.call(i, "status", &st); err != nil {
			t.Fatal(err)
		}
		if hb[i][1] != st.Generation {
			t.Errorf("debugfs hb shows slot %d with generation %s, the agent runs with %s", i, hb[i][1], st.Generation)
		}
	}
	killed := time.Now()
	if err := pc.agents[3].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	bound := testDeadTime() + 3*testInterval
	for _, i := range []int{0, 1, 2} {
		at, ok := pc.downAt(i, 3, 30*time.Second)
		if !ok {
			t.Fatalf("agent %d never saw node 3 go down", i)
		}
		d := at.Sub(killed)
		t.Logf("agent %d: node 3 down %v after kill -9 (dead time %v)", i, d, testDeadTime())
		if d > bound+2*time.Second { // margin for a loaded machine
			t.Errorf("agent %d took %v, past the bound %v", i, d, bound)
		}
		if d < testDeadTime()-testInterval {
			t.Errorf("agent %d declared node 3 dead after %v, before the dead time %v", i, d, testDeadTime())
		}
	}
	pc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 5*time.Second)
	pc.sameOrder([]int{0, 1, 2})
	// debugfs: the survivors still beat, the dead node's slot stands still.
	a, b := pc.debugfsHB(), map[int][2]string{}
	time.Sleep(3 * testInterval)
	b = pc.debugfsHB()
	for i := 0; i < 3; i++ {
		if a[i][0] == b[i][0] {
			t.Errorf("debugfs hb: live node %d's seq did not change", i)
		}
	}
	if a[3] != b[3] {
		t.Errorf("debugfs hb: killed node 3's slot still changes")
	}
}

// TestRealAgentSIGSTOPFencesWithoutWriting stops an agent past the
// self-fence bound; on SIGCONT it must fence (exit 99), and the others drop
// it. The agent writes nothing on the shared disk but its heartbeat slot
// and its kill block; after the stop the one write allowed is the fencing
// acknowledgement in its kill block, made after the latch: the slot must not
// change, and the kill block must change into exactly that acknowledgement
// (checkOnlyTheAck).
func TestRealAgentSIGSTOPFencesWithoutWriting(t *testing.T) {
	pc := newProcCluster(t, 3, loopbackIPs(3))
	for i := 0; i < 3; i++ {
		pc.start(i)
	}
	pc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 30*time.Second)
	victim := pc.agents[2]
	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * testInterval) // a write in flight at the stop lands
	slotBefore, killBefore := nodeSectors(t, pc.img, 2)
	if _, ok := pc.downAt(0, 2, 30*time.Second); !ok {
		t.Fatal("the others did not declare the stopped node dead")
	}
	time.Sleep(testInterval)
	if err := victim.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-victim.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the resumed agent did not fence")
	}
	if victim.exit != node.ExitFenced {
		t.Fatalf("exit status %d, want %d", victim.exit, node.ExitFenced)
	}
	// On resume the first of these checks to run fences it, so the
	// acknowledgement names one of their reasons: the hang watchdog or the
	// gate before a write (hang), the loop's lease check (heartbeat write
	// stall), or a status from the others, queued in its socket while it was
	// stopped, showing the view they committed without it (removed).
	slotAfter, killAfter := nodeSectors(t, pc.img, 2)
	checkOnlyTheAck(t, 2, slotBefore, killBefore, slotAfter, killAfter,
		heartbeat.FenceHang, heartbeat.FenceWriteStall, heartbeat.FenceRemoved)
	if !strings.Contains(victim.logText(), "FENCING") {
		t.Errorf("no FENCING line in the log:\n%s", victim.logText())
	}
	pc.waitView([]int{0, 1}, nodes(0, 1), 5*time.Second)
}

// TestRealAgentDiskStallFencesFirst hangs one agent's heartbeat I/O (its
// path to the shared disk) far past the dead time: it must fence itself
// (exit 99, the write-stall reason) strictly before the others declare it
// dead, without waiting for the hung disk, and they go on without it.
func TestRealAgentDiskStallFencesFirst(t *testing.T) {
	pc := newProcCluster(t, 3, loopbackIPs(3))
	fault := filepath.Join(pc.dir, "fault2")
	pc.start(0)
	pc.start(1)
	victim := pc.start(2, "--fault-file", fault)
	pc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 30*time.Second)
	// The path hangs for a minute: the fence must not wait for it (the
	// acknowledgement write to the same path hangs too).
	until := time.Now().Add(time.Minute)
	if err := os.WriteFile(fault, []byte(fmt.Sprintf("stall-until=%d\n", until.UnixMilli())), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-victim.done:
	case <-time.After(5 * testDeadTime()):
		t.Fatal("the node whose disk hangs did not fence (or its fence waits for the disk)")
	}
	if victim.exit != node.ExitFenced {
		t.Fatalf("exit status %d, want %d", victim.exit, node.ExitFenced)
	}
	m := regexp.MustCompile(`time=(\S+) level=INFO msg="FENCING \(exit\): ([^"]*)"`).FindStringSubmatch(victim.logText())
	if m == nil {
		t.Fatalf("no FENCING line in the victim's log:\n%s", victim.logText())
	}
	fencedAt, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m[2], "no heartbeat write completed") {
		t.Errorf("fenced for %q, want the write stall", m[2])
	}
	for _, i := range []int{0, 1} {
		at, ok := pc.downAt(i, 2, 10*time.Second)
		if !ok {
			t.Fatalf("agent %d never saw node 2 go down", i)
		}
		t.Logf("node 2 fenced %v before agent %d declared it dead", at.Sub(fencedAt), i)
		if !at.After(fencedAt) {
			t.Errorf("agent %d declared node 2 dead at %v, before it fenced at %v", i, at, fencedAt)
		}
	}
	pc.waitView([]int{0, 1}, nodes(0, 1), 5*time.Second)
}

// TestRealArrayDownFreezes hangs every agent's path to the shared disk at
// once (the array is down) for three dead times: instead of fencing
// themselves to death they freeze (status says FROZEN), and when the disk
// returns they go on with the same membership.
func TestRealArrayDownFreezes(t *testing.T) {
	pc := newProcCluster(t, 3, loopbackIPs(3))
	var faults []string
	for i := 0; i < 3; i++ {
		faults = append(faults, filepath.Join(pc.dir, fmt.Sprintf("fault%d", i)))
		pc.start(i, "--fault-file", faults[i])
	}
	pc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 30*time.Second)
	until := time.Now().Add(3 * testDeadTime())
	for _, f := range faults {
		if err := os.WriteFile(f, []byte(fmt.Sprintf("stall-until=%d\n", until.UnixMilli())), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	frozen := map[int]bool{}
	for time.Now().Before(until) {
		for i := 0; i < 3; i++ {
			var st node.Status
			if pc.call(i, "status", &st) == nil && st.Frozen {
				frozen[i] = true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * testDeadTime())
	for i, a := range pc.agents {
		select {
		case <-a.done:
			t.Errorf("agent %d exited (status %d) while the whole array was down", i, a.exit)
		default:
		}
		if !frozen[i] {
			t.Errorf("agent %d never said it was frozen", i)
		}
	}
	pc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 5*time.Second)
	for _, e := range pc.events(0) {
		if !e.Initial {
			t.Errorf("membership changed during the outage: %+v", e)
		}
	}
}

// makeGlobal switches the cluster to global heartbeat on n heartbeat
// devices (mkfs.ocfs2 -H images, found by UUID with --scan); it returns
// their UUIDs.
func (pc *procCluster) makeGlobal(n int) []string {
	pc.t.Helper()
	dir := filepath.Join(pc.dir, "hb")
	if err := os.Mkdir(dir, 0o755); err != nil {
		pc.t.Fatal(err)
	}
	c, err := config.Load(pc.conf)
	if err != nil {
		pc.t.Fatal(err)
	}
	cl := &c.Clusters[0]
	if err := cl.SetHeartbeatMode("global"); err != nil {
		pc.t.Fatal(err)
	}
	var uuids []string
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("hb%d.img", i))
		if err := os.Rename(realtools.MkfsImage(pc.t, 8<<20, "-H"), p); err != nil {
			pc.t.Fatal(err)
		}
		info, err := node.ProbeVolume(p)
		if err != nil {
			pc.t.Fatal(err)
		}
		if _, err := cl.AddHeartbeat(info.UUID); err != nil {
			pc.t.Fatal(err)
		}
		pc.global = append(pc.global, p)
		uuids = append(uuids, info.UUID)
	}
	if err := c.Save(pc.conf); err != nil {
		pc.t.Fatal(err)
	}
	return uuids
}

// TestRealGlobalHeartbeatVotingDisks runs three agents in global mode on
// three heartbeat devices, as voting disks: the node that loses its path
// to one of them goes on; the node that loses two fences, before the others
// declare it dead; the others go on without it.
func TestRealGlobalHeartbeatVotingDisks(t *testing.T) {
	pc := newProcCluster(t, 3, loopbackIPs(3))
	uuids := pc.makeGlobal(3)
	var faults []string
	for i := 0; i < 3; i++ {
		faults = append(faults, filepath.Join(pc.dir, fmt.Sprintf("fault%d", i)))
		pc.start(i, "--fault-file", faults[i])
	}
	pc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 30*time.Second)
	var st node.Status
	if err := pc.call(0, "status", &st); err != nil || len(st.Regions) != 3 {
		t.Fatalf("status: %+v %v", st.Regions, err)
	}
	until := time.Now().Add(time.Minute).UnixMilli()
	lose := func(i int, regions ...string) {
		var b strings.Builder
		for _, r := range regions {
			fmt.Fprintf(&b, "stall-until=%d region=%s\n", until, r)
		}
		if err := os.WriteFile(faults[i], []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lose(1, uuids[0])
	lose(2, uuids[0], uuids[1])
	victim := pc.agents[2]
	select {
	case <-victim.done:
	case <-time.After(5 * testDeadTime()):
		t.Fatal("the node that lost two of three heartbeat devices did not fence")
	}
	if victim.exit != node.ExitFenced {
		t.Fatalf("exit status %d, want %d", victim.exit, node.ExitFenced)
	}
	m := regexp.MustCompile(`time=(\S+) level=INFO msg="FENCING \(exit\)`).FindStringSubmatch(victim.logText())
	if m == nil {
		t.Fatalf("no FENCING line:\n%s", victim.logText())
	}
	fencedAt, _ := time.Parse(time.RFC3339Nano, m[1])
	for _, i := range []int{0, 1} {
		at, ok := pc.downAt(i, 2, 10*time.Second)
		if !ok {
			t.Fatalf("agent %d never saw node 2 go down", i)
		}
		if !at.After(fencedAt) {
			t.Errorf("agent %d declared node 2 dead at %v, before it fenced at %v", i, at, fencedAt)
		}
	}
	pc.waitView([]int{0, 1}, nodes(0, 1), 5*time.Second)
	time.Sleep(3 * testDeadTime())
	select {
	case <-pc.agents[1].done:
		t.Fatalf("the node that lost one of three heartbeat devices exited (status %d)", pc.agents[1].exit)
	default:
	}
	pc.waitView([]int{0, 1}, nodes(0, 1), 5*time.Second)
}

// TestRealWrongSecretIsRefused runs a third agent with another secret: the
// others refuse it and log its address; it never joins; having quorum, they
// evict it through its kill block (it heartbeats on their disk).
func TestRealWrongSecretIsRefused(t *testing.T) {
	pc := newProcCluster(t, 3, loopbackIPs(3))
	pc.start(0)
	pc.start(1)
	pc.waitView([]int{0, 1}, nodes(0, 1), 30*time.Second)
	bad := filepath.Join(pc.dir, "bad")
	if err := os.WriteFile(filepath.Join(pc.dir, "badsecret"), []byte("not this cluster's secret at all!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sys, _ := os.ReadFile(pc.sysconf)
	badSys := strings.Replace(string(sys), filepath.Join(pc.dir, "secret"), filepath.Join(pc.dir, "badsecret"), 1)
	if err := os.WriteFile(bad, []byte(badSys), 0o644); err != nil {
		t.Fatal(err)
	}
	keep := pc.sysconf
	pc.sysconf = bad
	intruder := pc.start(2)
	pc.sysconf = keep
	// While it heartbeats unconnected, status says why it is not in the
	// cluster: the refused handshake, not just "not connected".
	why := ""
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case <-intruder.done:
			break wait
		case <-deadline:
			t.Fatal("the node with the wrong secret was neither refused for good nor evicted")
		case <-time.After(100 * time.Millisecond):
		}
		var st node.Status
		if pc.call(0, "status", &st) == nil && len(st.Nodes) == 3 && st.Nodes[2].Reason != "" {
			why = st.Nodes[2].Reason
			if strings.Contains(why, "authentication failed") {
				break
			}
		}
	}
	if !strings.Contains(why, "authentication failed") {
		t.Errorf("status never said why node 2 is not in the cluster; last reason %q", why)
	}
	select {
	case <-intruder.done:
	case <-deadline:
		t.Fatal("the node with the wrong secret was neither refused for good nor evicted")
	}
	for _, i := range []int{0, 1} {
		if v := pc.view(i); fmt.Sprint(v) != fmt.Sprint(nodes(0, 1)) {
			t.Errorf("agent %d's view is %v", i, v)
		}
	}
	log0 := pc.agents[0].logText()
	if !strings.Contains(log0, "refused connection from "+pc.ips[2]+":") || !strings.Contains(log0, "authentication failed") {
		t.Errorf("node 0 does not log the refusal with the peer's address:\n%s", log0)
	}
	if !strings.Contains(intruder.logText(), "authentication failed") {
		t.Errorf("the intruder does not log why it is refused:\n%s", intruder.logText())
	}
	// The operator's check names the node and what to do.
	out, err := runCLI("cluster", "--config", pc.conf, "--sysconfig", pc.sysconf, "doctor", "--node", pc.names[0], "--socket", pc.agents[0].socket)
	if err == nil || !strings.Contains(out, "[FAIL] same secret: node "+pc.names[2]) || !strings.Contains(out, "-> copy this node's") {
		t.Errorf("doctor on node 0 does not point at node 2's secret: %v\n%s", err, out)
	}
}

// netnsCluster puts each agent in its own network namespace, on a bridge;
// cut(i) takes agent i's link down. The image file is shared.
type netnsCluster struct {
	*procCluster
	tag string
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetnsCluster(t *testing.T, n int) *netnsCluster {
	t.Helper()
	return newNetnsClusterWith(t, n, config.Timeouts{HeartbeatThreshold: testThreshold, HeartbeatInterval: testInterval,
		IdleTimeout: testIdle, KeepaliveDelay: time.Second, ReconnectDelay: 2 * time.Second,
		KillAckTimeout: 3 * testInterval})
}

func newNetnsClusterWith(t *testing.T, n int, tm config.Timeouts) *netnsCluster {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "ip")
	tag := fmt.Sprintf("o2t%d", os.Getpid()%100000)
	br := tag + "br"
	sub := 10 + os.Getpid()%200
	var ips []string
	for i := 0; i < n; i++ {
		ips = append(ips, fmt.Sprintf("10.%d.0.%d", sub, i+1))
	}
	cleanup := func() {
		for i := 0; i < n; i++ {
			_ = exec.Command("ip", "netns", "del", fmt.Sprintf("%sn%d", tag, i)).Run()
			_ = exec.Command("ip", "link", "del", fmt.Sprintf("%sv%d", tag, i)).Run()
		}
		_ = exec.Command("ip", "link", "del", br).Run()
	}
	cleanup()
	t.Cleanup(cleanup)
	run(t, "ip", "link", "add", br, "type", "bridge")
	run(t, "ip", "link", "set", br, "up")
	for i := 0; i < n; i++ {
		ns, host, peer := fmt.Sprintf("%sn%d", tag, i), fmt.Sprintf("%sv%d", tag, i), fmt.Sprintf("%sp%d", tag, i)
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
		run(t, "ip", "link", "set", peer, "netns", ns)
		run(t, "ip", "link", "set", host, "master", br)
		run(t, "ip", "link", "set", host, "up")
		run(t, "ip", "-n", ns, "addr", "add", ips[i]+"/24", "dev", peer)
		run(t, "ip", "-n", ns, "link", "set", peer, "up")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	pc := newProcClusterWith(t, n, ips, tm)
	pc.wrap = func(i int, args []string) []string {
		return append([]string{"ip", "netns", "exec", fmt.Sprintf("%sn%d", tag, i)}, args...)
	}
	return &netnsCluster{procCluster: pc, tag: tag}
}

// cut takes agent i off the network (its veth goes down): packets vanish,
// no connection is reset, as when a cable is pulled.
func (nc *netnsCluster) cut(i int) {
	run(nc.t, "ip", "link", "set", fmt.Sprintf("%sv%d", nc.tag, i), "down")
}

// TestNetnsPartitionFencesTheMinority cuts one node of three off the
// network (the disk stays shared) — the highest, the middle and the lowest
// in turn: o2quo's minority (the cut node) fences, evicted through its kill
// block, the two others continue, and they proceed once the idle timeout
// noticed the cut, plus a few heartbeat intervals (netnsCutOne derives the
// bound). (The middle node's first idle timeout could come before its other
// link's: it used to count that silent link, find quorum, and evict the
// majority.)
func TestNetnsPartitionFencesTheMinority(t *testing.T) {
	for _, v := range []int{2, 1, 0} {
		t.Run(fmt.Sprintf("node%d", v), func(t *testing.T) { netnsCutOne(t, v) })
	}
}

func netnsCutOne(t *testing.T, v int) {
	tm := config.Timeouts{HeartbeatThreshold: testThreshold, HeartbeatInterval: testInterval,
		IdleTimeout: testIdle, KeepaliveDelay: time.Second, ReconnectDelay: 2 * time.Second,
		KillAckTimeout: 3 * testInterval}
	// What the kill-block protocol promises: the survivors' idle timers run
	// out at most IdleTimeout after the cut (they count from the last
	// message, sent before it); their next heartbeat write carries the kill
	// order, the victim reads it in its next read, fences and writes its
	// acknowledgement at once, and the survivors read that in their next
	// read — three intervals, which KillAckTimeout covers; one more for the
	// survivors to commit the view without the victim, and 1 s for a loaded
	// machine: 6.8 s here. Without kill blocks the victim fences only on its
	// own quorum decision, QuorumDelay ((threshold+2) intervals) after its
	// idle timeout, and the survivors wait out its dead time after that:
	// 9-10 s, well past this bound.
	bound := tm.IdleTimeout + tm.KillAckTimeout + tm.HeartbeatInterval + time.Second
	nc := newNetnsClusterWith(t, 3, tm)
	for i := 0; i < 3; i++ {
		nc.start(i)
	}
	nc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 30*time.Second)
	var others []int
	for i := 0; i < 3; i++ {
		if i != v {
			others = append(others, i)
		}
	}
	cut := time.Now()
	nc.cut(v)
	victim := nc.agents[v]
	select {
	case <-victim.done:
	case <-time.After(testIdle + 20*time.Second):
		t.Fatal("the cut-off node did not fence")
	}
	if victim.exit != node.ExitFenced {
		t.Fatalf("cut-off node exit status %d, want %d", victim.exit, node.ExitFenced)
	}
	for _, i := range others {
		at, ok := nc.downAt(i, base.NodeID(v), 20*time.Second)
		if !ok {
			t.Fatalf("agent %d never saw node %d go down", i, v)
		}
		d := at.Sub(cut)
		t.Logf("agent %d proceeded %v after the cut (bound %v: idle timeout %v, kill ack timeout %v)", i, d, bound, tm.IdleTimeout, tm.KillAckTimeout)
		if d > bound {
			t.Errorf("agent %d took %v to proceed, past the kill-block bound %v", i, d, bound)
		}
	}
	nc.waitView(others, nodes(others...), 5*time.Second)
	nc.sameOrder(others)
	for _, i := range others {
		select {
		case <-nc.agents[i].done:
			t.Errorf("agent %d, on the majority side, exited (status %d)", i, nc.agents[i].exit)
		default:
		}
	}
	// The cut-off node reads its kill order before its own quorum decision
	// could come (QuorumDelay after its idle timeout): it must say it was
	// evicted by a survivor through its kill block.
	m := regexp.MustCompile(`FENCING \(exit\): evicted by node (\d+) through its kill block`).FindStringSubmatch(victim.logText())
	if m == nil {
		t.Errorf("the cut-off node did not fence on a kill block:\n%s", victim.logText())
	} else if by, _ := strconv.Atoi(m[1]); by == v {
		t.Errorf("the cut-off node says it was evicted by itself: %s", m[0])
	}
}

// TestNetnsEvenSplitKeepsTheLowestNode splits four nodes 2|2: o2quo lets
// the half with the lowest-numbered node continue; the other half fences.
func TestNetnsEvenSplitKeepsTheLowestNode(t *testing.T) {
	nc := newNetnsCluster(t, 4)
	for i := 0; i < 4; i++ {
		nc.start(i)
	}
	nc.waitView([]int{0, 1, 2, 3}, nodes(0, 1, 2, 3), 30*time.Second)
	// Nodes 2 and 3 go to their own bridge: they still see each other.
	br2 := nc.tag + "b2"
	run(t, "ip", "link", "add", br2, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", br2).Run() })
	run(t, "ip", "link", "set", br2, "up")
	for _, i := range []int{2, 3} {
		run(t, "ip", "link", "set", fmt.Sprintf("%sv%d", nc.tag, i), "master", br2)
	}
	for _, i := range []int{2, 3} {
		select {
		case <-nc.agents[i].done:
		case <-time.After(testIdle + 20*time.Second):
			t.Fatalf("node %d, in the half without node 0, did not fence", i)
		}
	}
	nc.waitView([]int{0, 1}, nodes(0, 1), 10*time.Second)
	nc.sameOrder([]int{0, 1})
	for _, i := range []int{0, 1} {
		select {
		case <-nc.agents[i].done:
			t.Errorf("node %d, in the half with node 0, exited", i)
		default:
		}
	}
}

var _ = context.Background

// runCLI runs the o2go command line in-process.
func runCLI(args ...string) (string, error) {
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String() + errOut.String(), err
}

// TestClusterStatusHeartbeatAndDoctorCommands drives the client commands
// against two running agents.
func TestClusterStatusHeartbeatAndDoctorCommands(t *testing.T) {
	pc := newProcCluster(t, 3, loopbackIPs(3))
	pc.start(0, "--scan", filepath.Dir(pc.img))
	pc.start(1)
	pc.waitView([]int{0, 1}, nodes(0, 1), 30*time.Second)
	common := []string{"cluster", "--config", pc.conf, "--sysconfig", pc.sysconf}
	out, err := runCLI(append(common, "status", "--node", pc.names[0], "--socket", pc.agents[0].socket)...)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{`Checking O2CB cluster "proc": Online`, "Heartbeat dead threshold: 11", "Network idle timeout: 5000",
		"Heartbeat mode: Local", "Checking O2CB heartbeat: Active",
		pc.names[2], "no: not heartbeating"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(append(common, "status", "--node", pc.names[1], "--socket", pc.agents[1].socket, "--json")...)
	if err != nil || !strings.Contains(out, `"online": true`) || !strings.Contains(out, `"view_members": [`) {
		t.Errorf("status --json: %v\n%s", err, out)
	}
	// Heartbeat start by UUID, twice (two users), then stop twice.
	info, err := node.ProbeVolume(pc.img)
	if err != nil {
		t.Fatal(err)
	}
	hb := append(common, "heartbeat", "--socket", pc.agents[0].socket)
	if out, err := runCLI(append(hb, "start", "UUID="+info.UUID)...); err != nil {
		t.Fatalf("heartbeat start: %v\n%s", err, out)
	}
	out, err = runCLI(append(hb, "list")...)
	if err != nil || !strings.Contains(out, info.UUID) || !strings.Contains(out, "users=2") {
		t.Fatalf("heartbeat list: %v\n%s", err, out)
	}
	if out, err := runCLI(append(hb, "stop", info.UUID)...); err != nil {
		t.Fatalf("heartbeat stop: %v\n%s", err, out)
	}
	if v := pc.view(0); fmt.Sprint(v) != fmt.Sprint(nodes(0, 1)) {
		t.Fatalf("one user left, yet the view is %v", v)
	}
	if out, err := runCLI(append(hb, "start", "LABEL=no-such-label")...); err == nil || !strings.Contains(err.Error(), "no device found") {
		t.Errorf("unknown label: %v\n%s", err, out)
	}
	// Doctor: node 2 does not run, so it is unreachable; the rest is fine.
	out, err = runCLI(append(common, "doctor", "--node", pc.names[0], "--socket", pc.agents[0].socket)...)
	if err == nil {
		t.Errorf("doctor found nothing wrong although node 2 is down:\n%s", out)
	}
	for _, want := range []string{"[OK  ] configuration", "[OK  ] agent", "[OK  ] reachable: node " + pc.names[1],
		"[FAIL] reachable: node " + pc.names[2], "-> start the agent on " + pc.names[2], "[OK  ] same disk", "[OK  ] stamp",
		"[OK  ] clock skew", "] node name: "} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(append(common, "doctor", "--node", pc.names[0], "--socket", pc.agents[0].socket, "--json")...)
	var findings []map[string]any
	if jerr := json.Unmarshal([]byte(out), &findings); err == nil || jerr != nil || len(findings) < 6 {
		t.Errorf("doctor --json: %v, %v\n%s", err, jerr, out)
	}
	// Offline status: as o2cb's, exit status 0, then o2go's reason.
	out, err = runCLI(append(common, "status", "--node", pc.names[2], "--socket", filepath.Join(pc.dir, "none.sock"))...)
	if err != nil || !strings.Contains(out, `Checking O2CB cluster "proc": Offline`) || !strings.Contains(out, "not running") {
		t.Errorf("offline status: %v\n%s", err, out)
	}
}
