package net

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
)

// ProtocolVersion is o2go's wire protocol version, checked in the handshake.
// (o2net's O2NET_PROTOCOL_VERSION is 7; o2go's wire is its own, with
// authentication, so it counts from 1.)
const ProtocolVersion = 1

// HelloSize is the bytes of a Hello on the wire.
const HelloSize = 0x68

// NonceSize is the bytes of a handshake nonce.
const NonceSize = 32

var helloMagic = [8]byte{'O', '2', 'G', 'O', 'H', 'E', 'L', 'O'}

// Hello is what each side of a new connection sends first (o2go's
// o2net_handshake), big-endian:
//
//	0x00 [8]  magic "O2GOHELO"
//	0x08 be32 protocol version (ProtocolVersion)
//	0x0C u8   from: the sender's node number
//	0x0D u8   to: the node number the sender believes it talks to
//	0x0E be16 flags (0)
//	0x10 [16] cluster name, NUL-padded
//	0x20 be64 incarnation: random per agent start, so a peer can tell a
//	          restarted agent from a reconnecting one
//	0x28 be32 O2CB_HEARTBEAT_THRESHOLD
//	0x2C be32 heartbeat interval, ms
//	0x30 be32 O2CB_IDLE_TIMEOUT_MS
//	0x34 be32 O2CB_KEEPALIVE_DELAY_MS
//	0x38 be32 O2CB_RECONNECT_DELAY_MS
//	0x3C be32 kill-block ack timeout, ms
//	0x40 [32] nonce: fresh random bytes for the authentication proofs
//	0x60 be64 configuration digest: a hash of the cluster's nodes (name,
//	          number, address, port), heartbeat mode and regions, so that
//	          nodes whose cluster.conf differ refuse each other
//
// Like o2net's handshake it refuses a peer whose protocol version or timing
// differs (o2net compares the idle timeout, keepalive delay and heartbeat
// timeout; o2go compares all six timing values, see config.Timeouts.CheckPeer).
type Hello struct {
	Version     uint32
	From, To    base.NodeID
	Cluster     string
	Incarnation uint64
	Timeouts    config.Timeouts
	Nonce       [NonceSize]byte
	Digest      uint64

	// Names, on this node's own Hello, are the cluster's node names from
	// its cluster.conf, so that Check's refusals name both nodes ("node
	// 'b' (number 2)"); nil names nodes by number only. Not on the wire:
	// a peer's Hello is named from this node's cluster.conf.
	Names NodeNames
}

// NodeNames are node names by number.
type NodeNames map[base.NodeID]string

// NamesOf returns the names of cl's nodes by number.
func NamesOf(cl *config.Cluster) NodeNames {
	names := make(NodeNames, len(cl.Nodes))
	for _, n := range cl.Nodes {
		names[n.Number] = n.Name
	}
	return names
}

// node describes node n for a message: "node 'b' (number 2)", or "node 2"
// when n has no name here.
func (names NodeNames) node(n base.NodeID) string {
	if name, ok := names[n]; ok {
		return fmt.Sprintf("node '%s' (number %d)", name, n)
	}
	return fmt.Sprintf("node %d", n)
}

// Encode returns the Hello's wire bytes.
func (h *Hello) Encode() ([]byte, error) {
	if len(h.Cluster) == 0 || len(h.Cluster) > config.MaxClusterNameLen {
		return nil, fmt.Errorf("hello: cluster name %q must be 1..%d bytes", h.Cluster, config.MaxClusterNameLen)
	}
	ms := func(d time.Duration) (uint32, error) {
		if d < 0 || d%time.Millisecond != 0 || d.Milliseconds() > 1<<32-1 {
			return 0, fmt.Errorf("hello: timing value %v is not a u32 of milliseconds", d)
		}
		return uint32(d.Milliseconds()), nil
	}
	t := h.Timeouts
	if t.HeartbeatThreshold < 0 || t.HeartbeatThreshold > 1<<31 {
		return nil, fmt.Errorf("hello: heartbeat threshold %d out of range", t.HeartbeatThreshold)
	}
	b := make([]byte, HelloSize)
	be := binary.BigEndian
	copy(b, helloMagic[:])
	be.PutUint32(b[0x08:], h.Version)
	b[0x0C] = byte(h.From)
	b[0x0D] = byte(h.To)
	copy(b[0x10:0x20], h.Cluster)
	be.PutUint64(b[0x20:], h.Incarnation)
	be.PutUint32(b[0x28:], uint32(t.HeartbeatThreshold))
	for i, d := range []time.Duration{t.HeartbeatInterval, t.IdleTimeout, t.KeepaliveDelay, t.ReconnectDelay, t.KillAckTimeout} {
		v, err := ms(d)
		if err != nil {
			return nil, err
		}
		be.PutUint32(b[0x2C+4*i:], v)
	}
	copy(b[0x40:], h.Nonce[:])
	be.PutUint64(b[0x60:], h.Digest)
	return b, nil
}

