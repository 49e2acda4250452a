package dlm

import (
	"fmt"
	"slices"
	"strings"

	"o2go/internal/base"
)

// DomainState is the debug view of one domain on this node, the counterpart
// of o2dlm's dlm_state (ocfs2(7), DLM DEBUGGING).
type DomainState struct {
	Domain     string         `json:"domain"`
	Key        uint32         `json:"key"`
	Node       base.NodeID    `json:"node"`
	State      string         `json:"state"` // JOINING, JOINED, LEAVING, LEFT
	Epoch      uint64         `json:"epoch"`
	DomainMap  []base.NodeID  `json:"domain_map"`
	LiveMap    []base.NodeID  `json:"live_map"`
	Registrar  base.NodeID    `json:"registrar"`
	Resources  int            `json:"resources"` // in use here (locks here or at their master here)
	Cached     int            `json:"cached"`    // unused, kept in the idle cache
	Mastered   int            `json:"mastered"`
	Locks      int            `json:"locks"` // this node's locks
	Gate       bool           `json:"recovery_gate"`
	Pending    []DeadNode     `json:"awaiting_fs_recovery,omitempty"`
	Recovery   *RecoveryState `json:"recovery,omitempty"`
	Deadlocks  uint64         `json:"deadlocks"`
	Migrated   [2]uint64      `json:"migrated_out_in"`
	Rebuilt    uint64         `json:"rebuilt"`
	Reconfigs  uint64         `json:"reconfigurations"`
	Misrouted  uint64         `json:"misdirected_requests"`
	Deferred   int            `json:"deferred_requests"`
	HeldFrames int            `json:"held_messages"`
	// Streams is this node's (all domains): messages sent again after a
	// connection came back, dropped as duplicates or past a gap, and not
	// acknowledged yet by their peers.
	Streams StreamStats `json:"streams"`
}

// RecoveryState is the reconfiguration under way, as this node sees it.
type RecoveryState struct {
	Epoch  uint64         `json:"epoch"`
	Master base.NodeID    `json:"master"` // the registrar that runs it
	Dead   []DeadNode     `json:"dead,omitempty"`
	Target []base.NodeID  `json:"target"`
	Phase  string         `json:"phase"` // FROZEN (waiting for markers), RECEIVING (waiting for transfers)
	Nodes  []RecoveryNode `json:"nodes"`
}

// RecoveryNode is the progress of one participant, as this node sees it.
type RecoveryNode struct {
	Node  base.NodeID `json:"node"`
	State string      `json:"state"` // FROZEN, MARKED (its old traffic is in), DONE (its transfers are in)
}

// State returns the debug view of every domain this node knows, by name.
func (n *Node) State() []DomainState {
	var out []DomainState
	for _, d := range n.sortedDomains() {
		s := DomainState{
			Domain: d.name, Key: d.key, Node: n.self, State: d.phase.String(), Epoch: d.view.epoch,
			DomainMap: d.view.members.Nodes(), LiveMap: n.live.Nodes(), Registrar: n.registrar,
			Resources: len(d.res) - d.idleCount(), Cached: d.idleCount(), Mastered: d.nMastered, Locks: d.nLocks, Gate: d.gate,
			Pending: slices.Clone(d.pending), Deadlocks: d.stats.Deadlocks,
			Migrated: [2]uint64{d.stats.MigratedOut, d.stats.MigratedIn}, Rebuilt: d.stats.Rebuilt,
			Reconfigs: d.stats.Reconfigs, Misrouted: d.stats.Misdirected,
			Deferred: len(d.deferredLocal) + len(d.deferredReq),
			Streams:  n.Streams(),
		}
		for k, q := range n.held {
			if k.key == d.key {
				s.HeldFrames += len(q)
			}
		}
		if r := d.reco; r != nil {
			rs := &RecoveryState{Epoch: r.epoch, Master: r.registrar, Dead: slices.Clone(r.dead), Target: r.target.Nodes(), Phase: "FROZEN"}
			if r.transferred {
				rs.Phase = "RECEIVING"
			}
			for _, p := range r.parts.Nodes() {
				st := "FROZEN"
				switch {
				case p == n.self && r.transferred, r.ends.Has(p):
					st = "DONE"
				case p == n.self, r.markers.Has(p):
					st = "MARKED"
				}
				rs.Nodes = append(rs.Nodes, RecoveryNode{Node: p, State: st})
			}
			s.Recovery = rs
		}
		out = append(out, s)
	}
	return out
}

