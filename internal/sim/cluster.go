package sim

import (
	"fmt"
	"strings"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/cluster/heartbeat"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/cluster/quorum"
	"o2go/internal/node/member"
)

// Options describe one simulated cluster.
type Options struct {
	Nodes    int
	Timeouts config.Timeouts
	Mode     heartbeat.Mode
	Regions  int  // heartbeat regions every node uses
	KillArea bool // the regions have kill areas (kill blocks need Timeouts.KillAckTimeout too)
	// Duration is the fault phase; Settle the quiet time after it, before
	// the final convergence check.
	Duration time.Duration
	Settle   time.Duration
	// MaxSpike bounds disk latency spikes (stalls and errors are separate
	// faults). 0: (DeadTime - 2 intervals) / 4, the bound o2go is safe under.
	MaxSpike time.Duration
	// IOTimeout is the host's I/O timeout: an I/O on a hung path fails
	// after it. 0: DeadTime - 4 intervals, the most o2go is safe with (see
	// node/member's write gate).
	IOTimeout time.Duration
	// Faults to inject; nil: generated from the seed.
	Faults []Fault
	// FaultsPerMinute is the mean rate of generated faults.
	FaultsPerMinute float64
	// Restart brings crashed and fenced nodes back after a delay.
	Restart bool
	// TraceLines keeps the last lines of the run's log for failure reports.
	TraceLines int
	// DLM runs the lock manager on every node, with applications locking
	// and checks of what it promises (see dlm.go).
	DLM bool
	// LeaseOverFoundRegions replays the rule before issue 5's fix, in
	// global mode: a node tells its member only the regions it found (with
	// Invisible faults, fewer than those configured), so the majority of
	// its lease is taken over those. Only the scenario test that shows the
	// split brain this allows sets it.
	LeaseOverFoundRegions bool
}

// DefaultTimeouts are the simulator's timing: short enough for many runs,
// inside config's ranges (interval 1 s, threshold 11: dead time 10 s).
func DefaultTimeouts() config.Timeouts {
	return config.Timeouts{
		HeartbeatThreshold: 11,
		HeartbeatInterval:  time.Second,
		IdleTimeout:        5 * time.Second,
		KeepaliveDelay:     time.Second,
		ReconnectDelay:     2 * time.Second,
		KillAckTimeout:     3 * time.Second,
	}
}

// DefaultOptions is a cluster of n nodes on one local region with kill blocks.
func DefaultOptions(n int) Options {
	return Options{
		Nodes: n, Timeouts: DefaultTimeouts(), Mode: heartbeat.Local, Regions: 1, KillArea: true,
		Duration: 90 * time.Second, Settle: 75 * time.Second, FaultsPerMinute: 6, Restart: true, TraceLines: 400,
	}
}

// Result is what a run found.
type Result struct {
	Seed       uint64
	Violations []string
	Fences     int
	Freezes    int
	Events     int
	Faults     []Fault
	Trace      []string
	End        time.Duration
	Nodes      []string // each node's state at the end
}

// Failed reports whether a checker found a violation.
func (r *Result) Failed() bool { return len(r.Violations) > 0 }

