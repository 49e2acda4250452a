package quorum

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"

	"o2go/internal/testutil/transcript"
)

func parseNodes(t *testing.T, fields []string) []base.NodeID {
	var out []base.NodeID
	for _, f := range fields {
		n, err := strconv.Atoi(strings.Trim(f, ":,"))
		if err != nil {
			t.Fatalf("bad node %q", f)
		}
		out = append(out, base.NodeID(n))
	}
	return out
}

// TestQuorumTranscript: o2quo's decisions, scripted in testdata/quorum.txt.
//
//	quorum SELF                       a new Quorum for node SELF
//	hb-up N... | hb-down N...         heartbeat callbacks
//	conn-up N... | conn-err N...      o2net's callbacks
//	still-up N...                     o2net's delayed still-up
//	state                             the maps and the rule's verdict now
func TestQuorumTranscript(t *testing.T) {
	var q *Quorum
	transcript.Run(t, "testdata/quorum.txt", func(cmd string) string {
		f := strings.Fields(cmd)
		nodes := parseNodes(t, f[1:])
		switch f[0] {
		case "quorum":
			q = New(nodes[0])
			return ""
		case "hb-up":
			for _, n := range nodes {
				q.HeartbeatUp(n)
			}
		case "hb-down":
			for _, n := range nodes {
				q.HeartbeatDown(n)
			}
		case "conn-up":
			for _, n := range nodes {
				q.ConnUp(n)
			}
		case "conn-err":
			for _, n := range nodes {
				q.ConnErr(n)
			}
		case "still-up":
			for _, n := range nodes {
				q.StillUp(n)
			}
		case "state":
			d := q.Evaluate()
			verdict := "continue"
			if d.Fence {
				verdict = "fence: " + d.Reason
			}
			return fmt.Sprintf("heartbeating [%v] connected [%v] held [%v] pending %v\nrule: %s",
				q.Heartbeating(), q.Connected(), q.Held(), q.Pending(), verdict)
		default:
			t.Fatalf("unknown command %q", cmd)
		}
		var sb strings.Builder
		for _, d := range q.Ready() {
			fmt.Fprintf(&sb, "FENCE: %s\n", d.Reason)
		}
		return sb.String()
	})
}

