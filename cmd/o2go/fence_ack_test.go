package main

import (
	"bytes"
	"os"
	"testing"

	"o2go/internal/base"
	"o2go/internal/cluster/heartbeat"
	"o2go/internal/node"
	"o2go/internal/ondisk"
)

// nodeSectors reads node n's heartbeat slot and kill block from the image
// (or device) img.
func nodeSectors(t *testing.T, img string, n base.NodeID) (slot, kill []byte) {
	t.Helper()
	info, err := node.ProbeVolume(img)
	if err != nil {
		t.Fatal(err)
	}
	g := info.Geometry
	if !g.HasKill {
		t.Fatalf("%s has no kill area", img)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	slot, kill = make([]byte, g.SectorSize), make([]byte, g.SectorSize)
	if _, err := f.ReadAt(slot, g.SlotOffset(n)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(kill, g.KillOffset(n)); err != nil {
		t.Fatal(err)
	}
	return slot, kill
}

// checkOnlyTheAck checks what node n wrote after its fence latch, from its
// heartbeat slot and kill block read before (the node stopped, nothing of
// it in flight) and after the fence. The one write allowed after the latch
// is the acknowledgement (internal/node's fence: latch, then the ack through
// the raw device, then the action): the slot must be unchanged, and the
// kill block must be exactly KillBlock{Owner: n, Generation: g, Seq: the
// block's seq before + 1, FencedGen: g, FenceReason: one of reasons, no
// orders}, g being the generation the slot shows, byte for byte.
func checkOnlyTheAck(t *testing.T, n base.NodeID, slotBefore, killBefore, slotAfter, killAfter []byte, reasons ...heartbeat.FenceReason) {
	t.Helper()
	hb, err := ondisk.DecodeHeartbeatBlock(slotBefore)
	if err != nil || hb.Generation == 0 {
		t.Fatalf("node %d's heartbeat slot before the fence: %+v, %v", n, hb, err)
	}
	if !bytes.Equal(slotBefore, slotAfter) {
		a, _ := ondisk.DecodeHeartbeatBlock(slotAfter)
		t.Errorf("node %d wrote its heartbeat slot after it was stopped: before %+v, after %+v", n, hb, a)
	}
	prev, err := heartbeat.DecodeKillBlock(killBefore, n)
	if err != nil {
		t.Fatalf("node %d's kill block before the fence: %v", n, err)
	}
	var prevSeq uint64
	if prev != nil {
		prevSeq = prev.Seq
	}
	got, err := heartbeat.DecodeKillBlock(killAfter, n)
	switch {
	case err != nil:
		t.Fatalf("node %d's kill block after the fence: %v", n, err)
	case got == nil || bytes.Equal(killBefore, killAfter):
		t.Fatalf("node %d did not write its fencing acknowledgement (kill block before %+v, after %+v)", n, prev, got)
	}
	ok := false
	for _, r := range reasons {
		ok = ok || got.FenceReason == r
	}
	if !ok {
		t.Errorf("node %d acknowledged a fence for %q, want one of %v", n, got.FenceReason, reasons)
	}
	want := heartbeat.KillBlock{Owner: n, Generation: hb.Generation, Seq: prevSeq + 1, FencedGen: hb.Generation, FenceReason: got.FenceReason}
	sector := make([]byte, len(killAfter))
	if err := want.Encode(sector); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sector, killAfter) {
		t.Errorf("node %d's kill block after the fence is not exactly its acknowledgement:\ngot  %+v\nwant %+v", n, *got, want)
		return
	}
	t.Logf("node %d's one write after the latch: its acknowledgement (%s, seq %d)", n, got.FenceReason, got.Seq)
}
