package heartbeat

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/base"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

var (
	reExtent  = regexp.MustCompile(`(?m)^\s*0\s+0\s+(\d+)\s+(\d+)\s+0x`)
	reBits    = regexp.MustCompile(`Block Size Bits: (\d+)\s+Cluster Size Bits: (\d+)`)
	reBitmapN = regexp.MustCompile(`Bitmap Total: (\d+)`)
)

func atoi(t *testing.T, s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// debugfsGeometry finds the heartbeat area as debugfs.ocfs2 reports it,
// independently of o2go's reader.
func debugfsGeometry(t *testing.T, img string, hbDevice bool) Geometry {
	stats := realtools.Debugfs(t, img, "stats")
	m := reBits.FindStringSubmatch(stats)
	if m == nil {
		t.Fatalf("no block/cluster bits in debugfs stats:\n%s", stats)
	}
	blockBits, clusterBits := atoi(t, m[1]), atoi(t, m[2])
	st := realtools.Debugfs(t, img, "stat //heartbeat")
	e := reExtent.FindStringSubmatch(st)
	if e == nil {
		t.Fatalf("no extent in debugfs stat //heartbeat:\n%s", st)
	}
	g := Geometry{Start: atoi(t, e[2]) << blockBits, SectorSize: 512, Size: atoi(t, e[1]) << clusterBits}
	if hbDevice {
		bm := reBitmapN.FindStringSubmatch(realtools.Debugfs(t, img, "stat //global_bitmap"))
		fi, _ := os.Stat(img)
		g.PlaceKillAfter(atoi(t, bm[1])<<clusterBits, fi.Size())
	} else {
		g.PlaceKillInFile()
	}
	return g
}

// TestKillAreaIsInvisibleToTheTools writes o2go heartbeat blocks and every
// kill block into images made by mkfs.ocfs2, then checks that debugfs.ocfs2
// lists exactly the heartbeat slots written (the kill blocks leave its view
// unchanged) and that fsck.ocfs2 -fn finds nothing (on a heartbeat-only
// device fsck refuses to open; debugfs is the check there).
func TestKillAreaIsInvisibleToTheTools(t *testing.T) {
	realtools.Require(t)
	cases := []struct {
		name     string
		size     int64
		args     []string
		hbDevice bool
		kill     bool
	}{
		{"4K blocks", 32 << 20, []string{"-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M"}, false, true},
		{"1K blocks", 32 << 20, []string{"-b", "1024", "-C", "4096", "-N", "2", "-J", "size=4M"}, false, true},
		{"512-byte blocks: no room", 32 << 20, []string{"-b", "512", "-C", "4096", "-N", "2", "-J", "size=4M"}, false, false},
		{"heartbeat device", 8 << 20, []string{"-H"}, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := realtools.MkfsImage(t, c.size, c.args...)
			g := debugfsGeometry(t, img, c.hbDevice)
			if g.HasKill != c.kill {
				t.Fatalf("kill area: %v, want %v (geometry %+v)", g.HasKill, c.kill, g)
			}
			if !c.hbDevice {
				v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				blk, err := v.SystemFile(ondisk.SysHeartbeat, -1)
				if err != nil {
					t.Fatal(err)
				}
				di, err := v.Cache.Dinode(blk)
				if err != nil {
					t.Fatal(err)
				}
				mine, err := GeometryFromInode(di, v.SB, 512)
				v.Close()
				if err != nil || mine != g {
					t.Fatalf("GeometryFromInode = %+v, %v; debugfs says %+v", mine, err, g)
				}
			}
			fi, _ := os.Stat(img)
			if err := g.Check(fi.Size()); err != nil {
				t.Fatal(err)
			}
			var fsckBefore realtools.FsckResult
			if !c.hbDevice {
				// mkfs.ocfs2 1.8.7 leaves some volumes with a problem of its
				// own (DX_TREE_MISSING with 1K blocks): o2go's writes must add none.
				fsckBefore = realtools.Fsck(t, img, "-fn")
			}
			before := realtools.Debugfs(t, img, "hb")
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want := map[base.NodeID]ondisk.HeartbeatBlock{
				0: {Seq: 0x19a0b0c0d0e, Node: 0, Generation: 0x1122334455667788, DeadMs: 62000},
				7: {Seq: 0x19a0b0c0d0f, Node: 7, Generation: 0x0102030405060708, DeadMs: 62000},
			}
			for n, b := range want {
				s := make([]byte, 512)
				if err := b.Encode(s); err != nil {
					t.Fatal(err)
				}
				want[n] = b
				if _, err := f.WriteAt(s, g.SlotOffset(n)); err != nil {
					t.Fatal(err)
				}
			}
			withHB := realtools.Debugfs(t, img, "hb")
			for n, b := range want {
				line := fmt.Sprintf("%4d: %4d %016x %016x %08x %6d", n, n, b.Seq, b.Generation, b.Cksum, b.DeadMs)
				if !strings.Contains(withHB, line) {
					t.Errorf("debugfs hb lacks %q:\n%s", line, withHB)
				}
			}
			if strings.Count(withHB, "\n") != strings.Count(before, "\n")+2 {
				t.Errorf("debugfs hb shows other slots:\nbefore:\n%s\nafter:\n%s", before, withHB)
			}
			if !g.HasKill {
				return
			}
			for n := 0; n < Slots; n++ {
				k := KillBlock{Owner: base.NodeID(n), Generation: uint64(n) + 1, Seq: 3, FencedGen: uint64(n) + 1,
					FenceReason: FenceKilled, Orders: []KillOrder{{Victim: base.NodeID((n + 1) % Slots), Generation: 9}}}
				s := make([]byte, 512)
				if err := k.Encode(s); err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt(s, g.KillOffset(base.NodeID(n))); err != nil {
					t.Fatal(err)
				}
			}
			if after := realtools.Debugfs(t, img, "hb"); after != withHB {
				t.Errorf("kill blocks changed debugfs hb:\nbefore:\n%s\nafter:\n%s", withHB, after)
			}
			for n := 0; n < Slots; n++ {
				s := make([]byte, 512)
				if _, err := f.ReadAt(s, g.KillOffset(base.NodeID(n))); err != nil {
					t.Fatal(err)
				}
				if k, err := DecodeKillBlock(s, base.NodeID(n)); err != nil || k == nil || k.FencedGen != uint64(n)+1 {
					t.Fatalf("kill block %d reads back as %+v, %v", n, k, err)
				}
			}
			if !c.hbDevice {
				after := realtools.Fsck(t, img, "-fn")
				if after.ExitCode != fsckBefore.ExitCode || strings.Join(after.Problems, "\n") != strings.Join(fsckBefore.Problems, "\n") {
					t.Fatalf("fsck.ocfs2 -fn before the writes: exit %d %q; after: exit %d %q\n%s",
						fsckBefore.ExitCode, fsckBefore.Problems, after.ExitCode, after.Problems, after.Output)
				}
				if c.name == "4K blocks" && !after.Clean() {
					t.Fatalf("fsck.ocfs2 -fn not clean:\n%s", after.Output)
				}
			}
		})
	}
}
