package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/cluster/quorum"
	"o2go/internal/dlm"
)

// DLM is this node's distributed lock manager (the pure internal/dlm core)
// running on the agent:
//
//   - membership events come from the agent's hub as its first subscriber
//     (PriorityDLM), so the DLM starts its recovery before the file system
//     and HA hear of a death;
//   - DLM messages (cluster/net's range 500..599) are handled on the
//     connections' reader goroutines, under the DLM's mutex;
//   - what the core sends leaves through one writer goroutine per peer, in
//     order, so that a slow peer never blocks the lock manager (and two
//     nodes sending each other large transfers cannot deadlock on full
//     socket buffers);
//   - a ticker gives the core the time (lock request deadlines,
//     acknowledgements) and tells it of connections that came back
//     (LinkUp: what a broken connection lost is sent again).
//
// It offers a blocking Go API (Join, Lock, Convert, Unlock...) to the file
// system and HA, and the control-API methods `o2go lock` and `o2go dlm` use
// (RegisterControl).
type DLM struct {
	a    *Agent
	self base.NodeID

	mu      sync.Mutex
	core    *dlm.Node
	waits   map[dlm.LockID]chan dlm.AST // the AST each pending operation waits for
	basts   map[dlm.LockID]func(dlm.BAST)
	joins   map[string][]chan error
	leaves  map[string][]chan error
	handled map[uint32]bool // domain keys with handlers registered
	subs    []func(dlm.Event)
	peers   map[base.NodeID]*dlmPeer
	closed  error
	stop    chan struct{}
	unsub   func()
	ctlDone bool // the control methods are registered
	// inCluster: the core has had its first membership (until then it
	// cannot join a domain: the node is not in the cluster yet).
	inCluster bool
	// ctl is the control methods' state: the servers they are registered
	// on, and the locks each client connection holds. One for the DLM, so
	// that registering twice on a server (the agent does it when it starts
	// and at its first membership event) keeps every client's locks.
	ctl struct {
		mu      sync.Mutex
		servers map[*ControlServer]bool
		owners  map[context.Context]*connLocks
	}
}

// dlmPeer is the queue of messages to one peer and its writer goroutine.
type dlmPeer struct {
	*sendQueue
	// conn is the connection to the peer the core last heard of (under
	// DLM.mu): a new one is reported with LinkUp.
	conn cnet.ConnID
}

// StartDLM starts this node's lock manager on agent a; call it before Run.
// Its control methods are added to the agent's control server when the
// first membership event arrives (the server exists by then: Run starts the
// event hub after it); RegisterControl adds them to another server.
func StartDLM(a *Agent) (*DLM, error) {
	d := &DLM{
		a: a, self: a.self.Number,
		core:  dlm.New(dlm.Config{Self: a.self.Number}),
		waits: map[dlm.LockID]chan dlm.AST{}, basts: map[dlm.LockID]func(dlm.BAST){},
		joins: map[string][]chan error{}, leaves: map[string][]chan error{},
		handled: map[uint32]bool{}, peers: map[base.NodeID]*dlmPeer{}, stop: make(chan struct{}),
	}
	if err := d.handleKey(0); err != nil {
		return nil, err
	}
	d.unsub = a.Subscribe("dlm", PriorityDLM, d.membership)
	go d.ticker()
	go func() {
		<-a.done
		d.Close(errors.New("the agent stopped"))
	}()
	return d, nil
}

// Close stops the lock manager: pending operations fail with err.
func (d *DLM) Close(err error) {
	d.mu.Lock()
	if d.closed != nil {
		d.mu.Unlock()
		return
	}
	d.closed = err
	close(d.stop)
	for id, ch := range d.waits {
		select {
		case ch <- dlm.AST{ID: id, Status: dlm.StatusAborted, Mode: dlm.ModeNone}:
		default:
		}
	}
	for _, l := range [2]map[string][]chan error{d.joins, d.leaves} {
		for _, chs := range l {
			for _, ch := range chs {
				ch <- err
			}
		}
	}
	d.joins, d.leaves = map[string][]chan error{}, map[string][]chan error{}
	for _, p := range d.peers {
		p.close()
	}
	d.mu.Unlock()
	if d.unsub != nil {
		d.unsub()
	}
}

