package fusefs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

// testVolume is an image made by mkfs.ocfs2 for one test, mounted through
// an in-process Session, that must pass fsck.ocfs2 -fn when the test ends.
type testVolume struct {
	t       *testing.T
	img     string
	opts    string
	mnt     string
	unmount func()
	// closers run when a test ends while mounted, before the unmount:
	// a process that exits with files open on its own FUSE mount hangs in
	// the kernel's flush of them, waiting for a server that is gone.
	closers []func()
}

// defaultMkfs are the mkfs.ocfs2 arguments of the mount tests: 4K blocks
// and clusters, two slots, a local volume, every default feature (sparse,
// unwritten, inline-data, xattr, indexed-dirs, metaecc, refcount...).
var defaultMkfs = []string{"-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local"}

// newTestVolume makes a size-byte volume (mkfs args, or defaultMkfs when
// none), mounts it with options, and registers the fsck check that runs
// after the test's own cleanup unmounted it.
func newTestVolume(t *testing.T, size int64, options string, mkfs ...string) *testVolume {
	t.Helper()
	realtools.Require(t)
	if len(mkfs) == 0 {
		mkfs = defaultMkfs
	}
	v := &testVolume{t: t, img: realtools.MkfsImage(t, size, mkfs...), opts: options}
	v.mount()
	return v
}

func (v *testVolume) mount() {
	v.t.Helper()
	v.mnt, v.unmount = mountImage(v.t, v.img, v.opts)
	v.t.Cleanup(func() {
		for _, c := range v.closers {
			c()
		}
	})
}

// remount unmounts cleanly, checks the volume with fsck.ocfs2 -fn, and
// mounts it again (what the test then reads comes from the disk, not from
// the kernel's page cache).
func (v *testVolume) remount() {
	v.t.Helper()
	v.unmount()
	realtools.RequireFsckClean(v.t, v.img)
	v.mount()
}

// finish unmounts and requires fsck.ocfs2 -fn to be clean.
func (v *testVolume) finish() {
	v.t.Helper()
	v.unmount()
	realtools.RequireFsckClean(v.t, v.img)
}

func (v *testVolume) path(rel string) string { return filepath.Join(v.mnt, rel) }

// debugfs runs a debugfs.ocfs2 request on the (unmounted) image.
func (v *testVolume) debugfs(req string) string {
	v.t.Helper()
	return realtools.Debugfs(v.t, v.img, req)
}

func mustWrite(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

func fileSHA(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func requireBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: %d bytes (sha %s), want %d (sha %s); first difference at byte %d", what, len(got), sha(got), len(want), sha(want), i)
	}
}

// copyImage copies img to a new file in a temp dir, keeping holes.
func copyImage(t testing.TB, img string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy.img")
	if out, err := exec.Command("cp", "--sparse=always", img, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp %s: %v\n%s", img, err, out)
	}
	return dst
}

