package sim

import (
	"fmt"
	"sort"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/quorum"
	"o2go/internal/node/member"
)

// incarnation is one run of a node: its number and heartbeat generation.
type incarnation struct {
	node base.NodeID
	gen  uint64
}

func (i incarnation) String() string { return fmt.Sprintf("node %d (generation %016x)", i.node, i.gen) }

type incState struct {
	started   time.Duration
	fenced    bool
	fencedAt  time.Duration
	crashed   bool
	crashedAt time.Duration
	// member: the incarnation delivered a view holding itself, at
	// memberAt. From then on it writes file system data and, in the real
	// product, holds a slot (journal) in the slot map.
	member   bool
	memberAt time.Duration
}

// committedView is one epoch's view as the checker first saw it delivered:
// its members and when (the leader delivers a view as it commits it, before
// any other member can).
type committedView struct {
	members base.NodeMap
	at      time.Duration
}

// absence records that a node went on in a first view that lacks an
// incarnation holding a slot: the node may recover that slot.
type absence struct {
	at    time.Duration
	by    base.NodeID
	epoch uint64
}

// checker watches a run for the properties o2go promises:
//
//   - no write of a node reaches the disk after another node may have
//     started recovering it (see write for the property and its two
//     triggers: a survivor delivered its down event, or a node went on in a
//     first view without it while it held a slot), and no two groups write
//     the shared disk at once: a write lands while no group disjoint from
//     the writer's continues (frozen writers included);
//   - a node is never declared dead while it may still write: its self-fence
//     (the end of its write lease, quorum, eviction) comes strictly first; a
//     paused node must fence on resuming before it writes (the first rule
//     checks that);
//   - no two disjoint groups of nodes both continue;
//   - every node delivers the same events with the same numbers, and the
//     same view for each epoch;
//   - once the faults are over, the running nodes converge on one view of
//     all of them, and none is frozen.
type checker struct {
	c          *Cluster
	violations []string
	incs       map[incarnation]*incState
	recovery   map[incarnation]time.Duration // first down event delivered, by incarnation
	absent     map[incarnation]absence       // first view without it while it held a slot
	seqs       map[uint64]string
	views      map[uint64]committedView
}

func newChecker(c *Cluster) *checker {
	return &checker{c: c, incs: map[incarnation]*incState{}, recovery: map[incarnation]time.Duration{},
		absent: map[incarnation]absence{}, seqs: map[uint64]string{}, views: map[uint64]committedView{}}
}

// forgetCluster drops the event numbers and views of a cluster nobody
// continues in any more: a new one may start from epoch 1 again.
func (k *checker) forgetCluster() {
	k.seqs = map[uint64]string{}
	k.views = map[uint64]committedView{}
}

func (k *checker) violate(format string, args ...any) {
	v := fmt.Sprintf("at %v: ", k.c.now) + fmt.Sprintf(format, args...)
	k.violations = append(k.violations, v)
	k.c.logf("VIOLATION %s", v)
}

func (k *checker) started(n *simNode) {
	k.incs[incarnation{n.id, n.gen}] = &incState{started: k.c.now}
}

func (k *checker) crashed(n *simNode) {
	if s := k.incs[incarnation{n.id, n.gen}]; s != nil {
		s.crashed, s.crashedAt = true, k.c.now
	}
	k.c.dlmDied(n)
}

func (k *checker) fenced(n *simNode, f *member.Fence) {
	if s := k.incs[incarnation{n.id, n.gen}]; s != nil {
		s.fenced, s.fencedAt = true, k.c.now
	}
	k.c.dlmDied(n)
}

// current is node id's incarnation now (the last one, if it is down).
func (k *checker) current(id base.NodeID) incarnation {
	n := k.c.nodes[id]
	return incarnation{id, n.gen}
}

