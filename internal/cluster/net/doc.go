// Package net owns the cluster stack's messaging protocol as pure code: the
// message header and its codec, the handshake (Hello) and the proofs that
// authenticate it, the per-frame MACs, the registry of message handlers keyed
// by (type, key), and Links — the state machine of this node's connections to
// its peers. It follows the kernel's o2net (fs/ocfs2/cluster/tcp.c,
// tcp_internal.h) for the wire header, the connection rules and the timers,
// and adds what O2CB lacks: authentication.
//
// net is a pure R2 core: no sockets, clocks or goroutines. Time enters as the
// now argument of each call, connection outcomes as Established/Closed, and
// Ready says what the driver (internal/node, or internal/sim) must do. The
// sockets live in internal/transport.
//
// # Messages
//
// A frame on the wire is a Header (24 bytes, o2net's struct o2net_msg, see
// Header), data_len bytes of payload, and a 16-byte MAC. Payloads are opaque
// bytes to the transport: each layer owns the structs and codec of its
// messages. A message is delivered to the handler registered for its
// (msg_type, key); the key separates users of one type (o2dlm uses the
// domain's key). A message sent with FlagWantStatus is answered by a status
// frame carrying the handler's int32 return value, or a SysStatus when no
// handler ran (no handler, payload too long, connection died).
//
// Message types are assigned in ranges, one per layer:
//
//	1..99        the cluster stack (membership views, status, eviction)
//	500..599     the DLM (o2dlm numbers its messages from 500)
//	600..699     the file system
//	700..799     the HA resource manager
//	60000..65535 tests and tools
//
// The agent refuses to register a handler outside these ranges or in the
// stack's own (CheckUserType).
//
// # Connections
//
// As in o2net there is one TCP connection per pair of nodes, made by the
// higher-numbered node and only to a node whose disk heartbeat it sees; the
// lower-numbered node accepts only from a node it sees heartbeating, and only
// when no connection to it is up. A failed attempt is retried every
// ReconnectDelay. A node that does not connect within IdleTimeout of starting
// to heartbeat is given up on (quorum hears ConnErr). A connection is kept
// alive by a keepalive request after KeepaliveDelay without receiving
// anything, answered by a keepalive response; a connection that received
// nothing for IdleTimeout is closed and quorum hears ConnErr. QuorumDelay
// ((threshold+2) heartbeat intervals) after a ConnErr for a node that still
// heartbeats, quorum hears StillUp and decides (see cluster/quorum).
//
// # Handshake and authentication
//
// O2CB accepts any process that connects from a configured address. o2go
// authenticates both sides with the cluster secret (config.LoadSecret) by an
// HMAC challenge-response; the secret never crosses the wire:
//
//  1. connector -> acceptor: its Hello (with a fresh 32-byte nonce)
//  2. acceptor -> connector: its Hello (fresh nonce) and
//     Proof(secret, Acceptor, T), T = connector's Hello || acceptor's Hello
//  3. connector checks the proof, then sends Proof(secret, Connector, T)
//  4. acceptor checks the proof
//
// Each side then checks the other's Hello (Hello.Check): same protocol
// version and cluster, addressed to it, and the same six timing values
// (a node whose O2CB_* or O2GO_* timing differs is refused with a message
// naming the variables). Every later frame carries FrameMAC under a session
// key derived from the secret and T, one key per direction, over an implicit
// per-direction sequence number: a frame replayed from another connection,
// reordered, dropped or altered is detected and the connection closed. A
// wrong secret fails at step 3 or 4; the transport logs the refusal with the
// peer's address. Frames are authenticated, not encrypted: the cluster
// network is assumed private, as it is for O2CB.
package net