// ResourceState is the debug view of one resource on this node, the
// counterpart of debugfs.ocfs2's dlm_locks.
type ResourceState struct {
	Domain   string      `json:"domain"`
	Name     string      `json:"name"`
	Master   base.NodeID `json:"owner"`
	Mastered bool        `json:"mastered_here"`
	Idle     bool        `json:"idle,omitempty"` // unused, in the idle cache
	// Master state (only when mastered here).
	LVBValid bool        `json:"lvb_valid,omitempty"`
	LVBSeq   uint64      `json:"lvb_seq,omitempty"`
	Queues   []LockState `json:"queues,omitempty"`
	Ghosts   []GhostLock `json:"dead_locks,omitempty"`
	// This node's locks on the resource.
	Local []LocalLock `json:"local,omitempty"`
}

// LockState is one lock at its master.
type LockState struct {
	Queue     string      `json:"queue"` // Granted, Converting, Blocked, Fresh
	Node      base.NodeID `json:"node"`
	Cookie    uint64      `json:"cookie"`
	Mode      Mode        `json:"mode"`
	Requested Mode        `json:"requested"`
	Flags     Flags       `json:"flags"`
	// BAST is the strongest mode a blocking notification asked this lock's
	// holder to make way for since its last grant (ModeNone: none sent).
	BAST Mode `json:"bast"`
}

// GhostLock is what a dead node is taken to hold until the file system
// releases it.
type GhostLock struct {
	Dead DeadNode `json:"dead"`
	Mode Mode     `json:"mode"`
}

// LocalLock is one of this node's locks.
type LocalLock struct {
	ID        LockID `json:"id"`
	Mode      Mode   `json:"mode"`
	Pending   Op     `json:"pending"`
	Requested Mode   `json:"requested"`
	Sent      bool   `json:"sent"`
	// BAST is the strongest mode a blocking notification that reached this
	// node asked the lock to make way for since its last grant (ModeNone:
	// none): with the master's BAST column, where a hang's notification
	// stopped (ocfs2(7), DLM DEBUGGING).
	BAST Mode `json:"bast"`
}

// MarshalText makes modes, ops and flags readable in JSON.
func (m Mode) MarshalText() ([]byte, error)  { return []byte(m.String()), nil }
func (o Op) MarshalText() ([]byte, error)    { return []byte(o.String()), nil }
func (f Flags) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads what MarshalText wrote ("-" is ModeNone).
func (m *Mode) UnmarshalText(b []byte) error {
	if string(b) == "-" {
		*m = ModeNone
		return nil
	}
	v, err := ParseMode(string(b))
	*m = v
	return err
}

// UnmarshalText reads what MarshalText wrote.
func (o *Op) UnmarshalText(b []byte) error {
	for i, n := range opNames {
		if n == string(b) {
			*o = Op(i)
			return nil
		}
	}
	return fmt.Errorf("dlm: operation %q", b)
}

// UnmarshalText reads what MarshalText wrote.
func (f *Flags) UnmarshalText(b []byte) error {
	*f = 0
	if string(b) == "-" {
		return nil
	}
	for _, p := range strings.Split(string(b), ",") {
		switch p {
		case "noqueue":
			*f |= NoQueue
		case "recovery":
			*f |= Recovery
		default:
			return fmt.Errorf("dlm: flag %q", p)
		}
	}
	return nil
}

// Locks returns the debug view of resource name in domain (every resource
// known here when name is empty), in name order.
func (n *Node) Locks(domainName, name string) ([]ResourceState, error) {
	d := n.byName[domainName]
	if d == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownDomain, domainName)
	}
	var out []ResourceState
	for _, r := range d.sortedResources() {
		if name != "" && r.name != name {
			continue
		}
		s := ResourceState{Domain: d.name, Name: r.name, Master: masterIn(r.name, d.view.members), Mastered: r.m != nil, Idle: r.idle}
		if m := r.m; m != nil {
			s.LVBValid, s.LVBSeq = m.lvbValid, m.lvbSeq
			for q := range m.q {
				for _, e := range m.q[q] {
					s.Queues = append(s.Queues, LockState{Queue: queue(q).String(), Node: e.owner, Cookie: e.cookie, Mode: e.gr, Requested: e.rq, Flags: e.flags, BAST: e.bast})
				}
			}
			for _, f := range m.fresh {
				s.Queues = append(s.Queues, LockState{Queue: "Fresh", Node: f.owner, Cookie: f.cookie, Mode: ModeNone, Requested: f.rq, Flags: f.flags, BAST: ModeNone})
			}
			for _, g := range m.ghosts {
				s.Ghosts = append(s.Ghosts, GhostLock{Dead: g.Dead, Mode: g.Mode})
			}
		}
		for _, l := range r.locks {
			s.Local = append(s.Local, LocalLock{ID: l.id, Mode: l.gr, Pending: l.op, Requested: l.rq, Sent: l.sent, BAST: l.bast})
		}
		out = append(out, s)
	}
	if name != "" && len(out) == 0 {
		return nil, fmt.Errorf("dlm: resource %q is not known on node %d in %s", name, n.self, domainName)
	}
	return out, nil
}

