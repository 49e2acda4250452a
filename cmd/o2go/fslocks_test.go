package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"o2go/internal/clustermount"
	"o2go/internal/dlm"
	"o2go/internal/fs/lockglue"
	"o2go/internal/ondisk"
)

// fsLocksRun runs o2go debug fs_locks against agent i.
func fsLocksRun(mc *mountCluster, i int, args ...string) (string, error) {
	all := append([]string{"debug", "fs_locks", "--socket", mc.agents[i].socket}, args...)
	out, err := exec.Command(mc.bin, all...).CombinedOutput()
	return string(out), err
}

// fsLocksJSON is agent i's fs_locks --json, decoded.
func fsLocksJSON(mc *mountCluster, i int, args ...string) []clustermount.MountLocks {
	mc.t.Helper()
	out, err := fsLocksRun(mc, i, append([]string{"--json"}, args...)...)
	if err != nil {
		mc.t.Fatalf("o2go debug fs_locks --json on node %d: %v\n%s", i, err, out)
	}
	var ms []clustermount.MountLocks
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		mc.t.Fatalf("fs_locks --json on node %d does not parse: %v\n%s", i, err, out)
	}
	return ms
}

// fsLocksFind returns the lock named name of the only mount in ms.
func fsLocksFind(t *testing.T, ms []clustermount.MountLocks, name string) (clustermount.FsLock, bool) {
	t.Helper()
	if len(ms) != 1 {
		t.Fatalf("fs_locks shows %d mounts, want 1: %+v", len(ms), ms)
	}
	for _, l := range ms[0].Locks {
		if l.Name == name {
			return l, true
		}
	}
	return clustermount.FsLock{}, false
}

