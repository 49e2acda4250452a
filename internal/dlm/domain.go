package dlm

import (
	"slices"

	"o2go/internal/base"
)

// domain is one lock domain as this node sees it: the view (epoch and
// members) in effect, the reconfiguration under way if any, and every
// resource this node has locks on or masters.
type domain struct {
	n    *Node
	name string
	key  uint32
	gate bool

	phase phase
	view  view
	// departed are members of the view (or of the reconfiguration under way)
	// that died: until a reconfiguration takes them out, nothing is sent to
	// or granted to their number, which a new incarnation may already use.
	departed base.NodeMap
	reco     *reconfig
	// lastReco is the identity of the last reconfiguration entered, so that a
	// stale freeze is told from a new one after local completion.
	lastEpoch uint64

	res       map[string]*resource
	nLocks    int // this node's locks in the domain
	nMastered int // resources with master state here
	// idle holds the resources no lock uses any more, oldest first: they
	// stay (master state and value block included) until idleCache newer
	// ones push them out, as o2dlm's purge list and fs/dlm's toss list keep
	// them, so that a resource locked again soon costs no allocation.
	idle     []idleRef
	idleHead int

	pending   []DeadNode // deaths the file system has not released yet
	released  []DeadNode // deaths released (kept to ignore late news of them)
	releasing []DeadNode // RecoveryDone sent to the registrar, not confirmed
	announced []DeadNode // EventRecovered sent

	deferredLocal  []*lock     // operations waiting for the reconfiguration to end
	deferredCancel []*lock     // cancels of sent operations, likewise
	deferredReq    []deferReq  // requests received as master while frozen
	stats          domainStats // for the debug views
}

type view struct {
	epoch   uint64
	members base.NodeMap
}

type deferReq struct {
	from base.NodeID
	req  lockReq
}

type domainStats struct {
	Deadlocks    uint64 // conversions refused as deadlocks (as master)
	Misdirected  uint64 // requests that reached a node not their master
	MigratedOut  uint64 // resource states sent to a new master
	MigratedIn   uint64 // resource states received
	Rebuilt      uint64 // resource states rebuilt from holders' reports
	Reconfigs    uint64 // reconfigurations completed here
	StaleReplies uint64
}

// idleCache is how many unused resources a domain keeps.
const idleCache = 4096

// resource is one lock resource: this node's locks on it (holder side) and,
// when this node masters it, the master state.
type resource struct {
	name  string
	locks []*lock
	inl   [1]*lock // backing of locks while it holds one lock
	m     *master
	idle  bool   // unused, kept in the domain's idle cache
	gen   uint32 // counts retirements: the idle cache's newest entry for it has this
	// masterEpoch/masterNode cache where requests go in the current view.
	masterEpoch uint64
	masterNode  base.NodeID
}

// lock is one of this node's locks, as its holder sees it.
type lock struct {
	id    LockID
	d     *domain
	r     *resource
	gr    Mode
	op    Op // pending operation, OpNone if none
	rq    Mode
	flags Flags
	// sent: the pending operation went to a master (else it waits in
	// deferredLocal); cancelSent: a cancel followed it.
	sent, cancelSent, timedOut bool
	writesLVB                  bool // the pending operation stores *wlvb
	wlvb                       *LVB
	lvbValid                   bool
	bast                       Mode // strongest mode a BAST asked for since the last grant (debug views)
	lvbSeq                     uint64
	lvb                        LVB
}

func newDomain(n *Node, name string, key uint32) *domain {
	return &domain{n: n, name: name, key: key, res: make(map[string]*resource)}
}

// alive reports whether x is a live node that is not a dead member of this
// domain waiting to be taken out.
func (d *domain) alive(x base.NodeID) bool {
	return d.n.live.Has(x) && !d.departed.Has(x)
}

// memberDied notes that x died while it may be a member here.
func (d *domain) memberDied(x base.NodeID) {
	in := d.view.members
	if d.reco != nil {
		in = in.Union(d.reco.parts).Union(d.reco.target)
	}
	if in.Has(x) {
		d.departed.Add(x)
	}
}

func (d *domain) currentEpoch() uint64 {
	if d.reco != nil {
		return d.reco.epoch
	}
	return d.lastEpoch
}

// resource returns resource name, made if needed, taken out of the idle
// cache if it was there.
func (d *domain) resource(name string) *resource {
	r := d.res[name]
	if r == nil {
		r = &resource{name: name, masterNode: base.InvalidNode}
		r.locks = r.inl[:0]
		d.res[name] = r
	}
	r.idle = false
	return r
}

