package lockglue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Mode is a lock level, in the DLM's order: NL < PR < EX for what
// lockglue uses.
type Mode int

const (
	NL Mode = iota // null: held for its place only, excludes nothing
	PR             // protected read: shared
	EX             // exclusive
)

func (m Mode) String() string {
	switch m {
	case NL:
		return "NL"
	case PR:
		return "PR"
	case EX:
		return "EX"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// compatible reports whether a lock held in a lets another be granted in b.
func compatible(a, b Mode) bool { return a == NL || b == NL || (a == PR && b == PR) }

// ErrBusy is what a request made with Try gets when the lock is held
// elsewhere in a conflicting mode.
var ErrBusy = errors.New("lock held elsewhere")

// Request says how a lock is asked for.
type Request struct {
	Mode Mode
	// Try fails at once with ErrBusy rather than waiting.
	Try bool
	// Recovery passes the ghosts of dead nodes' locks (recovery only).
	Recovery bool
	// Value, on a conversion down from EX, is stored in the lock's value
	// block (nil: the block stays as it is).
	Value *ValueBlock
}

// ValueBlockLen is the size of a lock value block.
const ValueBlockLen = 64

// ValueBlock is a lock value block: a few bytes the lock manager keeps
// with the resource, written by a holder as it gives up EX and read by
// whoever is granted the lock next.
type ValueBlock [ValueBlockLen]byte

// ValueReader is what a Held whose lock manager keeps value blocks also
// offers: the value block its last grant read; valid is false when a
// holder that could have written it died (or nothing was read).
type ValueReader interface {
	LastValue() (v ValueBlock, valid bool)
}

// Service is the lock manager lockglue runs on (the agent's DLM).
type Service interface {
	// Lock takes resource name. onBlock is called, from any goroutine and
	// never under a lock the caller holds, when another node waits for a
	// mode the lock excludes.
	Lock(ctx context.Context, name string, r Request, onBlock func(wanted Mode)) (Held, error)
}

// Held is a granted lock of the Service.
type Held interface {
	// Convert changes the mode; down-conversions never wait.
	Convert(ctx context.Context, r Request) error
	Unlock() error
}

// Flusher is called when a lock goes down from mode from to mode to,
// with no local user: write back what from allowed to change (from EX),
// and forget what to no longer protects (to NL).
type Flusher func(from, to Mode) error

// RequestRetry is how long one request to the lock manager may wait
// before it is cancelled and made again: a safety net (counted in
// Stats.Retries, which should stay 0) against a blocking notification
// that never came; the lock manager notifies every holder in the way of
// a queued request, after every grant.
var RequestRetry = 5 * time.Second

// Lock is one cluster lock cached on this node: many local users share it
// at the level the strongest of them needed; it goes down only when
// another node asks.
type Lock struct {
	Name string

	svc   Service
	flush Flusher

	mu         sync.Mutex
	cond       *sync.Cond
	held       Held
	mode       Mode // granted
	users      int
	converting bool
	blocked    bool               // another node waits: new users wait for the downconvert
	wanted     Mode               // what it waits for
	downing    bool               // the downconvert goroutine runs
	recovering bool               // Recover runs: every user waits
	cancelUp   context.CancelFunc // cancels a pending up-conversion
	err        error
	stats      Stats

	value   func() *ValueBlock // what to store going down from EX (SetValue)
	onFresh func()             // after a grant to a lock not held (OnFreshGrant)
	// fresh is the value block the last grant read, until Value takes it.
	fresh      ValueBlock
	freshValid bool
}

// SetValue has fn give the value block to store each time the lock goes
// down from EX (called before the flush, once the last local user is
// done): the state of what it protects as this node leaves it, for the
// next holder. fn returns nil to store nothing.
func (l *Lock) SetValue(fn func() *ValueBlock) {
	l.mu.Lock()
	l.value = fn
	l.mu.Unlock()
}

// OnFreshGrant has fn run each time the lock is granted PR or EX while
// this node held it at NL or not at all, before any user gets it: what
// the node cached that no lock of its own covered may have changed.
func (l *Lock) OnFreshGrant(fn func()) {
	l.mu.Lock()
	l.onFresh = fn
	l.mu.Unlock()
}

// TakeValue returns, once per grant, the value block the grant read (ok
// false: none, already taken, or invalid because a holder died).
func (l *Lock) TakeValue() (v ValueBlock, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok = l.fresh, l.freshValid
	l.freshValid = false
	return v, ok
}

// noteValue records what a grant read. Under mu.
func (l *Lock) noteValue(h Held) {
	l.freshValid = false
	if r, ok := h.(ValueReader); ok {
		l.fresh, l.freshValid = r.LastValue()
	}
}

// downRequest is the Request of a conversion down from from to to.
// Not under mu.
func (l *Lock) downRequest(from, to Mode) Request {
	r := Request{Mode: to}
	l.mu.Lock()
	fn := l.value
	l.mu.Unlock()
	if from == EX && fn != nil {
		r.Value = fn()
	}
	return r
}

// Stats count what a lock did (the fs_locks view).
type Stats struct {
	Acquires     uint64 `json:"acquires"` // users served (PR.Gets + EX.Gets, filled by State)
	Requests     uint64 `json:"requests"` // DLM requests and up-conversions
	Downconverts uint64 `json:"downconverts"`
	Blocks       uint64 `json:"blocks"`  // blocking notifications received
	Retries      uint64 `json:"retries"` // requests re-made after RequestRetry
	// PR and EX: the users served at each level and how long those that
	// had to wait (for the lock manager, or for a downconvert) waited,
	// as debugfs.ocfs2's fs_locks shows for the kernel.
	PR WaitStats `json:"pr"`
	EX WaitStats `json:"ex"`
}

// WaitStats are the gets of one level and their waits.
type WaitStats struct {
	Gets  uint64        `json:"gets"`
	Waits uint64        `json:"waits"` // gets that could not be served at once
	Total time.Duration `json:"wait_total_ns"`
	Max   time.Duration `json:"wait_max_ns"`
}

// Add adds o's counts to s (totals over many locks).
func (s *Stats) Add(o Stats) {
	s.Acquires += o.Acquires
	s.Requests += o.Requests
	s.Downconverts += o.Downconverts
	s.Blocks += o.Blocks
	s.Retries += o.Retries
	s.PR.add(o.PR)
	s.EX.add(o.EX)
}

func (w *WaitStats) add(o WaitStats) {
	w.Gets += o.Gets
	w.Waits += o.Waits
	w.Total += o.Total
	w.Max = max(w.Max, o.Max)
}

// count records a get at level m. Under mu.
func (s *Stats) count(m Mode, waited bool, d time.Duration) {
	w := &s.PR
	if m == EX {
		w = &s.EX
	}
	w.Gets++
	if waited {
		w.Waits++
		w.Total += d
		w.Max = max(w.Max, d)
	}
}

// NewLock returns lock name on svc; flush runs before every downconvert.
func NewLock(svc Service, name string, flush Flusher) *Lock {
	l := &Lock{Name: name, svc: svc, flush: flush}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// TryAcquire counts one more local user at want only if that needs no
// waiting at all: the lock is held here at want or more, no other node
// waits for it, and nothing (a conversion, a recovery) is under way. It
// never asks the lock manager.
func (l *Lock) TryAcquire(want Mode) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil || l.recovering || l.blocked || l.converting || l.held == nil || l.mode < want {
		return nil, false
	}
	l.stats.count(want, false, 0)
	return l.use(), true
}

// Acquire waits until this node holds the lock at want or more and
// counts one local user until the returned function is called.
func (l *Lock) Acquire(ctx context.Context, want Mode) (func(), error) {
	return l.acquire(ctx, want, false)
}

// AcquirePastGhosts is Acquire with the recovery flag: a dead node's lock
// on the resource (a ghost until its recovery is done) does not stand in
// the way. It is for a lock the dead node's recovery cannot need, taken
// where waiting for that recovery would wait for oneself: a mounting
// node's own journal lock, which a survivor that recovered the slot
// before may have held when it died (ocfs2_journal_init's
// OCFS2_META_LOCK_RECOVERY).
func (l *Lock) AcquirePastGhosts(ctx context.Context, want Mode) (func(), error) {
	return l.acquire(ctx, want, true)
}

func (l *Lock) acquire(ctx context.Context, want Mode, pastGhosts bool) (func(), error) {
	start := time.Now()
	waited := false
	l.mu.Lock()
	defer l.mu.Unlock()
	got := func() func() {
		l.stats.count(want, waited, time.Since(start))
		return l.use()
	}
	for {
		if l.err != nil {
			return nil, l.err
		}
		switch {
		case l.recovering || l.blocked:
			waited = true
			l.cond.Wait()
		case l.held != nil && l.mode >= want:
			return got(), nil
		case l.converting:
			waited = true
			l.cond.Wait()
		default:
			waited = true
			if err := l.raise(ctx, want, pastGhosts); err != nil {
				return nil, err
			}
			if l.held != nil && l.mode >= want {
				// The requester uses what it waited for even if another
				// node asked meanwhile: the downconvert follows its use.
				return got(), nil
			}
		}
	}
}

// use counts a user. Under mu.
func (l *Lock) use() func() {
	l.users++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.users--
			if l.users == 0 {
				l.cond.Broadcast()
			}
			l.mu.Unlock()
		})
	}
}

