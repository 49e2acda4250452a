package inspect

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"o2go/internal/base"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

func TestDebugRefusesWhatIsNotAVolume(t *testing.T) {
	realtools.Require(t)
	dir := t.TempDir()
	truncated := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	if err := os.Truncate(truncated, 10<<20); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.img")
	os.WriteFile(zero, make([]byte, 8<<20), 0o600)
	random := filepath.Join(dir, "random.img")
	junk := make([]byte, 8<<20)
	rand.Read(junk)
	os.WriteFile(random, junk, 0o600)
	tiny := filepath.Join(dir, "tiny.img")
	os.WriteFile(tiny, []byte("OCFSV2"), 0o600)
	for _, tc := range []struct{ path, want string }{
		{truncated, "truncated image or wrong device"},
		{zero, "not an OCFS2 volume: no OCFS2 superblock signature"},
		{random, "not an OCFS2 volume"},
		{tiny, "too small to hold a superblock"},
		{dir, "not a block device or regular file"},
		{filepath.Join(dir, "missing"), "no such file or directory"},
	} {
		out, errOut, failed := o2goDebug(t, tc.path, "stats", 0)
		if !failed || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, filepath.Base(tc.path)) {
			t.Errorf("%s: failed=%v stdout %q stderr %q, want an error naming the file and saying %q", tc.path, failed, out, errOut, tc.want)
		}
	}
}

// damage flips bits at absolute byte off of img and returns an undo.
func damage(t *testing.T, img string, off int64, mask byte) func() {
	t.Helper()
	old := patchBytes(t, img, off, []byte{0})
	patchBytes(t, img, off, []byte{old[0] ^ mask})
	return func() { patchBytes(t, img, off, old) }
}

