package node

import (
	"sync"
	"time"
)

// sendQueue is the ordered queue of messages to one peer and the
// goroutine that sends them; the DLM and HA keep one per peer. A send
// that fails because the connection is down is tried again until it goes
// through, the peer dies (died drops what was queued for that
// incarnation) or the queue is closed: o2net retries the same way, and a
// connection that stays down ends in the peer's eviction.
type sendQueue struct {
	mu   sync.Mutex
	cond *sync.Cond
	q    []queuedMsg
	gen  int  // bumped when the peer dies: the writer drops what it holds
	stop bool // closed: the writer ends
	busy bool // a caller sends directly (sendDirect): the writer waits
	hold bool // tests: nothing leaves for this peer (a service that cannot send)

	// send sends one message; an error means "not connected, try again"
	// (a message that can never be sent is the sender's to report and
	// drop, returning nil).
	send    func(queuedMsg) error
	stopped <-chan struct{} // the service stopped: the writer ends at once
}

type queuedMsg struct {
	typ     uint16
	key     uint32
	payload []byte
}

// sendRetry is how long the writer waits before trying a failed send again.
const sendRetry = 20 * time.Millisecond

func newSendQueue(send func(queuedMsg) error, stopped <-chan struct{}) *sendQueue {
	p := &sendQueue{send: send, stopped: stopped}
	p.cond = sync.NewCond(&p.mu)
	go p.writer()
	return p
}

func (p *sendQueue) push(m queuedMsg) {
	p.mu.Lock()
	p.q = append(p.q, m)
	p.mu.Unlock()
	p.cond.Signal()
}

// died drops what waits for a dead incarnation of the peer.
func (p *sendQueue) died() {
	p.mu.Lock()
	p.q = nil
	p.gen++
	p.mu.Unlock()
}

// close drops what is queued and ends the writer.
func (p *sendQueue) close() {
	p.mu.Lock()
	p.stop = true
	p.q = nil
	p.mu.Unlock()
	p.cond.Broadcast()
}

// claim makes the caller the peer's sender when nothing is queued or
// being sent; the caller then calls sendDirect.
func (p *sendQueue) claim() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy || p.hold || len(p.q) > 0 || p.stop {
		return false
	}
	p.busy = true
	return true
}

// sendDirect sends m from the caller's goroutine (after claim), then lets
// the writer send what was queued meanwhile. A failed send goes to the
// head of the queue for the writer to retry.
func (p *sendQueue) sendDirect(m queuedMsg) {
	p.mu.Lock()
	gen := p.gen
	p.mu.Unlock()
	err := p.send(m)
	p.mu.Lock()
	if err != nil && p.gen == gen && !p.stop {
		p.q = append([]queuedMsg{m}, p.q...)
	}
	p.busy = false
	p.mu.Unlock()
	p.cond.Signal()
}

// writer sends the queue's messages in order.
func (p *sendQueue) writer() {
	for {
		p.mu.Lock()
		for (len(p.q) == 0 || p.busy || p.hold) && !p.stop {
			p.cond.Wait()
		}
		if p.stop {
			p.mu.Unlock()
			return
		}
		m, gen := p.q[0], p.gen
		p.busy = true
		p.mu.Unlock()
		for p.send(m) != nil {
			p.mu.Lock()
			gone := p.stop || p.gen != gen
			p.mu.Unlock()
			if gone {
				break
			}
			select {
			case <-p.stopped:
				return
			case <-time.After(sendRetry):
			}
		}
		p.mu.Lock()
		if p.gen == gen && len(p.q) > 0 {
			p.q = p.q[1:]
		}
		p.busy = false
		p.mu.Unlock()
	}
}
