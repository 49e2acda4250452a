package ha

import (
	"fmt"
	"sort"
	"time"

	"o2go/internal/base"
)

// coordinator is the cluster manager, run by the lowest-numbered member:
// it collects every node's report, runs the placement, orders nodes to bring
// groups online or offline (stop before start, parents before children),
// processes cluster events one at a time with their scripts, writes the
// State and numbers the history. Ownership itself is the DLM's: a node starts
// a group only once it holds the group's lock, so a coordinator that is
// wrong for a moment (two of them during a view change) can delay a move but
// never run a group twice.
type coordinator struct {
	n          *Node
	synced     bool
	syncUntil  time.Duration
	fetchQ     []fetchStep
	fetchUntil time.Duration

	reports  map[base.NodeID]*reportMsg
	sent     map[base.NodeID]map[string]bool
	orders   map[base.NodeID]map[string]bool
	manage   map[base.NodeID][]string
	leaving  map[base.NodeID]bool
	failSeen map[string]bool // "group/node" rg_error queued

	events    []*cevent
	bestNode  map[string]base.NodeID
	bestSince map[string]time.Duration
	placeFrom map[string]time.Duration
	decisions []Decision
	converged bool

	stateDirty bool
	newRecords []Record

	depth    int
	deferred []deferredReq
	verifies map[uint64]*verifyRound
	nextVID  uint64
}

type fetchStep struct {
	from base.NodeID
	msg  fetchMsg
}

type deferredReq struct {
	from base.NodeID
	id   uint64
	req  *Request
}

// cevent is a cluster event the coordinator processes.
type cevent struct {
	name     string
	args     []string
	group    string
	apply    func()
	stage    int // 0 new, 1 pre, 2 work, 3 post, 4 done
	script   uint64
	started  time.Duration
	tooLong  time.Duration
	failed   bool
	detailOK string
}

func (n *Node) startCoordinator() {
	c := &coordinator{n: n, syncUntil: n.now + n.syncT, reports: map[base.NodeID]*reportMsg{},
		sent: map[base.NodeID]map[string]bool{}, orders: map[base.NodeID]map[string]bool{}, manage: map[base.NodeID][]string{},
		leaving: map[base.NodeID]bool{}, failSeen: map[string]bool{}, bestNode: map[string]base.NodeID{},
		bestSince: map[string]time.Duration{}, placeFrom: map[string]time.Duration{}, verifies: map[uint64]*verifyRound{}}
	n.coord = c
	n.notef("HA: this node coordinates the cluster (view %d: %v)", n.seq, n.members)
	for _, m := range n.members.Nodes() {
		if m != n.self {
			n.send(m, MsgSync, syncMsg{Seq: n.seq})
		}
	}
	c.reports[n.self] = n.report()
	n.dirty = false
	c.checkSync()
}

// membership: a node came or went while this node coordinates.
func (c *coordinator) membership(x base.NodeID, up bool) {
	n := c.n
	if up {
		n.send(x, MsgSync, syncMsg{Seq: n.seq})
		c.queue(&cevent{name: EvNodeUp, args: []string{n.topo.Name(x)}, apply: func() { c.nodeUp(x) }})
	} else {
		delete(c.reports, x)
		delete(c.sent, x)
		delete(c.orders, x)
		for _, v := range c.verifies {
			if v.waiting.Has(x) {
				v.waiting.Remove(x)
				v.problems = append(v.problems, fmt.Sprintf("%s: left the cluster during the verification", n.topo.Name(x)))
			}
		}
		if c.leaving[x] {
			delete(c.leaving, x)
			c.append(Record{Event: EvNodeDown, Phase: PhaseInfo, Node: n.name, At: n.wall, Args: []string{n.topo.Name(x)},
				Detail: "left the cluster"})
		} else {
			c.queue(&cevent{name: EvNodeDown, args: []string{n.topo.Name(x), "failed"}, apply: func() { c.nodeDown(x) }})
		}
	}
	if !c.synced {
		c.checkSync()
	}
	c.coordinate()
}

