package ha

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"o2go/internal/base"
)

// Topology is the cluster's nodes (from cluster.conf): names as the
// configuration uses them, numbers as membership and the DLM do.
type Topology struct {
	Nodes []TopoNode `json:"nodes"`
}

// TopoNode is one node of the topology.
type TopoNode struct {
	Name string      `json:"name"`
	ID   base.NodeID `json:"id"`
}

// ID returns the number of node name.
func (t *Topology) ID(name string) (base.NodeID, bool) {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n.ID, true
		}
	}
	return base.InvalidNode, false
}

// Name returns the name of node id ("node N" when unknown).
func (t *Topology) Name(id base.NodeID) string {
	for _, n := range t.Nodes {
		if n.ID == id {
			return n.Name
		}
	}
	return fmt.Sprintf("node %d", id)
}

func (t *Topology) names() string {
	var s []string
	for _, n := range t.Nodes {
		s = append(s, n.Name)
	}
	return strings.Join(s, ", ")
}

// ConfigError is a refused configuration: every problem found, each saying
// what to fix. Nothing of a refused configuration is applied.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return "HA configuration refused: " + e.Problems[0]
	}
	return fmt.Sprintf("HA configuration refused (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// Resolved is a validated configuration with node names resolved and the
// groups in placement order: every group after the groups it depends on,
// otherwise by name.
type Resolved struct {
	Config *Config
	Topo   Topology
	Groups []*RGroup
	byName map[string]*RGroup
}

// RGroup is a validated group.
type RGroup struct {
	*Group
	Index         int           // position in Resolved.Groups
	NodeIDs       []base.NodeID // the node list, in priority order
	NodeSet       base.NodeMap
	Networks      []string // the networks its service addresses need
	Parents       []*RGroup
	SameNode      []*RGroup
	DifferentNode []*RGroup
	Children      []*RGroup // groups that name this one as a parent
}

// Group returns the resolved group named name, or nil.
func (r *Resolved) Group(name string) *RGroup { return r.byName[name] }

// priority is the position of n in the group's node list (-1: absent).
func (g *RGroup) priority(n base.NodeID) int {
	for i, x := range g.NodeIDs {
		if x == n {
			return i
		}
	}
	return -1
}

// MaxNameLen bounds group, resource and network names: a group's lock name
// ("G:" + name) must fit the DLM's 64 bytes.
const MaxNameLen = 48

func validName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Validate checks cfg against the cluster's topology and resolves it. It
// collects every problem rather than stopping at the first, and each says
// what to fix. Defaults are filled in on the returned copy.
func Validate(in *Config, topo Topology) (*Resolved, error) {
	cfg := in.Clone()
	if cfg == nil {
		cfg = &Config{}
	}
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	s := &cfg.Settings
	for _, d := range []struct {
		name string
		v    Duration
	}{{"restart_interval", s.RestartInterval}, {"monitor_interval", s.MonitorInterval}, {"monitor_timeout", s.MonitorTimeout},
		{"start_timeout", s.StartTimeout}, {"stop_timeout", s.StopTimeout}, {"script_timeout", s.ScriptTimeout},
		{"config_too_long", s.ConfigTooLong}, {"settling_time", s.SettlingTime}} {
		if d.v < 0 {
			add("settings: %s is %v: give a positive duration, or leave it out for the default", d.name, d.v)
		}
	}
	if s.RestartAttempts < -1 {
		add("settings: restart_attempts is %d: give a count >= 0 (-1: never restart in place)", s.RestartAttempts)
	}
	switch s.StopFailure {
	case "", StopFailureFence, StopFailureUnmanaged:
	default:
		add("settings: stop_failure %q: use %q or %q", s.StopFailure, StopFailureFence, StopFailureUnmanaged)
	}

	nets := map[string]*Network{}
	for i := range cfg.Networks {
		n := &cfg.Networks[i]
		switch {
		case !validName(n.Name):
			add("network %q: a name is 1..%d letters, digits, '-', '_' or '.'", n.Name, MaxNameLen)
		case nets[n.Name] != nil:
			add("network %q is defined twice: remove one definition", n.Name)
		}
		nets[n.Name] = n
		if len(n.Interfaces) == 0 && len(n.PerNode) < len(topo.Nodes) {
			add("network %s: no interfaces: list them (\"interfaces\": [\"eth0\"]) or give every node its own (\"per_node\")", n.Name)
		}
		for node := range n.PerNode {
			if _, ok := topo.ID(node); !ok {
				add("network %s: per_node names %q, which is not a node of the cluster (nodes: %s)", n.Name, node, topo.names())
			}
		}
	}

	groups := map[string]*Group{}
	resNames := map[string]string{}
	addrs := map[netip.Addr]string{}
	for gi := range cfg.Groups {
		g := &cfg.Groups[gi]
		if !validName(g.Name) {
			add("group %q: a name is 1..%d letters, digits, '-', '_' or '.'", g.Name, MaxNameLen)
		} else if groups[g.Name] != nil {
			add("group %s is defined twice: remove one definition, or rename one", g.Name)
		}
		groups[g.Name] = g
		if len(g.Nodes) == 0 {
			add("group %s: no nodes: list the nodes that may run it, highest priority first (cluster nodes: %s)", g.Name, topo.names())
		}
		seen := map[string]bool{}
		for _, n := range g.Nodes {
			if _, ok := topo.ID(n); !ok {
				add("group %s: node %q is not a node of the cluster (nodes: %s)", g.Name, n, topo.names())
			}
			if seen[n] {
				add("group %s: node %s is listed twice: list each node once", g.Name, n)
			}
			seen[n] = true
		}
		switch g.Startup {
		case "":
			g.Startup = StartupFirst
		case StartupHome, StartupFirst, StartupAll:
		default:
			add("group %s: startup %q: use %q (online on home node only), %q (on first available node) or %q (on all available nodes)",
				g.Name, g.Startup, StartupHome, StartupFirst, StartupAll)
		}
		switch g.Fallover {
		case "":
			g.Fallover = FalloverNext
		case FalloverNext, FalloverOffline:
		default:
			add("group %s: fallover %q: use %q (to the next priority node) or %q (bring offline)", g.Name, g.Fallover, FalloverNext, FalloverOffline)
		}
		switch g.Fallback {
		case "":
			if g.Startup == StartupHome {
				g.Fallback = FallbackHigher
			} else {
				g.Fallback = FallbackNever
			}
		case FallbackNever:
		case FallbackHigher:
			// "never" is what a concurrent group resolves to: a resolved
			// configuration validates again as it is.
			if g.Startup == StartupAll {
				add("group %s: fallback does not apply to a concurrent group (startup %q): remove it", g.Name, StartupAll)
			}
		default:
			add("group %s: fallback %q: use %q (to a higher priority node) or %q", g.Name, g.Fallback, FallbackHigher, FallbackNever)
		}
		if g.FallbackDelay < 0 || (g.FallbackDelay > 0 && g.Fallback != FallbackHigher) {
			add("group %s: fallback_delay %v needs fallback %q and a positive duration", g.Name, g.FallbackDelay, FallbackHigher)
		}
		if g.Startup == StartupAll && g.Fallover == FalloverNext {
			g.Fallover = FalloverOffline // a concurrent group has nowhere else to go
		}
		if g.Startup == StartupAll {
			g.Fallback = FallbackNever
		}
		rseen := map[string]bool{}
		for ri := range g.Resources {
			r := &g.Resources[ri]
			where := fmt.Sprintf("group %s: resource %q", g.Name, r.Name)
			if !validName(r.Name) {
				add("%s: a name is 1..%d letters, digits, '-', '_' or '.'", where, MaxNameLen)
			} else if rseen[r.Name] {
				add("%s is defined twice in the group: rename one", where)
			} else if other, ok := resNames[r.Name]; ok {
				add("%s: the name is used in group %s too: resource names are cluster-wide, rename one", where, other)
			}
			rseen[r.Name] = true
			resNames[r.Name] = g.Name
			validateResource(r, where, nets, addrs, add)
			if g.Startup == StartupAll && r.Type == TypeFS {
				// Mounted on every node at once: only a clustered volume.
				switch {
				case r.FSType != "" && r.FSType != "o2go":
					add("%s: a concurrent group mounts its file systems on every node at once, which %s cannot do: use a clustered o2go volume (fstype \"o2go\"), or put the file system in a group that is not concurrent", where, r.FSType)
				case r.FSType == "o2go" && hasMountOption(r.Options, "nocluster"):
					add("%s: -o nocluster mounts the volume on one node only, and a concurrent group mounts it on every node: drop nocluster, or make the group not concurrent", where)
				}
			}
		}
	}
	// Mount points shared by groups that could meet on one node.
	type mount struct{ group, res string }
	mounts := map[string][]mount{}
	for _, g := range cfg.Groups {
		for _, r := range g.Resources {
			if r.Type == TypeFS && r.Mountpoint != "" {
				mounts[r.Mountpoint] = append(mounts[r.Mountpoint], mount{g.Name, r.Name})
			}
		}
	}
	for _, mp := range sortedKeys(mounts) {
		ms := mounts[mp]
		if len(ms) > 1 {
			add("mount point %s is used by resources %s (group %s) and %s (group %s): give each its own mount point",
				mp, ms[0].res, ms[0].group, ms[1].res, ms[1].group)
		}
	}

	// Events.
	evSeen := map[string]bool{}
	for _, e := range cfg.Events {
		known := false
		for _, n := range EventNames {
			known = known || n == e.Event
		}
		if !known {
			add("event %q is not an event: use one of %s", e.Event, strings.Join(EventNames, ", "))
		}
		if evSeen[e.Event] {
			add("event %s has two script definitions: merge them", e.Event)
		}
		evSeen[e.Event] = true
		for _, sc := range []struct{ what, path string }{{"pre", e.Pre}, {"post", e.Post}, {"notify", e.Notify}, {"recovery", e.Recovery}} {
			if sc.path != "" && !strings.HasPrefix(sc.path, "/") {
				add("event %s: %s script %q: give an absolute path", e.Event, sc.what, sc.path)
			}
		}
		if e.Retries < 0 || e.Retries > 100 {
			add("event %s: retries %d: give 0..100", e.Event, e.Retries)
		}
		if e.Retries > 0 && e.Recovery == "" {
			add("event %s: retries %d without a recovery script: add \"recovery\", or drop \"retries\"", e.Event, e.Retries)
		}
	}

	// Dependencies.
	for _, g := range cfg.Groups {
		for _, d := range []struct {
			kind string
			list []string
		}{{"parents", g.Parents}, {"same_node", g.SameNode}, {"different_node", g.DifferentNode}} {
			for _, o := range d.list {
				og := groups[o]
				switch {
				case o == g.Name:
					add("group %s: %s names the group itself: remove it", g.Name, d.kind)
				case og == nil:
					add("group %s: %s names group %q, which is not defined: define it first, or remove the dependency", g.Name, d.kind, o)
				case d.kind == "same_node" && !shareNode(g.Nodes, og.Nodes):
					add("group %s: same_node %s, but the two groups have no node in common: add a common node to both node lists", g.Name, o)
				case d.kind == "different_node" && (og.Startup == StartupAll || g.Startup == StartupAll):
					add("group %s: different_node %s: a concurrent group runs everywhere, so no node would be left: remove the dependency", g.Name, o)
				}
			}
		}
	}
	if len(p) == 0 {
		if cyc := dependencyCycle(cfg); cyc != "" {
			add("dependency cycle: %s: remove one of these dependencies", cyc)
		}
	}
	if len(p) > 0 {
		return nil, &ConfigError{Problems: p}
	}
	return resolve(cfg, topo), nil
}

func validateResource(r *Resource, where string, nets map[string]*Network, addrs map[netip.Addr]string, add func(string, ...any)) {
	abs := func(field, v string) {
		if v == "" {
			add("%s: %s is missing: give an absolute path", where, field)
		} else if !strings.HasPrefix(v, "/") {
			add("%s: %s %q: give an absolute path", where, field, v)
		}
	}
	switch r.Type {
	case TypeIP:
		pfx, err := netip.ParsePrefix(r.Address)
		if err != nil {
			add("%s: address %q: give an address with its prefix length, such as 10.0.0.10/24", where, r.Address)
		} else if other, ok := addrs[pfx.Addr()]; ok {
			add("%s: address %s is already the address of resource %s: give each service address to one resource", where, pfx.Addr(), other)
		} else {
			addrs[pfx.Addr()] = r.Name
		}
		switch {
		case r.Network == "" && r.Interface == "":
			add("%s: say where the address goes: \"network\" (a defined network) or \"interface\"", where)
		case r.Network != "" && r.Interface != "":
			add("%s: give \"network\" or \"interface\", not both", where)
		case r.Network != "" && nets[r.Network] == nil:
			add("%s: network %q is not defined: define it under \"networks\", or name an existing one", where, r.Network)
		}
	case TypeFS:
		if r.Device == "" {
			add("%s: device is missing: give the device, image file, UUID=... or LABEL=...", where)
		}
		abs("mountpoint", r.Mountpoint)
		if r.FSType == "" {
			add("%s: fstype is missing: give \"o2go\" for an OCFS2 volume, or the file system type (ext4, xfs...)", where)
		}
	case TypeApp:
		abs("start", r.StartScript)
		abs("stop", r.StopScript)
		if r.MonitorScript != "" {
			abs("monitor", r.MonitorScript)
		}
	case TypeOCF:
		if r.Agent == "" || (!strings.HasPrefix(r.Agent, "/") && strings.Count(r.Agent, ":") != 1) {
			add("%s: agent %q: give provider:type (heartbeat:IPaddr2) or an absolute path", where, r.Agent)
		}
		for k := range r.Params {
			if k == "" || strings.ContainsAny(k, "= \t\n") {
				add("%s: parameter %q: a parameter name has no '=' or blanks", where, k)
			}
		}
	case TypeProcess:
		if len(r.Command) == 0 {
			add("%s: command is missing: give the program and its arguments", where)
		} else {
			abs("command[0]", r.Command[0])
		}
	case "":
		add("%s: type is missing: use %s, %s, %s, %s or %s", where, TypeIP, TypeFS, TypeApp, TypeOCF, TypeProcess)
	default:
		add("%s: type %q: use %s, %s, %s, %s or %s", where, r.Type, TypeIP, TypeFS, TypeApp, TypeOCF, TypeProcess)
	}
	for _, e := range r.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			add("%s: env %q: write NAME=value", where, e)
		}
	}
	for _, d := range []Duration{r.MonitorInterval, r.MonitorTimeout, r.StartTimeout, r.StopTimeout, r.RestartInterval} {
		if d < 0 {
			add("%s: a negative duration (%v): give a positive one, or leave it out", where, d)
			break
		}
	}
	if r.RestartAttempts < -1 {
		add("%s: restart_attempts %d: give a count >= 0 (-1: never restart in place)", where, r.RestartAttempts)
	}
}

