package volume

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// populateOwners writes, through o2go's mount, files and directories owned
// by several users and groups: inline and extent files, a sparse one,
// directories, symlinks, so that every kind of inode counts toward some
// id's quota usage.
func populateOwners(t *testing.T, img string) {
	t.Helper()
	m, err := Mount(img, DefaultMountOptions())
	if err != nil {
		t.Fatalf("mount %s: %v", img, err)
	}
	fs := m.FS
	root := m.SB.RootBlkno
	cs := int64(m.SB.ClusterSize())
	owners := []inode.Caller{{UID: 0, GID: 0}, {UID: 1000, GID: 100}, {UID: 1001, GID: 100}, {UID: 4242, GID: 4242}, {UID: 65534, GID: 65534}, {UID: 1000, GID: 1000}, {UID: 8193, GID: 1}, {UID: 1, GID: 8193}}
	for i, who := range owners {
		d, err := fs.Create(inode.Ref{Ino: root}, fmt.Sprintf("home-%d", i), inode.NewNode{Mode: syscall.S_IFDIR | 0o755}, who)
		if err != nil {
			t.Fatalf("mkdir: %v", err)
		}
		for j := 0; j <= i; j++ {
			ino, err := fs.Create(inode.Ref{Ino: d}, fmt.Sprintf("file-%d", j), inode.NewNode{Mode: syscall.S_IFREG | 0o644}, who)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			size := []int64{10, cs + 1, 3*cs + 100, 0}[j%4]
			if size > 0 {
				if _, err := fs.Write(ino, bytes.Repeat([]byte{byte(i + j)}, int(size)), 0); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
		}
		if _, err := fs.Create(inode.Ref{Ino: d}, "link", inode.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: strings.Repeat("t", 100*i+1)}, who); err != nil {
			t.Fatalf("symlink: %v", err)
		}
		if i == 2 {
			ino, err := fs.Create(inode.Ref{Ino: d}, "sparse", inode.NewNode{Mode: syscall.S_IFREG | 0o644}, who)
			if err == nil {
				_, err = fs.Write(ino, []byte("end"), 9*cs)
			}
			if err != nil {
				t.Fatalf("sparse: %v", err)
			}
		}
	}
	if err := m.Unmount(); err != nil {
		t.Fatalf("unmount: %v", err)
	}
}

// idUsage is what a quota record says one id uses.
type idUsage struct{ inodes, space uint64 }

// globalQuotaUsage parses a global quota file's bytes (as debugfs.ocfs2
// cat prints them) by walking its tree, and returns every record's usage
// by id. It fails the test on a malformed file.
func globalQuotaUsage(t *testing.T, file []byte, bs int) map[uint32]idUsage {
	t.Helper()
	le := binary.LittleEndian
	if len(file)%bs != 0 || len(file) < 2*bs {
		t.Fatalf("quota file of %d bytes", len(file))
	}
	blocks := len(file) / bs
	if n := int(le.Uint32(file[ondisk.QuotaInfoOffset+12:])); n != blocks {
		t.Fatalf("dqi_blocks %d, the file has %d", n, blocks)
	}
	out := map[uint32]idUsage{}
	depth := ondisk.QuotaTreeDepth(bs)
	var walk func(blk uint32, level int)
	walk = func(blk uint32, level int) {
		if int(blk) >= blocks {
			t.Fatalf("reference to block %d of %d", blk, blocks)
		}
		b := file[int(blk)*bs : int(blk+1)*bs]
		if level == depth {
			n := int(le.Uint16(b[8:]))
			for i := 0; i < ondisk.GlobalDquotsPerBlock(bs); i++ {
				r := b[ondisk.QuotaDataHeaderSize+i*ondisk.GlobalDquotSize:][:ondisk.GlobalDquotSize]
				if bytes.Count(r, []byte{0}) == len(r) {
					continue
				}
				n--
				id := le.Uint32(r)
				if _, dup := out[id]; !dup {
					out[id] = idUsage{inodes: le.Uint64(r[0x18:]), space: le.Uint64(r[0x30:])}
				}
			}
			if n < 0 {
				t.Fatalf("data block %d: more records than dqdh_entries", blk)
			}
			return
		}
		for i := 0; i < (bs-quotaReserved)/4; i++ {
			if ref := le.Uint32(b[4*i:]); ref != 0 {
				walk(ref, level+1)
			}
		}
	}
	walk(ondisk.QuotaTreeRootBlock, 0)
	return out
}

