package volume

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/inode"
	"o2go/internal/fs/journal"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// MountOptions are the options of a read-write mount that the volume layer
// handles (the FUSE layer handles the rest). They follow mount.ocfs2(8).
type MountOptions struct {
	// Slot is the slot this mount uses (local volumes and nocluster: 0).
	Slot int
	// CommitInterval is commit=N (default 5 s).
	CommitInterval time.Duration
	// DataWriteback is data=writeback.
	DataWriteback bool
	// AtimeQuantum is atime_quantum= (default 60 s); NoAtime is noatime.
	AtimeQuantum time.Duration
	NoAtime      bool
	// LocalAllocMB is localalloc= (0: default 8 MiB; negative: off).
	LocalAllocMB int
	// ResvLevel and DirResvLevel are resv_level= and dir_resv_level=
	// (-1: the default).
	ResvLevel, DirResvLevel int
}

// DefaultMountOptions are mount.ocfs2's defaults.
func DefaultMountOptions() MountOptions {
	return MountOptions{CommitInterval: journal.DefaultCommitInterval, AtimeQuantum: 60 * time.Second, ResvLevel: -1, DirResvLevel: -1}
}

// Mounted is a volume open read-write with its slot's journal loaded and
// allocators ready: what fusefs serves.
type Mounted struct {
	*Volume
	Slot    int
	Journal *journal.Journal
	Load    *journal.LoadReport

	tl      *extent.TruncateLog
	global  *alloc.GlobalBitmap
	local   *alloc.LocalAlloc
	inodes  *alloc.ChainAllocator
	blocks  *alloc.ChainAllocator
	cluster *alloc.ClusterAllocator
	geo     alloc.Geometry
	// others are other slots' suballocators, opened to free what their
	// nodes allocated (a clustered volume: a file made on another node).
	othersMu sync.Mutex
	others   map[string]*alloc.ChainAllocator
	resvMu   sync.Mutex
	resv     map[uint64]*alloc.Reservation
	closed   bool
	stop     chan struct{}
	stopped  chan struct{}

	// failed is the error that made the mount read-only (SetReadOnly);
	// unmounting lets the clean unmount's own changes through.
	failed     atomic.Pointer[error]
	unmounting atomic.Bool
}

// SetReadOnly puts the mount in the read-only-after-error state (errors=
// remount-ro after a metadata error or a journal abort): from now on every
// change the write engine begins fails with EROFS, before it touches
// anything; reads go on. What was committed stays committed, and Unmount
// still writes what a clean unmount writes (the truncate log's clusters
// freed, the local alloc window given back, the checkpoint, the clean
// flag): the failed operation was rolled back, so the state it writes is
// consistent. The first cause is kept.
func (m *Mounted) SetReadOnly(cause error) {
	m.failed.CompareAndSwap(nil, &cause)
}

// ReadOnlyCause is the error SetReadOnly recorded, or nil.
func (m *Mounted) ReadOnlyCause() error {
	if p := m.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// TruncateLogFlushInterval is how often parked clusters are given back to
// the global bitmap (the kernel's OCFS2_TRUNCATE_LOG_FLUSH_INTERVAL is 2 s;
// o2go waits a commit interval, as each flush costs a checkpoint).
const TruncateLogFlushInterval = 5 * time.Second

// flushLoop frees what the truncate log parked, now and then, so that df
// shows space freed by deletes soon after.
func (m *Mounted) flushLoop() {
	defer close(m.stopped)
	t := time.NewTicker(TruncateLogFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			if used, _, err := m.tl.Used(); err == nil && used > 0 {
				m.FS.FlushTruncateLog() // an error aborts the journal; the mount reports it
			}
		}
	}
}

// Mount opens the volume at path read-write for this node: journal replay
// and load, the slot's allocators, local alloc and truncate log recovery
// after an unclean shutdown.
func Mount(path string, opts MountOptions) (*Mounted, error) {
	v, err := Open(path, OpenOptions{})
	if err != nil {
		return nil, err
	}
	m, err := MountVolume(v, opts)
	if err != nil {
		v.Close()
		return nil, err
	}
	return m, nil
}

