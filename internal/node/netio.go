package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/node/member"
	"o2go/internal/transport"
)

// peerConn is one established connection: a writer goroutine sends the
// stack's frames in order; a reader goroutine receives everything.
type peerConn struct {
	id       cnet.ConnID
	peer     base.NodeID
	c        *transport.Conn
	out      chan member.Frame
	once     sync.Once
	lastNote atomic.Int64
}

func (pc *peerConn) enqueue(f member.Frame) {
	select {
	case pc.out <- f:
	default:
		// The peer does not read: the connection is of no use any more.
		pc.c.Close()
	}
}

func (pc *peerConn) close() {
	pc.once.Do(func() {
		close(pc.out)
		pc.c.Close()
	})
}

// dial connects to a peer on its own goroutine.
func (a *Agent) dial(d cnet.Dial) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		c, err := a.ep.Dial(a.ctx, d.Peer)
		a.do(func() {
			if err != nil {
				// Log each distinct failure once, not every reconnect.
				if a.dialErr[d.Peer] != err.Error() {
					a.dialErr[d.Peer] = err.Error()
					a.logf("%v", err)
				}
				a.m.Closed(a.clock(), d.Peer, d.Conn, err.Error())
				return
			}
			delete(a.dialErr, d.Peer)
			a.attach(c, d.Conn)
			a.m.Established(a.clock(), d.Peer, d.Conn)
		})
	}()
}

// acceptLoop takes authenticated inbound connections and asks the member
// whether to keep them.
func (a *Agent) acceptLoop() {
	for {
		c, err := a.ep.Accept(a.ctx)
		if err != nil {
			if errors.Is(err, transport.ErrClosed) || a.ctx.Err() != nil {
				return
			}
			a.logf("o2net: accept: %v", err)
			continue
		}
		a.do(func() {
			id, err := a.m.Accept(a.clock(), c.Peer())
			if err != nil {
				a.logf("o2net: refused connection from node %d (%s): %v", c.Peer(), c.RemoteAddr(), err)
				c.Close()
				return
			}
			a.attach(c, id)
		})
	}
}

// attach starts a connection's goroutines (on the loop).
func (a *Agent) attach(c *transport.Conn, id cnet.ConnID) {
	pc := &peerConn{id: id, peer: c.Peer(), c: c, out: make(chan member.Frame, 1024)}
	a.refused.Delete(pc.peer) // a past refusal no longer explains anything
	a.conns[id] = pc
	a.peersMu.Lock()
	a.peers[pc.peer] = pc
	a.peersMu.Unlock()
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		for f := range pc.out {
			if err := c.Send(f.Header, f.Payload); err != nil {
				return
			}
		}
	}()
	go func() {
		defer a.wg.Done()
		a.readLoop(pc)
	}()
}

// dropConn forgets a connection (on the loop).
func (a *Agent) dropConn(pc *peerConn, reason string) {
	delete(a.conns, pc.id)
	a.peersMu.Lock()
	if a.peers[pc.peer] == pc {
		delete(a.peers, pc.peer)
	}
	a.peersMu.Unlock()
	pc.close()
	a.failCalls(pc.peer)
}

func (a *Agent) readLoop(pc *peerConn) {
	keep := a.cfg.Settings.Timeouts.KeepaliveDelay / 4
	for {
		h, p, err := pc.c.Recv()
		if err != nil {
			a.do(func() {
				if a.conns[pc.id] == pc {
					a.dropConn(pc, err.Error())
				}
				a.m.Closed(a.clock(), pc.peer, pc.id, err.Error())
			})
			return
		}
		app := h.Magic == cnet.MagicStatus || (h.Magic == cnet.MagicMsg && h.Type > cnet.TypeStackLast)
		if !app {
			a.do(func() {
				if _, err := a.m.Received(a.clock(), pc.peer, pc.id, h, p); err != nil {
					a.logf("o2net: from node %d: %v", pc.peer, err)
				}
			})
			continue
		}
		// Application traffic: tell the link machine it arrived (at most a
		// few times per keepalive period), and handle it here, in order.
		now := int64(a.clock())
		if now-pc.lastNote.Load() >= int64(keep) {
			pc.lastNote.Store(now)
			a.do(func() { _, _ = a.m.Received(a.clock(), pc.peer, pc.id, h, nil) })
		}
		if h.Magic == cnet.MagicStatus {
			a.completeCall(pc.peer, h)
			continue
		}
		a.dispatch(pc, h, p)
	}
}

