package inode_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// rfs is a mounted test volume with helpers that fail the test on error.
type rfs struct {
	t   *testing.T
	img string
	m   *volume.Mounted
	fs  *inode.FS
	rng *rand.Rand
}

func newRFS(t *testing.T, geo ...string) *rfs {
	t.Helper()
	realtools.Require(t)
	img := realtools.MkfsImage(t, 256<<20, append(geo, "-N", "2")...)
	m, err := volume.Mount(img, volume.DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	r := &rfs{t: t, img: img, m: m, fs: m.FS, rng: rand.New(rand.NewPCG(1, 1))}
	t.Cleanup(func() {
		if r.m != nil {
			r.m.Crash()
		}
	})
	return r
}

// finish unmounts and requires fsck.ocfs2 -fn to pass.
func (r *rfs) finish() {
	r.t.Helper()
	if err := r.m.Unmount(); err != nil {
		r.t.Fatal(err)
	}
	r.m = nil
	realtools.RequireFsckClean(r.t, r.img)
}

func (r *rfs) file(name string, data []byte) uint64 {
	r.t.Helper()
	ino, err := r.fs.Create(inode.Ref{Ino: r.fs.RootBlkno()}, name, inode.NewNode{Mode: syscall.S_IFREG | 0o644}, inode.Caller{})
	if err != nil {
		r.t.Fatal(err)
	}
	if len(data) > 0 {
		if _, err := r.fs.Write(ino, data, 0); err != nil {
			r.t.Fatal(err)
		}
	}
	return ino
}

func (r *rfs) random(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.rng.Uint32())
	}
	return p
}

func (r *rfs) read(ino uint64) []byte {
	r.t.Helper()
	d, err := r.fs.Stat(ino)
	if err != nil {
		r.t.Fatal(err)
	}
	p := make([]byte, d.Size)
	if _, err := r.fs.ReadFile(ino, p, 0); err != nil {
		r.t.Fatal(err)
	}
	return p
}

func (r *rfs) expect(ino uint64, want []byte, what string) {
	r.t.Helper()
	if got := r.read(ino); !bytes.Equal(got, want) {
		r.t.Fatalf("%s: inode %d differs (%d vs %d bytes)", what, ino, len(got), len(want))
	}
}

// extents returns the leaf records of ino.
func (r *rfs) extents(ino uint64) []ondisk.ExtentRec {
	r.t.Helper()
	d, err := r.fs.Stat(ino)
	if err != nil {
		r.t.Fatal(err)
	}
	var recs []ondisk.ExtentRec
	if d.Extents == nil {
		return nil
	}
	if err := extent.Walk(r.m.Cache, d.Extents, "test", func(e ondisk.ExtentRec) error {
		recs = append(recs, e)
		return nil
	}); err != nil {
		r.t.Fatal(err)
	}
	return recs
}

// flagsAt returns the extent flags and physical block of logical cluster c
// of ino (ok false in a hole).
func (r *rfs) flagsAt(ino uint64, c uint32) (flags uint8, blk uint64, ok bool) {
	for _, e := range r.extents(ino) {
		if e.Contains(c) {
			return e.Flags, e.Blkno + uint64(c-e.Cpos)*uint64(r.m.SB.BlocksPerCluster()), true
		}
	}
	return 0, 0, false
}

func (r *rfs) free() uint64 {
	r.t.Helper()
	_, free, err := r.m.Statfs()
	if err != nil {
		r.t.Fatal(err)
	}
	return free
}

