package quorum

import (
	"fmt"
	"time"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
)

// View is one committed membership of the cluster. Epochs count views; Seq
// counts the node up/down events from the cluster's first view to this one.
// A member is an incarnation: a node number with the heartbeat generation it
// runs with, so that a node that restarted leaves the view (down) and joins
// again (up) even if no one ever saw it stop heartbeating.
type View struct {
	Epoch   uint64
	Seq     uint64
	Members base.NodeMap
	Gens    [base.MaxNodes]uint64 // each member's generation; 0 for others
}

func (v View) String() string { return fmt.Sprintf("epoch %d seq %d [%v]", v.Epoch, v.Seq, v.Members) }

// Has reports whether node n, in incarnation gen, is a member.
func (v *View) Has(n base.NodeID, gen uint64) bool {
	return n.Valid() && v.Members.Has(n) && v.Gens[n] == gen
}

// SameMembers reports whether two views hold the same incarnations.
func (v *View) SameMembers(o *View) bool {
	if v.Members != o.Members {
		return false
	}
	for _, n := range v.Members.Nodes() {
		if v.Gens[n] != o.Gens[n] {
			return false
		}
	}
	return true
}

// changes lists the incarnations that leave (downs) and join (ups) from
// view old to v. A node that restarted is in both.
func (v *View) changes(old *View) (downs, ups base.NodeMap) {
	for _, n := range old.Members.Nodes() {
		if !v.Has(n, old.Gens[n]) {
			downs.Add(n)
		}
	}
	for _, n := range v.Members.Nodes() {
		if !old.Has(n, v.Gens[n]) {
			ups.Add(n)
		}
	}
	return downs, ups
}

// viewOf is the view of the live incarnations.
func viewOf(live base.NodeMap, gens *[base.MaxNodes]uint64) View {
	v := View{Members: live}
	for _, n := range live.Nodes() {
		v.Gens[n] = gens[n]
	}
	return v
}

// EventKind is what happened to a node.
type EventKind int

const (
	NodeUp   EventKind = iota // the node joined the cluster view
	NodeDown                  // the node left the view: it is dead (fenced or stopped)
	Left                      // this node stopped heartbeating and left the cluster
)

func (k EventKind) String() string { return [...]string{"up", "down", "left"}[k] }

// Event is one membership event as delivered to subscribers. Every node
// delivers the events of a view in the same order with the same Seq: downs
// before ups, each in ascending node order. A node's first events (Initial)
// describe the membership it joined, all with that view's Seq; from then on
// it delivers exactly what every other member delivers.
type Event struct {
	Seq        uint64
	Epoch      uint64
	Node       base.NodeID
	Generation uint64 // the incarnation that came up or went down
	Kind       EventKind
	Members    base.NodeMap // the view's members after this event's view
	Initial    bool
}

func (e Event) String() string {
	s := fmt.Sprintf("seq %d epoch %d node %d %s [%v]", e.Seq, e.Epoch, e.Node, e.Kind, e.Members)
	if e.Initial {
		s += " initial"
	}
	return s
}

// Send is a membership message to send.
type Send struct {
	To      base.NodeID
	Type    uint16
	Payload []byte
}

// MembershipConfig configures Membership.
type MembershipConfig struct {
	Self     base.NodeID
	Interval time.Duration // status period and proposal resend period: the heartbeat interval
}

// MembershipReady is what Membership asks the driver to do.
type MembershipReady struct {
	Sends  []Send
	Events []Event
	// Fence is set when this node must fence itself: the committed view
	// left it out while it still heartbeats (the others declared it dead).
	Fence string
	Notes []string
}

type peerState struct {
	status Status
	at     time.Duration
	have   bool
}

type leaderProposal struct {
	p      Propose
	need   base.NodeMap // members whose accept is required
	acks   base.NodeMap
	sentAt time.Duration
	keep   bool // content accepted from an earlier leader: must not change
}

// logSize bounds the committed views kept for catching up peers. A live
// member can lag at most one view (every view needs its accept), so a
// short log suffices.
const logSize = 64

