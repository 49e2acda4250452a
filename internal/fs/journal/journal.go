package journal

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// DefaultCommitInterval is how long a transaction stays open before it is
// committed: OCFS2's default for the commit= mount option (5 s), which is
// also jbd2's. It bounds how much acknowledged-but-not-fsynced metadata a
// crash can lose.
const DefaultCommitInterval = 5 * time.Second

// Config configures a mounted journal (Load) and the recovery functions.
type Config struct {
	// ClusterSize is the volume's cluster size in bytes (the journal
	// file's extents count clusters). Required.
	ClusterSize int
	// MetaLock is the shared side of the volume's metadata lock (for an
	// RWMutex m: m.RLocker()). Commit holds it for the instant it copies
	// the running transaction's buffers; writers hold the exclusive side
	// around their handles. Nil: no lock (single-threaded tests).
	MetaLock sync.Locker
	// CommitInterval is the commit= mount option: the running transaction
	// is committed this long after it started. 0 means
	// DefaultCommitInterval; negative disables the background committer
	// (commits then happen only on request or when a transaction fills).
	CommitInterval time.Duration
	// MaxTransaction caps the blocks one transaction may log. 0 means a
	// quarter of the log, jbd2's rule, which keeps commits short and
	// guarantees a transaction always fits once the log is checkpointed.
	MaxTransaction int
	// Now stamps commit blocks (h_commit_sec/nsec). Nil: time.Now.
	Now func() time.Time
	// Name names the journal in messages ("journal:0000"); default
	// "journal inode N".
	Name string
}

// ErrAborted is wrapped by every error of a journal that hit an I/O error:
// nothing more is logged, and the mount layer applies its errors= policy.
var ErrAborted = errors.New("journal aborted")

// ErrShutdown is returned by Begin after Shutdown.
var ErrShutdown = errors.New("journal is shut down")

// AbortError is the error an aborted journal returns: the first failure.
type AbortError struct {
	Journal string
	Cause   error
}

func (e *AbortError) Error() string {
	return fmt.Sprintf("%s: journal aborted: %v", e.Journal, e.Cause)
}

func (e *AbortError) Unwrap() error        { return e.Cause }
func (e *AbortError) Is(target error) bool { return target == ErrAborted }

// LoadReport says what Load found.
type LoadReport struct {
	// WasDirty: the dinode had DIRTY set, i.e. the slot was not unmounted
	// cleanly. The mount layer then recovers the slot's local alloc,
	// truncate log and orphans, as the kernel does.
	WasDirty bool
	// Replay is what the replay did (Needed false when s_start was 0).
	Replay *ReplayReport
	// HadErrno is the s_errno a previous abort left (now cleared).
	HadErrno int32
	// RecoveryGeneration is the dinode's ij_recovery_generation after Load.
	RecoveryGeneration uint32
}

// Stats are the journal's counters, for debug views.
type Stats struct {
	Committed          uint64 // transactions committed
	BlocksLogged       uint64 // metadata block copies written to the log
	LogWrites          uint64 // log blocks written, descriptors, revokes and commits included
	Revoked            uint64 // revoke records written
	RevokeCheckpoints  uint64 // checkpoints forced by a block logged again after a revoke still in the log
	Checkpoints        uint64
	CheckpointedBlocks uint64 // block copies written home by checkpoints and revokes
	CreditOverruns     uint64 // handles that dirtied more blocks than they reserved
	LogUsed            int    // log blocks between the tail and the head
	LogCapacity        int    // s_maxlen - s_first
	RunningBlocks      int    // blocks dirtied in the running transaction
	RunningSeq         uint32 // ID of the running transaction
	CommittedSeq       uint32 // ID of the last committed transaction (RunningSeq-1 or less)
	Aborted            error
}

