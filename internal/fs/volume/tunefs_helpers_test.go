package volume

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/xattr"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// copyImage copies an image file (sparse: holes stay holes) into a new
// temp dir.
func copyImage(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp %s: %v\n%s", src, err, out)
	}
	return dst
}

// tunefsO2go runs o2go tunefs with o (quiet, answering yes, short
// heartbeat watch) and fails the test on an error.
func tunefsO2go(t *testing.T, img string, o TunefsOptions) string {
	t.Helper()
	out, err := tunefsO2goErr(img, o)
	if err != nil {
		t.Fatalf("o2go tunefs %s: %v\n%s", img, err, out)
	}
	return out
}

func tunefsO2goErr(img string, o TunefsOptions) (string, error) {
	var buf bytes.Buffer
	o.Out, o.ErrOut = &buf, &buf
	if !o.No {
		o.Yes = true
	}
	if o.HeartbeatWait == 0 {
		o.HeartbeatWait = 300e6
	}
	err := Tunefs(img, o)
	return buf.String(), err
}

// tunefsReal runs tunefs.ocfs2 -y with args on img.
func tunefsReal(t *testing.T, img string, args ...string) string {
	t.Helper()
	realtools.Require(t)
	all := append([]string{"-y"}, append(args, img)...)
	out, err := exec.Command("tunefs.ocfs2", all...).CombinedOutput()
	if err != nil {
		t.Fatalf("tunefs.ocfs2 %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	return string(out)
}

// volumeTree is what a populated volume holds, as o2go reads it back:
// path -> "type mode size sha256 [target] [xattrs]".
type volumeTree map[string]string

// readTree walks the volume at img with o2go's read path.
func readTree(t *testing.T, img string) volumeTree {
	t.Helper()
	v, err := Open(img, OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("open %s: %v", img, err)
	}
	defer v.Close()
	tree := volumeTree{}
	var walk func(dirIno uint64, path string)
	walk = func(dirIno uint64, path string) {
		d, err := v.FS.Dir(dirIno)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		names, err := d.Names()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		sort.Strings(names)
		for _, n := range names {
			p := path + "/" + n
			ino, err := v.FS.Lookup(dirIno, n)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			di, err := v.FS.Inode(ino)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			desc := fmt.Sprintf("mode %o links %d uid %d gid %d", di.Mode, di.Links, di.UID, di.GID)
			if !di.IsDir() { // a directory's size follows its storage
				desc += fmt.Sprintf(" size %d", di.Size)
			}
			switch {
			case di.IsReg():
				h := sha256.New()
				buf := make([]byte, 1<<20)
				for off := int64(0); off < int64(di.Size); {
					n, err := v.FS.ReadAt(di, buf, off)
					if n == 0 && err != nil {
						t.Fatalf("%s: read at %d: %v", p, off, err)
					}
					h.Write(buf[:n])
					off += int64(n)
				}
				desc += " " + hex.EncodeToString(h.Sum(nil))[:16]
			case di.IsLnk():
				target, err := v.FS.Readlink(di)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				desc += " -> " + target
			}
			if xs, err := v.FS.ListXattrs(inode.Ref{Ino: ino}); err == nil {
				sort.Strings(xs)
				for _, x := range xs {
					val, _, err := v.FS.GetXattr(inode.Ref{Ino: ino}, x)
					if err != nil {
						t.Fatalf("%s: xattr %s: %v", p, x, err)
					}
					sum := sha256.Sum256(val)
					desc += fmt.Sprintf(" %s=%x", x, sum[:4])
				}
			}
			tree[p] = desc
			if di.IsDir() {
				walk(ino, p)
			}
		}
	}
	walk(v.SB.RootBlkno, "")
	return tree
}

// diffTrees describes how two trees differ ("" when equal).
func diffTrees(want, got volumeTree) string {
	var b strings.Builder
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
	for _, k := range keys {
		if want[k] != got[k] {
			fmt.Fprintf(&b, "  %s:\n    want %q\n    got  %q\n", k, want[k], got[k])
		}
	}
	return b.String()
}

// withoutXattrs drops the xattr part of every description.
func withoutXattrs(tr volumeTree) volumeTree {
	out := volumeTree{}
	for k, v := range tr {
		fields := strings.Fields(v)
		var keep []string
		for _, f := range fields {
			if strings.Contains(f, "=") {
				continue
			}
			keep = append(keep, f)
		}
		out[k] = strings.Join(keep, " ")
	}
	return out
}

// populate mounts the volume with o2go and writes what exercises the
// feature changes: inline and extent files, a sparse file, a file with
// unwritten extents, a reflink, xattrs inline, in a block and in buckets,
// a big directory, symlinks, an empty file and an empty directory. Each
// piece is skipped when the volume lacks its feature.
func populate(t *testing.T, img string) {
	t.Helper()
	m, err := Mount(img, DefaultMountOptions())
	if err != nil {
		t.Fatalf("mount %s: %v", img, err)
	}
	fs := m.FS
	f := m.SB.Features
	root := m.SB.RootBlkno
	who := inode.Caller{UID: 1000, GID: 100}
	mk := func(parent uint64, name string, mode uint32) uint64 {
		t.Helper()
		ino, err := fs.Create(inode.Ref{Ino: parent}, name, inode.NewNode{Mode: mode}, who)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return ino
	}
	write := func(ino uint64, p []byte, off int64) {
		t.Helper()
		if _, err := fs.Write(ino, p, off); err != nil {
			t.Fatalf("write inode %d at %d: %v", ino, off, err)
		}
	}
	pattern := func(n int, seed byte) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7) + seed
		}
		return p
	}
	cs := int64(m.SB.ClusterSize())
	write(mk(root, "small", syscall.S_IFREG|0o644), []byte("small file, inline when the volume allows it\n"), 0)
	mk(root, "empty", syscall.S_IFREG|0o600)
	big := mk(root, "big", syscall.S_IFREG|0o644)
	write(big, pattern(int(3*cs+123), 1), 0)
	sparse := mk(root, "sparse", syscall.S_IFREG|0o644)
	write(sparse, pattern(100, 2), 0)
	write(sparse, pattern(5000, 3), 7*cs+17)
	write(sparse, pattern(10, 4), 20*cs)
	if f.RoCompat&ondisk.RoCompatUnwritten != 0 {
		pre := mk(root, "prealloc", syscall.S_IFREG|0o644)
		write(pre, pattern(200, 5), 0)
		if err := fs.Fallocate(pre, 0, 0, 6*cs); err != nil {
			t.Fatalf("fallocate: %v", err)
		}
	}
	if f.Incompat&ondisk.IncompatRefcountTree != 0 {
		clone := mk(root, "clone", syscall.S_IFREG|0o644)
		if err := fs.CloneRange(big, 0, clone, 0, 0); err != nil {
			t.Fatalf("clone: %v", err)
		}
	}
	d := mk(root, "dir", syscall.S_IFDIR|0o755)
	for i := 0; i < 400; i++ {
		ino := mk(d, fmt.Sprintf("entry-with-a-long-name-%04d", i), syscall.S_IFREG|0o644)
		if i%50 == 0 {
			write(ino, pattern(i+1, byte(i)), 0)
		}
	}
	sub := mk(d, "sub", syscall.S_IFDIR|0o700)
	write(mk(sub, "deep", syscall.S_IFREG|0o644), []byte("deep\n"), 0)
	mk(root, "emptydir", syscall.S_IFDIR|0o755)
	if _, err := fs.Create(inode.Ref{Ino: root}, "link", inode.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: "dir/sub/deep"}, who); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if _, err := fs.Create(inode.Ref{Ino: root}, "longlink", inode.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: strings.Repeat("x/", 700) + "end"}, who); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if f.Incompat&ondisk.IncompatXattr != 0 {
		set := func(ino uint64, name string, v []byte) {
			t.Helper()
			if err := fs.SetXattr(inode.Ref{Ino: ino}, name, v, 0); err != nil {
				t.Fatalf("setxattr %s: %v", name, err)
			}
		}
		set(big, "user.color", []byte("blue"))
		set(big, "user.large", pattern(3000, 9))
		small, err := fs.Lookup(root, "small")
		if err != nil {
			t.Fatal(err)
		}
		set(small, "user.tag", []byte("inline"))
		many := mk(root, "manyxattrs", syscall.S_IFREG|0o644)
		for i := 0; i < 120; i++ {
			set(many, fmt.Sprintf("user.attribute-number-%03d", i), pattern(40+i%30, byte(i)))
		}
		set(d, "user.dirattr", []byte("on a directory"))
	}
	if err := m.Unmount(); err != nil {
		t.Fatalf("unmount: %v", err)
	}
	_ = xattr.Create
}

