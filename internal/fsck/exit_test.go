package fsck

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// damageFreeBits makes a safe problem (a group's free count above its
// bitmap's: GROUP_FREE_BITS and CHAIN_BITS, which preen fixes).
func damageFreeBits(t *testing.T, img string) {
	im := openImage(t, img)
	g, _ := groupOf(im, locate(t, img, "/file1"))
	im.edit(g, gdCheckOff, func(b []byte) { groupDesc(b).setFree(groupDesc(b).bits()) })
	im.close()
}

// damageFreeInode makes a problem preen must leave: an entry naming a
// free inode (clearing it loses a name).
func damageFreeInode(t *testing.T, img string) {
	im := openImage(t, img)
	g, bit := allocGroupWithFree(t, im, im.sysFile(ondisk.SysInodeAlloc, 0))
	free := g + uint64(bit)
	editDirent(t, im, locate(t, img, "/dir1"), "file2", func(de dirent) { de.setInode(free) })
	im.close()
}

func TestExitCodes(t *testing.T) {
	realtools.Require(t)
	cases := []struct {
		name   string
		damage func(t *testing.T, img string)
		answer Answer
		force  bool
		in     string
		want   int
	}{
		{"clean, not forced", nil, AnswerNo, false, "", ExitOK},
		{"clean, forced, -n", nil, AnswerNo, true, "", ExitOK},
		{"clean, forced, -y", nil, AnswerYes, true, "", ExitOK},
		{"problems, -n", damageFreeBits, AnswerNo, true, "", ExitUncorrected},
		{"problems, -y", damageFreeBits, AnswerYes, true, "", ExitCorrected},
		{"safe problems, -p", damageFreeBits, AnswerPreen, true, "", ExitCorrected},
		{"unsafe problem, -p", damageFreeInode, AnswerPreen, true, "", ExitCorrected | ExitUncorrected},
		{"asked, answered yes", damageFreeBits, AnswerAsk, true, "yy", ExitCorrected},
		{"asked, answered no", damageFreeBits, AnswerAsk, true, strings.Repeat("n", 100), ExitUncorrected},
		{"asked, input ends", damageFreeBits, AnswerAsk, true, "n", ExitError},
		{"asked, default answers", damageFreeBits, AnswerAsk, true, "\n\n", ExitCorrected},
		{"asked, ESC", damageFreeBits, AnswerAsk, true, "\x1b", ExitError | ExitCancelled},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			img := baseImage(t, "populated")
			if tc.damage != nil {
				tc.damage(t, img)
			}
			var out strings.Builder
			res := Run(Options{Device: img, Answer: tc.answer, Force: tc.force, In: strings.NewReader(tc.in), Out: &out, Err: &out})
			if res.ExitCode != tc.want {
				t.Fatalf("exit %d, want %d\n%s", res.ExitCode, tc.want, out.String())
			}
			if tc.name == "clean, not forced" && !strings.Contains(out.String(), "is clean.") {
				t.Fatalf("a clean volume was checked without -f:\n%s", out.String())
			}
			if tc.want == ExitCorrected {
				realtools.RequireFsckClean(t, img)
			}
		})
	}
	t.Run("no_device", func(t *testing.T) {
		var out strings.Builder
		res := Run(Options{Device: t.TempDir() + "/missing.img", Answer: AnswerNo, Out: &out, Err: &out})
		if res.ExitCode != ExitError || res.Err == nil {
			t.Fatalf("exit %d err %v, want 8", res.ExitCode, res.Err)
		}
	})
	t.Run("not_ocfs2", func(t *testing.T) {
		p := t.TempDir() + "/zero.img"
		if err := os.WriteFile(p, make([]byte, 8<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		res := Run(Options{Device: p, Answer: AnswerNo, Out: &out, Err: &out})
		if res.ExitCode != ExitError || !strings.Contains(out.String(), "not an OCFS2 volume") {
			t.Fatalf("exit %d\n%s", res.ExitCode, out.String())
		}
	})
}

// heartbeat beats for node in img's heartbeat area, as an O2CB node
// that has the volume mounted would, until stopped.
func heartbeat(t *testing.T, img string, node int) (stop func()) {
	t.Helper()
	im := openImage(t, img)
	hbIno := im.sysFile(ondisk.SysHeartbeat, 0)
	start := int64(extList(dinode(im.block(hbIno))[diID2:]).rec(0).blkno()) * int64(im.bs)
	im.close()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		hb := ondisk.HeartbeatBlock{Node: uint8(node), Generation: 0x5eed, DeadMs: 62000}
		sector := make([]byte, 512)
		for seq := uint64(1); ; seq++ {
			hb.Seq = seq
			if hb.Encode(sector) == nil {
				f.WriteAt(sector, start+int64(node)*512)
			}
			select {
			case <-done:
				return
			case <-time.After(150 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			f.Close()
		})
	}
}

// TestClusteredVolume: a clustered volume is changed only when no node
// heartbeats on it; -n always checks, -F skips the watch.
func TestClusteredVolume(t *testing.T) {
	img := mkfs(t, 300<<20, "-b", "4096", "-C", "4096", "-N", "4", "--cluster-stack=o2cb", "--cluster-name=fscktest")
	run := func(answer Answer, skip bool) (Result, string) {
		var out strings.Builder
		// -F makes fsck.ocfs2 (and o2go) ask first: yes.
		res := Run(Options{Device: img, Answer: answer, Force: true, SkipClusterCheck: skip, HeartbeatWait: 1500 * time.Millisecond,
			Out: &out, Err: &out, In: strings.NewReader("y\n")})
		return res, out.String()
	}
	// Without a yes, -F checks nothing.
	var noAnswer strings.Builder
	if res := Run(Options{Device: img, Answer: AnswerYes, Force: true, SkipClusterCheck: true, Out: &noAnswer, Err: &noAnswer, In: strings.NewReader("")}); res.ExitCode != ExitCancelled ||
		!strings.Contains(noAnswer.String(), "You have disabled the cluster check") || !strings.Contains(noAnswer.String(), "Aborting operation.") ||
		strings.Contains(noAnswer.String(), "Pass 0a") {
		t.Fatalf("-fy -F with no answer: exit %d\n%s", res.ExitCode, noAnswer.String())
	}
	if res, out := run(AnswerYes, false); res.ExitCode != ExitOK {
		t.Fatalf("no live node, -fy: exit %d\n%s", res.ExitCode, out)
	}
	stop := heartbeat(t, img, 3)
	defer stop()
	res, out := run(AnswerYes, false)
	if res.ExitCode != ExitError || !strings.Contains(out, "nodes [3] are heartbeating") {
		t.Fatalf("node 3 alive, -fy: exit %d\n%s", res.ExitCode, out)
	}
	if res, out := run(AnswerNo, false); res.ExitCode != ExitOK {
		t.Fatalf("node 3 alive, -fn: exit %d\n%s", res.ExitCode, out)
	}
	if res, out := run(AnswerYes, true); res.ExitCode != ExitOK {
		t.Fatalf("node 3 alive, -fy -F: exit %d\n%s", res.ExitCode, out)
	}
	stop()
	realtools.RequireFsckClean(t, img)
}