func (a *Agent) dispatch(pc *peerConn, h cnet.Header, p []byte) {
	a.handlersMu.RLock()
	fn, sys := a.handlers.Lookup(h)
	a.handlersMu.RUnlock()
	var status int32
	if sys == cnet.SysNone {
		status = fn(pc.peer, h.Key, p)
	} else {
		a.logf("o2net: node %d sent type %d key %08x (%s): %v", pc.peer, h.Type, h.Key, cnet.Layer(h.Type), sys)
	}
	if h.Flags&cnet.FlagWantStatus != 0 {
		_ = pc.c.Send(cnet.StatusReply(h, sys, status), nil)
	}
}

// Handle registers fn for messages of type typ and key key (o2net's
// o2net_register_handler); payloads longer than maxLen are answered
// SysOverflow. typ must lie in a subscriber's range (see cluster/net).
func (a *Agent) Handle(typ uint16, key uint32, maxLen int, fn Handler) error {
	if err := cnet.CheckUserType(typ); err != nil {
		return err
	}
	a.handlersMu.Lock()
	defer a.handlersMu.Unlock()
	return a.handlers.Register(typ, key, maxLen, fn)
}

// Unhandle removes a handler.
func (a *Agent) Unhandle(typ uint16, key uint32) {
	a.handlersMu.Lock()
	defer a.handlersMu.Unlock()
	a.handlers.Unregister(typ, key)
}

// ErrNotConnected is returned when no connection to the node is up.
var ErrNotConnected = errors.New("not connected")

func (a *Agent) conn(node base.NodeID) (*peerConn, error) {
	a.peersMu.RLock()
	pc := a.peers[node]
	a.peersMu.RUnlock()
	if pc == nil {
		return nil, fmt.Errorf("node %d: %w", node, ErrNotConnected)
	}
	return pc, nil
}

// Send sends a message to node without waiting for it to be handled.
// Messages to one node arrive in the order they were sent.
func (a *Agent) Send(node base.NodeID, typ uint16, key uint32, payload []byte) error {
	if err := cnet.CheckUserType(typ); err != nil {
		return err
	}
	pc, err := a.conn(node)
	if err != nil {
		return err
	}
	h, err := cnet.Message(typ, key, len(payload), a.msgNum.Add(1), false)
	if err != nil {
		return err
	}
	return pc.c.Send(h, payload)
}

type pendingCall struct {
	peer base.NodeID
	ch   chan cnet.Header
}

// ErrPeerDied is returned by Call when the connection died before a reply
// (o2net's O2NET_ERR_DIED).
var ErrPeerDied = errors.New("the connection died before the handler answered")

// Call sends a message and waits for the handler's status (o2net's
// o2net_send_message). A SysStatus other than SysNone is an error.
func (a *Agent) Call(ctx context.Context, node base.NodeID, typ uint16, key uint32, payload []byte) (int32, error) {
	if err := cnet.CheckUserType(typ); err != nil {
		return 0, err
	}
	pc, err := a.conn(node)
	if err != nil {
		return 0, err
	}
	num := a.msgNum.Add(1)
	h, err := cnet.Message(typ, key, len(payload), num, true)
	if err != nil {
		return 0, err
	}
	pend := &pendingCall{peer: node, ch: make(chan cnet.Header, 1)}
	a.callsMu.Lock()
	a.calls[num] = pend
	a.callsMu.Unlock()
	defer func() {
		a.callsMu.Lock()
		delete(a.calls, num)
		a.callsMu.Unlock()
	}()
	if err := pc.c.Send(h, payload); err != nil {
		return 0, err
	}
	select {
	case r := <-pend.ch:
		switch r.SysStatus {
		case cnet.SysNone:
			return r.Status, nil
		case cnet.SysDied:
			return 0, fmt.Errorf("node %d: %w", node, ErrPeerDied)
		}
		return 0, fmt.Errorf("node %d: message type %d key %08x: %v", node, typ, key, r.SysStatus)
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(a.cfg.Settings.Timeouts.IdleTimeout + a.cfg.Settings.Timeouts.DeadTime()):
		return 0, fmt.Errorf("node %d: no reply: %w", node, context.DeadlineExceeded)
	}
}

func (a *Agent) completeCall(peer base.NodeID, h cnet.Header) {
	a.callsMu.Lock()
	p := a.calls[h.MsgNum]
	a.callsMu.Unlock()
	if p != nil && p.peer == peer {
		select {
		case p.ch <- h:
		default:
		}
	}
}

func (a *Agent) failCalls(peer base.NodeID) {
	a.callsMu.Lock()
	defer a.callsMu.Unlock()
	for _, p := range a.calls {
		if p.peer == peer {
			select {
			case p.ch <- cnet.Header{Magic: cnet.MagicStatus, SysStatus: cnet.SysDied}:
			default:
			}
		}
	}
}

// Connected lists the nodes with an established connection.
func (a *Agent) Connected() base.NodeMap {
	a.peersMu.RLock()
	defer a.peersMu.RUnlock()
	var m base.NodeMap
	for n := range a.peers {
		m.Add(n)
	}
	return m
}
