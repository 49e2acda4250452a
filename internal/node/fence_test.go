package node

import (
	"testing"
	"time"

	"o2go/internal/blockdev"
	"o2go/internal/cluster/config"
	"o2go/internal/node/member"
)

// TestFenceActsWhenTheAcknowledgementHangs: a node fences most often
// because its disk path hangs; the acknowledgement write to that path may
// never return, and the action (reset, panic, exit) must not wait for it.
func TestFenceActsWhenTheAcknowledgementHangs(t *testing.T) {
	var latch blockdev.Latch
	acted := make(chan string, 1)
	f := &fencer{latch: &latch, g: &gate{clock: BootClock}, method: config.FenceExit, logf: t.Logf,
		latched: make(chan struct{}), acted: make(chan struct{}), timeout: 100 * time.Millisecond,
		action: func(_ config.FenceMethod, reason string) { acted <- reason }}
	hang := make(chan struct{})
	defer close(hang)
	started := make(chan struct{})
	go f.fence("test", []member.AckWrite{{Kill: make([]byte, 512)}}, func(member.AckWrite) error {
		close(started)
		<-hang // a write to a hung path
		return nil
	})
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the acknowledgement was never attempted")
	}
	select {
	case r := <-acted:
		if r != "test" {
			t.Fatalf("acted for %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the fence action waits for an acknowledgement write that hangs")
	}
	if fenced, _ := latch.Fenced(); !fenced {
		t.Fatal("acted before latching")
	}
}

// hungDevice is a disk whose writes never return (until released).
type hungDevice struct {
	blockdev.Device
	entered chan struct{}
	release chan struct{}
}

func (d *hungDevice) WriteAt(p []byte, off int64) (int, error) {
	close(d.entered)
	<-d.release
	return len(p), nil
}

// TestFenceFromOutsideDoesNotWaitForAHungWrite: the gate or the watchdog
// fences while the event loop does not answer and a data write hangs in
// the latch: the action must still come (new writes are refused by the
// gate at once; the latch's wait for the hung one is bounded).
func TestFenceFromOutsideDoesNotWaitForAHungWrite(t *testing.T) {
	acted := make(chan string, 1)
	a := &Agent{cmds: make(chan func(), 16), done: make(chan struct{}), gate: &gate{clock: BootClock}}
	a.gate.onFence = a.fenceFromOutside
	a.fencer = &fencer{latch: &a.latch, g: a.gate, method: config.FenceExit, logf: t.Logf,
		latched: make(chan struct{}), acted: make(chan struct{}), timeout: 100 * time.Millisecond,
		action: func(_ config.FenceMethod, reason string) { acted <- reason }}
	hung := &hungDevice{Device: blockdev.NewMemory("disk", 1<<20, 512), entered: make(chan struct{}), release: make(chan struct{})}
	defer close(hung.release)
	dev := &gated{Device: a.latch.Wrap(hung), g: a.gate}
	a.gate.publish(gateState{leaseExp: int64(BootClock() + time.Hour)})
	go func() { _, _ = dev.WriteAt(make([]byte, 512), 0) }()
	<-hung.entered
	a.fenceFromOutside("the event loop does not answer")
	select {
	case r := <-acted:
		t.Logf("acted: %s", r)
	case <-time.After(5 * time.Second):
		t.Fatal("no fence action while a write hangs in the latch")
	}
	if _, err := dev.WriteAt(make([]byte, 512), 0); err == nil {
		t.Fatal("a write passed after the fence")
	}
}
