package fsck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// Pass 5: quota files. o2go's write engine keeps no quota usage, so a
// volume it filled has usage that is out of date, which fsck.ocfs2 -y
// silently writes again (pass 5 rebuilds the files on every run). The
// oracles: o2go fsck -y writes the same files fsck.ocfs2 -y writes (byte
// for byte, bar block 0's bytes after the header, which libocfs2 leaves
// unset), and each fsck is clean on the other's result.

// populateQuota makes files and directories owned by many users and
// groups, with data. o2go mounts a volume with quotas read-only (it keeps
// no usage), so the quota features are off while it writes: the usage the
// files hold is then out of date, as after any writer that did not count.
func populateQuota(t *testing.T, img string, users int) {
	t.Helper()
	quotas := uint32(ondisk.RoCompatUsrQuota | ondisk.RoCompatGrpQuota)
	setRoCompat := func(on bool) {
		im := openImage(t, img)
		im.editInode(ondisk.SuperBlockBlkno, func(d dinode) {
			v := get32(d, diID2+0x24) &^ quotas
			if on {
				v |= quotas
			}
			put32(d, diID2+0x24, v)
		})
		im.close()
	}
	setRoCompat(false)
	defer setRoCompat(true)
	m, err := volume.Mount(img, volume.DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	fs := m.FS
	root := fs.RootBlkno()
	for i := 0; i < users; i++ {
		who := inode.Caller{UID: uint32(1000 + i), GID: uint32(100 + i%7)}
		mode := uint32(syscall.S_IFREG | 0o644)
		if i%5 == 0 {
			mode = syscall.S_IFDIR | 0o755
		}
		ino, err := fs.Create(inode.Ref{Ino: root}, fmt.Sprintf("f%03d", i), inode.NewNode{Mode: mode}, who)
		if err != nil {
			t.Fatal(err)
		}
		if mode&syscall.S_IFREG != 0 && i%3 == 0 {
			if _, err := fs.Write(ino, bytes.Repeat([]byte{byte(i)}, 5000*(i%4+1)), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// dumpSys dumps a system file with debugfs.ocfs2.
func dumpSys(t *testing.T, img, name string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dump")
	realtools.Debugfs(t, img, fmt.Sprintf("dump //%s %s", name, out))
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("dump //%s: %v", name, err)
	}
	return b
}

// sameQuotaFiles compares the quota files of two volumes.
func sameQuotaFiles(t *testing.T, a, b string, bs, slots int) {
	t.Helper()
	for _, name := range []string{"aquota.user", "aquota.group"} {
		x, y := dumpSys(t, a, name), dumpSys(t, b, name)
		if len(x) != len(y) || len(x) < 2*bs {
			t.Fatalf("%s: %d bytes against fsck.ocfs2's %d", name, len(x), len(y))
		}
		if !bytes.Equal(x[:32], y[:32]) {
			t.Errorf("%s: header %x, fsck.ocfs2's %x", name, x[:32], y[:32])
		}
		if !bytes.Equal(x[bs:], y[bs:]) {
			for i := bs; i < len(x); i++ {
				if x[i] != y[i] {
					t.Fatalf("%s: first difference at byte %d (block %d): %#x, fsck.ocfs2's %#x", name, i, i/bs, x[i], y[i])
				}
			}
		}
		for s := 0; s < slots; s++ {
			local := fmt.Sprintf("%s:%04d", name, s)
			if x, y := dumpSys(t, a, local), dumpSys(t, b, local); !bytes.Equal(x, y) {
				t.Errorf("%s differs from fsck.ocfs2's (%d and %d bytes)", local, len(x), len(y))
			}
		}
	}
}

func testQuotaRewrite(t *testing.T, mkfsArgs ...string) {
	realtools.Require(t)
	img := mkfs(t, 200<<20, mkfsArgs...)
	populateQuota(t, img, 120)
	if r := realtools.Fsck(t, img, "-fn"); !r.Clean() {
		t.Fatalf("fsck.ocfs2 -fn:\n%s", r.Output)
	}
	res, out := runO2go(t, img, AnswerNo, true)
	if res.ExitCode != 0 || len(res.Problems) > 0 || !strings.Contains(out, "Pass 5: Checking quota information") || !strings.Contains(out, "quota file is out of date") {
		t.Fatalf("o2go fsck -fn: exit %d\n%s", res.ExitCode, out)
	}
	ours, theirs := copyFile(t, img), copyFile(t, img)
	res, out = runO2go(t, ours, AnswerYes, true)
	if res.ExitCode != 0 || len(res.Problems) > 0 || !strings.Contains(out, "Wrote the user quota file again") || !strings.Contains(out, "Wrote the group quota file again") {
		t.Fatalf("o2go fsck -fy: exit %d\n%s", res.ExitCode, out)
	}
	realtools.RequireFsckClean(t, ours)
	if res, out := runO2go(t, ours, AnswerYes, true); res.ExitCode != 0 || strings.Contains(out, "out of date") || strings.Contains(out, "Wrote") {
		t.Fatalf("o2go fsck -fy after its own rewrite: exit %d\n%s", res.ExitCode, out)
	}
	if r := realtools.Fsck(t, theirs, "-fy"); r.ExitCode&^1 != 0 {
		t.Fatalf("fsck.ocfs2 -fy: exit %d\n%s", r.ExitCode, r.Output)
	}
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	bs, slots := v.Cache.BlockSize(), int(v.SB.MaxSlots)
	v.Close()
	sameQuotaFiles(t, ours, theirs, bs, slots)
	if res, out := runO2go(t, theirs, AnswerNo, true); res.ExitCode != 0 || strings.Contains(out, "out of date") {
		t.Fatalf("o2go fsck -fn after fsck.ocfs2 -fy: exit %d\n%s", res.ExitCode, out)
	}
}

func TestQuotaUsageRewrite(t *testing.T) {
	testQuotaRewrite(t, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local,usrquota,grpquota")
}

func TestQuotaUsageRewriteMetaECC(t *testing.T) {
	testQuotaRewrite(t, "-b", "1024", "-C", "8192", "-N", "3", "--fs-features=local,usrquota,grpquota,metaecc,noindexed-dirs")
}

// quotaBlock returns the volume block holding logical block n of the
// global quota file name.
func quotaBlock(t *testing.T, img, name string, n uint64) uint64 {
	t.Helper()
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true, Lenient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ino, err := v.SystemFileByName(name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.Cache.Dinode(ino)
	if err != nil {
		t.Fatal(err)
	}
	bpc := uint64(v.SB.BlocksPerCluster())
	m, err := extent.Lookup(v.Cache, d.Extents, uint32(n/bpc), name)
	if err != nil || !m.Found {
		t.Fatalf("%s block %d: not mapped (%v)", name, n, err)
	}
	return m.Rec.Blkno + n - uint64(m.Rec.Cpos)*bpc
}

// quotaDataBlock follows the first reference of every tree level from
// the root to a data block of the global quota file name and returns its
// logical block.
func quotaDataBlock(t *testing.T, im *image, img, name string) uint64 {
	t.Helper()
	n := uint64(ondisk.QuotaTreeRootBlock)
	for depth := 0; depth < ondisk.QuotaTreeDepth(im.bs); depth++ {
		b := im.block(quotaBlock(t, img, name, n))
		next := uint32(0)
		for i := 0; i < ondisk.QuotaRefsPerBlock(im.bs) && next == 0; i++ {
			next = get32(b, 4*i)
		}
		if next == 0 {
			t.Fatalf("%s: tree block %d refers to nothing", name, n)
		}
		n = uint64(next)
	}
	return n
}

// quotaEdit changes logical block n of name; seal re-seals its check.
func quotaEdit(t *testing.T, img, name string, n uint64, seal bool, fn func(b []byte)) {
	t.Helper()
	im := openImage(t, img)
	blk := quotaBlock(t, img, name, n)
	off := -1
	if seal {
		off = ondisk.QuotaCheckOffset(im.bs)
	}
	im.edit(blk, off, fn)
}

var corpusQuota = []corruption{
	{
		name: "global info magic",
		base: "quota",
		damage: func(t *testing.T, img string) {
			quotaEdit(t, img, "aquota.user", 0, true, func(b []byte) { put32(b, 0, 0xdeadbeef) })
		},
		want: []string{"QMAGIC_INVALID"},
	},
	{
		name: "global info block count",
		base: "quota",
		damage: func(t *testing.T, img string) {
			quotaEdit(t, img, "aquota.group", 0, true, func(b []byte) { put32(b, ondisk.QuotaInfoOffset+12, 9999) })
		},
		want: []string{"QMAGIC_INVALID"},
	},
	{
		name: "duplicate record",
		base: "quota",
		// The first record of a data block copied into a free slot.
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			n := quotaDataBlock(t, im, img, "aquota.user")
			im.close()
			quotaEdit(t, img, "aquota.user", n, true, func(b []byte) {
				per := ondisk.GlobalDquotsPerBlock(len(b))
				for i := 1; i < per; i++ {
					r := ondisk.GlobalDquotRecord(b, i)
					if ondisk.GlobalDquotUnused(r) {
						copy(r, ondisk.GlobalDquotRecord(b, 0))
						d, _ := ondisk.DecodeGlobalDquot(r)
						d.ISoftLimit = 77 // other limits, so the choice shows
						d.Encode(r)
						put16(b, 8, get16(b, 8)+1)
						return
					}
				}
				t.Fatal("no free record in the data block")
			})
		},
		want:    []string{"DUP_DQBLK_VALID"},
		sameYes: true,
	},
	{
		name: "metaecc/tree block check",
		base: "quota-1k-ecc",
		damage: func(t *testing.T, img string) {
			quotaEdit(t, img, "aquota.user", ondisk.QuotaTreeRootBlock, false, func(b []byte) {
				put32(b, ondisk.QuotaCheckOffset(len(b))-4, 0xFFFFFFFF) // a reference to nowhere
			})
		},
		want:    []string{"QTREE_BLK_INVALID"},
		sameYes: true,
	},
	{
		name: "metaecc/data block check",
		base: "quota-1k-ecc",
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			n := quotaDataBlock(t, im, img, "aquota.group")
			im.close()
			quotaEdit(t, img, "aquota.group", n, false, func(b []byte) { put32(b, ondisk.QuotaCheckOffset(len(b))-4, 0xFFFFFFFF) })
		},
		want:    []string{"DQBLK_INVALID"},
		sameYes: true,
	},
	{
		name: "metaecc/duplicate in a damaged block",
		base: "quota-1k-ecc",
		// The first record copied into a free slot of its block, which
		// then fails its check: -n refuses both copies (DQBLK_INVALID
		// twice), -y takes the first and is asked about the second.
		damage: func(t *testing.T, img string) {
			im := openImage(t, img)
			n := quotaDataBlock(t, im, img, "aquota.user")
			im.close()
			quotaEdit(t, img, "aquota.user", n, false, func(b []byte) {
				per := ondisk.GlobalDquotsPerBlock(len(b))
				for i := 1; i < per; i++ {
					r := ondisk.GlobalDquotRecord(b, i)
					if ondisk.GlobalDquotUnused(r) {
						copy(r, ondisk.GlobalDquotRecord(b, 0))
						d, _ := ondisk.DecodeGlobalDquot(r)
						d.BHardLimit = 1 << 40 // more than the one bit META_ECC mends
						d.Encode(r)
						return
					}
				}
				t.Fatal("no free record in the data block")
			})
		},
		want:    []string{"DQBLK_INVALID"},
		sameYes: true,
		wantYes: []string{"DQBLK_INVALID", "DUP_DQBLK_INVALID"},
	},
}

func TestCorruptionCorpusQuota(t *testing.T) {
	realtools.Require(t)
	for _, tc := range corpusQuota {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) { checkCase(t, tc) })
	}
}