// mkfsO2go formats a new image of size bytes with o2go mkfs.
func mkfsO2go(t *testing.T, size int64, o MkfsOptions) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "o2go.img")
	if err := truncateFile(img, size); err != nil {
		t.Fatal(err)
	}
	o.Quiet, o.NoPrompt, o.NoDiscard = true, true, true
	if _, err := Mkfs(img, o); err != nil {
		t.Fatalf("mkfs: %v", err)
	}
	return img
}

// requireClean is RequireFsckClean with the image name in the message.
func requireClean(t *testing.T, img, after string) {
	t.Helper()
	if r := realtools.Fsck(t, img, "-fn"); !r.Clean() {
		t.Fatalf("after %s: fsck.ocfs2 -fn: exit %d, problems:\n%s\nfull output:\n%s", after, r.ExitCode, strings.Join(r.Problems, "\n"), r.Output)
	}
}

// superWith reads the primary superblock of img.
func superWith(t *testing.T, img string) *ondisk.Dinode {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 16<<10)
	if _, err := io.ReadFull(f, buf); err != nil {
		t.Fatal(err)
	}
	for bs := 512; bs <= 4096; bs *= 2 {
		b := buf[2*bs : 3*bs]
		if string(b[:6]) == "OCFSV2" {
			d, err := ondisk.DecodeDinode(b)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatalf("%s: no superblock", img)
	return nil
}
