package alloc_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/base"
	"o2go/internal/fs/alloc"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// seedFromEnv lets a failing run be replayed: O2GO_ALLOC_SEED=n.
func seedFromEnv(def uint64) uint64 {
	if s := os.Getenv("O2GO_ALLOC_SEED"); s != "" {
		if n, err := strconv.ParseUint(s, 0, 64); err == nil {
			return n
		}
	}
	return def
}

// model is what the test believes it holds.
type model struct {
	t       testing.TB
	w       *vol
	objs    map[string][]alloc.Object // by allocator name
	runs    []alloc.ClusterRun        // data clusters held
	held    map[uint32]bool           // every cluster of runs
	blocks  map[uint64]string         // every object block
	resvs   []*alloc.Reservation
	subs    map[string]*alloc.ChainAllocator
	la      *alloc.LocalAlloc
	ca      *alloc.ClusterAllocator
	initial alloc.Usage            // global bitmap at the start
	subInit map[string]alloc.Usage // suballocators at the start
}

func newModel(t testing.TB, w *vol) *model {
	m := &model{t: t, w: w, objs: map[string][]alloc.Object{}, held: map[uint32]bool{}, blocks: map[uint64]string{}}
	for i := 0; i < 4; i++ {
		m.resvs = append(m.resvs, &alloc.Reservation{Dir: i == 3})
	}
	m.initial = w.usage(w.gb)
	m.attach()
	m.subInit = map[string]alloc.Usage{}
	for name, a := range m.subs {
		m.subInit[name] = w.usage(a)
	}
	return m
}

// attach (re)opens the allocators on m.w.
func (m *model) attach() {
	w := m.w
	m.subs = map[string]*alloc.ChainAllocator{}
	for s := 0; s < w.slots; s++ {
		for _, k := range []ondisk.SystemFileKind{ondisk.SysInodeAlloc, ondisk.SysExtentAlloc} {
			name, _ := ondisk.SystemFileName(k, s)
			m.subs[name] = w.suballoc(k, s)
		}
	}
	m.subs["global_inode_alloc"] = w.suballoc(ondisk.SysGlobalInodeAlloc, -1)
	m.la = w.localAlloc(0, alloc.DefaultLocalAllocOptions())
	m.ca = alloc.NewClusterAllocator(w.gb, m.la)
	for _, r := range m.resvs {
		m.ca.DiscardReservation(r) // windows do not survive a remount
	}
}

// globalBits snapshots the global bitmap, one bool per cluster.
func (m *model) globalBits() []bool {
	out := make([]bool, m.w.geo.Clusters)
	for c := range out {
		used, err := m.w.gb.ClusterUsed(uint32(c))
		if err != nil {
			m.t.Fatal(err)
		}
		out[c] = used
	}
	return out
}

func (m *model) addObjects(name string, objs []alloc.Object) {
	for _, o := range objs {
		if prev, ok := m.blocks[o.Blkno]; ok {
			m.t.Fatalf("%s handed out block %d, already held by %s", name, o.Blkno, prev)
		}
		m.blocks[o.Blkno] = name
		g, err := m.w.c.GroupDesc(o.GroupBlkno)
		if err != nil {
			m.t.Fatal(err)
		}
		if !g.Test(int(o.Bit)) {
			m.t.Fatalf("%s: object %+v: its bit is clear in group %d", name, o, o.GroupBlkno)
		}
		if blk, err := g.BitBlock(int(o.Bit), m.w.geo.BlocksPerCluster); err != nil || blk != o.Blkno {
			m.t.Fatalf("%s: object %+v: bit maps to block %d (%v)", name, o, blk, err)
		}
	}
	m.objs[name] = append(m.objs[name], objs...)
}