func (k *checker) event(n *simNode, e quorum.Event) {
	if e.Kind == quorum.Left {
		return
	}
	others := false
	for _, o := range k.c.nodes {
		if o != n && k.continuing(o) {
			others = true
		}
	}
	if !others && e.Initial {
		// Nobody else continues: a new cluster may start from epoch 1
		// again. Forget the old one.
		k.forgetCluster()
	}
	view, ok := k.views[e.Epoch]
	if ok && view.members != e.Members {
		k.violate("node %d committed epoch %d as [%v], another node as [%v]", n.id, e.Epoch, e.Members, view.members)
	}
	if !ok {
		view = committedView{members: e.Members, at: k.c.now}
		k.views[e.Epoch] = view
	}
	if s := k.incs[incarnation{n.id, n.gen}]; s != nil && !s.member && e.Members.Has(n.id) {
		s.member, s.memberAt = true, k.c.now
	}
	if e.Initial {
		k.firstView(n, e, view.at)
	}
	if !e.Initial {
		s := fmt.Sprintf("epoch %d node %d %v", e.Epoch, e.Node, e.Kind)
		if prev, ok := k.seqs[e.Seq]; ok && prev != s {
			k.violate("node %d delivered event %d as %q, another node as %q", n.id, e.Seq, s, prev)
		}
		k.seqs[e.Seq] = s
	}
	k.c.logf("node %d event %v", n.id, e)
	switch e.Kind {
	case quorum.NodeUp:
		n.upGen[e.Node] = e.Generation
	case quorum.NodeDown:
		if e.Node == n.id {
			k.violate("node %d delivered its own down event", n.id)
			return
		}
		if g, ok := n.upGen[e.Node]; !ok || g != e.Generation {
			k.violate("node %d delivered a down event for node %d (generation %016x) it never saw up", n.id, e.Node, e.Generation)
		}
		delete(n.upGen, e.Node)
		inc := incarnation{e.Node, e.Generation}
		if r, ok := k.recovery[inc]; !ok || k.c.now < r {
			k.recovery[inc] = k.c.now
		}
		// The victim must have lost the right to write first: fenced, or
		// its lease run out (the gate refuses its next write and fences
		// it); a paused victim is checked by the write rule when it wakes.
		victim := k.c.nodes[e.Node]
		if victim.gen == e.Generation && victim.state == stRunning && victim.m != nil {
			if _, leased := victim.m.LeaseExpiry(); leased && victim.m.Entitled(k.c.now) {
				k.violate("node %d declared %v dead while it may still write", n.id, inc)
			}
		}
	}
}

// firstView handles one event of node n's first view (Initial): n goes on
// with the cluster as that view has it, and the file system's mount
// recovers every slot held by a node outside it (recoverAbsentSlots in
// clustermount, the kernel's ocfs2_mark_dead_nodes): such a node is dead
// to n even though n never delivered its down event — it started while the
// node was already silent (frozen, paused, stalled or dead), or joined a
// cluster that never held it. Every incarnation that held a slot (member)
// before the view was first committed and is not in it is marked absent
// from now. The comparison with the view's first commit, not with now,
// keeps out a view that reached n late: a joiner that had accepted the
// next view already may apply the one before it after a newer incarnation
// joined with that next view.
func (k *checker) firstView(n *simNode, e quorum.Event, committed time.Duration) {
	incs := make([]incarnation, 0, len(k.incs))
	for inc := range k.incs {
		incs = append(incs, inc)
	}
	sort.Slice(incs, func(i, j int) bool {
		a, b := incs[i], incs[j]
		return a.node < b.node || a.node == b.node && k.incs[a].started < k.incs[b].started
	})
	for _, inc := range incs {
		s := k.incs[inc]
		if !s.member || s.memberAt >= committed || inc == (incarnation{n.id, n.gen}) {
			continue
		}
		inView := e.Members.Has(inc.node)
		if inView && inc.node == e.Node && inc.gen != e.Generation {
			inView = false // an older incarnation of a member
		}
		if inView {
			continue
		}
		if a, ok := k.absent[inc]; !ok || k.c.now < a.at {
			k.absent[inc] = absence{at: k.c.now, by: n.id, epoch: e.Epoch}
			k.c.logf("node %d goes on in [%v] (epoch %d) without %v, which held a slot: it may recover it", n.id, e.Members, e.Epoch, inc)
		}
	}
}