// Membership agrees on the cluster view — which nodes are members, in which
// order they joined and left — so that every node delivers the same node
// up/down events in the same order (see the package doc for the protocol).
// It is pure: inputs are the node's own heartbeat and link state, messages
// from peers and the clock; Ready returns what to send and deliver.
type Membership struct {
	cfg       MembershipConfig
	now       time.Duration
	live      base.NodeMap
	liveGen   [base.MaxNodes]uint64
	conn      base.NodeMap
	lost      base.NodeMap
	steady    bool
	health    Health
	committed View
	log       []View
	known     View
	// acceptor state for epoch promisedEpoch
	promisedEpoch uint64
	promised      uint64
	accepted      *Propose
	// leader state
	prop       *leaderProposal
	counter    uint64
	peers      [base.MaxNodes]peerState
	statusAt   time.Duration
	statusSent bool
	catchUpAt  time.Duration
	caughtUp   bool
	future     map[uint64]View
	fenced     bool
	// A node that stalls (paused, descheduled) finds, when it runs again,
	// statuses that waited for it: sent before or during its stall, they
	// say nothing of now. tickAt is the last tick; a tick or a status that
	// comes more than an interval after it finds this node stalled, and the
	// statuses received within an interval of that count as received at
	// tickAt (staleAt), before the stall.
	tickAt    time.Duration
	doubtTill time.Duration
	staleAt   time.Duration
	ready     MembershipReady
}

// NewMembership returns the membership state of cfg.Self, outside any view.
func NewMembership(cfg MembershipConfig) *Membership {
	return &Membership{cfg: cfg, future: map[uint64]View{}}
}

// Committed is the latest view this node committed (epoch 0: none).
func (m *Membership) Committed() View { return m.committed }

// Known is the latest view this node heard of (its own or a peer's).
func (m *Membership) Known() View { return m.known }

// Ready returns and clears what to do.
func (m *Membership) Ready() MembershipReady {
	r := m.ready
	m.ready = MembershipReady{}
	return r
}

func (m *Membership) note(format string, args ...any) {
	m.ready.Notes = append(m.ready.Notes, fmt.Sprintf(format, args...))
}

func (m *Membership) send(to base.NodeID, typ uint16, payload []byte) {
	m.ready.Sends = append(m.ready.Sends, Send{To: to, Type: typ, Payload: payload})
}

func (m *Membership) fresh(n base.NodeID) bool {
	p := &m.peers[n]
	return p.have && m.now-p.at <= 3*m.cfg.Interval
}

// PeerStatus returns the last Status received from n and whether it is fresh.
func (m *Membership) PeerStatus(n base.NodeID) (Status, bool) {
	if !n.Valid() || !m.peers[n].have {
		return Status{}, false
	}
	return m.peers[n].status, m.fresh(n)
}

// Reach is for EvictInput.Reach: what peer y says it is connected to.
func (m *Membership) Reach(y base.NodeID) (base.NodeMap, bool) {
	if !y.Valid() || !m.conn.Has(y) {
		return base.NodeMap{}, false
	}
	return m.peers[y].status.Connected, m.fresh(y)
}

// Leader is the node this node follows: the lowest-numbered node that
// heartbeats and that it is connected to (itself included), preferring the
// members of the latest view held by such a node (so that a node joining a
// running cluster follows its members, and a view whose members are all
// gone does not count). InvalidNode when this node does not heartbeat.
func (m *Membership) Leader() base.NodeID {
	if !m.live.Has(m.cfg.Self) {
		return base.InvalidNode
	}
	cand := m.live.Intersect(m.conn)
	cand.Add(m.cfg.Self)
	held := m.committed
	for _, n := range cand.Nodes() {
		if st, fresh := m.PeerStatus(n); n != m.cfg.Self && fresh && st.Committed.Epoch > held.Epoch {
			held = st.Committed
		}
	}
	if pool := cand.Intersect(held.Members); !pool.Empty() {
		return pool.Lowest()
	}
	return cand.Lowest()
}

// SetLive gives the nodes that heartbeat (any region), Self included while
// it heartbeats, and each one's generation. A node dead on disk, or killed
// and acknowledged, is not live.
func (m *Membership) SetLive(now time.Duration, live base.NodeMap, gens *[base.MaxNodes]uint64) {
	m.now = now
	wasLive := m.live.Has(m.cfg.Self)
	m.live = live
	m.liveGen = *gens
	if wasLive && !live.Has(m.cfg.Self) {
		m.leave()
	}
	m.step()
}

