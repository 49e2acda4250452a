package volume

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/inode"
	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// reflinkVolume is a mounted volume under test with its files by name.
type reflinkVolume struct {
	t     *testing.T
	img   string
	m     *Mounted
	files map[string][]byte // the model: name -> contents
	peak  refcountTotals    // the most verify saw at once
}

func mountReflinkVolume(t *testing.T, size int64, geo ...string) *reflinkVolume {
	t.Helper()
	realtools.Require(t)
	img := realtools.MkfsImage(t, size, append(geo, "-N", "2")...)
	v := &reflinkVolume{t: t, img: img, files: map[string][]byte{}}
	v.mount()
	return v
}

func (v *reflinkVolume) mount() {
	v.t.Helper()
	m, err := Mount(v.img, DefaultMountOptions())
	if err != nil {
		v.t.Fatal(err)
	}
	v.m = m
}

func (v *reflinkVolume) unmount() {
	v.t.Helper()
	if err := v.m.Unmount(); err != nil {
		v.t.Fatal(err)
	}
}

func (v *reflinkVolume) ino(name string) uint64 {
	v.t.Helper()
	ino, err := v.m.FS.Lookup(v.m.SB.RootBlkno, name)
	if err != nil {
		v.t.Fatalf("lookup %s: %v", name, err)
	}
	return ino
}

func (v *reflinkVolume) create(name string) uint64 {
	v.t.Helper()
	ino, err := v.m.FS.Create(inode.Ref{Ino: v.m.SB.RootBlkno}, name, inode.NewNode{Mode: syscall.S_IFREG | 0o644}, inode.Caller{})
	if err != nil {
		v.t.Fatalf("create %s: %v", name, err)
	}
	v.files[name] = []byte{}
	return ino
}

func (v *reflinkVolume) write(name string, p []byte, off int64) {
	v.t.Helper()
	if _, err := v.m.FS.Write(v.ino(name), p, off); err != nil {
		v.t.Fatalf("write %s [%d,+%d): %v", name, off, len(p), err)
	}
	m := v.files[name]
	if end := off + int64(len(p)); end > int64(len(m)) {
		m = append(m, make([]byte, end-int64(len(m)))...)
	}
	copy(m[off:], p)
	v.files[name] = m
}

func (v *reflinkVolume) read(name string) []byte {
	v.t.Helper()
	ino := v.ino(name)
	d, err := v.m.FS.Stat(ino)
	if err != nil {
		v.t.Fatal(err)
	}
	buf := make([]byte, d.Size)
	if _, err := v.m.FS.ReadFile(ino, buf, 0); err != nil {
		v.t.Fatalf("read %s: %v", name, err)
	}
	return buf
}

// verify compares every file with the model and every refcount tree with
// the extents that point into it.
func (v *reflinkVolume) verify(step string) {
	v.t.Helper()
	for name, want := range v.files {
		if got := v.read(name); !bytes.Equal(got, want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			v.t.Fatalf("%s: %s differs from the model (%d vs %d bytes, first difference at byte %d)", step, name, len(got), len(want), i)
		}
	}
	tot, err := refcountStats(v.m)
	if err != nil {
		v.t.Fatalf("%s: %v", step, err)
	}
	v.peak.Records = max(v.peak.Records, tot.Records)
	v.peak.Leaves = max(v.peak.Leaves, tot.Leaves)
	v.peak.MaxDepth = max(v.peak.MaxDepth, tot.MaxDepth)
	v.peak.Shared = max(v.peak.Shared, tot.Shared)
	v.peak.Trees = max(v.peak.Trees, tot.Trees)
}

// checkRefcounts recounts every refcount tree from the REFCOUNTED extents
// of the inodes in the root directory and compares: tree shape, rf_count
// (inodes attached), and the count of every physical cluster.
func checkRefcounts(m *Mounted) error {
	_, err := refcountStats(m)
	return err
}

// refcountTotals sums what the volume's refcount trees hold.
type refcountTotals struct {
	Trees, Records, Leaves, MaxDepth int
	Shared                           int // clusters counted more than once
}

