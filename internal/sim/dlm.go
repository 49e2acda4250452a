package sim

import (
	"slices"
	"sort"
	"time"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/cluster/quorum"
	"o2go/internal/dlm"
	"o2go/internal/node/member"
)

// The DLM over the cluster stack (Options.DLM): every node runs the real
// dlm.Node core, fed with the membership events its member delivers (as the
// agent's hub does, the DLM first) and with DLM messages carried as frames
// on the simulated connections — lost when a connection breaks, held while
// a node has no connection to a peer and sent when one comes up, dropped
// when the peer is declared dead (the agent's per-peer writer). Each node's
// applications lock a few resources of a gated domain ("vol", a file
// system's: the dead's locks stay until RecoveryDone, which the node's file
// system model calls a while after EventRecovered) and of an application
// domain, in random modes, convert, unlock and cancel, and give way on
// blocking notifications. The checks:
//
//   - a grant never conflicts with a lock another node holds while that
//     node may still act as a member (the cluster checker's "continuing":
//     a node declared dead has lost that right first), nor, in the gated
//     domain, with the lock of a dead node the file system has not
//     recovered yet;
//   - no node refuses a DLM message from a peer;
//   - once the faults are over and the cluster has converged, no request
//     is still pending (every one was granted, cancelled or failed: the
//     DLM has no timer that could have helped), and every resource a
//     holder knows has one master, the one every holder names.
type dlmNode struct {
	dl     *dlm.Node
	queue  map[base.NodeID][]dlm.Outgoing // waiting for a connection to the peer
	conns  map[base.NodeID]cnet.ConnID    // the connection to each peer the core last heard of
	locks  map[dlm.LockID]*appLock
	joined bool // the domains were joined (after the first membership)
}

// appLock is one lock as the application holding it sees it.
type appLock struct {
	id     dlm.LockID
	dom    string
	name   string
	held   dlm.Mode // what the application relies on
	pend   dlm.Op
	rq     dlm.Mode
	flags  dlm.Flags
	giving bool // a blocking notification asked it to give way: a release is due
}

// deadHold is what a dead incarnation held in the gated domain, until the
// file system recovers it.
type deadHold struct {
	node     base.NodeID
	at       time.Duration
	held     map[string]dlm.Mode
	released bool
}

// dlmState is the DLM simulation's part of a Cluster.
type dlmState struct {
	rng      *base.Rand
	dead     []*deadHold
	msgNum   uint32
	grants   int
	pendings int // requests still pending at the end (reported on failure)
}

var dlmDomains = []struct {
	name string
	gate bool
}{{"vol", true}, {"app", false}}

var dlmNames = []string{"A", "B", "C", "D"}

func (c *Cluster) dlmOn() bool { return c.opt.DLM && c.dlm != nil }

// dlmStart gives a new incarnation of n its lock manager.
func (c *Cluster) dlmStart(n *simNode) {
	if !c.dlmOn() {
		return
	}
	n.d = &dlmNode{
		dl:    dlm.New(dlm.Config{Self: n.id, MaxPayload: 8192}),
		queue: map[base.NodeID][]dlm.Outgoing{},
		conns: map[base.NodeID]cnet.ConnID{},
		locks: map[dlm.LockID]*appLock{},
	}
	c.dlmSchedule(n, n.epoch)
}

// dlmEvent passes a membership event to n's lock manager.
func (c *Cluster) dlmEvent(n *simNode, e quorum.Event) {
	if !c.dlmOn() || n.d == nil {
		return
	}
	d := n.d
	var rd dlm.Ready
	switch {
	case e.Initial:
		rd = d.dl.Membership(e.Seq, e.Members)
	case e.Kind == quorum.NodeUp:
		rd = d.dl.NodeUp(e.Seq, e.Node)
	case e.Kind == quorum.NodeDown:
		delete(d.queue, e.Node)
		rd = d.dl.NodeDown(e.Seq, e.Node)
	default:
		return
	}
	c.dlmReady(n, rd)
	if !d.joined && e.Initial {
		d.joined = true
		for _, dom := range dlmDomains {
			rd, err := d.dl.Join(dom.name, dom.gate)
			if err != nil {
				c.chk.violate("node %d: join %s: %v", n.id, dom.name, err)
				continue
			}
			c.dlmReady(n, rd)
		}
	}
}

