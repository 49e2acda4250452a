package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/cluster/quorum"
	"o2go/internal/dlm"
	"o2go/internal/ha"
)

// HARuntime runs what the HA core asks on this node: resource operations,
// event scripts, local checks, and the health of the configured networks.
// internal/ha/agent's Runner is the real one; every call may block up to its
// timeout (the driver calls them on their own goroutines).
type HARuntime interface {
	Do(ctx context.Context, op ha.Op) ha.OpResult
	RunScript(ctx context.Context, s ha.ScriptRun) ha.ScriptResult
	Check(cfg *ha.Config, active []string) []string
	SetConfig(cfg *ha.Config)
	Networks() map[string]ha.NetState
}

// HAOptions configure HA on an agent.
type HAOptions struct {
	// Dir keeps the node's copy of the HA configuration, state and
	// history (default DefaultHADir(cluster, node)).
	Dir string
	// Tick is how often the core gets the time (default 200 ms);
	// NetPoll how often the networks are checked (default 1 s).
	Tick    time.Duration
	NetPoll time.Duration
}

// DefaultHADir is where node's HA files live.
func DefaultHADir(cluster, node string) string {
	return filepath.Join("/var/lib/o2go/ha", cluster, node)
}

// HA is the HA resource manager running on an agent: the pure ha.Node
// driven by the agent's membership events (subscriber PriorityHA, after
// the DLM and the file system), its messaging (types 700..799), the DLM
// (each group's lock in domain ha.LockDomain) and a runtime for resources.
//
// Goroutines: a ticker (time, network health); one per resource operation,
// script, check and lock request in flight; one writer per peer (messages
// in order, retried while the connection is down and the peer alive, as the
// DLM's). Everything that touches the core holds mu.
type HA struct {
	a   *Agent
	d   *DLM
	rt  HARuntime
	dir string
	opt HAOptions

	mu      sync.Mutex
	core    *ha.Node
	locks   map[string]*haLock
	waiters map[uint64]chan ha.Reply
	nextReq uint64
	netLast map[string]ha.NetState
	peers   map[base.NodeID]*sendQueue
	left    chan struct{}
	leftSet bool
	stop    chan struct{}
	closed  bool
	scripts map[string]*scriptQueue // per group ("" for cluster events)
	unsub   func()
	histF   *os.File
}

type haLock struct {
	gen     int
	cancel  context.CancelFunc
	lock    *Lock
	pending bool
}

// StartHA starts HA on agent a with lock manager d. It may be called before
// Run; its control methods are registered once the control socket exists:
// ha.request (status, move, start, stop, config, restore, verify, emulate:
// carried out by the coordinator), ha.events, ha.local, ha.config and
// ha.shutdown.
func StartHA(a *Agent, d *DLM, rt HARuntime, opt HAOptions) (*HA, error) {
	if opt.Dir == "" {
		opt.Dir = DefaultHADir(a.cfg.Cluster.Name, a.self.Name)
	}
	if opt.Tick == 0 {
		opt.Tick = 200 * time.Millisecond
	}
	if opt.NetPoll == 0 {
		opt.NetPoll = time.Second
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("HA: %w", err)
	}
	h := &HA{a: a, d: d, rt: rt, dir: opt.Dir, opt: opt, locks: map[string]*haLock{}, waiters: map[uint64]chan ha.Reply{},
		netLast: map[string]ha.NetState{}, peers: map[base.NodeID]*sendQueue{}, scripts: map[string]*scriptQueue{}, left: make(chan struct{}), stop: make(chan struct{})}
	var topo ha.Topology
	for _, n := range a.cfg.Cluster.Nodes {
		topo.Nodes = append(topo.Nodes, ha.TopoNode{Name: n.Name, ID: n.Number})
	}
	cfg, state, hist, err := loadHA(opt.Dir)
	if err != nil {
		return nil, err
	}
	h.histF, err = os.OpenFile(filepath.Join(opt.Dir, "history.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("HA: %w", err)
	}
	h.core = ha.New(ha.NodeConfig{Self: a.self.Number, Topo: topo, Incarnation: a.gen, Config: cfg, State: state, History: hist})
	rt.SetConfig(h.core.Config())
	for t := ha.MsgFirst; t <= ha.MsgLast; t++ {
		t := t
		err := a.Handle(t, ha.MsgKey, cnet.MaxPayload, func(from base.NodeID, _ uint32, p []byte) int32 {
			h.input(func() {
				if err := h.core.Receive(from, t, p); err != nil {
					a.logf("ha: %v", err)
				}
			})
			return 0
		})
		if err != nil && !errors.Is(err, cnet.ErrHandlerExists) {
			return nil, fmt.Errorf("HA: registering message type %d: %w", t, err)
		}
	}
	h.unsub = a.Subscribe("ha", PriorityHA, h.membership)
	go func() {
		if err := d.Join(context.Background(), ha.LockDomain, false); err != nil {
			a.logf("ha: joining the DLM domain %s: %v", ha.LockDomain, err)
		}
	}()
	go h.ticker()
	a.OnControl(h.registerControl)
	go func() {
		select {
		case <-a.done:
			h.close()
		case <-h.stop:
		}
	}()
	return h, nil
}

func (h *HA) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.stop)
	for _, p := range h.peers {
		p.close()
	}
	for _, l := range h.locks {
		if l.cancel != nil {
			l.cancel()
		}
	}
	h.histF.Close()
	h.mu.Unlock()
	if h.unsub != nil {
		h.unsub()
	}
}

