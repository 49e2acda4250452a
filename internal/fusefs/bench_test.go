package fusefs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// The benchmarks of issue 4 (acceptance 6). Each compares an o2go mount
// with go-fuse's loopback file system over a directory of the host, in the
// same run: both served by this test binary, mounted with the same FUSE
// options (MaxWrite, read-ahead, one-second entry and attribute timeouts,
// default_permissions), the o2go image and the loopback's directory in the
// same temporary directory, on the same disk. Data goes through O_DIRECT on
// both sides (the loopback passes the flag to its host file; o2go writes
// its image O_DIRECT anyway), so neither the FUSE page cache nor the host's
// page cache serves a read: each figure is what reaches the disk.
//
// On Linux 6.9 and later, run as root, go-fuse's loopback hands each open
// file to the kernel as a FUSE passthrough backing file: reads and writes
// then go from the kernel to the host file without reaching the server at
// all. o2go cannot do that (a file's bytes lie in the image at its extents'
// places, not at its own offsets), so the goals compare the data paths of
// two FUSE servers: the baseline loopback runs with passthrough turned
// off. The sequential benchmark also reports the passthrough loopback.

// benchMount is a FUSE mount a benchmark runs against.
type benchMount struct {
	name    string
	dir     string // where the benchmark works
	unmount func()
	remount func() // unmount and mount again: the kernel's caches go
}

// noPassthrough is a raw file system whose opened files never become FUSE
// passthrough files: their reads and writes reach the server.
type noPassthrough struct{ fuse.RawFileSystem }

func (n noPassthrough) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := n.RawFileSystem.Open(cancel, in, out)
	out.OpenFlags &^= fuse.FOPEN_PASSTHROUGH
	out.BackingID = 0
	return st
}

func (n noPassthrough) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	st := n.RawFileSystem.Create(cancel, in, name, out)
	out.OpenFlags &^= fuse.FOPEN_PASSTHROUGH
	out.BackingID = 0
	return st
}