func refcountStats(m *Mounted) (refcountTotals, error) {
	var tot refcountTotals
	fs := m.FS
	type tree struct {
		users  uint32
		counts map[uint64]uint32
	}
	trees := map[uint64]*tree{}
	var inos []uint64
	if err := fs.ReadDir(inode.Ref{Ino: m.SB.RootBlkno}, 0, func(e inode.DirEntry) bool {
		if e.FileType == ondisk.FileTypeReg {
			inos = append(inos, e.Inode)
		}
		return true
	}); err != nil {
		return tot, err
	}
	bpc := uint64(m.SB.BlocksPerCluster())
	for _, ino := range inos {
		d, err := fs.Stat(ino)
		if err != nil {
			return tot, err
		}
		var tr *tree
		if d.DynFeatures&ondisk.DynHasRefcount != 0 {
			if tr = trees[d.RefcountLoc]; tr == nil {
				tr = &tree{counts: map[uint64]uint32{}}
				trees[d.RefcountLoc] = tr
			}
			tr.users++
		}
		if d.Extents == nil {
			continue
		}
		var clusters uint64
		if err := extent.Walk(m.Cache, d.Extents, fmt.Sprintf("inode %d", ino), func(r ondisk.ExtentRec) error {
			clusters += uint64(r.Clusters)
			if r.Flags&ondisk.ExtentRefcounted == 0 {
				return nil
			}
			if tr == nil {
				return fmt.Errorf("inode %d: REFCOUNTED extent at %d without a refcount tree", ino, r.Cpos)
			}
			for i := uint64(0); i < uint64(r.Clusters); i++ {
				tr.counts[r.Blkno/bpc+i]++
			}
			return nil
		}); err != nil {
			return tot, err
		}
		if clusters != uint64(d.Clusters) {
			return tot, fmt.Errorf("inode %d: i_clusters %d, extents map %d", ino, d.Clusters, clusters)
		}
	}
	for root, want := range trees {
		s, err := extent.CheckRefcountTree(m.Cache, root)
		if err != nil {
			return tot, err
		}
		if s.FirstKey != 0 {
			return tot, fmt.Errorf("refcount tree %d: first leaf at key %d, want 0", root, s.FirstKey)
		}
		tot.Trees++
		tot.Records += s.Records
		tot.Leaves += len(s.Leaves)
		tot.MaxDepth = max(tot.MaxDepth, s.Depth)
		if s.Users != want.users {
			return tot, fmt.Errorf("refcount tree %d: rf_count %d, %d inodes attached", root, s.Users, want.users)
		}
		got := map[uint64]uint32{}
		rt := &extent.RefcountTree{C: m.Cache, Root: root}
		if err := rt.Walk(func(r ondisk.RefcountRec) error {
			for c := r.Cpos; c < r.End(); c++ {
				got[c] = r.Refcount
			}
			return nil
		}); err != nil {
			return tot, err
		}
		for c, n := range want.counts {
			if got[c] != n {
				return tot, fmt.Errorf("refcount tree %d: cluster %d counted %d, %d extents share it", root, c, got[c], n)
			}
			if n > 1 {
				tot.Shared++
			}
		}
		if len(got) != len(want.counts) {
			return tot, fmt.Errorf("refcount tree %d counts %d clusters, the extents share %d", root, len(got), len(want.counts))
		}
	}
	return tot, nil
}

// debugfsRefcounts reads "refcount PATH" from debugfs.ocfs2: rf_count and
// every record (physical cluster -> count).
func debugfsRefcounts(t *testing.T, img, path string) (users uint32, counts map[uint64]uint32) {
	t.Helper()
	out := realtools.Debugfs(t, img, "refcount "+path)
	counts = map[uint64]uint32{}
	rec := regexp.MustCompile(`^\s*\d+\s+(\d+)\s+(\d+)\s+(\d+)\s*$`)
	inRecords := false
	for _, line := range strings.Split(out, "\n") {
		if m := regexp.MustCompile(`Reftree Count: (\d+)`).FindStringSubmatch(line); m != nil && users == 0 {
			n, _ := strconv.ParseUint(m[1], 10, 32)
			users = uint32(n)
		}
		if strings.Contains(line, "### Physical cpos") {
			inRecords = true
			continue
		}
		if !inRecords {
			continue
		}
		if m := rec.FindStringSubmatch(line); m != nil {
			c, _ := strconv.ParseUint(m[1], 10, 64)
			n, _ := strconv.ParseUint(m[2], 10, 32)
			r, _ := strconv.ParseUint(m[3], 10, 32)
			for i := uint64(0); i < n; i++ {
				counts[c+i] = uint32(r)
			}
		}
	}
	return users, counts
}