// DecodeHello parses a Hello. It checks the form only (magic, flags, name);
// Check compares it with what this node expects.
func DecodeHello(b []byte) (*Hello, error) {
	if len(b) != HelloSize {
		return nil, fmt.Errorf("hello: %d bytes, want %d", len(b), HelloSize)
	}
	if !bytes.Equal(b[:8], helloMagic[:]) {
		return nil, fmt.Errorf("hello: bad magic %q (not an o2go node?)", b[:8])
	}
	be := binary.BigEndian
	if f := be.Uint16(b[0x0E:]); f != 0 {
		return nil, fmt.Errorf("hello: unknown flags 0x%04x", f)
	}
	name := b[0x10:0x20]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		if bytes.ContainsFunc(name[i:], func(r rune) bool { return r != 0 }) {
			return nil, fmt.Errorf("hello: cluster name field has bytes after its NUL")
		}
		name = name[:i]
	}
	if len(name) == 0 {
		return nil, fmt.Errorf("hello: empty cluster name")
	}
	for _, c := range name {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return nil, fmt.Errorf("hello: cluster name %q has a byte outside [0-9A-Za-z]", name)
		}
	}
	h := &Hello{
		Version:     be.Uint32(b[0x08:]),
		From:        base.NodeID(b[0x0C]),
		To:          base.NodeID(b[0x0D]),
		Cluster:     string(name),
		Incarnation: be.Uint64(b[0x20:]),
	}
	ms := func(off int) time.Duration { return time.Duration(be.Uint32(b[off:])) * time.Millisecond }
	h.Timeouts = config.Timeouts{
		HeartbeatThreshold: int(be.Uint32(b[0x28:])),
		HeartbeatInterval:  ms(0x2C),
		IdleTimeout:        ms(0x30),
		KeepaliveDelay:     ms(0x34),
		ReconnectDelay:     ms(0x38),
		KillAckTimeout:     ms(0x3C),
	}
	copy(h.Nonce[:], b[0x40:0x60])
	h.Digest = be.Uint64(b[0x60:])
	return h, nil
}

// Check compares a peer's Hello with this node's own (mine): same protocol
// version and cluster, addressed to this node, from a node that is not this
// one, the same timing values and the same cluster configuration. The error
// says what differs; as a refusal it is read on both nodes (the transport
// sends it to the peer), so it names both by name and number (mine.Names),
// and a timing mismatch names the sysconfig variables with each node's
// values, e.g. "node 'c' (number 2) has O2CB_IDLE_TIMEOUT_MS=20000; node
// 'a' (number 0) has O2CB_IDLE_TIMEOUT_MS=30000".
func (h *Hello) Check(mine *Hello) error {
	peer := mine.Names.node(h.From)
	if h.Version != mine.Version {
		return fmt.Errorf("%s speaks protocol version %d, %s %d", peer, h.Version, mine.self(), mine.Version)
	}
	if h.Cluster != mine.Cluster {
		return fmt.Errorf("%s is in cluster %q, %s in %q", peer, h.Cluster, mine.self(), mine.Cluster)
	}
	if !h.From.Valid() {
		return fmt.Errorf("hello from invalid node number %d", uint8(h.From))
	}
	if h.From == mine.From {
		return fmt.Errorf("peer claims this node's own number %d", h.From)
	}
	if h.To != mine.From {
		return fmt.Errorf("%s meant to reach node %d, but this is %s (check ip_address and ip_port in cluster.conf)", peer, h.To, mine.Names.node(mine.From))
	}
	if err := mine.checkTimeouts(h); err != nil {
		return err
	}
	if h.Digest != mine.Digest {
		return fmt.Errorf("%s's cluster configuration differs from that of %s (digest %016x, here %016x): every node must have the same cluster.conf",
			peer, mine.self(), h.Digest, mine.Digest)
	}
	return nil
}

// self is how mine's node calls itself in Check's messages.
func (mine *Hello) self() string {
	if _, ok := mine.Names[mine.From]; ok {
		return "this " + mine.Names.node(mine.From)
	}
	return "this node"
}

// checkTimeouts refuses a peer whose timing differs. Without names it is
// config's CheckPeer ("node '2' has O2CB_IDLE_TIMEOUT_MS=20000, this node
// 30000"); with them, each node's values under its name, so that the
// message says the same on both nodes.
func (mine *Hello) checkTimeouts(h *Hello) error {
	_, named := mine.Names[mine.From]
	if !named {
		return mine.Timeouts.CheckPeer(fmt.Sprintf("%d", h.From), h.Timeouts)
	}
	ms := mine.Timeouts.Mismatches(h.Timeouts)
	if len(ms) == 0 {
		return nil
	}
	theirs, ours := make([]string, len(ms)), make([]string, len(ms))
	for i, m := range ms {
		theirs[i] = m.Var + "=" + m.Peer
		ours[i] = m.Var + "=" + m.Local
	}
	return fmt.Errorf("%s has %s; %s has %s: %w", mine.Names.node(h.From), strings.Join(theirs, ", "),
		mine.Names.node(mine.From), strings.Join(ours, ", "), config.ErrTimeoutsDiffer)
}
