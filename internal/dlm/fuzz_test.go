package dlm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
)

// sampleMessages is one or more instances of every message kind, with the
// optional parts present and absent.
func sampleMessages() []message {
	var v LVB
	copy(v[:], "value")
	dead := []DeadNode{{Node: 3, Seq: 9}, {Node: 7, Seq: 12}}
	return []message{
		&lockReq{Epoch: 3, Cookie: 42, Op: OpLock, Mode: ModeEX, Flags: NoQueue, Name: "M000000000000000022d63c00000000"},
		&lockReq{Epoch: 3, Cookie: 42, Op: OpConvert, Mode: ModeNL, Name: "A", HasLVB: true, LVB: v},
		&lockReq{Epoch: 3, Cookie: 42, Op: OpUnlock, Mode: ModeNone, Name: "A", HasLVB: true, LVB: v},
		&lockReq{Epoch: 3, Cookie: 42, Op: OpCancel, Mode: ModeNone, Flags: Recovery, Name: "A"},
		&lockReply{Cookie: 42, Op: OpLock, Status: StatusOK, Mode: ModePR, HasLVB: true, LVBValid: true, LVBSeq: 7, LVB: v},
		&lockReply{Cookie: 42, Op: OpUnlock, Status: StatusOK, Mode: ModeNone},
		&lockReply{Cookie: 42, Op: OpCancel, Status: StatusNotPending, Mode: ModeNone},
		&bastMsg{Cookie: 42, Mode: ModeEX},
		&joinReq{Name: "45F81E3B6F2B48CCAAD1AE7945AB2001", Gate: true},
		&joinRefused{Reason: "key collision"},
		&leaveReq{Key: Key("vol")},
		&freezeMsg{Epoch: 5, Name: "vol", Gate: true, Prev: base.NodeMapOf(1, 2, 3), Target: base.NodeMapOf(1, 2),
			Participants: base.NodeMapOf(1, 2), Dead: dead, Pending: dead[:1]},
		&markerMsg{Epoch: 5, Registrar: 1},
		&transferEnd{Epoch: 5, Registrar: 1},
		&transferMsg{Epoch: 5, Resources: []resState{{
			Name: "A", LVBValid: true, LVBSeq: 2, LVB: v,
			Entries: []entryState{{Owner: 1, Cookie: 4, Queue: qGranted, Gr: ModePR, Rq: ModeNone},
				{Owner: 2, Cookie: 9, Queue: qConverting, Gr: ModeNL, Rq: ModeEX, Flags: NoQueue},
				{Owner: 3, Cookie: 1, Queue: qWaiting, Gr: ModeNone, Rq: ModeCW}},
			Fresh:  []freshState{{Owner: 1, Cookie: 4, Op: OpConvert, Rq: ModeEX}},
			Ghosts: []ghostState{{Dead: dead[0], Mode: ModePW}},
			Owed:   []owedReply{{Owner: 2, Cookie: 8, Op: OpUnlock, Status: StatusOK, Mode: ModeNone}},
		}, {Name: "B"}}},
		&reportMsg{Epoch: 5, Locks: []reportedLock{
			{Name: "A", Cookie: 4, Gr: ModePR, Op: OpConvert, Rq: ModeNL, WritesLVB: true, LVBValid: true, LVBSeq: 3, LVB: v},
			{Name: "B", Cookie: 5, Gr: ModeNone, Op: OpLock, Rq: ModeEX, CancelSent: true}}},
		&doneMsg{Key: Key("vol"), Epoch: 5},
		&completeMsg{Epoch: 5, Members: base.NodeMapOf(1, 2)},
		&releaseReq{Key: Key("vol"), Dead: dead[0]},
		&releasedMsg{Dead: dead[1]},
		&syncQuery{},
		&ackMsg{},
		&ackMsg{Resend: true},
		&syncReply{QueryMSeq: 11, Domains: []domainReport{{
			Name: "vol", Key: Key("vol"), Gate: true, Phase: phaseJoined, StableEpoch: 4,
			Members: base.NodeMapOf(1, 2), InReco: true, RecoEpoch: 5, Registrar: 1,
			Target: base.NodeMapOf(1, 2), Parts: base.NodeMapOf(1, 2, 3), Dead: dead, Pending: dead, Released: dead[:1],
		}}},
	}
}

