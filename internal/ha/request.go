package ha

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"o2go/internal/base"
)

// Request is an operator's request, made on any node and carried out by
// the coordinator.
type Request struct {
	Op     string  `json:"op"`
	Group  string  `json:"group,omitempty"`
	Node   string  `json:"node,omitempty"` // move: a node name, or "default"
	Sticky bool    `json:"sticky,omitempty"`
	Config *Config `json:"config,omitempty"` // config, restore: the new configuration; its Version is the one it was edited from
	// restore: stickiness and stopped groups from the snapshot
	StickyOn map[string]string `json:"sticky_on,omitempty"`
	Stopped  []string          `json:"stopped,omitempty"`
	Event    string            `json:"event,omitempty"` // emulate
	Args     []string          `json:"args,omitempty"`
}

// Request operations.
const (
	ReqStatus  = "status"
	ReqMove    = "move"
	ReqStart   = "start"
	ReqStop    = "stop"
	ReqConfig  = "config"
	ReqRestore = "restore"
	ReqVerify  = "verify"
	ReqEmulate = "emulate"
)

// MoveDefault, as a move's node, clears stickiness and non-sticky moves
// (HACMP's DARE "Default" location).
const MoveDefault = "default"

// Status is the cluster's HA status (`o2go ha status`, like clstat and
// clRGinfo): every group's state, where it runs and why, each node's view of
// it with its resources, and the last events.
type Status struct {
	Node          string        `json:"node"` // the node that answered
	Coordinator   string        `json:"coordinator"`
	Partial       bool          `json:"partial,omitempty"` // only this node's view: the coordinator could not be asked
	ConfigVersion uint64        `json:"config_version"`
	ConfigDigest  string        `json:"config_digest"`
	StateVersion  uint64        `json:"state_version"`
	Members       []string      `json:"members"`
	Up            []string      `json:"up,omitempty"` // members running HA, ready, not leaving
	Groups        []GroupStatus `json:"groups"`
	Events        []Record      `json:"events,omitempty"`
}

// GroupStatus is one group in Status.
type GroupStatus struct {
	Name    string            `json:"name"`
	State   string            `json:"state"` // online, offline, moving, error, unmanaged
	Nodes   []string          `json:"nodes,omitempty"`
	Target  []string          `json:"target,omitempty"`
	Why     string            `json:"why,omitempty"`
	Sticky  string            `json:"sticky,omitempty"`
	Prefer  string            `json:"prefer,omitempty"`
	Failed  []string          `json:"failed,omitempty"`
	Offline bool              `json:"offline,omitempty"` // kept offline (operator stop, fallover policy)
	OnNodes []NodeGroupStatus `json:"on_nodes,omitempty"`
}

// NodeGroupStatus is a group as one node reports it.
type NodeGroupStatus struct {
	Node string `json:"node"`
	GroupReport
}

// VerifyReport is the answer of `o2go ha verify`.
type VerifyReport struct {
	ConfigVersion uint64       `json:"config_version"`
	ConfigDigest  string       `json:"config_digest"`
	Nodes         []NodeVerify `json:"nodes"`
	Problems      []string     `json:"problems,omitempty"`
}

// NodeVerify is one node's part of a VerifyReport.
type NodeVerify struct {
	Node          string   `json:"node"`
	ConfigVersion uint64   `json:"config_version"`
	ConfigDigest  string   `json:"config_digest"`
	Problems      []string `json:"problems,omitempty"`
}

// MoveResult answers move, start and stop.
type MoveResult struct {
	Group  string   `json:"group"`
	Target []string `json:"target"`
	Why    string   `json:"why"`
}

// ConfigResult answers config and restore.
type ConfigResult struct {
	Version uint64 `json:"version"`
	Digest  string `json:"digest"`
}

const verifyTimeout = 15 * time.Second

type verifyRound struct {
	id       uint64
	cfg      *Config
	current  bool // checking the configuration in force (compare digests)
	waiting  base.NodeMap
	results  map[base.NodeID]*checkedMsg
	problems []string
	deadline time.Duration
	done     func(*VerifyReport)
}

func (c *coordinator) reply(to base.NodeID, id uint64, v any, err error) {
	n := c.n
	m := replyMsg{Seq: n.seq, ID: id}
	if err != nil {
		m.Err = err.Error()
	} else if v != nil {
		m.Value = encode(v)
	}
	if to == n.self {
		n.rd.Replies = append(n.rd.Replies, Reply{ID: id, Err: m.Err, Value: m.Value})
		return
	}
	n.send(to, MsgReply, m)
}

