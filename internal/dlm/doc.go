// Package dlm owns o2go's distributed lock manager as a pure state machine:
// lock domains, the six lock modes, queues, lock value blocks, mastery of
// resources spread over the members, migration when members come and go, and
// recovery when one dies. It is the counterpart of the kernel's o2dlm
// (fs/ocfs2/dlm), with the modes, LVB rules and conversion rules of the
// VMS/Linux DLM (fs/dlm) instead of o2dlm's three modes.
//
// dlm is a pure R2 core: no sockets, clocks, goroutines or locks. The agent
// (internal/node) or the simulator feeds it membership events
// (Membership/NodeUp/NodeDown), peers' messages (Receive), connections that
// came back (LinkUp), time (Tick) and
// its users' calls (Join, Lock, Convert, Unlock, Cancel, RecoveryDone...);
// every call returns a Ready: messages to send, completion notifications
// (ASTs), blocking notifications (BASTs) and events. The same code runs in
// the agent, in the simulator and in this package's tests.
//
// # Modes, queues, value blocks
//
// NL, CR, CW, PR, PW, EX with the standard compatibility matrix (Compatible).
// Each resource has a granted, a converting and a waiting queue at its
// master; the grant rules are on master. A conversion that would wait for
// ever behind another (each excludes what the other wants) is refused with
// StatusDeadlock and reported (EventDeadlock) — deterministically the later
// one. NoQueue refuses with StatusBusy what cannot be granted at once. A
// holder that asks a sideways conversion (PR<->CW) must rely, from the
// moment it asks, only on what both modes allow: the master may grant the
// new mode, and others what the old one excluded, before the completion
// reaches the holder.
// Cancel ends a pending request or conversion (StatusCancelled); a deadline
// (SetDeadline) ends it with StatusTimedOut. A lock blocking the next
// request gets a BAST with the mode wanted.
//
// The 64-byte value block follows the fs/dlm table (lvbOps): a grant that
// does not lower the mode reads it; lowering from PW or EX (and PW->PW,
// EX->EX) writes the block the holder passes. It is invalidated (zeroed,
// AST.LVBValid false until the next write) when a PW or EX holder dies, and
// when a master dies and no survivor's lock proves the survivors' copy
// current. It lives as long as the resource has locks.
//
// # Mastery
//
// Every resource has one master, chosen without a server: the member with
// the highest rendezvous hash of (name, node) among the domain's members in
// the current view. Every node computes it locally, so a request goes
// straight to the master — one round trip, or none when the master is local —
// and a membership change moves only the resources of the nodes that came
// or went. A master that leaves hands its resources over (migration); a
// master that dies has its resources rebuilt from what the survivors report.
//
// # Membership and reconfiguration
//
// The cluster stack delivers NodeUp/NodeDown to every node in the same order
// with the same sequence numbers (cluster/quorum's views). Every message
// carries its sender's membership sequence number: a receiver holds it until
// it has seen the same events, and drops the messages of a dead incarnation.
//
// The protocol counts on every message between two live incarnations
// arriving, in order, once. A broken connection loses what was in flight,
// and the cluster stack does not always evict anyone for it (a partition it
// cannot resolve holds the membership until it heals). So what a node sends
// a peer is numbered, kept until the peer acknowledges it, and sent again
// when the driver reports the connection back (LinkUp); receivers drop
// duplicates and anything past a gap (streams.go). No request is ever
// asked again on a timer: the deadline of SetDeadline is the only timer,
// and it ends a request, it does not repeat it.
//
// The lowest live node is the registrar (O2CB favours low node numbers in
// every tie-break). It orders the membership changes of every domain (joins,
// leaves, deaths: it is the "recovery master" of the ocfs2(7) DLM DEBUGGING
// section) and runs each as a reconfiguration: freeze, markers, transfers
// (with holders' reports after a death), transfer ends, completion — see
// reconfig.go. A death during a reconfiguration restarts it with a new
// epoch. When the registrar dies, the next lowest node asks every node what
// it knows (sync) and restarts whatever was under way.
//
// # Recovery and the file system
//
// In a domain joined with the recovery gate (a file system's), the locks a
// dead node held become ghosts at their masters: they keep excluding what
// they excluded, so nothing conflicting is granted until the file system
// has recovered the node (replayed its journal...) and calls RecoveryDone.
// EventRecovered says when the DLM's part is done and the file system's may
// start; its own recovery locks use the Recovery flag to pass the ghosts.
// Where a dead node's locks died with their master, the DLM stands a ghost in
// for them: the strongest mode the survivors' locks allow (EX on a resource
// nobody survives on). A member cannot leave while a death is pending (its
// file system finishes its recoveries first, as OCFS2's does); when every
// member of a domain dies — or the last other member dies while one is on
// its way out — the domain ends, and the file system's mount-time recovery
// of dirty journals takes over, as in OCFS2. Domains without the
// gate drop a dead node's locks when the reconfiguration completes.
//
// # Wire format
//
// Message types MsgTypeFirst.. in cluster/net's DLM range; the payload layout
// (an envelope with the membership sequence number and the stream numbers,
// then the message) is documented in wire.go. Every decoder refuses truncated, oversized or
// out-of-range input with a MessageError (ErrMessage); a refused message
// changes nothing.
//
// # Debugging
//
// State and Locks give the views of o2dlm's dlm_state and dlm_locks
// (FormatState, FormatResource render them as text); CheckInvariants checks
// the node's own consistency and runs after every call in -tags invariants
// builds.
package dlm
