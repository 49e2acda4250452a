package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
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
	"o2go/internal/node"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// doctorRun is one o2go cluster doctor run: its findings (--json) and
// exit status.
type doctorRun struct {
	findings []finding
	failed   bool
}

// runDoctor runs doctor with --json, checks that every WARN and FAIL says
// what to do, and returns the findings.
func runDoctor(t *testing.T, pc *procCluster, args ...string) doctorRun {
	t.Helper()
	all := append([]string{"cluster", "--config", pc.conf, "--sysconfig", pc.sysconf, "doctor", "--json"}, args...)
	out, err := runCLI(all...)
	var r doctorRun
	if jerr := json.Unmarshal([]byte(out), &r.findings); jerr != nil || len(r.findings) == 0 {
		t.Fatalf("doctor %s: %v, %v\n%s", strings.Join(args, " "), err, jerr, out)
	}
	for _, f := range r.findings {
		if f.Level != "ok" && f.Level != "warn" && f.Level != "fail" {
			t.Errorf("finding %+v: level %q", f, f.Level)
		}
		if f.Level != "ok" && strings.TrimSpace(f.Fix) == "" {
			t.Errorf("%s finding says nothing to do: %+v", strings.ToUpper(f.Level), f)
		}
		r.failed = r.failed || f.Level == "fail"
	}
	var ee *exitError
	if r.failed != (err != nil) || err != nil && (!errors.As(err, &ee) || ee.code != 1) {
		t.Errorf("doctor %s: exit %v with failed=%v", strings.Join(args, " "), err, r.failed)
	}
	return r
}

// want returns the one finding of check at level whose detail contains
// every part; it fails the test when there is none.
func (r doctorRun) want(t *testing.T, check, level string, parts ...string) finding {
	t.Helper()
	for _, f := range r.findings {
		if f.Check != check || f.Level != level {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(f.Detail, p)
		}
		if ok {
			return f
		}
	}
	var b strings.Builder
	printFindings(&b, r.findings)
	t.Fatalf("no [%s] %s finding with %q in:\n%s", strings.ToUpper(level), check, parts, b.String())
	return finding{}
}

// none fails the test when a finding of check at level exists.
func (r doctorRun) none(t *testing.T, check, level string) {
	t.Helper()
	for _, f := range r.findings {
		if f.Check == check && f.Level == level {
			t.Errorf("unexpected [%s] %s: %s", strings.ToUpper(level), check, f.Detail)
		}
	}
}

func wantFix(t *testing.T, f finding, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(f.Fix, p) {
			t.Errorf("[%s] %s: the fix %q does not say %q", strings.ToUpper(f.Level), f.Check, f.Fix, p)
		}
	}
}

// editConf rewrites the procCluster's cluster.conf.
func editConf(t *testing.T, pc *procCluster, edit func(cl *config.Cluster)) {
	t.Helper()
	c, err := config.Load(pc.conf)
	if err != nil {
		t.Fatal(err)
	}
	edit(&c.Clusters[0])
	if err := c.Save(pc.conf); err != nil {
		t.Fatal(err)
	}
}

// fakeBeat writes node n's heartbeat sector on img every 50 ms, as an o2go
// agent whose wall clock is shift off this host's would, until the test
// ends.
func fakeBeat(t *testing.T, img string, n base.NodeID, gen uint64, shift time.Duration) {
	t.Helper()
	info, err := node.ProbeVolume(img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sector := make([]byte, info.Geometry.SectorSize)
	write := func() error {
		hb := ondisk.HeartbeatBlock{Seq: uint64(time.Now().Add(shift).UnixMilli()), Node: uint8(n), Generation: gen, DeadMs: 2000}
		if err := hb.Encode(sector); err != nil {
			return err
		}
		_, err := f.WriteAt(sector, info.Geometry.SlotOffset(n))
		return err
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if err := write(); err != nil {
					t.Errorf("fake heartbeat of node %d: %v", n, err)
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
		f.Close()
	})
}

var skewOf = regexp.MustCompile(`(\S+) ([+-]\d+)ms`)

// skews parses a clock skew finding's "NAME +Nms" parts.
func skews(t *testing.T, f finding) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range skewOf.FindAllStringSubmatch(f.Detail, -1) {
		v, _ := strconv.Atoi(m[2])
		out[m[1]] = v
	}
	return out
}

