package fsck

import (
	"strings"
	"testing"

	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// TestQuotaKernelVolume: the kernel keeps quota usage on a volume mounted
// with quotas; after its clean unmount the files say what fsck counts, so
// o2go fsck finds them up to date and leaves them alone, and fsck.ocfs2's
// rewrite (it rewrites on every run) changes nothing o2go would judge.
func TestQuotaKernelVolume(t *testing.T) {
	testutil.Long(t)
	kernelvm.Require(t)
	img := mkfs(t, 300<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local,usrquota,grpquota")
	kernelvm.RunT(t, kernelvm.Options{Image: img, MountOpts: "usrquota,grpquota"}, `
set -e
i=0
while [ $i -lt 60 ]; do
	mkdir d$i
	dd if=/dev/urandom of=d$i/f bs=4k count=$((i % 5 + 1)) 2>/dev/null
	chown -R $((1000 + i)):$((100 + i % 4)) d$i
	i=$((i+1))
done
sync
`)
	// The kernel keeps every owner's usage but root's: mkfs.ocfs2 counted
	// the root directory and not lost+found, which fsck counts.
	res, out := runO2go(t, img, AnswerNo, true)
	if !strings.Contains(out, "The user quota file is out of date for 1 ids") || !strings.Contains(out, "The group quota file is out of date for 1 ids") {
		t.Fatalf("the kernel's quota usage is not what o2go counts: exit %d\n%s", res.ExitCode, out)
	}
	// The kernel leaves its quota files' i_size past their last block,
	// which fsck.ocfs2 reports (INODE_SPARSE_SIZE): both fscks must agree
	// on that, repair it, and accept each other's repair; their quota
	// files must come out the same.
	ours, theirs := copyFile(t, img), copyFile(t, img)
	checkCase(t, corruption{name: "kernel quota files", img: img, damage: func(*testing.T, string) {}})
	runO2go(t, ours, AnswerYes, true)
	realtools.Fsck(t, theirs, "-fy")
	sameQuotaFiles(t, ours, theirs, 4096, 2)
}
