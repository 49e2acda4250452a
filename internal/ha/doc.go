// Package ha owns o2go's HA resource manager as a pure state machine, in the
// spirit of HACMP/PowerHA and Oracle CRS: the model (resources, resource
// groups with their node lists, start-up/fallover/fallback policies and
// dependencies, networks, event scripts), the validation of a configuration
// (every refusal says what to fix; nothing of a refused configuration is
// applied), the one placement function (Place), and the per-node machine
// (Node) that runs groups and, on the lowest-numbered member, coordinates
// the cluster.
//
// ha is a pure R2 core: no sockets, clocks, goroutines or processes. The
// driver — the node agent (internal/node/ha.go) or the simulator
// (internal/sim/ha*.go) — feeds a Node membership events (in the cluster
// stack's one order), peers' messages (Receive), lock grants (LockDone),
// the outcomes of resource operations and event scripts (OpDone,
// ScriptDone), operator requests (Request) and time (Tick), and carries out
// its Ready: messages, lock operations on the DLM, resource operations,
// event scripts, history records, replies, and fencing.
//
// # Ownership
//
// A node starts a group's resources only while it holds the group's DLM lock
// (LockDomain, LockName): EX, or PR for a concurrent group, and it releases
// the lock only after every resource stopped. A stop that fails fences the
// node (Settings.StopFailure "fence", the default) or leaves the group
// unmanaged with its lock held ("unmanaged"). So a group can never be active
// on two live nodes while the DLM and fencing work, whatever the placement
// says: placement decides where a group should be, the lock decides where it
// may be.
//
// # Coordinator
//
// The lowest member coordinates, as the DLM's registrar does. A new
// coordinator asks every member for its report and adopts the newest
// configuration, state and history any of them holds before it decides
// anything. It then runs Place after every change and orders nodes to bring
// groups online or offline — a group is released everywhere before it is
// acquired elsewhere, parents are settled before children start, children
// stop before their parent. Cluster events (node_up, node_down, rg_move,
// rg_error, reconfig) are processed one at a time: record, notify, pre
// script, the event's change, the orders, and once the placement converged
// (or the next event arrives) post script, notify, record. Events on a node
// (rg_online, rg_offline, resource_failed, swap_adapter, network_down/up)
// run their scripts there, the work's failures running the recovery script
// and retrying up to the event's retry count. The coordinator numbers every
// record: the history is one ordered list, replicated to every node.
//
// # Failures
//
// A monitor that fails restarts its resource in place up to
// RestartAttempts times within RestartInterval (defaults 3 and 10 minutes,
// as HACMP's restart count and CRS's RESTART_ATTEMPTS/FAILURE_INTERVAL);
// then the group stops there, the node is marked failed for it, and the
// fallover policy places it elsewhere (or takes it offline). A failed start
// does the same at once.
//
// # Messages
//
// Types 700..712 of cluster/net's HA range; JSON payloads (wire.go) carrying
// the sender's membership sequence number: a message from a node ahead of
// this one waits until this node has delivered the same membership events.
package ha
