package heartbeat

import (
	"fmt"
	"time"

	"o2go/internal/base"
	"o2go/internal/ondisk"
)

// LiveThreshold is how many changed samples make a dead node live
// (O2HB_LIVE_THRESHOLD).
const LiveThreshold = 2

// steadyIterations is how many clean iterations make a region steady
// (o2hb's hr_steady_iterations, O2HB_LIVE_THRESHOLD + 1): by then every node
// that heartbeats has been seen changing twice.
const steadyIterations = LiveThreshold + 1

// RegionConfig configures one heartbeat region.
type RegionConfig struct {
	Name       string // the region's name (the volume UUID), for messages
	Self       base.NodeID
	Nodes      base.NodeMap // the configured nodes; only their slots are read
	Threshold  int          // O2CB_HEARTBEAT_THRESHOLD
	Interval   time.Duration
	SectorSize int
	Generation uint64 // this node's random, non-zero generation in the region
	KillArea   bool   // the region has a kill area and kill blocks are on
}

// DeadTime is (Threshold-1) x Interval.
func (c RegionConfig) DeadTime() time.Duration {
	return time.Duration(c.Threshold-1) * c.Interval
}

// ReadPlan is the read of one iteration: the heartbeat slots of nodes
// First..Last, and their kill blocks when Kill is set.
type ReadPlan struct {
	First, Last base.NodeID
	Kill        bool
}

// Count is the number of slots to read.
func (p ReadPlan) Count() int { return int(p.Last) - int(p.First) + 1 }

// WritePlan is the write of one iteration: this node's heartbeat sector,
// and its kill block when it changed (nil otherwise).
type WritePlan struct {
	HB   []byte
	Kill []byte
}

// SlotEvent is a node coming to life or dying in this region.
type SlotEvent struct {
	Node       base.NodeID
	Up         bool
	Generation uint64
	Reason     string // why a node went down
}

// RegionReady is what the region reports after an iteration's read.
type RegionReady struct {
	Events []SlotEvent
	Notes  []string
	// Conflict is set when another node heartbeats in this node's slot
	// (two nodes configured with the same number): the region must not be
	// used.
	Conflict string
}

type slot struct {
	live         bool
	everRead     bool
	firstSeenAt  time.Duration // when this node first read the slot
	lastSeq      uint64
	lastGen      uint64
	changed      int
	equal        int
	changeSeenAt time.Duration // end of the read that last saw a change
}

type phase int

const (
	phaseIdle phase = iota
	phaseReading
	phaseWriting
)

// Region is the pure liveness machine of one heartbeat region: o2hb's
// per-region thread (fs/ocfs2/cluster/heartbeat.c). Every Interval it reads
// the configured nodes' slots, checks its own slot, writes its own block and
// updates each node's state: a dead node is live after LiveThreshold changed
// samples; a live node is dead after Threshold unchanged samples (at least
// DeadTime after the read that saw its last change), or at once when its
// generation changes. A bad checksum is a missed sample.
//
// One iteration: Begin -> the driver reads -> ReadDone -> the driver writes
// -> WriteDone. Time enters as the now arguments; wall-clock milliseconds
// (for hb_seq) as ReadDone's wallMs.
type Region struct {
	cfg   RegionConfig
	slots [Slots]slot
	plan  ReadPlan
	phase phase
	iter  int

	startedAt   time.Duration // start of the current/last iteration
	due         time.Duration // when the next iteration is due
	started     bool
	lastReadAt  time.Duration // start of the last completed read
	lastReadEnd time.Duration
	haveRead    bool

	firstOwn   *ondisk.HeartbeatBlock // own slot as read in the first iteration
	lastSeq    uint64                 // hb_seq of our last write
	wrote      bool
	ownOK      bool // own slot matched our last write, in this iteration's read
	writeStart time.Duration
	written    bool          // the last write completed; its start is writeStart
	leaseBase  time.Duration // start of the last write seen on disk by a later read
	leased     bool

	steadyCount int
	steady      bool
	unresolved  base.NodeMap
	killPending []byte
	kill        [Slots]*KillBlock
	killErr     [Slots]string
	ready       RegionReady
	stopped     bool
}

