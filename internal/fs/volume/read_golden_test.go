package volume

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// A small matrix of real mkfs.ocfs2 volumes that exercises the read path's
// variants: block sizes, inline vs block vs indexed directories, metaecc,
// clustered stamps. The full matrix lives with the debug golden tests.
var readMatrix = []struct {
	name string
	size int64
	args []string
}{
	{"4k-default", 300 << 20, []string{"-b", "4096", "-C", "4096", "-N", "4", "--fs-features=local"}},
	{"512-16slots", 200 << 20, []string{"-b", "512", "-C", "4096", "-N", "16"}},
	{"1k-8k-noinline", 200 << 20, []string{"-b", "1024", "-C", "8192", "-N", "8", "--fs-features=noinline-data"}},
	{"2k-maxfeatures", 300 << 20, []string{"-b", "2048", "-C", "65536", "-N", "4", "--fs-feature-level=max-features"}},
	{"4k-maxcompat", 300 << 20, []string{"-b", "4096", "-C", "1048576", "-N", "2", "--fs-feature-level=max-compat"}},
	{"4k-metaecc-noinline-pcmk", 300 << 20, []string{"-b", "4096", "-N", "2", "--fs-features=metaecc,noinline-data", "--cluster-stack=pcmk", "--cluster-name=golden"}},
}

var lsLine = regexp.MustCompile(`^\s*(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+(.+)$`)

func TestReadSystemFilesLikeDebugfs(t *testing.T) {
	realtools.Require(t)
	for _, tc := range readMatrix {
		t.Run(tc.name, func(t *testing.T) {
			img := realtools.MkfsImage(t, tc.size, tc.args...)
			v, err := Open(img, OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			sys, err := v.FS.Dir(v.SB.SystemDirBlkno)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]uint64{}
			if err := sys.ForEach(func(e ondisk.DirEntry) error {
				got[e.Name] = e.Inode
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			out := realtools.Debugfs(t, img, "ls -l //")
			n := 0
			dumpDir := t.TempDir()
			for _, line := range strings.Split(out, "\n") {
				m := lsLine.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				n++
				ino, _ := strconv.ParseUint(m[1], 10, 64)
				name := m[7]
				if got[name] != ino {
					t.Errorf("// %s: o2go says inode %d, debugfs %d", name, got[name], ino)
					continue
				}
				if name == "." || name == ".." || m[2][0] == 'd' {
					continue
				}
				// Every system file's contents, byte-identical to debugfs dump.
				d, err := v.FS.Inode(ino)
				if err != nil {
					t.Fatal(err)
				}
				mine := make([]byte, d.Size)
				if d.Chain != nil && d.Size == 0 {
					continue
				}
				if d.Chain != nil && d.Size > 0 {
					// debugfs.ocfs2 aborts dumping a chain allocator; o2go
					// says plainly that it holds groups, not data.
					if _, err := v.FS.ReadAt(d, mine, 0); err == nil || !strings.Contains(err.Error(), "chain allocator") {
						t.Errorf("//%s: reading a chain allocator: %v", name, err)
					}
					continue
				}
				if k, err := v.FS.ReadAt(d, mine, 0); err != nil || k != len(mine) {
					t.Fatalf("read //%s: %d bytes, %v", name, k, err)
				}
				ref := filepath.Join(dumpDir, strings.ReplaceAll(name, ":", "_"))
				realtools.Debugfs(t, img, fmt.Sprintf("dump //%s %s", name, ref))
				theirs, err := os.ReadFile(ref)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(mine, theirs) {
					t.Errorf("//%s: o2go read %x, debugfs dump %x (%d vs %d bytes)", name, sha256.Sum256(mine), sha256.Sum256(theirs), len(mine), len(theirs))
				}
				os.Remove(ref)
			}
			if n != len(got) || n < 10 {
				t.Errorf("debugfs lists %d entries, o2go %d", n, len(got))
			}
			// Path resolution and lookups through the (possibly indexed) dirs.
			lf, err := v.FS.Resolve("/lost+found", true)
			if err != nil {
				t.Fatal(err)
			}
			if j, err := v.FS.Resolve("//journal:0001", true); err != nil || j == 0 {
				t.Fatalf("//journal:0001: %d %v", j, err)
			}
			if _, err := v.FS.Resolve("/nope", true); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("missing path: %v", err)
			}
			if _, err := v.FS.Resolve("/lost+found/x", true); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("missing path under lost+found: %v", err)
			}
			if want := regexp.MustCompile(`Inode: (\d+)`).FindStringSubmatch(realtools.Debugfs(t, img, "stat /lost+found")); want == nil || want[1] != strconv.FormatUint(lf, 10) {
				t.Fatalf("lost+found: o2go %d, debugfs %v", lf, want)
			}
		})
	}
}

func TestOpenRefusesWhatIsNotOCFS2(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.img")
	os.WriteFile(small, make([]byte, 1000), 0o600)
	zero := filepath.Join(dir, "zero.img")
	os.WriteFile(zero, make([]byte, 1<<20), 0o600)
	for _, p := range []string{small, zero} {
		_, err := Open(p, OpenOptions{ReadOnly: true})
		var ne *NotOCFS2Error
		if !errors.As(err, &ne) {
			t.Errorf("%s: got %v, want NotOCFS2Error", p, err)
		}
	}
}

func TestOpenAppliesFeatureRules(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	setFeature := func(off int, bit uint32) {
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, 4)
		f.ReadAt(b, int64(2*4096+0xC0+off))
		v := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24 | bit
		f.WriteAt([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}, int64(2*4096+0xC0+off))
	}
	setFeature(0x24, 0x80) // unknown ro-compat
	if _, err := Open(img, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "couldn't mount RDWR because of unsupported optional features (80)") {
		t.Fatalf("rw open with unknown ro-compat: %v", err)
	}
	v, err := Open(img, OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("ro open with unknown ro-compat: %v", err)
	}
	v.Close()
	setFeature(0x20, 0x10000) // unknown incompat
	if _, err := Open(img, OpenOptions{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "couldn't mount because of unsupported optional features (10000)") {
		t.Fatalf("open with unknown incompat: %v", err)
	}
}

func TestOpenBackupSuperBlock(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 1100<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	// Wreck the primary superblock's signature.
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	f.WriteAt([]byte("XXXXXX"), 2*4096)
	f.Close()
	_, err := Open(img, OpenOptions{ReadOnly: true})
	if err == nil {
		t.Fatal("opened a volume without its superblock")
	}
	v, err := Open(img, OpenOptions{ReadOnly: true, Backup: 1})
	if err != nil {
		t.Fatalf("backup 1: %v", err)
	}
	defer v.Close()
	if v.SuperBlkno != (1<<30)/4096 {
		t.Fatalf("backup read from block %d", v.SuperBlkno)
	}
	if _, err := v.FS.Resolve("/lost+found", true); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(img, OpenOptions{ReadOnly: true, Backup: 2}); err == nil || !strings.Contains(err.Error(), "beyond the device") {
		t.Fatalf("backup 2 on a 1.1 GiB volume: %v", err)
	}
}
