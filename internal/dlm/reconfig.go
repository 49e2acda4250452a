package dlm

import (
	"fmt"
	"slices"

	"o2go/internal/base"
)

// Reconfiguration is how a domain changes members, and how it recovers from
// a death. The registrar sends every participant (old members still alive,
// joiners, leavers) a freeze naming the new epoch, the target members, the
// participants, and the deaths since the last completed view. Then each
// participant:
//
//  1. stops sending requests (new ones wait) and, as a master, stops
//     answering: requests that arrive are only recorded (releases and
//     lowerings take effect with their answer owed; new locks and raises
//     wait to be evaluated);
//  2. sends a marker to every other participant; the connections are FIFO,
//     so once a participant has every marker, no request of the old view can
//     still reach it;
//  3. sends each resource state it masters to the resource's master in the
//     target view (rendezvous hashing moves only the states of nodes that
//     came or went), and, when someone died, reports each of its own locks to
//     the new master, which rebuilds from the reports the states that died
//     with their master;
//  4. sends a transfer end to every other participant; once it has every
//     transfer end it has every state it will master, and it completes:
//     rebuilt states are made (value block from a lock that proves it
//     current, else invalid), dead nodes' locks become ghosts that keep
//     excluding what they excluded until the file system releases them
//     (RecoveryDone) — or go at once in a domain without the gate —, the value
//     block is invalidated where a dead node held PW or EX, and recorded
//     requests are evaluated, answers sent, waiting locks granted;
//  5. tells the registrar it is done. The registrar completes the epoch when
//     every participant is done; a death during any of this restarts it with
//     a new epoch and the death added.
type reconfig struct {
	epoch     uint64
	registrar base.NodeID
	prev      base.NodeMap
	target    base.NodeMap
	parts     base.NodeMap
	dead      []DeadNode
	pending   []DeadNode
	gate      bool

	markers     base.NodeMap // markers received
	ends        base.NodeMap // transfer ends received
	transferred bool         // our own transfers are sent
	reports     map[string][]ownedReport
}

type ownedReport struct {
	owner base.NodeID
	l     reportedLock
}

func (d *domain) onFreeze(from base.NodeID, m *freezeMsg) error {
	n := d.n
	if !m.Participants.Has(n.self) || m.Epoch <= d.currentEpoch() {
		return nil
	}
	if m.Name != d.name {
		return &MessageError{Kind: "freeze", From: from, Msg: fmt.Sprintf("names domain %q, key %#x is %q here", m.Name, d.key, d.name)}
	}
	d.reco = &reconfig{
		epoch: m.Epoch, registrar: from, prev: m.Prev, target: m.Target, parts: m.Participants,
		dead: slices.Clone(m.Dead), pending: slices.Clone(m.Pending), gate: m.Gate,
		reports: make(map[string][]ownedReport),
	}
	d.lastEpoch = m.Epoch
	d.gate = m.Gate
	for _, p := range m.Participants.Nodes() {
		if p != n.self {
			n.send(p, d.key, &markerMsg{Epoch: m.Epoch, Registrar: from})
		}
	}
	d.tryTransfer()
	return nil
}

func (d *domain) onMarker(from base.NodeID, m *markerMsg) {
	r := d.reco
	if r == nil || m.Epoch != r.epoch || m.Registrar != r.registrar {
		return
	}
	r.markers.Add(from)
	d.tryTransfer()
}

func (d *domain) onTransferEnd(from base.NodeID, m *transferEnd) {
	r := d.reco
	if r == nil || m.Epoch != r.epoch || m.Registrar != r.registrar {
		return
	}
	r.ends.Add(from)
	d.tryComplete()
}

func (d *domain) others() base.NodeMap {
	p := d.reco.parts
	p.Remove(d.n.self)
	return p
}

func (d *domain) tryTransfer() {
	r := d.reco
	if r == nil || r.transferred || !d.others().Minus(r.markers).Empty() {
		return
	}
	d.transferStep()
	r.transferred = true
	d.tryComplete()
}

func (d *domain) tryComplete() {
	r := d.reco
	if r == nil || !r.transferred || !d.others().Minus(r.ends).Empty() {
		return
	}
	d.complete()
}

// outbox batches transfer and report messages per destination, within the
// payload limit.
type outbox struct {
	d     *domain
	epoch uint64
	tr    map[base.NodeID]*transferMsg
	trLen map[base.NodeID]int
	rp    map[base.NodeID]*reportMsg
	rpLen map[base.NodeID]int
	order []base.NodeID
}

