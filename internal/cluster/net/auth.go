package net

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// ProofSize is the bytes of an authentication proof.
const ProofSize = sha256.Size

// MACSize is the bytes of the MAC that ends every frame.
const MACSize = 16

// Role is the side of a connection: the connector (the higher node number,
// which dials) or the acceptor.
type Role byte

const (
	Connector Role = 'C'
	Acceptor  Role = 'A'
)

// Transcript is what the proofs and session keys bind: both Hellos as sent,
// connector's first. Fresh nonces in each make every transcript new, so a
// recorded proof never opens another connection.
func Transcript(connectorHello, acceptorHello []byte) []byte {
	t := make([]byte, 0, len(connectorHello)+len(acceptorHello))
	t = append(t, connectorHello...)
	return append(t, acceptorHello...)
}

func mac(secret []byte, label string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// Proof is what side role sends to prove it holds the cluster secret:
// HMAC-SHA256(secret, "o2go proof " + role + transcript). The secret itself
// never crosses the wire.
func Proof(secret []byte, role Role, transcript []byte) []byte {
	return mac(secret, "o2go proof "+string(role), transcript)
}

// VerifyProof checks, in constant time, a proof received from the side role.
func VerifyProof(secret []byte, role Role, transcript, proof []byte) bool {
	return hmac.Equal(Proof(secret, role, transcript), proof)
}

// SessionKey is the key that authenticates the frames sent by side role on
// the connection with this transcript.
func SessionKey(secret []byte, role Role, transcript []byte) []byte {
	return mac(secret, "o2go session "+string(role), transcript)
}

// FrameMAC authenticates one frame: HMAC-SHA256 with the sender's session key
// over the frame's sequence number (counted per direction from 0, never
// sent) and its header and payload, truncated to MACSize bytes. A frame that
// is replayed, reordered, dropped or altered fails the check.
func FrameMAC(key []byte, seq uint64, header, payload []byte) []byte {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	return mac(key, "", s[:], header, payload)[:MACSize]
}

// VerifyFrame checks a frame's MAC in constant time.
func VerifyFrame(key []byte, seq uint64, header, payload, got []byte) bool {
	return hmac.Equal(FrameMAC(key, seq, header, payload), got)
}

// FrameSealer computes FrameMAC for the frames of one direction of one
// connection, counting their sequence numbers, without allocating per frame.
// It is not safe for concurrent use: a connection seals its frames in order.
type FrameSealer struct {
	h   hash.Hash
	seq uint64
	buf [sha256.Size]byte
}

// NewFrameSealer starts sealing with key at sequence number 0.
func NewFrameSealer(key []byte) *FrameSealer {
	return &FrameSealer{h: hmac.New(sha256.New, key)}
}

// Seal returns the MAC of the next frame (appended to dst) and advances the
// sequence number.
func (s *FrameSealer) Seal(dst, header, payload []byte) []byte {
	sum := s.sum(header, payload)
	return append(dst, sum...)
}

// Open checks the MAC of the next frame received and advances the sequence
// number when it matches.
func (s *FrameSealer) Open(header, payload, got []byte) bool {
	var save = s.seq
	ok := hmac.Equal(s.sum(header, payload), got)
	if !ok {
		s.seq = save
	}
	return ok
}

func (s *FrameSealer) sum(header, payload []byte) []byte {
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], s.seq)
	s.seq++
	s.h.Reset()
	s.h.Write(seq[:])
	s.h.Write(header)
	s.h.Write(payload)
	return s.h.Sum(s.buf[:0])[:MACSize]
}