// addRun records clusters handed out; before is the bitmap before the
// claim (nil for claims from the local alloc window, which holds them).
func (m *model) addRun(r alloc.ClusterRun, before []bool, from string) {
	if r.Count <= 0 || r.End() > uint64(m.w.geo.Clusters) {
		m.t.Fatalf("%s: bad run %+v", from, r)
	}
	for c := r.Start; uint64(c) < r.End(); c++ {
		if m.held[c] {
			m.t.Fatalf("%s: run %+v hands out cluster %d twice", from, r, c)
		}
		if before != nil && before[c] {
			m.t.Fatalf("%s: run %+v includes cluster %d, which was in use", from, r, c)
		}
		used, err := m.w.gb.ClusterUsed(c)
		if err != nil || !used {
			m.t.Fatalf("%s: run %+v: cluster %d is free in the global bitmap (%v)", from, r, c, err)
		}
		m.held[c] = true
	}
	m.runs = append(m.runs, r)
}

func (m *model) freeRun(i int, rnd *base.Rand) {
	r := m.runs[i]
	// Free all of it, or a piece from its start.
	n := r.Count
	if n > 1 && rnd.Chance(0.4) {
		n = 1 + rnd.Intn(n-1)
	}
	if err := m.ca.FreeClusters(m.w.tx, r.Start, uint32(n)); err != nil {
		m.t.Fatalf("free %d clusters of %+v: %v", n, r, err)
	}
	for c := r.Start; c < r.Start+uint32(n); c++ {
		delete(m.held, c)
		if used, _ := m.w.gb.ClusterUsed(c); used {
			m.t.Fatalf("cluster %d still used after its free", c)
		}
	}
	if n == r.Count {
		m.runs = append(m.runs[:i], m.runs[i+1:]...)
	} else {
		m.runs[i] = alloc.ClusterRun{Start: r.Start + uint32(n), Count: r.Count - n}
	}
}

func (m *model) freeObjects(name string, k int, rnd *base.Rand) {
	objs := m.objs[name]
	if len(objs) == 0 {
		return
	}
	k = min(k, len(objs))
	var take []alloc.Object
	for i := 0; i < k; i++ {
		j := rnd.Intn(len(objs))
		take = append(take, objs[j])
		objs = append(objs[:j], objs[j+1:]...)
	}
	if err := m.subs[name].FreeObjects(m.w.tx, take); err != nil {
		m.t.Fatalf("%s: free %d objects: %v", name, len(take), err)
	}
	for _, o := range take {
		delete(m.blocks, o.Blkno)
	}
	m.objs[name] = objs
}

func (m *model) names() []string {
	var out []string
	for s := 0; s < m.w.slots; s++ {
		for _, k := range []ondisk.SystemFileKind{ondisk.SysInodeAlloc, ondisk.SysExtentAlloc} {
			name, _ := ondisk.SystemFileName(k, s)
			out = append(out, name)
		}
	}
	return out
}