// input runs fn on the core and carries out what it asks.
func (h *HA) input(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.core.SetClock(h.a.clock(), h.a.wall().UnixMilli())
	fn()
	h.apply()
}

func (h *HA) membership(e MembershipEvent) {
	h.input(func() {
		switch {
		case e.Initial:
			h.core.Membership(e.Seq, e.Members)
		case e.Kind == quorum.NodeUp:
			h.core.NodeUp(e.Seq, e.Node)
		case e.Kind == quorum.NodeDown:
			h.core.NodeDown(e.Seq, e.Node)
			if p := h.peers[e.Node]; p != nil {
				p.died()
			}
		case e.Kind == quorum.Left:
			h.core.Left()
		}
	})
}

func (h *HA) ticker() {
	t := time.NewTicker(h.opt.Tick)
	defer t.Stop()
	lastNet := time.Time{}
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		var nets map[string]ha.NetState
		if time.Since(lastNet) >= h.opt.NetPoll {
			lastNet = time.Now()
			nets = h.rt.Networks()
		}
		h.input(func() {
			h.core.Tick(h.a.clock(), h.a.wall().UnixMilli())
			for _, name := range sortedNets(nets) {
				st := nets[name]
				prev, seen := h.netLast[name]
				h.netLast[name] = st
				switch {
				case !seen:
					if !st.Up {
						h.core.NetworkState(name, false)
					}
				case prev.Up != st.Up:
					h.core.NetworkState(name, st.Up)
				case st.Up && prev.Active != st.Active:
					h.core.NetworkState(name, true, prev.Active, st.Active)
				}
			}
		})
	}
}

func sortedNets(m map[string]ha.NetState) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// apply carries out the core's Ready (under mu).
func (h *HA) apply() {
	for round := 0; round < 32; round++ {
		rd := h.core.Ready()
		for _, n := range rd.Notes {
			h.a.logf("%s", n)
		}
		for _, m := range rd.Messages {
			h.peer(m.To).push(queuedMsg{typ: m.Type, key: ha.MsgKey, payload: m.Payload})
		}
		for _, l := range rd.Locks {
			h.lockOp(l)
		}
		for _, op := range rd.Ops {
			op := op
			go func() {
				res := h.rt.Do(context.Background(), op)
				h.input(func() { h.core.OpDone(res) })
			}()
		}
		for _, s := range rd.Scripts {
			h.script(s)
		}
		for _, c := range rd.Checks {
			c := c
			go func() {
				p := h.rt.Check(c.Config, c.Active)
				h.input(func() { h.core.CheckDone(c.ID, p) })
			}()
		}
		for _, r := range rd.Replies {
			if ch := h.waiters[r.ID]; ch != nil {
				ch <- r
				delete(h.waiters, r.ID)
			}
		}
		for _, r := range rd.Records {
			h.a.logf("ha: %v", r)
			if b, err := json.Marshal(r); err == nil {
				h.histF.Write(append(b, '\n'))
			}
		}
		if rd.Config != nil {
			h.rt.SetConfig(rd.Config)
			if err := writeJSON(filepath.Join(h.dir, "config.json"), rd.Config); err != nil {
				h.a.logf("ha: saving the configuration: %v", err)
			}
		}
		if rd.State != nil {
			if err := writeJSON(filepath.Join(h.dir, "state.json"), rd.State.ForDisk()); err != nil {
				h.a.logf("ha: saving the state: %v", err)
			}
		}
		if rd.Fence != "" {
			h.a.logf("ha: %s", rd.Fence)
			h.a.fenceFromOutside(rd.Fence)
		}
		if rd.Left && !h.leftSet {
			h.leftSet = true
			close(h.left)
		}
		if len(rd.Messages)+len(rd.Locks)+len(rd.Ops)+len(rd.Scripts)+len(rd.Checks)+len(rd.Replies)+len(rd.Records)+len(rd.Notes) == 0 &&
			rd.Config == nil && rd.State == nil {
			return
		}
	}
}