func (r *Result) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "seed %d: %d violations, %d fences, %d freezes, %d events, %d faults\n",
		r.Seed, len(r.Violations), r.Fences, r.Freezes, r.Events, len(r.Faults))
	for _, v := range r.Violations {
		fmt.Fprintf(&sb, "  VIOLATION: %s\n", v)
	}
	if len(r.Violations) > 0 {
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

type nodeState int

const (
	stDown nodeState = iota
	stRunning
	stPaused
	stFenced
)

func (s nodeState) String() string { return [...]string{"down", "running", "paused", "fenced"}[s] }

type simNode struct {
	id        base.NodeID
	m         *member.Member
	gen       uint64
	state     nodeState
	epoch     int // counts incarnations: callbacks of an older one are dropped
	wallOff   time.Duration
	regions   map[member.RegionID]int
	deferred  []func() // callbacks held while paused
	conns     map[cnet.ConnID]*simConn
	upGen     map[base.NodeID]uint64 // generation of each member, as of its up event here
	d         *dlmNode               // the lock manager and its applications (Options.DLM)
	inflight  int                    // writes issued and not landed
	onDrained []func()
	startedAt time.Duration
	frozen    bool
}

// Cluster is one simulated cluster.
type Cluster struct {
	opt     Options
	rng     *base.Rand
	faultR  *base.Rand
	now     time.Duration
	q       queue
	nodes   []*simNode
	disks   []*disk
	geo     heartbeat.Geometry
	links   linkState
	chk     *checker
	trace   []string
	events  int
	fences  int
	freezes int
	faults  []Fault
	active  activeFaults
	nextGen uint64
	dlm     *dlmState // Options.DLM
}

const sectorSize = 512

// Run simulates one cluster from a seed and checks it.
func Run(seed uint64, opt Options) *Result {
	c := newCluster(seed, opt)
	c.run()
	return &Result{Seed: seed, Violations: c.chk.violations, Fences: c.fences, Freezes: c.freezes,
		Events: c.events, Faults: c.faults, Trace: c.trace, End: c.now, Nodes: c.dump()}
}

func newCluster(seed uint64, opt Options) *Cluster {
	r := base.NewRand(seed)
	c := &Cluster{opt: opt, rng: r.Fork(), faultR: r.Fork(), nextGen: r.Uint64() | 1}
	if opt.DLM {
		c.dlm = &dlmState{rng: r.Fork()}
	}
	t := opt.Timeouts
	if opt.MaxSpike == 0 {
		c.opt.MaxSpike = (t.DeadTime() - 2*t.HeartbeatInterval) / 4
	}
	if opt.IOTimeout == 0 {
		c.opt.IOTimeout = t.DeadTime() - 4*t.HeartbeatInterval
	}
	c.geo = heartbeat.Geometry{Start: 0, SectorSize: sectorSize, Size: 512 * sectorSize}
	if opt.KillArea {
		c.geo.PlaceKillInFile()
	}
	for i := 0; i < opt.Regions; i++ {
		c.disks = append(c.disks, newDisk(c.geo))
	}
	c.chk = newChecker(c)
	c.links = newLinkState()
	for i := 0; i < opt.Nodes; i++ {
		c.nodes = append(c.nodes, &simNode{id: base.NodeID(i)})
	}
	if opt.Faults != nil {
		c.faults = append([]Fault(nil), opt.Faults...)
	} else {
		c.faults = genFaults(c.faultR, c.opt)
	}
	return c
}

func (c *Cluster) logf(format string, args ...any) {
	if c.opt.TraceLines == 0 {
		return
	}
	line := fmt.Sprintf("%9.3fs ", c.now.Seconds()) + fmt.Sprintf(format, args...)
	c.trace = append(c.trace, line)
	if len(c.trace) > 2*c.opt.TraceLines {
		c.trace = append([]string(nil), c.trace[len(c.trace)-c.opt.TraceLines:]...)
	}
}

func (c *Cluster) nodeMap() base.NodeMap {
	var m base.NodeMap
	for _, n := range c.nodes {
		m.Add(n.id)
	}
	return m
}

func (c *Cluster) run() {
	for i, n := range c.nodes {
		start := time.Duration(c.rng.Intn(3000)) * time.Millisecond
		if i == 0 {
			start = 0
		}
		nn := n
		c.q.at(start, func() { c.start(nn) })
	}
	for _, f := range c.faults {
		f := f
		c.q.at(f.At, func() { c.inject(f) })
	}
	end := c.opt.Duration + c.opt.Settle
	for t := time.Second; t < end; t += time.Second {
		c.q.at(t, c.chk.periodic)
	}
	for {
		e, ok := c.q.next()
		if !ok || e.at > end {
			break
		}
		c.now = e.at
		e.do()
		c.events++
		if len(c.chk.violations) > 20 {
			break
		}
	}
	c.now = end
	c.chk.final()
}

func (c *Cluster) wall(n *simNode) uint64 {
	return uint64((time.Duration(1_760_000_000_000)*time.Millisecond + c.now + n.wallOff).Milliseconds())
}

// start boots a new incarnation of node n.
func (c *Cluster) start(n *simNode) {
	if n.state == stRunning || n.state == stPaused {
		return
	}
	c.nextGen = c.nextGen*6364136223846793005 + 1442695040888963407
	n.gen = c.nextGen | 1
	n.epoch++
	n.state = stRunning
	n.frozen = false
	n.startedAt = c.now
	n.conns = map[cnet.ConnID]*simConn{}
	n.upGen = map[base.NodeID]uint64{}
	n.deferred = nil
	n.inflight = 0
	n.onDrained = nil
	n.regions = map[member.RegionID]int{}
	n.m = member.New(member.Config{Self: n.id, Nodes: c.nodeMap(), Timeouts: c.opt.Timeouts, Mode: c.opt.Mode, Generation: n.gen})
	if c.opt.Mode == heartbeat.Global && !c.opt.LeaseOverFoundRegions {
		var names []string
		for i := range c.disks {
			names = append(names, c.regionSpec(i).Name)
		}
		n.m.SetConfiguredRegions(names)
	}
	for i := range c.disks {
		if c.invisible(n.id, i) {
			c.logf("node %d does not find heartbeat region %d", n.id, i)
			n.m.RegionMissing(c.regionSpec(i).Name, "not found (invisible to this node)")
			continue
		}
		id := n.m.AddRegion(c.now, c.regionSpec(i))
		n.regions[id] = i
	}
	c.chk.started(n)
	c.logf("node %d starts (generation %016x)", n.id, n.gen)
	c.dlmStart(n)
	c.process(n)
	c.scheduleTick(n, n.epoch)
	c.scheduleData(n, n.epoch)
}

// regionSpec is heartbeat region i as a node adds it.
func (c *Cluster) regionSpec(i int) member.RegionSpec {
	return member.RegionSpec{Name: fmt.Sprintf("R%d", i), SectorSize: sectorSize, HasKill: c.geo.HasKill}
}

func (c *Cluster) tickPeriod() time.Duration { return c.opt.Timeouts.HeartbeatInterval / 5 }

func (c *Cluster) scheduleTick(n *simNode, epoch int) {
	c.q.at(c.now+c.tickPeriod(), func() {
		if n.epoch != epoch || (n.state != stRunning && n.state != stPaused) {
			return
		}
		if n.state == stRunning {
			n.m.Tick(c.now, c.wall(n))
			c.process(n)
		}
		c.scheduleTick(n, epoch)
	})
}

// scheduleData makes a node that is in the cluster write "file system data"
// regularly, through the same gate as the agent: MayWrite.
func (c *Cluster) scheduleData(n *simNode, epoch int) {
	c.q.at(c.now+300*time.Millisecond+time.Duration(c.rng.Intn(200))*time.Millisecond, func() {
		if n.epoch != epoch || (n.state != stRunning && n.state != stPaused) {
			return
		}
		if n.state == stRunning && n.m.View().Members.Has(n.id) {
			err := n.m.MayWrite(c.now)
			c.process(n)
			if err == nil {
				c.issueWrite(n, 0, writeData, nil, nil)
			}
		}
		c.scheduleData(n, epoch)
	})
}

// deliverTo runs fn on node n's behalf: at once when it runs, after it
// resumes when paused, never for an older incarnation.
func (c *Cluster) deliverTo(n *simNode, epoch int, fn func()) {
	if n.epoch != epoch {
		return
	}
	switch n.state {
	case stRunning:
		fn()
		c.process(n)
	case stPaused:
		n.deferred = append(n.deferred, fn)
	}
}

// process carries out what the member asks.
func (c *Cluster) process(n *simNode) {
	if n.state != stRunning && n.state != stPaused {
		return
	}
	for round := 0; round < 100; round++ {
		r := n.m.Ready()
		if r.Fence == nil && len(r.Reads)+len(r.Writes)+len(r.Stops)+len(r.Dials)+len(r.Closes)+len(r.Frames)+len(r.Events)+len(r.Notes) == 0 && r.RegionFailures == nil {
			return
		}
		for _, line := range r.Notes {
			c.logf("node %d: %s", n.id, line)
			if strings.HasPrefix(line, "BUG:") {
				c.chk.violate("node %d: %s", n.id, line)
			}
			if strings.HasPrefix(line, "evicting node ") {
				c.chk.evicting(n, line)
			}
			if strings.HasPrefix(line, "heartbeat writes stalled past") && !n.frozen {
				n.frozen = true
				c.freezes++
			}
			if strings.HasPrefix(line, "the shared disk is back") {
				n.frozen = false
				c.chk.thawed(n)
			}
		}
		if r.Fence != nil {
			c.fence(n, r.Fence)
			return
		}
		for id, why := range r.RegionFailures {
			c.chk.violate("node %d: region %d refused: %s", n.id, id, why)
		}
		for _, e := range r.Events {
			c.chk.event(n, e)
			c.dlmEvent(n, e)
		}
		for _, rd := range r.Reads {
			c.issueRead(n, rd)
		}
		for _, w := range r.Writes {
			if err := n.m.MayHeartbeat(c.now); err != nil {
				continue // the gate: the fence follows in the next round
			}
			c.issueWrite(n, w.Region, writeHB, w.HB, w.Kill)
		}
		for _, w := range r.Stops {
			c.issueWrite(n, w.Region, writeStop, w.HB, nil)
		}
		for _, d := range r.Dials {
			c.dial(n, d)
		}
		for _, cl := range r.Closes {
			c.closeConn(n, cl.Conn, cl.Reason)
		}
		for _, f := range r.Frames {
			c.send(n, f)
		}
	}
	c.chk.violate("node %d: member keeps asking for work (livelock)", n.id)
}

// fence: the latch is on; in-flight writes finish (or are lost with a
// stalled path); then the acknowledgement; then the node is gone (reset),
// to come back later when Restart is set.
func (c *Cluster) fence(n *simNode, f *member.Fence) {
	c.fences++
	c.logf("node %d FENCES (%v): %s", n.id, f.Reason, f.Message)
	c.chk.fenced(n, f)
	n.state = stFenced
	n.deferred = nil
	epoch := n.epoch
	c.dropConns(n, true)
	acks := func() {
		for _, a := range f.Acks {
			c.issueWrite(n, a.Region, writeAck, nil, a.Kill)
		}
	}
	if n.inflight == 0 {
		acks()
	} else {
		n.onDrained = append(n.onDrained, acks)
	}
	if c.opt.Restart && c.now < c.opt.Duration+c.opt.Settle/3 {
		delay := 3*time.Second + time.Duration(c.rng.Intn(15000))*time.Millisecond
		c.q.at(c.now+delay, func() {
			if n.epoch == epoch && n.state == stFenced {
				n.state = stDown
				c.start(n)
			}
		})
	}
}

var _ = quorum.NodeUp

// dump describes every node's state.
func (c *Cluster) dump() []string {
	var out []string
	for _, n := range c.nodes {
		if n.m == nil {
			out = append(out, fmt.Sprintf("node %d: %v", n.id, n.state))
			continue
		}
		m := n.m
		var unres base.NodeMap
		for _, id := range m.Regions() {
			unres = unres.Union(m.Region(id).Unresolved())
		}
		mem := m.Membership()
		s := fmt.Sprintf("node %d: %v gen %016x steady %v (unresolved [%v]) leader %v live [%v] connected [%v] lost [%v] view %v known %v frozen %v",
			n.id, n.state, n.gen, m.Steady(), unres, m.Leader(), m.Live(), m.Links().Connected(), m.Links().Lost(),
			m.View(), mem.Known(), m.Frozen())
		for _, p := range c.nodes {
			if st, fresh := mem.PeerStatus(p.id); p != n && (fresh || st.Committed.Epoch > 0) {
				s += fmt.Sprintf("\n      status from %d (fresh %v): steady %v view %v connected [%v]", p.id, fresh, st.Steady, st.Committed, st.Connected)
			}
		}
		out = append(out, s)
	}
	return out
}

// Shrink reduces a failing run's fault list (see ShrinkBy) and returns the
// smallest failing list found and its result. A run is a pure function of
// the seed and the faults, so the reduced case replays exactly with
// Options.Faults.
func Shrink(seed uint64, opt Options, faults []Fault) ([]Fault, *Result) {
	var last *Result
	run := func(fs []Fault) *Result {
		o := opt
		o.Faults = append([]Fault{}, fs...)
		return Run(seed, o)
	}
	small := ShrinkBy(faults, func(fs []Fault) bool { return run(fs).Failed() })
	last = run(small)
	return small, last
}

// ShrinkBy drops faults while fails still holds: halves, quarters, ... down
// to single faults (delta debugging). It returns faults unchanged when they
// do not fail.
func ShrinkBy(faults []Fault, fails func([]Fault) bool) []Fault {
	best := append([]Fault{}, faults...)
	if !fails(best) {
		return best
	}
	for chunk := (len(best) + 1) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(best); {
			try := append(append([]Fault{}, best[:i]...), best[i+chunk:]...)
			if fails(try) {
				best = try
				continue
			}
			i += chunk
		}
		if chunk == 1 {
			break
		}
	}
	return best
}

// FastTimeouts are the fastest timing under which o2go rides out disk
// latency spikes of 5 s safely and without a false fence
// (TestBenchFastestTimingInTheSimulator searches it; the agents' 10-minute
// soak, TestBenchSoakLatencySpikes, confirms it): heartbeat every 500 ms,
// threshold 16 (dead time 7.5 s, self-fence bound 7 s). The bound that
// decides is the host's I/O timeout: o2go is safe while it is below the
// dead time minus four intervals (5.5 s here, see node/member's write
// gate), and a 5 s spike is latency, not an I/O error, only when it is
// above 5 s; at threshold 15 no timeout is both. The simulator alone, with
// I/O failing at that bound, passes down to threshold 14. The network is at
// the o2cb init script's minimums (idle 5 s, keepalive 1 s, reconnect 2 s);
// kill-block acknowledgements within three intervals.
func FastTimeouts() config.Timeouts {
	return config.Timeouts{
		HeartbeatThreshold: 16,
		HeartbeatInterval:  500 * time.Millisecond,
		IdleTimeout:        5 * time.Second,
		KeepaliveDelay:     time.Second,
		ReconnectDelay:     2 * time.Second,
		KillAckTimeout:     1500 * time.Millisecond,
	}
}
