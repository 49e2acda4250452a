package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/ha"
)

// fakeRuntime is resources that are flags in memory.
type fakeRuntime struct {
	mu      sync.Mutex
	running map[string]bool
	ops     []string // "start NAME", "stop NAME", in the order asked
	node    int
	fail    map[string]int // resource -> how many of its next starts fail
	scripts []string       // "EVENT PHASE", in the order run
	nets    map[string]ha.NetState
	slow    map[string]time.Duration // resource -> how long its starts take
	badStop map[string]int           // resource -> how many of its next stops fail
}

func (f *fakeRuntime) Do(_ context.Context, op ha.Op) ha.OpResult {
	f.mu.Lock()
	slow := f.slow[op.Resource.Name]
	f.mu.Unlock()
	if op.Kind == ha.OpStart && slow > 0 {
		time.Sleep(slow)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := ha.OpResult{ID: op.ID, Status: ha.OpOK}
	switch op.Kind {
	case ha.OpStart:
		f.ops = append(f.ops, "start "+op.Resource.Name)
		if f.fail[op.Resource.Name] > 0 {
			f.fail[op.Resource.Name]--
			res.Status, res.Detail = ha.OpFailed, "told to fail"
			break
		}
		f.running[op.Resource.Name] = true
	case ha.OpStop:
		f.ops = append(f.ops, "stop "+op.Resource.Name)
		if f.badStop[op.Resource.Name] > 0 {
			f.badStop[op.Resource.Name]--
			res.Status, res.Detail = ha.OpFailed, "told to fail"
			break
		}
		delete(f.running, op.Resource.Name)
	case ha.OpMonitor:
		if !f.running[op.Resource.Name] {
			res.Status = ha.OpNotRunning
		}
	}
	return res
}

func (f *fakeRuntime) RunScript(_ context.Context, s ha.ScriptRun) ha.ScriptResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts = append(f.scripts, s.Event+" "+s.Phase)
	return ha.ScriptResult{ID: s.ID}
}
func (f *fakeRuntime) Check(*ha.Config, []string) []string { return nil }
func (f *fakeRuntime) SetConfig(*ha.Config)                {}
func (f *fakeRuntime) Networks() map[string]ha.NetState {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]ha.NetState{}
	for k, v := range f.nets {
		out[k] = v
	}
	return out
}

func (f *fakeRuntime) setNet(name string, st ha.NetState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nets[name] = st
}

// took returns the starts and stops asked so far, and forgets them.
func (f *fakeRuntime) took() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

func (f *fakeRuntime) runs(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[name]
}

