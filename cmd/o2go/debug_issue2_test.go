package main

import (
	"os"
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

// TestToolsPointAtAnIntactBackup: with the primary superblock overwritten,
// debug and info say which backup superblock is intact and the option
// that uses it (debug's -s, as debugfs.ocfs2), and debug -s N then works.
func TestToolsPointAtAnIntactBackup(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 1100<<20, "-b", "4096", "-N", "2", "-L", "backup", "--fs-features=local")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("XXXXXX"), 2*4096)
	f.Close()
	for _, tc := range []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{[]string{"debug", "-R", "stats", img}, 1, "", "backup superblock 1 at block 262144 is intact: open the volume through it with -s 1"},
		{[]string{"debug", "-s", "1", "-R", "stats -h", img}, 0, "\tLabel: backup\n", ""},
		{[]string{"info", "--volinfo", img}, 1, "", "backup superblock 1 at block 262144 is intact: o2go debug -s 1"},
	} {
		out, errOut, code := runO2go(t, "", tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) || strings.Contains(errOut, "-r 1)") && tc.args[0] == "debug" {
			t.Errorf("o2go %s: exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", strings.Join(tc.args, " "), code, tc.code, out, tc.out, errOut, tc.err)
		}
	}
	// A session's open names the same option.
	out, _, _ := runO2go(t, "open "+img+"\nopen "+img+" -s 1\ncurdev\n", "debug")
	if !strings.Contains(out, "debugfs: curdev\n"+img) {
		t.Errorf("open -s 1 in a session: %q", out)
	}
}

// TestInfoWithoutDeviceIsUsage: o2info users give a file on a mounted
// volume and no device; o2go needs the device, and says so with the
// usage exit status its help documents (2), not cobra's bare count.
func TestInfoWithoutDeviceIsUsage(t *testing.T) {
	for _, args := range [][]string{{"info", "--filestat", "/mnt/vol/file"}, {"info", "--volinfo", "a.img", "b.img"}} {
		out, errOut, code := runO2go(t, "", args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "info needs one DEVICE") {
			t.Errorf("o2go %s: exit %d stdout %q stderr %q; want exit 2 and a message naming the DEVICE", strings.Join(args, " "), code, out, errOut)
		}
	}
}

// TestBadFlagsAreUsage: a flag debug, info or mounted cannot parse is the
// usage error their help documents, exit status 2, naming the flag.
func TestBadFlagsAreUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"debug", "--bogus", "x.img"}, "unknown flag: --bogus"},
		{[]string{"debug", "-s", "abc", "x.img"}, `invalid argument "abc" for "-s, --superblock"`},
		{[]string{"info", "--bogus", "x.img"}, "unknown flag: --bogus"},
		{[]string{"mounted", "--sample", "soon"}, `invalid argument "soon" for "--sample"`},
	} {
		out, errOut, code := runO2go(t, "", tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("o2go %s: exit %d stdout %q stderr %q; want exit 2 saying %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
}