func fsLocksName(t *testing.T, typ ondisk.LockType, blkno uint64) string {
	t.Helper()
	n, err := ondisk.LockName{Type: typ, Blkno: blkno}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFsLocksTwoNodes: two nodes mount one volume; a file held open on node
// 0 shows its open lock, PR with a holder, in node 0's fs_locks and not in
// node 1's; the lock manager of the lock's master agrees (dlm locks); the
// volume lock is listed first with its counts; -B keeps only busy locks
// and drops the open lock once the file is closed; a mount is chosen by
// mount point, device or UUID; the errors name what is wrong.
func TestFsLocksTwoNodes(t *testing.T) {
	mc := newMountCluster(t, 2)
	mc.startAll()
	m0 := mc.mount(0)
	mc.mount(1)

	path := filepath.Join(m0, "held")
	if err := os.WriteFile(path, []byte("held open on node 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	openName := fsLocksName(t, ondisk.LockOpen, ino)
	superName := fsLocksName(t, ondisk.LockSuper, ondisk.SuperBlockBlkno)

	ms := fsLocksJSON(mc, 0)
	if len(ms) != 1 || ms[0].Mountpoint != m0 || ms[0].Node != 0 || ms[0].Slot < 0 {
		t.Fatalf("node 0's fs_locks: %+v, want its one mount on %s", ms, m0)
	}
	uuid := ms[0].UUID
	locks := ms[0].Locks
	if len(locks) < 2 || locks[0].Name != superName {
		t.Fatalf("node 0's locks %+v: want the volume lock %s first, then the open locks", locks, superName)
	}
	vol := locks[0]
	if vol.Type != "Super" || vol.Inode != ondisk.SuperBlockBlkno || vol.Stats == nil || vol.Stats.Acquires == 0 || vol.Stats.Requests == 0 {
		t.Fatalf("volume lock %+v: want type Super, inode 2, acquires and requests counted (node 0 wrote a file)", vol)
	}
	if vol.Mode != "PR" && vol.Mode != "EX" && vol.Mode != "NL" {
		t.Fatalf("volume lock mode %q", vol.Mode)
	}
	open, ok := fsLocksFind(t, ms, openName)
	if !ok {
		t.Fatalf("node 0's fs_locks lacks the open lock %s of the file it holds open: %+v", openName, locks)
	}
	if open.Type != "Open" || open.Inode != ino || open.Mode != "PR" || open.Holders < 1 || open.Stats != nil || open.Untracked {
		t.Fatalf("open lock %+v: want type Open, inode %d, PR, at least one holder, no counts", open, ino)
	}
	for _, l := range locks {
		if l.Untracked {
			t.Errorf("node 0 holds %s outside the file system: %+v", l.Name, l)
		}
	}

	// The lock manager of the open lock's master shows node 0's PR.
	out, err := exec.Command(mc.bin, "dlm", "locks", "--json", "--socket", mc.agents[int(open.Master)].socket, uuid, openName).CombinedOutput()
	if err != nil {
		t.Fatalf("o2go dlm locks on the master, node %d: %v\n%s", open.Master, err, out)
	}
	var rs []dlm.ResourceState
	if err := json.Unmarshal(out, &rs); err != nil || len(rs) != 1 || !rs[0].Mastered {
		t.Fatalf("dlm locks of %s on node %d (fs_locks says it masters it): %v\n%s", openName, open.Master, err, out)
	}
	if !slices.ContainsFunc(rs[0].Queues, func(q dlm.LockState) bool {
		return q.Queue == "Granted" && q.Node == 0 && q.Mode == dlm.ModePR
	}) {
		t.Fatalf("the master's queues of %s lack node 0's granted PR: %+v", openName, rs[0].Queues)
	}

	// Node 1 does not use the file: no open lock of it there.
	if _, ok := fsLocksFind(t, fsLocksJSON(mc, 1), openName); ok {
		t.Fatalf("node 1's fs_locks shows the open lock of a file only node 0 holds open")
	}

	// The human table.
	table, err := fsLocksRun(mc, 0)
	if err != nil {
		t.Fatalf("fs_locks: %v\n%s", err, table)
	}
	if !strings.Contains(table, "LOCKRES") || !strings.Contains(table, uuid) {
		t.Fatalf("fs_locks table lacks its header or the volume's UUID:\n%s", table)
	}
	row := fsLocksRow(table, openName)
	if len(row) < 5 || row[1] != "Open" || row[2] != strconv.FormatUint(ino, 10) || row[3] != "PR" || row[4] == "0" {
		t.Fatalf("fs_locks table row of %s is %q, want Open, inode %d, PR, holders > 0:\n%s", openName, row, ino, table)
	}
	if r := fsLocksRow(table, superName); len(r) < 2 || r[1] != "Super" {
		t.Fatalf("fs_locks table lacks the volume lock:\n%s", table)
	}

	// -B: only busy locks, the held-open file's among them.
	busy := fsLocksJSON(mc, 0, "-B")
	if _, ok := fsLocksFind(t, busy, openName); !ok {
		t.Fatalf("fs_locks -B lacks the open lock of a file held open: %+v", busy)
	}
	for _, l := range busy[0].Locks {
		if !l.IsBusy() {
			t.Fatalf("fs_locks -B shows an idle lock: %+v", l)
		}
	}
	f.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		busy = fsLocksJSON(mc, 0, "-B")
		if _, ok := fsLocksFind(t, busy, openName); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fs_locks -B still shows the open lock 10 s after the file was closed: %+v", busy)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok := fsLocksFind(t, fsLocksJSON(mc, 0), superName); !ok {
		t.Fatal("without -B the volume lock is listed even when idle")
	}

	// A mount is named by mount point, device or UUID.
	for _, arg := range []string{m0, mc.img, uuid, "UUID=" + strings.ToLower(uuid)} {
		if ms := fsLocksJSON(mc, 0, arg); len(ms) != 1 || ms[0].Mountpoint != m0 {
			t.Fatalf("fs_locks %s: %+v", arg, ms)
		}
	}

	// Errors a user can act on.
	var ee *exec.ExitError
	for _, arg := range []string{filepath.Join(mc.dir, "not-mounted"), path} {
		out, err := fsLocksRun(mc, 0, arg)
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "no such clustered mount") || !strings.Contains(out, m0) {
			t.Fatalf("fs_locks %s (no mount point): %v\n%s\nwant exit 1 naming the mounts there are", arg, err, out)
		}
	}
	noAgent, err := exec.Command(mc.bin, "debug", "fs_locks", "--socket", filepath.Join(mc.dir, "none.sock")).CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(noAgent), "no agent is running") {
		t.Fatalf("fs_locks without an agent: %v\n%s", err, noAgent)
	}
}