// TestEvictions checks the eviction rule on partitions and asymmetric cuts.
func TestEvictions(t *testing.T) {
	all := base.NodeMapOf(0, 1, 2, 3, 4)
	reach := func(m map[base.NodeID]base.NodeMap) func(base.NodeID) (base.NodeMap, bool) {
		return func(y base.NodeID) (base.NodeMap, bool) { c, ok := m[y]; return c, ok }
	}
	cases := []struct {
		name string
		in   EvictInput
		want string
	}{
		{"majority side leader evicts a cut-off node", EvictInput{Self: 0, Members: all, Live: all,
			Connected: base.NodeMapOf(1, 2, 3), Lost: base.NodeMapOf(4), HasQuorum: true,
			Reach: reach(map[base.NodeID]base.NodeMap{1: base.NodeMapOf(0, 2, 3), 2: base.NodeMapOf(0, 1, 3), 3: base.NodeMapOf(0, 1, 2)})},
			"4 cut"},
		{"majority side evicts the lowest node when it is the one cut off", EvictInput{Self: 1, Members: all, Live: all,
			Connected: base.NodeMapOf(2, 3, 4), Lost: base.NodeMapOf(0), HasQuorum: true,
			Reach: reach(map[base.NodeID]base.NodeMap{2: base.NodeMapOf(1, 3, 4), 3: base.NodeMapOf(1, 2, 4), 4: base.NodeMapOf(1, 2, 3)})},
			"0 cut"},
		{"not the side's leader: nothing", EvictInput{Self: 2, Members: all, Live: all,
			Connected: base.NodeMapOf(1, 3, 4), Lost: base.NodeMapOf(0), HasQuorum: true},
			""},
		{"minority: nothing", EvictInput{Self: 3, Members: all, Live: all,
			Connected: base.NodeMapOf(4), Lost: base.NodeMapOf(0, 1, 2), HasQuorum: false},
			""},
		{"asymmetric cut: the lower evicts the higher", EvictInput{Self: 1, Members: all, Live: all,
			Connected: base.NodeMapOf(0, 2, 4), Lost: base.NodeMapOf(3), HasQuorum: true,
			Reach: reach(map[base.NodeID]base.NodeMap{0: base.NodeMapOf(1, 2, 3, 4), 2: base.NodeMapOf(0, 1, 3, 4), 4: base.NodeMapOf(0, 1, 2, 3)})},
			"3 asym"},
		{"asymmetric cut: the higher does nothing", EvictInput{Self: 3, Members: all, Live: all,
			Connected: base.NodeMapOf(0, 2, 4), Lost: base.NodeMapOf(1), HasQuorum: true,
			Reach: reach(map[base.NodeID]base.NodeMap{0: base.NodeMapOf(1, 2, 3, 4), 2: base.NodeMapOf(0, 1, 3, 4), 4: base.NodeMapOf(0, 1, 2, 3)})},
			""},
		{"asymmetric cut with a non-member: the member evicts it", EvictInput{Self: 3, Members: base.NodeMapOf(0, 2, 3, 4), Live: all,
			Connected: base.NodeMapOf(0, 2, 4), Lost: base.NodeMapOf(1), HasQuorum: true,
			Reach: reach(map[base.NodeID]base.NodeMap{0: base.NodeMapOf(1, 2, 3, 4), 2: base.NodeMapOf(0, 1, 3, 4), 4: base.NodeMapOf(0, 1, 2, 3)})},
			"1 asym"},
		// A partition 0 1 | 2 3 4: node 0's link to 2 times out first; its
		// links to 3 and 4 are as dead but not given up yet (no fresh
		// report), node 1 (fresh) has not given up on 2 either. Counting the
		// silent links, node 0 would find quorum and evict the majority.
		{"partition: the minority's first lost link, the others silent: nothing", EvictInput{Self: 0, Members: all, Live: all,
			Connected: base.NodeMapOf(1, 3, 4), Lost: base.NodeMapOf(2), HasQuorum: true,
			Reach: reach(map[base.NodeID]base.NodeMap{1: base.NodeMapOf(0, 2, 3, 4)})},
			""},
		// The middle node of three cut off: its link to 0 times out before
		// its link to 2, whose reports stopped with the cut.
		{"middle node cut off, its first lost link: nothing", EvictInput{Self: 1, Members: base.NodeMapOf(0, 1, 2), Live: base.NodeMapOf(0, 1, 2),
			Connected: base.NodeMapOf(2), Lost: base.NodeMapOf(0), HasQuorum: true,
			Reach: reach(map[base.NodeID]base.NodeMap{})},
			""},
		// The majority side of the same cut, once its own silent links
		// are given up: its leader evicts the minority.
		{"partition: the majority, links to the minority given up", EvictInput{Self: 2, Members: all, Live: all,
			Connected: base.NodeMapOf(3, 4), Lost: base.NodeMapOf(0, 1), HasQuorum: true,
			Reach: reach(map[base.NodeID]base.NodeMap{3: base.NodeMapOf(2, 4), 4: base.NodeMapOf(2, 3)})},
			"0 cut, 1 cut"},
		{"non-members never evict", EvictInput{Self: 1, Members: base.NodeMapOf(0, 2, 3, 4), Live: all,
			Connected: base.NodeMapOf(0, 2, 4), Lost: base.NodeMapOf(3), HasQuorum: true,
			Reach: reach(map[base.NodeID]base.NodeMap{0: base.NodeMapOf(1, 2, 3, 4)})},
			""},
	}
	for _, c := range cases {
		var got []string
		for _, e := range Evictions(c.in) {
			kind := "asym"
			if e.Cut {
				kind = "cut"
			}
			got = append(got, fmt.Sprintf("%d %s", e.Target, kind))
		}
		if s := strings.Join(got, ", "); s != c.want {
			t.Errorf("%s: got %q, want %q", c.name, s, c.want)
		}
	}
}

// vnet is a scripted network of Membership instances: FIFO per ordered
// pair, delivered on demand; live and connected sets are set by the script.
type vnet struct {
	t      *testing.T
	now    time.Duration
	nodes  map[base.NodeID]*Membership
	queues map[[2]base.NodeID][]Send
	out    strings.Builder
	events map[base.NodeID][]Event
	fenced map[base.NodeID]string
	gens   [base.MaxNodes]uint64 // every node's generation (the script's world)
}