// NewRegion returns a region about to start heartbeating.
func NewRegion(cfg RegionConfig) *Region {
	r := &Region{cfg: cfg}
	nodes := cfg.Nodes
	nodes.Add(cfg.Self)
	r.plan = ReadPlan{First: nodes.Lowest(), Kill: cfg.KillArea}
	for _, n := range nodes.Nodes() {
		r.plan.Last = n
	}
	return r
}

// Config returns the region's configuration.
func (r *Region) Config() RegionConfig { return r.cfg }

func (r *Region) note(format string, args ...any) {
	r.ready.Notes = append(r.ready.Notes, fmt.Sprintf("o2hb: region %s: "+format, append([]any{r.cfg.Name}, args...)...))
}

// Due is when the next iteration may begin. Iterations keep to a fixed
// cadence, one per interval from the first (as o2hb sleeps the interval
// minus the time an iteration took), so that a driver that checks only now
// and then does not stretch the interval — and with it the dead time.
func (r *Region) Due() time.Duration {
	if !r.started {
		return 0
	}
	return r.due
}

// Busy reports whether an iteration is in progress.
func (r *Region) Busy() bool { return r.phase != phaseIdle }

// Begin starts an iteration when the region is idle and one is due; it
// returns what to read.
func (r *Region) Begin(now time.Duration) (ReadPlan, bool) {
	if r.stopped || r.phase != phaseIdle || (r.started && now < r.Due()) {
		return ReadPlan{}, false
	}
	if !r.started {
		r.due = now
	}
	r.started, r.startedAt = true, now
	r.due += r.cfg.Interval
	if r.due <= now {
		r.due = now + r.cfg.Interval // late by a whole interval: start a new cadence
	}
	r.phase = phaseReading
	return r.plan, true
}

// ReadDone gives the iteration's read: hb[i] is the slot of node
// plan.First+i, kill[i] its kill block (nil when not read). It returns the
// write to make, or false when nothing is written this iteration (the first
// iteration only watches its own slot; a failed read writes nothing, as in
// o2hb; a conflict stops the region).
func (r *Region) ReadDone(now time.Duration, wallMs uint64, hb, kill [][]byte, err error) (WritePlan, bool) {
	if r.phase != phaseReading {
		return WritePlan{}, false
	}
	readStart := r.startedAt
	if err != nil {
		r.phase = phaseIdle
		r.note("read of the heartbeat slots failed: %v", err)
		return WritePlan{}, false
	}
	if len(hb) != r.plan.Count() {
		r.phase = phaseIdle
		r.note("read returned %d slots, want %d", len(hb), r.plan.Count())
		return WritePlan{}, false
	}
	// A gap in this node's own reads (its disk or the node itself stalled):
	// it has not been watching, so it restarts counting missed beats.
	if r.haveRead && readStart-r.lastReadAt > 2*r.cfg.Interval {
		for i := range r.slots {
			r.slots[i].equal = 0
			r.slots[i].changeSeenAt = now
		}
	}
	r.haveRead, r.lastReadAt, r.lastReadEnd = true, readStart, now
	r.iter++

	own := r.decodeOwn(hb)
	r.ownOK = r.checkOwn(own)
	if r.ownOK && r.written {
		// The last write is on disk: it renews the lease from when it began.
		r.leaseBase, r.leased = r.writeStart, true
	}
	r.written = false
	if r.iter == 1 {
		r.firstOwn = own
	} else if r.iter == 2 && !r.wrote && own != nil && r.firstOwn != nil &&
		own.Seq != r.firstOwn.Seq && own.Generation != 0 && own.Generation != r.cfg.Generation {
		r.ready.Conflict = fmt.Sprintf("another node is heartbeating in node %d's slot on region %s (generation %016x): two nodes use number %d",
			r.cfg.Self, r.cfg.Name, own.Generation, r.cfg.Self)
		r.stopped = true
		r.phase = phaseIdle
		return WritePlan{}, false
	}

	changed := false
	for i, sector := range hb {
		n := r.plan.First + base.NodeID(i)
		if r.cfg.Nodes.Has(n) || n == r.cfg.Self {
			if r.checkSlot(now, n, sector) {
				changed = true
			}
		}
	}
	if r.cfg.KillArea && kill != nil {
		for i, sector := range kill {
			n := r.plan.First + base.NodeID(i)
			if sector == nil {
				continue
			}
			k, err := DecodeKillBlock(sector, n)
			if err != nil {
				if r.killErr[n] != err.Error() {
					r.note("%v", err)
					r.killErr[n] = err.Error()
				}
				k = nil
			} else {
				r.killErr[n] = ""
			}
			r.kill[n] = k
		}
	}
	if r.iter == 1 {
		r.phase = phaseIdle
		return WritePlan{}, false
	}
	if changed || !r.ownOK {
		r.steadyCount = 0
	}
	r.resolve(now)

	seq := wallMs
	if seq <= r.lastSeq {
		seq = r.lastSeq + 1
	}
	blk := ondisk.HeartbeatBlock{Seq: seq, Node: uint8(r.cfg.Self), Generation: r.cfg.Generation, DeadMs: r.deadMs()}
	sector := make([]byte, r.cfg.SectorSize)
	if err := blk.Encode(sector); err != nil {
		r.phase = phaseIdle
		r.note("encoding the heartbeat block: %v", err)
		return WritePlan{}, false
	}
	r.lastSeq = seq
	r.wrote = true
	r.writeStart = now
	r.phase = phaseWriting
	w := WritePlan{HB: sector, Kill: r.killPending}
	r.killPending = nil
	return w, true
}