func (c *coordinator) groupNames() string {
	var s []string
	for _, g := range c.n.cfg.Groups {
		s = append(s, g.Name)
	}
	if len(s) == 0 {
		return "none configured"
	}
	return strings.Join(s, ", ")
}

// request carries out an operator's request.
func (c *coordinator) request(from base.NodeID, id uint64, req *Request) {
	n := c.n
	if !c.synced {
		c.deferred = append(c.deferred, deferredReq{from, id, req})
		return
	}
	fail := func(format string, args ...any) { c.reply(from, id, nil, fmt.Errorf(format, args...)) }
	switch req.Op {
	case ReqStatus:
		c.reply(from, id, c.status(), nil)
	case ReqMove, ReqStart, ReqStop:
		g := n.res.Group(req.Group)
		if n.res == nil || g == nil {
			fail("no group %q (groups: %s)", req.Group, c.groupNames())
			return
		}
		apply, err := c.checkMove(req, g)
		if err != nil {
			c.reply(from, id, nil, err)
			return
		}
		args := []string{g.Name, req.Op}
		if req.Op == ReqMove {
			args = append(args, req.Node)
			if req.Sticky {
				args = append(args, "sticky")
			}
		}
		c.queue(&cevent{name: EvRGMove, group: g.Name, args: args, apply: func() {
			apply()
			c.upkeep()
			ds := c.place()
			d := ds[g.Index]
			c.reply(from, id, MoveResult{Group: g.Name, Target: c.names(d.Target), Why: d.Why}, nil)
		}})
	case ReqConfig, ReqRestore:
		if req.Config == nil {
			fail("%s: no configuration given", req.Op)
			return
		}
		if req.Config.Version != n.cfg.Version {
			fail("the configuration changed meanwhile (version %d is in force; the change was made to version %d): show it again, redo the change and retry",
				n.cfg.Version, req.Config.Version)
			return
		}
		base := n.cfg.Version
		proposed := req.Config.Clone()
		proposed.Version = base + 1
		r, err := Validate(proposed, n.topo)
		if err != nil {
			c.reply(from, id, nil, err)
			return
		}
		var restore *State
		if req.Op == ReqRestore {
			snap := &Snapshot{Format: SnapshotFormat, Config: r.Config, Sticky: req.StickyOn, Stopped: req.Stopped}
			if restore, err = snap.RestoreState(n.topo); err != nil {
				c.reply(from, id, nil, err)
				return
			}
		}
		c.startVerify(r.Config, false, func(v *VerifyReport) {
			if len(v.Problems) > 0 {
				c.reply(from, id, nil, &ConfigError{Problems: v.Problems})
				return
			}
			c.queue(&cevent{name: EvReconfig, args: []string{fmt.Sprint(base + 1)}, apply: func() {
				if n.cfg.Version != base {
					fail("the configuration changed meanwhile (version %d is in force): show it again, redo the change and retry", n.cfg.Version)
					return
				}
				n.setConfig(r.Config)
				c.mutate(func(s *State) {
					if restore != nil {
						for _, g := range restore.Groups {
							cur := s.Group(g.Name)
							cur.Offline, cur.OfflineWhy, cur.Sticky = g.Offline, g.OfflineWhy, g.Sticky
							s.set(cur)
						}
					}
				})
				for _, m := range n.members.Nodes() {
					n.send(m, MsgConfig, configMsg{Seq: n.seq, Config: n.cfg})
				}
				c.reply(from, id, ConfigResult{Version: n.cfg.Version, Digest: n.cfg.Digest()}, nil)
			}})
		})
	case ReqVerify:
		cfg := n.cfg
		var pre []string
		if _, err := Validate(cfg, n.topo); err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) {
				pre = ce.Problems
			} else {
				pre = []string{err.Error()}
			}
		}
		c.startVerify(cfg, true, func(v *VerifyReport) {
			v.Problems = append(pre, v.Problems...)
			c.reply(from, id, v, nil)
		})
	case ReqEmulate:
		p, err := c.emulate(req.Event, req.Args)
		c.reply(from, id, p, err)
	default:
		fail("unknown request %q", req.Op)
	}
}

func (c *coordinator) names(m base.NodeMap) []string {
	var out []string
	for _, x := range m.Nodes() {
		out = append(out, c.n.topo.Name(x))
	}
	return out
}

