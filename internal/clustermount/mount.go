// Package clustermount owns the mounts of clustered OCFS2 volumes on one
// node: they run inside the node's agent, beside its lock manager. A mount
// checks the volume's cluster stack and name against the running cluster,
// starts heartbeat on the volume, joins the volume's lock domain (named by
// its UUID, with the recovery gate), takes a slot in the slot map under the
// volume lock, mounts the write engine in that slot with the cluster lock
// wired in (internal/fs/lockglue), and serves FUSE. When a node of the
// domain dies, a survivor recovers the dead node's slot before anything
// conflicting is granted. Unmount gives the slot and the locks back.
//
// The locks, by OCFS2 name:
//   - M (one per inode, fslocks_table.go): PR to read the inode and what
//     hangs off it (extents, directory blocks, xattrs), EX to change it;
//     o2go also guards the inode's data with it. Allocators are inodes
//     too: a slot's own stay EX on its node, the global bitmap moves to
//     whoever claims or frees clusters. Before M goes down from EX a node
//     writes its journal home and leaves in the lock's value block the
//     inode's size, times and attributes (inode.LockValue), which the next
//     holder checks the inode block it reads against; going to NL it
//     forgets the inode's blocks (and those it cannot tell the owner of).
//     Every operation takes its set in one order (inode.LockSet.Sorted),
//     so no two wait for each other. No operation takes a journal's M
//     lock (below), which mounts and recoveries take after S.
//   - T (a refcount tree) and R (the rename lock, EX for a move between
//     directories) the same way.
//   - S (the superblock lock): every operation holds it PR, last; mounts,
//     unmounts and recoveries take it EX (the slot map; a dead node's
//     journal, local alloc and truncate log), before which every node
//     writes everything home and forgets everything it cached.
//   - O (one per inode, openlock.go): held PR by each open handle, claimed
//     EX NOQUEUE to delete, so an unlinked file outlives the other nodes'
//     handles.
//   - F (one per open handle, filelocks.go): flock(2). fcntl(2) byte ranges
//     use a per-inode mutex in the same domain and ask the other nodes.
//   - P (the orphan scan lock, orphanscan.go): taken EX without waiting by
//     the node that scans every slot's orphan directory.
//   - The M lock of a slot's journal inode is the slot's journal lock: the
//     node in the slot holds it EX while mounted.
//   - Recovery takes S EX with the recovery flag (it passes the ghosts of
//     the dead node's locks), then the dead slot's journal lock the same
//     way, and replays; the dead node's M locks stay as ghosts until the
//     recovery is done, so nothing it changed is read before.
package clustermount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"o2go/internal/base"
	"o2go/internal/dlm"
	"o2go/internal/fs/lockglue"
	"o2go/internal/fs/volume"
	"o2go/internal/fusefs"
	"o2go/internal/node"
	"o2go/internal/ondisk"
)

// Manager runs one node's clustered mounts.
type Manager struct {
	Agent   *node.Agent
	DLM     *node.DLM
	Cluster string // the running cluster's name
	Log     *slog.Logger

	mu     sync.Mutex
	mounts map[string]*Mount // by mount point
}

// Start returns the manager of agent a's clustered mounts and has it
// follow the lock manager's recovery events.
func Start(a *node.Agent, d *node.DLM, cluster string, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{Agent: a, DLM: d, Cluster: cluster, Log: log, mounts: map[string]*Mount{}}
	d.OnEvent(m.onDLMEvent)
	return m
}

// Mount is one clustered mount.
type Mount struct {
	Device, Mountpoint, UUID string
	Slot                     int
	Started                  time.Time

	mg       *Manager
	m        *volume.Mounted
	lock     *lockglue.Lock // S, the volume lock
	table    *lockTable     // every other file-system lock
	mu       sync.Mutex
	gone     bool          // unmounted: nothing to flush any more
	kernel   *fusefs.FS    // the FUSE side, once serving (its page cache)
	journal  func()        // lets the slot's journal lock go (unmount)
	scanSeq  atomic.Uint64 // orphan scans: odd while one runs (from before its lock request until after its unlock)
	recMu    sync.Mutex
	locks    *fileLocks    // flock and fcntl locks, once serving
	scan     chan struct{} // closed to stop the orphan scan
	scanDone chan struct{}
	stopScan sync.Once
}

// superLockName is the volume lock's name: OCFS2's superblock lock.
func superLockName() string {
	n, _ := ondisk.LockName{Type: ondisk.LockSuper, Blkno: ondisk.SuperBlockBlkno}.Encode()
	return n
}

