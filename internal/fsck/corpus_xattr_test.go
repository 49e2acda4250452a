package fsck

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/fs/xattr"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// The XATTR_* codes: fswreck-style damage to each kind of xattr storage
// (the inline area, a XATTR01 block, the buckets of an indexed block),
// judged by both fscks as the rest of the corpus is.

// populateXattrs makes /inline (a few small attributes in the inode),
// /block (a XATTR01 block with a value stored in clusters) and /buckets
// (an indexed block: a few hundred names over several buckets, one with
// a value in clusters), and /data, a file of three clusters.
func populateXattrs(t *testing.T, img string) {
	t.Helper()
	m, err := volume.Mount(img, volume.DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	fs := m.FS
	root := fs.RootBlkno()
	mk := func(name string) uint64 {
		t.Helper()
		ino, err := fs.Create(inode.Ref{Ino: root}, name, inode.NewNode{Mode: syscall.S_IFREG | 0o644}, inode.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		return ino
	}
	set := func(ino uint64, name string, n int, fill byte) {
		t.Helper()
		if err := fs.SetXattr(inode.Ref{Ino: ino}, name, bytes.Repeat([]byte{fill}, n), xattr.SetFlags(0)); err != nil {
			t.Fatalf("setxattr %s: %v", name, err)
		}
	}
	in := mk("inline")
	for i := 0; i < 3; i++ {
		set(in, fmt.Sprintf("user.i%d", i), 20, 'i')
	}
	blk := mk("block")
	set(blk, "user.big", 3000, 'B')
	for i := 0; i < 30; i++ {
		set(blk, fmt.Sprintf("user.b%02d", i), 60, 'b')
	}
	bk := mk("buckets")
	set(bk, "user.bigvalue", 5000, 'V')
	for i := 0; i < 200; i++ {
		set(bk, fmt.Sprintf("user.attribute-%03d", i), 60, 'a')
	}
	data := mk("data")
	if _, err := fs.Write(data, bytes.Repeat([]byte("d"), 3*m.SB.ClusterSize()), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// xattrBlockOf returns the XATTR01 block of the file at path.
func xattrBlockOf(t *testing.T, im *image, img, path string) uint64 {
	t.Helper()
	loc := get64(im.block(locate(t, img, path)), diXattrLoc)
	if loc == 0 {
		t.Fatalf("%s has no xattr block", path)
	}
	return loc
}

// firstBucket returns the first bucket of /buckets' first run.
func firstBucket(t *testing.T, im *image, img string) uint64 {
	t.Helper()
	b := im.block(xattrBlockOf(t, im, img, "/buckets"))
	if get16(b, xbFlags)&xbIndexed == 0 {
		t.Fatal("/buckets is not indexed")
	}
	el := extList(b[xbTreeList:])
	if el.depth() != 0 || el.nextFree() == 0 {
		t.Fatalf("/buckets: bucket tree depth %d, %d runs", el.depth(), el.nextFree())
	}
	return el.rec(0).blkno()
}

// nonLocal returns the index of the first entry of a whose value lives
// in clusters.
func nonLocal(t *testing.T, a xattrArea) int {
	t.Helper()
	for i := 0; i < a.count(); i++ {
		if !a.entry(i).local() {
			return i
		}
	}
	t.Fatalf("no value in clusters in the %s at %d", a.where, a.blkno)
	return 0
}

// editXattrBlock changes /block's header.
func editXattrBlock(t *testing.T, img string, fn func(a xattrArea)) {
	im := openImage(t, img)
	loc := xattrBlockOf(t, im, img, "/block")
	im.edit(loc, ondisk.XattrBlockCheckOffset, func(b []byte) { fn(xattrArea{where: xattrInBlock, b: b[xbAttrs:], blkno: loc}) })
}

// editBucket changes the first bucket of /buckets, whatever the blocks
// it spans, and seals its check again on a META_ECC volume.
func editBucket(t *testing.T, img string, fn func(a xattrArea)) {
	im := openImage(t, img)
	blk := firstBucket(t, im, img)
	b := make([]byte, ondisk.XattrBucketSize)
	if _, err := im.f.ReadAt(b, int64(blk)*int64(im.bs)); err != nil {
		t.Fatal(err)
	}
	fn(xattrArea{where: xattrInBucket, b: b, blkno: blk})
	if im.v.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 {
		ondisk.SetBlockCheck(b, ondisk.XattrBucketCheckOff)
	}
	if _, err := im.f.WriteAt(b, int64(blk)*int64(im.bs)); err != nil {
		t.Fatal(err)
	}
}

var corpusXattr = []corruption{
	{
		name: "block/entry count",
		base: "xattrs",
		// With the count refused, nothing else of the header is read:
		// the big value's clusters are found unused, as fsck.ocfs2 finds.
		damage: func(t *testing.T, img string) {
			editXattrBlock(t, img, func(a xattrArea) { a.setCount(a.count() + 3) })
		},
		want: []string{"XATTR_COUNT_INVALID"},
	},
	{
		name: "bucket/entry count",
		base: "xattrs",
		damage: func(t *testing.T, img string) {
			editBucket(t, img, func(a xattrArea) { a.setCount(a.count() + 1) })
		},
		want: []string{"XATTR_COUNT_INVALID"},
	},
	{
		name: "inline/name offset",
		base: "xattrs",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/inline"), func(d dinode) {
				a := xattrArea{where: xattrInInode, b: d[im.bs-d.xattrInline():], blkno: d.blkno()}
				put16(a.entry(1), xeNameOffset, 0xFFF0)
			})
		},
		want: []string{"XATTR_NAME_OFFSET_INVALID"},
	},
	{
		name: "inline/value location",
		base: "xattrs",
		// /block's big value root went to its inode's inline area.
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/block"), func(d dinode) {
				a := xattrArea{where: xattrInInode, b: d[im.bs-d.xattrInline():], blkno: d.blkno()}
				a.entry(nonLocal(t, a))[xeType] |= ondisk.XattrEntryLocal
			})
		},
		want: []string{"XATTR_LOCATION_INVALID"},
	},
	{
		name: "block/value overlaps",
		base: "xattrs",
		damage: func(t *testing.T, img string) {
			editXattrBlock(t, img, func(a xattrArea) {
				put16(a.entry(2), xeNameOffset, uint16(a.entry(1).nameOffset()))
			})
		},
		want: []string{"XATTR_VALUE_INVALID"},
	},
	{
		name: "block/entry under a name",
		base: "xattrs",
		// Entry 0's name and value move to where the last entry's slot
		// is: that entry now sits in a used area.
		damage: func(t *testing.T, img string) {
			editXattrBlock(t, img, func(a xattrArea) {
				e := a.entry(0)
				n := int(xattrStoredSize(e.nameLen(), e.valueSize()))
				to := a.entryOff(a.count() - 1)
				copy(a.b[to:to+n], a.b[e.nameOffset():e.nameOffset()+n])
				put16(e, xeNameOffset, uint16(to))
			})
		},
		want: []string{"XATTR_ENTRY_INVALID"},
	},
	{
		name: "bucket/name hash",
		base: "xattrs",
		damage: func(t *testing.T, img string) {
			editBucket(t, img, func(a xattrArea) {
				e := a.entry(a.count() - 1) // the highest hash: +1 keeps the order
				put32(e, xeNameHash, e.hash()+1)
			})
		},
		want: []string{"XATTR_HASH_INVALID"},
	},
	{
		name: "bucket/free start and name value length",
		base: "xattrs",
		damage: func(t *testing.T, img string) {
			editBucket(t, img, func(a xattrArea) {
				put16(a.b, xhFreeStart, get16(a.b, xhFreeStart)-40)
				put16(a.b, xhNameValueLen, get16(a.b, xhNameValueLen)+8)
			})
		},
		want: []string{"XATTR_FREE_START_INVALID", "XATTR_VALUE_LEN_INVALID"},
	},
	{
		name: "bucket/run count",
		base: "xattrs",
		damage: func(t *testing.T, img string) {
			editBucket(t, img, func(a xattrArea) { put16(a.b, xhNumBuckets, 0) })
		},
		want: []string{"XATTR_BUCKET_COUNT_INVALID"},
	},
	{
		name: "1k blocks, metaecc/bucket counts",
		base: "xattrs-1k-ecc",
		damage: func(t *testing.T, img string) {
			editBucket(t, img, func(a xattrArea) {
				put16(a.b, xhFreeStart, get16(a.b, xhFreeStart)+4)
				e := a.entry(a.count() - 1) // the highest hash: +1 keeps the order
				put32(e, xeNameHash, e.hash()+1)
			})
		},
		want: []string{"XATTR_HASH_INVALID", "XATTR_FREE_START_INVALID"},
	},
	{
		name: "1k blocks, metaecc/bucket failing its check",
		base: "xattrs-1k-ecc",
		// The run ends, for fsck, before the bucket that fails its check:
		// the first bucket's count is then too high.
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			first := firstBucket(t, im, img)
			if n := get16(im.block(first), xhNumBuckets); n < 2 {
				t.Fatalf("the first run holds %d bucket", n)
			}
			blk := first + uint64(ondisk.XattrBucketBlocks(im.bs))
			b := im.block(blk)
			put32(b, 0x40, get32(b, 0x40)^0xFFFF0000) // more than META_ECC mends
			im.put(blk, b)
		},
		want: []string{"XATTR_BUCKET_COUNT_INVALID"},
	},
	{
		name: "1k blocks, metaecc/inline count",
		base: "xattrs-1k-ecc",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/inline"), func(d dinode) {
				a := xattrArea{where: xattrInInode, b: d[im.bs-d.xattrInline():], blkno: d.blkno()}
				a.setCount(a.count() + 2)
			})
		},
		want: []string{"XATTR_COUNT_INVALID"},
	},
	{
		name: "block/signature",
		base: "xattrs",
		// fsck.ocfs2 compares the whole signature, NUL included.
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.edit(xattrBlockOf(t, im, img, "/block"), ondisk.XattrBlockCheckOffset, func(b []byte) { b[7] = '2' })
		},
		want: []string{"XATTR_BLOCK_INVALID"},
	},
}