// upNodes are the nodes that may take groups now.
func (c *coordinator) upNodes() base.NodeMap { return c.placeInput().Up }

// checkMove validates move/start/stop and returns the state change to apply.
func (c *coordinator) checkMove(req *Request, g *RGroup) (func(), error) {
	n := c.n
	switch req.Op {
	case ReqStart:
		return func() {
			c.mutate(func(s *State) {
				gs := s.Group(g.Name)
				if gs.Unmanaged.Valid() {
					c.manage[gs.Unmanaged] = append(c.manage[gs.Unmanaged], g.Name)
				}
				gs.Offline, gs.OfflineWhy, gs.Failed = false, "", nil
				gs.Parked, gs.Forced = base.InvalidNode, base.InvalidNode
				s.set(gs)
			})
		}, nil
	case ReqStop:
		return func() {
			c.mutate(func(s *State) {
				gs := s.Group(g.Name)
				gs.Offline, gs.OfflineWhy = true, "stopped by the operator"
				gs.Prefer = base.InvalidNode
				s.set(gs)
			})
		}, nil
	}
	if g.Concurrent() {
		return nil, fmt.Errorf("group %s is concurrent (it runs on every available node): move does not apply; use start or stop", g.Name)
	}
	if req.Node == MoveDefault || req.Node == "" {
		return func() {
			c.mutate(func(s *State) {
				gs := s.Group(g.Name)
				gs.Sticky, gs.Prefer = base.InvalidNode, base.InvalidNode
				gs.Offline, gs.OfflineWhy = false, ""
				s.set(gs)
			})
		}, nil
	}
	x, ok := n.topo.ID(req.Node)
	if !ok {
		return nil, fmt.Errorf("node %q is not a node of the cluster (nodes: %s)", req.Node, n.topo.names())
	}
	if !g.NodeSet.Has(x) {
		return nil, fmt.Errorf("node %s is not in group %s's node list (%s): add it to the group first", req.Node, g.Name, strings.Join(g.Group.Nodes, ", "))
	}
	if !c.upNodes().Has(x) {
		return nil, fmt.Errorf("node %s is not available (not a member, not running HA, or leaving): members are %s", req.Node, strings.Join(c.names(n.members), ", "))
	}
	if r := c.reports[x]; r != nil {
		for _, net := range g.Networks {
			for _, d := range r.NetDown {
				if d == net {
					return nil, fmt.Errorf("node %s has lost network %s, which group %s needs", req.Node, net, g.Name)
				}
			}
		}
	}
	sticky := req.Sticky
	return func() {
		c.mutate(func(s *State) {
			gs := s.Group(g.Name)
			gs.Failed = removeNode(gs.Failed, x)
			gs.Offline, gs.OfflineWhy = false, ""
			gs.Parked, gs.Forced = base.InvalidNode, base.InvalidNode
			if sticky {
				gs.Sticky, gs.Prefer = x, base.InvalidNode
			} else {
				gs.Sticky, gs.Prefer = base.InvalidNode, x
			}
			s.set(gs)
		})
	}, nil
}

// startVerify asks every member for the local checks of cfg.
func (c *coordinator) startVerify(cfg *Config, current bool, done func(*VerifyReport)) {
	n := c.n
	c.nextVID++
	v := &verifyRound{id: c.nextVID, cfg: cfg, current: current, results: map[base.NodeID]*checkedMsg{},
		deadline: n.now + verifyTimeout, done: done}
	for _, m := range n.members.Nodes() {
		if c.reports[m] == nil {
			v.problems = append(v.problems, fmt.Sprintf("%s: a member of the cluster that runs no HA: start its agent", n.topo.Name(m)))
			continue
		}
		v.waiting.Add(m)
	}
	for _, nd := range n.topo.Nodes {
		if !n.members.Has(nd.ID) && cfgUses(cfg, nd.Name) {
			v.problems = append(v.problems, fmt.Sprintf("%s: not a member now: its scripts and interfaces could not be checked", nd.Name))
		}
	}
	c.verifies[v.id] = v
	for _, m := range v.waiting.Nodes() {
		if m == n.self {
			id := n.newID()
			n.checks[id] = v.id
			n.rd.Checks = append(n.rd.Checks, CheckRun{ID: id, Config: cfg, Active: n.activeGroups()})
			continue
		}
		n.send(m, MsgCheck, checkMsg{Seq: n.seq, ID: v.id, Config: cfg})
	}
	if v.waiting.Empty() {
		delete(c.verifies, v.id)
		c.finishVerify(v)
	}
}

