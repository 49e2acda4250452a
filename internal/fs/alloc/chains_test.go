package alloc_test

import (
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// TestChainsWrapAndRelink grows a suballocator past cl_count groups (19
// chains with 512-byte blocks), so that chains hold more than one group,
// and checks the kernel's rules: a new group goes to the chain with the
// fewest bits (the first of equals) at its head; a claim that finds room
// only behind a full head moves that group to the head of its chain.
func TestChainsWrapAndRelink(t *testing.T) {
	realtools.Require(t)
	w := mkvol(t, geometries[3]) // 512/4K: cl_count 19
	blk := w.sys(ondisk.SysExtentAlloc, 0)
	ea := w.suballoc(ondisk.SysExtentAlloc, 0)
	chains := func() []ondisk.ChainRec {
		d, err := w.c.Dinode(blk)
		if err != nil {
			t.Fatal(err)
		}
		return d.Chain.Recs
	}
	count := ondisk.ChainRecsPerInode(w.geo.BlockSize)
	if n := len(chains()); n != 1 {
		t.Fatalf("fresh extent_alloc:0000 has %d chains, want 1", n)
	}
	first := chains()[0].Blkno
	var grown []uint64
	for i := 0; i < count; i++ {
		g, err := ea.Grow(w.tx)
		if err != nil {
			t.Fatalf("grow %d: %v", i, err)
		}
		grown = append(grown, g)
	}
	recs := chains()
	if len(recs) != count {
		t.Fatalf("%d chains after %d grows, want %d", len(recs), count, count)
	}
	for i := 1; i < count; i++ {
		if recs[i].Blkno != grown[i-1] {
			t.Errorf("chain %d starts at %d, want the group grown %d-th (%d)", i, recs[i].Blkno, i, grown[i-1])
		}
	}
	// The 19th new group found every chain equal: chain 0, at its head.
	head := grown[count-1]
	if recs[0].Blkno != head {
		t.Fatalf("chain 0 starts at %d, want the last grown group %d", recs[0].Blkno, head)
	}
	g, err := w.c.GroupDesc(head)
	if err != nil {
		t.Fatal(err)
	}
	if g.NextGroup != first || g.Chain != 0 {
		t.Fatalf("new head %d: next %d chain %d, want next %d chain 0", head, g.NextGroup, g.Chain, first)
	}
	w.check("after wrapping the chains")

	// Fill the head through the hint, then claim again: the room is in
	// the old group behind it, which moves to the head.
	objs, err := ea.ClaimObjects(w.tx, int(g.FreeBitsCount), head)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GroupBlkno != head {
			t.Fatalf("hinted claim left the head group: %+v", o)
		}
	}
	more, err := ea.ClaimObject(w.tx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if more.GroupBlkno != first {
		t.Fatalf("claim after the head filled came from %d, want %d (chain 0, the most free bits)", more.GroupBlkno, first)
	}
	if recs := chains(); recs[0].Blkno != first {
		t.Fatalf("chain 0 starts at %d after the claim, want the relinked %d", recs[0].Blkno, first)
	}
	if g, _ := w.c.GroupDesc(first); g.NextGroup != head {
		t.Fatalf("relinked group's next is %d, want the old head %d", g.NextGroup, head)
	}
	if g, _ := w.c.GroupDesc(head); g.NextGroup != 0 {
		t.Fatalf("old head's next is %d, want 0", g.NextGroup)
	}
	w.check("after the relink")
	if err := ea.FreeObjects(w.tx, append(objs, more)); err != nil {
		t.Fatal(err)
	}
	w.check("after freeing")
	img := w.img
	w.close()
	realtools.RequireFsckClean(t, img)
}
