package transport

import (
	"bytes"
	"net"
	"testing"
	"time"

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
