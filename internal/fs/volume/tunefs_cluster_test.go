package volume

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// TestTunefsClusteredMatchesLocalTwin runs -N, -J and -L on clustered
// volumes, which tunefs.ocfs2 cannot open without a cluster: the twin is
// made local by o2go (the LOCAL flag only), tunefs.ocfs2 changes it, and
// the two must match apart from that flag (superblock and backups),
// inode times and kernel-style directory writes.
func TestTunefsClusteredMatchesLocalTwin(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	cases := []struct {
		name string
		args []string
		o    TunefsOptions
		real []string
	}{
		{"slots", []string{"-N", "2"}, TunefsOptions{Slots: 5}, []string{"-N", "5"}},
		{"journal", []string{"-N", "3", "--cluster-stack=o2cb", "--cluster-name=web"}, TunefsOptions{JournalSize: 12 << 20}, []string{"-J", "size=12M"}},
		{"label", []string{"-N", "2", "--fs-feature-level=max-compat"}, TunefsOptions{SetLabel: true, Label: "clustered"}, []string{"-L", "clustered"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mine, real := twin(t, 1100<<20, tc.args...)
			tunefsO2go(t, real, TunefsOptions{Features: "local"})
			tunefsReal(t, real, tc.real...)
			tunefsO2go(t, mine, tc.o)
			requireClean(t, mine, tc.name)
			if superWith(t, mine).Super.Features.Incompat&ondisk.IncompatLocalMount != 0 {
				t.Fatal("the clustered volume became local")
			}
			diffs := diffBlocks(t, mine, real, superWith(t, mine).Super.BlockSize())
			sm := superWith(t, mine).Super
			delete(diffs, ondisk.SuperBlockBlkno)
			for _, b := range ondisk.BackupSuperBlockBlknos(sm.BlockSize(), uint64(superWith(t, mine).Clusters)*uint64(sm.BlocksPerCluster())) {
				delete(diffs, b)
			}
			dropDirectoryDiffs(t, mine, diffs)
			if bad := onlyTimes(t, mine, diffs); bad != "" {
				t.Errorf("o2go (clustered) and tunefs.ocfs2 (local twin) differ beyond the local flag and inode times at %s", bad)
			}
		})
	}
}