// CheckInvariants verifies the Node's internal consistency: every lock is
// where its indexes say, every master state is consistent and (outside
// reconfiguration) mastered by the right node, and this node's own locks on
// resources it masters agree with the master state. Tests and -tags
// invariants builds call it after every step.
func (n *Node) CheckInvariants() error {
	total := 0
	for _, d := range n.sortedDomains() {
		locks, mastered := 0, 0
		for _, r := range d.sortedResources() {
			if r.idle != r.unused() {
				return fmt.Errorf("node %d %s: resource %q idle=%v but unused=%v", n.self, d.name, r.name, r.idle, r.unused())
			}
			for _, l := range r.locks {
				if n.locks[l.id] != l || l.r != r || l.d != d {
					return fmt.Errorf("node %d %s: lock %d on %q badly indexed", n.self, d.name, l.id, r.name)
				}
				if l.op == OpNone && l.gr == ModeNone {
					return fmt.Errorf("node %d %s: lock %d on %q neither granted nor pending", n.self, d.name, l.id, r.name)
				}
				locks++
			}
			if r.m == nil {
				continue
			}
			mastered++
			if err := r.m.check(r.name); err != nil {
				return fmt.Errorf("node %d %s: %w", n.self, d.name, err)
			}
			if d.reco != nil {
				continue
			}
			if want := masterIn(r.name, d.view.members); want != n.self {
				return fmt.Errorf("node %d %s: masters %q, which node %d should master at epoch %d", n.self, d.name, r.name, want, d.view.epoch)
			}
			if len(r.m.fresh) > 0 || len(r.m.owed) > 0 {
				return fmt.Errorf("node %d %s: %q has reconfiguration leftovers outside reconfiguration", n.self, d.name, r.name)
			}
			for _, l := range r.locks {
				e := r.m.find(n.self, uint64(l.id))
				if l.op == OpNone && (e == nil || e.gr != l.gr || e.q != qGranted) {
					return fmt.Errorf("node %d %s: lock %d on %q is %s here but %v at the master", n.self, d.name, l.id, r.name, l.gr, e)
				}
			}
		}
		idle := 0
		for _, ref := range d.idle[d.idleHead:] {
			if r := ref.r; r != nil && ref.gen == r.gen && r.idle && d.res[r.name] == r {
				idle++
			}
		}
		if idle < d.idleCount() {
			return fmt.Errorf("node %d %s: %d idle resources, %d in the idle cache", n.self, d.name, d.idleCount(), idle)
		}
		if locks != d.nLocks || mastered != d.nMastered {
			return fmt.Errorf("node %d %s: counts %d locks %d mastered, found %d and %d", n.self, d.name, d.nLocks, d.nMastered, locks, mastered)
		}
		total += locks
	}
	if total != len(n.locks) {
		return fmt.Errorf("node %d: %d locks indexed, %d in domains", n.self, len(n.locks), total)
	}
	return nil
}

func (e *entry) String() string {
	if e == nil {
		return "absent"
	}
	return fmt.Sprintf("%d:%d %s %s->%s", e.owner, e.cookie, e.q, e.gr, e.rq)
}

