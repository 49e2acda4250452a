package node

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/quorum"
)

// TestHubDeliversInPriorityOrder: whatever order the layers subscribe in,
// every event reaches the DLM, then the file system, then HA, and all of
// them before the next event; a late subscriber first gets the current
// membership as Initial up events; an unsubscribed one gets nothing more.
func TestHubDeliversInPriorityOrder(t *testing.T) {
	h := newHub()
	var mu sync.Mutex
	var got []string
	record := func(name string) func(MembershipEvent) {
		return func(e MembershipEvent) {
			mu.Lock()
			defer mu.Unlock()
			s := fmt.Sprintf("%s %d:%d %s", name, e.Seq, e.Node, e.Kind)
			if e.Initial {
				s += " initial"
			}
			got = append(got, s)
		}
	}
	done := make(chan struct{})
	go func() { h.run(); close(done) }()
	defer func() { h.close(); <-done }()

	h.subscribe("ha", PriorityHA, record("ha"))
	stopFS := h.subscribe("fs", PriorityFS, record("fs"))
	h.subscribe("dlm", PriorityDLM, record("dlm"))
	up := func(seq uint64, n base.NodeID, members ...base.NodeID) MembershipEvent {
		return MembershipEvent{Seq: seq, Epoch: seq, Node: n, Kind: quorum.NodeUp, Members: base.NodeMapOf(members...)}
	}
	h.publish([]MembershipEvent{up(1, 0, 0, 2), up(1, 2, 0, 2)})
	h.publish([]MembershipEvent{{Seq: 2, Epoch: 2, Node: 2, Kind: quorum.NodeDown, Members: base.NodeMapOf(0)}})
	stopFS()
	h.subscribe("late", PriorityDLM, record("late"))
	h.publish([]MembershipEvent{up(3, 1, 0, 1)})

	want := []string{
		"dlm 1:0 up", "fs 1:0 up", "ha 1:0 up",
		"dlm 1:2 up", "fs 1:2 up", "ha 1:2 up",
		"dlm 2:2 down", "fs 2:2 down", "ha 2:2 down",
		"late 2:0 up initial", // the membership as it stands: [0]
		"dlm 3:1 up", "late 3:1 up", "ha 3:1 up",
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // nothing more may come
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("delivered:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
