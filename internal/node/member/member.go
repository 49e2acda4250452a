package member

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/cluster/heartbeat"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/cluster/quorum"
)

// RegionID names a heartbeat region of this node (assigned by the driver).
type RegionID int

// Config is what a Member needs to know.
type Config struct {
	Self       base.NodeID
	Nodes      base.NodeMap // the configured nodes, Self included
	Timeouts   config.Timeouts
	Mode       heartbeat.Mode
	Generation uint64 // this incarnation's random, non-zero heartbeat generation
}

// RegionSpec describes a region to add.
type RegionSpec struct {
	Name       string // the region's name: its volume UUID
	SectorSize int
	HasKill    bool // the region has a kill area
}

// ReadReq asks the driver to read a region's slots (and kill blocks).
type ReadReq struct {
	Region RegionID
	Plan   heartbeat.ReadPlan
}

// WriteReq asks the driver to write this node's heartbeat sector of a
// region, and its kill block when Kill is set.
type WriteReq struct {
	Region RegionID
	HB     []byte
	Kill   []byte
}

// Frame is a frame to send on a connection.
type Frame struct {
	Peer    base.NodeID
	Conn    cnet.ConnID
	Header  cnet.Header
	Payload []byte
}

// AckWrite is a fencing acknowledgement: this node's kill block, to write
// to a region after the latch (the one write a fenced node makes).
type AckWrite struct {
	Region RegionID
	Kill   []byte
}

// Fence says the node must fence itself now: latch, write Acks, act.
type Fence struct {
	Reason  heartbeat.FenceReason
	Message string
	Acks    []AckWrite
}

// Ready is what a Member asks the driver to do.
type Ready struct {
	Reads  []ReadReq
	Writes []WriteReq
	Stops  []WriteReq // clean-stop writes of removed regions (generation 0)
	Dials  []cnet.Dial
	Closes []cnet.Close
	Frames []Frame
	Events []quorum.Event
	Fence  *Fence
	// RegionFailures are regions that refused to start (another node
	// heartbeats in this node's slot); the driver drops them.
	RegionFailures map[RegionID]string
	Notes          []string
}

type region struct {
	steady bool // latched: the region is steady and nothing on it is unresolved
	id     RegionID
	spec   RegionSpec
	r      *heartbeat.Region
	reader bool // a read is in flight
	writer bool // a write is in flight
}

// ErrFenced, ErrFrozen, ErrSlowDisk and ErrNoLease are what MayWrite
// refuses with. ErrFrozen and ErrSlowDisk are temporary: writes wait.
var (
	ErrFenced   = errors.New("this node is fenced")
	ErrFrozen   = errors.New("the shared disk is unreachable from every node: writes wait")
	ErrSlowDisk = errors.New("this node's heartbeat I/O is overdue: writes wait until the disk answers")
	ErrNoLease  = errors.New("this node does not heartbeat on a steady region: no writes to shared disks")
)

// Member is the cluster stack of one node as a pure state machine: its
// heartbeat regions, its links to the other nodes, o2quo, the membership
// views, evictions through kill blocks, the write lease and the freeze.
// The driver (the agent in internal/node, or internal/sim) performs the I/O
// it asks for and reports the outcomes, with the time.
type Member struct {
	cfg      Config
	now      time.Duration
	wallMs   uint64
	regions  []*region
	nextID   RegionID
	links    *cnet.Links
	quo      *quorum.Quorum
	mem      *quorum.Membership
	live     base.NodeMap           // aggregate: live in some region, not fenced
	liveGen  [base.MaxNodes]uint64  // generation of each live node
	acked    map[base.NodeID]uint64 // nodes whose fencing acknowledgement we read, by generation
	orders   map[base.NodeID]uint64 // our kill orders: victim -> generation
	ordered  map[base.NodeID]time.Duration
	killSeq  uint64
	fenced   bool
	fence    *Fence
	frozen   bool
	frozenAt time.Duration
	thawBy   time.Duration // a frozen node must write again by then (0: no peer reads yet)
	// What this node saw when it froze: the live nodes, their generations
	// and every slot's last beat per region. Leaving the freeze compares
	// the first read after the stall with them (see heartbeatWhileFrozen).
	frozenLive  base.NodeMap
	frozenGen   [base.MaxNodes]uint64
	frozenBeats map[RegionID]*[base.MaxNodes][2]uint64
	// Global mode: the configured heartbeat regions by name, in order
	// (SetConfiguredRegions, and every region added), why each one this
	// node does not heartbeat on is missing, and the last lease base of
	// regions removed after they renewed the lease.
	configured []string
	missingWhy map[string]string
	lostBases  map[string]time.Duration
	ready      Ready
	msgNum     uint32
}