func randBytes(rng *rand.Rand, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32() | 1)
	}
	return p
}

func TestReflinkSmoke(t *testing.T) {
	v := mountReflinkVolume(t, 256<<20, "-b", "4096", "-C", "4096", "--fs-features=local")
	rng := rand.New(rand.NewPCG(1, 2))
	v.create("a")
	v.write("a", randBytes(rng, 1<<20+1234), 0)
	v.create("b")
	if err := v.m.FS.Reflink(v.ino("a"), v.ino("b")); err != nil {
		t.Fatal(err)
	}
	v.files["b"] = bytes.Clone(v.files["a"])
	v.verify("after reflink")
	v.write("b", randBytes(rng, 100), 5000)
	v.verify("after a write into the copy")
	v.write("a", randBytes(rng, 10000), 500000)
	v.verify("after a write into the source")
	v.unmount()
	realtools.RequireFsckClean(t, v.img)
	users, counts := debugfsRefcounts(t, v.img, "/a")
	t.Logf("debugfs: %d users, %d clusters counted", users, len(counts))
}

// sameTreeOrNone reports whether a reflink between a and b may share:
// they are not attached to two different refcount trees.
func (v *reflinkVolume) sameTreeOrNone(a, b string) bool {
	da, err := v.m.FS.Stat(v.ino(a))
	if err != nil {
		v.t.Fatal(err)
	}
	db, err := v.m.FS.Stat(v.ino(b))
	if err != nil {
		v.t.Fatal(err)
	}
	ha, hb := da.DynFeatures&ondisk.DynHasRefcount != 0, db.DynFeatures&ondisk.DynHasRefcount != 0
	return !ha || !hb || da.RefcountLoc == db.RefcountLoc
}

// place copies p into the model of name at off.
func (v *reflinkVolume) place(name string, p []byte, off int64) {
	m := v.files[name]
	if end := off + int64(len(p)); end > int64(len(m)) {
		m = append(m, make([]byte, end-int64(len(m)))...)
	}
	copy(m[off:], p)
	v.files[name] = m
}

func (v *reflinkVolume) resize(name string, size int64) {
	m := v.files[name]
	if size < int64(len(m)) {
		m = m[:size]
	} else {
		m = append(m, make([]byte, size-int64(len(m)))...)
	}
	v.files[name] = m
}

// checkOffline unmounts, runs fsck.ocfs2 -fn and compares what
// debugfs.ocfs2 says of every refcount tree with o2go's reading, then mounts
// again.
func (v *reflinkVolume) checkOffline(step string) {
	v.t.Helper()
	type want struct {
		path   string
		users  uint32
		counts map[uint64]uint32
	}
	var trees []want
	seen := map[uint64]bool{}
	for name := range v.files {
		d, err := v.m.FS.Stat(v.ino(name))
		if err != nil {
			v.t.Fatal(err)
		}
		if d.DynFeatures&ondisk.DynHasRefcount == 0 || seen[d.RefcountLoc] {
			continue
		}
		seen[d.RefcountLoc] = true
		s, err := extent.CheckRefcountTree(v.m.Cache, d.RefcountLoc)
		if err != nil {
			v.t.Fatal(err)
		}
		w := want{path: "/" + name, users: s.Users, counts: map[uint64]uint32{}}
		if err := (&extent.RefcountTree{C: v.m.Cache, Root: d.RefcountLoc}).Walk(func(r ondisk.RefcountRec) error {
			for c := r.Cpos; c < r.End(); c++ {
				w.counts[c] = r.Refcount
			}
			return nil
		}); err != nil {
			v.t.Fatal(err)
		}
		trees = append(trees, w)
	}
	v.unmount()
	if r := realtools.Fsck(v.t, v.img, "-fn"); !r.Clean() {
		v.t.Fatalf("%s: fsck.ocfs2 -fn: exit %d, problems %v\n%s", step, r.ExitCode, r.Problems, r.Output)
	}
	for _, w := range trees {
		users, counts := debugfsRefcounts(v.t, v.img, w.path)
		if users != w.users || len(counts) != len(w.counts) {
			v.t.Fatalf("%s: debugfs refcount %s: %d users, %d clusters; o2go reads %d users, %d clusters", step, w.path, users, len(counts), w.users, len(w.counts))
		}
		for c, n := range w.counts {
			if counts[c] != n {
				v.t.Fatalf("%s: debugfs refcount %s: cluster %d counted %d, o2go reads %d", step, w.path, c, counts[c], n)
			}
		}
	}
	v.mount()
}

