package transport

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
)

// Identity is what this node proves and checks in every handshake.
type Identity struct {
	Hello  cnet.Hello // this node's Hello; From is this node, Nonce is filled per connection
	Secret []byte     // the cluster secret (config.LoadSecret)
}

// ErrAuth is wrapped by handshake errors caused by a wrong secret.
var ErrAuth = errors.New("authentication failed: the peer does not hold this cluster's secret")

// ErrRefused is wrapped by handshake errors where the acceptor refused.
var ErrRefused = errors.New("refused by the peer")

// handshake statuses the acceptor answers with.
const (
	statusOK      = 0
	statusRefused = 1
	maxRefusalLen = 512
)

// Conn is an authenticated connection to one peer: frames are sealed with
// the connection's session keys (cluster/net's FrameMAC). Send is safe for
// concurrent use; Recv is called by one goroutine.
type Conn struct {
	raw    net.Conn
	peer   base.NodeID
	hello  *cnet.Hello
	r      *bufio.Reader
	sendMu sync.Mutex
	w      *bufio.Writer
	seal   *cnet.FrameSealer
	open   *cnet.FrameSealer
	hdr    [cnet.HeaderSize]byte
	mac    [cnet.MACSize]byte
	closed chan struct{}
	once   sync.Once
}

// Peer is the authenticated peer's node number.
func (c *Conn) Peer() base.NodeID { return c.peer }

// PeerHello is the Hello the peer sent (its incarnation, its timeouts).
func (c *Conn) PeerHello() *cnet.Hello { return c.hello }

// RemoteAddr is the peer's address, for messages.
func (c *Conn) RemoteAddr() string { return c.raw.RemoteAddr().String() }

// Send writes one frame: header, payload, MAC. h.DataLen must match.
func (c *Conn) Send(h cnet.Header, payload []byte) error {
	if int(h.DataLen) != len(payload) {
		return fmt.Errorf("send to node %d: header says %d payload bytes, %d given", c.peer, h.DataLen, len(payload))
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	var hb [cnet.HeaderSize]byte
	h.Encode(hb[:])
	mac := c.seal.Seal(c.mac[:0], hb[:], payload)
	if _, err := c.w.Write(hb[:]); err != nil {
		return c.fail(err)
	}
	if _, err := c.w.Write(payload); err != nil {
		return c.fail(err)
	}
	if _, err := c.w.Write(mac); err != nil {
		return c.fail(err)
	}
	if err := c.w.Flush(); err != nil {
		return c.fail(err)
	}
	return nil
}

func (c *Conn) fail(err error) error {
	c.Close()
	return fmt.Errorf("connection to node %d (%s): %w", c.peer, c.RemoteAddr(), err)
}

// Recv reads the next frame. A frame that fails its MAC, a malformed header
// or a short read closes the connection and returns the error.
func (c *Conn) Recv() (cnet.Header, []byte, error) {
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return cnet.Header{}, nil, c.fail(err)
	}
	h, err := cnet.DecodeHeader(c.hdr[:])
	if err != nil {
		return h, nil, c.fail(err)
	}
	payload := make([]byte, h.DataLen)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		return h, nil, c.fail(err)
	}
	var mac [cnet.MACSize]byte
	if _, err := io.ReadFull(c.r, mac[:]); err != nil {
		return h, nil, c.fail(err)
	}
	if !c.open.Open(c.hdr[:], payload, mac[:]) {
		return h, nil, c.fail(fmt.Errorf("frame failed its MAC (altered, replayed or injected)"))
	}
	return h, payload, nil
}

// Close closes the connection; a blocked Recv returns.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closed)
		err = c.raw.Close()
	})
	return err
}

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.closed }

func newConn(raw net.Conn, peer base.NodeID, hello *cnet.Hello, sendKey, recvKey []byte) *Conn {
	return &Conn{raw: raw, peer: peer, hello: hello, r: bufio.NewReaderSize(raw, 64<<10), w: bufio.NewWriterSize(raw, 64<<10),
		seal: cnet.NewFrameSealer(sendKey), open: cnet.NewFrameSealer(recvKey), closed: make(chan struct{})}
}

func freshHello(id *Identity, to base.NodeID) (*cnet.Hello, []byte, error) {
	h := id.Hello
	h.To = to
	if _, err := rand.Read(h.Nonce[:]); err != nil {
		return nil, nil, err
	}
	b, err := h.Encode()
	return &h, b, err
}

