package dlm

import (
	"fmt"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
)

// Wire format. Every DLM message travels as an opaque payload of the cluster
// messaging layer, under a message type in [MsgTypeFirst, MsgTypeLast] and a
// key: the domain key (Key(name)) for domain messages, 0 for the cluster-wide
// registrar sync. Payloads are big-endian with no padding:
//
//	u8/u16/u32/u64   fixed-size integers
//	mode             u8: 0..5 = NL..EX, 0xff = none
//	string           u8 length, then that many bytes
//	lvb              64 bytes
//	nodemap          32 bytes, bit n%8 of byte n/8 set for node n (255 never)
//	deadlist         u16 count, then count x (u8 node, u64 membership seq)
//
// Every payload starts with an envelope (envelopeLen bytes):
//
//	u64 mseq        the sender's membership sequence number when it sent the
//	                message: a receiver holds the message until it has seen
//	                that membership event too, and drops the messages of a
//	                dead incarnation of their sender
//	u64 start       the sender incarnation's first membership sequence number
//	u32 stream      the sender's stream to this receiver (see streams.go)
//	u64 seq         the message's number in that stream; 0: not numbered
//	                (an acknowledgement alone)
//	u32 ack stream  the receiver's stream to the sender that ack is about
//	u64 ack         the last message of it the sender received in order
//
// Decoding refuses truncation, trailing bytes, out-of-range enums and counts
// that cannot fit in what is left; a refused message changes nothing.

// MsgTypeFirst is the first message type the DLM uses: the start of the range
// cluster/net reserves for it (o2dlm numbers its messages from 500 too);
// MsgTypeLast is the last one used.
const (
	MsgTypeFirst uint16 = cnet.TypeDLMFirst
	MsgTypeLast  uint16 = MsgTypeFirst + uint16(numKinds) - 1
)

// kind numbers the DLM's messages; the message type is MsgTypeFirst + kind.
type kind uint16

const (
	kLockReq     kind = iota // holder -> master: lock, convert, unlock, cancel
	kLockReply               // master -> holder: completion of one of those
	kBast                    // master -> holder: someone waits for this mode
	kJoinReq                 // node -> registrar: add me to a domain
	kJoinRefused             // registrar -> node: the domain cannot be joined
	kLeaveReq                // node -> registrar: take me out of a domain
	kFreeze                  // registrar -> participants: start reconfiguration
	kMarker                  // participant -> participants: my old-view traffic ends here
	kTransfer                // old master -> new master: full resource states
	kReport                  // holder -> new master: my locks (after a death)
	kTransferEnd             // participant -> participants: all my transfers were sent
	kDone                    // participant -> registrar: reconfiguration done here
	kComplete                // registrar -> participants: done everywhere
	kReleaseReq              // node -> registrar: the file system recovered a dead node
	kReleased                // registrar -> members: drop that dead node's locks
	kSyncQuery               // new registrar -> all: report your domains
	kSyncReply               // all -> new registrar
	kAck                     // any -> any: the envelope's acknowledgement alone
	numKinds
)

var kindNames = [numKinds]string{
	"lock request", "lock reply", "bast", "join request", "join refused", "leave request",
	"freeze", "marker", "transfer", "report", "transfer end", "done", "complete",
	"release request", "released", "sync query", "sync reply", "ack",
}

func (k kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint16(k))
}

// IsMsgType reports whether t is one of the DLM's message types.
func IsMsgType(t uint16) bool { return t >= MsgTypeFirst && t <= MsgTypeLast }

// Op is what a lock request asks for.
type Op uint8

// The operations on a lock.
const (
	OpNone    Op = iota
	OpLock       // a new lock
	OpConvert    // change the mode of a granted lock
	OpUnlock     // release a granted lock
	OpCancel     // cancel a pending lock or conversion
	numOps
)

