package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"o2go/internal/clustermount"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// mountCluster is a procCluster whose agents mount its image.
type mountCluster struct {
	*procCluster
	mnt map[int]string
}

func newMountCluster(t *testing.T, n int) *mountCluster {
	t.Helper()
	testutil.RequireFUSE(t)
	mc := &mountCluster{procCluster: newProcCluster(t, n, loopbackIPs(n)), mnt: map[int]string{}}
	// Room for every node's local alloc window and the tests' files.
	mc.img = realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M")
	t.Cleanup(func() {
		for _, m := range mc.mnt {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	})
	return mc
}

// startAll starts every node's agent and waits until they all see each
// other.
func (mc *mountCluster) startAll() {
	mc.t.Helper()
	all := make([]int, len(mc.names))
	for i := range all {
		mc.start(i)
		all[i] = i
	}
	mc.waitView(all, nodes(all...), 30*time.Second)
}

// mount mounts the image on node i through its agent (o2go mount --socket).
func (mc *mountCluster) mount(i int, opts ...string) string {
	mc.t.Helper()
	m := filepath.Join(mc.dir, fmt.Sprintf("m%d", i))
	if err := os.MkdirAll(m, 0o755); err != nil {
		mc.t.Fatal(err)
	}
	args := append([]string{"mount", "--socket", mc.agents[i].socket}, opts...)
	out, err := exec.Command(mc.bin, append(args, mc.img, m)...).CombinedOutput()
	if err != nil {
		mc.t.Fatalf("o2go mount on node %d: %v\n%s", i, err, out)
	}
	mc.mnt[i] = m
	return m
}

// umount unmounts node i's mount the way an operator does (umount(8)).
func (mc *mountCluster) umount(i int) {
	mc.t.Helper()
	if out, err := exec.Command("umount", mc.mnt[i]).CombinedOutput(); err != nil {
		mc.t.Fatalf("umount on node %d: %v\n%s", i, err, out)
	}
	delete(mc.mnt, i)
}

// waitUnmounted waits until agent i serves no mount any more (its unmount
// released the slot and left the lock domain).
func (mc *mountCluster) waitUnmounted(i int) {
	mc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var ms []map[string]any
		if err := mc.call(i, "fs.mounts", &ms); err == nil && len(ms) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	// What hangs: the agent's goroutines (a Go process dumps them on
	// SIGQUIT), in its log below.
	if p := mc.agents[i].cmd.Process; p != nil {
		_ = p.Signal(syscall.SIGQUIT)
		select {
		case <-mc.agents[i].done:
		case <-time.After(10 * time.Second):
		}
	}
	mc.t.Fatalf("agent %d still serves a mount 30 s after umount (its goroutines are in its log)", i)
}

// kill kills node i's agent (kill -9) and detaches its dead mount.
func (mc *mountCluster) kill(i int) {
	mc.t.Helper()
	if err := mc.agents[i].cmd.Process.Kill(); err != nil {
		mc.t.Fatal(err)
	}
	<-mc.agents[i].done
	if m, ok := mc.mnt[i]; ok {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
		delete(mc.mnt, i)
	}
}

// within runs f, failing the test when it does not return in d (a hung
// clustered operation).
func within(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: still hanging after %v", what, d)
	}
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	return errors.Join(err, f.Close())
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestClusteredMountThreeNodes is issue 7's core: three agents mount one
// volume at once through `o2go mount --socket`; concurrent appends from
// every node interleave without loss; what one node writes, renames or
// removes, the next one sees at once; kill -9 of a node is recovered by a
// survivor (its fsynced data is there, the others go on), the node comes
// back into its slot, and after every node unmounts fsck.ocfs2 finds the
// volume clean.
func TestClusteredMountThreeNodes(t *testing.T) {
	mc := newMountCluster(t, 3)
	mc.startAll()
	for i := 0; i < 3; i++ {
		mc.mount(i)
	}

	// Concurrent appends, O_APPEND from three nodes.
	const per = 40
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < per; j++ {
				if err := appendLine(filepath.Join(mc.mnt[i], "log"), fmt.Sprintf("node%d line%03d", i, j)); err != nil {
					errs <- fmt.Errorf("node %d append %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	within(t, 2*time.Minute, "concurrent appends", func() error { wg.Wait(); close(errs); return <-errs })
	first := readLines(t, filepath.Join(mc.mnt[0], "log"))
	if len(first) != 3*per {
		t.Fatalf("node 0 reads %d lines, want %d", len(first), 3*per)
	}
	sorted := slices.Clone(first)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != 3*per {
		t.Fatalf("lines lost or doubled: %d distinct of %d", len(slices.Compact(sorted)), 3*per)
	}
	for i := 1; i < 3; i++ {
		if got := readLines(t, filepath.Join(mc.mnt[i], "log")); !slices.Equal(got, first) {
			t.Fatalf("node %d reads another log than node 0 (%d lines)", i, len(got))
		}
	}

	// A read on a node gets the last write, whichever node made it.
	for round := 0; round < 6; round++ {
		w, r := round%3, (round+1)%3
		want := fmt.Sprintf("round %d written on node %d\n", round, w)
		if err := os.WriteFile(filepath.Join(mc.mnt[w], "shared"), []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(mc.mnt[r], "shared"))
		if err != nil || string(got) != want {
			t.Fatalf("round %d: node %d reads %q (%v), node %d wrote %q", round, r, got, err, w, want)
		}
	}
	if err := os.Mkdir(filepath.Join(mc.mnt[1], "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mc.mnt[2], "shared"), filepath.Join(mc.mnt[2], "dir", "moved")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mc.mnt[0], "shared")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("node 0 still sees a file node 2 renamed away: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(mc.mnt[0], "dir", "moved")); err != nil || !strings.HasPrefix(string(got), "round 5") {
		t.Fatalf("node 0 reads the renamed file as %q (%v)", got, err)
	}

	unlinkWhileOpenElsewhere(t, mc.mnt[0], mc.mnt[1])
	removeWhatAnotherNodeMade(t, mc.mnt[2], mc.mnt[0])

	// Node 2 writes and fsyncs, then dies with the volume mounted.
	durable := bytes.Repeat([]byte("fsynced on node 2 before it died\n"), 300)
	f, err := os.Create(filepath.Join(mc.mnt[2], "durable"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(durable); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Each node holds its slot's journal lock EX while mounted.
	deadSlot := -1
	for i := range 3 {
		ms := fsLocksJSON(mc, i)
		l, ok := journalLock(t, mc, ms)
		if !ok || l.Mode != "EX" || l.Holders != 1 {
			t.Fatalf("node %d's journal lock (slot %d): %+v (found %v), want EX with one holder", i, ms[0].Slot, l, ok)
		}
		if i == 2 {
			deadSlot = ms[0].Slot
		}
	}
	mc.kill(2)
	mc.waitView([]int{0, 1}, nodes(0, 1), 30*time.Second)
	// The survivors go on once one of them has recovered node 2's slot.
	within(t, time.Minute, "appending on node 0 after node 2 died", func() error {
		return appendLine(filepath.Join(mc.mnt[0], "log"), "node0 after the death")
	})
	within(t, time.Minute, "appending on node 1 after node 2 died", func() error {
		return appendLine(filepath.Join(mc.mnt[1], "log"), "node1 after the death")
	})
	if got, err := os.ReadFile(filepath.Join(mc.mnt[1], "durable")); err != nil || !bytes.Equal(got, durable) {
		t.Fatalf("node 1 reads %d bytes of what node 2 fsynced (%v), want %d", len(got), err, len(durable))
	}
	recovered := strings.Contains(mc.agents[0].logText(), "recovered a dead node's slot") ||
		strings.Contains(mc.agents[1].logText(), "recovered a dead node's slot")
	if !recovered {
		t.Fatal("no survivor logged the recovery of node 2's slot")
	}
	// The survivor that recovered it took the dead slot's journal lock.
	deadJournal := journalInode(t, mc.img, deadSlot)
	took := false
	for i := range 2 {
		for _, l := range fsLocksJSON(mc, i)[0].Locks {
			took = took || l.Type == "Meta" && l.Inode == deadJournal && l.Mode == "EX"
		}
	}
	if !took {
		t.Fatalf("no survivor holds the journal lock of slot %d (inode %d) after recovering it", deadSlot, deadJournal)
	}

	// Node 2 comes back and mounts again.
	mc.start(2)
	mc.waitView([]int{0, 1, 2}, nodes(0, 1, 2), 30*time.Second)
	mc.mount(2)
	if got := readLines(t, filepath.Join(mc.mnt[2], "log")); len(got) != 3*per+2 {
		t.Fatalf("node 2 reads %d lines after its return, want %d", len(got), 3*per+2)
	}
	if got, err := os.ReadFile(filepath.Join(mc.mnt[2], "durable")); err != nil || !bytes.Equal(got, durable) {
		t.Fatalf("node 2 reads back %d bytes of its fsynced file (%v)", len(got), err)
	}

	for i := 0; i < 3; i++ {
		mc.umount(i)
		mc.waitUnmounted(i)
	}
	requireNoOrphans(t, mc.img, 4)
	realtools.RequireFsckClean(t, mc.img)
}

// requireNoOrphans fails when an orphan directory still holds an inode
// after every node unmounted (a delete that never finished leaks it; fsck
// -n does not report it).
func requireNoOrphans(t *testing.T, img string, slots int) {
	t.Helper()
	for s := 0; s < slots; s++ {
		out := realtools.Debugfs(t, img, fmt.Sprintf("ls //orphan_dir:%04d", s))
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] != "." && f[len(f)-1] != ".." {
				t.Fatalf("orphan_dir:%04d still holds %s after every node unmounted:\n%s", s, f[len(f)-1], out)
			}
		}
	}
}

// removeWhatAnotherNodeMade: node a removes files, a directory tree, a
// symlink and an extended attribute block that node b made, so every
// inode and block goes back to the allocators of b's slot.
func removeWhatAnotherNodeMade(t *testing.T, b, a string) {
	t.Helper()
	tree := filepath.Join(b, "made-by-b")
	for d := 0; d < 3; d++ {
		dir := filepath.Join(tree, fmt.Sprintf("d%d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := 0; f < 60; f++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-with-a-long-name-%03d", f)), bytes.Repeat([]byte{byte(f)}, 5000*f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink("d0/file-with-a-long-name-001", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setxattr(filepath.Join(tree, "d1"), "user.big", bytes.Repeat([]byte("x"), 3000), 0); err != nil {
		t.Fatal(err)
	}
	within(t, time.Minute, "removing on node a the tree node b made", func() error {
		return os.RemoveAll(filepath.Join(a, "made-by-b"))
	})
	if _, err := os.Stat(tree); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("node b still sees the tree node a removed: %v", err)
	}
}

func freeBlocks(t *testing.T, mnt string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bfree
}

// unlinkWhileOpenElsewhere: a file open on node a and removed on node b
// lives on for a (reads and writes through its descriptor) and is deleted
// when a closes it, as on a local file system.
func unlinkWhileOpenElsewhere(t *testing.T, a, b string) {
	t.Helper()
	data := bytes.Repeat([]byte("kept alive by an open descriptor on the other node\n"), 40000) // 2 MB
	if err := os.WriteFile(filepath.Join(a, "victim"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(a, "victim"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(filepath.Join(b, "victim")); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{a, b} {
		if _, err := os.Stat(filepath.Join(m, "victim")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the removed name is still there: %v", m, err)
		}
	}
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reading a file removed by another node through its open descriptor: %v (equal %v)", err, bytes.Equal(got, data))
	}
	if _, err := f.WriteAt([]byte("still writable"), 0); err != nil {
		t.Fatalf("writing a file removed by another node through its open descriptor: %v", err)
	}
	// Free space counts the global bitmap, whose numbers also move with
	// the nodes' local alloc windows: compare around the close only.
	open := freeBlocks(t, b)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := open + uint64(len(data))/4096 - 16
	deadline := time.Now().Add(20 * time.Second)
	for freeBlocks(t, b) < want {
		if time.Now().After(deadline) {
			t.Fatalf("the space of a removed file did not come back after its last close: %d free blocks, %d while it was open, the file holds %d", freeBlocks(t, b), open, len(data)/4096)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMountHelperArgs(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want string
		ok   bool
		err  bool
	}{
		{[]string{"/usr/bin/o2go", "mount", "a", "b"}, "", false, false},
		{[]string{"/sbin/mount.fuse.o2go", "/dev/sdb", "/srv", "-o", "rw,_netdev,node=n1"}, "mount -o rw,_netdev,node=n1 /dev/sdb /srv", true, false},
		{[]string{"mount.fuse.o2go", "UUID=AB", "/srv", "-n", "-orw", "-o", "noatime"}, "mount -o rw,noatime UUID=AB /srv", true, false},
		{[]string{"mount.o2go", "/dev/sdb", "/srv"}, "mount /dev/sdb /srv", true, false},
		{[]string{"mount.fuse.o2go", "/dev/sdb"}, "", true, true},
		{[]string{"mount.fuse.o2go", "/dev/sdb", "/srv", "--bogus"}, "", true, true},
	} {
		args, ok, err := mountHelperArgs(c.argv)
		if ok != c.ok || (err != nil) != c.err || strings.Join(args, " ") != c.want {
			t.Errorf("%q: %q %v %v, want %q %v err=%v", c.argv, args, ok, err, c.want, c.ok, c.err)
		}
	}
	if o, n, s := agentOptions("rw,node=n1,_netdev,socket=/run/x.sock", "", ""); o != "rw,_netdev" || n != "n1" || s != "/run/x.sock" {
		t.Errorf("agentOptions: %q %q %q", o, n, s)
	}
	if _, n, _ := agentOptions("node=n1", "flag", ""); n != "flag" {
		t.Errorf("the --node flag must win over node=: %q", n)
	}
}

// TestClusteredMountFromFstab: an fstab entry of type fuse.o2go with
// _netdev mounts a clustered volume through the agent (mount(8) calls
// /sbin/mount.fuse.o2go, a link to o2go), and umount(8) ends it.
func TestClusteredMountFromFstab(t *testing.T) {
	mc := newMountCluster(t, 1)
	mc.start(0)
	mc.waitView([]int{0}, nodes(0), 30*time.Second)
	const helper = "/sbin/mount.fuse.o2go"
	if _, err := os.Lstat(helper); errors.Is(err, os.ErrNotExist) {
		if err := os.Symlink(mc.bin, helper); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(helper) })
	} else if target, _ := os.Readlink(helper); target != mc.bin {
		t.Logf("using the installed %s (-> %s)", helper, target)
	}
	mnt := filepath.Join(mc.dir, "fstab-mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	fstab := filepath.Join(mc.dir, "fstab")
	line := fmt.Sprintf("%s %s fuse.o2go _netdev,noatime,socket=%s 0 0\n", mc.img, mnt, mc.agents[0].socket)
	if err := os.WriteFile(fstab, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-T", fstab, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount -T %s %s: %v\n%s", fstab, mnt, err, out)
	}
	mc.mnt[0] = mnt
	var ms []map[string]any
	if err := mc.call(0, "fs.mounts", &ms); err != nil || len(ms) != 1 || ms[0]["mountpoint"] != mnt {
		t.Fatalf("the agent does not serve the fstab mount: %v %v", ms, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "from-fstab"), []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// While the agent has it mounted, the volume is seen in use: a
	// nocluster mount on this machine is refused, mounted -f names the node.
	other := filepath.Join(mc.dir, "nocluster-mnt")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mc.bin, "mount", "-o", "nocluster", mc.img, other).CombinedOutput(); err == nil {
		_ = syscall.Unmount(other, syscall.MNT_DETACH)
		t.Fatalf("a nocluster mount beside the agent's clustered mount was accepted:\n%s", out)
	}
	// (Without --config it names nodes by number, as mounted.ocfs2 does.)
	out, err := exec.Command(mc.bin, "mounted", "-f", mc.img).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if f := strings.Fields(lines[len(lines)-1]); err != nil || len(f) == 0 || f[len(f)-1] != "0" {
		t.Fatalf("o2go mounted -f does not show node 0 heartbeating: %v\n%s", err, out)
	}
	// o2go umount waits until the agent has left the volume.
	if out, err := exec.Command(mc.bin, "umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("o2go umount: %v\n%s", err, out)
	}
	delete(mc.mnt, 0)
	if err := mc.call(0, "fs.mounts", &ms); err != nil || len(ms) != 0 {
		t.Fatalf("o2go umount returned while the agent still serves the mount: %v %v", ms, err)
	}
	realtools.RequireFsckClean(t, mc.img)
}

// TestClusteredMountRecoversANodeThatDiedAlone: a node dies while it is the
// only one with the volume mounted, so no survivor recovers it; the next
// node to mount finds its slot in the slot map, replays its journal (the
// fsynced file is there) and frees the slot, as the kernel's mount does.
func TestClusteredMountRecoversANodeThatDiedAlone(t *testing.T) {
	mc := newMountCluster(t, 3)
	mc.startAll()
	m0 := mc.mount(0)
	data := bytes.Repeat([]byte("fsynced by node 0, alone, before it died\n"), 500)
	f, err := os.Create(filepath.Join(m0, "alone"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mc.kill(0)
	mc.waitView([]int{1, 2}, nodes(1, 2), 30*time.Second)

	m1 := mc.mount(1)
	if got, err := os.ReadFile(filepath.Join(m1, "alone")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("node 1 reads %d bytes of the file node 0 fsynced before it died alone (%v), want %d", len(got), err, len(data))
	}
	if !strings.Contains(mc.agents[1].logText(), "recovered the slot of a node that died with the volume mounted") {
		t.Fatal("node 1 did not log the recovery of node 0's slot")
	}
	mc.umount(1)
	mc.waitUnmounted(1)
	// Node 0's old slot was freed with the recovery, node 1's at umount:
	// debugfs.ocfs2 lists no slot in use.
	out := realtools.Debugfs(t, mc.img, "slotmap")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 {
		t.Fatalf("slots still in use after every node unmounted:\n%s", out)
	}
	realtools.RequireFsckClean(t, mc.img)
}

// TestClusteredOrphanScan: a file open on node 0 and removed on node 1
// waits in node 1's orphan directory for node 0 to close it; node 0 dies
// instead. Its recovery deletes node 0's own orphans only: the survivors'
// orphan scan (every 2 s here, 5 min by default) finds the file nobody
// uses any more and deletes it, long before node 1 unmounts.
func TestClusteredOrphanScan(t *testing.T) {
	t.Setenv(clustermount.OrphanScanIntervalEnv, "2s")
	mc := newMountCluster(t, 3)
	mc.startAll()
	m0, m1 := mc.mount(0), mc.mount(1)
	mc.mount(2)
	data := bytes.Repeat([]byte("open on node 0, removed on node 1\n"), 30000)
	if err := os.WriteFile(filepath.Join(m0, "kept"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(m0, "kept"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(filepath.Join(m1, "kept")); err != nil {
		t.Fatal(err)
	}
	// Scans meanwhile leave it alone: node 0 holds it open.
	time.Sleep(5 * time.Second)
	const scanned = "orphan scan deleted orphan inodes"
	for _, i := range []int{1, 2} {
		if strings.Contains(mc.agents[i].logText(), scanned) {
			t.Fatalf("node %d's orphan scan deleted a file node 0 still has open", i)
		}
	}
	mc.kill(0)
	mc.waitView([]int{1, 2}, nodes(1, 2), 30*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(mc.agents[1].logText()+mc.agents[2].logText(), scanned) {
		if time.Now().After(deadline) {
			t.Fatal("no survivor's orphan scan deleted the file node 0 held open when it died")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, i := range []int{1, 2} {
		mc.umount(i)
		mc.waitUnmounted(i)
	}
	requireNoOrphans(t, mc.img, 4)
	realtools.RequireFsckClean(t, mc.img)
}

// journalInode is the inode of slot s's journal (debugfs.ocfs2's view).
func journalInode(t *testing.T, img string, s int) uint64 {
	t.Helper()
	out := realtools.Debugfs(t, img, fmt.Sprintf("stat //journal:%04d", s))
	m := regexp.MustCompile(`Inode: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("debugfs.ocfs2 stat //journal:%04d names no inode:\n%s", s, out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// journalLock is, in fs_locks ms of one mount, the lock of that mount's
// slot's journal.
func journalLock(t *testing.T, mc *mountCluster, ms []clustermount.MountLocks) (clustermount.FsLock, bool) {
	t.Helper()
	ino := journalInode(t, mc.img, ms[0].Slot)
	for _, l := range ms[0].Locks {
		if l.Type == "Meta" && l.Inode == ino {
			return l, true
		}
	}
	return clustermount.FsLock{}, false
}