func (o *outbox) touch(to base.NodeID) {
	if !slices.Contains(o.order, to) {
		o.order = append(o.order, to)
	}
}

func resStateLen(s *resState) int {
	return 1 + len(s.Name) + 1 + 8 + LVBLen + 4 + 14*len(s.Entries) + 4 + 13*len(s.Fresh) + 2 + 10*len(s.Ghosts) + 4 + 13*len(s.Owed)
}

func (o *outbox) addState(to base.NodeID, s resState) {
	o.touch(to)
	l := resStateLen(&s)
	if t := o.tr[to]; t != nil && o.trLen[to]+l > o.d.n.maxPayload {
		o.d.n.send(to, o.d.key, t)
		o.tr[to] = nil
	}
	if o.tr[to] == nil {
		o.tr[to] = &transferMsg{Epoch: o.epoch}
		o.trLen[to] = envelopeLen + 8 + 4 // envelope, epoch, count
	}
	o.tr[to].Resources = append(o.tr[to].Resources, s)
	o.trLen[to] += l
}

func (o *outbox) addReport(to base.NodeID, rl reportedLock) {
	o.touch(to)
	l := 1 + len(rl.Name) + 8 + 3 + 2 + 3 + 8 + LVBLen
	if t := o.rp[to]; t != nil && o.rpLen[to]+l > o.d.n.maxPayload {
		o.d.n.send(to, o.d.key, t)
		o.rp[to] = nil
	}
	if o.rp[to] == nil {
		o.rp[to] = &reportMsg{Epoch: o.epoch}
		o.rpLen[to] = envelopeLen + 8 + 4
	}
	o.rp[to].Locks = append(o.rp[to].Locks, rl)
	o.rpLen[to] += l
}

func (o *outbox) flush() {
	for _, to := range o.order {
		if t := o.tr[to]; t != nil {
			o.d.n.send(to, o.d.key, t)
		}
		if t := o.rp[to]; t != nil {
			o.d.n.send(to, o.d.key, t)
		}
	}
}

func reportOf(l *lock) reportedLock {
	rl := reportedLock{
		Name: l.r.name, Cookie: uint64(l.id), Gr: l.gr, Op: OpNone, Rq: ModeNone, Flags: l.flags,
		LVBValid: l.lvbValid, LVBSeq: l.lvbSeq, LVB: l.lvb,
	}
	if l.op != OpNone && l.sent {
		rl.Op, rl.Rq, rl.CancelSent, rl.WritesLVB = l.op, l.rq, l.cancelSent, l.writesLVB
		if l.writesLVB {
			// The value it stores (once applied it is the current one).
			rl.LVB, rl.LVBSeq, rl.LVBValid = *l.wlvb, l.lvbSeq+1, true
		}
	}
	return rl
}

// transferStep runs once every participant's marker is in: record the
// requests that arrived meanwhile, move master states to their new masters,
// report our locks if someone died, and say so.
func (d *domain) transferStep() {
	n := d.n
	r := d.reco
	var keep []deferReq
	for _, dr := range d.deferredReq {
		if dr.req.Epoch >= r.epoch {
			keep = append(keep, dr)
			continue
		}
		res := d.res[dr.req.Name]
		if res == nil || res.m == nil {
			// No state here. Without a death none was lost, so the resource
			// is new; after a death its holders report it instead.
			if len(r.dead) > 0 || dr.req.Op != OpLock {
				continue
			}
			res = d.resource(dr.req.Name)
			res.m = d.newMaster()
		}
		res.idle = false
		d.applyFrozen(res, dr.from, &dr.req)
		d.dropIfUnused(res)
	}
	d.deferredReq = keep

	o := &outbox{d: d, epoch: r.epoch,
		tr: map[base.NodeID]*transferMsg{}, trLen: map[base.NodeID]int{},
		rp: map[base.NodeID]*reportMsg{}, rpLen: map[base.NodeID]int{}}
	resources := d.sortedResources()
	for _, res := range resources {
		if res.m == nil {
			continue
		}
		to := masterIn(res.name, r.target)
		if to == n.self {
			continue
		}
		// An unused state (an idle resource's) is not worth moving: the new
		// master makes it again if needed.
		if to.Valid() && !(res.m.empty() && len(res.m.ghosts) == 0) {
			o.addState(to, res.m.state(res.name))
			d.stats.MigratedOut++
		}
		d.dropMaster(res)
	}
	if len(r.dead) > 0 {
		for _, res := range resources {
			to := masterIn(res.name, r.target)
			if !to.Valid() || (to == n.self && res.m != nil) {
				continue
			}
			for _, l := range res.locks {
				if l.gr == ModeNone && !(l.op != OpNone && l.sent) {
					continue
				}
				rl := reportOf(l)
				if to == n.self {
					r.reports[res.name] = append(r.reports[res.name], ownedReport{owner: n.self, l: rl})
					continue
				}
				o.addReport(to, rl)
			}
		}
	}
	o.flush()
	for _, p := range d.others().Nodes() {
		n.send(p, d.key, &transferEnd{Epoch: r.epoch, Registrar: r.registrar})
	}
}