// handleKey registers the DLM's message handlers for one key (0, or a
// domain's key).
func (d *DLM) handleKey(key uint32) error {
	if d.handled[key] {
		return nil
	}
	for t := dlm.MsgTypeFirst; t <= dlm.MsgTypeLast; t++ {
		t := t
		err := d.a.Handle(t, key, cnet.MaxPayload, func(from base.NodeID, key uint32, p []byte) int32 {
			return d.receive(from, t, key, p)
		})
		if err != nil && !errors.Is(err, cnet.ErrHandlerExists) {
			return fmt.Errorf("dlm: registering message type %d key %08x: %w", t, key, err)
		}
	}
	d.handled[key] = true
	return nil
}

func (d *DLM) receive(from base.NodeID, typ uint16, key uint32, p []byte) int32 {
	d.mu.Lock()
	if d.closed != nil {
		d.mu.Unlock()
		return 0
	}
	rd, err := d.core.Receive(from, typ, key, p)
	notes := d.apply(rd)
	d.mu.Unlock()
	if err != nil {
		d.a.logf("dlm: %v", err)
	}
	run(notes)
	if err != nil {
		return -1
	}
	return 0
}

func run(notes []func()) {
	for _, f := range notes {
		f()
	}
}

// membership passes a membership event to the core.
func (d *DLM) membership(e MembershipEvent) {
	if !d.ctlDone {
		d.ctlDone = true
		if cs := d.a.ctl; cs != nil {
			d.RegisterControl(cs)
		}
	}
	d.mu.Lock()
	if d.closed != nil {
		d.mu.Unlock()
		return
	}
	var rd dlm.Ready
	switch {
	case e.Initial:
		d.inCluster = true
		rd = d.core.Membership(e.Seq, e.Members)
	case e.Kind == quorum.NodeUp:
		rd = d.core.NodeUp(e.Seq, e.Node)
	case e.Kind == quorum.NodeDown:
		d.peer(e.Node).died()
		rd = d.core.NodeDown(e.Seq, e.Node)
	case e.Kind == quorum.Left:
		d.mu.Unlock()
		d.Close(errors.New("this node left the cluster"))
		return
	}
	notes := d.apply(rd)
	d.mu.Unlock()
	run(notes)
}

func (d *DLM) ticker() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		if d.closed != nil {
			d.mu.Unlock()
			return
		}
		notes := d.apply(d.core.Tick(d.a.clock()))
		notes = append(notes, d.checkLinks()...)
		d.mu.Unlock()
		run(notes)
	}
}

// checkLinks tells the core of each connection to a peer that came (back)
// since the last look: what the peer has not acknowledged is sent again on
// it, since a broken connection loses what was in flight (the peer drops
// what it had already). Under d.mu.
func (d *DLM) checkLinks() []func() {
	var notes []func()
	for x, p := range d.peers {
		pc, err := d.a.conn(x)
		if err != nil || pc.id == p.conn {
			continue
		}
		p.conn = pc.id
		notes = append(notes, d.apply(d.core.LinkUp(x))...)
	}
	return notes
}

// apply carries out a Ready (under d.mu) and returns the notifications to
// run once d.mu is released.
func (d *DLM) apply(rd dlm.Ready) []func() { return d.applyFrom(rd, false) }