// idleRef is an entry of the idle cache: it stands for r only if r was not
// used and retired again since (gen).
type idleRef struct {
	r   *resource
	gen uint32
}

// unused reports whether no lock uses r, here or at its master state here.
func (r *resource) unused() bool {
	return len(r.locks) == 0 && (r.m == nil || r.m.empty())
}

// dropIfUnused puts r in the idle cache once no lock uses it; the oldest
// idle resources beyond idleCache are forgotten.
func (d *domain) dropIfUnused(r *resource) {
	if r.idle || !r.unused() {
		return
	}
	r.idle = true
	r.gen++
	d.idle = append(d.idle, idleRef{r, r.gen})
	for len(d.idle)-d.idleHead > idleCache {
		d.forget(d.idle[d.idleHead])
		d.idle[d.idleHead] = idleRef{}
		d.idleHead++
	}
	if d.idleHead > len(d.idle)/2 && d.idleHead > 64 {
		d.idle = append(d.idle[:0], d.idle[d.idleHead:]...)
		d.idleHead = 0
	}
}

// forget drops an idle resource for good (nothing if it was used again, or
// retired again: a newer entry stands for it).
func (d *domain) forget(ref idleRef) {
	r := ref.r
	if r == nil || ref.gen != r.gen || !r.idle || !r.unused() || d.res[r.name] != r {
		return
	}
	if r.m != nil {
		r.m = nil
		d.nMastered--
	}
	r.idle = false
	delete(d.res, r.name)
}

// idleCount is the number of resources in the idle cache.
func (d *domain) idleCount() int {
	c := 0
	for _, r := range d.res {
		if r.idle {
			c++
		}
	}
	return c
}

// forgetIdle drops the whole idle cache.
func (d *domain) forgetIdle() {
	for _, ref := range d.idle[d.idleHead:] {
		d.forget(ref)
	}
	d.idle, d.idleHead = nil, 0
}

// masterOf returns the master of resource name in the current view: the
// member with the highest rendezvous score, so that a membership change
// moves only the resources of the nodes that came or went.
func (d *domain) masterOf(r *resource) base.NodeID {
	if r.masterEpoch != d.view.epoch || !r.masterNode.Valid() {
		r.masterNode = masterIn(r.name, d.view.members)
		r.masterEpoch = d.view.epoch
	}
	return r.masterNode
}

// masterIn is the rendezvous (highest random weight) choice of a master for
// name among members: FNV-1a of the name mixed with each node number.
func masterIn(name string, members base.NodeMap) base.NodeID {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	best, bestScore := base.InvalidNode, uint64(0)
	for _, x := range members.Nodes() {
		s := mix64(h ^ (uint64(x)+1)*0x9e3779b97f4a7c15)
		if !best.Valid() || s > bestScore {
			best, bestScore = x, s
		}
	}
	return best
}

// mix64 is the splitmix64 finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (d *domain) newLock(id LockID, name string) *lock {
	r := d.resource(name)
	l := d.n.allocLock()
	*l = lock{id: id, d: d, r: r, gr: ModeNone, rq: ModeNone, bast: ModeNone}
	r.locks = append(r.locks, l)
	d.n.locks[id] = l
	d.nLocks++
	return l
}

func (d *domain) removeLock(l *lock) {
	r := l.r
	if i := slices.Index(r.locks, l); i >= 0 {
		r.locks = slices.Delete(r.locks, i, i+1)
	}
	delete(d.n.locks, l.id)
	delete(d.n.deadlines, l.id)
	if i := slices.Index(d.deferredLocal, l); i >= 0 {
		d.deferredLocal = slices.Delete(d.deferredLocal, i, i+1)
	}
	if i := slices.Index(d.deferredCancel, l); i >= 0 {
		d.deferredCancel = slices.Delete(d.deferredCancel, i, i+1)
	}
	d.nLocks--
	d.dropIfUnused(r)
	d.n.freeLock(l)
}

// setWrite records whether the pending operation stores a value block: only
// when the caller gives one and the transition writes.
func (l *lock) setWrite(v *LVB, writes bool) {
	l.writesLVB = v != nil && writes
	if l.writesLVB {
		if l.wlvb == nil {
			l.wlvb = new(LVB)
		}
		*l.wlvb = *v
	}
}

// usable reports whether requests can go out now: a member, not frozen.
func (d *domain) usable() bool {
	return d.reco == nil && (d.phase == phaseJoined || d.phase == phaseLeaving)
}

