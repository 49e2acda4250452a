package quorum

import (
	"fmt"

	"o2go/internal/base"
)

// Decision is the outcome of one quorum decision.
type Decision struct {
	Fence        bool
	Reason       string // why this node must fence, in o2quo's words
	Heartbeating int
	Connected    int
	Lowest       base.NodeID // lowest heartbeating node
}

// Quorum is o2quo (fs/ocfs2/cluster/quorum.c): it counts the nodes that
// heartbeat and the nodes this node is connected to (itself included in
// both) and, when a connection to a node that still heartbeats is lost,
// decides whether this node may continue.
//
// The decision is deferred while any node is "held": a node that heartbeats
// but is not connected yet (HeartbeatUp before ConnUp), one that is connected
// but does not heartbeat yet, or one whose connection was lost (ConnErr) and
// whose fate is unknown until it either stops heartbeating (HeartbeatDown)
// or is found still heartbeating QuorumDelay later (StillUp). StillUp makes
// a decision pending; it is taken when the last hold is released.
//
// The rule: with an odd number of heartbeating nodes, continue only when
// connected to more than half of them; with an even number, continue when
// connected to more than half, or to exactly half when that half includes
// the lowest-numbered heartbeating node. A node alone (one heartbeating
// node) never fences.
type Quorum struct {
	self    base.NodeID
	hb      base.NodeMap
	conn    base.NodeMap
	hold    base.NodeMap
	pending bool
	ready   []Decision
}

// New returns the quorum state of node self.
func New(self base.NodeID) *Quorum { return &Quorum{self: self} }

func (q *Quorum) setHold(n base.NodeID) { q.hold.Add(n) }

func (q *Quorum) clearHold(n base.NodeID) {
	if !q.hold.Has(n) {
		return
	}
	q.hold.Remove(n)
	if q.hold.Empty() && q.pending {
		q.pending = false
		if d := q.Evaluate(); d.Fence {
			q.ready = append(q.ready, d)
		}
	}
}

// HeartbeatUp: node n started heartbeating (o2quo_hb_up).
func (q *Quorum) HeartbeatUp(n base.NodeID) {
	if q.hb.Has(n) {
		return
	}
	q.hb.Add(n)
	if q.conn.Has(n) {
		q.clearHold(n)
	} else {
		q.setHold(n)
	}
}

// HeartbeatDown: node n stopped heartbeating (o2quo_hb_down). It releases
// any hold n had.
func (q *Quorum) HeartbeatDown(n base.NodeID) {
	if !q.hb.Has(n) {
		return
	}
	q.hb.Remove(n)
	q.clearHold(n)
}

// ConnUp: a connection to n passed its handshake (o2quo_conn_up). The node
// itself is "connected" from the moment it listens.
func (q *Quorum) ConnUp(n base.NodeID) {
	if q.conn.Has(n) {
		return
	}
	q.conn.Add(n)
	if q.hb.Has(n) {
		q.clearHold(n)
	} else {
		q.setHold(n)
	}
}

// ConnErr: the connection to n is lost or never came (o2quo_conn_err).
// While n heartbeats it holds the decision.
func (q *Quorum) ConnErr(n base.NodeID) {
	q.conn.Remove(n)
	if q.hb.Has(n) {
		q.setHold(n)
	}
}

// StillUp: QuorumDelay after ConnErr, n still heartbeats
// (o2quo_hb_still_up): a decision is due once no hold remains.
func (q *Quorum) StillUp(n base.NodeID) {
	q.pending = true
	if q.hold.Has(n) {
		q.clearHold(n)
	} else if q.hold.Empty() {
		q.pending = false
		if d := q.Evaluate(); d.Fence {
			q.ready = append(q.ready, d)
		}
	}
}

// Evaluate applies the rule to the current counts, regardless of holds.
func (q *Quorum) Evaluate() Decision {
	d := Decision{Heartbeating: q.hb.Len(), Connected: q.hb.Intersect(q.conn).Len(), Lowest: q.hb.Lowest()}
	// o2quo counts every connection; a connected node that does not
	// heartbeat is held, so at decision time conn ⊆ hb. Counting the
	// intersection keeps Evaluate meaningful while holds exist.
	if !q.hb.Has(q.self) || d.Heartbeating == 1 {
		return d
	}
	lowestReachable := q.conn.Has(d.Lowest)
	if d.Heartbeating&1 == 1 {
		quorum := (d.Heartbeating + 1) / 2
		if d.Connected < quorum {
			d.Fence = true
			d.Reason = fmt.Sprintf("fencing this node because it is only connected to %d nodes and %d is needed to make a quorum out of %d heartbeating nodes",
				d.Connected, quorum, d.Heartbeating)
		}
		return d
	}
	quorum := d.Heartbeating / 2
	switch {
	case d.Connected < quorum:
		d.Fence = true
		d.Reason = fmt.Sprintf("fencing this node because it is only connected to %d nodes and %d is needed to make a quorum out of %d heartbeating nodes",
			d.Connected, quorum, d.Heartbeating)
	case d.Connected == quorum && !lowestReachable:
		d.Fence = true
		d.Reason = fmt.Sprintf("fencing this node because it is connected to a half-quorum of %d out of %d nodes which doesn't include the lowest active node %d",
			quorum, d.Heartbeating, d.Lowest)
	}
	return d
}

// HasQuorum reports whether the current counts let this node continue.
func (q *Quorum) HasQuorum() bool { return !q.Evaluate().Fence }

// Ready returns and clears the decisions taken (only fencing ones are kept).
func (q *Quorum) Ready() []Decision {
	r := q.ready
	q.ready = nil
	return r
}

// Heartbeating, Connected and Held are the current maps.
func (q *Quorum) Heartbeating() base.NodeMap { return q.hb }
func (q *Quorum) Connected() base.NodeMap    { return q.conn }
func (q *Quorum) Held() base.NodeMap         { return q.hold }

// Pending reports whether a decision waits for holds to drain.
func (q *Quorum) Pending() bool { return q.pending }
