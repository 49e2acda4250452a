package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"o2go/internal/ha"
)

// fakeRuntime is resources that are flags in memory.
type fakeRuntime struct {
	mu      sync.Mutex
	running map[string]bool
	log     *[]string
	node    int
}

func (f *fakeRuntime) Do(_ context.Context, op ha.Op) ha.OpResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	res := ha.OpResult{ID: op.ID, Status: ha.OpOK}
	switch op.Kind {
	case ha.OpStart:
		f.running[op.Resource.Name] = true
	case ha.OpStop:
		delete(f.running, op.Resource.Name)
	case ha.OpMonitor:
		if !f.running[op.Resource.Name] {
			res.Status = ha.OpNotRunning
		}
	}
	return res
}

func (f *fakeRuntime) RunScript(_ context.Context, s ha.ScriptRun) ha.ScriptResult {
	return ha.ScriptResult{ID: s.ID}
}
func (f *fakeRuntime) Check(*ha.Config, []string) []string { return nil }
func (f *fakeRuntime) SetConfig(*ha.Config)                {}
func (f *fakeRuntime) Networks() map[string]ha.NetState    { return nil }

func (f *fakeRuntime) runs(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[name]
}

// HA on real agents (in-memory network, real image for the heartbeat):
// configuration through the coordinator, the group on its home node, moved
// on request, and taken over when its node leaves.
func TestHAOnAgents(t *testing.T) {
	mc := newMemCluster(t, 3, nil)
	ds := startDLMs(t, mc, "warmup", 0, 1, 2)
	rts := make([]*fakeRuntime, 3)
	has := make([]*HA, 3)
	for i, a := range mc.agents {
		rts[i] = &fakeRuntime{running: map[string]bool{}, node: i}
		h, err := StartHA(a, ds[i], rts[i], HAOptions{Dir: t.TempDir(), Tick: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		has[i] = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := &ha.Config{Settings: ha.Settings{MonitorInterval: ha.Duration(200 * time.Millisecond)},
		Groups: []ha.Group{{Name: "web", Nodes: []string{"n0", "n1", "n2"}, Startup: ha.StartupHome,
			Resources: []ha.Resource{{Name: "app", Type: ha.TypeApp, StartScript: "/s", StopScript: "/t"}}}}}
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
	if _, err := has[1].Request(ctx, &ha.Request{Op: ha.ReqMove, Group: "web", Node: "n2"}); err != nil {
		t.Fatal(err)
	}
	waitOn(2)
	st, err := has[0].Request(ctx, &ha.Request{Op: ha.ReqStatus})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ha.DecodeStatus(st)
	if len(s.Groups) != 1 || s.Groups[0].State != "online" || fmt.Sprint(s.Groups[0].Nodes) != "[n2]" {
		t.Fatalf("status %s", st)
	}
	// node_down graceful with takeover: n2 releases, the highest priority
	// node takes it (the move was not sticky).
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := has[2].Shutdown(sctx, "takeover"); err != nil {
		t.Fatal(err)
	}
	waitOn(0)
	ev := has[1].Events(0, 0)
	if len(ev) == 0 {
		t.Fatal("no history")
	}
	for _, r := range ev {
		t.Log(r)
	}
}