// dlmReceive hands a DLM frame to n's lock manager.
func (c *Cluster) dlmReceive(n *simNode, from base.NodeID, h cnet.Header, payload []byte) {
	if !c.dlmOn() || n.d == nil || h.Type < dlm.MsgTypeFirst || h.Type > dlm.MsgTypeLast {
		return
	}
	rd, err := n.d.dl.Receive(from, h.Type, h.Key, payload)
	if err != nil {
		c.chk.violate("node %d refused a DLM message from node %d: %v", n.id, from, err)
	}
	c.dlmReady(n, rd)
}

// dlmReady carries out what n's lock manager asked.
func (c *Cluster) dlmReady(n *simNode, rd dlm.Ready) {
	d := n.d
	msgs := slices.Clone(rd.Messages)
	asts := slices.Clone(rd.ASTs)
	basts := slices.Clone(rd.BASTs)
	evs := slices.Clone(rd.Events)
	for _, m := range msgs {
		m.Payload = slices.Clone(m.Payload)
		d.queue[m.To] = append(d.queue[m.To], m)
	}
	c.dlmFlush(n)
	for _, e := range evs {
		c.dlmOnEvent(n, e)
	}
	for _, a := range asts {
		c.dlmOnAST(n, a)
	}
	for _, b := range basts {
		if l := d.locks[b.ID]; l != nil && l.held != dlm.ModeNone && !l.giving {
			// Remembered until the lock goes down, or a new grant (after
			// which the master notifies again if it still blocks).
			l.giving = true
			if l.pend == dlm.OpNone {
				c.dlmGiveWayLater(n, l.id)
			}
		}
	}
}

// dlmGiveWayLater makes n's application release lock id a little later (a
// paused node does it once it runs again).
func (c *Cluster) dlmGiveWayLater(n *simNode, id dlm.LockID) {
	c.whenRunning(n, time.Duration(20+c.dlm.rng.Intn(300))*time.Millisecond, func() { c.dlmGiveWay(n, id) })
}

// whenRunning runs fn after delay, once n runs (a paused node when it
// runs again), unless n restarted or lost its lock manager meanwhile.
func (c *Cluster) whenRunning(n *simNode, delay time.Duration, fn func()) {
	epoch := n.epoch
	var try func()
	try = func() {
		switch {
		case n.epoch != epoch || n.d == nil:
		case n.state == stPaused:
			c.q.at(c.now+100*time.Millisecond, try)
		case n.state == stRunning:
			fn()
		}
	}
	c.q.at(c.now+delay, try)
}

// dlmFlush sends what waits for a connection to each peer that has one.
func (c *Cluster) dlmFlush(n *simNode) {
	d := n.d
	peers := make([]base.NodeID, 0, len(d.queue))
	for p := range d.queue {
		peers = append(peers, p)
	}
	slices.Sort(peers)
	for _, p := range peers {
		conn := n.m.Conn(p)
		if conn == 0 {
			continue
		}
		for _, m := range d.queue[p] {
			c.dlm.msgNum++
			h, err := cnet.Message(m.Type, m.Key, len(m.Payload), c.dlm.msgNum, false)
			if err != nil {
				c.chk.violate("node %d: a DLM message to node %d: %v", n.id, p, err)
				continue
			}
			c.send(n, member.Frame{Peer: p, Conn: conn, Header: h, Payload: m.Payload})
		}
		delete(d.queue, p)
	}
}

// dlmSchedule runs n's lock manager clock, its held messages and its
// applications.
func (c *Cluster) dlmSchedule(n *simNode, epoch int) {
	c.q.at(c.now+50*time.Millisecond, func() {
		if n.epoch != epoch || (n.state != stRunning && n.state != stPaused) {
			return
		}
		if n.state == stRunning && n.d != nil {
			// A connection that came (back) since the last look: what the
			// peer has not acknowledged goes again (a broken one lost what
			// was in flight), as the agent's ticker does.
			for _, o := range c.nodes {
				if conn := n.m.Conn(o.id); o != n && conn != 0 && conn != n.d.conns[o.id] {
					n.d.conns[o.id] = conn
					c.dlmReady(n, n.d.dl.LinkUp(o.id))
				}
			}
			c.dlmReady(n, n.d.dl.Tick(c.now))
			if c.now < c.opt.Duration && c.dlm.rng.Chance(0.25) {
				c.dlmClient(n)
			}
		}
		c.dlmSchedule(n, epoch)
	})
}

