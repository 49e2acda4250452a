// Package node is the o2go agent: it runs one node's cluster stack
// (node/member, a pure state machine) against the real world — the shared
// disks (blockdev), the network (transport), the boot clock — and offers
// the stack to the layers above: membership events, messaging, a write gate
// for shared devices, and a local control API.
//
// node is rank R4. The decisions are all in node/member and the R2 cores;
// this package owns goroutines, devices, sockets and the fence.
//
// # Goroutines
//
//   - loop: the event loop, the only goroutine that touches the member. It
//     ticks it every interval/10 and runs every input (I/O completions,
//     connections, frames, control requests) as a closure from its queue,
//     then carries out what the member asks (Ready).
//   - one per heartbeat region: its reads and writes, one at a time, in
//     order, as o2hb's per-region thread.
//   - accept: takes authenticated connections from the transport and asks
//     the loop whether to keep them; one goroutine per dial in progress.
//   - two per connection: a reader (stack frames go to the loop; messages
//     for registered handlers are handled right there, in order, and only
//     noted to the loop for the link's idle timer) and a writer for the
//     stack's frames. Subscribers' Send and Call write directly.
//   - watchdog (OPROCD): wakes every interval/4 on CLOCK_BOOTTIME. If the
//     process did not run for longer than the self-fence bound
//     (MaxWriteStall: SIGSTOP, a VM stall, a suspend), or the lease ran out
//     while the loop is stuck, it fences. It also pings systemd's watchdog
//     while the loop runs.
//   - hub: delivers membership events to subscribers, each event to every
//     subscriber in priority order (DLM, then file system, then HA) before
//     the next.
//   - control: the control socket's accept loop, one goroutine per client.
//   - findGlobalRegions (global heartbeat mode): looks again for the
//     configured heartbeat devices this node has not found, every few
//     intervals, for as long as the agent runs (not in the agent's wait
//     group: it ends when the agent is done or its context ends).
//
// # Writes to shared disks: gate, then latch
//
// Every shared device this node writes is wrapped gate -> latch -> device
// (heartbeat regions here; the file system's devices with WrapDevice). The
// gate reads the lease the loop publishes and the boot clock at the moment
// of each write: a write after the lease ran out fences the node instead
// (so a process resumed after a long stop fences before any of its
// goroutines can write, whichever wakes first); data writes wait while the
// node is frozen or its heartbeat write is overdue. The latch
// (blockdev.Latch) turns every write off for good once fencing starts.
//
// # Fencing
//
// The member decides (quorum, eviction, lease, removal from the view); the
// gate and the watchdog can too. Fencing is: the latch (waiting up to two
// intervals for writes in flight), then — only if none is left in flight —
// the acknowledgement in this node's kill block, written through the raw
// device, the one write after the latch; then the action of
// O2GO_FENCE_METHOD: reset (reboot(2), LINUX_REBOOT_CMD_RESTART), panic
// ('c' to /proc/sysrq-trigger) or exit (status ExitFenced, 99).
//
// # Control API
//
// A Unix socket per node (DefaultSocket: /run/o2go/NODE.sock), mode 0600,
// SO_PEERCRED checked: root and the agent's user only. One JSON request per
// line, {"method": "...", "params": {...}}, one JSON answer per line,
// {"result": ...} or {"error": "..."}. The agent serves ping, methods,
// status, heartbeat.start/stop/list (what ocfs2_hb_ctl -S/-K do for
// mount.ocfs2, local mode) and fence; other commands register their own
// with Agent.Control().Register.
//
// # For the layers above
//
//   - Subscribe / SubscribeChan: membership events (MembershipEvent) with
//     cluster-wide sequence numbers, in priority order.
//   - Handle(type, key, maxLen, fn), Send(node, type, key, payload),
//     Call(ctx, node, type, key, payload): o2net's messaging; types in the
//     ranges of cluster/net (DLM 500..599, FS 600..699, HA 700..799).
//   - WrapDevice(dev), MayWrite(): the write gate for shared devices.
//   - StartHeartbeat / StopHeartbeat: a volume's heartbeat (local mode).
package node