// FormatState renders a DomainState the way o2dlm's dlm_state file reads.
func FormatState(s DomainState) string {
	var b strings.Builder
	gate := "off"
	if s.Gate {
		gate = "on"
	}
	fmt.Fprintf(&b, "Domain: %s  Key: %#08x\n", s.Domain, s.Key)
	reg := "none (this node has no cluster membership yet)"
	if s.Registrar.Valid() {
		reg = s.Registrar.String()
	}
	fmt.Fprintf(&b, "Node: %d  State: %s  Epoch: %d  Registrar: %s  Recovery Gate: %s\n", s.Node, s.State, s.Epoch, reg, gate)
	fmt.Fprintf(&b, "Domain Map: %s\n", nodeList(s.DomainMap))
	fmt.Fprintf(&b, "Live Map: %s\n", nodeList(s.LiveMap))
	fmt.Fprintf(&b, "Lock Resources: %d  Mastered: %d  Locks: %d\n", s.Resources, s.Mastered, s.Locks)
	if len(s.Pending) > 0 {
		fmt.Fprintf(&b, "Awaiting FS Recovery: %s\n", deadList(s.Pending))
	}
	if r := s.Recovery; r != nil {
		fmt.Fprintf(&b, "Recovery: Epoch: %d  Master: %d  Phase: %s\n", r.Epoch, r.Master, r.Phase)
		fmt.Fprintf(&b, "Dead: %s  Target: %s\n", deadList(r.Dead), nodeList(r.Target))
		b.WriteString("Recovery Node State:\n")
		for _, x := range r.Nodes {
			fmt.Fprintf(&b, "        %d - %s\n", x.Node, x.State)
		}
	}
	fmt.Fprintf(&b, "Deadlocks: %d  Migrated out/in: %d/%d  Rebuilt: %d  Reconfigurations: %d  Misdirected: %d\n",
		s.Deadlocks, s.Migrated[0], s.Migrated[1], s.Rebuilt, s.Reconfigs, s.Misrouted)
	st := s.Streams
	fmt.Fprintf(&b, "Messages (this node): unacknowledged %d  sent again %d  dropped: duplicates %d, past a gap %d, stale %d\n",
		st.Unacked, st.Resent, st.Duplicates, st.Gaps, st.Stale)
	return b.String()
}

// FormatResource renders a ResourceState the way debugfs.ocfs2's dlm_locks
// reads.
func FormatResource(r ResourceState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Lockres: %s  Owner: %d", printable(r.Name), r.Master)
	if r.Mastered {
		v := "invalid"
		if r.LVBValid {
			v = "valid"
		}
		fmt.Fprintf(&b, "  LVB: %s seq %d", v, r.LVBSeq)
	}
	if r.Idle {
		b.WriteString("  (idle)")
	}
	b.WriteString("\n")
	if r.Mastered {
		b.WriteString("Lock-Queue  Node  Level  Conv  BAST  Cookie\n")
		for _, q := range r.Queues {
			fmt.Fprintf(&b, "%-10s  %-4d  %-5s  %-4s  %-4s  %d:%d\n", q.Queue, q.Node, q.Mode, q.Requested, q.BAST, q.Node, q.Cookie)
		}
		for _, g := range r.Ghosts {
			fmt.Fprintf(&b, "%-10s  %-4d  %-5s  %-4s  %-4s  %s\n", "Dead", g.Dead.Node, g.Mode, ModeNone, ModeNone, g.Dead)
		}
	}
	for _, l := range r.Local {
		fmt.Fprintf(&b, "Local lock %d: %s", l.ID, l.Mode)
		if l.Pending != OpNone {
			fmt.Fprintf(&b, ", %s %s pending", l.Pending, l.Requested)
			if !l.Sent {
				b.WriteString(" (not sent)")
			}
		}
		if l.BAST != ModeNone {
			fmt.Fprintf(&b, ", BAST %s received", l.BAST)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func nodeList(l []base.NodeID) string {
	s := make([]string, len(l))
	for i, x := range l {
		s[i] = x.String()
	}
	return strings.Join(s, " ")
}

func deadList(l []DeadNode) string {
	if len(l) == 0 {
		return "-"
	}
	s := make([]string, len(l))
	for i, x := range l {
		s[i] = x.String()
	}
	return strings.Join(s, " ")
}

func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] >= 0x7f {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

// DomainMembers returns the nodes of domain name's current view (its
// domain map), nil for a domain this node is not in. Unlike State it does
// not walk the resources: for callers on a hot path.
func (n *Node) DomainMembers(name string) []base.NodeID {
	d := n.domains[Key(name)]
	if d == nil || d.name != name {
		return nil
	}
	return d.view.members.Nodes()
}
