package dlm

import (
	"fmt"
	"slices"

	"o2go/internal/base"
)

// master is the state of a resource at its master: the three queues, the
// value block, and what a reconfiguration left to finish.
//
// Grant rules (VMS/fs-dlm semantics):
//   - every lock's requested mode is checked against the granted mode of every
//     other lock (converting locks keep their granted mode), and against the
//     ghosts of dead nodes unless the request has the Recovery flag;
//   - a conversion is granted at once when compatible, whatever is queued;
//     else it queues at the tail of the converting queue — unless a lock
//     already converting wants a mode this lock's granted mode excludes: the
//     two would wait for each other for ever, so this (later) conversion is
//     refused with StatusDeadlock and reported;
//   - a new lock is granted at once only when compatible and both queues are
//     empty; else it queues at the tail of the waiting queue;
//   - whenever a lock is released or lowered, the converting queue is granted
//     in order while its head is compatible, then (only when it is empty) the
//     waiting queue likewise; nothing overtakes a blocked head;
//   - the locks whose granted mode blocks the next request to be granted get
//     a BAST with the mode it wants (once per mode until they are granted
//     again).
type master struct {
	q      [numQueues][]*entry
	inl    [1]*entry  // backing of the granted queue while it holds one lock
	fresh  []freshReq // requests received while frozen, evaluated at completion
	ghosts []ghostState
	owed   []owedReply // answers due from operations applied while frozen

	lvbValid bool
	lvbSeq   uint64
	lvb      LVB
}

// entry is one lock at its master.
type entry struct {
	owner  base.NodeID
	cookie uint64
	q      queue
	gr, rq Mode
	flags  Flags
	bast   Mode // highest mode a BAST announced since the last grant
}

// freshReq is a new lock or an upward conversion that reached the master
// during a reconfiguration: it is evaluated, as if it had just arrived, when
// the reconfiguration completes.
type freshReq struct {
	owner  base.NodeID
	cookie uint64
	op     Op
	rq     Mode
	flags  Flags
}

func (m *master) empty() bool {
	return len(m.q[qGranted]) == 0 && len(m.q[qConverting]) == 0 && len(m.q[qWaiting]) == 0 &&
		len(m.fresh) == 0 && len(m.owed) == 0
}

func (m *master) find(owner base.NodeID, cookie uint64) *entry {
	for q := range m.q {
		for _, e := range m.q[q] {
			if e.owner == owner && e.cookie == cookie {
				return e
			}
		}
	}
	return nil
}

func (m *master) findFresh(owner base.NodeID, cookie uint64) int {
	for i, f := range m.fresh {
		if f.owner == owner && f.cookie == cookie {
			return i
		}
	}
	return -1
}

func (m *master) remove(e *entry) {
	s := m.q[e.q]
	if i := slices.Index(s, e); i >= 0 {
		m.q[e.q] = slices.Delete(s, i, i+1)
	}
}

func (m *master) move(e *entry, to queue) {
	m.remove(e)
	e.q = to
	m.q[to] = append(m.q[to], e)
}

// grantable reports whether e may be granted mode now, looking at granted
// modes only (queue order is the caller's business).
func (m *master) grantable(e *entry, mode Mode) bool {
	for _, q := range [2]queue{qGranted, qConverting} {
		for _, x := range m.q[q] {
			if x != e && !Compatible(x.gr, mode) {
				return false
			}
		}
	}
	if e.flags&Recovery == 0 {
		for _, g := range m.ghosts {
			if !Compatible(g.Mode, mode) {
				return false
			}
		}
	}
	return true
}

// deadlocks reports whether converting e to mode would wait for ever behind
// a conversion already queued that e's granted mode blocks.
func (m *master) deadlocks(e *entry, mode Mode) *entry {
	for _, c := range m.q[qConverting] {
		if c != e && !Compatible(e.gr, c.rq) {
			return c
		}
	}
	return nil
}

func (m *master) write(v *LVB) {
	m.lvb = *v
	m.lvbSeq++
	m.lvbValid = true
}

