package realtools

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestMkfsDebugfsFsckRoundTrip(t *testing.T) {
	img := MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2", "-L", "rt", "--fs-features=local")
	if out := Debugfs(t, img, "stats"); !strings.Contains(out, "Label: rt") {
		t.Fatalf("debugfs stats lacks the label:\n%s", out)
	}
	if got := TunefsQuery(t, img, "%V\n"); strings.TrimSpace(got) != "rt" {
		t.Fatalf("tunefs -Q %%V = %q", got)
	}
	RequireFsckClean(t, img)

	// Damage lost+found's link count: Fsck must see the problem even though
	// fsck.ocfs2 -fn exits 0 — the quirk this package exists to handle.
	m := regexp.MustCompile(`Inode: (\d+)`).FindStringSubmatch(Debugfs(t, img, "stat /lost+found"))
	if m == nil {
		t.Fatal("no inode number for /lost+found")
	}
	blk, _ := strconv.ParseInt(m[1], 10, 64)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{5}, blk*4096+0x2A); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := Fsck(t, img, "-fn")
	if r.Clean() || len(r.Problems) != 1 || !strings.HasPrefix(r.Problems[0], "[INODE_COUNT]") {
		t.Fatalf("want one [INODE_COUNT] problem, got exit %d problems %q", r.ExitCode, r.Problems)
	}
}
