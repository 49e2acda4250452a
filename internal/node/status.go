package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/cluster/heartbeat"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/ondisk"
)

// NodeList is a list of node numbers that reads as a JSON array of numbers
// (a []uint8 would be base64).
type NodeList []base.NodeID

// MarshalJSON writes the numbers.
func (l NodeList) MarshalJSON() ([]byte, error) {
	ints := make([]int, len(l))
	for i, n := range l {
		ints[i] = int(n)
	}
	return json.Marshal(ints)
}

// UnmarshalJSON reads the numbers.
func (l *NodeList) UnmarshalJSON(b []byte) error {
	var ints []int
	if err := json.Unmarshal(b, &ints); err != nil {
		return err
	}
	*l = make(NodeList, 0, len(ints))
	for _, n := range ints {
		if n < 0 || n >= base.MaxNodes {
			return fmt.Errorf("node number %d out of range", n)
		}
		*l = append(*l, base.NodeID(n))
	}
	return nil
}

// Status is what `o2go cluster status` shows: what `service o2cb status`
// prints, and per node what this agent knows of it.
type Status struct {
	Stack         string         `json:"stack"`
	Cluster       string         `json:"cluster"`
	Node          string         `json:"node"`
	Number        base.NodeID    `json:"number"`
	Generation    string         `json:"generation"`
	Timeouts      StatusTimeouts `json:"timeouts"`
	HeartbeatMode string         `json:"heartbeat_mode"`
	Regions       []RegionStatus `json:"heartbeat_regions"`
	Steady        bool           `json:"steady"`
	Epoch         uint64         `json:"view_epoch"`
	Seq           uint64         `json:"view_seq"`
	Members       NodeList       `json:"view_members"`
	Leader        *base.NodeID   `json:"leader,omitempty"`
	Quorum        string         `json:"quorum"`
	Frozen        bool           `json:"frozen"`
	Fenced        bool           `json:"fenced"`
	Uptime        string         `json:"uptime"`
	Nodes         []NodeStatus   `json:"nodes"`
	// ConfigDigest is ConfigDigest of the cluster.conf the agent runs with
	// (%016x): o2go cluster doctor compares it with the file as it is now.
	ConfigDigest string `json:"config_digest,omitempty"`

	// Global mode: the heartbeat devices the cluster is configured with,
	// how many of them this node must heartbeat on (a strict majority),
	// and those it does not, with why: each counts as lost.
	RegionsConfigured int                   `json:"heartbeat_regions_configured,omitempty"`
	RegionsNeeded     int                   `json:"heartbeat_regions_needed,omitempty"`
	MissingRegions    []MissingRegionStatus `json:"missing_heartbeat_regions,omitempty"`
}

// StatusTimeouts are the timing values, in milliseconds and iterations.
type StatusTimeouts struct {
	HeartbeatThreshold  int   `json:"heartbeat_dead_threshold"`
	IdleTimeoutMs       int64 `json:"network_idle_timeout_ms"`
	KeepaliveDelayMs    int64 `json:"network_keepalive_delay_ms"`
	ReconnectDelayMs    int64 `json:"network_reconnect_delay_ms"`
	HeartbeatIntervalMs int64 `json:"heartbeat_interval_ms"`
	KillAckTimeoutMs    int64 `json:"kill_ack_timeout_ms"`
	DeadTimeMs          int64 `json:"dead_time_ms"`
}

// RegionStatus is one heartbeat region.
type RegionStatus struct {
	UUID       string   `json:"uuid"`
	Device     string   `json:"device"`
	Steady     bool     `json:"steady"`
	KillArea   bool     `json:"kill_area"`
	Live       NodeList `json:"live_nodes"`
	Unresolved NodeList `json:"unresolved_nodes,omitempty"`
	// Idle: global mode, the device is found but this node does not
	// heartbeat on it, having fewer than a majority of the configured ones.
	Idle bool `json:"idle,omitempty"`
}

// MissingRegionStatus is a configured global heartbeat device this node
// does not heartbeat on: not found by UUID, refused when opened (wrong
// stamp, unreadable), or refused while in use (another node heartbeats in
// this node's slot).
type MissingRegionStatus struct {
	UUID   string `json:"uuid"`
	Reason string `json:"reason"`
}

