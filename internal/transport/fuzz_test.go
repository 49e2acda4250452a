package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	cnet "o2go/internal/cluster/net"
)

// FuzzConnectorHandshake is the other side of FuzzAcceptorHandshake: a
// hostile or broken acceptor answers the connector with arbitrary bytes
// (refusals with odd lengths, hellos that lie, proofs it cannot know). The
// connector refuses — it never panics and never hands over a connection.
func FuzzConnectorHandshake(f *testing.F) {
	acc := ident(1, secret, config.DefaultTimeouts()).Hello
	acc.To = 2
	hb, _ := acc.Encode()
	f.Add(append(append([]byte{statusOK}, hb...), make([]byte, cnet.ProofSize+1)...))
	f.Add([]byte{statusRefused, 0, 5, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{statusRefused, 0xff, 0xff})
	f.Add([]byte{statusRefused, 0, 9, 0x1b, '[', '2', 'J'})
	f.Add([]byte{7})
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		defer a.Close()
		go func() {
			defer b.Close()
			hello := make([]byte, cnet.HelloSize)
			if _, err := b.Read(hello); err != nil {
				return
			}
			// Then hang up: a short answer fails at once, not at the deadline.
			_, _ = b.Write(in)
		}()
		id := ident(2, secret, config.DefaultTimeouts())
		c, err := connectorHandshake(a, &id, 1, time.Now().Add(50*time.Millisecond))
		if err == nil {
			t.Fatalf("handshake passed against an acceptor that does not hold the secret: peer %d", c.Peer())
		}
	})
}

// FuzzConnRecv feeds an authenticated connection arbitrary frames, as an
// attacker on the path (or a broken peer) would send them. Recv never
// panics, and a frame it hands over is exactly one its sender sealed, in
// order: the fuzzer cannot forge, replay or reorder a frame.
func FuzzConnRecv(f *testing.F) {
	key := bytes.Repeat([]byte{0x5a}, 32)
	seal := func(frames ...[2][]byte) []byte {
		s := cnet.NewFrameSealer(key)
		var out []byte
		for _, fr := range frames {
			out = append(out, fr[0]...)
			out = append(out, fr[1]...)
			out = s.Seal(out, fr[0], fr[1])
		}
		return out
	}
	msg, _ := cnet.Message(501, 7, 5, 1, true)
	valid := seal([2][]byte{msg.Bytes(), []byte("hello")}, [2][]byte{cnet.KeepaliveRequest.Bytes(), nil})
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	tampered := bytes.Clone(valid)
	tampered[cnet.HeaderSize] ^= 1
	f.Add(tampered)
	long := msg
	long.DataLen = 0xffff
	f.Add(long.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		go func() {
			defer b.Close()
			_, _ = b.Write(in)
		}()
		c := newConn(a, 2, nil, bytes.Repeat([]byte{1}, 32), key)
		defer c.Close()
		sender := cnet.NewFrameSealer(key)
		off := 0
		for {
			h, p, err := c.Recv()
			if err != nil {
				select {
				case <-c.Done():
				default:
					t.Fatalf("Recv failed (%v) and left the connection open", err)
				}
				return
			}
			hb := h.Bytes()
			if int(h.DataLen) != len(p) {
				t.Fatalf("header says %d payload bytes, Recv gave %d", h.DataLen, len(p))
			}
			want := sender.Seal(append(bytes.Clone(hb), p...), hb, p)
			end := off + len(want)
			if end > len(in) || !bytes.Equal(in[off:end], want) {
				t.Fatalf("Recv accepted a frame its sender did not seal at offset %d: %x", off, in[off:min(end, len(in))])
			}
			off = end
		}
	})
}

