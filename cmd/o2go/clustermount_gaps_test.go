package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"o2go/internal/dlm"
	"o2go/internal/node"
	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// Issue 7's promises that had code but no test: a volume of another
// cluster refused, mounts by UUID=, LABEL= and from fstab, preferred_slot=,
// a node that died alone coming back into its slot, and an unmount that
// hands the locks it mastered over while the others use them.

// gapsMountSpec mounts spec (a device, UUID=… or LABEL=…) on node i through
// its agent, as mc.mount does for the image.
func gapsMountSpec(mc *mountCluster, i int, spec string, opts ...string) string {
	mc.t.Helper()
	m := filepath.Join(mc.dir, fmt.Sprintf("m%d", i))
	if err := os.MkdirAll(m, 0o755); err != nil {
		mc.t.Fatal(err)
	}
	args := append([]string{"mount", "--socket", mc.agents[i].socket}, opts...)
	out, err := exec.Command(mc.bin, append(args, spec, m)...).CombinedOutput()
	if err != nil {
		mc.t.Fatalf("o2go mount %s on node %d: %v\n%s", spec, i, err, out)
	}
	mc.mnt[i] = m
	return m
}

// gapsMounts is agent i's fs.mounts.
func gapsMounts(mc *mountCluster, i int) []clustermount.MountInfo {
	mc.t.Helper()
	var ms []clustermount.MountInfo
	if err := mc.call(i, "fs.mounts", &ms); err != nil {
		mc.t.Fatalf("fs.mounts on node %d: %v", i, err)
	}
	return ms
}

// gapsSlot is the slot of agent i's only mount.
func gapsSlot(mc *mountCluster, i int) int {
	mc.t.Helper()
	ms := gapsMounts(mc, i)
	if len(ms) != 1 {
		mc.t.Fatalf("node %d serves %d mounts, want 1: %+v", i, len(ms), ms)
	}
	return ms[0].Slot
}

var gapsSlotLine = regexp.MustCompile(`(?m)^\s*(\d+)\s+(\d+)\s*$`)

// gapsSlotMap is debugfs.ocfs2's slotmap of img: slot -> node, slots in
// use only.
func gapsSlotMap(t *testing.T, img string) map[int]int {
	t.Helper()
	m := map[int]int{}
	for _, l := range gapsSlotLine.FindAllStringSubmatch(realtools.Debugfs(t, img, "slotmap"), -1) {
		s, _ := strconv.Atoi(l[1])
		n, _ := strconv.Atoi(l[2])
		m[s] = n
	}
	return m
}

func gapsHash(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// gapsBlkidUUID is a volume UUID as blkid prints it (and fstab carries
// it): lowercase, dashed 8-4-4-4-12.
func gapsBlkidUUID(uuid string) string {
	u := strings.ToLower(uuid)
	return u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:32]
}