// meetMode is the strongest mode weaker than (or equal to) both a and b.
func meetMode(a, b dlm.Mode) dlm.Mode {
	best := dlm.ModeNL
	for m := dlm.ModeNL; m <= dlm.ModeEX; m++ {
		if (m == a || dlm.Weaker(m, a)) && (m == b || dlm.Weaker(m, b)) && dlm.Weaker(best, m) {
			best = m
		}
	}
	return best
}

func (c *Cluster) dlmRandomMode() dlm.Mode {
	w := []int{5, 10, 10, 30, 15, 30}
	r := c.dlm.rng.Intn(100)
	for m, x := range w {
		if r < x {
			return dlm.Mode(m)
		}
		r -= x
	}
	return dlm.ModeEX
}

func (d *dlmNode) sorted() []*appLock {
	out := make([]*appLock, 0, len(d.locks))
	for _, l := range d.locks {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// dlmClient is one random step of n's applications.
func (c *Cluster) dlmClient(n *simNode) {
	d, r := n.d, c.dlm.rng
	mine := d.sorted()
	pick := func(ok func(*appLock) bool) *appLock {
		var cand []*appLock
		for _, l := range mine {
			if ok(l) {
				cand = append(cand, l)
			}
		}
		if len(cand) == 0 {
			return nil
		}
		return cand[r.Intn(len(cand))]
	}
	idle := func(l *appLock) bool { return l.pend == dlm.OpNone && l.held != dlm.ModeNone && !l.giving }
	switch x := r.Intn(100); {
	case x < 40 && len(mine) < 4:
		dom := dlmDomains[r.Intn(len(dlmDomains))]
		name := dlmNames[r.Intn(len(dlmNames))]
		mode := c.dlmRandomMode()
		var fl dlm.Flags
		if r.Chance(0.15) {
			fl |= dlm.NoQueue
		}
		id, rd, err := d.dl.Lock(dom.name, name, mode, fl)
		if err != nil {
			return // not a member (yet, or any more): nothing was asked
		}
		d.locks[id] = &appLock{id: id, dom: dom.name, name: name, held: dlm.ModeNone, pend: dlm.OpLock, rq: mode, flags: fl}
		c.logf("node %d: dlm lock %d %s/%s %s %s", n.id, id, dom.name, name, mode, fl)
		c.dlmReady(n, rd)
	case x < 65:
		l := pick(idle)
		if l == nil {
			return
		}
		to := c.dlmRandomMode()
		var fl dlm.Flags
		if r.Chance(0.15) {
			fl |= dlm.NoQueue
		}
		c.dlmConvert(n, l, to, fl)
	case x < 85:
		if l := pick(idle); l != nil {
			c.dlmUnlock(n, l)
		}
	default:
		l := pick(func(l *appLock) bool { return l.pend == dlm.OpLock || l.pend == dlm.OpConvert })
		if l == nil {
			return
		}
		c.logf("node %d: dlm cancel %d %s/%s", n.id, l.id, l.dom, l.name)
		rd, err := d.dl.Cancel(l.id)
		if err != nil {
			c.chk.violate("node %d: cancel %d: %v", n.id, l.id, err)
			return
		}
		c.dlmReady(n, rd)
	}
}

// dlmGiveWay answers a blocking notification: unlock, or down to NL.
func (c *Cluster) dlmGiveWay(n *simNode, id dlm.LockID) {
	l := n.d.locks[id]
	if l == nil || !l.giving || l.pend != dlm.OpNone || l.held == dlm.ModeNone {
		return // gone, granted again, or busy: its AST reschedules
	}
	l.giving = false
	if c.dlm.rng.Chance(0.5) {
		c.dlmUnlock(n, l)
		return
	}
	c.dlmConvert(n, l, dlm.ModeNL, 0)
}

func (c *Cluster) dlmUnlock(n *simNode, l *appLock) {
	rd, err := n.d.dl.Unlock(l.id, nil)
	if err != nil {
		c.chk.violate("node %d: unlock %d: %v", n.id, l.id, err)
		return
	}
	c.logf("node %d: dlm unlock %d %s/%s", n.id, l.id, l.dom, l.name)
	l.pend, l.held = dlm.OpUnlock, dlm.ModeNone // no longer relied on
	c.dlmReady(n, rd)
}

func (c *Cluster) dlmConvert(n *simNode, l *appLock, to dlm.Mode, fl dlm.Flags) {
	rd, err := n.d.dl.Convert(l.id, to, fl, nil)
	if err != nil {
		c.chk.violate("node %d: convert %d: %v", n.id, l.id, err)
		return
	}
	c.logf("node %d: dlm convert %d %s/%s %s->%s %s", n.id, l.id, l.dom, l.name, l.held, to, fl)
	l.pend, l.rq, l.flags = dlm.OpConvert, to, fl
	// While it converts, the application relies on what both modes allow
	// only: a down-conversion at once, and a sideways one (PR<->CW) at
	// once too, to what both allow: the master may grant the new mode, and
	// others what the old one excluded, before this node hears (package
	// dlm's rule for sideways conversions).
	switch {
	case dlm.Weaker(to, l.held):
		l.held = to
	case to != l.held && !dlm.Weaker(l.held, to):
		l.held = meetMode(l.held, to)
	}
	c.dlmReady(n, rd)
}

// dlmOnAST applies a completion to n's application model and checks grants.
func (c *Cluster) dlmOnAST(n *simNode, a dlm.AST) {
	d := n.d
	l := d.locks[a.ID]
	if l == nil {
		c.chk.violate("node %d: AST for unknown lock %d: %+v", n.id, a.ID, a)
		return
	}
	if a.Op != l.pend {
		c.chk.violate("node %d: AST %s for lock %d whose pending operation is %s", n.id, a.Op, a.ID, l.pend)
		return
	}
	c.logf("node %d: dlm ast %s %d %s/%s %s %s", n.id, a.Op, a.ID, a.Domain, a.Name, a.Status, a.Mode)
	l.pend = dlm.OpNone
	switch {
	case a.Op == dlm.OpUnlock || a.Mode == dlm.ModeNone:
		delete(d.locks, a.ID)
		return
	case a.Status != dlm.StatusOK:
		// Not granted: a blocking notification it had is still owed.
		l.held = a.Mode
		if l.giving {
			c.dlmGiveWayLater(n, l.id)
		}
		return
	}
	l.giving = false
	raised := !dlm.Weaker(a.Mode, l.held) && a.Mode != l.held
	l.held = a.Mode
	if raised || a.Op == dlm.OpLock {
		c.dlmCheckGrant(n, l)
	}
}

// dlmCheckGrant checks a grant to n's lock l against every other lock
// relied on by a node that may still act, and against the unrecovered dead.
func (c *Cluster) dlmCheckGrant(n *simNode, l *appLock) {
	c.dlm.grants++
	for _, o := range c.nodes {
		if o.d == nil || (o != n && !c.chk.continuing(o)) {
			continue
		}
		for _, x := range o.d.sorted() {
			if x == l || x.dom != l.dom || x.name != l.name || x.held == dlm.ModeNone {
				continue
			}
			if !dlm.Compatible(x.held, l.held) {
				c.chk.violate("DLM: %s/%s granted %s to node %d (lock %d) while node %d (lock %d) holds %s and may still act",
					l.dom, l.name, l.held, n.id, l.id, o.id, x.id, x.held)
			}
		}
	}
	if l.dom != "vol" || l.flags&dlm.Recovery != 0 {
		return
	}
	for _, dh := range c.dlm.dead {
		if m, ok := dh.held[l.name]; ok && !dh.released && !dlm.Compatible(m, l.held) {
			c.chk.violate("DLM: vol/%s granted %s to node %d while dead node %d (died at %v) held %s and its file system recovery is not done",
				l.name, l.held, n.id, dh.node, dh.at, m)
		}
	}
}

// dlmOnEvent: the file system model recovers a dead node a while after the
// DLM says it may.
func (c *Cluster) dlmOnEvent(n *simNode, e dlm.Event) {
	if e.Kind == dlm.EventJoinFailed {
		c.chk.violate("node %d: join of %s failed: %s", n.id, e.Domain, e.Detail)
	}
	if e.Kind != dlm.EventRecovered || e.Domain != "vol" {
		return
	}
	dead := e.Dead.Node
	c.whenRunning(n, time.Duration(200+c.dlm.rng.Intn(3000))*time.Millisecond, func() { c.dlmRecoveryDone(n, dead) })
}

// dlmRecoveryDone plays n's file system having recovered every death of
// node dead pending in vol.
func (c *Cluster) dlmRecoveryDone(n *simNode, dead base.NodeID) {
	rd, err := n.d.dl.RecoveryDone("vol", dead)
	if err != nil {
		return // released already (another node's file system did it)
	}
	for _, dh := range c.dlm.dead {
		if dh.node == dead {
			dh.released = true
		}
	}
	c.dlmReady(n, rd)
}

// dlmDied notes what n's incarnation held in the gated domain as it dies
// (crash or fence): until its file system recovery, nothing conflicting may
// be granted. Its applications are gone with it.
func (c *Cluster) dlmDied(n *simNode) {
	if !c.dlmOn() || n.d == nil {
		return
	}
	dh := &deadHold{node: n.id, at: c.now, held: map[string]dlm.Mode{}}
	for _, l := range n.d.sorted() {
		if l.dom == "vol" && l.held != dlm.ModeNone {
			if m, ok := dh.held[l.name]; !ok || dlm.Weaker(m, l.held) {
				dh.held[l.name] = l.held
			}
		}
	}
	// The DLM recovers a dead member of the domain as the survivors know
	// it. With no survivor that counts n a member (the domain ends with
	// this death, or n was never in the survivors' cluster), the mount-time
	// recovery of dirty journals takes over, as in OCFS2.
	survivor := false
	for _, o := range c.nodes {
		if o != n && o.d != nil && c.chk.continuing(o) && countsMember(o.d.dl, "vol", n.id) {
			survivor = true
		}
	}
	if !survivor {
		for _, old := range c.dlm.dead {
			old.released = true
		}
		dh.released = true
	}
	c.dlm.dead = append(c.dlm.dead, dh)
	n.d = nil
}

// countsMember reports whether lock manager dl counts node x a member of
// domain dom: in its view, or in the reconfiguration under way.
func countsMember(dl *dlm.Node, dom string, x base.NodeID) bool {
	for _, st := range dl.State() {
		if st.Domain != dom {
			continue
		}
		if slices.Contains(st.DomainMap, x) {
			return true
		}
		if r := st.Recovery; r != nil {
			if slices.Contains(r.Target, x) {
				return true
			}
			for _, p := range r.Nodes {
				if p.Node == x {
					return true
				}
			}
		}
	}
	return false
}

// dlmFinal checks, once the cluster converged after the faults, that no
// request is left pending and that every resource has one master.
func (c *Cluster) dlmFinal(settled []*simNode) {
	if !c.dlmOn() {
		return
	}
	for _, n := range settled {
		if n.d == nil {
			continue
		}
		for _, l := range n.d.sorted() {
			if l.pend != dlm.OpNone {
				c.dlm.pendings++
				c.chk.violate("DLM: node %d's lock %d on %s/%s still pending %s %s after the cluster converged",
					n.id, l.id, l.dom, l.name, l.pend, l.rq)
			}
		}
		if err := n.d.dl.CheckInvariants(); err != nil {
			c.chk.violate("DLM: %v", err)
		}
	}
	for _, dom := range dlmDomains {
		masters := map[string]base.NodeID{}
		mastered := map[string][]base.NodeID{}
		for _, n := range settled {
			if n.d == nil {
				continue
			}
			rs, err := n.d.dl.Locks(dom.name, "")
			if err != nil {
				continue
			}
			for _, r := range rs {
				if r.Mastered && !r.Idle {
					mastered[r.Name] = append(mastered[r.Name], n.id)
				}
				if len(r.Local) == 0 {
					continue
				}
				if m, ok := masters[r.Name]; ok && m != r.Master {
					c.chk.violate("DLM: %s/%s: holders name masters %d and %d", dom.name, r.Name, m, r.Master)
				}
				masters[r.Name] = r.Master
			}
		}
		names := make([]string, 0, len(masters))
		for name := range masters {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if ms := mastered[name]; len(ms) != 1 || ms[0] != masters[name] {
				c.chk.violate("DLM: %s/%s: held, its holders name node %d its master, mastered on %v", dom.name, name, masters[name], ms)
			}
		}
		for name, ms := range mastered {
			if len(ms) > 1 {
				c.chk.violate("DLM: %s/%s mastered on %v", dom.name, name, ms)
			}
		}
	}
}
