package fsck

import (
	"strings"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// More of fswreck's corruptions, one per code family beyond the issue's
// classes: symlinks, local allocs, truncate logs, chain heads, directory
// entries and trailers, the root and lost+found, orphan directories.
var corpusMore = []corruption{
	{
		name: "symlink/not terminated",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			r := firstExtent(t, im, locate(t, img, "/slowlink"))
			b := im.block(r.blkno())
			for i := range b {
				b[i] = 'z'
			}
			im.put(r.blkno(), b)
		},
		want: []string{"LINK_NULLTERM"},
	},
	{
		name: "local alloc/window beyond the volume",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(im.sysFile(ondisk.SysLocalAlloc, 1), func(d dinode) {
				d.setBmTotal(64)
				put32(d, diID2, 0xFFFFFF)
			})
		},
		want: []string{"LALLOC_BM_OVERRUN"},
	},
	{
		name: "local alloc/unused with counts",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(im.sysFile(ondisk.SysLocalAlloc, 1), func(d dinode) {
				d.setBmUsed(5)
				put32(d, diID2, 77)
			})
		},
		want: []string{"LALLOC_NZ_USED", "LALLOC_NZ_BM"},
	},
	{
		name: "truncate log/record beyond the volume",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(im.sysFile(ondisk.SysTruncateLog, 1), func(d dinode) {
				put16(d, diID2+2, 1)
				put32(d, diID2+8, 0xFFFFFF00)
				put32(d, diID2+12, 4)
			})
		},
		want: []string{"TRUNCATE_REC_START_RANGE"},
	},
	{
		name: "chain/head out of range",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(im.sysFile(ondisk.SysExtentAlloc, 1), func(d dinode) { chainList(d[diID2:]).rec(0).setBlkno(1 << 40) })
		},
		want: []string{"CHAIN_HEAD_LINK_RANGE"},
	},
	{
		name: "chain/next free record",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(im.sysFile(ondisk.SysExtentAlloc, 1), func(d dinode) { chainList(d[diID2:]).setNextFree(300) })
		},
		want: []string{"CHAIN_NEXT_FREE"},
	},
	{
		name: "chain/unlinked global bitmap group",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(im.sysFile(ondisk.SysGlobalBitmap, -1), func(d dinode) {
				cl := chainList(d[diID2:])
				last := int(cl.nextFree()) - 1
				r := cl.rec(last)
				d.setBmTotal(d.bmTotal() - r.total())
				d.setBmUsed(d.bmUsed() - (r.total() - r.free()))
				d.setClusters(d.clusters() - r.total())
				d.setSize(uint64(d.clusters()) * uint64(im.v.SB.ClusterSize()))
				r.clear()
				cl.setNextFree(uint16(last))
			})
		},
		want: []string{"GROUP_EXPECTED_DESC"},
	},
	{
		name: "inode/block number",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			ino := locate(t, img, "/small")
			im.editInode(ino, func(d dinode) { put64(d, diBlkno, ino+99) })
		},
		want: []string{"INODE_BLKNO"},
	},
	{
		name: "inode/inline data size",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/small"), func(d dinode) {
				d.setSize(9000)
				d.setClusters(3)
			})
		},
		want: []string{"INODE_INLINE_SIZE", "INODE_INLINE_CLUSTERS"},
	},
	{
		name: "extent/overrun",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			bpc := uint64(im.v.SB.ClusterSize() / im.bs)
			last := uint64(im.v.Super.Clusters)
			im.editInode(locate(t, img, "/dir1/file2"), func(d dinode) {
				r := extList(d[diID2:]).rec(0)
				r.setBlkno((last - 3) * bpc) // 10 clusters from 3 before the end
			})
		},
		want: []string{"EXTENT_CLUSTERS_OVERRUN"},
	},
	{
		name: "extent/unaligned",
		base: "populated-1k",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			im.editInode(locate(t, img, "/dir1/file2"), func(d dinode) {
				r := extList(d[diID2:]).rec(0)
				r.setBlkno(r.blkno() + 1)
			})
		},
		want: []string{"EXTENT_BLKNO_UNALIGNED"},
	},
	{
		name: "dirent/length",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			editDirent(t, im, locate(t, img, "/big"), "entry-with-a-longish-name-0042", func(de dirent) { de.setRecLen(de.recLen() + 2) })
		},
		want: []string{"DIRENT_LENGTH"},
	},
	{
		name: "dirent/duplicate name and type",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			editDirent(t, im, locate(t, img, "/big"), "entry-with-a-longish-name-0043", func(de dirent) {
				copy(de[direntHeader:], "entry-with-a-longish-name-0044")
				de.setFileType(ondisk.FileTypeSymlink)
			})
		},
		want: []string{"DIRENT_TYPE", "DIRENT_DUPLICATE"},
	},
	{
		name: "dirent/second parent of a directory",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			d2 := locate(t, img, "/dir1/dir2")
			editDirent(t, im, locate(t, img, "/big"), "entry-with-a-longish-name-0045", func(de dirent) {
				de.setInode(d2)
				de.setFileType(ondisk.FileTypeDir)
			})
		},
		want: []string{"DIR_PARENT_DUP"},
	},
	{
		name: "dirent/dots",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			d := locate(t, img, "/dir1/dir2")
			editDirent(t, im, d, ".", func(de dirent) { de.setInode(d + 1) })
		},
		want: []string{"DIRENT_DOT_INODE"},
	},
	{
		name: "dir trailer",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			blk, _ := direntIn(t, im, locate(t, img, "/big"), "entry-with-a-longish-name-0001")
			im.edit(blk, ondisk.DirBlockCheckOffset(im.bs), func(b []byte) {
				tr := b[ondisk.TrailerOffset(im.bs):]
				put64(tr, trBlkno, blk+1)
				tr[trNameLen] = 3
			})
		},
		want: []string{"DIR_TRAILER_NAME_LEN", "DIR_TRAILER_BLKNO"},
	},
	{
		name: "lost+found missing",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			lf := locate(t, img, "/lost+found")
			editDirent(t, im, im.v.SB.RootBlkno, "lost+found", func(de dirent) { copy(de[direntHeader:], "lost+fount") })
			_ = lf
		},
		want: []string{"LOSTFOUND_MISSING"},
	},
	{
		name: "orphan dir missing",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			editDirent(t, im, im.v.SB.SystemDirBlkno, "orphan_dir:0001", func(de dirent) { de.setInode(0) })
		},
		want: []string{"ORPHAN_DIR_MISSING"},
	},
	{
		name: "refcount/tree users",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			loc := get64(im.block(locate(t, img, "/reflinked")), diRefcountLoc)
			im.edit(loc, ondisk.RefcountBlockCheckOffset, func(b []byte) { put32(b, 0x30, 9) })
		},
		want: []string{"REFCOUNT_COUNT"},
	},
}

func TestCorruptionCorpusMore(t *testing.T) {
	realtools.Require(t)
	for _, tc := range corpusMore {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) { checkCase(t, tc) })
	}
}