// step does one random operation.
func (m *model) step(rnd *base.Rand) string {
	names := m.names()
	w := m.w
	switch op := rnd.Intn(100); {
	case op < 18:
		name := names[rnd.Intn(len(names))]
		k := 1 + rnd.Intn(12)
		objs, err := m.subs[name].ClaimObjects(w.tx, k, 0)
		if errors.Is(err, alloc.ErrNoSpace) {
			return "claim objects (full): "
		}
		if err != nil {
			m.t.Fatalf("%s: claim %d: %v", name, k, err)
		}
		m.addObjects(name, objs)
		return fmt.Sprintf("claim objects: %d from %s", k, name)
	case op < 30:
		name := names[rnd.Intn(len(names))]
		m.freeObjects(name, 1+rnd.Intn(10), rnd)
		return "free objects: " + name
	case op < 45:
		before := m.globalBits()
		minN := 1 + rnd.Intn(8)
		maxN := minN + rnd.Intn(200)
		goal := uint32(0)
		if rnd.Chance(0.5) {
			goal = uint32(rnd.Intn(int(w.geo.Clusters)))
		}
		r, err := w.gb.ClaimClusters(w.tx, goal, minN, maxN)
		if errors.Is(err, alloc.ErrNoSpace) {
			return "global claim (none): "
		}
		if err != nil {
			m.t.Fatalf("claim %d..%d clusters near %d: %v", minN, maxN, goal, err)
		}
		if r.Count < minN || r.Count > maxN {
			m.t.Fatalf("claim %d..%d gave %d", minN, maxN, r.Count)
		}
		m.addRun(r, before, "global claim")
		return fmt.Sprintf("global claim: %+v", r)
	case op < 70:
		r := m.resvs[rnd.Intn(len(m.resvs))]
		if rnd.Chance(0.2) {
			r = nil
		}
		maxN := 1 + rnd.Intn(4)
		run, err := m.ca.ClaimClustersFor(w.tx, r, 0, 1, maxN)
		if errors.Is(err, alloc.ErrNoSpace) {
			return "claim for inode (none): "
		}
		if err != nil {
			m.t.Fatalf("claim for inode: %v", err)
		}
		m.addRun(run, nil, "local claim")
		return fmt.Sprintf("claim for inode: %+v", run)
	case op < 88:
		if len(m.runs) == 0 {
			return "free run (none): "
		}
		m.freeRun(rnd.Intn(len(m.runs)), rnd)
		return "free run: "
	case op < 93:
		name := names[rnd.Intn(len(names))]
		if _, err := m.subs[name].Grow(w.tx); err != nil && !errors.Is(err, alloc.ErrNoSpace) {
			m.t.Fatalf("%s: grow: %v", name, err)
		}
		return "grow: " + name
	case op < 96:
		if err := m.la.Shutdown(w.tx); err != nil {
			m.t.Fatalf("local alloc shutdown: %v", err)
		}
		return "local alloc shutdown: "
	default:
		m.ca.DiscardReservation(m.resvs[rnd.Intn(len(m.resvs))])
		return "discard reservation: "
	}
}

// releaseAll frees everything the model holds and empties the local alloc.
func (m *model) releaseAll() {
	for name := range m.objs {
		if objs := m.objs[name]; len(objs) > 0 {
			if err := m.subs[name].FreeObjects(m.w.tx, objs); err != nil {
				m.t.Fatalf("%s: free all: %v", name, err)
			}
		}
		m.objs[name] = nil
	}
	var runs []alloc.ClusterRun
	runs = append(runs, m.runs...)
	if err := m.w.gb.FreeClusterRuns(m.w.tx, runs); err != nil {
		m.t.Fatalf("free all runs: %v", err)
	}
	m.runs, m.held, m.blocks = nil, map[uint32]bool{}, map[uint64]string{}
	if err := m.la.Shutdown(m.w.tx); err != nil {
		m.t.Fatal(err)
	}
}

// compareWithDebugfs closes the volume, checks what debugfs.ocfs2 says of
// the allocators against what o2go says, and reopens it.
func (m *model) compareWithDebugfs() {
	w := m.w
	want := map[string]alloc.Usage{}
	for name, a := range m.subs {
		want[name] = w.usage(a)
	}
	want["global_bitmap"] = w.usage(w.gb)
	// Every group as o2go reads it, for debugfs's group tables.
	groups := map[string]map[uint64]dfsGroup{}
	for _, name := range []string{"global_bitmap", "inode_alloc:0000", "extent_alloc:0000"} {
		groups[name] = m.ourGroups(w.sysf[name])
	}
	img, sysf := w.img, w.sysf
	w.close()
	for name, ours := range groups {
		theirs := debugfsGroups(m.t, img, name)
		if len(theirs) != len(ours) {
			m.t.Fatalf("%s: debugfs lists %d groups, o2go %d", name, len(theirs), len(ours))
		}
		for blk, g := range ours {
			if theirs[blk] != g {
				m.t.Fatalf("%s group %d: debugfs %+v, o2go %+v", name, blk, theirs[blk], g)
			}
		}
	}
	for name, u := range want {
		du, clusters, size := debugfsUsage(m.t, img, name)
		if du != u {
			m.t.Fatalf("%s: debugfs says %+v, o2go %+v", name, du, u)
		}
		if name != "global_bitmap" && (clusters*uint64(m.w.geo.ClusterSize) != size) {
			m.t.Fatalf("%s: debugfs: %d clusters but size %d", name, clusters, size)
		}
	}
	m.w = openVolFiles(m.t, img, sysf)
	m.attach()
}