// New returns the member state of cfg.Self: no regions yet, listening.
func New(cfg Config) *Member {
	m := &Member{
		cfg:     cfg,
		links:   cnet.NewLinks(cnet.LinkConfigFor(cfg.Self, cfg.Nodes, cfg.Timeouts)),
		quo:     quorum.New(cfg.Self),
		mem:     quorum.NewMembership(quorum.MembershipConfig{Self: cfg.Self, Interval: cfg.Timeouts.HeartbeatInterval}),
		acked:   map[base.NodeID]uint64{},
		orders:  map[base.NodeID]uint64{},
		ordered: map[base.NodeID]time.Duration{},
	}
	m.quo.ConnUp(cfg.Self) // o2net_start_listening
	return m
}

// Config returns the member's configuration.
func (m *Member) Config() Config { return m.cfg }

func (m *Member) note(format string, args ...any) {
	m.ready.Notes = append(m.ready.Notes, fmt.Sprintf(format, args...))
}

// Ready returns and clears what the driver must do.
func (m *Member) Ready() Ready {
	r := m.ready
	m.ready = Ready{}
	return r
}

// Fenced reports whether the member decided to fence, and the decision.
func (m *Member) Fenced() (*Fence, bool) { return m.fence, m.fenced }

// SetConfiguredRegions declares, in global mode, the heartbeat regions the
// cluster is configured with, by name (the voting disks). A node heartbeats
// only while it has added a strict majority of them (heartbeat.MajorityOf),
// and its lease needs that majority too: a configured region it could not
// find or open, or that was refused or removed, counts as lost (issue 5:
// taking the majority over the regions found let a node that found one
// device of three go on alone while two others went on with the other two).
// Every region added counts as configured as well. The driver declares the
// regions before it adds any; in local mode they are ignored.
func (m *Member) SetConfiguredRegions(names []string) {
	for _, n := range names {
		m.configure(n)
	}
}

func (m *Member) configure(name string) {
	for _, c := range m.configured {
		if c == name {
			return
		}
	}
	m.configured = append(m.configured, name)
}

// RegionMissing records why a configured region is not in use on this node
// (not found, refused when opened): what MissingRegions shows.
func (m *Member) RegionMissing(name, why string) {
	if m.missingWhy == nil {
		m.missingWhy = map[string]string{}
	}
	m.missingWhy[name] = why
}

// MissingRegion is a configured heartbeat region this node does not
// heartbeat on, and why.
type MissingRegion struct {
	Name string
	Why  string
}

// MissingRegions lists, in global mode, the configured regions this node
// has no region for, in the order they were configured.
func (m *Member) MissingRegions() []MissingRegion {
	if m.cfg.Mode != heartbeat.Global {
		return nil
	}
	var out []MissingRegion
	for _, name := range m.configured {
		if m.regionNamed(name) != nil {
			continue
		}
		why := m.missingWhy[name]
		if why == "" {
			why = "not added"
		}
		out = append(out, MissingRegion{Name: name, Why: why})
	}
	return out
}

// RegionQuorum reports, in global mode, how many heartbeat regions are
// configured, how many this node must hold a lease on (a strict majority),
// and how many it has added. In local mode all three are the regions added.
func (m *Member) RegionQuorum() (configured, need, added int) {
	if m.cfg.Mode != heartbeat.Global {
		return len(m.regions), len(m.regions), len(m.regions)
	}
	return len(m.configured), heartbeat.MajorityOf(len(m.configured)), len(m.regions)
}

// enoughRegions: in global mode, this node has added a strict majority of
// the configured regions; before that it does not heartbeat at all (a node
// that heartbeats can be counted and waited for by others, but could never
// become steady or hold a lease).
func (m *Member) enoughRegions() bool {
	if m.cfg.Mode != heartbeat.Global {
		return true
	}
	return len(m.regions) >= heartbeat.MajorityOf(len(m.configured))
}

func (m *Member) regionNamed(name string) *region {
	for _, rg := range m.regions {
		if rg.spec.Name == name {
			return rg
		}
	}
	return nil
}

// dropRegion forgets region i; in global mode its lease base is kept: the
// writes that renewed it stay counted until they expire, like those of a
// region that stalled, so a removed region counts as lost from then on.
func (m *Member) dropRegion(i int) {
	rg := m.regions[i]
	m.regions = append(m.regions[:i], m.regions[i+1:]...)
	if m.cfg.Mode != heartbeat.Global {
		return
	}
	if b, ok := rg.r.Lease(); ok {
		if m.lostBases == nil {
			m.lostBases = map[string]time.Duration{}
		}
		if old, had := m.lostBases[rg.spec.Name]; !had || b > old {
			m.lostBases[rg.spec.Name] = b
		}
	}
}

// AddRegion starts heartbeating on a region (in global mode, once a strict
// majority of the configured regions is added).
func (m *Member) AddRegion(now time.Duration, spec RegionSpec) RegionID {
	m.now = now
	if m.cfg.Mode == heartbeat.Global {
		m.configure(spec.Name)
	}
	m.nextID++
	t := m.cfg.Timeouts
	r := heartbeat.NewRegion(heartbeat.RegionConfig{
		Name: spec.Name, Self: m.cfg.Self, Nodes: m.cfg.Nodes, Threshold: t.HeartbeatThreshold,
		Interval: t.HeartbeatInterval, SectorSize: spec.SectorSize, Generation: m.cfg.Generation,
		KillArea: spec.HasKill && t.KillBlocks(),
	})
	m.regions = append(m.regions, &region{id: m.nextID, spec: spec, r: r})
	m.note("o2hb: heartbeat started on region %s", spec.Name)
	return m.nextID
}

