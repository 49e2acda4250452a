package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

// runO2go runs the root command with args and stdin, and returns what it
// printed and the exit status main would give.
func runO2go(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	var ee *exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
		if ee.err != nil {
			errOut.WriteString("o2go: " + ee.err.Error() + "\n")
		}
	default:
		code = 1
		errOut.WriteString("o2go: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), code
}

func TestDebugCommand(t *testing.T) {
	realtools.Require(t)
	t.Setenv("TZ", "UTC")
	img := realtools.MkfsImage(t, 120<<20, "-b", "4096", "-N", "2", "-L", "cli", "--fs-features=local")
	zero := filepath.Join(t.TempDir(), "zero.img")
	os.WriteFile(zero, make([]byte, 1<<20), 0o600)
	cmdFile := filepath.Join(t.TempDir(), "cmds")
	os.WriteFile(cmdFile, []byte("slotmap\ncurdev\n"), 0o600)

	for _, tc := range []struct {
		name     string
		stdin    string
		args     []string
		code     int
		out, err string
	}{
		{"request", "", []string{"debug", "-R", "stats -h", img}, 0, "\tLabel: cli\n", ""},
		{"json", "", []string{"debug", "--json", "-R", "stats", img}, 0, `"label": "cli"`, ""},
		{"failing command", "", []string{"debug", "-R", "stat /nope", img}, 1, "", "stat: '/nope': no such file or directory"},
		{"not ocfs2", "", []string{"debug", "-R", "stats", zero}, 1, "", "open: " + zero + ": not an OCFS2 volume"},
		{"missing backup", "", []string{"debug", "-s", "1", "-R", "stats", img}, 1, "", "beyond the device"},
		{"bad backup number", "", []string{"debug", "-s", "9", "-R", "stats", img}, 2, "", "numbered 1..6"},
		{"piped session", "slotmap\nnosuch\nq\n", []string{"debug", img}, 1, "debugfs: slotmap\n\tSlot#   Node#\ndebugfs: nosuch\ndebugfs: q\n", "nosuch: command not found"},
		{"command file", "", []string{"debug", "-f", cmdFile, img}, 0, "debugfs: slotmap\n\tSlot#   Node#\ndebugfs: curdev\n" + img + "\n\n", ""},
		{"no prompt", "curdev\n", []string{"debug", "-n", img}, 0, img + "\n\n", ""},
		{"decode", "", []string{"debug", "-d", "M000000000000000000001800000000"}, 0, "Type:       Meta\nBlock:      24\n", ""},
		{"encode", "", []string{"debug", "-e", "W", "16915", "7"}, 0, "W000000000000000000421300000007\n", ""},
		{"write refused", "", []string{"debug", "-w", img}, 2, "", "read-only"},
		{"info", "", []string{"info", "--volinfo", img}, 0, "       Label: cli\n", ""},
		{"info mkfs", "", []string{"info", "--mkfs", "--json", img}, 0, `"mkfs": "-N 2 -J size=`, ""},
		{"info nothing asked", "", []string{"info", img}, 2, "", "say what to show"},
		{"info bad chunk", "", []string{"info", "--freefrag", "3", img}, 1, "", "power of 2"},
		{"info not ocfs2", "", []string{"info", "--volinfo", zero}, 1, "", "not an OCFS2 volume"},
		{"mounted", "", []string{"mounted", img, zero}, 0, img + "  None               ", ""},
		{"mounted full json", "", []string{"mounted", "-f", "--json", "--config", "/nonexistent", img}, 0, `"stack": "None"`, ""},
		{"mounted unreadable", "", []string{"mounted", filepath.Join(t.TempDir(), "missing")}, 1, "Device", "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runO2go(t, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) || (tc.err == "" && errOut != "") {
				t.Errorf("o2go %s: exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", strings.Join(tc.args, " "), code, tc.code, out, tc.out, errOut, tc.err)
			}
		})
	}
}
