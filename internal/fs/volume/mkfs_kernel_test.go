package volume

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// kernelTreeScript writes a tree on the mounted volume and records what it
// wrote in the share: sha256sum's line per file, "path -> target"
// per symlink, and the xattr it set.
const kernelTreeScript = `set -e
mkdir -p a/b/c many
dd if=/dev/urandom of=a/big bs=1M count=3 2>/dev/null
dd if=/dev/urandom of=a/b/c/odd bs=1 count=4097 2>/dev/null
echo hello > small
printf '' > empty
i=0
while [ $i -lt 300 ]; do echo "file $i" > many/name-with-a-longer-suffix-$i; i=$((i+1)); done
ln -s a/b/c/odd link
setfattr -n user.color -v blue a/big
dd if=/dev/urandom of=sparse bs=4096 count=1 seek=1000 2>/dev/null
sync
find . -path ./lost+found -prune -o -type f -print0 | xargs -0 sha256sum > "$KERNELVM_SHARE/sums"
echo "./link -> $(readlink link)" > "$KERNELVM_SHARE/links"
getfattr -n user.color --only-values a/big > "$KERNELVM_SHARE/xattr"
`

// TestMkfsVolumeWorksWithKernel checks o2go mkfs volumes against the Linux
// OCFS2 driver: a local volume (1 KiB blocks, four slots, metaecc: the
// system directory is then block-based and indexed by o2go) mounts
// read-write, takes a tree of files, directories, a symlink, an xattr and
// a few MB, unmounts cleanly, still passes fsck.ocfs2 -fn, and reads back
// through o2go with the right contents; a clustered volume (default
// options) mounts read-only and shows its root. Both VMs run at once.
func TestMkfsVolumeWorksWithKernel(t *testing.T) {
	kernelvm.Require(t)
	realtools.Require(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "local.img")
	clustered := filepath.Join(dir, "clustered.img")
	for _, f := range []string{local, clustered} {
		if err := truncateFile(f, 512<<20); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Mkfs(local, MkfsOptions{BlockSize: 1024, Slots: 4, Features: "local,metaecc", Quiet: true, NoPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.SystemDirIndexed {
		t.Fatal("the local volume was meant to exercise an indexed system directory")
	}
	if _, err := Mkfs(clustered, MkfsOptions{Quiet: true, NoPrompt: true}); err != nil {
		t.Fatal(err)
	}
	share := t.TempDir()

	var wg sync.WaitGroup
	var ro *kernelvm.Result
	var roErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ro, roErr = kernelvm.Run(context.Background(), kernelvm.Options{Image: clustered, ReadOnly: true, Timeout: 5 * time.Minute},
			"ls -a /mnt; stat -c '%F %h' /mnt/lost+found")
	}()
	kernelvm.RunT(t, kernelvm.Options{Image: local, Share: share}, kernelTreeScript)
	wg.Wait()
	switch {
	case roErr != nil:
		t.Errorf("read-only mount of the clustered volume: %v", roErr)
	case ro.ScriptExit != 0 || len(ro.KernelErrors) > 0:
		t.Errorf("read-only mount of the clustered volume: exit %d, kernel errors %q\n%s%s", ro.ScriptExit, ro.KernelErrors, ro.Stdout, ro.Stderr)
	case !bytes.Contains(ro.Stdout, []byte("lost+found")) || !bytes.Contains(ro.Stdout, []byte("directory 2")):
		t.Errorf("read-only mount of the clustered volume shows:\n%s", ro.Stdout)
	}

	realtools.RequireFsckClean(t, local)
	v, err := Open(local, OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	sums, err := os.ReadFile(filepath.Join(share, "sums"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("bad sums line %q", sc.Text())
		}
		path = strings.TrimPrefix(path, ".")
		ino, err := v.FS.Resolve(path, false)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		d, err := v.FS.Inode(ino)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		buf := make([]byte, 1<<20)
		for off := int64(0); ; {
			k, err := v.FS.ReadAt(d, buf, off)
			h.Write(buf[:k])
			off += int64(k)
			if err == io.EOF || k == 0 {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			t.Errorf("%s: o2go reads sha256 %s, the kernel wrote %s", path, got, sum)
		}
		n++
	}
	if n < 300 {
		t.Fatalf("only %d files came back from the VM", n)
	}
	ino, err := v.FS.Resolve("/link", false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.FS.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	if target, err := v.FS.Readlink(d); err != nil || target != "a/b/c/odd" {
		t.Errorf("readlink /link = %q, %v", target, err)
	}
	ino, err = v.FS.Resolve("/a/big", false)
	if err != nil {
		t.Fatal(err)
	}
	x, err := v.FS.Xattrs(ino)
	if err != nil {
		t.Fatal(err)
	}
	if val, ok, err := x.Get("user.color"); err != nil || !ok || string(val) != "blue" {
		t.Errorf("user.color = %q %v %v", val, ok, err)
	}
	// The system directory kept its index through the kernel's use.
	sys, err := v.FS.Inode(v.SB.SystemDirBlkno)
	if err != nil {
		t.Fatal(err)
	}
	if sys.DynFeatures&ondisk.DynIndexedDir == 0 {
		t.Error("the system directory lost its index")
	}
}
