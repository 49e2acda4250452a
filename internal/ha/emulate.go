package ha

import (
	"fmt"
	"strings"
	"time"

	"o2go/internal/base"
)

// Plan is what an event would do (`o2go ha emulate`, HACMP's event
// emulation): the scripts it would run and where, the groups that would
// move, and each node's actions. Nothing is done.
type Plan struct {
	Event   string   `json:"event"`
	Args    []string `json:"args,omitempty"`
	Scripts []string `json:"scripts,omitempty"`
	Moves   []Move   `json:"moves,omitempty"`
	Actions []string `json:"actions,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// Move is one group's placement before and after the event.
type Move struct {
	Group string   `json:"group"`
	From  []string `json:"from"`
	To    []string `json:"to"`
	Why   string   `json:"why"`
}

// EmulateUsage lists the events emulate understands.
const EmulateUsage = `node_up NODE | node_down NODE [graceful|takeover|forced|failed] | network_down NODE NETWORK |
network_up NODE NETWORK | rg_move GROUP NODE [sticky] | rg_online GROUP | rg_offline GROUP |
resource_failed GROUP RESOURCE | rg_error GROUP NODE`

func (c *coordinator) emulate(ev string, args []string) (*Plan, error) {
	n := c.n
	if n.res == nil {
		return nil, fmt.Errorf("no usable configuration (version %d): nothing to emulate", n.cfg.Version)
	}
	in := c.placeInput()
	before := Place(in)
	h := &PlaceInput{Config: n.res, Up: in.Up, State: n.state.Clone(), Now: in.Now, NetDown: map[base.NodeID][]string{},
		BestSince: map[string]time.Duration{}, PlaceSince: map[string]time.Duration{}}
	for k, v := range in.NetDown {
		h.NetDown[k] = append([]string(nil), v...)
	}
	// Timers as if they had run out: emulation shows where things end up.
	p := &Plan{Event: ev, Args: args}
	need := func(k int, usage string) error {
		if len(args) < k {
			return fmt.Errorf("%s needs %s", ev, usage)
		}
		return nil
	}
	node := func(name string) (base.NodeID, error) {
		x, ok := n.topo.ID(name)
		if !ok {
			return 0, fmt.Errorf("node %q is not a node of the cluster (nodes: %s)", name, n.topo.names())
		}
		return x, nil
	}
	group := func(name string) (*RGroup, error) {
		g := n.res.Group(name)
		if g == nil {
			return nil, fmt.Errorf("no group %q (groups: %s)", name, c.groupNames())
		}
		return g, nil
	}
	edit := func(name string, f func(gs *GroupState)) {
		gs := h.State.Group(name)
		f(&gs)
		h.State.set(gs)
	}
	var where base.NodeID = n.self // the node whose scripts run
	switch ev {
	case EvNodeUp:
		if err := need(1, "NODE"); err != nil {
			return nil, err
		}
		x, err := node(args[0])
		if err != nil {
			return nil, err
		}
		if h.Up.Has(x) {
			p.Notes = append(p.Notes, fmt.Sprintf("%s is up already: emulating it as if it joined now", args[0]))
		}
		h.Up.Add(x)
		for _, g := range n.res.Groups {
			edit(g.Name, func(gs *GroupState) {
				gs.Failed = removeNode(gs.Failed, x)
				if gs.Parked == x {
					gs.Parked, gs.Owners = base.InvalidNode, nil
				}
				if gs.Forced == x {
					gs.Forced = base.InvalidNode
				}
			})
		}
	case EvNodeDown:
		if err := need(1, "NODE [graceful|takeover|forced|failed]"); err != nil {
			return nil, err
		}
		x, err := node(args[0])
		if err != nil {
			return nil, err
		}
		mode := "failed"
		if len(args) > 1 {
			mode = args[1]
		}
		switch mode {
		case "graceful", "takeover", "forced", "failed":
		default:
			return nil, fmt.Errorf("node_down mode %q: use graceful, takeover, forced or failed", mode)
		}
		h.Up.Remove(x)
		if x == n.self {
			where = h.Up.Lowest()
		}
		for _, g := range n.res.Groups {
			edit(g.Name, func(gs *GroupState) {
				if !hasNode(gs.Owners, x) {
					return
				}
				switch {
				case mode == "graceful" && !g.Concurrent():
					gs.Parked = x
				case mode == "forced":
					gs.Forced = x
				case mode == "failed" && g.Fallover == FalloverOffline && !g.Concurrent():
					gs.Offline, gs.OfflineWhy, gs.Owners = true, "fallover policy \"offline\"", nil
				}
			})
		}
		if mode == "forced" {
			p.Notes = append(p.Notes, "a forced node_down runs no event script and leaves the node's resources running")
		}
	case EvNetworkDown, EvNetworkUp:
		if err := need(2, "NODE NETWORK"); err != nil {
			return nil, err
		}
		x, err := node(args[0])
		if err != nil {
			return nil, err
		}
		if n.cfg.Network(args[1]) == nil {
			return nil, fmt.Errorf("network %q is not defined", args[1])
		}
		where = x
		var l []string
		for _, d := range h.NetDown[x] {
			if d != args[1] {
				l = append(l, d)
			}
		}
		if ev == EvNetworkDown {
			l = append(l, args[1])
		}
		h.NetDown[x] = l
	case EvRGMove:
		if err := need(2, "GROUP NODE [sticky]"); err != nil {
			return nil, err
		}
		g, err := group(args[0])
		if err != nil {
			return nil, err
		}
		req := &Request{Op: ReqMove, Group: g.Name, Node: args[1], Sticky: len(args) > 2 && args[2] == "sticky"}
		if _, err := c.checkMove(req, g); err != nil {
			return nil, err
		}
		x, _ := n.topo.ID(args[1])
		edit(g.Name, func(gs *GroupState) {
			gs.Failed = removeNode(gs.Failed, x)
			gs.Offline = false
			if req.Sticky {
				gs.Sticky, gs.Prefer = x, base.InvalidNode
			} else {
				gs.Sticky, gs.Prefer = base.InvalidNode, x
			}
		})
	case EvRGOnline, EvRGOffline:
		if err := need(1, "GROUP"); err != nil {
			return nil, err
		}
		g, err := group(args[0])
		if err != nil {
			return nil, err
		}
		edit(g.Name, func(gs *GroupState) {
			gs.Offline = ev == EvRGOffline
			if gs.Offline {
				gs.Prefer = base.InvalidNode
			} else {
				gs.Failed, gs.Parked, gs.Forced = nil, base.InvalidNode, base.InvalidNode
			}
		})
	case EvResourceFail, EvRGError:
		if err := need(2, "GROUP RESOURCE|NODE"); err != nil {
			return nil, err
		}
		g, err := group(args[0])
		if err != nil {
			return nil, err
		}
		var x base.NodeID = base.InvalidNode
		if ev == EvResourceFail {
			var res *Resource
			for i := range g.Resources {
				if g.Resources[i].Name == args[1] {
					res = &g.Resources[i]
				}
			}
			if res == nil {
				return nil, fmt.Errorf("group %s has no resource %q", g.Name, args[1])
			}
			owners := nodeMap(n.state.Group(g.Name).Owners)
			x = owners.Lowest()
			if !x.Valid() {
				return nil, fmt.Errorf("group %s is not online anywhere: a monitor cannot fail", g.Name)
			}
			where = x
			t := TimingsOf(&n.cfg.Settings, res)
			used := 0
			if r := c.reports[x]; r != nil {
				for _, rr := range r.group(g.Name).Resources {
					if rr.Name == res.Name {
						used = rr.Restarts
					}
				}
			}
			if used < t.RestartAttempts {
				p.Notes = append(p.Notes, fmt.Sprintf("%s would be restarted in place on %s (restart %d of %d within %v); the group stays",
					res.Name, n.topo.Name(x), used+1, t.RestartAttempts, t.RestartInterval))
				c.planScripts(p, EvResourceFail, x, g.Name)
				return p, nil
			}
			p.Notes = append(p.Notes, fmt.Sprintf("%s has used its %d restarts on %s: the group falls over", res.Name, t.RestartAttempts, n.topo.Name(x)))
		} else {
			x, err = node(args[1])
			if err != nil {
				return nil, err
			}
			where = x
		}
		edit(g.Name, func(gs *GroupState) {
			gs.Failed = addNode(gs.Failed, x)
			if g.Fallover == FalloverOffline && !g.Concurrent() {
				gs.Offline, gs.OfflineWhy, gs.Owners = true, "fallover policy \"offline\"", nil
			}
		})
	default:
		return nil, fmt.Errorf("cannot emulate %q: events are %s", ev, EmulateUsage)
	}
	if !(ev == EvNodeDown && len(args) > 1 && args[1] == "forced") {
		c.planScripts(p, ev, where, "")
	}
	for _, g := range n.res.Groups {
		h.BestSince[g.Name] = -1 << 62
		h.PlaceSince[g.Name] = -1 << 62
	}
	after := Place(h)
	for _, g := range n.res.Groups {
		b, a := before[g.Index], after[g.Index]
		if b.Target == a.Target {
			continue
		}
		p.Moves = append(p.Moves, Move{Group: g.Name, From: c.names(b.Target), To: c.names(a.Target), Why: a.Why})
		for _, x := range b.Target.Minus(a.Target).Nodes() {
			var res []string
			for i := len(g.Resources) - 1; i >= 0; i-- {
				res = append(res, g.Resources[i].Name)
			}
			p.Actions = append(p.Actions, fmt.Sprintf("%s: rg_offline %s: stop %s; release the group's lock", n.topo.Name(x), g.Name, strings.Join(res, ", ")))
			c.planScripts(p, EvRGOffline, x, g.Name)
		}
		for _, x := range a.Target.Minus(b.Target).Nodes() {
			var res []string
			for _, r := range g.Resources {
				res = append(res, r.Name)
			}
			mode := "EX"
			if g.Concurrent() {
				mode = "PR"
			}
			p.Actions = append(p.Actions, fmt.Sprintf("%s: rg_online %s: take the group's lock (%s); start %s", n.topo.Name(x), g.Name, mode, strings.Join(res, ", ")))
			c.planScripts(p, EvRGOnline, x, g.Name)
		}
	}
	if len(p.Moves) == 0 {
		p.Notes = append(p.Notes, "no group would move")
	}
	return p, nil
}

func (c *coordinator) planScripts(p *Plan, ev string, where base.NodeID, group string) {
	sc := c.n.cfg.EventScripts(ev)
	on := c.n.topo.Name(where)
	what := ev
	if group != "" {
		what += " " + group
	}
	for _, s := range []struct{ ph, path string }{{PhaseNotify, sc.Notify}, {PhasePre, sc.Pre}, {PhasePost, sc.Post}, {PhaseNotify, sc.Notify}} {
		if s.path != "" {
			p.Scripts = append(p.Scripts, fmt.Sprintf("%s: %s %s: %s", on, what, s.ph, s.path))
		}
	}
}