func TestCloneRangeRules(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "8192", "--fs-features=local")
	data := r.random(100000)
	a := r.file("a", data)
	b := r.file("b", nil)
	dir, err := r.fs.Create(inode.Ref{Ino: r.fs.RootBlkno()}, "d", inode.NewNode{Mode: syscall.S_IFDIR | 0o755}, inode.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	link, err := r.fs.Create(inode.Ref{Ino: r.fs.RootBlkno()}, "l", inode.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: "a"}, inode.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name                   string
		src, dst               uint64
		srcOff, dstOff, length int64
		want                   error
	}{
		{"unaligned source offset", a, b, 100, 0, 4096, syscall.EINVAL},
		{"unaligned destination offset", a, b, 0, 100, 4096, syscall.EINVAL},
		{"unaligned length before EOF", a, b, 0, 0, 5000, syscall.EINVAL},
		{"range past EOF", a, b, 98304, 0, 4096, syscall.EINVAL},
		{"offset past EOF", a, b, 102400, 0, 4096, syscall.EINVAL},
		{"overlap within one file", a, a, 0, 8192, 16384, syscall.EINVAL},
		{"directory source", dir, b, 0, 0, 0, syscall.EISDIR},
		{"directory destination", a, dir, 0, 0, 0, syscall.EISDIR},
		{"symlink", link, b, 0, 0, 0, syscall.EINVAL},
		{"negative offset", a, b, -4096, 0, 4096, syscall.EINVAL},
	} {
		if err := r.fs.CloneRange(c.src, c.srcOff, c.dst, c.dstOff, c.length); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	r.expect(b, nil, "after refused clones")
	// Unaligned length is fine when it ends at EOF; so is a zero length
	// (to EOF) from the very end (nothing to do).
	if err := r.fs.CloneRange(a, 4096, b, 8192, int64(len(data))-4096); err != nil {
		t.Fatal(err)
	}
	if err := r.fs.CloneRange(a, int64(len(data)), b, 0, 0); err != nil {
		t.Fatal(err)
	}
	want := append(make([]byte, 8192), data[4096:]...)
	r.expect(b, want, "clone to EOF")
	if n, err := r.fs.CopyRange(a, int64(len(data)), b, 0, 100); n != 0 || err != nil {
		t.Errorf("copy from EOF: %d, %v", n, err)
	}
	if _, err := r.fs.CopyRange(a, 0, a, 100, 5000); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("overlapping copy within one file: %v", err)
	}
	// Within one file, non-overlapping: the data arrives; fsck.ocfs2 must
	// not see one file mapping a cluster twice.
	if err := r.fs.CloneRange(a, 0, a, 204800, 40960); err != nil {
		t.Fatal(err)
	}
	want = append(bytes.Clone(data), make([]byte, 204800-len(data))...)
	want = append(want, data[:40960]...)
	r.expect(a, want, "clone within one file")
	r.finish()
}

func TestReflinkNeedsRefcountFeature(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "4096", "--fs-features=local,norefcount")
	data := r.random(50000)
	a, b := r.file("a", data), r.file("b", nil)
	if err := r.fs.Reflink(a, b); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Fatalf("reflink without the refcount feature: %v, want EOPNOTSUPP", err)
	}
	if n, err := r.fs.CopyRange(a, 0, b, 0, 1<<20); err != nil || n != int64(len(data)) {
		t.Fatalf("copy range without the refcount feature: %d, %v", n, err)
	}
	r.expect(b, data, "copied without sharing")
	for _, e := range r.extents(b) {
		if e.Flags&ondisk.ExtentRefcounted != 0 {
			t.Fatalf("extent %+v is shared on a volume without refcount trees", e)
		}
	}
	r.finish()

	ro, err := volume.Open(r.img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.FS.Reflink(a, b); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("reflink on a read-only volume: %v, want EROFS", err)
	}
}

