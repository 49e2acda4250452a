package quorum

import (
	"testing"
	"time"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
)

// A status handled after this node stalled may have waited for it: it is
// stamped with the last tick before the stall; one that comes more than an
// interval after the node runs again is fresh as usual.
func TestStatusesAfterAStallAreNotFresh(t *testing.T) {
	const iv = time.Second
	m := NewMembership(MembershipConfig{Self: 0, Interval: iv})
	live := base.NodeMapOf(0, 1)
	var gens [base.MaxNodes]uint64
	gens[0], gens[1] = 7, 9
	m.SetLive(iv, live, &gens)
	m.SetLinks(iv, base.NodeMapOf(1), base.NodeMap{})
	st := Status{Live: live, Connected: base.NodeMapOf(0)}.Encode()
	for now := iv; now <= 10*iv; now += iv / 5 {
		m.Tick(now)
	}
	// Paused from 10 s to 12.5 s: a status delivered on resuming.
	if err := m.Receive(12500*time.Millisecond, 1, cnet.TypeNodeStatus, st); err != nil {
		t.Fatal(err)
	}
	// Stamped at 10 s, the last tick: stale three intervals after it,
	// not three intervals after the resume.
	m.Tick(12600 * time.Millisecond)
	m.Tick(13100 * time.Millisecond)
	if _, fresh := m.PeerStatus(1); fresh {
		t.Fatalf("a status delivered right after a 2.5 s stall is fresh 3.1 s after the stall began")
	}
	if err := m.Receive(13700*time.Millisecond, 1, cnet.TypeNodeStatus, st); err != nil {
		t.Fatal(err)
	}
	if _, fresh := m.PeerStatus(1); !fresh {
		t.Fatalf("a status an interval after the node runs again is not fresh")
	}
}

// Watchers: a joiner that a peer reports heartbeating counts, and a node
// with no watcher is never confirmed frozen.
func TestWatchersIncludeJoiners(t *testing.T) {
	const iv = time.Second
	m := NewMembership(MembershipConfig{Self: 1, Interval: iv})
	var gens [base.MaxNodes]uint64
	m.SetLive(iv, base.NodeMapOf(1), &gens)
	if m.PeersReadStalled(base.NodeMap{}) || m.PeersReachable(base.NodeMap{}) {
		t.Fatalf("a node alone is confirmed by nobody")
	}
	m.SetLive(iv, base.NodeMapOf(0, 1), &gens)
	m.SetLinks(iv, base.NodeMapOf(0), base.NodeMap{})
	m.Tick(iv)
	st := Status{Live: base.NodeMapOf(0, 1, 2), Connected: base.NodeMapOf(1, 2), Health: Health{ReadStalled: true}}.Encode()
	if err := m.Receive(iv+time.Millisecond, 0, cnet.TypeNodeStatus, st); err != nil {
		t.Fatal(err)
	}
	if w := m.Watchers(base.NodeMap{}); w != base.NodeMapOf(0, 2) {
		t.Fatalf("watchers [%v], want [0 2]", w)
	}
	if m.PeersReadStalled(base.NodeMap{}) {
		t.Fatalf("node 2 heartbeats (node 0 says so) and is not heard from: no freeze")
	}
}
