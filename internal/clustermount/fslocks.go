package clustermount

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"o2go/internal/base"
	"o2go/internal/dlm"
	"o2go/internal/fs/lockglue"
	"o2go/internal/ondisk"
)

// The fs_locks view: the cluster locks of each clustered mount as the file
// system on this node sees them (the counterpart of debugfs.ocfs2's
// fs_locks), joined with what the lock manager knows of the same
// resources (dlm_locks): the level this node's lock is granted, a request
// under way and, where this node masters the resource, the other nodes
// queued on it. Following a hang (ocfs2(7), DLM DEBUGGING) starts here:
// the busy locks (-B) of the node whose processes hang, then the master's
// dlm_locks of each, then fs_locks on the holder.

// FsLocksParams are the parameters of the fs.locks control method.
type FsLocksParams struct {
	// Mount names one mount: its mount point or device (absolute paths),
	// or its UUID (with or without "UUID="). Empty: every mount.
	Mount string `json:"mount,omitempty"`
	// Busy keeps only the busy locks (debugfs.ocfs2 fs_locks -B).
	Busy bool `json:"busy,omitempty"`
}

// MountLocks are the file-system locks of one clustered mount.
type MountLocks struct {
	Device     string      `json:"device"`
	Mountpoint string      `json:"mountpoint"`
	UUID       string      `json:"uuid"` // the lock domain
	Slot       int         `json:"slot"`
	Node       base.NodeID `json:"node"` // this node
	Locks      []FsLock    `json:"locks"`
}

// FsLock is one file-system lock of a mount on this node.
type FsLock struct {
	Name       string `json:"name"`  // printable (ondisk.LockName.String)
	Type       string `json:"type"`  // decoded: Super, Open, ...
	Inode      uint64 `json:"inode"` // the block number in the name: the inode, 2 for the superblock
	Generation uint32 `json:"generation,omitempty"`
	// Mode is the level this node holds as the file system sees it (NL,
	// PR, EX), "none" when it holds nothing. An open lock whose request
	// is under way shows the lock manager's granted level instead.
	Mode string `json:"mode"`
	// Holders are the local users: for the volume, inode, refcount and
	// rename locks, the operations inside them; for an open lock, the
	// open handles and kernel uses of the inode (while a request is under
	// way, every use counted, the one waiting included); for a flock, 1
	// while its handle holds it; for a byte-range mutex, the fcntl(2)
	// requests asking for it or holding it.
	Holders int `json:"holders"`
	// Handle is the open file handle a flock (F) belongs to: each handle
	// that took a flock has its own lock, listed until the handle is
	// released.
	Handle uint64 `json:"handle,omitempty"`
	// PID is, for a flock held or asked for, the process that asked (the
	// last one, when several share the handle), as the kernel reports it.
	PID uint32 `json:"pid,omitempty"`
	// Busy: a request is under way (debugfs.ocfs2's Busy flag): a lock,
	// a conversion or an unlock at the lock manager, a downconvert, or an
	// open lock's request or delete claim.
	Busy bool `json:"busy"`
	// Pending is the action under way: lock, convert, downconvert,
	// unlock, cancel; Requested the level it asks for.
	Pending   string `json:"pending_action,omitempty"`
	Requested string `json:"requested_mode,omitempty"`
	// Blocked: another node waits for BlockingMode, which this node's
	// level excludes; the downconvert follows the last local user. A
	// flock is not given up for it: it stays until its process unlocks
	// it or closes the file. Open locks take no blocking notifications (a
	// delete never waits for them) and are never blocked.
	Blocked      bool   `json:"blocked"`
	BlockingMode string `json:"blocking_mode,omitempty"`
	// Master is the node that masters the resource; Waiters the other
	// nodes' requests queued there, known when this node is the master.
	Master       base.NodeID `json:"master"`
	MasteredHere bool        `json:"mastered_here"`
	Waiters      []Waiter    `json:"waiters,omitempty"`
	// Stats count what the lock did since the mount, or for a flock since
	// its handle took its first one (not for open locks and byte-range
	// mutexes, which keep no counts).
	Stats *lockglue.Stats `json:"stats,omitempty"`
	// Untracked: this node holds the resource in the volume's lock domain
	// but the file system does not know it: a lock taken with o2go lock
	// in the domain, or a leaked one.
	Untracked bool `json:"untracked,omitempty"`
}

