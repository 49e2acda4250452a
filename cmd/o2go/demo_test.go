package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// TestDemo runs the demo (`make demo` runs scripts/demo.sh after make deps
// and make build) with the o2go binary built from this tree, so that a
// broken demo fails `make test`. The script must exit 0 and print its key
// lines, each exactly once: the three nodes' membership and mounts, the
// greeting and the moved file read alike on every node, the 900 appended
// lines counted on every node, the kill -9 of node3, its eviction within
// the cluster stack's bound, the recovery of its slot (by one survivor,
// within killReplayBound of its down event), its fsynced data on the
// survivors, its return, three clean unmounts and fsck.ocfs2's verdict.
// Then the test reads what the demo left (it runs with O2GO_DEMO_KEEP=1)
// for itself: shared.log as debugfs.ocfs2 dumped it holds every node's
// lines exactly once and in order, durable.bin as debugfs.ocfs2 dumped it
// is what node3 fsynced, and fsck.ocfs2 -fn finds the image clean.
//
// The test installs nothing: the tools come from `make deps`; without
// them, root or FUSE it skips, and fails under CI=true. Set
// O2GO_DEMO_KEEP=1 to keep the demo's work directory (image, logs).
func TestDemo(t *testing.T) {
	testutil.Long(t)
	testutil.RequireFUSE(t)
	realtools.Require(t)
	testutil.RequireTools(t, "bash", "mounted.ocfs2", "setpriv", "prlimit", "ss", "sha256sum", "base64", "awk", "timeout", "truncate", "umount", "mktemp")
	bin := o2goBinary(t)
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "demo.sh"))
	if err != nil {
		t.Fatal(err)
	}

	// The demo's own watchdog stops it after 300 s; this is the backstop
	// behind it. SIGTERM lets the script clean up (kill its agents,
	// detach its mounts); what is left after that is killed with its
	// process group.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script)
	cmd.Env = append(os.Environ(), "O2GO="+bin, "O2GO_DEMO_KEEP=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	start := time.Now()
	err = cmd.Run()
	if err != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what a hung demo left running
	}
	out := ansiEscape.ReplaceAllString(outBuf.String(), "")
	work := ""
	if m := regexp.MustCompile(`(?m)^kept: (/\S+)$`).FindStringSubmatch(out); m != nil {
		work = m[1]
		t.Cleanup(func() { removeDemoWork(t, work) })
	}
	if err != nil {
		t.Fatalf("scripts/demo.sh with O2GO=%s: %v after %v; its output:\n%s", bin, err, time.Since(start).Round(time.Second), out)
	}
	t.Logf("the demo ran in %v", time.Since(start).Round(time.Second))
	if work == "" {
		t.Fatalf("the demo did not say where it kept its work directory (kept: DIR); its output:\n%s", out)
	}
	bad := checkDemoTranscript(out)
	bad = append(bad, checkDemoWork(t, work, out)...)
	if bad != nil {
		t.Errorf("the demo's transcript or what it left is wrong:\n%s", strings.Join(bad, "\n"))
		t.Logf("the demo's output:\n%s", out)
	}
}

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// demoOnce are lines the demo prints exactly once when it works (node3's
// mount, twice, is checked apart).
var demoOnce = []string{
	`^   ok: all three nodes agree on the membership \[1 2 3\] after \d+ ms$`,
	`^\S+/volume\.img mounted on \S+/mnt1 \(slot \d, node agent node1\.sock\)$`,
	`^\S+/volume\.img mounted on \S+/mnt2 \(slot \d, node agent node2\.sock\)$`,
	`^   ok: written on node2, moved by node1 into the directory node3 made, the same bytes on all three$`,
	`^   ok: node3 removed a file node1 made: its inode went back to node1's slot allocator$`,
	`^\s+900 mnt1/shared\.log$`,
	`^\s+900 mnt2/shared\.log$`,
	`^\s+900 mnt3/shared\.log$`,
	`^   ok: 900 lines, all distinct, each node's in its own order, the same file on every node$`,
	`^\$ kill -9 \d+$`,
	`^   ok: the survivors evicted node3 \d+ ms after the kill `,
	`^time=\S+ level=INFO msg="recovered a dead node's slot" node=3 slot=\d+ replayed=(true|false)$`,
	`^   ok: what node3 fsynced is there, and the survivors go on writing$`,
	`^   ok: membership \[1 2 3\] again after \d+ ms$`,
	`^   ok: node3 reads all 903 lines and its own fsynced file$`,
	`^   ok: three clean unmounts, three agents stopped`,
	`^All passes succeeded\.$`,
	`^durable\.bin \(fsynced on node3, then kill -9\) .* identical$`,
	`^shared\.log \(three nodes appending\) .* identical$`,
	`^random\.bin \(node2 wrote, node1 moved\) .* identical$`,
	`^== Done in \d+s: three nodes shared one OCFS2 volume, survived a kill -9, and fsck\.ocfs2 finds it clean`,
}