// invalidate marks the value block stale: a holder that could have changed it
// died.
func (m *master) invalidate() {
	m.lvb = LVB{}
	m.lvbSeq++
	m.lvbValid = false
}

// dropGhosts removes ghosts whose death is not in pending; it reports whether
// any went.
func (m *master) dropGhosts(pending []DeadNode) bool {
	n := len(m.ghosts)
	m.ghosts = slices.DeleteFunc(m.ghosts, func(g ghostState) bool { return !containsDead(pending, g.Dead) })
	return len(m.ghosts) != n
}

// newMaster makes the master state of a resource that exists nowhere yet. In
// a gated domain where a dead node is not recovered yet, the DLM cannot
// know that the dead node held no lock on it (its master may have died with
// it), so it stands an EX ghost in for each such node.
func (d *domain) newMaster() *master {
	m := &master{lvbValid: true}
	m.q[qGranted] = m.inl[:0]
	if d.gate {
		for _, p := range d.pending {
			m.ghosts = append(m.ghosts, ghostState{Dead: p, Mode: ModeEX})
		}
	}
	d.nMastered++
	return m
}

func (d *domain) dropMaster(r *resource) {
	if r.m != nil {
		r.m = nil
		d.nMastered--
	}
	d.dropIfUnused(r)
}

func grantReply(op Op, e *entry, from Mode, m *master) lockReply {
	rep := lockReply{Cookie: e.cookie, Op: op, Status: StatusOK, Mode: e.gr}
	if lvbOpFor(from, e.gr) == lvbRead {
		rep.HasLVB, rep.LVBValid, rep.LVBSeq, rep.LVB = true, m.lvbValid, m.lvbSeq, m.lvb
	}
	return rep
}

// masterRequest handles a holder's request for a resource this node masters.
func (d *domain) masterRequest(from base.NodeID, req *lockReq) error {
	if d.reco != nil {
		d.deferredReq = append(d.deferredReq, deferReq{from: from, req: *req})
		return nil
	}
	if req.Epoch != d.view.epoch || (d.phase != phaseJoined && d.phase != phaseLeaving) {
		d.stats.Misdirected++
		return &MessageError{Kind: "lock request", From: from,
			Msg: fmt.Sprintf("epoch %d, but %s is at epoch %d (%s)", req.Epoch, d.name, d.view.epoch, d.phase)}
	}
	r := d.res[req.Name]
	if r != nil {
		r.idle = false // settle or the error paths put it back
	}
	if r == nil && req.Op == OpCancel {
		// The request it cancels was answered (and the resource forgotten)
		// before the cancel arrived.
		d.reply(from, &lockReply{Cookie: req.Cookie, Op: OpCancel, Status: StatusNotPending, Mode: ModeNone})
		return nil
	}
	if r == nil {
		if req.Op != OpLock {
			return &MessageError{Kind: "lock request", From: from, Msg: fmt.Sprintf("%s of %s:%d on unknown resource %q", req.Op, from, req.Cookie, req.Name)}
		}
		r = d.resource(req.Name)
	}
	if d.masterOf(r) != d.n.self {
		d.stats.Misdirected++
		d.dropIfUnused(r)
		return &MessageError{Kind: "lock request", From: from, Msg: fmt.Sprintf("resource %q is mastered by node %d, not here", req.Name, d.masterOf(r))}
	}
	if r.m == nil && req.Op == OpCancel {
		d.dropIfUnused(r)
		d.reply(from, &lockReply{Cookie: req.Cookie, Op: OpCancel, Status: StatusNotPending, Mode: ModeNone})
		return nil
	}
	if r.m == nil {
		if req.Op != OpLock {
			return &MessageError{Kind: "lock request", From: from, Msg: fmt.Sprintf("%s of %s:%d on resource %q not mastered here", req.Op, from, req.Cookie, req.Name)}
		}
		r.m = d.newMaster()
	}
	if err := d.apply(r, from, req); err != nil {
		d.settle(r)
		return err
	}
	d.settle(r)
	return nil
}

