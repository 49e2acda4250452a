package node

import (
	"context"
	"errors"
	"fmt"
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