// TestDoctorFailsWithoutAgents drives doctor's WARN and FAIL paths that
// need no running agent: an unknown node name, a volume stamped for another
// cluster (local and global mode), another host heartbeating in this
// node's slot, a node whose clock is ten seconds ahead, an ip_address that
// is not this host's, and peers that refuse or cannot be reached.
func TestDoctorFailsWithoutAgents(t *testing.T) {
	pc := newProcCluster(t, 3, loopbackIPs(3))
	n0 := pc.names[0]

	t.Run("node not in the configuration", func(t *testing.T) {
		r := runDoctor(t, pc, "--node", "nosuchnode")
		f := r.want(t, "node name", "fail", `"nosuchnode" is not in cluster proc`, pc.names[1])
		wantFix(t, f, "--node", "o2go cluster add-node proc")
		if len(r.findings) != 2 {
			t.Errorf("doctor went on without a node: %+v", r.findings)
		}
		// No --node, and this host's name is none of the nodes'.
		r = runDoctor(t, pc)
		f = r.want(t, "node name", "fail", "is not a node of cluster proc", pc.names[0])
		wantFix(t, f, "--node")
	})

	t.Run("volume stamped for another cluster", func(t *testing.T) {
		other := realtools.MkfsImage(t, 32<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M",
			"--cluster-stack=o2cb", "--cluster-name=other")
		r := runDoctor(t, pc, "--node", n0, "--scan", other+","+pc.img)
		f := r.want(t, "stamp", "fail", other, `stamped for cluster "other"`, `cluster "proc"`)
		wantFix(t, f, "o2go tunefs --update-cluster-stack "+other)
		r.want(t, "stamp", "ok", pc.img, "classic o2cb")
		r.want(t, "agent", "warn", n0)

		// Global mode: a configured heartbeat device stamped for another
		// cluster is found by its UUID, and failed.
		dir := filepath.Join(t.TempDir(), "hb")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		hb := filepath.Join(dir, "hb0.img")
		if err := os.Rename(realtools.MkfsImage(t, 8<<20, "-H", "--cluster-stack=o2cb", "--cluster-name=other"), hb); err != nil {
			t.Fatal(err)
		}
		info, err := node.ProbeVolume(hb)
		if err != nil {
			t.Fatal(err)
		}
		keep, err := os.ReadFile(pc.conf)
		if err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(pc.conf, keep, 0o644)
		editConf(t, pc, func(cl *config.Cluster) {
			if err := cl.SetHeartbeatMode("global"); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.AddHeartbeat(info.UUID); err != nil {
				t.Fatal(err)
			}
		})
		r = runDoctor(t, pc, "--node", n0, "--scan", dir)
		r.want(t, "heartbeat device", "ok", info.UUID, hb)
		f = r.want(t, "stamp", "fail", hb, `stamped for cluster "other"`)
		wantFix(t, f, "o2go tunefs --update-cluster-stack "+hb)
	})

	t.Run("another host heartbeats as this node", func(t *testing.T) {
		fakeBeat(t, pc.img, 0, 0x1234567890abcdef, 0)
		r := runDoctor(t, pc, "--node", n0, "--scan", pc.img)
		f := r.want(t, "node number", "fail", "another host heartbeats in slot 0", "1234567890abcdef", "two hosts use number 0")
		wantFix(t, f, "give each host its own node")
		// Seen from node 1, the same slot is node 0's: nothing wrong.
		r = runDoctor(t, pc, "--node", pc.names[1], "--scan", pc.img)
		r.want(t, "node number", "ok", "nobody heartbeats in slot 1")
		r.none(t, "node number", "fail")
	})

	t.Run("clock ten seconds ahead", func(t *testing.T) {
		fakeBeat(t, pc.img, 1, 0x1111, 0)
		fakeBeat(t, pc.img, 2, 0x2222, 10*time.Second)
		r := runDoctor(t, pc, "--node", n0, "--scan", pc.img)
		f := r.want(t, "clock skew", "warn", pc.img, pc.names[1], pc.names[2])
		wantFix(t, f, "NTP")
		s := skews(t, f)
		if v := s[pc.names[2]]; v < 9000 || v > 10000 {
			t.Errorf("node 2 runs 10 s ahead, doctor says %+dms: %s", v, f.Detail)
		}
		if v := s[pc.names[1]]; v < -1000 || v > 1000 {
			t.Errorf("node 1's clock is this host's, doctor says %+dms: %s", v, f.Detail)
		}
	})

	t.Run("addresses", func(t *testing.T) {
		keep, err := os.ReadFile(pc.conf)
		if err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(pc.conf, keep, 0o644)
		// Node 1 is on a network this loopback-addressed node cannot
		// reach; node 2 runs no agent (refused).
		editConf(t, pc, func(cl *config.Cluster) { cl.Nodes[1].Addr = netip.MustParseAddr("198.51.100.7") })
		r := runDoctor(t, pc, "--node", n0)
		r.want(t, "address", "ok", "127.0.0.1")
		f := r.want(t, "reachable", "fail", pc.names[1], "198.51.100.7")
		wantFix(t, f, "loopback ip_address", "cluster.conf")
		f = r.want(t, "reachable", "fail", pc.names[2], "refused")
		wantFix(t, f, "start the agent on "+pc.names[2], "port "+strconv.Itoa(pc.port))
		// As node 1, whose ip_address is not on this host.
		r = runDoctor(t, pc, "--node", pc.names[1])
		f = r.want(t, "address", "fail", "198.51.100.7", "not an address of this host")
		wantFix(t, f, "set ip_address of node "+pc.names[1])
		r.want(t, "reachable", "fail", pc.names[0], "from this host (its ip_address is not on it)")
	})
}

