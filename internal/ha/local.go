package ha

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// phase is where a group stands on this node.
type phase uint8

const (
	phOffline   phase = iota
	phProbe           // checking at start-up what runs already
	phLocking         // waiting for the group's lock
	phStarting        // notify+pre, resources in order, post
	phOnline          // running; monitors
	phRestart         // restarting resources in place (monitor failure, swap_adapter)
	phStopping        // notify+pre, resources in reverse, unlock, post
	phUnmanaged       // a stop failed and fencing is off: lock kept, nothing done
)

var phaseNames = [...]string{"offline", "probing", "acquiring", "starting", "online", "restarting", "stopping", "unmanaged"}

func (p phase) String() string { return phaseNames[p] }

// Resource states as reported.
const (
	resStopped  = "stopped"
	resStarting = "starting"
	resRunning  = "running"
	resStopping = "stopping"
	resFailed   = "failed"
	resUnknown  = "unknown"
)

type localRes struct {
	state    string
	failures []time.Duration // monitor failures within the restart interval
	restarts int
	nextMon  time.Duration
}

// localGroup is one group on this node.
type localGroup struct {
	name  string
	def   *Group // the definition in use (kept while a removed or changed group stops)
	want  bool   // the coordinator wants it online here
	phase phase
	stage int
	idx   int // resource being started, stopped or probed
	res   []localRes

	lock     LockMode // held
	locking  bool     // a take is pending
	adopting bool     // the take is a try after probes found it running
	retryAt  time.Duration

	op       uint64 // pending operation
	script   uint64 // pending script
	event    string // the event whose work is under way
	tries    int    // recovery retries used in this event
	retry    bool   // re-issue the failed operation (after recovery)
	failing  bool   // stopping because the group failed here
	failWhy  string
	restartQ []int // resources to restart in place

	failedHere bool
	detail     string
	since      time.Duration
}

type opRef struct {
	group string
	kind  OpKind
	idx   int
}

type scriptRef struct {
	group string
	coord bool // a coordinator event's script
}

// syncGroups creates the local state of every configured group that lists
// this node, updates definitions, and makes active groups whose resources
// changed (or that left the configuration) stop with their old definition.
func (n *Node) syncGroups() {
	seen := map[string]bool{}
	for i := range n.cfg.Groups {
		def := &n.cfg.Groups[i]
		seen[def.Name] = true
		g := n.groups[def.Name]
		if g == nil {
			g = &localGroup{name: def.Name, def: def}
			g.res = make([]localRes, len(def.Resources))
			for j := range g.res {
				g.res[j].state = resStopped
			}
			n.groups[def.Name] = g
			if n.started && n.ready {
				g.phase = phOffline
			}
			continue
		}
		if g.phase == phOffline && g.op == 0 && g.script == 0 {
			g.def = def
			g.res = make([]localRes, len(def.Resources))
			for j := range g.res {
				g.res[j].state = resStopped
			}
			continue
		}
		if !sameResources(g.def, def) {
			g.want = false // stop with the old definition; the coordinator orders it again
			g.detail = "configuration changed: restarting with the new definition"
		}
	}
	for name, g := range n.groups {
		if !seen[name] {
			if g.phase == phOffline && g.op == 0 && g.script == 0 {
				delete(n.groups, name)
				continue
			}
			g.want = false
			g.detail = "removed from the configuration"
		}
	}
	n.order = n.order[:0]
	for name := range n.groups {
		n.order = append(n.order, name)
	}
	sort.Strings(n.order)
}

func sameResources(a, b *Group) bool {
	x, _ := json.Marshal(a.Resources)
	y, _ := json.Marshal(b.Resources)
	return string(x) == string(y)
}

// startProbes checks, at start-up, what runs already of every group that
// may run here (after a forced node_down, or an agent that crashed).
func (n *Node) startProbes() {
	any := false
	for _, name := range n.order {
		g := n.groups[name]
		if !n.mayRun(g) || len(g.def.Resources) == 0 {
			continue
		}
		g.phase, g.idx = phProbe, 0
		any = true
		n.step(g)
	}
	if !any {
		n.ready = true
	}
}

// mayRun reports whether this node is in the group's node list.
func (n *Node) mayRun(g *localGroup) bool {
	for _, x := range g.def.Nodes {
		if x == n.name {
			return true
		}
	}
	return false
}

