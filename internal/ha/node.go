package ha

import (
	"encoding/json"
	"fmt"
	"time"

	"o2go/internal/base"
)

// LockDomain is the DLM domain HA's group locks live in; a group's lock is
// LockName(group).
const LockDomain = "o2go-ha"

// LockName is the DLM resource name of group's ownership lock.
func LockName(group string) string { return "G:" + group }

// FSLockName is the DLM resource name, in LockDomain, of the lock a node
// holds EX while it starts an o2go volume with UUID uuid (superblock UUID
// in hex): the check whether another node has the volume mounted, the
// fsck that may follow and the mount. Two nodes starting the volume at once
// (a concurrent group) take turns, so that neither checks or repairs it
// while the other mounts it.
func FSLockName(uuid string) string { return "F:" + uuid }

// LockMode is a group lock's mode as HA asks for it; the driver maps it to
// the DLM's (LockExclusive: EX, LockShared: PR, LockNone: release or cancel).
type LockMode uint8

// Lock modes.
const (
	LockNone LockMode = iota
	LockShared
	LockExclusive
)

func (m LockMode) String() string { return [...]string{"none", "shared", "exclusive"}[m] }

// LockOp asks the driver to take (Mode EX or PR; Try: fail at once when
// busy) or drop (Mode None: release, or cancel a pending request) a group's
// lock. Only the outcome of the group's latest take is reported back
// (LockDone); a cancelled request is not.
type LockOp struct {
	Group string
	Mode  LockMode
	Try   bool
}

// OpKind is a resource operation.
type OpKind uint8

// Resource operations (OpMonitor with Probe: the check at start-up of what
// runs already).
const (
	OpStart OpKind = iota
	OpStop
	OpMonitor
)

func (k OpKind) String() string { return [...]string{"start", "stop", "monitor"}[k] }

// Op asks the driver to run one operation on a resource of a group on this
// node, within Timeout, and report it with OpDone.
type Op struct {
	ID       uint64
	Kind     OpKind
	Group    string
	Resource Resource
	Timeout  time.Duration
	Probe    bool
}

// OpStatus is how an operation ended.
type OpStatus uint8

// Operation outcomes: OK (start/stop done; monitor: running), NotRunning
// (monitor: cleanly stopped), Failed (anything else, timeouts included).
const (
	OpOK OpStatus = iota
	OpNotRunning
	OpFailed
)

func (s OpStatus) String() string { return [...]string{"ok", "not running", "failed"}[s] }

// OpResult reports an Op. Detail says why it failed; on a start that
// succeeded, a note for the history (e.g. why a file system's fsck was
// skipped).
type OpResult struct {
	ID     uint64
	Status OpStatus
	Detail string
}

// ScriptRun asks the driver to run an event script: Path with Args and Env
// added to its environment, within Timeout. When Wait is set the outcome is
// expected (ScriptDone); notify scripts are not waited for.
type ScriptRun struct {
	ID      uint64
	Event   string
	Phase   string
	Path    string
	Args    []string
	Env     []string
	Timeout time.Duration
	Wait    bool
}

// ScriptResult reports a ScriptRun.
type ScriptResult struct {
	ID     uint64
	Exit   int // -1: could not run, or killed at its timeout
	Detail string
}

// CheckRun asks the driver for the local checks of a configuration (`o2go
// ha verify`): scripts exist and are executable, interfaces exist, service
// addresses are free. Active lists the groups running here (their addresses
// are expected to be configured). Answer with CheckDone.
type CheckRun struct {
	ID     uint64
	Config *Config
	Active []string
}

// Reply answers a Request: an error, or a JSON value.
type Reply struct {
	ID    uint64
	Err   string
	Value json.RawMessage
}

// Ready is what the Node asks its driver to do. Every input call adds to
// it; Ready() hands it over and starts a new one.
type Ready struct {
	Messages []Outgoing
	Locks    []LockOp
	Ops      []Op
	Scripts  []ScriptRun
	Checks   []CheckRun
	Replies  []Reply
	// Records were appended to this node's history (persist and log them).
	Records []Record
	// Config, State: a new configuration or state to persist.
	Config *Config
	State  *State
	// Fence: this node must fence itself (a stop failed); the reason.
	Fence string
	// Left: a graceful stop of HA on this node is done.
	Left  bool
	Notes []string
}