func shareNode(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// deps lists what group g depends on (parents, same-node and
// different-node anchors): the groups placed before it.
func deps(g *Group) []string {
	out := append(append(append([]string{}, g.Parents...), g.SameNode...), g.DifferentNode...)
	sort.Strings(out)
	return out
}

// dependencyCycle returns a cycle of dependencies ("a -> b -> a"), or "".
func dependencyCycle(cfg *Config) string {
	const white, grey, black = 0, 1, 2
	color := map[string]int{}
	byName := map[string]*Group{}
	for i := range cfg.Groups {
		byName[cfg.Groups[i].Name] = &cfg.Groups[i]
	}
	var stack []string
	var found string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range deps(byName[n]) {
			switch color[d] {
			case grey:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				found = strings.Join(append(append([]string{}, stack[i:]...), d), " -> ")
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range sortedKeys(byName) {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return ""
}

// resolve builds the Resolved form of a valid configuration.
func resolve(cfg *Config, topo Topology) *Resolved {
	r := &Resolved{Config: cfg, Topo: topo, byName: map[string]*RGroup{}}
	for i := range cfg.Groups {
		g := &cfg.Groups[i]
		rg := &RGroup{Group: g}
		for _, n := range g.Nodes {
			id, _ := topo.ID(n)
			rg.NodeIDs = append(rg.NodeIDs, id)
			rg.NodeSet.Add(id)
		}
		nets := map[string]bool{}
		for _, res := range g.Resources {
			if res.Type == TypeIP && res.Network != "" && !nets[res.Network] {
				nets[res.Network] = true
				rg.Networks = append(rg.Networks, res.Network)
			}
		}
		sort.Strings(rg.Networks)
		r.byName[g.Name] = rg
	}
	for _, rg := range r.byName {
		for _, n := range rg.Group.Parents {
			rg.Parents = append(rg.Parents, r.byName[n])
			r.byName[n].Children = append(r.byName[n].Children, rg)
		}
		for _, n := range rg.Group.SameNode {
			rg.SameNode = append(rg.SameNode, r.byName[n])
		}
		for _, n := range rg.Group.DifferentNode {
			rg.DifferentNode = append(rg.DifferentNode, r.byName[n])
		}
	}
	for _, rg := range r.byName {
		sort.Slice(rg.Children, func(i, j int) bool { return rg.Children[i].Name < rg.Children[j].Name })
	}
	// Topological order, ties by name.
	done := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		for _, d := range deps(r.byName[n].Group) {
			visit(d)
		}
		rg := r.byName[n]
		rg.Index = len(r.Groups)
		r.Groups = append(r.Groups, rg)
	}
	for _, n := range sortedKeys(r.byName) {
		visit(n)
	}
	return r
}

// hasMountOption reports whether the comma-separated mount options include
// opt.
func hasMountOption(options, opt string) bool {
	for _, o := range strings.Split(options, ",") {
		if strings.TrimSpace(o) == opt {
			return true
		}
	}
	return false
}
