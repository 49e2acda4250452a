package quorum

import (
	"encoding/binary"
	"fmt"

	"o2go/internal/base"
)

// Wire formats of the membership messages (cluster/net types 1..6). All
// big-endian; a node map is 32 bytes (bit n of byte n/8 set for node n).
// A view is variable-length, so it ends the messages that carry one:
//
//	View:     be64 epoch, be64 seq, map members,
//	          be64 generation of each member in ascending order     (48+8n)
//	Propose:  be64 ballot, View
//	Accept:   be64 epoch, be64 ballot, u8 ok, u8 reason, pad[6], View
//	Commit:   View
//	Status:   map live, map connected, map lost, u8 flags, pad[7], View
//	          flags: 1 steady, 2 read stalled, 4 write stalled, 8 frozen
//	Evict:    u8 origin, u8 target, u8 hops, u8 pad, be32 pad,
//	          be64 target generation (0: any)                          (16)
//	CatchUp:  be64 after                                              (8)

const nodeMapSize = 32

func putMap(b []byte, m base.NodeMap) {
	clear(b[:nodeMapSize])
	for _, n := range m.Nodes() {
		b[n/8] |= 1 << (n % 8)
	}
}

func getMap(b []byte) (base.NodeMap, error) {
	var m base.NodeMap
	for i := 0; i < nodeMapSize; i++ {
		for bit := 0; bit < 8; bit++ {
			if b[i]&(1<<bit) != 0 {
				n := i*8 + bit
				if n >= base.MaxNodes {
					return m, fmt.Errorf("node map holds node %d; the largest node number is %d", n, base.MaxNodes-1)
				}
				m.Add(base.NodeID(n))
			}
		}
	}
	return m, nil
}

const viewHeader = 16 + nodeMapSize

func viewLen(v *View) int { return viewHeader + 8*v.Members.Len() }

func appendView(b []byte, v *View) []byte {
	var h [viewHeader]byte
	binary.BigEndian.PutUint64(h[0:], v.Epoch)
	binary.BigEndian.PutUint64(h[8:], v.Seq)
	putMap(h[16:], v.Members)
	b = append(b, h[:]...)
	for _, n := range v.Members.Nodes() {
		b = binary.BigEndian.AppendUint64(b, v.Gens[n])
	}
	return b
}

func getView(b []byte) (View, error) {
	if len(b) < viewHeader {
		return View{}, fmt.Errorf("view: %d bytes, want at least %d", len(b), viewHeader)
	}
	m, err := getMap(b[16:])
	if err != nil {
		return View{}, err
	}
	v := View{Epoch: binary.BigEndian.Uint64(b[0:]), Seq: binary.BigEndian.Uint64(b[8:]), Members: m}
	if len(b) != viewHeader+8*m.Len() {
		return v, fmt.Errorf("view of %d members: %d bytes, want %d", m.Len(), len(b), viewHeader+8*m.Len())
	}
	for i, n := range m.Nodes() {
		v.Gens[n] = binary.BigEndian.Uint64(b[viewHeader+8*i:])
		if v.Gens[n] == 0 {
			return v, fmt.Errorf("view: member %d has generation 0", n)
		}
	}
	if v.Epoch == 0 && (!m.Empty() || v.Seq != 0) {
		return v, fmt.Errorf("view of epoch 0 has members or events")
	}
	return v, nil
}

func zeroPad(what string, b []byte) error {
	for _, c := range b {
		if c != 0 {
			return fmt.Errorf("%s message: padding is not zero", what)
		}
	}
	return nil
}

func wantLen(what string, b []byte, n int) error {
	if len(b) != n {
		return fmt.Errorf("%s message: %d bytes, want %d", what, len(b), n)
	}
	return nil
}

func wantAtLeast(what string, b []byte, n int) error {
	if len(b) < n {
		return fmt.Errorf("%s message: %d bytes, want at least %d", what, len(b), n)
	}
	return nil
}

// Propose is a leader's proposal of the next view.
type Propose struct {
	View   View
	Ballot uint64
}

// Encode returns the wire bytes.
func (p Propose) Encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+viewLen(&p.View)), p.Ballot)
	return appendView(b, &p.View)
}

// DecodePropose parses a Propose.
func DecodePropose(b []byte) (Propose, error) {
	if err := wantAtLeast("propose", b, 8+viewHeader); err != nil {
		return Propose{}, err
	}
	v, err := getView(b[8:])
	if err == nil && v.Epoch == 0 {
		err = fmt.Errorf("propose message: epoch 0")
	}
	return Propose{View: v, Ballot: binary.BigEndian.Uint64(b)}, err
}

// RefusalReason says why a proposal was refused.
type RefusalReason uint8

const (
	Accepted    RefusalReason = iota
	NotMyLeader               // the sender is not this node's leader
	StaleEpoch                // this node already committed that epoch
	FutureEpoch               // this node misses views before it (it asks to catch up)
	LowerBallot               // this node promised a higher ballot
	NotAMember                // the proposal leaves this node out
	maxRefusalReason
)

func (r RefusalReason) String() string {
	return [...]string{"accepted", "not my leader", "stale epoch", "future epoch", "lower ballot", "not a member"}[r]
}

// Accept answers a Propose. Committed is the sender's latest committed view.
type Accept struct {
	Epoch     uint64
	Ballot    uint64
	Reason    RefusalReason // Accepted when OK
	Committed View
}

// OK reports whether the proposal was accepted.
func (a Accept) OK() bool { return a.Reason == Accepted }

const acceptHeader = 24

