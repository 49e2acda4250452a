package transport

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"o2go/internal/base"
)

// Mem is a simulated network between endpoints of one process, for tests
// of whole agents: connections are in-memory pipes running the same
// handshake and framing as TCP, and links can be cut (both ways or one way)
// and healed. A cut drops what is written across it and breaks the
// connection silently — neither side hears; their idle timers notice, as
// on a real network. Dialing across a cut fails after a second.
type Mem struct {
	mu    sync.Mutex
	eps   map[base.NodeID]*MemEndpoint
	cut   map[[2]base.NodeID]bool
	pipes []*pipePair
}

// NewMem returns an empty network.
func NewMem() *Mem {
	return &Mem{eps: map[base.NodeID]*MemEndpoint{}, cut: map[[2]base.NodeID]bool{}}
}

// Cut cuts the link from a to b (and b to a unless oneWay). Connections
// between them break.
func (m *Mem) Cut(a, b base.NodeID, oneWay bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cut[[2]base.NodeID{a, b}] = true
	if !oneWay {
		m.cut[[2]base.NodeID{b, a}] = true
	}
	for _, p := range m.pipes {
		if (p.a == a && p.b == b) || (p.a == b && p.b == a) {
			p.breakNow()
		}
	}
}

// Partition cuts every link between group and the other endpoints.
func (m *Mem) Partition(group base.NodeMap) {
	m.mu.Lock()
	var ids []base.NodeID
	for id := range m.eps {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, a := range ids {
		for _, b := range ids {
			if group.Has(a) && !group.Has(b) {
				m.Cut(a, b, false)
			}
		}
	}
}

// HealAll removes every cut (broken connections stay broken).
func (m *Mem) HealAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cut = map[[2]base.NodeID]bool{}
}

func (m *Mem) isCut(a, b base.NodeID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cut[[2]base.NodeID{a, b}] || m.cut[[2]base.NodeID{b, a}]
}

// Endpoint attaches node id.Hello.From to the network.
func (m *Mem) Endpoint(id Identity, log Logger) *MemEndpoint {
	if log == nil {
		log = func(string, ...any) {}
	}
	e := &MemEndpoint{net: m, id: id, self: id.Hello.From, log: log, accepted: make(chan *Conn, 16), done: make(chan struct{})}
	m.mu.Lock()
	m.eps[e.self] = e
	m.mu.Unlock()
	return e
}

// MemEndpoint is one node's endpoint on a Mem network.
type MemEndpoint struct {
	net      *Mem
	id       Identity
	self     base.NodeID
	log      Logger
	accepted chan *Conn
	done     chan struct{}
	once     sync.Once
}

// Addr implements Endpoint.
func (e *MemEndpoint) Addr() string { return fmt.Sprintf("mem:%d", e.self) }

// Accept implements Endpoint.
func (e *MemEndpoint) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-e.accepted:
		return c, nil
	case <-e.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Dial implements Endpoint.
func (e *MemEndpoint) Dial(ctx context.Context, peer base.NodeID) (*Conn, error) {
	m := e.net
	if m.isCut(e.self, peer) {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
		return nil, fmt.Errorf("o2net: connect to node %d: connection timed out", peer)
	}
	m.mu.Lock()
	target := m.eps[peer]
	m.mu.Unlock()
	if target == nil {
		return nil, fmt.Errorf("o2net: connect to node %d: connection refused", peer)
	}
	select {
	case <-target.done:
		return nil, fmt.Errorf("o2net: connect to node %d: connection refused", peer)
	default:
	}
	pa, pb := net.Pipe()
	pp := &pipePair{a: e.self, b: peer, net: m}
	ca, cb := &cutConn{Conn: pa, pair: pp, from: e.self, to: peer}, &cutConn{Conn: pb, pair: pp, from: peer, to: e.self}
	pp.ends = []net.Conn{pa, pb}
	m.mu.Lock()
	m.pipes = append(m.pipes, pp)
	m.mu.Unlock()
	go func() {
		c, err := acceptorHandshake(cb, &target.id, func(n base.NodeID) error {
			if n != e.self {
				return fmt.Errorf("node %d claims to be node %d", e.self, n)
			}
			return nil
		}, time.Now().Add(HandshakeTimeout))
		if err != nil {
			target.log("o2net: refused connection from node %d: %v", e.self, err)
			cb.Close()
			return
		}
		select {
		case target.accepted <- c:
		case <-target.done:
			c.Close()
		}
	}()
	c, err := connectorHandshake(ca, &e.id, peer, time.Now().Add(HandshakeTimeout))
	if err != nil {
		ca.Close()
		return nil, fmt.Errorf("o2net: handshake with node %d: %w", peer, err)
	}
	return c, nil
}

// Close implements Endpoint.
func (e *MemEndpoint) Close() error {
	e.once.Do(func() {
		close(e.done)
		e.net.mu.Lock()
		if e.net.eps[e.self] == e {
			delete(e.net.eps, e.self)
		}
		e.net.mu.Unlock()
	})
	return nil
}

// pipePair is one connection's two ends.
type pipePair struct {
	mu     sync.Mutex
	a, b   base.NodeID
	broken bool
	ends   []net.Conn
	net    *Mem
}

func (p *pipePair) breakNow() {
	p.mu.Lock()
	p.broken = true
	p.mu.Unlock()
}

// cutConn is one end of a pipe that drops writes across a cut.
type cutConn struct {
	net.Conn
	pair     *pipePair
	from, to base.NodeID
}

func (c *cutConn) Write(b []byte) (int, error) {
	if c.pair.net.isCut(c.from, c.to) {
		c.pair.breakNow()
	}
	c.pair.mu.Lock()
	broken := c.pair.broken
	c.pair.mu.Unlock()
	if broken {
		return len(b), nil // lost on the wire
	}
	return c.Conn.Write(b)
}

// Close closes this end. Across a broken connection nothing reaches the
// other end (a real partition carries no FIN either): only this end's
// blocked reads and writes return.
func (c *cutConn) Close() error {
	c.pair.mu.Lock()
	broken := c.pair.broken
	c.pair.mu.Unlock()
	if broken {
		return c.Conn.SetDeadline(time.Unix(1, 0))
	}
	return c.Conn.Close()
}