// apply performs one request on a resource this node masters (not frozen).
func (d *domain) apply(r *resource, from base.NodeID, req *lockReq) error {
	m := r.m
	switch req.Op {
	case OpLock:
		if m.find(from, req.Cookie) != nil {
			return &MessageError{Kind: "lock request", From: from, Msg: fmt.Sprintf("lock %d:%d exists already", from, req.Cookie)}
		}
		d.requestLock(r, from, req.Cookie, req.Mode, req.Flags)
	case OpConvert:
		e := m.find(from, req.Cookie)
		if e == nil || e.q != qGranted {
			return &MessageError{Kind: "lock request", From: from, Msg: fmt.Sprintf("convert of %d:%d, which is not granted on %q", from, req.Cookie, req.Name)}
		}
		var v *LVB
		if req.HasLVB {
			v = &req.LVB
		}
		d.requestConvert(r, e, req.Mode, req.Flags, v)
	case OpUnlock:
		e := m.find(from, req.Cookie)
		if e == nil || e.q != qGranted {
			return &MessageError{Kind: "lock request", From: from, Msg: fmt.Sprintf("unlock of %d:%d, which is not granted on %q", from, req.Cookie, req.Name)}
		}
		if req.HasLVB && writesLVB(e.gr) {
			m.write(&req.LVB)
		}
		m.remove(e)
		d.reply(from, &lockReply{Cookie: e.cookie, Op: OpUnlock, Status: StatusOK, Mode: ModeNone})
		d.n.freeEntry(e)
	case OpCancel:
		d.cancelAt(r, from, req.Cookie, false)
	}
	return nil
}

// MaxLocksPerResource bounds the locks of one resource, so that its state
// always fits one frame when it moves to another master (cluster/net's
// payloads are at most 64 KiB).
const MaxLocksPerResource = 2048

func (m *master) count() int {
	return len(m.q[qGranted]) + len(m.q[qConverting]) + len(m.q[qWaiting]) + len(m.fresh)
}

func (d *domain) requestLock(r *resource, owner base.NodeID, cookie uint64, mode Mode, flags Flags) {
	m := r.m
	if m.count() >= MaxLocksPerResource {
		d.reply(owner, &lockReply{Cookie: cookie, Op: OpLock, Status: StatusOverflow, Mode: ModeNone})
		return
	}
	e := d.n.allocEntry()
	*e = entry{owner: owner, cookie: cookie, gr: ModeNone, rq: mode, flags: flags, bast: ModeNone}
	if len(m.q[qConverting]) == 0 && len(m.q[qWaiting]) == 0 && m.grantable(e, mode) {
		e.gr, e.rq, e.q = mode, ModeNone, qGranted
		m.q[qGranted] = append(m.q[qGranted], e)
		rep := grantReply(OpLock, e, ModeNone, m)
		d.reply(owner, &rep)
		return
	}
	if flags&NoQueue != 0 {
		d.reply(owner, &lockReply{Cookie: cookie, Op: OpLock, Status: StatusBusy, Mode: ModeNone})
		return
	}
	e.q = qWaiting
	m.q[qWaiting] = append(m.q[qWaiting], e)
}

func (d *domain) requestConvert(r *resource, e *entry, mode Mode, flags Flags, v *LVB) {
	m := r.m
	old := e.gr
	if v != nil && lvbOpFor(old, mode) == lvbWrite {
		m.write(v)
	}
	e.flags = flags
	if mode == old || Weaker(mode, old) || m.grantable(e, mode) {
		e.gr, e.bast = mode, ModeNone
		rep := grantReply(OpConvert, e, old, m)
		d.reply(e.owner, &rep)
		return
	}
	if flags&NoQueue != 0 {
		d.reply(e.owner, &lockReply{Cookie: e.cookie, Op: OpConvert, Status: StatusBusy, Mode: old})
		return
	}
	if c := m.deadlocks(e, mode); c != nil {
		d.stats.Deadlocks++
		d.n.event(Event{Kind: EventDeadlock, Domain: d.name, Resource: r.name, Owner: e.owner, Cookie: e.cookie,
			Detail: fmt.Sprintf("%d:%d %s->%s refused: %d:%d waits for %s, which %s excludes",
				e.owner, e.cookie, old, mode, c.owner, c.cookie, c.rq, old)})
		d.reply(e.owner, &lockReply{Cookie: e.cookie, Op: OpConvert, Status: StatusDeadlock, Mode: old})
		return
	}
	e.rq = mode
	m.move(e, qConverting)
}