// Journal is one mounted slot's journal. Every method is safe for
// concurrent use; see the package doc for the locking rules callers keep.
type Journal struct {
	jf   *journalFile
	c    *metacache.Cache
	cfg  Config
	name string
	bs   int
	is64 bool

	first, maxlen uint32
	capacity      int // log blocks: maxlen - first
	maxTx         int
	pinLimit      int // checkpoint when the journal pins more buffers than this
	descCap       int
	revCap        int

	// ioMu serializes everything that writes to the log, the journal
	// superblock or home blocks: commits, checkpoints, revoke write-backs.
	// Lock order: MetaLock before mu; ioMu before mu; never MetaLock while
	// holding ioMu. No device I/O happens under mu.
	ioMu sync.Mutex
	head uint32 // next log block to write (under ioMu, copied under mu)
	// Reused I/O buffers, under ioMu: the commit block, and the
	// checkpoint's run of neighbouring home blocks.
	commitBlk, homeRun []byte

	mu      sync.Mutex
	cond    *sync.Cond
	running *transaction
	closed  []*transaction // closed, not yet written, in ID order
	inLog   []*transaction // committed, still holding log space, oldest first
	// logRevoked maps each block a revoke record in the log names to the
	// newest revoking transaction still in the log (see writeTx).
	logRevoked map[uint64]uint32
	cp         map[uint64]*cpEntry
	pins       map[uint64]*pinRef
	spare      [][]byte // log images no checkpoint entry points into, for reuse
	// Scratch reused by closeLocked and commitLocked, so that a commit
	// allocates nothing in the steady state.
	closing     []*txBuf
	tags        []ondisk.JournalBlockTag
	spareLogged []loggedBlock
	freeBufs    []*txBuf
	used        int // log blocks from the durable tail to head
	committed   uint32
	err         error
	shutdown    bool
	stats       Stats

	kick     chan struct{}
	quit     chan struct{}
	loopDone chan struct{}
	stopOnce sync.Once
}

// transaction is a JBD2 transaction: running (collecting buffers from
// handles), closed (its log image built), then committed (in the log until
// checkpointed).
type transaction struct {
	seq uint32

	// running
	bufs        map[uint64]*txBuf
	order       []uint64 // blocks in first-dirtied order (entries may be stale)
	revokes     map[uint64]struct{}
	revokeOrder []uint64
	open        int // open handles
	outstanding int // credits reserved by open handles
	dirty       int // blocks dirtied
	started     time.Time

	// closed
	image  []byte // log blocks but the commit block, in log order
	logged []loggedBlock
	// loggedSet indexes logged, built when Revoke first asks (see
	// logsInClosed).
	loggedSet map[uint64]struct{}
	nlog      int // log blocks including the commit block
	nrev      int
	revoked   []uint64 // blocks its revoke records name

	// committed
	start uint32 // first log block
	owned int    // blocks whose newest committed copy is this one's and not home yet
}

type txBuf struct {
	b      *metacache.Buffer
	dirty  bool
	queued bool // closeLocked laid it out
}

// loggedBlock is one block copy of a closed transaction.
type loggedBlock struct {
	blkno uint64
	data  []byte // the block as committed (unescaped)
}

// cpEntry is a block whose newest committed copy is not home yet.
type cpEntry struct {
	blkno uint64
	data  []byte
	owner *transaction
}

type pinRef struct {
	b *metacache.Buffer
	n int
}

func newTransaction(seq uint32) *transaction {
	return &transaction{seq: seq, bufs: map[uint64]*txBuf{}, revokes: map[uint64]struct{}{}}
}

func (t *transaction) empty() bool { return t.dirty == 0 && len(t.revokes) == 0 }

// Load mounts the journal of this node's slot (ocfs2_journal_init/load):
// it replays the log if it is not empty, records whether the slot was
// dirty, clears a leftover s_errno, then sets DIRTY in the journal dinode
// (bumping ij_recovery_generation when the slot was dirty, as the kernel
// does), written in place and synced, for the life of the mount. Shutdown
// undoes that on a clean unmount.
func Load(c *metacache.Cache, ino uint64, cfg Config) (*Journal, *LoadReport, error) {
	jf, err := openJournalFile(c, ino, cfg.ClusterSize, cfg.Name)
	if err != nil {
		return nil, nil, err
	}
	if err := jf.checkFeatures(true); err != nil {
		return nil, nil, err
	}
	rep := &LoadReport{WasDirty: jf.dinode.Journal().Flags&ondisk.JournalDirty != 0, HadErrno: jf.sb.Errno}
	if rep.Replay, err = replayLog(jf); err != nil {
		return nil, rep, err
	}
	// jbd2 starts the next transaction one past the replayed end (skipping
	// the ID a torn transaction may have used), or one past s_sequence when
	// the log was clean.
	next := jf.sb.SSequence + 1
	if rep.Replay.Needed {
		next = rep.Replay.NewSequence
	}
	if rep.HadErrno != 0 {
		jf.clearErrno()
		if err := jf.setSB(0, jf.sb.SSequence); err != nil {
			return nil, rep, err
		}
	}
	ij, err := jf.setDinodeFlags(func(ij *ondisk.Journal) {
		ij.Flags |= ondisk.JournalDirty
		if rep.WasDirty {
			ij.RecoveryGeneration++
		}
	})
	if err != nil {
		return nil, rep, err
	}
	rep.RecoveryGeneration = ij.RecoveryGeneration

	j := newJournal(jf, cfg, next)
	if cfg.CommitInterval >= 0 {
		j.loopDone = make(chan struct{})
		go j.loop(j.interval())
	}
	return j, rep, nil
}