// leave: this node stopped heartbeating everywhere; it is out of the cluster.
func (m *Membership) leave() {
	if m.committed.Epoch != 0 {
		m.ready.Events = append(m.ready.Events, Event{Seq: m.committed.Seq, Epoch: m.committed.Epoch,
			Node: m.cfg.Self, Generation: m.committed.Gens[m.cfg.Self], Kind: Left})
		m.note("left the cluster at epoch %d: no longer heartbeating", m.committed.Epoch)
	}
	m.committed, m.log, m.prop, m.accepted = View{}, nil, nil, nil
	m.promisedEpoch, m.promised = 0, 0
	m.future = map[uint64]View{}
}

// SetLinks gives the peers connected now and those given up on.
func (m *Membership) SetLinks(now time.Duration, connected, lost base.NodeMap) {
	m.now = now
	m.conn = connected
	m.lost = lost
	m.step()
}

// SetSteady says whether this node's heartbeat has settled: it has seen
// every node that heartbeats (o2hb's steady iterations).
func (m *Membership) SetSteady(now time.Duration, steady bool) {
	m.now = now
	if steady != m.steady {
		m.statusSent = false // tell the peers at the next Tick
	}
	m.steady = steady
	m.step()
}

// SetHealth gives this node's disk health, reported to peers.
func (m *Membership) SetHealth(h Health) { m.health = h }

// Tick advances time: statuses, proposal resends, catch-up requests.
func (m *Membership) Tick(now time.Duration) {
	m.now = now
	if m.fenced {
		return
	}
	m.noteStall()
	m.tickAt = now
	if !m.statusSent || now-m.statusAt >= m.cfg.Interval {
		m.statusSent, m.statusAt = true, now
		st := Status{Committed: m.committed, Live: m.live, Connected: m.conn, Lost: m.lost,
			Steady: m.steady, Health: m.health}
		payload := st.Encode()
		for _, p := range m.conn.Nodes() {
			m.send(p, cnet.TypeNodeStatus, payload)
		}
	}
	m.step()
}

// Stop marks the node fenced: it sends nothing more.
func (m *Membership) Stop() { m.fenced = true; m.ready.Sends = nil }

// Receive handles a membership message from peer from.
func (m *Membership) Receive(now time.Duration, from base.NodeID, typ uint16, payload []byte) error {
	m.now = now
	if m.fenced || !from.Valid() || from == m.cfg.Self {
		return nil
	}
	var err error
	switch typ {
	case cnet.TypeViewPropose:
		var p Propose
		if p, err = DecodePropose(payload); err == nil {
			m.onPropose(from, p)
		}
	case cnet.TypeViewAccept:
		var a Accept
		if a, err = DecodeAccept(payload); err == nil {
			m.onAccept(from, a)
		}
	case cnet.TypeViewCommit:
		var v View
		if v, err = DecodeCommit(payload); err == nil {
			m.onCommit(from, v)
		}
	case cnet.TypeNodeStatus:
		var s Status
		if s, err = DecodeStatus(payload); err == nil {
			m.onStatus(from, s)
		}
	case cnet.TypeCatchUp:
		var after uint64
		if after, err = DecodeCatchUp(payload); err == nil {
			m.sendLog(from, after)
		}
	default:
		return fmt.Errorf("membership: message type %d is not a membership message", typ)
	}
	if err != nil {
		return fmt.Errorf("from node %d: %w", from, err)
	}
	m.step()
	return nil
}

func (m *Membership) heard(v View) {
	if v.Epoch > m.known.Epoch {
		m.known = v
	}
}

func (m *Membership) seeBallot(b uint64) {
	if c := b >> 8; c > m.counter {
		m.counter = c
	}
}

// noteStall notices that this node did not tick for more than an interval:
// it stalled, and what it receives next may have waited for it.
func (m *Membership) noteStall() {
	if m.tickAt != 0 && m.now-m.tickAt > m.cfg.Interval && m.doubtTill < m.now {
		m.staleAt, m.doubtTill = m.tickAt, m.now+m.cfg.Interval
	}
}

