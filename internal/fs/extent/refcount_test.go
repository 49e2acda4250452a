package extent

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"o2go/internal/base"
	"o2go/internal/blockdev"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

func newTestRefcountTree(t *testing.T, bs int) (*RefcountTree, *memAlloc) {
	t.Helper()
	dev := blockdev.NewMemory("mem", int64(bs)*20000, 512)
	c := metacache.New(dev, bs, metacache.Options{FSGeneration: 0x77, MetaECC: true})
	a := &memAlloc{next: 100, limit: 20000, used: map[uint64]bool{}}
	tx := &metacache.DirectTx{C: c}
	root, err := NewRefcountTree(c, tx, a, 0xabcd)
	if err != nil {
		t.Fatal(err)
	}
	return &RefcountTree{C: c, Tx: tx, Alloc: a, Root: root}, a
}

// checkRefcountModel compares the tree with model (cluster -> count) and
// the allocator's blocks with the tree's.
func checkRefcountModel(t *testing.T, tr *RefcountTree, model map[uint64]uint32, a *memAlloc) RefcountShape {
	t.Helper()
	s, err := CheckRefcountTree(tr.C, tr.Root)
	if err != nil {
		t.Fatal(err)
	}
	if s.FirstKey != 0 {
		t.Fatalf("first leaf at key %d, want 0 (%v)", s.FirstKey, s)
	}
	if want := 1 + len(s.Leaves) + s.IndexBlocks; len(a.used) != want {
		t.Fatalf("allocator holds %d blocks, the tree %d (%v)", len(a.used), want, s)
	}
	if s.Clusters != uint64(len(model)) {
		t.Fatalf("tree counts %d clusters, model %d (%v)", s.Clusters, len(model), s)
	}
	var prev ondisk.RefcountRec
	if err := tr.Walk(func(r ondisk.RefcountRec) error {
		if prev.Clusters > 0 && prev.End() == r.Cpos && prev.Refcount == r.Refcount && len(s.Leaves) == 0 {
			return fmt.Errorf("records %+v and %+v should have merged", prev, r)
		}
		prev = r
		for c := r.Cpos; c < r.End(); c++ {
			if model[c] != r.Refcount {
				return fmt.Errorf("cluster %d has count %d, model %d", c, r.Refcount, model[c])
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRefcountRandomChanges(t *testing.T) {
	for _, cfg := range []struct {
		bs    int
		space int
		ops   int
	}{{512, 3000, 3000}, {4096, 20000, 3000}} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("bs%d-seed%d", cfg.bs, seed), func(t *testing.T) {
				tr, a := newTestRefcountTree(t, cfg.bs)
				rng := base.NewRand(seed)
				model := map[uint64]uint32{}
				freedTotal := 0
				maxDepth, maxLeaves := -1, 0
				for op := 0; op < cfg.ops; op++ {
					cpos := uint64(rng.Intn(cfg.space))
					n := uint32(1 + rng.Intn(4))
					if rng.Chance(0.1) {
						n = uint32(1 + rng.Intn(60))
					}
					grow := op < cfg.ops*2/3
					if grow == rng.Chance(0.3) { // decrease a counted run
						if len(model) == 0 {
							continue
						}
						ok := true
						for c := cpos; c < cpos+uint64(n); c++ {
							if model[c] == 0 {
								ok = false
								break
							}
						}
						if !ok {
							continue
						}
						var freed []ondisk.RefcountRec
						if err := tr.Decrease(cpos, n, func(c uint64, k uint32) error {
							freed = append(freed, ondisk.RefcountRec{Cpos: c, Clusters: k})
							return nil
						}); err != nil {
							t.Fatalf("op %d decrease [%d,+%d): %v", op, cpos, n, err)
						}
						want := map[uint64]bool{}
						for c := cpos; c < cpos+uint64(n); c++ {
							if model[c]--; model[c] == 0 {
								delete(model, c)
								want[c] = true
							}
						}
						for _, f := range freed {
							for c := f.Cpos; c < f.End(); c++ {
								if !want[c] {
									t.Fatalf("op %d: cluster %d reported freed, model disagrees", op, c)
								}
								delete(want, c)
								freedTotal++
							}
						}
						if len(want) > 0 {
							t.Fatalf("op %d: %d clusters reached zero without being reported", op, len(want))
						}
					} else {
						if err := tr.Increase(cpos, n); err != nil {
							t.Fatalf("op %d increase [%d,+%d): %v", op, cpos, n, err)
						}
						for c := cpos; c < cpos+uint64(n); c++ {
							model[c]++
						}
					}
					if op%25 == 0 || op == cfg.ops-1 {
						s := checkRefcountModel(t, tr, model, a)
						maxDepth = max(maxDepth, s.Depth)
						maxLeaves = max(maxLeaves, len(s.Leaves))
					}
				}
				// Drain every reference: the tree must shrink back to a bare root.
				for len(model) > 0 {
					var c uint64
					for k := range model {
						c = k
						break
					}
					if err := tr.Decrease(c, 1, nil); err != nil {
						t.Fatalf("drain %d: %v", c, err)
					}
					if model[c]--; model[c] == 0 {
						delete(model, c)
					}
				}
				s := checkRefcountModel(t, tr, model, a)
				if s.Depth != -1 || s.Records != 0 || len(a.used) != 1 {
					t.Fatalf("drained tree did not fold back into its root: %v, %d blocks", s, len(a.used))
				}
				t.Logf("max depth %d, max leaves %d, %d clusters freed", maxDepth, maxLeaves, freedTotal)
				if cfg.bs == 512 && maxDepth < 1 {
					t.Errorf("the index never grew past the root (max depth %d): the test does not exercise EXBLK01 index blocks", maxDepth)
				}
				if maxLeaves < 2 {
					t.Errorf("the tree never split a leaf (max %d leaves)", maxLeaves)
				}
				freed, err := tr.Detach()
				if err != nil || !freed || len(a.used) != 0 {
					t.Fatalf("detach of the last user: freed %v, err %v, %d blocks left", freed, err, len(a.used))
				}
			})
		}
	}
}

func TestRefcountDecreaseOfUncountedIsCorruption(t *testing.T) {
	tr, _ := newTestRefcountTree(t, 4096)
	if err := tr.Increase(10, 5); err != nil {
		t.Fatal(err)
	}
	err := tr.Decrease(12, 6, nil)
	if !errors.Is(err, ondisk.ErrCorrupt) {
		t.Fatalf("decrease past the counted clusters: %v, want a corruption error", err)
	}
	r, err := tr.Lookup(12, 100)
	if err != nil || r != (ondisk.RefcountRec{Cpos: 10, Clusters: 5, Refcount: 1}) {
		t.Fatalf("lookup after the failed decrease: %+v %v", r, err)
	}
	if r, err := tr.Lookup(20, 100); err != nil || r != (ondisk.RefcountRec{Cpos: 20, Clusters: 100}) {
		t.Fatalf("lookup of a hole: %+v %v", r, err)
	}
	if r, err := tr.Lookup(2, 100); err != nil || r != (ondisk.RefcountRec{Cpos: 2, Clusters: 8}) {
		t.Fatalf("lookup of a hole before a record: %+v %v", r, err)
	}
}

func TestRefcountUsersAndDetach(t *testing.T) {
	tr, a := newTestRefcountTree(t, 4096)
	if err := tr.Attach(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Increase(7, 3); err != nil {
		t.Fatal(err)
	}
	if freed, err := tr.Detach(); err != nil || freed {
		t.Fatalf("first detach: freed %v err %v", freed, err)
	}
	if _, err := tr.Detach(); !errors.Is(err, ondisk.ErrCorrupt) {
		t.Fatalf("last detach with records left: %v, want corruption", err)
	}
	if err := tr.Decrease(7, 3, nil); err != nil {
		t.Fatal(err)
	}
	if freed, err := tr.Detach(); err != nil || !freed || len(a.used) != 0 {
		t.Fatalf("last detach: freed %v err %v, %d blocks left", freed, err, len(a.used))
	}
}

func TestRefcountCorruptLeafParent(t *testing.T) {
	tr, _ := newTestRefcountTree(t, 512)
	// Enough single-cluster records to need leaves.
	for c := uint64(0); c < 200; c += 2 {
		if err := tr.Increase(c, 1); err != nil {
			t.Fatal(err)
		}
	}
	s, err := CheckRefcountTree(tr.C, tr.Root)
	if err != nil || len(s.Leaves) < 2 {
		t.Fatalf("%v %v", s, err)
	}
	b, err := tr.C.Get(s.Leaves[1])
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := ondisk.DecodeRefcountBlock(b.Data)
	rb.Parent = 12345
	rb.Encode(b.Data)
	tr.Tx.Dirty(b, ondisk.RefcountBlockCheckOffset)
	_, err = CheckRefcountTree(tr.C, tr.Root)
	if !errors.Is(err, ondisk.ErrCorrupt) {
		t.Fatalf("check of a leaf with a foreign parent: %v", err)
	}
	t.Log(err)
}

// TestRefcountFirstLeafKeyStaysZero empties the first leaf, then counts
// clusters below every key: the first leaf keeps key 0 throughout, which
// debugfs.ocfs2's walk of the leaves (top down until a key of 0) needs, and
// nothing ever lies below a key, which the kernel's lookups need.
func TestRefcountFirstLeafKeyStaysZero(t *testing.T) {
	tr, a := newTestRefcountTree(t, 512)
	model := map[uint64]uint32{}
	for c := uint64(1000); c < 1000+2*60; c += 2 {
		if err := tr.Increase(c, 1); err != nil {
			t.Fatal(err)
		}
		model[c] = 1
	}
	s := checkRefcountModel(t, tr, model, a)
	if len(s.Leaves) < 3 || s.FirstKey != 0 {
		t.Fatalf("want at least 3 leaves, the first at key 0: %v, first key %d", s, s.FirstKey)
	}
	first, err := tr.C.RefcountBlock(s.Leaves[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range slices.Clone(first.Records.Recs) {
		if err := tr.Decrease(r.Cpos, r.Clusters, nil); err != nil {
			t.Fatal(err)
		}
		delete(model, r.Cpos)
	}
	s = checkRefcountModel(t, tr, model, a)
	if s.FirstKey != 0 || s.Leaves[0] == first.Blkno {
		t.Fatalf("after the first leaf emptied: first leaf %d at key %d", s.Leaves[0], s.FirstKey)
	}
	for c := uint64(5); c < 25; c += 2 {
		if err := tr.Increase(c, 1); err != nil {
			t.Fatal(err)
		}
		model[c] = 1
	}
	s = checkRefcountModel(t, tr, model, a)
	if s.FirstKey != 0 {
		t.Fatalf("first leaf key %d after counting clusters 5..23, want 0", s.FirstKey)
	}
}