// RemoveRegion stops heartbeating on a region cleanly: the driver writes
// the returned stop block (generation 0) once no write of the region is in
// flight, then forgets the region.
func (m *Member) RemoveRegion(now time.Duration, wallMs uint64, id RegionID) {
	m.now, m.wallMs = now, wallMs
	for i, rg := range m.regions {
		if rg.id != id {
			continue
		}
		m.dropRegion(i)
		if !m.fenced {
			m.ready.Stops = append(m.ready.Stops, WriteReq{Region: id, HB: rg.r.StopBlock(m.wallMs)})
		}
		m.note("o2hb: heartbeat stopped on region %s", rg.spec.Name)
		m.recompute()
		return
	}
}

// Regions lists the region ids, in order of addition.
func (m *Member) Regions() []RegionID {
	var ids []RegionID
	for _, rg := range m.regions {
		ids = append(ids, rg.id)
	}
	return ids
}

// Region returns a region's machine (for status displays).
func (m *Member) Region(id RegionID) *heartbeat.Region {
	if rg := m.region(id); rg != nil {
		return rg.r
	}
	return nil
}

func (m *Member) region(id RegionID) *region {
	for _, rg := range m.regions {
		if rg.id == id {
			return rg
		}
	}
	return nil
}

// Steady reports whether every region is steady (and there is one; in
// global mode, a strict majority of the configured regions).
func (m *Member) Steady() bool {
	if len(m.regions) == 0 || !m.enoughRegions() {
		return false
	}
	for _, rg := range m.regions {
		if !m.regionSteady(rg) {
			return false
		}
	}
	return true
}

// RegionSteady reports whether one region is steady.
func (m *Member) RegionSteady(id RegionID) bool {
	rg := m.region(id)
	return rg != nil && m.regionSteady(rg)
}

// regionSteady: the region is steady, and every node with a recent
// heartbeat on it that is not live is resolved — watched unchanged for a
// dead time, or reported not live by a connected peer that is steady itself
// (it has watched longer).
func (m *Member) regionSteady(rg *region) bool {
	if rg.steady {
		return true
	}
	if !rg.r.Steady() {
		return false
	}
	for _, x := range rg.r.Unresolved().Nodes() {
		vouched := false
		for _, p := range m.links.Connected().Nodes() {
			if st, fresh := m.mem.PeerStatus(p); fresh && st.Steady && !st.Live.Has(x) {
				vouched = true
				break
			}
		}
		if !vouched {
			return false
		}
	}
	rg.steady = true
	return true
}

// Tick advances time: heartbeat iterations, links, quorum, views, evictions,
// the lease. wallMs is the wall clock in milliseconds (for hb_seq).
func (m *Member) Tick(now time.Duration, wallMs uint64) {
	m.now, m.wallMs = now, wallMs
	if m.fenced {
		return
	}
	if m.checkLease() {
		return
	}
	if m.enoughRegions() {
		for _, rg := range m.regions {
			if plan, ok := rg.r.Begin(now); ok {
				rg.reader = true
				m.ready.Reads = append(m.ready.Reads, ReadReq{Region: rg.id, Plan: plan})
			}
		}
	}
	m.links.Tick(now)
	m.drainLinks()
	m.mem.SetLinks(now, m.links.Connected(), m.links.Lost())
	m.mem.SetHealth(m.health())
	m.mem.Tick(now)
	m.drainMembership()
	m.evict()
}

// ReadDone reports a region's read: hb[i] is node plan.First+i's slot,
// kill[i] its kill block (nil when not read).
func (m *Member) ReadDone(now time.Duration, wallMs uint64, id RegionID, hb, kill [][]byte, err error) {
	m.now, m.wallMs = now, wallMs
	rg := m.region(id)
	if rg == nil || m.fenced {
		return
	}
	rg.reader = false
	w, ok := rg.r.ReadDone(now, wallMs, hb, kill, err)
	rd := rg.r.Ready()
	m.ready.Notes = append(m.ready.Notes, rd.Notes...)
	// A node whose lease ran out (and that is not frozen with its peers'
	// confirmation) must not act on what it read — commit a view, deliver
	// events — before its next tick fences it: a read that was held while
	// the node was paused, or that completed as the disk came back, arrives
	// first (simulator seed 3802 of the DLM runs). The read itself may have
	// renewed the lease: the check comes after it.
	if m.checkLease() {
		return
	}
	if rd.Conflict != "" {
		if m.ready.RegionFailures == nil {
			m.ready.RegionFailures = map[RegionID]string{}
		}
		m.ready.RegionFailures[id] = rd.Conflict
		for i, r := range m.regions {
			if r.id == id {
				m.dropRegion(i)
				break
			}
		}
		if m.cfg.Mode == heartbeat.Global {
			m.RegionMissing(rg.spec.Name, "refused: "+rd.Conflict)
		}
		m.recompute()
		return
	}
	if ok {
		rg.writer = true
		m.ready.Writes = append(m.ready.Writes, WriteReq{Region: id, HB: w.HB, Kill: w.Kill})
	}
	m.recompute()
	if rg.spec.HasKill && err == nil {
		m.readKillBlocks(rg)
	}
	m.mem.SetSteady(now, m.Steady())
	m.drainMembership()
	m.evict()
}

