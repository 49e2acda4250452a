package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"o2go/internal/fusefs"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// mountO2go mounts img read-write through FUSE the way `o2go mount -f`
// does (a fusefs.Session: the lock file under /run/o2go, the volume, the
// FUSE server; the mount shows in /proc/mounts with img as its source) and
// returns the function that unmounts it and waits for the clean unmount.
func mountO2go(t *testing.T, img string) (string, func()) {
	t.Helper()
	testutil.RequireFUSE(t)
	opts, err := fusefs.ParseMountOptions("rw")
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	s := &fusefs.Session{Device: img, Mountpoint: mnt, Opts: opts}
	ready := make(chan error, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(func(err error) { ready <- err }) }()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("mount %s: %v", img, err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("mount %s: not ready after a minute", img)
	}
	unmounted := false
	unmount := func() {
		if unmounted {
			return
		}
		unmounted = true
		if err := syscall.Unmount(mnt, 0); err != nil {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
			t.Errorf("unmount %s: %v", mnt, err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the mount of %s ended with %v", img, err)
			}
		case <-time.After(time.Minute):
			t.Errorf("the mount of %s did not end a minute after its unmount", img)
		}
	}
	t.Cleanup(unmount)
	return mnt, unmount
}

// fsckReal runs fsck.ocfs2 with args on img, stdin empty, and returns its
// stdout+stderr and exit status.
func fsckReal(t *testing.T, img string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("fsck.ocfs2", append(args, img)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("fsck.ocfs2: %v", err)
	}
	return string(out), code
}

// TestFsckRefusesMountedVolume checks fsck's in-use refusal on a volume
// really mounted read-write on this machine (an o2go FUSE mount, which
// /proc/mounts lists with the image as its source, as it lists a kernel
// mount with its device): every mode that may write (-y, -p, and the
// forced -fy, -fp) exits 32 (cancelled) and prints the "may cause SEVERE
// filesystem damage, abort." line, without checking anything, as
// fsck.ocfs2 does on the same mount; -n only warns that it may report
// false errors and reads the volume (where fsck.ocfs2 asks whether to go
// on). Once unmounted, -fy runs.
func TestFsckRefusesMountedVolume(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 256<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	mnt, unmount := mountO2go(t, img)
	if err := os.WriteFile(filepath.Join(mnt, "busy"), []byte("the volume is in use\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mounts), img+" "+mnt+" fuse.o2go rw") {
		t.Fatalf("/proc/mounts does not list %s on %s read-write:\n%s", img, mnt, mounts)
	}

	for _, flags := range []string{"-y", "-fy", "-p", "-fp"} {
		out, errOut, code := runFsck(t, flags, img)
		realOut, realCode := fsckReal(t, img, flags)
		if realCode != 32 || !strings.Contains(realOut, "Running fsck.ocfs2 on a mounted filesystem may cause SEVERE filesystem damage, abort.") {
			t.Fatalf("fsck.ocfs2 %s on a mounted volume: exit %d\n%s", flags, realCode, realOut)
		}
		if code != realCode {
			t.Errorf("o2go fsck %s on a mounted volume: exit %d, fsck.ocfs2 exits %d\nstdout:\n%s\nstderr:\n%s", flags, code, realCode, out, errOut)
		}
		if !strings.Contains(out, "may cause SEVERE filesystem damage") || !strings.Contains(out, ", abort.") ||
			!strings.Contains(out, "mounted on "+mnt) {
			t.Errorf("o2go fsck %s on a mounted volume: stdout lacks the refusal naming the mount:\n%s", flags, out)
		}
		if !strings.Contains(errOut, img+" is in use") {
			t.Errorf("o2go fsck %s on a mounted volume: stderr lacks the error naming the device:\n%s", flags, errOut)
		}
		if strings.Contains(out, "Checking OCFS2 filesystem") || strings.Contains(out, "Pass 0a") {
			t.Errorf("o2go fsck %s checked a mounted volume:\n%s", flags, out)
		}
	}

	// -n reads, as fsck.ocfs2: a warning (its words but for the tool's
	// name), then "Do you really want to continue (y/N)"; without an
	// answer on stdin both abort (32), with y both check.
	out, errOut, code := runFsck(t, "-fn", img)
	if !strings.Contains(out, "WARNING!!! Running o2go fsck (read-only) on a device in use (it is mounted on "+mnt) ||
		!strings.Contains(out, "may detect invalid errors.") || !strings.Contains(out, "Do you really want to continue (y/N)") ||
		!strings.Contains(out, "Aborting operation.") || strings.Contains(out, "Pass 0a") || code != 32 {
		t.Errorf("o2go fsck -fn on a mounted volume, no answer: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if realOut, realCode := fsckReal(t, img, "-fn"); !strings.Contains(realOut, "WARNING!!! Running fsck.ocfs2 (read-only) on a mounted filesystem may detect invalid errors.") ||
		!strings.Contains(realOut, "Do you really want to continue (y/N)") || realCode != 32 {
		t.Errorf("fsck.ocfs2 -fn on a mounted volume no longer warns, asks and aborts: exit %d\n%s", realCode, realOut)
	}
	out, errOut, code = runFsckAnswering(t, "y\n", "-fn", img)
	if !strings.Contains(out, "Pass 4b") || code&^4 != 0 {
		t.Errorf("o2go fsck -fn on a mounted volume, answered y: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	unmount()
	if out, errOut, code := runFsck(t, "-fy", img); code != 0 || !strings.Contains(out, "All passes succeeded.") {
		t.Errorf("o2go fsck -fy after the unmount: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	realtools.RequireFsckClean(t, img)
}
