package dlm

import (
	"flag"
	"fmt"
	"slices"
	"time"

	"o2go/internal/base"
)

// testNet is the deterministic network the core is tested on before (and
// besides) the real agent: every pair of nodes has a FIFO connection, as
// TCP gives; a connection can be cut (its messages wait) and then healed
// (they arrive, in order) or end with the death of one end (they are lost);
// a crash drops everything to and from the node at once. Membership events
// go into one global sequence, which every live node consumes in order at
// its own pace, as the cluster stack delivers them. Every message goes
// through the wire codec.
type testNet struct {
	nodes  map[base.NodeID]*testNode
	links  map[[2]base.NodeID][]wireMsg
	cut    map[[2]base.NodeID]bool
	down   map[[2]base.NodeID]bool // connection broken (reset), not reconnected yet
	lost   int                     // messages lost in flight on broken connections
	events []memberEvent
	now    time.Duration
	// hooks, called for every notification and every decoded delivery.
	onAST   func(x base.NodeID, a AST)
	onBAST  func(x base.NodeID, b BAST)
	onEvent func(x base.NodeID, e Event)
	onErr   func(x base.NodeID, err error)
	// stats
	delivered int
}

// traceHook and evHook, when set (debugging), see every delivery.
var (
	traceHook   func(from, to int, typ uint16, key uint32, p []byte)
	evHook      func(x int, up bool, node int, seq int)
	verboseFlag = flag.Bool("dlmtrace-locks", false, "debug traces include lock traffic")
)

type testNode struct {
	id    base.NodeID
	n     *Node
	alive bool
	next  int // index of the next membership event to deliver
	gen   int // incarnation
}

type wireMsg struct {
	from, to base.NodeID
	typ      uint16
	key      uint32
	payload  []byte
}

type memberEvent struct {
	up   bool
	node base.NodeID
}

func newTestNet(ids ...base.NodeID) *testNet {
	t := &testNet{
		nodes: map[base.NodeID]*testNode{},
		links: map[[2]base.NodeID][]wireMsg{},
		cut:   map[[2]base.NodeID]bool{},
		down:  map[[2]base.NodeID]bool{},
	}
	for _, x := range ids {
		t.events = append(t.events, memberEvent{up: true, node: x})
	}
	for _, x := range ids {
		t.nodes[x] = &testNode{id: x, alive: true}
	}
	for _, x := range ids {
		tn := t.nodes[x]
		tn.n = New(Config{Self: x, MaxPayload: 4096})
		tn.next = len(t.events)
		t.handle(x, tn.n.Membership(uint64(len(t.events)), t.liveMap()))
	}
	return t
}

func (t *testNet) liveMap() base.NodeMap {
	var m base.NodeMap
	for _, x := range t.ids() {
		if t.nodes[x].alive {
			m.Add(x)
		}
	}
	return m
}

func (t *testNet) ids() []base.NodeID {
	ids := make([]base.NodeID, 0, len(t.nodes))
	for x := range t.nodes {
		ids = append(ids, x)
	}
	slices.Sort(ids)
	return ids
}

func (t *testNet) liveIDs() []base.NodeID {
	var out []base.NodeID
	for _, x := range t.ids() {
		if t.nodes[x].alive {
			out = append(out, x)
		}
	}
	return out
}

func (t *testNet) node(x base.NodeID) *Node {
	tn := t.nodes[x]
	if tn == nil || !tn.alive {
		return nil
	}
	return tn.n
}

// handle distributes what node x's call returned.
func (t *testNet) handle(x base.NodeID, rd Ready) {
	for _, m := range rd.Messages {
		to := t.nodes[m.To]
		if to == nil || !to.alive || !t.nodes[x].alive {
			continue
		}
		k := [2]base.NodeID{x, m.To}
		t.links[k] = append(t.links[k], wireMsg{from: x, to: m.To, typ: m.Type, key: m.Key, payload: slices.Clone(m.Payload)})
	}
	// Copy: the slices belong to the node and the hooks may call it.
	asts := slices.Clone(rd.ASTs)
	basts := slices.Clone(rd.BASTs)
	evs := slices.Clone(rd.Events)
	for _, e := range evs {
		if t.onEvent != nil {
			t.onEvent(x, e)
		}
	}
	for _, a := range asts {
		if t.onAST != nil {
			t.onAST(x, a)
		}
	}
	for _, b := range basts {
		if t.onBAST != nil {
			t.onBAST(x, b)
		}
	}
}

func (t *testNet) err(x base.NodeID, err error) {
	if err != nil && t.onErr != nil {
		t.onErr(x, err)
	}
}

// deliver hands the head of link from->to to its receiver.
func (t *testNet) deliver(k [2]base.NodeID) {
	q := t.links[k]
	m := q[0]
	if len(q) == 1 {
		delete(t.links, k)
	} else {
		t.links[k] = q[1:]
	}
	to := t.nodes[m.to]
	if to == nil || !to.alive {
		return
	}
	t.delivered++
	if traceHook != nil {
		traceHook(int(m.from), int(m.to), m.typ, m.key, m.payload)
	}
	rd, err := to.n.Receive(m.from, m.typ, m.key, m.payload)
	t.err(m.to, err)
	t.handle(m.to, rd)
}