// TestReflinkAgainstModel runs random writes, reflinks (FICLONE,
// FICLONERANGE, copy_file_range), truncates, hole punches, zero ranges,
// preallocations and deletes over a few files, comparing every file with a
// model and every refcount tree with the extents that share it after each
// step, and with fsck.ocfs2 and debugfs.ocfs2 now and then.
func TestReflinkAgainstModel(t *testing.T) {
	for _, geo := range [][]string{
		{"-b", "4096", "-C", "4096", "--fs-features=local"},
		{"-b", "512", "-C", "4096", "--fs-features=local,noindexed-dirs"},
		{"-b", "4096", "-C", "16384", "--fs-features=local"},
	} {
		seeds := uint64(2)
		if testing.Short() {
			seeds = 1
		}
		for seed := uint64(1); seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s-%s-seed%d", geo[1], geo[3], seed), func(t *testing.T) {
				v := mountReflinkVolume(t, 400<<20, geo...)
				rng := rand.New(rand.NewPCG(seed, uint64(len(geo[1]))))
				bs := int64(v.m.SB.BlockSize())
				const maxSize = 1 << 20
				names := []string{"f0", "f1", "f2", "f3", "f4"}
				for _, n := range names {
					v.create(n)
				}
				pick := func() string { return names[rng.IntN(len(names))] }
				live := func() string {
					if len(v.files) == 0 {
						v.create(pick())
					}
					for {
						if n := pick(); v.files[n] != nil {
							return n
						}
					}
				}
				stats := map[string]int{}
				const ops = 600
				for op := 0; op < ops; op++ {
					var what string
					switch k := rng.IntN(20); {
					case k < 6:
						what = "write"
						name := live()
						off := rng.Int64N(maxSize)
						n := 1 + rng.IntN(48<<10)
						if rng.IntN(4) == 0 {
							n = 1 + rng.IntN(100)
						}
						v.write(name, randBytes(rng, n), off)
					case k < 9:
						what = "reflink"
						src, dst := live(), live()
						if src == dst {
							continue
						}
						may := v.sameTreeOrNone(src, dst)
						err := v.m.FS.Reflink(v.ino(src), v.ino(dst))
						if errors.Is(err, syscall.EOPNOTSUPP) && !may {
							what = "reflink refused"
							break
						}
						if err != nil {
							t.Fatalf("op %d reflink %s -> %s: %v", op, src, dst, err)
						}
						v.place(dst, bytes.Clone(v.files[src]), 0)
					case k < 12:
						what = "clone range"
						src, dst := live(), live()
						size := int64(len(v.files[src]))
						if size < bs {
							continue
						}
						so := rng.Int64N(size/bs) * bs
						do := rng.Int64N(maxSize/bs) * bs
						n := (1 + rng.Int64N((size-so)/bs)) * bs
						if rng.IntN(3) == 0 || so+n > size {
							n = size - so
						}
						if src == dst && do < so+n+bs && so < do+n+bs {
							continue
						}
						may := v.sameTreeOrNone(src, dst)
						err := v.m.FS.CloneRange(v.ino(src), so, v.ino(dst), do, n)
						if errors.Is(err, syscall.EOPNOTSUPP) && !may {
							what = "clone range refused"
							break
						}
						if err != nil {
							t.Fatalf("op %d clone %s [%d,+%d) -> %s at %d: %v", op, src, so, n, dst, do, err)
						}
						v.place(dst, bytes.Clone(v.files[src][so:so+n]), do)
					case k < 14:
						what = "copy range"
						src, dst := live(), live()
						size := int64(len(v.files[src]))
						so := rng.Int64N(size + 100)
						do := rng.Int64N(maxSize)
						if rng.IntN(2) == 0 { // same offset within a cluster: shares
							cs := int64(v.m.SB.ClusterSize())
							do = do&^(cs-1) | so&(cs-1)
						}
						n := rng.Int64N(maxSize / 2)
						if src == dst && do < so+n+bs && so < do+n+bs {
							continue
						}
						got, err := v.m.FS.CopyRange(v.ino(src), so, v.ino(dst), do, n)
						if err != nil {
							t.Fatalf("op %d copy %s [%d,+%d) -> %s at %d: %v", op, src, so, n, dst, do, err)
						}
						want := max(0, min(n, size-so))
						if got != want {
							t.Fatalf("op %d copy %s [%d,+%d) of %d bytes copied %d, want %d", op, src, so, n, size, got, want)
						}
						if got > 0 {
							v.place(dst, bytes.Clone(v.files[src][so:so+got]), do)
						}
					case k < 15:
						what = "truncate"
						name := live()
						size := int64(len(v.files[name]))
						size = size/2 + rng.Int64N(maxSize/2+1)
						if err := v.m.FS.Truncate(v.ino(name), size); err != nil {
							t.Fatalf("op %d truncate %s %d: %v", op, name, size, err)
						}
						v.resize(name, size)
					case k < 17:
						what = "punch"
						name := live()
						off, n := rng.Int64N(maxSize), 1+rng.Int64N(256<<10)
						if err := v.m.FS.Fallocate(v.ino(name), inode.FallocPunchHole|inode.FallocKeepSize, off, n); err != nil {
							t.Fatalf("op %d punch %s: %v", op, name, err)
						}
						m := v.files[name]
						for i := off; i < min(off+n, int64(len(m))); i++ {
							m[i] = 0
						}
					case k < 18:
						what = "zero range"
						name := live()
						off, n := rng.Int64N(maxSize), 1+rng.Int64N(256<<10)
						mode := uint32(inode.FallocZeroRange)
						if rng.IntN(2) == 0 {
							mode |= inode.FallocKeepSize
							n = max(1, min(n, int64(len(v.files[name]))-off)) // see preallocate
						}
						if err := v.m.FS.Fallocate(v.ino(name), mode, off, n); err != nil {
							t.Fatalf("op %d zero range %s: %v", op, name, err)
						}
						m := v.files[name]
						for i := off; i < min(off+n, int64(len(m))); i++ {
							m[i] = 0
						}
						if mode&inode.FallocKeepSize == 0 && off+n > int64(len(m)) {
							v.resize(name, off+n)
						}
					case k < 19:
						what = "preallocate"
						name := live()
						// Within the size: fsck.ocfs2 1.8.7 reports clusters
						// wholly past i_size as INODE_SPARSE_SIZE, even the
						// unwritten ones fallocate -n leaves.
						size := int64(len(v.files[name]))
						if size < 2 {
							continue
						}
						off := rng.Int64N(size - 1)
						n := 1 + rng.Int64N(size-off-1)
						if err := v.m.FS.Fallocate(v.ino(name), inode.FallocKeepSize, off, n); err != nil {
							t.Fatalf("op %d fallocate %s: %v", op, name, err)
						}
					default:
						if rng.IntN(2) == 0 {
							// Scattered small writes fragment shared files: the trees fill.
							what = "scatter"
							name := live()
							for i := 0; i < 24 && len(v.files[name]) > 0; i++ {
								v.write(name, randBytes(rng, 1), rng.Int64N(int64(len(v.files[name]))))
							}
							break
						}
						name := pick()
						if v.files[name] == nil {
							what = "create"
							v.create(name)
							break
						}
						what = "delete"
						if err := v.m.FS.Unlink(inode.Ref{Ino: v.m.SB.RootBlkno}, name, false); err != nil {
							t.Fatalf("op %d unlink %s: %v", op, name, err)
						}
						delete(v.files, name)
					}
					stats[what]++
					if testing.Verbose() {
						t.Logf("op %d %s", op, what)
					}
					v.verify(fmt.Sprintf("op %d (%s)", op, what))
					if op%150 == 149 {
						v.checkOffline(fmt.Sprintf("op %d", op))
					}
				}
				v.checkOffline("the end")
				t.Logf("operations: %v", stats)
				t.Logf("peak: %+v", v.peak)
				if v.peak.Shared < 50 || v.peak.Records < 40 {
					t.Errorf("the run shared too little to test much: %+v", v.peak)
				}
				v.unmount()
			})
		}
	}
}