func (m *Membership) onStatus(from base.NodeID, s Status) {
	m.noteStall()
	at := m.now
	if m.now <= m.doubtTill {
		// Possibly sent before this node's stall (simulator seed 4925 of
		// the DLM runs: a node paused across the start of a partition
		// took its peers' last statuses, delivered on resuming, as fresh
		// and evicted a node of the majority).
		at = m.staleAt
	}
	m.peers[from] = peerState{status: s, at: at, have: true}
	m.heard(s.Committed)
	switch {
	case s.Committed.Epoch < m.committed.Epoch && m.Leader() == m.cfg.Self && m.committed.Has(from, m.liveGen[from]):
		// A member missed a commit: send it what it lacks (a node that
		// joined with the last view needs only that one).
		if s.Committed.Epoch == 0 {
			m.send(from, cnet.TypeViewCommit, EncodeCommit(m.committed))
		} else {
			m.sendLog(from, s.Committed.Epoch)
		}
	case s.Committed.Epoch > m.committed.Epoch && m.committed.Epoch > 0:
		m.requestCatchUp(from)
	}
}

func (m *Membership) requestCatchUp(from base.NodeID) {
	if m.caughtUp && m.now-m.catchUpAt < m.cfg.Interval {
		return
	}
	m.caughtUp, m.catchUpAt = true, m.now
	m.send(from, cnet.TypeCatchUp, EncodeCatchUp(m.committed.Epoch))
}

func (m *Membership) sendLog(to base.NodeID, after uint64) {
	for _, v := range m.log {
		if v.Epoch > after {
			m.send(to, cnet.TypeViewCommit, EncodeCommit(v))
		}
	}
}

func (m *Membership) onPropose(from base.NodeID, p Propose) {
	m.seeBallot(p.Ballot)
	reply := func(r RefusalReason, ballot uint64) {
		m.send(from, cnet.TypeViewAccept, Accept{Epoch: p.View.Epoch, Ballot: ballot, Reason: r, Committed: m.committed}.Encode())
	}
	e := p.View.Epoch
	switch {
	case from != m.Leader():
		reply(NotMyLeader, p.Ballot)
	case e <= m.committed.Epoch:
		reply(StaleEpoch, p.Ballot)
	case m.committed.Epoch > 0 && e > m.committed.Epoch+1:
		reply(FutureEpoch, p.Ballot)
		m.requestCatchUp(from)
	case !p.View.Has(m.cfg.Self, m.liveGen[m.cfg.Self]):
		reply(NotAMember, p.Ballot)
	case m.promisedEpoch == e && p.Ballot < m.promised:
		reply(LowerBallot, m.promised)
	default:
		m.promisedEpoch, m.promised = e, p.Ballot
		cp := p
		m.accepted = &cp
		reply(Accepted, p.Ballot)
	}
}

func (m *Membership) onAccept(from base.NodeID, a Accept) {
	m.heard(a.Committed)
	if a.Reason == LowerBallot {
		m.seeBallot(a.Ballot)
	}
	lp := m.prop
	if lp == nil || a.Epoch != lp.p.View.Epoch || (a.Reason != LowerBallot && a.Ballot != lp.p.Ballot) {
		return
	}
	switch a.Reason {
	case Accepted:
		lp.acks.Add(from)
		m.maybeCommit()
	case LowerBallot:
		// Someone promised a higher ballot: propose again, higher.
		m.prop = nil
		if lp.keep {
			m.propose(lp.p.View, true)
		}
	case StaleEpoch:
		// The peer is ahead of this node: catch up before leading.
		m.prop = nil
		if a.Committed.Epoch > m.committed.Epoch {
			m.requestCatchUp(from)
		}
	}
}

func (m *Membership) onCommit(from base.NodeID, v View) {
	m.heard(v)
	if !m.live.Has(from) {
		return
	}
	switch {
	case v.Epoch <= m.committed.Epoch:
		if v.Epoch == m.committed.Epoch && !v.SameMembers(&m.committed) {
			m.note("BUG: conflicting commits for epoch %d: [%v] and [%v] from node %d", v.Epoch, m.committed.Members, v.Members, from)
		}
		return
	case m.committed.Epoch == 0:
		if v.Has(m.cfg.Self, m.liveGen[m.cfg.Self]) && m.live.Has(m.cfg.Self) {
			m.apply(v)
		}
	case v.Epoch == m.committed.Epoch+1:
		m.apply(v)
	default:
		m.future[v.Epoch] = v
		m.requestCatchUp(from)
	}
	for {
		next, ok := m.future[m.committed.Epoch+1]
		if !ok || m.committed.Epoch == 0 {
			break
		}
		delete(m.future, next.Epoch)
		m.apply(next)
	}
	for e := range m.future {
		if e <= m.committed.Epoch {
			delete(m.future, e)
		}
	}
}