// sendOp sends l's pending operation to the resource's master, or keeps it
// for after the reconfiguration under way (or about to start, when the
// master is dead).
func (d *domain) sendOp(l *lock) {
	if !d.usable() {
		d.deferredLocal = append(d.deferredLocal, l)
		return
	}
	m := d.masterOf(l.r)
	if !d.alive(m) {
		d.deferredLocal = append(d.deferredLocal, l)
		return
	}
	l.sent = true
	if m == d.n.self {
		req := lockReq{Epoch: d.view.epoch, Cookie: uint64(l.id), Op: l.op, Mode: l.rq, Flags: l.flags, Name: l.r.name}
		if l.writesLVB {
			req.HasLVB, req.LVB = true, *l.wlvb
		}
		_ = d.masterRequest(d.n.self, &req)
		return
	}
	req := &lockReq{Epoch: d.view.epoch, Cookie: uint64(l.id), Op: l.op, Mode: l.rq, Flags: l.flags, Name: l.r.name}
	if l.writesLVB {
		req.HasLVB, req.LVB = true, *l.wlvb
	}
	d.n.send(m, d.key, req)
}

// cancel cancels l's pending request: at once when it was never sent, else
// by asking the master.
func (d *domain) cancel(l *lock) {
	if !l.sent {
		op := l.op
		status := StatusCancelled
		if l.timedOut {
			status = StatusTimedOut
		}
		if i := slices.Index(d.deferredLocal, l); i >= 0 {
			d.deferredLocal = slices.Delete(d.deferredLocal, i, i+1)
		}
		l.op, l.rq, l.writesLVB = OpNone, ModeNone, false
		d.ast(l, op, status, false)
		if op == OpLock {
			d.removeLock(l)
		}
		return
	}
	if l.cancelSent || slices.Contains(d.deferredCancel, l) {
		return
	}
	m := d.masterOf(l.r)
	if !d.usable() || !d.alive(m) {
		// Sent after the reconfiguration, to whoever masters the resource
		// then (which has the request, moved or rebuilt).
		d.deferredCancel = append(d.deferredCancel, l)
		return
	}
	l.cancelSent = true
	req := lockReq{Epoch: d.view.epoch, Cookie: uint64(l.id), Op: OpCancel, Mode: ModeNone, Name: l.r.name}
	if m == d.n.self {
		_ = d.masterRequest(d.n.self, &req)
		return
	}
	d.n.send(m, d.key, &req)
}

func (d *domain) ast(l *lock, op Op, status Status, read bool) {
	a := AST{ID: l.id, Domain: d.name, Name: l.r.name, Op: op, Status: status, Mode: l.gr}
	if read {
		a.LVBRead, a.LVBValid, a.LVB = true, l.lvbValid, l.lvb
	}
	if op == OpUnlock || (op == OpLock && status != StatusOK) {
		a.Mode = ModeNone
	}
	d.n.rd.ASTs = append(d.n.rd.ASTs, a)
}

// holderReply applies a master's answer to one of this node's locks.
func (d *domain) holderReply(from base.NodeID, rep *lockReply) error {
	l := d.n.locks[LockID(rep.Cookie)]
	if l == nil || l.d != d {
		d.stats.StaleReplies++
		return nil
	}
	if rep.Op == OpCancel {
		l.cancelSent = false
		return nil
	}
	if rep.Op != l.op || !l.sent {
		d.stats.StaleReplies++
		return nil
	}
	op := l.op
	status := rep.Status
	if status == StatusCancelled && l.timedOut {
		status = StatusTimedOut
	}
	if l.writesLVB && status == StatusOK {
		l.lvb, l.lvbValid = *l.wlvb, true
		l.lvbSeq++
	}
	l.op, l.rq, l.sent, l.cancelSent, l.timedOut, l.writesLVB = OpNone, ModeNone, false, false, false, false
	delete(d.n.deadlines, l.id)
	if i := slices.Index(d.deferredCancel, l); i >= 0 {
		d.deferredCancel = slices.Delete(d.deferredCancel, i, i+1)
	}
	switch op {
	case OpLock, OpConvert:
		read := false
		if status == StatusOK {
			l.gr, l.bast = rep.Mode, ModeNone
			if rep.HasLVB {
				read = true
				l.lvb, l.lvbSeq, l.lvbValid = rep.LVB, rep.LVBSeq, rep.LVBValid
			}
		}
		d.ast(l, op, status, read)
		if op == OpLock && status != StatusOK {
			d.removeLock(l)
		}
	case OpUnlock:
		l.gr = ModeNone
		d.ast(l, op, status, false)
		d.removeLock(l)
	}
	return nil
}

