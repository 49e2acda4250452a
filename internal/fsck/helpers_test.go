package fsck

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/fs/xattr"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// The corruptor and the oracles of the corpus tests: volumes are made by
// the real mkfs.ocfs2 (and filled by o2go's write engine or the kernel),
// damaged in place here block by block, then judged by both fscks.

// mkfs makes a small local volume with the real mkfs.ocfs2.
func mkfs(t *testing.T, size int64, args ...string) string {
	t.Helper()
	if len(args) == 0 {
		args = []string{"-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local"}
	}
	return realtools.MkfsImage(t, size, args...)
}

// populate fills a volume through o2go's write engine with what the
// corruptions need: directories (inline and block, one large indexed
// one), files with several extents and holes, symlinks of both kinds,
// hard links, extended attributes in the inode and in a block, a reflink.
func populate(t *testing.T, img string) {
	t.Helper()
	m, err := volume.Mount(img, volume.DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	fs := m.FS
	who := inode.Caller{}
	mk := func(parent uint64, name string, mode uint32, target string) uint64 {
		t.Helper()
		ino, err := fs.Create(inode.Ref{Ino: parent}, name, inode.NewNode{Mode: mode, Target: target}, who)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return ino
	}
	write := func(ino uint64, off int64, n int, seed byte) {
		t.Helper()
		p := bytes.Repeat([]byte{seed}, n)
		if _, err := fs.Write(ino, p, off); err != nil {
			t.Fatalf("write %d: %v", ino, err)
		}
	}
	root := fs.RootBlkno()
	d1 := mk(root, "dir1", syscall.S_IFDIR|0o755, "")
	d2 := mk(d1, "dir2", syscall.S_IFDIR|0o755, "")
	mk(d2, "dir3", syscall.S_IFDIR|0o755, "")
	big := mk(root, "big", syscall.S_IFDIR|0o755, "")
	for i := 0; i < 300; i++ {
		f := mk(big, fmt.Sprintf("entry-with-a-longish-name-%04d", i), syscall.S_IFREG|0o644, "")
		if i%50 == 0 {
			write(f, 0, 100, byte(i))
		}
	}
	f1 := mk(root, "file1", syscall.S_IFREG|0o644, "")
	write(f1, 0, 64<<10, 1)
	write(f1, 1<<20, 64<<10, 2) // a hole, then a second extent
	write(f1, 3<<20, 8<<10, 3)
	f2 := mk(d1, "file2", syscall.S_IFREG|0o644, "")
	write(f2, 0, 40<<10, 4)
	mk(root, "small", syscall.S_IFREG|0o644, "")
	write(mustLookup(t, fs, root, "small"), 0, 100, 5) // inline data
	mk(root, "fastlink", syscall.S_IFLNK|0o777, "file1")
	mk(root, "slowlink", syscall.S_IFLNK|0o777, "/"+strings.Repeat("long-target/", 330))
	if err := fs.Link(inode.Ref{Ino: f2}, inode.Ref{Ino: root}, "hardlink"); err != nil {
		t.Fatal(err)
	}
	if err := fs.SetXattr(inode.Ref{Ino: f1}, "user.small", []byte("value"), xattr.SetFlags(0)); err != nil {
		t.Fatal(err)
	}
	if err := fs.SetXattr(inode.Ref{Ino: f2}, "user.big", bytes.Repeat([]byte("x"), 3000), xattr.SetFlags(0)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if err := fs.SetXattr(inode.Ref{Ino: f2}, fmt.Sprintf("user.attr%02d", i), bytes.Repeat([]byte("v"), 60), xattr.SetFlags(0)); err != nil {
			t.Fatal(err)
		}
	}
	if m.SB.Features.Incompat&ondisk.IncompatRefcountTree != 0 {
		r := mk(root, "reflinked", syscall.S_IFREG|0o644, "")
		src := mk(root, "reflink-src", syscall.S_IFREG|0o644, "")
		write(src, 0, 256<<10, 6)
		if err := fs.Reflink(src, r); err != nil {
			t.Fatalf("reflink: %v", err)
		}
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

func mustLookup(t *testing.T, fs *inode.FS, dir uint64, name string) uint64 {
	t.Helper()
	ino, err := fs.Lookup(dir, name)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	return ino
}

// locate returns the inode number of path on the volume.
func locate(t *testing.T, img, path string) uint64 {
	t.Helper()
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true, Lenient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ino, err := v.FS.Resolve(path, false)
	if err != nil {
		t.Fatalf("resolve %s: %v", path, err)
	}
	return ino
}

// image is an image file opened for damage.
type image struct {
	t  *testing.T
	f  *os.File
	bs int
	v  *volume.Volume
}

func openImage(t *testing.T, img string) *image {
	t.Helper()
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true, Lenient: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	im := &image{t: t, f: f, bs: v.Cache.BlockSize(), v: v}
	t.Cleanup(func() { im.close() })
	return im
}

func (im *image) close() {
	if im.f != nil {
		im.f.Close()
		im.v.Close()
		im.f = nil
	}
}

func (im *image) block(blk uint64) []byte {
	b := make([]byte, im.bs)
	if _, err := im.f.ReadAt(b, int64(blk)*int64(im.bs)); err != nil {
		im.t.Fatal(err)
	}
	return b
}

func (im *image) put(blk uint64, b []byte) {
	if _, err := im.f.WriteAt(b, int64(blk)*int64(im.bs)); err != nil {
		im.t.Fatal(err)
	}
}

// edit changes a block in place; checkOff re-seals its META_ECC check
// (negative: none).
func (im *image) edit(blk uint64, checkOff int, fn func(b []byte)) {
	b := im.block(blk)
	fn(b)
	if im.v.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 && checkOff >= 0 {
		ondisk.SetBlockCheck(b, checkOff)
	}
	im.put(blk, b)
}

func (im *image) editInode(blk uint64, fn func(d dinode)) {
	im.edit(blk, ondisk.DinodeCheckOffset, func(b []byte) { fn(dinode(b)) })
}

func (im *image) sysFile(kind ondisk.SystemFileKind, slot int) uint64 {
	blk, err := im.v.SystemFile(kind, slot)
	if err != nil {
		im.t.Fatal(err)
	}
	return blk
}

// runO2go runs o2go's fsck in process and returns its result and output.
func runO2go(t *testing.T, img string, answer Answer, force bool) (Result, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	res := Run(Options{Device: img, Answer: answer, Force: force, Out: &out, Err: &errOut})
	return res, out.String() + errOut.String()
}

var codeLine = regexp.MustCompile(`(?m)^\[([A-Z0-9_]+)\]`)

// codesOf lists the problem codes of an fsck report in order.
func codesOf(out string) []string {
	var cs []string
	for _, m := range codeLine.FindAllStringSubmatch(out, -1) {
		cs = append(cs, m[1])
	}
	return cs
}

// copyFile duplicates an image (tests damage copies of one populated base).
func copyFile(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir() + "/copy.img"
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	return dst
}

// copyInto copies src to dst.
func copyInto(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