// Waiter is another node's request queued at the master.
type Waiter struct {
	Node      base.NodeID `json:"node"`
	Queue     string      `json:"queue"` // Converting, Blocked, Fresh (during recovery)
	Mode      dlm.Mode    `json:"mode"`  // granted ("-": none yet)
	Requested dlm.Mode    `json:"requested"`
}

// IsBusy says whether the lock is in use or in motion: local users, a
// request or downconvert under way, another node blocked on it (fs_locks
// -B).
func (l FsLock) IsBusy() bool {
	return l.Holders > 0 || l.Busy || l.Blocked || l.Pending != ""
}

// ErrNoSuchMount is fs.locks' answer when no clustered mount matches.
var ErrNoSuchMount = errors.New("no such clustered mount")

// FsLocks returns the file-system locks of the node's clustered mounts (in
// mount point order), or of the one p names.
func (mg *Manager) FsLocks(p FsLocksParams) ([]MountLocks, error) {
	mounts := mg.Mounts()
	slices.SortFunc(mounts, func(a, b *Mount) int { return strings.Compare(a.Mountpoint, b.Mountpoint) })
	if p.Mount != "" {
		// A path inside a mount is never stat'ed: this process serves it,
		// and a hung mount must not hang its own debugging.
		clean := filepath.Clean(p.Mount)
		statOK := !slices.ContainsFunc(mounts, func(mt *Mount) bool {
			return clean == mt.Mountpoint || strings.HasPrefix(clean, mt.Mountpoint+"/")
		})
		var one []*Mount
		for _, mt := range mounts {
			if mt.names(p.Mount, statOK) {
				one = append(one, mt)
			}
		}
		if len(one) == 0 {
			return nil, noSuchMount(p.Mount, mounts)
		}
		mounts = one
	}
	out := []MountLocks{}
	for _, mt := range mounts {
		ml := mt.fsLocks()
		if p.Busy {
			ml.Locks = slices.DeleteFunc(ml.Locks, func(l FsLock) bool { return !l.IsBusy() })
		}
		out = append(out, ml)
	}
	return out, nil
}

func noSuchMount(arg string, mounts []*Mount) error {
	if len(mounts) == 0 {
		return fmt.Errorf("%w: %s (this node has no clustered mount)", ErrNoSuchMount, arg)
	}
	var have []string
	for _, mt := range mounts {
		have = append(have, fmt.Sprintf("%s on %s", mt.Device, mt.Mountpoint))
	}
	return fmt.Errorf("%w: %s (this node mounts %s)", ErrNoSuchMount, arg, strings.Join(have, ", "))
}

// names says whether arg names the mount: its mount point, its device
// (with statOK, the same file under another path too) or its UUID.
func (mt *Mount) names(arg string, statOK bool) bool {
	if u, ok := strings.CutPrefix(arg, "UUID="); ok || !strings.Contains(arg, "/") {
		if !ok {
			u = arg
		}
		return strings.EqualFold(strings.ReplaceAll(u, "-", ""), mt.UUID)
	}
	clean := filepath.Clean(arg)
	if clean == mt.Mountpoint || clean == mt.Device {
		return true
	}
	if !statOK {
		return false
	}
	a, err := os.Stat(clean)
	if err != nil {
		return false
	}
	b, err := os.Stat(mt.Device)
	return err == nil && os.SameFile(a, b)
}

