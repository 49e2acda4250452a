package net

import (
	"fmt"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
)

// ConnID names one connection attempt or accepted connection. Links assigns
// them; 0 is none.
type ConnID uint64

// LinkConfig is what Links needs to know.
type LinkConfig struct {
	Self  base.NodeID
	Nodes base.NodeMap // the configured nodes, Self included
	// IdleTimeout, KeepaliveDelay, ReconnectDelay: config.Timeouts.
	IdleTimeout    time.Duration
	KeepaliveDelay time.Duration
	ReconnectDelay time.Duration
	// QuorumDelay is how long after giving up on a connection to a node
	// that still heartbeats the quorum decision is asked for (StillUp):
	// O2NET_QUORUM_DELAY_MS, (threshold+2) heartbeat intervals, so that a
	// node that really died has been declared dead by then.
	QuorumDelay time.Duration
}

// LinkConfigFor derives a LinkConfig from the cluster's timeouts.
func LinkConfigFor(self base.NodeID, nodes base.NodeMap, t config.Timeouts) LinkConfig {
	return LinkConfig{
		Self:           self,
		Nodes:          nodes,
		IdleTimeout:    t.IdleTimeout,
		KeepaliveDelay: t.KeepaliveDelay,
		ReconnectDelay: t.ReconnectDelay,
		QuorumDelay:    time.Duration(t.HeartbeatThreshold+2) * t.HeartbeatInterval,
	}
}

// QuorumEventKind is what a link tells quorum (o2net's calls into o2quo).
type QuorumEventKind int

const (
	ConnUp  QuorumEventKind = iota // o2quo_conn_up: the handshake passed
	ConnErr                        // o2quo_conn_err: the connection is lost or never came
	StillUp                        // o2quo_hb_still_up: QuorumDelay after ConnErr, still heartbeating
)

func (k QuorumEventKind) String() string {
	return [...]string{"conn-up", "conn-err", "still-up"}[k]
}

// QuorumEvent is one event for quorum.
type QuorumEvent struct {
	Kind QuorumEventKind
	Node base.NodeID
}

// Frame is a header-only frame Links wants sent on a connection (keepalives).
type Frame struct {
	Peer   base.NodeID
	Conn   ConnID
	Header Header
}

// Dial asks the driver to connect to a peer; the driver reports the outcome
// with Established or Closed for Conn.
type Dial struct {
	Peer base.NodeID
	Conn ConnID
}

// Close asks the driver to close a connection.
type Close struct {
	Peer   base.NodeID
	Conn   ConnID
	Reason string
}

// LinkReady is what Links asks the driver to do.
type LinkReady struct {
	Dials  []Dial
	Closes []Close
	Frames []Frame
	Quorum []QuorumEvent
	// Notes are log lines, in o2net's words where it has them.
	Notes []string
}

func (r *LinkReady) empty() bool {
	return len(r.Dials)+len(r.Closes)+len(r.Frames)+len(r.Quorum)+len(r.Notes) == 0
}

// LinkState is the state of the link to one peer, for status displays.
type LinkState int

const (
	LinkIdle       LinkState = iota // the peer does not heartbeat: no connection wanted
	LinkConnecting                  // heartbeating, no connection yet (dialing or waiting for it)
	LinkUp                          // authenticated connection established
	LinkLost                        // gave up (idle timeout or no connection in time); still retrying
)

func (s LinkState) String() string {
	return [...]string{"idle", "connecting", "up", "lost"}[s]
}

// LinkStatus describes the link to one peer.
type LinkStatus struct {
	Peer     base.NodeID
	State    LinkState
	Conn     ConnID
	Since    time.Duration // when the state began
	LastRecv time.Duration // last frame received (LinkUp)
	Reason   string        // why the link is lost
}

type link struct {
	hb          bool   // the peer heartbeats
	conn        ConnID // current attempt or connection
	up          bool   // conn passed the handshake
	heard       bool   // a frame came on conn: the peer kept it (quorum was told ConnUp)
	errored     bool   // quorum was told ConnErr and not yet ConnUp (o2net's persistent error)
	dialedOnce  bool
	lastDial    time.Duration
	expireArmed bool // connect_expired pending
	expireAt    time.Duration
	stillArmed  bool
	stillAt     time.Duration
	lastRecv    time.Duration
	keepSent    bool
	keepAt      time.Duration
	since       time.Duration
	reason      string
}