// deliverEvent hands node x its next membership event.
func (t *testNet) deliverEvent(x base.NodeID) {
	tn := t.nodes[x]
	ev := t.events[tn.next]
	tn.next++
	seq := uint64(tn.next)
	if evHook != nil {
		evHook(int(x), ev.up, int(ev.node), int(seq))
	}
	var rd Ready
	if ev.up {
		rd = tn.n.NodeUp(seq, ev.node)
	} else {
		rd = tn.n.NodeDown(seq, ev.node)
	}
	t.handle(x, rd)
}

// deliverable lists, in a fixed order, the links with a message that can go
// and the nodes with a membership event to consume.
func (t *testNet) deliverable() (links [][2]base.NodeID, evs []base.NodeID) {
	for k, q := range t.links {
		if len(q) > 0 && !t.cut[k] && !t.down[k] {
			links = append(links, k)
		}
	}
	slices.SortFunc(links, func(a, b [2]base.NodeID) int {
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		return int(a[1]) - int(b[1])
	})
	for _, x := range t.liveIDs() {
		if t.nodes[x].next < len(t.events) {
			evs = append(evs, x)
		}
	}
	return links, evs
}

// settle delivers everything that can be delivered, membership events first
// (lowest node first), then messages link by link in a fixed round-robin
// order, until nothing moves. It returns false if it gave up (a livelock).
func (t *testNet) settle(limit int) bool {
	for i := 0; i < limit; i++ {
		links, evs := t.deliverable()
		if len(evs) > 0 {
			t.deliverEvent(evs[0])
			continue
		}
		if len(links) == 0 {
			return true
		}
		t.deliver(links[i%len(links)])
	}
	return false
}

// step delivers one randomly chosen message or membership event; it reports
// whether there was anything to deliver.
func (t *testNet) step(rng *base.Rand) bool {
	links, evs := t.deliverable()
	n := len(links) + len(evs)
	if n == 0 {
		return false
	}
	i := rng.Intn(n)
	if i < len(links) {
		t.deliver(links[i])
	} else {
		t.deliverEvent(evs[i-len(links)])
	}
	return true
}

// crash kills node x: its connections drop with what was in flight, and the
// cluster stack will report it dead to everyone.
func (t *testNet) crash(x base.NodeID) {
	tn := t.nodes[x]
	if tn == nil || !tn.alive {
		return
	}
	tn.alive = false
	tn.n = nil
	for k := range t.links {
		if k[0] == x || k[1] == x {
			delete(t.links, k)
		}
	}
	for k := range t.cut {
		if k[0] == x || k[1] == x {
			delete(t.cut, k)
		}
	}
	for k := range t.down {
		if k[0] == x || k[1] == x {
			delete(t.down, k)
		}
	}
	t.events = append(t.events, memberEvent{up: false, node: x})
}

// reset breaks the connection between a and b, both alive: what was in
// flight on it is lost (a TCP connection closed with unread data), and
// what they send meanwhile waits for the next connection (the agents'
// writers hold it). Nobody dies: the cluster stack need not evict either.
func (t *testNet) reset(a, b base.NodeID) {
	for _, k := range [][2]base.NodeID{{a, b}, {b, a}} {
		t.lost += len(t.links[k])
		delete(t.links, k)
		t.down[k] = true
	}
}

// reconnect brings back the connection between a and b: what waited goes
// first, then each end's LinkUp sends again what the other has not
// acknowledged (the worst order: the waiting messages land past a gap).
func (t *testNet) reconnect(a, b base.NodeID) {
	delete(t.down, [2]base.NodeID{a, b})
	delete(t.down, [2]base.NodeID{b, a})
	for _, p := range [][2]base.NodeID{{a, b}, {b, a}} {
		if tn := t.nodes[p[0]]; tn != nil && tn.alive {
			t.handle(p[0], tn.n.LinkUp(p[1]))
		}
	}
}

// downSeq is the membership sequence number of the last death of x.
func (t *testNet) downSeq(x base.NodeID) uint64 {
	for i := len(t.events) - 1; i >= 0; i-- {
		if !t.events[i].up && t.events[i].node == x {
			return uint64(i + 1)
		}
	}
	return 0
}

// restart starts a new incarnation of node x (or a new node).
func (t *testNet) restart(x base.NodeID) {
	tn := t.nodes[x]
	if tn == nil {
		tn = &testNode{id: x}
		t.nodes[x] = tn
	}
	if tn.alive {
		return
	}
	t.events = append(t.events, memberEvent{up: true, node: x})
	tn.alive = true
	tn.gen++
	tn.n = New(Config{Self: x, MaxPayload: 4096})
	tn.next = len(t.events)
	t.handle(x, tn.n.Membership(uint64(len(t.events)), t.liveMap()))
}

