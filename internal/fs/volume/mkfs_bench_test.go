package volume

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// TestBenchMkfs16G times o2go mkfs of a 16 GiB image file against
// mkfs.ocfs2 with the same (default) options, alternating the two, three
// runs each on fresh sparse images, and compares the medians. Goal: o2go
// takes at most as long.
func TestBenchMkfs16G(t *testing.T) {
	testutil.Bench(t)
	realtools.Require(t)
	const size = 16 << 30
	dir := t.TempDir()
	fresh := func() string {
		img := filepath.Join(dir, "vol.img")
		os.Remove(img)
		if err := truncateFile(img, size); err != nil {
			t.Fatal(err)
		}
		return img
	}
	var ref, o2 []time.Duration
	for i := 0; i < 3; i++ {
		img := fresh()
		start := time.Now()
		if out, err := exec.Command("mkfs.ocfs2", "-q", "-F", "-x", "--nodiscard", img).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ocfs2: %v\n%s", err, out)
		}
		ref = append(ref, time.Since(start))

		img = fresh()
		start = time.Now()
		if _, err := Mkfs(img, MkfsOptions{Quiet: true, NoPrompt: true, NoDiscard: true}); err != nil {
			t.Fatal(err)
		}
		o2 = append(o2, time.Since(start))
	}
	os.Remove(filepath.Join(dir, "vol.img"))
	median := func(d []time.Duration) time.Duration {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	mo, mr := median(o2), median(ref)
	ratio := float64(mo) / float64(mr)
	testutil.BenchResult{
		Name:     "mkfs 16 GiB image (time, o2go / mkfs.ocfs2)",
		O2go:     fmt.Sprintf("%.3f s", mo.Seconds()),
		Baseline: fmt.Sprintf("%.3f s (mkfs.ocfs2 1.8.7, same options)", mr.Seconds()),
		Ratio:    ratio,
		Goal:     "<= 1.00",
		Met:      ratio <= 1.0,
	}.Report(t)
}