// TestCopyOnWriteGranularity: a write into a reflink copies only the
// clusters it touches; the last holder of a shared cluster just clears the
// flag, in place, without a new cluster.
func TestCopyOnWriteGranularity(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "4096", "--fs-features=local")
	data := r.random(64 * 4096)
	a, b := r.file("a", data), r.file("b", nil)
	if err := r.fs.Reflink(a, b); err != nil {
		t.Fatal(err)
	}
	free := r.free()
	if _, err := r.fs.Write(b, []byte("xy"), 10*4096+4095); err != nil { // straddles clusters 10 and 11
		t.Fatal(err)
	}
	if got := r.free(); got != free-2 {
		t.Fatalf("a 2-byte write across two shared clusters took %d clusters, want 2", free-got)
	}
	copyB := bytes.Clone(data)
	copy(copyB[10*4096+4095:], "xy")
	r.expect(a, data, "source after the copy's write")
	r.expect(b, copyB, "copy after its write")
	for c := uint32(0); c < 64; c++ {
		fb, _, _ := r.flagsAt(b, c)
		fa, _, _ := r.flagsAt(a, c)
		private := c == 10 || c == 11
		if (fb&ondisk.ExtentRefcounted == 0) != private || fa&ondisk.ExtentRefcounted == 0 {
			t.Fatalf("cluster %d: copy flags %#x, source flags %#x", c, fb, fa)
		}
	}
	// The source holds the last reference to clusters 10 and 11 now: its
	// write there keeps the clusters and clears the flag.
	_, blk, _ := r.flagsAt(a, 10)
	free = r.free()
	if _, err := r.fs.Write(a, []byte("z"), 10*4096); err != nil {
		t.Fatal(err)
	}
	data[10*4096] = 'z'
	if f, nb, _ := r.flagsAt(a, 10); f != 0 || nb != blk || r.free() != free {
		t.Fatalf("last holder's write: flags %#x, block %d (was %d), %d clusters taken", f, nb, blk, free-r.free())
	}
	r.expect(a, data, "source after its write")
	r.expect(b, copyB, "copy after the source's write")
	r.finish()
}

// TestSharedZeroingAndRemoval truncates, punches and zeroes inside shared
// clusters: the file changed reads zeros, its partner keeps its bytes.
func TestSharedZeroingAndRemoval(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "16384", "--fs-features=local")
	const cs = 16384
	data := r.random(40 * cs)
	a, b := r.file("a", data), r.file("b", nil)
	if err := r.fs.Reflink(a, b); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(data)
	// Truncate into the middle of a shared cluster, then grow back: the
	// tail must read zeros in b, and a must not lose its bytes there.
	if err := r.fs.Truncate(b, 30*cs+100); err != nil {
		t.Fatal(err)
	}
	if err := r.fs.Truncate(b, 31*cs); err != nil {
		t.Fatal(err)
	}
	want = append(want[:30*cs+100], make([]byte, cs-100)...)
	// Punch with partial edges, zero a range with partial edges.
	if err := r.fs.Fallocate(b, inode.FallocPunchHole|inode.FallocKeepSize, 2*cs+5, 3*cs); err != nil {
		t.Fatal(err)
	}
	clear(want[2*cs+5 : 5*cs+5])
	if err := r.fs.Fallocate(b, inode.FallocZeroRange|inode.FallocKeepSize, 10*cs-7, 4*cs); err != nil {
		t.Fatal(err)
	}
	clear(want[10*cs-7 : 14*cs-7])
	r.expect(b, want, "copy after truncate, punch and zero range")
	r.expect(a, data, "source after its copy's truncate, punch and zero range")
	// The zeroed whole clusters stay shared, as unwritten: a write there
	// gets a private cluster without copying, and reads zeros around it.
	if f, _, _ := r.flagsAt(b, 11); f != ondisk.ExtentRefcounted|ondisk.ExtentUnwritten {
		t.Fatalf("zeroed shared cluster flags %#x", f)
	}
	if _, err := r.fs.Write(b, []byte("hello"), 11*cs+50); err != nil {
		t.Fatal(err)
	}
	copy(want[11*cs+50:], "hello")
	r.expect(b, want, "copy after a write into a zeroed shared cluster")
	r.expect(a, data, "source after that write")
	// Deleting the source drops its references; the copy's shared clusters
	// are its alone then.
	if err := r.fs.Unlink(inode.Ref{Ino: r.fs.RootBlkno()}, "a", false); err != nil {
		t.Fatal(err)
	}
	r.expect(b, want, "copy after the source's delete")
	r.finish()
}

