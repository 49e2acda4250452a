package dlm

import (
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"o2go/internal/base"
)

// Errors of the local API. They describe a misuse by the caller (or a lock
// gone away); nothing changes when one is returned.
var (
	ErrUnknownDomain = errors.New("dlm: not a member of this domain")
	ErrUnknownLock   = errors.New("dlm: no such lock")
	ErrBusy          = errors.New("dlm: an operation is already pending on this lock")
	ErrNotGranted    = errors.New("dlm: the lock is not granted")
	ErrNotPending    = errors.New("dlm: nothing pending to cancel")
	ErrLeaving       = errors.New("dlm: the domain is being left")
	ErrHasLocks      = errors.New("dlm: the domain still has locks on this node")
	ErrJoined        = errors.New("dlm: already a member of this domain")
	ErrKeyCollision  = errors.New("dlm: another domain has the same key")
	ErrNotRecovering = errors.New("dlm: that node is not waiting for recovery in this domain")
)

// LockID names one lock of this node. It is also the lock's cookie on the
// wire ("node:cookie" in the debug views); it is never reused by a Node.
type LockID uint64

// Key is the domain key: the kernel's crc32_le(0, name) as o2dlm computes it
// (the manual's 45F81E3B6F2B48CCAAD1AE7945AB2001 has key 0x10748e61).
func Key(domain string) uint32 {
	return ^crc32.Update(^uint32(0), crc32.IEEETable, []byte(domain))
}

// Config is what a Node needs to start.
type Config struct {
	// Self is this node's number.
	Self base.NodeID
	// MaxPayload bounds the payload of one message, in bytes. Transfers of
	// resource state during reconfiguration are split to fit. Default 32 KiB;
	// it must be at least 4 KiB (the largest single resource state with a
	// handful of locks fits easily; bigger states are sent alone).
	MaxPayload int
}

// DefaultMaxPayload is MaxPayload when Config leaves it 0.
const DefaultMaxPayload = 32 << 10

// Outgoing is a message to hand to the cluster messaging layer.
type Outgoing struct {
	To      base.NodeID
	Type    uint16
	Key     uint32
	Payload []byte
}

// AST is a completion notification: the operation on lock ID ended.
type AST struct {
	ID       LockID
	Domain   string
	Name     string
	Op       Op
	Status   Status
	Mode     Mode // granted mode now; ModeNone once the lock is gone
	LVBRead  bool // the grant read the value block into LVB
	LVBValid bool // false: a holder that could have written it died
	LVB      LVB
}

// BAST is a blocking notification: another lock waits for Mode, which the
// holder's granted mode excludes.
type BAST struct {
	ID     LockID
	Domain string
	Name   string
	Mode   Mode
}

// EventKind says what an Event reports.
type EventKind uint8

// The events.
const (
	EventJoined     EventKind = iota // this node is a member of Domain
	EventJoinFailed                  // the join was refused (Detail says why)
	EventLeft                        // this node has left Domain
	EventRecovered                   // DLM recovery of Dead ended here (or it still waits when this node joined): the file system may recover it
	EventReleased                    // Dead's locks were dropped (RecoveryDone somewhere)
	EventDeadlock                    // a conversion deadlock was refused (this node is the master)
)

