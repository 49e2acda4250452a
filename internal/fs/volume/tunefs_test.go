package volume

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// diffBlocks lists the blocks (of bs bytes) where two images differ, and
// for each the byte offsets inside it (at most a few).
func diffBlocks(t *testing.T, a, b string, bs int) map[uint64][]int {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(da) != len(db) {
		t.Fatalf("%s is %d bytes, %s %d", a, len(da), b, len(db))
	}
	out := map[uint64][]int{}
	for off := 0; off < len(da); off += bs {
		x, y := da[off:off+bs], db[off:off+bs]
		if bytes.Equal(x, y) {
			continue
		}
		var offs []int
		for i := range x {
			if x[i] != y[i] {
				offs = append(offs, i)
			}
		}
		out[uint64(off/bs)] = offs
	}
	return out
}

// onlyTimes reports whether every difference lies in an inode's
// timestamps (i_atime, i_ctime, i_mtime and their nanoseconds) or its
// check, in blocks that hold inodes.
func onlyTimes(t *testing.T, img string, diffs map[uint64][]int) string {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bs := superWith(t, img).Super.BlockSize()
	var bad []string
	for blk, offs := range diffs {
		b := data[blk*uint64(bs) : (blk+1)*uint64(bs)]
		isInode := string(b[:8]) == ondisk.InodeSignature
		for _, o := range offs {
			if isInode && (o >= 0x30 && o < 0x48 || o >= 0x64 && o < 0x70 || o >= 0x80 && o < 0x88) {
				continue
			}
			bad = append(bad, fmt.Sprintf("block %d byte 0x%x", blk, o))
			break
		}
	}
	sort.Strings(bad)
	return strings.Join(bad, ", ")
}

// twin makes an image with mkfs.ocfs2 and a copy of it. Where
// mkfs.ocfs2 leaves its known defect (an unindexed system directory on an
// indexed-dirs volume: DX_TREE_MISSING), fsck.ocfs2 -fy repairs it first,
// so that both start from a volume fsck.ocfs2 accepts.
func twin(t *testing.T, size int64, args ...string) (o2go, real string) {
	t.Helper()
	real = realtools.MkfsImage(t, size, args...)
	if r := realtools.Fsck(t, real, "-fn"); !r.Clean() {
		realtools.Fsck(t, real, "-fy")
		requireClean(t, real, "mkfs.ocfs2 and fsck.ocfs2 -fy")
	}
	return copyImage(t, real), real
}

// TestTunefsLabelJournalSlotsMatchTunefsOcfs2 runs each operation with
// o2go tunefs and tunefs.ocfs2 on twin local volumes of several
// geometries and compares the images block for block: they must be the
// same apart from the timestamps of the inodes the operation touched
// (tunefs.ocfs2 stamps the time of day), and pass fsck.ocfs2 -fn.
func TestTunefsLabelJournalSlotsMatchTunefsOcfs2(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	geos := []struct {
		name string
		size int64
		args []string
	}{
		{"4k-2slots", 1200 << 20, []string{"-b", "4096", "-N", "2", "--fs-features=local"}},
		{"1k-4k", 400 << 20, []string{"-b", "1024", "-C", "4096", "-N", "2", "--fs-features=local"}},
		{"2k-32k-noinline", 500 << 20, []string{"-b", "2048", "-C", "32768", "-N", "2", "--fs-features=local,noinline-data"}},
		{"4k-8slots-maxfeatures", 700 << 20, []string{"-b", "4096", "-N", "8", "--fs-features=local", "--fs-feature-level=max-features"}},
	}
	ops := []struct {
		name string
		o    TunefsOptions
		args []string
	}{
		{"label", TunefsOptions{SetLabel: true, Label: "renamed volume"}, []string{"-L", "renamed volume"}},
		{"uuid", TunefsOptions{ResetUUID: true, UUID: "2a4d1c58-1faa-42a1-a41d-26efc90c1315"}, []string{"--uuid-reset=2a4d1c58-1faa-42a1-a41d-26efc90c1315"}},
		{"journal-grow", TunefsOptions{JournalSize: 24 << 20}, []string{"-J", "size=24M"}},
		{"journal-shrink", TunefsOptions{JournalSize: 4 << 20}, []string{"-J", "size=4M"}},
		{"block64", TunefsOptions{JournalBlocks: 1}, []string{"-J", "block64"}},
		{"slots+1", TunefsOptions{Slots: 0}, nil},
		{"slots+3", TunefsOptions{Slots: 0}, nil},
	}
	for _, g := range geos {
		for _, op := range ops {
			t.Run(g.name+"/"+op.name, func(t *testing.T) {
				t.Parallel()
				mine, real := twin(t, g.size, g.args...)
				o, args := op.o, op.args
				if strings.HasPrefix(op.name, "slots+") {
					n := int(superWith(t, mine).Super.MaxSlots) + int(op.name[len(op.name)-1]-'0')
					o.Slots, args = n, []string{"-N", fmt.Sprint(n)}
				}
				tunefsO2go(t, mine, o)
				tunefsReal(t, real, args...)
				requireClean(t, mine, op.name)
				diffs := diffBlocks(t, mine, real, superWith(t, mine).Super.BlockSize())
				if op.name == "uuid" {
					// o2go also writes the new UUID into each journal's
					// superblock; tunefs.ocfs2 leaves the old one there.
					checkJournalUUIDs(t, mine, diffs)
				}
				if strings.HasPrefix(op.name, "slots+") {
					dropDirectoryDiffs(t, mine, diffs)
				}
				if bad := onlyTimes(t, mine, diffs); bad != "" {
					t.Errorf("o2go and tunefs.ocfs2 differ beyond inode times at %s", bad)
				}
			})
		}
	}
}