// TestReflinkKeepsFreeSpace: a reflink of a 100 MiB file moves no data and
// takes no cluster (df stays put); each 4 KiB write into the copy then costs
// exactly one cluster, its private copy.
func TestReflinkKeepsFreeSpace(t *testing.T) {
	v := mountReflinkVolume(t, 512<<20, "-b", "4096", "-C", "4096", "--fs-features=local")
	rng := rand.New(rand.NewPCG(5, 6))
	v.create("big")
	chunk := randBytes(rng, 1<<20)
	for i := int64(0); i < 100; i++ {
		chunk[0] = byte(i) // every MiB differs
		v.write("big", chunk, i<<20)
	}
	// The first tree of the volume may have to grow extent_alloc by a
	// group of clusters: take that one on a small file first.
	v.create("warm")
	v.write("warm", chunk[:4096], 0)
	v.create("warm2")
	if err := v.m.FS.Reflink(v.ino("warm"), v.ino("warm2")); err != nil {
		t.Fatal(err)
	}
	v.files["warm2"] = bytes.Clone(v.files["warm"])
	v.create("copy")
	_, before, err := v.m.Statfs()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.m.FS.Reflink(v.ino("big"), v.ino("copy")); err != nil {
		t.Fatal(err)
	}
	v.files["copy"] = bytes.Clone(v.files["big"])
	_, after, err := v.m.Statfs()
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("free clusters %d before the reflink of 100 MiB, %d after", before, after)
	}
	cs := int64(v.m.SB.ClusterSize())
	for i := int64(0); i < 20; i++ {
		v.write("copy", randBytes(rng, 4096), (i*37+3)*cs)
		_, free, err := v.m.Statfs()
		if err != nil {
			t.Fatal(err)
		}
		if want := before - uint64(i+1); free != want {
			t.Fatalf("after %d 4 KiB writes into the copy: %d free clusters, want %d", i+1, free, want)
		}
	}
	v.verify("after the writes")
	v.checkOffline("the end")
	v.unmount()
}