// NodeStatus is one configured node as this agent sees it.
type NodeStatus struct {
	Name       string      `json:"name"`
	Number     base.NodeID `json:"number"`
	Address    string      `json:"address"`
	Self       bool        `json:"self,omitempty"`
	Live       bool        `json:"live"`
	Generation string      `json:"generation,omitempty"`
	// HeartbeatAgeMs is how long ago its heartbeat last changed (-1: never seen).
	HeartbeatAgeMs int64  `json:"heartbeat_age_ms"`
	Missed         int    `json:"missed_beats"`
	Connection     string `json:"connection"`
	InView         bool   `json:"in_view"`
	// Slot is the node's heartbeat slot (its number): the sector o2hb and
	// debugfs.ocfs2 -R hb show it in.
	Slot int `json:"heartbeat_slot"`
	// MountSlot is the node's slot in the slot map of the first volume this
	// node heartbeats on (local mode), -1 when it holds none there.
	MountSlot int    `json:"mount_slot"`
	Reason    string `json:"why_not_in_cluster,omitempty"`
}

// snapshot builds the status (on the loop).
func (a *Agent) snapshot() *Status {
	t := a.cfg.Settings.Timeouts
	now := a.clock()
	v := a.m.View()
	st := &Status{
		Stack: a.cfg.Settings.Stack, Cluster: a.cfg.Cluster.Name, Node: a.self.Name, Number: a.self.Number,
		Generation: fmt.Sprintf("%016x", a.gen),
		Timeouts: StatusTimeouts{HeartbeatThreshold: t.HeartbeatThreshold, IdleTimeoutMs: t.IdleTimeout.Milliseconds(),
			KeepaliveDelayMs: t.KeepaliveDelay.Milliseconds(), ReconnectDelayMs: t.ReconnectDelay.Milliseconds(),
			HeartbeatIntervalMs: t.HeartbeatInterval.Milliseconds(), KillAckTimeoutMs: t.KillAckTimeout.Milliseconds(),
			DeadTimeMs: t.DeadTime().Milliseconds()},
		HeartbeatMode: string(a.cfg.Cluster.HeartbeatMode), Steady: a.m.Steady(),
		Epoch: v.Epoch, Seq: v.Seq, Members: nonNilNodes(v.Members.Nodes()),
		Frozen: a.m.Frozen(), Uptime: (now - a.startAt).Round(time.Second).String(),
		ConfigDigest: fmt.Sprintf("%016x", ConfigDigest(a.cfg.Cluster)),
	}
	if _, f := a.m.Fenced(); f {
		st.Fenced = true
	}
	if l := a.m.Leader(); l.Valid() {
		st.Leader = &l
	}
	q := a.m.Quorum().Evaluate()
	st.Quorum = fmt.Sprintf("%d heartbeating, %d connected: continue", q.Heartbeating, q.Connected)
	if q.Fence {
		st.Quorum = q.Reason
	}
	for _, id := range a.m.Regions() {
		r := a.m.Region(id)
		rs := RegionStatus{UUID: r.Config().Name, Steady: a.m.RegionSteady(id), KillArea: r.Config().KillArea,
			Live: nonNilNodes(r.Live().Nodes()), Unresolved: r.Unresolved().Nodes()}
		if rio := a.regions[id]; rio != nil {
			rs.Device = rio.info.Path
		}
		st.Regions = append(st.Regions, rs)
	}
	if a.mode == heartbeat.Global {
		var active int
		st.RegionsConfigured, st.RegionsNeeded, active = a.m.RegionQuorum()
		for i := range st.Regions {
			st.Regions[i].Idle = active < st.RegionsNeeded
		}
		for _, mr := range a.m.MissingRegions() {
			st.MissingRegions = append(st.MissingRegions, MissingRegionStatus{UUID: mr.Name, Reason: mr.Why})
		}
	}
	live := a.m.Live()
	for _, n := range a.cfg.Cluster.Nodes {
		ns := NodeStatus{Name: n.Name, Number: n.Number, Address: n.AddrPort().String(), Self: n.Number == a.self.Number,
			Live: live.Has(n.Number), InView: v.Members.Has(n.Number), Slot: int(n.Number), HeartbeatAgeMs: -1, MountSlot: -1}
		if g := a.m.Generation(n.Number); g != 0 {
			ns.Generation = fmt.Sprintf("%016x", g)
		}
		for _, id := range a.m.Regions() {
			si := a.m.Region(id).Slot(n.Number)
			if si.Seq != 0 || si.Live {
				age := (now - si.LastChange).Milliseconds()
				if ns.HeartbeatAgeMs < 0 || age < ns.HeartbeatAgeMs {
					ns.HeartbeatAgeMs, ns.Missed = age, si.Missed
				}
			}
		}
		if ns.Self {
			ns.Connection = "self"
		} else {
			ls := a.m.Links().Status(n.Number)
			ns.Connection = ls.State.String()
			var why []string
			if ls.State == cnet.LinkLost && ls.Reason != "" {
				why = append(why, ls.Reason)
			}
			if ls.State == cnet.LinkConnecting || ls.State == cnet.LinkLost {
				// The last failed handshake says what differs (secret,
				// timeouts, configuration): what an operator must fix.
				if r := a.dialErr[n.Number]; r != "" {
					why = append(why, r)
				} else if r, ok := a.refused.Load(n.Number); ok {
					why = append(why, r.(string))
				}
			}
			if len(why) > 0 {
				ns.Connection += " (" + strings.Join(why, "; ") + ")"
			}
		}
		ns.Reason = a.whyNot(ns, live)
		st.Nodes = append(st.Nodes, ns)
	}
	return st
}