// evicting checks an eviction order of node n when it gives it: n must
// really be on the side that may continue — it reaches (the network is up
// both ways, the node runs or is paused) more than half of the nodes it
// sees heartbeating, or exactly half including the lowest. A node cut off
// from the majority that evicts the others before it noticed its own
// isolation would make the majority fence and leave the minority running.
// An order against a node that is already gone changes nothing and is not
// checked.
//
// The order rests on each peer's last Status, which may be up to three
// intervals old (fresh), and each was received at its own time: a peer
// counts on n's side when, at some instant of those three intervals, it
// ran and the network between it and n was up both ways. The instants
// that matter are the window's ends and the fault boundaries inside it
// (the network and the nodes change only there). Sampling a few fixed
// instants instead misses a link that was up only between them: with
// interval 750 ms (random seed 161), node 0 connected to node 2 in a
// 0.8 s gap between two partitions, got its status, and evicted node 1,
// cut off from both; the samples saw node 0 alone.
//
// A node alone in its committed view may evict, as o2quo would let it go
// on: the nodes that heartbeat count whether or not they are members yet,
// and the evicted node, reaching fewer, would fence itself by o2quo anyway;
// the order only makes it do so sooner.
func (k *checker) evicting(n *simNode, line string) {
	var target int
	if _, err := fmt.Sscanf(line, "evicting node %d", &target); err != nil {
		k.violate("node %d: unreadable eviction note %q", n.id, line)
		return
	}
	if t := k.c.nodes[target]; t.state != stRunning && t.state != stPaused {
		return
	}
	live := n.m.Live()
	lag := 3 * k.c.opt.Timeouts.HeartbeatInterval
	from := k.c.now - lag
	instants := []time.Duration{k.c.now, from}
	for _, f := range k.c.faults {
		for _, at := range []time.Duration{f.At, f.At + f.Dur} {
			if at > from && at < k.c.now {
				instants = append(instants, at)
			}
		}
	}
	var side base.NodeMap
	for _, x := range live.Nodes() {
		if x == n.id {
			side.Add(x)
			continue
		}
		for _, at := range instants {
			if k.pathUpAt(n.id, x, at) && k.upAt(x, at) {
				side.Add(x)
				break
			}
		}
	}
	if h, l := side.Len(), live.Len(); 2*h > l || (2*h == l && side.Has(live.Lowest())) {
		return
	}
	k.violate("node %d evicts node %d but reaches only [%v] of the heartbeating [%v]: %s", n.id, target, side, live, line)
}

// upAt reports whether node x ran (or was paused) at time at: it does now,
// or its last incarnation crashed or fenced after at.
func (k *checker) upAt(x base.NodeID, at time.Duration) bool {
	if o := k.c.nodes[x]; o.state == stRunning || o.state == stPaused {
		return true
	}
	s := k.incs[k.current(x)]
	return s != nil && s.started <= at && ((s.crashed && s.crashedAt > at) || (s.fenced && s.fencedAt > at))
}

// pathUpAt reports whether the network between a and b was up both ways at
// time at, from the run's partitions and cuts.
func (k *checker) pathUpAt(a, b base.NodeID, at time.Duration) bool {
	for _, f := range k.c.faults {
		if at < f.At || at >= f.At+f.Dur {
			continue
		}
		switch f.Kind {
		case Partition:
			in := base.NodeMapOf(f.Nodes...)
			if in.Has(a) != in.Has(b) {
				return false
			}
		case Cut, CutOneWay:
			if (f.Nodes[0] == a && f.Nodes[1] == b) || (f.Nodes[0] == b && f.Nodes[1] == a) {
				return false
			}
		}
	}
	return true
}

// issuedWrite is a write on its way to the disk: whose, what, when it was
// issued, and the view the writer was in then.
type issuedWrite struct {
	inc    incarnation
	kind   writeKind
	issued time.Duration
	view   quorum.View
}

// issue checks a write as node n issues it and returns what write needs
// when it lands. A frozen node writes nothing but its heartbeat (the
// premise of continuing's freeze rule).
func (k *checker) issue(n *simNode, kind writeKind) issuedWrite {
	if kind == writeData && n.m.Frozen() {
		k.violate("node %d issued a data write while frozen", n.id)
	}
	return issuedWrite{inc: incarnation{n.id, n.gen}, kind: kind, issued: k.c.now, view: n.m.View()}
}