// partition cuts every connection between the two groups.
func (t *testNet) partition(a, b []base.NodeID) {
	for _, x := range a {
		for _, y := range b {
			t.cut[[2]base.NodeID{x, y}] = true
			t.cut[[2]base.NodeID{y, x}] = true
		}
	}
}

func (t *testNet) heal() { t.cut = map[[2]base.NodeID]bool{} }

func (t *testNet) tick(d time.Duration) {
	t.now += d
	for _, x := range t.liveIDs() {
		t.handle(x, t.nodes[x].n.Tick(t.now))
	}
}

// call runs an API call on node x and distributes its Ready.
func (t *testNet) call(x base.NodeID, f func(n *Node) (Ready, error)) error {
	n := t.node(x)
	if n == nil {
		return fmt.Errorf("node %d is down", x)
	}
	rd, err := f(n)
	t.handle(x, rd)
	return err
}

func (t *testNet) lock(x base.NodeID, dom, name string, mode Mode, flags Flags) (LockID, error) {
	n := t.node(x)
	if n == nil {
		return 0, fmt.Errorf("node %d is down", x)
	}
	id, rd, err := n.Lock(dom, name, mode, flags)
	t.handle(x, rd)
	return id, err
}

func (t *testNet) inFlight() int {
	c := 0
	for _, q := range t.links {
		c += len(q)
	}
	return c
}

// checkMasters verifies, on a quiet network, that every resource with locks
// has exactly one master, the one its view says, and that the master's queues
// and the holders' locks agree.
func (t *testNet) checkMasters() error {
	live := t.liveIDs()
	doms := map[string]bool{}
	for _, x := range live {
		for _, s := range t.nodes[x].n.State() {
			if s.State == "JOINED" || s.State == "LEAVING" {
				doms[s.Domain] = true
			}
		}
	}
	var domNames []string
	for d := range doms {
		domNames = append(domNames, d)
	}
	slices.Sort(domNames)
	for _, dom := range domNames {
		type holder struct {
			x  base.NodeID
			ll LocalLock
		}
		masters := map[string][]base.NodeID{}
		states := map[string]ResourceState{}
		holders := map[string][]holder{}
		var view *DomainState
		for _, x := range live {
			n := t.nodes[x].n
			for _, s := range n.State() {
				if s.Domain != dom || (s.State != "JOINED" && s.State != "LEAVING") {
					continue
				}
				if s.Recovery != nil {
					return fmt.Errorf("%s: node %d still reconfiguring", dom, x)
				}
				if view == nil {
					sc := s
					view = &sc
				} else if s.Epoch != view.Epoch || !slices.Equal(s.DomainMap, view.DomainMap) {
					return fmt.Errorf("%s: node %d at epoch %d %v, node %d at %d %v", dom, x, s.Epoch, s.DomainMap, view.Node, view.Epoch, view.DomainMap)
				}
				rs, _ := n.Locks(dom, "")
				for _, r := range rs {
					if r.Mastered {
						masters[r.Name] = append(masters[r.Name], x)
						states[r.Name] = r
					}
					for _, ll := range r.Local {
						holders[r.Name] = append(holders[r.Name], holder{x, ll})
					}
				}
			}
		}
		if view == nil {
			continue
		}
		members := base.NodeMapOf(view.DomainMap...)
		for name, hs := range holders {
			ms := masters[name]
			if len(ms) != 1 {
				return fmt.Errorf("%s/%s: held by %v, mastered by %v", dom, name, hs, ms)
			}
			if want := masterIn(name, members); ms[0] != want {
				return fmt.Errorf("%s/%s: mastered by %d, the view says %d", dom, name, ms[0], want)
			}
			st := states[name]
			for _, h := range hs {
				var found *LockState
				for i := range st.Queues {
					q := &st.Queues[i]
					if q.Node == h.x && q.Cookie == uint64(h.ll.ID) {
						found = q
					}
				}
				if h.ll.Pending == OpNone {
					if found == nil || found.Mode != h.ll.Mode || found.Queue != "Granted" {
						return fmt.Errorf("%s/%s: node %d holds lock %d in %s, master %d has %+v", dom, name, h.x, h.ll.ID, h.ll.Mode, ms[0], found)
					}
				}
			}
		}
		for name, ms := range masters {
			if len(ms) != 1 {
				return fmt.Errorf("%s/%s: mastered by %v", dom, name, ms)
			}
			st := states[name]
			for _, q := range st.Queues {
				ok := false
				for _, h := range holders[name] {
					if h.x == q.Node && uint64(h.ll.ID) == q.Cookie {
						ok = true
					}
				}
				if !ok {
					return fmt.Errorf("%s/%s: master %d has lock %d:%d that no holder has", dom, name, ms[0], q.Node, q.Cookie)
				}
			}
		}
	}
	return nil
}