// dropDirectoryDiffs removes from diffs what -N writes differently from
// tunefs.ocfs2 in directories, by design: o2go links the new names through
// fs/dir, which writes directories as the kernel does (the exact largest
// hole in each trailer, the index's free list, a new directory's i_size
// of one block and zeros after its entries, where libocfs2 writes i_size
// blocksize-64 and leaves stale buffer bytes).
func dropDirectoryDiffs(t *testing.T, img string, diffs map[uint64][]int) {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bs := uint64(superWith(t, img).Super.BlockSize())
	for blk, offs := range diffs {
		b := data[blk*bs : (blk+1)*bs]
		switch {
		case ondisk.HasDirTrailerSignature(b), string(b[:8]) == ondisk.DXRootSignature:
			delete(diffs, blk)
		case string(b[:8]) == ondisk.InodeSignature:
			d, err := ondisk.DecodeDinode(b)
			if err != nil || !d.IsDir() {
				continue
			}
			var keep []int
			for _, o := range offs {
				if o < 0x20 || o >= 0x28 { // i_size
					keep = append(keep, o)
				}
			}
			diffs[blk] = keep
		}
	}
}

// checkJournalUUIDs removes from diffs the journal superblocks that hold
// the volume's UUID where tunefs.ocfs2 left the old one.
func checkJournalUUIDs(t *testing.T, img string, diffs map[uint64][]int) {
	t.Helper()
	tv := openTunefsVol(t, img)
	defer tv.Close()
	v := tv.Volume
	for slot := 0; slot < int(v.SB.MaxSlots); slot++ {
		d, jsb := journalSuper(t, tv, slot)
		if jsb.UUID != v.SB.UUID {
			t.Errorf("journal:%04d's superblock has UUID %x, the volume %x", slot, jsb.UUID, v.SB.UUID)
		}
		blk := d.Extents.Recs[0].Blkno
		offs := diffs[blk]
		for _, o := range offs {
			if o < 0x30 || o >= 0x40 {
				t.Errorf("journal:%04d's superblock differs at byte 0x%x, beyond its UUID", slot, o)
			}
		}
		delete(diffs, blk)
	}
}