// Links is the pure state machine of this node's connections to its peers,
// o2net's per-node logic: connect only to heartbeating nodes, the higher
// node number dials, retry every ReconnectDelay, give up after IdleTimeout
// without a connection, keepalive after KeepaliveDelay of silence, drop a
// connection silent for IdleTimeout, and tell quorum (ConnUp, ConnErr,
// StillUp) as o2net tells o2quo.
//
// Time enters as the now argument of every call (a monotonic duration).
// Links is not safe for concurrent use.
type Links struct {
	cfg   LinkConfig
	peers [base.MaxNodes]*link
	next  ConnID
	ready LinkReady
}

// NewLinks returns the links of cfg.Self to every other configured node.
func NewLinks(cfg LinkConfig) *Links {
	l := &Links{cfg: cfg}
	for _, n := range cfg.Nodes.Nodes() {
		if n != cfg.Self {
			l.peers[n] = &link{}
		}
	}
	return l
}

func (l *Links) peer(p base.NodeID) *link {
	if !p.Valid() {
		return nil
	}
	return l.peers[p]
}

func (l *Links) note(format string, args ...any) {
	l.ready.Notes = append(l.ready.Notes, fmt.Sprintf(format, args...))
}

func (l *Links) dial(now time.Duration, p base.NodeID, k *link) {
	l.next++
	k.conn = l.next
	k.dialedOnce = true
	k.lastDial = now
	l.ready.Dials = append(l.ready.Dials, Dial{Peer: p, Conn: k.conn})
}

func (l *Links) closeConn(p base.NodeID, k *link, reason string) {
	if k.conn != 0 {
		l.ready.Closes = append(l.ready.Closes, Close{Peer: p, Conn: k.conn, Reason: reason})
	}
	k.conn, k.up, k.keepSent, k.heard = 0, false, false, false
}

// lose records that quorum must hear ConnErr (once) and arms StillUp.
func (l *Links) lose(now time.Duration, p base.NodeID, k *link, reason string) {
	k.reason = reason
	k.since = now
	if k.errored {
		return
	}
	k.errored = true
	l.ready.Quorum = append(l.ready.Quorum, QuorumEvent{ConnErr, p})
	k.stillArmed, k.stillAt = true, now+l.cfg.QuorumDelay
}

// HeartbeatUp: peer p started heartbeating. The higher-numbered side dials
// at once; both sides give the connection IdleTimeout to come up.
func (l *Links) HeartbeatUp(now time.Duration, p base.NodeID) {
	k := l.peer(p)
	if k == nil || k.hb {
		return
	}
	k.hb = true
	k.errored, k.stillArmed = false, false
	k.since, k.reason = now, ""
	if !k.up {
		k.expireArmed, k.expireAt = true, now+l.cfg.IdleTimeout
		if l.cfg.Self > p && k.conn == 0 {
			l.dial(now, p, k)
		}
	}
}

// HeartbeatDown: peer p stopped heartbeating (dead). Its connection is
// closed and no other is made until it heartbeats again.
func (l *Links) HeartbeatDown(now time.Duration, p base.NodeID) {
	k := l.peer(p)
	if k == nil || !k.hb {
		return
	}
	wasUp := k.up && k.heard
	k.hb = false
	l.closeConn(p, k, "node stopped heartbeating")
	if wasUp && !k.errored {
		// o2net_disconnect_node: quorum's connected count must drop too.
		l.ready.Quorum = append(l.ready.Quorum, QuorumEvent{ConnErr, p})
	}
	k.errored, k.expireArmed, k.stillArmed = false, false, false
	k.since, k.reason = now, "node is not heartbeating"
}

