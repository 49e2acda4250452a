package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/cluster/heartbeat"
	"o2go/internal/node/member"
	"o2go/internal/testutil/realtools"
	"o2go/internal/transport"
)

var testSecret = []byte("the test cluster's secret, 32 by")

// fastSettings are short timeouts for tests: interval 200 ms, dead time 2 s,
// the network at config's minimums (idle 5 s).
func fastSettings() config.Settings {
	st := config.DefaultSettings()
	st.Timeouts = config.Timeouts{HeartbeatThreshold: 11, HeartbeatInterval: 200 * time.Millisecond,
		IdleTimeout: 5 * time.Second, KeepaliveDelay: time.Second, ReconnectDelay: 2 * time.Second,
		KillAckTimeout: 600 * time.Millisecond}
	st.FenceMethod = config.FenceExit
	return st
}

func testCluster(t *testing.T, n int) *config.Cluster {
	t.Helper()
	c := &config.ClusterConf{}
	cl, err := c.AddCluster("test")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := cl.AddNode(config.NodeSpec{Name: fmt.Sprintf("n%d", i), IP: fmt.Sprintf("127.0.0.%d", i+1), Port: 7777, Number: i}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return cl
}

// memCluster is agents of one process on a Mem network sharing an image.
type memCluster struct {
	t      *testing.T
	img    string
	net    *transport.Mem
	agents []*Agent
	cancel []context.CancelFunc
	runErr []chan error
	mu     sync.Mutex
	fenced map[int]string
	events map[int][]MembershipEvent
	logs   map[int]*strings.Builder
}

type testWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func newMemCluster(t *testing.T, n int, secrets map[int][]byte) *memCluster {
	t.Helper()
	realtools.Require(t)
	img := realtools.MkfsImage(t, 32<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M")
	mc := &memCluster{t: t, img: img, net: transport.NewMem(), fenced: map[int]string{},
		events: map[int][]MembershipEvent{}, logs: map[int]*strings.Builder{}}
	cl := testCluster(t, n)
	for i := 0; i < n; i++ {
		i := i
		secret := testSecret
		if s, ok := secrets[i]; ok {
			secret = s
		}
		mc.logs[i] = &strings.Builder{}
		log := slog.New(slog.NewTextHandler(testWriter{&mc.mu, mc.logs[i]}, nil))
		a, err := New(Config{Cluster: cl, Node: fmt.Sprintf("n%d", i), Settings: fastSettings(), Secret: secret,
			Socket: "-", Log: log,
			Network: func(id transport.Identity, log transport.Logger) (transport.Endpoint, error) {
				return mc.net.Endpoint(id, log), nil
			},
			Fence: func(m config.FenceMethod, reason string) {
				mc.mu.Lock()
				mc.fenced[i] = reason
				mc.mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		a.Subscribe("test", PriorityHA, func(e MembershipEvent) {
			mc.mu.Lock()
			mc.events[i] = append(mc.events[i], e)
			mc.mu.Unlock()
		})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- a.Run(ctx) }()
		mc.agents = append(mc.agents, a)
		mc.cancel = append(mc.cancel, cancel)
		mc.runErr = append(mc.runErr, errc)
	}
	t.Cleanup(func() {
		for i, c := range mc.cancel {
			c()
			select {
			case <-mc.runErr[i]:
			case <-time.After(5 * time.Second):
			}
		}
		if t.Failed() {
			for i := range mc.agents {
				mc.mu.Lock()
				t.Logf("--- log of node %d:\n%s", i, mc.logs[i].String())
				mc.mu.Unlock()
			}
		}
	})
	return mc
}

// startHeartbeats starts every agent's heartbeat on the image (in parallel:
// each waits until its region is steady).
func (mc *memCluster) startHeartbeats(which ...int) {
	var wg sync.WaitGroup
	for _, i := range which {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := mc.agents[i].StartHeartbeat(mc.img); err != nil {
				mc.t.Errorf("node %d: heartbeat start: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
}

// waitView waits until every agent in who has a view of exactly members.
func (mc *memCluster) waitView(who []int, members base.NodeMap, within time.Duration) time.Duration {
	mc.t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		ok := true
		for _, i := range who {
			if v := mc.agents[i].View(); v.Members != members {
				ok = false
			}
		}
		if ok {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var got []string
	for _, i := range who {
		got = append(got, fmt.Sprintf("node %d: %v", i, mc.agents[i].View()))
	}
	mc.t.Fatalf("no view [%v] within %v: %s", members, within, strings.Join(got, "; "))
	return 0
}

func (mc *memCluster) fencedReason(i int) (string, bool) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	r, ok := mc.fenced[i]
	return r, ok
}

// checkSameEvents: every node delivered the same non-initial events for
// the sequence numbers they share.
func (mc *memCluster) checkSameEvents() {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	seen := map[uint64]string{}
	for i, evs := range mc.events {
		for _, e := range evs {
			if e.Initial {
				continue
			}
			s := fmt.Sprintf("epoch %d node %d %v", e.Epoch, e.Node, e.Kind)
			if p, ok := seen[e.Seq]; ok && p != s {
				mc.t.Errorf("node %d delivered event %d as %q, another node as %q", i, e.Seq, s, p)
			}
			seen[e.Seq] = s
		}
	}
}

func TestAgentsFormAClusterAndSeeACleanStop(t *testing.T) {
	mc := newMemCluster(t, 3, nil)
	mc.startHeartbeats(0, 1, 2)
	mc.waitView([]int{0, 1, 2}, base.NodeMapOf(0, 1, 2), 20*time.Second)
	st, err := mc.agents[1].Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Regions) != 1 || !st.Regions[0].KillArea || len(st.Nodes) != 3 || !st.Nodes[0].Live || st.Nodes[0].Connection != "up" {
		t.Fatalf("status: %+v", st)
	}
	// A clean stop writes generation 0: the others see node 2 gone at once.
	mc.cancel[2]()
	d := mc.waitView([]int{0, 1}, base.NodeMapOf(0, 1), 5*time.Second)
	t.Logf("node 2 stopped; the others' view followed in %v", d)
	if _, f := mc.fencedReason(2); f {
		t.Fatal("a clean stop fenced")
	}
	mc.checkSameEvents()
}

func TestAgentPartitionedNodeIsEvicted(t *testing.T) {
	mc := newMemCluster(t, 3, nil)
	mc.startHeartbeats(0, 1, 2)
	mc.waitView([]int{0, 1, 2}, base.NodeMapOf(0, 1, 2), 20*time.Second)
	cut := time.Now()
	mc.net.Partition(base.NodeMapOf(2))
	d := mc.waitView([]int{0, 1}, base.NodeMapOf(0, 1), 20*time.Second)
	reason, fenced := mc.fencedReason(2)
	if !fenced {
		t.Fatal("the cut-off node did not fence")
	}
	t.Logf("cut at %v; survivors proceeded after %v; node 2 fenced: %s", cut.Format("15:04:05.000"), d, reason)
	// Kill blocks: the survivors proceed once the idle timeout noticed the
	// cut, plus a few heartbeat intervals (kill block, acknowledgement).
	st := fastSettings().Timeouts
	if bound := st.IdleTimeout + 10*st.HeartbeatInterval; d > bound+2*time.Second {
		t.Errorf("survivors took %v, more than the idle timeout plus ten intervals (%v)", d, bound)
	}
	// Both survivors decide to evict it; whichever kill block it reads
	// first is the one it obeys.
	if !strings.Contains(reason, "evicted by node 0") && !strings.Contains(reason, "evicted by node 1") {
		t.Errorf("node 2 fenced for another reason: %s", reason)
	}
	mc.checkSameEvents()
}

func TestAgentWithWrongSecretNeverJoins(t *testing.T) {
	mc := newMemCluster(t, 3, map[int][]byte{2: []byte("an intruder's secret of 32 bytes")})
	mc.startHeartbeats(0, 1)
	mc.waitView([]int{0, 1}, base.NodeMapOf(0, 1), 20*time.Second)
	go mc.agents[2].StartHeartbeat(mc.img)
	deadline := time.Now().Add(12 * time.Second)
	for time.Now().Before(deadline) {
		for _, i := range []int{0, 1} {
			if v := mc.agents[i].View(); v.Members.Has(2) {
				t.Fatalf("node %d admitted the node with the wrong secret: %v", i, v)
			}
		}
		if _, f := mc.fencedReason(2); f {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mc.mu.Lock()
	logs := mc.logs[2].String()
	mc.mu.Unlock()
	if !strings.Contains(logs, "authentication failed") {
		t.Errorf("the intruder's log does not say it was refused:\n%s", logs)
	}
	mc.mu.Lock()
	logs0 := mc.logs[0].String()
	mc.mu.Unlock()
	if !strings.Contains(logs0, "refused connection from node 2") || !strings.Contains(logs0, "authentication failed") {
		t.Errorf("node 0's log does not record the refusal:\n%s", logs0)
	}
	// It heartbeats on the disk but cannot talk: the survivors, who have
	// quorum, evict it through its kill block.
	if r, f := mc.fencedReason(2); !f {
		t.Error("the node with the wrong secret was not evicted")
	} else {
		t.Logf("intruder fenced: %s", r)
	}
	mc.waitView([]int{0, 1}, base.NodeMapOf(0, 1), 10*time.Second)
}

func TestGateRefusesAfterLease(t *testing.T) {
	now := time.Duration(0)
	fenced := ""
	g := &gate{clock: func() time.Duration { return now }, onFence: func(r string) { fenced = r }}
	if err := g.check(false); !errors.Is(err, errNoLeaseSentinel()) {
		t.Fatalf("no lease: %v", err)
	}
	if err := g.check(true); err != nil {
		t.Fatalf("heartbeat before a lease: %v", err)
	}
	g.publish(gateState{leaseExp: int64(10 * time.Second)})
	now = 9 * time.Second
	if err := g.check(false); err != nil {
		t.Fatalf("within the lease: %v", err)
	}
	now = 11 * time.Second
	if err := g.check(true); err == nil || fenced == "" {
		t.Fatalf("a heartbeat write after the lease passed: %v", err)
	}
	g.fenced.Store(true)
	g.publish(gateState{leaseExp: int64(20 * time.Second), frozen: true})
	if err := g.check(true); err == nil {
		t.Fatal("a fenced node wrote")
	}
	_ = heartbeat.Local
}

func errNoLeaseSentinel() error { return memberErrNoLease }

var memberErrNoLease = member.ErrNoLease

// TestGlobalHeartbeatAgents: global mode, three heartbeat-only devices made
// by mkfs.ocfs2 -H, found by UUID through --scan: the agents heartbeat on all
// three (with kill blocks past each device's 1 MiB file system) and form a
// view; a clean stop is seen at once.
func TestGlobalHeartbeatAgents(t *testing.T) {
	realtools.Require(t)
	dir := t.TempDir()
	cl := testCluster(t, 3)
	cl.HeartbeatMode = config.HeartbeatGlobal
	var uuids []string
	for i := 0; i < 3; i++ {
		img := realtools.MkfsImage(t, 8<<20, "-H")
		p := filepath.Join(dir, fmt.Sprintf("hb%d.img", i))
		if err := os.Rename(img, p); err != nil {
			t.Fatal(err)
		}
		info, err := ProbeVolume(p)
		if err != nil {
			t.Fatal(err)
		}
		if !info.HeartbeatDevice || !info.Geometry.HasKill {
			t.Fatalf("%s: heartbeat device %v, kill area %v", p, info.HeartbeatDevice, info.Geometry.HasKill)
		}
		if _, err := cl.AddHeartbeat(info.UUID); err != nil {
			t.Fatal(err)
		}
		uuids = append(uuids, info.UUID)
	}
	mem := transport.NewMem()
	var agents []*Agent
	var cancels []context.CancelFunc
	var errs []chan error
	for i := 0; i < 3; i++ {
		a, err := New(Config{Cluster: cl, Node: fmt.Sprintf("n%d", i), Settings: fastSettings(), Secret: testSecret,
			Socket: "-", Scan: []string{dir}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Network: func(id transport.Identity, log transport.Logger) (transport.Endpoint, error) {
				return mem.Endpoint(id, log), nil
			},
			Fence: func(config.FenceMethod, string) { t.Errorf("node %d fenced", i) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- a.Run(ctx) }()
		agents, cancels, errs = append(agents, a), append(cancels, cancel), append(errs, errc)
	}
	defer func() {
		for i, c := range cancels {
			c()
			<-errs[i]
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, a := range agents {
			if a.View().Members != base.NodeMapOf(0, 1, 2) {
				ok = false
			}
		}
		if ok {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := agents[0].Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Regions) != 3 || fmt.Sprint(st.Members) != "[0 1 2]" {
		t.Fatalf("status: regions %+v members %v", st.Regions, st.Members)
	}
	for _, r := range st.Regions {
		if !r.KillArea || fmt.Sprint(r.Live) != "[0 1 2]" {
			t.Errorf("region %+v", r)
		}
	}
	if hb := agents[1].Heartbeats(); len(hb) != 3 {
		t.Errorf("heartbeats %+v", hb)
	}
	// A volume mounted in global mode gets no region of its own: the voting
	// disks stay the three configured ones.
	// (Formatted for global heartbeat: one formatted for local heartbeat is
	// refused, as mount.ocfs2 refuses it.)
	localVol := realtools.MkfsImage(t, 32<<20, "-b", "4096", "-N", "4", "-J", "size=4M")
	if _, err := agents[0].StartHeartbeat(localVol); err == nil || !strings.Contains(err.Error(), "heartbeat mode is invalid") {
		t.Fatalf("a volume formatted for local heartbeat in global mode: %v, want it refused", err)
	}
	vol := filepath.Join(dir, "vol.img")
	if err := os.Rename(realtools.MkfsImage(t, 32<<20, "-b", "4096", "-N", "4", "-J", "size=4M",
		"--cluster-stack=o2cb", "--cluster-name=test", "--global-heartbeat"), vol); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		ri, err := agents[0].StartHeartbeat(vol)
		if err != nil || ri.Device != vol || ri.Refs != want {
			t.Fatalf("volume in global mode: %+v %v", ri, err)
		}
	}
	if hb := agents[0].Heartbeats(); len(hb) != 3 {
		t.Errorf("a volume got a heartbeat region of its own in global mode: %+v", hb)
	}
	if st, err := agents[0].Status(); err != nil || len(st.Regions) != 3 {
		t.Errorf("status regions after a volume started: %+v %v", st, err)
	}
	for want := 1; want >= 0; want-- {
		if ri, err := agents[0].StopHeartbeat(vol); err != nil || ri.Refs != want {
			t.Errorf("stop: %+v %v", ri, err)
		}
	}
	if _, err := agents[0].StopHeartbeat(vol); err == nil {
		t.Error("a volume without users stopped once more")
	}
	cancels[2]()
	<-errs[2]
	cancels[2] = func() {}
	errs[2] <- nil
	deadline = time.Now().Add(5 * time.Second)
	for agents[0].View().Members != base.NodeMapOf(0, 1) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if v := agents[0].View(); v.Members != base.NodeMapOf(0, 1) {
		t.Fatalf("after node 2 stopped: %v", v)
	}
	_ = uuids
}