// lockOp takes or drops a group's lock on the DLM.
func (h *HA) lockOp(op ha.LockOp) {
	cur := h.locks[op.Group]
	if op.Mode == ha.LockNone {
		if cur == nil {
			return
		}
		delete(h.locks, op.Group)
		if cur.pending {
			cur.cancel()
			return
		}
		if cur.lock != nil {
			l := cur.lock
			go func() {
				if err := l.Unlock(nil); err != nil {
					h.a.logf("ha: releasing the lock of group %s: %v", op.Group, err)
				}
			}()
		}
		return
	}
	gen := 1
	if cur != nil {
		gen = cur.gen + 1
		if cur.cancel != nil {
			cur.cancel()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	hl := &haLock{gen: gen, cancel: cancel, pending: true}
	h.locks[op.Group] = hl
	mode := dlm.ModeEX
	if op.Mode == ha.LockShared {
		mode = dlm.ModePR
	}
	var fl dlm.Flags
	if op.Try {
		fl = dlm.NoQueue
	}
	group := op.Group
	go func() {
		l, _, err := h.d.Lock(ctx, ha.LockDomain, ha.LockName(group), mode, fl, nil)
		h.input(func() {
			current := h.locks[group] == hl
			if !current {
				if err == nil {
					go l.Unlock(nil)
				}
				return
			}
			hl.pending = false
			if err != nil {
				delete(h.locks, group)
				var ng *ErrNotGranted
				if !errors.As(err, &ng) {
					h.a.logf("ha: the lock of group %s: %v", group, err)
				}
				h.core.LockDone(group, false)
				return
			}
			hl.lock = l
			h.core.LockDone(group, true)
		})
	}()
}

func (h *HA) peer(x base.NodeID) *sendQueue {
	p := h.peers[x]
	if p == nil {
		p = newSendQueue(func(m queuedMsg) error { return h.a.Send(x, m.typ, m.key, m.payload) }, h.stop)
		h.peers[x] = p
	}
	return p
}

// Request submits an operator's request and waits for the coordinator's
// answer.
func (h *HA) Request(ctx context.Context, req *ha.Request) (json.RawMessage, error) {
	ch := make(chan ha.Reply, 1)
	var id uint64
	h.input(func() {
		h.nextReq++
		id = h.nextReq
		h.waiters[id] = ch
		h.core.Request(id, req)
	})
	select {
	case r := <-ch:
		if r.Err != "" {
			return nil, errors.New(r.Err)
		}
		return r.Value, nil
	case <-ctx.Done():
		h.input(func() {
			delete(h.waiters, id)
			h.core.CancelRequest(id)
		})
		return nil, fmt.Errorf("no answer from the HA coordinator (%v): it may have changed; check o2go ha status and retry", ctx.Err())
	case <-h.stop:
		return nil, errors.New("HA stopped on this node")
	}
}

// Shutdown stops HA on this node (node_down graceful, takeover or forced)
// and waits until its groups are released (or ctx ends).
func (h *HA) Shutdown(ctx context.Context, mode string) error {
	var err error
	h.input(func() { err = h.core.Shutdown(mode) })
	if err != nil {
		return err
	}
	select {
	case <-h.left:
		// Give the last messages a moment to leave.
		time.Sleep(100 * time.Millisecond)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("HA did not release this node's groups in time: %w", ctx.Err())
	case <-h.stop:
		return nil
	}
}

// Events returns this node's copy of the history after seq.
func (h *HA) Events(after uint64, max int) []ha.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.core.History(after, max)
}

// HAEventsParams are the parameters of ha.events.
type HAEventsParams struct {
	After uint64 `json:"after"`
	Max   int    `json:"max,omitempty"`
}

// HAShutdownParams are the parameters of ha.shutdown.
type HAShutdownParams struct {
	Mode      string `json:"mode"`
	TimeoutMs int64  `json:"timeout_ms,omitempty"`
}

func (h *HA) registerControl(cs *ControlServer) {
	cs.Register("ha.request", func(ctx context.Context, req *ControlRequest) (any, error) {
		var r ha.Request
		if err := req.Decode(&r); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return h.Request(ctx, &r)
	})
	cs.Register("ha.events", func(_ context.Context, req *ControlRequest) (any, error) {
		var p HAEventsParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		ev := h.Events(p.After, p.Max)
		if ev == nil {
			ev = []ha.Record{}
		}
		return ev, nil
	})
	cs.Register("ha.local", func(context.Context, *ControlRequest) (any, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.core.LocalStatus(), nil
	})
	cs.Register("ha.config", func(context.Context, *ControlRequest) (any, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.core.Config(), nil
	})
	cs.Register("ha.shutdown", func(ctx context.Context, req *ControlRequest) (any, error) {
		var p HAShutdownParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		if p.TimeoutMs > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(p.TimeoutMs)*time.Millisecond)
			defer cancel()
		}
		return "ok", h.Shutdown(ctx, p.Mode)
	})
}

