package volume

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/inode"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// populateShared writes, through o2go's mount, files that share clusters
// in every way o2go's reflinks make: a file cloned twice (three users of
// one tree), a range cloned into the middle of another file, a clone one
// side of which was partly overwritten since, a second, unrelated tree, and with fragmented a fragmented file
// (its extents in extent blocks) and its clone.
func populateShared(t *testing.T, img string, fragmented bool) {
	t.Helper()
	m, err := Mount(img, DefaultMountOptions())
	if err != nil {
		t.Fatalf("mount %s: %v", img, err)
	}
	fs := m.FS
	root := m.SB.RootBlkno
	cs := int64(m.SB.ClusterSize())
	who := inode.Caller{UID: 1000, GID: 100}
	mk := func(name string) uint64 {
		t.Helper()
		ino, err := fs.Create(inode.Ref{Ino: root}, name, inode.NewNode{Mode: syscall.S_IFREG | 0o644}, who)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return ino
	}
	write := func(ino uint64, p []byte, off int64) {
		t.Helper()
		if _, err := fs.Write(ino, p, off); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	clone := func(src uint64, srcOff int64, dst uint64, dstOff, n int64) {
		t.Helper()
		if err := fs.CloneRange(src, srcOff, dst, dstOff, n); err != nil {
			t.Fatalf("clone: %v", err)
		}
	}
	pattern := func(n int, seed byte) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*13) + seed + byte(i>>12)
		}
		return p
	}
	orig := mk("orig")
	write(orig, pattern(int(9*cs+77), 1), 0)
	clone(orig, 0, mk("copy1"), 0, 0)
	clone(orig, 0, mk("copy2"), 0, 0)

	mid := mk("middle")
	write(mid, pattern(int(8*cs), 2), 0)
	clone(orig, 2*cs, mid, 3*cs, 3*cs)

	cow := mk("cow")
	clone(orig, 0, cow, 0, 0)
	write(cow, bytes.Repeat([]byte("changed"), int(cs)/7), 4*cs+5)

	// Every other cluster written: one extent per cluster, more than an
	// inode holds, so the tree has extent blocks.
	if fragmented {
		frag := mk("fragmented")
		recs := ondisk.ExtentRecsPerInode(m.SB.BlockSize(), int(m.SB.XattrInlineSize)) + 20
		for i := 0; i < recs; i++ {
			write(frag, pattern(int(cs), byte(i)), int64(2*i)*cs)
		}
		clone(frag, 0, mk("fragmented-clone"), 0, 0)
	}

	other := mk("other")
	write(other, pattern(int(5*cs), 4), 0)
	clone(other, cs, mk("other-part"), 0, 2*cs)
	if err := m.Unmount(); err != nil {
		t.Fatalf("unmount: %v", err)
	}
}