func (c *coordinator) mutate(f func(s *State)) {
	s := c.n.state.Clone()
	f(s)
	if c.n.cfg != nil {
		s.prune(c.n.cfg)
	}
	if !s.equal(c.n.state) {
		s.Version = c.n.state.Version + 1
		c.n.state = s
		c.n.live = true
		c.stateDirty = true
		c.n.ackFailures()
	}
}

func (c *coordinator) groups() []*RGroup {
	if c.n.res == nil {
		return nil
	}
	return c.n.res.Groups
}

// nodeUp: a node that comes back is a fresh node for the groups.
func (c *coordinator) nodeUp(x base.NodeID) {
	c.mutate(func(s *State) {
		for _, g := range c.groups() {
			gs := s.Group(g.Name)
			gs.Failed = removeNode(gs.Failed, x)
			if gs.Parked == x {
				gs.Parked = base.InvalidNode
				gs.Owners = nil
			}
			if gs.Prefer.Valid() && g.Fallback == FallbackHigher {
				if p := g.priority(x); p >= 0 && p < g.priority(gs.Prefer) {
					gs.Prefer = base.InvalidNode // a higher priority node joined: fallback applies again
				}
			}
			s.set(gs)
		}
	})
}

// nodeDown: fallover policy "offline" takes the node's groups down for good.
func (c *coordinator) nodeDown(x base.NodeID) {
	c.mutate(func(s *State) {
		for _, g := range c.groups() {
			gs := s.Group(g.Name)
			if gs.Prefer == x {
				gs.Prefer = base.InvalidNode
			}
			if gs.Unmanaged == x {
				gs.Unmanaged = base.InvalidNode
			}
			if hasNode(gs.Owners, x) && g.Fallover == FalloverOffline && !g.Concurrent() && !c.onlineElsewhere(g.Name, x) {
				gs.Offline, gs.OfflineWhy = true, fmt.Sprintf("fallover policy \"offline\" after node_down of %s", c.n.topo.Name(x))
				gs.Owners = nil
			}
			s.set(gs)
		}
	})
}

func (c *coordinator) onlineElsewhere(group string, x base.NodeID) bool {
	for id, r := range c.reports {
		if id == x {
			continue
		}
		for _, gr := range r.Groups {
			if gr.Name == group && gr.Phase == phOnline.String() {
				return true
			}
		}
	}
	return false
}

func removeNode(l []base.NodeID, x base.NodeID) []base.NodeID {
	var out []base.NodeID
	for _, y := range l {
		if y != x {
			out = append(out, y)
		}
	}
	return out
}