// checkDemoTranscript checks the demo's output (colours removed) and
// returns what is wrong.
func checkDemoTranscript(out string) []string {
	var bad []string
	lines := strings.Split(out, "\n")
	count := func(re *regexp.Regexp) (n int, first []string) {
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				if n == 0 {
					first = m
				}
				n++
			}
		}
		return n, first
	}
	for _, p := range demoOnce {
		if n, _ := count(regexp.MustCompile(p)); n != 1 {
			bad = append(bad, fmt.Sprintf("%d lines match %q, want 1", n, p))
		}
	}
	for _, p := range []string{`FAILED`, `DIFFERENT`, `^\[[A-Z0-9_]+\]`} {
		if n, m := count(regexp.MustCompile(p)); n != 0 {
			bad = append(bad, fmt.Sprintf("%d lines match %q, the first %q", n, p, m[0]))
		}
	}
	// node3 mounts twice, before its kill and after its return: into the
	// same slot (a node that remounts reuses its slot).
	re3 := regexp.MustCompile(`^\S+/volume\.img mounted on \S+/mnt3 \(slot (\d), node agent node3\.sock\)$`)
	var slots3 []string
	for _, l := range lines {
		if m := re3.FindStringSubmatch(l); m != nil {
			slots3 = append(slots3, m[1])
		}
	}
	if len(slots3) != 2 || slots3[0] != slots3[1] {
		bad = append(bad, fmt.Sprintf("node3 mounted in slots %v, want twice in the same slot (before its kill, after its return)", slots3))
	}
	// The greeting node1 wrote, read on node2 and node3.
	if n, _ := count(regexp.MustCompile(`^written on node1 at `)); n != 2 {
		bad = append(bad, fmt.Sprintf("node2 and node3 print node1's greeting %d times, want 2", n))
	}
	// One hash per node, the same, for the moved file and the fsynced one.
	for _, c := range []struct {
		file  string
		nodes string
	}{{"reports/random.bin", "123"}, {"durable.bin", "312"}} {
		re := regexp.MustCompile(`^   sha256 of ` + regexp.QuoteMeta(c.file) + ` on node(\d): ([0-9a-f]{64})$`)
		var who, sums []string
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				who, sums = append(who, m[1]), append(sums, m[2])
			}
		}
		if strings.Join(who, "") != c.nodes {
			bad = append(bad, fmt.Sprintf("the sha256 of %s is printed for nodes %v, want node%s in that order", c.file, who, strings.Join(strings.Split(c.nodes, ""), ", node")))
			continue
		}
		for i := range sums {
			if sums[i] != sums[0] {
				bad = append(bad, fmt.Sprintf("node%s reads another %s (%s) than node%s (%s)", who[i], c.file, sums[i], who[0], sums[0]))
			}
		}
	}
	// node3's last line, fsynced before its kill: last on node1 after the
	// kill, and third to last when node3 reads the log after its return.
	if n, _ := count(regexp.MustCompile(`^node3: fsynced just before kill -9$`)); n != 2 {
		bad = append(bad, fmt.Sprintf("node3's fsynced line is printed %d times, want 2 (tail on node1, tail -n 3 on node3)", n))
	}
	// The eviction within the cluster stack's bound, from the timing the
	// demo configured: the dead time, then as killDetectBound says.
	threshold, interval := demoSetting(lines, "O2CB_HEARTBEAT_THRESHOLD"), demoSetting(lines, "O2GO_HEARTBEAT_INTERVAL_MS")
	_, m := count(regexp.MustCompile(`^   ok: the survivors evicted node3 (\d+) ms after the kill`))
	if threshold <= 0 || interval <= 0 || m == nil {
		bad = append(bad, fmt.Sprintf("no heartbeat timing (O2CB_HEARTBEAT_THRESHOLD %d, O2GO_HEARTBEAT_INTERVAL_MS %d) or no eviction time printed", threshold, interval))
	} else {
		ms, _ := strconv.Atoi(m[1])
		took, iv := time.Duration(ms)*time.Millisecond, time.Duration(interval)*time.Millisecond
		dead := time.Duration(threshold-1) * iv
		// demoPollMargin: the demo polls every 200 ms, each poll two
		// `o2go cluster status` runs.
		const demoPollMargin = time.Second
		if hi := dead + 3*iv + killDetectMargin + demoPollMargin; took > hi {
			bad = append(bad, fmt.Sprintf("node3 evicted %v after the kill, past the bound %v (dead time %v + 3 heartbeat intervals + %v + %v of the demo's polling)", took, hi, dead, killDetectMargin, demoPollMargin))
		}
		if lo := dead - iv; took < lo {
			bad = append(bad, fmt.Sprintf("node3 evicted %v after the kill, sooner than the dead time allows (%v)", took, lo))
		}
	}
	return bad
}

// demoSetting is the value of sysconfig variable name as `o2go cluster
// settings` printed it in the demo (0 when missing).
func demoSetting(lines []string, name string) int {
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, name+"="); ok {
			n, err := strconv.Atoi(v)
			if err == nil {
				return n
			}
		}
	}
	return 0
}