// Mount mounts device (a path, UUID=… or LABEL=…) on mountpoint with the
// mount.ocfs2 options in opts, and returns when the mount serves or
// failed.
func (mg *Manager) Mount(ctx context.Context, device, mountpoint, options string) (*Mount, error) {
	opts, err := fusefs.ParseMountOptions(options)
	if err != nil {
		return nil, err
	}
	if opts.NoCluster {
		return nil, errors.New("-o nocluster mounts without the cluster: use o2go mount without --node")
	}
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return nil, err
	}
	mountpoint = abs
	if st, err := os.Stat(mountpoint); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("mount point %s is not a directory", mountpoint)
	}
	mg.mu.Lock()
	if _, ok := mg.mounts[mountpoint]; ok {
		mg.mu.Unlock()
		return nil, fmt.Errorf("%s is mounted already", mountpoint)
	}
	mg.mounts[mountpoint] = nil // reserved
	mg.mu.Unlock()
	mt, err := mg.mount(ctx, device, mountpoint, opts)
	mg.mu.Lock()
	if err != nil {
		delete(mg.mounts, mountpoint)
	} else {
		mg.mounts[mountpoint] = mt
	}
	mg.mu.Unlock()
	return mt, err
}

func (mg *Manager) mount(ctx context.Context, spec, mountpoint string, opts fusefs.MountOptions) (mt *Mount, err error) {
	// Heartbeat first: it finds the device (UUID=/LABEL=) and it must run
	// before this node takes part in the volume's locking.
	region, err := mg.Agent.StartHeartbeat(spec)
	if err != nil {
		return nil, fmt.Errorf("starting heartbeat on %s: %w", spec, err)
	}
	device := region.Device
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	undo = append(undo, func() { mg.Agent.StopHeartbeat(spec) })
	v, err := volume.Open(device, volume.OpenOptions{})
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { v.Close() })
	if err := mg.checkStack(v); err != nil {
		return nil, err
	}
	uuid := v.SB.UUIDString()
	mg.mu.Lock()
	for _, o := range mg.mounts {
		if o != nil && o.UUID == uuid {
			mg.mu.Unlock()
			return nil, fmt.Errorf("%s (UUID %s) is mounted on this node already, on %s", device, uuid, o.Mountpoint)
		}
	}
	mg.mu.Unlock()
	if err := mg.DLM.Join(ctx, uuid, true); err != nil {
		return nil, fmt.Errorf("joining the lock domain of %s: %w", uuid, err)
	}
	undo = append(undo, func() {
		lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		mg.DLM.Leave(lctx, uuid)
	})
	mt = &Mount{Device: device, Mountpoint: mountpoint, UUID: uuid, Started: time.Now(), mg: mg}
	mt.lock = lockglue.NewLock(dlmService{d: mg.DLM, domain: uuid}, superLockName(), mt.flush)
	// The undoes run after "return nil, err" has set the result mt to
	// nil: they keep their own reference.
	made := mt
	undo = append(undo, func() { made.markGone(); made.lock.Close() })

	// Slot and journal under the volume lock, exclusive.
	release, err := mt.lock.Acquire(ctx, lockglue.EX)
	if err != nil {
		return nil, err
	}
	slot, err := mg.claimSlot(v, opts.PreferSlot)
	if err != nil {
		release()
		return nil, err
	}
	mt.table = newLockTable(mt, dlmService{d: mg.DLM, domain: uuid})
	// The slot's journal lock, EX for as long as the node is mounted
	// (ocfs2_journal_init): the lock a survivor takes, with the recovery
	// flag, to replay the journal after this node dies.
	releaseJournal, err := mt.table.holdJournal(ctx, v, slot)
	if err != nil {
		mt.table.closeAll()
		mg.freeSlot(v, slot)
		release()
		return nil, err
	}
	vopts := opts.Volume
	vopts.Slot = slot
	m, err := volume.MountVolume(v, vopts)
	if err != nil {
		releaseJournal()
		mt.table.closeAll()
		mg.freeSlot(v, slot)
		release()
		return nil, err
	}
	mt.mu.Lock() // live() reads it from the locks' flushers
	mt.m, mt.Slot, mt.journal = m, slot, releaseJournal
	mt.mu.Unlock()
	m.FS.W.Cluster = mt.table
	m.FS.W.Opens = newOpenLocks(mg.DLM, mt.UUID, mg.Log)
	absent, rerr := mt.recoverAbsentSlots()
	release()
	undo = undo[:len(undo)-2] // the volume and its lock now go with Unmount
	undo = append(undo, func() { made.unmountVolume() })
	if rerr != nil {
		return nil, rerr
	}
	if m.Load.WasDirty {
		mg.Log.Info("recovered this node's slot after an unclean shutdown", "device", device, "slot", slot)
	}
	if n, err := m.FS.RecoverOrphans(); err != nil {
		return nil, fmt.Errorf("%s: orphan recovery: %w", device, err)
	} else if n > 0 {
		mg.Log.Info("deleted orphan inodes left by a crash", "count", n)
	}
	for _, s := range absent {
		if err := mt.deleteOrphansOf(s); err != nil {
			return nil, err
		}
	}
	locks, err := newFileLocks(mg.Agent, mg.DLM, uuid, mg.Log)
	if err != nil {
		return nil, err
	}
	mt.locks = locks
	f := fusefs.New(m.FS, fusefs.Options{Clustered: true, Statfs: m.Statfs, NoUserXattr: !opts.UserXattr, NoACL: !opts.ACL, Locks: locks,
		ReadOnly: opts.ReadOnly, Errors: opts.Errors, Log: mg.Log, BufferedCoherency: opts.Coherency == "buffered"})
	mt.mu.Lock()
	mt.kernel = f // before the kernel has pages: a drop is never missed
	mt.mu.Unlock()
	srv, err := fusefs.Mount(f, mountpoint, fusefs.MountConfig{Device: device, AllowOther: os.Geteuid() == 0, Debug: opts.Debug})
	if err != nil {
		return nil, err
	}
	mt.scan, mt.scanDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(mt.scanDone)
		mt.orphanScanLoop(mt.scan)
	}()
	mg.Log.Info("mounted", "device", device, "uuid", uuid, "slot", slot, "mountpoint", mountpoint)
	socket := mg.Agent.Control().Path()
	if abs, err := filepath.Abs(socket); err == nil {
		socket = abs
	}
	unregister, err := fusefs.RegisterAgentMount(fusefs.LockInfo{PID: os.Getpid(), Device: device, Mountpoint: mountpoint, UUID: uuid, Socket: socket})
	if err != nil {
		mg.Log.Warn("recording the mount in "+fusefs.RunDir+" (o2go umount will not wait for it)", "err", err)
		unregister = func() {}
	}
	go func() {
		srv.Wait()
		defer unregister()
		mt.unmountVolume() // it logs how the unmount went
		mg.mu.Lock()
		delete(mg.mounts, mountpoint)
		mg.mu.Unlock()
	}()
	return mt, nil
}

