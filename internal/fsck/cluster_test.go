package fsck

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// RECOVER_CLUSTER_INFO: a clustered volume stamped for another cluster
// than the one this node runs. fsck.ocfs2 meets it only when it joins the
// cluster for a read-write check (never under -n), so the oracle here is
// the volume after the repair: fsck.ocfs2 -fn finds nothing and
// debugfs.ocfs2 shows the running cluster's stamp.

func runWithStack(t *testing.T, img string, answer Answer, in string, run *volume.ClusterStack) (Result, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	res := Run(Options{Device: img, Answer: answer, Force: true, Out: &out, Err: &errOut,
		In: strings.NewReader(in), RunningStack: run, HeartbeatWait: 50 * time.Millisecond})
	return res, out.String() + errOut.String()
}

func stampOf(t *testing.T, img string) volume.ClusterStack {
	t.Helper()
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true, Lenient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c := &checker{sb: v.SB}
	return c.diskClusterStack()
}

func TestRecoverClusterInfo(t *testing.T) {
	realtools.Require(t)
	mine := &volume.ClusterStack{Stack: "o2cb", Name: "mine"}
	base := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-C", "4096", "-N", "2", "--cluster-stack=o2cb", "--cluster-name=other")

	t.Run("read-only", func(t *testing.T) {
		img := copyFile(t, base)
		res, out := runWithStack(t, img, AnswerNo, "", mine)
		if res.ExitCode != 0 || len(res.Problems) != 0 {
			t.Fatalf("-fn asked about the stamp (fsck.ocfs2 -fn never does): exit %d\n%s", res.ExitCode, out)
		}
	})
	t.Run("no running cluster", func(t *testing.T) {
		img := copyFile(t, base)
		res, out := runWithStack(t, img, AnswerYes, "", nil)
		if res.ExitCode != 0 || len(res.Problems) != 0 {
			t.Fatalf("exit %d\n%s", res.ExitCode, out)
		}
	})
	t.Run("same cluster", func(t *testing.T) {
		img := copyFile(t, base)
		res, out := runWithStack(t, img, AnswerYes, "", &volume.ClusterStack{Stack: "o2cb", Name: "other"})
		if res.ExitCode != 0 || len(res.Problems) != 0 {
			t.Fatalf("exit %d\n%s", res.ExitCode, out)
		}
	})
	t.Run("answered no", func(t *testing.T) {
		img := copyFile(t, base)
		res, out := runWithStack(t, img, AnswerAsk, "n", mine)
		if got := codesOf(out); !slices.Equal(got, []string{"RECOVER_CLUSTER_INFO"}) {
			t.Fatalf("codes %v\n%s", got, out)
		}
		if res.ExitCode&ExitError == 0 || !strings.Contains(out, "cannot tell whether it is in use") {
			t.Fatalf("a volume of another cluster was checked read-write: exit %d\n%s", res.ExitCode, out)
		}
		if s := stampOf(t, img); s != (volume.ClusterStack{Stack: "o2cb", Name: "other"}) {
			t.Fatalf("stamp changed to %v", s)
		}
	})
	t.Run("stamped", func(t *testing.T) {
		img := copyFile(t, base)
		res, out := runWithStack(t, img, AnswerYes, "", mine)
		if got := codesOf(out); !slices.Equal(got, []string{"RECOVER_CLUSTER_INFO"}) || res.ExitCode != ExitCorrected {
			t.Fatalf("exit %d, codes %v\n%s", res.ExitCode, got, out)
		}
		if !strings.Contains(out, "The running cluster is using the o2cb stack\nwith the cluster name mine, but the filesystem is configured for\nthe o2cb stack with the cluster name other.") {
			t.Fatalf("question:\n%s", out)
		}
		if s := stampOf(t, img); s != *mine {
			t.Fatalf("stamp %v, want %v", s, *mine)
		}
		stats := realtools.Debugfs(t, img, "stats")
		if !strings.Contains(stats, "Cluster name: mine") {
			t.Fatalf("debugfs.ocfs2 stats:\n%s", stats)
		}
		realtools.RequireFsckClean(t, img)
		if res, out := runWithStack(t, img, AnswerYes, "", mine); res.ExitCode != 0 || len(res.Problems) != 0 {
			t.Fatalf("second run: exit %d\n%s", res.ExitCode, out)
		}
	})
}

// TestRecoverClusterInfoSlotMap stamps a classic volume (no extended slot
// map) for a global-heartbeat cluster, which needs the extended slot map.
func TestRecoverClusterInfoSlotMap(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-C", "4096", "-N", "4")
	if s := stampOf(t, img); s != (volume.ClusterStack{}) {
		t.Fatalf("mkfs.ocfs2 stamped %v", s)
	}
	global := &volume.ClusterStack{Stack: "o2cb", Name: "gcl", GlobalHeartbeat: true}
	if res, out := runWithStack(t, img, AnswerYes, "", &volume.ClusterStack{Stack: "o2cb", Name: "lcl"}); res.ExitCode != 0 {
		t.Fatalf("a classic volume and a local-heartbeat cluster: exit %d\n%s", res.ExitCode, out)
	}
	res, out := runWithStack(t, img, AnswerYes, "", global)
	if got := codesOf(out); !slices.Equal(got, []string{"RECOVER_CLUSTER_INFO"}) || res.ExitCode != ExitCorrected {
		t.Fatalf("exit %d, codes %v\n%s", res.ExitCode, got, out)
	}
	if s := stampOf(t, img); s != *global {
		t.Fatalf("stamp %v, want %v", s, *global)
	}
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	want := uint32(ondisk.IncompatExtendedSlotMap | ondisk.IncompatClusterInfo)
	if got := v.SB.Features.Incompat & (want | ondisk.IncompatUserspaceStack); got != want {
		t.Errorf("incompat %#x, want extended-slotmap and clusterinfo only", got)
	}
	v.Close()
	realtools.RequireFsckClean(t, img)
	if !strings.Contains(realtools.Debugfs(t, img, "stats"), "Cluster name: gcl") {
		t.Error("debugfs.ocfs2 does not show the new stamp")
	}
}