// cancelAt cancels the pending request of lock owner:cookie; frozen says the
// answer is owed (sent when the reconfiguration completes).
func (d *domain) cancelAt(r *resource, owner base.NodeID, cookie uint64, frozen bool) {
	m := r.m
	var rep lockReply
	if i := m.findFresh(owner, cookie); i >= 0 {
		f := m.fresh[i]
		m.fresh = slices.Delete(m.fresh, i, i+1)
		rep = lockReply{Cookie: cookie, Op: f.op, Status: StatusCancelled, Mode: ModeNone}
		if e := m.find(owner, cookie); e != nil {
			rep.Mode = e.gr
		}
	} else if e := m.find(owner, cookie); e != nil && e.q == qConverting {
		e.rq = ModeNone
		m.move(e, qGranted)
		rep = lockReply{Cookie: cookie, Op: OpConvert, Status: StatusCancelled, Mode: e.gr}
	} else if e != nil && e.q == qWaiting {
		m.remove(e)
		rep = lockReply{Cookie: cookie, Op: OpLock, Status: StatusCancelled, Mode: ModeNone}
	} else {
		rep = lockReply{Cookie: cookie, Op: OpCancel, Status: StatusNotPending, Mode: ModeNone}
	}
	if frozen {
		m.owed = append(m.owed, owedReply{Owner: owner, Cookie: cookie, Op: rep.Op, Status: rep.Status, Mode: rep.Mode})
		return
	}
	d.reply(owner, &rep)
}

// settle grants what can be granted on r after a change, sends the BASTs the
// next request needs, and forgets r when nothing is left.
func (d *domain) settle(r *resource) {
	m := r.m
	if m == nil {
		d.dropIfUnused(r)
		return
	}
	// Requests of owners known dead are passed over (the reconfiguration
	// to come removes them): granting them would only make ghosts.
	blocked := false
	for i := 0; i < len(m.q[qConverting]); {
		h := m.q[qConverting][i]
		if !d.alive(h.owner) {
			i++
			continue
		}
		if !m.grantable(h, h.rq) {
			blocked = true
			break
		}
		old := h.gr
		h.gr, h.rq, h.bast = h.rq, ModeNone, ModeNone
		m.move(h, qGranted)
		rep := grantReply(OpConvert, h, old, m)
		d.reply(h.owner, &rep)
	}
	if !blocked {
		for i := 0; i < len(m.q[qWaiting]); {
			h := m.q[qWaiting][i]
			if !d.alive(h.owner) {
				i++
				continue
			}
			if !m.grantable(h, h.rq) {
				break
			}
			h.gr, h.rq, h.bast = h.rq, ModeNone, ModeNone
			m.move(h, qGranted)
			rep := grantReply(OpLock, h, ModeNone, m)
			d.reply(h.owner, &rep)
		}
	}
	var next *entry
	for _, q := range [2]queue{qConverting, qWaiting} {
		for _, e := range m.q[q] {
			if next == nil && d.alive(e.owner) {
				next = e
			}
		}
		if next != nil || blocked {
			break
		}
	}
	if next != nil {
		for _, q := range [2]queue{qGranted, qConverting} {
			for _, x := range m.q[q] {
				if x == next || Compatible(x.gr, next.rq) {
					continue
				}
				if x.bast != ModeNone && weakerOrEqual(next.rq, x.bast) {
					continue
				}
				x.bast = next.rq
				d.bast(x.owner, x.cookie, next.rq)
			}
		}
	}
	d.dropIfUnused(r)
}