func (d *domain) onTransfer(from base.NodeID, m *transferMsg) error {
	r := d.reco
	if r == nil || m.Epoch > r.epoch || d.phase == phaseLeft {
		return &MessageError{Kind: "transfer", From: from, Msg: fmt.Sprintf("epoch %d, not expected in %s", m.Epoch, d.name)}
	}
	ms := make([]*master, len(m.Resources))
	for i := range m.Resources {
		s := &m.Resources[i]
		mm, err := masterFromState(s)
		if err != nil {
			err.(*MessageError).From = from
			return err
		}
		if res := d.res[s.Name]; res != nil && res.m != nil {
			return &MessageError{Kind: "transfer", From: from, Msg: fmt.Sprintf("resource %q is mastered here already", s.Name)}
		}
		for j := 0; j < i; j++ {
			if m.Resources[j].Name == s.Name {
				return &MessageError{Kind: "transfer", From: from, Msg: fmt.Sprintf("resource %q twice", s.Name)}
			}
		}
		ms[i] = mm
	}
	for i := range m.Resources {
		res := d.resource(m.Resources[i].Name)
		res.m = ms[i]
		d.nMastered++
		d.stats.MigratedIn++
		d.dropIfUnused(res) // a state with only ghosts left is idle
	}
	return nil
}

func (d *domain) onReport(from base.NodeID, m *reportMsg) error {
	r := d.reco
	if r == nil || m.Epoch != r.epoch {
		return nil // a report for an epoch that was restarted: sent again
	}
	for i := range m.Locks {
		l := &m.Locks[i]
		ok := true
		switch l.Op {
		case OpNone:
			ok = l.Gr != ModeNone && l.Rq == ModeNone
		case OpLock:
			ok = l.Gr == ModeNone && l.Rq != ModeNone
		case OpConvert:
			ok = l.Gr != ModeNone && l.Rq != ModeNone
		case OpUnlock:
			ok = l.Gr != ModeNone && l.Rq == ModeNone
		default:
			ok = false
		}
		if !ok {
			return &MessageError{Kind: "report", From: from, Msg: fmt.Sprintf("lock %d:%d on %q: %s with modes %s/%s", from, l.Cookie, l.Name, l.Op, l.Gr, l.Rq)}
		}
	}
	for _, l := range m.Locks {
		r.reports[l.Name] = append(r.reports[l.Name], ownedReport{owner: from, l: l})
	}
	return nil
}

