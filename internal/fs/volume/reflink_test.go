package volume

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/inode"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// reflinkVolume is a mounted volume under test with its files by name.
type reflinkVolume struct {
	t     *testing.T
	img   string
	m     *Mounted
	files map[string][]byte // the model: name -> contents
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
	ino, err := v.m.FS.Create(v.m.SB.RootBlkno, name, inode.NewNode{Mode: syscall.S_IFREG | 0o644}, inode.Caller{})
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
	if err := checkRefcounts(v.m); err != nil {
		v.t.Fatalf("%s: %v", step, err)
	}
}

// checkRefcounts recounts every refcount tree from the REFCOUNTED extents
// of the inodes in the root directory and compares: tree shape, rf_count
// (inodes attached), and the count of every physical cluster.
func checkRefcounts(m *Mounted) error {
	fs := m.FS
	type tree struct {
		users  uint32
		counts map[uint64]uint32
	}
	trees := map[uint64]*tree{}
	var inos []uint64
	if err := fs.ReadDir(m.SB.RootBlkno, 0, func(e inode.DirEntry) bool {
		if e.FileType == ondisk.FileTypeReg {
			inos = append(inos, e.Inode)
		}
		return true
	}); err != nil {
		return err
	}
	bpc := uint64(m.SB.BlocksPerCluster())
	for _, ino := range inos {
		d, err := fs.Stat(ino)
		if err != nil {
			return err
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
			return err
		}
		if clusters != uint64(d.Clusters) {
			return fmt.Errorf("inode %d: i_clusters %d, extents map %d", ino, d.Clusters, clusters)
		}
	}
	for root, want := range trees {
		s, err := extent.CheckRefcountTree(m.Cache, root)
		if err != nil {
			return err
		}
		if s.Users != want.users {
			return fmt.Errorf("refcount tree %d: rf_count %d, %d inodes attached", root, s.Users, want.users)
		}
		got := map[uint64]uint32{}
		rt := &extent.RefcountTree{C: m.Cache, Root: root}
		if err := rt.Walk(func(r ondisk.RefcountRec) error {
			for c := r.Cpos; c < r.End(); c++ {
				got[c] = r.Refcount
			}
			return nil
		}); err != nil {
			return err
		}
		for c, n := range want.counts {
			if got[c] != n {
				return fmt.Errorf("refcount tree %d: cluster %d counted %d, %d extents share it", root, c, got[c], n)
			}
		}
		if len(got) != len(want.counts) {
			return fmt.Errorf("refcount tree %d counts %d clusters, the extents share %d", root, len(got), len(want.counts))
		}
	}
	return nil
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