// holderBast passes a blocking notification on.
func (d *domain) holderBast(from base.NodeID, b *bastMsg) error {
	l := d.n.locks[LockID(b.Cookie)]
	if l == nil || l.d != d || l.gr == ModeNone {
		return nil
	}
	if l.bast == ModeNone || Weaker(l.bast, b.Mode) {
		l.bast = b.Mode
	}
	d.n.rd.BASTs = append(d.n.rd.BASTs, BAST{ID: l.id, Domain: d.name, Name: l.r.name, Mode: b.Mode})
	return nil
}

// reply sends a master's answer to a holder (applied at once when the holder
// is this node).
func (d *domain) reply(owner base.NodeID, rep *lockReply) {
	if owner == d.n.self {
		_ = d.holderReply(owner, rep)
		return
	}
	if !d.alive(owner) {
		return
	}
	c := *rep // the caller's stays on its stack
	d.n.send(owner, d.key, &c)
}

func (d *domain) bast(owner base.NodeID, cookie uint64, mode Mode) {
	if owner == d.n.self {
		b := bastMsg{Cookie: cookie, Mode: mode}
		_ = d.holderBast(owner, &b)
		return
	}
	if !d.alive(owner) {
		return
	}
	d.n.send(owner, d.key, &bastMsg{Cookie: cookie, Mode: mode})
}

// resendRequests (re)sends what this node waits for from the registrar:
// its join or leave, and releases not yet confirmed.
func (d *domain) resendRequests() {
	n := d.n
	if !n.registrar.Valid() {
		return
	}
	switch d.phase {
	case phaseJoining:
		n.send(n.registrar, 0, &joinReq{Name: d.name, Gate: d.gate})
	case phaseLeaving:
		n.send(n.registrar, 0, &leaveReq{Key: d.key})
	}
	for _, dn := range d.releasing {
		n.send(n.registrar, 0, &releaseReq{Key: d.key, Dead: dn})
	}
}

func (d *domain) onJoinRefused(m *joinRefused) {
	if d.phase != phaseJoining {
		return
	}
	d.n.event(Event{Kind: EventJoinFailed, Domain: d.name, Detail: m.Reason})
	d.abandon()
}

// abandon forgets the domain after a refused join: pending requests end
// with StatusAborted.
func (d *domain) abandon() {
	for _, r := range d.sortedResources() {
		for _, l := range slices.Clone(r.locks) {
			op := l.op
			if op == OpNone {
				op = OpUnlock
			}
			l.gr = ModeNone
			d.ast(l, op, StatusAborted, false)
			d.removeLock(l)
		}
	}
	delete(d.n.domains, d.key)
	delete(d.n.byName, d.name)
}

func (d *domain) sortedResources() []*resource {
	rs := make([]*resource, 0, len(d.res))
	for _, r := range d.res {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *resource) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return rs
}

func (d *domain) onComplete(m *completeMsg) {
	if d.phase == phaseLeft && !m.Members.Has(d.n.self) && d.reco == nil && m.Epoch >= d.lastEpoch {
		delete(d.n.domains, d.key)
		delete(d.n.byName, d.name)
	}
}

// onReleased drops the locks of a dead node the file system has recovered.
func (d *domain) onReleased(dn DeadNode) {
	if !slices.Contains(d.released, dn) {
		d.released = append(d.released, dn)
	}
	if i := slices.Index(d.releasing, dn); i >= 0 {
		d.releasing = slices.Delete(d.releasing, i, i+1)
	}
	i := slices.Index(d.pending, dn)
	if i < 0 {
		return
	}
	d.pending = slices.Delete(d.pending, i, i+1)
	d.n.event(Event{Kind: EventReleased, Domain: d.name, Dead: dn})
	if d.reco != nil {
		return // the ghosts go when the reconfiguration completes
	}
	for _, r := range d.sortedResources() {
		if r.m != nil && r.m.dropGhosts(d.pending) {
			d.settle(r)
		}
	}
}

func containsDead(l []DeadNode, x DeadNode) bool { return slices.Contains(l, x) }

// report describes the domain for a new registrar.
func (d *domain) report() domainReport {
	r := domainReport{
		Name: d.name, Key: d.key, Gate: d.gate, Phase: d.phase,
		StableEpoch: d.view.epoch, Members: d.view.members,
		Registrar: base.InvalidNode,
		Pending:   slices.Clone(d.pending), Released: slices.Clone(d.released),
	}
	if d.reco != nil {
		r.InReco = true
		r.RecoEpoch = d.reco.epoch
		r.Registrar = d.reco.registrar
		r.Target = d.reco.target
		r.Parts = d.reco.parts
		r.Dead = slices.Clone(d.reco.dead)
	}
	return r
}