// catFile is debugfs.ocfs2's cat of path.
func catFile(t *testing.T, img, path string) []byte {
	t.Helper()
	out, stderr, err := realtools.DebugfsRaw("-R", "cat "+path, img)
	if err != nil || strings.TrimSpace(stderr) != "" {
		t.Fatalf("debugfs.ocfs2 cat %s: %v %s", path, err, stderr)
	}
	return []byte(out)
}

// expectedQuotaUsage counts, with o2go's reader, what every id of quota
// type typ uses: inodes that are not system files (the root counts), the
// bytes of their clusters.
func expectedQuotaUsage(t *testing.T, img string, typ int) map[uint32]idUsage {
	t.Helper()
	tv := openTunefsVol(t, img)
	defer tv.Close()
	out := map[uint32]idUsage{}
	err := tv.forEachInode("", func(d *ondisk.Dinode) error {
		if d.Flags&ondisk.InodeSystem != 0 && d.Blkno != tv.SB.RootBlkno {
			return nil
		}
		id := d.UID
		if typ == 1 {
			id = d.GID
		}
		u := out[id]
		u.inodes++
		u.space += uint64(d.Clusters) * uint64(tv.cs())
		out[id] = u
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// usageString prints usage sorted by id.
func usageString(m map[uint32]idUsage) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %d:%d/%d", id, m[id].inodes, m[id].space)
	}
	return b.String()
}

// quotaPaths are the quota files of a volume with slots slots.
func quotaPaths(slots int) []string {
	var out []string
	for _, typ := range []string{"user", "group"} {
		out = append(out, "//aquota."+typ)
		for s := 0; s < slots; s++ {
			out = append(out, fmt.Sprintf("//aquota.%s:%04d", typ, s))
		}
	}
	return out
}

// sameQuotaFile compares two global or local quota files, ignoring what
// tunefs.ocfs2 leaves unspecified: the global header block past its info
// (uninitialised memory, as mkfs.ocfs2's) and that block's check.
func sameQuotaFile(a, b []byte, global bool, bs int) bool {
	if len(a) != len(b) {
		return false
	}
	if global && len(a) >= bs {
		a, b = bytes.Clone(a), bytes.Clone(b)
		clear(a[0x20:bs])
		clear(b[0x20:bs])
	}
	return bytes.Equal(a, b)
}

// TestTunefsQuotaOnMatchesTunefsOcfs2 turns user and group quotas on with
// o2go tunefs and with tunefs.ocfs2 on twin volumes whose files belong to
// several users and groups, for several geometries. o2go's volume must
// pass fsck.ocfs2 -fn and keep its tree; its quota files must be the ones
// tunefs.ocfs2 writes, byte for byte as debugfs.ocfs2 reads them (ids
// that share a chain of libocfs2's quota hash included); the usage they
// hold must be what every inode uses, and what fsck.ocfs2 -fy counts when
// it rebuilds them (fsck.ocfs2 -n checks the files' structure only, not
// the usage in them); and the two images must match block for block but
// for inode times, the global files' unspecified bytes and the system
// directory's free-space bookkeeping tunefs.ocfs2 leaves stale
// (skipSysdirFreeSpace).
func TestTunefsQuotaOnMatchesTunefsOcfs2(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	geos := []struct {
		name  string
		size  int64
		slots int
		args  []string
	}{
		{"4k-4k", 600 << 20, 2, []string{"-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local"}},
		{"1k-4k", 400 << 20, 3, []string{"-b", "1024", "-C", "4096", "-N", "3", "--fs-features=local"}},
		{"2k-32k-metaecc", 600 << 20, 2, []string{"-b", "2048", "-C", "32768", "-N", "2", "--fs-features=local,metaecc"}},
		{"512-8k-noinline", 300 << 20, 1, []string{"-b", "512", "-C", "8192", "-N", "1", "--fs-features=local,noinline-data"}},
	}
	for _, g := range geos {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			base, _ := twin(t, g.size, g.args...)
			populateOwners(t, base)
			populate(t, base)
			mine, real := copyImage(t, base), copyImage(t, base)
			want := readTree(t, mine)
			tunefsO2go(t, mine, TunefsOptions{Features: "usrquota,grpquota"})
			requireClean(t, mine, "usrquota,grpquota")
			if f := superWith(t, mine).Super.Features.RoCompat; f&(ondisk.RoCompatUsrQuota|ondisk.RoCompatGrpQuota) != ondisk.RoCompatUsrQuota|ondisk.RoCompatGrpQuota {
				t.Fatalf("ro-compat features %#x after usrquota,grpquota", f)
			}
			if d := diffTrees(want, readTree(t, mine)); d != "" {
				t.Errorf("the tree changed:\n%s", d)
			}
			bs := superWith(t, mine).Super.BlockSize()
			for typ, path := range []string{"//aquota.user", "//aquota.group"} {
				got := globalQuotaUsage(t, catFile(t, mine, path), bs)
				exp := expectedQuotaUsage(t, mine, typ)
				if len(exp) < 5 || !maps.Equal(got, exp) {
					t.Errorf("%s holds%s\nthe inodes use%s", path, usageString(got), usageString(exp))
				}
			}

			tunefsReal(t, real, "--fs-features=usrquota,grpquota")
			requireClean(t, real, "tunefs.ocfs2 usrquota,grpquota")
			rebuilt := copyImage(t, mine)
			realtools.Fsck(t, rebuilt, "-fy")
			for _, p := range quotaPaths(g.slots) {
				global := !strings.Contains(p, ":")
				m := catFile(t, mine, p)
				if r := catFile(t, real, p); !sameQuotaFile(m, r, global, bs) {
					t.Errorf("%s differs from tunefs.ocfs2's (%d and %d bytes)", p, len(m), len(r))
				}
				// fsck.ocfs2 meets ids in the order of the tree it reads,
				// so ids of one hash chain may come out in another order:
				// the usage must be the same, not the bytes.
				r := catFile(t, rebuilt, p)
				switch {
				case global:
					if a, b := globalQuotaUsage(t, m, bs), globalQuotaUsage(t, r, bs); !maps.Equal(a, b) {
						t.Errorf("%s holds%s\nfsck.ocfs2 -fy rebuilds it with%s", p, usageString(a), usageString(b))
					}
				case !bytes.Equal(m, r):
					t.Errorf("%s differs from what fsck.ocfs2 -fy rebuilds", p)
				}
			}
			diffs := skipSysdirFreeSpace(t, mine, skipQuotaHeaders(t, real, diffBlocks(t, mine, real, bs)))
			if bad := onlyTimes(t, mine, diffs); bad != "" {
				t.Errorf("o2go and tunefs.ocfs2 differ beyond inode times at %s", bad)
			}
		})
	}
}