// complete ends the reconfiguration here: every state this node will master
// is in.
func (d *domain) complete() {
	n := d.n
	r := d.reco
	d.reco = nil

	newPending := slices.Clone(r.pending)
	if r.gate {
		for _, x := range r.dead {
			if !containsDead(newPending, x) {
				newPending = append(newPending, x)
			}
		}
	}
	newPending = slices.DeleteFunc(newPending, func(x DeadNode) bool { return containsDead(d.released, x) })
	sortDead(newPending)

	names := make([]string, 0, len(r.reports))
	for name := range r.reports {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if res := d.res[name]; res != nil && res.m != nil {
			d.reconcile(res, r.reports[name])
			continue
		}
		d.rebuild(name, r, r.reports[name], newPending)
	}
	for _, res := range d.sortedResources() {
		if res.m != nil {
			d.applyDeaths(res, r, newPending)
		}
	}
	d.pending = newPending
	d.view = view{epoch: r.epoch, members: r.target}
	d.departed = d.departed.Intersect(r.target)
	d.stats.Reconfigs++

	switch {
	case d.phase == phaseJoining && r.target.Has(n.self):
		d.phase = phaseJoined
		n.event(Event{Kind: EventJoined, Domain: d.name})
	case (d.phase == phaseLeaving || d.phase == phaseJoined) && !r.target.Has(n.self):
		d.phase = phaseLeft
		for _, res := range d.sortedResources() {
			for _, l := range slices.Clone(res.locks) {
				op := l.op
				if op == OpNone {
					op = OpUnlock
				}
				l.gr = ModeNone
				d.ast(l, op, StatusAborted, false)
				d.removeLock(l)
			}
			d.dropMaster(res)
		}
		d.forgetIdle()
		d.deferredReq, d.deferredLocal, d.deferredCancel = nil, nil, nil
		n.event(Event{Kind: EventLeft, Domain: d.name})
	}
	// The file system may recover each dead node now: those of this
	// reconfiguration, and, for a node that just joined, those still
	// pending from before (the members that were told may die before they
	// release them; every member's file system must be able to).
	announce := slices.Clone(r.dead)
	if d.phase == phaseJoined {
		for _, x := range d.pending {
			if !containsDead(announce, x) {
				announce = append(announce, x)
			}
		}
	}
	for _, x := range announce {
		if !containsDead(d.announced, x) {
			d.announced = append(d.announced, x)
			n.event(Event{Kind: EventRecovered, Domain: d.name, Dead: x})
		}
	}
	if r.registrar == n.registrar {
		n.send(n.registrar, 0, &doneMsg{Key: d.key, Epoch: r.epoch})
	}
	if d.phase == phaseLeft {
		return
	}

	for _, res := range d.sortedResources() {
		if res.m != nil {
			d.resume(res)
		}
	}
	reqs := d.deferredReq
	d.deferredReq = nil
	for _, dr := range reqs {
		if dr.req.Epoch != d.view.epoch {
			d.stats.Misdirected++
			continue
		}
		_ = d.masterRequest(dr.from, &dr.req)
	}
	locals := d.deferredLocal
	d.deferredLocal = nil
	for _, l := range locals {
		if n.locks[l.id] == l && l.op != OpNone && !l.sent {
			d.sendOp(l)
		}
	}
	cancels := d.deferredCancel
	d.deferredCancel = nil
	for _, l := range cancels {
		if n.locks[l.id] == l && (l.op == OpLock || l.op == OpConvert) {
			d.cancel(l)
		}
	}
}