func TestCorruptionCorpusXattr(t *testing.T) {
	realtools.Require(t)
	for _, tc := range corpusXattr {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) { checkCase(t, tc) })
	}
}

// TestXattrValueSharedWithFile: a file's extent moved onto the cluster
// of an xattr value. Pass 1b must name the value's inode among the
// owners, as fsck.ocfs2 does. Only -fn is compared: fsck.ocfs2 -fy stops
// on an assertion when it tries to share the value's cluster through a
// refcount tree, and o2go's pass 1d shares data extents only, so it
// reports the cluster it cannot share as an error.
func TestXattrValueSharedWithFile(t *testing.T) {
	realtools.Require(t)
	img := baseImage(t, "xattrs")
	im := openImage(t, img)
	d := dinode(im.block(locate(t, img, "/block")))
	a := xattrArea{where: xattrInInode, b: d[im.bs-d.xattrInline():], blkno: d.blkno()}
	e := a.entry(nonLocal(t, a))
	off := e.nameOffset() + round4(e.nameLen())
	value := extList(a.b[off+xvList:]).rec(0).blkno()
	im.editInode(locate(t, img, "/data"), func(d dinode) { extList(d[diID2:]).rec(0).setBlkno(value) })
	im.close()
	real := realtools.Fsck(t, img, "-fn")
	res, out := runO2go(t, img, AnswerNo, true)
	if got, want := codesOf(out), codesOf(real.Output); !slices.Equal(got, want) || !slices.Contains(got, "DUP_CLUSTERS_ADD_REFCOUNT") {
		t.Fatalf("-fn codes\n o2go:       %v\n fsck.ocfs2: %v\n%s\n%s", got, want, out, real.Output)
	}
	if !strings.Contains(out, "  /block\n  /data\n") || res.ExitCode&ExitUncorrected == 0 {
		t.Fatalf("o2go fsck -fn: exit %d\n%s", res.ExitCode, out)
	}
}