// applyFrom is apply; direct says the caller is an API caller (not a
// connection's reader, not the event hub): a message to a peer with nothing
// queued is then sent from the caller's goroutine once d.mu is released,
// which saves the writer's wake-up on the request path. A reader never
// sends itself: blocked on a full socket it would stop reading, and two
// nodes doing so would wait for each other for ever.
func (d *DLM) applyFrom(rd dlm.Ready, direct bool) []func() {
	var notes []func()
	for _, m := range rd.Messages {
		p := d.peer(m.To)
		qm := queuedMsg{typ: m.Type, key: m.Key, payload: m.Payload}
		if direct && p.claim() {
			notes = append(notes, func() { p.sendDirect(qm) })
			continue
		}
		p.push(qm)
	}
	for _, e := range rd.Events {
		e := e
		switch e.Kind {
		case dlm.EventJoined:
			for _, ch := range d.joins[e.Domain] {
				ch <- nil
			}
			delete(d.joins, e.Domain)
		case dlm.EventJoinFailed:
			for _, ch := range d.joins[e.Domain] {
				ch <- fmt.Errorf("dlm: joining %s: %s", e.Domain, e.Detail)
			}
			delete(d.joins, e.Domain)
		case dlm.EventLeft:
			for _, ch := range d.leaves[e.Domain] {
				ch <- nil
			}
			delete(d.leaves, e.Domain)
		case dlm.EventDeadlock:
			// Routine for a file system's PR->EX raises (the refused node
			// gives way and asks again); counted in dlm state.
			d.a.log.Debug("dlm: conversion deadlock broken", "domain", e.Domain, "resource", e.Resource, "detail", e.Detail)
		}
		for _, fn := range d.subs {
			fn := fn
			notes = append(notes, func() { fn(e) })
		}
	}
	for _, a := range rd.ASTs {
		if ch := d.waits[a.ID]; ch != nil {
			ch <- a
			delete(d.waits, a.ID)
		}
		if a.Mode == dlm.ModeNone {
			delete(d.basts, a.ID)
		}
	}
	for _, b := range rd.BASTs {
		if fn := d.basts[b.ID]; fn != nil {
			b := b
			notes = append(notes, func() { fn(b) })
		}
	}
	return notes
}

func (d *DLM) peer(x base.NodeID) *dlmPeer {
	p := d.peers[x]
	if p == nil {
		p = &dlmPeer{sendQueue: newSendQueue(func(m queuedMsg) error {
			if len(m.payload) > cnet.MaxPayload {
				// The core keeps every message within a frame
				// (MaxLocksPerResource); this is a bug, and loud.
				d.a.logf("dlm: BUG: a %d-byte message to node %d exceeds the %d-byte frame: dropped", len(m.payload), x, cnet.MaxPayload)
				return nil
			}
			return d.a.Send(x, m.typ, m.key, m.payload)
		}, d.stop)}
		d.peers[x] = p
	}
	return p
}

// OnEvent registers fn for the DLM's events (joined, recovered, released,
// deadlock...): the file system learns there when it may recover a dead
// node. fn runs outside the DLM's lock and must not block for long.
func (d *DLM) OnEvent(fn func(dlm.Event)) {
	d.mu.Lock()
	d.subs = append(d.subs, fn)
	d.mu.Unlock()
}