// fsLocks gathers the mount's locks: the volume lock first, then the
// inode, refcount, rename, open, flock and byte-range locks and any other
// lock this node holds in the domain, by name.
func (mt *Mount) fsLocks() MountLocks {
	self := base.NodeID(mt.mg.Agent.Self().Number)
	ml := MountLocks{Device: mt.Device, Mountpoint: mt.Mountpoint, UUID: mt.UUID, Slot: mt.Slot, Node: self}
	vol := mt.lock.State()

	// The open and file locks and the lock manager's view, read
	// together: no entry comes or goes meanwhile, so a lock the lock
	// manager shows without an entry is not the file system's (an entry
	// exists from before its lock is requested until after it is
	// released). Nobody takes openLocks.mu or fileLocks.mu after the lock
	// manager's lock, nor waits on an open lock's mu under it, nor takes
	// openLocks.mu under fileLocks.mu.
	var (
		opens   []openLockState
		flocks  []flockState
		mutexes map[uint64]int
	)
	ol, _ := mt.m.FS.W.Opens.(*openLocks)
	if ol != nil {
		ol.mu.Lock()
	}
	fl := mt.locks
	if fl != nil {
		fl.mu.Lock()
	}
	scanBefore := mt.scanSeq.Load()
	res, err := mt.mg.DLM.Locks(mt.UUID, "")
	if err != nil {
		res = nil // the domain is gone: the mount is ending
	}
	scanAfter := mt.scanSeq.Load()
	if fl != nil {
		flocks, mutexes = fl.snapshot()
		fl.mu.Unlock()
	}
	if ol != nil {
		opens = ol.snapshot()
		ol.mu.Unlock()
	}
	byName := map[string]*dlm.ResourceState{}
	for i := range res {
		byName[res[i].Name] = &res[i]
	}

	// The volume lock, then the inode, refcount and rename locks.
	var rest []FsLock
	glued := func(st lockglue.LockState) FsLock {
		l := FsLock{Mode: st.Mode, Holders: st.Users, Blocked: st.Blocked, BlockingMode: st.Wanted}
		stats := st.Stats
		l.Stats = &stats
		if st.Blocked {
			// Blocked lasts until the downconvert is done.
			l.Busy, l.Pending, l.Requested = true, "downconvert", downTo(st.Wanted)
		}
		r := byName[st.Name]
		own, others := splitLocal(r, st.Mode, st.Blocked)
		if len(others) > 0 {
			rest = append(rest, FsLock{Mode: grantedMode(others), Untracked: true}.decorate(st.Name, r, others, self))
		}
		delete(byName, st.Name)
		return l.decorate(st.Name, r, own, self)
	}
	ml.Locks = append(ml.Locks, glued(vol))
	if mt.table != nil {
		for _, st := range mt.table.states() {
			rest = append(rest, glued(st))
		}
	}

	for _, o := range opens {
		name := openLockName(o.ino)
		l := FsLock{Holders: o.holders, Busy: o.busy, Mode: "none"}
		if o.held {
			l.Mode = lockglue.PR.String()
		}
		r := byName[name]
		own, others := splitLocal(r, l.Mode, o.busy)
		if o.busy {
			// Its state cannot be read without waiting: the lock
			// manager's grant says the level.
			l.Mode = grantedMode(own)
		}
		rest = append(rest, l.decorate(name, r, own, self))
		if len(others) > 0 {
			rest = append(rest, FsLock{Mode: grantedMode(others), Untracked: true}.decorate(name, r, others, self))
		}
		delete(byName, name)
	}
	rest = append(rest, flockRows(flocks, byName, self)...)
	rest = append(rest, mutexRows(mutexes, byName, self)...)
	if name := orphanScanLockName(); byName[name] != nil && scanned(scanBefore, scanAfter) {
		// The scan's lock: EX, taken without waiting, one user while the
		// slots' orphan directories are looked through. Only one lock of
		// this node's can be the scan's.
		r := byName[name]
		own, others := splitLocal(r, dlm.ModeEX.String(), false)
		if len(own) > 0 {
			l := FsLock{Mode: grantedMode(own), Holders: 1}
			rest = append(rest, l.decorate(name, r, own, self))
		}
		if len(others) > 0 {
			rest = append(rest, FsLock{Mode: grantedMode(others), Untracked: true}.decorate(name, r, others, self))
		}
		delete(byName, name)
	}
	for name, r := range byName {
		if len(r.Local) == 0 {
			continue // known here as master or cached only
		}
		rest = append(rest, FsLock{Mode: grantedMode(r.Local), Untracked: true}.decorate(name, r, r.Local, self))
	}
	slices.SortStableFunc(rest, func(a, b FsLock) int { return strings.Compare(a.Name, b.Name) })
	ml.Locks = append(ml.Locks, rest...)
	return ml
}

