package inspect

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// TestKernelWrittenDeepExtentTree: the read path handles extent trees of
// any depth, so it is checked on one the kernel grew to depth 2. With
// 512-byte blocks an inode holds 19 extent records and an extent block
// 27, so 700 separate extents (4 KiB written every 8 KiB) need two levels
// of extent blocks. o2go must read the file as the kernel wrote it, and
// show the tree (stat, frag, bmap, every extent block) as debugfs.ocfs2
// does.
func TestKernelWrittenDeepExtentTree(t *testing.T) {
	testutil.Long(t)
	realtools.Require(t)
	kernelvm.Require(t)
	img := realtools.MkfsImage(t, 200<<20, "-b", "512", "-C", "4096", "-N", "2", "--fs-features=local")
	share := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(share, "guesttree"), "o2go/internal/testutil/guesttree")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building guesttree: %v\n%s", err, out)
	}
	kernelvm.RunT(t, kernelvm.Options{Image: img, Share: share}, `set -e
"$KERNELVM_SHARE/guesttree" fragment deep 700
sha256sum deep >"$KERNELVM_SHARE/sum"
`)
	sum, err := os.ReadFile(filepath.Join(share, "sum"))
	if err != nil {
		t.Fatal(err)
	}

	st := compareDebug(t, img, "stat /deep")
	m := regexp.MustCompile(`Tree Depth: (\d+)`).FindStringSubmatch(st)
	if m == nil {
		t.Fatalf("stat /deep shows no extent tree:\n%s", st)
	}
	if depth, _ := strconv.Atoi(m[1]); depth < 2 {
		t.Fatalf("the kernel built a tree of depth %d: the test does not reach depth 2", depth)
	}
	compareDebug(t, img, "frag /deep")
	for _, lblk := range []int{0, 7, 8, 5000, 11191, 11192} {
		compareDebug(t, img, fmt.Sprintf("bmap /deep %d", lblk))
	}
	// Every extent block stat lists: the interior ones and the leaves.
	n := 0
	for _, b := range regexp.MustCompile(`(?m)^\tBlknum: (\d+)   Next Leaf:`).FindAllStringSubmatch(st, -1) {
		compareDebug(t, img, "extent <"+b[1]+">")
		n++
	}
	if n < 2 {
		t.Errorf("stat /deep lists %d extent blocks, want the leaves and the level above", n)
	}
	compareDump(t, img, "/deep", t.TempDir())

	var out, errOut strings.Builder
	d := NewDebugger(&out, &errOut)
	if err := d.Open(img, 0); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	blk, err := d.vol.FS.Resolve("/deep", true)
	if err != nil {
		t.Fatal(err)
	}
	ino, err := d.vol.FS.Inode(blk)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := copyFileData(d.vol, ino, h, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%x", h.Sum(nil)), strings.Fields(string(sum))[0]; got != want {
		t.Errorf("/deep reads with sha256 %s, the kernel's is %s", got, want)
	}
}
