package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPosixLockHelper is not a test: run with O2GO_PLOCK_HELPER=path,start,len
// it holds a write lock on those bytes (fcntl F_SETLKW), says "locked",
// and keeps it until its stdin closes.
func TestPosixLockHelper(t *testing.T) {
	spec := os.Getenv("O2GO_PLOCK_HELPER")
	if spec == "" {
		t.Skip("helper process only")
	}
	f := strings.Split(spec, ",")
	start, _ := strconv.ParseInt(f[1], 10, 64)
	n, _ := strconv.ParseInt(f[2], 10, 64)
	fd, err := os.OpenFile(f[0], os.O_RDWR, 0)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Start: start, Len: n}
	if err := syscall.FcntlFlock(fd.Fd(), syscall.F_SETLKW, &lk); err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// holdPosix starts a process that write-locks [start, start+n) of path;
// closing the returned writer ends it (and its lock).
func holdPosix(t *testing.T, path string, start, n int) (io.WriteCloser, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPosixLockHelper$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("O2GO_PLOCK_HELPER=%s,%d,%d", path, start, n))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("lock helper: %q", line)
	}
	return in, cmd
}

func fcntlLock(fd *os.File, cmd int, typ int16, start, n int64) (syscall.Flock_t, error) {
	lk := syscall.Flock_t{Type: typ, Start: start, Len: n}
	err := syscall.FcntlFlock(fd.Fd(), cmd, &lk)
	return lk, err
}

// waitsThen runs f in the background and checks it is still blocked after
// a while; the returned function waits (bounded) for it to finish.
func waitsThen(t *testing.T, what string, f func() error) func() {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		t.Fatalf("%s did not wait: %v", what, err)
	case <-time.After(500 * time.Millisecond):
	}
	return func() {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s still waits 20 s after the lock was given up", what)
		}
	}
}

// TestClusteredFileLocks: flock(2) and fcntl(2) locks taken on one node
// are honoured on the other, as on one machine: exclusive and shared,
// non-blocking refusals (EWOULDBLOCK/EAGAIN), blocking waits that end
// when the holder lets go, F_GETLK seeing the other node's lock, byte
// ranges that do not overlap not conflicting, a holder's locks ending with
// its process.
func TestClusteredFileLocks(t *testing.T) {
	mc := newMountCluster(t, 2)
	mc.startAll()
	m0, m1 := mc.mount(0), mc.mount(1)
	if err := os.WriteFile(filepath.Join(m0, "lockme"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func(m string) *os.File {
		f, err := os.OpenFile(filepath.Join(m, "lockme"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}

	// flock(2).
	a, b := open(m0), open(m1)
	if err := syscall.Flock(int(a.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("flock EX on node 0: %v", err)
	}
	for _, how := range []int{syscall.LOCK_EX, syscall.LOCK_SH} {
		if err := syscall.Flock(int(b.Fd()), how|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Fatalf("flock %d|NB on node 1 while node 0 holds EX: %v, want EWOULDBLOCK", how, err)
		}
	}
	wait := waitsThen(t, "flock EX on node 1", func() error { return syscall.Flock(int(b.Fd()), syscall.LOCK_EX) })
	if err := syscall.Flock(int(a.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	wait()
	if err := syscall.Flock(int(a.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("flock SH|NB on node 0 while node 1 holds EX: %v", err)
	}
	// Closing the handle drops its flock, once the kernel's release
	// reaches node 1's server: FUSE sends it after close(2) returns.
	b.Close()
	within(t, 10*time.Second, "flock SH on node 0 after node 1 closed", func() error {
		for {
			err := syscall.Flock(int(a.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	c := open(m1)
	if err := syscall.Flock(int(c.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		t.Fatalf("a second shared flock (node 1) beside node 0's: %v", err)
	}

	// fcntl(2) byte ranges: another process on node 0 holds bytes 0-9.
	stop, holder := holdPosix(t, filepath.Join(m0, "lockme"), 0, 10)
	d := open(m1)
	if _, err := fcntlLock(d, syscall.F_SETLK, syscall.F_WRLCK, 0, 10); !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
		t.Fatalf("F_SETLK on bytes 0-9 on node 1 while node 0 holds them: %v, want EAGAIN", err)
	}
	if _, err := fcntlLock(d, syscall.F_SETLK, syscall.F_RDLCK, 5, 1); !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
		t.Fatalf("read lock on byte 5 under node 0's write lock: %v, want EAGAIN", err)
	}
	if _, err := fcntlLock(d, syscall.F_SETLK, syscall.F_WRLCK, 10, 10); err != nil {
		t.Fatalf("bytes 10-19 are free, node 1 could not lock them: %v", err)
	}
	if lk, err := fcntlLock(d, syscall.F_GETLK, syscall.F_WRLCK, 3, 2); err != nil || lk.Type != syscall.F_WRLCK {
		t.Fatalf("F_GETLK on node 1 does not see node 0's write lock: %+v %v", lk, err)
	}
	if lk, err := fcntlLock(d, syscall.F_GETLK, syscall.F_WRLCK, 50, 2); err != nil || lk.Type != syscall.F_UNLCK {
		t.Fatalf("F_GETLK on free bytes: %+v %v", lk, err)
	}
	wait = waitsThen(t, "F_SETLKW on bytes 0-9 on node 1", func() error {
		_, err := fcntlLock(d, syscall.F_SETLKW, syscall.F_WRLCK, 0, 10)
		return err
	})
	stop.Close() // the holder exits: its locks end with it
	_ = holder.Wait()
	wait()
	// Node 1 now holds 0-19; node 0's process cannot take byte 15.
	e := open(m0)
	if _, err := fcntlLock(e, syscall.F_SETLK, syscall.F_WRLCK, 15, 1); !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
		t.Fatalf("node 0 locked byte 15 that node 1 holds: %v", err)
	}
	if _, err := fcntlLock(d, syscall.F_SETLK, syscall.F_UNLCK, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := fcntlLock(e, syscall.F_SETLK, syscall.F_WRLCK, 15, 1); err != nil {
		t.Fatalf("node 0 cannot lock byte 15 after node 1 unlocked everything: %v", err)
	}
}
