package ha

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"o2go/internal/base"
)

// State is the cluster-wide state the placement depends on besides the
// configuration and the membership: what the operator asked (stopped
// groups, sticky and non-sticky moves), where groups failed, where they are
// online. The coordinator is its only writer; it replicates every version to
// every node, and a new coordinator continues from the newest version any
// survivor holds. The agent persists it (without Owners) so that stickiness
// and stopped groups survive a cluster restart, as HACMP keeps them in its
// ODM.
type State struct {
	Version uint64       `json:"version"`
	Groups  []GroupState `json:"groups,omitempty"` // by name
}

// GroupState is one group's entry in State.
type GroupState struct {
	Name string `json:"name"`
	// Offline: the group is to stay offline — the operator stopped it, or
	// fallover policy "offline" took it down — until `o2go ha start`.
	Offline    bool   `json:"offline,omitempty"`
	OfflineWhy string `json:"offline_why,omitempty"`
	// Sticky: the group belongs on this node whenever it is available (a
	// sticky move). Prefer: a non-sticky move's node, kept until that
	// node fails or a node of higher priority joins.
	Sticky base.NodeID `json:"sticky"`
	Prefer base.NodeID `json:"prefer"`
	// Failed are the nodes where the group failed (start failure, or its
	// restarts used up): not eligible until they rejoin the cluster or
	// the operator starts or moves the group.
	Failed []base.NodeID `json:"failed,omitempty"`
	// Owners are where the group is online (memory only: not persisted).
	Owners []base.NodeID `json:"owners,omitempty"`
	// Parked: a graceful node_down on this node took the group offline
	// until the node is back. Forced: a forced node_down left it running
	// there, unmanaged, until the node is back. Unmanaged: a stop failed
	// there and fencing is off: the group stays there, its lock held, until
	// the operator acts.
	Parked    base.NodeID `json:"parked"`
	Forced    base.NodeID `json:"forced"`
	Unmanaged base.NodeID `json:"unmanaged"`
}

func newGroupState(name string) GroupState {
	return GroupState{Name: name, Sticky: base.InvalidNode, Prefer: base.InvalidNode, Parked: base.InvalidNode,
		Forced: base.InvalidNode, Unmanaged: base.InvalidNode}
}

// Group returns the entry of group name (a fresh entry when there is none).
func (s *State) Group(name string) GroupState {
	if s != nil {
		for _, g := range s.Groups {
			if g.Name == name {
				return g
			}
		}
	}
	return newGroupState(name)
}

// set stores g, keeping the entries sorted by name.
func (s *State) set(g GroupState) {
	i := sort.Search(len(s.Groups), func(i int) bool { return s.Groups[i].Name >= g.Name })
	if i < len(s.Groups) && s.Groups[i].Name == g.Name {
		s.Groups[i] = g
		return
	}
	s.Groups = append(s.Groups, GroupState{})
	copy(s.Groups[i+1:], s.Groups[i:])
	s.Groups[i] = g
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	if s == nil {
		return &State{}
	}
	out := &State{Version: s.Version, Groups: make([]GroupState, len(s.Groups))}
	for i, g := range s.Groups {
		g.Failed = append([]base.NodeID(nil), g.Failed...)
		g.Owners = append([]base.NodeID(nil), g.Owners...)
		out.Groups[i] = g
	}
	return out
}

// ForDisk is the part of the state worth keeping across a cluster
// restart: everything but where groups are online.
func (s *State) ForDisk() *State {
	out := s.Clone()
	for i := range out.Groups {
		out.Groups[i].Owners = nil
		out.Groups[i].Unmanaged = base.InvalidNode
	}
	return out
}

func (s *State) equal(o *State) bool {
	a, _ := json.Marshal(s.Groups)
	b, _ := json.Marshal(o.Groups)
	return string(a) == string(b)
}

// prune drops the entries of groups that are no longer configured and
// entries that say nothing.
func (s *State) prune(cfg *Config) {
	out := s.Groups[:0]
	for _, g := range s.Groups {
		if cfg.Group(g.Name) == nil {
			continue
		}
		if isZeroGroupState(g) {
			continue
		}
		out = append(out, g)
	}
	s.Groups = out
}

func isZeroGroupState(g GroupState) bool {
	z := newGroupState(g.Name)
	return !g.Offline && g.OfflineWhy == "" && g.Sticky == z.Sticky && g.Prefer == z.Prefer && len(g.Failed) == 0 &&
		len(g.Owners) == 0 && g.Parked == z.Parked && g.Forced == z.Forced && g.Unmanaged == z.Unmanaged
}

func nodeMap(l []base.NodeID) base.NodeMap {
	var m base.NodeMap
	for _, n := range l {
		m.Add(n)
	}
	return m
}

func nodeList(m base.NodeMap) []base.NodeID { return m.Nodes() }

// Record is one entry of the cluster-wide event history: every event with
// its phases (start, pre, post, notify, recovery, complete, failed) and the
// node it ran on. Seq orders the history the same on every node: the
// coordinator numbers every record.
type Record struct {
	Seq      uint64   `json:"seq"`
	At       int64    `json:"at"` // wall clock of the node that saw it, ms since 1970
	Node     string   `json:"node"`
	Event    string   `json:"event"`
	Phase    string   `json:"phase"`
	Group    string   `json:"group,omitempty"`
	Resource string   `json:"resource,omitempty"`
	Args     []string `json:"args,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// Record phases.
const (
	PhaseStart    = "start"
	PhaseComplete = "complete"
	PhaseFailed   = "failed"
	PhasePre      = "pre"
	PhasePost     = "post"
	PhaseNotify   = "notify"
	PhaseRecovery = "recovery"
	PhaseInfo     = "info"
)

func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s %s", r.Seq, r.Node, r.Event, r.Phase)
	if r.Group != "" {
		fmt.Fprintf(&b, " group=%s", r.Group)
	}
	if r.Resource != "" {
		fmt.Fprintf(&b, " resource=%s", r.Resource)
	}
	if len(r.Args) > 0 {
		fmt.Fprintf(&b, " args=%s", strings.Join(r.Args, ","))
	}
	if r.Detail != "" {
		fmt.Fprintf(&b, ": %s", r.Detail)
	}
	return b.String()
}
