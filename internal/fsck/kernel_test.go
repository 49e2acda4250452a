package fsck

import (
	"strings"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
)

// kernelTree is what the kernel writes for the kernel-populated corpus:
// directories, an indexed directory of 400 names, files with holes,
// unwritten extents, one file of 300 extents (a tree of depth 1), fast
// and slow symlinks, hard links, extended attributes in the inode and in
// a block, and a reflink.
const kernelTree = `
set -e
mkdir -p a/b/c big
i=0; while [ $i -lt 400 ]; do : > big/name-$i; i=$((i+1)); done
dd if=/dev/urandom of=a/data bs=64k count=3 2>/dev/null
dd if=/dev/urandom of=a/sparse bs=4k count=2 seek=500 2>/dev/null
fallocate -l 1M a/prealloc
i=0; while [ $i -lt 300 ]; do dd if=/dev/zero of=frag bs=4k count=1 seek=$((i*2)) conv=notrunc 2>/dev/null; i=$((i+1)); done
ln -s a/data fast
ln -s /$(printf 'x%.0s' $(seq 1 3950)) slow
ln a/data a/b/hard
setfattr -n user.small -v hello a/data
i=0; while [ $i -lt 40 ]; do setfattr -n user.k$i -v $(printf 'v%.0s' $(seq 1 60)) a/b/hard; i=$((i+1)); done
cp --reflink=always a/data a/clone
sync
`

func kernelBase(t *testing.T) string {
	testutil.Long(t)
	kernelvm.Require(t)
	img := mkfs(t, 400<<20)
	kernelvm.RunT(t, kernelvm.Options{Image: img}, kernelTree)
	return img
}

// TestKernelPopulatedCorpus runs corruption cases on a volume the Linux
// kernel filled: the structures the kernel makes (extent blocks, its
// directory indexes, unwritten extents, its xattr layout) are judged and
// repaired as fsck.ocfs2 judges and repairs them.
func TestKernelPopulatedCorpus(t *testing.T) {
	bases.Lock()
	if bases.imgs == nil {
		bases.imgs = map[string]string{}
	}
	_, have := bases.imgs["kernel"]
	bases.Unlock()
	if !have {
		img := kernelBase(t)
		bases.Lock()
		p := bases.dir + "/kernel.img"
		if err := copyInto(img, p); err != nil {
			bases.Unlock()
			t.Fatal(err)
		}
		bases.imgs["kernel"] = p
		bases.Unlock()
	}
	cases := []corruption{
		{name: "clean", base: "kernel", damage: func(t *testing.T, img string) {}},
		{
			name: "extent block location",
			base: "kernel",
			damage: func(t *testing.T, img string) {
				im := openImage(t, img)
				l := extList(dinode(im.block(locate(t, img, "/frag")))[diID2:])
				if l.depth() == 0 {
					t.Fatal("the fragmented file has a depth-0 tree")
				}
				eb := l.rec(0).blkno()
				im.edit(eb, ondisk.ExtentBlockCheckOffset, func(b []byte) { extentBlock(b).setBlkno(eb + 1) })
			},
			want: []string{"EB_BLKNO"},
		},
		{
			name: "extent block list",
			base: "kernel",
			damage: func(t *testing.T, img string) {
				im := openImage(t, img)
				eb := extList(dinode(im.block(locate(t, img, "/frag")))[diID2:]).rec(0).blkno()
				im.edit(eb, ondisk.ExtentBlockCheckOffset, func(b []byte) { extentBlock(b).list().setCount(9999) })
			},
			want: []string{"EXTENT_LIST_COUNT"},
		},
		{
			name: "clusters of a deep file",
			base: "kernel",
			damage: func(t *testing.T, img string) {
				im := openImage(t, img)
				im.editInode(locate(t, img, "/frag"), func(d dinode) { d.setClusters(d.clusters() - 5) })
			},
			want: []string{"INODE_SPARSE_CLUSTERS"},
		},
		{
			name: "entry of the kernel's indexed directory",
			base: "kernel",
			damage: func(t *testing.T, img string) {
				im := openImage(t, img)
				g, bit := allocGroupWithFree(t, im, im.sysFile(ondisk.SysInodeAlloc, 0))
				editDirent(t, im, locate(t, img, "/big"), "name-123", func(de dirent) { de.setInode(g + uint64(bit)) })
			},
			want: []string{"DIRENT_INODE_FREE"},
		},
		{
			name: "shared cluster",
			base: "kernel",
			damage: func(t *testing.T, img string) {
				im := openImage(t, img)
				a := firstExtent(t, im, locate(t, img, "/a/sparse"))
				im.editInode(locate(t, img, "/a/prealloc"), func(d dinode) { extList(d[diID2:]).rec(0).setBlkno(a.blkno()) })
			},
			want: []string{"DUP_CLUSTERS_ADD_REFCOUNT"},
		},
		{
			name: "link count and lost directory",
			base: "kernel",
			damage: func(t *testing.T, img string) {
				im := openImage(t, img)
				im.editInode(locate(t, img, "/a/data"), func(d dinode) { d.setLinks(1) })
				editDirent(t, im, locate(t, img, "/a"), "b", func(de dirent) { de.setInode(0) })
			},
			want: []string{"DIR_NOT_CONNECTED", "INODE_COUNT"},
		},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) { checkCase(t, tc) })
	}
}
