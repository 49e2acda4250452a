package blockdev

import "sync"

// Latch wraps the devices of one node and is the first step of fencing:
// after Fence returns, no write from this process reaches any of them, and
// none is still in flight. Reads keep working (a fenced node may still look).
type Latch struct {
	mu     sync.RWMutex // writers hold it shared; Fence takes it exclusively
	fenced bool
	reason string
}

// Fence latches writes off for good. It waits for writes already issued to
// complete, so the caller can act (reset, panic, exit) knowing the disks
// will see nothing more from this node.
func (l *Latch) Fence(reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.fenced {
		l.fenced, l.reason = true, reason
	}
}

// Fenced reports whether Fence was called, and why.
func (l *Latch) Fenced() (bool, string) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.fenced, l.reason
}

// Wrap returns dev guarded by the latch.
func (l *Latch) Wrap(dev Device) Device { return &latched{Device: dev, l: l} }

type latched struct {
	Device
	l *Latch
}

func (d *latched) WriteAt(p []byte, off int64) (int, error) {
	d.l.mu.RLock()
	defer d.l.mu.RUnlock()
	if d.l.fenced {
		return 0, ErrFenced
	}
	return d.Device.WriteAt(p, off)
}

func (d *latched) Sync() error {
	d.l.mu.RLock()
	defer d.l.mu.RUnlock()
	if d.l.fenced {
		return ErrFenced
	}
	return d.Device.Sync()
}