// skipSysdirFreeSpace drops from diffs the free-space bookkeeping of the
// system directory, which tunefs.ocfs2 leaves stale when it links the new
// files (libocfs2's ocfs2_link neither updates a block's db_free_rec_len
// nor takes a block it fills off the index's free list) and o2go keeps
// right: each block's trailer db_free_rec_len and db_free_next, the dx
// root's dr_free_blk, and the checks over them.
func skipSysdirFreeSpace(t *testing.T, img string, diffs map[uint64][]int) map[uint64][]int {
	t.Helper()
	tv := openTunefsVol(t, img)
	defer tv.Close()
	d, err := tv.Cache.Dinode(tv.SB.SystemDirBlkno)
	if err != nil {
		t.Fatal(err)
	}
	skip := func(blk uint64, ranges ...[2]int) {
		var keep []int
		for _, o := range diffs[blk] {
			if !slices.ContainsFunc(ranges, func(r [2]int) bool { return o >= r[0] && o < r[1] }) {
				keep = append(keep, o)
			}
		}
		if len(keep) == 0 {
			delete(diffs, blk)
		} else if len(diffs[blk]) > 0 {
			diffs[blk] = keep
		}
	}
	if d.Inline == nil {
		blks, err := tv.dirBlocks(d)
		if err != nil {
			t.Fatal(err)
		}
		tr := ondisk.TrailerOffset(tv.bs())
		for _, b := range blks {
			skip(b, [2]int{tr + 0x0E, tr + 0x10}, [2]int{tr + 0x20, tr + 0x28}, [2]int{tr + 0x38, tr + 0x40})
		}
	}
	if d.DynFeatures&ondisk.DynIndexedDir != 0 {
		skip(d.DxRoot, [2]int{0x08, 0x10}, [2]int{0x40, 0x48})
	}
	return diffs
}

// skipQuotaHeaders drops from diffs the header blocks of img's global
// quota files, whose tails tunefs.ocfs2 leaves unspecified.
func skipQuotaHeaders(t *testing.T, img string, diffs map[uint64][]int) map[uint64][]int {
	t.Helper()
	tv := openTunefsVol(t, img)
	defer tv.Close()
	for _, k := range []ondisk.SystemFileKind{ondisk.SysUserQuota, ondisk.SysGroupQuota} {
		d, err := tv.systemInode(k, -1)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := tv.fileBlock(d, 0)
		if err != nil {
			t.Fatal(err)
		}
		delete(diffs, blk)
	}
	return diffs
}

