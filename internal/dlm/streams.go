package dlm

import (
	"o2go/internal/base"
)

// Streams: what the DLM sends a peer is never lost while both stay alive.
//
// The protocol assumes that a message between two live incarnations
// arrives, in order. A connection that breaks loses what was in flight on
// it; the cluster stack usually evicts one of the two nodes (and recovery
// then covers the loss), but not always: a partition that quorum cannot
// resolve holds the membership back until it heals, and both sides go on.
// So each node numbers what it sends each peer (a stream), keeps it until
// the peer acknowledges it, and sends it all again when the connection to
// the peer comes back (LinkUp); the receiver takes each stream in order,
// once, dropping duplicates and anything past a gap. A receiver that sees a
// gap, and each end of a connection that comes back, asks the other to send
// again what follows what it has (an acknowledgement with Resend): the
// first frames on a new connection may be dropped by an end that does not
// count it up yet, and either request covers what the other missed.
// Acknowledgements ride on every message, and alone (kAck) on Tick when
// nothing else went the other way.
//
// A stream belongs to one incarnation of each end. The sender's is its
// start (the membership sequence number of its first snapshot, which a
// later incarnation's exceeds: its predecessor's death came in between);
// the receiver's is marked by the stream number, which the sender bumps when
// it learns that the receiver died, and again when it comes back up (what
// was sent to it meanwhile was for nobody). A receiver takes a stream only if it is
// newer than the one it has, and forgets a dead sender's stream when it
// learns of the death — unless the sender's next incarnation was heard
// from already.
type peerStream struct {
	// Sending to the peer.
	out     uint32 // this node's stream number toward the peer
	sent    uint64 // last sequence number used in stream out
	unacked []sentMsg
	// Receiving from the peer.
	start   uint64 // the peer incarnation's start, 0 before any message
	in      uint32 // the peer's stream number toward this node
	got     uint64 // last sequence number taken, in order, from (start, in)
	ackSent uint64 // got, as last told to the peer
	asked   uint64 // got+1 when a resend was last asked for because of a gap
}

type sentMsg struct {
	seq uint64
	out Outgoing
}

// StreamStats counts what the streams did (State shows them per node).
type StreamStats struct {
	Resent     uint64 `json:"resent"`     // messages sent again after a connection came back
	Duplicates uint64 `json:"duplicates"` // received twice (sent again), dropped
	Gaps       uint64 `json:"gaps"`       // received past a lost message, dropped (sent again later)
	Stale      uint64 `json:"stale"`      // from a stream or incarnation superseded, dropped
	Unacked    int    `json:"unacked"`    // sent and not acknowledged yet, now
}

// stream returns the state of the streams with peer x.
func (n *Node) stream(x base.NodeID) *peerStream {
	if n.streams[x] == nil {
		n.streams[x] = &peerStream{out: 1}
	}
	return n.streams[x]
}

// outgoing numbers m for peer to and encodes it.
func (n *Node) outgoing(to base.NodeID, key uint32, m message) Outgoing {
	p := n.stream(to)
	p.sent++
	env := envelope{MSeq: n.mseq, Start: n.startSeq, Stream: p.out, Seq: p.sent, AckStream: p.in, Ack: p.got}
	p.ackSent = p.got
	out := Outgoing{To: to, Type: MsgTypeFirst + uint16(m.kind()), Key: key, Payload: encode(nil, env, m)}
	p.unacked = append(p.unacked, sentMsg{seq: p.sent, out: out})
	return out
}

// accept applies a received envelope to the streams with from and reports
// whether the message is to be processed (taken in order, not an
// acknowledgement alone).
func (n *Node) accept(from base.NodeID, env envelope) bool {
	p := n.stream(from)
	switch {
	case env.Start < p.start || (env.Start == p.start && env.Stream < p.in):
		n.streamStats.Stale++
		return false
	case env.Start > p.start || env.Stream > p.in:
		p.start, p.in, p.got, p.ackSent, p.asked = env.Start, env.Stream, 0, 0, 0
	}
	if env.AckStream == p.out {
		k := 0
		for k < len(p.unacked) && p.unacked[k].seq <= env.Ack {
			k++
		}
		if k > 0 {
			p.unacked = append(p.unacked[:0], p.unacked[k:]...)
		}
	}
	switch {
	case env.Seq == 0:
		return false // an acknowledgement alone
	case env.Seq <= p.got:
		n.streamStats.Duplicates++
		return false
	case env.Seq > p.got+1:
		n.streamStats.Gaps++
		if p.asked != p.got+1 {
			p.asked = p.got + 1
			n.sendAck(from, p, true)
		}
		return false
	}
	p.got = env.Seq
	return true
}

// streamPeerDied ends the streams with the incarnation of x that died at
// membership event seq: this node's stream to x starts again (a new
// incarnation knows nothing of it), and x's stream is forgotten unless it
// is already a later incarnation's.
func (n *Node) streamPeerDied(seq uint64, x base.NodeID) {
	p := n.stream(x)
	p.out++
	p.sent, p.unacked = 0, nil
	if p.start < seq {
		p.start, p.in, p.got, p.ackSent, p.asked = 0, 0, 0, 0, 0
	}
}

// resendTo sends x again what it has not acknowledged.
func (n *Node) resendTo(x base.NodeID) {
	p := n.stream(x)
	for _, s := range p.unacked {
		n.rd.Messages = append(n.rd.Messages, s.out)
		n.streamStats.Resent++
	}
}

// streamPeerUp starts a new stream to x, which came up: what was sent to it
// since it died was for nobody.
func (n *Node) streamPeerUp(x base.NodeID) {
	p := n.stream(x)
	if p.sent > 0 || len(p.unacked) > 0 {
		p.out++
		p.sent, p.unacked = 0, nil
	}
}

// LinkUp tells the Node that the connection to peer x was established (or
// re-established): what x has not acknowledged is sent again, in order,
// with an acknowledgement of what came from x. Messages in flight on a
// broken connection are lost; this is how they are not.
func (n *Node) LinkUp(x base.NodeID) Ready {
	n.begin()
	if x.Valid() && x != n.self && n.live.Has(x) && n.startSeq != 0 {
		n.resendTo(x)
		n.sendAck(x, n.stream(x), true)
	}
	return n.finish()
}

// sendAck sends an acknowledgement alone to x; resend asks x to send
// again what it sent after it.
func (n *Node) sendAck(x base.NodeID, p *peerStream, resend bool) {
	env := envelope{MSeq: n.mseq, Start: n.startSeq, Stream: p.out, AckStream: p.in, Ack: p.got}
	p.ackSent = p.got
	n.rd.Messages = append(n.rd.Messages, Outgoing{To: x, Type: MsgTypeFirst + uint16(kAck), Payload: encode(nil, env, &ackMsg{Resend: resend})})
}

// sendAcks acknowledges, to each live peer, what came from it since the
// last acknowledgement it got (on Tick: most ride on other messages).
func (n *Node) sendAcks() {
	for _, x := range n.live.Nodes() {
		if p := n.streams[x]; p != nil && x != n.self && p.got > p.ackSent {
			n.sendAck(x, p, false)
		}
	}
}

// Streams returns what the streams did, and how much waits for an
// acknowledgement now.
func (n *Node) Streams() StreamStats {
	s := n.streamStats
	for _, p := range n.streams {
		if p != nil {
			s.Unacked += len(p.unacked)
		}
	}
	return s
}
