package inspect

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain runs every test in UTC, and the real tools too (they inherit
// TZ): debugfs prints local times through ctime(3), o2go through Go's
// time.Local, and both follow TZ.
func TestMain(m *testing.M) {
	os.Setenv("TZ", "UTC")
	time.Local = time.UTC
	os.Exit(m.Run())
}

// o2goDebug runs one debugfs command through a Debugger on img, as
// `o2go debug [-s backup] -R cmd img` does, and returns what it printed.
func o2goDebug(t testing.TB, img, cmd string, backup int) (stdout, stderr string, failed bool) {
	t.Helper()
	var out, errOut bytes.Buffer
	d := NewDebugger(&out, &errOut)
	if err := d.Open(img, backup); err != nil {
		return "", "open: " + err.Error() + "\n", true
	}
	defer d.Close()
	d.Exec(cmd)
	return out.String(), errOut.String(), d.Failed()
}

// realDebugfs runs debugfs.ocfs2 -R cmd [extra...] img and returns its
// stdout and stderr. The tool exits 0 on most errors; callers look at
// stderr.
func realDebugfs(t testing.TB, img, cmd string, extra ...string) (string, string) {
	t.Helper()
	args := append([]string{"-R", cmd}, extra...)
	args = append(args, img)
	c := exec.Command("debugfs.ocfs2", args...)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	if err := c.Run(); err != nil {
		t.Fatalf("debugfs.ocfs2 %s: %v\n%s", strings.Join(args, " "), err, e.String())
	}
	return o.String(), e.String()
}

// firstDiff describes where two outputs part, for readable failures.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n  debugfs: %q\n  o2go:    %q", i+1, w, g)
		}
	}
	return "(same lines)"
}