// Accept decides whether to take an authenticated inbound connection from
// p: only from a higher-numbered configured node that heartbeats, and only
// when no connection to it is up (o2net_accept_one). On success the
// connection is up.
func (l *Links) Accept(now time.Duration, p base.NodeID) (ConnID, error) {
	k := l.peer(p)
	switch {
	case k == nil:
		return 0, fmt.Errorf("node %d is not in this cluster's configuration", p)
	case p < l.cfg.Self:
		return 0, fmt.Errorf("unexpected connect attempt from node %d: the higher-numbered node connects", p)
	case !k.hb:
		return 0, fmt.Errorf("node %d is not heartbeating (yet)", p)
	case k.up:
		return 0, fmt.Errorf("node %d already has an open connection", p)
	}
	l.next++
	k.conn = l.next
	l.established(now, p, k)
	return k.conn, nil
}

// established: conn passed the handshake. The link counts as connected
// (ConnUp) only once a frame comes back on it: the accepting side decides
// after the handshake whether to keep the connection, and one it closes
// at once (its peer is not heartbeating there yet: a node just restarted)
// is a connect attempt that failed, not a link lost (a lost link leads to
// evictions). A keepalive request goes out at once to hear the peer.
func (l *Links) established(now time.Duration, p base.NodeID, k *link) {
	k.up, k.heard = true, false
	k.lastRecv, k.reason = now, ""
	k.keepSent, k.keepAt = true, now
	l.ready.Frames = append(l.ready.Frames, Frame{Peer: p, Conn: k.conn, Header: KeepaliveRequest})
}

// heardFrom: the first frame on the connection: now it is up for quorum.
func (l *Links) heardFrom(now time.Duration, p base.NodeID, k *link) {
	k.heard = true
	k.expireArmed, k.stillArmed = false, false
	k.errored = false
	k.since, k.reason = now, ""
	l.ready.Quorum = append(l.ready.Quorum, QuorumEvent{ConnUp, p})
	if l.cfg.Self > p {
		l.note("o2net: Connected to node %d", p)
	} else {
		l.note("o2net: Accepted connection from node %d", p)
	}
}

// Established: the dialed connection conn to p passed the handshake.
// A stale conn (superseded or closed meanwhile) is closed instead.
func (l *Links) Established(now time.Duration, p base.NodeID, conn ConnID) {
	k := l.peer(p)
	if k == nil {
		return
	}
	if k.conn != conn || k.up || !k.hb {
		l.ready.Closes = append(l.ready.Closes, Close{Peer: p, Conn: conn, Reason: "stale connection"})
		return
	}
	l.established(now, p, k)
}

// Closed: connection conn to p failed or was closed by the peer or the
// driver. reason says why, for the status display.
func (l *Links) Closed(now time.Duration, p base.NodeID, conn ConnID, reason string) {
	k := l.peer(p)
	if k == nil || k.conn != conn || conn == 0 {
		return
	}
	wasUp := k.up && k.heard
	k.conn, k.up, k.keepSent, k.heard = 0, false, false, false
	if wasUp {
		l.note("o2net: No longer connected to node %d: %s", p, reason)
		l.lose(now, p, k, reason)
	} else {
		// A connect attempt that failed (or a connection the peer closed
		// before a word): retried; given up on when the connect expires.
		k.reason = reason
	}
}

// Received: a frame arrived on conn from p. It reports whether the frame
// belongs to the current connection (others are to be dropped). A keepalive
// request is answered.
func (l *Links) Received(now time.Duration, p base.NodeID, conn ConnID, h Header) bool {
	k := l.peer(p)
	if k == nil || !k.up || k.conn != conn {
		return false
	}
	k.lastRecv, k.keepSent = now, false
	if !k.heard {
		l.heardFrom(now, p, k)
	}
	if h.Magic == MagicKeepReq {
		l.ready.Frames = append(l.ready.Frames, Frame{Peer: p, Conn: conn, Header: KeepaliveResponse})
	}
	return true
}

