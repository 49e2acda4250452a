package fsck

import (
	"slices"
	"strings"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// The rest of the codes an operator meets that the corpus did not yet
// damage for: the local alloc inode's LALLOC_* (slot 1's, which the
// write engine never used), and the whole-tree refcount codes.

// editLocalAlloc changes slot 1's local alloc inode: size is la_size,
// off la_bm_off.
func editLocalAlloc(t *testing.T, img string, fn func(d dinode, la []byte)) {
	im := openImage(t, img)
	im.editInode(im.sysFile(ondisk.SysLocalAlloc, 1), func(d dinode) { fn(d, d[diID2:]) })
}

var corpusGaps = []corruption{
	{
		name: "local alloc/bitmap size",
		base: "populated",
		damage: func(t *testing.T, img string) {
			editLocalAlloc(t, img, func(d dinode, la []byte) { put16(la, 4, 9999) })
		},
		want:    []string{"LALLOC_SIZE", "LALLOC_CLEAR"},
		sameYes: true,
	},
	{
		name: "local alloc/bits past the bitmap",
		base: "populated",
		damage: func(t *testing.T, img string) {
			editLocalAlloc(t, img, func(d dinode, la []byte) {
				put32(la, 0, 4000)
				d.setBmTotal(uint32(get16(la, 4))*8 + 64)
			})
		},
		want: []string{"LALLOC_BM_SIZE", "LALLOC_CLEAR"},
	},
	{
		name: "local alloc/window past the volume's end",
		base: "populated",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			clusters := im.v.Super.Clusters
			im.editInode(im.sysFile(ondisk.SysLocalAlloc, 1), func(d dinode) {
				put32(d[diID2:], 0, clusters-10)
				d.setBmTotal(64)
			})
		},
		want:    []string{"LALLOC_BM_STRADDLE"},
		sameYes: true,
	},
	{
		name: "local alloc/more used than bits",
		base: "populated",
		damage: func(t *testing.T, img string) {
			editLocalAlloc(t, img, func(d dinode, la []byte) {
				put32(la, 0, 4000)
				d.setBmTotal(64)
				d.setBmUsed(100)
				for i := 0; i < 8; i++ {
					la[0x10+i] = 0xFF // its window all used: nothing to keep
				}
			})
		},
		want:    []string{"LALLOC_USED_OVERRUN", "LALLOC_CLEAR"},
		sameYes: true,
	},
	{
		name: "refcount/record nobody shares",
		base: "refcount",
		damage: func(t *testing.T, img string) {
			editRef(t, img, smallRoot(t, img), func(b []byte) {
				used := int(get16(b, rlUsed))
				last := refRecAt(b, used-1)
				r := refRecAt(b, used)
				put64(r, 0, get64(last, 0)+uint64(get32(last, 8))+5)
				put32(r, 8, 2)
				put32(r, 12, 2)
				put16(b, rlUsed, uint16(used+1))
			})
		},
		want:    []string{"REFCOUNT_REC_REDUNDANT"},
		sameYes: true,
	},
}

func TestCorruptionCorpusGaps(t *testing.T) {
	realtools.Require(t)
	for _, tc := range corpusGaps {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) { checkCase(t, tc) })
	}
}

// TestRefcountRootSignature: a refcount tree whose root is not a refcount
// block. fsck.ocfs2 -fn stops on an assertion here (the files it was told
// to keep on the tree still hold extents it never counted), so only -fy
// is compared: the same questions, and each fsck accepts the other's
// repair.
func TestRefcountRootSignature(t *testing.T) {
	realtools.Require(t)
	img := baseImage(t, "refcount")
	editRef(t, img, smallRoot(t, img), func(b []byte) { b[1] = 'X' })
	res, out := runO2go(t, img, AnswerNo, true)
	if got := codesOf(out); len(got) < 2 || got[0] != "REFCOUNT_ROOT_BLOCK_INVALID" || got[1] != "REFCOUNT_ROOT_BLOCK_INVALID" || res.ExitCode&ExitUncorrected == 0 {
		t.Fatalf("o2go fsck -fn: exit %d, codes %v\n%s", res.ExitCode, got, out)
	}
	ours, theirs := copyFile(t, img), copyFile(t, img)
	res, out = runO2go(t, ours, AnswerYes, true)
	if res.ExitCode&(ExitError|ExitUncorrected) != 0 {
		t.Fatalf("o2go fsck -fy: exit %d\n%s", res.ExitCode, out)
	}
	real := realtools.Fsck(t, theirs, "-fy")
	if got, want := codesOf(out), codesOf(real.Output); !slices.Equal(got, want) {
		t.Fatalf("-fy codes differ\n o2go:       %v\n fsck.ocfs2: %v\n%s\n%s", got, want, out, real.Output)
	}
	realtools.RequireFsckClean(t, ours)
	if res, out := runO2go(t, theirs, AnswerNo, true); res.ExitCode != 0 {
		t.Fatalf("o2go fsck -fn after fsck.ocfs2 -fy: exit %d\n%s", res.ExitCode, out)
	}
}
