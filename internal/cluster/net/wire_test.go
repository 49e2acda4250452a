package net

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
)

func TestHeaderRoundTrip(t *testing.T) {
	h, err := Message(501, 0xdeadbeef, 4000, 7, true)
	if err != nil {
		t.Fatal(err)
	}
	b := h.Bytes()
	// o2net's field order, big-endian: magic 0xfa55, data_len, msg_type.
	if !bytes.Equal(b[:6], []byte{0xfa, 0x55, 0x0f, 0xa0, 0x01, 0xf5}) {
		t.Fatalf("wire bytes % x", b[:6])
	}
	got, err := DecodeHeader(b)
	if err != nil || got != h {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, h)
	}
	st := StatusReply(h, SysNone, -22)
	got, err = DecodeHeader(st.Bytes())
	if err != nil || got.Status != -22 || got.MsgNum != 7 || got.Magic != MagicStatus {
		t.Fatalf("status reply: %+v %v", got, err)
	}
	for _, k := range []Header{KeepaliveRequest, KeepaliveResponse} {
		if _, err := DecodeHeader(k.Bytes()); err != nil {
			t.Fatalf("keepalive: %v", err)
		}
	}
}

func TestHeaderRefusals(t *testing.T) {
	cases := map[string]Header{
		"bad magic":          {Magic: 0x1234},
		"msg_type 0":         {Magic: MagicMsg},
		"status with data":   {Magic: MagicStatus, DataLen: 3},
		"unknown sys_status": {Magic: MagicStatus, SysStatus: 9},
		"keepalive data":     {Magic: MagicKeepReq, DataLen: 1},
		"unknown flags":      {Magic: MagicMsg, Type: 500, Flags: 0x80},
		"msg with status":    {Magic: MagicMsg, Type: 500, Status: 1},
	}
	for name, h := range cases {
		if _, err := DecodeHeader(h.Bytes()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := DecodeHeader(make([]byte, 5)); err == nil {
		t.Error("short header accepted")
	}
	if _, err := Message(0, 0, 0, 0, false); err == nil {
		t.Error("type 0 accepted")
	}
	if _, err := Message(500, 0, MaxPayload+1, 0, false); err == nil {
		t.Error("oversized payload accepted")
	}
}

func testHello(from, to base.NodeID) *Hello {
	return &Hello{Version: ProtocolVersion, From: from, To: to, Cluster: "web1", Incarnation: 42,
		Timeouts: config.DefaultTimeouts(), Nonce: [NonceSize]byte{1, 2, 3}}
}

func TestHelloRoundTripAndCheck(t *testing.T) {
	h := testHello(3, 1)
	b, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != HelloSize || string(b[:8]) != "O2GOHELO" {
		t.Fatalf("encoding % x", b[:8])
	}
	got, err := DecodeHello(b)
	if err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// Names stay off the wire.
	named := *h
	named.Names = NodeNames{3: "c"}
	if nb, err := named.Encode(); err != nil || !bytes.Equal(nb, b) {
		t.Fatalf("names changed the wire bytes: %v", err)
	}
	mine := testHello(1, 3)
	if err := got.Check(mine); err != nil {
		t.Fatalf("check: %v", err)
	}
	bad := *got
	bad.Timeouts.IdleTimeout = 20000e6
	err = bad.Check(mine)
	if !errors.Is(err, config.ErrTimeoutsDiffer) || !strings.Contains(err.Error(), "O2CB_IDLE_TIMEOUT_MS=20000, this node 30000") {
		t.Fatalf("timeouts: %v", err)
	}
	// With this node's cluster.conf names, the refusal names both nodes
	// and their values, so that it reads the same on both.
	mine.Names = NodeNames{1: "alpha", 3: "gamma"}
	bad = *got
	bad.Timeouts.IdleTimeout = 20000e6
	bad.Timeouts.HeartbeatThreshold = 61
	err = bad.Check(mine)
	want := "node 'gamma' (number 3) has O2CB_HEARTBEAT_THRESHOLD=61, O2CB_IDLE_TIMEOUT_MS=20000; " +
		"node 'alpha' (number 1) has O2CB_HEARTBEAT_THRESHOLD=31, O2CB_IDLE_TIMEOUT_MS=30000: every node of a cluster must use the same timeouts"
	if !errors.Is(err, config.ErrTimeoutsDiffer) || err.Error() != want {
		t.Fatalf("named timeouts:\n%v\nwant\n%s", err, want)
	}
	bad = *got
	bad.Digest = 7
	if err := bad.Check(mine); err == nil || !strings.HasPrefix(err.Error(), "node 'gamma' (number 3)'s cluster configuration differs from that of this node 'alpha' (number 1)") {
		t.Fatalf("named digest: %v", err)
	}
	bad = *got
	bad.From = 4 // not in this node's cluster.conf: named by number
	bad.Version = 9
	if err := bad.Check(mine); err == nil || err.Error() != "node 4 speaks protocol version 9, this node 'alpha' (number 1) 1" {
		t.Fatalf("unnamed peer: %v", err)
	}
	mine.Names = nil

	bad = *got
	bad.Cluster = "other"
	if err := bad.Check(mine); err == nil || !strings.Contains(err.Error(), `cluster "other"`) {
		t.Fatalf("cluster: %v", err)
	}
	bad = *got
	bad.To = 2
	if err := bad.Check(mine); err == nil || !strings.Contains(err.Error(), "meant to reach node 2") {
		t.Fatalf("to: %v", err)
	}
	bad = *got
	bad.Version = 9
	if err := bad.Check(mine); err == nil || !strings.Contains(err.Error(), "protocol version 9") {
		t.Fatalf("version: %v", err)
	}
	if _, err := DecodeHello(append([]byte("XXXXXXXX"), b[8:]...)); err == nil {
		t.Fatal("bad magic accepted")
	}
}

func TestProofsAndFrameMACs(t *testing.T) {
	secret := []byte("0123456789abcdef0123")
	c, _ := testHello(3, 1).Encode()
	a, _ := testHello(1, 3).Encode()
	tr := Transcript(c, a)
	p := Proof(secret, Acceptor, tr)
	if !VerifyProof(secret, Acceptor, tr, p) {
		t.Fatal("own proof refused")
	}
	if VerifyProof(secret, Connector, tr, p) {
		t.Fatal("acceptor's proof accepted as the connector's: reflection")
	}
	if VerifyProof([]byte("another secret of 20b"), Acceptor, tr, p) {
		t.Fatal("proof accepted under a wrong secret")
	}
	other := Transcript(c, append(append([]byte{}, a[:len(a)-1]...), a[len(a)-1]^1))
	if VerifyProof(secret, Acceptor, other, p) {
		t.Fatal("proof accepted for another transcript (replay)")
	}
	k := SessionKey(secret, Connector, tr)
	if bytes.Equal(k, SessionKey(secret, Acceptor, tr)) {
		t.Fatal("both directions share a key")
	}
	send, recv := NewFrameSealer(k), NewFrameSealer(k)
	h := KeepaliveRequest.Bytes()
	m0 := send.Seal(nil, h, nil)
	m1 := send.Seal(nil, h, []byte("x"))
	if !bytes.Equal(m0, FrameMAC(k, 0, h, nil)) || !bytes.Equal(m1, FrameMAC(k, 1, h, []byte("x"))) {
		t.Fatal("sealer disagrees with FrameMAC")
	}
	if recv.Open(h, []byte("x"), m1) {
		t.Fatal("frame 1 accepted as frame 0 (reorder)")
	}
	if !recv.Open(h, nil, m0) || !recv.Open(h, []byte("x"), m1) {
		t.Fatal("in-order frames refused")
	}
	if recv.Open(h, []byte("x"), m1) {
		t.Fatal("replayed frame accepted")
	}
}

func TestRegistry(t *testing.T) {
	var r Registry[string]
	if err := r.Register(500, 7, 100, "dlm"); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(500, 7, 100, "again"); !errors.Is(err, ErrHandlerExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := r.Register(0, 7, 100, "x"); err == nil {
		t.Fatal("type 0 registered")
	}
	if err := r.Register(501, 7, MaxPayload+1, "x"); err == nil {
		t.Fatal("max length beyond MaxPayload registered")
	}
	h, st := r.Lookup(Header{Type: 500, Key: 7, DataLen: 100})
	if h != "dlm" || st != SysNone {
		t.Fatalf("lookup: %q %v", h, st)
	}
	if _, st := r.Lookup(Header{Type: 500, Key: 7, DataLen: 101}); st != SysOverflow {
		t.Fatalf("overflow: %v", st)
	}
	if _, st := r.Lookup(Header{Type: 500, Key: 8}); st != SysNoHandler {
		t.Fatalf("other key: %v", st)
	}
	if !r.Unregister(500, 7) || r.Unregister(500, 7) || r.Len() != 0 {
		t.Fatal("unregister")
	}
}

func TestMessageTypeRanges(t *testing.T) {
	for _, ok := range []uint16{500, 599, 600, 700, 799, 60000, 65535} {
		if err := CheckUserType(ok); err != nil {
			t.Errorf("%d: %v", ok, err)
		}
	}
	for _, bad := range []uint16{0, 1, 99, 100, 499, 800, 59999} {
		if err := CheckUserType(bad); err == nil {
			t.Errorf("%d accepted", bad)
		}
	}
	if Layer(TypeViewCommit) != "cluster stack" || Layer(512) != "dlm" {
		t.Fatal("layer names")
	}
}

func FuzzDecodeHeader(f *testing.F) {
	h, _ := Message(500, 1, 10, 3, true)
	f.Add(h.Bytes())
	f.Add(KeepaliveRequest.Bytes())
	f.Add(StatusReply(h, SysOverflow, 0).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		if got, err := DecodeHeader(h.Bytes()); err != nil || got != h {
			t.Fatalf("accepted header does not round-trip: %+v %v", got, err)
		}
	})
}

func FuzzDecodeHello(f *testing.F) {
	b, _ := testHello(3, 1).Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHello(b)
		if err != nil {
			return
		}
		_ = h.Check(testHello(1, 3))
		if _, err := h.Encode(); err != nil && h.Timeouts.HeartbeatThreshold <= 1<<31 {
			t.Fatalf("decoded hello does not encode: %v", err)
		}
	})
}
