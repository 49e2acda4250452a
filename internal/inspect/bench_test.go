package inspect

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"o2go/internal/fs/volume"
	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// TestBenchDumpVsDD measures `o2go debug -R "dump PATH /dev/null"` on two
// 1 GiB files the kernel wrote (zeros and random bytes) against dd reading
// the same extents of the image with O_DIRECT into /dev/null, in the same
// run. Both sides bypass the page cache (o2go opens images O_DIRECT), so
// the cache the kernel VM left behind does not favour either. The dump runs
// as an operator runs it: the o2go binary, built for the test, started
// once per dump; dd runs once per extent (a handful for these files). Each
// side's best of three rounds counts.
func TestBenchDumpVsDD(t *testing.T) {
	testutil.Bench(t)
	realtools.Require(t)
	kernelvm.Require(t)
	testutil.RequireTools(t, "dd")
	bin := filepath.Join(t.TempDir(), "o2go")
	if out, err := exec.Command("go", "build", "-o", bin, "o2go/cmd/o2go").CombinedOutput(); err != nil {
		t.Fatalf("building o2go: %v\n%s", err, out)
	}
	img := realtools.MkfsImage(t, 2600<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local")
	kernelvm.RunT(t, kernelvm.Options{Image: img, Timeout: 30 * time.Minute},
		"dd if=/dev/zero of=big bs=1M count=1024 status=none\n"+
			"dd if=/dev/urandom of=random bs=1M count=1024 status=none\nsync\n")

	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	type extentRun struct{ off, length int64 }
	runs := map[string][]extentRun{}
	for _, name := range []string{"big", "random"} {
		blk, err := v.FS.Resolve("/"+name, true)
		if err != nil {
			t.Fatal(err)
		}
		ino, err := v.FS.Inode(blk)
		if err != nil {
			t.Fatal(err)
		}
		segs, err := fileSegments(v, ino)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			if s.devOff < 0 {
				t.Fatalf("/%s has a hole or unwritten extent at %d: not what dd wrote", name, s.fileOff)
			}
			runs[name] = append(runs[name], extentRun{s.devOff, s.length})
		}
	}
	v.Close()

	const size = int64(1 << 30)
	var o2goBest, ddBest [2]time.Duration
	for round := 0; round < 3; round++ {
		for i, name := range []string{"big", "random"} {
			start := time.Now()
			for _, r := range runs[name] {
				cmd := exec.Command("dd", "if="+img, "of=/dev/null", "iflag=direct,skip_bytes,count_bytes", "bs=4M",
					fmt.Sprintf("skip=%d", r.off), fmt.Sprintf("count=%d", r.length), "status=none")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("dd: %v\n%s", err, out)
				}
			}
			if d := time.Since(start); ddBest[i] == 0 || d < ddBest[i] {
				ddBest[i] = d
			}

			var errOut bytes.Buffer
			cmd := exec.Command(bin, "debug", "-R", "dump /"+name+" /dev/null", img)
			cmd.Stderr = &errOut
			start = time.Now()
			if err := cmd.Run(); err != nil || errOut.Len() > 0 {
				t.Fatalf("o2go debug -R \"dump /%s /dev/null\": %v: %s", name, err, errOut.String())
			}
			if el := time.Since(start); o2goBest[i] == 0 || el < o2goBest[i] {
				o2goBest[i] = el
			}
		}
	}
	mibps := func(d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }
	var detail []string
	for i, name := range []string{"big (zeros)", "random"} {
		detail = append(detail, fmt.Sprintf("%s: o2go %.0f MiB/s, dd %.0f MiB/s (%d extents)", name, mibps(o2goBest[i]), mibps(ddBest[i]), len(runs[[]string{"big", "random"}[i]])))
	}
	t.Log(strings.Join(detail, "; "))
	o2go, dd := o2goBest[0]+o2goBest[1], ddBest[0]+ddBest[1]
	ratio := dd.Seconds() / o2go.Seconds()
	testutil.BenchResult{
		Name:     "debug dump of 2 x 1 GiB files vs dd iflag=direct",
		O2go:     fmt.Sprintf("%.0f MiB/s", float64(2*size)/(1<<20)/o2go.Seconds()),
		Baseline: fmt.Sprintf("%.0f MiB/s (dd iflag=direct bs=4M over the same extents)", float64(2*size)/(1<<20)/dd.Seconds()),
		Ratio:    ratio,
		Goal:     ">= 0.80",
		Met:      ratio >= 0.80,
	}.Report(t)
}