func (n *Node) updateReady() {
	if n.ready {
		return
	}
	for _, g := range n.groups {
		if g.phase == phProbe || g.adopting {
			return
		}
	}
	n.ready = true
	n.dirty = true
}

func (g *localGroup) report() GroupReport {
	r := GroupReport{Name: g.name, Want: g.want, Phase: g.phase.String(), FailedHere: g.failedHere, Detail: g.detail}
	if g.failedHere && g.phase == phOffline {
		r.Phase = "error"
	}
	for i, res := range g.def.Resources {
		if i < len(g.res) {
			r.Resources = append(r.Resources, ResReport{Name: res.Name, State: g.res[i].state, Restarts: g.res[i].restarts})
		}
	}
	return r
}

// active reports whether any resource of the group may be running here.
func (g *localGroup) active() bool {
	for _, r := range g.res {
		if r.state != resStopped {
			return true
		}
	}
	return g.phase != phOffline && g.phase != phProbe && g.phase != phLocking
}

func (n *Node) activeGroups() []string {
	var out []string
	for _, name := range n.order {
		if n.groups[name].active() {
			out = append(out, name)
		}
	}
	return out
}

// applyOrder takes the coordinator's wishes.
func (n *Node) applyOrder(o *orderMsg) {
	if n.leaving == "forced" {
		return
	}
	for _, name := range sortedKeys(o.Wants) {
		g := n.groups[name]
		want := o.Wants[name]
		if g == nil || (want && (n.leaving != "" || !n.mayRun(g) || n.cfg.Group(name) == nil)) {
			continue
		}
		if g.want != want {
			g.want = want
			n.dirty = true
		}
		if g.phase == phUnmanaged && !want {
			// The operator's stop tries the stop again.
			g.phase, g.stage, g.event, g.tries = phStopping, 1, EvRGOffline, 0
			g.idx = len(g.res) - 1
			g.detail = ""
		}
		n.step(g)
	}
}

// manage takes an unmanaged group back: monitors resume.
func (n *Node) manage(name string) {
	if g := n.groups[name]; g != nil && g.phase == phUnmanaged {
		g.phase = phOnline
		g.detail = ""
		for i := range g.res {
			g.res[i].state = resRunning
			g.res[i].nextMon = n.now
		}
		n.dirty = true
		n.step(g)
	}
}

func (n *Node) setPhase(g *localGroup, p phase) {
	if g.phase != p {
		g.phase = p
		g.since = n.now
		n.dirty = true
	}
}

func (n *Node) scriptArgs(g *localGroup) []string {
	return []string{g.name, n.name}
}

// runScript starts an event script; when wait, the group waits for it.
func (n *Node) runScript(g *localGroup, ev, ph, path, group, res string, args []string, status string, wait bool) uint64 {
	id := n.newID()
	env := []string{"O2GO_HA_EVENT=" + ev, "O2GO_HA_PHASE=" + ph, "O2GO_HA_NODE=" + n.name}
	if group != "" {
		env = append(env, "O2GO_HA_GROUP="+group)
	}
	if res != "" {
		env = append(env, "O2GO_HA_RESOURCE="+res)
	}
	if status != "" {
		env = append(env, "O2GO_HA_STATUS="+status)
	}
	n.rd.Scripts = append(n.rd.Scripts, ScriptRun{ID: id, Event: ev, Phase: ph, Path: path, Args: append([]string{ev}, args...),
		Env: env, Timeout: n.cfg.Settings.scriptTimeout(), Wait: wait})
	if wait && g != nil {
		g.script = id
		n.scripts[id] = scriptRef{group: g.name}
	} else {
		detail := path
		if status != "" {
			detail += " (" + status + ")"
		}
		n.note(Record{Event: ev, Phase: ph, Group: group, Resource: res, Args: args, Detail: detail})
	}
	return id
}

// eventScript runs script phase ph of g's current event; it reports false
// when there is none.
func (n *Node) eventScript(g *localGroup, ph, status string) bool {
	sc := n.cfg.EventScripts(g.event)
	var path string
	wait := true
	switch ph {
	case PhasePre:
		path = sc.Pre
	case PhasePost:
		path = sc.Post
	case PhaseRecovery:
		path = sc.Recovery
	case PhaseNotify:
		path, wait = sc.Notify, false
	}
	if path == "" {
		return false
	}
	n.runScript(g, g.event, ph, path, g.name, n.resName(g), n.scriptArgs(g), status, wait)
	return wait
}