// stackLines is what debugfs.ocfs2's stats says about features and the
// cluster stack.
func stackLines(t *testing.T, img string) string {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(realtools.Debugfs(t, img, "stats"), "\n") {
		if regexp.MustCompile(`Feature|Cluster stack|Cluster name|Cluster flags`).MatchString(l) {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep, "\n")
}

// TestTunefsClusterStack stamps cluster stacks on a clustered volume, one
// after the other, as o2cluster --update does, and compares the superblock
// (features, stack, name, flags) and the slot map with volumes mkfs.ocfs2
// formats for the same stack.
func TestTunefsClusterStack(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	img := realtools.MkfsImage(t, 600<<20, "-N", "2", "--fs-feature-level=max-compat")
	steps := []struct {
		cs   ClusterStack
		mkfs []string
	}{
		{ClusterStack{Stack: "o2cb", Name: "web"}, []string{"--cluster-stack=o2cb", "--cluster-name=web"}},
		{ClusterStack{Stack: "pcmk", Name: "my-cluster"}, []string{"--cluster-stack=pcmk", "--cluster-name=my-cluster"}},
		{ClusterStack{Stack: "o2cb", Name: "hb", GlobalHeartbeat: true}, []string{"--cluster-stack=o2cb", "--cluster-name=hb", "--global-heartbeat"}},
		{ClusterStack{Stack: "cman", Name: "rh"}, []string{"--cluster-stack=cman", "--cluster-name=rh"}},
		{ClusterStack{}, nil},
	}
	for _, st := range steps {
		out := tunefsO2go(t, img, TunefsOptions{SetClusterStack: true, ClusterStack: st.cs})
		if !strings.Contains(out, "Updated successfully.") {
			t.Errorf("%s: output %q", st.cs, out)
		}
		requireClean(t, img, "--cluster-stack "+st.cs.String())
		ref := realtools.MkfsImage(t, 600<<20, append([]string{"-N", "2", "--fs-feature-level=max-compat"}, st.mkfs...)...)
		got, want := stackLines(t, img), stackLines(t, ref)
		switch st.cs.Stack {
		case "pcmk", "cman":
			// Once o2cb set CLUSTERINFO, a userspace stack keeps it
			// instead of USERSPACE_STACK (libocfs2's
			// ocfs2_set_cluster_incompats); mkfs sets the latter.
			want = strings.Replace(want, "Feature Incompat: 384 extended-slotmap userspace-stack", "Feature Incompat: 16640 extended-slotmap clusterinfo", 1)
		case "":
			// The extended slot map stays once a stack needed it.
			want = strings.Replace(want, "Feature Incompat: 0\n", "Feature Incompat: 256 extended-slotmap\n", 1)
		}
		if got != want {
			t.Errorf("%s: superblock differs from mkfs.ocfs2's:\n%s", st.cs, lineDiff(want, got))
		}
		if out := tunefsO2go(t, img, TunefsOptions{SetClusterStack: true, ClusterStack: st.cs}); !strings.Contains(out, "already on disk") {
			t.Errorf("%s again: output %q, want \"already on disk\"", st.cs, out)
		}
	}
	// The slot map became the extended one, like mkfs's for a stack.
	ref := realtools.MkfsImage(t, 600<<20, "-N", "2", "--fs-feature-level=max-compat", "--cluster-stack=o2cb", "--cluster-name=web")
	if got, want := realtools.Debugfs(t, img, "slotmap"), realtools.Debugfs(t, ref, "slotmap"); got != want {
		t.Errorf("slot map:\n%s", lineDiff(want, got))
	}

	// --update-cluster-stack stamps the running cluster, when it differs.
	run := &ClusterStack{Stack: "o2cb", Name: "prod"}
	if out := tunefsO2go(t, img, TunefsOptions{UpdateClusterStack: true, RunningStack: run, Verbose: true}); !strings.Contains(out, "already configured") {
		t.Errorf("a classic volume suits an o2cb cluster with local heartbeat: %q", out)
	}
	tunefsO2go(t, img, TunefsOptions{SetClusterStack: true, ClusterStack: ClusterStack{Stack: "pcmk", Name: "old"}})
	tunefsO2go(t, img, TunefsOptions{UpdateClusterStack: true, RunningStack: run})
	if got := superWith(t, img).Super.ClusterInfo; got.StackName() != "o2cb" || got.ClusterName() != "prod" {
		t.Errorf("--update-cluster-stack stamped %q/%q", got.StackName(), got.ClusterName())
	}
	requireClean(t, img, "--update-cluster-stack")
	if _, err := tunefsO2goErr(img, TunefsOptions{UpdateClusterStack: true}); err == nil || !strings.Contains(err.Error(), "no running cluster") {
		t.Errorf("--update-cluster-stack without a cluster: %v", err)
	}
	if _, err := tunefsO2goErr(img, TunefsOptions{Features: "noextended-slotmap"}); err == nil || !strings.Contains(err.Error(), "needs the extended slot map") {
		t.Errorf("noextended-slotmap with a stack stamped: %v", err)
	}
	if _, err := tunefsO2goErr(img, TunefsOptions{SetClusterStack: true, ClusterStack: ClusterStack{Stack: "o2cb", Name: "bad name"}}); err == nil {
		t.Error("an o2cb cluster name with a space was accepted")
	}

	// Local volumes have no stack; nolocal stamps the running one.
	local := realtools.MkfsImage(t, 300<<20, "-N", "1", "--fs-features=local")
	if _, err := tunefsO2goErr(local, TunefsOptions{SetClusterStack: true, ClusterStack: ClusterStack{Stack: "o2cb", Name: "x"}}); err == nil || !strings.Contains(err.Error(), "not clustered") {
		t.Errorf("--cluster-stack on a local volume: %v", err)
	}
	tunefsO2go(t, local, TunefsOptions{Features: "nolocal", RunningStack: &ClusterStack{Stack: "o2cb", Name: "web", GlobalHeartbeat: true}})
	ref = realtools.MkfsImage(t, 300<<20, "-N", "1", "--cluster-stack=o2cb", "--cluster-name=web", "--global-heartbeat")
	if got, want := stackLines(t, local), stackLines(t, ref); got != want {
		t.Errorf("nolocal: superblock differs from mkfs.ocfs2's:\n%s", lineDiff(want, got))
	}
	requireClean(t, local, "nolocal")
}

// TestTunefsRefusesVolumesInUse checks the refusals before any write: a
// loop device over the image and live heartbeats on a clustered volume
// (both overridden by -F), a dirty journal, aborted operations, a
// heartbeat device; -Q still reads such volumes.
func TestTunefsRefusesVolumesInUse(t *testing.T) {
	realtools.Require(t)
	t.Run("heartbeat", func(t *testing.T) {
		img := realtools.MkfsImage(t, 300<<20, "-N", "2")
		stop := beat(t, img, 7)
		_, err := tunefsO2goErr(img, TunefsOptions{SetLabel: true, Label: "x", HeartbeatWait: 2 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "node(s) 7 heartbeat") {
			t.Errorf("live node 7: %v", err)
		}
		if superWith(t, img).Super.Label() != "" {
			t.Error("the label changed although the volume was refused")
		}
		tunefsO2go(t, img, TunefsOptions{SetLabel: true, Label: "forced", Force: true})
		stop()
		if l := superWith(t, img).Super.Label(); l != "forced" {
			t.Errorf("-F: label %q", l)
		}
		tunefsO2go(t, img, TunefsOptions{SetLabel: true, Label: "quiet", HeartbeatWait: time.Second})
	})
	t.Run("loop", func(t *testing.T) {
		testutil.RequireRoot(t)
		testutil.RequireTools(t, "losetup")
		img := realtools.MkfsImage(t, 300<<20, "-N", "1", "--fs-features=local")
		out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
		if err != nil {
			testutil.Unavailable(t, "losetup: %v %s", err, out)
		}
		loop := strings.TrimSpace(string(out))
		defer exec.Command("losetup", "-d", loop).Run()
		if _, err := tunefsO2goErr(img, TunefsOptions{Slots: 2}); err == nil || !strings.Contains(err.Error(), loop) {
			t.Errorf("loop device attached: %v", err)
		}
		if got, err := tunefsO2goErr(img, TunefsOptions{SetQuery: true, Query: "%N"}); err != nil || got != "1" {
			t.Errorf("-Q with a loop device: %q %v", got, err)
		}
		tunefsO2go(t, img, TunefsOptions{SetLabel: true, Label: "forced", Force: true})
	})
	t.Run("dirty-journal", func(t *testing.T) {
		img := realtools.MkfsImage(t, 300<<20, "-N", "2", "--fs-features=local")
		m, err := Mount(img, DefaultMountOptions())
		if err != nil {
			t.Fatal(err)
		}
		m.Crash()
		if _, err := tunefsO2goErr(img, TunefsOptions{SetLabel: true, Label: "x", Force: true}); err == nil || !strings.Contains(err.Error(), "journal of slot(s) 0 is dirty") {
			t.Errorf("dirty journal: %v", err)
		}
	})
	t.Run("aborted", func(t *testing.T) {
		for _, c := range []struct {
			incompat uint32
			want     string
		}{
			{ondisk.IncompatResizeInProg, "in the process of resizing"},
			{ondisk.IncompatTunefsInProg, "another tunefs operation"},
			{ondisk.IncompatHeartbeatDev, "heartbeat device"},
		} {
			img := realtools.MkfsImage(t, 100<<20, "-N", "1", "--fs-features=local")
			pokeSuper(t, img, func(sb *ondisk.SuperBlock) { sb.Features.Incompat |= c.incompat })
			_, err := tunefsO2goErr(img, TunefsOptions{SetLabel: true, Label: "x", Force: true})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("incompat 0x%x: %v", c.incompat, err)
			}
			if _, err := tunefsO2goErr(img, TunefsOptions{SetQuery: true, Query: "%H"}); err != nil {
				t.Errorf("-Q on incompat 0x%x: %v", c.incompat, err)
			}
		}
	})
}

// beat writes node's heartbeat sector on img every 200 ms, as a live o2hb
// node would, until the returned stop is called.
func beat(t *testing.T, img string, node int) (stop func()) {
	t.Helper()
	v, err := Open(img, OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	blk, err := v.SystemFile(ondisk.SysHeartbeat, -1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.Cache.Dinode(blk)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(d.Extents.Recs[0].Blkno)*int64(v.SB.BlockSize()) + int64(node)*512
	v.Close()
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sector := make([]byte, 512)
		for seq := uint64(1); ; seq++ {
			hb := ondisk.HeartbeatBlock{Seq: seq, Node: uint8(node), Generation: 0xfeed, DeadMs: 62000}
			hb.Encode(sector)
			f.WriteAt(sector, off)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		f.Close()
	})
	t.Cleanup(stop)
	return stop
}