// MountVolume mounts an already opened volume (which it then owns).
func MountVolume(v *Volume, opts MountOptions) (*Mounted, error) {
	if v.ReadOnly {
		return nil, fmt.Errorf("%s: cannot mount read-write: the volume was opened read-only", v.Path)
	}
	if q := v.SB.Features.RoCompat & (ondisk.RoCompatUsrQuota | ondisk.RoCompatGrpQuota); q != 0 {
		return nil, fmt.Errorf("%s: quota features (usrquota/grpquota, %x) are on: o2go does not maintain quota files yet, so it mounts this volume read-only only (or turn quotas off with tunefs)", v.Path, q)
	}
	if opts.Slot < 0 || opts.Slot >= int(v.SB.MaxSlots) {
		return nil, fmt.Errorf("%s: slot %d does not exist (the volume has %d)", v.Path, opts.Slot, v.SB.MaxSlots)
	}
	m := &Mounted{Volume: v, Slot: opts.Slot, resv: map[uint64]*alloc.Reservation{}}
	var err error
	sys := func(kind ondisk.SystemFileKind, slot int) uint64 {
		if err != nil {
			return 0
		}
		var b uint64
		b, err = v.SystemFile(kind, slot)
		return b
	}
	jblk := sys(ondisk.SysJournal, m.Slot)
	gbBlk := sys(ondisk.SysGlobalBitmap, -1)
	laBlk := sys(ondisk.SysLocalAlloc, m.Slot)
	iaBlk := sys(ondisk.SysInodeAlloc, m.Slot)
	eaBlk := sys(ondisk.SysExtentAlloc, m.Slot)
	tlBlk := sys(ondisk.SysTruncateLog, m.Slot)
	orphan := sys(ondisk.SysOrphanDir, m.Slot)
	if err != nil {
		return nil, err
	}
	w := &inode.Writer{Slot: m.Slot, OrphanDir: orphan, Opts: inode.Options{
		DataWriteback: opts.DataWriteback, AtimeQuantum: opts.AtimeQuantum, NoAtime: opts.NoAtime}}
	m.Journal, m.Load, err = journal.Load(v.Cache, jblk, journal.Config{
		ClusterSize: v.SB.ClusterSize(), MetaLock: w.Meta.RLocker(), CommitInterval: opts.CommitInterval,
		Name: fmt.Sprintf("journal:%04d", m.Slot)})
	if err != nil {
		return nil, fmt.Errorf("%s: loading journal:%04d: %w", v.Path, m.Slot, err)
	}
	fail := func(err error) (*Mounted, error) {
		m.Journal.Abandon()
		return nil, err
	}
	geo, err := alloc.NewGeometry(v.Super)
	if err != nil {
		return fail(err)
	}
	m.geo = geo
	if m.global, err = alloc.OpenGlobalBitmap(v.Cache, geo, gbBlk); err != nil {
		return fail(err)
	}
	laOpts := alloc.DefaultLocalAllocOptions()
	laOpts.WindowMB = opts.LocalAllocMB
	if opts.ResvLevel >= 0 {
		laOpts.ResvLevel = opts.ResvLevel
	}
	if opts.DirResvLevel >= 0 {
		laOpts.DirResvLevel = opts.DirResvLevel
	}
	if m.Load.Replay != nil && m.Load.Replay.Needed {
		// The replay may have changed the superblock (label, features):
		// decode it again, in place, for everyone holding v.SB.
		if err := v.rereadSuper(); err != nil {
			return fail(err)
		}
	}
	tl := &extent.TruncateLog{C: v.Cache, Blkno: tlBlk, FreeClusters: m.global.FreeClusters}
	m.tl = tl
	if m.Load.WasDirty {
		// The slot was not unmounted cleanly: its local alloc window and
		// truncate log still hold clusters (the replay made them current).
		if err := m.recoverSlot(geo, laBlk, tl); err != nil {
			return fail(fmt.Errorf("%s: recovering slot %d: %w", v.Path, m.Slot, err))
		}
	}
	if m.local, err = alloc.OpenLocalAlloc(v.Cache, geo, laBlk, m.global, laOpts); err != nil {
		return fail(err)
	}
	if m.inodes, err = alloc.OpenSuballocator(v.Cache, geo, iaBlk, uint16(m.Slot), m.global, fmt.Sprintf("inode_alloc:%04d", m.Slot)); err != nil {
		return fail(err)
	}
	if m.blocks, err = alloc.OpenSuballocator(v.Cache, geo, eaBlk, uint16(m.Slot), m.global, fmt.Sprintf("extent_alloc:%04d", m.Slot)); err != nil {
		return fail(err)
	}
	m.cluster = alloc.NewClusterAllocator(m.global, m.local)
	w.SlotLocks = []uint64{iaBlk, eaBlk, laBlk, tlBlk, orphan}
	w.GlobalBitmap = gbBlk
	for _, a := range []*alloc.ChainAllocator{m.global.Allocator(), m.inodes, m.blocks} {
		m.guard(a)
	}
	w.Journal = journalAdapter{m}
	w.Alloc = inode.Allocators{
		Inodes:             suballocAdapter{m.inodes, m, ondisk.SysInodeAlloc},
		Blocks:             suballocAdapter{m.blocks, m, ondisk.SysExtentAlloc},
		Clusters:           clusterAdapter{m},
		Truncate:           tl,
		DiscardReservation: m.discardReservation,
	}
	var seed [4]byte
	rand.Read(seed[:])
	w.SeedGeneration(binary.LittleEndian.Uint32(seed[:]))
	v.FS.W = w
	m.stop, m.stopped = make(chan struct{}), make(chan struct{})
	go m.flushLoop()
	return m, nil
}

