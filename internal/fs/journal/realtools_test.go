package journal_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/fs/journal"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// realVolume is an image made by mkfs.ocfs2, opened for o2go's journal.
type realVolume struct {
	img   string
	bs    int
	dev   blockdev.Device
	c     *metacache.Cache
	cfg   journal.Config
	jino  uint64 // journal:0000
	super *ondisk.Dinode
}

var inodeRE = regexp.MustCompile(`Inode: (\d+)`)

// inodeOf asks debugfs.ocfs2 for the inode number of path.
func inodeOf(t testing.TB, img, path string) uint64 {
	t.Helper()
	m := inodeRE.FindStringSubmatch(realtools.Debugfs(t, img, "stat "+path))
	if m == nil {
		t.Fatalf("debugfs stat %s: no inode number", path)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

func openReal(t testing.TB, img string, bs int) *realVolume {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, bs)
	if _, err := dev.ReadAt(raw, 2*int64(bs)); err != nil {
		t.Fatal(err)
	}
	super, err := ondisk.DecodeDinode(raw)
	if err != nil || super.Super == nil {
		t.Fatalf("superblock: %v", err)
	}
	sb := super.Super
	c := metacache.New(dev, bs, metacache.Options{MetaECC: sb.Features.Incompat&ondisk.IncompatMetaECC != 0, FSGeneration: super.FSGeneration})
	return &realVolume{img: img, bs: bs, dev: dev, c: c, super: super,
		cfg:  journal.Config{ClusterSize: 1 << sb.ClusterSizeBits, CommitInterval: -1, Name: "journal:0000"},
		jino: inodeOf(t, img, "//journal:0000")}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sameImages requires two images to be byte-identical, naming the blocks
// that differ.
func sameImages(t testing.TB, a, b string, bs int, what string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(x) != len(y) {
		t.Fatalf("%s: images of %d and %d bytes", what, len(x), len(y))
	}
	var diff []string
	for off := 0; off < len(x); off += bs {
		if !bytes.Equal(x[off:off+bs], y[off:off+bs]) {
			diff = append(diff, strconv.Itoa(off/bs))
		}
	}
	if len(diff) > 0 {
		t.Fatalf("%s: %d blocks differ: %s", what, len(diff), strings.Join(diff[:min(len(diff), 20)], " "))
	}
}

// fsckReplay runs fsck.ocfs2 -fy once: on a dirty local volume 1.8.7
// replays the journals and then stops with "unrecoverable errors while
// replaying" (ondisk-format.md §12), which is exactly a pure replay.
func fsckReplay(t testing.TB, img string) {
	t.Helper()
	r := realtools.Fsck(t, img, "-fy")
	if !strings.Contains(r.Output, "journal replayed successfully") && !strings.Contains(r.Output, "replayed") {
		t.Fatalf("fsck.ocfs2 -fy did not replay a journal:\n%s", r.Output)
	}
}

// o2goReplay replays img's slot 0 journal with o2go.
func o2goReplay(t testing.TB, img string, bs int) *journal.ReplayReport {
	t.Helper()
	rv := openReal(t, img, bs)
	defer rv.dev.Close()
	rep, err := journal.Replay(rv.c, rv.jino, rv.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// modify changes bytes of a dinode-like block through a handle.
func modify(t testing.TB, h *journal.Handle, c *metacache.Cache, blkno uint64, checkOff int, f func([]byte)) {
	t.Helper()
	b, err := c.Get(blkno)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Access(b); err != nil {
		t.Fatal(err)
	}
	f(b.Data)
	h.Dirty(b, checkOff)
}

const (
	offMode      = 0x28
	offCtime     = 0x38
	offMtime     = 0x40
	offMtimeNsec = 0x6C
	offLabel     = ondisk.DinodeID2Offset + 0x50
)

// TestFsckReplaysO2goJournal: o2go journals real metadata changes (the
// mode and mtime of lost+found, the volume label) and "crashes" without a
// checkpoint. fsck.ocfs2 replays the journal: the result shows the changes
// and passes fsck.ocfs2 -fn; and o2go's replay of the same crashed image
// is byte-identical to fsck.ocfs2's.
func TestFsckReplaysO2goJournal(t *testing.T) {
	realtools.Require(t)
	for _, tc := range []struct {
		name string
		mkfs []string
	}{
		{"4k", []string{"-b", "4096", "-C", "4096", "-J", "size=4M"}},
		{"4k-block64-metaecc", []string{"-b", "4096", "-C", "8192", "-J", "size=4M,block64", "--fs-features=local,metaecc"}},
		{"1k", []string{"-b", "1024", "-C", "4096", "-J", "size=4M"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-N", "2", "-L", "testvol", "--fs-features=local"}, tc.mkfs...)
			if strings.Contains(strings.Join(tc.mkfs, " "), "--fs-features") {
				args = append([]string{"-N", "2", "-L", "testvol"}, tc.mkfs...)
			}
			img := realtools.MkfsImage(t, 256<<20, args...)
			bs, _ := strconv.Atoi(tc.mkfs[1])
			lf := inodeOf(t, img, "/lost+found")
			rv := openReal(t, img, bs)
			j, rep, err := journal.Load(rv.c, rv.jino, rv.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.WasDirty {
				t.Fatal("fresh volume's journal is dirty")
			}
			h, err := j.Begin(2)
			if err != nil {
				t.Fatal(err)
			}
			modify(t, h, rv.c, lf, ondisk.DinodeCheckOffset, func(b []byte) {
				binary.LittleEndian.PutUint16(b[offMode:], 0o40700)
				binary.LittleEndian.PutUint64(b[offMtime:], 1700000000)
				binary.LittleEndian.PutUint32(b[offMtimeNsec:], 0)
				binary.LittleEndian.PutUint64(b[offCtime:], 1700000000)
			})
			modify(t, h, rv.c, ondisk.SuperBlockBlkno, ondisk.DinodeCheckOffset, func(b []byte) {
				clear(b[offLabel : offLabel+ondisk.VolumeLabelLen])
				copy(b[offLabel:], "o2go-journal")
			})
			if err := h.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := j.CommitAndWait(); err != nil {
				t.Fatal(err)
			}
			j.Abandon() // crash: DIRTY set, nothing checkpointed
			rv.dev.Close()
			if out := realtools.Debugfs(t, img, "stats"); !strings.Contains(out, "Label: testvol") {
				t.Fatalf("label changed before any checkpoint:\n%s", out)
			}

			mine := img + ".o2go"
			copyFile(t, img, mine)
			r := o2goReplay(t, mine, bs)
			if r.Transactions != 1 || r.Blocks != 2 {
				t.Fatalf("o2go replay %+v", r)
			}
			fsckReplay(t, img)
			sameImages(t, img, mine, bs, "fsck.ocfs2's replay vs o2go's")

			realtools.Fsck(t, img, "-fy") // the second run clears DIRTY
			realtools.RequireFsckClean(t, img)
			st := realtools.Debugfs(t, img, "stat /lost+found")
			if !strings.Contains(st, "Mode: 0700") || !strings.Contains(st, "mtime: 0x6553f100") {
				t.Fatalf("lost+found after replay:\n%s", st)
			}
			if out := realtools.Debugfs(t, img, "stats"); !strings.Contains(out, "Label: o2go-journal") {
				t.Fatalf("label after replay:\n%s", out)
			}
		})
	}
}

// TestFsckReplaysWrappedLogWithRevokes: many transactions of many blocks
// make the 4 MiB log wrap; the crash leaves transactions on both sides of
// the wrap, with revokes of blocks that then got file data. fsck.ocfs2's
// replay and o2go's must agree byte for byte, and leave the revoked blocks'
// data alone.
func TestFsckReplaysWrappedLogWithRevokes(t *testing.T) {
	realtools.Require(t)
	const bs = 4096
	img := realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M", "--fs-features=local")
	// Scratch blocks: unused by mkfs (checked with icheck), in the volume's
	// last 16 MiB.
	const scratch0, nScratch = 61440, 600
	if out := realtools.Debugfs(t, img, fmt.Sprintf("icheck %d %d", scratch0, scratch0+nScratch-1)); strings.Count(out, "Unused") != 2 {
		t.Fatalf("scratch blocks in use:\n%s", out)
	}
	rv := openReal(t, img, bs)
	j, _, err := journal.Load(rv.c, rv.jino, rv.cfg)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(round int, blks ...uint64) {
		h, err := j.Begin(len(blks))
		if err != nil {
			t.Fatal(err)
		}
		for _, blk := range blks {
			b, err := h.New(blk)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < bs; k += 8 {
				binary.BigEndian.PutUint64(b.Data[k:], uint64(round)<<48|blk<<16|uint64(k))
			}
			if round%3 == 0 && blk%5 == 0 {
				binary.BigEndian.PutUint32(b.Data, ondisk.JBD2Magic) // escaped in the log
			}
			h.Dirty(b, -1)
		}
		if err := h.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := j.CommitAndWait(); err != nil {
			t.Fatal(err)
		}
	}
	blocks := func(from, n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(scratch0 + (from+i)%nScratch)
		}
		return out
	}
	for round := range 8 {
		fill(round, blocks(round*150, 200)...)
	}
	// Revoke some blocks of the last transactions, then give them file
	// data written around the journal.
	h, _ := j.Begin(0)
	var revoked []uint64
	for _, blk := range blocks(7*150, 200) {
		if blk%7 == 0 {
			h.Revoke(blk)
			revoked = append(revoked, blk)
		}
	}
	h.Stop()
	if err := j.CommitAndWait(); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("file data "), bs/10+1)[:bs]
	for _, blk := range revoked {
		if _, err := rv.dev.WriteAt(data, int64(blk)*bs); err != nil {
			t.Fatal(err)
		}
	}
	fill(8, blocks(100, 50)...)
	st := j.Stats()
	if st.LogWrites < uint64(st.LogCapacity) || st.Checkpoints == 0 {
		t.Fatalf("the log did not wrap: %+v", st)
	}
	j.Abandon()
	rv.dev.Sync()
	rv.dev.Close()

	mine := img + ".o2go"
	copyFile(t, img, mine)
	r := o2goReplay(t, mine, bs)
	if r.Transactions < 2 || r.RevokeHits == 0 {
		t.Fatalf("the crash left too little to replay: %+v", r)
	}
	fsckReplay(t, img)
	sameImages(t, img, mine, bs, "fsck.ocfs2's replay vs o2go's")
	got, _ := os.ReadFile(mine)
	for _, blk := range revoked {
		if !bytes.Equal(got[blk*bs:(blk+1)*bs], data) {
			t.Fatalf("revoked block %d lost its file data", blk)
		}
	}
	realtools.Fsck(t, img, "-fy")
	realtools.RequireFsckClean(t, img)
}

// TestCleanShutdownIsCleanForFsck: a journal o2go leaves after a clean
// shutdown is clean for fsck.ocfs2 (nothing to replay, no problem), its
// changes home.
func TestCleanShutdownIsCleanForFsck(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M", "--fs-features=local")
	lf := inodeOf(t, img, "/lost+found")
	rv := openReal(t, img, 4096)
	j, _, err := journal.Load(rv.c, rv.jino, rv.cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := j.Begin(1)
	modify(t, h, rv.c, lf, ondisk.DinodeCheckOffset, func(b []byte) {
		binary.LittleEndian.PutUint64(b[offMtime:], 1700000000)
	})
	h.Stop()
	if err := j.Shutdown(); err != nil {
		t.Fatal(err)
	}
	rv.dev.Close()
	r := realtools.Fsck(t, img, "-fn")
	if !r.Clean() || strings.Contains(r.Output, "Skipping journal replay") || strings.Contains(r.Output, "dirty") {
		t.Fatalf("fsck after a clean o2go shutdown:\n%s", r.Output)
	}
	if st := realtools.Debugfs(t, img, "stat /lost+found"); !strings.Contains(st, "mtime: 0x6553f100") {
		t.Fatalf("change not checkpointed:\n%s", st)
	}
}

// TestFsckReplaysABlockLoggedAgainAfterItsRevoke: a metadata block freed
// (revoked) and then reused as metadata before a checkpoint. fsck.ocfs2
// 1.8.7 spins forever replaying a log where a revoke record is older than
// a later copy of its block, so the journal checkpoints before logging the
// block again; the crashed log then replays the same with both tools.
func TestFsckReplaysABlockLoggedAgainAfterItsRevoke(t *testing.T) {
	realtools.Require(t)
	const bs = 4096
	img := realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M", "--fs-features=local")
	const scratch0 = 61440
	if out := realtools.Debugfs(t, img, fmt.Sprintf("icheck %d %d", scratch0, scratch0+3)); strings.Count(out, "Unused") != 2 {
		t.Fatalf("scratch blocks in use:\n%s", out)
	}
	rv := openReal(t, img, bs)
	j, _, err := journal.Load(rv.c, rv.jino, rv.cfg)
	if err != nil {
		t.Fatal(err)
	}
	write := func(fill byte, blks ...uint64) {
		h, err := j.Begin(len(blks))
		if err != nil {
			t.Fatal(err)
		}
		for _, blk := range blks {
			b, err := h.New(blk)
			if err != nil {
				t.Fatal(err)
			}
			copy(b.Data, bytes.Repeat([]byte{fill}, bs))
			h.Dirty(b, -1)
		}
		if err := h.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := j.CommitAndWait(); err != nil {
			t.Fatal(err)
		}
	}
	write(0x11, scratch0, scratch0+1, scratch0+2)
	h, _ := j.Begin(0)
	h.Revoke(scratch0)
	h.Revoke(scratch0 + 1)
	h.Stop()
	if err := j.CommitAndWait(); err != nil {
		t.Fatal(err)
	}
	write(0x22, scratch0+2) // unrelated: no checkpoint needed
	if n := j.Stats().RevokeCheckpoints; n != 0 {
		t.Fatalf("%d checkpoints forced by an unrevoked block", n)
	}
	write(0x33, scratch0, scratch0+3) // scratch0 is metadata again
	if n := j.Stats().RevokeCheckpoints; n != 1 {
		t.Fatalf("logging a revoked block again forced %d checkpoints, want 1", n)
	}
	j.Abandon()
	rv.dev.Sync()
	rv.dev.Close()

	mine := img + ".o2go"
	copyFile(t, img, mine)
	if r := o2goReplay(t, mine, bs); r.Transactions != 1 || r.Revokes != 0 {
		t.Fatalf("replay %+v: the log should hold only the last transaction", r)
	}
	fsckReplay(t, img)
	sameImages(t, img, mine, bs, "fsck.ocfs2's replay vs o2go's")
	got, _ := os.ReadFile(mine)
	for blk, fill := range map[uint64]byte{scratch0: 0x33, scratch0 + 2: 0x22, scratch0 + 3: 0x33} {
		if got[blk*bs] != fill || got[(blk+1)*bs-1] != fill {
			t.Errorf("block %d after replay starts with %#x, want %#x", blk, got[blk*bs], fill)
		}
	}
}