// TestReflinkTreeGrowsAndShrinks fragments a shared file until its
// refcount tree needs many leaves (and, with 512-byte blocks, index blocks
// under the root), then lets go of the references until the tree is a bare
// root again, and finally frees it; fsck.ocfs2 and debugfs.ocfs2 judge
// every stage.
func TestReflinkTreeGrowsAndShrinks(t *testing.T) {
	for _, geo := range [][]string{
		{"-b", "512", "-C", "4096", "--fs-features=local,noindexed-dirs"},
		{"-b", "4096", "-C", "4096", "--fs-features=local"},
	} {
		t.Run(geo[1], func(t *testing.T) {
			v := mountReflinkVolume(t, 256<<20, geo...)
			rng := rand.New(rand.NewPCG(8, 9))
			cs := int64(v.m.SB.ClusterSize())
			const clusters = 1200
			v.create("a")
			v.write("a", randBytes(rng, clusters*int(cs)), 0)
			v.create("b")
			if err := v.m.FS.Reflink(v.ino("a"), v.ino("b")); err != nil {
				t.Fatal(err)
			}
			v.files["b"] = bytes.Clone(v.files["a"])
			// Copy on write of every other cluster: a's counts alternate
			// 1 and 2, one record each.
			for c := int64(0); c < clusters; c += 2 {
				v.write("b", randBytes(rng, 1), c*cs+rng.Int64N(cs))
			}
			v.verify("fragmented")
			root := func() extent.RefcountShape {
				d, err := v.m.FS.Stat(v.ino("a"))
				if err != nil {
					t.Fatal(err)
				}
				s, err := extent.CheckRefcountTree(v.m.Cache, d.RefcountLoc)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			s := root()
			t.Logf("grown: %v", s)
			if s.Records < clusters || len(s.Leaves) < 3 {
				t.Fatalf("the tree did not grow as expected: %v", s)
			}
			if v.m.SB.BlockSize() == 512 && s.Depth < 1 {
				t.Fatalf("with 512-byte blocks the index should have left the root: %v", s)
			}
			v.checkOffline("grown")

			if err := v.m.FS.Unlink(inode.Ref{Ino: v.m.SB.RootBlkno}, "b", false); err != nil {
				t.Fatal(err)
			}
			delete(v.files, "b")
			v.verify("copy deleted")
			t.Logf("copy deleted: %v", root())
			v.checkOffline("copy deleted")

			if err := v.m.FS.Truncate(v.ino("a"), 0); err != nil {
				t.Fatal(err)
			}
			v.resize("a", 0)
			v.verify("truncated")
			s = root()
			t.Logf("truncated: %v", s)
			if s.Depth != -1 || s.Records != 0 || s.Users != 1 {
				t.Fatalf("the emptied tree is not a bare root: %v", s)
			}
			v.checkOffline("truncated")

			_, before, _ := v.m.Statfs()
			if err := v.m.FS.Unlink(inode.Ref{Ino: v.m.SB.RootBlkno}, "a", false); err != nil {
				t.Fatal(err)
			}
			delete(v.files, "a")
			v.verify("deleted")
			v.checkOffline("deleted")
			if err := v.m.FS.FlushTruncateLog(); err != nil {
				t.Fatal(err)
			}
			if _, after, _ := v.m.Statfs(); after < before {
				t.Fatalf("free clusters went from %d to %d on deleting an empty file", before, after)
			}
			v.unmount()
		})
	}
}

// parseSums reads sha256sum output into name -> hex digest.
func parseSums(t *testing.T, out string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("sha256sum line %q", line)
		}
		sums[f[1]] = f[0]
	}
	return sums
}