// FuzzTamperedStream runs a genuine connector and a genuine acceptor
// against each other, handshake and then frames both ways, over a stream
// with an attacker on the path: one splice, in one direction, drops del
// genuine bytes from offset off and puts ins there instead. The offset
// falls before the handshake (garbage ahead of the Hello), during it
// (status bytes, Hellos, proofs) or after it (inside, between or behind the
// frames). Whatever the splice:
//
//   - nothing panics or hangs, and every failure is an error with a
//     printable message (it goes to the log), with the connection closed;
//   - a side that completes its handshake read exactly the genuine
//     handshake bytes (an altered handshake never authenticates);
//   - a splice that leaves both handshakes alone lets both complete;
//   - Recv hands over exactly the frames the peer sent, in order, and ends
//     cleanly (all of them, then EOF at a frame boundary) if and only if the
//     stream it read is the one the peer sent.
func FuzzTamperedStream(f *testing.F) {
	hs := [2]int{handshakeBytes(0), handshakeBytes(1)}
	f.Add(false, uint16(0), uint8(0), []byte("GET / HTTP/1.0\r\n\r\n"))           // before the Hello
	f.Add(false, uint16(0), uint8(0), []byte(nil))                                // no change at all
	f.Add(false, uint16(0x12), uint8(1), []byte{'X'})                             // the cluster name
	f.Add(true, uint16(0), uint8(1), []byte{statusRefused, 0, 3, 'n', 'o', 0})    // a forged refusal
	f.Add(true, uint16(hs[1]-1), uint8(1), []byte{statusOK + 2})                  // the final status byte
	f.Add(false, uint16(hs[0]-1), uint8(1), []byte(nil))                          // a proof cut short
	f.Add(false, uint16(hs[0]), uint8(0), []byte{0, 0, 0})                        // between handshake and frames
	f.Add(true, uint16(hs[1]+cnet.HeaderSize+2), uint8(1), []byte{0xff})          // a frame's payload
	f.Add(false, uint16(hs[0]), uint8(cnet.HeaderSize+cnet.MACSize), []byte(nil)) // a whole keepalive dropped
	f.Add(true, uint16(0xffff), uint8(0), []byte("trailing junk"))                // behind the last frame
	f.Fuzz(func(t *testing.T, aToC bool, off uint16, del uint8, ins []byte) {
		sp := splice{dir: dirCtoA, del: int(del), ins: ins}
		if aToC {
			sp.dir = dirAtoC
		}
		sp.off = int(off) % (hs[sp.dir] + tamperFramesBytes + 1)
		runTamperedStream(t, sp)
	})
}

// Directions of a tampered stream, named by who sends.
const (
	dirCtoA = 0 // connector -> acceptor
	dirAtoC = 1 // acceptor -> connector
)

// handshakeBytes is what the handshake puts on direction dir when it
// succeeds: the connector sends its Hello and proof; the acceptor answers
// a status byte, its Hello and proof, and a last status byte.
func handshakeBytes(dir int) int {
	if dir == dirCtoA {
		return cnet.HelloSize + cnet.ProofSize
	}
	return 1 + cnet.HelloSize + cnet.ProofSize + 1
}

// tamperFrames are the frames each side sends once connected: a keepalive,
// a short message and a long one.
var tamperFrames = func() [][2][]byte {
	m1, _ := cnet.Message(501, 7, 5, 1, true)
	m2, _ := cnet.Message(502, 9, 300, 2, false)
	return [][2][]byte{
		{cnet.KeepaliveRequest.Bytes(), nil},
		{m1.Bytes(), []byte("hello")},
		{m2.Bytes(), bytes.Repeat([]byte{0xa5}, 300)},
	}
}()

var tamperFramesBytes = func() int {
	n := 0
	for _, fr := range tamperFrames {
		n += cnet.HeaderSize + len(fr[1]) + cnet.MACSize
	}
	return n
}()