// Join makes this node a member of domain name and waits until it is (or
// ctx ends). gate: keep a dead node's locks until RecoveryDone (a file
// system's domain). Joining a domain this node is in already is a no-op.
func (d *DLM) Join(ctx context.Context, name string, gate bool) error {
	d.mu.Lock()
	if d.closed != nil {
		d.mu.Unlock()
		return d.closed
	}
	for _, s := range d.core.State() {
		if s.Domain == name && (s.State == "JOINED" || s.State == "LEAVING") {
			d.mu.Unlock()
			return nil
		}
	}
	if err := d.handleKey(dlm.Key(name)); err != nil {
		d.mu.Unlock()
		return err
	}
	ch := make(chan error, 1)
	rd, err := d.core.Join(name, gate)
	if err != nil && !errors.Is(err, dlm.ErrJoined) {
		d.mu.Unlock()
		return err
	}
	d.joins[name] = append(d.joins[name], ch)
	notes := d.apply(rd)
	d.mu.Unlock()
	run(notes)
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Leave takes this node out of domain name (it must hold no lock there) and
// waits until it is out.
func (d *DLM) Leave(ctx context.Context, name string) error {
	d.mu.Lock()
	if d.closed != nil {
		d.mu.Unlock()
		return d.closed
	}
	ch := make(chan error, 1)
	rd, err := d.core.Leave(name)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	d.leaves[name] = append(d.leaves[name], ch)
	notes := d.apply(rd)
	d.mu.Unlock()
	run(notes)
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RecoveryDone tells the DLM that the file system recovered dead node n in
// domain name: its locks are dropped everywhere.
func (d *DLM) RecoveryDone(name string, n base.NodeID) error {
	return d.call(func() (dlm.Ready, error) { return d.core.RecoveryDone(name, n) })
}

func (d *DLM) call(f func() (dlm.Ready, error)) error {
	d.mu.Lock()
	if d.closed != nil {
		d.mu.Unlock()
		return d.closed
	}
	rd, err := f()
	notes := d.apply(rd)
	d.mu.Unlock()
	run(notes)
	return err
}

// State is the debug view of every domain (o2dlm's dlm_state).
func (d *DLM) State() []dlm.DomainState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.core.State()
}

// DomainMembers returns the nodes in domain name (see dlm.Node.DomainMembers).
func (d *DLM) DomainMembers(name string) []base.NodeID {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.core.DomainMembers(name)
}

// Locks is the debug view of one resource, or of every resource known here
// when name is empty (o2dlm's dlm_locks).
func (d *DLM) Locks(domain, name string) ([]dlm.ResourceState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.core.Locks(domain, name)
}

// Lock is one of this node's locks, held through the Go API.
type Lock struct {
	d      *DLM
	ID     dlm.LockID
	Domain string
	Name   string
}

// ErrNotGranted says how a request ended when it was not granted.
type ErrNotGranted struct{ Status dlm.Status }

func (e *ErrNotGranted) Error() string { return "dlm: not granted: " + e.Status.String() }

// wait waits for the AST of the operation pending on id; if ctx ends first
// the operation is cancelled and its outcome (cancelled, or granted after
// all) is still waited for.
func (d *DLM) wait(ctx context.Context, id dlm.LockID, ch chan dlm.AST) dlm.AST {
	select {
	case a := <-ch:
		return a
	case <-ctx.Done():
	}
	_ = d.call(func() (dlm.Ready, error) { return d.core.Cancel(id) })
	return <-ch
}

// Lock requests a new lock on domain/name in mode and waits for its
// outcome. With dlm.NoQueue it fails at once (ErrNotGranted{StatusBusy}) if
// the lock cannot be granted now; when ctx ends the request is cancelled.
// onBAST, if not nil, is called (outside the DLM's lock) when another
// request waits for a mode this lock excludes. The AST carries the value
// block read with the grant.
func (d *DLM) Lock(ctx context.Context, domain, name string, mode dlm.Mode, flags dlm.Flags, onBAST func(dlm.BAST)) (*Lock, dlm.AST, error) {
	d.mu.Lock()
	if d.closed != nil {
		d.mu.Unlock()
		return nil, dlm.AST{}, d.closed
	}
	id, rd, err := d.core.Lock(domain, name, mode, flags)
	if err != nil {
		d.mu.Unlock()
		return nil, dlm.AST{}, err
	}
	a, done := outcome(rd, id)
	var ch chan dlm.AST
	if !done {
		ch = make(chan dlm.AST, 1)
		d.waits[id] = ch
	}
	if onBAST != nil {
		d.basts[id] = onBAST
	}
	notes := d.applyFrom(rd, true)
	d.mu.Unlock()
	run(notes)
	if !done {
		a = d.wait(ctx, id, ch)
	}
	if a.Status != dlm.StatusOK {
		return nil, a, &ErrNotGranted{Status: a.Status}
	}
	return &Lock{d: d, ID: id, Domain: domain, Name: name}, a, nil
}

// op runs one operation on a lock and waits for its AST.
func (l *Lock) op(ctx context.Context, f func() (dlm.Ready, error)) (dlm.AST, error) {
	d := l.d
	d.mu.Lock()
	if d.closed != nil {
		d.mu.Unlock()
		return dlm.AST{}, d.closed
	}
	rd, err := f()
	if err != nil {
		d.mu.Unlock()
		return dlm.AST{}, err
	}
	// The core answers at once when this node masters the resource: no
	// need to wait for the AST then. Otherwise it comes later, through
	// apply, under d.mu — which is held from the call until here.
	a, done := outcome(rd, l.ID)
	var ch chan dlm.AST
	if !done {
		ch = make(chan dlm.AST, 1)
		d.waits[l.ID] = ch
	}
	notes := d.applyFrom(rd, true)
	d.mu.Unlock()
	run(notes)
	if !done {
		a = d.wait(ctx, l.ID, ch)
	}
	if a.Status != dlm.StatusOK {
		return a, &ErrNotGranted{Status: a.Status}
	}
	return a, nil
}

// outcome finds the AST of lock id's operation in rd, when the core
// completed it at once.
func outcome(rd dlm.Ready, id dlm.LockID) (dlm.AST, bool) {
	for _, a := range rd.ASTs {
		if a.ID == id {
			return a, true
		}
	}
	return dlm.AST{}, false
}

// Convert changes the lock's mode; from PW or EX a non-nil lvb is stored.
func (l *Lock) Convert(ctx context.Context, mode dlm.Mode, flags dlm.Flags, lvb *dlm.LVB) (dlm.AST, error) {
	return l.op(ctx, func() (dlm.Ready, error) { return l.d.core.Convert(l.ID, mode, flags, lvb) })
}

// Unlock releases the lock; from PW or EX a non-nil lvb is stored.
func (l *Lock) Unlock(lvb *dlm.LVB) error {
	_, err := l.op(context.Background(), func() (dlm.Ready, error) { return l.d.core.Unlock(l.ID, lvb) })
	return err
}

// Control-API methods.

// LockParams are the parameters of the dlm.lock control method.
type LockParams struct {
	Domain    string `json:"domain"`
	Name      string `json:"name"`
	Mode      string `json:"mode"`                 // NL, CR, CW, PR, PW, EX (default EX)
	Try       bool   `json:"try,omitempty"`        // NOQUEUE: fail at once when busy
	TimeoutMs int64  `json:"timeout_ms,omitempty"` // 0: wait as long as the client does
	// Notify asks for blocking notifications: while the lock is held, a
	// "dlm.bast" event (BASTEvent) comes on the connection whenever another
	// request waits for a mode it excludes, as dlmfs and libo2dlm tell
	// their holders.
	Notify bool `json:"notify,omitempty"`
}

// BASTEvent is the data of a "dlm.bast" control event: another request
// waits for Mode, which lock ID (of this connection) excludes.
type BASTEvent struct {
	ID     uint64 `json:"id"`
	Domain string `json:"domain"`
	Name   string `json:"name"`
	Mode   string `json:"mode"`
}

// LockResult is the answer of dlm.lock and dlm.convert.
type LockResult struct {
	Status   string `json:"status"` // ok, busy, timed out (dlm.convert: also deadlock, cancelled...)
	Detail   string `json:"detail,omitempty"`
	ID       uint64 `json:"id,omitempty"`
	Mode     string `json:"mode,omitempty"`
	LVBValid bool   `json:"lvb_valid,omitempty"`
	LVB      string `json:"lvb,omitempty"` // hex
}

// UnlockParams are the parameters of dlm.unlock and dlm.convert.
type UnlockParams struct {
	ID   uint64 `json:"id"`
	Mode string `json:"mode,omitempty"` // dlm.convert: the new mode
	LVB  string `json:"lvb,omitempty"`  // hex: the value block to store (from PW/EX)
	// dlm.convert: Try refuses at once (status busy) a conversion that
	// cannot be granted now; TimeoutMs cancels a pending one after that
	// long (status timed out, the lock keeps its mode).
	Try       bool  `json:"try,omitempty"`
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
}

// LocksParams are the parameters of dlm.locks.
type LocksParams struct {
	Domain string `json:"domain"`
	Name   string `json:"name,omitempty"`
}

// LVBHex renders a value block for the control API (trailing zero bytes
// trimmed).
func LVBHex(v *dlm.LVB) string {
	n := len(v)
	for n > 0 && v[n-1] == 0 {
		n--
	}
	return hex.EncodeToString(v[:n])
}

// ParseLVBHex is the inverse of LVBHex.
func ParseLVBHex(s string) (*dlm.LVB, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("value block %q: %w", s, err)
	}
	if len(b) > dlm.LVBLen {
		return nil, fmt.Errorf("value block of %d bytes: at most %d", len(b), dlm.LVBLen)
	}
	var v dlm.LVB
	copy(v[:], b)
	return &v, nil
}

