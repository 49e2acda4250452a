package fsck

import (
	"os"
	"slices"
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

// TestBackupSuperblock: with the primary superblock destroyed, both fscks
// refuse the volume; -r 1 -y copies the first backup (at 1 GiB) over the
// primary, after which the other tool finds the volume clean.
func TestBackupSuperblock(t *testing.T) {
	realtools.Require(t)
	base := mkfs(t, 1100<<20, "-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M", "--fs-features=local")
	populate(t, base)
	f, err := os.OpenFile(base, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XXXXXXXX"), 2*4096); err != nil { // "OCFSV2" at block 2
		t.Fatal(err)
	}
	f.Close()

	real := realtools.Fsck(t, base, "-fn")
	res, out := runO2go(t, base, AnswerNo, true)
	if real.ExitCode == 0 || res.ExitCode != ExitError || len(res.Problems) > 0 {
		t.Fatalf("a volume without its superblock: fsck.ocfs2 exit %d, o2go exit %d\n%s", real.ExitCode, res.ExitCode, out)
	}
	if !strings.Contains(out, "-r 1") {
		t.Errorf("o2go's refusal does not point at the backup:\n%s", out)
	}

	// -n -r 1 checks through the backup and leaves the primary alone.
	img := copyFile(t, base)
	var b strings.Builder
	res = Run(Options{Device: img, Answer: AnswerNo, Force: true, Backup: 1, Out: &b, Err: &b})
	if got := codesOf(b.String()); !slices.Equal(got, []string{string(RecoverBackupSuperblock)}) || res.ExitCode != ExitUncorrected {
		t.Fatalf("o2go fsck -fn -r 1: exit %d codes %v\n%s", res.ExitCode, got, b.String())
	}

	b.Reset()
	res = Run(Options{Device: img, Answer: AnswerYes, Force: true, Backup: 1, Out: &b, Err: &b})
	if res.ExitCode != ExitCorrected {
		t.Fatalf("o2go fsck -fy -r 1: exit %d\n%s", res.ExitCode, b.String())
	}
	theirs := copyFile(t, base)
	realY := realtools.Fsck(t, theirs, "-fy", "-r", "1")
	if got, want := codesOf(b.String()), codesOf(realY.Output); !slices.Equal(got, want) {
		t.Fatalf("-fy -r 1 codes differ\n o2go: %v\n fsck.ocfs2: %v\n%s\n%s", got, want, b.String(), realY.Output)
	}
	realtools.RequireFsckClean(t, img)
	if res, out := runO2go(t, theirs, AnswerNo, true); res.ExitCode != 0 || len(res.Problems) > 0 {
		t.Fatalf("o2go fsck -fn after fsck.ocfs2 -fy -r 1: exit %d\n%s", res.ExitCode, out)
	}
}
