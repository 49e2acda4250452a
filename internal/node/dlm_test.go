package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/dlm"
)

// startDLMs starts the lock manager on every agent of mc and joins domain on
// each of the nodes in who.
func startDLMs(t *testing.T, mc *memCluster, domain string, who ...int) []*DLM {
	t.Helper()
	ds := make([]*DLM, len(mc.agents))
	for i, a := range mc.agents {
		d, err := StartDLM(a)
		if err != nil {
			t.Fatal(err)
		}
		ds[i] = d
	}
	mc.startHeartbeats(who...)
	var members base.NodeMap
	for _, i := range who {
		members.Add(base.NodeID(i))
	}
	mc.waitView(who, members, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, i := range who {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := ds[i].Join(ctx, domain, false); err != nil {
				t.Errorf("node %d: join %s: %v", i, domain, err)
			}
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ds
}

// holders is the test's log of grants: who holds which mode right now, as
// the applications see it. A grant incompatible with a mode held elsewhere
// is a violation of the DLM's first promise.
type holders struct {
	mu     sync.Mutex
	held   map[int]map[dlm.Mode]int // node -> mode -> count
	gone   map[int]bool             // nodes cut off (fenced): their locks no longer count
	grants map[int]int
	bad    []string
}

func newHolders() *holders {
	return &holders{held: map[int]map[dlm.Mode]int{}, gone: map[int]bool{}, grants: map[int]int{}}
}

func (h *holders) grant(node int, m dlm.Mode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone[node] {
		return
	}
	for other, modes := range h.held {
		for om, c := range modes {
			if c > 0 && !dlm.Compatible(om, m) && !h.gone[other] {
				h.bad = append(h.bad, fmt.Sprintf("node %d granted %s while node %d holds %s", node, m, other, om))
			}
		}
	}
	if h.held[node] == nil {
		h.held[node] = map[dlm.Mode]int{}
	}
	h.held[node][m]++
	h.grants[node]++
}

func (h *holders) release(node int, m dlm.Mode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held[node] != nil {
		h.held[node][m]--
	}
}

func (h *holders) cut(node int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gone[node] = true
	delete(h.held, node)
}

func (h *holders) count(node int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.grants[node]
}

// contend runs workers on node i that lock name in random modes until ctx
// ends, logging every grant.
func contend(ctx context.Context, d *DLM, i int, name string, h *holders, seed uint64, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := base.NewRand(seed)
	for ctx.Err() == nil {
		mode := dlm.Mode(1 + rng.Intn(5)) // CR..EX
		l, a, err := d.Lock(ctx, "app", name, mode, 0, nil)
		if err != nil {
			continue
		}
		h.grant(i, a.Mode)
		time.Sleep(time.Duration(rng.Intn(3000)) * time.Microsecond)
		h.release(i, a.Mode)
		if err := l.Unlock(nil); err != nil && ctx.Err() == nil {
			return
		}
		// Leave the machine to the cluster stack now and then: on a loaded
		// test host a starved heartbeat fences a node.
		time.Sleep(time.Duration(1+rng.Intn(2)) * time.Millisecond)
	}
}

// TestDLMAgentsContendAndSurviveAMasterDeath: three agents contend for one
// resource in random modes; every grant is checked against the modes held
// elsewhere. The resource's master is then cut off (it is evicted and
// fences, as a killed node would be declared dead); the survivors' locks
// carry on, and the checks still hold.
func TestDLMAgentsContendAndSurviveAMasterDeath(t *testing.T) {
	mc := newMemCluster(t, 3, nil)
	ds := startDLMs(t, mc, "app", 0, 1, 2)
	// Find R's master: lock it once and look.
	l, _, err := ds[0].Lock(context.Background(), "app", "R", dlm.ModeNL, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ds[0].Locks("app", "R")
	if err != nil || len(rs) != 1 {
		t.Fatalf("locks: %v %+v", err, rs)
	}
	master := int(rs[0].Master)
	if err := l.Unlock(nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("R is mastered by node %d", master)

	h := newHolders()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	ctxs := make([]context.Context, 3)
	cancels := make([]context.CancelFunc, 3)
	for i := range ds {
		ctxs[i], cancels[i] = context.WithCancel(ctx)
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go contend(ctxs[i], ds[i], i, "R", h, uint64(10*i+w+1), &wg)
		}
	}
	time.Sleep(3 * time.Second)
	before := map[int]int{}
	for i := range ds {
		before[i] = h.count(i)
		if before[i] == 0 {
			t.Errorf("node %d got no grant in 3 s of contention", i)
		}
	}
	// Kill the master: cut it off; it is evicted and fences.
	h.cut(master)
	cancels[master]()
	mc.net.Partition(base.NodeMapOf(base.NodeID(master)))
	var survivors []int
	var smap base.NodeMap
	for i := range ds {
		if i != master {
			survivors = append(survivors, i)
			smap.Add(base.NodeID(i))
		}
	}
	mc.waitView(survivors, smap, 30*time.Second)
	// The survivors carry on.
	deadline := time.Now().Add(20 * time.Second)
	for _, i := range survivors {
		for h.count(i) < before[i]+20 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if h.count(i) < before[i]+20 {
			t.Errorf("node %d: %d grants before the death, %d since: stuck", i, before[i], h.count(i)-before[i])
		}
	}
	cancel()
	wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.bad {
		t.Error(b)
	}
	t.Logf("grants: %v", h.grants)
	for _, i := range survivors {
		for _, s := range ds[i].State() {
			if s.Domain == "app" {
				t.Logf("node %d: %s", i, dlm.FormatState(s))
			}
		}
	}
}

// TestDLMAgentsTryFailsFastWhileHeld: NOQUEUE is refused at once while
// another node holds EX, and granted once it is released.
func TestDLMAgentsTryFailsFastWhileHeld(t *testing.T) {
	mc := newMemCluster(t, 2, nil)
	ds := startDLMs(t, mc, "app", 0, 1)
	ctx := context.Background()
	l, _, err := ds[0].Lock(ctx, "app", "T", dlm.ModeEX, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var basted atomic.Bool
	start := time.Now()
	_, _, err = ds[1].Lock(ctx, "app", "T", dlm.ModePR, dlm.NoQueue, func(dlm.BAST) { basted.Store(true) })
	var ng *ErrNotGranted
	if !errors.As(err, &ng) || ng.Status != dlm.StatusBusy {
		t.Fatalf("trylock while held: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("trylock took %v", d)
	}
	var v dlm.LVB
	copy(v[:], "written by node 0")
	if err := l.Unlock(&v); err != nil {
		t.Fatal(err)
	}
	l2, a, err := ds[1].Lock(ctx, "app", "T", dlm.ModePR, dlm.NoQueue, nil)
	if err != nil {
		t.Fatalf("trylock once free: %v", err)
	}
	if !a.LVBRead || !a.LVBValid || string(a.LVB[:17]) != "written by node 0" {
		t.Fatalf("value block read: %+v", a)
	}
	if err := l2.Unlock(nil); err != nil {
		t.Fatal(err)
	}
}

// TestDLMControlBeforeMembershipAndRegisteredTwice: an application asking
// a node that is not in the cluster yet gets a clear answer — at once with
// try, within its timeout otherwise — instead of waiting for ever; and the
// control methods registered a second time on the same server (the agent
// registers them when it starts and again at its first membership event)
// keep the locks a connection took before.
func TestDLMControlBeforeMembershipAndRegisteredTwice(t *testing.T) {
	mc := newMemCluster(t, 1, nil)
	d, err := StartDLM(mc.agents[0])
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ListenControl(filepath.Join(t.TempDir(), "dlm.sock"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	d.RegisterControl(cs)
	cl, err := DialControl(cs.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_ = cl.SetDeadline(time.Now().Add(20 * time.Second)) // a hang fails the test, not the run

	// No heartbeat: no membership.
	start := time.Now()
	var res LockResult
	err = cl.Call("dlm.lock", LockParams{Domain: "app", Name: "A", Try: true}, &res)
	if err == nil || !strings.Contains(err.Error(), "not in the cluster") {
		t.Fatalf("trylock outside the cluster: %+v, %v", res, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("trylock outside the cluster took %v", took)
	}
	start = time.Now()
	err = cl.Call("dlm.lock", LockParams{Domain: "app", Name: "A", TimeoutMs: 300}, &res)
	if err != nil || res.Status != "timed out" || !strings.Contains(res.Detail, "not in the cluster") {
		t.Fatalf("lock with a timeout outside the cluster: %+v, %v", res, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a 300 ms timeout outside the cluster took %v", took)
	}
	if err := cl.Call("dlm.lock", LockParams{Domain: "app", Name: "A", TimeoutMs: -1}, &res); err == nil {
		t.Errorf("a negative timeout was accepted: %+v", res)
	}

	mc.startHeartbeats(0)
	mc.waitView([]int{0}, base.NodeMapOf(0), 30*time.Second)
	res = LockResult{}
	if err := cl.Call("dlm.lock", LockParams{Domain: "app", Name: "A", TimeoutMs: 10000}, &res); err != nil || res.Status != "ok" {
		t.Fatalf("lock in the cluster: %+v, %v", res, err)
	}
	d.RegisterControl(cs) // as the agent's first membership event does
	var conv LockResult
	if err := cl.Call("dlm.convert", UnlockParams{ID: res.ID, Mode: "PR"}, &conv); err != nil || conv.Status != "ok" || conv.Mode != "PR" {
		t.Fatalf("convert after a second registration: %+v, %v", conv, err)
	}
	if err := cl.Call("dlm.unlock", UnlockParams{ID: res.ID}, nil); err != nil {
		t.Fatalf("unlock after a second registration: %v", err)
	}
}

// TestDLMControlConvertTryAndTimeout: through the control API a conversion
// can be a trylock (busy at once) or give up after a timeout (the pending
// conversion is cancelled, the lock keeps its mode), as dlmfs and libo2dlm
// applications can.
func TestDLMControlConvertTryAndTimeout(t *testing.T) {
	mc := newMemCluster(t, 2, nil)
	ds := startDLMs(t, mc, "app", 0, 1)
	cs, err := ListenControl(filepath.Join(t.TempDir(), "dlm.sock"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	ds[1].RegisterControl(cs)
	cl, err := DialControl(cs.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_ = cl.SetDeadline(time.Now().Add(20 * time.Second))
	ctx := context.Background()
	other, _, err := ds[0].Lock(ctx, "app", "C", dlm.ModePR, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var res LockResult
	if err := cl.Call("dlm.lock", LockParams{Domain: "app", Name: "C", Mode: "PR"}, &res); err != nil || res.Status != "ok" {
		t.Fatalf("lock PR: %+v %v", res, err)
	}
	var conv LockResult
	start := time.Now()
	if err := cl.Call("dlm.convert", UnlockParams{ID: res.ID, Mode: "EX", Try: true}, &conv); err != nil || conv.Status != "busy" || conv.Mode != "PR" {
		t.Fatalf("try PR->EX while another node holds PR: %+v %v", conv, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("try conversion took %v", took)
	}
	start = time.Now()
	if err := cl.Call("dlm.convert", UnlockParams{ID: res.ID, Mode: "EX", TimeoutMs: 300}, &conv); err != nil || conv.Status != "timed out" || conv.Mode != "PR" {
		t.Fatalf("PR->EX with a timeout while another node holds PR: %+v %v", conv, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a 300 ms conversion timeout took %v", took)
	}
	if err := other.Unlock(nil); err != nil {
		t.Fatal(err)
	}
	if err := cl.Call("dlm.convert", UnlockParams{ID: res.ID, Mode: "EX", TimeoutMs: 5000}, &conv); err != nil || conv.Status != "ok" || conv.Mode != "EX" {
		t.Fatalf("PR->EX once free: %+v %v", conv, err)
	}
	if err := cl.Call("dlm.unlock", UnlockParams{ID: res.ID}, nil); err != nil {
		t.Fatal(err)
	}
}