// TestTunefsQuotaManyIDsMatchTunefsOcfs2: with more ids than libocfs2's
// quota hash starts with chains (8192), the hash grows while usage is
// counted, which reorders the ids it writes; o2go's quota files must
// still be tunefs.ocfs2's, byte for byte, and hold every id's usage.
func TestTunefsQuotaManyIDsMatchTunefsOcfs2(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	base, _ := twin(t, 400<<20, "-b", "4096", "-C", "4096", "-N", "1", "--fs-features=local")
	m, err := Mount(base, DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	const ids = 8192 + 500
	d, err := m.FS.Create(inode.Ref{Ino: m.SB.RootBlkno}, "many", inode.NewNode{Mode: syscall.S_IFDIR | 0o755}, inode.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ids; i++ {
		// Ids spread over the hash, some sharing chains.
		who := inode.Caller{UID: uint32(i*7919) % 100000, GID: uint32(i)}
		if _, err := m.FS.Create(inode.Ref{Ino: d}, fmt.Sprintf("f%d", i), inode.NewNode{Mode: syscall.S_IFREG | 0o644}, who); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	mine, real := copyImage(t, base), copyImage(t, base)
	tunefsO2go(t, mine, TunefsOptions{Features: "usrquota,grpquota"})
	requireClean(t, mine, "usrquota,grpquota")
	tunefsReal(t, real, "--fs-features=usrquota,grpquota")
	for typ, p := range []string{"//aquota.user", "//aquota.group"} {
		a, b := catFile(t, mine, p), catFile(t, real, p)
		if !sameQuotaFile(a, b, true, 4096) {
			t.Errorf("%s differs from tunefs.ocfs2's (%d and %d bytes)", p, len(a), len(b))
		}
		got := globalQuotaUsage(t, a, 4096)
		if exp := expectedQuotaUsage(t, mine, typ); len(got) < ids/2 || !maps.Equal(got, exp) {
			t.Errorf("%s holds %d ids, the inodes use %d", p, len(got), len(exp))
		}
	}
}

// quotaRecordAt returns the offset of id's record in a global quota
// file's bytes, or -1.
func quotaRecordAt(file []byte, bs int, id uint32) int {
	le := binary.LittleEndian
	depth := ondisk.QuotaTreeDepth(bs)
	blk := uint32(ondisk.QuotaTreeRootBlock)
	for level := 0; level < depth; level++ {
		off := int(blk)*bs + 4*ondisk.QuotaTreeIndex(bs, id, level)
		if off+4 > len(file) {
			return -1
		}
		if blk = le.Uint32(file[off:]); blk == 0 || int(blk+1)*bs > len(file) {
			return -1
		}
	}
	for i := 0; i < ondisk.GlobalDquotsPerBlock(bs); i++ {
		off := int(blk)*bs + ondisk.QuotaDataHeaderSize + i*ondisk.GlobalDquotSize
		if r := file[off : off+ondisk.GlobalDquotSize]; le.Uint32(r) == id && bytes.Count(r, []byte{0}) != len(r) {
			return off
		}
	}
	return -1
}

// setQuotaLimits writes limits and a block grace time into id's record of
// img's global quota file of type typ, as setquota would.
func setQuotaLimits(t *testing.T, img string, typ int, id uint32, limits [4]uint64, btime uint64) {
	t.Helper()
	path := []string{"//aquota.user", "//aquota.group"}[typ]
	file := catFile(t, img, path)
	tv := openTunefsVol(t, img)
	bs := tv.bs()
	d, err := tv.systemInode(quotaTypes[typ].global, -1)
	if err != nil {
		t.Fatal(err)
	}
	off := quotaRecordAt(file, bs, id)
	if off < 0 {
		t.Fatalf("%s has no record for id %d", path, id)
	}
	blk, err := tv.fileBlock(d, uint64(off/bs))
	ecc := tv.SB.Features.Incompat&ondisk.IncompatMetaECC != 0
	tv.Close()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	rec := file[off:]
	le.PutUint64(rec[0x10:], limits[0]) // isoft
	le.PutUint64(rec[0x08:], limits[1]) // ihard
	le.PutUint64(rec[0x28:], limits[2]) // bsoft
	le.PutUint64(rec[0x20:], limits[3]) // bhard
	le.PutUint64(rec[0x38:], btime)
	b := file[off/bs*bs:][:bs]
	if ecc {
		ondisk.SetBlockCheck(b, bs-quotaReserved)
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, int64(blk)*int64(bs)); err != nil {
		t.Fatal(err)
	}
}

// quotaLimits reads back id's limits and block grace time.
func quotaLimits(t *testing.T, img string, typ int, id uint32) ([4]uint64, uint64) {
	t.Helper()
	file := catFile(t, img, []string{"//aquota.user", "//aquota.group"}[typ])
	bs := superWith(t, img).Super.BlockSize()
	off := quotaRecordAt(file, bs, id)
	if off < 0 {
		t.Fatalf("no record for id %d", id)
	}
	le := binary.LittleEndian
	r := file[off:]
	return [4]uint64{le.Uint64(r[0x10:]), le.Uint64(r[0x08:]), le.Uint64(r[0x28:]), le.Uint64(r[0x20:])}, le.Uint64(r[0x38:])
}

// TestTunefsQuotaUsageFollowsFeatureChanges: on a volume with quotas, the
// feature changes that grow or shrink files (noinline-data, nosparse,
// sparse, metaecc, indexed-dirs) leave quota files that hold what every id
// uses and keep the limits and grace times set on ids; the usage changes
// along the way. The recount is what fsck.ocfs2 -fy does: stopped before
// it, the volume fsck.ocfs2 -fy repairs has the quota files o2go's recount
// then writes on a copy, byte for byte.
func TestTunefsQuotaUsageFollowsFeatureChanges(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	img, _ := twin(t, 600<<20, "-b", "2048", "-C", "4096", "-N", "2", "--fs-features=local")
	populate(t, img)
	populateOwners(t, img)
	tunefsO2go(t, img, TunefsOptions{Features: "usrquota,grpquota"})
	// uid 1000 over its block soft limit, with a grace time running; gid
	// 100 under its limits.
	userLimits, groupLimits := [4]uint64{1000, 2000, 4096, 1 << 30}, [4]uint64{0, 5000, 1 << 30, 0}
	setQuotaLimits(t, img, 0, 1000, userLimits, 1800000000)
	setQuotaLimits(t, img, 1, 100, groupLimits, 0)
	requireClean(t, img, "setting limits")
	want := readTree(t, img)
	changed := false
	for _, features := range []string{"noinline-data", "nosparse", "sparse,unwritten", "metaecc", "noindexed-dirs", "indexed-dirs"} {
		recounts := features != "noindexed-dirs" // which changes no file's clusters
		stale := copyImage(t, img)
		before := expectedQuotaUsage(t, img, 0)
		tunefsO2go(t, img, TunefsOptions{Features: features})
		requireClean(t, img, features)
		if d := diffTrees(want, readTree(t, img)); d != "" {
			t.Fatalf("after %s the tree differs:\n%s", features, d)
		}
		checkQuotaUsage(t, img)
		changed = changed || !maps.Equal(before, expectedQuotaUsage(t, img, 0))
		if l, bt := quotaLimits(t, img, 0, 1000); l != userLimits || bt != 1800000000 {
			t.Errorf("after %s uid 1000 has limits %v and grace time %d", features, l, bt)
		}
		if l, _ := quotaLimits(t, img, 1, 100); l != groupLimits {
			t.Errorf("after %s gid 100 has limits %v", features, l)
		}

		if !recounts {
			continue
		}
		o := TunefsOptions{Features: features, interrupt: stopAt("quota-refresh", 1)}
		if _, err := tunefsO2goErr(stale, o); !errors.Is(err, errTunefsStop) {
			t.Fatalf("%s stopped before the recount: %v", features, err)
		}
		repaired := copyImage(t, stale)
		realtools.Fsck(t, repaired, "-fy")
		r := &tunefsRun{path: stale, o: &TunefsOptions{Yes: true, HeartbeatWait: 300e6}, out: io.Discard, eout: io.Discard}
		if err := r.runOp(tunefsOp{name: "recount", rw: true, alloc: true, run: (*tunefsVol).refreshQuotaUsage}); err != nil {
			t.Fatal(err)
		}
		requireClean(t, stale, features+" and the recount")
		bs := superWith(t, img).Super.BlockSize()
		for _, p := range quotaPaths(2) {
			if a, b := catFile(t, stale, p), catFile(t, repaired, p); !sameQuotaFile(a, b, !strings.Contains(p, ":"), bs) {
				t.Errorf("after %s o2go's recount of %s differs from fsck.ocfs2 -fy's", features, p)
			}
		}
	}
	if !changed {
		t.Error("no change moved any id's usage: the test checks nothing")
	}
}