// loadHA reads the node's saved configuration, state and history.
func loadHA(dir string) (*ha.Config, *ha.State, []ha.Record, error) {
	var cfg *ha.Config
	if b, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		c, err := ha.ParseConfig(b)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
		}
		cfg = c
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, err
	}
	var st *ha.State
	if b, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil {
		st = &ha.State{}
		if err := json.Unmarshal(b, st); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, "state.json"), err)
		}
	}
	var hist []ha.Record
	if f, err := os.Open(filepath.Join(dir, "history.jsonl")); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var r ha.Record
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				hist = append(hist, r)
			}
		}
		f.Close()
		// Keep the last consecutive run (a restarted node may have
		// re-numbered entries after a jump).
		i := len(hist) - 1
		for i > 0 && hist[i-1].Seq+1 == hist[i].Seq && len(hist)-i < ha.HistoryLen {
			i--
		}
		if i > 0 {
			hist = hist[i:]
		}
	}
	return cfg, st, hist, nil
}

// writeJSON replaces path atomically.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// OnControl calls fn with the control server once the agent runs (it is
// created by Run); never when the agent runs without one.
func (a *Agent) OnControl(fn func(cs *ControlServer)) {
	go func() {
		var cs *ControlServer
		if err := a.doSync(func() { cs = a.ctl }); err == nil && cs != nil {
			fn(cs)
		}
	}()
}

// scriptQueue runs one group's event scripts one after the other, in the
// order the core asked for them: a notify script that is not waited for
// still runs before the pre-event script that follows it.
type scriptQueue struct {
	q       []ha.ScriptRun
	running bool
}

func (h *HA) script(s ha.ScriptRun) {
	key := ""
	for _, e := range s.Env {
		if g, ok := strings.CutPrefix(e, "O2GO_HA_GROUP="); ok {
			key = g
		}
	}
	sq := h.scripts[key]
	if sq == nil {
		sq = &scriptQueue{}
		h.scripts[key] = sq
	}
	sq.q = append(sq.q, s)
	if sq.running {
		return
	}
	sq.running = true
	go func() {
		for {
			h.mu.Lock()
			if len(sq.q) == 0 || h.closed {
				sq.running = false
				h.mu.Unlock()
				return
			}
			s := sq.q[0]
			sq.q = sq.q[1:]
			h.mu.Unlock()
			res := h.rt.RunScript(context.Background(), s)
			if s.Wait {
				h.input(func() { h.core.ScriptDone(res) })
			}
		}
	}()
}