// write checks a write landing on the shared disk. The property (issue 5:
// survivors replay a dead node's journal; two groups never both write the
// shared disk) is: once another node may have started recovering an
// incarnation — reading its journal, replaying it, reusing its slot and
// its space — nothing that incarnation wrote may reach the disk after, and
// at no instant do two groups that do not know of each other write it.
// Another node may start recovering incarnation X in two ways:
//
//   - it delivers X's down event (a survivor; recovery). From then on no
//     write of X lands, its heartbeat included: a heartbeat seen after X was
//     declared dead would bring it back to life in the survivors' eyes;
//   - it goes on in a first view (Initial) without X while X held a slot
//     (absent, see firstView): a node that started while X was silent —
//     frozen with the rest of its cluster, paused, or stalled — and went on
//     alone never delivers X's down event, yet its mount recovers X's slot.
//     From then on no data write of X lands. X's heartbeat writes are not
//     held to it: a frozen node keeps writing its own heartbeat sector,
//     since a heartbeat write that completes is what ends the freeze, and
//     its first read after that shows it the new node's slot and fences it
//     before it writes anything else (member's heartbeatWhileFrozen); that
//     sector belongs to no file system structure.
//
// Besides, a data write must not land while a node of a group disjoint
// from the writer's view (at issue) continues: whatever the writer wrote
// for its group, the other group does not know of it. This also covers a
// writer that no longer counts as continuing — frozen, paused, fenced with
// writes in flight — whose writes still land.
//
// Fencing acknowledgements are the one write a fenced node makes, after
// the latch, into its own kill block; they are not checked.
func (k *checker) write(w issuedWrite, landed time.Duration) {
	inc, kind, issued := w.inc, w.kind, w.issued
	if kind == writeAck {
		return
	}
	if s := k.incs[inc]; s != nil && s.fenced && issued > s.fencedAt {
		k.violate("%v issued a %v write at %v after it fenced at %v", inc, kind, issued, s.fencedAt)
	}
	if r, ok := k.recovery[inc]; ok && landed >= r {
		k.violate("%v's %v write (issued at %v) landed at %v, after a survivor started recovering it at %v",
			inc, kind, issued, landed, r)
	}
	if kind != writeData {
		return
	}
	if a, ok := k.absent[inc]; ok && landed >= a.at {
		k.violate("%v's data write (issued at %v) landed at %v, after node %d went on without it (first view, epoch %d) at %v and may have recovered its slot",
			inc, issued, landed, a.by, a.epoch, a.at)
	}
	for _, b := range k.c.nodes {
		if b.id == inc.node || !k.continuing(b) {
			continue
		}
		if vb := b.m.View(); vb.Members.Intersect(w.view.Members).Empty() {
			k.violate("%v's data write (issued at %v in [%v], epoch %d) landed at %v while node %d continues in the disjoint [%v] (epoch %d)",
				inc, issued, w.view.Members, w.view.Epoch, landed, b.id, vb.Members, vb.Epoch)
		}
	}
}

// continuing: the node runs (or is paused) in a view, with its write
// lease (a node whose lease ran out fences at its next step, before it
// writes: it can no longer act as a member).
//
// A frozen node does not count as continuing, although it keeps its view
// and, confirmed by its peers, its right to resume. Counting it would flag
// a state the issue asks for: the running cluster stalls on the disk and
// freezes, and a node that starts meanwhile with a working path sees nobody
// heartbeat and goes on alone (o2quo lets a node alone go on); the frozen
// nodes hold a view disjoint from its one. That state is safe because of
// what the checker does verify instead, at each point where a frozen node
// could touch the disk:
//
//   - while frozen it issues no data write (issue);
//   - its writes still in flight when it froze are checked when they land
//     (write): not after a survivor delivered its down event, not after a
//     node went on in a first view without it (absent), not while a group
//     disjoint from its view continues;
//   - it is not declared dead while still entitled (event: a frozen node
//     its peers confirm is Entitled);
//   - when it leaves the freeze, no group disjoint from its view may be
//     continuing (thawed), from then on it counts here again (periodic),
//     and its data writes meet the absent rule: a group that went on
//     without it and is gone again (crashed, stopped cleanly) has still
//     recovered its slot;
//   - it does not stay frozen once the faults are over (final).
//
// So "frozen" only suspends the disjoint-groups rule for a node that
// cannot write; every way its writes could meet another group's is checked
// where it happens. A paused node is judged by its lease alone: nobody
// confirms a freeze to a stopped node, so it must fence on waking, frozen
// or not.
func (k *checker) continuing(n *simNode) bool {
	if (n.state != stRunning && n.state != stPaused) || n.m == nil || !n.m.View().Members.Has(n.id) {
		return false
	}
	// A node whose lease ran out is entitled to go on only while frozen
	// with its peers' confirmation (see member.Entitled); a paused one must
	// fence on waking, frozen or not: nobody confirms to a stopped node.
	if n.state == stPaused {
		exp, ok := n.m.LeaseExpiry()
		return !ok || k.c.now < exp
	}
	// A frozen node writes nothing until it leaves the freeze (see above).
	if n.m.Frozen() {
		return false
	}
	return n.m.Entitled(k.c.now)
}

