package volume

import (
	"os"
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

// TestIntactBackupNamesTheBackup: when the primary superblock is gone
// (overwritten or with a damaged field), IntactBackup finds the first
// backup that validates, so that each tool can tell the operator its own
// option for it; and Open's own error names no tool's option.
func TestIntactBackupNamesTheBackup(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 1100<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	small := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	if n, _, ok := IntactBackup(img); ok {
		t.Fatalf("intact primary: IntactBackup says backup %d", n)
	}
	patch := func(path string, off int64, b []byte) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		off  int64
		b    []byte
	}{
		{"signature overwritten", 2 * 4096, []byte("XXXXXX")},
		{"cluster size bits damaged", 2*4096 + 0xC0 + 0x3C, []byte{0x7f}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := make([]byte, len(tc.b))
			f, _ := os.Open(img)
			f.ReadAt(old, tc.off)
			f.Close()
			patch(img, tc.off, tc.b)
			defer patch(img, tc.off, old)
			_, err := Open(img, OpenOptions{ReadOnly: true})
			if err == nil {
				t.Fatal("opened a volume whose primary superblock is damaged")
			}
			if strings.Contains(err.Error(), "-r ") || strings.Contains(err.Error(), "-s ") {
				t.Errorf("Open's error names a tool's option: %v", err)
			}
			n, blk, ok := IntactBackup(img)
			if !ok || n != 1 || blk != (1<<30)/4096 {
				t.Errorf("IntactBackup = %d, %d, %v; want backup 1 at block %d", n, blk, ok, (1<<30)/4096)
			}
		})
	}
	patch(small, 2*4096, []byte("XXXXXX"))
	if n, _, ok := IntactBackup(small); ok {
		t.Errorf("a 200 MiB volume has no backups, IntactBackup says %d", n)
	}
	// Damage past the superblock (an unknown incompat feature) is not a
	// superblock problem: no backup to point at.
	patch(img, 2*4096+0xC0+0x22, []byte{0x10})
	if _, err := Open(img, OpenOptions{ReadOnly: true}); err == nil {
		t.Fatal("opened a volume with an unknown incompat feature")
	}
	if n, _, ok := IntactBackup(img); ok {
		t.Errorf("valid primary with an unknown feature: IntactBackup says %d", n)
	}
}
