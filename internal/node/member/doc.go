// Package member is the cluster stack of one node as a pure state machine:
// it composes the heartbeat regions (cluster/heartbeat), the links to the
// other nodes (cluster/net), o2quo and the membership views
// (cluster/quorum), and adds what only the whole node can decide: the
// aggregate live set across regions, evictions through kill blocks and
// Evict messages, the write lease, the freeze, and fencing.
//
// It lives under node (rank 4) because the R2 cores may not import each
// other; it is pure all the same — no clocks, goroutines or I/O — so that the
// agent (internal/node) and the simulator (internal/sim) run exactly the same
// decisions. The driver performs what Ready asks (reads, writes, dials,
// frames, the fence) and reports the outcomes with the time.
//
// # Fencing
//
// A member fences when o2quo says so, when the committed view leaves it out,
// when a kill block or an Evict message from a node allowed to evict it
// names its generation, when its lease runs out (heartbeat writes stalled
// past MaxWriteStall; the agent's hang watchdog calls Fence for the same
// bound), or when the driver asks. It then stops: Ready carries only the
// Fence, whose Acks are its kill block with the fencing acknowledgement, to
// write once the latch is on (see heartbeat's package doc).
//
// # Global heartbeat: the majority is over the configured regions
//
// In global mode the regions are the cluster's heartbeat devices, and a
// node needs a strict majority of them (heartbeat.MajorityOf): any two such
// majorities share a device, so two nodes that both go on see each other's
// heartbeat there. The majority is taken over the devices configured
// (SetConfiguredRegions), never over those the driver found: a device this
// node cannot find or open counts as lost (issue 5's audit: node 0 found
// one device of three, nodes 1 and 2 the other two, and both groups went on).
// Below a majority the member does not heartbeat at all — never steady,
// never in a view, no lease — and a region removed later keeps counting
// with the last lease base it had, so losing it ends the lease as a stall
// would. MissingRegions says which devices are missing and why.
//
// # The write gate
//
// MayWrite is what the agent checks before every write to a shared disk.
// Besides the lease and the freeze, it holds writes back while a heartbeat
// read or write has been in flight for more than an interval: a write queued behind
// a hung path is exactly what could land after the survivors recovered this
// node. What is already queued must complete or fail within the host's I/O
// timeout; o2go is safe when that timeout (SCSI timeout x retries, multipath
// no_path_retry) is below the dead time minus four heartbeat intervals —
// the same rule OCFS2's documentation gives for O2CB_HEARTBEAT_THRESHOLD
// and multipath, with o2go's margin made explicit.
//
// # Freeze
//
// When a member's lease runs out but every other node that may be counting
// its heartbeat is connected and reports that its own heartbeat reads are
// stalled too, the shared disk is gone for everyone: nobody can count this
// node's missed beats, and fencing would only take the whole cluster down.
// The member freezes instead: its writes wait (MayWrite returns ErrFrozen)
// until its heartbeat writes complete again. The nodes that may be counting
// are not only the view's members (quorum.Membership.Watchers): a node that
// heartbeats but has not joined yet reads the disk all the same and would
// declare the frozen nodes dead and go on alone, so the members, the nodes
// this node or any connected peer sees heartbeating, and the slots not yet
// resolved all count. It fences at once if any of them reports that it can
// read again, or stops reporting, while this node still cannot write: that
// node would declare it dead (it restarts counting missed beats after its
// own stall, so this node has a dead time to hear about it). A node that no
// other node may be watching never freezes (no one can confirm, and one
// that starts reading would declare it dead), and a frozen node left alone
// fences. When its heartbeat writes complete again it resumes only if no
// slot changed meanwhile but those of nodes frozen with it: a node that
// heartbeated, even one that stopped cleanly since, may have gone on
// without it and recovered its slot (heartbeatWhileFrozen has the
// argument). A node whose lease ran out, unless frozen, fences before it
// acts on a read.
package member
