package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"o2go/internal/base"
	"o2go/internal/dlm"
	"o2go/internal/ha"
)

// HA simulation: real ha.Node and dlm.Node cores on every node, over a
// simulated network, with resources that are simulated processes. It is
// kept apart from Cluster (which drives node/member over simulated disks)
// so that thousands of HA runs fit in a test: the membership is modelled
// by its contract instead of run —
//
//   - membership events form one sequence that every live node consumes in
//     order, each at its own pace (a few ms after the event);
//   - a node that crashes, is partitioned off without quorum, or stalls past
//     the dead time is gone before any survivor hears its down event: a
//     crash or a fence ends its incarnation (its processes and addresses
//     die with it, as a reset does), a stalled node fences when it resumes,
//     before it runs anything; the down event follows after the detection
//     delay;
//   - a partition shorter than the detection delay just delays messages.
//
// Faults: crashes (with restarts), partitions, stalls, flapping monitors
// (a resource's process dies again and again), failed starts and stops, and
// operator requests (move, sticky move, start, stop) on random nodes. The
// checkers:
//
//   - a group that is not concurrent never has a resource running on two
//     live nodes (the simulated processes, not the cores' opinion), and a
//     node runs a group's resources only while its DLM holds the group's
//     lock (EX, or PR for a concurrent group);
//   - once the faults are over: every group that has an eligible node and is
//     not offline is online, on one node (every eligible node when
//     concurrent); a sticky group is on its sticky node when that node is
//     eligible; a group with fallback "higher" is on its highest priority
//     eligible node; a group with fallback "never" does not move while its
//     node stays up; every node holds the same configuration, state and
//     history.

// HAOptions describe one HA simulation.
type HAOptions struct {
	Nodes    int
	Duration time.Duration // fault phase
	Settle   time.Duration // quiet phase before the final checks
	// Detect is the cluster stack's detection bound: how long after a
	// crash the survivors get the down event.
	Detect       time.Duration
	Faults       []HAFault // nil: generated from the seed
	FaultsPerMin float64
	TraceLines   int
}

// DefaultHAOptions: 3 to 5 nodes, 2 minutes of faults, 90 s to settle.
func DefaultHAOptions() HAOptions {
	return HAOptions{Duration: 120 * time.Second, Settle: 100 * time.Second, Detect: 4 * time.Second,
		FaultsPerMin: 8, TraceLines: 300}
}

// HAFaultKind is a kind of fault of the HA simulation.
type HAFaultKind int

// HA fault kinds.
const (
	HACrash     HAFaultKind = iota // Node dies (kill -9 of the agent with its resources, or a reset)
	HAPartition                    // Nodes cut off from the rest for Dur
	HAPause                        // Node stalls for Dur
	HAFlap                         // Group's resources on its current node die again and again for Dur
	HAStartFail                    // the next start of Group on Node fails
	HAStopFail                     // the next stop of Group on Node fails
	HAMove                         // the operator moves Group to Node (Sticky), asking on Via
	HAStart                        // the operator starts Group
	HAStop                         // the operator stops Group
	numHAFaultKinds
)

var haFaultNames = [...]string{"crash", "partition", "pause", "flap", "start-fail", "stop-fail", "move", "start", "stop"}

func (k HAFaultKind) String() string { return haFaultNames[k] }

// HAFault is one injected fault or operator request.
type HAFault struct {
	At     time.Duration
	Kind   HAFaultKind
	Nodes  []base.NodeID
	Group  string
	Sticky bool
	Dur    time.Duration
	Via    base.NodeID
}

func (f HAFault) String() string {
	s := fmt.Sprintf("at %v %v", f.At, f.Kind)
	if len(f.Nodes) > 0 {
		s += fmt.Sprintf(" nodes %v", f.Nodes)
	}
	if f.Group != "" {
		s += " group " + f.Group
	}
	if f.Sticky {
		s += " sticky"
	}
	if f.Dur > 0 {
		s += fmt.Sprintf(" for %v", f.Dur)
	}
	return s
}

// HAResult is what an HA run found.
type HAResult struct {
	Seed       uint64
	Violations []string
	Config     *ha.Config
	Faults     []HAFault
	Trace      []string
	Stats      HAStats
	Nodes      []string
}

// HAStats count what happened in a run.
type HAStats struct {
	Crashes, Fences, Moves, Failovers, Restarts, Messages int
}

// Failed reports whether a checker found a violation.
func (r *HAResult) Failed() bool { return len(r.Violations) > 0 }

func (r *HAResult) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "seed %d: %d violations, %+v\n", r.Seed, len(r.Violations), r.Stats)
	for _, v := range r.Violations {
		fmt.Fprintf(&sb, "  VIOLATION: %s\n", v)
	}
	if r.Failed() {
		sb.WriteString("  configuration:\n    " + strings.ReplaceAll(string(r.Config.Marshal()), "\n", "\n    ") + "\n")
		sb.WriteString("  faults:\n")
		for _, f := range r.Faults {
			fmt.Fprintf(&sb, "    %v\n", f)
		}
		sb.WriteString("  nodes at the end:\n")
		for _, l := range r.Nodes {
			fmt.Fprintf(&sb, "    %s\n", l)
		}
		sb.WriteString("  trace (last lines):\n")
		for _, l := range r.Trace {
			fmt.Fprintf(&sb, "    %s\n", l)
		}
	}
	return sb.String()
}