// raise asks the DLM for want (a new lock or an up-conversion), with mu
// released while it waits. A request the DLM refuses (a conversion
// deadlock it broke, a cancel) is not an error: the caller loops and asks
// again after the downconvert that is then under way. Under mu.
func (l *Lock) raise(ctx context.Context, want Mode, recovery bool) error {
	l.converting = true
	l.stats.Requests++
	held := l.held
	fresh := held == nil || l.mode == NL // read under mu
	onFresh := l.onFresh
	// A request that waits very long is asked again (RequestRetry).
	rctx, cancel := context.WithTimeout(ctx, RequestRetry)
	l.cancelUp = cancel
	l.mu.Unlock()
	var err error
	if held == nil {
		held, err = l.svc.Lock(rctx, l.Name, Request{Mode: want, Recovery: recovery}, l.onBlock)
	} else {
		err = held.Convert(rctx, Request{Mode: want, Recovery: recovery})
	}
	cancel()
	if err == nil && fresh && want > NL && onFresh != nil {
		onFresh() // still converting: every user waits for it
	}
	l.mu.Lock()
	l.converting = false
	l.cancelUp = nil
	l.cond.Broadcast()
	if err != nil {
		if ctx.Err() != nil {
			if l.blocked {
				l.startDown()
			}
			return ctx.Err()
		}
		if rctx.Err() == context.DeadlineExceeded {
			l.stats.Retries++
		}
		if l.recovering {
			// Cancelled for a recovery, or the recovery's own request
			// refused: the caller waits for the recovery or asks again.
			return nil
		}
		if l.err != nil {
			return l.err
		}
		// Refused: the DLM broke a conversion deadlock at this node's
		// expense (another node converts up past what this one holds).
		// Give way as for a blocking notification, then ask again.
		if l.held != nil && l.mode > NL {
			l.blocked = true
			l.wanted = EX
		}
		if l.blocked {
			l.startDown()
		}
		return nil
	}
	l.held, l.mode = held, want
	l.noteValue(held)
	if l.blocked {
		l.startDown()
	}
	return nil
}