var opNames = [numOps]string{"none", "lock", "convert", "unlock", "cancel"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Status is how an operation ended.
type Status uint8

// The outcomes of an operation, as carried by an AST.
const (
	StatusOK         Status = iota // granted / done
	StatusBusy                     // NOQUEUE and not grantable at once
	StatusDeadlock                 // a conversion that would deadlock was refused
	StatusCancelled                // cancelled by Cancel
	StatusTimedOut                 // cancelled because its deadline passed
	StatusNotPending               // internal: a cancel found nothing to cancel
	StatusAborted                  // the domain went away under the request
	StatusOverflow                 // the resource has MaxLocksPerResource locks already
	numStatuses
)

var statusNames = [numStatuses]string{"ok", "busy", "deadlock", "cancelled", "timed out", "not pending", "aborted", "too many locks"}

func (s Status) String() string {
	if s < numStatuses {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Flags modify a lock request.
type Flags uint16

// The request flags.
const (
	// NoQueue (trylock): refuse with StatusBusy instead of waiting.
	NoQueue Flags = 1 << iota
	// Recovery: may be granted past the locks a dead node still holds while
	// the file system recovers it (the file system's recovery uses it for
	// the dead node's journal and the like).
	Recovery
	validFlags = NoQueue | Recovery
)

func (f Flags) String() string {
	s := ""
	if f&NoQueue != 0 {
		s += "noqueue,"
	}
	if f&Recovery != 0 {
		s += "recovery,"
	}
	if s == "" {
		return "-"
	}
	return s[:len(s)-1]
}

// DeadNode names one death: the node and the membership sequence number of
// the NodeDown that reported it, so that two deaths of one node number are
// two different things.
type DeadNode struct {
	Node base.NodeID
	Seq  uint64
}

func (d DeadNode) String() string { return fmt.Sprintf("%d@%d", d.Node, d.Seq) }

// MaxNameLen is the longest resource name (fs/dlm's DLM_RESNAME_MAXLEN).
const MaxNameLen = 64

// MaxDomainLen is the longest domain name (O2NM_MAX_NAME_LEN).
const MaxDomainLen = 64

// message is one decoded DLM message.
type message interface{ kind() kind }

type lockReq struct {
	Epoch  uint64
	Cookie uint64
	Op     Op
	Mode   Mode // requested mode for lock and convert, else ModeNone
	Flags  Flags
	Name   string
	HasLVB bool // a value block to store (convert down / unlock from PW, EX)
	LVB    LVB
}

type lockReply struct {
	Cookie   uint64
	Op       Op // the operation completed (OpCancel only with StatusNotPending)
	Status   Status
	Mode     Mode // the lock's granted mode now; ModeNone once gone
	HasLVB   bool // the grant read the value block
	LVBValid bool
	LVBSeq   uint64
	LVB      LVB
}

type bastMsg struct {
	Cookie uint64
	Mode   Mode
}

type joinReq struct {
	Name string
	Gate bool
}

type joinRefused struct {
	Reason string
}

// Messages to the registrar travel under key 0 (the registrar need not be a
// member of the domain, so it may have no handler for its key); they name
// the domain in the payload.

type leaveReq struct{ Key uint32 }

type freezeMsg struct {
	Epoch        uint64
	Name         string
	Gate         bool
	Prev         base.NodeMap // members of the last completed view
	Target       base.NodeMap // members once this reconfiguration completes
	Participants base.NodeMap // who takes part (target, leavers, old members)
	Dead         []DeadNode   // deaths since the last completed view
	Pending      []DeadNode   // deaths the file system has not recovered yet
}

type markerMsg struct {
	Epoch     uint64
	Registrar base.NodeID
}

type transferEnd struct {
	Epoch     uint64
	Registrar base.NodeID
}

// queue names where a lock sits at its master.
type queue uint8

const (
	qGranted queue = iota
	qConverting
	qWaiting
	numQueues
)

var queueNames = [numQueues]string{"Granted", "Converting", "Blocked"}

func (q queue) String() string {
	if q < numQueues {
		return queueNames[q]
	}
	return fmt.Sprintf("queue(%d)", uint8(q))
}

type entryState struct {
	Owner  base.NodeID
	Cookie uint64
	Queue  queue
	Gr, Rq Mode
	Flags  Flags
}

// freshState is a request received during a reconfiguration, not evaluated
// yet (a new lock, or a conversion of a granted entry).
type freshState struct {
	Owner  base.NodeID
	Cookie uint64
	Op     Op
	Rq     Mode
	Flags  Flags
}

type ghostState struct {
	Dead DeadNode
	Mode Mode
}

type owedReply struct {
	Owner  base.NodeID
	Cookie uint64
	Op     Op
	Status Status
	Mode   Mode
	Read   bool // a grant that reads the value block (when it is answered)
}

type resState struct {
	Name     string
	LVBValid bool
	LVBSeq   uint64
	LVB      LVB
	Entries  []entryState
	Fresh    []freshState
	Ghosts   []ghostState
	Owed     []owedReply
}

type transferMsg struct {
	Epoch     uint64
	Resources []resState
}

type reportedLock struct {
	Name       string
	Cookie     uint64
	Gr         Mode
	Op         Op // OpNone, or the operation sent and not answered
	Rq         Mode
	Flags      Flags
	CancelSent bool
	WritesLVB  bool // the pending operation stores LVB
	LVBValid   bool
	LVBSeq     uint64
	LVB        LVB
}

type reportMsg struct {
	Epoch uint64
	Locks []reportedLock
}

type doneMsg struct {
	Key   uint32
	Epoch uint64
}

type completeMsg struct {
	Epoch   uint64
	Members base.NodeMap
}

type releaseReq struct {
	Key  uint32
	Dead DeadNode
}

type releasedMsg struct {
	Dead DeadNode
}

type syncQuery struct{}

// phase is where a node stands in a domain.
type phase uint8

const (
	phaseJoining phase = iota
	phaseJoined
	phaseLeaving
	phaseLeft
	numPhases
)

var phaseNames = [numPhases]string{"JOINING", "JOINED", "LEAVING", "LEFT"}

func (p phase) String() string {
	if p < numPhases {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

type domainReport struct {
	Name        string
	Key         uint32
	Gate        bool
	Phase       phase
	StableEpoch uint64
	Members     base.NodeMap
	InReco      bool
	RecoEpoch   uint64
	Registrar   base.NodeID
	Target      base.NodeMap
	Parts       base.NodeMap
	Dead        []DeadNode
	Pending     []DeadNode
	Released    []DeadNode
}

type syncReply struct {
	QueryMSeq uint64
	Domains   []domainReport
}

func (*lockReq) kind() kind     { return kLockReq }
func (*lockReply) kind() kind   { return kLockReply }
func (*bastMsg) kind() kind     { return kBast }
func (*joinReq) kind() kind     { return kJoinReq }
func (*joinRefused) kind() kind { return kJoinRefused }
func (*leaveReq) kind() kind    { return kLeaveReq }
func (*freezeMsg) kind() kind   { return kFreeze }
func (*markerMsg) kind() kind   { return kMarker }
func (*transferMsg) kind() kind { return kTransfer }
func (*reportMsg) kind() kind   { return kReport }
func (*transferEnd) kind() kind { return kTransferEnd }
func (*doneMsg) kind() kind     { return kDone }
func (*completeMsg) kind() kind { return kComplete }
func (*releaseReq) kind() kind  { return kReleaseReq }
func (*releasedMsg) kind() kind { return kReleased }
func (*syncQuery) kind() kind   { return kSyncQuery }
func (*syncReply) kind() kind   { return kSyncReply }
func (*ackMsg) kind() kind      { return kAck }

// ackMsg is an acknowledgement alone (the envelope says what it
// acknowledges); Resend asks for what was sent after that again: a gap was
// seen, or the connection came back.
type ackMsg struct {
	Resend bool
}

// envelope is what every payload starts with (see the wire format above).
type envelope struct {
	MSeq      uint64
	Start     uint64
	Stream    uint32
	Seq       uint64
	AckStream uint32
	Ack       uint64
}

// envelopeLen is the encoded size of an envelope.
const envelopeLen = 8 + 8 + 4 + 8 + 4 + 8

// encode appends m's payload to b: the envelope, then the message.
func encode(b []byte, env envelope, m message) []byte {
	e := enc{b: b}
	e.u64(env.MSeq)
	e.u64(env.Start)
	e.u32(env.Stream)
	e.u64(env.Seq)
	e.u32(env.AckStream)
	e.u64(env.Ack)
	switch m := m.(type) {
	case *lockReq:
		e.u64(m.Epoch)
		e.u64(m.Cookie)
		e.u8(uint8(m.Op))
		e.mode(m.Mode)
		e.u16(uint16(m.Flags))
		e.str(m.Name)
		e.bool(m.HasLVB)
		if m.HasLVB {
			e.lvb(&m.LVB)
		}
	case *lockReply:
		e.u64(m.Cookie)
		e.u8(uint8(m.Op))
		e.u8(uint8(m.Status))
		e.mode(m.Mode)
		e.bool(m.HasLVB)
		if m.HasLVB {
			e.bool(m.LVBValid)
			e.u64(m.LVBSeq)
			e.lvb(&m.LVB)
		}
	case *bastMsg:
		e.u64(m.Cookie)
		e.mode(m.Mode)
	case *joinReq:
		e.str(m.Name)
		e.bool(m.Gate)
	case *joinRefused:
		e.str(m.Reason)
	case *leaveReq:
		e.u32(m.Key)
	case *freezeMsg:
		e.u64(m.Epoch)
		e.str(m.Name)
		e.bool(m.Gate)
		e.nodeMap(m.Prev)
		e.nodeMap(m.Target)
		e.nodeMap(m.Participants)
		e.deadList(m.Dead)
		e.deadList(m.Pending)
	case *markerMsg:
		e.u64(m.Epoch)
		e.node(m.Registrar)
	case *transferEnd:
		e.u64(m.Epoch)
		e.node(m.Registrar)
	case *transferMsg:
		e.u64(m.Epoch)
		e.u32(uint32(len(m.Resources)))
		for i := range m.Resources {
			encodeResState(&e, &m.Resources[i])
		}
	case *reportMsg:
		e.u64(m.Epoch)
		e.u32(uint32(len(m.Locks)))
		for i := range m.Locks {
			l := &m.Locks[i]
			e.str(l.Name)
			e.u64(l.Cookie)
			e.mode(l.Gr)
			e.u8(uint8(l.Op))
			e.mode(l.Rq)
			e.u16(uint16(l.Flags))
			e.bool(l.CancelSent)
			e.bool(l.WritesLVB)
			e.bool(l.LVBValid)
			e.u64(l.LVBSeq)
			e.lvb(&l.LVB)
		}
	case *doneMsg:
		e.u32(m.Key)
		e.u64(m.Epoch)
	case *completeMsg:
		e.u64(m.Epoch)
		e.nodeMap(m.Members)
	case *releaseReq:
		e.u32(m.Key)
		e.node(m.Dead.Node)
		e.u64(m.Dead.Seq)
	case *releasedMsg:
		e.node(m.Dead.Node)
		e.u64(m.Dead.Seq)
	case *syncQuery:
	case *ackMsg:
		e.bool(m.Resend)
	case *syncReply:
		e.u64(m.QueryMSeq)
		e.u16(uint16(len(m.Domains)))
		for i := range m.Domains {
			r := &m.Domains[i]
			e.str(r.Name)
			e.u32(r.Key)
			e.bool(r.Gate)
			e.u8(uint8(r.Phase))
			e.u64(r.StableEpoch)
			e.nodeMap(r.Members)
			e.bool(r.InReco)
			e.u64(r.RecoEpoch)
			e.node(r.Registrar)
			e.nodeMap(r.Target)
			e.nodeMap(r.Parts)
			e.deadList(r.Dead)
			e.deadList(r.Pending)
			e.deadList(r.Released)
		}
	default:
		panic(fmt.Sprintf("dlm: encode of %T", m))
	}
	return e.b
}

func encodeResState(e *enc, r *resState) {
	e.str(r.Name)
	e.bool(r.LVBValid)
	e.u64(r.LVBSeq)
	e.lvb(&r.LVB)
	e.u32(uint32(len(r.Entries)))
	for _, x := range r.Entries {
		e.node(x.Owner)
		e.u64(x.Cookie)
		e.u8(uint8(x.Queue))
		e.mode(x.Gr)
		e.mode(x.Rq)
		e.u16(uint16(x.Flags))
	}
	e.u32(uint32(len(r.Fresh)))
	for _, f := range r.Fresh {
		e.node(f.Owner)
		e.u64(f.Cookie)
		e.u8(uint8(f.Op))
		e.mode(f.Rq)
		e.u16(uint16(f.Flags))
	}
	e.u16(uint16(len(r.Ghosts)))
	for _, g := range r.Ghosts {
		e.node(g.Dead.Node)
		e.u64(g.Dead.Seq)
		e.mode(g.Mode)
	}
	e.u32(uint32(len(r.Owed)))
	for _, o := range r.Owed {
		e.node(o.Owner)
		e.u64(o.Cookie)
		e.u8(uint8(o.Op))
		e.u8(uint8(o.Status))
		e.mode(o.Mode)
		e.bool(o.Read)
	}
}

// decode parses a payload of message type t into its envelope and the
// message. It checks the encoding and the ranges of every field; whether
// the message makes sense is for the receiver.
func decode(t uint16, p []byte) (envelope, message, error) {
	var env envelope
	if !IsMsgType(t) {
		return env, nil, badMsg("message", "type %d is not a DLM message type", t)
	}
	k := kind(t - MsgTypeFirst)
	d := dec{b: p, kind: k.String()}
	env.MSeq = d.u64()
	env.Start = d.u64()
	env.Stream = d.u32()
	env.Seq = d.u64()
	env.AckStream = d.u32()
	env.Ack = d.u64()
	if d.err == nil && (k == kAck) != (env.Seq == 0) {
		d.fail("sequence number %d on a %s", env.Seq, k)
	}
	var m message
	switch k {
	case kLockReq:
		x := &lockReq{}
		x.Epoch = d.u64()
		x.Cookie = d.u64()
		x.Op = d.op("op")
		x.Mode = d.mode("mode", true)
		x.Flags = d.flags()
		x.Name = d.str("name", MaxNameLen, false)
		x.HasLVB = d.bool("has lvb")
		if x.HasLVB {
			d.lvb(&x.LVB)
		}
		if d.err == nil {
			switch {
			case x.Op == OpNone:
				d.fail("op: none is not a request")
			case (x.Op == OpLock || x.Op == OpConvert) && x.Mode == ModeNone:
				d.fail("%s request without a mode", x.Op)
			case (x.Op == OpUnlock || x.Op == OpCancel) && x.Mode != ModeNone:
				d.fail("%s request with mode %s", x.Op, x.Mode)
			case x.HasLVB && x.Op != OpConvert && x.Op != OpUnlock:
				d.fail("%s request carries a value block", x.Op)
			}
		}
		m = x
	case kLockReply:
		x := &lockReply{}
		x.Cookie = d.u64()
		x.Op = d.op("op")
		x.Status = d.status()
		x.Mode = d.mode("mode", true)
		x.HasLVB = d.bool("has lvb")
		if x.HasLVB {
			x.LVBValid = d.bool("lvb valid")
			x.LVBSeq = d.u64()
			d.lvb(&x.LVB)
		}
		if d.err == nil && x.Op == OpNone {
			d.fail("op: none is not a reply")
		}
		m = x
	case kBast:
		x := &bastMsg{}
		x.Cookie = d.u64()
		x.Mode = d.mode("mode", false)
		m = x
	case kJoinReq:
		x := &joinReq{}
		x.Name = d.str("domain", MaxDomainLen, false)
		x.Gate = d.bool("gate")
		m = x
	case kJoinRefused:
		x := &joinRefused{}
		x.Reason = d.str("reason", 255, true)
		m = x
	case kLeaveReq:
		m = &leaveReq{Key: d.u32()}
	case kFreeze:
		x := &freezeMsg{}
		x.Epoch = d.u64()
		x.Name = d.str("domain", MaxDomainLen, false)
		x.Gate = d.bool("gate")
		x.Prev = d.nodeMap("prev")
		x.Target = d.nodeMap("target")
		x.Participants = d.nodeMap("participants")
		x.Dead = d.deadList("dead")
		x.Pending = d.deadList("pending")
		m = x
	case kMarker:
		x := &markerMsg{}
		x.Epoch = d.u64()
		x.Registrar = d.node("registrar")
		m = x
	case kTransferEnd:
		x := &transferEnd{}
		x.Epoch = d.u64()
		x.Registrar = d.node("registrar")
		m = x
	case kTransfer:
		x := &transferMsg{}
		x.Epoch = d.u64()
		n := d.count("resources", true, 1+1+8+LVBLen+4+4+2+4)
		if n > 0 {
			x.Resources = make([]resState, n)
			for i := range x.Resources {
				decodeResState(&d, &x.Resources[i])
			}
		}
		m = x
	case kReport:
		x := &reportMsg{}
		x.Epoch = d.u64()
		n := d.count("locks", true, 2+8+1+1+1+2+3+8+LVBLen)
		if n > 0 {
			x.Locks = make([]reportedLock, n)
			for i := range x.Locks {
				l := &x.Locks[i]
				l.Name = d.str("name", MaxNameLen, false)
				l.Cookie = d.u64()
				l.Gr = d.mode("granted mode", true)
				l.Op = d.op("op")
				l.Rq = d.mode("requested mode", true)
				l.Flags = d.flags()
				l.CancelSent = d.bool("cancel sent")
				l.WritesLVB = d.bool("writes lvb")
				l.LVBValid = d.bool("lvb valid")
				l.LVBSeq = d.u64()
				d.lvb(&l.LVB)
			}
		}
		m = x
	case kDone:
		x := &doneMsg{}
		x.Key = d.u32()
		x.Epoch = d.u64()
		m = x
	case kComplete:
		x := &completeMsg{}
		x.Epoch = d.u64()
		x.Members = d.nodeMap("members")
		m = x
	case kReleaseReq:
		x := &releaseReq{}
		x.Key = d.u32()
		x.Dead.Node = d.node("dead node")
		x.Dead.Seq = d.u64()
		m = x
	case kReleased:
		x := &releasedMsg{}
		x.Dead.Node = d.node("dead node")
		x.Dead.Seq = d.u64()
		m = x
	case kSyncQuery:
		m = &syncQuery{}
	case kSyncReply:
		x := &syncReply{}
		x.QueryMSeq = d.u64()
		n := d.count("domains", false, 2+4+1+1+8+32+1+8+1+32+32+6)
		if n > 0 {
			x.Domains = make([]domainReport, n)
			for i := range x.Domains {
				r := &x.Domains[i]
				r.Name = d.str("domain", MaxDomainLen, false)
				r.Key = d.u32()
				r.Gate = d.bool("gate")
				r.Phase = phase(d.u8())
				if d.err == nil && r.Phase >= numPhases {
					d.fail("phase %d out of range", r.Phase)
				}
				r.StableEpoch = d.u64()
				r.Members = d.nodeMap("members")
				r.InReco = d.bool("in reconfiguration")
				r.RecoEpoch = d.u64()
				r.Registrar = d.nodeOrNone("registrar")
				r.Target = d.nodeMap("target")
				r.Parts = d.nodeMap("participants")
				r.Dead = d.deadList("dead")
				r.Pending = d.deadList("pending")
				r.Released = d.deadList("released")
			}
		}
		m = x
	case kAck:
		m = &ackMsg{Resend: d.bool("resend")}
	default:
		return env, nil, badMsg("message", "type %d is not a DLM message type", t)
	}
	if err := d.end(); err != nil {
		return envelope{}, nil, err
	}
	return env, m, nil
}

func decodeResState(d *dec, r *resState) {
	r.Name = d.str("name", MaxNameLen, false)
	r.LVBValid = d.bool("lvb valid")
	r.LVBSeq = d.u64()
	d.lvb(&r.LVB)
	n := d.count("entries", true, 1+8+1+1+1+2)
	if n > 0 {
		r.Entries = make([]entryState, n)
		for i := range r.Entries {
			x := &r.Entries[i]
			x.Owner = d.node("owner")
			x.Cookie = d.u64()
			x.Queue = queue(d.u8())
			if d.err == nil && x.Queue >= numQueues {
				d.fail("queue %d out of range", x.Queue)
			}
			x.Gr = d.mode("granted mode", true)
			x.Rq = d.mode("requested mode", true)
			x.Flags = d.flags()
		}
	}
	n = d.count("fresh requests", true, 1+8+1+1+2)
	if n > 0 {
		r.Fresh = make([]freshState, n)
		for i := range r.Fresh {
			f := &r.Fresh[i]
			f.Owner = d.node("owner")
			f.Cookie = d.u64()
			f.Op = d.op("op")
			f.Rq = d.mode("requested mode", true)
			f.Flags = d.flags()
		}
	}
	n = d.count("ghosts", false, 1+8+1)
	if n > 0 {
		r.Ghosts = make([]ghostState, n)
		for i := range r.Ghosts {
			g := &r.Ghosts[i]
			g.Dead.Node = d.node("ghost node")
			g.Dead.Seq = d.u64()
			g.Mode = d.mode("ghost mode", false)
		}
	}
	n = d.count("owed replies", true, 1+8+1+1+1+1)
	if n > 0 {
		r.Owed = make([]owedReply, n)
		for i := range r.Owed {
			o := &r.Owed[i]
			o.Owner = d.node("owner")
			o.Cookie = d.u64()
			o.Op = d.op("op")
			o.Status = d.status()
			o.Mode = d.mode("mode", true)
			o.Read = d.bool("read")
		}
	}
}

func (d *dec) op(field string) Op {
	o := Op(d.u8())
	if d.err == nil && o >= numOps {
		d.fail("%s: %d out of range", field, o)
	}
	return o
}

func (d *dec) status() Status {
	s := Status(d.u8())
	if d.err == nil && s >= numStatuses {
		d.fail("status %d out of range", s)
	}
	return s
}

func (d *dec) flags() Flags {
	f := Flags(d.u16())
	if d.err == nil && f&^validFlags != 0 {
		d.fail("flags %#x has unknown bits", uint16(f))
	}
	return f
}

func (d *dec) nodeOrNone(field string) base.NodeID {
	n := base.NodeID(d.u8())
	return n
}