// rebuild makes the master state of a resource whose master died, from what
// the surviving holders reported.
//
// A release a holder sent (unlock, or conversion to a weaker mode) is taken
// as done: the dead master may have applied it and granted others on the
// strength of it, and applying it again is harmless (its answer is owed).
// Only then are granted modes, and the value block, judged.
func (d *domain) rebuild(name string, r *reconfig, reps []ownedReport, pending []DeadNode) {
	slices.SortFunc(reps, func(a, b ownedReport) int {
		if a.owner != b.owner {
			return int(a.owner) - int(b.owner)
		}
		switch {
		case a.l.Cookie < b.l.Cookie:
			return -1
		case a.l.Cookie > b.l.Cookie:
			return 1
		}
		return 0
	})
	m := &master{}
	m.q[qGranted] = m.inl[:0]
	// Effective granted modes. A release a holder sent (unlock, lowering,
	// keeping) is taken as done; a raise, as not done (what the dead master
	// granted others since is compatible with the raised mode, so with the
	// lower one too; the raise is evaluated again). A sideways conversion
	// (PR<->CW) is ambiguous: the dead master may have granted others a mode
	// compatible with the new mode only, or with the old one only; it is
	// decided below, by what the others hold.
	const ambiguous = Mode(-2)
	eff := make([]Mode, len(reps))
	for i, rep := range reps {
		l := &rep.l
		eff[i] = l.Gr
		switch {
		case l.Op == OpUnlock:
			eff[i] = ModeNone
		case l.Op == OpConvert && weakerOrEqual(l.Rq, l.Gr):
			eff[i] = l.Rq
		case l.Op == OpConvert && !Weaker(l.Gr, l.Rq):
			eff[i] = ambiguous
		}
	}
	place := func(i int, mode Mode) *entry {
		rep := &reps[i]
		if m.find(rep.owner, rep.l.Cookie) != nil || !m.grantableIgnoringGhosts(mode) {
			return nil
		}
		e := &entry{owner: rep.owner, cookie: rep.l.Cookie, q: qGranted, gr: mode, rq: ModeNone, flags: rep.l.Flags, bast: ModeNone}
		m.q[qGranted] = append(m.q[qGranted], e)
		return e
	}
	entries := make([]*entry, len(reps))
	for i := range reps {
		if eff[i] != ModeNone && eff[i] != ambiguous {
			entries[i] = place(i, eff[i]) // nil: cannot be, a correct master granted these together
		}
	}
	raised := make([]bool, len(reps))
	for i := range reps {
		if eff[i] != ambiguous {
			continue
		}
		l := &reps[i].l
		if entries[i] = place(i, l.Gr); entries[i] != nil {
			eff[i] = l.Gr
		} else if entries[i] = place(i, l.Rq); entries[i] != nil {
			eff[i], raised[i] = l.Rq, true
		} else {
			eff[i] = ModeNone
		}
	}
	// The value block: a survivor granted CW, PR, PW or EX proves its copy
	// current (no one could have written since it read); with only NL or CR
	// survivors a dead node may have written it: invalid. A write in flight
	// counts only if it is newer than that (sequence numbers: a writer's is
	// one more than what it read); without a proof of currency it may have
	// been overwritten by a dead node, and the block stays invalid.
	var big *reportedLock
	var maxSeq uint64
	for i := range reps {
		l := &reps[i].l
		maxSeq = max(maxSeq, l.LVBSeq)
		if e := eff[i]; entries[i] != nil && (e == ModeCW || e == ModePR || e == ModePW || e == ModeEX) {
			if big == nil || l.LVBSeq > big.LVBSeq {
				big = l
			}
		}
	}
	if big != nil {
		m.lvb, m.lvbSeq, m.lvbValid = big.LVB, big.LVBSeq, big.LVBValid
		for i := range reps {
			if l := &reps[i].l; l.WritesLVB && l.LVBSeq > m.lvbSeq {
				m.lvb, m.lvbSeq, m.lvbValid = l.LVB, l.LVBSeq, true
			}
		}
	} else {
		m.lvbSeq, m.lvbValid = maxSeq+1, false
	}
	for i, rep := range reps {
		l := rep.l
		e := entries[i]
		owe := func(op Op, st Status, mode Mode, read bool) {
			m.owed = append(m.owed, owedReply{Owner: rep.owner, Cookie: l.Cookie, Op: op, Status: st, Mode: mode, Read: read})
		}
		switch {
		case l.Op == OpUnlock:
			owe(OpUnlock, StatusOK, ModeNone, false)
		case l.Op == OpConvert && e == nil:
		case l.Op == OpConvert && weakerOrEqual(l.Rq, l.Gr):
			owe(OpConvert, StatusOK, l.Rq, false)
		case l.Op == OpConvert && raised[i]:
			owe(OpConvert, StatusOK, l.Rq, lvbOpFor(l.Gr, l.Rq) == lvbRead)
		case l.Op == OpConvert && l.CancelSent:
			owe(OpConvert, StatusCancelled, e.gr, false)
		case l.Op == OpConvert:
			m.fresh = append(m.fresh, freshReq{owner: rep.owner, cookie: l.Cookie, op: OpConvert, rq: l.Rq, flags: l.Flags})
		case l.Op == OpLock && l.CancelSent:
			owe(OpLock, StatusCancelled, ModeNone, false)
		case l.Op == OpLock:
			m.fresh = append(m.fresh, freshReq{owner: rep.owner, cookie: l.Cookie, op: OpLock, rq: l.Rq, flags: l.Flags})
		}
	}
	// What a dead node held here died with the master: stand in for it with
	// the strongest mode the survivors' granted locks allow.
	if r.gate && len(pending) > 0 {
		var held uint8
		for _, e := range m.q[qGranted] {
			held |= 1 << e.gr
		}
		if g := strongestCompatible(held); g != ModeNL {
			for _, p := range pending {
				m.ghosts = append(m.ghosts, ghostState{Dead: p, Mode: g})
			}
		}
	}
	res := d.resource(name)
	res.m = m
	d.nMastered++
	d.stats.Rebuilt++
}

