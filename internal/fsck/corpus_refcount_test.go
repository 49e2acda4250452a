package fsck

import (
	"bytes"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// The refcount tree codes (RB_*, REFCOUNT_*): damage to the blocks of a
// refcount tree, a root holding its records (/small and /small-clone) and
// a root grown into an index of leaves (/big and /big-clone: 1 KiB
// blocks hold 55 records, and every other cluster of the clone was copied
// on write, so /big's clusters alternate between counts of one and two, a
// record each), judged by both fscks.

// populateRefcount makes the two reflinked pairs.
func populateRefcount(t *testing.T, img string) {
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
	cs := int64(m.SB.ClusterSize())
	small := mk("small")
	if _, err := fs.Write(small, bytes.Repeat([]byte("s"), int(3*cs)), 0); err != nil {
		t.Fatal(err)
	}
	big := mk("big")
	if _, err := fs.Write(big, bytes.Repeat([]byte("b"), int(200*cs)), 0); err != nil {
		t.Fatal(err)
	}
	clone := mk("big-clone")
	if err := fs.Reflink(big, clone); err != nil {
		t.Fatal(err)
	}
	// Every other cluster of the clone copied on write: /big's clusters
	// alternate between one and two references, a record each.
	for i := int64(0); i < 200; i += 2 {
		if _, err := fs.Write(clone, []byte("c"), i*cs); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Reflink(small, mk("small-clone")); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// refRoot returns the refcount tree root of the file at path.
func refRoot(t *testing.T, im *image, img, path string) uint64 {
	t.Helper()
	loc := get64(im.block(locate(t, img, path)), diRefcountLoc)
	if loc == 0 {
		t.Fatalf("%s has no refcount tree", path)
	}
	return loc
}

// refLeaves returns the leaf blocks of /big's tree, which must be an
// index of depth 0 over at least three leaves.
func refLeaves(t *testing.T, im *image, img string) []uint64 {
	t.Helper()
	b := im.block(refRoot(t, im, img, "/big"))
	if get32(b, rfFlags)&ondisk.RefcountTreeFlag == 0 {
		t.Fatal("/big's refcount tree is a single block")
	}
	el := extList(b[rfBody:])
	if el.depth() != 0 || el.nextFree() < 3 {
		t.Fatalf("/big's refcount index: depth %d, %d leaves", el.depth(), el.nextFree())
	}
	var out []uint64
	for i := 0; i < int(el.nextFree()); i++ {
		out = append(out, el.rec(i).blkno())
	}
	return out
}

func editRef(t *testing.T, img string, blk func(im *image) uint64, fn func(b []byte)) {
	t.Helper()
	im := openImage(t, img)
	im.edit(blk(im), ondisk.RefcountBlockCheckOffset, fn)
}

func smallRoot(t *testing.T, img string) func(im *image) uint64 {
	return func(im *image) uint64 { return refRoot(t, im, img, "/small") }
}

func bigRoot(t *testing.T, img string) func(im *image) uint64 {
	return func(im *image) uint64 { return refRoot(t, im, img, "/big") }
}

func bigLeaf(t *testing.T, img string, i int) func(im *image) uint64 {
	return func(im *image) uint64 { return refLeaves(t, im, img)[i] }
}

// refRec returns record i of a refcount block.
func refRecAt(b []byte, i int) []byte { return b[rlRecs+i*refRecSize : rlRecs+(i+1)*refRecSize] }

var corpusRefcount = []corruption{
	{
		name: "clean",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			refLeaves(t, im, img)
		},
	},
	{
		name: "root location",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, smallRoot(t, img), func(b []byte) { put64(b, rfBlkno, get64(b, rfBlkno)+7) })
		},
		want:    []string{"RB_BLKNO"},
		sameYes: true,
	},
	{
		name: "leaf generation",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, bigLeaf(t, img, 1), func(b []byte) { put32(b, rfFSGen, get32(b, rfFSGen)^0x10) })
		},
		want: []string{"RB_GEN", "RB_GEN_FIX"},
	},
	{
		name: "leaf parent",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, bigLeaf(t, img, 0), func(b []byte) { put64(b, rfParent, 12345) })
		},
		want:    []string{"RB_PARENT"},
		sameYes: true,
	},
	{
		name: "leaf signature",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, bigLeaf(t, img, 2), func(b []byte) { b[0] = 'X' })
		},
		want: []string{"REFCOUNT_BLOCK_INVALID"},
	},
	{
		name: "root cluster count",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, bigRoot(t, img), func(b []byte) { put32(b, rfClusters, get32(b, rfClusters)+2) })
		},
		want:    []string{"REFCOUNT_CLUSTERS"},
		sameYes: true,
	},
	{
		name: "leaf list count",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, bigLeaf(t, img, 0), func(b []byte) { put16(b, rlCount, 9999) })
		},
		want:    []string{"REFCOUNT_LIST_COUNT"},
		sameYes: true,
	},
	{
		name: "leaf list used",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, bigLeaf(t, img, 1), func(b []byte) { put16(b, rlUsed, get16(b, rlCount)+3) })
		},
		want: []string{"REFCOUNT_LIST_USED"},
	},
	{
		name: "record beyond the volume",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, smallRoot(t, img), func(b []byte) {
				used := int(get16(b, rlUsed))
				r := refRecAt(b, used)
				put64(r, 0, 1<<30)
				put32(r, 8, 4)
				put32(r, 12, 2)
				put16(b, rlUsed, uint16(used+1))
			})
		},
		want:    []string{"REFCOUNT_CLUSTER_RANGE"},
		sameYes: true,
	},
	{
		name: "records collide",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, bigLeaf(t, img, 1), func(b []byte) {
				put64(refRecAt(b, 5), 0, get64(refRecAt(b, 4), 0))
			})
		},
		want: []string{"REFCOUNT_CLUSTER_COLLISION"},
	},
	{
		name: "empty leaf",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, bigLeaf(t, img, 2), func(b []byte) { put16(b, rlUsed, 0) })
		},
		want: []string{"REFCOUNT_LIST_EMPTY"},
	},
	{
		name: "record count",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, smallRoot(t, img), func(b []byte) { put32(refRecAt(b, 0), 12, 5) })
		},
		want:    []string{"REFCOUNT_COUNT_INVALID"},
		sameYes: true,
	},
}

func TestCorruptionCorpusRefcount(t *testing.T) {
	realtools.Require(t)
	for _, tc := range corpusRefcount {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) { checkCase(t, tc) })
	}
}
