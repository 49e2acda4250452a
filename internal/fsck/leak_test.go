package fsck

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/fs/xattr"
	"o2go/internal/testutil/realtools"
)

// An xattr block whose owner was deleted while its bit stayed set in its
// extent_alloc group: a leak. fsck.ocfs2 1.8.7 does not compare the
// extent allocators' bits with the blocks in use (pass 0c checks only the
// chains and their counts), so a leak whose counts agree with the bitmap
// is invisible to it, and o2go agrees; a leak that also left the counts
// behind is a GROUP_FREE_BITS/CHAIN_BITS problem for both.

// leakXattrBlock makes a file with an xattr block, deletes it through
// o2go's write engine, and sets the block's bit in its group again;
// withCounts also takes the bit off the group's, the chain's and the
// allocator's free counts, as a leak that kept the block would.
func leakXattrBlock(t *testing.T, img string, withCounts bool) {
	t.Helper()
	m, err := volume.Mount(img, volume.DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	fs := m.FS
	ino, err := fs.Create(inode.Ref{Ino: fs.RootBlkno()}, "victim", inode.NewNode{Mode: syscall.S_IFREG | 0o644}, inode.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if err := fs.SetXattr(inode.Ref{Ino: ino}, fmt.Sprintf("user.a%02d", i), bytes.Repeat([]byte("v"), 60), xattr.SetFlags(0)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := fs.Inode(ino)
	if err != nil {
		t.Fatal(err)
	}
	loc := d.XattrLoc
	if loc == 0 {
		t.Fatal("no xattr block was made")
	}
	xb, err := m.Cache.XattrBlock(loc)
	if err != nil {
		t.Fatal(err)
	}
	gd, bit := xb.SuballocLoc, int(xb.SuballocBit)
	if err := fs.Unlink(inode.Ref{Ino: fs.RootBlkno()}, "victim", false); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	im := openImage(t, img)
	g := groupDesc(im.block(gd))
	if testBit(g.bitmap(), bit) {
		t.Fatalf("the deleted file's xattr block %d is still allocated", loc)
	}
	chain, parent := int(g.chain()), g.parent()
	im.edit(gd, gdCheckOff, func(b []byte) {
		g := groupDesc(b)
		setBit(g[gdBitmap:], bit)
		if withCounts {
			g.setFree(g.free() - 1)
		}
	})
	if withCounts {
		im.editInode(parent, func(d dinode) {
			r := chainList(d[diID2:]).rec(chain)
			r.setFree(r.free() - 1)
			d.setBmUsed(d.bmUsed() + 1)
		})
	}
}

func TestLeakedXattrBlockBit(t *testing.T) {
	realtools.Require(t)
	img := mkfs(t, 200<<20)
	leakXattrBlock(t, img, true)
	real := realtools.Fsck(t, img, "-fn")
	if !real.Clean() {
		t.Fatalf("fsck.ocfs2 -fn now sees the leak (o2go should too):\n%s", real.Output)
	}
	res, out := runO2go(t, img, AnswerNo, true)
	if res.ExitCode != 0 || len(res.Problems) > 0 {
		t.Fatalf("o2go fsck -fn on a leak fsck.ocfs2 cannot see: exit %d\n%s", res.ExitCode, out)
	}
}

func TestLeakedXattrBlockBitCounts(t *testing.T) {
	realtools.Require(t)
	checkCase(t, corruption{
		name:   "leaked xattr block bit, counts not updated",
		damage: func(t *testing.T, img string) { leakXattrBlock(t, img, false) },
		want:   []string{"GROUP_FREE_BITS"},
		img:    mkfs(t, 200<<20),
	})
}
