package sim

import (
	"fmt"
	"time"

	"o2go/internal/base"
)

// FaultKind is a kind of injected failure.
type FaultKind int

const (
	CrashProcess FaultKind = iota // kill -9: the kernel resets the node's connections
	CrashPower                    // power loss: connections vanish silently
	Pause                         // SIGSTOP / VM stall for Dur
	Partition                     // Nodes vs the rest, both ways, for Dur
	Cut                           // only the link between Nodes[0] and Nodes[1], for Dur
	CutOneWay                     // Nodes[0] -> Nodes[1] only, for Dur
	DiskSpike                     // Nodes' disk I/O (region Region, -1 all) takes Latency, for Dur
	DiskStall                     // Nodes' disk I/O hangs for Dur
	DiskErrors                    // Nodes' disk I/O fails for Dur
	ArrayDown                     // every node's disk I/O hangs for Dur (the array is down)
	NetDelay                      // every message is delayed by up to Latency, for Dur
	ConnReset                     // the connection between Nodes[0] and Nodes[1] is reset
	ClockJump                     // Nodes[0]'s wall clock jumps by Latency (may be negative)
	numFaultKinds
)

// Stop is a clean shutdown of Nodes[0]'s agent, as `systemctl stop` does
// it (node.Agent's stopAll): every region stops with a stop block
// (generation 0), the agent waits up to two intervals for those writes and
// exits; it starts again after Dur. genFaults never draws it, so that every
// seed keeps its schedule; scenario tests list it.
const Stop = numFaultKinds

// Invisible makes heartbeat region Region (-1: every region) invisible to
// Nodes from At for Dur, as a device missing from a host (not presented to
// it, a path not configured, a --scan folder without it): an incarnation
// that starts meanwhile does not find it (the driver declares it missing
// and adds the others); one that uses it already gets I/O errors on it (the
// device went away). When the fault ends every running node that lacks the
// region finds it and adds it, as the agent's retry does. Data writes are
// not affected (the data volume is another device). Like Stop, genFaults
// never draws it: scenario tests list it, with At 0 for "from the start".
const Invisible = numFaultKinds + 1

var faultNames = [...]string{"crash", "power-loss", "pause", "partition", "cut", "cut-one-way",
	"disk-spike", "disk-stall", "disk-errors", "array-down", "net-delay", "conn-reset", "clock-jump",
	"stop", "invisible"}

func (k FaultKind) String() string { return faultNames[k] }

// Fault is one injected failure.
type Fault struct {
	At      time.Duration
	Kind    FaultKind
	Nodes   []base.NodeID
	Region  int // -1: every region
	Dur     time.Duration
	Latency time.Duration
}

func (f Fault) String() string {
	s := fmt.Sprintf("at %v %v nodes %v", f.At, f.Kind, f.Nodes)
	if f.Dur > 0 {
		s += fmt.Sprintf(" for %v", f.Dur)
	}
	if f.Latency != 0 {
		s += fmt.Sprintf(" latency %v", f.Latency)
	}
	if f.Region >= 0 && (f.Kind == DiskSpike || f.Kind == DiskStall || f.Kind == DiskErrors || f.Kind == Invisible) {
		s += fmt.Sprintf(" region %d", f.Region)
	}
	return s
}

// pathFault is the state of one node's path to one region.
type pathFault struct {
	spike      time.Duration
	spikeUntil time.Duration
	stallUntil time.Duration
	errUntil   time.Duration
}

type activeFaults struct {
	paths      map[[2]int]*pathFault
	delay      time.Duration
	delayUntil time.Duration
}

func (a *activeFaults) path(n base.NodeID, region int, now time.Duration) pathFault {
	if p := a.paths[[2]int{int(n), region}]; p != nil {
		return *p
	}
	return pathFault{}
}

func (a *activeFaults) pathFor(n base.NodeID, region int) *pathFault {
	if a.paths == nil {
		a.paths = map[[2]int]*pathFault{}
	}
	k := [2]int{int(n), region}
	if a.paths[k] == nil {
		a.paths[k] = &pathFault{}
	}
	return a.paths[k]
}

func (a *activeFaults) netDelay(now time.Duration) time.Duration {
	if a.delayUntil > now {
		return a.delay
	}
	return 0
}