func addNode(l []base.NodeID, x base.NodeID) []base.NodeID {
	if hasNode(l, x) {
		return l
	}
	out := append(append([]base.NodeID(nil), l...), x)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// report takes a node's report.
func (c *coordinator) report(from base.NodeID, r *reportMsg) {
	n := c.n
	if old := c.reports[from]; old != nil && old.Inc != r.Inc {
		delete(c.sent, from)
	}
	c.reports[from] = r
	if r.Leaving != "" && !c.leaving[from] {
		c.leaving[from] = true
		mode := r.Leaving
		c.queue(&cevent{name: EvNodeDown, args: []string{n.topo.Name(from), mode}, apply: func() { c.nodeLeaving(from, mode) }})
	}
	for _, gr := range r.Groups {
		if !gr.FailedHere {
			continue
		}
		key := gr.Name + "/" + n.topo.Name(from)
		if c.failSeen[key] || hasNode(n.state.Group(gr.Name).Failed, from) {
			continue
		}
		c.failSeen[key] = true
		group, detail := gr.Name, gr.Detail
		c.queue(&cevent{name: EvRGError, group: group, args: []string{group, n.topo.Name(from)}, detailOK: detail,
			apply: func() { c.groupFailed(group, from) }})
	}
	if c.synced && from != n.self {
		c.catchUp(from, r)
	}
	if !c.synced {
		c.checkSync()
	}
	c.coordinate()
}

// catchUp sends a node what its replica lacks.
func (c *coordinator) catchUp(to base.NodeID, r *reportMsg) {
	n := c.n
	if r.ConfigDigest != n.cfg.Digest() {
		n.send(to, MsgConfig, configMsg{Seq: n.seq, Config: n.cfg})
	}
	if r.StateVersion != n.state.Version || !r.StateLive {
		n.send(to, MsgState, stateMsg{Seq: n.seq, State: n.state})
	}
	if r.HistSeq != n.last {
		n.answerFetch(to, &fetchMsg{HistFrom: r.HistSeq + 1})
	}
}

func (c *coordinator) nodeLeaving(x base.NodeID, mode string) {
	c.mutate(func(s *State) {
		for _, g := range c.groups() {
			gs := s.Group(g.Name)
			active := false
			if r := c.reports[x]; r != nil {
				for _, gr := range r.Groups {
					active = active || (gr.Name == g.Name && gr.Phase != phOffline.String() && gr.Phase != "error")
				}
			}
			if !active && !hasNode(gs.Owners, x) {
				continue
			}
			switch {
			case mode == "graceful" && !g.Concurrent():
				gs.Parked = x
			case mode == "forced":
				gs.Forced = x
			}
			s.set(gs)
		}
	})
}

func (c *coordinator) groupFailed(group string, x base.NodeID) {
	delete(c.failSeen, group+"/"+c.n.topo.Name(x))
	g := c.n.res.Group(group)
	c.mutate(func(s *State) {
		gs := s.Group(group)
		gs.Failed = addNode(gs.Failed, x)
		if gs.Prefer == x {
			gs.Prefer = base.InvalidNode
		}
		if g != nil && g.Fallover == FalloverOffline && !g.Concurrent() {
			gs.Offline, gs.OfflineWhy = true, fmt.Sprintf("fallover policy \"offline\" after it failed on %s", c.n.topo.Name(x))
			gs.Owners = nil
		}
		s.set(gs)
	})
}

// checkSync: a new coordinator waits for every member's report (or the
// sync timeout), then adopts the newest configuration, state and history
// any of them holds before it decides anything.
func (c *coordinator) checkSync() {
	n := c.n
	if c.synced || len(c.fetchQ) > 0 {
		return
	}
	all := true
	for _, m := range n.members.Nodes() {
		if c.reports[m] == nil {
			all = false
		}
	}
	if !all && n.now < c.syncUntil {
		return
	}
	own := c.reports[n.self]
	if own == nil {
		own = n.report()
	}
	bestC, bestS, bestH := n.self, n.self, n.self
	for _, m := range n.members.Nodes() {
		r := c.reports[m]
		if r == nil || m == n.self {
			continue
		}
		if r.ConfigVersion > c.reports[bestC].versionOr(own).ConfigVersion {
			bestC = m
		}
		b := c.reports[bestS].versionOr(own)
		if r.StateVersion > b.StateVersion || r.StateVersion == b.StateVersion && r.StateLive && !b.StateLive {
			bestS = m
		}
		if r.HistSeq > c.reports[bestH].versionOr(own).HistSeq {
			bestH = m
		}
	}
	if bestC != n.self {
		c.fetchQ = append(c.fetchQ, fetchStep{bestC, fetchMsg{Config: true}})
	}
	if bestS != n.self {
		c.fetchQ = append(c.fetchQ, fetchStep{bestS, fetchMsg{State: true}})
	}
	if bestH != n.self {
		// The whole history it keeps: this node's own may not share its
		// beginning (it may come from an earlier coordinator of its own).
		c.fetchQ = append(c.fetchQ, fetchStep{bestH, fetchMsg{HistFrom: 1}})
	}
	c.nextFetch()
}

func (r *reportMsg) versionOr(own *reportMsg) *reportMsg {
	if r == nil {
		return own
	}
	return r
}

func (c *coordinator) nextFetch() {
	n := c.n
	for len(c.fetchQ) > 0 {
		f := c.fetchQ[0]
		if !n.members.Has(f.from) {
			c.fetchQ = c.fetchQ[1:]
			continue
		}
		f.msg.Seq = n.seq
		n.send(f.from, MsgFetch, f.msg)
		c.fetchUntil = n.now + n.syncT
		return
	}
	c.finishSync()
}

func (c *coordinator) replica(from base.NodeID, m *replicaMsg) {
	n := c.n
	if len(c.fetchQ) == 0 || c.fetchQ[0].from != from {
		return
	}
	if m.Config != nil {
		n.setConfig(m.Config)
	}
	if m.State != nil {
		n.setState(m.State, m.Live)
	}
	if len(m.Records) > 0 {
		n.addRecords(m.Records, true)
	}
	if m.More {
		c.fetchQ[0].msg.HistFrom = n.last + 1
	} else {
		c.fetchQ = c.fetchQ[1:]
	}
	c.nextFetch()
}

func (c *coordinator) finishSync() {
	n := c.n
	c.synced = true
	n.live = true
	n.notef("HA: coordinator in sync (configuration version %d, state version %d, history at %d)", n.cfg.Version, n.state.Version, n.last)
	c.reports[n.self] = n.report()
	for _, m := range n.members.Nodes() {
		if r := c.reports[m]; r != nil && m != n.self {
			c.catchUp(m, r)
		}
	}
	notes := n.outNotes
	n.outNotes = nil
	for _, r := range notes {
		c.append(r)
	}
	d := c.deferred
	c.deferred = nil
	for _, q := range d {
		c.request(q.from, q.id, q.req)
	}
	c.coordinate()
}

// append numbers a record and adds it to the history.
func (c *coordinator) append(r Record) {
	n := c.n
	if r.Node == "" {
		r.Node = n.name
	}
	if r.At == 0 {
		r.At = n.wall
	}
	if !c.synced {
		// Numbered once this coordinator holds the newest history.
		n.outNotes = append(n.outNotes, r)
		return
	}
	r.Seq = n.last + 1
	n.hist = append(n.hist, r)
	n.last = r.Seq
	n.trimHistory()
	n.rd.Records = append(n.rd.Records, r)
	c.newRecords = append(c.newRecords, r)
}

func (c *coordinator) queue(e *cevent) {
	c.events = append(c.events, e)
	c.pump()
}

// pump runs the queued events: record, notify, pre; apply and wait for the
// placement to converge (or the next event); post, notify, record.
func (c *coordinator) pump() {
	n := c.n
	for len(c.events) > 0 && c.synced {
		e := c.events[0]
		sc := n.cfg.EventScripts(e.name)
		switch e.stage {
		case 0:
			c.append(Record{Event: e.name, Phase: PhaseStart, Group: e.group, Args: e.args, Detail: e.detailOK})
			if sc.Notify != "" {
				n.runScript(nil, e.name, PhaseNotify, sc.Notify, e.group, "", e.args, "", false)
			}
			e.stage = 1
			if sc.Pre != "" {
				e.script = c.script(e, PhasePre, sc.Pre, "")
				return
			}
		case 1:
			if e.script != 0 {
				return
			}
			if e.apply != nil {
				e.apply()
			}
			e.stage = 2
			e.started = n.now
			e.tooLong = n.now + n.cfg.Settings.configTooLong()
			c.converged = false
			c.coordinate()
		case 2:
			if !c.converged && len(c.events) == 1 {
				return
			}
			e.stage = 3
			status := "ok"
			if !c.converged {
				status = "superseded"
			}
			if sc.Post != "" {
				e.script = c.script(e, PhasePost, sc.Post, status)
				return
			}
		case 3:
			if e.script != 0 {
				return
			}
			status := "ok"
			if e.failed {
				status = "failed"
			}
			if sc.Notify != "" {
				n.runScript(nil, e.name, PhaseNotify, sc.Notify, e.group, "", e.args, status, false)
			}
			c.append(Record{Event: e.name, Phase: PhaseComplete, Group: e.group, Args: e.args})
			c.events = c.events[1:]
		}
	}
}

func (c *coordinator) script(e *cevent, ph, path, status string) uint64 {
	id := c.n.runScript(nil, e.name, ph, path, e.group, "", e.args, status, true)
	c.n.scripts[id] = scriptRef{coord: true}
	return id
}

func (c *coordinator) scriptDone(r ScriptResult) {
	if len(c.events) == 0 || c.events[0].script != r.ID {
		return
	}
	e := c.events[0]
	e.script = 0
	ph := PhasePre
	sc := c.n.cfg.EventScripts(e.name)
	path := sc.Pre
	if e.stage == 3 {
		ph, path = PhasePost, sc.Post
	}
	c.append(Record{Event: e.name, Phase: ph, Group: e.group, Args: e.args, Detail: fmt.Sprintf("%s exited %d", path, r.Exit)})
	c.pump()
}

func (c *coordinator) tick() {
	n := c.n
	if !c.synced {
		if len(c.fetchQ) > 0 && n.now >= c.fetchUntil {
			n.notef("HA: node %d did not answer the coordinator's fetch: continuing without it", c.fetchQ[0].from)
			c.fetchQ = c.fetchQ[1:]
			c.nextFetch()
		}
		c.checkSync()
		return
	}
	if len(c.events) > 0 {
		e := c.events[0]
		if e.stage == 2 && n.now >= e.tooLong {
			e.tooLong = n.now + n.cfg.Settings.configTooLong()
			c.tooLong(e)
		}
	}
	for id, v := range c.verifies {
		if n.now >= v.deadline {
			for _, x := range v.waiting.Nodes() {
				v.problems = append(v.problems, fmt.Sprintf("%s: did not answer within %v", n.topo.Name(x), verifyTimeout))
			}
			v.waiting = base.NodeMap{}
			delete(c.verifies, id)
			c.finishVerify(v)
		}
	}
	c.coordinate()
}

// tooLong raises config_too_long for an event that does not converge.
func (c *coordinator) tooLong(e *cevent) {
	n := c.n
	detail := fmt.Sprintf("event %s has been running for %v", e.name, n.now-e.started)
	c.append(Record{Event: EvConfigTooLong, Phase: PhaseStart, Args: append([]string{e.name}, e.args...), Detail: detail})
	sc := n.cfg.EventScripts(EvConfigTooLong)
	for _, p := range []struct{ ph, path string }{{PhaseNotify, sc.Notify}, {PhasePre, sc.Pre}, {PhasePost, sc.Post}} {
		if p.path != "" {
			n.runScript(nil, EvConfigTooLong, p.ph, p.path, "", "", append([]string{e.name}, e.args...), "", false)
		}
	}
}

// upkeep updates the State from the reports: owners, unmanaged groups,
// nodes back from a forced node_down.
func (c *coordinator) upkeep() {
	c.mutate(func(s *State) {
		for _, g := range c.groups() {
			gs := s.Group(g.Name)
			var online base.NodeMap
			unmanaged := base.InvalidNode
			for id, r := range c.reports {
				for _, gr := range r.Groups {
					if gr.Name != g.Name {
						continue
					}
					switch gr.Phase {
					case phOnline.String(), phRestart.String():
						online.Add(id)
					case phUnmanaged.String():
						online.Add(id)
						unmanaged = id
					}
				}
			}
			switch {
			case !online.Empty():
				gs.Owners = online.Nodes()
			case gs.Offline || gs.Parked.Valid() || gs.Forced.Valid():
				gs.Owners = nil
			}
			if unmanaged.Valid() {
				gs.Unmanaged = unmanaged
			} else if gs.Unmanaged.Valid() {
				if r := c.reports[gs.Unmanaged]; r == nil || !groupIn(r, g.Name, phUnmanaged.String()) {
					gs.Unmanaged = base.InvalidNode
				}
			}
			if gs.Forced.Valid() {
				if r := c.reports[gs.Forced]; r != nil && r.Ready && r.Leaving == "" {
					gs.Forced = base.InvalidNode
				}
			}
			if gs.Prefer.Valid() && !c.n.members.Has(gs.Prefer) {
				gs.Prefer = base.InvalidNode
			}
			s.set(gs)
		}
	})
}

func groupIn(r *reportMsg, group, phase string) bool {
	for _, gr := range r.Groups {
		if gr.Name == group && gr.Phase == phase {
			return true
		}
	}
	return false
}

func (r *reportMsg) group(name string) GroupReport {
	for _, gr := range r.Groups {
		if gr.Name == name {
			return gr
		}
	}
	return GroupReport{Name: name, Phase: phOffline.String()}
}

// placeInput gathers the placement's inputs.
func (c *coordinator) placeInput() *PlaceInput {
	in := &PlaceInput{Config: c.n.res, State: c.n.state, Now: c.n.now, NetDown: map[base.NodeID][]string{},
		BestSince: c.bestSince, PlaceSince: c.placeFrom}
	for id, r := range c.reports {
		if c.n.members.Has(id) && r.Ready && r.Leaving == "" {
			in.Up.Add(id)
		}
		if len(r.NetDown) > 0 {
			in.NetDown[id] = r.NetDown
		}
	}
	return in
}

// place runs the placement and keeps its timers.
func (c *coordinator) place() []Decision {
	in := c.placeInput()
	ds := Place(in)
	changed := false
	for _, d := range ds {
		if b, ok := c.bestNode[d.Group]; !ok || b != d.Best {
			c.bestNode[d.Group] = d.Best
			c.bestSince[d.Group] = c.n.now
			changed = true
		}
		gs := c.n.state.Group(d.Group)
		_, has := c.placeFrom[d.Group]
		switch {
		case d.Eligible.Empty() || len(gs.Owners) > 0:
			delete(c.placeFrom, d.Group)
		case !has:
			c.placeFrom[d.Group] = c.n.now
			changed = true
		}
	}
	if changed {
		ds = Place(in)
	}
	return ds
}

// active: the phase means resources may run, or are about to.
func activePhase(p string) bool {
	return p != phOffline.String() && p != "error" && p != phProbe.String()
}

func settled(gr GroupReport) bool {
	if gr.Want {
		return gr.Phase == phOnline.String() || gr.Phase == phUnmanaged.String()
	}
	return !activePhase(gr.Phase) || gr.Phase == phUnmanaged.String()
}

// coordinate runs the placement and orders what it decides: a node is told
// to acquire a group only when no other node still has it active (stop
// before start), when its parents are settled online and its same-node
// anchors are online there; a parent is released only when its children are
// offline everywhere.
func (c *coordinator) coordinate() {
	n := c.n
	if !c.synced {
		return
	}
	c.pump()
	if n.res == nil {
		c.converged = true
		return
	}
	c.upkeep()
	ds := c.place()
	c.decisions = ds
	if len(c.events) > 0 && c.events[0].stage < 2 {
		return
	}
	converged := true
	var nodes []base.NodeID
	for id := range c.reports {
		nodes = append(nodes, id)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i] < nodes[j] })
	parentOK := make([]bool, len(n.res.Groups))
	for _, g := range n.res.Groups {
		d := ds[g.Index]
		target := d.Target
		ok := true
		for _, p := range g.Parents {
			ok = ok && parentOK[p.Index]
		}
		if !ok {
			target = base.NodeMap{}
		}
		var activeOn, onlineOn base.NodeMap
		for _, x := range nodes {
			gr := c.reports[x].group(g.Name)
			if activePhase(gr.Phase) {
				activeOn.Add(x)
			}
			if gr.Phase == phOnline.String() {
				onlineOn.Add(x)
			}
		}
		parentOK[g.Index] = ok && !target.Empty() && onlineOn == target && activeOn == target
		for _, x := range nodes {
			r := c.reports[x]
			gr := r.group(g.Name)
			desired := target.Has(x)
			if desired == gr.Want {
				delete(c.sentTo(x), g.Name)
				if !settled(gr) {
					converged = false
				}
				if desired && gr.Phase == phUnmanaged.String() && !n.state.Group(g.Name).Unmanaged.Valid() {
					c.manage[x] = append(c.manage[x], g.Name)
				}
				continue
			}
			if !desired && !gr.Want {
				continue
			}
			converged = false
			if desired && !c.mayAcquire(g, x, activeOn) {
				continue
			}
			if !desired && !c.mayRelease(g) {
				continue
			}
			if v, ok := c.sentTo(x)[g.Name]; ok && v == desired {
				continue
			}
			c.sentTo(x)[g.Name] = desired
			if c.orders[x] == nil {
				c.orders[x] = map[string]bool{}
			}
			c.orders[x][g.Name] = desired
		}
	}
	c.converged = converged
	if len(c.events) > 0 && c.events[0].stage == 2 && (converged || len(c.events) > 1) {
		c.pump()
	}
}

