package fusefs

import (
	"os"
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

// TestMountNamesAnIntactBackupSuperblock: a mount whose primary
// superblock is overwritten fails, and says which backup is intact and
// the command that restores it.
func TestMountNamesAnIntactBackupSuperblock(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 1100<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XXXXXX"), 2*4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	opts, err := ParseMountOptions("")
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{Device: img, Mountpoint: t.TempDir(), Opts: opts}
	err = s.Run(func(error) {})
	if err == nil {
		t.Fatal("mounted a volume whose superblock is overwritten")
	}
	if want := "o2go fsck -r 1 " + img; !strings.Contains(err.Error(), want) {
		t.Fatalf("mount error %q does not say %q", err, want)
	}
}