// recoverSlot empties the slot's local alloc and truncate log after an
// unclean shutdown, as the kernel's recovery does for a slot.
func (m *Mounted) recoverSlot(geo alloc.Geometry, laBlk uint64, tl *extent.TruncateLog) error {
	if err := m.Journal.Checkpoint(); err != nil {
		return err
	}
	h, err := m.Journal.Begin(16)
	if err != nil {
		return err
	}
	if err := alloc.RecoverLocalAlloc(h, m.Cache, geo, laBlk, m.global); err != nil {
		h.Stop()
		return err
	}
	if _, err := tl.Flush(h); err != nil {
		h.Stop()
		return err
	}
	if err := h.Stop(); err != nil {
		return err
	}
	return m.Journal.Checkpoint()
}

// Unmount is the clean unmount: free what the truncate log parked, give
// the local alloc window back, checkpoint and mark the journal clean.
func (m *Mounted) Unmount() error {
	if m.closed {
		return nil
	}
	m.closed = true
	m.unmounting.Store(true)
	close(m.stop)
	<-m.stopped
	var errs []error
	if err := m.FS.FlushTruncateLog(); err != nil {
		errs = append(errs, err)
	}
	// The window goes back to the global bitmap: a change under its lock.
	if err := m.FS.Change(inode.LockSet{inode.InodeLock(m.global.Blkno()): true}, 8, func(tx metacache.Tx) error {
		return m.local.Shutdown(tx)
	}); err != nil {
		errs = append(errs, err)
	}
	if err := m.Journal.Shutdown(); err != nil {
		errs = append(errs, err)
	}
	if err := m.Volume.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Crash stops the mount the way a killed process would: nothing more is
// written (tests use it to leave a dirty journal behind).
func (m *Mounted) Crash() {
	if m.stop != nil && !m.closed {
		close(m.stop)
		<-m.stopped
	}
	m.closed = true
	m.Journal.Abandon()
	m.Volume.Close()
}

func (m *Mounted) reservation(owner uint64) *alloc.Reservation {
	m.resvMu.Lock()
	defer m.resvMu.Unlock()
	r, ok := m.resv[owner]
	if !ok {
		r = &alloc.Reservation{}
		m.resv[owner] = r
	}
	return r
}

func (m *Mounted) discardReservation(owner uint64) {
	m.resvMu.Lock()
	r, ok := m.resv[owner]
	delete(m.resv, owner)
	m.resvMu.Unlock()
	if ok {
		m.cluster.DiscardReservation(r)
	}
}

// journalAdapter gives fs/inode the journal behind its small interface,
// and refuses new changes once the mount is read-only after an error.
type journalAdapter struct{ m *Mounted }

func (a journalAdapter) Begin(credits int) (inode.Handle, error) {
	if cause := a.m.ReadOnlyCause(); cause != nil && !a.m.unmounting.Load() {
		return nil, fmt.Errorf("%s: read-only since an earlier error (%v): %w", a.m.Path, cause, syscall.EROFS)
	}
	h, err := a.m.Journal.Begin(credits)
	if err != nil {
		return nil, err
	}
	return h, nil
}
func (a journalAdapter) CommitAndWait() error { return a.m.Journal.CommitAndWait() }
func (a journalAdapter) Checkpoint() error    { return a.m.Journal.Checkpoint() }

// noSpace adds ENOSPC to an allocator's "no space" error, so the FUSE
// layer maps it to the errno a full file system returns.
func noSpace(err error) error {
	if errors.Is(err, alloc.ErrNoSpace) {
		return fmt.Errorf("%w (%w)", err, syscall.ENOSPC)
	}
	return err
}

// suballocAdapter is the slot's inode or extent block suballocator for
// the write engine: it allocates from this slot's, and frees each object
// into the allocator of the slot it came from (its i_suballoc_slot), as
// the kernel does: on a clustered volume a file made on another node goes
// back to that node's allocator.
type suballocAdapter struct {
	a    *alloc.ChainAllocator
	m    *Mounted
	kind ondisk.SystemFileKind
}

func (s suballocAdapter) NewMetaBlock(tx metacache.Tx) (extent.MetaBlock, error) {
	o, err := s.a.ClaimObject(tx, 0)
	if err != nil {
		return extent.MetaBlock{}, noSpace(err)
	}
	return extent.MetaBlock(o), nil
}

func (s suballocAdapter) FreeMetaBlock(tx metacache.Tx, b extent.MetaBlock) error {
	a := s.a
	if int(b.Slot) != s.m.Slot {
		var err error
		if a, err = s.m.otherAllocator(s.kind, int(b.Slot)); err != nil {
			return err
		}
	}
	return a.FreeObject(tx, alloc.Object(b))
}

// guard has allocator a check, before each use, that the running
// operation holds a's cluster lock (inode.Writer.Need).
func (m *Mounted) guard(a *alloc.ChainAllocator) {
	a.SetGuard(func() error { return m.FS.W.Need(inode.InodeLock(a.Blkno()), true) })
}

// otherAllocator returns another slot's suballocator of kind. The caller
// changes it under the cluster lock, as any metadata.
func (m *Mounted) otherAllocator(kind ondisk.SystemFileKind, slot int) (*alloc.ChainAllocator, error) {
	if slot < 0 || slot >= int(m.SB.MaxSlots) {
		return nil, fmt.Errorf("%s: an object names suballocator slot %d (the volume has %d slots)", m.Path, slot, m.SB.MaxSlots)
	}
	name := fmt.Sprintf("%s:%04d", kind, slot)
	m.othersMu.Lock()
	defer m.othersMu.Unlock()
	if a := m.others[name]; a != nil {
		return a, nil
	}
	blk, err := m.SystemFile(kind, slot)
	if err != nil {
		return nil, err
	}
	// Opening reads the allocator: under its cluster lock.
	if err := m.FS.W.Need(inode.InodeLock(blk), true); err != nil {
		return nil, err
	}
	a, err := alloc.OpenSuballocator(m.Cache, m.geo, blk, uint16(slot), m.global, name)
	if err != nil {
		return nil, err
	}
	m.guard(a)
	if m.others == nil {
		m.others = map[string]*alloc.ChainAllocator{}
	}
	m.others[name] = a
	return a, nil
}

type clusterAdapter struct{ m *Mounted }

func (c clusterAdapter) ClaimClusters(tx metacache.Tx, owner uint64, goal, min, max uint32) (uint32, uint32, error) {
	var r *alloc.Reservation
	if owner != 0 {
		r = c.m.reservation(owner)
	}
	run, err := c.m.cluster.ClaimClustersFor(tx, r, goal, int(min), int(max))
	if err != nil {
		return 0, 0, noSpace(err)
	}
	return run.Start, uint32(run.Count), nil
}

// FreeClusters parks freed clusters in the truncate log rather than
// freeing them at once: they must not be reused before the transaction
// that freed them is durable (see extent.TruncateLog).
func (c clusterAdapter) FreeClusters(tx metacache.Tx, start, n uint32) error {
	return c.m.tl.Append(tx, start, n)
}

// Statfs reports the volume's size and free space in clusters: the global
// bitmap's free bits plus what the slot's local alloc window holds unused
// (those are marked used in the global bitmap while the window has them).
func (m *Mounted) Statfs() (total, free uint64, err error) {
	locks := inode.LockSet{inode.InodeLock(m.global.Blkno()): false, inode.InodeLock(m.local.Blkno()): false}
	err = m.FS.Read(locks, func() error {
		g, err := m.Cache.Dinode(m.global.Blkno())
		if err != nil {
			return err
		}
		gb := g.Bitmap()
		total, free = uint64(gb.Total), uint64(gb.Total-gb.Used)
		if la, err := m.Cache.Dinode(m.local.Blkno()); err == nil {
			lb := la.Bitmap()
			free += uint64(lb.Total - lb.Used)
		}
		return nil
	})
	return total, free, err
}

// rereadSuper decodes the superblock again into the existing v.Super and
// v.SB (after a journal replay).
func (v *Volume) rereadSuper() error {
	v.Cache.Forget(v.SuperBlkno)
	b, err := v.Cache.Get(v.SuperBlkno)
	if err != nil {
		return err
	}
	d, err := ondisk.DecodeDinode(b.Data)
	if err == nil {
		err = ondisk.ValidateSuperBlock(d, v.Cache.BlockSize())
	}
	if err != nil {
		return v.Cache.Annotate(err, v.SuperBlkno)
	}
	sb := *d.Super
	*v.Super = *d
	*v.SB = sb
	v.Super.Super = v.SB
	return nil
}