func (m *Membership) apply(v View) {
	old := m.committed
	if old.Epoch == 0 {
		for _, n := range v.Members.Nodes() {
			m.ready.Events = append(m.ready.Events, Event{Seq: v.Seq, Epoch: v.Epoch, Node: n, Generation: v.Gens[n],
				Kind: NodeUp, Members: v.Members, Initial: true})
		}
	} else {
		downs, ups := v.changes(&old)
		seq := v.Seq - uint64(downs.Len()+ups.Len())
		if seq != old.Seq {
			m.note("BUG: view %v does not follow %v: event numbers differ", v, old)
		}
		for _, n := range downs.Nodes() {
			seq++
			m.ready.Events = append(m.ready.Events, Event{Seq: seq, Epoch: v.Epoch, Node: n, Generation: old.Gens[n], Kind: NodeDown, Members: v.Members})
		}
		for _, n := range ups.Nodes() {
			seq++
			m.ready.Events = append(m.ready.Events, Event{Seq: seq, Epoch: v.Epoch, Node: n, Generation: v.Gens[n], Kind: NodeUp, Members: v.Members})
		}
	}
	m.committed = v
	m.log = append(m.log, v)
	if len(m.log) > logSize {
		m.log = m.log[len(m.log)-logSize:]
	}
	m.heard(v)
	if m.accepted != nil && m.accepted.View.Epoch <= v.Epoch {
		m.accepted = nil
	}
	if m.prop != nil && m.prop.p.View.Epoch <= v.Epoch {
		m.prop = nil
	}
	if !v.Has(m.cfg.Self, m.liveGen[m.cfg.Self]) && m.live.Has(m.cfg.Self) && m.ready.Fence == "" {
		m.ready.Fence = fmt.Sprintf("the cluster committed view %v without this node while it heartbeats: the other nodes consider it dead", v)
	}
}

// step runs the leader's part: propose the next view when the live set
// differs from the committed view and every new member is ready.
func (m *Membership) step() {
	if m.fenced || !m.steady || m.Leader() != m.cfg.Self {
		return
	}
	self := m.cfg.Self
	// A member that knows a later view than its own catches up first.
	if m.known.Epoch > m.committed.Epoch && m.committed.Epoch > 0 {
		return
	}
	// Paxos: content accepted from an earlier leader for the next epoch
	// may have been committed by it; propose that same content first.
	if m.accepted != nil && m.accepted.View.Epoch == m.committed.Epoch+1 && m.accepted.Ballot&0xff != uint64(self) {
		if m.prop == nil || !m.prop.keep {
			m.propose(m.accepted.View, true)
			return
		}
	}
	if m.prop != nil && m.prop.keep {
		m.resend()
		return
	}
	target := viewOf(m.live, &m.liveGen)
	baseView := m.committed
	if baseView.Epoch == 0 && m.known.Epoch > 0 {
		// Not a member of any view yet, yet leading: the view follows the
		// latest one known, so that its members (if any is left) apply it
		// as the next view, with the same event numbers.
		baseView = m.known
	}
	if target.SameMembers(&m.committed) && m.committed.Epoch != 0 {
		m.prop = nil
		return
	}
	if m.prop != nil && m.prop.p.View.SameMembers(&target) {
		m.resend()
		return
	}
	if !m.ready2(&target) {
		return
	}
	downs, ups := target.changes(&baseView)
	target.Epoch = baseView.Epoch + 1
	target.Seq = baseView.Seq + uint64(downs.Len()+ups.Len())
	m.propose(target, false)
}

