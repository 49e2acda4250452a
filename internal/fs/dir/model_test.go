package dir

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"

	"o2go/internal/base"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// The acceptance matrix of the write side: four geometries with the
// default features, and the feature sets that change how directories look
// (no inline data: dirs start as blocks; no indexed dirs: linear block
// dirs, with and without trailers; META_ECC; max-compat: none of it).
var modelConfigs = []volConfig{
	{"4k-4k", 160 << 20, []string{"-b", "4096", "-C", "4096"}},
	{"512-4k", 64 << 20, []string{"-b", "512", "-C", "4096"}},
	{"1k-8k", 128 << 20, []string{"-b", "1024", "-C", "8192"}},
	{"4k-64k", 256 << 20, []string{"-b", "4096", "-C", "65536"}},
	{"4k-4k-noinline", 160 << 20, []string{"-b", "4096", "-C", "4096", "--fs-features=noinline-data"}},
	{"1k-8k-noindexed", 128 << 20, []string{"-b", "1024", "-C", "8192", "--fs-features=noindexed-dirs"}},
	{"512-4k-metaecc", 64 << 20, []string{"-b", "512", "-C", "4096", "--fs-features=metaecc"}},
	{"4k-4k-metaecc-noindexed", 160 << 20, []string{"-b", "4096", "-C", "4096", "--fs-features=metaecc,noindexed-dirs"}},
	{"1k-8k-maxcompat", 128 << 20, []string{"-b", "1024", "-C", "8192", "--fs-feature-level=max-compat"}},
}

// testSeed is the seed of the randomized tests: O2GO_SEED replays one.
func testSeed(t testing.TB) uint64 {
	if s := os.Getenv("O2GO_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("O2GO_SEED=%q: %v", s, err)
		}
		return n
	}
	return 0x0C2F5D1E
}

// nameGen makes random names of 1..255 bytes: ASCII, UTF-8 and raw bytes
// >= 0x80 (where signed and unsigned char hashes differ), never '/' or
// NUL. Control characters and spaces are left out so that debugfs.ocfs2's
// listings stay parseable.
type nameGen struct {
	r *base.Rand
}

var utf8Pieces = []string{"é", "ß", "Ж", "中", "日本", "🙂", "ø", "ñ"}

func (g nameGen) name() string {
	n := 1 + g.r.Intn(255)
	if g.r.Chance(0.3) {
		n = 1 + g.r.Intn(24)
	}
	b := make([]byte, 0, n)
	for len(b) < n {
		switch k := g.r.Intn(10); {
		case k < 6:
			b = append(b, byte('!'+g.r.Intn('~'-'!'+1)))
		case k < 8:
			p := utf8Pieces[g.r.Intn(len(utf8Pieces))]
			if len(b)+len(p) <= n {
				b = append(b, p...)
			}
		default:
			b = append(b, byte(0x80+g.r.Intn(0x80)))
		}
	}
	s := string(b)
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			b[i] = '_'
		}
	}
	return string(b)
}

// dirModel is one directory under test and what it must hold.
type dirModel struct {
	d     *ondisk.Dinode
	name  string
	names []string          // for random picks
	at    map[string]int    // index in names
	ino   map[string]uint64 // name -> inode
	ft    map[string]uint8

	// transitions seen
	wasInline, toBlock, rootInlineSeen, rootExpanded bool
	rebalances, clusterGrowths, blockGrowths         int
	last                                             dirFacts
}

func newDirModel(d *ondisk.Dinode, name string) *dirModel {
	return &dirModel{d: d, name: name, at: map[string]int{}, ino: map[string]uint64{}, ft: map[string]uint8{}, wasInline: d.Inline != nil}
}

func (m *dirModel) put(name string, ino uint64, ft uint8) {
	if _, ok := m.at[name]; !ok {
		m.at[name] = len(m.names)
		m.names = append(m.names, name)
	}
	m.ino[name], m.ft[name] = ino, ft
}

func (m *dirModel) drop(name string) {
	i := m.at[name]
	last := m.names[len(m.names)-1]
	m.names[i], m.at[last] = last, i
	m.names = m.names[:len(m.names)-1]
	delete(m.at, name)
	delete(m.ino, name)
	delete(m.ft, name)
}

