package node

import (
	"sort"
	"sync"

	"o2go/internal/cluster/quorum"
)

// MembershipEvent is one node up/down event of the cluster view (see
// cluster/quorum.Event): every node delivers the events of a view in the
// same order with the same Seq; a subscriber's first events (Initial) are
// the membership as it was when it subscribed or when this node joined.
type MembershipEvent = quorum.Event

// Subscriber priorities: lower runs first. O2CB calls its heartbeat
// callbacks by priority (o2net, then the DLM, then ocfs2); o2go delivers each
// event to the DLM, then the file system, then HA.
const (
	PriorityDLM = 10
	PriorityFS  = 20
	PriorityHA  = 30
)

type subscriber struct {
	name     string
	priority int
	seq      int
	fn       func(MembershipEvent)
}

// hub delivers membership events to subscribers from one goroutine, each
// event to every subscriber in priority order before the next event.
type hub struct {
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []hubItem
	subs    []*subscriber
	nextSeq int
	last    *MembershipEvent // the last event delivered: the view subscribers are at
	closed  bool
}

type hubItem struct {
	ev  *MembershipEvent
	sub *subscriber // a new subscriber to bring up to date
	rm  *subscriber
}

func newHub() *hub {
	h := &hub{}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *hub) push(it hubItem) {
	h.mu.Lock()
	h.queue = append(h.queue, it)
	h.mu.Unlock()
	h.cond.Signal()
}

func (h *hub) publish(evs []MembershipEvent) {
	for i := range evs {
		e := evs[i]
		h.push(hubItem{ev: &e})
	}
}

func (h *hub) subscribe(name string, priority int, fn func(MembershipEvent)) func() {
	h.mu.Lock()
	h.nextSeq++
	s := &subscriber{name: name, priority: priority, seq: h.nextSeq, fn: fn}
	h.mu.Unlock()
	h.push(hubItem{sub: s})
	return func() { h.push(hubItem{rm: s}) }
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cond.Broadcast()
}

// run is the delivery goroutine.
func (h *hub) run() {
	for {
		h.mu.Lock()
		for len(h.queue) == 0 && !h.closed {
			h.cond.Wait()
		}
		if h.closed {
			h.mu.Unlock()
			return
		}
		it := h.queue[0]
		h.queue = h.queue[1:]
		h.mu.Unlock()
		switch {
		case it.sub != nil:
			if l := h.last; l != nil && l.Kind != quorum.Left {
				for _, n := range l.Members.Nodes() {
					it.sub.fn(MembershipEvent{Seq: l.Seq, Epoch: l.Epoch, Node: n, Kind: quorum.NodeUp, Members: l.Members, Initial: true})
				}
			}
			h.subs = append(h.subs, it.sub)
			sort.SliceStable(h.subs, func(i, j int) bool {
				if h.subs[i].priority != h.subs[j].priority {
					return h.subs[i].priority < h.subs[j].priority
				}
				return h.subs[i].seq < h.subs[j].seq
			})
		case it.rm != nil:
			for i, s := range h.subs {
				if s == it.rm {
					h.subs = append(h.subs[:i], h.subs[i+1:]...)
					break
				}
			}
		default:
			for _, s := range h.subs {
				s.fn(*it.ev)
			}
			h.last = it.ev
		}
	}
}