// sharingLeft reports what still speaks of sharing on img: inodes with a
// refcount tree, REFCOUNTED extents, refcount blocks in use.
func sharingLeft(t *testing.T, img string) string {
	t.Helper()
	tv := openTunefsVol(t, img)
	defer tv.Close()
	var left []string
	err := tv.forEachInode("", func(d *ondisk.Dinode) error {
		if d.DynFeatures&ondisk.DynHasRefcount != 0 || d.RefcountLoc != 0 {
			left = append(left, fmt.Sprintf("inode %d has refcount tree %d", d.Blkno, d.RefcountLoc))
		}
		if d.Inline != nil || d.Extents == nil {
			return nil
		}
		return extent.Walk(tv.Cache, d.Extents, "", func(r ondisk.ExtentRec) error {
			if r.Flags&ondisk.ExtentRefcounted != 0 {
				left = append(left, fmt.Sprintf("inode %d maps REFCOUNTED clusters at %d", d.Blkno, r.Cpos))
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for slot := 0; slot < int(tv.SB.MaxSlots); slot++ {
		a, err := tv.SystemFile(ondisk.SysExtentAlloc, slot)
		if err != nil {
			t.Fatal(err)
		}
		blks, err := tv.allocatedBlocks(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blks {
			buf, err := tv.readBlock(b)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:8]) == ondisk.RefcountBlockSignature {
				left = append(left, fmt.Sprintf("refcount block %d is in use", b))
			}
		}
	}
	return strings.Join(left, "; ")
}

// refcountRoots lists the refcount tree roots inodes of img name.
func refcountRoots(t *testing.T, img string) map[uint64]bool {
	t.Helper()
	tv := openTunefsVol(t, img)
	defer tv.Close()
	out := map[uint64]bool{}
	if err := tv.forEachInode("", func(d *ondisk.Dinode) error {
		if d.DynFeatures&ondisk.DynHasRefcount != 0 {
			out[d.RefcountLoc] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTunefsNorefcountUnsharesFiles turns refcount off with o2go tunefs
// and with tunefs.ocfs2 on twin volumes whose files share clusters in
// every way populateShared makes, for several geometries: o2go's volume
// must pass fsck.ocfs2 -fn (which, without the feature, reports any
// cluster two files still claim), read back the same tree, keep nothing
// of the sharing (refcount trees, REFCOUNTED extents), and use as many
// clusters as tunefs.ocfs2's; where the geometry lets tunefs.ocfs2 finish
// and the contents of the refcount blocks both freed.
//
// With fragmented files (extent trees of depth 1) the layouts differ:
// libocfs2 rebuilds such a tree's leaves into other extent blocks as it
// clears the flags, and leaves some of the freed leaves' records flagged.
// Both volumes pass fsck.ocfs2 then; the test compares the trees and the
// space used, not the blocks.
func TestTunefsNorefcountUnsharesFiles(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	geos := []struct {
		name       string
		size       int64
		args       []string
		fragmented bool
	}{
		{"4k-4k", 600 << 20, []string{"-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local"}, false},
		{"1k-4k", 400 << 20, []string{"-b", "1024", "-C", "4096", "-N", "2", "--fs-features=local"}, false},
		{"2k-64k-metaecc", 800 << 20, []string{"-b", "2048", "-C", "65536", "-N", "2", "--fs-features=local,metaecc"}, false},
		{"1k-4k-fragmented", 400 << 20, []string{"-b", "1024", "-C", "4096", "-N", "2", "--fs-features=local"}, true},
	}
	for _, g := range geos {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			base, _ := twin(t, g.size, g.args...)
			populate(t, base)
			populateShared(t, base, g.fragmented)
			requireClean(t, base, "populate")
			roots := refcountRoots(t, base)
			if len(roots) < 3 {
				t.Fatalf("only %d refcount trees to unshare", len(roots))
			}
			want := readTree(t, base)
			mine, real := copyImage(t, base), copyImage(t, base)
			tunefsO2go(t, mine, TunefsOptions{Features: "norefcount"})
			requireClean(t, mine, "norefcount")
			if f := superWith(t, mine).Super.Features.Incompat; f&ondisk.IncompatRefcountTree != 0 {
				t.Fatal("the refcount feature is still on")
			}
			if d := diffTrees(want, readTree(t, mine)); d != "" {
				t.Errorf("the tree changed:\n%s", d)
			}
			if left := sharingLeft(t, mine); left != "" {
				t.Errorf("sharing left: %s", left)
			}

			tunefsReal(t, real, "--fs-features=norefcount")
			requireClean(t, real, "tunefs.ocfs2 norefcount")
			if d := diffTrees(want, readTree(t, real)); d != "" {
				t.Errorf("tunefs.ocfs2's tree differs:\n%s", d)
			}
			if a, b := bitmapUsed(t, mine), bitmapUsed(t, real); a != b {
				t.Errorf("o2go's volume uses %d clusters, tunefs.ocfs2's %d", a, b)
			}
			if g.fragmented {
				return
			}
			bs := superWith(t, mine).Super.BlockSize()
			diffs := diffBlocks(t, mine, real, bs)
			for r := range roots {
				delete(diffs, r)
			}
			if bad := onlyTimes(t, mine, diffs); bad != "" {
				t.Errorf("o2go and tunefs.ocfs2 differ beyond inode times at %s", bad)
			}
		})
	}
}

// bitmapUsed is the clusters the global bitmap of img has in use.
func bitmapUsed(t *testing.T, img string) uint32 {
	t.Helper()
	tv := openTunefsVol(t, img)
	defer tv.Close()
	geo, err := alloc.NewGeometry(tv.Super)
	if err != nil {
		t.Fatal(err)
	}
	tv.geo = geo
	gb, err := tv.globalBitmap()
	if err != nil {
		t.Fatal(err)
	}
	u, err := gb.Usage()
	if err != nil {
		t.Fatal(err)
	}
	return u.Used
}

// sharedXattrValues counts the xattr value trees on img that map shared
// (REFCOUNTED) extents, by where their roots are: inline in the inode, in
// an xattr block, in a bucket.
func sharedXattrValues(t *testing.T, img string) [3]int {
	t.Helper()
	tv := openTunefsVol(t, img)
	defer tv.Close()
	var n [3]int
	none := func() error { return nil }
	err := tv.forEachInode("", func(d *ondisk.Dinode) error {
		if d.DynFeatures&ondisk.DynInlineXattr != 0 {
			raw, err := tv.readBlock(d.Blkno)
			if err != nil {
				return err
			}
			area, err := ondisk.InodeInlineXattrArea(raw, d.XattrInlineSize)
			if err != nil {
				return err
			}
			vt, err := tv.sharedValueTrees(area, "inline", none)
			if err != nil {
				return err
			}
			n[0] += len(vt)
		}
		if d.DynFeatures&ondisk.DynHasXattr != 0 && d.XattrLoc != 0 {
			xb, err := tv.Cache.XattrBlock(d.XattrLoc)
			if err != nil {
				return err
			}
			vt, err := tv.sharedXattrBlockTrees(d.XattrLoc)
			if err != nil {
				return err
			}
			if xb.Indexed() {
				n[2] += len(vt)
			} else {
				n[1] += len(vt)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// unshareKernelReflinks turns refcount off on img, a volume the kernel
// wrote reflinks to: the result must pass fsck.ocfs2 -fn, keep every file,
// xattr and symlink, and share nothing. It returns the xattr value trees
// that were shared before, by where their roots are (sharedXattrValues).
func unshareKernelReflinks(t *testing.T, img, name string) [3]int {
	t.Helper()
	shared := sharedXattrValues(t, img)
	want := readTree(t, img)
	if out, err := tunefsO2goErr(img, TunefsOptions{Features: "norefcount"}); err != nil {
		t.Errorf("after %s and the kernel's writes: norefcount: %v\n%s", name, err, out)
		return shared
	}
	requireCleanNoFatal(t, img, name+", the kernel's writes and norefcount")
	if d := diffTrees(want, readTree(t, img)); d != "" {
		t.Errorf("after %s and the kernel's writes: norefcount changed the tree:\n%s", name, d)
	}
	if left := sharingLeft(t, img); left != "" {
		t.Errorf("after %s and the kernel's writes: norefcount left sharing: %s", name, left)
	}
	if n := sharedXattrValues(t, img); n != [3]int{} {
		t.Errorf("after %s and the kernel's writes: norefcount left xattr values shared (inline, block, bucket): %v", name, n)
	}
	return shared
}
