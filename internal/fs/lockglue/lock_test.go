package lockglue

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDLM is one resource's lock manager for many nodes: it grants a
// request when it is compatible with every other granted lock, and sends
// blocking notifications to the holders in the way while it waits.
type fakeDLM struct {
	mu   sync.Mutex
	cond *sync.Cond
	held map[*fakeHeld]Mode
}

type fakeHeld struct {
	d       *fakeDLM
	onBlock func(Mode)
	grants  int // grants so far: a new grant is notified anew
}

func newFakeDLM() *fakeDLM {
	d := &fakeDLM{held: map[*fakeHeld]Mode{}}
	d.cond = sync.NewCond(&d.mu)
	return d
}

func (d *fakeDLM) Lock(ctx context.Context, name string, r Request, onBlock func(Mode)) (Held, error) {
	h := &fakeHeld{d: d, onBlock: onBlock}
	d.mu.Lock()
	d.held[h] = NL
	d.mu.Unlock()
	if err := h.Convert(ctx, r); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *fakeHeld) Convert(ctx context.Context, r Request) error {
	d := h.d
	stop := context.AfterFunc(ctx, func() { d.mu.Lock(); d.cond.Broadcast(); d.mu.Unlock() })
	defer stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	notified := map[*fakeHeld]int{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var in []*fakeHeld
		for o, m := range d.held {
			if o != h && !compatible(m, r.Mode) {
				in = append(in, o)
			}
		}
		if len(in) == 0 {
			d.held[h] = r.Mode
			h.grants++
			d.cond.Broadcast()
			return nil
		}
		if r.Try {
			return ErrBusy
		}
		for _, o := range in {
			if notified[o] != o.grants+1 {
				// Once per grant of each holder, as a DLM does: a
				// notification the holder ignores is not repeated
				// until it is granted something again.
				notified[o] = o.grants + 1
				go o.onBlock(r.Mode) // never under the DLM's lock
			}
		}
		d.cond.Wait()
	}
}

func (h *fakeHeld) Unlock() error {
	h.d.mu.Lock()
	delete(h.d.held, h)
	h.d.cond.Broadcast()
	h.d.mu.Unlock()
	return nil
}

// TestNodesExcludeAndAllProgress: three nodes' users take one lock shared
// or exclusive at random. An exclusive user never overlaps any other
// node's user, every user gets through, and a node writes back (flushes
// from EX) before another node reads.
func TestNodesExcludeAndAllProgress(t *testing.T) {
	d := newFakeDLM()
	const nodes, users, rounds = 3, 4, 60
	var active [nodes]atomic.Int32 // users in use per node
	var exclusive [nodes]atomic.Int32
	var dirty [nodes]atomic.Bool // node changed something not yet flushed
	var violations atomic.Int32
	locks := make([]*Lock, nodes)
	for n := range nodes {
		locks[n] = NewLock(d, "S000000000000000000000000000000", func(from, to Mode) error {
			if from == EX {
				dirty[n].Store(false)
			}
			return nil
		})
	}
	var wg sync.WaitGroup
	for n := range nodes {
		for u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(n), uint64(u)))
				for range rounds {
					ex := r.IntN(3) == 0
					release, err := locks[n].Lock(ex)
					if err != nil {
						t.Error(err)
						return
					}
					active[n].Add(1)
					if ex {
						exclusive[n].Add(1)
						dirty[n].Store(true)
					}
					for o := range nodes {
						if o == n {
							continue
						}
						if (ex && active[o].Load() > 0) || exclusive[o].Load() > 0 {
							violations.Add(1)
						}
						if dirty[o].Load() {
							violations.Add(1) // reading past another node's unflushed change
						}
					}
					time.Sleep(time.Duration(r.IntN(200)) * time.Microsecond)
					if ex {
						exclusive[n].Add(-1)
					}
					active[n].Add(-1)
					release()
				}
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		for _, l := range locks {
			t.Logf("%+v", l.State())
		}
		t.Fatal("users stuck")
	}
	if v := violations.Load(); v > 0 {
		t.Fatalf("%d exclusion violations", v)
	}
	for _, l := range locks {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		s := l.State()
		if s.Acquires != users*rounds || s.PR.Gets+s.EX.Gets != s.Acquires {
			t.Fatalf("%+v", s)
		}
		// Three nodes contend: some gets waited, and the waits add up.
		for _, w := range []WaitStats{s.PR, s.EX} {
			if w.Waits == 0 || w.Waits > w.Gets || w.Max <= 0 || w.Total < w.Max {
				t.Fatalf("wait statistics %+v of %+v", w, s)
			}
		}
	}
	if len(d.held) != 0 {
		t.Fatalf("locks left in the DLM: %d", len(d.held))
	}
}

// TestRecoverExcludesLocalUsers: Recover holds the lock EX while users of
// the same node wait, then lets them through.
func TestRecoverExcludesLocalUsers(t *testing.T) {
	d := newFakeDLM()
	l := NewLock(d, "S", func(from, to Mode) error { return nil })
	release, err := l.Lock(false)
	if err != nil {
		t.Fatal(err)
	}
	var inRecovery atomic.Bool
	recovered := make(chan error)
	go func() {
		recovered <- l.Recover(context.Background(), func() error {
			inRecovery.Store(true)
			time.Sleep(20 * time.Millisecond)
			inRecovery.Store(false)
			return nil
		})
	}()
	time.Sleep(10 * time.Millisecond)
	if inRecovery.Load() {
		t.Fatal("recovery ran while a user held the lock")
	}
	release()
	time.Sleep(5 * time.Millisecond)
	r2, err := l.Lock(false)
	if err != nil {
		t.Fatal(err)
	}
	if inRecovery.Load() {
		t.Fatal("a user got in during recovery")
	}
	r2()
	if err := <-recovered; err != nil {
		t.Fatal(err)
	}
	if s := l.State(); s.Mode != "EX" {
		t.Fatalf("after recovery: %+v", s)
	}
}