// WriteDone reports a region's write.
func (m *Member) WriteDone(now time.Duration, id RegionID, err error) {
	m.now = now
	rg := m.region(id)
	if rg == nil {
		return
	}
	rg.writer = false
	rg.r.WriteDone(now, err)
	m.ready.Notes = append(m.ready.Notes, rg.r.Ready().Notes...)
	if m.frozen {
		m.checkLease()
	}
}

// recompute derives the aggregate live set from the regions (and the
// fencing acknowledgements read) and tells links, quorum and membership
// about every node that came or went. A node whose generation changed (it
// restarted) goes down and comes up again as a new incarnation.
func (m *Member) recompute() {
	changed := false
	for pass := 0; pass < 2; pass++ {
		if !m.recomputeOnce() {
			break
		}
		changed = true
	}
	m.mem.SetLinks(m.now, m.links.Connected(), m.links.Lost())
	if changed {
		// Membership hears the outcome once: a restart seen as a down and
		// an up must not look like a death in between.
		m.mem.SetLive(m.now, m.live, &m.liveGen)
	}
	m.drainMembership()
}

func (m *Member) recomputeOnce() bool {
	var cand [base.MaxNodes][]uint64
	for _, rg := range m.regions {
		for _, n := range rg.r.Live().Nodes() {
			g := rg.r.Generation(n)
			if a, ok := m.acked[n]; ok && a == g {
				continue // fenced and acknowledged: dead
			}
			cand[n] = append(cand[n], g)
		}
	}
	var live base.NodeMap
	var gen [base.MaxNodes]uint64
	for n := range cand {
		gs := cand[n]
		if len(gs) == 0 {
			continue
		}
		id := base.NodeID(n)
		if m.live.Has(id) {
			for _, g := range gs {
				if g == m.liveGen[n] {
					live.Add(id)
					gen[n] = g
				}
			}
			continue // the known incarnation is gone: down now, the new one next pass
		}
		live.Add(id)
		gen[n] = gs[0]
	}
	// Forget acknowledgements of incarnations no region shows any more.
	for n, g := range m.acked {
		still := false
		for _, rg := range m.regions {
			if rg.r.Live().Has(n) && rg.r.Generation(n) == g {
				still = true
			}
		}
		if !still {
			delete(m.acked, n)
		}
	}
	downs, ups := m.live.Minus(live), live.Minus(m.live)
	if downs.Empty() && ups.Empty() {
		return false
	}
	for _, n := range downs.Nodes() {
		m.note("o2hb: node %d (generation %016x) left the heartbeat", n, m.liveGen[n])
		m.quo.HeartbeatDown(n)
		if n != m.cfg.Self {
			m.links.HeartbeatDown(m.now, n)
		}
		delete(m.orders, n)
		delete(m.ordered, n)
		m.liveGen[n] = 0
	}
	for _, n := range ups.Nodes() {
		m.liveGen[n] = gen[n]
		m.note("o2hb: node %d (generation %016x) joined the heartbeat", n, gen[n])
		m.quo.HeartbeatUp(n)
		if n != m.cfg.Self {
			m.links.HeartbeatUp(m.now, n)
		}
	}
	m.live = live
	if !downs.Empty() {
		m.writeKillBlock()
	}
	m.drainLinks()
	m.drainQuorum()
	return true
}

// Live is the set of nodes this node sees heartbeating (and not fenced).
func (m *Member) Live() base.NodeMap { return m.live }

// Generation is the live generation of node n (0 when not live).
func (m *Member) Generation(n base.NodeID) uint64 {
	if !n.Valid() || !m.live.Has(n) {
		return 0
	}
	return m.liveGen[n]
}

func (m *Member) readKillBlocks(rg *region) {
	myGen := m.cfg.Generation
	for _, w := range m.live.Nodes() {
		kb := rg.r.KillBlock(w)
		if kb == nil || kb.Generation != m.liveGen[w] && kb.FencedGen == 0 {
			continue
		}
		if w != m.cfg.Self && kb.Generation == m.liveGen[w] && kb.OrdersKill(m.cfg.Self, myGen) {
			m.doFence(heartbeat.FenceKilled, fmt.Sprintf("evicted by node %d through its kill block on region %s", w, rg.spec.Name))
			return
		}
		if w != m.cfg.Self && kb.FencedGen != 0 && kb.FencedGen == m.liveGen[w] {
			if _, seen := m.acked[w]; !seen {
				m.acked[w] = kb.FencedGen
				m.note("node %d acknowledged on region %s that it fenced itself (%v): it is dead", w, rg.spec.Name, kb.FenceReason)
				m.recompute()
			}
		}
	}
}