func (r *Region) deadMs() uint32 {
	return uint32(int64(r.cfg.Threshold) * r.cfg.Interval.Milliseconds())
}

func (r *Region) decodeOwn(hb [][]byte) *ondisk.HeartbeatBlock {
	i := int(r.cfg.Self) - int(r.plan.First)
	if i < 0 || i >= len(hb) {
		return nil
	}
	if ondisk.VerifyHeartbeat(hb[i]) != nil {
		return nil
	}
	b, err := ondisk.DecodeHeartbeatBlock(hb[i])
	if err != nil {
		return nil
	}
	return b
}

// checkOwn is o2hb_check_own_slot: does our slot hold what we last wrote?
func (r *Region) checkOwn(own *ondisk.HeartbeatBlock) bool {
	if !r.wrote {
		return false
	}
	if own != nil && own.Seq == r.lastSeq && own.Generation == r.cfg.Generation && base.NodeID(own.Node) == r.cfg.Self {
		return true
	}
	switch {
	case own == nil:
		r.note("node %d's own slot holds a bad checksum (lost or torn write?)", r.cfg.Self)
	case base.NodeID(own.Node) != r.cfg.Self:
		r.note("Another node is heartbeating on device: expected(%d:0x%x, 0x%x), ondisk(%d:0x%x, 0x%x)",
			r.cfg.Self, r.cfg.Generation, r.lastSeq, own.Node, own.Generation, own.Seq)
	case own.Generation != r.cfg.Generation:
		r.note("Heartbeat generation mismatch on device: expected(%d:0x%x, 0x%x), ondisk(%d:0x%x, 0x%x)",
			r.cfg.Self, r.cfg.Generation, r.lastSeq, own.Node, own.Generation, own.Seq)
	default:
		r.note("Heartbeat sequence mismatch on device: expected(%d:0x%x, 0x%x), ondisk(%d:0x%x, 0x%x)",
			r.cfg.Self, r.cfg.Generation, r.lastSeq, own.Node, own.Generation, own.Seq)
	}
	return false
}

