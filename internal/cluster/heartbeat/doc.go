// Package heartbeat owns the disk heartbeat as pure code: the liveness
// machine of one heartbeat region (Region, o2hb's per-region thread in
// fs/ocfs2/cluster/heartbeat.c), where a region lives on its device
// (Geometry), the node's write lease over its regions (LeaseExpiry), and the
// kill blocks by which survivors evict a node that still reaches the disk
// (KillBlock).
//
// It is a pure R2 core: the driver (internal/node, internal/sim) does the
// I/O an iteration asks for and reports it back with the time.
//
// # The heartbeat area
//
// A region is the heartbeat system file of an OCFS2 volume (local mode: one
// region per mounted volume) or of a heartbeat-only device made with
// mkfs.ocfs2 -H (global mode: the cluster's heartbeat devices). mkfs gives
// the file 256 fs blocks in one extent. o2hb uses the device's logical
// sector size S as its block: node N owns the sector at start + N x S for
// N in 0..254 (libocfs2 configures 255 blocks), and writes
// ondisk.HeartbeatBlock there, so debugfs.ocfs2 -R hb lists o2go's nodes:
//
//	sector 0..254     o2hb slots, node N at sector N          (kernel, o2go)
//	sector 255        unused guard
//	sector 256..510   kill blocks, node N's at sector 256 + N   (o2go only)
//	sector 511..      unused
//
// hb_seq is the wall clock in milliseconds, forced to grow by at least one
// per write (the kernel writes seconds; readers only compare it for change),
// hb_generation is random per region start, hb_dead_ms is threshold x
// interval. A clean stop writes generation 0, which readers take as the node
// leaving at once (o2hb does the same).
//
// # Where the kill area is, and why it is safe
//
// On a volume the kill area is inside the heartbeat file, which then needs
// 511 sectors: with 512-byte sectors, fs blocks of 1 KiB or more (the file
// is 256 KiB to 1 MiB). Nothing else reads or writes there: the kernel's
// o2hb is configured with 255 blocks and touches only slots 0..254; debugfs
// dumps at most 255 slots of 512 bytes; fsck.ocfs2 checks the heartbeat
// file's inode and extent, never its contents; mkfs and tunefs rewrite the
// file only when they format it.
//
// A heartbeat-only device (mkfs.ocfs2 -H, global mode) has a 128 KiB
// heartbeat file (512-byte blocks; mkfs 1.8.7 cannot make one with larger
// blocks), too short. But mkfs -H formats only the first 1 MiB of the
// device, whatever its size, and nothing ever allocates on such a device
// (it can never be mounted, and fsck.ocfs2 refuses to open it). The kill
// area is then the 255 sectors right after the file system's end (global
// bitmap clusters x cluster size), when the device is that long.
//
// Elsewhere (512-byte fs blocks, 4 KiB sectors, a device cut at the file
// system's end) there is no kill area: kill blocks are off for that region
// and survivors wait out the dead threshold, as O2CB does.
// TestKillAreaIsInvisibleToTheTools writes every kill block and checks
// fsck.ocfs2 -fn and debugfs.ocfs2 -R hb, on volumes and on a
// heartbeat-only device.
//
// # Kill blocks
//
// A node writes only its own kill block (KillBlock documents the layout):
// the orders it gives (victim node and the victim's heartbeat generation)
// and, when it fences, the acknowledgement "my incarnation of generation g
// has fenced". Each node reads every configured node's kill block with its
// heartbeat slots, once an interval. A node that finds an order for its own
// number and generation, from a node that heartbeats with the generation the
// block names, latches its I/O, writes the acknowledgement (the only write
// after the latch, to its own kill block) and acts (reset, panic or exit).
// Survivors that read the acknowledgement of a node's current generation
// treat it as dead at once instead of waiting out the dead threshold.
// Generations make stale orders and acknowledgements harmless: they name an
// incarnation that no longer heartbeats.
//
// # Liveness rules (o2hb's, and what o2go adds)
//
//   - A dead node is live after LiveThreshold (2) changed samples.
//   - A live node is dead after Threshold unchanged samples, or at once when
//     its generation changes. o2go adds a time guard: also at least DeadTime
//     ((Threshold-1) x interval) after the end of the read that saw its last
//     change, so slow reads never shorten the dead time.
//   - A bad checksum is a missed sample of a live node.
//   - If this node's own reads stalled (two reads more than two intervals
//     apart), it restarts counting missed samples: it was not watching. This
//     is what lets a cluster whose shared disk went away for everyone resume
//     without declaring each other dead.
//   - Own slot: after each read a node checks that its slot holds what it
//     last wrote (o2hb_check_own_slot); if not (another node heartbeats in
//     its slot, or a write was lost) the write does not renew the lease.
//     Before its first write a node watches its slot for one interval and
//     refuses the region if someone else is writing it.
//   - Steady: after three clean iterations without membership change, every
//     node that heartbeats has been seen (o2hb's steady iterations).
//   - Unresolved: a slot with a non-zero generation whose node is not live
//     and has not been watched unchanged for a dead time. Its node may have
//     crashed — or be paused, or frozen waiting for the disk, about to write
//     again. A node that starts does not act as if it were gone until it is
//     resolved: by watching it for a dead time, or because a peer that is
//     steady says it is not live (node/member). A clean stop writes
//     generation 0 and leaves nothing unresolved.
//
// # The lease
//
// A node may write to shared disks only while its lease holds: MaxWriteStall
// (DeadTime - interval) after the start of its last heartbeat write that a
// later read of its own found on disk. A survivor declares it dead no sooner
// than DeadTime after the end of the read that saw its last write, which
// landed after that write started: one interval of margin, even when a write
// is lost or a read is slow. In global mode the lease needs a strict
// majority of the configured regions (LeaseExpiry): it survives the loss
// of fewer than half of them, and a region this node cannot find counts
// as lost.
package heartbeat
