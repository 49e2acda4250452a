package ha

import (
	"testing"
	"time"

	"o2go/internal/base"
)

func placeOne(t *testing.T, g Group, settle time.Duration, up []base.NodeID, gs *GroupState, now time.Duration, since map[string]time.Duration) Decision {
	t.Helper()
	cfg := &Config{Settings: Settings{SettlingTime: Duration(settle)}, Groups: []Group{g}}
	r, err := Validate(cfg, topo3())
	if err != nil {
		t.Fatal(err)
	}
	st := &State{}
	if gs != nil {
		gs.Name = g.Name
		st.set(*gs)
	}
	if since == nil {
		since = map[string]time.Duration{}
	}
	in := &PlaceInput{Config: r, Up: base.NodeMapOf(up...), State: st, Now: now, BestSince: since, PlaceSince: since}
	return Place(in)[0]
}

func gstate() *GroupState { s := newGroupState(""); return &s }

func TestPlaceRules(t *testing.T) {
	app := []Resource{{Name: "a", Type: TypeApp, StartScript: "/s", StopScript: "/t"}}
	home := Group{Name: "g", Nodes: []string{"n1", "n2", "n3"}, Startup: StartupHome, Resources: app}
	first := Group{Name: "g", Nodes: []string{"n1", "n2", "n3"}, Startup: StartupFirst, Resources: app}
	never := first
	never.Fallback = FallbackNever
	higher := first
	higher.Fallback = FallbackHigher
	delayed := higher
	delayed.FallbackDelay = Duration(10 * time.Second)
	offline := first
	offline.Fallover = FalloverOffline
	all := Group{Name: "g", Nodes: []string{"n1", "n2", "n3"}, Startup: StartupAll, Resources: app}
	owners := func(o ...base.NodeID) *GroupState { s := gstate(); s.Owners = o; return s }

	cases := []struct {
		name   string
		g      Group
		settle time.Duration
		up     []base.NodeID
		gs     *GroupState
		now    time.Duration
		since  map[string]time.Duration
		want   []base.NodeID
	}{
		{"home: on home", home, 0, []base.NodeID{1, 2, 3}, nil, 0, nil, []base.NodeID{1}},
		{"home: home down, never online", home, 0, []base.NodeID{2, 3}, nil, 0, nil, nil},
		{"home: fallover to next", home, 0, []base.NodeID{2, 3}, owners(1), 0, nil, []base.NodeID{2}},
		{"home: fallback to home when back", home, 0, []base.NodeID{1, 2, 3}, owners(2), 0, nil, []base.NodeID{1}},
		{"first: highest available", first, 0, []base.NodeID{2, 3}, nil, 0, nil, []base.NodeID{2}},
		{"first: settling time holds it", first, 5 * time.Second, []base.NodeID{3}, nil, 2 * time.Second, map[string]time.Duration{"g": 0}, nil},
		{"first: settling time over", first, 5 * time.Second, []base.NodeID{3}, nil, 6 * time.Second, map[string]time.Duration{"g": 0}, []base.NodeID{3}},
		{"first: home skips the settling time", first, 5 * time.Second, []base.NodeID{1, 3}, nil, 0, map[string]time.Duration{"g": 0}, []base.NodeID{1}},
		{"never: stays on a lower node", never, 0, []base.NodeID{1, 2, 3}, owners(3), 0, nil, []base.NodeID{3}},
		{"higher: falls back", higher, 0, []base.NodeID{1, 2, 3}, owners(3), 0, nil, []base.NodeID{1}},
		{"higher: waits for the delay", delayed, 0, []base.NodeID{1, 2, 3}, owners(3), 5 * time.Second, map[string]time.Duration{"g": 0}, []base.NodeID{3}},
		{"higher: after the delay", delayed, 0, []base.NodeID{1, 2, 3}, owners(3), 11 * time.Second, map[string]time.Duration{"g": 0}, []base.NodeID{1}},
		{"fallover offline", offline, 0, []base.NodeID{2, 3}, owners(1), 0, nil, nil},
		{"failed node excluded", first, 0, []base.NodeID{1, 2, 3}, func() *GroupState { s := owners(1); s.Failed = []base.NodeID{1}; return s }(), 0, nil, []base.NodeID{2}},
		{"sticky beats fallback", higher, 0, []base.NodeID{1, 2, 3}, func() *GroupState { s := owners(3); s.Sticky = 3; return s }(), 0, nil, []base.NodeID{3}},
		{"sticky node down: normal rules", higher, 0, []base.NodeID{1, 2}, func() *GroupState { s := owners(3); s.Sticky = 3; return s }(), 0, nil, []base.NodeID{1}},
		{"non-sticky move", never, 0, []base.NodeID{1, 2, 3}, func() *GroupState { s := owners(1); s.Prefer = 2; return s }(), 0, nil, []base.NodeID{2}},
		{"operator stop", first, 0, []base.NodeID{1, 2, 3}, func() *GroupState { s := owners(1); s.Offline = true; return s }(), 0, nil, nil},
		{"unmanaged stays", first, 0, []base.NodeID{1, 2, 3}, func() *GroupState { s := owners(2); s.Unmanaged = 2; return s }(), 0, nil, []base.NodeID{2}},
		{"parked by a graceful node_down", first, 0, []base.NodeID{2, 3}, func() *GroupState { s := owners(1); s.Parked = 1; return s }(), 0, nil, nil},
		{"concurrent: everywhere", all, 0, []base.NodeID{1, 3}, nil, 0, nil, []base.NodeID{1, 3}},
		{"nobody up", first, 0, nil, nil, 0, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := placeOne(t, tc.g, tc.settle, tc.up, tc.gs, tc.now, tc.since)
			if d.Target != base.NodeMapOf(tc.want...) {
				t.Errorf("target [%v], want [%v] (%s)", d.Target, base.NodeMapOf(tc.want...), d.Why)
			}
			if d.Why == "" {
				t.Error("no reason given")
			}
		})
	}
}

func TestPlaceDependencies(t *testing.T) {
	app := func(n string) []Resource {
		return []Resource{{Name: n, Type: TypeApp, StartScript: "/s", StopScript: "/t"}}
	}
	cfg := &Config{Groups: []Group{
		{Name: "db", Nodes: []string{"n1", "n2"}, Startup: StartupHome, Resources: app("a")},
		{Name: "web", Nodes: []string{"n1", "n2", "n3"}, Parents: []string{"db"}, SameNode: []string{"db"}, Resources: app("b")},
		{Name: "batch", Nodes: []string{"n1", "n2", "n3"}, DifferentNode: []string{"db"}, Resources: app("c")},
	}}
	r, err := Validate(cfg, topo3())
	if err != nil {
		t.Fatal(err)
	}
	place := func(up ...base.NodeID) map[string]base.NodeMap {
		in := &PlaceInput{Config: r, Up: base.NodeMapOf(up...), State: &State{}, BestSince: map[string]time.Duration{}, PlaceSince: map[string]time.Duration{}}
		out := map[string]base.NodeMap{}
		for _, d := range Place(in) {
			out[d.Group] = d.Target
		}
		return out
	}
	got := place(1, 2, 3)
	if got["db"] != base.NodeMapOf(1) || got["web"] != base.NodeMapOf(1) || got["batch"] != base.NodeMapOf(2) {
		t.Errorf("all up: %v", got)
	}
	// db's home is down and db was never online: web waits for its parent,
	// batch may take the home node.
	got = place(2, 3)
	if !got["db"].Empty() || !got["web"].Empty() || got["batch"] != base.NodeMapOf(2) {
		t.Errorf("home down: %v", got)
	}
}