// reconcile compares what holders report with a resource state that
// survived (it moved before its old master died): an answer the dead master
// sent may have died with it. A holder still waiting for the outcome of an
// operation the state shows done gets it again; one whose operation left no
// trace is asked again. (A live sender's answers cannot be lost: they reach
// the holder before its marker, hence before its report.)
func (d *domain) reconcile(res *resource, reps []ownedReport) {
	m := res.m
	slices.SortFunc(reps, func(a, b ownedReport) int {
		if a.owner != b.owner {
			return int(a.owner) - int(b.owner)
		}
		switch {
		case a.l.Cookie < b.l.Cookie:
			return -1
		case a.l.Cookie > b.l.Cookie:
			return 1
		}
		return 0
	})
	for _, rep := range reps {
		l := rep.l
		if l.Op == OpNone || m.findFresh(rep.owner, l.Cookie) >= 0 ||
			slices.ContainsFunc(m.owed, func(o owedReply) bool { return o.Owner == rep.owner && o.Cookie == l.Cookie }) {
			continue
		}
		owe := func(op Op, st Status, mode Mode, read bool) {
			m.owed = append(m.owed, owedReply{Owner: rep.owner, Cookie: l.Cookie, Op: op, Status: st, Mode: mode, Read: read})
		}
		e := m.find(rep.owner, l.Cookie)
		switch l.Op {
		case OpUnlock:
			if e != nil && e.q == qGranted {
				if l.WritesLVB && writesLVB(e.gr) {
					m.lvb, m.lvbSeq, m.lvbValid = l.LVB, max(m.lvbSeq+1, l.LVBSeq), true
				}
				m.remove(e)
			}
			if e == nil || e.q == qGranted {
				owe(OpUnlock, StatusOK, ModeNone, false)
			}
		case OpLock:
			switch {
			case e != nil && e.q == qGranted:
				owe(OpLock, StatusOK, e.gr, true)
			case e != nil:
				// Waiting: its answer is still to come.
			case l.CancelSent:
				owe(OpLock, StatusCancelled, ModeNone, false)
			default:
				// Refused, and the refusal lost: ask again.
				m.fresh = append(m.fresh, freshReq{owner: rep.owner, cookie: l.Cookie, op: OpLock, rq: l.Rq, flags: l.Flags})
			}
		case OpConvert:
			switch {
			case e == nil || e.q != qGranted:
				// Gone, or still converting: nothing lost.
			case e.gr == l.Rq:
				owe(OpConvert, StatusOK, e.gr, lvbOpFor(l.Gr, l.Rq) == lvbRead)
			case l.CancelSent:
				owe(OpConvert, StatusCancelled, e.gr, false)
			default:
				m.fresh = append(m.fresh, freshReq{owner: rep.owner, cookie: l.Cookie, op: OpConvert, rq: l.Rq, flags: l.Flags})
			}
		}
	}
	res.idle = false
}

func (m *master) grantableIgnoringGhosts(mode Mode) bool {
	for _, q := range [2]queue{qGranted, qConverting} {
		for _, x := range m.q[q] {
			if !Compatible(x.gr, mode) {
				return false
			}
		}
	}
	return true
}

// applyDeaths takes the locks of nodes no longer members off a resource this
// node masters: a dead node's granted lock becomes a ghost in a gated
// domain, and a dead PW or EX holder invalidates the value block.
func (d *domain) applyDeaths(res *resource, r *reconfig, pending []DeadNode) {
	m := res.m
	invalid := false
	for q := range m.q {
		for _, e := range slices.Clone(m.q[q]) {
			if r.target.Has(e.owner) {
				continue
			}
			m.remove(e)
			if e.gr == ModeNone {
				continue
			}
			if writesLVB(e.gr) {
				invalid = true
			}
			if r.gate {
				if dn, ok := lastDeath(r.dead, e.owner); ok && containsDead(pending, dn) {
					m.ghosts = append(m.ghosts, ghostState{Dead: dn, Mode: e.gr})
				}
			}
		}
	}
	if invalid {
		m.invalidate()
	}
	m.fresh = slices.DeleteFunc(m.fresh, func(f freshReq) bool { return !r.target.Has(f.owner) })
	m.owed = slices.DeleteFunc(m.owed, func(o owedReply) bool { return !r.target.Has(o.Owner) })
	m.dropGhosts(pending)
}

func lastDeath(l []DeadNode, x base.NodeID) (DeadNode, bool) {
	var best DeadNode
	found := false
	for _, dn := range l {
		if dn.Node == x && (!found || dn.Seq > best.Seq) {
			best, found = dn, true
		}
	}
	return best, found
}

func sortDead(l []DeadNode) {
	slices.SortFunc(l, func(a, b DeadNode) int {
		if a.Node != b.Node {
			return int(a.Node) - int(b.Node)
		}
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
}