// TestClusteredMountRefusesAnotherClustersVolume: a volume stamped for
// another cluster name, or for another cluster stack, is refused as
// mount.ocfs2 refuses it, with a message naming what the volume says and
// what this node runs, and nothing on the volume changes (not one byte: no
// slot taken, no heartbeat written). It fails if the stamp is checked after
// the heartbeat starts on the volume or after the slot is claimed, or not
// at all.
func TestClusteredMountRefusesAnotherClustersVolume(t *testing.T) {
	mc := newMountCluster(t, 1)
	mc.start(0)
	mc.waitView([]int{0}, nodes(0), 30*time.Second)
	for _, c := range []struct {
		stamp []string
		want  []string // in the error, with the device
	}{
		{[]string{"--cluster-stack=o2cb", "--cluster-name=other"}, []string{`"other"`, `"proc"`}},
		{[]string{"--cluster-stack=pcmk", "--cluster-name=proc"}, []string{`"pcmk"`, "o2cb"}},
	} {
		img := realtools.MkfsImage(t, 64<<20, append([]string{"-b", "4096", "-N", "4", "-J", "size=4M"}, c.stamp...)...)
		before := gapsHash(t, img)
		m := filepath.Join(mc.dir, "refused")
		if err := os.MkdirAll(m, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(mc.bin, "mount", "--socket", mc.agents[0].socket, img, m).CombinedOutput()
		if err == nil {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
			t.Fatalf("a volume stamped %v was mounted in cluster proc (o2cb):\n%s", c.stamp, out)
		}
		for _, w := range append(c.want, img) {
			if !strings.Contains(string(out), w) {
				t.Errorf("stamp %v: the refusal does not name %s:\n%s", c.stamp, w, out)
			}
		}
		if gapsHash(t, img) != before {
			t.Errorf("stamp %v: the refused mount changed the volume (slot map %v)", c.stamp, gapsSlotMap(t, img))
		}
		if ms := gapsMounts(mc, 0); len(ms) != 0 {
			t.Errorf("stamp %v: the agent serves %+v after refusing the mount", c.stamp, ms)
		}
		var hbs []node.RegionInfo
		if err := mc.call(0, "heartbeat.list", &hbs); err != nil {
			t.Fatal(err)
		}
		for _, r := range hbs {
			if r.Device == img {
				t.Errorf("stamp %v: a heartbeat region runs on the refused volume: %+v", c.stamp, r)
			}
		}
	}
	// The agent still mounts its own cluster's volume.
	mc.mount(0)
	mc.umount(0)
	mc.waitUnmounted(0)
}

// TestClusteredMountByUUIDAndLabel: agents started with --scan find the
// volume by UUID= (as blkid prints it) on one node and by LABEL= on the
// other, both mount the same volume (a write on one is read on the other),
// and it ends clean. It fails if an agent cannot resolve either form, or
// resolves it to another volume.
func TestClusteredMountByUUIDAndLabel(t *testing.T) {
	mc := newMountCluster(t, 2)
	const label = "o2go-gaps-vol"
	mc.img = realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M", "-L", label)
	info, err := node.ProbeVolume(mc.img)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		mc.start(i, "--scan", filepath.Dir(mc.img))
	}
	mc.waitView([]int{0, 1}, nodes(0, 1), 30*time.Second)
	m0 := gapsMountSpec(mc, 0, "UUID="+gapsBlkidUUID(info.UUID))
	m1 := gapsMountSpec(mc, 1, "LABEL="+label)
	for i := 0; i < 2; i++ {
		if ms := gapsMounts(mc, i); len(ms) != 1 || ms[0].Device != mc.img || ms[0].UUID != info.UUID {
			t.Fatalf("node %d mounts %+v, want %s (UUID %s)", i, ms, mc.img, info.UUID)
		}
	}
	want := []byte("written on the node that mounted by UUID\n")
	if err := os.WriteFile(filepath.Join(m0, "by-uuid"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(m1, "by-uuid")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the node that mounted by label reads %q (%v), want %q", got, err, want)
	}
	// A label or UUID nobody has is refused with what was looked for.
	other := filepath.Join(mc.dir, "nowhere")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(mc.bin, "mount", "--socket", mc.agents[0].socket, "LABEL=no-such-volume", other).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "LABEL=no-such-volume") || !strings.Contains(string(out), "no device found") {
		_ = syscall.Unmount(other, syscall.MNT_DETACH)
		t.Fatalf("mount of an unknown label: %v\n%s", err, out)
	}
	for i := 0; i < 2; i++ {
		mc.umount(i)
		mc.waitUnmounted(i)
	}
	realtools.RequireFsckClean(t, mc.img)
}

