package fusefs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// sharedClusters counts the clusters of path (on the unmounted image) that
// are shared through a refcount tree.
func sharedClusters(t *testing.T, v *volume.Volume, path string) uint64 {
	t.Helper()
	ino, err := v.FS.Resolve(path, false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.FS.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	if d.Extents == nil {
		return 0
	}
	if err := extent.Walk(v.Cache, d.Extents, path, func(r ondisk.ExtentRec) error {
		if r.Flags&ondisk.ExtentRefcounted != 0 {
			n += uint64(r.Clusters)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func reflinkFree(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bfree
}

// TestReflinkThroughMount copies files on an o2go mount with cp and with
// copy_file_range(2): both share the source's clusters (df hardly moves),
// later writes copy on write, and the volume passes fsck.ocfs2 -fn.
func TestReflinkThroughMount(t *testing.T) {
	realtools.Require(t)
	testutil.RequireTools(t, "cp")
	img := realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local")
	mnt, unmount := mountImage(t, img, "")
	rng := rand.New(rand.NewPCG(3, 3))
	data := make([]byte, 8<<20+1000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	src := filepath.Join(mnt, "src")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	free := reflinkFree(t, mnt)

	// cp --reflink=always asks for FICLONE, which Linux answers in the VFS
	// for FUSE (no remap_file_range there): it fails before o2go hears of
	// it. Log what this kernel does; the shared copy comes from plain cp.
	out, err := exec.Command("cp", "--reflink=always", src, filepath.Join(mnt, "always")).CombinedOutput()
	t.Logf("cp --reflink=always on FUSE: %v %s", err, strings.TrimSpace(string(out)))
	if err == nil {
		t.Log("this kernel forwards FICLONE to FUSE")
	}
	os.Remove(filepath.Join(mnt, "always"))

	// Plain cp (--reflink=auto): FICLONE fails, copy_file_range shares.
	if out, err := exec.Command("cp", src, filepath.Join(mnt, "cp")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	// copy_file_range by hand, unaligned ends at the same offset within a
	// cluster: the middle is shared, the edges copied.
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	outF, err := os.Create(filepath.Join(mnt, "cfr"))
	if err != nil {
		t.Fatal(err)
	}
	offIn, offOut := int64(1000), int64(1000)
	for left := len(data) - 1000; left > 0; {
		n, err := unix.CopyFileRange(int(in.Fd()), &offIn, int(outF.Fd()), &offOut, left, 0)
		if err != nil {
			t.Fatalf("copy_file_range: %v", err)
		}
		if n == 0 {
			t.Fatalf("copy_file_range stopped with %d bytes left", left)
		}
		left -= n
	}
	if err := outF.Close(); err != nil {
		t.Fatal(err)
	}
	in.Close()
	used := free - reflinkFree(t, mnt)
	if used > 16 { // the two copies' edge clusters and tree blocks, not 2 x 2049 clusters
		t.Fatalf("two 8 MiB copies took %d clusters: not shared", used)
	}
	for name, want := range map[string][]byte{"src": data, "cp": data, "cfr": append(make([]byte, 1000), data[1000:]...)} {
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes (%v), want %d equal bytes", name, len(got), err, len(want))
		}
	}
	// Copy on write through the mount, both directions.
	f, err := os.OpenFile(filepath.Join(mnt, "cp"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("copy on write"), 4<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f, err = os.OpenFile(src, os.O_WRONLY, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("source side"), 5<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cpWant := bytes.Clone(data)
	copy(cpWant[4<<20:], "copy on write")
	srcWant := bytes.Clone(data)
	copy(srcWant[5<<20:], "source side")
	for name, want := range map[string][]byte{"src": srcWant, "cp": cpWant} {
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s after copy on write: %d bytes (%v)", name, len(got), err)
		}
	}
	unmount()
	realtools.RequireFsckClean(t, img)
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if n := sharedClusters(t, v, "/cp"); n < 2000 {
		t.Errorf("/cp shares %d clusters, want nearly all 2049", n)
	}
	if n := sharedClusters(t, v, "/cfr"); n < 2000 {
		t.Errorf("/cfr shares %d clusters, want nearly all 2049", n)
	}
}
