// Package transport is the network edge of the cluster stack: it carries
// cluster/net's frames between nodes over authenticated connections. TCP is
// the real network; Mem a simulated one inside a process, with links that
// can be cut one way or both, for tests of whole agents. Both run the same
// handshake and framing (conn.go), so what a test exercises on Mem is what
// runs on TCP.
//
// transport is an edge (rank R2'): it owns sockets and goroutines and
// decides nothing — which node to connect to, when to give up, what a
// message means is cluster/net's and the agent's.
//
// # Connections
//
// As in o2net a node listens on its cluster.conf ip_address:ip_port and
// dials from its own ip_address, so an acceptor can check that a node
// connects from the address configured for the number it claims. Every
// connection runs cluster/net's handshake first (Hello exchange, HMAC
// proofs over both Hellos with the cluster secret; see cluster/net's package
// doc); an acceptor that refuses a Hello (different cluster, protocol
// version or timeouts, wrong origin) answers with the reason so the
// connector can log it too. A wrong secret is refused and logged on both
// sides with the peer's address ("refused connection from 127.0.0.2:51234:
// node 2: authentication failed ..."); the secret never crosses the wire.
// On the wire, around cluster/net's four steps: the acceptor's answer to
// the connector's Hello starts with a status byte — 0, then its Hello
// (0x68 bytes) and its proof (32 bytes); or 1, a be16 length and the
// reason of the refusal (at most 512 bytes of text); after the connector's
// proof the acceptor answers one more status byte (0 accepted, 1 refused).
// After the handshake every frame is header + payload + MAC under the
// connection's per-direction session keys; a frame that fails its MAC
// closes the connection.
//
// A handshake must finish within HandshakeTimeout. Idle connections are not
// timed out here: the agent's link machine (cluster/net.Links) sends the
// keepalives and closes connections idle past O2CB_IDLE_TIMEOUT_MS.
//
// # Goroutines
//
// TCP: one accept loop, plus one goroutine per handshake in progress. A
// Conn has none of its own: the agent reads it from one goroutine and sends
// from any (Send is serialized).
package transport