// checkStack refuses a volume made for another cluster, as mount.ocfs2
// does.
func (mg *Manager) checkStack(v *volume.Volume) error {
	sb := v.SB
	if sb.Features.Incompat&ondisk.IncompatLocalMount != 0 {
		return fmt.Errorf("%s is a local volume (the local feature): mount it without the cluster (o2go mount without --node), or make it clustered with o2go tunefs --fs-features=nolocal", v.Path)
	}
	if sb.Features.Incompat&(ondisk.IncompatUserspaceStack|ondisk.IncompatClusterInfo) != 0 {
		ci := sb.ClusterInfo
		if st := ci.StackName(); st != "o2cb" {
			return fmt.Errorf("%s was made for the %q cluster stack; this node runs o2cb (o2go): fix the volume with o2go tunefs --update-cluster-stack", v.Path, st)
		}
		if name := ci.ClusterName(); name != mg.Cluster {
			return fmt.Errorf("%s belongs to cluster %q, this node runs cluster %q: fix the volume with o2go tunefs --update-cluster-stack, or mount it in its own cluster", v.Path, name, mg.Cluster)
		}
	}
	return nil
}

// claimSlot takes this node's slot in the slot map: the one it had
// (a node that reboots reuses its slot), else preferred if the volume has
// it and it is free, else the first free one, as the kernel's
// ocfs2_find_slot does (a preferred slot past the slot count is ignored).
// The caller holds the volume lock EX.
func (mg *Manager) claimSlot(v *volume.Volume, preferred int) (int, error) {
	sm, err := v.ReadSlotMap()
	if err != nil {
		return 0, err
	}
	self := uint32(mg.Agent.Self().Number)
	slot, ok := sm.SlotOf(self)
	if !ok && preferred >= 0 && preferred < len(sm.Slots) && !sm.Slots[preferred].Valid {
		slot, ok = preferred, true
	}
	if !ok {
		if slot, ok = sm.FirstFree(); !ok {
			return 0, fmt.Errorf("%s: all %d slots are in use: add slots with o2go tunefs -N", v.Path, len(sm.Slots))
		}
	}
	sm.Slots[slot] = ondisk.Slot{Valid: true, Node: self}
	return slot, v.WriteSlotMap(sm)
}

