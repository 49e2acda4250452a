package node

import (
	"context"
	"encoding/json"
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

// nameMasteredBy finds a resource name of domain dom that node master
// masters in the current view (probing with NL locks from d).
func nameMasteredBy(t *testing.T, d *DLM, dom, prefix string, master ...int) string {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		l, _, err := d.Lock(ctx, dom, name, dlm.ModeNL, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := d.Locks(dom, name)
		if err != nil || len(rs) != 1 {
			t.Fatalf("locks %s: %v %+v", name, err, rs)
		}
		if err := l.Unlock(nil); err != nil {
			t.Fatal(err)
		}
		for _, m := range master {
			if int(rs[0].Master) == m {
				return name
			}
		}
	}
	t.Fatalf("no name of %s mastered by %v among 200", dom, master)
	return ""
}

// TestDLMAgentsDeathDuringRecoveryAndFileSystemFirst: real agents, a gated
// (file-system) domain over four nodes. Node 3 holds EX on A and PR on G; G
// is mastered by node 2. Node 3 is cut off, and node 2 a second later:
// node 3's recovery cannot finish without node 2, which dies during it, and
// the recovery restarts (the domain's epoch moves twice). The survivors'
// locks carry on; the DLM tells the file system it may recover each dead
// node (EventRecovered), and nothing conflicting with a dead node's locks
// is granted before the file system says it has (RecoveryDone).
func TestDLMAgentsDeathDuringRecoveryAndFileSystemFirst(t *testing.T) {
	mc := newMemCluster(t, 4, nil)
	ds := make([]*DLM, 4)
	for i, a := range mc.agents {
		d, err := StartDLM(a)
		if err != nil {
			t.Fatal(err)
		}
		ds[i] = d
	}
	var mu sync.Mutex
	type fsEvent struct {
		node int
		e    dlm.Event
		at   time.Time
	}
	var events []fsEvent
	for i, d := range ds {
		i := i
		d.OnEvent(func(e dlm.Event) {
			if e.Domain == "vol" && (e.Kind == dlm.EventRecovered || e.Kind == dlm.EventReleased) {
				mu.Lock()
				events = append(events, fsEvent{i, e, time.Now()})
				mu.Unlock()
			}
		})
	}
	mc.startHeartbeats(0, 1, 2, 3)
	mc.waitView([]int{0, 1, 2, 3}, base.NodeMapOf(0, 1, 2, 3), 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Add(1)
		go func(d *DLM) {
			defer wg.Done()
			if err := d.Join(ctx, "vol", true); err != nil {
				t.Errorf("join: %v", err)
			}
		}(d)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	g := nameMasteredBy(t, ds[0], "vol", "G", 2)
	a := nameMasteredBy(t, ds[0], "vol", "A", 0, 1)
	t.Logf("%s is mastered by node 2, %s by a survivor", g, a)
	if _, _, err := ds[3].Lock(ctx, "vol", a, dlm.ModeEX, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ds[3].Lock(ctx, "vol", g, dlm.ModePR, 0, nil); err != nil {
		t.Fatal(err)
	}
	g1, _, err := ds[1].Lock(ctx, "vol", g, dlm.ModePR, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	epoch0 := domainState(t, ds[0], "vol").Epoch

	// Node 0 waits for A (node 3 holds EX); node 1 raises G to EX (node 3
	// holds PR). Both are answered only after the file system's recoveries.
	type outcome struct {
		err error
		at  time.Time
	}
	aDone := make(chan outcome, 1)
	go func() {
		_, _, err := ds[0].Lock(ctx, "vol", a, dlm.ModeEX, 0, nil)
		aDone <- outcome{err, time.Now()}
	}()
	gDone := make(chan outcome, 1)
	go func() {
		_, err := g1.Convert(ctx, dlm.ModeEX, 0, nil)
		gDone <- outcome{err, time.Now()}
	}()

	// Node 2's lock manager stops sending (its cluster stack carries on),
	// then node 3 is cut off: node 3's recovery starts and stalls, waiting
	// for node 2's markers.
	ds[2].mu.Lock()
	for _, x := range []base.NodeID{0, 1, 3} {
		p := ds[2].peer(x)
		p.mu.Lock()
		p.hold = true
		p.mu.Unlock()
	}
	ds[2].mu.Unlock()
	mc.net.Partition(base.NodeMapOf(3))
	var stalledSince time.Time
	deadline := time.Now().Add(40 * time.Second)
	for {
		st := domainState(t, ds[0], "vol")
		r := st.Recovery
		if r != nil && len(r.Dead) == 1 && r.Dead[0].Node == 3 && r.Epoch == epoch0+1 {
			if stalledSince.IsZero() {
				stalledSince = time.Now()
				t.Logf("node 3's recovery under way:\n%s", dlm.FormatState(st))
			}
			if time.Since(stalledSince) > time.Second {
				break
			}
		} else if !stalledSince.IsZero() {
			t.Fatalf("node 3's recovery ended while node 2 hangs:\n%s", dlm.FormatState(st))
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 3's recovery did not start within 40 s:\n%s", dlm.FormatState(st))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Node 2 dies during it (cut off, evicted): the recovery restarts.
	mc.net.Partition(base.NodeMapOf(2))
	for {
		st := domainState(t, ds[0], "vol")
		if st.Recovery == nil && st.Epoch > epoch0 && len(st.DomainMap) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery of nodes 2 and 3 within 40 s:\n%s", dlm.FormatState(st))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, i := range []int{0, 1} {
		st := domainState(t, ds[i], "vol")
		if st.Epoch != epoch0+2 {
			t.Errorf("node %d: epoch %d after the deaths, want %d (node 3's recovery, restarted when node 2 died during it)\n%s", i, st.Epoch, epoch0+2, dlm.FormatState(st))
		}
		if len(st.Pending) != 2 {
			t.Errorf("node %d: awaiting the file system's recovery of %v, want nodes 2 and 3", i, st.Pending)
		}
	}
	// The file system's turn: both survivors heard that they may recover
	// each dead node; nothing conflicting is granted meanwhile.
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	recovered := func(node, dead int) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e.node == node && e.e.Kind == dlm.EventRecovered && int(e.e.Dead.Node) == dead {
				return true
			}
		}
		return false
	}
	for _, i := range []int{0, 1} {
		for _, dead := range []int{2, 3} {
			waitFor(fmt.Sprintf("node %d: EventRecovered for node %d", i, dead), func() bool { return recovered(i, dead) })
		}
	}
	time.Sleep(500 * time.Millisecond)
	select {
	case o := <-aDone:
		t.Fatalf("node 0 got A (%v) before the file system recovered node 3", o.err)
	case o := <-gDone:
		t.Fatalf("node 1 got G in EX (%v) before the file system recovered nodes 2 and 3", o.err)
	default:
	}
	// Node 1's PR on G survived its master's death.
	if st := localLock(t, ds[1], "vol", g); st.Mode != dlm.ModePR {
		t.Errorf("node 1's lock on %s after the recovery: %+v, want PR held", g, st)
	}
	if err := ds[1].RecoveryDone("vol", 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-aDone:
		t.Fatal("node 0 got A before the file system recovered node 3 (its holder)")
	case <-gDone:
		t.Fatal("node 1 got G in EX before the file system recovered node 3 (a holder)")
	default:
	}
	released := time.Now()
	if err := ds[0].RecoveryDone("vol", 3); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan outcome{aDone, gDone} {
		select {
		case o := <-ch:
			if o.err != nil {
				t.Fatalf("after the recoveries: %v", o.err)
			}
			if o.at.Before(released) {
				t.Errorf("granted %v before the release", released.Sub(o.at))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("not granted 10 s after the file system recovered both dead nodes")
		}
	}
	// Per node: the DLM's recovery of a dead node before its release.
	mu.Lock()
	defer mu.Unlock()
	for _, i := range []int{0, 1} {
		seen := map[base.NodeID]bool{}
		for _, e := range events {
			if e.node != i {
				continue
			}
			switch e.e.Kind {
			case dlm.EventRecovered:
				seen[e.e.Dead.Node] = true
			case dlm.EventReleased:
				if !seen[e.e.Dead.Node] {
					t.Errorf("node %d: node %d released before its recovery was announced", i, e.e.Dead.Node)
				}
			}
		}
	}
}

func domainState(t *testing.T, d *DLM, dom string) dlm.DomainState {
	t.Helper()
	for _, s := range d.State() {
		if s.Domain == dom {
			return s
		}
	}
	t.Fatalf("no domain %s", dom)
	return dlm.DomainState{}
}

// localLock returns d's only lock on dom/name.
func localLock(t *testing.T, d *DLM, dom, name string) dlm.LocalLock {
	t.Helper()
	rs, err := d.Locks(dom, name)
	if err != nil || len(rs) != 1 || len(rs[0].Local) != 1 {
		t.Fatalf("locks %s/%s: %v %+v", dom, name, err, rs)
	}
	return rs[0].Local[0]
}

// TestDLMControlBlockingNotifications: an application holding a lock
// through the control API with notify hears, as a "dlm.bast" event on its
// connection, that another node waits for a mode its lock excludes; events
// that arrive during a call are kept for NextEvent, and the answer is not
// taken for one.
func TestDLMControlBlockingNotifications(t *testing.T) {
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
	var res LockResult
	if err := cl.Call("dlm.lock", LockParams{Domain: "app", Name: "N", Mode: "PW", Notify: true}, &res); err != nil || res.Status != "ok" {
		t.Fatalf("lock PW with notify: %+v %v", res, err)
	}
	granted := make(chan error, 1)
	go func() {
		l, _, err := ds[0].Lock(context.Background(), "app", "N", dlm.ModePR, 0, nil)
		if err == nil {
			err = l.Unlock(nil)
		}
		granted <- err
	}()
	e, err := cl.NextEvent()
	if err != nil {
		t.Fatal(err)
	}
	var b BASTEvent
	if err := json.Unmarshal(e.Data, &b); err != nil || e.Name != "dlm.bast" || b.ID != res.ID || b.Mode != "PR" || b.Domain != "app" || b.Name != "N" {
		t.Fatalf("event %s %s (%v), want dlm.bast for lock %d wanting PR", e.Name, e.Data, err, res.ID)
	}
	select {
	case err := <-granted:
		t.Fatalf("node 0 got PR while node 1 holds PW: %v", err)
	default:
	}
	// Give way: down to CR (compatible with PR); the waiter gets its lock.
	var conv LockResult
	if err := cl.Call("dlm.convert", UnlockParams{ID: res.ID, Mode: "CR"}, &conv); err != nil || conv.Status != "ok" {
		t.Fatalf("convert to CR: %+v %v", conv, err)
	}
	select {
	case err := <-granted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node 0 not granted PR 10 s after the holder went down to CR")
	}
	// A notification that comes during a call is kept, not taken for its
	// answer.
	l0, _, err := ds[0].Lock(context.Background(), "app", "N", dlm.ModeCR, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l0.Unlock(nil)
	wait := make(chan error, 1)
	go func() {
		l, _, err := ds[0].Lock(context.Background(), "app", "N", dlm.ModeEX, 0, nil)
		if err == nil {
			err = l.Unlock(nil)
		}
		wait <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, err := ds[1].Locks("app", "N")
		if err != nil {
			t.Fatal(err)
		}
		blocked := false
		for _, r := range rs {
			for _, q := range r.Queues {
				blocked = blocked || q.Queue == "Blocked"
			}
		}
		if blocked || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the event is written
	var st []dlm.DomainState
	if err := cl.Call("dlm.state", nil, &st); err != nil || len(st) != 1 {
		t.Fatalf("dlm.state with an event before its answer: %v %+v", err, st)
	}
	_ = cl.SetDeadline(time.Now().Add(5 * time.Second))
	e, err = cl.NextEvent()
	if err != nil || json.Unmarshal(e.Data, &b) != nil || b.Mode != "EX" {
		t.Fatalf("event kept during the call: %s %s %v", e.Name, e.Data, err)
	}
	if err := cl.Call("dlm.unlock", UnlockParams{ID: res.ID}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l0.Unlock(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-wait:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EX not granted once both holders let go")
	}
}

// TestDLMSendsAgainOnANewConnection: when the connection to a peer is new
// (it broke and came back), the lock manager sends again what the peer has
// not acknowledged, since a broken connection loses what was in flight;
// the peer takes nothing twice. Here node 0's messages to node 1 are held
// back (as if lost), then a new connection is reported.
func TestDLMSendsAgainOnANewConnection(t *testing.T) {
	mc := newMemCluster(t, 2, nil)
	ds := startDLMs(t, mc, "app", 0, 1)
	name := nameMasteredBy(t, ds[0], "app", "N", 1)
	// Node 0's lock manager cannot send to node 1: its request stays
	// unacknowledged.
	ds[0].mu.Lock()
	p := ds[0].peer(1)
	p.mu.Lock()
	p.hold = true
	p.mu.Unlock()
	ds[0].mu.Unlock()
	done := make(chan error, 1)
	go func() {
		l, _, err := ds[0].Lock(context.Background(), "app", name, dlm.ModeEX, 0, nil)
		if err == nil {
			err = l.Unlock(nil)
		}
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds[0].mu.Lock()
		unacked := ds[0].core.Streams().Unacked
		ds[0].mu.Unlock()
		if unacked > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node 0's request never left")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// What the writer held is lost, as on a broken connection; the
	// connection is then reported new (same pipe, another identity).
	ds[0].mu.Lock()
	p.mu.Lock()
	p.q, p.hold = nil, false
	p.mu.Unlock()
	mc.agents[0].peersMu.Lock()
	old := mc.agents[0].peers[1]
	mc.agents[0].peers[1] = &peerConn{id: old.id + 1000, peer: old.peer, c: old.c, out: old.out}
	mc.agents[0].peersMu.Unlock()
	ds[0].mu.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request lost with the connection was not sent again")
	}
	ds[0].mu.Lock()
	st := ds[0].core.Streams()
	ds[0].mu.Unlock()
	if st.Resent == 0 {
		t.Errorf("node 0 sent nothing again: %+v", st)
	}
}