func (n *Node) resName(g *localGroup) string {
	if g.event == EvResourceFail && len(g.restartQ) > 0 && g.restartQ[0] < len(g.def.Resources) {
		return g.def.Resources[g.restartQ[0]].Name
	}
	return ""
}

// beginEvent starts the work of event ev on g: record and notify.
func (n *Node) beginEvent(g *localGroup, ev, detail string) {
	g.event, g.tries, g.retry = ev, 0, false
	n.note(Record{Event: ev, Phase: PhaseStart, Group: g.name, Resource: n.resName(g), Args: n.scriptArgs(g), Detail: detail})
	n.eventScript(g, PhaseNotify, "")
}

func (n *Node) endEvent(g *localGroup, ok bool, detail string) {
	status := "ok"
	ph := PhaseComplete
	if !ok {
		status, ph = "failed", PhaseFailed
	}
	n.eventScript(g, PhaseNotify, status)
	n.note(Record{Event: g.event, Phase: ph, Group: g.name, Resource: n.resName(g), Args: n.scriptArgs(g), Detail: detail})
}

func (n *Node) issue(g *localGroup, kind OpKind, idx int, probe bool) {
	r := g.def.Resources[idx]
	t := TimingsOf(&n.cfg.Settings, &r)
	timeout := t.StartTimeout
	switch kind {
	case OpStop:
		timeout = t.StopTimeout
		g.res[idx].state = resStopping
	case OpMonitor:
		timeout = t.MonitorTimeout
	case OpStart:
		g.res[idx].state = resStarting
	}
	id := n.newID()
	g.op = id
	n.ops[id] = opRef{group: g.name, kind: kind, idx: idx}
	n.rd.Ops = append(n.rd.Ops, Op{ID: id, Kind: kind, Group: g.name, Resource: r, Timeout: timeout, Probe: probe})
	n.dirty = true
}

func (n *Node) takeLock(g *localGroup, try bool) {
	mode := LockExclusive
	if g.def.Concurrent() {
		mode = LockShared
	}
	g.locking = true
	n.rd.Locks = append(n.rd.Locks, LockOp{Group: g.name, Mode: mode, Try: try})
}

func (n *Node) dropLock(g *localGroup) {
	if g.lock != LockNone || g.locking {
		n.rd.Locks = append(n.rd.Locks, LockOp{Group: g.name, Mode: LockNone})
	}
	g.lock, g.locking, g.adopting = LockNone, false, false
}

// step advances g as far as it can without waiting.
func (n *Node) step(g *localGroup) {
	for i := 0; i < 100 && !n.fenced && !n.left; i++ {
		if g.op != 0 || g.script != 0 {
			break
		}
		if g.locking && !(g.phase == phLocking && !g.want && !g.adopting) {
			break
		}
		if !n.advance(g) {
			break
		}
	}
	if g.phase == phOffline && !g.want && !g.active() && n.cfg.Group(g.name) == nil {
		delete(n.groups, g.name)
		for i, name := range n.order {
			if name == g.name {
				n.order = append(n.order[:i], n.order[i+1:]...)
				break
			}
		}
	}
	n.updateReady()
	n.checkLeft()
}