func TestDebugNamesDamagedBlocks(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 200<<20, "-b", "1024", "-C", "4096", "-N", "2", "--fs-features=noinline-data,local")
	ecc := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-N", "2", "--fs-features=metaecc,local")
	inodeOf := func(img, path string) int64 {
		out, _, _ := o2goDebug(t, img, "stat "+path, 0)
		var n int64
		fmt.Sscanf(strings.TrimSpace(out), "Inode: %d", &n)
		if n == 0 {
			t.Fatalf("stat %s: %q", path, out)
		}
		return n
	}
	firstBlock := func(img, path string) int64 {
		out, _, _ := o2goDebug(t, img, "stat "+path, 0)
		m := regexp.MustCompile(`(?m)^\t0  0\s+\d+\s+(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("stat %s has no extent: %q", path, out)
		}
		var n int64
		fmt.Sscan(m[1], &n)
		return n
	}
	const bs = 1024
	lf := inodeOf(img, "/lost+found")
	eccLF := inodeOf(ecc, "/lost+found")
	rootBlk := firstBlock(img, "/")

	for _, tc := range []struct {
		name    string
		img     string
		off     int64
		mask    byte
		cmd     string
		want    []string
		display bool // the command still shows what is there
	}{
		{"superblock cluster bits", img, 2*bs + 0xC0 + 0x3C, 0x40, "stats", []string{"block 2", "superblock", "s_clustersize_bits"}, false},
		{"inode i_blkno, through the file system", img, lf*bs + 0x50, 0x01, "ls /lost+found", []string{fmt.Sprintf("block %d", lf), "dinode", "i_blkno"}, false},
		{"inode i_blkno, displayed", img, lf*bs + 0x50, 0x01, "stat /lost+found", []string{fmt.Sprintf("block %d", lf), "dinode", "i_blkno"}, true},
		{"inode signature", img, lf*bs + 0x02, 0x20, "stat /lost+found", []string{fmt.Sprintf("block %d", lf), "dinode", "i_signature"}, false},
		// ls lists the entries before the damaged one, then says where it stopped.
		{"directory entry rec_len", img, rootBlk*bs + 16 + 8, 0x03, "ls /", []string{fmt.Sprintf("block %d", rootBlk), "dir entry", "rec_len"}, true},
		{"group descriptor signature", img, 4*bs + 1, 0x08, "group <4>", []string{"block 4", "group descriptor", "bg_signature"}, false},
		{"metaecc inode, two bits", ecc, eccLF*4096 + 0x20, 0x81, "ls /lost+found", []string{fmt.Sprintf("block %d", eccLF), "dinode", "checksum"}, false},
		{"metaecc inode, two bits, displayed", ecc, eccLF*4096 + 0x20, 0x81, "stat /lost+found", []string{fmt.Sprintf("block %d", eccLF), "dinode", "checksum"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			undo := damage(t, tc.img, tc.off, tc.mask)
			defer undo()
			out, errOut, failed := o2goDebug(t, tc.img, tc.cmd, 0)
			if !failed {
				t.Fatalf("%q on a damaged volume succeeded: %q", tc.cmd, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("%q: error %q does not say %q", tc.cmd, errOut, w)
				}
			}
			if tc.display != (out != "") {
				t.Errorf("%q: display=%v but stdout %q", tc.cmd, tc.display, out)
			}
		})
	}

	// With metaecc a block whose check fails is still shown by stat, with
	// debugfs's FAILED CHECKSUM line, as debugfs shows it.
	undo := damage(t, ecc, eccLF*4096+0x20, 0x81)
	want, _ := realDebugfs(t, ecc, "stat /lost+found")
	got, _, _ := o2goDebug(t, ecc, "stat /lost+found", 0)
	undo()
	if !strings.Contains(got, "**FAILED CHECKSUM**") || got != want {
		t.Errorf("stat of a block with a bad check differs from debugfs at %s\n%s", firstDiff(want, got), got)
	}
}

// metadataBlocks lists the blocks holding a volume's metadata: the
// superblock, the directories' inodes and blocks, every system inode and
// every group descriptor of every chain allocator.
func metadataBlocks(t *testing.T, img string) []uint64 {
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	blocks := []uint64{2, v.SB.RootBlkno, v.SB.SystemDirBlkno}
	seen := map[uint64]bool{}
	var addDir func(blk uint64)
	addDir = func(blk uint64) {
		if seen[blk] {
			return
		}
		seen[blk] = true
		d, err := v.FS.Dir(blk)
		if err != nil {
			t.Fatal(err)
		}
		if d.Inode.DynFeatures&ondisk.DynIndexedDir != 0 {
			blocks = append(blocks, d.Inode.DxRoot)
		}
		if d.Inode.Inline == nil {
			for i := uint64(0); i < d.NumBlocks(); i++ {
				b, err := d.BlockAt(i)
				if err != nil {
					t.Fatal(err)
				}
				blocks = append(blocks, b)
			}
		}
		err = d.ForEach(func(e ondisk.DirEntry) error {
			if e.Name == "." || e.Name == ".." {
				return nil
			}
			blocks = append(blocks, e.Inode)
			ino, err := v.FS.Inode(e.Inode)
			if err != nil {
				return err
			}
			if ino.IsDir() {
				addDir(e.Inode)
			}
			if ino.Chain != nil {
				for _, r := range ino.Chain.Recs {
					for g := r.Blkno; g != 0; {
						blocks = append(blocks, g)
						gd, err := v.Cache.GroupDesc(g)
						if err != nil {
							return err
						}
						g = gd.NextGroup
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	addDir(v.SB.SystemDirBlkno)
	addDir(v.SB.RootBlkno)
	return blocks
}

// TestDebugSurvivesRandomDamage flips random bits in random metadata
// blocks and runs every read command on the damaged volume: each must
// answer (output or a clear error), never panic. A failure names the seed,
// block, offset and command, which replay it.
func TestDebugSurvivesRandomDamage(t *testing.T) {
	realtools.Require(t)
	for _, geo := range []struct {
		name string
		args []string
	}{
		{"1k-noinline-indexed", []string{"-b", "1024", "-C", "4096", "-N", "2", "--fs-features=noinline-data,local"}},
		{"4k-inline-metaecc", []string{"-b", "4096", "-C", "8192", "-N", "3", "--fs-features=metaecc"}},
		{"512-maxcompat", []string{"-b", "512", "-C", "4096", "-N", "2", "-J", "size=8M", "--fs-feature-level=max-compat"}},
	} {
		t.Run(geo.name, func(t *testing.T) {
			t.Parallel()
			img := realtools.MkfsImage(t, 100<<20, geo.args...)
			blocks := metadataBlocks(t, img)
			stats, _, _ := o2goDebug(t, img, "stats", 0)
			var bits uint
			fmt.Sscanf(stats[strings.Index(stats, "Block Size Bits:"):], "Block Size Bits: %d", &bits)
			bs := int64(1) << bits
			out := t.TempDir()
			cmds := []string{"stats", "ls -l /", "ls -l //", "ls /lost+found", "stat /", "stat //", "stat //global_bitmap",
				"stat //inode_alloc:0000", "stat //journal:0000", "stat_sysdir", "slotmap", "hb", "logdump 0", "dx_dump /",
				"dx_space /", "dirblocks /", "dirblocks //", "xattr /", "frag /lost+found", "findpath <6>", "ncheck <7> <8>",
				"encode /lost+found", "bmap //journal:0000 1", "dump //slot_map " + filepath.Join(out, "sm"),
				"rdump / " + out, "cat //heartbeat", "refcount /", "group <" + fmt.Sprint(blocks[len(blocks)-1]) + ">",
				"stats --json", "stat --json //global_bitmap", "ls -l --json //"}
			r := base.NewRand(uint64(len(geo.name)) * 7919)
			for i := 0; i < 60; i++ {
				blk := blocks[r.Intn(len(blocks))]
				off := int64(r.Intn(int(min(bs, 512))))
				if r.Chance(0.3) {
					off = int64(r.Intn(int(bs)))
				}
				mask := byte(1 << r.Intn(8))
				undo := damage(t, img, int64(blk)*bs+off, mask)
				for _, cmd := range cmds {
					func() {
						defer func() {
							if p := recover(); p != nil {
								t.Errorf("iteration %d: block %d offset %d mask 0x%02x: %q panicked: %v\n%s", i, blk, off, mask, cmd, p, debug.Stack())
							}
						}()
						var o, e bytes.Buffer
						d := NewDebugger(&o, &e)
						if err := d.Open(img, 0); err != nil {
							if !strings.Contains(err.Error(), img) {
								t.Errorf("open error does not name the image: %v", err)
							}
							return
						}
						defer d.Close()
						d.Exec(cmd)
						if d.Failed() && e.Len() == 0 {
							t.Errorf("%q failed without saying why", cmd)
						}
						// Info and mounted read the same blocks.
						if cmd == "stats" {
							Info(d.Volume(), &o, InfoRequest{FSFeatures: true, VolInfo: true, Mkfs: true, FreeInode: true, FreeFrag: true, FileStat: "/lost+found"})
							FindVolumes(MountedOptions{Devices: []string{img}, Full: true, ClusterConf: "/nonexistent"})
						}
					}()
				}
				undo()
				os.RemoveAll(out)
				os.Mkdir(out, 0o755)
			}
		})
	}
}
