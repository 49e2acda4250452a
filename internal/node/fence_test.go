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