// TestRandomOperationsKeepEveryInvariant is the acceptance property test:
// on every geometry, seeded random claims and frees of objects (inodes,
// extent blocks) and cluster runs, suballocator growth, local alloc claims
// through per-inode reservations and window returns. After every step the
// model's facts hold (nothing handed out twice, claimed bits set); every 25
// steps the Checker passes; mid-run debugfs.ocfs2 agrees with o2go's
// counts; at the end everything is freed and fsck.ocfs2 -fn is clean.
func TestRandomOperationsKeepEveryInvariant(t *testing.T) {
	realtools.Require(t)
	steps := 300
	if testing.Short() {
		steps = 80
	}
	for gi, g := range geometries {
		t.Run(g.name, func(t *testing.T) {
			seed := seedFromEnv(uint64(1000 + gi))
			rnd := base.NewRand(seed)
			w := mkvol(t, g)
			m := newModel(t, w)
			// Grow every suballocator of slot 0 by a few groups first.
			for _, name := range []string{"inode_alloc:0000", "extent_alloc:0000"} {
				for i := 0; i < 3; i++ {
					if _, err := m.subs[name].Grow(m.w.tx); err != nil {
						t.Fatalf("seed %d: %s: grow %d: %v", seed, name, i, err)
					}
				}
			}
			m.w.check("after growing")
			stats := map[string]int{}
			defer func() { t.Logf("seed %d: operations: %v", seed, stats) }()
			for s := 0; s < steps; s++ {
				what := m.step(rnd)
				stats[strings.SplitN(what, ":", 2)[0]]++
				if s%25 == 24 {
					func() {
						defer func() {
							if t.Failed() {
								t.Logf("seed %d, step %d: %s", seed, s, what)
							}
						}()
						m.w.check(fmt.Sprintf("seed %d step %d (%s)", seed, s, what))
					}()
				}
				if s == steps/2 {
					m.compareWithDebugfs()
					m.w.check("after remount")
				}
			}
			m.releaseAll()
			m.w.check("after freeing everything")
			// Only the groups the suballocators grew by stay allocated.
			grown := uint32(0)
			for name, a := range m.subs {
				u := m.w.usage(a)
				cpg, err := a.ClustersPerGroup()
				if err != nil {
					t.Fatal(err)
				}
				groups := (u.Total - m.subInit[name].Total) / uint32(cpg*m.w.geo.BlocksPerCluster)
				if u.Used != m.subInit[name].Used+groups {
					t.Fatalf("%s: %d bits used after freeing everything, want %d at the start + %d new group descriptors", name, u.Used, m.subInit[name].Used, groups)
				}
				grown += groups * uint32(cpg)
			}
			if u := m.w.usage(m.w.gb); u.Used != m.initial.Used+grown {
				t.Fatalf("global bitmap: %d clusters used, want %d at the start + %d in new groups", u.Used, m.initial.Used, grown)
			}
			img := m.w.img
			m.w.close()
			realtools.RequireFsckClean(t, img)
		})
	}
}

// ourGroups reads every group of the allocator at blk as debugfs tabulates
// it; Contig is the longest run of free bits.
func (m *model) ourGroups(blk uint64) map[uint64]dfsGroup {
	d, err := m.w.c.Dinode(blk)
	if err != nil {
		m.t.Fatal(err)
	}
	out := map[uint64]dfsGroup{}
	for _, r := range d.Chain.Recs {
		for g := r.Blkno; g != 0; {
			gd, err := m.w.c.GroupDesc(g)
			if err != nil {
				m.t.Fatal(err)
			}
			contig, run := 0, 0
			for i := 0; i < int(gd.Bits); i++ {
				if gd.Test(i) {
					run = 0
					continue
				}
				run++
				contig = max(contig, run)
			}
			out[g] = dfsGroup{Blkno: g, Total: int(gd.Bits), Used: int(gd.Bits - gd.FreeBitsCount), Free: int(gd.FreeBitsCount), Contig: contig, Size: len(gd.Bitmap)}
			g = gd.NextGroup
		}
	}
	return out
}