type haMemberEvent struct {
	up   bool
	node base.NodeID
}

type haLock struct {
	group     string
	id        dlm.LockID
	granted   bool
	cancelled bool
}

type haSimNode struct {
	id       base.NodeID
	alive    bool
	paused   bool
	gen      int
	ha       *ha.Node
	dl       *dlm.Node
	next     int // next membership event to consume
	deferred []func()
	locks    map[dlm.LockID]*haLock
	cur      map[string]*haLock // the group's current lock
	// the simulated world on this node: which resources run
	running   map[string]bool // "group/resource"
	startFail map[string]bool
	stopFail  map[string]bool
	flapUntil map[string]time.Duration
	history   []ha.Record
	stopped   bool // a crashed or fenced incarnation
}

// HACluster is one simulated HA cluster.
type HACluster struct {
	opt     HAOptions
	rng     *base.Rand
	faultR  *base.Rand
	now     time.Duration
	q       queue
	nodes   []*haSimNode
	events  []haMemberEvent
	cut     map[[2]base.NodeID]bool
	linkAt  map[[2]base.NodeID]time.Duration // FIFO: next delivery not before
	pending map[[2]base.NodeID][]func()      // messages held on a cut link
	cfg     *ha.Config
	topo    ha.Topology
	faults  []HAFault
	trace   []string
	viol    []string
	stats   HAStats
	// fallback "never" watch: the node each group was last seen online on
	seenOn map[string]base.NodeID
	seenAt map[string]int // that node's incarnation
	reqID  uint64
}

// RunHA simulates one HA cluster from a seed and checks it.
func RunHA(seed uint64, opt HAOptions) *HAResult {
	c := newHACluster(seed, opt)
	c.run()
	return &HAResult{Seed: seed, Violations: c.viol, Config: c.cfg, Faults: c.faults, Trace: c.trace, Stats: c.stats, Nodes: c.dump()}
}

func newHACluster(seed uint64, opt HAOptions) *HACluster {
	r := base.NewRand(seed)
	c := &HACluster{opt: opt, rng: r.Fork(), faultR: r.Fork(), cut: map[[2]base.NodeID]bool{},
		linkAt: map[[2]base.NodeID]time.Duration{}, pending: map[[2]base.NodeID][]func(){},
		seenOn: map[string]base.NodeID{}, seenAt: map[string]int{}}
	if c.opt.Nodes == 0 {
		c.opt.Nodes = 3 + r.Intn(3)
	}
	for i := 0; i < c.opt.Nodes; i++ {
		c.topo.Nodes = append(c.topo.Nodes, ha.TopoNode{Name: fmt.Sprintf("n%d", i), ID: base.NodeID(i)})
		c.nodes = append(c.nodes, &haSimNode{id: base.NodeID(i)})
	}
	c.cfg = genHAConfig(r.Fork(), c.topo)
	if opt.Faults != nil {
		c.faults = append([]HAFault(nil), opt.Faults...)
	} else {
		c.faults = genHAFaults(c.faultR, c.opt, c.cfg)
	}
	return c
}

// genHAConfig makes a random configuration: 2 to 4 groups of 1 to 3
// application resources, random node lists and policies, some event
// scripts, sometimes a parent/child pair.
func genHAConfig(r *base.Rand, topo ha.Topology) *ha.Config {
	cfg := &ha.Config{Version: 1, Settings: ha.Settings{
		RestartAttempts: 1 + r.Intn(3), RestartInterval: ha.Duration(60 * time.Second),
		MonitorInterval: ha.Duration(2 * time.Second), ConfigTooLong: ha.Duration(60 * time.Second)}}
	if r.Chance(0.3) {
		cfg.Settings.SettlingTime = ha.Duration(time.Duration(2+r.Intn(5)) * time.Second)
	}
	ng := 2 + r.Intn(3)
	for i := 0; i < ng; i++ {
		g := ha.Group{Name: fmt.Sprintf("g%d", i)}
		perm := r.Perm(len(topo.Nodes))
		k := 2 + r.Intn(len(topo.Nodes)-1)
		for _, p := range perm[:k] {
			g.Nodes = append(g.Nodes, topo.Nodes[p].Name)
		}
		switch x := r.Intn(10); {
		case x < 3:
			g.Startup = ha.StartupHome
		case x < 9:
			g.Startup = ha.StartupFirst
		default:
			g.Startup = ha.StartupAll
		}
		if g.Startup != ha.StartupAll {
			if r.Chance(0.5) {
				g.Fallback = ha.FallbackHigher
				if r.Chance(0.3) {
					g.FallbackDelay = ha.Duration(time.Duration(1+r.Intn(5)) * time.Second)
				}
			} else {
				g.Fallback = ha.FallbackNever
			}
			if r.Chance(0.15) {
				g.Fallover = ha.FalloverOffline
			}
		}
		nr := 1 + r.Intn(3)
		for j := 0; j < nr; j++ {
			g.Resources = append(g.Resources, ha.Resource{Name: fmt.Sprintf("g%dr%d", i, j), Type: ha.TypeApp,
				StartScript: "/bin/true", StopScript: "/bin/true", MonitorScript: "/bin/true"})
		}
		if i > 0 && r.Chance(0.25) && cfg.Groups[0].Startup != ha.StartupAll {
			g.Parents = []string{"g0"}
		}
		cfg.Groups = append(cfg.Groups, g)
	}
	for _, ev := range []string{ha.EvRGOnline, ha.EvRGOffline, ha.EvNodeDown, ha.EvResourceFail} {
		if r.Chance(0.4) {
			es := ha.EventScripts{Event: ev, Pre: "/etc/ha/pre", Post: "/etc/ha/post", Notify: "/etc/ha/notify"}
			if r.Chance(0.5) {
				es.Recovery, es.Retries = "/etc/ha/recover", 1+r.Intn(2)
			}
			cfg.Events = append(cfg.Events, es)
		}
	}
	return cfg
}

