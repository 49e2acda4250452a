package node

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"o2go/internal/blockdev"
	"o2go/internal/cluster/config"
	"o2go/internal/node/member"
)

// ExitFenced is the exit status of an agent that fenced itself with the
// exit method (tests and containers): the process ends, nothing else.
const ExitFenced = 99

// BootClock reads CLOCK_BOOTTIME: monotonic, and counting time the machine
// spent suspended (CLOCK_MONOTONIC does not), so a node that slept through
// its lease knows it when it wakes.
func BootClock() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Duration(time.Now().UnixNano())
	}
	return time.Duration(ts.Nano())
}

// FenceAction carries out a fence once the latch is on: reset, panic or
// exit. Tests replace it.
type FenceAction func(method config.FenceMethod, reason string)

// DefaultFenceAction is the real thing:
//
//   - reset: reboot(2) with LINUX_REBOOT_CMD_RESTART at once, like the
//     kernel's emergency_restart (no sync: nothing more may reach the disks);
//   - panic: 'c' to /proc/sysrq-trigger, a kernel crash with a dump when
//     kdump is set up;
//   - exit: the agent exits with ExitFenced.
//
// If reset or panic fail (no privilege, sysrq disabled) the agent exits
// with ExitFenced: its writes are latched off either way.
func DefaultFenceAction(method config.FenceMethod, reason string) {
	fmt.Fprintf(os.Stderr, "o2go: *** fencing this node (%s): %s ***\n", method, reason)
	switch method {
	case config.FenceReset:
		err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
		fmt.Fprintf(os.Stderr, "o2go: reboot failed: %v; exiting instead\n", err)
	case config.FencePanic:
		err := os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0)
		fmt.Fprintf(os.Stderr, "o2go: sysrq crash failed: %v; exiting instead\n", err)
	}
	os.Exit(ExitFenced)
}

// gateState is what the event loop publishes for the write gate and the
// watchdog: they run outside the loop and must decide without it.
type gateState struct {
	leaseExp int64 // boot-clock ns; 0: no lease
	frozen   bool
	overdue  bool
}

// gate decides, before every write to a shared disk, whether this node may
// still write; it fences the node when the lease ran out. Every shared
// device is wrapped: gate -> latch -> device (the latch check precedes
// every write).
type gate struct {
	st      atomic.Pointer[gateState]
	fenced  atomic.Bool
	clock   func() time.Duration
	onFence func(reason string) // latches and starts fencing; never blocks on the loop
}

func (g *gate) publish(s gateState) { g.st.Store(&s) }

// ErrFencedWrite and ErrFrozenWrite are the gate's refusals.
var (
	ErrFencedWrite = blockdev.ErrFenced
	ErrFrozenWrite = errors.New("o2go: writes to shared disks wait: the disk is unreachable from every node (frozen)")
)

// check is the gate for one write. heartbeat writes pass while frozen and
// before the first lease; data writes need a lease and wait (return a
// temporary error) while the node is frozen or its heartbeat write is
// overdue.
func (g *gate) check(heartbeatWrite bool) error {
	if g.fenced.Load() {
		return ErrFencedWrite
	}
	s := g.st.Load()
	if s == nil {
		if heartbeatWrite {
			return nil
		}
		return member.ErrNoLease
	}
	now := g.clock()
	if s.leaseExp != 0 && int64(now) >= s.leaseExp && !s.frozen {
		g.onFence(fmt.Sprintf("write lease expired %v ago when a write was attempted (this node stalled or was paused)", time.Duration(int64(now)-s.leaseExp)))
		return ErrFencedWrite
	}
	if heartbeatWrite {
		return nil
	}
	switch {
	case s.leaseExp == 0:
		return member.ErrNoLease
	case s.frozen:
		return ErrFrozenWrite
	case s.overdue:
		return member.ErrSlowDisk
	}
	return nil
}

// gated is a shared device behind the gate (and, under it, the latch).
type gated struct {
	blockdev.Device
	g         *gate
	heartbeat bool
}

func (d *gated) WriteAt(p []byte, off int64) (int, error) {
	for {
		err := d.g.check(d.heartbeat)
		switch {
		case err == nil:
			return d.Device.WriteAt(p, off)
		case errors.Is(err, member.ErrSlowDisk) || errors.Is(err, ErrFrozenWrite):
			time.Sleep(10 * time.Millisecond) // temporary: wait, re-check
		default:
			return 0, err
		}
	}
}

func (d *gated) Sync() error {
	if err := d.g.check(d.heartbeat); err != nil && !errors.Is(err, ErrFrozenWrite) && !errors.Is(err, member.ErrSlowDisk) {
		return err
	}
	return d.Device.Sync()
}

// fencer runs a fence exactly once: latch, acknowledgement, action.
type fencer struct {
	once    sync.Once
	latch   *blockdev.Latch
	g       *gate
	action  FenceAction
	method  config.FenceMethod
	logf    func(format string, args ...any)
	latched chan struct{}
	acted   chan struct{}
	timeout time.Duration
}

// latchNow latches writes off (waiting for those in flight, up to timeout)
// and reports whether in-flight writes are known to have finished.
func (f *fencer) latchNow(reason string) bool {
	f.g.fenced.Store(true)
	done := make(chan struct{})
	go func() {
		f.latch.Fence(reason)
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(f.timeout):
		f.logf("fence: writes still in flight after %v; acting without an acknowledgement", f.timeout)
		return false
	}
}

// fence latches, writes the acknowledgements with ackWrite (only when the
// latch is known to hold nothing in flight), then acts. The action waits
// for the acknowledgements at most timeout: a node fences most often
// because its path to the disk hangs, and a write to a hung path (multipath
// queue_if_no_path) may never return — the machine must be reset anyway.
// An acknowledgement that lands later is still true: this incarnation's
// writes are latched off for good.
func (f *fencer) fence(reason string, acks []member.AckWrite, ackWrite func(member.AckWrite) error) {
	f.once.Do(func() {
		f.logf("FENCING (%s): %s", f.method, reason)
		if f.latchNow(reason) && len(acks) > 0 {
			written := make(chan struct{})
			go func() {
				defer close(written)
				for _, a := range acks {
					if err := ackWrite(a); err != nil {
						f.logf("fence: writing the acknowledgement: %v", err)
					}
				}
			}()
			select {
			case <-written:
			case <-time.After(f.timeout):
				f.logf("fence: the acknowledgement is not written after %v (the disk hangs); acting without waiting for it", f.timeout)
			}
		}
		close(f.latched)
		f.action(f.method, reason)
		close(f.acted)
	})
}
