package fsck

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"syscall"
	"testing"
	"time"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// populateMany makes dirs directories of perDir files each through o2go's
// write engine (the mount o2go serves over FUSE, without the FUSE hop);
// every tenth file holds a little data.
func populateMany(t testing.TB, img string, dirs, perDir int) {
	t.Helper()
	m, err := volume.Mount(img, volume.DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	fs := m.FS
	data := make([]byte, 6000)
	for d := 0; d < dirs; d++ {
		dir, err := fs.Create(inode.Ref{Ino: fs.RootBlkno()}, fmt.Sprintf("d%03d", d), inode.NewNode{Mode: syscall.S_IFDIR | 0o755}, inode.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < perDir; i++ {
			f, err := fs.Create(inode.Ref{Ino: dir}, fmt.Sprintf("file-%05d", i), inode.NewNode{Mode: syscall.S_IFREG | 0o644}, inode.Caller{})
			if err != nil {
				t.Fatal(err)
			}
			if i%10 == 0 {
				if _, err := fs.Write(f, data, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// timeIt runs fn n times and returns the median duration.
func timeIt(n int, fn func()) time.Duration {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		fn()
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// TestBenchFsck times o2go fsck -fn against fsck.ocfs2 -fn on a volume of
// 100,000 files. The baseline is the faster of fsck.ocfs2 as run by an
// operator (as root it mlocks an I/O cache of a fifth of free memory) and
// fsck.ocfs2 with that cache limited (the test oracle's way), so the
// ratio does not profit from fsck.ocfs2's start-up cost.
func TestBenchFsck(t *testing.T) {
	testutil.Bench(t)
	realtools.Require(t)
	img := realtools.MkfsImage(t, 4<<30, "-b", "4096", "-C", "4096", "-N", "2", "-J", "size=64M", "--fs-features=local")
	populateMany(t, img, 100, 1000)
	realtools.RequireFsckClean(t, img)
	o2 := timeIt(3, func() {
		if res := Run(Options{Device: img, Answer: AnswerNo, Force: true, Out: io.Discard}); res.ExitCode != 0 {
			t.Fatalf("o2go fsck -fn: exit %d", res.ExitCode)
		}
	})
	plain := timeIt(3, func() {
		if out, err := exec.Command("fsck.ocfs2", "-fn", img).CombinedOutput(); err != nil {
			t.Fatalf("fsck.ocfs2 -fn: %v\n%s", err, out)
		}
	})
	limited := timeIt(3, func() { realtools.Fsck(t, img, "-fn") })
	base := min(plain, limited)
	ratio := float64(o2) / float64(base)
	testutil.BenchResult{
		Name:     "fsck -fn, 100,000 files (4 GiB, 4K/4K)",
		O2go:     o2.Round(time.Millisecond).String(),
		Baseline: fmt.Sprintf("fsck.ocfs2 -fn %v (plain %v, small cache %v)", base.Round(time.Millisecond), plain.Round(time.Millisecond), limited.Round(time.Millisecond)),
		Ratio:    ratio,
		Goal:     "<= 1.00",
		Met:      ratio <= 1.0,
	}.Report(t)
	_ = os.Getpid
}