// TestTunefsResizeMatchesTunefsOcfs2 grows twin volumes with -S (to the
// device, and to a given size in blocks) with both tools: the images must
// be the same apart from the backup superblocks that fall inside the grown
// part, whose clusters o2go marks used (tunefs.ocfs2 offline leaves them
// free), and o2go's must pass fsck.ocfs2 -fn and show the new size.
func TestTunefsResizeMatchesTunefsOcfs2(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	cases := []struct {
		name       string
		size, grow int64
		args       []string
		to         string // -S argument in blocks ("" = the device)
	}{
		{"4k-to-device-past-1G", 900 << 20, 1500 << 20, []string{"-b", "4096", "-N", "2", "--fs-features=local"}, ""},
		{"1k-tail-group", 100 << 20, 300 << 20, []string{"-b", "1024", "-C", "4096", "-N", "2", "--fs-features=local"}, ""},
		{"4k-64k-blocks", 400 << 20, 2100 << 20, []string{"-b", "4096", "-C", "65536", "-N", "2", "--fs-features=local,metaecc"}, "400000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mine, real := twin(t, tc.size, tc.args...)
			for _, img := range []string{mine, real} {
				if err := os.Truncate(img, tc.grow); err != nil {
					t.Fatal(err)
				}
			}
			o := TunefsOptions{Resize: true, ResizeTo: tc.to}
			tunefsO2go(t, mine, o)
			args := []string{"-y", "-S", real}
			if tc.to != "" {
				args = append(args, tc.to) // tunefs.ocfs2 takes the size after the device
			}
			if out, err := runTool("tunefs.ocfs2", args...); err != nil {
				t.Fatalf("tunefs.ocfs2 %v: %v\n%s", args, err, out)
			}
			requireClean(t, mine, "-S")
			sm, sr := superWith(t, mine), superWith(t, real)
			if sm.Clusters != sr.Clusters {
				t.Fatalf("o2go grew to %d clusters, tunefs.ocfs2 to %d", sm.Clusters, sr.Clusters)
			}
			bs := sm.Super.BlockSize()
			diffs := diffBlocks(t, mine, real, bs)
			// The global bitmap inode (i_used) and the groups holding new
			// backup superblocks may differ, by the backups' bits.
			newBackups := map[uint64]bool{}
			oldBlocks := uint64(tc.size) / uint64(bs)
			for _, b := range ondisk.BackupSuperBlockBlknos(bs, uint64(sm.Clusters)*uint64(sm.Super.BlocksPerCluster())) {
				if b >= oldBlocks {
					newBackups[b] = true
				}
			}
			checkBackupReservations(t, mine, real, newBackups, diffs)
			if bad := onlyTimes(t, mine, diffs); bad != "" {
				t.Errorf("o2go and tunefs.ocfs2 differ beyond inode times and backup reservations at %s", bad)
			}
		})
	}
}

// checkBackupReservations accounts for the one documented difference of
// -S: each new backup superblock's cluster is used in o2go's global bitmap.
func checkBackupReservations(t *testing.T, mine, real string, newBackups map[uint64]bool, diffs map[uint64][]int) {
	t.Helper()
	cmds := []string{"stat //global_bitmap"}
	m, r := debugfsBatch(t, mine, cmds), debugfsBatch(t, real, cmds)
	_, um, _ := bitmapCounts(t, m["stat //global_bitmap"])
	_, ur, _ := bitmapCounts(t, r["stat //global_bitmap"])
	if um-ur != int64(len(newBackups)) {
		t.Errorf("o2go's global bitmap uses %d clusters, tunefs.ocfs2's %d: want %d more (the new backup superblocks)", um, ur, len(newBackups))
	}
	for b := range newBackups {
		out := realtools.Debugfs(t, mine, fmt.Sprintf("icheck %d", b))
		if strings.Contains(out, "Unused") {
			t.Errorf("backup superblock block %d is not marked used by o2go:\n%s", b, out)
		}
	}
	gbIno := firstInt(t, `Inode: (\d+)`, m["stat //global_bitmap"])
	delete(diffs, uint64(gbIno))
	// The chain records in the inode and the groups' free counts and bits.
	sm := superWith(t, mine)
	bpc := uint64(sm.Super.BlocksPerCluster())
	cpg := uint64(ondisk.GlobalBitmapClustersPerGroup(sm.Super.BlockSize()))
	for b := range newBackups {
		grp := ondisk.GlobalBitmapGroupBlkno(int(b/bpc/cpg), int(cpg), int(bpc), sm.Super.FirstClusterGroup)
		delete(diffs, grp)
	}
}

// runTool runs a program and returns its combined output.
func runTool(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// openTunefsVol opens img read-only for a test's checks; the caller
// closes it.
func openTunefsVol(t *testing.T, img string) *tunefsVol {
	t.Helper()
	v, err := Open(img, OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return &tunefsVol{Volume: v}
}

// journalSuper reads journal:slot's inode and JBD2 superblock.
func journalSuper(t *testing.T, tv *tunefsVol, slot int) (*ondisk.Dinode, *ondisk.JournalSuperBlock) {
	t.Helper()
	d, err := tv.systemInode(ondisk.SysJournal, slot)
	if err != nil {
		t.Fatal(err)
	}
	jsb, err := tv.readJournalSuper(d)
	if err != nil {
		t.Fatal(err)
	}
	return d, jsb
}
