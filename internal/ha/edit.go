package ha

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Fragment is what `o2go ha add` adds to the configuration: whole groups,
// networks and event scripts, and resources for an existing group (Group
// names it). Names that exist already are refused.
type Fragment struct {
	Groups    []Group        `json:"groups,omitempty"`
	Networks  []Network      `json:"networks,omitempty"`
	Events    []EventScripts `json:"events,omitempty"`
	Group     string         `json:"group,omitempty"`
	Resources []Resource     `json:"resources,omitempty"`
}

// ParseFragment reads a fragment: an object with the fields of Fragment, or
// a single group (an object with "nodes"), or a single resource (an object
// with "type"; toGroup says which group it joins).
func ParseFragment(b []byte, toGroup string) (*Fragment, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	strict := func(v any) error {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		return dec.Decode(v)
	}
	f := &Fragment{}
	switch {
	case probe["nodes"] != nil:
		var g Group
		if err := strict(&g); err != nil {
			return nil, fmt.Errorf("a group: %w", err)
		}
		f.Groups = []Group{g}
	case probe["type"] != nil:
		var r Resource
		if err := strict(&r); err != nil {
			return nil, fmt.Errorf("a resource: %w", err)
		}
		f.Resources = []Resource{r}
	default:
		if err := strict(f); err != nil {
			return nil, err
		}
	}
	if toGroup != "" {
		f.Group = toGroup
	}
	if len(f.Resources) > 0 && f.Group == "" {
		return nil, fmt.Errorf("resources to add, but no group to add them to: give the group (--group)")
	}
	return f, nil
}

// Add returns a copy of c with f added. The copy is not validated: commit it
// through the coordinator, which validates and verifies it.
func (c *Config) Add(f *Fragment) (*Config, error) {
	out := c.Clone()
	for _, g := range f.Groups {
		if out.Group(g.Name) != nil {
			return nil, fmt.Errorf("group %s exists already: remove it first, or edit the configuration (o2go ha show > FILE; o2go ha apply FILE)", g.Name)
		}
		out.Groups = append(out.Groups, g)
	}
	for _, n := range f.Networks {
		if out.Network(n.Name) != nil {
			return nil, fmt.Errorf("network %s exists already", n.Name)
		}
		out.Networks = append(out.Networks, n)
	}
	for _, e := range f.Events {
		for _, x := range out.Events {
			if x.Event == e.Event {
				return nil, fmt.Errorf("event %s has scripts already: remove them first (o2go ha remove event %s)", e.Event, e.Event)
			}
		}
		out.Events = append(out.Events, e)
	}
	if len(f.Resources) > 0 {
		g := out.Group(f.Group)
		if g == nil {
			return nil, fmt.Errorf("no group %q to add resources to", f.Group)
		}
		g.Resources = append(g.Resources, f.Resources...)
	}
	return out, nil
}

// Remove returns a copy of c without the group, resource, network or event
// scripts named (kind: group, resource, network, event).
func (c *Config) Remove(kind, name string) (*Config, error) {
	out := c.Clone()
	found := false
	switch kind {
	case "group":
		var keep []Group
		for _, g := range out.Groups {
			if g.Name == name {
				found = true
				continue
			}
			for _, l := range [][]string{g.Parents, g.SameNode, g.DifferentNode} {
				for _, d := range l {
					if d == name {
						return nil, fmt.Errorf("group %s depends on %s: remove that dependency first", g.Name, name)
					}
				}
			}
			keep = append(keep, g)
		}
		out.Groups = keep
	case "resource":
		for i := range out.Groups {
			g := &out.Groups[i]
			var keep []Resource
			for _, r := range g.Resources {
				if r.Name == name {
					found = true
					continue
				}
				keep = append(keep, r)
			}
			g.Resources = keep
		}
	case "network":
		var keep []Network
		for _, n := range out.Networks {
			if n.Name == name {
				found = true
				continue
			}
			keep = append(keep, n)
		}
		out.Networks = keep
	case "event":
		var keep []EventScripts
		for _, e := range out.Events {
			if e.Event == name {
				found = true
				continue
			}
			keep = append(keep, e)
		}
		out.Events = keep
	default:
		return nil, fmt.Errorf("remove what? %q: use group, resource, network or event", kind)
	}
	if !found {
		return nil, fmt.Errorf("no %s %q in the configuration (version %d)", kind, name, c.Version)
	}
	return out, nil
}

// Snapshot is a saved cluster HA configuration (HACMP's cluster snapshot):
// the configuration, and which groups are stopped or sticky. Scripts are
// not saved: they live on the nodes.
type Snapshot struct {
	Format  int               `json:"o2go_ha_snapshot"`
	Cluster string            `json:"cluster"`
	Saved   string            `json:"saved"`
	Config  *Config           `json:"config"`
	Sticky  map[string]string `json:"sticky,omitempty"`  // group -> node
	Stopped []string          `json:"stopped,omitempty"` // groups the operator stopped
}

// SnapshotFormat is the current snapshot format.
const SnapshotFormat = 1

// ParseSnapshot reads a snapshot.
func ParseSnapshot(b []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("HA snapshot: %w", err)
	}
	if s.Format != SnapshotFormat || s.Config == nil {
		return nil, fmt.Errorf("not an o2go HA snapshot (format %d, want %d, with a configuration)", s.Format, SnapshotFormat)
	}
	return &s, nil
}

// RestoreState is the state a restore asks for: stickiness and stopped
// groups, by node number.
func (s *Snapshot) RestoreState(topo Topology) (*State, error) {
	st := &State{}
	for _, g := range s.Config.Groups {
		gs := newGroupState(g.Name)
		if n, ok := s.Sticky[g.Name]; ok {
			id, ok := topo.ID(n)
			if !ok {
				return nil, fmt.Errorf("the snapshot makes group %s sticky on %s, which is not a node of this cluster", g.Name, n)
			}
			gs.Sticky = id
		}
		for _, x := range s.Stopped {
			if x == g.Name {
				gs.Offline, gs.OfflineWhy = true, "stopped by the operator (restored from a snapshot)"
			}
		}
		st.set(gs)
	}
	return st, nil
}
