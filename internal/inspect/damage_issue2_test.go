package inspect

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"testing"

	"o2go/internal/base"
	"o2go/internal/blockdev"
	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// TestKernelWrittenMetadataDamage flips bits in the metadata the kernel
// wrote for kernelTree on a metaecc volume — inodes, extent blocks of a
// depth-1 tree, directory blocks, the index root and leaves, xattr blocks
// and buckets, refcount blocks — and reads the tree back after each flip:
//
//   - one flipped bit is corrected by the block check: every file reads
//     exactly as before (contents, stat fields, link targets, names,
//     xattrs);
//   - two flipped bits in one block cannot be corrected: each read either
//     does not touch the block and answers as before, or fails with an
//     error that names the block;
//   - in both cases every debug command and info report answers (output or
//     an error it prints), and none panics.
//
// A failure names the seed, block, structure and bits, which replay it.
func TestKernelWrittenMetadataDamage(t *testing.T) {
	testutil.Long(t)
	realtools.Require(t)
	kernelvm.Require(t)
	img := realtools.MkfsImage(t, 400<<20, "-b", "2048", "-C", "8192", "-N", "2", "--fs-features=metaecc,local")
	kernelvm.RunT(t, kernelvm.Options{Image: img}, kernelTree)

	want, err := readTree(img)
	if err != nil {
		t.Fatalf("reading the undamaged tree: %v", err)
	}
	blocks := treeMetadata(t, img)
	var kinds []string
	for k := range blocks {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range []string{"dinode", "extent block", "directory block", "dx root", "dx leaf", "xattr block", "xattr bucket", "refcount block"} {
		if len(blocks[k]) == 0 {
			t.Errorf("the kernel-written tree has no %s: the damage below does not reach it", k)
		}
	}
	t.Logf("metadata blocks: %v", func() map[string]int {
		m := map[string]int{}
		for k, v := range blocks {
			m[k] = len(v)
		}
		return m
	}())

	const seed = 20260601
	r := base.NewRand(seed)
	bs := int64(2048)
	out := t.TempDir()
	cmds := []string{"ls -l /tree", "ls -l /tree/big", "stat /tree/frag", "stat /tree/medium", "xattr -v /tree/frag",
		"xattr -v /tree/medium", "refcount -e /tree/medium", "dx_dump /tree/big", "dx_space /tree/big", "frag /tree/frag",
		"dirblocks /tree/big", "findpath /tree/deep/a/b/c/leaf", "rdump /tree " + out}
	// Two blocks of each structure, each damaged once by one bit and once
	// by two: about a minute on a busy two-core machine.
	for i := 0; i < 2*len(kinds); i++ {
		kind := kinds[i%len(kinds)]
		target := blocks[kind][r.Intn(len(blocks[kind]))]
		blk := target.blk
		bit1 := int64(r.Intn(int(bs * 8)))
		bit2 := int64(r.Intn(int(bs * 8)))
		for bit2 == bit1 {
			bit2 = int64(r.Intn(int(bs * 8)))
		}
		where := fmt.Sprintf("seed %d iteration %d: %s at block %d, bits %d and %d", seed, i, kind, blk, bit1, bit2)
		for _, double := range []bool{false, true} {
			undo1 := damage(t, img, blk*bs+bit1/8, 1<<(bit1%8))
			undo2 := func() {}
			if double {
				undo2 = damage(t, img, blk*bs+bit2/8, 1<<(bit2%8))
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("%s (double=%v): panic %v\n%s", where, double, p, debug.Stack())
					}
				}()
				got, err := readTree(img)
				switch {
				case !double && err != nil:
					t.Errorf("%s: one flipped bit was not corrected: %v", where, err)
				case !double:
					diffTrees(t, where, want, got)
				case err != nil && !strings.Contains(err.Error(), fmt.Sprintf("block %d", target.named)):
					t.Errorf("%s: the error does not name the damaged block: %v", where, err)
				case err == nil:
					diffTrees(t, where+" (two bits, read without error)", want, got)
				}
				for _, cmd := range cmds {
					o, e, failed := o2goDebug(t, img, cmd, 0)
					if failed && strings.TrimSpace(e) == "" {
						t.Errorf("%s: %q failed without saying why (stdout %q)", where, cmd, o)
					}
					os.RemoveAll(out)
					os.Mkdir(out, 0o755)
				}
				if v, err := OpenVolume(img); err == nil {
					var b bytes.Buffer
					Info(v, &b, InfoRequest{FileStat: "/tree/frag", SpaceUsage: "/tree/reflinked", FreeFrag: true, FreeFragKB: 64})
					v.Close()
				}
			}()
			undo2()
			undo1()
		}
	}
}

// treeFile is what the file system says about one file of the tree.
type treeFile struct {
	stat    string // mode, owner, size, links, times
	content string // sha256 of the bytes, link target, or sorted names
	xattrs  string // name=sha256(value) ..., sorted
}

