package volume

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"o2go/internal/fs/inode"
	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// guestEntry mirrors the manifest internal/testutil/guesttree prints.
type guestEntry struct {
	Path       string            `json:"path"`
	Mode       uint32            `json:"mode"`
	UID        uint32            `json:"uid"`
	GID        uint32            `json:"gid"`
	Size       int64             `json:"size"`
	Nlink      uint64            `json:"nlink"`
	Rdev       uint64            `json:"rdev"`
	Atime      [2]int64          `json:"atime"`
	Mtime      [2]int64          `json:"mtime"`
	Ctime      [2]int64          `json:"ctime"`
	Ino        uint64            `json:"ino"`
	SHA256     string            `json:"sha256"`
	Target     string            `json:"target"`
	Xattrs     map[string]string `json:"xattrs"`
	DirEntries int               `json:"dir_entries"`
}

// buildGuestTool compiles internal/testutil/guesttree as a static binary
// into dir, for the kernel VM to run.
func buildGuestTool(t *testing.T, dir string) {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(self), "..", "..", "testutil", "guesttree")
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "guesttree"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building guesttree: %v\n%s", err, out)
	}
}

// TestReadKernelWrittenTree is the foundation issue's second acceptance
// test: the real kernel driver writes a tree covering every storage form
// (deep extent trees, holes, unwritten extents, inline data, fast and slow
// symlinks, hard links, a 20,000-entry indexed directory, xattrs up to
// buckets and value trees, 255-byte UTF-8 names, a reflink), records what it
// sees, and o2go must read every file byte-identical with every stat field
// equal.
func TestReadKernelWrittenTree(t *testing.T) {
	testutil.Long(t)
	kernelvm.Require(t)
	realtools.Require(t)
	img := realtools.MkfsImage(t, 1<<30, "-b", "4096", "-C", "4096", "-N", "2", "-L", "kernel-tree", "--fs-features=local")
	share := t.TempDir()
	buildGuestTool(t, share)
	kernelvm.RunT(t, kernelvm.Options{Image: img, Share: share, MountOpts: "resv_level=0,noatime"}, `
		set -e
		"$KERNELVM_SHARE/guesttree" build "$KERNELVM_MNT"
		"$KERNELVM_SHARE/guesttree" manifest "$KERNELVM_MNT" > "$KERNELVM_SHARE/manifest.json"`)
	realtools.RequireFsckClean(t, img)

	raw, err := os.ReadFile(filepath.Join(share, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []guestEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) < 20010 {
		t.Fatalf("manifest has only %d entries", len(entries))
	}

	v, err := Open(img, OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	forms := map[string]bool{}
	for _, e := range entries {
		path := "/"
		if e.Path != "." {
			path = "/" + e.Path
		}
		ino, err := v.FS.Resolve(path, false)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if ino != e.Ino {
			t.Errorf("%s: o2go resolves inode %d, the kernel says %d", path, ino, e.Ino)
			continue
		}
		d, err := v.FS.Inode(ino)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		compareStat(t, path, d, e)
		switch {
		case d.IsReg():
			if got := sha256Of(t, v.FS, d); got != e.SHA256 {
				t.Errorf("%s: sha256 %s, the kernel's %s", path, got, e.SHA256)
			}
		case d.IsLnk():
			if got, err := v.FS.Readlink(d); err != nil || got != e.Target {
				t.Errorf("%s: readlink %q (%v), the kernel's %q", path, got, err, e.Target)
			}
			forms[map[bool]string{true: "fast symlink", false: "slow symlink"}[d.FastSymlink != nil]] = true
		case d.IsDir():
			dir, _ := v.FS.Dir(ino)
			names, err := dir.Names()
			if err != nil || len(names) != e.DirEntries {
				t.Errorf("%s: %d names (%v), the kernel lists %d", path, len(names), err, e.DirEntries)
			}
			if d.DynFeatures&ondisk.DynIndexedDir != 0 {
				forms["indexed directory"] = true
			}
		}
		compareXattrs(t, v, path, ino, e.Xattrs, forms)
		noteForms(t, v, d, forms)
	}
	for _, f := range []string{"extent tree depth >= 1", "hole", "unwritten extent", "inline data",
		"fast symlink", "slow symlink", "indexed directory", "refcounted extent", "xattr buckets", "xattr value tree"} {
		if !forms[f] {
			t.Errorf("the kernel-written tree has no %s: the test does not cover it", f)
		}
	}
}

func compareStat(t *testing.T, path string, d *ondisk.Dinode, e guestEntry) {
	t.Helper()
	type pair struct {
		name      string
		o2go, krn any
	}
	checks := []pair{
		{"mode", uint32(d.Mode), e.Mode}, {"uid", d.UID, e.UID}, {"gid", d.GID, e.GID},
		{"size", int64(d.Size), e.Size}, {"nlink", uint64(d.Links), e.Nlink},
		{"atime", [2]int64{int64(d.Atime.Sec), int64(d.Atime.Nsec)}, e.Atime},
		{"mtime", [2]int64{int64(d.Mtime.Sec), int64(d.Mtime.Nsec)}, e.Mtime},
		{"ctime", [2]int64{int64(d.Ctime.Sec), int64(d.Ctime.Nsec)}, e.Ctime},
	}
	if d.IsChr() || d.IsBlk() {
		maj, min := d.Rdev()
		checks = append(checks, pair{"rdev", unix.Mkdev(maj, min), e.Rdev})
	}
	for _, c := range checks {
		if c.o2go != c.krn {
			t.Errorf("%s: %s is %v in o2go, %v in the kernel", path, c.name, c.o2go, c.krn)
		}
	}
}

func sha256Of(t *testing.T, fs *inode.FS, d *ondisk.Dinode) string {
	t.Helper()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < int64(d.Size); {
		n, err := fs.ReadAt(d, buf, off)
		if err != nil {
			t.Fatalf("inode %d at %d: %v", d.Blkno, off, err)
		}
		if n == 0 {
			t.Fatalf("inode %d: short read at %d of %d", d.Blkno, off, d.Size)
		}
		h.Write(buf[:n])
		off += int64(n)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func compareXattrs(t *testing.T, v *Volume, path string, ino uint64, want map[string]string, forms map[string]bool) {
	t.Helper()
	x, err := v.FS.Xattrs(ino)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	attrs, err := x.List()
	if err != nil {
		t.Fatalf("%s: xattrs: %v", path, err)
	}
	if len(attrs) != len(want) {
		t.Errorf("%s: %d xattrs, the kernel lists %d", path, len(attrs), len(want))
	}
	for _, a := range attrs {
		val, err := x.Value(a)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, a.Name, err)
		}
		w, ok := want[a.Name]
		if !ok {
			t.Errorf("%s: o2go lists xattr %q the kernel does not", path, a.Name)
			continue
		}
		wb, _ := hex.DecodeString(w)
		if !bytes.Equal(val, wb) {
			t.Errorf("%s: xattr %s differs (%d bytes vs %d)", path, a.Name, len(val), len(wb))
		}
		if a.Where.String() == "bucket" {
			forms["xattr buckets"] = true
		}
		if !a.Entry.Local() {
			forms["xattr value tree"] = true
		}
	}
}

func noteForms(t *testing.T, v *Volume, d *ondisk.Dinode, forms map[string]bool) {
	if d.Inline != nil && d.IsReg() && d.Size > 0 {
		forms["inline data"] = true
	}
	if d.Extents == nil || !d.IsReg() {
		return
	}
	if d.Extents.TreeDepth >= 1 {
		forms["extent tree depth >= 1"] = true
	}
	var mapped uint64
	v.FS.Extents(d, func(r ondisk.ExtentRec) error {
		mapped += uint64(r.Clusters)
		if r.Flags&ondisk.ExtentUnwritten != 0 {
			forms["unwritten extent"] = true
		}
		if r.Flags&ondisk.ExtentRefcounted != 0 {
			forms["refcounted extent"] = true
		}
		return nil
	})
	if mapped*uint64(v.SB.ClusterSize()) < d.Size {
		forms["hole"] = true
	}
}