func cfgUses(cfg *Config, node string) bool {
	for _, g := range cfg.Groups {
		for _, x := range g.Nodes {
			if x == node {
				return true
			}
		}
	}
	return false
}

func (c *coordinator) checked(from base.NodeID, m *checkedMsg) {
	v := c.verifies[m.ID]
	if v == nil || !v.waiting.Has(from) {
		return
	}
	v.waiting.Remove(from)
	v.results[from] = m
	if v.waiting.Empty() {
		delete(c.verifies, v.id)
		c.finishVerify(v)
	}
}

func (c *coordinator) finishVerify(v *verifyRound) {
	n := c.n
	rep := &VerifyReport{ConfigVersion: v.cfg.Version, ConfigDigest: v.cfg.Digest()}
	var ids []base.NodeID
	for id := range v.results {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		m := v.results[id]
		name := n.topo.Name(id)
		nv := NodeVerify{Node: name, ConfigVersion: m.ConfigVer, ConfigDigest: m.ConfigDigest, Problems: m.Problems}
		for _, p := range m.Problems {
			rep.Problems = append(rep.Problems, name+": "+p)
		}
		if v.current && m.ConfigDigest != rep.ConfigDigest {
			p := fmt.Sprintf("%s: holds configuration version %d (digest %s), the coordinator version %d (digest %s): it is sent the coordinator's; run verify again",
				name, m.ConfigVer, m.ConfigDigest, rep.ConfigVersion, rep.ConfigDigest)
			nv.Problems = append(nv.Problems, p)
			rep.Problems = append(rep.Problems, p)
		}
		rep.Nodes = append(rep.Nodes, nv)
	}
	rep.Problems = append(rep.Problems, v.problems...)
	v.done(rep)
}

// status builds the cluster's status from the reports.
func (c *coordinator) status() *Status {
	n := c.n
	st := &Status{Node: n.name, Coordinator: n.name, ConfigVersion: n.cfg.Version, ConfigDigest: n.cfg.Digest(),
		StateVersion: n.state.Version, Members: c.names(n.members), Up: c.names(c.upNodes())}
	if n.res != nil {
		ds := c.decisions
		if len(ds) != len(n.res.Groups) {
			ds = c.place()
		}
		for _, g := range n.res.Groups {
			d := ds[g.Index]
			gs := n.state.Group(g.Name)
			s := GroupStatus{Name: g.Name, Target: c.names(d.Target), Why: d.Why, Failed: c.names(nodeMap(gs.Failed)), Offline: gs.Offline}
			if gs.Sticky.Valid() {
				s.Sticky = n.topo.Name(gs.Sticky)
			}
			if gs.Prefer.Valid() {
				s.Prefer = n.topo.Name(gs.Prefer)
			}
			var ids []base.NodeID
			for id := range c.reports {
				ids = append(ids, id)
			}
			sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
			var online base.NodeMap
			moving, unmanaged := false, false
			for _, id := range ids {
				gr := c.reports[id].group(g.Name)
				if gr.Phase == phOffline.String() && !gr.Want && len(gr.Resources) == 0 {
					continue
				}
				if !g.NodeSet.Has(id) {
					continue
				}
				s.OnNodes = append(s.OnNodes, NodeGroupStatus{Node: n.topo.Name(id), GroupReport: gr})
				switch gr.Phase {
				case phOnline.String():
					online.Add(id)
				case phUnmanaged.String():
					online.Add(id)
					unmanaged = true
				case phOffline.String(), "error":
				default:
					moving = true
				}
			}
			s.Nodes = c.names(online)
			switch {
			case unmanaged:
				s.State = "unmanaged"
			case moving || (online != d.Target && !d.Target.Empty()):
				s.State = "moving"
			case !online.Empty():
				s.State = "online"
			case len(gs.Failed) > 0 && !gs.Offline:
				s.State = "error"
			default:
				s.State = "offline"
			}
			st.Groups = append(st.Groups, s)
		}
	}
	st.Events = n.History(0, 10)
	return st
}

// Decode helpers for drivers and commands.

// DecodeStatus decodes a status reply.
func DecodeStatus(b json.RawMessage) (*Status, error) {
	var s Status
	err := json.Unmarshal(b, &s)
	return &s, err
}