// Encode returns the wire bytes.
func (a Accept) Encode() []byte {
	b := make([]byte, acceptHeader, acceptHeader+viewLen(&a.Committed))
	binary.BigEndian.PutUint64(b[0:], a.Epoch)
	binary.BigEndian.PutUint64(b[8:], a.Ballot)
	if a.Reason == Accepted {
		b[16] = 1
	}
	b[17] = byte(a.Reason)
	return appendView(b, &a.Committed)
}

// DecodeAccept parses an Accept.
func DecodeAccept(b []byte) (Accept, error) {
	if err := wantAtLeast("accept", b, acceptHeader+viewHeader); err != nil {
		return Accept{}, err
	}
	if err := zeroPad("accept", b[18:24]); err != nil {
		return Accept{}, err
	}
	a := Accept{Epoch: binary.BigEndian.Uint64(b[0:]), Ballot: binary.BigEndian.Uint64(b[8:]), Reason: RefusalReason(b[17])}
	if a.Reason >= maxRefusalReason {
		return a, fmt.Errorf("accept message: unknown reason %d", b[17])
	}
	if (b[16] == 1) != (a.Reason == Accepted) || b[16] > 1 {
		return a, fmt.Errorf("accept message: ok flag %d disagrees with reason %v", b[16], a.Reason)
	}
	v, err := getView(b[acceptHeader:])
	a.Committed = v
	return a, err
}

// EncodeCommit returns a Commit's wire bytes: the committed view.
func EncodeCommit(v View) []byte { return appendView(nil, &v) }

// DecodeCommit parses a Commit.
func DecodeCommit(b []byte) (View, error) {
	v, err := getView(b)
	if err == nil && v.Epoch == 0 {
		err = fmt.Errorf("commit message: epoch 0")
	}
	return v, err
}

// Health is what a node says about its own disk I/O.
type Health struct {
	ReadStalled  bool // no heartbeat read completed lately: it cannot see anyone's heartbeat
	WriteStalled bool // its heartbeat writes are stalled
	Frozen       bool // it waits for the shared disk instead of fencing (see node/member)
}

// Status is what every node sends every heartbeat interval to each peer it
// is connected to.
type Status struct {
	Committed View
	Live      base.NodeMap
	Connected base.NodeMap
	Lost      base.NodeMap
	Steady    bool
	Health    Health
}

const statusHeader = 3*nodeMapSize + 8

// Encode returns the wire bytes.
func (s Status) Encode() []byte {
	b := make([]byte, statusHeader, statusHeader+viewLen(&s.Committed))
	putMap(b[0:], s.Live)
	putMap(b[nodeMapSize:], s.Connected)
	putMap(b[2*nodeMapSize:], s.Lost)
	var f byte
	for i, on := range []bool{s.Steady, s.Health.ReadStalled, s.Health.WriteStalled, s.Health.Frozen} {
		if on {
			f |= 1 << i
		}
	}
	b[3*nodeMapSize] = f
	return appendView(b, &s.Committed)
}

// DecodeStatus parses a Status.
func DecodeStatus(b []byte) (Status, error) {
	if err := wantAtLeast("status", b, statusHeader+viewHeader); err != nil {
		return Status{}, err
	}
	if err := zeroPad("status", b[3*nodeMapSize+1:statusHeader]); err != nil {
		return Status{}, err
	}
	var s Status
	var err error
	maps := []*base.NodeMap{&s.Live, &s.Connected, &s.Lost}
	for i, m := range maps {
		if *m, err = getMap(b[i*nodeMapSize:]); err != nil {
			return s, err
		}
	}
	f := b[3*nodeMapSize]
	if f&^0x0f != 0 {
		return s, fmt.Errorf("status message: unknown flags 0x%02x", f)
	}
	s.Steady, s.Health.ReadStalled, s.Health.WriteStalled, s.Health.Frozen = f&1 != 0, f&2 != 0, f&4 != 0, f&8 != 0
	s.Committed, err = getView(b[statusHeader:])
	return s, err
}

// Evict tells Target to fence itself. A node that cannot reach the target
// sends it to the peers it can reach, which forward it once (Hops counts).
type Evict struct {
	Origin     base.NodeID
	Target     base.NodeID
	Hops       uint8
	Generation uint64 // the target's heartbeat generation; 0 for any
}

// MaxEvictHops is how often an Evict may be forwarded.
const MaxEvictHops = 1

// Encode returns the wire bytes.
func (e Evict) Encode() []byte {
	b := make([]byte, 16)
	b[0], b[1], b[2] = byte(e.Origin), byte(e.Target), e.Hops
	binary.BigEndian.PutUint64(b[8:], e.Generation)
	return b
}

// DecodeEvict parses an Evict.
func DecodeEvict(b []byte) (Evict, error) {
	if err := wantLen("evict", b, 16); err != nil {
		return Evict{}, err
	}
	if err := zeroPad("evict", b[3:8]); err != nil {
		return Evict{}, err
	}
	e := Evict{Origin: base.NodeID(b[0]), Target: base.NodeID(b[1]), Hops: b[2], Generation: binary.BigEndian.Uint64(b[8:])}
	switch {
	case !e.Origin.Valid() || !e.Target.Valid():
		return e, fmt.Errorf("evict message: invalid node number")
	case e.Origin == e.Target:
		return e, fmt.Errorf("evict message: node %d evicts itself", e.Origin)
	case e.Hops > MaxEvictHops:
		return e, fmt.Errorf("evict message: forwarded %d times, at most %d", e.Hops, MaxEvictHops)
	}
	return e, nil
}

// EncodeCatchUp returns a CatchUp's wire bytes: send me the commits after epoch.
func EncodeCatchUp(after uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, after)
	return b
}

// DecodeCatchUp parses a CatchUp.
func DecodeCatchUp(b []byte) (uint64, error) {
	if err := wantLen("catch-up", b, 8); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}