func genHAFaults(r *base.Rand, opt HAOptions, cfg *ha.Config) []HAFault {
	var out []HAFault
	n := opt.Nodes
	count := int(opt.FaultsPerMin * opt.Duration.Minutes())
	node := func() base.NodeID { return base.NodeID(r.Intn(n)) }
	for i := 0; i < count; i++ {
		f := HAFault{At: 5*time.Second + time.Duration(r.Intn(int((opt.Duration-10*time.Second)/time.Millisecond)))*time.Millisecond}
		g := cfg.Groups[r.Intn(len(cfg.Groups))]
		switch x := r.Intn(100); {
		case x < 18:
			f.Kind, f.Nodes = HACrash, []base.NodeID{node()}
		case x < 26:
			f.Kind = HAPartition
			perm := r.Perm(n)
			k := 1 + r.Intn((n-1)/2+1)
			if k >= n {
				k = n - 1
			}
			for _, p := range perm[:k] {
				f.Nodes = append(f.Nodes, base.NodeID(p))
			}
			f.Dur = time.Duration(500+r.Intn(9000)) * time.Millisecond
		case x < 32:
			f.Kind, f.Nodes = HAPause, []base.NodeID{node()}
			f.Dur = time.Duration(200+r.Intn(8000)) * time.Millisecond
		case x < 50:
			f.Kind, f.Group = HAFlap, g.Name
			f.Dur = time.Duration(1+r.Intn(20)) * time.Second
		case x < 58:
			f.Kind, f.Group, f.Nodes = HAStartFail, g.Name, []base.NodeID{node()}
		case x < 61:
			f.Kind, f.Group, f.Nodes = HAStopFail, g.Name, []base.NodeID{node()}
		case x < 85:
			f.Kind, f.Group, f.Via = HAMove, g.Name, node()
			f.Nodes = []base.NodeID{base.NodeID(indexOf(cfg, g.Nodes[r.Intn(len(g.Nodes))]))}
			f.Sticky = r.Chance(0.4)
		case x < 93:
			f.Kind, f.Group, f.Via = HAStart, g.Name, node()
		default:
			f.Kind, f.Group, f.Via = HAStop, g.Name, node()
		}
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

func indexOf(cfg *ha.Config, name string) int {
	var x int
	fmt.Sscanf(name, "n%d", &x)
	return x
}

func (c *HACluster) logf(format string, args ...any) {
	if c.opt.TraceLines == 0 {
		return
	}
	c.trace = append(c.trace, fmt.Sprintf("%9.3fs ", c.now.Seconds())+fmt.Sprintf(format, args...))
	if len(c.trace) > 2*c.opt.TraceLines {
		c.trace = append([]string(nil), c.trace[len(c.trace)-c.opt.TraceLines:]...)
	}
}

func (c *HACluster) violate(format string, args ...any) {
	v := fmt.Sprintf("at %v: ", c.now) + fmt.Sprintf(format, args...)
	c.viol = append(c.viol, v)
	c.logf("VIOLATION %s", v)
}

func (c *HACluster) run() {
	for i, n := range c.nodes {
		nn := n
		c.q.at(time.Duration(i)*time.Duration(c.rng.Intn(800))*time.Millisecond, func() { c.boot(nn) })
	}
	for _, f := range c.faults {
		f := f
		c.q.at(f.At, func() { c.inject(f) })
	}
	end := c.opt.Duration + c.opt.Settle
	// At the end of the fault phase the operator starts most groups again,
	// so that the final checks have groups to look at.
	c.q.at(c.opt.Duration+time.Second, func() {
		for _, g := range c.cfg.Groups {
			if c.rng.Chance(0.8) {
				c.request(c.liveNode(), &ha.Request{Op: ha.ReqStart, Group: g.Name})
			}
		}
	})
	for t := 100 * time.Millisecond; t < end; t += 100 * time.Millisecond {
		c.q.at(t, c.checkSafety)
	}
	for {
		e, ok := c.q.next()
		if !ok || e.at > end {
			break
		}
		c.now = e.at
		e.do()
		if len(c.viol) > 10 {
			break
		}
	}
	c.now = end
	c.final()
}

func (c *HACluster) liveNode() base.NodeID {
	var live []base.NodeID
	for _, n := range c.nodes {
		if n.alive && !n.paused && n.ha != nil {
			live = append(live, n.id)
		}
	}
	if len(live) == 0 {
		return 0
	}
	return live[c.rng.Intn(len(live))]
}

// liveMap is the membership after every event so far.
func (c *HACluster) liveMap() base.NodeMap {
	var m base.NodeMap
	for _, e := range c.events {
		if e.up {
			m.Add(e.node)
		} else {
			m.Remove(e.node)
		}
	}
	return m
}

// boot starts a new incarnation of node n.
func (c *HACluster) boot(n *haSimNode) {
	if n.alive {
		return
	}
	n.alive, n.paused, n.stopped = true, false, false
	n.gen++
	n.deferred = nil
	n.locks, n.cur = map[dlm.LockID]*haLock{}, map[string]*haLock{}
	n.running, n.startFail, n.stopFail, n.flapUntil = map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]time.Duration{}
	n.history = nil
	c.events = append(c.events, haMemberEvent{up: true, node: n.id})
	n.next = len(c.events)
	seq := uint64(len(c.events))
	n.dl = dlm.New(dlm.Config{Self: n.id, MaxPayload: 8192})
	n.ha = ha.New(ha.NodeConfig{Self: n.id, Topo: c.topo, Incarnation: uint64(n.gen), Config: c.cfg, SyncTimeout: 2 * time.Second})
	c.logf("node %d boots (incarnation %d)", n.id, n.gen)
	c.dlmReady(n, n.dl.Membership(seq, c.liveMap()))
	rd, err := n.dl.Join(ha.LockDomain, false)
	if err != nil {
		c.violate("node %d: joining the HA lock domain: %v", n.id, err)
	}
	c.dlmReady(n, rd)
	n.ha.Tick(c.now, int64(c.now/time.Millisecond))
	n.ha.Membership(seq, c.liveMap())
	c.haReady(n)
	gen := n.gen
	c.scheduleTick(n, gen)
	c.wakeMembership()
}

func (c *HACluster) scheduleTick(n *haSimNode, gen int) {
	c.q.at(c.now+200*time.Millisecond, func() {
		if n.gen != gen || !n.alive {
			return
		}
		c.onNode(n, gen, func() {
			c.dlmReady(n, n.dl.Tick(c.now))
			n.ha.Tick(c.now, int64(c.now/time.Millisecond))
			c.haReady(n)
		})
		c.scheduleTick(n, gen)
	})
}

// onNode runs fn on node n's behalf: now when it runs, after it resumes
// when paused, never for another incarnation.
func (c *HACluster) onNode(n *haSimNode, gen int, fn func()) {
	if n.gen != gen || !n.alive {
		return
	}
	if n.paused {
		n.deferred = append(n.deferred, fn)
		return
	}
	fn()
}

// wakeMembership schedules the delivery of pending membership events.
func (c *HACluster) wakeMembership() {
	for _, n := range c.nodes {
		if !n.alive || n.next >= len(c.events) {
			continue
		}
		nn, gen := n, n.gen
		c.q.at(c.now+time.Duration(1+c.rng.Intn(30))*time.Millisecond, func() {
			c.onNode(nn, gen, func() { c.deliverMembership(nn) })
		})
	}
}

func (c *HACluster) deliverMembership(n *haSimNode) {
	for n.alive && !n.paused && n.next < len(c.events) {
		e := c.events[n.next]
		n.next++
		seq := uint64(n.next)
		if e.node == n.id {
			continue
		}
		if e.up {
			c.dlmReady(n, n.dl.NodeUp(seq, e.node))
			n.ha.NodeUp(seq, e.node)
		} else {
			c.dlmReady(n, n.dl.NodeDown(seq, e.node))
			n.ha.NodeDown(seq, e.node)
		}
		c.haReady(n)
	}
}

// kill ends node n's incarnation: its processes die with it.
func (c *HACluster) kill(n *haSimNode, why string) {
	if !n.alive {
		return
	}
	c.logf("node %d dies: %s", n.id, why)
	n.alive, n.paused, n.stopped = false, false, true
	n.running = map[string]bool{}
	n.deferred = nil
	for k := range c.pending {
		if k[0] == n.id || k[1] == n.id {
			delete(c.pending, k)
		}
	}
	for k := range c.cut {
		if k[0] == n.id || k[1] == n.id {
			delete(c.cut, k)
		}
	}
	id := n.id
	c.q.at(c.now+c.opt.Detect/2+time.Duration(c.rng.Intn(int(c.opt.Detect/2/time.Millisecond)))*time.Millisecond, func() {
		c.events = append(c.events, haMemberEvent{up: false, node: id})
		c.logf("membership: node %d down", id)
		c.wakeMembership()
		if c.now < c.opt.Duration+c.opt.Settle/3 {
			c.q.at(c.now+time.Duration(1000+c.rng.Intn(10000))*time.Millisecond, func() { c.boot(n) })
		}
	})
}

// send carries a message over the link from -> to: FIFO, delayed, held
// while the link is cut, lost when either end dies.
func (c *HACluster) send(from base.NodeID, to base.NodeID, fn func(dst *haSimNode)) {
	k := [2]base.NodeID{from, to}
	dst := c.nodes[to]
	src := c.nodes[from]
	if !dst.alive || !src.alive {
		return
	}
	sgen, dgen := src.gen, dst.gen
	deliver := func() {
		at := c.now + time.Duration(200+c.rng.Intn(3000))*time.Microsecond
		if last := c.linkAt[k]; at < last {
			at = last
		}
		c.linkAt[k] = at
		c.q.at(at, func() {
			if src.gen != sgen || dst.gen != dgen || !dst.alive {
				return
			}
			c.stats.Messages++
			c.onNode(dst, dgen, func() { fn(dst) })
		})
	}
	if c.cut[k] {
		c.pending[k] = append(c.pending[k], deliver)
		return
	}
	deliver()
}

func (c *HACluster) dlmReady(n *haSimNode, rd dlm.Ready) {
	msgs := append([]dlm.Outgoing(nil), rd.Messages...)
	asts := append([]dlm.AST(nil), rd.ASTs...)
	for _, m := range msgs {
		m := m
		m.Payload = append([]byte(nil), m.Payload...)
		c.send(n.id, m.To, func(dst *haSimNode) {
			rd, err := dst.dl.Receive(n.id, m.Type, m.Key, m.Payload)
			if err != nil {
				c.violate("node %d: DLM refused a message from %d: %v", dst.id, n.id, err)
			}
			c.dlmReady(dst, rd)
		})
	}
	for _, a := range asts {
		c.ast(n, a)
	}
}

// ast maps the DLM's completions onto the HA core's lock outcomes.
func (c *HACluster) ast(n *haSimNode, a dlm.AST) {
	l := n.locks[a.ID]
	if l == nil {
		return
	}
	switch a.Op {
	case dlm.OpLock:
		if a.Status == dlm.StatusOK {
			if l.cancelled {
				rd, err := n.dl.Unlock(l.id, nil)
				if err != nil {
					c.violate("node %d: unlocking %s: %v", n.id, l.group, err)
				}
				c.dlmReady(n, rd)
				return
			}
			l.granted = true
			if n.cur[l.group] == l {
				n.ha.LockDone(l.group, true)
				c.haReady(n)
			}
			return
		}
		delete(n.locks, a.ID)
		if n.cur[l.group] == l {
			delete(n.cur, l.group)
			if !l.cancelled {
				n.ha.LockDone(l.group, false)
				c.haReady(n)
			}
		}
	case dlm.OpUnlock:
		delete(n.locks, a.ID)
	}
}

func (c *HACluster) lockOp(n *haSimNode, op ha.LockOp) {
	if op.Mode == ha.LockNone {
		l := n.cur[op.Group]
		if l == nil {
			return
		}
		delete(n.cur, op.Group)
		if l.granted {
			rd, err := n.dl.Unlock(l.id, nil)
			if err != nil {
				c.violate("node %d: unlocking %s: %v", n.id, op.Group, err)
			}
			c.dlmReady(n, rd)
			return
		}
		l.cancelled = true
		rd, _ := n.dl.Cancel(l.id)
		c.dlmReady(n, rd)
		return
	}
	mode := dlm.ModeEX
	if op.Mode == ha.LockShared {
		mode = dlm.ModePR
	}
	var fl dlm.Flags
	if op.Try {
		fl = dlm.NoQueue
	}
	id, rd, err := n.dl.Lock(ha.LockDomain, ha.LockName(op.Group), mode, fl)
	if err != nil {
		c.violate("node %d: locking %s: %v", n.id, op.Group, err)
		return
	}
	l := &haLock{group: op.Group, id: id}
	n.locks[id] = l
	n.cur[op.Group] = l
	c.dlmReady(n, rd)
}

// haReady carries out what node n's HA core asks.
func (c *HACluster) haReady(n *haSimNode) {
	for round := 0; round < 50 && n.alive && !n.paused; round++ {
		rd := n.ha.Ready()
		if rd.Messages == nil && rd.Locks == nil && rd.Ops == nil && rd.Scripts == nil && rd.Checks == nil &&
			rd.Replies == nil && rd.Records == nil && rd.Fence == "" && rd.Notes == nil && rd.Config == nil && rd.State == nil {
			return
		}
		for _, l := range rd.Notes {
			c.logf("node %d: %s", n.id, l)
		}
		for _, r := range rd.Records {
			n.history = append(n.history, r)
			c.logf("node %d history %v", n.id, r)
		}
		for _, m := range rd.Messages {
			m := m
			c.send(n.id, m.To, func(dst *haSimNode) {
				if err := dst.ha.Receive(n.id, m.Type, m.Payload); err != nil {
					c.violate("node %d: HA refused a message from %d: %v", dst.id, n.id, err)
				}
				c.haReady(dst)
			})
		}
		for _, l := range rd.Locks {
			c.lockOp(n, l)
		}
		for _, op := range rd.Ops {
			c.runOp(n, op)
		}
		for _, s := range rd.Scripts {
			if s.Wait {
				c.runScript(n, s)
			}
		}
		for _, ch := range rd.Checks {
			n.ha.CheckDone(ch.ID, nil)
		}
		if rd.Fence != "" {
			c.stats.Fences++
			c.kill(n, "fenced: "+rd.Fence)
			return
		}
	}
}

func (c *HACluster) runOp(n *haSimNode, op ha.Op) {
	key := op.Group + "/" + op.Resource.Name
	gen := n.gen
	var d time.Duration
	switch op.Kind {
	case ha.OpStart:
		d = time.Duration(50+c.rng.Intn(400)) * time.Millisecond
		n.running[key] = true // a starting process may already serve
	case ha.OpStop:
		d = time.Duration(20+c.rng.Intn(250)) * time.Millisecond
	default:
		d = time.Duration(5+c.rng.Intn(40)) * time.Millisecond
	}
	c.q.at(c.now+d, func() {
		c.onNode(n, gen, func() {
			res := ha.OpResult{ID: op.ID, Status: ha.OpOK}
			switch op.Kind {
			case ha.OpStart:
				if n.startFail[op.Group] {
					delete(n.startFail, op.Group)
					res.Status, res.Detail = ha.OpFailed, "injected start failure"
				}
			case ha.OpStop:
				if n.stopFail[op.Group] {
					delete(n.stopFail, op.Group)
					res.Status, res.Detail = ha.OpFailed, "injected stop failure"
				} else {
					delete(n.running, key)
				}
			case ha.OpMonitor:
				if n.flapUntil[op.Group] > c.now && c.rng.Chance(0.6) {
					delete(n.running, key) // the process died
				}
				if !n.running[key] {
					res.Status = ha.OpNotRunning
				}
				if !op.Probe && res.Status != ha.OpOK {
					c.stats.Restarts++
				}
			}
			n.ha.OpDone(res)
			c.haReady(n)
		})
	})
}

func (c *HACluster) runScript(n *haSimNode, s ha.ScriptRun) {
	gen := n.gen
	exit := 0
	if s.Phase == ha.PhasePre && c.rng.Chance(0.02) {
		exit = 1
	}
	c.q.at(c.now+time.Duration(5+c.rng.Intn(60))*time.Millisecond, func() {
		c.onNode(n, gen, func() {
			n.ha.ScriptDone(ha.ScriptResult{ID: s.ID, Exit: exit})
			c.haReady(n)
		})
	})
}

func (c *HACluster) request(via base.NodeID, req *ha.Request) {
	n := c.nodes[via]
	if !n.alive || n.paused || n.ha == nil {
		return
	}
	c.reqID++
	c.logf("operator on node %d: %s %s %s sticky=%v", via, req.Op, req.Group, req.Node, req.Sticky)
	n.ha.Request(c.reqID, req)
	c.haReady(n)
}

func (c *HACluster) inject(f HAFault) {
	c.logf("FAULT %v", f)
	switch f.Kind {
	case HACrash:
		n := c.nodes[f.Nodes[0]]
		if n.alive {
			c.stats.Crashes++
			c.kill(n, "crash")
		}
	case HAPartition:
		var side, rest []base.NodeID
		in := base.NodeMapOf(f.Nodes...)
		for _, n := range c.nodes {
			if in.Has(n.id) {
				side = append(side, n.id)
			} else {
				rest = append(rest, n.id)
			}
		}
		for _, a := range side {
			for _, b := range rest {
				c.cut[[2]base.NodeID{a, b}] = true
				c.cut[[2]base.NodeID{b, a}] = true
			}
		}
		// The side without quorum fences at the detection bound: the
		// smaller side, or at a tie the side without the lowest node.
		loser := side
		if len(side) > len(rest) || len(side) == len(rest) && in.Has(0) {
			loser = rest
		}
		gens := map[base.NodeID]int{}
		for _, x := range loser {
			gens[x] = c.nodes[x].gen
		}
		if f.Dur >= c.opt.Detect {
			c.q.at(c.now+c.opt.Detect*3/4, func() {
				for _, x := range loser {
					if n := c.nodes[x]; n.alive && n.gen == gens[x] {
						c.stats.Fences++
						c.kill(n, "partitioned without quorum: fenced")
					}
				}
			})
		}
		c.q.at(c.now+f.Dur, func() {
			for _, a := range side {
				for _, b := range rest {
					for _, k := range [][2]base.NodeID{{a, b}, {b, a}} {
						delete(c.cut, k)
						held := c.pending[k]
						delete(c.pending, k)
						for _, d := range held {
							d()
						}
					}
				}
			}
		})
	case HAPause:
		n := c.nodes[f.Nodes[0]]
		if !n.alive || n.paused {
			return
		}
		n.paused = true
		gen := n.gen
		if f.Dur >= c.opt.Detect {
			// The survivors declare it dead; it fences when it wakes.
			c.q.at(c.now+c.opt.Detect, func() {
				if n.gen == gen && n.alive {
					c.events = append(c.events, haMemberEvent{up: false, node: n.id})
					c.logf("membership: node %d down (stalled)", n.id)
					c.wakeMembership()
				}
			})
		}
		c.q.at(c.now+f.Dur, func() {
			if n.gen != gen || !n.alive {
				return
			}
			if f.Dur >= c.opt.Detect {
				c.stats.Fences++
				n.alive = false // kill without a second down event
				n.paused, n.stopped = false, true
				n.running = map[string]bool{}
				c.logf("node %d resumes after %v and fences", n.id, f.Dur)
				c.q.at(c.now+time.Duration(1000+c.rng.Intn(8000))*time.Millisecond, func() { c.boot(n) })
				return
			}
			n.paused = false
			d := n.deferred
			n.deferred = nil
			for _, fn := range d {
				if n.gen == gen && n.alive && !n.paused {
					fn()
				}
			}
		})
	case HAFlap:
		for _, n := range c.nodes {
			if n.alive && n.ha != nil && n.ha.Running(f.Group) {
				n.flapUntil[f.Group] = c.now + f.Dur
			}
		}
	case HAStartFail:
		if n := c.nodes[f.Nodes[0]]; n.alive {
			n.startFail[f.Group] = true
		}
	case HAStopFail:
		if n := c.nodes[f.Nodes[0]]; n.alive {
			n.stopFail[f.Group] = true
		}
	case HAMove:
		c.stats.Moves++
		c.request(f.Via, &ha.Request{Op: ha.ReqMove, Group: f.Group, Node: c.topo.Name(f.Nodes[0]), Sticky: f.Sticky})
	case HAStart:
		c.request(f.Via, &ha.Request{Op: ha.ReqStart, Group: f.Group})
	case HAStop:
		c.request(f.Via, &ha.Request{Op: ha.ReqStop, Group: f.Group})
	}
}

// checkSafety: no group that is not concurrent has a process running on
// two live nodes, and a node runs a group's processes only while its DLM
// grants it the group's lock.
func (c *HACluster) checkSafety() {
	for _, g := range c.cfg.Groups {
		var on []base.NodeID
		for _, n := range c.nodes {
			if !n.alive || n.paused {
				continue
			}
			running := false
			for k := range n.running {
				if strings.HasPrefix(k, g.Name+"/") {
					running = true
				}
			}
			if !running {
				continue
			}
			on = append(on, n.id)
			if !c.holds(n, g.Name, g.Concurrent()) {
				c.violate("node %d runs group %s without holding its lock in the DLM", n.id, g.Name)
			}
		}
		if !g.Concurrent() && len(on) > 1 {
			c.violate("group %s is active on nodes %v at once", g.Name, on)
		}
		// fallback "never": no move while the node stays up, after the faults.
		if len(on) == 1 && !g.Concurrent() {
			x := on[0]
			prev, ok := c.seenOn[g.Name]
			if c.now > c.opt.Duration+c.opt.Detect*3 && ok && prev != x && g.Fallback == ha.FallbackNever {
				p := c.nodes[prev]
				gs := c.stateOf(g.Name)
				if p.alive && p.gen == c.seenAt[g.Name] && !hasID(gs.Failed, prev) && !gs.Sticky.Valid() && !gs.Prefer.Valid() {
					c.violate("group %s (fallback never) moved from node %d to node %d while node %d stayed up", g.Name, prev, x, prev)
				}
			}
			c.seenOn[g.Name] = x
			c.seenAt[g.Name] = c.nodes[x].gen
		}
	}
}

func hasID(l []base.NodeID, x base.NodeID) bool {
	for _, y := range l {
		if y == x {
			return true
		}
	}
	return false
}

// holds reports whether node n's DLM grants it group's lock.
func (c *HACluster) holds(n *haSimNode, group string, shared bool) bool {
	rs, err := n.dl.Locks(ha.LockDomain, ha.LockName(group))
	if err != nil {
		return false
	}
	for _, r := range rs {
		for _, l := range r.Local {
			if l.Mode == dlm.ModeEX || shared && l.Mode == dlm.ModePR {
				return true
			}
		}
	}
	return false
}

// stateOf is the coordinator's state of a group (the lowest live node's).
func (c *HACluster) stateOf(group string) ha.GroupState {
	for _, n := range c.nodes {
		if n.alive && !n.paused && n.ha != nil && n.ha.IsCoordinator() {
			return n.ha.State().Group(group)
		}
	}
	return (&ha.State{}).Group(group)
}

// final checks convergence after the quiet phase.
func (c *HACluster) final() {
	var live []*haSimNode
	var up base.NodeMap
	for _, n := range c.nodes {
		if n.alive && !n.paused && n.ha != nil {
			live = append(live, n)
			if n.ha.IsReady() {
				up.Add(n.id)
			}
		}
	}
	if len(live) == 0 {
		return
	}
	// Same configuration, state and history everywhere.
	ref := live[0].ha
	for _, n := range live[1:] {
		if n.ha.Config().Digest() != ref.Config().Digest() {
			c.violate("node %d holds configuration %s, node %d %s", n.id, n.ha.Config().Digest(), live[0].id, ref.Config().Digest())
		}
		if n.ha.State().Version != ref.State().Version {
			c.violate("node %d holds state version %d, node %d version %d", n.id, n.ha.State().Version, live[0].id, ref.State().Version)
		}
		a, b := n.ha.History(0, 0), ref.History(0, 0)
		ia, ib := 0, 0
		for ia < len(a) && ib < len(b) {
			switch {
			case a[ia].Seq < b[ib].Seq:
				ia++
			case a[ia].Seq > b[ib].Seq:
				ib++
			default:
				if a[ia].String() != b[ib].String() {
					c.violate("history record %d differs: node %d has %q, node %d %q", a[ia].Seq, n.id, a[ia], live[0].id, b[ib])
				}
				ia++
				ib++
			}
		}
		if len(a) > 0 && len(b) > 0 && a[len(a)-1].Seq != b[len(b)-1].Seq {
			c.violate("node %d's history ends at %d, node %d's at %d", n.id, a[len(a)-1].Seq, live[0].id, b[len(b)-1].Seq)
		}
	}
	coord := (*haSimNode)(nil)
	for _, n := range live {
		if n.ha.IsCoordinator() {
			coord = n
		}
	}
	if coord == nil {
		c.violate("no live node coordinates (live: %d nodes)", len(live))
		return
	}
	st := coord.ha.State()
	for _, g := range c.cfg.Groups {
		gs := st.Group(g.Name)
		var elig base.NodeMap
		var list []base.NodeID
		for _, name := range g.Nodes {
			var x int
			fmt.Sscanf(name, "n%d", &x)
			id := base.NodeID(x)
			list = append(list, id)
			if up.Has(id) && !hasID(gs.Failed, id) {
				elig.Add(id)
			}
		}
		var on base.NodeMap
		for _, n := range live {
			if n.ha.Phase(g.Name) == "online" {
				on.Add(n.id)
			}
		}
		switch {
		case gs.Offline || gs.Parked.Valid() || gs.Forced.Valid():
			if !on.Empty() {
				c.violate("group %s is offline (%s) but online on [%v]", g.Name, gs.OfflineWhy, on)
			}
			continue
		case gs.Unmanaged.Valid():
			continue
		}
		parentsOK := true
		for _, p := range g.Parents {
			if pg := st.Group(p); pg.Offline {
				parentsOK = false
			}
		}
		if elig.Empty() || !parentsOK {
			if !elig.Empty() && !on.Empty() {
				c.violate("group %s is online on [%v] while its parent is offline", g.Name, on)
			}
			continue
		}
		if g.Concurrent() {
			if on != elig {
				c.violate("concurrent group %s is online on [%v], its eligible nodes are [%v]", g.Name, on, elig)
			}
			continue
		}
		if g.Startup == ha.StartupHome && !elig.Has(list[0]) && len(gs.Owners) == 0 {
			if !on.Empty() {
				c.violate("group %s (start-up home) is online on [%v] though its home node is not eligible and it never fell over", g.Name, on)
			}
			continue
		}
		if on.Len() != 1 {
			c.violate("group %s has eligible nodes [%v] but is online on [%v]", g.Name, elig, on)
			continue
		}
		x := on.Lowest()
		if !elig.Has(x) {
			c.violate("group %s is online on node %d, which is not eligible [%v]", g.Name, x, elig)
		}
		best := base.InvalidNode
		for _, id := range list {
			if elig.Has(id) {
				best = id
				break
			}
		}
		switch {
		case gs.Sticky.Valid() && elig.Has(gs.Sticky):
			if x != gs.Sticky {
				c.violate("group %s is sticky on node %d (eligible) but online on node %d", g.Name, gs.Sticky, x)
			}
		case gs.Prefer.Valid() && elig.Has(gs.Prefer):
			if x != gs.Prefer {
				c.violate("group %s was moved to node %d (eligible) but is online on node %d", g.Name, gs.Prefer, x)
			}
		case g.Fallback == ha.FallbackHigher && !gs.Sticky.Valid():
			if x != best {
				c.violate("group %s (fallback higher) is online on node %d, its highest priority eligible node is %d", g.Name, x, best)
			}
		}
	}
}

func (c *HACluster) dump() []string {
	var out []string
	for _, n := range c.nodes {
		if n.ha == nil {
			out = append(out, fmt.Sprintf("node %d: never started", n.id))
			continue
		}
		s := fmt.Sprintf("node %d: alive %v paused %v gen %d coordinator %v ready %v", n.id, n.alive, n.paused, n.gen, n.ha.IsCoordinator(), n.ha.IsReady())
		for _, g := range c.cfg.Groups {
			s += fmt.Sprintf(" %s=%s", g.Name, n.ha.Phase(g.Name))
		}
		if n.ha.IsCoordinator() {
			for _, g := range n.ha.State().Groups {
				s += fmt.Sprintf("\n      state %+v", g)
			}
		}
		out = append(out, s)
	}
	return out
}