func (c *coordinator) sentTo(x base.NodeID) map[string]bool {
	m := c.sent[x]
	if m == nil {
		m = map[string]bool{}
		c.sent[x] = m
	}
	return m
}

func (c *coordinator) groupActiveOn(name string, x base.NodeID) bool {
	r := c.reports[x]
	return r != nil && activePhase(r.group(name).Phase)
}

func (c *coordinator) mayAcquire(g *RGroup, x base.NodeID, activeOn base.NodeMap) bool {
	if !g.Concurrent() && !activeOn.Minus(base.NodeMapOf(x)).Empty() {
		return false
	}
	for _, s := range g.SameNode {
		r := c.reports[x]
		if r == nil || r.group(s.Name).Phase != phOnline.String() {
			return false
		}
	}
	for _, o := range g.DifferentNode {
		if c.groupActiveOn(o.Name, x) {
			return false
		}
	}
	return true
}

func (c *coordinator) mayRelease(g *RGroup) bool {
	for _, ch := range g.Children {
		for id := range c.reports {
			if c.groupActiveOn(ch.Name, id) {
				return false
			}
		}
	}
	return true
}

// flush sends the orders, the new state and the new records.
func (c *coordinator) flush() {
	n := c.n
	if c.stateDirty {
		c.stateDirty = false
		n.rd.State = n.state.Clone()
		for _, m := range n.members.Nodes() {
			n.send(m, MsgState, stateMsg{Seq: n.seq, State: n.state})
		}
	}
	if len(c.newRecords) > 0 {
		recs := c.newRecords
		c.newRecords = nil
		for len(recs) > 0 {
			batch, size := 0, 0
			for batch < len(recs) && (batch == 0 || size+len(encode(recs[batch])) < MaxMessage) {
				size += len(encode(recs[batch])) + 1
				batch++
			}
			for _, m := range n.members.Nodes() {
				n.send(m, MsgRecords, recordsMsg{Seq: n.seq, Records: recs[:batch]})
			}
			recs = recs[batch:]
		}
	}
	var ids []base.NodeID
	for id := range c.orders {
		ids = append(ids, id)
	}
	for id := range c.manage {
		if c.orders[id] == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		o := &orderMsg{Seq: n.seq, Wants: c.orders[id], Manage: c.manage[id]}
		if o.Wants == nil {
			o.Wants = map[string]bool{}
		}
		if id == n.self {
			n.applyOrder(o)
			for _, g := range o.Manage {
				n.manage(g)
			}
			continue
		}
		n.send(id, MsgOrder, o)
	}
	c.orders = map[base.NodeID]map[string]bool{}
	c.manage = map[base.NodeID][]string{}
	// Orders to this node may have changed its state: report it now.
	if n.dirty && c.depth < 8 {
		c.depth++
		defer func() { c.depth-- }()
		n.dirty = false
		c.reports[n.self] = n.report()
		c.coordinate()
		if len(c.orders) > 0 || c.stateDirty || len(c.newRecords) > 0 {
			c.flush()
		}
	}
}
