package journal_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"o2go/internal/fs/journal"
	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// crashScript runs in the guest with the volume mounted (commit=1): it
// keeps the kernel from writing dirty metadata home (no periodic
// writeback), changes metadata, lets jbd2 commit it, then resets the
// machine without unmounting: the journal holds committed transactions
// that were never checkpointed.
const crashScript = `
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
echo 360000 > /proc/sys/vm/dirty_expire_centisecs
mkdir -p a/b c d
i=0
while [ $i -lt 40 ]; do echo "file $i" > a/b/f$i; i=$((i+1)); done
sleep 2
chmod 700 c
mv a/b/f1 c/moved
ln -s a/b/f2 sl
sleep 2
touch -d '2023-11-14 22:13:20' d
echo "the kernel wrote this" > d/data
mkdir -p e
i=0
while [ $i -lt 200 ]; do : > e/n$i; i=$((i+1)); done
sleep 3
echo "about to crash"
echo b > /proc/sysrq-trigger
sleep 60
`

// TestReplaysTheKernelsJournal: the real OCFS2 driver writes metadata and
// the machine dies without unmounting. o2go's replay of the journal it
// left gives byte-identical blocks to fsck.ocfs2's replay, and the
// volume then passes fsck.ocfs2 -fn.
func TestReplaysTheKernelsJournal(t *testing.T) {
	testutil.Long(t)
	realtools.Require(t)
	kernelvm.Require(t)
	const bs = 4096
	img := realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2", "-J", "size=16M", "--fs-features=local")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := kernelvm.Run(ctx, kernelvm.Options{Image: img, MountOpts: "commit=1", Timeout: 8 * time.Minute}, crashScript)
	// The reset ends the VM before the harness finishes: that is the point.
	if err == nil || !errors.Is(err, kernelvm.ErrVM) {
		out := ""
		if res != nil {
			out = string(res.Stdout) + string(res.Stderr) + res.Dmesg
		}
		t.Fatalf("the guest was to die without unmounting; Run returned %v\n%s", err, out)
	}
	if res == nil || !strings.Contains(string(res.Stdout), "about to crash") {
		t.Fatalf("the script did not reach the crash: %v", err)
	}

	// The kernel's journal must be dirty with a non-empty log, or the
	// test proves nothing.
	rv := openReal(t, img, bs)
	di, err := rv.c.Dinode(rv.jino)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, bs)
	blk := di.Extents.Recs[0].Blkno
	if _, err := rv.dev.ReadAt(raw, int64(blk)*bs); err != nil {
		t.Fatal(err)
	}
	jsb, err := ondisk.DecodeJournalSuperBlock(raw)
	if err != nil {
		t.Fatal(err)
	}
	rv.dev.Close()
	if di.Journal().Flags&ondisk.JournalDirty == 0 || jsb.Start == 0 {
		t.Fatalf("the kernel left no journal to replay: ij_flags %#x, s_start %d", di.Journal().Flags, jsb.Start)
	}

	mine, crashed := img+".o2go", img+".crashed"
	copyFile(t, img, mine)
	copyFile(t, img, crashed)
	r := o2goReplay(t, mine, bs)
	if r.Transactions < 2 || r.Blocks == 0 || r.Damage != nil {
		t.Fatalf("o2go's replay of the kernel's journal: %+v", r)
	}
	t.Logf("kernel journal: features %#x, transactions %d..%d, %d blocks, %d copies, %d revoke hits",
		jsb.FeatureIncompat, r.FirstSeq, r.EndSeq-1, r.Blocks, r.Copies, r.RevokeHits)
	fsckReplay(t, img)
	sameImages(t, img, mine, bs, "fsck.ocfs2's replay of the kernel's journal vs o2go's")

	realtools.Fsck(t, img, "-fy") // the second run clears DIRTY and recovers the slot
	realtools.RequireFsckClean(t, img)
	if got := realtools.Debugfs(t, img, "cat /d/data"); got != "the kernel wrote this\n" {
		t.Fatalf("file data after replay: %q", got)
	}
	ls := realtools.Debugfs(t, img, "ls -l /c")
	if !strings.Contains(ls, "moved") {
		t.Fatalf("rename lost:\n%s", ls)
	}

	// o2go's own mount of the crashed image (Load) replays the same way
	// and marks the slot dirty for the mount layer's recovery.
	rv2 := openReal(t, crashed, bs)
	defer rv2.dev.Close()
	j, rep, err := journal.Load(rv2.c, rv2.jino, rv2.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.WasDirty || rep.Replay.Blocks != r.Blocks {
		t.Fatalf("Load of the crashed image: %+v, %+v", rep, rep.Replay)
	}
	j.Abandon()
}