// freeSlot clears slot in the slot map. The caller holds the volume lock
// EX.
func (mg *Manager) freeSlot(v *volume.Volume, slot int) error {
	sm, err := v.ReadSlotMap()
	if err != nil {
		return err
	}
	sm.Slots[slot].Valid = false
	return v.WriteSlotMap(sm)
}

// flush is the volume lock's Flusher. Every operation holds S shared; a
// node takes it exclusive to change the slot map or to recover a dead
// node's slot, which writes anywhere (the dead node's journal, the global
// bitmap) without the inode locks. So before S goes down at all a node
// writes everything home and forgets everything it cached: going to NL,
// another node is about to write without inode locks; coming down from
// EX, what this node read under S alone (at mount, in a recovery) is
// covered by no inode lock, so no other node's change would make it
// forget it later.
func (mt *Mount) flush(from, to lockglue.Mode) error {
	m := mt.live()
	if m == nil {
		return nil // Unmount wrote everything home and closed the volume
	}
	if err := m.WriteBack(); err != nil {
		return err
	}
	return m.ForgetCached()
}

// dropPages has the kernel forget its pages of inode ino (mapped files),
// once the mount serves.
func (mt *Mount) dropPages(ino uint64) {
	mt.mu.Lock()
	k := mt.kernel
	mt.mu.Unlock()
	if k != nil {
		k.DropPages(ino)
	}
}

// live returns the mounted volume, or nil once it is unmounted (or not
// mounted yet): then a lock going down has nothing to write or forget.
func (mt *Mount) live() *volume.Mounted {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if mt.gone {
		return nil
	}
	return mt.m
}

func (mt *Mount) markGone() {
	mt.mu.Lock()
	mt.gone = true
	mt.mu.Unlock()
}