func TestMessagesFitTheTransport(t *testing.T) {
	if MsgTypeFirst != cnet.TypeDLMFirst || MsgTypeLast > cnet.TypeDLMLast {
		t.Fatalf("DLM types %d..%d outside cluster/net's range %d..%d", MsgTypeFirst, MsgTypeLast, cnet.TypeDLMFirst, cnet.TypeDLMLast)
	}
	if DefaultMaxPayload > cnet.MaxPayload {
		t.Fatalf("DefaultMaxPayload %d > cluster/net's MaxPayload %d", DefaultMaxPayload, cnet.MaxPayload)
	}
}

// sampleEnvelope is the envelope of a numbered message (an acknowledgement
// alone is not numbered).
func sampleEnvelope(m message) envelope {
	env := envelope{MSeq: 77, Start: 5, Stream: 2, Seq: 41, AckStream: 3, Ack: 40}
	if m.kind() == kAck {
		env.Seq = 0
	}
	return env
}

func TestCodecRoundTrip(t *testing.T) {
	seen := map[kind]bool{}
	for _, m := range sampleMessages() {
		seen[m.kind()] = true
		typ := MsgTypeFirst + uint16(m.kind())
		b := encode(nil, sampleEnvelope(m), m)
		env, got, err := decode(typ, b)
		if err != nil {
			t.Fatalf("%s: %v", m.kind(), err)
		}
		if env != sampleEnvelope(m) {
			t.Fatalf("%s: envelope %+v", m.kind(), env)
		}
		if again := encode(nil, env, got); !bytes.Equal(again, b) {
			t.Fatalf("%s: re-encoding differs", m.kind())
		}
		// Every truncation is refused with a MessageError, never a panic.
		for n := 0; n < len(b); n++ {
			if _, _, err := decode(typ, b[:n]); !errors.Is(err, ErrMessage) {
				t.Fatalf("%s truncated to %d bytes: err %v", m.kind(), n, err)
			}
		}
		if _, _, err := decode(typ, append(b, 0)); !errors.Is(err, ErrMessage) {
			t.Fatalf("%s with a trailing byte: err %v", m.kind(), err)
		}
	}
	for k := kind(0); k < numKinds; k++ {
		if !seen[k] {
			t.Errorf("no sample of %s", k)
		}
	}
	if _, _, err := decode(MsgTypeLast+1, nil); !errors.Is(err, ErrMessage) {
		t.Fatalf("type past the range: %v", err)
	}
}

func TestDecodeRefusesBadFields(t *testing.T) {
	bad := func(name string, m message, patch func(b []byte)) {
		b := encode(nil, sampleEnvelope(m), m)
		patch(b)
		if _, _, err := decode(MsgTypeFirst+uint16(m.kind()), b); !errors.Is(err, ErrMessage) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
	// Offsets after the envelope.
	const e = envelopeLen
	req := &lockReq{Epoch: 1, Cookie: 2, Op: OpLock, Mode: ModeEX, Name: "A"}
	bad("op out of range", req, func(b []byte) { b[e+16] = 9 })
	bad("mode out of range", req, func(b []byte) { b[e+17] = 6 })
	bad("unknown flag", req, func(b []byte) { b[e+19] = 0x80 })
	bad("name too long", req, func(b []byte) { b[e+20] = 200 })
	bad("lock without mode", req, func(b []byte) { b[e+17] = 0xff })
	bad("bool not 0/1", req, func(b []byte) { b[len(b)-1] = 2 })
	bad("node 255 in a map", &completeMsg{Epoch: 1}, func(b []byte) { b[len(b)-1] = 0x80 })
	bad("huge count", &reportMsg{Epoch: 1}, func(b []byte) { b[e+8] = 0xff })
	// The envelope: a numbered acknowledgement, an unnumbered message.
	bad("numbered ack", &ackMsg{}, func(b []byte) { b[8+8+4+7] = 1 })
	bad("unnumbered request", req, func(b []byte) { copy(b[8+8+4:], make([]byte, 8)) })
}

// FuzzDecode: any payload of any DLM message type is refused with an error or
// decodes to a message whose encoding is the payload itself.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(uint16(m.kind()), encode(nil, sampleEnvelope(m), m))
	}
	f.Fuzz(func(t *testing.T, k uint16, p []byte) {
		typ := MsgTypeFirst + k%uint16(numKinds+1)
		env, m, err := decode(typ, p)
		if err != nil {
			if !errors.Is(err, ErrMessage) {
				t.Fatalf("error not of class ErrMessage: %v", err)
			}
			return
		}
		if got := encode(nil, env, m); !bytes.Equal(got, p) {
			t.Fatalf("decode/encode is not the identity for %s", m.kind())
		}
	})
}