// HA on real agents (in-memory network, real image for the heartbeat):
// configuration through the coordinator, the group on its home node, moved
// on request (its resources stopped in reverse order on the old node,
// started in order on the new one, where a failed start runs the event's
// recovery script and is retried), taken over when its node leaves
// (node_down takeover), and kept offline when the next one leaves gracefully.
func TestHAOnAgents(t *testing.T) {
	mc := newMemCluster(t, 3, nil)
	ds := startDLMs(t, mc, "warmup", 0, 1, 2)
	rts := make([]*fakeRuntime, 3)
	has := make([]*HA, 3)
	for i, a := range mc.agents {
		rts[i] = &fakeRuntime{running: map[string]bool{}, node: i, fail: map[string]int{}}
		h, err := StartHA(a, ds[i], rts[i], HAOptions{Dir: t.TempDir(), Tick: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		has[i] = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := &ha.Config{Settings: ha.Settings{MonitorInterval: ha.Duration(200 * time.Millisecond)},
		Events: []ha.EventScripts{{Event: ha.EvRGOnline, Recovery: "/recover", Retries: 1}},
		Groups: []ha.Group{{Name: "web", Nodes: []string{"n0", "n1", "n2"}, Startup: ha.StartupHome,
			Resources: []ha.Resource{{Name: "app", Type: ha.TypeApp, StartScript: "/s", StopScript: "/t"},
				{Name: "app2", Type: ha.TypeApp, StartScript: "/s", StopScript: "/t"},
				{Name: "app3", Type: ha.TypeApp, StartScript: "/s", StopScript: "/t"}}}}}
	var v json.RawMessage
	var err error
	// The coordinator may not be elected yet: retry for a while.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		v, err = has[2].Request(ctx, &ha.Request{Op: ha.ReqConfig, Config: cfg})
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("committed %s", v)
	where := func() []int {
		var on []int
		for i, r := range rts {
			if r.runs("app") {
				on = append(on, i)
			}
		}
		return on
	}
	waitOn := func(want int, alive ...int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			on := where()
			if len(on) > 1 {
				t.Fatalf("web runs on %v", on)
			}
			if len(on) == 1 && on[0] == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("web not on node %d (on %v)", want, where())
	}
	waitOn(0)
	for i, r := range rts {
		want := ""
		if i == 0 {
			want = "start app, start app2, start app3"
		}
		if got := waitTook(r, want); got != want {
			t.Errorf("node %d: %q when the group came online, want %q", i, got, want)
		}
	}
	// On the new node app2's first start fails: the event's recovery
	// script runs, then the start is tried again (one retry allowed).
	rts[2].mu.Lock()
	rts[2].fail["app2"] = 1
	rts[2].mu.Unlock()
	if _, err := has[1].Request(ctx, &ha.Request{Op: ha.ReqMove, Group: "web", Node: "n2"}); err != nil {
		t.Fatal(err)
	}
	waitOn(2)
	if got, want := waitTook(rts[0], "stop app3, stop app2, stop app"), "stop app3, stop app2, stop app"; got != want {
		t.Errorf("the old node stopped %q, want %q (reverse order)", got, want)
	}
	if got, want := waitTook(rts[2], "start app, start app2, start app2, start app3"), "start app, start app2, start app2, start app3"; got != want {
		t.Errorf("the new node started %q, want %q (in order, app2 retried)", got, want)
	}
	rts[2].mu.Lock()
	scripts := strings.Join(rts[2].scripts, ", ")
	rts[2].mu.Unlock()
	if scripts != "rg_online recovery" {
		t.Errorf("the new node ran the scripts %q, want the rg_online recovery script once", scripts)
	}
	// The status follows once n2 reports the whole group online.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, err := has[0].Request(ctx, &ha.Request{Op: ha.ReqStatus})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := ha.DecodeStatus(st)
		if len(s.Groups) == 1 && s.Groups[0].State == "online" && fmt.Sprint(s.Groups[0].Nodes) == "[n2]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %s", st)
		}
	}
	// node_down graceful with takeover: n2 releases, the highest priority
	// node takes it (the move was not sticky).
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := has[2].Shutdown(sctx, "takeover"); err != nil {
		t.Fatal(err)
	}
	waitOn(0)
	// node_down graceful: n0 releases it and nobody takes it while n0 is
	// away.
	if err := has[0].Shutdown(sctx, "graceful"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if on := where(); len(on) > 0 && time.Until(end) < 1500*time.Millisecond {
			t.Fatalf("after a graceful node_down of n0, web runs on %v", on)
		}
	}
	ev := has[1].Events(0, 0)
	if len(ev) == 0 {
		t.Fatal("no history")
	}
	recovered := false
	for _, r := range ev {
		t.Log(r)
		recovered = recovered || (r.Event == ha.EvRGOnline && r.Phase == ha.PhaseRecovery && r.Node == "n2")
	}
	if !recovered {
		t.Error("the history lacks n2's rg_online recovery")
	}
}