// checkSlot is o2hb_check_slot for node n; it reports whether n's state changed.
func (r *Region) checkSlot(now time.Duration, n base.NodeID, sector []byte) bool {
	s := &r.slots[n]
	if ondisk.VerifyHeartbeat(sector) != nil {
		if !s.live {
			return false
		}
		r.note("node %d has written a bad crc", n)
		s.equal++
		return r.judge(now, n, false)
	}
	blk, err := ondisk.DecodeHeartbeatBlock(sector)
	if err != nil {
		return false
	}
	if !s.everRead || s.lastSeq != blk.Seq {
		if s.everRead {
			s.changed++
			s.changeSeenAt = now
		}
	} else {
		s.equal++
	}
	if !s.everRead {
		s.firstSeenAt, s.changeSeenAt = now, now
	}
	s.everRead = true
	s.lastSeq = blk.Seq
	genChanged := s.lastGen != blk.Generation
	if genChanged {
		s.equal = 0
	}
	s.lastGen = blk.Generation
	if !s.live && s.changed >= LiveThreshold {
		if blk.DeadMs != 0 && blk.DeadMs != r.deadMs() {
			r.note("Node %d has a dead count of %d ms, but our count is %d ms; check O2CB_HEARTBEAT_THRESHOLD and O2GO_HEARTBEAT_INTERVAL_MS",
				n, blk.DeadMs, r.deadMs())
		}
	}
	return r.judge(now, n, genChanged)
}

func (r *Region) judge(now time.Duration, n base.NodeID, genChanged bool) bool {
	s := &r.slots[n]
	if !s.live && s.changed >= LiveThreshold {
		s.live = true
		s.equal = 0
		s.changeSeenAt = now
		r.ready.Events = append(r.ready.Events, SlotEvent{Node: n, Up: true, Generation: s.lastGen})
		return true
	}
	if !s.live {
		return false
	}
	dead := s.equal >= r.cfg.Threshold && now-s.changeSeenAt >= r.cfg.DeadTime()
	if dead || genChanged {
		s.live = false
		reason := fmt.Sprintf("no heartbeat for %d iterations", s.equal)
		if genChanged {
			reason = "heartbeat generation changed"
			if s.lastGen == 0 {
				reason = "stopped heartbeating"
			}
		} else {
			s.changed = 0
		}
		r.ready.Events = append(r.ready.Events, SlotEvent{Node: n, Up: false, Generation: s.lastGen, Reason: reason})
		return true
	}
	if s.changed > 0 {
		s.changed, s.equal = 0, 0
	}
	return false
}

// WriteDone completes the iteration's write. The write renews the lease
// once the next iteration's read finds it on disk (o2hb re-arms its write
// timeout for a completed write when its slot held the previous one; o2go
// waits until the write itself is seen, so that a write the disk lost never
// counts).
func (r *Region) WriteDone(now time.Duration, err error) {
	if r.phase != phaseWriting {
		return
	}
	r.phase = phaseIdle
	if err != nil {
		r.note("write of node %d's heartbeat failed: %v", r.cfg.Self, err)
		r.steadyCount = 0
		return
	}
	r.written = true
	if r.ownOK && !r.steady {
		r.steadyCount++
		if r.steadyCount >= steadyIterations {
			r.steady = true
		}
	}
}

// Ready returns and clears the region's events and notes.
func (r *Region) Ready() RegionReady {
	rd := r.ready
	r.ready = RegionReady{}
	return rd
}

// resolve finds the slots that still hold a heartbeat of a node that is
// not live and has not been watched unchanged for a dead time: such a node
// may be alive but stalled (paused, or frozen waiting for the disk), and
// this node must not act as if it were gone.
func (r *Region) resolve(now time.Duration) {
	var u base.NodeMap
	for _, n := range r.cfg.Nodes.Nodes() {
		s := &r.slots[n]
		if n == r.cfg.Self || !s.everRead || s.live || s.lastGen == 0 {
			continue
		}
		if now-s.changeSeenAt < r.cfg.DeadTime() {
			u.Add(n)
		}
	}
	r.unresolved = u
}