// applyFrozen records a request that reached this master during a
// reconfiguration: releases and lowerings take effect now (their answers are
// owed), new locks and raises wait to be evaluated at completion.
func (d *domain) applyFrozen(r *resource, from base.NodeID, req *lockReq) {
	m := r.m
	e := m.find(from, req.Cookie)
	switch req.Op {
	case OpLock:
		if e != nil || m.findFresh(from, req.Cookie) >= 0 {
			return
		}
		if m.count() >= MaxLocksPerResource {
			m.owed = append(m.owed, owedReply{Owner: from, Cookie: req.Cookie, Op: OpLock, Status: StatusOverflow, Mode: ModeNone})
			return
		}
		m.fresh = append(m.fresh, freshReq{owner: from, cookie: req.Cookie, op: OpLock, rq: req.Mode, flags: req.Flags})
	case OpConvert:
		if e == nil || e.q != qGranted || m.findFresh(from, req.Cookie) >= 0 {
			return
		}
		// Lowering (or keeping) the mode is always granted: done now, with
		// its value block; raising waits for completion.
		if req.Mode != e.gr && !Weaker(req.Mode, e.gr) {
			m.fresh = append(m.fresh, freshReq{owner: from, cookie: req.Cookie, op: OpConvert, rq: req.Mode, flags: req.Flags})
			return
		}
		if req.HasLVB && lvbOpFor(e.gr, req.Mode) == lvbWrite {
			m.write(&req.LVB)
		}
		e.gr, e.flags, e.bast = req.Mode, req.Flags, ModeNone
		m.owed = append(m.owed, owedReply{Owner: from, Cookie: req.Cookie, Op: OpConvert, Status: StatusOK, Mode: e.gr})
	case OpUnlock:
		if e == nil || e.q != qGranted {
			return
		}
		if req.HasLVB && writesLVB(e.gr) {
			m.write(&req.LVB)
		}
		m.remove(e)
		m.owed = append(m.owed, owedReply{Owner: from, Cookie: req.Cookie, Op: OpUnlock, Status: StatusOK, Mode: ModeNone})
	case OpCancel:
		d.cancelAt(r, from, req.Cookie, true)
	}
}

// resume finishes what a reconfiguration left on r: owed answers, then fresh
// requests in arrival order, then the usual granting.
func (d *domain) resume(r *resource) {
	m := r.m
	// Owed answers and fresh requests stay in m while they are handled, so
	// that the resource does not look unused (and go idle) half way.
	for i := 0; i < len(m.owed); i++ {
		o := m.owed[i]
		rep := lockReply{Cookie: o.Cookie, Op: o.Op, Status: o.Status, Mode: o.Mode}
		if o.Read {
			rep.HasLVB, rep.LVBValid, rep.LVBSeq, rep.LVB = true, m.lvbValid, m.lvbSeq, m.lvb
		}
		d.reply(o.Owner, &rep)
	}
	m.owed = nil
	for i := 0; i < len(m.fresh); i++ {
		f := m.fresh[i]
		switch f.op {
		case OpLock:
			if m.find(f.owner, f.cookie) == nil {
				d.requestLock(r, f.owner, f.cookie, f.rq, f.flags)
			}
		case OpConvert:
			if e := m.find(f.owner, f.cookie); e != nil && e.q == qGranted {
				d.requestConvert(r, e, f.rq, f.flags, nil)
			}
		}
	}
	m.fresh = nil
	d.settle(r)
}

// state encodes r's master state for a transfer.
func (m *master) state(name string) resState {
	s := resState{Name: name, LVBValid: m.lvbValid, LVBSeq: m.lvbSeq, LVB: m.lvb}
	for q := range m.q {
		for _, e := range m.q[q] {
			s.Entries = append(s.Entries, entryState{Owner: e.owner, Cookie: e.cookie, Queue: e.q, Gr: e.gr, Rq: e.rq, Flags: e.flags})
		}
	}
	for _, f := range m.fresh {
		s.Fresh = append(s.Fresh, freshState{Owner: f.owner, Cookie: f.cookie, Op: f.op, Rq: f.rq, Flags: f.flags})
	}
	s.Ghosts = slices.Clone(m.ghosts)
	s.Owed = slices.Clone(m.owed)
	return s
}

