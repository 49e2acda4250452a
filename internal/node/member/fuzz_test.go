package member

import (
	"testing"
	"time"

	cnet "o2go/internal/cluster/net"
	"o2go/internal/cluster/quorum"
)

// connectedSolo is node 3 of a solo disk with node 1 heartbeating and an
// authenticated connection to it established.
func connectedSolo(t *testing.T) (*soloDisk, cnet.ConnID) {
	d := newSolo(t, true)
	d.run(12 * time.Second)
	for i := uint64(1); i <= 3; i++ {
		copy(d.data[d.geo.SlotOffset(1):], heartbeatBlock(1, i, 0x11))
		d.run(d.now + time.Second)
	}
	conn := d.m.Links().Status(1).Conn
	if conn == 0 {
		t.Fatal("no connection to node 1 was asked for")
	}
	d.m.Established(d.now, 1, conn)
	if ok, _ := d.m.Received(d.now, 1, conn, cnet.Header{Magic: cnet.MagicStatus}, nil); !ok {
		t.Fatal("the connection to node 1 does not take frames")
	}
	return d, conn
}

// FuzzMemberReceived feeds arbitrary frames from a connected peer to a
// member, as the agent's reader does with what comes off the wire after the
// MAC check (a peer holding the secret may still be buggy or hostile):
// whatever the header and payload, the member refuses with an error or
// acts on it, and never panics.
func FuzzMemberReceived(f *testing.F) {
	v := quorum.View{Epoch: 1, Seq: 1}
	v.Members.Add(1)
	f.Add(cnet.MagicKeepReq, uint16(0), uint32(0), []byte{})
	f.Add(cnet.MagicKeepResp, uint16(0), uint32(0), []byte{})
	f.Add(cnet.MagicStatus, uint16(1), uint32(0), []byte{})
	f.Add(cnet.MagicMsg, cnet.TypeEvict, uint32(0), quorum.Evict{Origin: 1, Target: 3, Generation: 0x33}.Encode())
	f.Add(cnet.MagicMsg, uint16(1), uint32(0), quorum.Propose{View: v, Ballot: 1}.Encode())
	f.Add(cnet.MagicMsg, uint16(4), uint32(0), quorum.Status{Committed: v}.Encode())
	f.Add(cnet.MagicMsg, uint16(600), uint32(7), []byte("fs"))
	f.Fuzz(func(t *testing.T, magic, typ uint16, key uint32, payload []byte) {
		if len(payload) > 0xffff {
			return
		}
		d, conn := connectedSolo(t)
		h := cnet.Header{Magic: magic, Type: typ, Key: key, DataLen: uint16(len(payload))}
		_, _ = d.m.Received(d.now, 1, conn, h, payload)
		d.pump()
		d.run(d.now + 2*time.Second)
	})
}