// TestClusteredMountFromFstabByUUID: an fstab line "UUID=… MOUNTPOINT
// fuse.o2go _netdev,…" mounts a clustered volume as on a real node: mount(8)
// resolves the UUID to the block device (blkid), calls mount.fuse.o2go, and
// the agent mounts that device. The volume sits on a loop device, so blkid
// finds it. It fails if the helper cannot take a resolved device or the
// options of such a line (_netdev, socket=).
func TestClusteredMountFromFstabByUUID(t *testing.T) {
	testutil.RequireTools(t, "losetup", "blkid")
	mc := newMountCluster(t, 1)
	out, err := exec.Command("losetup", "-f", "--show", mc.img).CombinedOutput()
	if err != nil {
		testutil.Unavailable(t, "losetup -f %s: %v: %s", mc.img, err, out)
	}
	loop := strings.TrimSpace(string(out))
	file := mc.img
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", loop).Run() })
	mc.img = loop // the agent heartbeats on the device, as on a real node
	info, err := node.ProbeVolume(loop)
	if err != nil {
		t.Fatal(err)
	}
	mc.start(0)
	mc.waitView([]int{0}, nodes(0), 30*time.Second)
	gapsMountHelper(t, mc.bin)

	mnt := filepath.Join(mc.dir, "fstab-uuid")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	fstab := filepath.Join(mc.dir, "fstab")
	line := fmt.Sprintf("UUID=%s %s fuse.o2go _netdev,noatime,socket=%s 0 0\n", gapsBlkidUUID(info.UUID), mnt, mc.agents[0].socket)
	if err := os.WriteFile(fstab, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-T", fstab, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount -T %s %s (%s): %v\n%s", fstab, mnt, strings.TrimSpace(line), err, out)
	}
	mc.mnt[0] = mnt
	if ms := gapsMounts(mc, 0); len(ms) != 1 || ms[0].Mountpoint != mnt || ms[0].Device != loop || ms[0].UUID != info.UUID {
		t.Fatalf("the agent serves %+v, want %s on %s", ms, loop, mnt)
	}
	want := []byte("mounted from fstab by UUID\n")
	if err := os.WriteFile(filepath.Join(mnt, "from-fstab"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	mc.umount(0)
	mc.waitUnmounted(0)
	if out := realtools.Debugfs(t, file, "cat /from-fstab"); out != string(want) {
		t.Fatalf("debugfs.ocfs2 reads %q from the image, want %q", out, want)
	}
	realtools.RequireFsckClean(t, file)
}

// gapsMountHelper makes /sbin/mount.fuse.o2go a link to the test binary
// for the test, unless one is installed (as TestClusteredMountFromFstab).
func gapsMountHelper(t *testing.T, bin string) {
	t.Helper()
	const helper = "/sbin/mount.fuse.o2go"
	if _, err := os.Lstat(helper); errors.Is(err, os.ErrNotExist) {
		if err := os.Symlink(bin, helper); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(helper) })
	} else if target, _ := os.Readlink(helper); target != bin {
		t.Logf("using the installed %s (-> %s)", helper, target)
	}
}

// TestClusteredMountPreferredSlot: -o preferred_slot=N takes slot N when it
// is free; when another node has it, the first free slot; a slot past the
// volume's count is ignored (the first free slot again), as the kernel's
// ocfs2_find_slot does. debugfs.ocfs2's slot map agrees with the agents. It
// fails if the option is ignored, if a taken slot is handed out twice, or
// if a preferred slot past the count refuses the mount (o2go did).
func TestClusteredMountPreferredSlot(t *testing.T) {
	mc := newMountCluster(t, 3)
	mc.startAll()
	mc.mount(0, "-o", "preferred_slot=2")
	mc.mount(1, "-o", "preferred_slot=2")
	mc.mount(2, "-o", "preferred_slot=9") // the volume has 4 slots
	want := map[int]int{2: 0, 0: 1, 1: 2}
	for s, n := range want {
		if got := gapsSlot(mc, n); got != s {
			t.Errorf("node %d has slot %d, want %d", n, got, s)
		}
	}
	if got := gapsSlotMap(t, mc.img); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("debugfs.ocfs2 slotmap: %v, want %v", got, want)
	}
	// Node 2 comes back asking for slot 2 again: it is node 0's, so node 2
	// gets the first free one, and node 0's is untouched.
	mc.umount(2)
	mc.waitUnmounted(2)
	mc.mount(2, "-o", "preferred_slot=2")
	if got := gapsSlot(mc, 2); got != 1 {
		t.Errorf("node 2 remounted into slot %d, want 1 (its preferred slot 2 is node 0's)", got)
	}
	for i := 0; i < 3; i++ {
		mc.umount(i)
		mc.waitUnmounted(i)
	}
	if got := gapsSlotMap(t, mc.img); len(got) != 0 {
		t.Errorf("slots still in use after every node unmounted: %v", got)
	}
	realtools.RequireFsckClean(t, mc.img)
}