// ready2 reports whether every node of target other than this one is
// connected and steady, and every incarnation new to the view reaches every
// other node of target (the view is a full mesh).
func (m *Membership) ready2(target *View) bool {
	self := m.cfg.Self
	others := target.Members
	others.Remove(self)
	for _, n := range others.Nodes() {
		if !m.conn.Has(n) || !m.fresh(n) || !m.peers[n].status.Steady {
			return false
		}
	}
	_, ups := target.changes(&m.committed)
	for _, n := range ups.Nodes() {
		if n == self {
			continue
		}
		want := target.Members
		want.Remove(n)
		want.Remove(self)
		if m.peers[n].status.Connected.Intersect(want) != want {
			return false
		}
		for _, k := range others.Nodes() {
			if k != n && !m.peers[k].status.Connected.Has(n) {
				return false
			}
		}
	}
	return true
}

func (m *Membership) propose(v View, keep bool) {
	m.counter++
	p := Propose{View: v, Ballot: m.counter<<8 | uint64(m.cfg.Self)}
	need := v.Members.Intersect(m.live)
	need.Remove(m.cfg.Self)
	m.prop = &leaderProposal{p: p, need: need, sentAt: m.now, keep: keep}
	m.promisedEpoch, m.promised = v.Epoch, p.Ballot
	cp := p
	m.accepted = &cp
	payload := p.Encode()
	for _, n := range need.Nodes() {
		m.send(n, cnet.TypeViewPropose, payload)
	}
	m.maybeCommit()
}

func (m *Membership) resend() {
	lp := m.prop
	// Members that died meanwhile need not accept.
	lp.need = lp.need.Intersect(m.live)
	if m.maybeCommit() {
		return
	}
	if m.now-lp.sentAt < m.cfg.Interval {
		return
	}
	lp.sentAt = m.now
	payload := lp.p.Encode()
	for _, n := range lp.need.Minus(lp.acks).Nodes() {
		m.send(n, cnet.TypeViewPropose, payload)
	}
}

func (m *Membership) maybeCommit() bool {
	lp := m.prop
	if lp == nil || lp.acks.Intersect(lp.need) != lp.need {
		return false
	}
	v := lp.p.View
	payload := EncodeCommit(v)
	m.apply(v)
	for _, n := range v.Members.Intersect(m.conn).Nodes() {
		if n != m.cfg.Self {
			m.send(n, cnet.TypeViewCommit, payload)
		}
	}
	m.note("committed view %v", v)
	return true
}

// Watchers are the nodes other than this one that may be counting this
// node's heartbeat: the members of its committed view, the nodes it sees
// heartbeating, the nodes any connected peer freshly reports heartbeating,
// and extra (the driver's slots not yet resolved). A node that joins reads
// the disk and counts missed beats before it is a member: a freeze that
// asked only the view's members would let such a joiner declare the frozen
// nodes dead and go on alone (simulator seed 1668 of the DLM runs).
func (m *Membership) Watchers(extra base.NodeMap) base.NodeMap {
	w := m.committed.Members.Union(m.live).Union(extra)
	for _, n := range m.conn.Nodes() {
		if st, fresh := m.PeerStatus(n); fresh {
			w = w.Union(st.Live)
		}
	}
	w.Remove(m.cfg.Self)
	return w
}

// PeersReadStalled reports whether there is another node that may count
// this node's heartbeat (Watchers) and every such node is connected and
// freshly reports that its own heartbeat reads are stalled: then no node
// can be counting this node's heartbeat as missing. With no such node it is
// false: a node alone cannot know who may start reading the disk.
func (m *Membership) PeersReadStalled(extra base.NodeMap) bool {
	w := m.Watchers(extra)
	if w.Empty() {
		return false
	}
	for _, n := range w.Nodes() {
		if !m.conn.Has(n) || !m.fresh(n) || !m.peers[n].status.Health.ReadStalled {
			return false
		}
	}
	return true
}

// PeersReachable reports whether there is another node that may count this
// node's heartbeat (Watchers) and every such node is connected and has sent
// a fresh status.
func (m *Membership) PeersReachable(extra base.NodeMap) bool {
	w := m.Watchers(extra)
	if w.Empty() {
		return false
	}
	for _, n := range w.Nodes() {
		if !m.conn.Has(n) || !m.fresh(n) {
			return false
		}
	}
	return true
}

// AnyPeerReading reports whether some connected peer freshly reports that
// its heartbeat reads work (it can count this node's missed beats).
func (m *Membership) AnyPeerReading() bool {
	for _, n := range m.conn.Nodes() {
		if m.fresh(n) && !m.peers[n].status.Health.ReadStalled {
			return true
		}
	}
	return false
}