// advance makes one move; false when g must wait.
func (n *Node) advance(g *localGroup) bool {
	last := len(g.res) - 1
	switch g.phase {
	case phOffline:
		if g.want && n.ready && n.now >= g.retryAt && n.cfg.Group(g.name) != nil {
			n.setPhase(g, phLocking)
			g.detail = ""
			n.takeLock(g, false)
			return true
		}
		return false

	case phProbe:
		if g.idx <= last {
			n.issue(g, OpMonitor, g.idx, true)
			return true
		}
		found := false
		for _, r := range g.res {
			found = found || r.state != resStopped
		}
		if !found {
			n.setPhase(g, phOffline)
			return true
		}
		// Something runs: keep it if nobody else holds the group.
		g.adopting = true
		n.setPhase(g, phLocking)
		n.takeLock(g, true)
		return true

	case phLocking:
		if !g.want && !g.adopting {
			n.dropLock(g)
			n.setPhase(g, phOffline)
			return true
		}
		return false

	case phStarting:
		switch g.stage {
		case 0:
			g.stage = 1
			g.idx = 0
			n.eventScript(g, PhasePre, "")
			return true
		case 1:
			if !g.want {
				n.stopAfterAbort(g)
				return true
			}
			if g.retry {
				g.retry = false
				n.issue(g, OpStart, g.idx, false)
				return true
			}
			for g.idx <= last && g.res[g.idx].state == resRunning {
				g.idx++
			}
			if g.idx <= last {
				n.issue(g, OpStart, g.idx, false)
				return true
			}
			g.stage = 2
			n.eventScript(g, PhasePost, "ok")
			return true
		default:
			n.endEvent(g, true, "")
			n.setPhase(g, phOnline)
			for i := range g.res {
				t := TimingsOf(&n.cfg.Settings, &g.def.Resources[i])
				g.res[i].nextMon = n.now + t.MonitorInterval
			}
			return true
		}

	case phOnline:
		if !g.want {
			n.setPhase(g, phStopping)
			g.stage, g.failing = 0, false
			n.beginEvent(g, EvRGOffline, g.detail)
			return true
		}
		if len(g.restartQ) > 0 {
			n.setPhase(g, phRestart)
			g.stage = 0
			return true
		}
		for i := range g.res {
			if g.res[i].state == resRunning && g.res[i].nextMon <= n.now {
				n.issue(g, OpMonitor, i, false)
				return true
			}
		}
		return false

	case phRestart:
		if len(g.restartQ) == 0 {
			n.setPhase(g, phOnline)
			return true
		}
		i := g.restartQ[0]
		switch g.stage {
		case 0:
			g.stage = 1
			n.eventScript(g, PhasePre, "")
			return true
		case 1:
			if !g.want {
				g.restartQ = nil
				n.stopAfterAbort(g)
				return true
			}
			if g.res[i].state == resStopped {
				g.stage = 2
				return true
			}
			n.issue(g, OpStop, i, false)
			return true
		case 2:
			if !g.want {
				g.restartQ = nil
				n.stopAfterAbort(g)
				return true
			}
			if g.res[i].state == resRunning {
				g.stage = 3
				n.eventScript(g, PhasePost, "ok")
				return true
			}
			n.issue(g, OpStart, i, false)
			return true
		default:
			n.endEvent(g, true, "")
			t := TimingsOf(&n.cfg.Settings, &g.def.Resources[i])
			g.res[i].nextMon = n.now + t.MonitorInterval
			g.restartQ = g.restartQ[1:]
			g.stage = 0
			if len(g.restartQ) == 0 {
				n.setPhase(g, phOnline)
			}
			return true
		}

	case phStopping:
		switch g.stage {
		case 0:
			g.stage = 1
			g.idx = last
			n.eventScript(g, PhasePre, "")
			return true
		case 1:
			if g.retry {
				g.retry = false
				n.issue(g, OpStop, g.idx, false)
				return true
			}
			for g.idx >= 0 && g.res[g.idx].state == resStopped {
				g.idx--
			}
			if g.idx >= 0 {
				n.issue(g, OpStop, g.idx, false)
				return true
			}
			n.dropLock(g)
			g.stage = 2
			status := "ok"
			if g.failing {
				status = "failed"
			}
			n.eventScript(g, PhasePost, status)
			return true
		default:
			if g.failing {
				g.failedHere = true
				n.endEvent(g, true, g.failWhy)
				g.detail = g.failWhy
			} else {
				n.endEvent(g, true, "")
			}
			g.failing = false
			n.setPhase(g, phOffline)
			g.def = n.currentDef(g)
			return true
		}
	}
	return false
}

// currentDef is the group's definition in the configuration in force (the
// old one while it is not there any more).
func (n *Node) currentDef(g *localGroup) *Group {
	if d := n.cfg.Group(g.name); d != nil {
		if !sameResources(g.def, d) {
			g.res = make([]localRes, len(d.Resources))
			for j := range g.res {
				g.res[j].state = resStopped
			}
		}
		return d
	}
	return g.def
}

// stopAfterAbort: the coordinator withdrew the group while it was starting
// or restarting: stop what runs.
func (n *Node) stopAfterAbort(g *localGroup) {
	n.endEvent(g, false, "withdrawn by the coordinator")
	n.setPhase(g, phStopping)
	g.stage, g.failing = 0, false
	n.beginEvent(g, EvRGOffline, "")
}

// fail starts the fallover of g from this node: everything stops, the lock
// is released, and the coordinator hears the group failed here.
func (n *Node) fail(g *localGroup, why string) {
	n.endEvent(g, false, why)
	g.want = false // the coordinator decides where it goes next
	g.restartQ = nil
	g.failing, g.failWhy = true, why
	n.setPhase(g, phStopping)
	g.stage = 0
	n.beginEvent(g, EvRGError, why)
}

