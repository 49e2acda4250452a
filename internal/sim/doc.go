// Package sim is o2go's deterministic cluster simulator: one seed drives a
// cluster of real node/member state machines (the very code the agent runs)
// over simulated shared disks and a simulated network, injects faults —
// crashes, power losses, pauses, symmetric and one-way partitions, cut
// links, connection resets, message delays, slow, hanging and failing disk
// paths, the whole array going down, wall-clock jumps, and in scenario
// tests clean stops and heartbeat devices a node cannot find — and checks,
// while it runs and at the end, what o2go promises (see checker). A
// failing seed replays exactly; Shrink reduces its fault list to a small
// case.
//
// sim is rank R4.5: it drives node/member and the R2 cores. It owns no
// goroutines: an agenda of timed events (queue) runs one at a time, and
// every random choice comes from the seed.
//
// # Model
//
//   - Time is virtual. Each node ticks its member every interval/5; its
//     "file system" writes data every ~0.4 s while it is a member of the
//     committed view, through the same gate as the agent (MayWrite).
//   - Disks: every heartbeat region is a byte array shared by all nodes.
//     A node's path to a region has a latency (0.2–2 ms, or a spike up to
//     MaxSpike), can fail every I/O, or can hang until it heals. A read
//     returns the sectors as they are when it completes; a write lands when
//     it completes. I/O on a hung path fails at the host's I/O timeout
//     (Options.IOTimeout: DeadTime - 4 intervals, see node/member's write
//     gate), or is lost if the node's incarnation ends first (crash, or a
//     fence: reset), as a reset or a power loss loses it.
//   - Fencing follows the agent: writes are latched off, the writes in
//     flight finish, then the acknowledgement is written, then the node is
//     gone; it boots again (a new generation) after a few seconds.
//   - Network: each connection is reliable and ordered until it breaks. A
//     cut link breaks it silently (idle timers notice); a closed connection
//     or a killed process resets it (the peer hears at once). Messages to
//     a paused node wait for it; a paused node does nothing, and on resume
//     handles what it missed before its next tick — the worst order for the
//     write gate.
//   - Authentication is the transport's; simulated connections are
//     authenticated.
//   - With Options.DLM every node also runs the lock manager core (package
//     dlm) on its membership events and connections, with applications
//     locking, and the checks of dlm.go.
package sim