// onBlock is the DLM's blocking notification: another node waits for
// wanted.
func (l *Lock) onBlock(wanted Mode) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Blocks++
	if !l.converting && (l.held == nil || compatible(l.mode, wanted)) {
		return // stale: the lock went down already
	}
	// While a conversion is in flight the notification may be about the
	// mode it is being granted, which l.mode does not show yet: keep it;
	// the downconvert decides once the conversion is over.
	if !l.blocked || wanted > l.wanted {
		l.wanted = wanted
	}
	l.blocked = true
	if l.cancelUp != nil && !l.recovering {
		// Up-converting while another node waits on what this node
		// holds: two nodes doing that wait for each other forever. Give
		// the request up (dlmglue cancels its convert too); the
		// downconvert goes first and the user asks again after it.
		l.cancelUp()
	}
	l.startDown()
}

// startDown starts the downconvert goroutine once. Under mu.
func (l *Lock) startDown() {
	if l.downing {
		return
	}
	l.downing = true
	go l.down()
}

// down waits for the local users to finish, flushes and converts down to
// the highest mode compatible with what the other node wants. A blocking
// notification that arrives while it converts (another node asking for
// more than the first) is not lost: it goes down again.
func (l *Lock) down() {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() {
		l.downing = false
		l.cond.Broadcast()
	}()
	for {
		for l.users > 0 || l.converting || l.recovering {
			l.cond.Wait()
		}
		if l.err != nil || l.held == nil || compatible(l.mode, l.wanted) {
			l.blocked = false
			return
		}
		from, to := l.mode, NL
		if l.wanted == PR {
			to = PR
		}
		held := l.held
		l.converting = true // no other request on the lock meanwhile
		l.mu.Unlock()
		req := l.downRequest(from, to) // before the flush forgets what it reads
		err := l.flush(from, to)
		if err == nil {
			err = held.Convert(context.Background(), req)
		}
		l.mu.Lock()
		l.converting = false
		l.cond.Broadcast() // Recover may wait for the conversion to end
		if err != nil {
			// A node that cannot write its changes home must not let another
			// read past them: the lock stays, and every user fails.
			l.err = fmt.Errorf("cluster lock %s: giving it up: %w", l.Name, err)
			l.blocked = false
			return
		}
		l.mode = to
		l.stats.Downconverts++
		// l.wanted is the strongest mode asked for since the notification
		// that started this: if a later one asked for more, go on down.
	}
}

