package inspect

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// TestLogdumpOfTheKernelsJournal: logdump was compared with debugfs.ocfs2
// on journals written by hand; here the real driver writes one. The guest
// changes metadata, lets jbd2 commit it with writeback held off, and resets
// without unmounting, leaving committed transactions that were never
// checkpointed (descriptor, commit and revoke blocks as the kernel lays
// them out). logdump of that slot, of the other, and stat of the journal
// inode must match debugfs.ocfs2 byte for byte.
func TestLogdumpOfTheKernelsJournal(t *testing.T) {
	testutil.Long(t)
	realtools.Require(t)
	kernelvm.Require(t)
	img := realtools.MkfsImage(t, 200<<20, "-b", "2048", "-C", "4096", "-N", "2", "-J", "size=8M", "--fs-features=local")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := kernelvm.Run(ctx, kernelvm.Options{Image: img, MountOpts: "commit=1", Timeout: 5 * time.Minute}, `
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
echo 360000 > /proc/sys/vm/dirty_expire_centisecs
mkdir -p a/b c
i=0
while [ $i -lt 30 ]; do echo "file $i" > a/b/f$i; i=$((i+1)); done
sleep 2
mv a/b/f1 c/moved
rm a/b/f2 a/b/f3
setfattr -n user.x -v "$(head -c 200 /dev/zero | tr '\0' x)" c/moved
sleep 3
echo "about to crash"
echo b > /proc/sysrq-trigger
sleep 60
`)
	if err == nil || !errors.Is(err, kernelvm.ErrVM) || res == nil || !strings.Contains(string(res.Stdout), "about to crash") {
		t.Fatalf("the guest was to die without unmounting; Run returned %v", err)
	}
	got := compareDebug(t, img, "logdump 0")
	if !strings.Contains(got, "Journal Commit Block") || !strings.Contains(got, "Journal Descriptor") {
		t.Fatalf("logdump 0 shows no committed transaction: the kernel left nothing to compare\n%s", got)
	}
	t.Logf("the kernel's journal: %d descriptor, %d commit, %d revoke blocks", strings.Count(got, "Journal Descriptor"),
		strings.Count(got, "Journal Commit Block"), strings.Count(got, "Journal Revoke Block"))
	compareDebug(t, img, "logdump 1")
	compareDebug(t, img, "stat //journal:0000")
}
