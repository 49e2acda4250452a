package sim

import (
	"sort"
	"time"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/node/member"
)

// linkState says which directed links are cut, until when.
type linkState struct {
	cutUntil map[[2]base.NodeID]time.Duration
}

func newLinkState() linkState { return linkState{cutUntil: map[[2]base.NodeID]time.Duration{}} }

func (l linkState) cut(a, b base.NodeID, now time.Duration) bool {
	return l.cutUntil[[2]base.NodeID{a, b}] > now
}

func (l linkState) setCut(a, b base.NodeID, until time.Duration) {
	k := [2]base.NodeID{a, b}
	if l.cutUntil[k] < until {
		l.cutUntil[k] = until
	}
}

// simConn is a TCP connection between two nodes: reliable and ordered until
// it breaks. A cut link breaks it silently (neither side hears; their idle
// timers notice); a crash or close resets it (the other side hears).
type simConn struct {
	a, b       *simNode
	idA, idB   cnet.ConnID
	epA, epB   int
	broken     bool
	closed     bool
	lastAB     time.Duration
	lastBA     time.Duration
	establishB bool // b accepted
}

func (s *simConn) ends(n *simNode) (me, peer *simNode, myID, peerID cnet.ConnID, peerEpoch int) {
	if n == s.a {
		return s.a, s.b, s.idA, s.idB, s.epB
	}
	return s.b, s.a, s.idB, s.idA, s.epA
}

func (c *Cluster) netLatency() time.Duration {
	lat := 50*time.Microsecond + time.Duration(c.rng.Intn(2000))*time.Microsecond
	if d := c.active.netDelay(c.now); d > 0 {
		lat += time.Duration(c.rng.Intn(int(d/time.Millisecond)+1)) * time.Millisecond
	}
	return lat
}

func (c *Cluster) pathUp(a, b base.NodeID) bool {
	return !c.links.cut(a, b, c.now) && !c.links.cut(b, a, c.now)
}

// dial: node n connects to d.Peer; the peer's agent authenticates and
// accepts, then n hears Established (or Closed).
func (c *Cluster) dial(n *simNode, d cnet.Dial) {
	peer := c.nodes[d.Peer]
	epoch := n.epoch
	fail := func(after time.Duration, why string) {
		c.q.at(c.now+after, func() {
			c.deliverTo(n, epoch, func() { n.m.Closed(c.now, d.Peer, d.Conn, why) })
		})
	}
	lat := c.netLatency()
	c.q.at(c.now+lat, func() {
		switch {
		case n.epoch != epoch || n.state == stDown || n.state == stFenced:
			return
		case !c.pathUp(n.id, peer.id):
			fail(time.Second, "connection timed out")
			return
		case peer.state == stDown || peer.state == stFenced:
			fail(c.netLatency(), "connection refused")
			return
		case peer.state == stPaused:
			fail(time.Second, "handshake timed out")
			return
		}
		id, err := peer.m.Accept(c.now, n.id)
		c.process(peer)
		if err != nil {
			fail(c.netLatency(), "refused: "+err.Error())
			return
		}
		sc := &simConn{a: n, b: peer, idA: d.Conn, idB: id, epA: epoch, epB: peer.epoch, lastAB: c.now, lastBA: c.now}
		n.conns[d.Conn] = sc
		peer.conns[id] = sc
		c.q.at(c.now+c.netLatency(), func() {
			if sc.closed || sc.broken {
				c.deliverTo(n, epoch, func() { n.m.Closed(c.now, d.Peer, d.Conn, "connection reset") })
				return
			}
			c.deliverTo(n, epoch, func() { n.m.Established(c.now, d.Peer, d.Conn) })
		})
	})
}

// send delivers a frame in order, unless the connection breaks first.
func (c *Cluster) send(n *simNode, f member.Frame) {
	sc := n.conns[f.Conn]
	if sc == nil || sc.closed || sc.broken {
		return
	}
	_, peer, _, peerID, peerEpoch := sc.ends(n)
	if !c.pathUp(n.id, peer.id) {
		sc.broken = true
		return
	}
	at := c.now + c.netLatency()
	last := &sc.lastAB
	if n == sc.b {
		last = &sc.lastBA
	}
	if at < *last {
		at = *last
	}
	*last = at
	from := n.id
	c.q.at(at, func() {
		if sc.closed || sc.broken {
			return
		}
		if !c.pathUp(from, peer.id) {
			sc.broken = true
			return
		}
		c.deliverTo(peer, peerEpoch, func() {
			if sc.closed {
				return
			}
			handled, err := peer.m.Received(c.now, from, peerID, f.Header, f.Payload)
			if err != nil {
				c.chk.violate("node %d rejected a frame from node %d: %v", peer.id, from, err)
			}
			if handled {
				c.dlmReceive(peer, from, f.Header, f.Payload)
			}
		})
	})
}

// closeConn: n closes its end; the peer hears it if the path is up.
func (c *Cluster) closeConn(n *simNode, id cnet.ConnID, reason string) {
	sc := n.conns[id]
	if sc == nil || sc.closed {
		return
	}
	c.resetConn(sc, n, "closed by peer: "+reason)
}

// resetConn closes sc; the end that is not by hears after a network delay,
// when the path lets the reset through.
func (c *Cluster) resetConn(sc *simConn, by *simNode, why string) {
	if sc.closed {
		return
	}
	sc.closed = true
	notify := func(n *simNode, id cnet.ConnID, ep int, peer base.NodeID) {
		if sc.broken || !c.pathUp(n.id, peer) {
			return
		}
		c.q.at(c.now+c.netLatency(), func() {
			c.deliverTo(n, ep, func() { n.m.Closed(c.now, peer, id, why) })
		})
	}
	if by != sc.a {
		notify(sc.a, sc.idA, sc.epA, sc.b.id)
	}
	if by != sc.b {
		notify(sc.b, sc.idB, sc.epB, sc.a.id)
	}
}

// dropConns ends every connection of n: reset (the process died, the
// kernel answers for it) or silently (power loss).
func (c *Cluster) dropConns(n *simNode, reset bool) {
	for _, sc := range sortedConns(n) {
		if reset {
			c.resetConn(sc, n, "connection reset by peer")
		} else {
			sc.broken = true
		}
	}
	n.conns = map[cnet.ConnID]*simConn{}
}

// sortedConns lists n's connections by id: map order would make runs differ.
func sortedConns(n *simNode) []*simConn {
	ids := make([]cnet.ConnID, 0, len(n.conns))
	for id := range n.conns {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]*simConn, len(ids))
	for i, id := range ids {
		out[i] = n.conns[id]
	}
	return out
}
