package blockdev

import (
	"errors"
	"slices"
	"sync"
	"time"

	"o2go/internal/base"
)

// Op names an I/O operation for fault rules.
type Op int

const (
	OpRead Op = iota
	OpWrite
	OpSync
)

// Fault is what a FaultRule does to a matching operation.
type Fault struct {
	Err   error         // fail the operation with this error (nil: no error)
	Delay time.Duration // wait this long first (disk latency spikes)
	// TornAfter, for writes, applies only the first TornAfter sectors and
	// then fails with Err (or ErrTornWrite): a write cut by power loss.
	TornAfter int
}

// ErrTornWrite is the default error of a torn write.
var ErrTornWrite = errors.New("blockdev: injected torn write")

// FaultRule decides, per operation, whether to inject a fault. It is called
// with the operation, offset and length; it returns the fault and true to
// inject. Rules run in order; the first that matches wins.
type FaultRule func(op Op, off int64, n int) (Fault, bool)

// Faulty wraps a Device with injected faults and a volatile write cache:
// writes are visible to reads at once but durable only after Sync, and
// CrashImage shows what a power cut would leave. Tests of journaling and of
// the cluster stack use it to prove "acknowledged means durable" and "a slow
// or failing disk fences, never corrupts".
type Faulty struct {
	Device
	mu    sync.Mutex
	rules []FaultRule
	// history holds, for every sector written since the last Sync, its
	// durable content followed by each version written since.
	history map[int64][][]byte
	ops     [3]int64
}

// NewFaulty wraps dev.
func NewFaulty(dev Device) *Faulty { return &Faulty{Device: dev, history: map[int64][][]byte{}} }

// AddRule appends a fault rule.
func (f *Faulty) AddRule(r FaultRule) {
	f.mu.Lock()
	f.rules = append(f.rules, r)
	f.mu.Unlock()
}

// ClearRules removes every fault rule (the disk heals).
func (f *Faulty) ClearRules() {
	f.mu.Lock()
	f.rules = nil
	f.mu.Unlock()
}

// Ops returns how many reads, writes and syncs were issued.
func (f *Faulty) Ops() (reads, writes, syncs int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops[OpRead], f.ops[OpWrite], f.ops[OpSync]
}

func (f *Faulty) fault(op Op, off int64, n int) (Fault, bool) {
	f.mu.Lock()
	f.ops[op]++
	rules := f.rules
	f.mu.Unlock()
	for _, r := range rules {
		if ft, ok := r(op, off, n); ok {
			return ft, true
		}
	}
	return Fault{}, false
}

// ReadAt implements Device.
func (f *Faulty) ReadAt(p []byte, off int64) (int, error) {
	if ft, ok := f.fault(OpRead, off, len(p)); ok {
		time.Sleep(ft.Delay)
		if ft.Err != nil {
			return 0, ft.Err
		}
	}
	return f.Device.ReadAt(p, off)
}

// WriteAt implements Device.
func (f *Faulty) WriteAt(p []byte, off int64) (int, error) {
	ft, ok := f.fault(OpWrite, off, len(p))
	if ok {
		time.Sleep(ft.Delay)
		if ft.TornAfter > 0 {
			n := min(ft.TornAfter*f.SectorSize(), len(p))
			if _, err := f.write(p[:n], off); err != nil {
				return 0, err
			}
			if ft.Err != nil {
				return n, ft.Err
			}
			return n, ErrTornWrite
		}
		if ft.Err != nil {
			return 0, ft.Err
		}
	}
	return f.write(p, off)
}

func (f *Faulty) write(p []byte, off int64) (int, error) {
	ss := int64(f.SectorSize())
	if off%ss != 0 || int64(len(p))%ss != 0 {
		return 0, errors.New("blockdev: faulty device needs sector-aligned writes")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := int64(0); s < int64(len(p)); s += ss {
		at := off + s
		if _, ok := f.history[at]; !ok {
			old := make([]byte, ss)
			if _, err := f.Device.ReadAt(old, at); err != nil {
				return 0, err
			}
			f.history[at] = [][]byte{old}
		}
		f.history[at] = append(f.history[at], append([]byte(nil), p[s:s+ss]...))
	}
	return f.Device.WriteAt(p, off)
}

// Sync implements Device: every write so far becomes durable.
func (f *Faulty) Sync() error {
	if ft, ok := f.fault(OpSync, 0, 0); ok {
		time.Sleep(ft.Delay)
		if ft.Err != nil {
			return ft.Err
		}
	}
	if err := f.Device.Sync(); err != nil {
		return err
	}
	f.mu.Lock()
	clear(f.history)
	f.mu.Unlock()
	return nil
}

// Unsynced is the number of sectors written since the last Sync.
func (f *Faulty) Unsynced() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.history)
}

// CrashImage returns the contents a power cut now could leave on a disk
// with a volatile write cache: every sector written since the last Sync
// independently holds its durable content or any version written since
// (sectors are atomic, their order is not). The device is not changed.
func (f *Faulty) CrashImage(rng *base.Rand) ([]byte, error) {
	img := make([]byte, f.Size())
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.Device.ReadAt(img, 0); err != nil {
		return nil, err
	}
	secs := make([]int64, 0, len(f.history))
	for at := range f.history {
		secs = append(secs, at)
	}
	slices.Sort(secs) // map order must not decide which draw goes where
	for _, at := range secs {
		h := f.history[at]
		copy(img[at:], h[rng.Intn(len(h))])
	}
	return img, nil
}