func nonNilNodes(n []base.NodeID) NodeList {
	if n == nil {
		return NodeList{}
	}
	return NodeList(n)
}

// whyNot says why a node is not in the cluster view.
func (a *Agent) whyNot(ns NodeStatus, live base.NodeMap) string {
	if ns.InView {
		return ""
	}
	configured, need, active := a.m.RegionQuorum()
	switch {
	case ns.Self && a.mode == heartbeat.Global && active < need:
		return fmt.Sprintf("this node found %d of the %d global heartbeat devices and needs %d to heartbeat (see the missing heartbeat regions)", active, configured, need)
	case ns.Self && len(a.m.Regions()) == 0:
		return "this node heartbeats on no region (local mode: no volume mounted; start one with o2go cluster heartbeat start)"
	case ns.Self && !a.m.Steady():
		return "this node's heartbeat is not steady yet"
	case ns.Self:
		return "waiting for the leader to add this node"
	case !ns.Live && ns.HeartbeatAgeMs < 0:
		return "not heartbeating (agent not running, or not on the same disk)"
	case !ns.Live:
		return "its heartbeat stopped: dead"
	case ns.Connection != "up":
		return "heartbeating, but not connected: " + ns.Connection
	}
	return "joining: waiting for its heartbeat to settle and every member to reach it"
}

// Status returns the agent's status. The slot map is read outside the
// event loop (a hung disk must not stop the heartbeat), within a second.
func (a *Agent) Status() (*Status, error) {
	var st *Status
	if err := a.doSync(func() { st = a.snapshot() }); err != nil {
		return nil, err
	}
	for _, r := range st.Regions {
		if r.Device == "" {
			continue
		}
		got := make(chan *ondisk.SlotMap, 1)
		go func(dev string) {
			sm, _ := ReadSlotMap(dev)
			got <- sm
		}(r.Device)
		select {
		case sm := <-got:
			if sm == nil {
				continue
			}
			for i := range st.Nodes {
				if slot, ok := sm.SlotOf(uint32(st.Nodes[i].Number)); ok {
					st.Nodes[i].MountSlot = slot
				}
			}
		case <-time.After(time.Second):
		}
		break
	}
	return st, nil
}

