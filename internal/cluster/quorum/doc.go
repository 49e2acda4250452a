// Package quorum owns who may continue and in which order the cluster's
// membership changes: o2quo's fencing decision (Quorum), the rule by which
// survivors evict a node they lost (Evictions), and the protocol by which
// nodes agree on each membership view so that every node delivers the same
// node up/down events in the same order (Membership).
//
// It is a pure R2 core (no clocks, sockets or goroutines); the agent
// (internal/node) and the simulator (internal/sim) drive it.
//
// # Quorum (o2quo)
//
// Quorum follows fs/ocfs2/cluster/quorum.c: after losing connections to
// nodes that still heartbeat, a node continues only if it is connected to
// more than half of the heartbeating nodes, or to exactly half including the
// lowest-numbered heartbeating node; otherwise it fences itself. Holds defer
// the decision until every lost node has either stopped heartbeating or been
// found still heartbeating QuorumDelay after its connection was lost.
//
// # Evictions
//
// O2CB leaves a lost node's fate to the lost node's own o2quo decision,
// which comes QuorumDelay (66 s by default) after the idle timeout, and
// never resolves a cut between two nodes that each still reach a majority.
// o2go's survivors evict: once a link is given up and every peer a node
// counts on its side is still heard from (a partition silences all its
// links at once, but their idle timers run out one by one), the side that
// has quorum evicts the nodes it lost (through their kill blocks, see
// cluster/heartbeat, and an Evict message relayed by a peer that still
// reaches the target). An evicted node fences itself and acknowledges, and
// the survivors proceed without waiting out the dead threshold. Evictions
// documents the rule and why two sides never evict each other.
//
// # Membership views
//
// O2CB delivers node up/down callbacks in the order each node's own
// heartbeat thread notices them, so two nodes can see two deaths in
// different orders. o2go makes every member deliver the same sequence:
//
//   - The leader is the lowest-numbered node that heartbeats and that a node
//     is connected to, preferring members of the latest view it knows of.
//   - A view's members are exactly the nodes that heartbeat: a node leaves
//     the view only when it is dead on disk (threshold missed beats, a new
//     generation, or a fencing acknowledgement in its kill block), and joins
//     once it heartbeats, its heartbeat has settled (steady) and every
//     member is connected to it.
//   - The leader proposes view e+1 (Propose, with a ballot); each live member
//     accepts it if it comes from its own leader and follows its committed
//     view e; once every live member accepted, the leader commits it
//     (Commit) and every member applies it: the downs, then the ups, each in
//     ascending node order, numbered on from view e's Seq.
//   - A new leader first re-proposes the content it accepted from the old
//     one, if any: the old leader may have committed it (every live member,
//     the new leader among them, had accepted it), so the content of an
//     epoch never changes (the Paxos rule, with "all live members" as the
//     quorum).
//   - A member that misses a commit catches up from the leader's log (a live
//     member can lag by one view only, since every view needs its accept).
//   - A member that sees a committed view without itself while it still
//     heartbeats fences: the others consider it dead.
//
// The protocol never decides that a node is dead: the disk heartbeat does,
// as in O2CB. It only orders what the heartbeats decided, and holds back a
// view while a live member cannot be reached (until the partition heals or
// quorum and evictions resolve it).
//
// Every heartbeat interval each node sends a Status to every peer it is
// connected to: its committed view, whom it sees heartbeating, whom it is
// connected to, whom it lost, whether its heartbeat is steady, and its disk
// health (used to freeze rather than fence when the shared disk is gone for
// everyone, see node/member). The wire formats are in wire.go.
package quorum