func maxd(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// genFaults draws a fault schedule: FaultsPerMinute on average over the
// fault phase, each of a random kind, on random nodes.
func genFaults(r *base.Rand, opt Options) []Fault {
	var out []Fault
	t := opt.Timeouts
	n := opt.Nodes
	count := int(opt.FaultsPerMinute*opt.Duration.Minutes() + 0.5)
	if count > 0 {
		count = 1 + r.Intn(2*count)
	}
	pick := func() base.NodeID { return base.NodeID(r.Intn(n)) }
	pair := func() []base.NodeID {
		a := pick()
		b := pick()
		for n > 1 && b == a {
			b = pick()
		}
		return []base.NodeID{a, b}
	}
	dur := func(max time.Duration) time.Duration {
		return time.Duration(r.Intn(int(max/time.Millisecond))+100) * time.Millisecond
	}
	long := 2 * (t.DeadTime() + t.IdleTimeout)
	for i := 0; i < count; i++ {
		f := Fault{At: time.Duration(r.Intn(int(opt.Duration/time.Millisecond))) * time.Millisecond, Region: -1}
		f.Kind = FaultKind(r.Intn(int(numFaultKinds)))
		switch f.Kind {
		case CrashProcess, CrashPower:
			f.Nodes = []base.NodeID{pick()}
			f.Dur = 2*time.Second + dur(20*time.Second) // until restart
		case Pause:
			f.Nodes = []base.NodeID{pick()}
			// Short pauses, and pauses past the self-fence bound.
			if r.Chance(0.5) {
				f.Dur = dur(t.MaxWriteStall())
			} else {
				f.Dur = t.MaxWriteStall() + dur(t.DeadTime())
			}
		case Partition:
			k := 1 + r.Intn(maxi(1, n-1))
			perm := r.Perm(n)
			for _, p := range perm[:k] {
				f.Nodes = append(f.Nodes, base.NodeID(p))
			}
			f.Dur = dur(long)
		case Cut, CutOneWay, ConnReset:
			f.Nodes = pair()
			f.Dur = dur(long)
		case DiskSpike:
			f.Nodes = []base.NodeID{pick()}
			if r.Chance(0.3) {
				f.Nodes = nil
				for i := 0; i < n; i++ {
					f.Nodes = append(f.Nodes, base.NodeID(i))
				}
			}
			f.Latency = dur(opt.MaxSpike)
			f.Dur = dur(3 * t.DeadTime())
		case DiskStall, DiskErrors:
			f.Nodes = []base.NodeID{pick()}
			if opt.Regions > 1 && r.Chance(0.5) {
				f.Region = r.Intn(opt.Regions)
			}
			f.Dur = dur(2 * t.DeadTime())
		case ArrayDown:
			f.Dur = dur(3 * t.DeadTime())
		case NetDelay:
			f.Latency = dur(t.KeepaliveDelay / 2)
			f.Dur = dur(t.DeadTime())
		case ClockJump:
			f.Nodes = []base.NodeID{pick()}
			f.Latency = time.Duration(r.Intn(2*3600)-3600) * time.Second
		}
		out = append(out, f)
	}
	return out
}

func maxi(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// inject starts a fault.
func (c *Cluster) inject(f Fault) {
	c.logf("FAULT %v", f)
	end := c.now + f.Dur
	regions := func() []int {
		if f.Region >= 0 && f.Region < len(c.disks) {
			return []int{f.Region}
		}
		var rs []int
		for i := range c.disks {
			rs = append(rs, i)
		}
		return rs
	}
	switch f.Kind {
	case CrashProcess, CrashPower:
		n := c.nodes[f.Nodes[0]]
		if n.state == stDown {
			return
		}
		c.chk.crashed(n)
		n.state = stDown
		n.deferred = nil
		c.dropConns(n, f.Kind == CrashProcess)
		epoch := n.epoch
		if c.opt.Restart {
			c.q.at(end, func() {
				if n.epoch == epoch && n.state == stDown {
					c.start(n)
				}
			})
		}
	case Stop:
		c.stop(c.nodes[f.Nodes[0]], end)
	case Pause:
		n := c.nodes[f.Nodes[0]]
		if n.state != stRunning {
			return
		}
		n.state = stPaused
		epoch := n.epoch
		c.q.at(end, func() {
			if n.epoch != epoch || n.state != stPaused {
				return
			}
			n.state = stRunning
			c.logf("node %d resumes after %v", n.id, f.Dur)
			held := n.deferred
			n.deferred = nil
			// Worst case: held callbacks run before the tick that would
			// notice the hang; the write gate must still stop any write.
			for _, fn := range held {
				if n.state != stRunning || n.epoch != epoch {
					break
				}
				fn()
				c.process(n)
			}
		})
	case Partition:
		in := base.NodeMapOf(f.Nodes...)
		for _, a := range c.nodes {
			for _, b := range c.nodes {
				if in.Has(a.id) != in.Has(b.id) {
					c.links.setCut(a.id, b.id, end)
				}
			}
		}
	case Cut:
		c.links.setCut(f.Nodes[0], f.Nodes[1], end)
		c.links.setCut(f.Nodes[1], f.Nodes[0], end)
	case CutOneWay:
		c.links.setCut(f.Nodes[0], f.Nodes[1], end)
	case ConnReset:
		a := c.nodes[f.Nodes[0]]
		for _, sc := range sortedConns(a) {
			if _, peer, _, _, _ := sc.ends(a); peer.id == f.Nodes[1] {
				c.resetConn(sc, nil, "connection reset")
			}
		}
	case DiskSpike:
		for _, id := range f.Nodes {
			for _, r := range regions() {
				p := c.active.pathFor(id, r)
				p.spike, p.spikeUntil = f.Latency, maxd(p.spikeUntil, end)
			}
		}
	case DiskStall:
		for _, id := range f.Nodes {
			for _, r := range regions() {
				p := c.active.pathFor(id, r)
				p.stallUntil = maxd(p.stallUntil, end)
			}
		}
	case DiskErrors:
		for _, id := range f.Nodes {
			for _, r := range regions() {
				p := c.active.pathFor(id, r)
				p.errUntil = maxd(p.errUntil, end)
			}
		}
	case ArrayDown:
		for _, n := range c.nodes {
			for _, r := range regions() {
				p := c.active.pathFor(n.id, r)
				p.stallUntil = maxd(p.stallUntil, end)
			}
		}
	case NetDelay:
		c.active.delay, c.active.delayUntil = f.Latency, maxd(c.active.delayUntil, end)
	case ClockJump:
		c.nodes[f.Nodes[0]].wallOff += f.Latency
	case Invisible:
		c.q.at(end, func() {
			for _, id := range f.Nodes {
				for _, r := range regions() {
					c.regionAppears(c.nodes[id], r)
				}
			}
		})
	}
}

// invisible reports whether heartbeat region r is invisible to node n now
// (an Invisible fault covers it): its I/O fails and a start does not find
// it.
func (c *Cluster) invisible(n base.NodeID, r int) bool {
	for _, f := range c.faults {
		if f.Kind != Invisible || c.now < f.At || c.now >= f.At+f.Dur || (f.Region >= 0 && f.Region != r) {
			continue
		}
		for _, x := range f.Nodes {
			if x == n {
				return true
			}
		}
	}
	return false
}

// regionAppears: region r became visible to node n; a running incarnation
// that lacks it adds it (the agent's retry found the device), a paused one
// when it resumes.
func (c *Cluster) regionAppears(n *simNode, r int) {
	if c.invisible(n.id, r) || (n.state != stRunning && n.state != stPaused) {
		return
	}
	c.deliverTo(n, n.epoch, func() {
		for _, have := range n.regions {
			if have == r {
				return
			}
		}
		c.logf("node %d finds heartbeat region %d", n.id, r)
		id := n.m.AddRegion(c.now, c.regionSpec(r))
		n.regions[id] = r
	})
}

// stop shuts node n down cleanly (see Stop) and starts it again at
// restart when Restart is set.
func (c *Cluster) stop(n *simNode, restart time.Duration) {
	if n.state != stRunning {
		return
	}
	ids := n.m.Regions()
	for _, id := range ids {
		n.m.RemoveRegion(c.now, c.wall(n), id)
	}
	c.process(n)
	epoch := n.epoch
	exit := func() {
		if n.epoch != epoch || n.state != stRunning {
			return
		}
		c.logf("node %d stopped cleanly", n.id)
		c.chk.crashed(n)
		n.state = stDown
		n.deferred = nil
		c.dropConns(n, true)
		if c.opt.Restart {
			c.q.at(maxd(restart, c.now), func() {
				if n.epoch == epoch && n.state == stDown {
					c.start(n)
				}
			})
		}
	}
	if n.inflight == 0 {
		exit()
		return
	}
	n.onDrained = append(n.onDrained, exit)
	c.q.at(c.now+2*c.opt.Timeouts.HeartbeatInterval, exit)
}