// waitTook waits a little for r's starts and stops to read want (the last
// operations of a move may still be under way), and returns them.
func waitTook(r *fakeRuntime, want string) string {
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = append(got, r.took()...)
		s := strings.Join(got, ", ")
		if len(s) >= len(want) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHANetworkEvents: a network that fails on the owner (every interface
// down) is network_down there and the group, whose service address is on
// it, falls over; network_up brings it back (fallback to the home node);
// the active interface changing is swap_adapter, which restarts the
// address in place. Then a move whose start outlasts the configured bound
// raises config_too_long, and still completes; a node_down forced leaves
// the group running there, unmanaged and untaken; and a stop that fails
// fences its node, whose group the others then take over.
func TestHANetworkEvents(t *testing.T) {
	mc := newMemCluster(t, 3, nil)
	ds := startDLMs(t, mc, "warmup", 0, 1, 2)
	rts := make([]*fakeRuntime, 3)
	has := make([]*HA, 3)
	for i, a := range mc.agents {
		rts[i] = &fakeRuntime{running: map[string]bool{}, node: i, fail: map[string]int{},
			nets: map[string]ha.NetState{"pub": {Up: true, Active: "eth0"}}, slow: map[string]time.Duration{}, badStop: map[string]int{}}
		h, err := StartHA(a, ds[i], rts[i], HAOptions{Dir: t.TempDir(), Tick: 50 * time.Millisecond, NetPoll: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		has[i] = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := &ha.Config{Settings: ha.Settings{MonitorInterval: ha.Duration(200 * time.Millisecond), ConfigTooLong: ha.Duration(time.Second)},
		Networks: []ha.Network{{Name: "pub", Interfaces: []string{"eth0", "eth1"}}},
		Groups: []ha.Group{{Name: "web", Nodes: []string{"n0", "n1", "n2"}, Startup: ha.StartupHome, Resources: []ha.Resource{
			{Name: "vip", Type: ha.TypeIP, Address: "192.0.2.10/24", Network: "pub"},
			{Name: "app", Type: ha.TypeApp, StartScript: "/s", StopScript: "/t"}}}}}
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if _, err = has[1].Request(ctx, &ha.Request{Op: ha.ReqConfig, Config: cfg}); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	// where lists the nodes running app, fenced nodes left out (their
	// processes died with them).
	where := func() []int {
		var on []int
		for i, r := range rts {
			if _, fenced := mc.fencedReason(i); r.runs("app") && !fenced {
				on = append(on, i)
			}
		}
		return on
	}
	waitOn := func(want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			on := where()
			if len(on) > 1 {
				t.Fatalf("web runs on %v", on)
			}
			if len(on) == 1 && on[0] == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("web not on node %d (on %v)", want, where())
	}
	history := func(ev string, args ...string) bool {
		for _, r := range has[1].Events(0, 0) {
			if r.Event == ev && r.Phase == ha.PhaseStart && strings.Join(r.Args, ",") == strings.Join(args, ",") {
				return true
			}
		}
		return false
	}
	waitHistory := func(ev string, args ...string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !history(ev, args...); {
			if time.Now().After(deadline) {
				for _, r := range has[1].Events(0, 0) {
					t.Log(r)
				}
				t.Fatalf("no %s %v in the history", ev, args)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOn(0)
	rts[0].setNet("pub", ha.NetState{Up: false})
	waitHistory(ha.EvNetworkDown, "n0", "pub")
	waitOn(1)
	rts[0].setNet("pub", ha.NetState{Up: true, Active: "eth0"})
	waitHistory(ha.EvNetworkUp, "n0", "pub")
	waitOn(0)
	rts[0].took()
	rts[0].setNet("pub", ha.NetState{Up: true, Active: "eth1"})
	waitHistory(ha.EvSwapAdapter, "web", "n0")
	if got, want := waitTook(rts[0], "stop vip, start vip"), "stop vip, start vip"; got != want {
		t.Errorf("swap_adapter did %q on the owner, want %q", got, want)
	}
	waitOn(0)

	rts[1].mu.Lock()
	rts[1].slow["app"] = 2500 * time.Millisecond
	rts[1].mu.Unlock()
	if _, err := has[0].Request(ctx, &ha.Request{Op: ha.ReqMove, Group: "web", Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	waitHistory(ha.EvConfigTooLong, "rg_move", "web", "move", "n1")
	waitOn(1)

	// A stop that fails fences the node (the group's lock cannot be given
	// up while its resources may still run); the others take it over.
	rts[1].mu.Lock()
	rts[1].badStop["app"] = 1
	rts[1].mu.Unlock()
	if _, err := has[0].Request(ctx, &ha.Request{Op: ha.ReqMove, Group: "web", Node: "n0"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r, fenced := mc.fencedReason(1); fenced {
			t.Logf("n1 fenced: %s", r)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a failed stop did not fence n1")
		}
	}
	mc.waitView([]int{0, 2}, base.NodeMapOf(0, 2), 20*time.Second)
	waitOn(0)

	// node_down forced: HA stops on n0, its resources run on, unmanaged,
	// and n2 does not take them.
	if err := has[0].Shutdown(ctx, "forced"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if on := where(); len(on) != 1 || on[0] != 0 {
			t.Fatalf("after a forced node_down of n0, app runs on %v", on)
		}
	}
	found := false
	for _, r := range has[2].Events(0, 0) {
		found = found || (r.Event == ha.EvNodeDown && strings.Join(r.Args, ",") == "n0,forced")
	}
	if !found {
		t.Error("no node_down n0,forced in the history")
	}
}
