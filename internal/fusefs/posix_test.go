package fusefs

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// mountImage mounts img at a fresh directory through a Session in this
// process and returns the mount point and a function that unmounts it
// and waits for the clean volume unmount.
func mountImage(t *testing.T, img, options string) (string, func()) {
	t.Helper()
	testutil.RequireFUSE(t)
	mnt := t.TempDir()
	opts, err := ParseMountOptions(options)
	if err != nil {
		t.Fatal(err)
	}
	old := RunDir
	RunDir = filepath.Join(t.TempDir(), "run")
	t.Cleanup(func() { RunDir = old })
	s := &Session{Device: img, Mountpoint: mnt, Opts: opts}
	ready := make(chan error, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(func(err error) { ready <- err }) }()
	if err := <-ready; err != nil {
		t.Fatalf("mount: %v", err)
	}
	var once bool
	unmount := func() {
		if once {
			return
		}
		once = true
		for i := 0; ; i++ {
			err := syscall.Unmount(mnt, 0)
			if err == nil || errors.Is(err, syscall.EINVAL) {
				break
			}
			if i > 100 {
				t.Fatalf("unmount %s: %v", mnt, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("clean unmount: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("the session did not finish after unmount")
		}
	}
	t.Cleanup(func() {
		if !once {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	return mnt, unmount
}

// posixExclusions are the suite's tests that check something other than
// local-file-system behaviour, with the reason.
var posixExclusions = map[string]string{
	// Two fds of one process take conflicting fcntl locks and expect
	// EAGAIN: POSIX locks belong to the process, so a local file system
	// grants the second (go-fuse's loopback passes only because it forwards
	// to open file description locks).
	"FcntlFlockLocksFile": "expects per-file-description fcntl locks, which POSIX does not give within one process",
}

// TestPosixSuite runs go-fuse's POSIX conformance tests against an o2go
// mount, each on a fresh volume that must pass fsck.ocfs2 -fn afterwards.
func TestPosixSuite(t *testing.T) {
	realtools.Require(t)
	names := make([]string, 0, len(posixtest.All))
	for n := range posixtest.All {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		fn := posixtest.All[name]
		t.Run(name, func(t *testing.T) {
			if why, skip := posixExclusions[name]; skip {
				t.Skip(why)
			}
			img := realtools.MkfsImage(t, 512<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local")
			mnt, unmount := mountImage(t, img, "")
			// Every OCFS2 root holds lost+found: run in an empty directory.
			dir := filepath.Join(mnt, "posix")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			fn(t, dir)
			unmount()
			realtools.RequireFsckClean(t, img)
		})
	}
}