// TestFsLocksBlockedVolumeLock follows a hang as ocfs2(7) does: node 1
// holds the volume lock's resource EX outside the file system (o2go lock),
// so a write on node 0 waits; node 0's fs_locks -B shows the volume lock
// busy with its request pending, and the resource's master shows node 0
// waiting; node 1 shows the o2go lock as an untracked EX beside its own
// volume lock, down to NL; once node 1 lets go the write completes and
// node 0's counts
// show the blocking notification and the downconvert it answered with.
func TestFsLocksBlockedVolumeLock(t *testing.T) {
	mc := newMountCluster(t, 2)
	mc.startAll()
	m0 := mc.mount(0)
	mc.mount(1)
	if err := os.WriteFile(filepath.Join(m0, "before"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	superName := fsLocksName(t, ondisk.LockSuper, ondisk.SuperBlockBlkno)
	ms := fsLocksJSON(mc, 0)
	if _, ok := fsLocksFind(t, ms, superName); !ok {
		t.Fatalf("node 0's fs_locks lacks the volume lock: %+v", ms)
	}
	uuid := ms[0].UUID

	release := holdWithO2goLock(t, mc, 1, uuid+"/"+superName, "the volume lock")
	defer release()

	wrote := make(chan error, 1)
	go func() { wrote <- os.WriteFile(filepath.Join(m0, "waits"), []byte("after node 1 let go\n"), 0o644) }()
	var seen clustermount.FsLock
	waiterSeen := false
	deadline := time.Now().Add(30 * time.Second)
	for !(seen.Pending != "" && waiterSeen) {
		if time.Now().After(deadline) {
			t.Fatalf("no busy volume lock with a pending request on node 0 (%+v), or no node-0 waiter at its master (%v), in 30 s", seen, waiterSeen)
		}
		select {
		case err := <-wrote:
			t.Fatalf("the write on node 0 ended (%v) while node 1 holds the volume lock EX", err)
		default:
		}
		busy := fsLocksJSON(mc, 0, "-B")
		if l, ok := fsLocksFind(t, busy, superName); ok && (l.Pending == "lock" || l.Pending == "convert") {
			if !l.Busy || l.Requested == "NL" || l.Requested == "" {
				t.Fatalf("volume lock with a request pending: %+v", l)
			}
			seen = l
		}
		if seen.Name != "" {
			// Ask the master, as the hang procedure does.
			m := fsLocksJSON(mc, int(seen.Master))
			if l, ok := fsLocksFind(t, m, superName); ok && l.MasteredHere {
				waiterSeen = waiterSeen || slices.ContainsFunc(l.Waiters, func(w clustermount.Waiter) bool {
					return w.Node == 0 && w.Requested >= dlm.ModePR
				})
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The holder's view: the file system's volume lock went down to NL
	// for o2go lock, which is listed beside it as untracked, EX.
	var fsLevel, extraLevel string
	for _, l := range fsLocksJSON(mc, 1)[0].Locks {
		if l.Name != superName {
			continue
		}
		if l.Untracked {
			extraLevel = l.Mode
		} else {
			fsLevel = l.Mode
		}
	}
	if fsLevel != "NL" || extraLevel != "EX" {
		t.Fatalf("node 1 shows its volume lock at %q and the o2go lock on it at %q, want NL and an untracked EX", fsLevel, extraLevel)
	}

	release()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("the write on node 0 after node 1 let go: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the write on node 0 still waits a minute after node 1 let go")
	}
	l, ok := fsLocksFind(t, fsLocksJSON(mc, 0), superName)
	if !ok || l.Stats == nil || l.Stats.Blocks == 0 || l.Stats.Downconverts == 0 {
		t.Fatalf("node 0's volume lock after the wait: %+v; want a blocking notification and a downconvert counted", l)
	}
}

// fsLocksRow returns the fields of the table row of lock name.
func fsLocksRow(table, name string) []string {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return f
		}
	}
	return nil
}

// fsLocksWaits is the GETS/WAITS/MAX cell of a table row: gets, waits and
// the longest wait.
func fsLocksWaits(t *testing.T, cell string) (uint64, uint64, time.Duration) {
	t.Helper()
	f := strings.Split(cell, "/")
	if len(f) != 3 {
		t.Fatalf("GETS/WAITS/MAX cell %q", cell)
	}
	gets, err1 := strconv.ParseUint(f[0], 10, 64)
	waits, err2 := strconv.ParseUint(f[1], 10, 64)
	longest, err3 := time.ParseDuration(f[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("GETS/WAITS/MAX cell %q: %v", cell, err)
	}
	return gets, waits, longest
}

// TestFsLocksFlockRowsAndWaits: a flock held on node 0 is an F row there
// (its handle's, EX, one holder, busy so -B keeps it; never untracked); a
// flock on node 1 that waits for it shows as a pending lock request on
// node 1, and node 0's row shows node 1 blocked on it; once node 0 lets go,
// node 1's row counts the wait (EX gets/waits 1/1, the longest at least as
// long as node 0 held on) in --json and in the table's EX GETS/WAITS/MAX.
// The same for an inode lock (M) node 1 waits for while node 0 holds its
// resource with o2go lock: its waits and longest wait move. It fails if
// flocks go back to being untracked, if a waiting request is not shown,
// or if the wait columns do not count the wait.
func TestFsLocksFlockRowsAndWaits(t *testing.T) {
	mc := newMountCluster(t, 2)
	mc.startAll()
	m0, m1 := mc.mount(0), mc.mount(1)
	path := filepath.Join(m0, "contended")
	if err := os.WriteFile(path, []byte("both nodes want it\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	flock := fsLocksName(t, ondisk.LockFlock, ino)
	row := func(i int, busy bool) (clustermount.FsLock, bool) {
		t.Helper()
		var args []string
		if busy {
			args = append(args, "-B")
		}
		ms := fsLocksJSON(mc, i, args...)
		for _, l := range ms[0].Locks {
			if l.Untracked {
				t.Fatalf("node %d lists %s as untracked: %+v", i, l.Name, l)
			}
		}
		return fsLocksFind(t, ms, flock)
	}

	f0, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f0.Close()
	if err := syscall.Flock(int(f0.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	l, ok := row(0, true)
	if !ok || l.Type != "Flock" || l.Inode != ino || l.Mode != "EX" || l.Holders != 1 || l.Handle == 0 || l.Stats == nil || l.Stats.EX.Gets != 1 {
		t.Fatalf("node 0's fs_locks -B row of the flock it holds: %+v (found %v), want Flock, EX, one holder, one EX get", l, ok)
	}
	if l.PID != uint32(os.Getpid()) {
		t.Fatalf("node 0's flock row names process %d, want this test's (%d)", l.PID, os.Getpid())
	}
	table, err := fsLocksRun(mc, 0, "-B")
	if r := fsLocksRow(table, flock); err != nil || len(r) < 5 || r[1] != "Flock" || r[3] != "EX" || r[4] != "1" || strings.Contains(strings.Join(r, " "), "untracked") {
		t.Fatalf("node 0's fs_locks -B table row of the flock: %q (%v)\n%s", r, err, table)
	}

	f1, err := os.OpenFile(filepath.Join(m1, "contended"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	got := make(chan error, 1)
	go func() { got <- syscall.Flock(int(f1.Fd()), syscall.LOCK_EX) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		w, wok := row(1, true)
		h, hok := row(0, true)
		if wok && w.Pending == "lock" && w.Requested == "EX" && w.Busy && w.Mode == "none" && hok && h.Blocked && h.BlockingMode == "EX" {
			break
		}
		select {
		case err := <-got:
			t.Fatalf("node 1's flock returned (%v) while node 0 holds it EX", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("in 30 s, no pending EX request on node 1 (%+v) and node 0 blocked (%+v)", w, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
	const held = 700 * time.Millisecond
	time.Sleep(held)
	if err := syscall.Flock(int(f0.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("node 1's flock: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node 1's flock still waits 30 s after node 0 let go")
	}
	l, ok = row(1, false)
	if !ok || l.Mode != "EX" || l.Holders != 1 || l.Stats == nil || l.Stats.EX.Gets != 1 || l.Stats.EX.Waits != 1 || l.Stats.EX.Max < held {
		t.Fatalf("node 1's flock row after its wait: %+v %+v, want EX held, 1 get, 1 wait of at least %v", l, l.Stats, held)
	}
	table, err = fsLocksRun(mc, 1)
	r := fsLocksRow(table, flock)
	if err != nil || len(r) < 15 {
		t.Fatalf("node 1's table row of the flock: %q (%v)\n%s", r, err, table)
	}
	if gets, waits, longest := fsLocksWaits(t, r[len(r)-1]); gets != 1 || waits != 1 || longest < held {
		t.Fatalf("node 1's EX GETS/WAITS/MAX of the flock is %s, want 1/1/at least %v\n%s", r[len(r)-1], held, table)
	}
	// Node 0's flock is given back: a row without a holder, not busy.
	if l, ok := row(0, false); !ok || l.Mode != "none" || l.Holders != 0 || l.IsBusy() {
		t.Fatalf("node 0's flock row after LOCK_UN: %+v (found %v)", l, ok)
	}
	if _, ok := row(0, true); ok {
		t.Fatal("node 0's fs_locks -B lists its unlocked flock")
	}
	if err := syscall.Flock(int(f1.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}

	// The inode lock: node 1 reads the file while node 0 holds its M
	// resource EX outside the file system.
	meta := fsLocksName(t, ondisk.LockMeta, ino)
	metaRow := func() clustermount.FsLock {
		t.Helper()
		l, ok := fsLocksFind(t, fsLocksJSON(mc, 1), meta)
		if !ok || l.Stats == nil {
			t.Fatalf("node 1's fs_locks lacks the inode lock %s of a file it opened: %+v", meta, l)
		}
		return l
	}
	before := metaRow()
	uuid := fsLocksJSON(mc, 1)[0].UUID
	release := holdWithO2goLock(t, mc, 0, uuid+"/"+meta, "the inode lock")
	defer release()
	read := make(chan error, 1)
	go func() {
		_, err := f1.ReadAt(make([]byte, 8), 0)
		read <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if l := metaRow(); l.Pending == "lock" || l.Pending == "convert" {
			break
		}
		select {
		case err := <-read:
			t.Fatalf("node 1's read returned (%v) while node 0 holds its inode lock EX", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request under way on node 1's inode lock in 30 s: %+v", metaRow())
		}
	}
	time.Sleep(held)
	release()
	select {
	case err := <-read:
		if err != nil {
			t.Fatalf("node 1's read: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node 1's read still waits 30 s after node 0 let go")
	}
	after := metaRow()
	waits := func(s *lockglue.Stats) uint64 { return s.PR.Waits + s.EX.Waits }
	if waits(after.Stats) <= waits(before.Stats) || max(after.Stats.PR.Max, after.Stats.EX.Max) < held {
		t.Fatalf("node 1's inode lock counts before %+v and after %+v its wait of %v: want more waits, the longest at least that", before.Stats, after.Stats, held)
	}
	table, err = fsLocksRun(mc, 1)
	r = fsLocksRow(table, meta)
	if err != nil || len(r) < 15 {
		t.Fatalf("node 1's table row of the inode lock: %q (%v)\n%s", r, err, table)
	}
	_, prWaits, prMax := fsLocksWaits(t, r[len(r)-2])
	_, exWaits, exMax := fsLocksWaits(t, r[len(r)-1])
	if prWaits+exWaits != waits(after.Stats) || max(prMax, exMax) < held {
		t.Fatalf("node 1's table row of the inode lock %q does not show its waits (%+v)\n%s", r, after.Stats, table)
	}
	f0.Close()
	f1.Close()
	for i := 0; i < 2; i++ {
		mc.umount(i)
		mc.waitUnmounted(i)
	}
}

// holdWithO2goLock runs o2go lock on node i to hold lock resource
// (DOMAIN/NAME) exclusive and waits until it does; the returned func lets
// it go (once; later calls do nothing).
func holdWithO2goLock(t *testing.T, mc *mountCluster, i int, resource, what string) (release func()) {
	t.Helper()
	ready := filepath.Join(mc.dir, "held-"+strconv.Itoa(i)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	holder := exec.Command(mc.bin, "lock", "--socket", mc.agents[i].socket, resource, "--",
		"sh", "-c", "touch "+ready+"; exec sleep 120")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			_ = holder.Process.Signal(syscall.SIGTERM)
			_ = holder.Wait()
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			return release
		}
		if time.Now().After(deadline) {
			release()
			t.Fatalf("o2go lock on node %d did not get %s's resource in 30 s", i, what)
		}
	}
}