// TestClusteredMountAllSlotsTaken: on a volume with two slots, a third
// node's mount is refused with a message saying so, its agent lives on
// (it used to crash: the mount's undo went through a nil mount), holds no
// heartbeat user for the volume beyond its own, and mounts once a slot is
// free. It fails if the refused mount takes the agent down or leaves the
// volume's slot map or lock domain touched.
func TestClusteredMountAllSlotsTaken(t *testing.T) {
	mc := newMountCluster(t, 3)
	mc.img = realtools.MkfsImage(t, 128<<20, "-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M")
	mc.startAll()
	mc.mount(0)
	mc.mount(1)
	m := filepath.Join(mc.dir, "m2")
	if err := os.MkdirAll(m, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(mc.bin, "mount", "--socket", mc.agents[2].socket, mc.img, m).CombinedOutput()
	if err == nil {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
		t.Fatalf("a third node mounted a volume with two slots:\n%s", out)
	}
	if !strings.Contains(string(out), "all 2 slots are in use") {
		t.Errorf("the refusal does not say the slots are all in use:\n%s", out)
	}
	select {
	case <-mc.agents[2].done:
		t.Fatalf("node 2's agent exited (status %d) after its mount was refused", mc.agents[2].exit)
	default:
	}
	if ms := gapsMounts(mc, 2); len(ms) != 0 {
		t.Fatalf("node 2 serves %+v after the refusal", ms)
	}
	var hbs []node.RegionInfo
	if err := mc.call(2, "heartbeat.list", &hbs); err != nil || len(hbs) != 1 || hbs[0].Refs != 1 {
		t.Errorf("node 2's heartbeat regions after the refused mount: %+v (%v), want the agent's own only", hbs, err)
	}
	if sm := gapsSlotMap(t, mc.img); fmt.Sprint(sm) != fmt.Sprint(map[int]int{0: 0, 1: 1}) {
		t.Errorf("slot map after the refused mount: %v", sm)
	}
	mc.umount(0)
	mc.waitUnmounted(0)
	mc.mount(2)
	if s := gapsSlot(mc, 2); s != 0 {
		t.Errorf("node 2 mounted into slot %d, want 0 (node 0's, now free)", s)
	}
	for _, i := range []int{1, 2} {
		mc.umount(i)
		mc.waitUnmounted(i)
	}
	realtools.RequireFsckClean(t, mc.img)
}

var (
	gapsJournalStart = regexp.MustCompile(`First Commit ID: (\d+)\s+Start Log Blknum: (\d+)`)
	gapsCommitBlock  = regexp.MustCompile(`Block \d+: Journal Commit Block\s+Seq: (\d+)`)
)

// gapsJournal reads slot's journal with debugfs.ocfs2 logdump: the first
// log block to replay (0: nothing to replay, the journal is clean) and
// how many committed transactions from there the log holds.
func gapsJournal(t *testing.T, img string, slot int) (start, commits int, dump string) {
	t.Helper()
	dump = realtools.Debugfs(t, img, fmt.Sprintf("logdump %d", slot))
	m := gapsJournalStart.FindStringSubmatch(dump)
	if m == nil {
		t.Fatalf("debugfs.ocfs2 logdump %d shows no journal superblock:\n%s", slot, dump)
	}
	first, _ := strconv.Atoi(m[1])
	start, _ = strconv.Atoi(m[2])
	if start == 0 {
		return 0, 0, dump
	}
	for _, c := range gapsCommitBlock.FindAllStringSubmatch(dump, -1) {
		if seq, _ := strconv.Atoi(c[1]); seq >= first {
			commits++
		}
	}
	return start, commits, dump
}

// TestClusteredMountNodeDiesAloneAndComesBack: the only node with the
// volume mounted is killed (kill -9; the other agent runs but never mounts,
// so nobody recovers it); its slot stays taken and its journal holds what
// it fsynced. It restarts and mounts again: it gets its own slot back
// (without asking for it), replays its own journal (the log is empty
// afterwards), and its fsynced files are there; fsck.ocfs2 finds the
// volume clean. It fails if the node takes another slot (its old one
// would be left for a recovery nobody runs) or mounts without replaying.
func TestClusteredMountNodeDiesAloneAndComesBack(t *testing.T) {
	mc := newMountCluster(t, 2)
	mc.startAll()
	// Slot 3, not the first free one: the remount must find it by node.
	m := mc.mount(1, "-o", "preferred_slot=3")
	if s := gapsSlot(mc, 1); s != 3 {
		t.Fatalf("node 1 mounted in slot %d, want 3", s)
	}
	data := bytes.Repeat([]byte("fsynced by node 1 alone before it died\n"), 700)
	if err := os.Mkdir(filepath.Join(m, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i := 0; i < 8; i++ {
		p := filepath.Join(m, "dir", fmt.Sprintf("f%d", i))
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data[:len(data)-i*1000]); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		files = append(files, filepath.Join("dir", fmt.Sprintf("f%d", i)))
	}
	dir, err := os.Open(filepath.Join(m, "dir"))
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Sync(); err != nil {
		t.Fatal(err)
	}
	dir.Close()
	mc.kill(1)
	time.Sleep(testDeadTime() + 2*testInterval) // node 0 sees it dead
	mc.waitView([]int{0}, nodes(0), 30*time.Second)

	if sm := gapsSlotMap(t, mc.img); fmt.Sprint(sm) != fmt.Sprint(map[int]int{3: 1}) {
		t.Fatalf("slot map after node 1 died alone: %v, want slot 3 still node 1's", sm)
	}
	if start, commits, dump := gapsJournal(t, mc.img, 3); start == 0 || commits == 0 {
		t.Fatalf("journal:0003 has nothing to replay (start %d, %d commits) after node 1 died having fsynced:\n%s", start, commits, dump)
	} else {
		t.Logf("journal:0003 holds %d committed transactions to replay from block %d", commits, start)
	}

	mc.start(1)
	mc.waitView([]int{0, 1}, nodes(0, 1), 30*time.Second)
	m = mc.mount(1)
	if s := gapsSlot(mc, 1); s != 3 {
		t.Fatalf("node 1 came back into slot %d, want its own slot 3", s)
	}
	if !strings.Contains(mc.agents[1].logText(), "recovered this node's slot after an unclean shutdown") {
		t.Error("node 1 did not log the recovery of its own slot")
	}
	for i, f := range files {
		if got, err := os.ReadFile(filepath.Join(m, f)); err != nil || !bytes.Equal(got, data[:len(data)-i*1000]) {
			t.Fatalf("%s after the remount: %d bytes (%v), want %d", f, len(got), err, len(data)-i*1000)
		}
	}
	mc.umount(1)
	mc.waitUnmounted(1)
	if start, commits, dump := gapsJournal(t, mc.img, 3); start != 0 {
		t.Errorf("journal:0003 still has %d transactions to replay from block %d after the remount and a clean unmount:\n%s", commits, start, dump)
	}
	if sm := gapsSlotMap(t, mc.img); len(sm) != 0 {
		t.Errorf("slots in use after the unmount: %v", sm)
	}
	requireNoOrphans(t, mc.img, 4)
	realtools.RequireFsckClean(t, mc.img)
}

// gapsFsLock is node i's fs_locks row of lock name, for the handle fh when
// fh is not 0.
func gapsFsLock(mc *mountCluster, i int, name string, fh uint64) (clustermount.FsLock, bool) {
	mc.t.Helper()
	ms := fsLocksJSON(mc, i)
	if len(ms) != 1 {
		mc.t.Fatalf("node %d's fs_locks shows %d mounts", i, len(ms))
	}
	for _, l := range ms[0].Locks {
		if l.Name == name && !l.Untracked && (fh == 0 || l.Handle == fh) {
			return l, true
		}
	}
	return clustermount.FsLock{}, false
}

func gapsIno(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// TestClusteredUnmountMigratesMasteredLocks: nodes 0 and 1 keep working on
// files whose locks node 2 masters (their metadata locks, and a flock node
// 0 holds) while node 2 unmounts: node 2 hands its resources over as it
// leaves the lock domain; every operation of the others completes, none
// waits past a bound; afterwards fs_locks and the lock manager show the
// locks mastered by node 0 or 1, the flock still held EX by node 0 (node 1
// cannot take it), and dlm state counts the resources that came in. It
// fails if the leave drops resources (the flock would be lost, node 1
// would get it), if a request waits for the node that left, or if the
// views still name node 2.
func TestClusteredUnmountMigratesMasteredLocks(t *testing.T) {
	mc := newMountCluster(t, 3)
	mc.startAll()
	m0, m1 := mc.mount(0), mc.mount(1)
	mc.mount(2)

	// Files both nodes use; keep those whose inode locks node 2 masters.
	var work []string
	for f := 0; f < 30; f++ {
		name := fmt.Sprintf("w%02d", f)
		if err := os.WriteFile(filepath.Join(m0, name), []byte("start\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := os.ReadFile(filepath.Join(m1, name)); err != nil {
			t.Fatal(err)
		}
		l, ok := gapsFsLock(mc, 0, fsLocksName(t, ondisk.LockMeta, gapsIno(t, filepath.Join(m0, name))), 0)
		if ok && l.Master == 2 {
			work = append(work, name)
		}
	}
	if len(work) < 3 {
		t.Fatalf("node 2 masters the inode locks of %d files of 30 (rendezvous hashing should give it about 10)", len(work))
	}
	// A flock node 0 holds, mastered by node 2.
	var held *os.File
	var flockName string
	for f := 0; f < 30 && held == nil; f++ {
		p := filepath.Join(m0, fmt.Sprintf("lock%02d", f))
		fh, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Fatalf("flock on node 0: %v", err)
		}
		name := fsLocksName(t, ondisk.LockFlock, gapsIno(t, p))
		if l, ok := gapsFsLock(mc, 0, name, 0); ok && l.Master == 2 && l.Mode == "EX" {
			held, flockName = fh, name
			break
		}
		fh.Close()
	}
	if held == nil {
		t.Fatal("no flock of 30 files is mastered by node 2")
	}
	defer held.Close()

	// Nodes 0 and 1 append to and read those files until told to stop.
	const bound = 5 * time.Second // the unmount's S EX, then the leave's reconfiguration: milliseconds unloaded
	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		slowest time.Duration
		ops     int
	)
	for i, m := range []string{m0, m1} {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				name := work[n%len(work)]
				start := time.Now()
				err := appendLine(filepath.Join(m, name), fmt.Sprintf("node%d op%d", i, n))
				if err == nil {
					_, err = os.ReadFile(filepath.Join(m, work[(n+1)%len(work)]))
				}
				d := time.Since(start)
				mu.Lock()
				ops++
				slowest = max(slowest, d)
				if err != nil {
					errs = append(errs, fmt.Errorf("node %d on %s: %w", i, name, err))
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	time.Sleep(time.Second)
	mc.umount(2)
	mc.waitUnmounted(2)
	time.Sleep(2 * time.Second) // the others go on past the leave
	close(stop)
	within(t, 2*bound, "the workers on nodes 0 and 1 after node 2 unmounted", func() error { wg.Wait(); return nil })
	if len(errs) > 0 {
		t.Fatalf("operations failed while node 2 unmounted: %v", errs)
	}
	t.Logf("%d operations on nodes 0 and 1 across node 2's unmount, the slowest %v", ops, slowest)
	if slowest > bound {
		t.Errorf("an operation took %v across node 2's unmount, past %v", slowest, bound)
	}

	// The views: every lock of those files mastered by node 0 or 1.
	uuid := fsLocksJSON(mc, 0)[0].UUID
	for _, name := range work {
		l, ok := gapsFsLock(mc, 0, fsLocksName(t, ondisk.LockMeta, gapsIno(t, filepath.Join(m0, name))), 0)
		if !ok || l.Master == 2 {
			t.Errorf("node 0's fs_locks row of the inode lock of %s, which it just used: %+v (found %v), want it mastered by node 0 or 1", name, l, ok)
		}
	}
	l, ok := gapsFsLock(mc, 0, flockName, 0)
	if !ok || l.Mode != "EX" || l.Holders != 1 || l.Master == 2 {
		t.Fatalf("node 0's flock after the migration: %+v (found %v), want EX, held, mastered by node 0 or 1", l, ok)
	}
	out, err := exec.Command(mc.bin, "dlm", "locks", "--json", "--socket", mc.agents[int(l.Master)].socket, uuid, flockName).CombinedOutput()
	var rs []dlm.ResourceState
	if err != nil || json.Unmarshal(out, &rs) != nil || len(rs) != 1 || !rs[0].Mastered ||
		!slices.ContainsFunc(rs[0].Queues, func(q dlm.LockState) bool { return q.Queue == "Granted" && q.Node == 0 && q.Mode == dlm.ModeEX }) {
		t.Fatalf("dlm locks of %s on its new master, node %d: %v\n%s", flockName, l.Master, err, out)
	}
	in := uint64(0)
	for _, i := range []int{0, 1} {
		out, err := exec.Command(mc.bin, "dlm", "state", "--json", "--socket", mc.agents[i].socket, uuid).CombinedOutput()
		var st []dlm.DomainState
		if err != nil || json.Unmarshal(out, &st) != nil || len(st) != 1 {
			t.Fatalf("dlm state on node %d: %v\n%s", i, err, out)
		}
		if fmt.Sprint(st[0].DomainMap) != fmt.Sprint(nodes(0, 1)) {
			t.Errorf("node %d's domain map is %v after node 2 left, want [0 1]", i, st[0].DomainMap)
		}
		in += st[0].Migrated[1]
	}
	if in == 0 {
		t.Error("dlm state counts no resource migrated in on nodes 0 and 1")
	}

	// The flock is still node 0's: node 1 cannot take it, until node 0
	// lets go.
	other, err := os.Open(filepath.Join(m1, filepath.Base(held.Name())))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("node 1 flock LOCK_NB on the file node 0 holds EX: %v, want EWOULDBLOCK", err)
	}
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	within(t, 30*time.Second, "node 1's flock after node 0 unlocked", func() error {
		return syscall.Flock(int(other.Fd()), syscall.LOCK_EX)
	})
	other.Close()
	held.Close()
	for _, i := range []int{0, 1} {
		mc.umount(i)
		mc.waitUnmounted(i)
	}
	realtools.RequireFsckClean(t, mc.img)
}