// splitLocal tells the file system's lock among this node's locks on r
// (it has one at most) from the others (o2go lock in the volume's domain,
// or a leak): its lock is the one granted the level it holds (mode),
// else (a change it has not recorded yet) the one the lock manager shows
// a request on, else the first.
func splitLocal(r *dlm.ResourceState, mode string, busy bool) (own, others []dlm.LocalLock) {
	if r == nil {
		return nil, nil
	}
	pick := -1
	if mode != "none" {
		pick = slices.IndexFunc(r.Local, func(x dlm.LocalLock) bool { return x.Mode.String() == mode })
	}
	if pick < 0 && (busy || mode != "none") {
		// A grant or downconvert the file system has not recorded yet.
		pick = slices.IndexFunc(r.Local, func(x dlm.LocalLock) bool { return x.Pending != dlm.OpNone })
		if pick < 0 && len(r.Local) > 0 {
			pick = 0
		}
	}
	for i, x := range r.Local {
		if i == pick {
			own = append(own, x)
		} else {
			others = append(others, x)
		}
	}
	return own, others
}

// openLockState is one open lock entry as fs.locks reads it.
type openLockState struct {
	ino     uint64
	holders int
	held    bool // PR held (when not busy)
	busy    bool // a request, release or claim under way: its mutex is taken
}

// snapshot reads every entry without waiting: an entry whose mutex is
// taken is busy, and then counts its references as holders. Under o.mu.
func (o *openLocks) snapshot() []openLockState {
	out := make([]openLockState, 0, len(o.locks))
	for ino, l := range o.locks {
		s := openLockState{ino: ino, holders: l.refs}
		if l.mu.TryLock() {
			s.holders, s.held = l.holds, l.held != nil
			l.mu.Unlock()
		} else {
			s.busy = true
		}
		out = append(out, s)
	}
	return out
}

// flockState is one handle's flock as fs.locks reads it.
type flockState struct {
	fh, ino   uint64
	id        dlm.LockID // with held: the lock manager's lock
	held      bool
	mode      dlm.Mode
	pending   string
	requested dlm.Mode
	blocked   bool
	blocking  dlm.Mode
	pid       uint32
	stats     lockglue.Stats
}

// snapshot reads the flock of every handle (by handle) and how many
// fcntl(2) requests use each inode's byte-range mutex. Under fl.mu.
func (fl *fileLocks) snapshot() ([]flockState, map[uint64]int) {
	out := make([]flockState, 0, len(fl.flocks))
	for fh, h := range fl.flocks {
		s := flockState{fh: fh, ino: h.ino, held: h.lock != nil, mode: h.mode, pending: h.pending,
			requested: h.requested, blocked: h.blocked, blocking: h.blocking, pid: h.pid, stats: h.stats}
		if h.lock != nil {
			s.id = h.lock.ID
		}
		s.stats.Acquires = s.stats.PR.Gets + s.stats.EX.Gets
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b flockState) int { return cmp.Compare(a.fh, b.fh) })
	return out, maps.Clone(fl.mutexes)
}

// flockRows are the flock rows, one per handle, each with its lock at the
// lock manager: the one with its ID, or for a first request under way
// (whose ID the handle learns with the grant) one of the resource's
// pending requests. What the handles do not account for on a resource is
// listed as untracked. The resources are taken out of byName.
func flockRows(flocks []flockState, byName map[string]*dlm.ResourceState, self base.NodeID) []FsLock {
	var out []FsLock
	byRes := map[string][]flockState{}
	var names []string
	for _, h := range flocks {
		name := flockName(h.ino)
		if byRes[name] == nil {
			names = append(names, name)
		}
		byRes[name] = append(byRes[name], h)
	}
	for _, name := range names {
		r := byName[name]
		delete(byName, name)
		var locals []dlm.LocalLock
		if r != nil {
			locals = slices.Clone(r.Local)
		}
		take := func(match func(dlm.LocalLock) bool) []dlm.LocalLock {
			i := slices.IndexFunc(locals, match)
			if i < 0 {
				return nil
			}
			x := locals[i]
			locals = slices.Delete(locals, i, i+1)
			return []dlm.LocalLock{x}
		}
		own := make([][]dlm.LocalLock, len(byRes[name]))
		for i, h := range byRes[name] {
			if h.held {
				own[i] = take(func(x dlm.LocalLock) bool { return x.ID == h.id })
			}
		}
		for i, h := range byRes[name] {
			if !h.held && h.pending == "lock" {
				own[i] = take(func(x dlm.LocalLock) bool { return x.Pending == dlm.OpLock })
			}
		}
		for i, h := range byRes[name] {
			l := FsLock{Mode: "none", Handle: h.fh, Stats: &h.stats}
			if h.held || h.pending != "" {
				l.PID = h.pid
			}
			if h.held {
				l.Mode, l.Holders = h.mode.String(), 1
			}
			if h.held && h.blocked && !dlm.Compatible(h.mode, h.blocking) {
				l.Blocked, l.BlockingMode = true, h.blocking.String()
			}
			if h.pending != "" {
				l.Busy, l.Pending = true, h.pending
				if h.pending != "unlock" {
					l.Requested = h.requested.String()
				}
			}
			out = append(out, l.decorate(name, r, own[i], self))
		}
		if len(locals) > 0 {
			out = append(out, FsLock{Mode: grantedMode(locals), Untracked: true}.decorate(name, r, locals, self))
		}
	}
	return out
}