// connectorHandshake runs the connector's side (see cluster/net's package
// doc): send Hello; read the acceptor's answer (Hello and proof, or a
// refusal); check both; send our proof.
func connectorHandshake(raw net.Conn, id *Identity, peer base.NodeID, deadline time.Time) (*Conn, error) {
	_ = raw.SetDeadline(deadline)
	defer raw.SetDeadline(time.Time{})
	mine, mineB, err := freshHello(id, peer)
	if err != nil {
		return nil, err
	}
	if _, err := raw.Write(mineB); err != nil {
		return nil, fmt.Errorf("sending hello: %w", err)
	}
	var st [1]byte
	if _, err := io.ReadFull(raw, st[:]); err != nil {
		return nil, fmt.Errorf("reading the peer's answer: %w", err)
	}
	if st[0] == statusRefused {
		var n [2]byte
		if _, err := io.ReadFull(raw, n[:]); err != nil {
			return nil, fmt.Errorf("%w (no reason given)", ErrRefused)
		}
		l := int(binary.BigEndian.Uint16(n[:]))
		if l > maxRefusalLen {
			return nil, fmt.Errorf("%w (reason too long)", ErrRefused)
		}
		msg := make([]byte, l)
		if _, err := io.ReadFull(raw, msg); err != nil {
			return nil, fmt.Errorf("%w (reason cut short)", ErrRefused)
		}
		return nil, fmt.Errorf("%w: %s", ErrRefused, sanitize(msg))
	}
	if st[0] != statusOK {
		return nil, fmt.Errorf("handshake: unknown answer %d (not an o2go node?)", st[0])
	}
	theirsB := make([]byte, cnet.HelloSize)
	if _, err := io.ReadFull(raw, theirsB); err != nil {
		return nil, fmt.Errorf("reading the peer's hello: %w", err)
	}
	theirs, err := cnet.DecodeHello(theirsB)
	if err != nil {
		return nil, err
	}
	if theirs.From != peer {
		return nil, fmt.Errorf("the peer at %s is node %d, not node %d (check ip_address and ip_port in cluster.conf)", raw.RemoteAddr(), theirs.From, peer)
	}
	if err := theirs.Check(mine); err != nil {
		return nil, err
	}
	proof := make([]byte, cnet.ProofSize)
	if _, err := io.ReadFull(raw, proof); err != nil {
		return nil, fmt.Errorf("reading the peer's proof: %w", err)
	}
	tr := cnet.Transcript(mineB, theirsB)
	if !cnet.VerifyProof(id.Secret, cnet.Acceptor, tr, proof) {
		return nil, fmt.Errorf("node %d at %s: %w", peer, raw.RemoteAddr(), ErrAuth)
	}
	if _, err := raw.Write(cnet.Proof(id.Secret, cnet.Connector, tr)); err != nil {
		return nil, fmt.Errorf("sending proof: %w", err)
	}
	// The acceptor confirms our proof with one byte, so that a refused
	// connector learns it at once rather than from its first frame.
	if _, err := io.ReadFull(raw, st[:]); err != nil || st[0] != statusOK {
		return nil, fmt.Errorf("node %d at %s did not accept our proof: %w", peer, raw.RemoteAddr(), ErrAuth)
	}
	return newConn(raw, peer, theirs, cnet.SessionKey(id.Secret, cnet.Connector, tr), cnet.SessionKey(id.Secret, cnet.Acceptor, tr)), nil
}

// acceptorHandshake runs the acceptor's side. verifyOrigin checks that the
// node the Hello claims may connect from where the connection came.
func acceptorHandshake(raw net.Conn, id *Identity, verifyOrigin func(base.NodeID) error, deadline time.Time) (c *Conn, err error) {
	c, _, err = acceptorHandshakeFrom(raw, id, verifyOrigin, deadline)
	return c, err
}

// acceptorHandshakeFrom is acceptorHandshake that also returns the node the
// peer claimed to be (InvalidNode when it did not get that far).
func acceptorHandshakeFrom(raw net.Conn, id *Identity, verifyOrigin func(base.NodeID) error, deadline time.Time) (*Conn, base.NodeID, error) {
	claimed := base.InvalidNode
	c, err := func() (*Conn, error) {
		_ = raw.SetDeadline(deadline)
		defer raw.SetDeadline(time.Time{})
		theirsB := make([]byte, cnet.HelloSize)
		if _, err := io.ReadFull(raw, theirsB); err != nil {
			return nil, fmt.Errorf("reading hello: %w", err)
		}
		theirs, err := cnet.DecodeHello(theirsB)
		if err != nil {
			return nil, err
		}
		claimed = theirs.From
		refuse := func(err error) error {
			msg := err.Error()
			if len(msg) > maxRefusalLen {
				msg = msg[:maxRefusalLen]
			}
			b := []byte{statusRefused, 0, 0}
			binary.BigEndian.PutUint16(b[1:], uint16(len(msg)))
			_, _ = raw.Write(append(b, msg...))
			return err
		}
		mine, mineB, err := freshHello(id, theirs.From)
		if err != nil {
			return nil, err
		}
		if err := theirs.Check(mine); err != nil {
			return nil, refuse(err)
		}
		if err := verifyOrigin(theirs.From); err != nil {
			return nil, refuse(err)
		}
		tr := cnet.Transcript(theirsB, mineB)
		out := append([]byte{statusOK}, mineB...)
		out = append(out, cnet.Proof(id.Secret, cnet.Acceptor, tr)...)
		if _, err := raw.Write(out); err != nil {
			return nil, fmt.Errorf("sending hello: %w", err)
		}
		proof := make([]byte, cnet.ProofSize)
		if _, err := io.ReadFull(raw, proof); err != nil {
			return nil, fmt.Errorf("node %d broke off the handshake instead of proving itself (%v): %w", theirs.From, err, ErrAuth)
		}
		if !cnet.VerifyProof(id.Secret, cnet.Connector, tr, proof) {
			_, _ = raw.Write([]byte{statusRefused})
			return nil, fmt.Errorf("node %d: %w", theirs.From, ErrAuth)
		}
		if _, err := raw.Write([]byte{statusOK}); err != nil {
			return nil, err
		}
		return newConn(raw, theirs.From, theirs, cnet.SessionKey(id.Secret, cnet.Acceptor, tr), cnet.SessionKey(id.Secret, cnet.Connector, tr)), nil
	}()
	return c, claimed, err
}

// sanitize keeps a peer-supplied message printable.
func sanitize(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
		} else {
			out = append(out, '?')
		}
	}
	return string(out)
}