// harness runs the model on one volume.
type harness struct {
	t     *testing.T
	v     *vol
	r     *base.Rand
	gen   nameGen
	pool  []*ondisk.Dinode
	links map[uint64]int
	steps int
	// bias makes most new names hash into the first leaf of an index
	// cluster, so that leaves fill and split within a few hundred names
	// even with 16 leaves per cluster.
	bias float64
}

func (h *harness) newName(m *dirModel) string {
	mask := uint32(h.v.sb.BlocksPerCluster() - 1)
	for {
		n := h.gen.name()
		if _, ok := m.ino[n]; ok || isDot(n) {
			continue
		}
		if mask != 0 && h.r.Chance(h.bias) {
			if _, minor := ondisk.DXHashString(n, h.v.sb.DxSeed, ondisk.SignedChar); minor&mask != 0 {
				continue
			}
		}
		return n
	}
}

func (h *harness) fail(m *dirModel, format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("seed 0x%x step %d dir %s: %s", testSeed(h.t), h.steps, m.name, fmt.Sprintf(format, args...))
}

func (h *harness) add(m *dirModel) string {
	name := h.newName(m)
	target := h.pool[h.r.Intn(len(h.pool))]
	if err := Add(h.v.env(), m.d, name, target.Blkno, ondisk.FileTypeReg); err != nil {
		h.fail(m, "Add(%q): %v", name, err)
	}
	m.put(name, target.Blkno, ondisk.FileTypeReg)
	h.links[target.Blkno]++
	// Adding it again must fail with EEXIST and change nothing.
	if err := Add(h.v.env(), m.d, name, target.Blkno, ondisk.FileTypeReg); !errors.Is(err, syscall.EEXIST) {
		h.fail(m, "second Add(%q): %v, want EEXIST", name, err)
	}
	return name
}

func (h *harness) remove(m *dirModel) string {
	name := m.names[h.r.Intn(len(m.names))]
	e, err := Remove(h.v.env(), m.d, name)
	if err != nil {
		h.fail(m, "Remove(%q): %v", name, err)
	}
	if e.Name != name || e.Inode != m.ino[name] || e.FileType != m.ft[name] {
		h.fail(m, "Remove(%q) returned %+v, want inode %d type %d", name, e, m.ino[name], m.ft[name])
	}
	h.links[e.Inode]--
	m.drop(name)
	if _, err := Remove(h.v.env(), m.d, name); !errors.Is(err, syscall.ENOENT) {
		h.fail(m, "second Remove(%q): %v, want ENOENT", name, err)
	}
	return name
}

func (h *harness) retarget(m *dirModel) string {
	name := m.names[h.r.Intn(len(m.names))]
	target := h.pool[h.r.Intn(len(h.pool))]
	old, err := Retarget(h.v.env(), m.d, name, target.Blkno, ondisk.FileTypeReg)
	if err != nil {
		h.fail(m, "Retarget(%q): %v", name, err)
	}
	if old.Inode != m.ino[name] {
		h.fail(m, "Retarget(%q) returned inode %d, model %d", name, old.Inode, m.ino[name])
	}
	h.links[old.Inode]--
	h.links[target.Blkno]++
	m.put(name, target.Blkno, ondisk.FileTypeReg)
	return name
}

// verify checks the directory against its model after a step: the whole
// listing, every invariant checkDir knows, and lookups of the touched name
// and of a sample (every name when full is set).
func (h *harness) verify(m *dirModel, touched string, full bool) {
	h.t.Helper()
	h.v.store(m.d)
	c := h.v.c
	if full {
		// Read back from the device: block checks verified afresh.
		c = metacache.New(h.v.dev, h.v.sb.BlockSize(), metacache.Options{MetaECC: h.v.c.MetaECC(), FSGeneration: h.v.c.FSGeneration()})
	}
	f, err := checkDir(c, h.v.sb, m.d, true)
	if err != nil {
		h.fail(m, "%v", err)
	}
	if len(f.names) != len(m.ino) {
		h.fail(m, "directory lists %d names, model %d", len(f.names), len(m.ino))
	}
	for n, e := range f.names {
		if ino, ok := m.ino[n]; !ok || ino != e.Inode || m.ft[n] != e.FileType {
			h.fail(m, "directory lists %q -> %d type %d, model %d (%v)", n, e.Inode, e.FileType, ino, ok)
		}
	}
	dr := Dir{C: c, SB: h.v.sb, Inode: m.d}
	look := func(n string) {
		e, found, err := dr.Lookup(n)
		ino, want := m.ino[n]
		if err != nil || found != want || (found && e.Inode != ino) {
			h.fail(m, "Lookup(%q) = %d, %v, %v; model %d, %v", n, e.Inode, found, err, ino, want)
		}
	}
	if touched != "" {
		look(touched)
	}
	if full {
		for _, n := range m.names {
			look(n)
		}
	} else {
		for i := 0; i < 4 && len(m.names) > 0; i++ {
			look(m.names[h.r.Intn(len(m.names))])
		}
	}
	look(h.gen.name() + "\xff absent")
	h.note(m, f)
}