// Recover runs fn holding the lock EX with the recovery flag, which passes
// the ghosts of dead nodes' locks; this node's users wait until fn
// returns. fn recovers a dead node's share of the volume.
func (l *Lock) Recover(ctx context.Context, fn func() error) error {
	for {
		l.mu.Lock()
		for l.recovering {
			l.cond.Wait()
		}
		l.recovering = true
		if l.cancelUp != nil {
			// A user's request waits behind the dead node's lock, which
			// only this recovery can clear: give it up (the user asks
			// again after the recovery).
			l.cancelUp()
		}
		for l.users > 0 || l.converting {
			l.cond.Wait()
		}
		end := func() {
			l.recovering = false
			l.cond.Broadcast()
			if l.blocked {
				l.startDown()
			}
		}
		if l.err != nil {
			err := l.err
			end()
			l.mu.Unlock()
			return err
		}
		if l.held == nil || l.mode < EX {
			if err := l.raise(ctx, EX, true); err != nil {
				end()
				l.mu.Unlock()
				return err
			}
			if l.held == nil || l.mode < EX {
				// Refused or timed out (another survivor recovers, or
				// holds the lock): give way, then try again.
				end()
				l.mu.Unlock()
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
		}
		l.mu.Unlock()
		err := fn()
		l.mu.Lock()
		end()
		l.mu.Unlock()
		return err
	}
}

// Close gives the lock up for good (unmount): it waits for local users,
// flushes as for a downconvert to NL and unlocks. Users fail afterwards.
func (l *Lock) Close() error {
	l.mu.Lock()
	for l.users > 0 || l.converting || l.downing || l.recovering {
		l.cond.Wait()
	}
	held, from := l.held, l.mode
	if l.err == nil {
		l.err = fmt.Errorf("cluster lock %s: the volume is unmounted", l.Name)
	}
	l.held = nil
	l.cond.Broadcast()
	l.mu.Unlock()
	if held == nil {
		return nil
	}
	var errs []error
	if from > NL {
		req := l.downRequest(from, NL)
		errs = append(errs, l.flush(from, NL))
		if req.Value != nil {
			// Leave the value block current for the next holder.
			errs = append(errs, held.Convert(context.Background(), req))
		}
	}
	errs = append(errs, held.Unlock())
	return errors.Join(errs...)
}

// LockState is a lock's state for the debug views.
type LockState struct {
	Name    string `json:"name"`
	Mode    string `json:"mode"`
	Users   int    `json:"holders"`
	Blocked bool   `json:"blocked"`
	Wanted  string `json:"requested,omitempty"` // by another node, when blocked
	Stats
}

// State returns the lock's state.
func (l *Lock) State() LockState {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LockState{Name: l.Name, Mode: l.mode.String(), Users: l.users, Blocked: l.blocked, Stats: l.stats}
	s.Acquires = s.PR.Gets + s.EX.Gets
	if l.held == nil {
		s.Mode = "none"
	}
	if l.blocked {
		s.Wanted = l.wanted.String()
	}
	return s
}