// masterFromState checks a transferred state and builds the master from it.
// A state a correct peer could not have sent is refused whole.
func masterFromState(s *resState) (*master, error) {
	m := &master{lvbValid: s.LVBValid, lvbSeq: s.LVBSeq, lvb: s.LVB}
	bad := func(format string, args ...any) (*master, error) {
		return nil, &MessageError{Kind: "transfer", From: base.InvalidNode, Msg: fmt.Sprintf("resource %q: ", s.Name) + fmt.Sprintf(format, args...)}
	}
	for _, x := range s.Entries {
		switch x.Queue {
		case qGranted:
			if x.Gr == ModeNone || x.Rq != ModeNone {
				return bad("granted lock %d:%d with modes %s/%s", x.Owner, x.Cookie, x.Gr, x.Rq)
			}
		case qConverting:
			if x.Gr == ModeNone || x.Rq == ModeNone {
				return bad("converting lock %d:%d with modes %s/%s", x.Owner, x.Cookie, x.Gr, x.Rq)
			}
		case qWaiting:
			if x.Gr != ModeNone || x.Rq == ModeNone {
				return bad("waiting lock %d:%d with modes %s/%s", x.Owner, x.Cookie, x.Gr, x.Rq)
			}
		}
		if m.find(x.Owner, x.Cookie) != nil {
			return bad("lock %d:%d appears twice", x.Owner, x.Cookie)
		}
		e := &entry{owner: x.Owner, cookie: x.Cookie, q: x.Queue, gr: x.Gr, rq: x.Rq, flags: x.Flags, bast: ModeNone}
		for _, q := range [2]queue{qGranted, qConverting} {
			for _, y := range m.q[q] {
				if e.gr != ModeNone && !Compatible(e.gr, y.gr) {
					return bad("granted modes %s (%d:%d) and %s (%d:%d) conflict", e.gr, e.owner, e.cookie, y.gr, y.owner, y.cookie)
				}
			}
		}
		m.q[x.Queue] = append(m.q[x.Queue], e)
	}
	for _, f := range s.Fresh {
		e := m.find(f.Owner, f.Cookie)
		switch {
		case f.Rq == ModeNone:
			return bad("fresh request %d:%d without a mode", f.Owner, f.Cookie)
		case f.Op == OpLock && e != nil:
			return bad("fresh lock %d:%d exists already", f.Owner, f.Cookie)
		case f.Op == OpConvert && (e == nil || e.q != qGranted):
			return bad("fresh conversion of %d:%d, which is not granted", f.Owner, f.Cookie)
		case f.Op != OpLock && f.Op != OpConvert:
			return bad("fresh request %d:%d is a %s", f.Owner, f.Cookie, f.Op)
		case m.findFresh(f.Owner, f.Cookie) >= 0:
			return bad("fresh request %d:%d appears twice", f.Owner, f.Cookie)
		}
		m.fresh = append(m.fresh, freshReq{owner: f.Owner, cookie: f.Cookie, op: f.Op, rq: f.Rq, flags: f.Flags})
	}
	m.ghosts = slices.Clone(s.Ghosts)
	m.owed = slices.Clone(s.Owed)
	return m, nil
}

// check verifies the master's own consistency (for CheckInvariants).
func (m *master) check(name string) error {
	var held []*entry
	for q := range m.q {
		for _, e := range m.q[q] {
			if e.q != queue(q) {
				return fmt.Errorf("resource %q: lock %d:%d in queue %s says %s", name, e.owner, e.cookie, queue(q), e.q)
			}
			if (e.q == qWaiting) != (e.gr == ModeNone) || (e.q == qGranted) != (e.rq == ModeNone) {
				return fmt.Errorf("resource %q: lock %d:%d in %s has modes %s/%s", name, e.owner, e.cookie, e.q, e.gr, e.rq)
			}
			if e.gr != ModeNone {
				for _, h := range held {
					if !Compatible(h.gr, e.gr) {
						return fmt.Errorf("resource %q: granted %s (%d:%d) and %s (%d:%d) conflict", name, h.gr, h.owner, h.cookie, e.gr, e.owner, e.cookie)
					}
				}
				held = append(held, e)
			}
		}
	}
	return nil
}