func sumOf(p []byte) string {
	s := sha256.Sum256(p)
	return hex.EncodeToString(s[:])
}

// TestReflinkWithKernel checks reflinks against the kernel's OCFS2 in one
// boot, both ways: the kernel reads o2go's reflinked files byte-identical
// and writes into both sides of an o2go reflink (its copy on write); it
// reflinks files itself (cp --reflink=always, into a fresh tree and into
// o2go's); fsck stays clean; then o2go reads all of it, and writes into,
// unshares, truncates and deletes the kernel's reflinks.
func TestReflinkWithKernel(t *testing.T) {
	testutil.Long(t)
	kernelvm.Require(t)
	v := mountReflinkVolume(t, 512<<20, "-b", "4096", "-C", "4096", "--fs-features=local")
	rng := rand.New(rand.NewPCG(11, 12))
	fs := v.m.FS
	v.create("base")
	v.write("base", randBytes(rng, 3<<20+777), 0)
	v.create("o2clone")
	if err := fs.Reflink(v.ino("base"), v.ino("o2clone")); err != nil {
		t.Fatal(err)
	}
	v.files["o2clone"] = bytes.Clone(v.files["base"])
	v.write("o2clone", randBytes(rng, 5000), 70000) // o2go's own copy on write
	v.create("o2range")
	if err := fs.CloneRange(v.ino("base"), 1<<20, v.ino("o2range"), 4096, 1<<20); err != nil {
		t.Fatal(err)
	}
	v.place("o2range", bytes.Clone(v.files["base"][1<<20:2<<20]), 4096)
	v.create("o2copy")
	if n, err := fs.CopyRange(v.ino("base"), 12345, v.ino("o2copy"), 12345, 2<<20); err != nil || n != 2<<20 {
		t.Fatalf("copy range: %d, %v", n, err)
	}
	v.place("o2copy", bytes.Clone(v.files["base"][12345:12345+2<<20]), 12345)
	v.create("kbase")
	v.write("kbase", randBytes(rng, 2<<20+5), 0)
	v.verify("before the kernel")
	before := map[string]string{}
	for name, p := range v.files {
		before[name] = sumOf(p)
	}
	v.checkOffline("before the kernel")
	v.unmount()

	share := t.TempDir()
	p1, p2 := randBytes(rng, 4096), randBytes(rng, 3*4096)
	for name, p := range map[string][]byte{"p1": p1, "p2": p2} {
		if err := os.WriteFile(filepath.Join(share, name), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kernelvm.RunT(t, kernelvm.Options{Image: v.img, Share: share}, `
		set -e
		S="$KERNELVM_SHARE"
		sha256sum base o2clone o2range o2copy kbase >"$S/before.txt"
		dd if="$S/p1" of=o2clone bs=4096 seek=10 conv=notrunc status=none
		dd if="$S/p2" of=base bs=4096 seek=100 conv=notrunc status=none
		cp --reflink=always kbase kclone
		cp --reflink=always base kclone2
		dd if="$S/p1" of=kclone2 bs=4096 seek=5 conv=notrunc status=none
		sync
		sha256sum base o2clone o2range o2copy kbase kclone kclone2 >"$S/after.txt"`)
	raw, err := os.ReadFile(filepath.Join(share, "before.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, sum := range parseSums(t, string(raw)) {
		if sum != before[name] {
			t.Errorf("the kernel reads %s as %s, o2go wrote %s", name, sum, before[name])
		}
	}
	v.place("o2clone", p1, 10*4096)
	v.place("base", p2, 100*4096)
	v.files["kclone"] = bytes.Clone(v.files["kbase"])
	v.files["kclone2"] = bytes.Clone(v.files["base"])
	v.place("kclone2", p1, 5*4096)
	if raw, err = os.ReadFile(filepath.Join(share, "after.txt")); err != nil {
		t.Fatal(err)
	}
	for name, sum := range parseSums(t, string(raw)) {
		if want := sumOf(v.files[name]); sum != want {
			t.Errorf("after its writes the kernel reads %s as %s, the model says %s", name, sum, want)
		}
	}
	if r := realtools.Fsck(t, v.img, "-fn"); !r.Clean() {
		t.Fatalf("fsck.ocfs2 -fn after the kernel: exit %d, problems %v\n%s", r.ExitCode, r.Problems, r.Output)
	}

	v.mount()
	v.verify("after the kernel")
	for _, name := range []string{"kclone", "kclone2", "base"} {
		d, err := fs.Stat(v.ino(name))
		if err == nil && d.DynFeatures&ondisk.DynHasRefcount == 0 {
			t.Errorf("%s has no refcount tree after the kernel's reflink", name)
		}
	}
	fs = v.m.FS
	v.write("kclone", randBytes(rng, 10000), 300000) // unshare the kernel's sharing
	v.write("kbase", randBytes(rng, 4096), 0)
	if err := fs.Truncate(v.ino("kclone2"), 1<<20+3); err != nil {
		t.Fatal(err)
	}
	v.resize("kclone2", 1<<20+3)
	if err := fs.Fallocate(v.ino("kclone"), inode.FallocPunchHole|inode.FallocKeepSize, 4096, 1<<20); err != nil {
		t.Fatal(err)
	}
	clear(v.files["kclone"][4096 : 4096+1<<20])
	v.verify("o2go over the kernel's reflinks")
	if err := fs.Unlink(inode.Ref{Ino: v.m.SB.RootBlkno}, "kbase", false); err != nil {
		t.Fatal(err)
	}
	delete(v.files, "kbase")
	v.verify("kbase deleted")
	v.checkOffline("the end")
	v.unmount()
}

// TestReflinkSurvivesCrash: reflinks, copy on write and a delete of a
// shared file, made durable by fsync, survive a crash: the journal replays
// the refcount trees with the extents, the files read as before, and the
// volume passes fsck.ocfs2.
func TestReflinkSurvivesCrash(t *testing.T) {
	v := mountReflinkVolume(t, 256<<20, "-b", "4096", "-C", "4096", "--fs-features=local")
	rng := rand.New(rand.NewPCG(13, 14))
	v.create("a")
	v.write("a", randBytes(rng, 3<<20), 0)
	for _, name := range []string{"b", "c"} {
		v.create(name)
		if err := v.m.FS.Reflink(v.ino("a"), v.ino(name)); err != nil {
			t.Fatal(err)
		}
		v.files[name] = bytes.Clone(v.files["a"])
	}
	for i := 0; i < 40; i++ {
		v.write([]string{"a", "b", "c"}[i%3], randBytes(rng, 100), rng.Int64N(3<<20))
	}
	if err := v.m.FS.Unlink(inode.Ref{Ino: v.m.SB.RootBlkno}, "c", false); err != nil {
		t.Fatal(err)
	}
	delete(v.files, "c")
	v.verify("before the crash")
	if err := v.m.FS.Fsync(); err != nil {
		t.Fatal(err)
	}
	v.m.Crash()
	v.mount()
	if !v.m.Load.WasDirty {
		t.Fatal("the crashed mount left a clean journal")
	}
	v.verify("after replay")
	v.checkOffline("after replay")
	v.unmount()
}