// TestReflinkSourceForms: inline sources are copied; unwritten source
// extents and holes become holes in the destination.
func TestReflinkSourceForms(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "4096", "--fs-features=local")
	small := r.file("small", []byte("inline data stays inline"))
	dst := r.file("dst", nil)
	if err := r.fs.Reflink(small, dst); err != nil {
		t.Fatal(err)
	}
	r.expect(dst, []byte("inline data stays inline"), "reflink of an inline file")
	if d, _ := r.fs.Stat(small); d.DynFeatures&ondisk.DynHasRefcount != 0 {
		t.Fatal("an inline source got a refcount tree")
	}

	sparse := r.file("sparse", nil)
	if _, err := r.fs.Write(sparse, r.random(4096), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.fs.Write(sparse, r.random(4096), 20*4096); err != nil {
		t.Fatal(err)
	}
	if err := r.fs.Fallocate(sparse, inode.FallocKeepSize, 5*4096, 4*4096); err != nil {
		t.Fatal(err)
	}
	want := r.read(sparse)
	copyIno := r.file("copy", nil)
	if err := r.fs.Reflink(sparse, copyIno); err != nil {
		t.Fatal(err)
	}
	r.expect(copyIno, want, "reflink of a sparse file")
	for _, c := range []uint32{1, 5, 6, 19} {
		if _, _, ok := r.flagsAt(copyIno, c); ok {
			t.Errorf("cluster %d of the copy is mapped; the source has a hole or unwritten extent there", c)
		}
	}
	for _, c := range []uint32{0, 20} {
		if f, _, ok := r.flagsAt(copyIno, c); !ok || f != ondisk.ExtentRefcounted {
			t.Errorf("cluster %d of the copy: mapped %v flags %#x, want shared", c, ok, f)
		}
	}
	r.finish()
}

// TestCopyRangeSharesTheMiddle: copy_file_range with unaligned ends at the
// same offset within a cluster shares the whole clusters between them and
// copies the edges; different offsets within a cluster copy everything.
func TestCopyRangeSharesTheMiddle(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "16384", "--fs-features=local")
	const cs = 16384
	data := r.random(20 * cs)
	a := r.file("a", data)
	for _, c := range []struct {
		name           string
		srcOff, dstOff int64
		n              int64
		shared         []uint32 // destination clusters that must be shared
		private        []uint32
	}{
		{"same phase", 3*cs + 100, 7*cs + 100, 6 * cs, []uint32{8, 9, 10, 11, 12}, []uint32{7, 13}},
		{"other phase", 3 * cs, 7*cs + 4096, 6 * cs, nil, []uint32{7, 8, 9, 10, 11, 12, 13}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := r.file(fmt.Sprintf("dst-%d", c.dstOff), nil)
			n, err := r.fs.CopyRange(a, c.srcOff, dst, c.dstOff, c.n)
			if err != nil || n != c.n {
				t.Fatalf("copy range: %d, %v", n, err)
			}
			want := append(make([]byte, c.dstOff), data[c.srcOff:c.srcOff+c.n]...)
			r.expect(dst, want, c.name)
			for _, cl := range c.shared {
				if f, _, ok := r.flagsAt(dst, cl); !ok || f&ondisk.ExtentRefcounted == 0 {
					t.Errorf("cluster %d: mapped %v flags %#x, want shared", cl, ok, f)
				}
			}
			for _, cl := range c.private {
				if f, _, ok := r.flagsAt(dst, cl); !ok || f&ondisk.ExtentRefcounted != 0 {
					t.Errorf("cluster %d: mapped %v flags %#x, want a private copy", cl, ok, f)
				}
			}
		})
	}
	r.finish()
}