// readTree reads every file under /tree through the file system (not the
// debugger's raw display), the way a mount would.
func readTree(img string) (map[string]treeFile, error) {
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true, Direct: blockdev.DirectOff})
	if err != nil {
		return nil, err
	}
	defer v.Close()
	out := map[string]treeFile{}
	var walk func(path string, blk uint64) error
	walk = func(path string, blk uint64) error {
		d, err := v.FS.Inode(blk)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		f := treeFile{stat: fmt.Sprintf("mode %o uid %d gid %d size %d links %d a %d.%d m %d.%d c %d.%d",
			d.Mode, d.UID, d.GID, d.Size, d.Links, d.Atime.Sec, d.Atime.Nsec, d.Mtime.Sec, d.Mtime.Nsec, d.Ctime.Sec, d.Ctime.Nsec)}
		names, err := v.FS.ListXattrs(inode.Ref{Ino: blk})
		if err != nil {
			return fmt.Errorf("%s: xattrs: %w", path, err)
		}
		sort.Strings(names)
		for _, n := range names {
			val, _, err := v.FS.GetXattr(inode.Ref{Ino: blk}, n)
			if err != nil {
				return fmt.Errorf("%s: xattr %s: %w", path, n, err)
			}
			f.xattrs += fmt.Sprintf("%s=%x ", n, sha256.Sum256(val))
		}
		switch {
		case d.IsReg():
			h := sha256.New()
			if _, err := copyFileData(v, d, h, nil); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			f.content = fmt.Sprintf("%x", h.Sum(nil))
		case d.IsLnk():
			if f.content, err = v.FS.Readlink(d); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		case d.IsDir():
			dir, err := v.FS.Dir(blk)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			var names []string
			var children []ondisk.DirEntry
			if err := dir.ForEach(func(e ondisk.DirEntry) error {
				names = append(names, fmt.Sprintf("%s:%d", e.Name, e.Inode))
				if e.Name != "." && e.Name != ".." {
					children = append(children, e)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			sort.Strings(names)
			f.content = strings.Join(names, " ")
			for _, c := range children {
				// Looking every name up goes through the index of an
				// indexed directory, which listing does not.
				if ino, err := v.FS.Lookup(blk, c.Name); err != nil || ino != c.Inode {
					return fmt.Errorf("%s: lookup %q: inode %d, %w", path, c.Name, ino, err)
				}
				if err := walk(path+"/"+c.Name, c.Inode); err != nil {
					return err
				}
			}
		}
		out[path] = f
		return nil
	}
	blk, err := v.FS.Resolve("/tree", false)
	if err != nil {
		return nil, err
	}
	return out, walk("/tree", blk)
}

func diffTrees(t *testing.T, where string, want, got map[string]treeFile) {
	t.Helper()
	n := 0
	for p, w := range want {
		if g, ok := got[p]; !ok || g != w {
			if n++; n <= 3 {
				t.Errorf("%s: %s reads as %+v, undamaged %+v", where, p, g, w)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d files, undamaged %d", where, len(got), len(want))
	}
}

// damageTarget is a block to damage and the block an error about it names.
type damageTarget struct{ blk, named int64 }

// treeMetadata finds the metadata blocks of the volume by what they are:
// every block that decodes as an inode, extent block, directory block
// (its trailer), index root or leaf, xattr block or refcount block and
// says it is at its own block number (journal copies name another), and
// the buckets of every indexed xattr block, keyed by structure.
func treeMetadata(t *testing.T, img string) map[string][]damageTarget {
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	bs := v.SB.BlockSize()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]damageTarget{}
	add := func(kind string, blk uint64) { out[kind] = append(out[kind], damageTarget{int64(blk), int64(blk)}) }
	total := uint64(v.Super.Clusters) * uint64(v.SB.BlocksPerCluster())
	buf := make([]byte, 1<<20)
	for base := uint64(0); base < total; base += uint64(len(buf) / bs) {
		n, _ := f.ReadAt(buf, int64(base)*int64(bs))
		for i := 0; i+bs <= n; i += bs {
			b, blk := buf[i:i+bs], base+uint64(i/bs)
			switch {
			case bytes.HasPrefix(b, []byte("INODE01")):
				if d, err := ondisk.DecodeDinode(b); err == nil && d.Blkno == blk && d.Flags&ondisk.InodeValid != 0 && d.Flags&ondisk.InodeSystem == 0 {
					add("dinode", blk)
				}
			case bytes.HasPrefix(b, []byte("EXBLK01")):
				if e, err := ondisk.DecodeExtentBlock(b); err == nil && e.Blkno == blk {
					add("extent block", blk)
				}
			case bytes.HasPrefix(b, []byte("DXDIR01")):
				if r, err := ondisk.DecodeDXRoot(b); err == nil && r.Blkno == blk {
					add("dx root", blk)
				}
			case bytes.HasPrefix(b, []byte("DXLEAF1")):
				if l, err := ondisk.DecodeDXLeaf(b); err == nil && l.Blkno == blk {
					add("dx leaf", blk)
				}
			case bytes.HasPrefix(b, []byte("REFCNT1")):
				if r, err := ondisk.DecodeRefcountBlock(b); err == nil && r.Blkno == blk {
					add("refcount block", blk)
				}
			case bytes.HasPrefix(b, []byte("XATTR01")):
				x, err := ondisk.DecodeXattrBlock(b)
				if err != nil || x.Blkno != blk {
					continue
				}
				add("xattr block", blk)
				if x.Indexed() {
					per := uint64(ondisk.XattrBucketBlocks(bs))
					for _, r := range x.Tree.List.Recs {
						for j := uint64(0); j < uint64(r.Clusters)*uint64(v.SB.BlocksPerCluster()); j++ {
							// A bucket's check covers all its blocks: the
							// error names the bucket's first.
							out["xattr bucket"] = append(out["xattr bucket"], damageTarget{int64(r.Blkno + j), int64(r.Blkno + j/per*per)})
						}
					}
				}
			case ondisk.HasDirTrailerSignature(b):
				if tr, err := ondisk.DecodeDirTrailer(b); err == nil && tr.Blkno == blk {
					add("directory block", blk)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no metadata found")
	}
	return out
}