func runTamperedStream(t *testing.T, sp splice) {
	n := newTamperNet(sp)
	conn := [2]*tamperEnd{{n: n, side: dirCtoA}, {n: n, side: dirAtoC}}
	var got [2]*Conn
	var errs [2]error
	var consumed [2]int // handshake bytes each side read
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			id := ident(2, secret, config.DefaultTimeouts())
			got[dirCtoA], errs[dirCtoA] = connectorHandshake(conn[dirCtoA], &id, 1, time.Now().Add(HandshakeTimeout))
			consumed[dirCtoA] = n.consumed(dirAtoC)
			n.done(dirCtoA)
			if errs[dirCtoA] != nil {
				_ = conn[dirCtoA].Close() // as Dial does
			}
		}()
		go func() {
			defer wg.Done()
			id := ident(1, secret, config.DefaultTimeouts())
			got[dirAtoC], errs[dirAtoC] = acceptorHandshake(conn[dirAtoC], &id, func(base.NodeID) error { return nil }, time.Now().Add(HandshakeTimeout))
			consumed[dirAtoC] = n.consumed(dirCtoA)
			n.done(dirAtoC)
			if errs[dirAtoC] != nil {
				_ = conn[dirAtoC].Close() // as the accept loop does
			}
		}()
		wg.Wait()
	}()
	select {
	case <-finished:
	case <-time.After(8 * time.Second): // under the fuzzer's 10 s limit per input
		t.Fatalf("the handshake hangs (splice %+v)", sp)
	}
	names := [2]string{"connector", "acceptor"}
	for side := range 2 {
		in := 1 - side // the direction this side reads
		if errs[side] != nil {
			if got[side] != nil {
				t.Fatalf("%s: handshake failed (%v) but handed over a connection", names[side], errs[side])
			}
			checkCleanError(t, names[side]+" handshake", errs[side])
			continue
		}
		h := handshakeBytes(in)
		gen, out := n.streams(in)
		if consumed[side] != h || len(gen) < h || len(out) < h || !bytes.Equal(out[:h], gen[:h]) {
			t.Fatalf("%s authenticated a handshake that is not the genuine one (splice %+v, read %d bytes):\nsent %x\nread %x",
				names[side], sp, consumed[side], gen[:min(h, len(gen))], out[:min(h, len(out))])
		}
	}
	if sp.off >= handshakeBytes(sp.dir) || sp.del == 0 && len(sp.ins) == 0 {
		for side := range 2 {
			if errs[side] != nil {
				t.Fatalf("%s: handshake failed although the splice (%+v) leaves it alone: %v", names[side], sp, errs[side])
			}
		}
	}
	if errs[0] != nil || errs[1] != nil {
		return
	}

	// Both connected: each sends every frame and half-closes, then each
	// reads until Recv fails.
	for side := range 2 {
		for _, fr := range tamperFrames {
			h, err := cnet.DecodeHeader(fr[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := got[side].Send(h, fr[1]); err != nil {
				t.Fatalf("%s: send: %v", names[side], err)
			}
		}
		conn[side].CloseWrite()
	}
	var recvd [2][][2][]byte
	var recvErr [2]error
	done := make(chan int, 2)
	for side := range 2 {
		go func() {
			defer func() { done <- side }()
			for {
				h, p, err := got[side].Recv()
				if err != nil {
					recvErr[side] = err
					return
				}
				recvd[side] = append(recvd[side], [2][]byte{h.Bytes(), p})
			}
		}()
	}
	for range 2 {
		select {
		case <-done:
		case <-time.After(8 * time.Second):
			t.Fatalf("Recv hangs (splice %+v)", sp)
		}
	}
	for side := range 2 {
		in := 1 - side
		c := got[side]
		select {
		case <-c.Done():
		default:
			t.Fatalf("%s: Recv failed (%v) and left the connection open", names[side], recvErr[side])
		}
		checkCleanError(t, names[side]+" Recv", recvErr[side])
		for i, fr := range recvd[side] {
			if i >= len(tamperFrames) || !bytes.Equal(fr[0], tamperFrames[i][0]) || !bytes.Equal(fr[1], tamperFrames[i][1]) {
				t.Fatalf("%s: frame %d is not the one its peer sent (splice %+v): header %x, %d payload bytes", names[side], i, sp, fr[0], len(fr[1]))
			}
		}
		clean := len(recvd[side]) == len(tamperFrames) && errors.Is(recvErr[side], io.EOF)
		gen, out := n.streams(in)
		if intact := bytes.Equal(gen, out); clean != intact {
			t.Fatalf("%s: stream intact %v, but Recv ended cleanly %v: %d frames, then %v (splice %+v)",
				names[side], intact, clean, len(recvd[side]), recvErr[side], sp)
		}
	}
}

// checkCleanError: a failure is an error whose message is printable text
// (it is logged: a peer must not get control characters, invalid UTF-8 or
// bidirectional overrides into the log; strconv.Quote's escaping is fine).
func checkCleanError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	msg := err.Error()
	if msg == "" {
		t.Fatalf("%s: an error with an empty message", what)
	}
	if !utf8.ValidString(msg) {
		t.Fatalf("%s: the error message is not valid UTF-8: %q", what, msg)
	}
	for _, r := range msg {
		if !strconv.IsPrint(r) {
			t.Fatalf("%s: the error message holds %U: %q", what, r, msg)
		}
	}
}

// splice is the attacker's one change to a stream: from offset off of what
// the sender wrote, del bytes are dropped and ins is put in their place.
type splice struct {
	dir      int
	off, del int
	ins      []byte
}

// tamperNet is a duplex stream between two ends in one process, standing in
// for a TCP connection with an attacker on the path. Writes never block
// (the network buffers them), CloseWrite is a TCP half-close, deadlines
// work. When an end waits to read and no byte can ever come (the splice
// dropped bytes it needs, and the other end waits to read too or is done
// with its handshake), the read fails at once with the deadline error a
// real connection would give after HandshakeTimeout.
type tamperNet struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	dirs    [2]tamperDir
	blocked [2]bool // end i waits to read and nothing changed since
	idle    [2]bool // end i finished its handshake: it writes nothing more on its own
}