// mountLoopbackBench mounts go-fuse's loopback file system over host
// directory dir the way Mount mounts o2go; passthrough keeps go-fuse's
// FUSE passthrough of open files (see above).
func mountLoopbackBench(t *testing.T, dir string, passthrough bool) *benchMount {
	t.Helper()
	mnt := t.TempDir()
	var srv *fuse.Server
	mount := func() {
		root, err := fs.NewLoopbackRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		sec := time.Second
		raw := fs.NewNodeFS(root, &fs.Options{EntryTimeout: &sec, AttrTimeout: &sec})
		if !passthrough {
			raw = noPassthrough{raw}
		}
		srv, err = fuse.NewServer(raw, mnt, &fuse.MountOptions{
			FsName: dir, Name: "loopback", AllowOther: os.Geteuid() == 0,
			MaxWrite: MaxWrite, MaxReadAhead: MaxWrite, Options: []string{"default_permissions"},
		})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve()
		if err := srv.WaitMount(); err != nil {
			t.Fatal(err)
		}
	}
	mount()
	unmount := func() {
		if srv != nil {
			if err := srv.Unmount(); err != nil {
				t.Fatalf("unmounting the loopback: %v", err)
			}
			srv = nil
		}
	}
	t.Cleanup(func() {
		if srv != nil {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	name := "loopback"
	if passthrough {
		name = "loopback+passthrough"
	}
	return &benchMount{name: name, dir: mnt, unmount: unmount, remount: func() { unmount(); mount() }}
}

// mountO2goBench makes a size-byte volume, mounts it through a Session in
// this process, and returns the mount and the image.
func mountO2goBench(t *testing.T, size int64, options string) (*benchMount, string) {
	t.Helper()
	img := realtools.MkfsImage(t, size, defaultMkfs...)
	m := &benchMount{name: "o2go"}
	var unmount func()
	m.dir, unmount = mountImage(t, img, options)
	m.unmount = func() {
		if unmount != nil {
			unmount()
			unmount = nil
		}
	}
	m.remount = func() {
		m.unmount()
		m.dir, unmount = mountImage(t, img, options)
	}
	return m, img
}

func benchSetup(t *testing.T) {
	t.Helper()
	testutil.Bench(t)
	realtools.Require(t)
	testutil.RequireFUSE(t)
}

func mibPerSec(bytes int64, d time.Duration) float64 {
	return float64(bytes) / (1 << 20) / d.Seconds()
}

// TestBenchSequentialIO writes then reads 1 GiB sequentially (1 MiB
// O_DIRECT requests, fsync after the writes) on an o2go mount, on the
// loopback and on the loopback with passthrough, in turn, three rounds;
// each mount's best round counts. Goal: o2go at least 0.70 of the
// loopback's throughput, for each; the passthrough loopback is reported.
func TestBenchSequentialIO(t *testing.T) {
	benchSetup(t)
	const size = 1 << 30
	o2go, _ := mountO2goBench(t, 3<<30, "")
	loop := mountLoopbackBench(t, t.TempDir(), false)
	pass := mountLoopbackBench(t, t.TempDir(), true)
	buf := testutil.AlignedBuffer(MaxWrite)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	var bestW, bestR [3]time.Duration
	for round := range 3 {
		for i, m := range []*benchMount{o2go, loop, pass} {
			p := filepath.Join(m.dir, fmt.Sprintf("seq%d", round))
			w, err := testutil.SeqWriteDirect(p, buf, size)
			if err != nil {
				t.Fatalf("%s: write: %v", m.name, err)
			}
			r, n, err := testutil.SeqReadDirect(p, buf)
			if err != nil || n != size {
				t.Fatalf("%s: read %d bytes: %v", m.name, n, err)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			t.Logf("round %d, %s: write %.0f MiB/s, read %.0f MiB/s", round, m.name, mibPerSec(size, w), mibPerSec(size, r))
			if bestW[i] == 0 || w < bestW[i] {
				bestW[i] = w
			}
			if bestR[i] == 0 || r < bestR[i] {
				bestR[i] = r
			}
		}
	}
	for _, c := range []struct {
		what string
		best [3]time.Duration
	}{{"write", bestW}, {"read", bestR}} {
		ratio := c.best[1].Seconds() / c.best[0].Seconds()
		testutil.BenchResult{
			Name:     "fusefs: sequential " + c.what + " of 1 GiB (1 MiB O_DIRECT requests, best of 3)",
			O2go:     fmt.Sprintf("%.0f MiB/s", mibPerSec(size, c.best[0])),
			Baseline: fmt.Sprintf("%.0f MiB/s (go-fuse loopback, data through its server, same disk)", mibPerSec(size, c.best[1])),
			Ratio:    ratio, Goal: ">= 0.70", Met: ratio >= 0.70,
		}.Report(t)
		ratio = c.best[2].Seconds() / c.best[0].Seconds()
		testutil.BenchResult{
			Name:     "fusefs: sequential " + c.what + " of 1 GiB vs the loopback with kernel passthrough",
			O2go:     fmt.Sprintf("%.0f MiB/s", mibPerSec(size, c.best[0])),
			Baseline: fmt.Sprintf("%.0f MiB/s (go-fuse loopback, FUSE passthrough: the kernel reads the host file itself)", mibPerSec(size, c.best[2])),
			Ratio:    ratio, Goal: "none (reported)", Met: true,
		}.Report(t)
	}
}

// createStatUnlink creates n empty files in a new directory under root,
// stats each, unlinks each, and returns the time of the three phases.
func createStatUnlink(root string, n int) (time.Duration, error) {
	dir := filepath.Join(root, fmt.Sprintf("csu-%d", time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = filepath.Join(dir, fmt.Sprintf("file-%06d", i))
	}
	start := time.Now()
	for _, p := range names {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return 0, err
		}
		if err := f.Close(); err != nil {
			return 0, err
		}
	}
	var st syscall.Stat_t
	for _, p := range names {
		if err := syscall.Lstat(p, &st); err != nil {
			return 0, err
		}
	}
	for _, p := range names {
		if err := os.Remove(p); err != nil {
			return 0, err
		}
	}
	d := time.Since(start)
	return d, os.Remove(dir)
}

// TestBenchCreateStatUnlink creates, stats and unlinks 10,000 files on an
// o2go mount and on the loopback, three rounds alternating; each side's
// best round counts. Goal: o2go at least 0.50 of the loopback's rate.
func TestBenchCreateStatUnlink(t *testing.T) {
	benchSetup(t)
	const n = 10000
	o2go, _ := mountO2goBench(t, 1<<30, "")
	loop := mountLoopbackBench(t, t.TempDir(), false)
	var best [2]time.Duration
	for round := range 3 {
		for i, m := range []*benchMount{o2go, loop} {
			d, err := createStatUnlink(m.dir, n)
			if err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
			t.Logf("round %d, %s: %v (%.0f files/s)", round, m.name, d.Round(time.Millisecond), n/d.Seconds())
			if best[i] == 0 || d < best[i] {
				best[i] = d
			}
		}
	}
	ratio := best[1].Seconds() / best[0].Seconds()
	testutil.BenchResult{
		Name:     "fusefs: create+stat+unlink of 10,000 files (best of 3)",
		O2go:     fmt.Sprintf("%.0f files/s", n/best[0].Seconds()),
		Baseline: fmt.Sprintf("%.0f files/s (go-fuse loopback, same disk)", n/best[1].Seconds()),
		Ratio:    ratio, Goal: ">= 0.50", Met: ratio >= 0.50,
	}.Report(t)
}

// TestBenchListLarge times `ls -l` (a readdir and an lstat of each name,
// plus what ls reads of each for ACLs) of a directory of 100,000 empty
// files on an o2go mount and on the loopback, each remounted after the
// files were made (the kernel's caches of the mount empty; the host's
// caches of the loopback's directory stay warm, which favours the
// loopback). Best of three runs per side; no goal, the ratio is reported.
func TestBenchListLarge(t *testing.T) {
	benchSetup(t)
	testutil.RequireTools(t, "ls")
	const n = 100000
	o2go, _ := mountO2goBench(t, 2<<30, "")
	loop := mountLoopbackBench(t, t.TempDir(), false)
	var best [2]time.Duration
	for i, m := range []*benchMount{o2go, loop} {
		start := time.Now()
		if err := os.Mkdir(filepath.Join(m.dir, "many"), 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range n {
			f, err := os.OpenFile(filepath.Join(m.dir, "many", fmt.Sprintf("entry-%06d", j)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
			f.Close()
		}
		t.Logf("%s: %d files made in %v", m.name, n, time.Since(start).Round(time.Millisecond))
		m.remount()
		for run := range 3 {
			start := time.Now()
			out, err := exec.Command("ls", "-l", filepath.Join(m.dir, "many")).Output()
			d := time.Since(start)
			if err != nil {
				t.Fatalf("%s: ls -l: %v", m.name, err)
			}
			if lines := countLines(out); lines != n+1 { // "total" first
				t.Fatalf("%s: ls -l printed %d lines, want %d", m.name, lines, n+1)
			}
			t.Logf("%s: ls -l run %d: %v", m.name, run, d.Round(time.Millisecond))
			if best[i] == 0 || d < best[i] {
				best[i] = d
			}
		}
	}
	ratio := best[1].Seconds() / best[0].Seconds()
	testutil.BenchResult{
		Name:     "fusefs: ls -l of a 100,000-entry directory (best of 3 after a remount)",
		O2go:     fmt.Sprintf("%.2f s", best[0].Seconds()),
		Baseline: fmt.Sprintf("%.2f s (go-fuse loopback, same disk)", best[1].Seconds()),
		Ratio:    ratio, Goal: "none (reported)", Met: true,
	}.Report(t)
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// roundRobinExtents writes the ocfs2(7) allocation-reservation example on
// a fresh volume mounted with options — four files extended round-robin,
// 100 4 KiB writes each — and returns each file's extent count, read back
// with o2go's read path after the unmount.
func roundRobinExtents(t *testing.T, options string) [4]int {
	t.Helper()
	m, img := mountO2goBench(t, 1<<30, options)
	var files [4]*os.File
	for i := range files {
		f, err := os.Create(filepath.Join(m.dir, fmt.Sprintf("rr%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		files[i] = f
	}
	buf := make([]byte, 4096)
	for w := range 100 {
		for i, f := range files {
			buf[0], buf[1] = byte(i), byte(w)
			if _, err := f.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range files {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	m.unmount()
	realtools.RequireFsckClean(t, img)
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var counts [4]int
	for i := range counts {
		ino, err := v.FS.Resolve(fmt.Sprintf("/rr%d", i), true)
		if err != nil {
			t.Fatal(err)
		}
		d, err := v.FS.Inode(ino)
		if err != nil {
			t.Fatal(err)
		}
		if d.Size != 100*4096 {
			t.Fatalf("rr%d: %d bytes, want %d", i, d.Size, 100*4096)
		}
		err = extent.Walk(v.Cache, d.Extents, fmt.Sprintf("inode %d", ino), func(ondisk.ExtentRec) error {
			counts[i]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return counts
}

// TestBenchAllocationReservation is ocfs2(7)'s allocation-reservation
// example through the mount: four files extended round-robin with 100
// 4 KiB writes each. Goal: at most 10 extents per file, where an allocator
// without reservations gives each write its own extent (100); the same
// workload with resv_level=0 is measured too.
func TestBenchAllocationReservation(t *testing.T) {
	benchSetup(t)
	with := roundRobinExtents(t, "")
	without := roundRobinExtents(t, "resv_level=0")
	worst := max(with[0], with[1], with[2], with[3])
	t.Logf("extents per file: %v with reservations, %v with resv_level=0", with, without)
	testutil.BenchResult{
		Name:     "fusefs: allocation reservation, 4 files x 100 round-robin 4K writes (extents per file, worst)",
		O2go:     fmt.Sprintf("%d extents (files: %v)", worst, with),
		Baseline: fmt.Sprintf("100 extents (one per write, no reservation; o2go with resv_level=0: %v)", without),
		Ratio:    float64(worst) / 100, Goal: "<= 10 extents", Met: worst <= 10,
	}.Report(t)
}