// Steady reports whether the region has settled: three clean iterations
// without a membership change, so every node that heartbeats has been seen
// (o2hb's steady iterations). Once steady, a region stays steady.
func (r *Region) Steady() bool { return r.steady }

// Unresolved lists the nodes whose slot holds a heartbeat (non-zero
// generation) although they are not live, and that this node has not yet
// watched unchanged for a dead time. A node that starts must not act as if
// they were gone until they are resolved (see the package doc).
func (r *Region) Unresolved() base.NodeMap { return r.unresolved }

// Live is the set of nodes live in this region (Self included once its own
// writes are seen).
func (r *Region) Live() base.NodeMap {
	var m base.NodeMap
	for i := range r.slots {
		if r.slots[i].live {
			m.Add(base.NodeID(i))
		}
	}
	return m
}

// LastBeat is node n's heartbeat as last read: its generation and sequence
// (zeros when the slot was never read or n is not a node number). A node
// compares them across a stretch it could not read to learn whether
// another node wrote meanwhile.
func (r *Region) LastBeat(n base.NodeID) (gen, seq uint64) {
	if !n.Valid() {
		return 0, 0
	}
	return r.slots[n].lastGen, r.slots[n].lastSeq
}

// Generation is node n's heartbeat generation as last read.
func (r *Region) Generation(n base.NodeID) uint64 {
	if !n.Valid() {
		return 0
	}
	return r.slots[n].lastGen
}

// SlotInfo describes what this node knows of node n's slot.
type SlotInfo struct {
	Live       bool
	Generation uint64
	Seq        uint64
	Missed     int           // unchanged samples in a row
	LastChange time.Duration // when a change was last seen
}

// Slot returns what the region knows of node n.
func (r *Region) Slot(n base.NodeID) SlotInfo {
	if !n.Valid() {
		return SlotInfo{}
	}
	s := r.slots[n]
	return SlotInfo{Live: s.live, Generation: s.lastGen, Seq: s.lastSeq, Missed: s.equal, LastChange: s.changeSeenAt}
}

// KillBlock is node n's kill block as last read (nil: none or invalid).
func (r *Region) KillBlock(n base.NodeID) *KillBlock {
	if !n.Valid() {
		return nil
	}
	return r.kill[n]
}

// SetKillBlock queues this node's kill block for the next write.
func (r *Region) SetKillBlock(sector []byte) {
	if r.cfg.KillArea {
		r.killPending = sector
	}
}

// IOOutstanding reports how long this region's heartbeat read or write has
// been in flight (false when none is).
func (r *Region) IOOutstanding(now time.Duration) (time.Duration, bool) {
	switch r.phase {
	case phaseReading:
		return now - r.startedAt, true
	case phaseWriting:
		return now - r.writeStart, true
	}
	return 0, false
}

// Lease returns the start of the last write that renewed the lease: the
// last one a later read found on disk.
func (r *Region) Lease() (time.Duration, bool) { return r.leaseBase, r.leased }

// Health reports whether this node's reads and writes of the region have
// completed lately (within two intervals).
func (r *Region) Health(now time.Duration) (readStalled, writeStalled bool) {
	limit := 2 * r.cfg.Interval
	readStalled = !r.haveRead || now-r.lastReadEnd > limit
	writeStalled = !r.leased || now-r.leaseBase > limit+r.cfg.Interval
	return
}

// StopBlock is the block to write when the region stops cleanly: generation
// 0, which every reader takes as "this node left" (o2hb writes the same).
func (r *Region) StopBlock(wallMs uint64) []byte {
	seq := wallMs
	if seq <= r.lastSeq {
		seq = r.lastSeq + 1
	}
	blk := ondisk.HeartbeatBlock{Seq: seq, Node: uint8(r.cfg.Self), Generation: 0, DeadMs: r.deadMs()}
	sector := make([]byte, r.cfg.SectorSize)
	_ = blk.Encode(sector)
	r.stopped = true
	return sector
}
