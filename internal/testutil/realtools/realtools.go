// Package realtools drives ocfs2-tools 1.8.7 (mkfs.ocfs2, debugfs.ocfs2,
// fsck.ocfs2, tunefs.ocfs2, mounted.ocfs2) as test oracles: it makes images
// the real way and reads back what the real tools say about a volume.
//
// Quirks handled here, once (see ondisk-format.md §12): mkfs needs -x to
// skip its overwrite prompt and --nodiscard on files; fsck.ocfs2 -fn exits 0
// even when it reports problems, so Fsck parses the "[CODE] ..." lines.
package realtools

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"o2go/internal/testutil"
)

// Require needs ocfs2-tools (and kmod's modprobe, without which the tools
// misbehave in clustered mode).
func Require(t testing.TB) {
	t.Helper()
	testutil.RequireTools(t, "mkfs.ocfs2", "debugfs.ocfs2", "fsck.ocfs2", "tunefs.ocfs2", "modprobe")
}

// NewImage creates a sparse image file of size bytes in a fresh temp dir.
func NewImage(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vol.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// Mkfs formats img with mkfs.ocfs2 and the given extra arguments (e.g.
// "-b", "4096", "-N", "4", "--fs-features=local"). It always passes -q -F -x
// --nodiscard. Fatal on failure, with mkfs's output.
func Mkfs(t testing.TB, img string, args ...string) {
	t.Helper()
	Require(t)
	all := append([]string{"-q", "-F", "-x", "--nodiscard"}, args...)
	all = append(all, img)
	if out, err := exec.Command("mkfs.ocfs2", all...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ocfs2 %s: %v\n%s", strings.Join(all, " "), err, out)
	}
}

// MkfsImage is NewImage + Mkfs.
func MkfsImage(t testing.TB, size int64, args ...string) string {
	t.Helper()
	img := NewImage(t, size)
	Mkfs(t, img, args...)
	return img
}

// Debugfs runs `debugfs.ocfs2 -R cmd img` and returns its stdout. Fatal when
// the tool fails or prints an error on stderr (debugfs exits 0 on many errors).
func Debugfs(t testing.TB, img, cmd string) string {
	t.Helper()
	out, errOut, err := run("debugfs.ocfs2", "-R", cmd, img)
	if err != nil || strings.TrimSpace(errOut) != "" && !benignDebugfsStderr(errOut) {
		t.Fatalf("debugfs.ocfs2 -R %q %s: %v\nstdout:\n%s\nstderr:\n%s", cmd, img, err, out, errOut)
	}
	return out
}

// DebugfsRaw runs debugfs.ocfs2 with raw arguments and returns stdout,
// stderr and the error, for tests that look at failures.
func DebugfsRaw(args ...string) (stdout, stderr string, err error) {
	return run("debugfs.ocfs2", args...)
}

func benignDebugfsStderr(s string) bool {
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if !strings.HasPrefix(l, "debugfs.ocfs2 ") { // version banner
			return false
		}
	}
	return true
}

// FsckResult is what fsck.ocfs2 said about a volume.
type FsckResult struct {
	ExitCode int
	Problems []string // lines starting with "[CODE]"
	Output   string   // stdout + stderr
}

// Clean reports whether fsck exited 0 and reported no problem.
func (r FsckResult) Clean() bool { return r.ExitCode == 0 && len(r.Problems) == 0 }

// fsckTimeout bounds one fsck.ocfs2 run: the largest test volumes take
// seconds, and a hang must fail the test, not the whole suite's timeout.
const fsckTimeout = 5 * time.Minute

var problemLine = regexp.MustCompile(`(?m)^\[[A-Z0-9_]+\].*$`)

// Fsck runs fsck.ocfs2 with args (e.g. "-fn") on img. It never fails the
// test by itself: callers assert on the result.
func Fsck(t testing.TB, img string, args ...string) FsckResult {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), fsckTimeout)
	defer cancel()
	cmd := fsckCommand(ctx, append(args, img)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("fsck.ocfs2 %s %s did not finish in %v (a hang: 1.8.7 spins forever, for one, replaying a log where a block is logged after a revoke of it):\n%s", strings.Join(args, " "), img, fsckTimeout, buf.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("fsck.ocfs2: %v", err)
	}
	return FsckResult{ExitCode: code, Problems: problemLine.FindAllString(buf.String(), -1), Output: buf.String()}
}

// RequireFsckClean asserts that `fsck.ocfs2 -fn img` exits 0 and reports no
// problem: the compatibility contract for every volume o2go writes.
func RequireFsckClean(t testing.TB, img string) {
	t.Helper()
	if r := Fsck(t, img, "-fn"); !r.Clean() {
		t.Fatalf("fsck.ocfs2 -fn %s: exit %d, problems:\n%s\nfull output:\n%s", img, r.ExitCode, strings.Join(r.Problems, "\n"), r.Output)
	}
}

// TunefsQuery runs `tunefs.ocfs2 -Q format img`.
func TunefsQuery(t testing.TB, img, format string) string {
	t.Helper()
	out, errOut, err := run("tunefs.ocfs2", "-Q", format, img)
	if err != nil {
		t.Fatalf("tunefs.ocfs2 -Q: %v\n%s%s", err, out, errOut)
	}
	return out
}

func run(name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return o.String(), e.String(), err
}

// fsckCommand runs fsck.ocfs2 without CAP_IPC_LOCK and with a 1 MiB
// RLIMIT_MEMLOCK when setpriv and prlimit (util-linux) are there: as root
// fsck.ocfs2 mlocks an I/O cache of a fifth of free memory, seconds per run
// on a large machine; limited, it falls back to a small cache, and its
// verdict does not depend on the cache.
func fsckCommand(ctx context.Context, args ...string) *exec.Cmd {
	setpriv, err1 := exec.LookPath("setpriv")
	prlimit, err2 := exec.LookPath("prlimit")
	if err1 != nil || err2 != nil {
		return exec.CommandContext(ctx, "fsck.ocfs2", args...)
	}
	return exec.CommandContext(ctx, setpriv, append([]string{"--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock", prlimit, "--memlock=1048576", "fsck.ocfs2"}, args...)...)
}