type tamperDir struct {
	sp       *splice
	genuine  []byte // what the sender wrote
	out      []byte // what the receiver gets
	read     int    // bytes of out the receiver took
	inserted bool
	eof      bool // the sender half-closed (or closed)
	gone     bool // the receiver closed
}

func newTamperNet(sp splice) *tamperNet {
	n := &tamperNet{changed: make(chan struct{})}
	n.dirs[sp.dir].sp = &sp
	return n
}

func (n *tamperNet) notify() {
	n.blocked = [2]bool{}
	close(n.changed)
	n.changed = make(chan struct{})
}

func (d *tamperDir) put(p []byte) {
	for _, b := range p {
		pos := len(d.genuine)
		d.genuine = append(d.genuine, b)
		if sp := d.sp; sp != nil {
			if pos == sp.off && !d.inserted {
				d.out = append(d.out, sp.ins...)
				d.inserted = true
			}
			if pos >= sp.off && pos < sp.off+sp.del {
				continue
			}
		}
		d.out = append(d.out, b)
	}
}

func (d *tamperDir) closeWrite() {
	if d.sp != nil && !d.inserted {
		d.out = append(d.out, d.sp.ins...)
		d.inserted = true
	}
	d.eof = true
}

// done marks side's handshake as over: until the test sends frames, that
// end writes nothing more.
func (n *tamperNet) done(side int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.idle[side] = true
	n.notify()
}

// consumed is how many bytes the receiver of direction dir has read.
func (n *tamperNet) consumed(dir int) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dirs[dir].read
}

// streams returns what the sender of dir wrote and what its receiver got.
func (n *tamperNet) streams(dir int) (genuine, out []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return bytes.Clone(n.dirs[dir].genuine), bytes.Clone(n.dirs[dir].out)
}

// tamperEnd is one end of a tamperNet; it writes direction side.
type tamperEnd struct {
	n        *tamperNet
	side     int
	closed   bool
	deadline time.Time
}

type tamperAddr string

func (a tamperAddr) Network() string { return "tamper" }
func (a tamperAddr) String() string  { return string(a) }

func (e *tamperEnd) Read(p []byte) (int, error) {
	n := e.n
	for {
		n.mu.Lock()
		d := &n.dirs[1-e.side]
		switch {
		case e.closed:
			n.mu.Unlock()
			return 0, net.ErrClosed
		case d.read < len(d.out):
			k := copy(p, d.out[d.read:])
			d.read += k
			n.mu.Unlock()
			return k, nil
		case d.eof:
			n.mu.Unlock()
			return 0, io.EOF
		}
		if !e.deadline.IsZero() && !time.Now().Before(e.deadline) || n.blocked[1-e.side] || n.idle[1-e.side] {
			// Past the deadline, or the other end waits for this one too
			// or is done: no byte can ever come.
			n.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		n.blocked[e.side] = true
		ch, dl := n.changed, e.deadline
		n.mu.Unlock()
		if dl.IsZero() {
			<-ch
			continue
		}
		tm := time.NewTimer(time.Until(dl))
		select {
		case <-ch:
		case <-tm.C:
		}
		tm.Stop()
	}
}

func (e *tamperEnd) Write(p []byte) (int, error) {
	n := e.n
	n.mu.Lock()
	defer n.mu.Unlock()
	d := &n.dirs[e.side]
	switch {
	case e.closed || d.eof:
		return 0, net.ErrClosed
	case d.gone:
		return 0, io.ErrClosedPipe // the peer closed: EPIPE
	}
	d.put(p)
	n.notify()
	return len(p), nil
}

// CloseWrite half-closes: the peer reads what was written, then EOF.
func (e *tamperEnd) CloseWrite() {
	n := e.n
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dirs[e.side].closeWrite()
	n.notify()
}

func (e *tamperEnd) Close() error {
	n := e.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.closed {
		return net.ErrClosed
	}
	e.closed = true
	n.dirs[e.side].closeWrite()
	n.dirs[1-e.side].gone = true
	n.notify()
	return nil
}

func (e *tamperEnd) LocalAddr() net.Addr  { return tamperAddr(fmt.Sprintf("tamper:%d", e.side)) }
func (e *tamperEnd) RemoteAddr() net.Addr { return tamperAddr(fmt.Sprintf("tamper:%d", 1-e.side)) }

func (e *tamperEnd) SetDeadline(t time.Time) error {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	e.deadline = t
	e.n.notify() // a waiting Read re-arms its timer
	return nil
}

func (e *tamperEnd) SetReadDeadline(t time.Time) error { return e.SetDeadline(t) }
func (e *tamperEnd) SetWriteDeadline(time.Time) error  { return nil } // writes never block
