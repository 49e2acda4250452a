package quorum

import (
	"testing"

	"o2go/internal/base"
)

func TestWireRoundTrips(t *testing.T) {
	v := View{Epoch: 7, Seq: 12, Members: base.NodeMapOf(0, 3, 254)}
	v.Gens[0], v.Gens[3], v.Gens[254] = 1, 0xabc, 99
	p := Propose{View: v, Ballot: 5<<8 | 3}
	if got, err := DecodePropose(p.Encode()); err != nil || got != p {
		t.Fatalf("propose: %+v %v", got, err)
	}
	a := Accept{Epoch: 8, Ballot: 9, Reason: LowerBallot, Committed: v}
	if got, err := DecodeAccept(a.Encode()); err != nil || got != a {
		t.Fatalf("accept: %+v %v", got, err)
	}
	if got, err := DecodeCommit(EncodeCommit(v)); err != nil || got != v {
		t.Fatalf("commit: %+v %v", got, err)
	}
	s := Status{Committed: v, Live: base.NodeMapOf(1, 2), Connected: base.NodeMapOf(2), Lost: base.NodeMapOf(1),
		Steady: true, Health: Health{ReadStalled: true, Frozen: true}}
	if got, err := DecodeStatus(s.Encode()); err != nil || got != s {
		t.Fatalf("status: %+v %v", got, err)
	}
	e := Evict{Origin: 1, Target: 4, Hops: 1, Generation: 0xabcdef}
	if got, err := DecodeEvict(e.Encode()); err != nil || got != e {
		t.Fatalf("evict: %+v %v", got, err)
	}
	if got, err := DecodeCatchUp(EncodeCatchUp(99)); err != nil || got != 99 {
		t.Fatalf("catch-up: %v %v", got, err)
	}
}

func TestWireRefusals(t *testing.T) {
	bad := Status{}.Encode()
	bad[3*nodeMapSize] = 0x80
	if _, err := DecodeStatus(bad); err == nil {
		t.Error("unknown status flag accepted")
	}
	one := View{Epoch: 1, Members: base.NodeMapOf(1)}
	one.Gens[1] = 5
	m := EncodeCommit(one)
	m[16+31] |= 0x80 // node 255
	if _, err := DecodeCommit(m); err == nil {
		t.Error("node 255 accepted")
	}
	if _, err := DecodeCommit(EncodeCommit(View{})); err == nil {
		t.Error("commit of epoch 0 accepted")
	}
	if _, err := DecodeCommit(EncodeCommit(View{Epoch: 1, Members: base.NodeMapOf(1)})); err == nil {
		t.Error("member of generation 0 accepted")
	}
	if _, err := DecodeEvict(Evict{Origin: 2, Target: 2}.Encode()); err == nil {
		t.Error("self-eviction accepted")
	}
	if _, err := DecodeEvict(Evict{Origin: 1, Target: 2, Hops: 5}.Encode()); err == nil {
		t.Error("too many hops accepted")
	}
	acc := Accept{Reason: Accepted}.Encode()
	acc[16] = 0
	if _, err := DecodeAccept(acc); err == nil {
		t.Error("accept with ok flag off accepted")
	}
	if _, err := DecodePropose([]byte{1, 2}); err == nil {
		t.Error("short propose accepted")
	}
}

// FuzzMembershipMessages feeds arbitrary bytes to every decoder and to a
// Membership: malformed input is an error, never a panic, and whatever
// decodes re-encodes to the same bytes.
func FuzzMembershipMessages(f *testing.F) {
	v := View{Epoch: 2, Seq: 3, Members: base.NodeMapOf(0, 1)}
	v.Gens[0], v.Gens[1] = 7, 8
	f.Add(uint16(1), Propose{View: v, Ballot: 256}.Encode())
	f.Add(uint16(2), Accept{Epoch: 2, Ballot: 256, Committed: v}.Encode())
	f.Add(uint16(3), EncodeCommit(v))
	f.Add(uint16(4), Status{Committed: v, Steady: true}.Encode())
	f.Add(uint16(5), Evict{Origin: 0, Target: 1}.Encode())
	f.Add(uint16(6), EncodeCatchUp(1))
	f.Fuzz(func(t *testing.T, typ uint16, b []byte) {
		if p, err := DecodePropose(b); err == nil && string(p.Encode()) != string(b) {
			t.Fatal("propose does not round-trip")
		}
		if a, err := DecodeAccept(b); err == nil && string(a.Encode()) != string(b) {
			t.Fatal("accept does not round-trip")
		}
		if c, err := DecodeCommit(b); err == nil && string(EncodeCommit(c)) != string(b) {
			t.Fatal("commit does not round-trip")
		}
		if s, err := DecodeStatus(b); err == nil && string(s.Encode()) != string(b) {
			t.Fatal("status does not round-trip")
		}
		if e, err := DecodeEvict(b); err == nil {
			_ = e.Encode()
		}
		m := NewMembership(MembershipConfig{Self: 0, Interval: 1e9})
		var gens [base.MaxNodes]uint64
		gens[0], gens[1] = 7, 8
		m.SetLive(0, base.NodeMapOf(0, 1), &gens)
		m.SetLinks(0, base.NodeMapOf(1), base.NodeMap{})
		m.SetSteady(0, true)
		_ = m.Receive(0, 1, typ%8, b)
		m.Tick(1e9)
		_ = m.Ready()
	})
}