// fence: a resource could not be stopped.
func (n *Node) stopFailed(g *localGroup, why string) {
	n.endEvent(g, false, why)
	if n.cfg.Settings.fence() {
		n.rd.Fence = fmt.Sprintf("HA: group %s: %s; fencing so that the group can move safely", g.name, why)
		n.note(Record{Event: g.event, Phase: PhaseInfo, Group: g.name, Detail: "the node fences itself: " + why})
		n.fenced = true
		n.flushFence()
		return
	}
	n.setPhase(g, phUnmanaged)
	g.detail = why + ": unmanaged (the lock stays held) until the operator stops or starts it"
	for i := range g.res {
		if g.res[i].state == resStopping {
			g.res[i].state = resUnknown
		}
	}
}

// flushFence sends what is pending before the node goes.
func (n *Node) flushFence() {
	n.fenced = false
	n.dirty = true
	n.flush()
	n.fenced = true
}

// retryOrGiveUp runs the event's recovery script and retries the failed
// operation while retries remain; false when they are used up.
func (n *Node) retryOrGiveUp(g *localGroup) bool {
	sc := n.cfg.EventScripts(g.event)
	if sc.Recovery == "" || g.tries >= sc.Retries {
		return false
	}
	g.tries++
	g.retry = true
	n.runScript(g, g.event, PhaseRecovery, sc.Recovery, g.name, n.resName(g), n.scriptArgs(g), "", true)
	return true
}

// OpDone reports the outcome of an operation.
func (n *Node) OpDone(r OpResult) {
	ref, ok := n.ops[r.ID]
	if !ok {
		return
	}
	delete(n.ops, r.ID)
	g := n.groups[ref.group]
	if g == nil || g.op != r.ID || n.fenced {
		return
	}
	g.op = 0
	n.dirty = true
	res := &g.res[ref.idx]
	name := g.def.Resources[ref.idx].Name
	switch ref.kind {
	case OpStart:
		if r.Status == OpOK {
			res.state = resRunning
			if r.Detail != "" {
				n.note(Record{Event: g.event, Phase: PhaseInfo, Group: g.name, Resource: name, Detail: r.Detail})
			}
			break
		}
		res.state = resFailed
		why := fmt.Sprintf("resource %s did not start: %s", name, r.Detail)
		if !n.retryOrGiveUp(g) {
			n.fail(g, why)
		}
	case OpStop:
		if r.Status == OpOK {
			res.state = resStopped
			break
		}
		res.state = resUnknown
		if !n.retryOrGiveUp(g) {
			n.stopFailed(g, fmt.Sprintf("resource %s did not stop: %s", name, r.Detail))
		}
	case OpMonitor:
		if g.phase == phProbe {
			switch r.Status {
			case OpOK:
				res.state = resRunning
			case OpNotRunning:
				res.state = resStopped
			default:
				res.state = resUnknown // stop it to be sure
			}
			g.idx++
			break
		}
		if g.phase != phOnline || res.state != resRunning {
			break
		}
		t := TimingsOf(&n.cfg.Settings, &g.def.Resources[ref.idx])
		if r.Status == OpOK {
			res.nextMon = n.now + t.MonitorInterval
			break
		}
		res.state = resFailed
		if r.Detail == "" {
			r.Detail = r.Status.String()
		}
		kept := res.failures[:0]
		for _, f := range res.failures {
			if n.now-f < t.RestartInterval {
				kept = append(kept, f)
			}
		}
		res.failures = kept
		if len(res.failures) < t.RestartAttempts {
			res.failures = append(res.failures, n.now)
			res.restarts++
			g.restartQ = append(g.restartQ, ref.idx)
			g.event = EvResourceFail
			n.beginEvent(g, EvResourceFail, fmt.Sprintf("monitor: %s %s; restart %d of %d within %v",
				name, r.Status, len(res.failures), t.RestartAttempts, t.RestartInterval))
			n.setPhase(g, phRestart)
			g.stage = 0
		} else {
			g.event = EvResourceFail
			g.restartQ = []int{ref.idx}
			n.beginEvent(g, EvResourceFail, fmt.Sprintf("monitor: %s %s; %d restarts within %v used up: the group falls over",
				name, r.Status, t.RestartAttempts, t.RestartInterval))
			n.fail(g, fmt.Sprintf("resource %s failed (%s) and its restarts are used up", name, r.Detail))
		}
	}
	n.step(g)
}