// writeKillBlock queues this node's kill block (its current orders) on
// every region with a kill area.
func (m *Member) writeKillBlock() {
	if !m.cfg.Timeouts.KillBlocks() {
		return
	}
	m.killSeq++
	k := heartbeat.KillBlock{Owner: m.cfg.Self, Generation: m.cfg.Generation, Seq: m.killSeq}
	victims := make([]base.NodeID, 0, len(m.orders))
	for v := range m.orders {
		victims = append(victims, v)
	}
	sort.Slice(victims, func(i, j int) bool { return victims[i] < victims[j] })
	for _, rg := range m.regions {
		if !rg.spec.HasKill {
			continue
		}
		k.Orders = k.Orders[:0]
		for _, v := range victims {
			if len(k.Orders) < heartbeat.MaxKillOrders(rg.spec.SectorSize) {
				k.Orders = append(k.Orders, heartbeat.KillOrder{Victim: v, Generation: m.orders[v]})
			}
		}
		s := make([]byte, rg.spec.SectorSize)
		if err := k.Encode(s); err == nil {
			rg.r.SetKillBlock(s)
		}
	}
}

func (m *Member) drainLinks() {
	r := m.links.Ready()
	m.ready.Dials = append(m.ready.Dials, r.Dials...)
	m.ready.Closes = append(m.ready.Closes, r.Closes...)
	for _, f := range r.Frames {
		m.ready.Frames = append(m.ready.Frames, Frame{Peer: f.Peer, Conn: f.Conn, Header: f.Header})
	}
	m.ready.Notes = append(m.ready.Notes, r.Notes...)
	for _, q := range r.Quorum {
		switch q.Kind {
		case cnet.ConnUp:
			m.quo.ConnUp(q.Node)
		case cnet.ConnErr:
			m.quo.ConnErr(q.Node)
		case cnet.StillUp:
			m.quo.StillUp(q.Node)
		}
	}
	if len(r.Quorum) > 0 {
		m.drainQuorum()
		m.mem.SetLinks(m.now, m.links.Connected(), m.links.Lost())
		m.drainMembership()
	}
}

func (m *Member) drainQuorum() {
	for _, d := range m.quo.Ready() {
		if d.Fence {
			m.doFence(heartbeat.FenceQuorum, d.Reason)
		}
	}
}

func (m *Member) drainMembership() {
	r := m.mem.Ready()
	m.ready.Events = append(m.ready.Events, r.Events...)
	m.ready.Notes = append(m.ready.Notes, r.Notes...)
	for _, s := range r.Sends {
		m.sendStack(s.To, s.Type, s.Payload)
	}
	if r.Fence != "" {
		m.doFence(heartbeat.FenceRemoved, r.Fence)
	}
}

func (m *Member) sendStack(to base.NodeID, typ uint16, payload []byte) {
	conn := m.links.Conn(to)
	if conn == 0 || m.fenced {
		return
	}
	h, err := cnet.Message(typ, 0, len(payload), 0, false)
	if err != nil {
		return
	}
	m.ready.Frames = append(m.ready.Frames, Frame{Peer: to, Conn: conn, Header: h, Payload: payload})
}

// evict applies the eviction rule and orders the evictions it finds.
func (m *Member) evict() {
	if m.fenced {
		return
	}
	committed := m.mem.Committed()
	evs := quorum.Evictions(quorum.EvictInput{
		Self: m.cfg.Self, Members: committed.Members, Live: m.live,
		Connected: m.links.Connected(), Lost: m.links.Lost(),
		Reach: m.mem.Reach, HasQuorum: m.quo.HasQuorum(),
	})
	changed := false
	for _, e := range evs {
		gen := m.liveGen[e.Target]
		if g, ok := m.orders[e.Target]; ok && g == gen {
			continue
		}
		m.orders[e.Target] = gen
		m.ordered[e.Target] = m.now
		changed = true
		m.note("evicting node %d (generation %016x): %s", e.Target, gen, e.Reason)
		ev := quorum.Evict{Origin: m.cfg.Self, Target: e.Target, Generation: gen}.Encode()
		if m.links.Conn(e.Target) != 0 {
			m.sendStack(e.Target, cnet.TypeEvict, ev)
		} else if !e.Cut {
			for _, p := range m.links.Connected().Nodes() {
				m.sendStack(p, cnet.TypeEvict, ev)
			}
		}
	}
	if changed {
		m.writeKillBlock()
	}
}

