package sim

import (
	"container/heap"
	"time"
)

// event is something that happens at a simulated time. Ties are broken by
// the order of scheduling, so a run is a pure function of its seed.
type event struct {
	at  time.Duration
	seq uint64
	do  func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// queue is the simulator's agenda.
type queue struct {
	h   eventHeap
	seq uint64
}

func (q *queue) at(t time.Duration, do func()) {
	q.seq++
	heap.Push(&q.h, &event{at: t, seq: q.seq, do: do})
}

func (q *queue) next() (*event, bool) {
	if len(q.h) == 0 {
		return nil, false
	}
	return heap.Pop(&q.h).(*event), true
}
