package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"o2go/internal/base"
)

// Endpoint is this node's side of the cluster network: it dials peers and
// accepts them, and hands over only connections that passed the
// authenticated handshake. TCP and Mem implement it.
type Endpoint interface {
	// Dial connects to peer and runs the handshake as the connector.
	Dial(ctx context.Context, peer base.NodeID) (*Conn, error)
	// Accept returns the next authenticated inbound connection.
	Accept(ctx context.Context) (*Conn, error)
	// Addr is where the endpoint listens, for messages.
	Addr() string
	Close() error
}

// ErrClosed is returned by Accept after Close.
var ErrClosed = errors.New("transport: endpoint closed")

// Logger receives the endpoint's log lines (refused connections).
type Logger func(format string, args ...any)

// HandshakeTimeout bounds a handshake: a peer that stalls it is dropped.
const HandshakeTimeout = 5 * time.Second

// TCPConfig configures a TCP endpoint.
type TCPConfig struct {
	Identity Identity
	Listen   netip.AddrPort                 // this node's ip_address:ip_port
	Peers    map[base.NodeID]netip.AddrPort // every configured node's address
	Log      Logger
	// OnRefuse, when set, hears every inbound connection refused, with the
	// node it claimed to be (InvalidNode if it never said).
	OnRefuse func(claimed base.NodeID, addr string, err error)
}

// TCP is the endpoint over TCP. A node listens on its configured address
// and dials from it (so that the peer can tell it by its source address, as
// o2net does); TCP_NODELAY is on.
type TCP struct {
	cfg      TCPConfig
	ln       net.Listener
	accepted chan *Conn
	done     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// ListenTCP starts listening.
func ListenTCP(cfg TCPConfig) (*TCP, error) {
	lc := net.ListenConfig{}
	ln, err := lc.Listen(context.Background(), "tcp4", cfg.Listen.String())
	if err != nil {
		return nil, fmt.Errorf("o2net: listening on %s: %w", cfg.Listen, err)
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	t := &TCP{cfg: cfg, ln: ln, accepted: make(chan *Conn, 16), done: make(chan struct{})}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Addr implements Endpoint.
func (t *TCP) Addr() string { return t.ln.Addr().String() }

func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	for {
		raw, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.cfg.Log("o2net: accept on %s: %v", t.Addr(), err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		setNoDelay(raw)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			c, claimed, err := acceptorHandshakeFrom(raw, &t.cfg.Identity, t.verifyOrigin(raw), time.Now().Add(HandshakeTimeout))
			if err != nil {
				t.cfg.Log("o2net: refused connection from %s: %v", raw.RemoteAddr(), err)
				if t.cfg.OnRefuse != nil {
					t.cfg.OnRefuse(claimed, raw.RemoteAddr().String(), err)
				}
				raw.Close()
				return
			}
			select {
			case t.accepted <- c:
			case <-t.done:
				c.Close()
			}
		}()
	}
}

// verifyOrigin: the node a Hello claims must connect from its configured
// address (o2net finds a connecting node by its source address).
func (t *TCP) verifyOrigin(raw net.Conn) func(base.NodeID) error {
	return func(n base.NodeID) error {
		want, ok := t.cfg.Peers[n]
		if !ok {
			return fmt.Errorf("node %d is not in this cluster's configuration", n)
		}
		ra, ok := raw.RemoteAddr().(*net.TCPAddr)
		if !ok {
			return fmt.Errorf("unexpected address type %T", raw.RemoteAddr())
		}
		got, _ := netip.AddrFromSlice(ra.IP)
		if got.Unmap() != want.Addr() {
			return fmt.Errorf("node %d must connect from %s, not %s", n, want.Addr(), got.Unmap())
		}
		return nil
	}
}

// Accept implements Endpoint.
func (t *TCP) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-t.accepted:
		return c, nil
	case <-t.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Dial implements Endpoint.
func (t *TCP) Dial(ctx context.Context, peer base.NodeID) (*Conn, error) {
	addr, ok := t.cfg.Peers[peer]
	if !ok {
		return nil, fmt.Errorf("node %d is not in this cluster's configuration", peer)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: t.cfg.Listen.Addr().AsSlice()}}
	ctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	defer cancel()
	raw, err := d.DialContext(ctx, "tcp4", addr.String())
	if err != nil {
		return nil, fmt.Errorf("o2net: connect to node %d at %s: %w", peer, addr, err)
	}
	setNoDelay(raw)
	deadline, _ := ctx.Deadline()
	c, err := connectorHandshake(raw, &t.cfg.Identity, peer, deadline)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("o2net: handshake with node %d at %s: %w", peer, addr, err)
	}
	return c, nil
}

// Close stops listening and waits for handshakes in progress.
func (t *TCP) Close() error {
	var err error
	t.once.Do(func() {
		close(t.done)
		err = t.ln.Close()
		t.wg.Wait()
	drain:
		for {
			select {
			case c := <-t.accepted:
				c.Close()
			default:
				break drain
			}
		}
	})
	return err
}

func setNoDelay(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
}