// ScriptDone reports the outcome of an event script that was waited for.
func (n *Node) ScriptDone(r ScriptResult) {
	ref, ok := n.scripts[r.ID]
	if !ok {
		return
	}
	delete(n.scripts, r.ID)
	if ref.coord {
		if n.coord != nil {
			n.coord.scriptDone(r)
		}
		return
	}
	g := n.groups[ref.group]
	if g == nil || g.script != r.ID {
		return
	}
	g.script = 0
	sc := n.cfg.EventScripts(g.event)
	ph, path := PhasePre, sc.Pre
	switch {
	case g.retry:
		ph, path = PhaseRecovery, sc.Recovery
	case g.phase == phStarting && g.stage >= 2, g.phase == phStopping && g.stage >= 2, g.phase == phRestart && g.stage >= 3:
		ph, path = PhasePost, sc.Post
	}
	detail := path + " exited " + strconv.Itoa(r.Exit)
	if r.Detail != "" {
		detail += ": " + r.Detail
	}
	n.note(Record{Event: g.event, Phase: ph, Group: g.name, Resource: n.resName(g), Args: n.scriptArgs(g), Detail: detail})
	n.step(g)
}

// LockDone reports the outcome of the group's latest take.
func (n *Node) LockDone(group string, granted bool) {
	g := n.groups[group]
	if g == nil || !g.locking || n.fenced {
		return
	}
	g.locking = false
	if !granted {
		if g.adopting {
			// Another node holds it: what runs here must not.
			g.adopting = false
			g.detail = "found running at start-up while another node holds the group: stopped"
			n.setPhase(g, phStopping)
			g.stage = 0
			n.beginEvent(g, EvRGOffline, g.detail)
		} else {
			n.setPhase(g, phOffline)
			g.retryAt = n.now + time.Second
		}
		n.step(g)
		return
	}
	g.lock = LockExclusive
	if g.def.Concurrent() {
		g.lock = LockShared
	}
	if g.adopting {
		g.adopting = false
		g.want = true
		g.detail = "found running at start-up: adopted"
	}
	n.setPhase(g, phStarting)
	g.stage = 0
	n.beginEvent(g, EvRGOnline, g.detail)
	n.step(g)
}

// LockLost reports that the group's lock is gone (the DLM stopped): the
// group stops here at once.
func (n *Node) LockLost(group string) {
	g := n.groups[group]
	if g == nil {
		return
	}
	g.lock, g.locking = LockNone, false
	g.want = false
	n.step(g)
}

// swapAdapter restarts in place the service addresses on net (they move to
// the network's new active interface).
func (n *Node) swapAdapter(net string) bool {
	took := false
	for _, name := range n.order {
		g := n.groups[name]
		if g.phase != phOnline && g.phase != phRestart {
			continue
		}
		for i, r := range g.def.Resources {
			if r.Type == TypeIP && r.Network == net {
				g.restartQ = append(g.restartQ, i)
			}
		}
		if len(g.restartQ) > 0 && g.phase == phOnline {
			n.beginEvent(g, EvSwapAdapter, "the service addresses move to the network's active interface")
			n.setPhase(g, phRestart)
			g.stage = 0
			took = true
			n.step(g)
		}
	}
	return took
}

// Phase returns group's phase on this node ("" when it has none here).
func (n *Node) Phase(group string) string {
	if g := n.groups[group]; g != nil {
		return g.phase.String()
	}
	return ""
}

// Active reports whether any resource of group may be running on this node.
func (n *Node) Active(group string) bool {
	g := n.groups[group]
	return g != nil && g.active()
}

// Holds returns the mode this node holds group's lock in.
func (n *Node) Holds(group string) LockMode {
	if g := n.groups[group]; g != nil {
		return g.lock
	}
	return LockNone
}

// Fenced reports whether the node asked to be fenced.
func (n *Node) Fenced() bool { return n.fenced }

// Running reports whether any resource of group is not known stopped on
// this node (starting, running, stopping, failed or unknown).
func (n *Node) Running(group string) bool {
	g := n.groups[group]
	if g == nil {
		return false
	}
	for _, r := range g.res {
		if r.state != resStopped {
			return true
		}
	}
	return false
}

// IsReady reports whether the node finished its start-up probes.
func (n *Node) IsReady() bool { return n.ready }