// hostileTarget builds a three-node cluster with a gated domain, locks and a
// resource mastered on every node, then freezes it mid-reconfiguration when
// frozen is set, and returns node 2 (and the network).
func hostileTarget(frozen bool) (*testNet, *Node) {
	net := newTestNet(1, 2, 3)
	for _, x := range []base.NodeID{1, 2, 3} {
		_ = net.call(x, func(n *Node) (Ready, error) { return n.Join("vol", true) })
	}
	net.settle(100000)
	for i, name := range []string{"A", "B", "C", "D", "G"} {
		x := base.NodeID(1 + i%3)
		_, _ = net.lock(x, "vol", name, Mode(i%6), 0)
		_, _ = net.lock(2, "vol", name, ModePR, 0)
	}
	net.settle(100000)
	if frozen {
		net.crash(3)
		for i := 0; i < 6; i++ {
			_, evs := net.deliverable()
			if len(evs) > 0 {
				net.deliverEvent(evs[0])
			}
		}
		for i := 0; i < 3; i++ {
			links, _ := net.deliverable()
			if len(links) > 0 {
				net.deliver(links[0])
			}
		}
	}
	return net, net.node(2)
}

// FuzzReceive: a hostile or truncated message from a live peer is refused or
// applied, never panics, and leaves the node consistent.
func FuzzReceive(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(uint8(1), uint16(m.kind()), uint8(0), false, true, encode(nil, envelope{MSeq: 3, Seq: 1}, m))
		f.Add(uint8(3), uint16(m.kind()), uint8(1), true, true, encode(nil, envelope{MSeq: 9, Seq: 1}, m))
	}
	f.Fuzz(func(t *testing.T, from uint8, k uint16, keySel uint8, frozen, inStream bool, p []byte) {
		_, n := hostileTarget(frozen)
		keys := []uint32{Key("vol"), 0, Key("other"), 0xdeadbeef}
		typ := MsgTypeFirst + k%uint16(numKinds+1)
		sender := base.NodeID(from % 4)
		if inStream && len(p) >= envelopeLen && sender.Valid() && sender != n.self {
			// Make the message the next of the sender's stream, so that it
			// reaches the handlers (a hostile peer can number its messages).
			p = slices.Clone(p)
			s := n.stream(sender)
			binary.BigEndian.PutUint64(p[8:], s.start)
			binary.BigEndian.PutUint32(p[16:], s.in)
			if binary.BigEndian.Uint64(p[20:]) != 0 {
				binary.BigEndian.PutUint64(p[20:], s.got+1)
			}
		}
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("panic on %d bytes of type %d from %d: %v", len(p), typ, from, r)
			}
		}()
		_, err := n.Receive(sender, typ, keys[int(keySel)%len(keys)], p)
		if err != nil && !errors.Is(err, ErrMessage) {
			t.Fatalf("error not of class ErrMessage: %v", err)
		}
		if err := n.CheckInvariants(); err != nil {
			t.Fatalf("after the message: %v", err)
		}
	})
}