func (r *Ready) empty() bool {
	return len(r.Messages)+len(r.Locks)+len(r.Ops)+len(r.Scripts)+len(r.Checks)+len(r.Replies)+len(r.Records)+len(r.Notes) == 0 &&
		r.Config == nil && r.State == nil && r.Fence == "" && !r.Left
}

// NodeConfig is what a Node starts from.
type NodeConfig struct {
	Self base.NodeID
	Topo Topology
	// Incarnation tells this run of the node from earlier ones (the agent
	// uses its heartbeat generation).
	Incarnation uint64
	// Config, State and History as persisted by an earlier run (nil: none).
	Config  *Config
	State   *State
	History []Record
	// SyncTimeout is how long a new coordinator waits for the reports of
	// the members before deciding without the silent ones (default 3 s).
	SyncTimeout time.Duration
}

// HistoryLen is how many records a node keeps in memory.
const HistoryLen = 2000

// Node is one node's HA state machine: its local groups (locks, resources,
// monitors, restarts, event scripts) and, on the lowest-numbered member, the
// coordinator that runs the placement and numbers the history. It is pure:
// the driver (node agent or simulator) feeds it membership events, peers'
// messages, lock grants, operation and script outcomes, operator requests
// and time, and carries out its Ready.
type Node struct {
	self  base.NodeID
	name  string
	topo  Topology
	inc   uint64
	syncT time.Duration

	now  time.Duration
	wall int64

	cfg   *Config
	res   *Resolved
	state *State
	live  bool // state received from a coordinator in this run (not from disk)
	hist  []Record
	last  uint64 // seq of the last record

	seq     uint64
	members base.NodeMap
	started bool
	held    []heldMsg

	groups   map[string]*localGroup
	order    []string // local group names, sorted
	netDown  map[string]bool
	ready    bool
	leaving  string
	left     bool
	fenced   bool
	dirty    bool // report to send
	outNotes []Record

	coord *coordinator

	nextID   uint64
	ops      map[uint64]opRef
	scripts  map[uint64]scriptRef
	requests map[uint64]*Request // operator requests made here, waiting for the coordinator
	checks   map[uint64]uint64   // local check id -> coordinator's verify id

	rd Ready
}

type heldMsg struct {
	from base.NodeID
	typ  uint16
	seq  uint64
	msg  any
}

// New returns the HA node of cfg.Self. Nothing happens until the first
// membership event.
func New(cfg NodeConfig) *Node {
	n := &Node{self: cfg.Self, topo: cfg.Topo, inc: cfg.Incarnation, syncT: cfg.SyncTimeout,
		groups: map[string]*localGroup{}, netDown: map[string]bool{}, ops: map[uint64]opRef{},
		scripts: map[uint64]scriptRef{}, requests: map[uint64]*Request{}, checks: map[uint64]uint64{}}
	if n.syncT == 0 {
		n.syncT = 3 * time.Second
	}
	n.name = n.topo.Name(n.self)
	n.cfg = &Config{}
	if cfg.Config != nil {
		n.cfg = cfg.Config.Clone()
	}
	if r, err := Validate(n.cfg, n.topo); err == nil {
		n.res = r
	} else {
		n.notef("the saved HA configuration (version %d) does not fit this cluster: %v", n.cfg.Version, err)
	}
	n.state = cfg.State.Clone()
	for _, r := range cfg.History {
		if r.Seq == n.last+1 || n.last == 0 {
			n.hist = append(n.hist, r)
			n.last = r.Seq
		}
	}
	n.trimHistory()
	n.syncGroups()
	return n
}

// Ready returns what the node asks for since the last call.
func (n *Node) Ready() Ready {
	n.flush()
	rd := n.rd
	n.rd = Ready{}
	return rd
}

func (n *Node) notef(format string, args ...any) {
	n.rd.Notes = append(n.rd.Notes, fmt.Sprintf(format, args...))
}