// connLocks are the locks a control client holds: they are released when
// its connection goes.
type connLocks struct {
	mu    sync.Mutex
	locks map[dlm.LockID]*Lock
}

// ownerOf returns the locks of the client connection whose context is ctx;
// they are released when it ends.
func (d *DLM) ownerOf(ctx context.Context) *connLocks {
	d.ctl.mu.Lock()
	defer d.ctl.mu.Unlock()
	if d.ctl.owners == nil {
		d.ctl.owners = map[context.Context]*connLocks{}
	}
	o := d.ctl.owners[ctx]
	if o != nil {
		return o
	}
	o = &connLocks{locks: map[dlm.LockID]*Lock{}}
	d.ctl.owners[ctx] = o
	go func() {
		<-ctx.Done()
		d.ctl.mu.Lock()
		delete(d.ctl.owners, ctx)
		d.ctl.mu.Unlock()
		o.mu.Lock()
		held := o.locks
		o.locks = nil
		o.mu.Unlock()
		for _, l := range held {
			_ = l.Unlock(nil)
		}
	}()
	return o
}

// clusterMember reports whether this node has had its first membership:
// before it, no domain can be joined.
func (d *DLM) clusterMember() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inCluster
}

// notInCluster explains why a request waits or fails on a node outside the
// cluster.
func (d *DLM) notInCluster() string {
	return fmt.Sprintf("node %d is not in the cluster yet (no membership: is its heartbeat started, and does it see the other nodes?)", d.self)
}