func newJournal(jf *journalFile, cfg Config, next uint32) *Journal {
	sb := jf.sb
	j := &Journal{
		jf: jf, c: jf.c, cfg: cfg, name: jf.name, bs: jf.bs, is64: sb.Has64Bit(),
		first: sb.First, maxlen: sb.MaxLen, capacity: int(sb.MaxLen - sb.First),
		head:    sb.First,
		running: newTransaction(next),
		cp:      map[uint64]*cpEntry{},
		pins:    map[uint64]*pinRef{},
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
	}
	j.committed = next - 1
	j.cond = sync.NewCond(&j.mu)
	j.descCap = ondisk.DescriptorCapacity(j.bs, j.is64)
	j.revCap = ondisk.RevokeCapacity(j.bs, j.is64) / 2 // records are written twice (see closeLocked)
	j.maxTx = cfg.MaxTransaction
	if j.maxTx <= 0 || j.maxTx > j.capacity/4 {
		j.maxTx = j.capacity / 4
	}
	// Pinned buffers never leave the cache, and a cache whose every other
	// buffer is pinned drops a block as soon as it reads it; so the journal
	// keeps what it pins well below the cache's limit: a transaction at
	// most a quarter of it, and a checkpoint once half of it is pinned.
	j.pinLimit = max(jf.c.Stats().Limit/2, 1)
	j.maxTx = min(j.maxTx, j.pinLimit/2)
	j.maxTx = max(j.maxTx, 1)
	return j
}

func (j *Journal) interval() time.Duration {
	if j.cfg.CommitInterval == 0 {
		return DefaultCommitInterval
	}
	return j.cfg.CommitInterval
}

func (j *Journal) now() time.Time {
	if j.cfg.Now != nil {
		return j.cfg.Now()
	}
	return time.Now()
}

// MaxTransaction is the largest number of credits one handle may ask
// for: a quarter of the log, or less with a small metadata cache.
func (j *Journal) MaxTransaction() int { return j.maxTx }

// Name is the journal's name in messages.
func (j *Journal) Name() string { return j.name }

// Err returns the abort error, or nil while the journal works.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Stats returns the journal's counters.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.stats
	s.LogUsed, s.LogCapacity = j.used, j.capacity
	s.RunningBlocks, s.RunningSeq = j.running.dirty, j.running.seq
	s.CommittedSeq = j.committed
	s.Aborted = j.err
	return s
}

// Committed reports whether transaction seq (a Handle's Sequence) is
// committed, i.e. durable.
func (j *Journal) Committed(seq uint32) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return !seqAfter(seq, j.committed)
}

// Abort stops the journal for good with cause: every later Begin and Stop
// fails with an error wrapping ErrAborted and cause; nothing more is
// written. Committed transactions stay in the log for the next replay.
func (j *Journal) Abort(cause error) {
	j.mu.Lock()
	if j.err == nil {
		j.err = &AbortError{Journal: j.name, Cause: cause}
	}
	j.cond.Broadcast()
	j.mu.Unlock()
	j.stopLoop()
}

// fail aborts with err and returns the abort error.
func (j *Journal) fail(err error) error {
	j.Abort(err)
	return j.Err()
}

func (j *Journal) stopLoop() {
	j.stopOnce.Do(func() { close(j.quit) })
}

// loop is the background committer: it commits the running transaction
// once it is interval old, and whenever Commit asks.
func (j *Journal) loop(interval time.Duration) {
	defer close(j.loopDone)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		asked := false
		select {
		case <-j.quit:
			return
		case <-j.kick:
			asked = true
		case <-t.C:
		}
		j.mu.Lock()
		r := j.running
		age := time.Duration(0)
		if !r.started.IsZero() {
			age = j.now().Sub(r.started)
		}
		due := !r.empty() && (asked || age >= interval)
		wait := interval
		if !r.empty() && !due {
			wait = interval - age
		}
		pending := len(j.closed) > 0
		j.mu.Unlock()
		if due || pending {
			_ = j.CommitAndWait() // an error aborts the journal; Begin reports it
		}
		t.Reset(max(wait, time.Millisecond))
	}
}