// fsckReplay replays the journals of img the real tool's way and checks
// the result: fsck.ocfs2 -fy twice (after a replay the first run stops
// with "unrecoverable errors while replaying the journals" even on a local
// volume, ondisk-format.md §12), where the second run must find nothing to
// repair but orphans (INODE_ORPHANED: files unlinked while open, which a
// mount deletes too), then fsck.ocfs2 -fn must be clean — but for the
// defects of fsck.ocfs2 1.8.7's orphan deletion (pass 4 truncates and
// deletes the inode, nothing else): the clusters of an orphan's
// extended-attribute values stay marked in the global bitmap
// (CLUSTER_ALLOC_BIT), its refcount tree keeps counting it
// (REFCOUNT_COUNT), and an orphaned directory's ".." link stays on the
// orphan directory (INODE_COUNT, repaired by the second run). Exactly
// those may show up; a third -fy run clears them.
func fsckReplay(t testing.TB, img string) {
	t.Helper()
	first := realtools.Fsck(t, img, "-fy")
	leaked, trees := orphanLeftovers(t, img)
	second := realtools.Fsck(t, img, "-fy")
	var problems []string
	orphanDirs := orphanDirInodes(t, img)
	for _, p := range second.Problems {
		var ino uint64
		if strings.HasPrefix(p, "[INODE_ORPHANED]") {
			continue
		}
		if _, err := fmt.Sscanf(p, "[INODE_COUNT] Inode %d ", &ino); err == nil && orphanDirs[ino] {
			// fsck.ocfs2 deletes an orphaned directory without taking
			// back the link its ".." gave the orphan directory (checked
			// on a kept image: 3 links with one directory orphan before,
			// still 3 with none after); its next run repairs that.
			continue
		}
		problems = append(problems, p)
	}
	if second.ExitCode != 0 || len(problems) > 0 {
		t.Fatalf("fsck.ocfs2 -fy %s after the replay: exit %d, problems:\n%s\nfirst run (exit %d):\n%s\nsecond run:\n%s",
			img, second.ExitCode, strings.Join(problems, "\n"), first.ExitCode, first.Output, second.Output)
	}
	check := realtools.Fsck(t, img, "-fn")
	if check.ExitCode == 0 && len(check.Problems) > 0 {
		for _, p := range check.Problems {
			var c uint64
			if _, err := fmt.Sscanf(p, "[REFCOUNT_COUNT] Refcount tree at %d ", &c); err == nil && trees[c] {
				continue // nor does it drop the deleted orphan from its refcount tree's count
			}
			if _, err := fmt.Sscanf(p, "[CLUSTER_ALLOC_BIT] Cluster %d ", &c); err != nil || !leaked[c] {
				t.Fatalf("fsck.ocfs2 -fn %s after the replay: %s\nfull output:\n%s", img, p, check.Output)
			}
		}
		realtools.Fsck(t, img, "-fy")
	}
	realtools.RequireFsckClean(t, img)
}

// orphanDirInodes returns the inode numbers of img's orphan directories.
func orphanDirInodes(t testing.TB, img string) map[uint64]bool {
	t.Helper()
	out := map[uint64]bool{}
	for _, line := range strings.Split(realtools.Debugfs(t, img, "ls //"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.HasPrefix(f[4], "orphan_dir:") {
			var ino uint64
			fmt.Sscanf(f[0], "%d", &ino)
			out[ino] = true
		}
	}
	return out
}

// orphanLeftovers lists, with debugfs.ocfs2, the clusters holding the
// extended-attribute values of the inodes in img's orphan directories, and
// the refcount trees those inodes belong to.
func orphanLeftovers(t testing.TB, img string) (map[uint64]bool, map[uint64]bool) {
	t.Helper()
	stats := realtools.Debugfs(t, img, "stats")
	var bbits, cbits, slots int
	for _, line := range strings.Split(stats, "\n") {
		line = strings.TrimSpace(line)
		fmt.Sscanf(line, "Block Size Bits: %d   Cluster Size Bits: %d", &bbits, &cbits)
		fmt.Sscanf(line, "Max Node Slots: %d", &slots)
	}
	if bbits == 0 || cbits < bbits || slots == 0 {
		t.Fatalf("debugfs.ocfs2 stats: no geometry in\n%s", stats)
	}
	out, trees := map[uint64]bool{}, map[uint64]bool{}
	for slot := range slots {
		for _, line := range strings.Split(realtools.Debugfs(t, img, fmt.Sprintf("ls //orphan_dir:%04d", slot)), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 || f[4] == "." || f[4] == ".." {
				continue
			}
			for _, l := range strings.Split(realtools.Debugfs(t, img, "stat <"+f[0]+">"), "\n") {
				var rb uint64
				if _, err := fmt.Sscanf(strings.TrimSpace(l), "Refcount Block: %d", &rb); err == nil && rb != 0 {
					trees[rb] = true
				}
			}
			xa := realtools.Debugfs(t, img, "xattr -v <"+f[0]+">")
			inRecs := false
			for _, l := range strings.Split(xa, "\n") {
				r := strings.Fields(l)
				switch {
				case len(r) > 1 && r[0] == "##" && r[1] == "Offset":
					inRecs = true
				case inRecs && len(r) >= 4:
					var n, blk uint64
					if _, err := fmt.Sscanf(r[2]+" "+r[3], "%d %d", &n, &blk); err != nil {
						inRecs = false
						continue
					}
					for i := range n {
						out[blk>>(cbits-bbits)+i] = true
					}
				default:
					inRecs = false
				}
			}
		}
	}
	return out, trees
}