// mutexRows are the rows of the byte-range mutexes in use (n fcntl(2)
// requests on inode ino ask for it or hold it: as many of this node's
// locks on it are theirs). The resources are taken out of byName.
func mutexRows(mutexes map[uint64]int, byName map[string]*dlm.ResourceState, self base.NodeID) []FsLock {
	var out []FsLock
	for _, ino := range slices.Sorted(maps.Keys(mutexes)) {
		n := mutexes[ino]
		name := posixMutexName(ino)
		r := byName[name]
		delete(byName, name)
		var own, others []dlm.LocalLock
		if r != nil {
			k := min(n, len(r.Local))
			own, others = r.Local[:k], r.Local[k:]
		}
		out = append(out, FsLock{Mode: grantedMode(own), Holders: n}.decorate(name, r, own, self))
		if len(others) > 0 {
			out = append(out, FsLock{Mode: grantedMode(others), Untracked: true}.decorate(name, r, others, self))
		}
	}
	return out
}

// decorate names l and adds the lock manager's view of the resource: its
// master, the request under way on local (this node's locks that l
// stands for), the other nodes queued at the master.
func (l FsLock) decorate(name string, r *dlm.ResourceState, local []dlm.LocalLock, self base.NodeID) FsLock {
	l.Name, l.Type = name, "unknown"
	if n, err := ondisk.ParseLockName(name); err == nil {
		l.Name, l.Type, l.Inode, l.Generation = n.String(), n.Type.Name(), n.Blkno, n.Generation
	} else if ino, ok := parsePosixMutexName(name); ok {
		l.Type, l.Inode = "ByteRange", ino
	} else {
		l.Name = fmt.Sprintf("%q", name)
	}
	if r == nil {
		return l
	}
	l.Master, l.MasteredHere = r.Master, r.Mastered
	for _, x := range local {
		if x.Pending == dlm.OpNone {
			continue
		}
		l.Busy = true
		l.Pending, l.Requested = x.Pending.String(), x.Requested.String()
		if x.Pending == dlm.OpConvert && x.Requested < x.Mode {
			l.Pending = "downconvert"
		}
		if x.Pending == dlm.OpUnlock {
			l.Requested = ""
		}
	}
	for _, q := range r.Queues {
		if q.Node == self || q.Queue == "Granted" {
			continue
		}
		l.Waiters = append(l.Waiters, Waiter{Node: q.Node, Queue: q.Queue, Mode: q.Mode, Requested: q.Requested})
	}
	return l
}

// parsePosixMutexName returns the inode of a byte-range mutex's name
// (posixMutexName).
func parsePosixMutexName(name string) (uint64, bool) {
	hex, ok := strings.CutPrefix(name, "o2go-posix:")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	ino, err := strconv.ParseUint(hex, 16, 64)
	return ino, err == nil
}

// grantedMode is the highest level locks are granted, "none" when none
// is.
func grantedMode(locks []dlm.LocalLock) string {
	best := dlm.ModeNone
	for _, x := range locks {
		best = max(best, x.Mode)
	}
	if best == dlm.ModeNone {
		return "none"
	}
	return best.String()
}

// downTo is the level a blocked lock goes down to for a node waiting for
// wanted: PR stays compatible with PR, anything else needs NL.
func downTo(wanted string) string {
	if wanted == lockglue.PR.String() {
		return lockglue.PR.String()
	}
	return lockglue.NL.String()
}