func (m *Member) onEvict(from base.NodeID, e quorum.Evict) {
	if e.Target != m.cfg.Self {
		if e.Hops < quorum.MaxEvictHops && m.links.Conn(e.Target) != 0 && e.Origin != e.Target {
			e.Hops++
			m.sendStack(e.Target, cnet.TypeEvict, e.Encode())
		}
		return
	}
	if e.Generation != 0 && e.Generation != m.cfg.Generation {
		return
	}
	members := m.mem.Committed().Members
	if !m.live.Has(e.Origin) || !members.Has(e.Origin) || (members.Has(m.cfg.Self) && e.Origin > m.cfg.Self) {
		m.note("ignoring an eviction from node %d (via %d): it may not evict this node", e.Origin, from)
		return
	}
	m.doFence(heartbeat.FenceKilled, fmt.Sprintf("evicted by node %d (message via node %d)", e.Origin, from))
}

// health is this node's disk health for its peers.
func (m *Member) health() quorum.Health {
	h := quorum.Health{ReadStalled: true, WriteStalled: true, Frozen: m.frozen}
	if len(m.regions) == 0 {
		h.ReadStalled, h.WriteStalled = false, false
		return h
	}
	for _, rg := range m.regions {
		rs, ws := rg.r.Health(m.now)
		h.ReadStalled = h.ReadStalled && rs
		h.WriteStalled = h.WriteStalled && ws
	}
	return h
}

// LeaseExpiry is when this node's write lease ends (see
// heartbeat.LeaseExpiry): in global mode over the configured regions, a
// removed region counting with the last base it had.
func (m *Member) LeaseExpiry() (time.Duration, bool) {
	var bases []time.Duration
	if m.cfg.Mode != heartbeat.Global {
		for _, rg := range m.regions {
			if b, ok := rg.r.Lease(); ok {
				bases = append(bases, b)
			}
		}
		return heartbeat.LeaseExpiry(m.cfg.Mode, len(m.regions), bases, m.cfg.Timeouts.MaxWriteStall())
	}
	for _, name := range m.configured {
		b, ok := m.lostBases[name]
		if rg := m.regionNamed(name); rg != nil {
			if rb, leased := rg.r.Lease(); leased && (!ok || rb > b) {
				b, ok = rb, true
			}
		}
		if ok {
			bases = append(bases, b)
		}
	}
	return heartbeat.LeaseExpiry(m.cfg.Mode, len(m.configured), bases, m.cfg.Timeouts.MaxWriteStall())
}

// checkLease fences the node when its lease ran out, unless the whole
// cluster lost the disk (freeze). It reports whether the node fenced.
func (m *Member) checkLease() bool {
	exp, ok := m.LeaseExpiry()
	if !ok || m.now < exp {
		if m.frozen {
			if why := m.heartbeatWhileFrozen(); why != "" {
				m.doFence(heartbeat.FenceWriteStall, why)
				return true
			}
			m.frozen, m.thawBy, m.frozenBeats = false, 0, nil
			m.note("the shared disk is back: heartbeat writes complete again after %v frozen", m.now-m.frozenAt)
		}
		return false
	}
	t := m.cfg.Timeouts
	unres := m.unresolved()
	switch {
	case m.frozen && m.mem.PeersReadStalled(unres):
		return false
	case m.frozen && m.thawBy == 0 && m.mem.PeersReachable(unres):
		// A peer reads the disk again. It restarted counting missed beats
		// when its own reads resumed, at most two intervals before its
		// status reached us: it cannot declare this node dead for a dead
		// time from then. Wait for this node's own writes until two
		// intervals before that.
		m.thawBy = m.now + t.DeadTime() - 4*t.HeartbeatInterval
		m.note("another node reads the shared disk again; this node's heartbeat writes must complete within %v", m.thawBy-m.now)
		return false
	case m.frozen && m.thawBy != 0 && m.now < m.thawBy && m.mem.PeersReachable(unres):
		return false
	case m.frozen:
		m.doFence(heartbeat.FenceWriteStall, "frozen waiting for the shared disk, but another node reads it again (or is out of reach) and this node's writes still do not complete: fencing before it declares this node dead")
		return true
	case m.mem.PeersReadStalled(unres):
		m.frozen, m.frozenAt, m.thawBy = true, m.now, 0
		m.rememberBeats()
		m.note("heartbeat writes stalled past %v, but every other node reports that it cannot read the shared disk either: freezing instead of fencing",
			t.MaxWriteStall())
		return false
	}
	m.doFence(heartbeat.FenceWriteStall, fmt.Sprintf("no heartbeat write completed for %v (the bound is %v): fencing before the other nodes declare this node dead",
		m.now-(exp-t.MaxWriteStall()), t.MaxWriteStall()))
	return true
}

// rememberBeats records, as the node freezes, what it last read: the live
// nodes and every slot's last beat on each region.
func (m *Member) rememberBeats() {
	m.frozenLive, m.frozenGen = m.live, m.liveGen
	m.frozenBeats = map[RegionID]*[base.MaxNodes][2]uint64{}
	for _, rg := range m.regions {
		var b [base.MaxNodes][2]uint64
		for n := range b {
			g, s := rg.r.LastBeat(base.NodeID(n))
			b[n] = [2]uint64{g, s}
		}
		m.frozenBeats[rg.id] = &b
	}
}

