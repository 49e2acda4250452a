package main

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

// runFsck runs `o2go fsck args...` in process and returns stdout,
// stderr and the exit status main would use.
func runFsck(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runFsckAnswering(t, "", args...)
}

// runFsckAnswering is runFsck with stdin holding input (answers).
func runFsckAnswering(t *testing.T, input string, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(input))
	root.SetArgs(append([]string{"fsck"}, args...))
	err := root.Execute()
	code := 0
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		code = 1
	}
	return out.String(), errOut.String(), code
}

// TestFsckCommand drives the flags: -n/-y/-f, the report's shape, the exit
// codes, and the refusals of bad usage.
func TestFsckCommand(t *testing.T) {
	img := realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local")

	out, _, code := runFsck(t, "-n", img)
	if code != 0 || !strings.Contains(out, "is clean.") || strings.Contains(out, "Pass 0a") {
		t.Fatalf("fsck -n of a clean volume: exit %d\n%s", code, out)
	}
	out, _, code = runFsck(t, "-fn", img)
	for _, want := range []string{"Checking OCFS2 filesystem in " + img, "Number of slots:    2", "Pass 0a: Checking cluster allocation chains",
		"Pass 1: Checking inodes and blocks", "Pass 4b: Checking inodes link counts", "All passes succeeded."} {
		if !strings.Contains(out, want) {
			t.Errorf("fsck -fn output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Fatalf("fsck -fn of a clean volume: exit %d", code)
	}

	// Break lost+found's link count: -n reports it (4), -y fixes it (1),
	// fsck.ocfs2 agrees afterwards.
	m := regexpInode.FindStringSubmatch(realtools.Debugfs(t, img, "stat /lost+found"))
	if m == nil {
		t.Fatal("no inode number for /lost+found")
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var blk int64
	for _, c := range m[1] {
		blk = blk*10 + int64(c-'0')
	}
	if _, err := f.WriteAt([]byte{7}, blk*4096+0x2A); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, _, code = runFsck(t, "-fn", img)
	if code != 4 || !strings.Contains(out, "[INODE_COUNT]") || !strings.Contains(out, "? n") {
		t.Fatalf("fsck -fn of a damaged volume: exit %d\n%s", code, out)
	}
	out, _, code = runFsck(t, "-fy", img)
	if code != 1 || !strings.Contains(out, "? y") {
		t.Fatalf("fsck -fy: exit %d\n%s", code, out)
	}
	realtools.RequireFsckClean(t, img)

	root := newRootCommand()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"fsck", "-n", "-y", img})
	var ee *exitError
	if err := root.Execute(); !errors.As(err, &ee) || ee.code != 16 || !strings.Contains(ee.Error(), "-n, -y and -p") {
		t.Fatalf("fsck -n -y: %v, want exit 16 naming the flags", err)
	}
	if _, _, code := runFsck(t, img); code != 16 {
		t.Fatalf("fsck without -n/-y/-p and no terminal: exit %d, want 16", code)
	}
	if _, _, code := runFsck(t, "-n", "-r", "9", img); code != 16 {
		t.Fatalf("fsck -r 9: exit %d, want 16", code)
	}
	if _, _, code := runFsck(t, "-n", t.TempDir()+"/none.img"); code != 8 {
		t.Fatalf("fsck of a missing device: exit %d, want 8", code)
	}
}

var regexpInode = regexp.MustCompile(`Inode: (\d+)`)
