package fusefs

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"o2go/internal/testutil"
)

// stressStressors are stress-ng's file-system stressors of issue 4
// (acceptance 3), with options that keep them inside a 2 GiB volume.
var stressStressors = [][]string{
	{"--dir", "1", "--dir-dirs", "2048"},
	{"--dentry", "1"},
	{"--rename", "1"},
	{"--link", "1", "--link-sync"},
	{"--symlink", "1", "--symlink-sync"},
	{"--xattr", "1"},
	{"--fallocate", "1", "--fallocate-bytes", "64M"},
	{"--seek", "1", "--seek-size", "256M", "--seek-punch"},
	{"--hdd", "1", "--hdd-bytes", "128M", "--hdd-write-size", "65536"},
	{"--hdd", "1", "--hdd-bytes", "32M", "--hdd-opts", "wr-rnd,rd-rnd,fsync"},
	{"--flock", "2"},
}

// stressFailure matches stress-ng's lines that report a failed check or
// an unexpected error from the file system.
var stressFailure = regexp.MustCompile(`(?im)^.*(fail|error|unexpected|corrupt|mismatch|verif.*(wrong|differ)).*$`)

// TestStressNG runs stress-ng's file-system stressors against an o2go
// mount, all at once with --verify, and requires each to do work and none
// to report a failure; then one full round of the xattr stressor (4096
// attributes created, replaced, read back, listed and removed: about 100 s
// here, so not with -short); the volume must then pass fsck.ocfs2 -fn.
// O2GO_STRESS_TIMEOUT sets how long the joint run lasts (default 20s; 8s
// with -short).
func TestStressNG(t *testing.T) {
	testutil.RequireTools(t, "stress-ng")
	v := newTestVolume(t, 2<<30, "")
	dir := v.path("stress")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	timeout := "20s"
	if testing.Short() {
		timeout = "8s"
	}
	if s := os.Getenv("O2GO_STRESS_TIMEOUT"); s != "" {
		timeout = s
	}
	var all []string
	for _, s := range stressStressors {
		all = append(all, s...)
	}
	// A round of the xattr stressor takes longer than the joint run: it
	// counts no operation there, only its own failures.
	runStressNG(t, dir, append([]string{"--timeout", timeout}, all...), "xattr")
	if !testing.Short() {
		runStressNG(t, dir, []string{"--timeout", "15m", "--xattr", "1", "--xattr-ops", "1"})
	}
	v.finish()
}

// stressMetric matches a stressor's line of --metrics-brief: name and
// bogo operations.
var stressMetric = regexp.MustCompile(`(?m)metrc: \[\d+\] (\w+)\s+(\d+)\s+\d`)

// runStressNG runs stress-ng in dir with args and checks its report:
// exit 0, a successful run, no failure line, every stressor (but those
// named in mayIdle) with at least one operation, nothing left behind.
func runStressNG(t *testing.T, dir string, args []string, mayIdle ...string) {
	t.Helper()
	args = append([]string{"--temp-path", dir, "--verify", "--metrics-brief", "--keep-name"}, args...)
	cmd := exec.Command("stress-ng", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("stress-ng %s (%v):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Second), out.String())
	if err != nil {
		t.Errorf("stress-ng: %v", err)
	}
	if bad := stressFailure.FindAllString(out.String(), -1); len(bad) > 0 {
		t.Errorf("stress-ng reports failures:\n%s", strings.Join(bad, "\n"))
	}
	if !strings.Contains(out.String(), "successful run completed") {
		t.Errorf("stress-ng did not report a successful run")
	}
	ops := map[string]int{}
	for _, m := range stressMetric.FindAllStringSubmatch(out.String(), -1) {
		n, _ := strconv.Atoi(m[2])
		ops[m[1]] += n
	}
	for i, a := range args {
		name, ok := strings.CutPrefix(a, "--")
		if !ok || i+1 >= len(args) || strings.Contains(name, "-") || slices.Contains([]string{"temp", "timeout", "verify"}, name) {
			continue
		}
		if _, isNum := strconv.Atoi(args[i+1]); isNum != nil {
			continue
		}
		if ops[name] == 0 && !slices.Contains(mayIdle, name) {
			t.Errorf("stress-ng's %s stressor did no operation", name)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t.Errorf("stress-ng left %s behind", e.Name())
	}
}