// heartbeatWhileFrozen is checked when the node's lease is renewed while
// it is frozen, that is right after the read that saw its first write since
// the stall, before it writes anything else. It says why the node must
// fence ("" to resume).
//
// Why resuming is then safe. Another node Y could have recovered this
// frozen node F — delivered its down event, or gone on in a first view
// without it, whose mount recovers F's slot — only after reading F's slot
// unchanged for a dead time while F could not write, and Y heartbeats
// while it watches (a node goes on only with a lease of its own). Either:
//
//   - Y was live when F froze, with the generation it has now. F froze only
//     because Y, like every node that may count F's heartbeat, reported that
//     its own reads were stalled. Y restarts counting F's missed beats when
//     its reads resume, and F fences within a dead time of that (thawBy once
//     Y's status says it reads again, or as soon as Y's statuses stop being
//     fresh): Y cannot have declared F dead while F is still here. Its slot
//     may have changed meanwhile (it came back first).
//   - Any other Y (it started, restarted with a new generation, or was not
//     live) wrote its slot after F's last read before the stall, so the slot
//     differs from what F remembered — whatever Y wrote last: a heartbeat,
//     or the stop block (generation 0) of a clean stop. A node that started
//     during the freeze, went on alone and stopped cleanly before the disk
//     came back to F leaves only its stop block, and F must fence all the
//     same: that node may have recovered F's slot.
//
// In global mode F's renewed lease covers a strict majority of the
// configured regions and Y's lease one too: F reads at least one region Y
// wrote. In local mode Y heartbeats on the region of every volume it
// mounts, and F's lease needs every region.
func (m *Member) heartbeatWhileFrozen() string {
	for _, rg := range m.regions {
		before := m.frozenBeats[rg.id]
		if before == nil {
			continue // added while frozen: nothing to compare with
		}
		for i := range before {
			n := base.NodeID(i)
			g, s := rg.r.LastBeat(n)
			if n == m.cfg.Self || [2]uint64{g, s} == before[i] {
				continue
			}
			if g == 0 {
				return fmt.Sprintf("node %d stopped heartbeating on region %s (a clean stop) while this node was frozen for %v: it heartbeated meanwhile and may have declared this node dead; fencing instead of resuming",
					n, rg.spec.Name, m.now-m.frozenAt)
			}
			if m.frozenLive.Has(n) && g == m.frozenGen[i] {
				continue // frozen with this node, or back before it
			}
			return fmt.Sprintf("node %d (generation %016x) heartbeated on region %s while this node was frozen for %v without it in its view: it may have declared this node dead; fencing instead of resuming",
				n, g, rg.spec.Name, m.now-m.frozenAt)
		}
	}
	return ""
}

// Entitled reports, without changing anything, whether this node may still
// act as a member at now: not fenced, and its lease holds, or it is frozen
// and its peers still confirm (or give it time) — what the next check of
// its lease would decide. The simulator's checker uses it.
func (m *Member) Entitled(now time.Duration) bool {
	if m.fenced {
		return false
	}
	exp, ok := m.LeaseExpiry()
	if !ok || now < exp {
		return true
	}
	unres := m.unresolved()
	switch {
	case !m.frozen:
		return false
	case m.mem.PeersReadStalled(unres):
		return true
	case m.thawBy == 0:
		return m.mem.PeersReachable(unres)
	}
	return now < m.thawBy && m.mem.PeersReachable(unres)
}

// unresolved are the nodes whose slot holds a recent heartbeat although
// they are not live, on any region: they may be starting, and reading.
func (m *Member) unresolved() base.NodeMap {
	var u base.NodeMap
	for _, rg := range m.regions {
		u = u.Union(rg.r.Unresolved())
	}
	return u
}

// MayWrite reports whether this node may write to the shared disks at now.
// It fences the node when the lease ran out (the check the agent makes
// before every write).
func (m *Member) MayWrite(now time.Duration) error {
	if m.fenced {
		return ErrFenced
	}
	if m.now < now {
		m.now = now
	}
	if m.checkLease() {
		return ErrFenced
	}
	if m.frozen {
		return ErrFrozen
	}
	if _, ok := m.LeaseExpiry(); !ok {
		return ErrNoLease
	}
	if m.heartbeatOverdue(now) {
		return ErrSlowDisk
	}
	return nil
}

// heartbeatOverdue: this node's heartbeat is behind — a heartbeat read or
// write has been in flight for more than an interval, or the last write
// seen on disk began more than three intervals ago — on any region in local
// mode; in global mode on so many of the configured regions (a missing one
// is behind) that fewer than a strict majority are not. New writes would
// queue behind a path that may be hung; writes queued there are what could
// land late, so none are added. (A write let through began at most three
// intervals after a heartbeat write the others will count: it is safe as
// long as the host fails I/O within the dead time minus four intervals.)
func (m *Member) heartbeatOverdue(now time.Duration) bool {
	slow := 0
	t := m.cfg.Timeouts
	for _, rg := range m.regions {
		d, busy := rg.r.IOOutstanding(now)
		base, leased := rg.r.Lease()
		if (busy && d > t.HeartbeatInterval) || !leased || now-base > 3*t.HeartbeatInterval {
			slow++
		}
	}
	if m.cfg.Mode == heartbeat.Local {
		return slow > 0
	}
	return len(m.regions)-slow < heartbeat.MajorityOf(len(m.configured))
}