// Tick advances time: reconnects, connect expiry, keepalives, idle timeouts
// and the delayed StillUp.
func (l *Links) Tick(now time.Duration) {
	for _, p := range l.cfg.Nodes.Nodes() {
		k := l.peers[p]
		if k == nil {
			continue
		}
		if k.hb && !k.up && k.expireArmed && now >= k.expireAt {
			k.expireArmed = false
			l.note("o2net: No connection established with node %d after %v, giving up", p, l.cfg.IdleTimeout)
			l.lose(now, p, k, fmt.Sprintf("no connection after %v", l.cfg.IdleTimeout))
		}
		if k.up {
			idle := now - k.lastRecv
			switch {
			case idle >= l.cfg.IdleTimeout:
				l.note("o2net: Connection to node %d has been idle for %v, shutting it down", p, idle)
				reason := fmt.Sprintf("idle for %v", idle)
				l.closeConn(p, k, reason)
				l.lose(now, p, k, reason)
			case idle >= l.cfg.KeepaliveDelay && (!k.keepSent || now-k.keepAt >= l.cfg.KeepaliveDelay):
				k.keepSent, k.keepAt = true, now
				l.ready.Frames = append(l.ready.Frames, Frame{Peer: p, Conn: k.conn, Header: KeepaliveRequest})
			}
		}
		if k.hb && !k.up && k.conn == 0 && l.cfg.Self > p &&
			(!k.dialedOnce || now-k.lastDial >= l.cfg.ReconnectDelay) {
			l.dial(now, p, k)
		}
		if k.stillArmed && now >= k.stillAt {
			k.stillArmed = false
			if k.hb && k.errored {
				l.ready.Quorum = append(l.ready.Quorum, QuorumEvent{StillUp, p})
			}
		}
	}
}

// NextDeadline is the earliest time Tick has something to do, for drivers
// that sleep until then; ok is false when nothing is pending.
func (l *Links) NextDeadline() (t time.Duration, ok bool) {
	take := func(d time.Duration) {
		if !ok || d < t {
			t, ok = d, true
		}
	}
	for _, p := range l.cfg.Nodes.Nodes() {
		k := l.peers[p]
		if k == nil {
			continue
		}
		if k.hb && !k.up && k.conn == 0 && l.cfg.Self > p {
			take(k.lastDial + l.cfg.ReconnectDelay)
		}
		if k.hb && !k.up && k.expireArmed {
			take(k.expireAt)
		}
		if k.up {
			if k.keepSent {
				take(k.keepAt + l.cfg.KeepaliveDelay)
			} else {
				take(k.lastRecv + l.cfg.KeepaliveDelay)
			}
			take(k.lastRecv + l.cfg.IdleTimeout)
		}
		if k.stillArmed {
			take(k.stillAt)
		}
	}
	return t, ok
}

// Ready returns and clears what the driver must do.
func (l *Links) Ready() LinkReady {
	r := l.ready
	l.ready = LinkReady{}
	return r
}

// HasReady reports whether Ready has something.
func (l *Links) HasReady() bool { return !l.ready.empty() }

// Connected is the set of peers with an established connection.
func (l *Links) Connected() base.NodeMap {
	var m base.NodeMap
	for _, p := range l.cfg.Nodes.Nodes() {
		if k := l.peers[p]; k != nil && k.up && k.heard {
			m.Add(p)
		}
	}
	return m
}

// Lost is the set of heartbeating peers this node has given up connecting to.
func (l *Links) Lost() base.NodeMap {
	var m base.NodeMap
	for _, p := range l.cfg.Nodes.Nodes() {
		if k := l.peers[p]; k != nil && k.hb && k.errored {
			m.Add(p)
		}
	}
	return m
}

// Conn returns the established connection to p, or 0.
func (l *Links) Conn(p base.NodeID) ConnID {
	if k := l.peer(p); k != nil && k.up {
		return k.conn
	}
	return 0
}

// Status describes the link to p.
func (l *Links) Status(p base.NodeID) LinkStatus {
	k := l.peer(p)
	if k == nil {
		return LinkStatus{Peer: p}
	}
	st := LinkStatus{Peer: p, Conn: k.conn, Since: k.since, Reason: k.reason}
	switch {
	case k.up && k.heard:
		st.State, st.LastRecv = LinkUp, k.lastRecv
	case !k.hb:
		st.State = LinkIdle
	case k.errored:
		st.State = LinkLost
	default:
		st.State = LinkConnecting
	}
	return st
}