// unmountVolume is the clean unmount once the kernel let go: the volume
// unmounted (journal clean), the slot freed, the lock and the domain left,
// the heartbeat stopped.
func (mt *Mount) unmountVolume() error {
	mg := mt.mg
	var errs []error
	if mt.scan != nil {
		mt.stopScan.Do(func() { close(mt.scan) })
		<-mt.scanDone
	}
	if _, err := mt.m.FS.RecoverOrphans(); err != nil {
		mg.Log.Error("deleting orphans at unmount; the next mount retries", "err", err)
	}
	if err := mt.m.Unmount(); err != nil {
		errs = append(errs, err)
	}
	// Everything is home and the volume closed: a downconvert from now
	// on has nothing to flush.
	mt.markGone()
	// The volume is closed: free the slot through a fresh handle.
	if release, err := mt.lock.Acquire(context.Background(), lockglue.EX); err == nil {
		if v2, err := volume.Open(mt.Device, volume.OpenOptions{}); err == nil {
			errs = append(errs, mg.freeSlot(v2, mt.Slot))
			v2.Close()
		} else {
			errs = append(errs, err)
		}
		release()
	} else {
		errs = append(errs, err)
	}
	if mt.locks != nil {
		mt.locks.close()
	}
	if mt.journal != nil {
		mt.journal() // the slot is free: nothing left to recover
	}
	if mt.table != nil {
		errs = append(errs, mt.table.closeAll())
	}
	errs = append(errs, mt.lock.Close())
	lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mg.DLM.Leave(lctx, mt.UUID); err != nil {
		errs = append(errs, fmt.Errorf("leaving the lock domain: %w", err))
	}
	if _, err := mg.Agent.StopHeartbeat(mt.Device); err != nil {
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	if err != nil {
		mg.Log.Error("unclean unmount", "device", mt.Device, "err", err)
	} else {
		mg.Log.Info("unmounted", "device", mt.Device, "mountpoint", mt.Mountpoint)
	}
	return err
}

// recoverAbsentSlots recovers the slots of nodes that died while no other
// node had the volume mounted (nobody recovered them then): every slot the
// slot map holds for a node outside the volume's lock domain, as the
// kernel's mount does (ocfs2_mark_dead_nodes, then recovery). A node that
// mounts joins the domain before it takes a slot under the volume lock,
// which the caller holds EX: such a slot's node is dead. Its orphans are
// the caller's to delete once the volume lock is released; their slots
// are returned.
func (mt *Mount) recoverAbsentSlots() ([]int, error) {
	mg := mt.mg
	sm, err := mt.m.ReadSlotMap()
	if err != nil {
		return nil, err
	}
	live := mg.DLM.DomainMembers(mt.UUID)
	var done []int
	for s, sl := range sm.Slots {
		if s == mt.Slot || !sl.Valid || slices.Contains(live, base.NodeID(sl.Node)) {
			continue
		}
		if err := mt.recoverDeadSlot(sm, s, "recovered the slot of a node that died with the volume mounted"); err != nil {
			return done, fmt.Errorf("%s: recovering slot %d of node %d, which died with the volume mounted: %w", mt.Device, s, sl.Node, err)
		}
		done = append(done, s)
	}
	return done, nil
}

// recoverDeadSlot recovers slot s of a dead node (journal, local alloc,
// truncate log: volume.Mounted.RecoverSlot) and frees it in sm, logging
// what with the node and whether a journal was replayed. The caller holds
// the volume lock EX.
func (mt *Mount) recoverDeadSlot(sm *ondisk.SlotMap, s int, what string) error {
	node := sm.Slots[s].Node
	var rep *volume.SlotRecovery
	err := mt.table.recoverJournal(mt.m.Volume, s, func() (err error) {
		rep, err = mt.m.RecoverSlot(s)
		return err
	})
	if err != nil {
		return err
	}
	sm.Slots[s].Valid = false
	if err := mt.m.WriteSlotMap(sm); err != nil {
		return err
	}
	mt.mg.Log.Info(what, "node", node, "slot", s, "replayed", rep.Journal != nil && !rep.Journal.Skipped)
	return nil
}

// deleteOrphansOf deletes the orphans a dead node left in slot s, through
// ordinary deletes (so without the volume lock held).
func (mt *Mount) deleteOrphansOf(s int) error {
	n, err := mt.m.RecoverOrphansOf(s)
	if err != nil {
		return fmt.Errorf("%s: deleting the orphans of slot %d: %w", mt.Device, s, err)
	}
	if n > 0 {
		mt.mg.Log.Info("deleted a dead node's orphan inodes", "slot", s, "count", n)
	}
	return nil
}

// onDLMEvent starts the recovery of a dead node in a volume's domain once
// the lock manager's part of it is done.
func (mg *Manager) onDLMEvent(e dlm.Event) {
	if e.Kind != dlm.EventRecovered {
		return
	}
	mg.mu.Lock()
	var mt *Mount
	for _, o := range mg.mounts {
		if o != nil && o.UUID == e.Domain {
			mt = o
		}
	}
	mg.mu.Unlock()
	if mt == nil {
		return
	}
	go mt.recoverNode(e.Dead.Node)
}

// recoverNode recovers dead node n's slot (journal, local alloc,
// truncate log), frees its slot, tells the lock manager, then deletes the
// node's orphans. Any survivor may get there first: the slot map says
// whether there is anything left to do.
func (mt *Mount) recoverNode(n base.NodeID) {
	mt.recMu.Lock()
	defer mt.recMu.Unlock()
	mg := mt.mg
	ctx := context.Background()
	slot := -1
	err := mt.lock.Recover(ctx, func() error {
		sm, err := mt.m.ReadSlotMap()
		if err != nil {
			return err
		}
		s, ok := sm.SlotOf(uint32(n))
		if !ok {
			return nil // recovered by another survivor, or never mounted
		}
		slot = s
		return mt.recoverDeadSlot(sm, s, "recovered a dead node's slot")
	})
	if err != nil {
		// Without the recovery no node may go on: the ghosts stay.
		mg.Log.Error("recovering a dead node failed; its locks stay until a node recovers it", "node", n, "err", err)
		return
	}
	// Another survivor that recovered the slot first may have told the
	// lock manager already: then there is nothing left to say.
	if err := mg.DLM.RecoveryDone(mt.UUID, n); err != nil && !errors.Is(err, dlm.ErrNotRecovering) {
		mg.Log.Error("telling the lock manager the recovery is done", "node", n, "err", err)
	}
	if slot >= 0 {
		if err := mt.deleteOrphansOf(slot); err != nil {
			mg.Log.Error("deleting a dead node's orphans failed; the next mount in its slot deletes them", "node", n, "err", err)
		}
	}
}

// Mounts lists the node's clustered mounts.
func (mg *Manager) Mounts() []*Mount {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	var out []*Mount
	for _, m := range mg.mounts {
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

// LockState is the volume lock's state (the fs_locks view).
func (mt *Mount) LockState() lockglue.LockState { return mt.lock.State() }