// MayHeartbeat reports whether this node may write its heartbeat and kill
// blocks at now: like MayWrite, except that a frozen node keeps trying (a
// heartbeat write that completes is what ends the freeze).
func (m *Member) MayHeartbeat(now time.Duration) error {
	if m.fenced {
		return ErrFenced
	}
	if m.now < now {
		m.now = now
	}
	if m.checkLease() {
		return ErrFenced
	}
	return nil
}

// Frozen reports whether the node waits for the shared disk.
func (m *Member) Frozen() bool { return m.frozen }

// Fence makes the node fence itself now for the given reason (the hang
// watchdog, an operator).
func (m *Member) Fence(now time.Duration, reason heartbeat.FenceReason, message string) {
	m.now = now
	m.doFence(reason, message)
}

func (m *Member) doFence(reason heartbeat.FenceReason, message string) {
	if m.fenced {
		return
	}
	m.fenced = true
	m.mem.Stop()
	f := &Fence{Reason: reason, Message: message}
	if m.cfg.Timeouts.KillBlocks() {
		k := heartbeat.KillBlock{Owner: m.cfg.Self, Generation: m.cfg.Generation, Seq: m.killSeq + 1,
			FencedGen: m.cfg.Generation, FenceReason: reason}
		for _, rg := range m.regions {
			if !rg.spec.HasKill {
				continue
			}
			s := make([]byte, rg.spec.SectorSize)
			if k.Encode(s) == nil {
				f.Acks = append(f.Acks, AckWrite{Region: rg.id, Kill: s})
			}
		}
	}
	m.fence = f
	m.ready = Ready{Fence: f, Notes: append(m.ready.Notes, "FENCING: "+message)}
}

// Accept asks whether to take an authenticated inbound connection from p.
func (m *Member) Accept(now time.Duration, p base.NodeID) (cnet.ConnID, error) {
	m.now = now
	if m.fenced {
		return 0, ErrFenced
	}
	c, err := m.links.Accept(now, p)
	m.drainLinks()
	return c, err
}

// Established reports that a dialed connection passed its handshake.
func (m *Member) Established(now time.Duration, p base.NodeID, conn cnet.ConnID) {
	m.now = now
	m.links.Established(now, p, conn)
	m.drainLinks()
	m.evict()
}

// Closed reports that a connection failed or closed.
func (m *Member) Closed(now time.Duration, p base.NodeID, conn cnet.ConnID, reason string) {
	m.now = now
	m.links.Closed(now, p, conn, reason)
	m.drainLinks()
	m.evict()
}

// Received handles a frame from peer p on conn. It returns true when the
// frame is for the driver to dispatch (a message for a registered handler,
// or a status reply); stack messages and keepalives are handled here.
func (m *Member) Received(now time.Duration, p base.NodeID, conn cnet.ConnID, h cnet.Header, payload []byte) (bool, error) {
	m.now = now
	if m.fenced || !m.links.Received(now, p, conn, h) {
		return false, nil
	}
	m.drainLinks()
	switch h.Magic {
	case cnet.MagicKeepReq, cnet.MagicKeepResp:
		return false, nil
	case cnet.MagicStatus:
		return true, nil
	}
	if h.Type > cnet.TypeStackLast {
		return true, nil
	}
	if h.Type == cnet.TypeEvict {
		e, err := quorum.DecodeEvict(payload)
		if err != nil {
			return false, fmt.Errorf("from node %d: %w", p, err)
		}
		m.onEvict(p, e)
		return false, nil
	}
	err := m.mem.Receive(now, p, h.Type, payload)
	m.drainMembership()
	m.evict()
	return false, err
}

// Conn is the established connection to p, or 0.
func (m *Member) Conn(p base.NodeID) cnet.ConnID { return m.links.Conn(p) }

// View is the committed membership view.
func (m *Member) View() quorum.View { return m.mem.Committed() }

// Leader is the node this node follows.
func (m *Member) Leader() base.NodeID { return m.mem.Leader() }

// Orders lists this node's pending kill orders (victims).
func (m *Member) Orders() base.NodeMap {
	var o base.NodeMap
	for v := range m.orders {
		o.Add(v)
	}
	return o
}

// Links exposes the link machine (for status displays).
func (m *Member) Links() *cnet.Links { return m.links }

// Quorum exposes o2quo's state (for status displays).
func (m *Member) Quorum() *quorum.Quorum { return m.quo }

// Membership exposes the view protocol's state (for status displays).
func (m *Member) Membership() *quorum.Membership { return m.mem }
