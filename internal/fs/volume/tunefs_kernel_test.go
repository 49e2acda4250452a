package volume

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// fileSums is sha256 of every regular file o2go reads on img, by path
// ("./dir/name", as find prints it in the guest).
func fileSums(t *testing.T, img string) map[string]string {
	t.Helper()
	v, err := Open(img, OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	out := map[string]string{}
	var walk func(dir uint64, path string)
	walk = func(dirIno uint64, path string) {
		d, err := v.FS.Dir(dirIno)
		if err != nil {
			t.Fatal(err)
		}
		names, err := d.Names()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if path == "." && n == "lost+found" {
				continue
			}
			ino, err := v.FS.Lookup(dirIno, n)
			if err != nil {
				t.Fatal(err)
			}
			di, err := v.FS.Inode(ino)
			if err != nil {
				t.Fatal(err)
			}
			p := path + "/" + n
			switch {
			case di.IsDir():
				walk(ino, p)
			case di.IsReg():
				h := sha256.New()
				buf := make([]byte, 1<<20)
				for off := int64(0); off < int64(di.Size); {
					k, err := v.FS.ReadAt(di, buf, off)
					if k == 0 && err != nil {
						t.Fatalf("%s: %v", p, err)
					}
					h.Write(buf[:k])
					off += int64(k)
				}
				out[p] = hex.EncodeToString(h.Sum(nil))
			}
		}
	}
	walk(v.SB.RootBlkno, ".")
	return out
}

// sha256Lines reads sha256sum output.
func sha256Lines(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("bad sha256sum line %q", sc.Text())
		}
		out[path] = sum
	}
	return out
}

func compareSums(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if len(want) < 10 {
		t.Errorf("%s: only %d files to compare", what, len(want))
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		if want[k] != got[k] {
			if bad++; bad <= 10 {
				t.Errorf("%s: %s: want %.16s, got %.16s", what, k, want[k], got[k])
			}
		}
	}
}

// kernelCheckScript verifies the files o2go wrote and tunefs kept, then
// writes new ones through the kernel, whose sums go to the share.
const kernelCheckScript = `set -e
find . -path ./lost+found -prune -o -type f -print0 | xargs -0 sha256sum > "$KERNELVM_SHARE/before"
getfattr -n user.color --only-values big > "$KERNELVM_SHARE/xattr"
mkdir -p kernel/sub
dd if=/dev/urandom of=kernel/data bs=1M count=6 2>/dev/null
i=0
while [ $i -lt 200 ]; do echo "kernel $i" > kernel/sub/name-$i; i=$((i+1)); done
setfattr -n user.from -v kernel kernel/data
echo appended >> big
rm dir/entry-with-a-long-name-0007
cp --reflink=always big kernel/clone 2>/dev/null || cp big kernel/clone
fallocate -l 8M kernel/prealloc 2>/dev/null || true
sync
find . -path ./lost+found -prune -o -type f -print0 | xargs -0 sha256sum > "$KERNELVM_SHARE/after"
`

// TestTunefsVolumesWorkWithKernel checks volumes o2go tunefs changed with
// the Linux OCFS2 driver, in two VMs run side by side: a populated local
// volume after a chain of operations (label, UUID, four slots, 16 MiB
// journals, inline data off, metaecc on, the index dropped and rebuilt,
// sparse and unwritten off and on again), and a volume grown with -S past
// its first backup superblock. The kernel must mount each read-write, read
// every file as o2go does, write and delete files, and unmount cleanly;
// the result must pass fsck.ocfs2 -fn and read back through o2go as the
// kernel wrote it.
func TestTunefsVolumesWorkWithKernel(t *testing.T) {
	kernelvm.Require(t)
	realtools.Require(t)
	fastFsck(t)

	chained := realtools.MkfsImage(t, 700<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	populate(t, chained)
	for _, o := range []TunefsOptions{
		{SetLabel: true, Label: "tuned"},
		{ResetUUID: true},
		{Slots: 4},
		{JournalSize: 16 << 20},
		{Features: "noinline-data"},
		{Features: "metaecc"},
		{Features: "noindexed-dirs"},
		{Features: "indexed-dirs"},
		{Features: "nosparse"},
		{Features: "sparse,unwritten"},
	} {
		tunefsO2go(t, chained, o)
	}
	requireClean(t, chained, "the chain of operations")

	grown := realtools.MkfsImage(t, 900<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	populate(t, grown)
	if err := os.Truncate(grown, 1300<<20); err != nil {
		t.Fatal(err)
	}
	tunefsO2go(t, grown, TunefsOptions{Resize: true})
	requireClean(t, grown, "-S")

	images := []string{chained, grown}
	wants := make([]map[string]string, len(images))
	shares := make([]string, len(images))
	for i, img := range images {
		wants[i] = fileSums(t, img)
		shares[i] = t.TempDir()
	}
	var wg sync.WaitGroup
	results := make([]*kernelvm.Result, len(images))
	errs := make([]error, len(images))
	for i := range images {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], errs[i] = kernelvm.Run(context.Background(), kernelvm.Options{Image: images[i], Share: shares[i], Timeout: 8 * time.Minute}, kernelCheckScript)
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		switch {
		case errs[i] != nil:
			t.Errorf("image %d: %v", i, errs[i])
		case r.ScriptExit != 0 || len(r.KernelErrors) > 0:
			t.Errorf("image %d: script exit %d, kernel errors %q\n%s%s", i, r.ScriptExit, r.KernelErrors, r.Stdout, r.Stderr)
		}
	}
	if t.Failed() {
		return
	}
	for i, img := range images {
		name := []string{"chained", "grown"}[i]
		before, err := os.ReadFile(filepath.Join(shares[i], "before"))
		if err != nil {
			t.Fatal(err)
		}
		compareSums(t, name+": the kernel read", wants[i], sha256Lines(t, before))
		if x, _ := os.ReadFile(filepath.Join(shares[i], "xattr")); string(x) != "blue" {
			t.Errorf("%s: the kernel read user.color = %q", name, x)
		}
		requireClean(t, img, name+": after the kernel wrote")
		after, err := os.ReadFile(filepath.Join(shares[i], "after"))
		if err != nil {
			t.Fatal(err)
		}
		compareSums(t, name+": o2go read what the kernel wrote", sha256Lines(t, after), fileSums(t, img))
	}
	// The grown volume's new backup superblock is one debugfs.ocfs2 reads.
	if out, _, err := realtools.DebugfsRaw("-s", "1", "-R", "stats", grown); err != nil || !strings.Contains(out, "Max Node Slots: 2") {
		t.Errorf("backup superblock 1 of the grown volume: %v\n%s", err, out)
	}
}
