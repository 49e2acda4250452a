package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// metaDownconverts is the number of times node i gave up its metadata
// lock of inode ino (the fs_locks statistics).
func metaDownconverts(mc *mountCluster, i int, ino uint64) uint64 {
	mc.t.Helper()
	ms := fsLocksJSON(mc, i)
	for _, l := range ms[0].Locks {
		if l.Type == "Meta" && l.Inode == ino && l.Stats != nil {
			return l.Stats.Downconverts
		}
	}
	return 0
}

// interleavedDirectWrites has every node i of nodes write, with O_DIRECT,
// rounds 4 KiB blocks into file path on its mount: node k writes the
// blocks k, k+n, k+2n... of the first rounds*n, all nodes at once.
func interleavedDirectWrites(t *testing.T, mounts []string, name string, rounds int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(mounts))
	for k, m := range mounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.OpenFile(filepath.Join(m, name), os.O_RDWR|syscall.O_DIRECT, 0)
			if err != nil {
				errs[k] = err
				return
			}
			defer f.Close()
			buf := testutil.AlignedBuffer(4096)
			for r := range rounds {
				blk := r*len(mounts) + k
				copy(buf, bytes.Repeat([]byte(fmt.Sprintf("node %d block %6d\n", k, blk)), 4096/20))
				if _, err := f.WriteAt(buf, int64(blk)*4096); err != nil {
					errs[k] = fmt.Errorf("node %d, block %d: %w", k, blk, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// TestClusteredBufferedCoherency: with coherency=buffered, O_DIRECT writes
// from two nodes into one file's written clusters run at once, holding
// the file's lock shared (no lock changes hands, where coherency=full
// moves it on nearly every write); every node then reads every node's
// blocks, and the volume checks clean. An append on the same mounts still
// goes through the exclusive lock: the size moves on every node.
func TestClusteredBufferedCoherency(t *testing.T) {
	mc := newMountCluster(t, 2)
	mc.startAll()
	mounts := []string{mc.mount(0, "-o", "coherency=buffered"), mc.mount(1, "-o", "coherency=buffered")}
	const rounds = 150
	size := 2 * rounds * 4096
	path := filepath.Join(mounts[0], "db")
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	before := metaDownconverts(mc, 0, st.Ino) + metaDownconverts(mc, 1, st.Ino)
	interleavedDirectWrites(t, mounts, "db", rounds)
	moved := metaDownconverts(mc, 0, st.Ino) + metaDownconverts(mc, 1, st.Ino) - before
	// Each node's first write may take the lock from the other once.
	if moved > 4 {
		t.Fatalf("coherency=buffered: the file's lock changed hands %d times for %d interleaved O_DIRECT overwrites; want them all under the lock shared", moved, 2*rounds)
	}
	for i, m := range mounts {
		got, err := os.ReadFile(filepath.Join(m, "db"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != size {
			t.Fatalf("node %d reads %d bytes, want %d", i, len(got), size)
		}
		for blk := range 2 * rounds {
			want := fmt.Sprintf("node %d block %6d\n", blk%2, blk)
			if string(got[blk*4096:blk*4096+len(want)]) != want {
				t.Fatalf("node %d reads block %d as %q, want %q", i, blk, got[blk*4096:blk*4096+len(want)], want)
			}
		}
	}
	// An extending O_DIRECT write is not an overwrite: exclusive, and the
	// new size is what the other node sees.
	f, err := os.OpenFile(filepath.Join(mounts[1], "db"), os.O_RDWR|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(testutil.AlignedBuffer(4096), int64(size)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := syscall.Stat(path, &st); err != nil || st.Size != int64(size+4096) {
		t.Fatalf("node 0 sees size %d after node 1's extending write (%v), want %d", st.Size, err, size+4096)
	}
	for i := range mounts {
		mc.umount(i)
		mc.waitUnmounted(i)
	}
	realtools.RequireFsckClean(t, mc.img)
}

// TestClusteredReadOnlyMount: a node mounts -o ro beside a read-write
// one: it reads what the other writes, as it writes it, and refuses every
// change with EROFS.
func TestClusteredReadOnlyMount(t *testing.T) {
	mc := newMountCluster(t, 2)
	mc.startAll()
	rw, ro := mc.mount(0), mc.mount(1, "-o", "ro")
	if err := os.WriteFile(filepath.Join(rw, "f"), []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(ro, "f")); err != nil || string(got) != "first" {
		t.Fatalf("the ro node reads %q (%v), want %q", got, err, "first")
	}
	if err := os.WriteFile(filepath.Join(rw, "f"), []byte("second"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(ro, "f")); err != nil || string(got) != "second" {
		t.Fatalf("the ro node reads %q (%v) after the change, want %q", got, err, "second")
	}
	for what, change := range map[string]func() error{
		"create": func() error { return os.WriteFile(filepath.Join(ro, "new"), nil, 0o644) },
		"write":  func() error { return os.WriteFile(filepath.Join(ro, "f"), []byte("x"), 0o644) },
		"mkdir":  func() error { return os.Mkdir(filepath.Join(ro, "d"), 0o755) },
		"remove": func() error { return os.Remove(filepath.Join(ro, "f")) },
		"chmod":  func() error { return os.Chmod(filepath.Join(ro, "f"), 0o600) },
	} {
		if err := change(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s on the ro node: %v, want EROFS", what, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(rw, "f")); err != nil || string(got) != "second" {
		t.Fatalf("the rw node reads %q (%v) after the ro node's refused changes", got, err)
	}
	for i := range 2 {
		mc.umount(i)
		mc.waitUnmounted(i)
	}
	realtools.RequireFsckClean(t, mc.img)
}

// TestClusteredMountGlobalHeartbeat: in global heartbeat mode (one
// heartbeat device, not the volume) a volume formatted for it mounts on two
// nodes through their agents; what one writes the other reads; when one is
// killed the other recovers its slot from the global heartbeat's verdict
// and goes on; the volume checks clean.
func TestClusteredMountGlobalHeartbeat(t *testing.T) {
	mc := newMountCluster(t, 2)
	mc.makeGlobal(1)
	mc.img = realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M",
		"--cluster-stack=o2cb", "--cluster-name=proc", "--global-heartbeat")
	mc.startAll()
	a, b := mc.mount(0), mc.mount(1)
	if err := os.WriteFile(filepath.Join(a, "from-a"), []byte("written on node 0"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(b, "from-a")); err != nil || string(got) != "written on node 0" {
		t.Fatalf("node 1 reads %q (%v)", got, err)
	}
	f, err := os.Create(filepath.Join(a, "synced"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("fsynced before the kill")
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	mc.kill(0)
	mc.waitView([]int{1}, nodes(1), 60*time.Second)
	within(t, 60*time.Second, "a create on the survivor", func() error {
		return os.WriteFile(filepath.Join(b, "after"), []byte("after the kill"), 0o644)
	})
	if got, err := os.ReadFile(filepath.Join(b, "synced")); err != nil || string(got) != "fsynced before the kill" {
		t.Fatalf("the survivor reads the dead node's fsynced file as %q (%v)", got, err)
	}
	mc.umount(1)
	mc.waitUnmounted(1)
	realtools.RequireFsckClean(t, mc.img)
}

// TestClusteredMountRefusesTheOtherHeartbeatMode: a volume formatted for
// global heartbeat does not mount in a cluster that runs local heartbeat
// (nor the other way round, TestGlobalHeartbeatAgents), as mount.ocfs2
// refuses it: the message says what to change.
func TestClusteredMountRefusesTheOtherHeartbeatMode(t *testing.T) {
	mc := newMountCluster(t, 1)
	mc.img = realtools.MkfsImage(t, 64<<20, "-b", "4096", "-N", "2", "-J", "size=4M",
		"--cluster-stack=o2cb", "--cluster-name=proc", "--global-heartbeat")
	mc.start(0) // no view to wait for: in local mode it comes with a mount
	within(t, 30*time.Second, "the agent's control socket", func() error {
		for {
			if _, err := os.Stat(mc.agents[0].socket); err == nil {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	m := filepath.Join(mc.dir, "m0")
	if err := os.MkdirAll(m, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(mc.bin, "mount", "--socket", mc.agents[0].socket, mc.img, m).CombinedOutput()
	if err == nil {
		mc.mnt[0] = m
		t.Fatalf("a volume formatted for global heartbeat mounted in local mode:\n%s", out)
	}
	if !strings.Contains(string(out), "heartbeat mode is invalid") || !strings.Contains(string(out), "heartbeat-mode global") {
		t.Fatalf("o2go mount says:\n%s\nwant the heartbeat mode mismatch and what to change", out)
	}
}