func newVnet(t *testing.T, ids []base.NodeID) *vnet {
	v := &vnet{t: t, nodes: map[base.NodeID]*Membership{}, queues: map[[2]base.NodeID][]Send{},
		events: map[base.NodeID][]Event{}, fenced: map[base.NodeID]string{}}
	for _, id := range ids {
		v.nodes[id] = NewMembership(MembershipConfig{Self: id, Interval: 2 * time.Second})
		v.gens[id] = 0x100 + uint64(id)
	}
	return v
}

func (v *vnet) ids() []base.NodeID {
	var ids []base.NodeID
	for id := range v.nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

var typeNames = map[uint16]string{cnet.TypeViewPropose: "propose", cnet.TypeViewAccept: "accept",
	cnet.TypeViewCommit: "commit", cnet.TypeNodeStatus: "status", cnet.TypeCatchUp: "catch-up"}

func (v *vnet) collect(id base.NodeID, verbose bool) {
	m := v.nodes[id]
	r := m.Ready()
	for _, s := range r.Sends {
		k := [2]base.NodeID{id, s.To}
		v.queues[k] = append(v.queues[k], s)
	}
	for _, e := range r.Events {
		v.events[id] = append(v.events[id], e)
		fmt.Fprintf(&v.out, "node %d event: %v\n", id, e)
	}
	if r.Fence != "" {
		v.fenced[id] = r.Fence
		m.Stop()
		fmt.Fprintf(&v.out, "node %d FENCE: %s\n", id, r.Fence)
	}
	if verbose {
		for _, n := range r.Notes {
			fmt.Fprintf(&v.out, "node %d: %s\n", id, n)
		}
	}
}

// deliver delivers queued messages (not statuses unless asked) until quiet.
func (v *vnet) deliver(verbose bool) {
	for round := 0; round < 1000; round++ {
		moved := false
		for _, from := range v.ids() {
			for _, to := range v.ids() {
				k := [2]base.NodeID{from, to}
				q := v.queues[k]
				if len(q) == 0 {
					continue
				}
				s := q[0]
				v.queues[k] = q[1:]
				moved = true
				if _, dead := v.fenced[to]; dead {
					continue
				}
				if verbose && s.Type != cnet.TypeNodeStatus {
					fmt.Fprintf(&v.out, "%d -> %d %s\n", from, to, typeNames[s.Type])
				}
				if err := v.nodes[to].Receive(v.now, from, s.Type, s.Payload); err != nil {
					v.t.Fatalf("receive: %v", err)
				}
				v.collect(to, verbose)
			}
		}
		if !moved {
			return
		}
	}
	v.t.Fatal("network does not settle")
}

// TestMembershipTranscript: stories of the view protocol in
// testdata/membership.txt.
//
//	cluster N...              Membership instances, no views
//	at DURATION               set the clock
//	live NODES: N...          what NODES see heartbeating ("all:" for every node)
//	links NODES: N...         whom NODES are connected to (symmetric sets are
//	                          the script's job); lost = live - connected
//	steady NODES              heartbeat settled
//	tick [verbose]            Tick every node, deliver until quiet
//	tick-only                 Tick every node, deliver nothing
//	deliver [verbose]         deliver until quiet
//	deliver-one FROM TO       deliver the first non-status message from FROM to TO
//	crash N...                the nodes stop (their queued messages still arrive)
//	restart N...              the nodes come back as new incarnations
//	drop FROM TO              drop the queued messages from FROM to TO
//	views                     every node's committed view and leader
func TestMembershipTranscript(t *testing.T) {
	var v *vnet
	transcript.Run(t, "testdata/membership.txt", func(cmd string) string {
		f := strings.Fields(cmd)
		targets := func() []base.NodeID {
			if f[1] == "all:" || f[1] == "all" {
				return v.ids()
			}
			var ids []base.NodeID
			i := 1
			for ; i < len(f); i++ {
				ids = append(ids, parseNodes(t, f[i:i+1])...)
				if strings.HasSuffix(f[i], ":") {
					break
				}
			}
			return ids
		}
		rest := func() base.NodeMap {
			i := 1
			for i < len(f) && !strings.HasSuffix(f[i], ":") {
				i++
			}
			return base.NodeMapOf(parseNodes(t, f[i+1:])...)
		}
		v0 := v
		if v0 != nil {
			v.out.Reset()
		}
		verbose := len(f) > 1 && f[len(f)-1] == "verbose"
		switch f[0] {
		case "cluster":
			v = newVnet(t, parseNodes(t, f[1:]))
			return ""
		case "at":
			d, err := time.ParseDuration(f[1])
			if err != nil {
				t.Fatal(err)
			}
			v.now = d
			return ""
		case "live":
			m := rest()
			for _, id := range targets() {
				v.nodes[id].SetLive(v.now, m, &v.gens)
				v.collect(id, false)
			}
		case "links":
			m := rest()
			for _, id := range targets() {
				n := v.nodes[id]
				c := m
				c.Remove(id)
				lost := n.live.Minus(c)
				lost.Remove(id)
				n.SetLinks(v.now, c, lost)
				v.collect(id, false)
			}
		case "steady":
			for _, id := range targets() {
				v.nodes[id].SetSteady(v.now, true)
				v.collect(id, false)
			}
		case "tick":
			for _, id := range v.ids() {
				if _, dead := v.fenced[id]; !dead {
					v.nodes[id].Tick(v.now)
					v.collect(id, verbose)
				}
			}
			v.deliver(verbose)
		case "tick-only":
			for _, id := range v.ids() {
				if _, dead := v.fenced[id]; !dead {
					v.nodes[id].Tick(v.now)
					v.collect(id, false)
				}
			}
			return ""
		case "deliver":
			v.deliver(verbose)
		case "deliver-one":
			n := parseNodes(t, f[1:3])
			k := [2]base.NodeID{n[0], n[1]}
			for len(v.queues[k]) > 0 {
				s := v.queues[k][0]
				v.queues[k] = v.queues[k][1:]
				if s.Type == cnet.TypeNodeStatus {
					continue
				}
				fmt.Fprintf(&v.out, "%d -> %d %s\n", n[0], n[1], typeNames[s.Type])
				if err := v.nodes[n[1]].Receive(v.now, n[0], s.Type, s.Payload); err != nil {
					t.Fatal(err)
				}
				v.collect(n[1], true)
				break
			}
		case "restart":
			// A node comes back as a new incarnation (same number).
			for _, id := range parseNodes(t, f[1:]) {
				v.gens[id] += 0x1000
				v.nodes[id] = NewMembership(MembershipConfig{Self: id, Interval: 2 * time.Second})
				delete(v.fenced, id)
			}
			return ""
		case "crash":
			for _, id := range parseNodes(t, f[1:]) {
				v.fenced[id] = "crashed"
				v.nodes[id].Stop()
			}
			return ""
		case "drop":
			n := parseNodes(t, f[1:3])
			delete(v.queues, [2]base.NodeID{n[0], n[1]})
			return ""
		case "views":
			for _, id := range v.ids() {
				n := v.nodes[id]
				state := ""
				if r, dead := v.fenced[id]; dead {
					state = " fenced (" + strings.SplitN(r, ":", 2)[0] + ")"
				}
				fmt.Fprintf(&v.out, "node %d: %v leader %v%s\n", id, n.Committed(), n.Leader(), state)
			}
		default:
			t.Fatalf("unknown command %q", cmd)
		}
		return v.out.String()
	})
	checkAgreement(t, v)
}

// checkAgreement: every pair of nodes delivered the same non-initial events
// for every Seq both delivered.
func checkAgreement(t *testing.T, v *vnet) {
	t.Helper()
	bySeq := map[uint64]string{}
	for id, evs := range v.events {
		for _, e := range evs {
			if e.Initial || e.Kind == Left {
				continue
			}
			s := fmt.Sprintf("epoch %d node %d %v", e.Epoch, e.Node, e.Kind)
			if prev, ok := bySeq[e.Seq]; ok && prev != s {
				t.Errorf("node %d delivered seq %d as %q, another node as %q", id, e.Seq, s, prev)
			}
			bySeq[e.Seq] = s
		}
	}
}