// checkDemoWork checks what the demo left in its work directory: the
// files debugfs.ocfs2 dumped from the image, the survivors' logs, and the
// image, which fsck.ocfs2 -fn must find clean.
func checkDemoWork(t *testing.T, work, out string) []string {
	var bad []string
	// shared.log: every node's 300 lines once and in order, then node3's
	// fsynced line and the survivors' lines after its death.
	log, err := os.ReadFile(filepath.Join(work, "shared.log"))
	if err != nil {
		return append(bad, fmt.Sprintf("the shared.log debugfs.ocfs2 dumped: %v", err))
	}
	lines := strings.Split(strings.TrimSuffix(string(log), "\n"), "\n")
	const per = 300
	if len(lines) != 3*per+3 {
		bad = append(bad, fmt.Sprintf("shared.log as debugfs.ocfs2 dumped it has %d lines, want %d", len(lines), 3*per+3))
	} else {
		next := [4]int{0, 1, 1, 1}
		for k, l := range lines[:3*per] {
			var i, j int
			if _, err := fmt.Sscanf(l, "node%d line %d", &i, &j); err != nil || i < 1 || i > 3 || l != fmt.Sprintf("node%d line %03d", i, j) {
				bad = append(bad, fmt.Sprintf("shared.log line %d is torn or foreign: %q", k+1, l))
				break
			}
			if j != next[i] {
				bad = append(bad, fmt.Sprintf("shared.log line %d: node%d's line %d, want its line %d (lost, doubled or out of order)", k+1, i, j, next[i]))
				break
			}
			next[i]++
		}
		want := []string{"node3: fsynced just before kill -9", "node1: after node3 died", "node2: after node3 died"}
		if got := lines[3*per:]; strings.Join(got, "\n") != strings.Join(want, "\n") {
			bad = append(bad, fmt.Sprintf("shared.log ends with %q, want %q", got, want))
		}
	}
	// durable.bin: what node3 fsynced before its kill.
	m := regexp.MustCompile(`(?m)^   sha256 of durable\.bin on node3: ([0-9a-f]{64})$`).FindStringSubmatch(out)
	if b, err := os.ReadFile(filepath.Join(work, "durable.bin")); err != nil || m == nil {
		bad = append(bad, fmt.Sprintf("durable.bin as debugfs.ocfs2 dumped it: %v (node3's sha256 printed: %v)", err, m != nil))
	} else if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != m[1] {
		bad = append(bad, fmt.Sprintf("durable.bin as debugfs.ocfs2 dumped it (%d bytes) has sha256 %x, node3 fsynced %s", len(b), sum, m[1]))
	}
	// The recovery: the survivor that recovered node3's slot did so within
	// killReplayBound of delivering its down event.
	var recs []string
	for _, n := range []string{"node1", "node2"} {
		l, err := os.ReadFile(filepath.Join(work, n+".log"))
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		var down, rec time.Time
		for _, line := range strings.Split(string(l), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || !strings.HasPrefix(f[0], "time=") {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
			if err != nil {
				continue
			}
			switch {
			case strings.Contains(line, " node 3 down [") && down.IsZero():
				down = at
			case strings.Contains(line, `msg="recovered a dead node's slot" node=3 `):
				rec = at
			}
		}
		if down.IsZero() {
			bad = append(bad, fmt.Sprintf("%s logged no down event of node 3", n))
		}
		if rec.IsZero() {
			continue
		}
		recs = append(recs, n)
		if !down.IsZero() && rec.Sub(down) > killReplayBound {
			bad = append(bad, fmt.Sprintf("%s recovered node 3's slot %v after it saw it down, past the bound %v", n, rec.Sub(down), killReplayBound))
		}
		if !down.IsZero() {
			t.Logf("%s recovered node3's slot %v after its down event", n, rec.Sub(down))
		}
	}
	if len(recs) != 1 {
		bad = append(bad, fmt.Sprintf("node3's slot recovered by %v, want exactly one survivor", recs))
	}
	if r := realtools.Fsck(t, filepath.Join(work, "volume.img"), "-fn"); !r.Clean() {
		bad = append(bad, fmt.Sprintf("fsck.ocfs2 -fn of the demo's image: exit %d, problems:\n%s", r.ExitCode, strings.Join(r.Problems, "\n")))
	}
	return bad
}

// removeDemoWork removes the demo's work directory, unless O2GO_DEMO_KEEP=1
// or something is still mounted below it (the demo detaches every mount
// when it exits: one left means it did not).
func removeDemoWork(t *testing.T, work string) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("not removing %s: %v", work, err)
		return
	}
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], work+"/") {
			t.Errorf("the demo left %s mounted; not removing %s", f[4], work)
			return
		}
	}
	if os.Getenv("O2GO_DEMO_KEEP") == "1" {
		t.Logf("the demo's work directory kept: %s", work)
		return
	}
	if err := os.RemoveAll(work); err != nil {
		t.Errorf("removing the demo's work directory: %v", err)
	}
}