func (n *Node) newID() uint64 { n.nextID++; return n.nextID }

func (n *Node) send(to base.NodeID, typ uint16, v any) {
	if to == n.self {
		return
	}
	n.rd.Messages = append(n.rd.Messages, Outgoing{To: to, Type: typ, Payload: encode(v)})
}

// coordinatorID is the coordinator of this node's view: its lowest member.
func (n *Node) coordinatorID() base.NodeID { return n.members.Lowest() }

// IsCoordinator reports whether this node coordinates the cluster now.
func (n *Node) IsCoordinator() bool { return n.coord != nil }

// Config is the configuration in force here.
func (n *Node) Config() *Config { return n.cfg }

// State is this node's replica of the cluster state.
func (n *Node) State() *State { return n.state }

// History returns the records after seq (at most max; 0: all kept).
func (n *Node) History(after uint64, max int) []Record {
	var out []Record
	for _, r := range n.hist {
		if r.Seq > after {
			out = append(out, r)
		}
	}
	if max > 0 && len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

// Membership sets the membership as of seq (the node's first events, or
// after it restarted). members includes this node.
func (n *Node) Membership(seq uint64, members base.NodeMap) {
	if n.left || seq <= n.seq && n.started {
		return
	}
	n.seq, n.members = seq, members
	if !n.started {
		n.started = true
		n.startProbes()
	}
	n.viewChanged(base.InvalidNode, false)
}

// NodeUp reports that node x joined, as membership event seq.
func (n *Node) NodeUp(seq uint64, x base.NodeID) {
	if n.left || seq <= n.seq {
		return
	}
	n.seq = seq
	n.members.Add(x)
	n.viewChanged(x, true)
}

// NodeDown reports that node x died or left, as membership event seq.
func (n *Node) NodeDown(seq uint64, x base.NodeID) {
	if n.left || seq <= n.seq || x == n.self {
		return
	}
	n.seq = seq
	n.members.Remove(x)
	n.viewChanged(x, false)
}

// Left tells the node it is no longer a member (it left or was evicted):
// it stops acting.
func (n *Node) Left() {
	n.left = true
	n.coord = nil
}

func (n *Node) viewChanged(x base.NodeID, up bool) {
	if n.coordinatorID() == n.self {
		if n.coord == nil {
			n.startCoordinator()
		}
		if x.Valid() {
			n.coord.membership(x, up)
		}
	} else {
		n.coord = nil
	}
	n.dirty = true
	n.releaseHeld()
}

// SetClock updates the node's time without acting on it (drivers call it
// before each input so that records carry the moment they happened).
func (n *Node) SetClock(now time.Duration, wallMs int64) {
	if now > n.now {
		n.now = now
	}
	n.wall = wallMs
}

// Tick gives the node the time: monotonic now, and the wall clock in ms
// (for the history).
func (n *Node) Tick(now time.Duration, wallMs int64) {
	n.now, n.wall = now, wallMs
	if n.left || n.fenced {
		return
	}
	for _, name := range n.order {
		g := n.groups[name]
		n.step(g)
	}
	if n.coord != nil {
		n.coord.tick()
	}
}

// Receive handles a peer's message. A message that cannot be decoded is
// refused (ErrMessage) and changes nothing.
func (n *Node) Receive(from base.NodeID, typ uint16, payload []byte) error {
	m, seq, err := decode(typ, payload)
	if err != nil {
		return err
	}
	if n.left || n.fenced {
		return nil
	}
	if seq > n.seq || !n.started {
		n.held = append(n.held, heldMsg{from: from, typ: typ, seq: seq, msg: m})
		return nil
	}
	n.handle(from, typ, m)
	return nil
}

func (n *Node) releaseHeld() {
	if len(n.held) == 0 {
		return
	}
	var keep []heldMsg
	held := n.held
	n.held = nil
	for _, h := range held {
		if h.seq > n.seq {
			keep = append(keep, h)
			continue
		}
		n.handle(h.from, h.typ, h.msg)
	}
	n.held = append(keep, n.held...)
}

func (n *Node) handle(from base.NodeID, typ uint16, m any) {
	fromCoord := from == n.coordinatorID() && n.members.Has(from)
	switch v := m.(type) {
	case *reportMsg:
		if n.coord != nil && n.members.Has(from) {
			n.coord.report(from, v)
		}
	case *syncMsg:
		if fromCoord {
			n.dirty = true
		}
	case *orderMsg:
		if fromCoord {
			n.applyOrder(v)
			for _, g := range v.Manage {
				n.manage(g)
			}
		}
	case *stateMsg:
		if fromCoord {
			n.setState(v.State, true)
		}
	case *configMsg:
		if fromCoord {
			n.setConfig(v.Config)
		}
	case *recordsMsg:
		switch {
		case typ == MsgNote && n.coord != nil:
			for _, r := range v.Records {
				n.coord.append(r)
			}
		case typ == MsgRecords && fromCoord:
			n.addRecords(v.Records, false)
		}
	case *fetchMsg:
		n.answerFetch(from, v)
	case *replicaMsg:
		if n.coord != nil {
			n.coord.replica(from, v)
		} else if fromCoord {
			n.addRecords(v.Records, true)
		}
	case *requestMsg:
		if n.coord != nil {
			n.coord.request(from, v.ID, v.Request)
		} else {
			n.send(from, MsgReply, replyMsg{Seq: n.seq, ID: v.ID, Err: "this node is not the coordinator (the view changed): try again"})
		}
	case *replyMsg:
		if _, ok := n.requests[v.ID]; ok {
			delete(n.requests, v.ID)
			n.rd.Replies = append(n.rd.Replies, Reply{ID: v.ID, Err: v.Err, Value: v.Value})
		}
	case *checkMsg:
		if fromCoord {
			id := n.newID()
			n.checks[id] = v.ID
			n.rd.Checks = append(n.rd.Checks, CheckRun{ID: id, Config: v.Config, Active: n.activeGroups()})
		}
	case *checkedMsg:
		if n.coord != nil {
			n.coord.checked(from, v)
		}
	}
}

// setState takes a state from the coordinator (or, on the coordinator,
// its own new version).
func (n *Node) setState(s *State, live bool) {
	n.state = s.Clone()
	n.live = n.live || live
	n.rd.State = n.state.Clone()
	n.ackFailures()
}

// ackFailures: failures the coordinator recorded are reported no more.
func (n *Node) ackFailures() {
	for _, g := range n.groups {
		if g.failedHere && hasNode(n.state.Group(g.name).Failed, n.self) {
			g.failedHere = false
			n.dirty = true
		}
	}
}

func hasNode(l []base.NodeID, x base.NodeID) bool {
	for _, y := range l {
		if y == x {
			return true
		}
	}
	return false
}

// setConfig installs a committed configuration.
func (n *Node) setConfig(c *Config) {
	if c.Digest() == n.cfg.Digest() {
		return
	}
	r, err := Validate(c, n.topo)
	if err != nil {
		n.notef("configuration version %d does not fit this node's cluster: %v (keeping the groups as they are)", c.Version, err)
		n.cfg = c.Clone()
		n.rd.Config = n.cfg.Clone()
		n.dirty = true
		return
	}
	n.cfg = r.Config
	n.res = r
	n.rd.Config = n.cfg.Clone()
	n.syncGroups()
	n.dirty = true
}

// addRecords takes numbered records from the coordinator. A record numbered
// at or below the last one here replaces what follows (the coordinator's
// history is the history); a gap asks for the missing ones, unless jump
// (the answer to such a request, which may start later when the coordinator
// no longer keeps the oldest).
func (n *Node) addRecords(rs []Record, jump bool) {
	for _, r := range rs {
		switch {
		case r.Seq == n.last+1:
		case r.Seq <= n.last:
			i := len(n.hist)
			for i > 0 && n.hist[i-1].Seq >= r.Seq {
				i--
			}
			n.hist = n.hist[:i]
		case jump:
			n.hist = nil
		default:
			if c := n.coordinatorID(); c != n.self && n.members.Has(c) {
				n.send(c, MsgFetch, fetchMsg{Seq: n.seq, HistFrom: n.last + 1})
			}
			return
		}
		n.hist = append(n.hist, r)
		n.last = r.Seq
		n.rd.Records = append(n.rd.Records, r)
	}
	n.trimHistory()
}

func (n *Node) trimHistory() {
	if len(n.hist) > HistoryLen {
		n.hist = append([]Record(nil), n.hist[len(n.hist)-HistoryLen:]...)
	}
}

// answerFetch sends what a fetch asks for.
func (n *Node) answerFetch(to base.NodeID, f *fetchMsg) {
	m := replicaMsg{Seq: n.seq, Live: n.live}
	if f.Config {
		m.Config = n.cfg
	}
	if f.State {
		m.State = n.state
	}
	size := len(encode(m))
	if f.HistFrom > 0 {
		for _, r := range n.hist {
			if r.Seq < f.HistFrom {
				continue
			}
			sz := len(encode(r)) + 1
			if size+sz > MaxMessage {
				m.More = true
				break
			}
			size += sz
			m.Records = append(m.Records, r)
		}
	}
	n.send(to, MsgReplica, m)
}

// note records an event of this node: the coordinator numbers it.
func (n *Node) note(r Record) {
	r.Node = n.name
	r.At = n.wall
	if n.coord != nil && n.coord.synced {
		n.coord.append(r)
		return
	}
	n.outNotes = append(n.outNotes, r)
}

// flush sends what accumulated: notes and the report to the coordinator,
// and, on the coordinator, the new records and state.
func (n *Node) flush() {
	if n.left || !n.started {
		return
	}
	c := n.coordinatorID()
	if n.coord != nil {
		if n.coord.synced && len(n.outNotes) > 0 {
			notes := n.outNotes
			n.outNotes = nil
			for _, r := range notes {
				n.coord.append(r)
			}
		}
		if n.dirty {
			n.dirty = false
			n.coord.report(n.self, n.report())
		}
		n.coord.flush()
		return
	}
	if !c.Valid() || !n.members.Has(c) {
		return
	}
	if len(n.outNotes) > 0 {
		n.send(c, MsgNote, recordsMsg{Seq: n.seq, Records: n.outNotes})
		n.outNotes = nil
	}
	if n.dirty {
		n.dirty = false
		n.send(c, MsgReport, n.report())
	}
}

// report describes this node for the coordinator.
func (n *Node) report() *reportMsg {
	r := &reportMsg{Seq: n.seq, Inc: n.inc, Ready: n.ready, Leaving: n.leaving, ConfigVersion: n.cfg.Version,
		ConfigDigest: n.cfg.Digest(), StateVersion: n.state.Version, StateLive: n.live, HistSeq: n.last}
	for _, name := range n.order {
		r.Groups = append(r.Groups, n.groups[name].report())
	}
	for _, net := range sortedKeys(n.netDown) {
		if n.netDown[net] {
			r.NetDown = append(r.NetDown, net)
		}
	}
	return r
}

// Request submits an operator's request made on this node; its answer
// comes as a Reply with the same id. Requests go to the coordinator.
func (n *Node) Request(id uint64, req *Request) {
	if n.left || n.fenced {
		n.rd.Replies = append(n.rd.Replies, Reply{ID: id, Err: "HA is not running on this node"})
		return
	}
	c := n.coordinatorID()
	if !n.started || !c.Valid() {
		n.rd.Replies = append(n.rd.Replies, Reply{ID: id, Err: "this node is not in the cluster yet: wait for it to join"})
		return
	}
	if n.coord != nil {
		n.coord.request(n.self, id, req)
		return
	}
	n.requests[id] = req
	n.send(c, MsgRequest, requestMsg{Seq: n.seq, ID: id, Request: req})
}

// CancelRequest forgets a request whose client went away.
func (n *Node) CancelRequest(id uint64) { delete(n.requests, id) }

// CheckDone reports the local checks of CheckRun id.
func (n *Node) CheckDone(id uint64, problems []string) {
	vid, ok := n.checks[id]
	if !ok {
		return
	}
	delete(n.checks, id)
	m := &checkedMsg{Seq: n.seq, ID: vid, Problems: problems, ConfigDigest: n.cfg.Digest(), ConfigVer: n.cfg.Version}
	if n.coord != nil {
		n.coord.checked(n.self, m)
		return
	}
	if c := n.coordinatorID(); c.Valid() {
		n.send(c, MsgChecked, m)
	}
}

// NetState is a network's health on a node, as the driver watches it.
type NetState struct {
	Up     bool
	Active string // the interface service addresses go on
}

// NetworkState reports the health of network net on this node: up when
// one of its interfaces works. swapped names the interfaces when the active
// one changed (from, to) while the network stayed up.
func (n *Node) NetworkState(net string, up bool, swapped ...string) {
	if n.left || n.fenced {
		return
	}
	was := n.netDown[net]
	switch {
	case !up && !was:
		n.netDown[net] = true
		n.dirty = true
		n.localEvent(EvNetworkDown, "", "", []string{n.name, net}, "")
	case up && was:
		delete(n.netDown, net)
		n.dirty = true
		n.localEvent(EvNetworkUp, "", "", []string{n.name, net}, "")
	case up && len(swapped) == 2:
		if !n.swapAdapter(net) {
			n.localEvent(EvSwapAdapter, "", "", []string{n.name, net, swapped[0], swapped[1]}, "")
		}
	}
}

// localEvent records a one-shot event of this node and runs its notify,
// pre and post scripts (not waited for: the work is the driver's).
func (n *Node) localEvent(ev, group, res string, args []string, detail string) {
	n.note(Record{Event: ev, Phase: PhaseStart, Group: group, Resource: res, Args: args, Detail: detail})
	sc := n.cfg.EventScripts(ev)
	for _, s := range []struct{ phase, path string }{{PhaseNotify, sc.Notify}, {PhasePre, sc.Pre}, {PhasePost, sc.Post}} {
		if s.path != "" {
			n.runScript(nil, ev, s.phase, s.path, group, res, args, "", false)
		}
	}
	n.note(Record{Event: ev, Phase: PhaseComplete, Group: group, Resource: res, Args: args})
}

// Shutdown stops HA on this node as HACMP's node_down: "graceful" releases
// the node's groups and leaves them offline until it is back; "takeover"
// releases them for the other nodes to take over; "forced" leaves the
// resources running, unmanaged, and no other node takes them. Ready.Left
// says when the node may stop.
func (n *Node) Shutdown(mode string) error {
	switch mode {
	case "graceful", "takeover", "forced":
	default:
		return fmt.Errorf("node_down mode %q: use graceful, takeover or forced", mode)
	}
	if n.leaving != "" {
		return nil
	}
	n.leaving = mode
	n.dirty = true
	if !n.started || n.coordinatorID() == base.InvalidNode {
		n.rd.Left = true
		return nil
	}
	if mode != "forced" {
		for _, g := range n.groups {
			g.want = false
		}
	}
	n.checkLeft()
	return nil
}

func (n *Node) checkLeft() {
	if n.leaving == "" || n.left {
		return
	}
	if n.leaving != "forced" {
		for _, g := range n.groups {
			if g.phase != phOffline && g.phase != phUnmanaged {
				return
			}
		}
	}
	n.rd.Left = true
}

// Status is this node's own view, for `o2go ha status` when the coordinator
// cannot be reached.
func (n *Node) LocalStatus() *Status {
	st := &Status{Node: n.name, Coordinator: n.topo.Name(n.coordinatorID()), ConfigVersion: n.cfg.Version,
		ConfigDigest: n.cfg.Digest(), StateVersion: n.state.Version, Partial: true}
	for _, m := range n.members.Nodes() {
		st.Members = append(st.Members, n.topo.Name(m))
	}
	for _, name := range n.order {
		g := n.groups[name]
		gs := GroupStatus{Name: name, State: "unknown"}
		rep := g.report()
		gs.OnNodes = append(gs.OnNodes, NodeGroupStatus{Node: n.name, GroupReport: rep})
		if g.phase == phOnline {
			gs.Nodes = append(gs.Nodes, n.name)
		}
		st.Groups = append(st.Groups, gs)
	}
	st.Events = n.History(0, 10)
	return st
}