// thawed: node n left the freeze and goes on in its view; no group
// disjoint from that view may be going on (issue 5: a node that started
// while n was frozen went on alone). A disjoint group that is itself frozen
// is judged when it thaws in turn; one that went on and is gone again is
// the absent rule's (write).
func (k *checker) thawed(n *simNode) {
	v := n.m.View()
	if !v.Members.Has(n.id) {
		return
	}
	for _, b := range k.c.nodes {
		if b.id == n.id || !k.continuing(b) {
			continue
		}
		if vb := b.m.View(); vb.Members.Intersect(v.Members).Empty() {
			k.violate("node %d resumes after a freeze in [%v] (epoch %d) while node %d continues in [%v] (epoch %d)",
				n.id, v.Members, v.Epoch, b.id, vb.Members, vb.Epoch)
		}
	}
}

// periodic runs every simulated second: no two continuing nodes hold
// disjoint views. When nobody continues — every node down, fenced, or
// frozen — a new cluster may start from epoch 1, so the old one's event
// numbers and views are forgotten; frozen nodes of the old one are held to
// thawed and write when they come back.
func (k *checker) periodic() {
	anyView := false
	for _, a := range k.c.nodes {
		if !k.continuing(a) {
			continue
		}
		anyView = true
		for _, b := range k.c.nodes {
			if b.id <= a.id || !k.continuing(b) {
				continue
			}
			va, vb := a.m.View(), b.m.View()
			if va.Members.Intersect(vb.Members).Empty() {
				k.violate("two disjoint groups continue: node %d in [%v] (epoch %d), node %d in [%v] (epoch %d)",
					a.id, va.Members, va.Epoch, b.id, vb.Members, vb.Epoch)
			}
		}
	}
	if !anyView {
		// A new cluster may start from epoch 1 again: forget the old one.
		k.forgetCluster()
	}
}

// final checks convergence once the faults are over.
func (k *checker) final() {
	c := k.c
	lastFault := time.Duration(0)
	for _, f := range c.faults {
		if e := f.At + f.Dur; e > lastFault {
			lastFault = e
		}
	}
	t := c.opt.Timeouts
	quiet := t.DeadTime() + t.IdleTimeout + time.Duration(t.HeartbeatThreshold+2)*t.HeartbeatInterval + 20*t.HeartbeatInterval
	if c.now-lastFault < quiet {
		return // not enough quiet time to demand convergence
	}
	var running base.NodeMap
	var settled []*simNode
	for _, n := range c.nodes {
		if n.state != stRunning {
			continue
		}
		running.Add(n.id)
		if c.now-n.startedAt >= t.DeadTime()+20*t.HeartbeatInterval {
			settled = append(settled, n)
		}
	}
	for _, n := range settled {
		v := n.m.View()
		if n.m.Frozen() {
			k.violate("node %d is still frozen at the end", n.id)
		}
		for _, o := range settled {
			if !v.Members.Has(o.id) {
				k.violate("no convergence: node %d's view [%v] (epoch %d) lacks running node %d; running [%v]",
					n.id, v.Members, v.Epoch, o.id, running)
			}
		}
		if v.Members.Minus(running) != (base.NodeMap{}) {
			k.violate("no convergence: node %d's view [%v] holds nodes that are not running [%v]", n.id, v.Members, running)
		}
	}
	c.dlmFinal(settled)
}
