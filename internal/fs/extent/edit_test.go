package extent

import (
	"errors"
	"fmt"
	"testing"

	"o2go/internal/base"
	"o2go/internal/blockdev"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// memAlloc hands out metadata blocks from a range of a memory device.
type memAlloc struct {
	next, limit uint64
	free        []uint64
	used        map[uint64]bool
}

func (a *memAlloc) NewMetaBlock(tx metacache.Tx) (MetaBlock, error) {
	var b uint64
	if n := len(a.free); n > 0 {
		b, a.free = a.free[n-1], a.free[:n-1]
	} else {
		if a.next >= a.limit {
			return MetaBlock{}, errors.New("no space")
		}
		b = a.next
		a.next++
	}
	a.used[b] = true
	return MetaBlock{Blkno: b, Slot: 0, Bit: uint16(b), GroupBlkno: 1}, nil
}

func (a *memAlloc) FreeMetaBlock(tx metacache.Tx, m MetaBlock) error {
	if !a.used[m.Blkno] {
		return fmt.Errorf("double free of %d", m.Blkno)
	}
	delete(a.used, m.Blkno)
	a.free = append(a.free, m.Blkno)
	return nil
}

func newTestTree(t *testing.T, bs int, rootCount uint16) (*Tree, *memAlloc) {
	dev := blockdev.NewMemory("mem", int64(bs)*20000, 512)
	c := metacache.New(dev, bs, metacache.Options{FSGeneration: 0x77, MetaECC: true})
	a := &memAlloc{next: 100, limit: 20000, used: map[uint64]bool{}}
	return &Tree{C: c, Tx: &metacache.DirectTx{C: c}, Alloc: a, BlocksPerCluster: 1,
		Root: &ondisk.ExtentList{Count: rootCount}, Owner: "test inode"}, a
}

// model is the expected mapping: cluster -> physical block and flags.
type mapping struct {
	blk   uint64
	flags uint8
}

func checkAgainstModel(t *testing.T, tr *Tree, model map[uint32]mapping, a *memAlloc) {
	t.Helper()
	s, err := CheckShape(tr.C, tr.Root, tr.LastEB, tr.Owner)
	if err != nil {
		t.Fatal(err)
	}
	if s.Clusters != uint64(len(model)) {
		t.Fatalf("tree maps %d clusters, model %d", s.Clusters, len(model))
	}
	if s.Blocks != len(a.used) {
		t.Fatalf("tree has %d extent blocks, allocator says %d in use", s.Blocks, len(a.used))
	}
	if err := Walk(tr.C, tr.Root, tr.Owner, func(r ondisk.ExtentRec) error {
		for i := uint32(0); i < r.Clusters; i++ {
			m, ok := model[r.Cpos+i]
			if !ok || m.blk != r.Blkno+uint64(i) || m.flags != r.Flags {
				return fmt.Errorf("cluster %d maps to %d flags %d, model %+v (present %v)", r.Cpos+i, r.Blkno+uint64(i), r.Flags, m, ok)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestTreeRandomEditsKeepShape(t *testing.T) {
	for _, cfg := range []struct {
		bs        int
		rootCount uint16
		ops       int
	}{{512, 19, 600}, {512, 1, 600}, {4096, 243, 5000}} {
		for seed := uint64(1); seed <= 12; seed++ {
			t.Run(fmt.Sprintf("bs%d-root%d-seed%d", cfg.bs, cfg.rootCount, seed), func(t *testing.T) {
				tr, a := newTestTree(t, cfg.bs, cfg.rootCount)
				rng := base.NewRand(seed)
				model := map[uint32]mapping{}
				nextPhys := uint64(1 << 30)
				space := cfg.ops * 8
				maxDepth := 0
				for op := 0; op < cfg.ops; op++ {
					cpos := uint32(rng.Intn(space))
					n := uint32(1 + rng.Intn(8))
					switch k := rng.Intn(10); {
					case k < 5: // insert into a hole, fragmenting on purpose
						free := true
						for i := uint32(0); i < n; i++ {
							if _, ok := model[cpos+i]; ok {
								free = false
							}
						}
						if !free {
							continue
						}
						flags := uint8(0)
						if rng.Chance(0.3) {
							flags = ondisk.ExtentUnwritten
						}
						phys := nextPhys
						nextPhys += uint64(n) + uint64(rng.Intn(2)) // sometimes contiguous with the previous
						if err := tr.Insert(ondisk.ExtentRec{Cpos: cpos, Clusters: n, Blkno: phys, Flags: flags}); err != nil {
							t.Fatalf("op %d insert: %v", op, err)
						}
						for i := uint32(0); i < n; i++ {
							model[cpos+i] = mapping{phys + uint64(i), flags}
						}
					case k < 8: // remove (punch)
						n *= uint32(1 + rng.Intn(20))
						old, err := tr.Remove(cpos, n)
						if err != nil {
							t.Fatalf("op %d remove: %v", op, err)
						}
						got := 0
						for _, r := range old {
							got += int(r.Clusters)
						}
						want := 0
						for i := uint32(0); i < n; i++ {
							if _, ok := model[cpos+i]; ok {
								want++
								delete(model, cpos+i)
							}
						}
						if got != want {
							t.Fatalf("op %d: removed %d clusters, model %d", op, got, want)
						}
					default: // clear the unwritten flag on a range (a write)
						if _, err := tr.Update(cpos, n, func(r ondisk.ExtentRec) ondisk.ExtentRec {
							r.Flags &^= ondisk.ExtentUnwritten
							return r
						}); err != nil {
							t.Fatalf("op %d update: %v", op, err)
						}
						for i := uint32(0); i < n; i++ {
							if m, ok := model[cpos+i]; ok {
								m.flags &^= ondisk.ExtentUnwritten
								model[cpos+i] = m
							}
						}
					}
					maxDepth = max(maxDepth, int(tr.Root.TreeDepth))
					if op%(cfg.ops/12) == 0 {
						checkAgainstModel(t, tr, model, a)
					}
				}
				checkAgainstModel(t, tr, model, a)
				if maxDepth < 1 {
					t.Fatalf("tree never grew beyond depth %d: the test does not exercise splits", maxDepth)
				}
				// Truncate everything: the tree must come back to depth 0.
				if _, err := tr.Remove(0, uint32(space+100)); err != nil {
					t.Fatal(err)
				}
				checkAgainstModel(t, tr, map[uint32]mapping{}, a)
				if tr.Root.TreeDepth != 0 || len(a.used) != 0 {
					t.Fatalf("after truncate: depth %d, %d blocks still allocated", tr.Root.TreeDepth, len(a.used))
				}
			})
		}
	}
}

func TestSequentialAppendFillsLeaves(t *testing.T) {
	tr, a := newTestTree(t, 512, 19)
	for i := uint32(0); i < 2000; i++ {
		// Not contiguous physically: one record per cluster.
		if err := tr.Insert(ondisk.ExtentRec{Cpos: i, Clusters: 1, Blkno: uint64(1<<30) + uint64(i)*2}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := CheckShape(tr.C, tr.Root, tr.LastEB, tr.Owner)
	if err != nil {
		t.Fatal(err)
	}
	perLeaf := ondisk.ExtentBlockListCapacity(512)
	if min := (2000 + perLeaf - 1) / perLeaf; len(s.Leaves) > min+1 {
		t.Fatalf("%d leaves for 2000 appended records, %d would do", len(s.Leaves), min)
	}
	_ = a
}

func TestInsertOverMappedIsRefused(t *testing.T) {
	tr, _ := newTestTree(t, 4096, 243)
	if err := tr.Insert(ondisk.ExtentRec{Cpos: 10, Clusters: 10, Blkno: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Insert(ondisk.ExtentRec{Cpos: 15, Clusters: 10, Blkno: 5000}); !errors.Is(err, ondisk.ErrCorrupt) {
		t.Fatalf("overlapping insert: %v", err)
	}
	// Contiguous inserts merge into one record.
	if err := tr.Insert(ondisk.ExtentRec{Cpos: 20, Clusters: 5, Blkno: 1010}); err != nil {
		t.Fatal(err)
	}
	if len(tr.Root.Recs) != 1 || tr.Root.Recs[0].Clusters != 15 {
		t.Fatalf("records not merged: %+v", tr.Root.Recs)
	}
}