// OfflineStatus is the status shown when no agent runs: the configuration.
func OfflineStatus(cl *config.Cluster, st config.Settings, node string) *Status {
	t := st.Timeouts
	s := &Status{Stack: st.Stack, Cluster: cl.Name, Node: node, HeartbeatMode: string(cl.HeartbeatMode),
		Timeouts: StatusTimeouts{HeartbeatThreshold: t.HeartbeatThreshold, IdleTimeoutMs: t.IdleTimeout.Milliseconds(),
			KeepaliveDelayMs: t.KeepaliveDelay.Milliseconds(), ReconnectDelayMs: t.ReconnectDelay.Milliseconds(),
			HeartbeatIntervalMs: t.HeartbeatInterval.Milliseconds(), KillAckTimeoutMs: t.KillAckTimeout.Milliseconds(),
			DeadTimeMs: t.DeadTime().Milliseconds()},
		Members: NodeList{}}
	for _, n := range cl.Nodes {
		s.Nodes = append(s.Nodes, NodeStatus{Name: n.Name, Number: n.Number, Address: n.AddrPort().String(),
			Self: n.Name == node, Connection: "unknown", Slot: int(n.Number), HeartbeatAgeMs: -1, MountSlot: -1,
			Reason: "this node's agent is not running"})
	}
	return s
}

// registerControl adds the agent's own control methods.
func (a *Agent) registerControl() {
	type hbParams struct {
		Device string `json:"device"`
	}
	a.ctl.Register("status", func(context.Context, *ControlRequest) (any, error) { return a.Status() })
	a.ctl.Register("heartbeat.start", func(ctx context.Context, r *ControlRequest) (any, error) {
		var p hbParams
		if err := r.Decode(&p); err != nil {
			return nil, err
		}
		if p.Device == "" {
			return nil, errors.New("heartbeat.start: no device (give a path, UUID=... or LABEL=...)")
		}
		if a.cfg.Cluster.HeartbeatMode == config.HeartbeatGlobal {
			return nil, fmt.Errorf("cluster %s uses global heartbeat: its regions run with the agent; volumes need no heartbeat of their own", a.cfg.Cluster.Name)
		}
		return a.StartHeartbeat(p.Device)
	})
	a.ctl.Register("heartbeat.stop", func(ctx context.Context, r *ControlRequest) (any, error) {
		var p hbParams
		if err := r.Decode(&p); err != nil {
			return nil, err
		}
		if a.cfg.Cluster.HeartbeatMode == config.HeartbeatGlobal {
			return nil, fmt.Errorf("cluster %s uses global heartbeat: its regions stop with the agent", a.cfg.Cluster.Name)
		}
		return a.StopHeartbeat(p.Device)
	})
	a.ctl.Register("heartbeat.list", func(context.Context, *ControlRequest) (any, error) { return a.Heartbeats(), nil })
	a.ctl.Register("fence", func(ctx context.Context, r *ControlRequest) (any, error) {
		if r.Cred.UID != 0 {
			return nil, errors.New("only root may fence this node")
		}
		a.fenceFromOutside(fmt.Sprintf("an operator asked for it (pid %d)", r.Cred.PID))
		return "fencing", nil
	})
	a.ctl.Register("pid", func(context.Context, *ControlRequest) (any, error) { return os.Getpid(), nil })
	a.ctl.Register("events", func(context.Context, *ControlRequest) (any, error) { return a.Events(), nil })
	a.ctl.Register("links", func(context.Context, *ControlRequest) (any, error) { return a.LinkProblems() })
}

// LinkProblem is the last reason a connection to a node failed.
type LinkProblem struct {
	Node   base.NodeID `json:"node"`
	Reason string      `json:"reason"`
}

// LinkProblems lists, for each node this agent cannot connect to, the last
// reason (a refused handshake says which setting differs).
func (a *Agent) LinkProblems() ([]LinkProblem, error) {
	var out []LinkProblem
	err := a.doSync(func() {
		for _, n := range a.cfg.Cluster.Nodes {
			if n.Number == a.self.Number {
				continue
			}
			if r := a.dialErr[n.Number]; r != "" {
				out = append(out, LinkProblem{Node: n.Number, Reason: r})
				continue
			}
			if a.m.Conn(n.Number) == 0 {
				if r, ok := a.refused.Load(n.Number); ok {
					out = append(out, LinkProblem{Node: n.Number, Reason: r.(string)})
					continue
				}
			}
			if ls := a.m.Links().Status(n.Number); ls.State == cnet.LinkLost {
				out = append(out, LinkProblem{Node: n.Number, Reason: ls.Reason})
			}
		}
	})
	return out, err
}