// Commit asks for the running transaction to be committed soon, without
// waiting (the background committer does it; without one, it commits now).
func (j *Journal) Commit() {
	if j.loopDone == nil {
		_ = j.CommitAndWait()
		return
	}
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// CommitAndWait commits the running transaction and returns once every
// change whose handle stopped before the call is durable (fsync). It must
// not be called with the metadata lock held or with a handle open.
func (j *Journal) CommitAndWait() error {
	if err := j.closeRunning(); err != nil {
		return err
	}
	j.ioMu.Lock()
	defer j.ioMu.Unlock()
	return j.writeClosedLocked()
}

// closeRunning closes the running transaction (if it holds anything) once
// no handle is open, under the shared metadata lock.
func (j *Journal) closeRunning() error {
	for {
		if j.cfg.MetaLock != nil {
			j.cfg.MetaLock.Lock()
		}
		j.mu.Lock()
		if j.err != nil {
			err := j.err
			j.mu.Unlock()
			j.unlockMeta()
			return err
		}
		r := j.running
		if r.open == 0 {
			var err error
			if !r.empty() {
				err = j.closeLocked()
			} else {
				j.releaseClean(r)
			}
			j.mu.Unlock()
			j.unlockMeta()
			if err != nil {
				return j.fail(err)
			}
			return nil
		}
		j.unlockMeta()
		// A handle is open outside the metadata lock: wait for it.
		for j.running == r && r.open > 0 && j.err == nil {
			j.cond.Wait()
		}
		j.mu.Unlock()
	}
}

// releaseClean lets go of the blocks an empty running transaction holds:
// handles joined them (Access) but changed none, or rolled their changes
// back. Left pinned they would outlive a cache flush (metacache.ForgetAll
// keeps pinned blocks) and serve stale copies once another node of a
// clustered volume changes them. Under mu, with no handle open.
func (j *Journal) releaseClean(r *transaction) {
	for blk, tb := range r.bufs {
		j.unpin(blk)
		*tb = txBuf{}
		j.freeBufs = append(j.freeBufs, tb)
	}
	clear(r.bufs)
	r.order = r.order[:0]
}

func (j *Journal) unlockMeta() {
	if j.cfg.MetaLock != nil {
		j.cfg.MetaLock.Unlock()
	}
}

// Checkpoint commits the running transaction, writes every committed
// block home, syncs, and advances the log tail: afterwards the home
// locations hold everything committed (what the cluster lock layer needs
// before another node reads them) and the log is empty.
func (j *Journal) Checkpoint() error {
	if err := j.CommitAndWait(); err != nil {
		return err
	}
	j.ioMu.Lock()
	defer j.ioMu.Unlock()
	if err := j.Err(); err != nil {
		return err
	}
	if err := j.checkpointLocked(); err != nil {
		return j.fail(err)
	}
	return nil
}

// Shutdown is the clean unmount: it stops the background committer,
// commits, checkpoints everything, marks the log empty (s_start 0) and
// clears DIRTY in the journal dinode. It fails when a handle is open.
// After an abort it only stops the committer and returns the abort error:
// the log stays for the next mount's replay.
func (j *Journal) Shutdown() error {
	j.mu.Lock()
	if j.running.open > 0 {
		n := j.running.open
		j.mu.Unlock()
		return fmt.Errorf("%s: shutdown with %d handles open", j.name, n)
	}
	j.shutdown = true // no new handle may slip in after the last commit
	j.mu.Unlock()
	j.stopLoop()
	if j.loopDone != nil {
		<-j.loopDone
	}
	if err := j.Checkpoint(); err != nil {
		return err
	}
	j.ioMu.Lock()
	defer j.ioMu.Unlock()
	j.mu.Lock()
	next := j.running.seq
	j.mu.Unlock()
	if err := j.jf.setSB(0, next); err != nil {
		return j.fail(err)
	}
	if err := j.c.Device().Sync(); err != nil {
		return j.fail(err)
	}
	if _, err := j.jf.setDinodeFlags(func(ij *ondisk.Journal) { ij.Flags &^= ondisk.JournalDirty }); err != nil {
		return j.fail(err)
	}
	return nil
}

// Abandon stops the background committer without committing,
// checkpointing or touching the disk: what a crash leaves (tests), and what
// a mount layer does with a journal that aborted. The journal accepts no
// more handles. Use Shutdown to unmount.
func (j *Journal) Abandon() {
	j.mu.Lock()
	j.shutdown = true
	j.mu.Unlock()
	j.stopLoop()
	if j.loopDone != nil {
		<-j.loopDone
	}
}

// pin takes a journal reference on b, pinning it in the cache on the first.
// Called under mu.
func (j *Journal) pin(b *metacache.Buffer) {
	if p, ok := j.pins[b.Blkno]; ok {
		p.n++
		return
	}
	j.pins[b.Blkno] = &pinRef{b: b, n: 1}
	j.c.Pin(b)
}

// unpin drops a journal reference on blkno. Called under mu.
func (j *Journal) unpin(blkno uint64) {
	p, ok := j.pins[blkno]
	if !ok {
		return
	}
	if p.n--; p.n == 0 {
		delete(j.pins, blkno)
		j.c.Unpin(p.b)
	}
}