// RegisterControl adds the DLM's methods to the control server: dlm.state,
// dlm.locks, dlm.lock, dlm.convert and dlm.unlock (once per server: a
// second call changes nothing). A lock taken with dlm.lock belongs to the
// client's connection: only it can convert or release it, and it is
// released when the connection closes (the client died), as a dlmfs lock
// is when its file is closed. With notify, its blocking notifications come
// on the connection as "dlm.bast" events.
func (d *DLM) RegisterControl(cs *ControlServer) {
	d.ctl.mu.Lock()
	if d.ctl.servers[cs] {
		d.ctl.mu.Unlock()
		return
	}
	if d.ctl.servers == nil {
		d.ctl.servers = map[*ControlServer]bool{}
	}
	d.ctl.servers[cs] = true
	d.ctl.mu.Unlock()
	cs.Register("dlm.state", func(_ context.Context, req *ControlRequest) (any, error) {
		return d.State(), nil
	})
	cs.Register("dlm.locks", func(_ context.Context, req *ControlRequest) (any, error) {
		var p LocksParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		return d.Locks(p.Domain, p.Name)
	})
	cs.Register("dlm.lock", func(ctx context.Context, req *ControlRequest) (any, error) {
		var p LockParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		mode := dlm.ModeEX
		if p.Mode != "" {
			m, err := dlm.ParseMode(p.Mode)
			if err != nil {
				return nil, err
			}
			mode = m
		}
		if p.TimeoutMs < 0 {
			return nil, fmt.Errorf("dlm.lock: timeout_ms %d is negative", p.TimeoutMs)
		}
		o := d.ownerOf(ctx)
		// A node outside the cluster cannot even join the domain: a trylock
		// says so at once instead of waiting for the membership.
		if p.Try && !d.clusterMember() {
			return nil, errors.New(d.notInCluster())
		}
		lctx := ctx
		if p.TimeoutMs > 0 {
			var cancel context.CancelFunc
			lctx, cancel = context.WithTimeout(ctx, time.Duration(p.TimeoutMs)*time.Millisecond)
			defer cancel()
		}
		if err := d.Join(lctx, p.Domain, false); err != nil {
			if lctx.Err() != nil && ctx.Err() == nil {
				r := LockResult{Status: "timed out", Detail: "joining domain " + p.Domain}
				if !d.clusterMember() {
					r.Detail = d.notInCluster()
				}
				return r, nil
			}
			return nil, err
		}
		var fl dlm.Flags
		if p.Try {
			fl |= dlm.NoQueue
		}
		var onBAST func(dlm.BAST)
		if p.Notify {
			onBAST = func(b dlm.BAST) {
				ControlNotify(ctx, fmt.Sprintf("dlm.bast %d", b.ID), "dlm.bast",
					BASTEvent{ID: uint64(b.ID), Domain: b.Domain, Name: b.Name, Mode: b.Mode.String()})
			}
		}
		l, a, err := d.Lock(lctx, p.Domain, p.Name, mode, fl, onBAST)
		var ng *ErrNotGranted
		switch {
		case errors.As(err, &ng) && ng.Status == dlm.StatusBusy:
			return LockResult{Status: "busy"}, nil
		case errors.As(err, &ng) && ng.Status == dlm.StatusCancelled && lctx.Err() != nil:
			return LockResult{Status: "timed out"}, nil
		case err != nil:
			return nil, err
		}
		o.mu.Lock()
		if o.locks == nil { // the client went while we waited
			o.mu.Unlock()
			_ = l.Unlock(nil)
			return nil, errors.New("dlm.lock: the client went away")
		}
		o.locks[l.ID] = l
		o.mu.Unlock()
		r := LockResult{Status: "ok", ID: uint64(l.ID), Mode: a.Mode.String(), LVBValid: a.LVBValid}
		if a.LVBRead {
			r.LVB = LVBHex(&a.LVB)
		}
		return r, nil
	})
	find := func(ctx context.Context, id uint64) (*connLocks, *Lock, error) {
		o := d.ownerOf(ctx)
		o.mu.Lock()
		defer o.mu.Unlock()
		l := o.locks[dlm.LockID(id)]
		if l == nil {
			return nil, nil, fmt.Errorf("no lock %d on this connection", id)
		}
		return o, l, nil
	}
	cs.Register("dlm.unlock", func(ctx context.Context, req *ControlRequest) (any, error) {
		var p UnlockParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		o, l, err := find(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		var v *dlm.LVB
		if p.LVB != "" {
			if v, err = ParseLVBHex(p.LVB); err != nil {
				return nil, err
			}
		}
		if err := l.Unlock(v); err != nil {
			return nil, err
		}
		o.mu.Lock()
		delete(o.locks, l.ID)
		o.mu.Unlock()
		return "ok", nil
	})
	cs.Register("dlm.convert", func(ctx context.Context, req *ControlRequest) (any, error) {
		var p UnlockParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		_, l, err := find(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		mode, err := dlm.ParseMode(p.Mode)
		if err != nil {
			return nil, err
		}
		if p.TimeoutMs < 0 {
			return nil, fmt.Errorf("dlm.convert: timeout_ms %d is negative", p.TimeoutMs)
		}
		var v *dlm.LVB
		if p.LVB != "" {
			if v, err = ParseLVBHex(p.LVB); err != nil {
				return nil, err
			}
		}
		cctx := ctx
		if p.TimeoutMs > 0 {
			var cancel context.CancelFunc
			cctx, cancel = context.WithTimeout(ctx, time.Duration(p.TimeoutMs)*time.Millisecond)
			defer cancel()
		}
		var fl dlm.Flags
		if p.Try {
			fl |= dlm.NoQueue
		}
		a, err := l.Convert(cctx, mode, fl, v)
		var ng *ErrNotGranted
		if errors.As(err, &ng) {
			st := ng.Status.String()
			if ng.Status == dlm.StatusCancelled && cctx.Err() != nil && ctx.Err() == nil {
				st = "timed out"
			}
			return LockResult{Status: st, ID: uint64(l.ID), Mode: a.Mode.String()}, nil
		}
		if err != nil {
			return nil, err
		}
		r := LockResult{Status: "ok", ID: uint64(l.ID), Mode: a.Mode.String(), LVBValid: a.LVBValid}
		if a.LVBRead {
			r.LVB = LVBHex(&a.LVB)
		}
		return r, nil
	})
}
