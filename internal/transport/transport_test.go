package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/testutil"
)

var secret = []byte("a test cluster secret of 32 byte")

func ident(n base.NodeID, s []byte, t config.Timeouts) Identity {
	return Identity{Hello: cnet.Hello{Version: cnet.ProtocolVersion, From: n, Cluster: "test", Incarnation: uint64(n) + 100, Timeouts: t}, Secret: s}
}

type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) log(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logSink) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// freePort finds a free TCP port on addr.
func freePort(t *testing.T, addr string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", addr+":0")
	if err != nil {
		testutil.Unavailable(t, "cannot listen on %s (loopback addresses 127.0.0.1 and 127.0.0.2 are needed): %v", addr, err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func tcpPair(t *testing.T, s1, s2 []byte, t1, t2 config.Timeouts) (*TCP, *TCP, *logSink, *logSink) {
	t.Helper()
	a1, a2 := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.2")
	peers := map[base.NodeID]netip.AddrPort{1: a1, 2: a2}
	l1, l2 := &logSink{}, &logSink{}
	e1, err := ListenTCP(TCPConfig{Identity: ident(1, s1, t1), Listen: a1, Peers: peers, Log: l1.log})
	if err != nil {
		t.Fatal(err)
	}
	e2, err := ListenTCP(TCPConfig{Identity: ident(2, s2, t2), Listen: a2, Peers: peers, Log: l2.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e1.Close(); e2.Close() })
	return e1, e2, l1, l2
}

func exchange(t *testing.T, a, b *Conn) {
	t.Helper()
	payload := bytes.Repeat([]byte("x"), 3000)
	h, _ := cnet.Message(501, 7, len(payload), 1, true)
	go func() {
		for i := 0; i < 50; i++ {
			if err := a.Send(h, payload); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 50; i++ {
		gh, gp, err := b.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if gh != h || !bytes.Equal(gp, payload) {
			t.Fatalf("frame %d differs", i)
		}
	}
}

func TestTCPHandshakeAndFrames(t *testing.T) {
	e1, e2, _, _ := tcpPair(t, secret, secret, config.DefaultTimeouts(), config.DefaultTimeouts())
	ctx := context.Background()
	c2, err := e2.Dial(ctx, 1) // the higher node dials
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c1, err := e1.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if c1.Peer() != 2 || c2.Peer() != 1 || c1.PeerHello().Incarnation != 102 {
		t.Fatalf("peers: %d %d %+v", c1.Peer(), c2.Peer(), c1.PeerHello())
	}
	exchange(t, c2, c1)
	exchange(t, c1, c2)
	c2.Close()
	if _, _, err := c1.Recv(); err == nil {
		t.Fatal("Recv after the peer closed")
	}
}

func TestTCPWrongSecretIsRefusedAndLogged(t *testing.T) {
	e1, e2, l1, _ := tcpPair(t, secret, []byte("another secret, wrong, 32 bytes!"), config.DefaultTimeouts(), config.DefaultTimeouts())
	_, err := e2.Dial(context.Background(), 1)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("dial with a wrong secret: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if c, err := e1.Accept(ctx); err == nil {
		t.Fatalf("the acceptor handed over a connection from node %d", c.Peer())
	}
	// The acceptor logs the refusal with the peer's address.
	deadline := time.Now().Add(2 * time.Second)
	for !l1.has("refused connection from 127.0.0.2:") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !l1.has("refused connection from 127.0.0.2:") {
		t.Fatalf("acceptor log: %q", l1.lines)
	}
}

func TestTCPDifferentTimeoutsAreRefused(t *testing.T) {
	t2 := config.DefaultTimeouts()
	t2.IdleTimeout = 20 * time.Second
	_, e2, l1, _ := tcpPair(t, secret, secret, config.DefaultTimeouts(), t2)
	_, err := e2.Dial(context.Background(), 1)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "O2CB_IDLE_TIMEOUT_MS") {
		t.Fatalf("dial: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if !l1.has("O2CB_IDLE_TIMEOUT_MS=20000, this node 30000") {
		t.Fatalf("acceptor log: %q", l1.lines)
	}
}

func TestTCPWrongOriginIsRefused(t *testing.T) {
	a1, a2 := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.2")
	// Node 2 is configured at 127.0.0.3, but connects from 127.0.0.2.
	peers := map[base.NodeID]netip.AddrPort{1: a1, 2: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), a2.Port())}
	l1 := &logSink{}
	e1, err := ListenTCP(TCPConfig{Identity: ident(1, secret, config.DefaultTimeouts()), Listen: a1, Peers: peers, Log: l1.log})
	if err != nil {
		t.Fatal(err)
	}
	defer e1.Close()
	e2, err := ListenTCP(TCPConfig{Identity: ident(2, secret, config.DefaultTimeouts()), Listen: a2, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if _, err := e2.Dial(context.Background(), 1); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "must connect from 127.0.0.3") {
		t.Fatalf("dial: %v", err)
	}
}

func TestNotAnO2goPeer(t *testing.T) {
	e1, _, l1, _ := tcpPair(t, secret, secret, config.DefaultTimeouts(), config.DefaultTimeouts())
	c, err := net.Dial("tcp4", e1.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Write(bytes.Repeat([]byte("GET / HTTP/1.0\r\n"), 10))
	buf := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("the endpoint answered garbage")
	}
	c.Close()
	time.Sleep(50 * time.Millisecond)
	if !l1.has("bad magic") {
		t.Fatalf("log: %q", l1.lines)
	}
}

func TestMemCut(t *testing.T) {
	m := NewMem()
	e1 := m.Endpoint(ident(1, secret, config.DefaultTimeouts()), nil)
	e2 := m.Endpoint(ident(2, secret, config.DefaultTimeouts()), nil)
	defer e1.Close()
	defer e2.Close()
	ctx := context.Background()
	c2, err := e2.Dial(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := e1.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, c2, c1)
	m.Cut(1, 2, false)
	h, _ := cnet.Message(501, 0, 1, 0, false)
	if err := c2.Send(h, []byte{1}); err != nil {
		t.Fatalf("send across a cut fails at once: %v (it should vanish silently)", err)
	}
	got := make(chan error, 1)
	go func() { _, _, err := c1.Recv(); got <- err }()
	select {
	case err := <-got:
		t.Fatalf("a frame crossed the cut: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	c1.Close()
	if err := <-got; err == nil {
		t.Fatal("Recv returned no error after Close")
	}
	if _, err := e2.Dial(ctx, 1); err == nil {
		t.Fatal("dial across a cut succeeded")
	}
	m.HealAll()
	if _, err := e2.Dial(ctx, 1); err != nil {
		t.Fatalf("dial after healing: %v", err)
	}
}

func TestMemWrongSecret(t *testing.T) {
	m := NewMem()
	l1 := &logSink{}
	e1 := m.Endpoint(ident(1, secret, config.DefaultTimeouts()), l1.log)
	e2 := m.Endpoint(ident(2, []byte("intruder's secret, 32 bytes long"), config.DefaultTimeouts()), nil)
	defer e1.Close()
	defer e2.Close()
	if _, err := e2.Dial(context.Background(), 1); !errors.Is(err, ErrAuth) {
		t.Fatalf("dial: %v", err)
	}
}

// FuzzAcceptorHandshake feeds an acceptor arbitrary bytes: it refuses, it
// never panics or hands over a connection.
func FuzzAcceptorHandshake(f *testing.F) {
	h := ident(2, secret, config.DefaultTimeouts()).Hello
	h.To = 1
	b, _ := h.Encode()
	f.Add(b)
	f.Add(append(b, make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		defer a.Close()
		go func() {
			b.Write(in)
			buf := make([]byte, 1024)
			for {
				if _, err := b.Read(buf); err != nil {
					return
				}
			}
		}()
		id := ident(1, secret, config.DefaultTimeouts())
		c, err := acceptorHandshake(a, &id, func(base.NodeID) error { return nil }, time.Now().Add(50*time.Millisecond))
		b.Close()
		if err == nil {
			t.Fatalf("handshake passed without the secret: peer %d", c.Peer())
		}
	})
}