// note records which transitions a step made.
func (h *harness) note(m *dirModel, f dirFacts) {
	p := m.last
	inline := m.d.Inline != nil
	if inline {
		m.wasInline = true
	} else if p.names != nil && p.blocks == 0 && f.blocks > 0 {
		m.toBlock = true
	}
	if f.indexed && f.inlineRoot {
		m.rootInlineSeen = true
	}
	if f.indexed && !f.inlineRoot && p.indexed && p.inlineRoot {
		m.rootExpanded = true
	}
	if f.indexed && !f.inlineRoot && p.indexed && !p.inlineRoot && f.dxClusters > p.dxClusters {
		m.rebalances += int(f.dxClusters - p.dxClusters)
	}
	if p.blocks > 0 && f.clusters > p.clusters {
		m.clusterGrowths++
	}
	if p.blocks > 0 && f.blocks > p.blocks && f.clusters == p.clusters {
		m.blockGrowths++
	}
	m.last = f
}

// step runs one random operation on m with the given odds of add and
// remove (the rest are retargets).
func (h *harness) step(m *dirModel, pAdd, pRemove float64) {
	h.t.Helper()
	h.steps++
	var touched string
	switch x := h.r.Float64(); {
	case x < pAdd || len(m.names) == 0:
		touched = h.add(m)
	case x < pAdd+pRemove:
		touched = h.remove(m)
	default:
		touched = h.retarget(m)
	}
	h.verify(m, touched, h.steps%250 == 0)
}

func TestModelRandomized(t *testing.T) {
	realtools.Require(t)
	for i, g := range modelConfigs {
		if testing.Short() && i%3 != 0 {
			continue // -short: one layout in three
		}
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			runModel(t, g)
		})
	}
}