var eventNames = []string{"joined", "join failed", "left", "recovered", "released", "deadlock"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event reports a change of domain membership or recovery.
type Event struct {
	Kind     EventKind
	Domain   string
	Dead     DeadNode // EventRecovered, EventReleased
	Resource string   // EventDeadlock
	Owner    base.NodeID
	Cookie   uint64
	Detail   string
}

// Ready is what a call asks the caller to do: messages to send (in order, per
// destination), and notifications to deliver. Its slices belong to the Node
// and are valid until the next call on it.
type Ready struct {
	Messages []Outgoing
	ASTs     []AST
	BASTs    []BAST
	Events   []Event
}

// Empty reports whether there is nothing to do.
func (r *Ready) Empty() bool {
	return len(r.Messages) == 0 && len(r.ASTs) == 0 && len(r.BASTs) == 0 && len(r.Events) == 0
}

// Node is the lock manager of one cluster node: every domain it is a member
// of, its locks, the master state of its share of the resources, and, when
// it is the lowest live node, the registrar role that orders domain
// membership changes. It is not safe for concurrent use; the agent calls it
// from one goroutine.
type Node struct {
	self       base.NodeID
	maxPayload int
	now        time.Duration

	mseq      uint64
	startSeq  uint64 // membership seq of the first snapshot (deaths before it have no seq here)
	live      base.NodeMap
	downSeq   [base.MaxNodes]uint64
	registrar base.NodeID

	domains map[uint32]*domain
	byName  map[string]*domain
	locks   map[LockID]*lock
	nextID  LockID

	held      map[heldKey][]inbound
	loop      []inbound
	deadlines map[LockID]time.Duration

	reg *registrar
	rd  Ready

	streams     [base.MaxNodes]*peerStream // numbered, acknowledged messages per peer (streams.go)
	streamStats StreamStats

	freeLocks   []*lock  // lock structs to reuse (the local lock path allocates nothing)
	freeEntries []*entry // entries to reuse, likewise
}

func (n *Node) allocEntry() *entry {
	if k := len(n.freeEntries); k > 0 {
		e := n.freeEntries[k-1]
		n.freeEntries = n.freeEntries[:k-1]
		return e
	}
	return new(entry)
}

func (n *Node) freeEntry(e *entry) {
	*e = entry{}
	if len(n.freeEntries) < maxFreeLocks {
		n.freeEntries = append(n.freeEntries, e)
	}
}

const maxFreeLocks = 1024

func (n *Node) allocLock() *lock {
	if k := len(n.freeLocks); k > 0 {
		l := n.freeLocks[k-1]
		n.freeLocks = n.freeLocks[:k-1]
		return l
	}
	return new(lock)
}

func (n *Node) freeLock(l *lock) {
	*l = lock{}
	if len(n.freeLocks) < maxFreeLocks {
		n.freeLocks = append(n.freeLocks, l)
	}
}

// heldKey names one FIFO of held messages: per sender, domain and role.
// Messages to or from the registrar role form their own FIFO, so that a
// participant message waiting for an epoch never holds back the freeze that
// opens it.
type heldKey struct {
	from base.NodeID
	key  uint32
	reg  bool
}

// registrarRole reports whether m is a message to or from the registrar.
func registrarRole(m message) bool {
	switch m.(type) {
	case *joinReq, *joinRefused, *leaveReq, *freezeMsg, *doneMsg, *completeMsg,
		*releaseReq, *releasedMsg, *syncQuery, *syncReply:
		return true
	}
	return false
}

type inbound struct {
	from base.NodeID
	key  uint32
	mseq uint64 // the sender's membership sequence number when it sent m
	m    message
}

// New returns the lock manager of node cfg.Self. Its first call must be
// Membership: until it knows who is alive it takes no decision (in
// particular it does not act as registrar).
func New(cfg Config) *Node {
	if !cfg.Self.Valid() {
		panic("dlm: Config.Self is not a node number")
	}
	mp := cfg.MaxPayload
	if mp == 0 {
		mp = DefaultMaxPayload
	}
	if mp < 4096 {
		mp = 4096
	}
	n := &Node{
		self:       cfg.Self,
		maxPayload: mp,
		domains:    make(map[uint32]*domain),
		byName:     make(map[string]*domain),
		locks:      make(map[LockID]*lock),
		held:       make(map[heldKey][]inbound),
		deadlines:  make(map[LockID]time.Duration),
		registrar:  base.InvalidNode,
	}
	n.live.Add(cfg.Self)
	return n
}

// Self is this node's number.
func (n *Node) Self() base.NodeID { return n.self }

// begin starts a call: the Ready of the previous call is discarded.
func (n *Node) begin() {
	n.rd.Messages = n.rd.Messages[:0]
	n.rd.ASTs = n.rd.ASTs[:0]
	n.rd.BASTs = n.rd.BASTs[:0]
	n.rd.Events = n.rd.Events[:0]
}

// finish runs what the call queued for this node itself, then returns Ready.
func (n *Node) finish() Ready {
	for len(n.loop) > 0 {
		in := n.loop[0]
		n.loop = n.loop[1:]
		_ = n.deliver(in)
	}
	n.loop = n.loop[:0]
	if base.Enabled {
		if err := n.CheckInvariants(); err != nil {
			panic(&base.AssertionError{Msg: err.Error()})
		}
	}
	return n.rd
}

// send queues m for node to (delivered to this node itself at the end of the
// call when to is Self).
func (n *Node) send(to base.NodeID, key uint32, m message) {
	if to == n.self {
		n.loop = append(n.loop, inbound{from: n.self, key: key, mseq: n.mseq, m: m})
		return
	}
	n.rd.Messages = append(n.rd.Messages, n.outgoing(to, key, m))
}

func (n *Node) event(e Event) { n.rd.Events = append(n.rd.Events, e) }

// Membership sets the cluster's live nodes as of membership sequence number
// seq: how a node that starts, or restarts, learns the membership the others
// already share. live must include Self.
func (n *Node) Membership(seq uint64, live base.NodeMap) Ready {
	n.begin()
	if seq >= n.mseq && live.Has(n.self) {
		if n.startSeq == 0 {
			n.startSeq = seq
		}
		for _, x := range n.live.Minus(live).Nodes() {
			n.nodeDown(seq, x)
		}
		for _, x := range live.Minus(n.live).Nodes() {
			n.nodeUp(seq, x)
		}
		n.mseq = seq
		n.updateRegistrar()
		n.drainHeld()
	}
	return n.finish()
}

// NodeUp reports that node x joined the cluster, as membership event seq.
// Every node must see the same events in the same order with the same
// numbers (the cluster stack's promise); an event not newer than the last
// one is ignored.
func (n *Node) NodeUp(seq uint64, x base.NodeID) Ready {
	n.begin()
	if seq > n.mseq && x.Valid() {
		n.mseq = seq
		n.nodeUp(seq, x)
		n.updateRegistrar()
		n.drainHeld()
	}
	return n.finish()
}

// NodeDown reports that node x died (was fenced), as membership event seq.
// The DLM is the first subscriber: its recovery of x's share of the
// resources starts here.
func (n *Node) NodeDown(seq uint64, x base.NodeID) Ready {
	n.begin()
	if seq > n.mseq && x.Valid() && x != n.self {
		n.mseq = seq
		n.nodeDown(seq, x)
		n.updateRegistrar()
		n.drainHeld()
	}
	return n.finish()
}

func (n *Node) nodeUp(seq uint64, x base.NodeID) {
	n.live.Add(x)
	if x != n.self {
		n.streamPeerUp(x)
	}
}

func (n *Node) nodeDown(seq uint64, x base.NodeID) {
	if !n.live.Has(x) || x == n.self {
		return
	}
	n.live.Remove(x)
	n.downSeq[x] = seq
	n.streamPeerDied(seq, x)
	// Held messages of the dead incarnation go; a newer incarnation's (sent
	// after this event) wait for its NodeUp.
	for k, q := range n.held {
		if k.from == x {
			q = slices.DeleteFunc(q, func(in inbound) bool { return in.mseq < seq })
			if len(q) == 0 {
				delete(n.held, k)
			} else {
				n.held[k] = q
			}
		}
	}
	for _, d := range n.sortedDomains() {
		d.memberDied(x)
	}
	if n.reg != nil {
		n.reg.nodeDown(DeadNode{Node: x, Seq: seq})
	}
}

// updateRegistrar makes the lowest live node the registrar; on a change the
// new registrar collects every node's domain state, and every node sends its
// unanswered requests again.
func (n *Node) updateRegistrar() {
	r := n.live.Lowest()
	if r == n.registrar {
		return
	}
	n.registrar = r
	if r == n.self {
		n.reg = newRegistrar(n)
		n.reg.startSync()
	} else {
		n.reg = nil
	}
	for _, d := range n.sortedDomains() {
		d.resendRequests()
	}
}

// Tick tells the Node the time (monotonic, any origin): requests whose
// deadline has passed are cancelled with StatusTimedOut, and peers get an
// acknowledgement of what came from them since the last one (streams.go).
// Call it every 100 ms or so.
func (n *Node) Tick(now time.Duration) Ready {
	n.begin()
	if now > n.now {
		n.now = now
	}
	var expired []LockID
	for id, at := range n.deadlines {
		if at <= n.now {
			expired = append(expired, id)
		}
	}
	slices.Sort(expired)
	for _, id := range expired {
		delete(n.deadlines, id)
		if l := n.locks[id]; l != nil && (l.op == OpLock || l.op == OpConvert) {
			l.timedOut = true
			l.d.cancel(l)
		}
	}
	n.sendAcks()
	return n.finish()
}

// Receive handles a message a peer sent: msgType and key from the messaging
// layer's header, payload as sent. A message that cannot be decoded, or that
// makes no sense here, is refused with an error (wrapping ErrMessage) and
// changes nothing.
func (n *Node) Receive(from base.NodeID, msgType uint16, key uint32, payload []byte) (Ready, error) {
	n.begin()
	if !from.Valid() || from == n.self {
		return n.finish(), &MessageError{Kind: "message", From: from, Msg: "not from a peer"}
	}
	env, m, err := decode(msgType, payload)
	if err != nil {
		var me *MessageError
		if errors.As(err, &me) {
			me.From = from
		}
		return n.finish(), err
	}
	if !n.accept(from, env) {
		// A duplicate, past a gap, superseded, or an acknowledgement, which
		// may ask for what it does not acknowledge again.
		if a, ok := m.(*ackMsg); ok && a.Resend && env.AckStream == n.stream(from).out && !n.stale(inbound{from: from, mseq: env.MSeq}) {
			n.resendTo(from)
		}
		return n.finish(), nil
	}
	err = n.deliver(inbound{from: from, key: key, mseq: env.MSeq, m: m})
	return n.finish(), err
}

// deliver processes a message now, or holds it (with every later message of
// the same sender and key) until this node has caught up with what it
// presumes. A message of a dead incarnation of its sender is dropped: the
// recovery of that death replaces whatever it said.
func (n *Node) deliver(in inbound) error {
	hk := heldKey{in.from, in.key, registrarRole(in.m)}
	if q, ok := n.held[hk]; ok {
		n.held[hk] = append(q, in)
		return nil
	}
	if !n.ready(in) {
		n.held[hk] = []inbound{in}
		return nil
	}
	if n.stale(in) {
		return nil
	}
	err := n.process(in)
	if len(n.held) > 0 {
		n.drainHeld()
	}
	return err
}

// stale reports whether in comes from a dead incarnation of its sender: the
// sender is down as of this node's membership, or it sent in before a death
// of its number that this node has seen.
func (n *Node) stale(in inbound) bool {
	return !n.live.Has(in.from) || in.mseq < n.downSeq[in.from]
}

// drainHeld processes held messages that have become processable, in a fixed
// order, until none is.
func (n *Node) drainHeld() {
	for progress := true; progress && len(n.held) > 0; {
		progress = false
		keys := make([]heldKey, 0, len(n.held))
		for k := range n.held {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b heldKey) int {
			if a.from != b.from {
				return int(a.from) - int(b.from)
			}
			if a.key != b.key {
				return cmpU32(a.key, b.key)
			}
			switch {
			case a.reg == b.reg:
				return 0
			case a.reg:
				return -1
			}
			return 1
		})
		for _, k := range keys {
			for {
				q := n.held[k]
				if len(q) == 0 {
					delete(n.held, k)
					break
				}
				if !n.ready(q[0]) {
					break
				}
				n.held[k] = q[1:]
				if !n.stale(q[0]) {
					_ = n.process(q[0])
				}
				progress = true
			}
		}
	}
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ready reports whether a message can be processed now: it waits until this
// node has seen every membership event its sender had seen, and a
// reconfiguration message of an epoch this node has not entered yet waits for
// the registrar's freeze.
func (n *Node) ready(in inbound) bool {
	if in.mseq > n.mseq {
		return false
	}
	var epoch uint64
	switch m := in.m.(type) {
	case *markerMsg:
		epoch = m.Epoch
	case *transferEnd:
		epoch = m.Epoch
	case *transferMsg:
		epoch = m.Epoch
	case *reportMsg:
		epoch = m.Epoch
	default:
		return true
	}
	d := n.domains[in.key]
	if d == nil {
		return true // processed (and dropped) at once
	}
	return epoch <= d.currentEpoch()
}

// process dispatches one message to its handler.
func (n *Node) process(in inbound) error {
	from, key, m := in.from, in.key, in.m
	switch m.(type) {
	case *joinReq, *leaveReq, *doneMsg, *releaseReq, *syncReply:
		if n.reg == nil {
			return nil // not the registrar (any more): the sender asks again
		}
		return n.reg.handle(in)
	case *syncQuery:
		if from != n.registrar {
			return nil
		}
		n.send(from, 0, n.syncReply(in.mseq))
		return nil
	}
	d := n.domains[key]
	if d == nil {
		switch m.(type) {
		case *lockReq, *lockReply, *bastMsg, *transferMsg, *reportMsg:
			return &MessageError{Kind: m.kind().String(), From: from, Msg: fmt.Sprintf("no domain with key %#x here", key)}
		}
		return nil
	}
	switch m := m.(type) {
	case *lockReq:
		return d.masterRequest(from, m)
	case *lockReply:
		return d.holderReply(from, m)
	case *bastMsg:
		return d.holderBast(from, m)
	case *freezeMsg, *completeMsg, *releasedMsg, *joinRefused:
		if from != n.registrar {
			return nil
		}
		switch m := m.(type) {
		case *freezeMsg:
			return d.onFreeze(from, m)
		case *completeMsg:
			d.onComplete(m)
		case *releasedMsg:
			d.onReleased(m.Dead)
		case *joinRefused:
			d.onJoinRefused(m)
		}
		return nil
	case *markerMsg:
		d.onMarker(from, m)
		return nil
	case *transferEnd:
		d.onTransferEnd(from, m)
		return nil
	case *transferMsg:
		return d.onTransfer(from, m)
	case *reportMsg:
		return d.onReport(from, m)
	}
	return &MessageError{Kind: m.kind().String(), From: from, Msg: "unexpected"}
}

func (n *Node) sortedDomains() []*domain {
	ds := make([]*domain, 0, len(n.domains))
	for _, d := range n.domains {
		ds = append(ds, d)
	}
	slices.SortFunc(ds, func(a, b *domain) int { return cmpU32(a.key, b.key) })
	return ds
}

// syncReply describes every domain this node knows, for a new registrar.
func (n *Node) syncReply(query uint64) *syncReply {
	r := &syncReply{QueryMSeq: query}
	for _, d := range n.sortedDomains() {
		r.Domains = append(r.Domains, d.report())
	}
	return r
}

// Join asks to become a member of domain name. gate makes the domain keep a
// dead node's locks (blocking what they exclude) until RecoveryDone: what a
// file system needs; application domains usually pass false. EventJoined
// (or EventJoinFailed) follows; locks may be requested before, they wait.
func (n *Node) Join(name string, gate bool) (Ready, error) {
	n.begin()
	if err := checkDomainName(name); err != nil {
		return n.finish(), err
	}
	key := Key(name)
	d := n.domains[key]
	if d != nil && d.name != name {
		return n.finish(), fmt.Errorf("%w: %q and %q both have key %#x", ErrKeyCollision, name, d.name, key)
	}
	if d != nil && d.phase != phaseLeft {
		return n.finish(), fmt.Errorf("%w: %s", ErrJoined, name)
	}
	if d == nil {
		d = newDomain(n, name, key)
		n.domains[key] = d
		n.byName[name] = d
	}
	d.phase = phaseJoining
	d.gate = gate
	d.resendRequests()
	return n.finish(), nil
}

// Leave asks to leave domain name. The domain must hold no lock of this node
// any more; the resources this node masters move to the remaining members.
// EventLeft follows.
func (n *Node) Leave(name string) (Ready, error) {
	n.begin()
	d := n.byName[name]
	if d == nil || d.phase == phaseLeft {
		return n.finish(), fmt.Errorf("%w: %s", ErrUnknownDomain, name)
	}
	if d.phase == phaseLeaving {
		return n.finish(), nil
	}
	if d.nLocks > 0 {
		return n.finish(), fmt.Errorf("%w: %s (%d locks)", ErrHasLocks, name, d.nLocks)
	}
	d.phase = phaseLeaving
	d.resendRequests()
	return n.finish(), nil
}

// RecoveryDone tells the DLM that the file system has recovered dead node
// dead in domain name (replayed its journal...): the locks it held are
// dropped on every node and the requests they blocked can be granted.
// Any one member may call it, after EventRecovered.
func (n *Node) RecoveryDone(name string, dead base.NodeID) (Ready, error) {
	n.begin()
	d := n.byName[name]
	if d == nil || d.phase == phaseLeft {
		return n.finish(), fmt.Errorf("%w: %s", ErrUnknownDomain, name)
	}
	var found bool
	var dn DeadNode
	for _, p := range d.pending {
		if p.Node == dead && p.Seq >= dn.Seq {
			dn, found = p, true
		}
	}
	if !found {
		return n.finish(), fmt.Errorf("%w: node %d in %s", ErrNotRecovering, dead, name)
	}
	if !slices.Contains(d.releasing, dn) {
		d.releasing = append(d.releasing, dn)
	}
	n.send(n.registrar, 0, &releaseReq{Key: d.key, Dead: dn})
	return n.finish(), nil
}

// Lock requests a new lock on resource name of domain in mode. The AST for
// OpLock says how it ended (granted, or StatusBusy with NoQueue...).
func (n *Node) Lock(domainName, name string, mode Mode, flags Flags) (LockID, Ready, error) {
	n.begin()
	d := n.byName[domainName]
	if d == nil || d.phase == phaseLeft {
		return 0, n.finish(), fmt.Errorf("%w: %s", ErrUnknownDomain, domainName)
	}
	if d.phase == phaseLeaving {
		return 0, n.finish(), fmt.Errorf("%w: %s", ErrLeaving, domainName)
	}
	if err := checkName(name); err != nil {
		return 0, n.finish(), err
	}
	if !mode.Valid() {
		return 0, n.finish(), fmt.Errorf("dlm: lock mode %d is not a mode", int8(mode))
	}
	if flags&^validFlags != 0 {
		return 0, n.finish(), fmt.Errorf("dlm: unknown lock flags %#x", uint16(flags&^validFlags))
	}
	n.nextID++
	id := n.nextID
	l := d.newLock(id, name)
	l.op, l.rq, l.flags = OpLock, mode, flags
	d.sendOp(l) // may end the lock (NoQueue) and recycle l
	return id, n.finish(), nil
}

// Convert changes the mode of granted lock id. From PW or EX, a non-nil lvb
// is stored as the resource's value block.
func (n *Node) Convert(id LockID, mode Mode, flags Flags, lvb *LVB) (Ready, error) {
	n.begin()
	l := n.locks[id]
	switch {
	case l == nil:
		return n.finish(), fmt.Errorf("%w: %d", ErrUnknownLock, id)
	case l.op != OpNone:
		return n.finish(), fmt.Errorf("%w: lock %d (%s)", ErrBusy, id, l.op)
	case l.gr == ModeNone:
		return n.finish(), fmt.Errorf("%w: lock %d", ErrNotGranted, id)
	case !mode.Valid():
		return n.finish(), fmt.Errorf("dlm: lock mode %d is not a mode", int8(mode))
	case flags&^validFlags != 0:
		return n.finish(), fmt.Errorf("dlm: unknown lock flags %#x", uint16(flags&^validFlags))
	}
	l.op, l.rq, l.flags = OpConvert, mode, flags
	l.setWrite(lvb, lvbOpFor(l.gr, mode) == lvbWrite)
	l.d.sendOp(l)
	return n.finish(), nil
}

// Unlock releases granted lock id. From PW or EX, a non-nil lvb is stored.
func (n *Node) Unlock(id LockID, lvb *LVB) (Ready, error) {
	n.begin()
	l := n.locks[id]
	switch {
	case l == nil:
		return n.finish(), fmt.Errorf("%w: %d", ErrUnknownLock, id)
	case l.op != OpNone:
		return n.finish(), fmt.Errorf("%w: lock %d (%s)", ErrBusy, id, l.op)
	}
	l.op, l.rq = OpUnlock, ModeNone
	l.setWrite(lvb, writesLVB(l.gr))
	l.d.sendOp(l)
	return n.finish(), nil
}

// Cancel cancels the pending request (new lock or conversion) of lock id.
// Its AST then says StatusCancelled, unless it was granted first.
func (n *Node) Cancel(id LockID) (Ready, error) {
	n.begin()
	l := n.locks[id]
	switch {
	case l == nil:
		return n.finish(), fmt.Errorf("%w: %d", ErrUnknownLock, id)
	case l.op != OpLock && l.op != OpConvert:
		return n.finish(), fmt.Errorf("%w: lock %d", ErrNotPending, id)
	}
	l.d.cancel(l)
	return n.finish(), nil
}

// SetDeadline makes the pending request of lock id end with StatusTimedOut
// if it is not done when Tick reaches at.
func (n *Node) SetDeadline(id LockID, at time.Duration) error {
	l := n.locks[id]
	if l == nil {
		return fmt.Errorf("%w: %d", ErrUnknownLock, id)
	}
	if l.op != OpLock && l.op != OpConvert {
		return fmt.Errorf("%w: lock %d", ErrNotPending, id)
	}
	n.deadlines[id] = at
	return nil
}

func checkDomainName(s string) error {
	if len(s) == 0 || len(s) > MaxDomainLen {
		return fmt.Errorf("dlm: domain name %q: length must be 1..%d", s, MaxDomainLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '/' {
			return fmt.Errorf("dlm: domain name %q: byte %d (%#x) is not a printable character other than '/'", s, i, c)
		}
	}
	return nil
}

func checkName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen {
		return fmt.Errorf("dlm: resource name %q: length must be 1..%d", s, MaxNameLen)
	}
	return nil
}