// TestDoctorReachFix: what doctor says to do for each way a connection to
// a peer fails.
func TestDoctorReachFix(t *testing.T) {
	lo := config.Node{Name: "a", Number: 0, Addr: netip.MustParseAddr("127.0.0.1"), Port: 7777}
	self := config.Node{Name: "a", Number: 0, Addr: netip.MustParseAddr("10.0.0.1"), Port: 7777}
	peer := config.Node{Name: "b", Number: 1, Addr: netip.MustParseAddr("10.0.0.2"), Port: 7777}
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp4", Err: os.NewSyscallError("connect", err)}
	}
	for _, c := range []struct {
		self config.Node
		err  error
		want string
	}{
		{self, op(syscall.ECONNREFUSED), "start the agent on b (o2go agent --node b), or open TCP port 7777"},
		{self, op(syscall.ETIMEDOUT), "check the network between this host and 10.0.0.2"},
		{self, op(syscall.ENETUNREACH), "check the network between this host and 10.0.0.2"},
		{self, op(syscall.EHOSTUNREACH), "check the network between this host and 10.0.0.2"},
		{lo, op(syscall.EINVAL), "node a has a loopback ip_address"},
		{self, &net.OpError{Op: "dial", Net: "tcp4", Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}, "set ip_address of node a"},
	} {
		if got := reachFix(c.self, peer, c.err); !strings.Contains(got, c.want) {
			t.Errorf("%v from %s: %q, want %q", c.err, c.self.Addr, got, c.want)
		}
	}
}

// TestDoctorAgentNumberAndConfiguration runs agents 0 and 1: doctor finds
// node 0's agent, its number and its slot as cluster.conf says; then
// cluster.conf swaps the two nodes' numbers, and the sysconfig file changes
// a timeout, while the agents run on the old ones: doctor fails the node
// number, the slot and the agent's configuration, each with what to do.
func TestDoctorAgentNumberAndConfiguration(t *testing.T) {
	pc := newProcCluster(t, 3, loopbackIPs(3))
	pc.start(0)
	pc.start(1)
	pc.waitView([]int{0, 1}, nodes(0, 1), 30*time.Second)
	var st node.Status
	if err := pc.call(0, "status", &st); err != nil {
		t.Fatal(err)
	}
	args := []string{"--node", pc.names[0], "--socket", pc.agents[0].socket}
	r := runDoctor(t, pc, args...)
	r.want(t, "node number", "ok", "the agent runs as node "+pc.names[0]+", number 0")
	r.want(t, "node number", "ok", "slot 0 carries this node's agent's heartbeat", st.Generation)
	r.want(t, "agent configuration", "ok")
	r.want(t, "clock skew", "ok", pc.names[0], pc.names[1])
	r.none(t, "node number", "fail")

	editConf(t, pc, func(cl *config.Cluster) {
		cl.Nodes[0].Number, cl.Nodes[1].Number = 1, 0
	})
	sys, err := os.ReadFile(pc.sysconf)
	if err != nil {
		t.Fatal(err)
	}
	changed := regexp.MustCompile(`(?m)^O2CB_IDLE_TIMEOUT_MS=.*$`).ReplaceAll(sys, []byte("O2CB_IDLE_TIMEOUT_MS=6000"))
	if string(changed) == string(sys) {
		t.Fatalf("no O2CB_IDLE_TIMEOUT_MS in\n%s", sys)
	}
	if err := os.WriteFile(pc.sysconf, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runDoctor(t, pc, args...)
	f := r.want(t, "node number", "fail", "runs as node "+pc.names[0]+", number 0", "is number 1")
	wantFix(t, f, "restart the agent of node "+pc.names[0])
	f = r.want(t, "node number", "fail", "another host heartbeats in slot 1", "not this node's agent (generation "+st.Generation+")")
	wantFix(t, f, "give each host its own node")
	f = r.want(t, "agent configuration", "fail", "cluster.conf", fmt.Sprintf("%s=%d, the file says 6000", config.VarIdleTimeout, testIdle.Milliseconds()))
	wantFix(t, f, "restart the agent of node "+pc.names[0])
	if !r.failed {
		t.Error("doctor passed")
	}
}