func runModel(t *testing.T, g volConfig) {
	img := g.mkfs(t)
	v := openImage(t, img)
	r := base.NewRand(testSeed(t) ^ uint64(len(g.name))<<32 ^ uint64(g.size))
	h := &harness{t: t, v: v, r: r, gen: nameGen{r}, links: map[uint64]int{}, bias: 0.9}
	inlineVol := v.sb.Features.Incompat&ondisk.IncompatInlineData != 0
	indexedVol := v.sb.Features.Incompat&ondisk.IncompatIndexedDirs != 0
	bpc := v.sb.BlocksPerCluster()

	root := v.load(v.sb.RootBlkno)
	for i := 0; i < 16; i++ {
		f := v.newInode(ondisk.ModeReg)
		h.pool = append(h.pool, f)
	}
	big := newDirModel(v.mkdir(root, "big"), "big")
	small := newDirModel(v.mkdir(root, "small"), "small")
	h.verify(big, "", true)
	h.verify(small, "", true)

	// Grow big through every shape the volume allows, with removes and
	// retargets mixed in; small stays small.
	done := func() bool {
		if len(big.names) > 20000 {
			t.Fatalf("big directory reached %d names without its transitions: %+v", len(big.names), big)
		}
		ok := big.clusterGrowths >= 2 && (bpc == 1 || big.blockGrowths >= 2)
		if inlineVol {
			ok = ok && big.toBlock
		}
		if indexedVol {
			ok = ok && big.rootExpanded && big.rebalances >= 3
		}
		return ok
	}
	for !done() {
		if r.Chance(0.15) {
			h.step(small, 0.5, 0.35)
		} else {
			h.step(big, 0.75, 0.15)
		}
	}
	t.Logf("grown: %d names in %d blocks, %d clusters, %d index clusters; %d rebalances, %d cluster and %d block growths; %d steps",
		len(big.names), big.last.blocks, big.last.clusters, big.last.dxClusters, big.rebalances, big.clusterGrowths, big.blockGrowths, h.steps)
	if inlineVol && !big.wasInline {
		t.Fatal("inline-data volume: big was never inline")
	}
	if indexedVol && !inlineVol && !big.rootInlineSeen {
		t.Fatal("indexed volume: never saw an inline dx root")
	}
	h.verify(big, "", true)

	// Churn at a steady size: space freed anywhere in the directory must be
	// found again, so the directory may not keep growing.
	before, names0 := big.last.blocks, len(big.names)
	for i := 0; i < 600; i++ {
		h.step(big, 0.5, 0.45)
	}
	t.Logf("churn: %d names in %d blocks -> %d names in %d blocks", names0, before, len(big.names), big.last.blocks)
	// The walk drifts (adds slightly outnumber removes): allow for the
	// names it ends with, not the ones it started from.
	if limit := 2*before*uint64(max(1, len(big.names)))/uint64(max(1, names0)) + 4; big.last.blocks > limit {
		t.Fatalf("directory grew from %d to %d blocks while churning around %d names", before, big.last.blocks, names0)
	}

	// Shrink big again.
	for len(big.names) > 8 {
		if r.Chance(0.1) {
			h.step(small, 0.4, 0.4)
		} else {
			h.step(big, 0.08, 0.85)
		}
	}
	h.verify(big, "", true)

	// A subdirectory moves from small to big: ".." follows it.
	sub := v.mkdir(small.d, "sub")
	small.put("sub", sub.Blkno, ondisk.FileTypeDir)
	if err := Add(v.env(), big.d, "sub", sub.Blkno, ondisk.FileTypeDir); err != nil {
		t.Fatal(err)
	}
	big.put("sub", sub.Blkno, ondisk.FileTypeDir)
	if _, err := Remove(v.env(), small.d, "sub"); err != nil {
		t.Fatal(err)
	}
	small.drop("sub")
	if old, err := Retarget(v.env(), sub, "..", big.d.Blkno, ondisk.FileTypeDir); err != nil || old.Inode != small.d.Blkno {
		t.Fatalf("Retarget(..) = %+v, %v", old, err)
	}
	small.d.Links--
	big.d.Links++
	v.store(sub)
	h.verify(small, "sub", true)
	h.verify(big, "sub", true)
	if e, ok, err := (Dir{C: v.c, SB: v.sb, Inode: sub}).Lookup(".."); err != nil || !ok || e.Inode != big.d.Blkno {
		t.Fatalf("sub/.. = %+v %v %v", e, ok, err)
	}

	// A third directory grows to an index with leaves, is emptied and
	// destroyed: every cluster and block it had must be free again (fsck
	// checks the bitmaps).
	gone := newDirModel(v.mkdir(root, "gone"), "gone")
	for !(gone.last.blocks > uint64(bpc) && (!indexedVol || gone.last.dxClusters >= 2)) {
		h.step(gone, 0.9, 0.05)
	}
	for len(gone.names) > 0 {
		h.step(gone, 0, 1)
	}
	if err := Destroy(v.env(), gone.d); err != nil {
		t.Fatal(err)
	}
	if gone.d.Clusters != 0 || gone.d.DxRoot != 0 || gone.d.DynFeatures&ondisk.DynIndexedDir != 0 {
		t.Fatalf("destroyed directory still has %d clusters, dx root %d", gone.d.Clusters, gone.d.DxRoot)
	}
	if _, err := Remove(v.env(), root, "gone"); err != nil {
		t.Fatal(err)
	}
	root.Links--
	v.store(root)
	v.freeInode(gone.d)

	// Every pool inode needs a name (fsck wants no unreferenced inode)
	// and the link count its names give it.
	for _, f := range h.pool {
		if h.links[f.Blkno] == 0 {
			if err := Add(v.env(), small.d, fmt.Sprintf("keep-%d", f.Blkno), f.Blkno, ondisk.FileTypeReg); err != nil {
				t.Fatal(err)
			}
			small.put(fmt.Sprintf("keep-%d", f.Blkno), f.Blkno, ondisk.FileTypeReg)
			h.links[f.Blkno]++
		}
		f.Links = uint32(h.links[f.Blkno])
		v.store(f)
	}
	h.verify(small, "", true)
	v.store(big.d)
	v.store(small.d)
	v.close()

	realtools.RequireFsckClean(t, img)
	compareWithDebugfs(t, img, "/big")
	compareWithDebugfs(t, img, "/small")
	compareWithDebugfs(t, img, "/big/sub")
}
