package main

import (
	"encoding/json"
	"flag"
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

	"o2go/internal/base"
	"o2go/internal/node"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

var rewriteStatus = flag.Bool("rewrite-status", false, "rewrite testdata/status_*.golden from this run")

// o2cbInitScript is ocfs2-tools' init script; its status command is what
// o2go cluster status's first part copies.
const o2cbInitScript = "/etc/init.d/o2cb"

// o2cbKernelOnlyLine matches the lines of o2cb status about kernel modules
// and pseudo-file systems, which o2go does not print (it uses none).
var o2cbKernelOnlyLine = regexp.MustCompile(`^(Driver for "|Filesystem "|Stack glue driver: |Debug file system at |Active userdlm domains: )`)

// o2cbFakeKernel runs the real `o2cb status CLUSTER` against a kernel that
// holds what st describes: in a private mount namespace, tmpfs over
// /sys/kernel, /sys/fs and /proc carry the configfs tree
// (cluster/NAME/{node,heartbeat}, the timeouts), o2hb/livenodes in debugfs,
// the stack plugin files, /proc/filesystems and /proc/mounts of a node whose
// o2cb stack runs (agentUp) or whose modules are not loaded. It returns the
// script's lines about the cluster stack.
func o2cbFakeKernel(t *testing.T, st *node.Status, agentUp bool) []string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "unshare", "bash", "awk", "mount")
	if _, err := os.Stat(o2cbInitScript); err != nil {
		testutil.Unavailable(t, "%s (ocfs2-tools) is not installed: %v", o2cbInitScript, err)
	}
	dir := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cl := "config/cluster/" + st.Cluster
	var fs, mounts, mountinfo string
	if agentUp {
		fs = "nodev\tconfigfs\nnodev\tocfs2_dlmfs\nnodev\tdebugfs\n"
		mounts = "configfs /sys/kernel/config configfs rw 0 0\ndebugfs /sys/kernel/debug debugfs rw 0 0\nocfs2_dlmfs /dlm ocfs2_dlmfs rw 0 0\n"
		mountinfo = "30 1 0:10 / /sys/kernel/config rw - configfs configfs rw\n31 1 0:11 / /sys/kernel/debug rw - debugfs debugfs rw\n"
		write("plugins", "o2cb\n")
		for _, n := range st.Nodes {
			local := "0"
			if n.Number == st.Number {
				local = "1"
			}
			write(fmt.Sprintf("%s/node/%s/local", cl, n.Name), local+"\n")
			write(fmt.Sprintf("%s/node/%s/num", cl, n.Name), fmt.Sprintf("%d\n", n.Number))
		}
		tm := st.Timeouts
		write(cl+"/heartbeat/dead_threshold", fmt.Sprintf("%d\n", tm.HeartbeatThreshold))
		write(cl+"/heartbeat/mode", st.HeartbeatMode+"\n")
		write(cl+"/idle_timeout_ms", fmt.Sprintf("%d\n", tm.IdleTimeoutMs))
		write(cl+"/keepalive_delay_ms", fmt.Sprintf("%d\n", tm.KeepaliveDelayMs))
		write(cl+"/reconnect_delay_ms", fmt.Sprintf("%d\n", tm.ReconnectDelayMs))
		live := map[base.NodeID]bool{}
		for _, r := range st.Regions {
			if r.Device == "" {
				continue
			}
			dev, ok := strings.CutPrefix(o2cbDevice(r.Device), "/dev/")
			if !ok && st.HeartbeatMode == "global" {
				t.Fatalf("region %s: the kernel names block devices only, not %s", r.UUID, r.Device)
			} else if !ok {
				dev = "loop0" // an image file; o2cb lists no device in local mode
			}
			write(fmt.Sprintf("%s/heartbeat/%s/dev", cl, r.UUID), dev+"\n")
			for _, n := range r.Live {
				live[n] = true
			}
		}
		var ln strings.Builder
		for n := 0; n < base.MaxNodes; n++ {
			if live[base.NodeID(n)] {
				fmt.Fprintf(&ln, "%d ", n)
			}
		}
		write("debug/o2hb/livenodes", ln.String()+"\n")
	} else {
		fs = "nodev\tsysfs\nnodev\tproc\n"
	}
	write("config/.keep", "")
	write("debug/.keep", "")
	write("filesystems", fs)
	write("mounts", mounts)
	write("mountinfo", mountinfo)
	write("default", "O2CB_ENABLED=true\nO2CB_BOOTCLUSTER="+st.Cluster+"\n")
	// Refuse to touch anything unless the mount namespace is our own.
	script := `set -e
D=$1
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] || { echo "not in a private mount namespace" >&2; exit 3; }
mount -t tmpfs o2go-fake-kernel /sys/kernel
cp -a "$D/config" /sys/kernel/config
cp -a "$D/debug" /sys/kernel/debug
mount -t tmpfs o2go-fake-kernel /sys/fs
if [ -f "$D/plugins" ]; then
	mkdir /sys/fs/ocfs2
	cp "$D/plugins" /sys/fs/ocfs2/loaded_cluster_plugins
	echo o2cb >/sys/fs/ocfs2/cluster_stack
fi
[ -f /etc/default/o2cb ] && mount --bind "$D/default" /etc/default/o2cb
mount -t tmpfs o2go-fake-kernel /proc
mkdir /proc/self
cp "$D/filesystems" /proc/filesystems
cp "$D/mounts" /proc/mounts
cp "$D/mounts" /proc/self/mounts
cp "$D/mountinfo" /proc/self/mountinfo
set +e
bash ` + o2cbInitScript + ` status "$2"
echo "exit status $?"
`
	write("run.sh", script)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "bash", filepath.Join(dir, "run.sh"), dir, st.Cluster)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("o2cb status in a private mount namespace: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if last := lines[len(lines)-1]; last != "exit status 0" {
		t.Fatalf("o2cb status: %s (it always exits 0)\n%s", last, out)
	}
	var kept []string
	for _, l := range lines[:len(lines)-1] {
		if !o2cbKernelOnlyLine.MatchString(l) {
			kept = append(kept, l)
		}
	}
	return kept
}

// o2goO2CBPart is the text before o2go's part (the first blank line).
func o2goO2CBPart(t *testing.T, text string) []string {
	t.Helper()
	head, _, ok := strings.Cut(text, "\n\n")
	if !ok {
		t.Fatalf("no blank line between o2cb's lines and o2go's:\n%s", text)
	}
	return strings.Split(head, "\n")
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: o2go prints\n%s\no2cb status prints\n%s", what, quoteLines(got), quoteLines(want))
	}
}

// quoteLines shows lines with their trailing spaces.
func quoteLines(ls []string) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "\t%q\n", l)
	}
	return b.String()
}

// syntheticStatus is a status as an agent reports it.
func syntheticStatus(mode string, regions ...node.RegionStatus) *node.Status {
	st := &node.Status{Stack: "o2cb", Cluster: "webcluster", Node: "node1", Number: 1, Generation: "00000000000000a1",
		Timeouts: node.StatusTimeouts{HeartbeatThreshold: 31, IdleTimeoutMs: 30000, KeepaliveDelayMs: 2000,
			ReconnectDelayMs: 2000, HeartbeatIntervalMs: 2000, KillAckTimeoutMs: 0, DeadTimeMs: 60000},
		HeartbeatMode: mode, Regions: regions, Steady: true, Epoch: 1, Seq: 3, Members: nodes(0, 1), Quorum: "2 heartbeating, 2 connected: continue",
		Uptime: "1m0s"}
	for i, name := range []string{"node0", "node1", "node2"} {
		st.Nodes = append(st.Nodes, node.NodeStatus{Name: name, Number: base.NodeID(i), Address: fmt.Sprintf("192.168.1.%d:7777", 10+i),
			Self: i == 1, Live: i < 2, HeartbeatAgeMs: -1, Connection: "up", InView: i < 2, Slot: i, MountSlot: -1})
	}
	st.Nodes[1].Connection = "self"
	st.Nodes[2].Connection, st.Nodes[2].Reason = "connecting", "not heartbeating (agent not running, or not on the same disk)"
	return st
}

// TestStatusO2CBLinesAreO2CBs runs the real o2cb init script against a
// faked kernel holding each status and requires o2go's first part to be
// its lines, byte for byte (the trailing space of the node list included).
func TestStatusO2CBLinesAreO2CBs(t *testing.T) {
	regA := node.RegionStatus{UUID: "E2D5C0A1B7F04C2A9E3D1F6B8A7C5D40", Device: "/dev/sdc", Steady: true, Live: nodes(0, 1)}
	regB := node.RegionStatus{UUID: "0B9F3C7E5A1D4E2F8C6B4A2D0E9F7C31", Device: "/dev/mapper/hb1", Steady: true, Live: nodes(1, 2)}
	idle := node.RegionStatus{UUID: "7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A", Device: "/dev/sdd", Live: node.NodeList{}}
	missing := node.RegionStatus{UUID: "5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C5C", Live: node.NodeList{}}
	cases := []struct {
		name    string
		st      *node.Status
		agentUp bool
		want    []string // o2go's lines, checked against o2cb's too
	}{
		{"local, a mounted volume", syntheticStatus("local", regA), true, []string{
			`Stack plugin "o2cb": Loaded`, `Checking O2CB cluster "webcluster": Online`,
			"  Heartbeat dead threshold: 31", "  Network idle timeout: 30000", "  Network keepalive delay: 2000",
			"  Network reconnect delay: 2000", "  Heartbeat mode: Local", "Checking O2CB heartbeat: Active"}},
		{"local, nothing mounted", syntheticStatus("local"), true, []string{
			`Stack plugin "o2cb": Loaded`, `Checking O2CB cluster "webcluster": Online`,
			"  Heartbeat dead threshold: 31", "  Network idle timeout: 30000", "  Network keepalive delay: 2000",
			"  Network reconnect delay: 2000", "  Heartbeat mode: Local", "Checking O2CB heartbeat: Not active"}},
		{"global, regions listed in C order, live nodes of any region", syntheticStatus("global", regA, missing, regB, idle), true, []string{
			`Stack plugin "o2cb": Loaded`, `Checking O2CB cluster "webcluster": Online`,
			"  Heartbeat dead threshold: 31", "  Network idle timeout: 30000", "  Network keepalive delay: 2000",
			"  Network reconnect delay: 2000", "  Heartbeat mode: Global", "Checking O2CB heartbeat: Active",
			"  0B9F3C7E5A1D4E2F8C6B4A2D0E9F7C31 /dev/mapper/hb1", "  7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A /dev/sdd",
			"  E2D5C0A1B7F04C2A9E3D1F6B8A7C5D40 /dev/sdc", "Nodes in O2CB cluster: 0 1 2 "}},
		{"global, nobody live yet", syntheticStatus("global", idle), true, []string{
			`Stack plugin "o2cb": Loaded`, `Checking O2CB cluster "webcluster": Online`,
			"  Heartbeat dead threshold: 31", "  Network idle timeout: 30000", "  Network keepalive delay: 2000",
			"  Network reconnect delay: 2000", "  Heartbeat mode: Global", "Checking O2CB heartbeat: Active",
			"  7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A7A /dev/sdd", "Nodes in O2CB cluster: "}},
		{"global, no region active", syntheticStatus("global", missing), true, []string{
			`Stack plugin "o2cb": Loaded`, `Checking O2CB cluster "webcluster": Offline`}},
		{"no agent, local", syntheticStatus("local"), false, []string{`Checking O2CB cluster "webcluster": Offline`}},
		{"no agent, global", syntheticStatus("global"), false, []string{`Checking O2CB cluster "webcluster": Offline`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			printStatus(&b, &statusReport{Online: c.agentUp, Status: *c.st, Reason: "no agent"})
			got := o2goO2CBPart(t, b.String())
			sameLines(t, "expected", got, c.want)
			sameLines(t, "o2cb", got, o2cbFakeKernel(t, c.st, c.agentUp))
		})
	}
}

// statusNormaliser replaces what changes from run to run in status text:
// node names, generations, uptimes, heartbeat ages and beats missed (a
// loaded machine misses some), the view's epoch and event count, the port,
// the image's UUID and paths. Runs of spaces (table alignment, which follows those
// widths) become two spaces.
type statusNormaliser struct {
	names       []string
	port        int
	uuid, dir   string
	extraTokens map[string]string
}

var (
	normGeneration = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
	normUptime     = regexp.MustCompile(`up [0-9hms.]+`)
	normAge        = regexp.MustCompile(`[0-9.]+(ms|s) ago( \(\d+ missed\))?`)
	normSpaces     = regexp.MustCompile(`   +`)
	normView       = regexp.MustCompile(`epoch \d+, \d+ events`)
)

func (n statusNormaliser) apply(text string) string {
	for i := len(n.names) - 1; i >= 0; i-- { // t1n10 before t1n1
		text = strings.ReplaceAll(text, n.names[i], fmt.Sprintf("node%d", i))
	}
	for from, to := range n.extraTokens {
		text = strings.ReplaceAll(text, from, to)
	}
	text = strings.ReplaceAll(text, n.dir, "TMPDIR")
	text = strings.ReplaceAll(text, n.uuid, "VOLUME-UUID")
	text = strings.ReplaceAll(text, ":"+strconv.Itoa(n.port), ":PORT")
	text = normGeneration.ReplaceAllString(text, "GENERATION")
	text = normUptime.ReplaceAllString(text, "up UPTIME")
	text = normAge.ReplaceAllString(text, "AGE ago")
	text = normView.ReplaceAllString(text, "epoch E, N events")
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		lines = append(lines, normSpaces.ReplaceAllString(strings.TrimRight(l, " "), "  "))
	}
	return strings.Join(lines, "\n")
}

// checkGolden compares text with testdata/NAME (or writes it with
// -rewrite-status).
func checkGolden(t *testing.T, name, text string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *rewriteStatus {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -rewrite-status to make it)", err)
	}
	if string(want) != text {
		t.Errorf("%s differs (-rewrite-status rewrites it after a deliberate change)\ngot:\n%s\nwant:\n%s", p, text, want)
	}
}

// statusRow is one row of the node table, as printed.
type statusRow struct {
	name, heartbeat, lastBeat, connection, hbSlot, mountSlot, inCluster string
}

var tableSplit = regexp.MustCompile(`  +`)

// nodeRows parses the node table of o2go cluster status's text.
func nodeRows(t *testing.T, text string) map[string]statusRow {
	t.Helper()
	rows := map[string]statusRow{}
	in := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "NODE  ") {
			in = strings.Contains(l, "LAST BEAT")
			continue
		}
		if !in || strings.TrimSpace(l) == "" {
			in = false
			continue
		}
		f := tableSplit.Split(strings.TrimRight(l, " "), -1)
		if len(f) != 9 {
			t.Fatalf("node row %q has %d columns, want 9", l, len(f))
		}
		name := strings.TrimSuffix(f[0], "*")
		rows[name] = statusRow{name: f[0], heartbeat: f[3], lastBeat: f[4], connection: f[5], hbSlot: f[6], mountSlot: f[7], inCluster: f[8]}
	}
	if len(rows) == 0 {
		t.Fatalf("no node table in\n%s", text)
	}
	return rows
}

// beatAge parses LAST BEAT ("1.2s ago (5 missed)"); -1 for "never".
func beatAge(t *testing.T, s string) (time.Duration, int) {
	t.Helper()
	if s == "never" {
		return -1, 0
	}
	var missed int
	d, rest, ok := strings.Cut(s, " ago")
	if !ok {
		t.Fatalf("LAST BEAT %q: want DURATION ago", s)
	}
	if rest != "" {
		if _, err := fmt.Sscanf(rest, " (%d missed)", &missed); err != nil {
			t.Fatalf("LAST BEAT %q: %v", s, err)
		}
	}
	age, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("LAST BEAT %q: %v", s, err)
	}
	return age, missed
}

// TestStatusGoldenWithRealAgents runs agents 0 and 1 of a three-node
// cluster: the whole text of o2go cluster status on node 0 against a golden
// file, its o2cb lines against the real init script, the per-node columns
// as they move (node 1 killed: its last beat ages, it goes dead, its
// connection drops), and the offline text of node 2, which runs no agent.
func TestStatusGoldenWithRealAgents(t *testing.T) {
	pc := newProcCluster(t, 3, loopbackIPs(3))
	pc.start(0)
	pc.start(1)
	pc.waitView([]int{0, 1}, nodes(0, 1), 30*time.Second)
	info, err := node.ProbeVolume(pc.img)
	if err != nil {
		t.Fatal(err)
	}
	norm := statusNormaliser{names: pc.names, port: pc.port, uuid: info.UUID, dir: pc.dir, extraTokens: map[string]string{pc.img: "IMAGE"}}
	common := []string{"cluster", "--config", pc.conf, "--sysconfig", pc.sysconf, "status"}
	status := func(i int, extra ...string) string {
		t.Helper()
		out, err := runCLI(append(append(common, "--node", pc.names[i], "--socket", pc.agents[i].socket), extra...)...)
		if err != nil {
			t.Fatalf("status on node %d: %v\n%s", i, err, out)
		}
		return out
	}
	text := status(0)
	checkGolden(t, "status_local_online.golden", norm.apply(text))
	var js statusReport
	if err := json.Unmarshal([]byte(status(0, "--json")), &js); err != nil || !js.Online || !js.O2CBOnline || js.Reason != "" {
		t.Fatalf("status --json: %v %+v", err, js)
	}
	sameLines(t, "o2cb lines of real agents", o2goO2CBPart(t, text), o2cbFakeKernel(t, &js.Status, true))

	rows := nodeRows(t, text)
	self, peer, absent := rows[pc.names[0]], rows[pc.names[1]], rows[pc.names[2]]
	if self.name != pc.names[0]+"*" || self.heartbeat != "live" || self.connection != "self" || self.hbSlot != "0" || self.inCluster != "yes" {
		t.Errorf("node 0 (this node): %+v", self)
	}
	if a, _ := beatAge(t, self.lastBeat); a < 0 || a > 5*testInterval {
		t.Errorf("node 0's own heartbeat last changed %v ago, want within a few intervals of %v", a, testInterval)
	}
	if peer.heartbeat != "live" || peer.connection != "up" || peer.hbSlot != "1" || peer.inCluster != "yes" || peer.mountSlot != "-" {
		t.Errorf("node 1: %+v", peer)
	}
	if a, _ := beatAge(t, peer.lastBeat); a < 0 || a > 5*testInterval {
		t.Errorf("node 1's heartbeat last changed %v ago, want within a few intervals of %v", a, testInterval)
	}
	if a, _ := beatAge(t, absent.lastBeat); absent.heartbeat != "dead" || a != -1 || absent.connection == "up" || absent.hbSlot != "2" ||
		!strings.HasPrefix(absent.inCluster, "no: not heartbeating") {
		t.Errorf("node 2 (no agent): %+v", absent)
	}

	// Node 1 dies: its last beat ages with the clock, beats are missed,
	// then it is dead, out of the view, and its connection is gone.
	if err := pc.agents[1].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-pc.agents[1].done
	killed := time.Now()
	time.Sleep(3 * testInterval)
	r1 := nodeRows(t, status(0))[pc.names[1]]
	t1 := time.Now()
	time.Sleep(4 * testInterval)
	r2 := nodeRows(t, status(0))[pc.names[1]]
	t2 := time.Now()
	a1, m1 := beatAge(t, r1.lastBeat)
	a2, m2 := beatAge(t, r2.lastBeat)
	if grew, want := a2-a1, t2.Sub(t1); grew < want-2*testInterval || grew > want+2*testInterval {
		t.Errorf("node 1's last beat aged %v (from %q to %q) in %v", grew, r1.lastBeat, r2.lastBeat, want)
	}
	if a2 < t2.Sub(killed)-2*testInterval {
		t.Errorf("node 1's last beat %q is younger than its death %v ago", r2.lastBeat, t2.Sub(killed))
	}
	if m1 == 0 || m2 <= m1 {
		t.Errorf("missed beats do not grow: %q then %q", r1.lastBeat, r2.lastBeat)
	}
	pc.waitView([]int{0}, nodes(0), 30*time.Second)
	r3 := nodeRows(t, status(0))[pc.names[1]]
	if r3.heartbeat != "dead" || r3.connection == "up" || r3.inCluster == "yes" || r3.hbSlot != "1" {
		t.Errorf("node 1 after its death: %+v", r3)
	}

	// No agent for node 2: o2cb's offline line and exit status 0, o2go's
	// reason and the configured nodes.
	none := filepath.Join(pc.dir, "none.sock")
	out, err := runCLI(append(common, "--node", pc.names[2], "--socket", none)...)
	if err != nil {
		t.Fatalf("offline status: %v (o2cb status exits 0 offline)\n%s", err, out)
	}
	checkGolden(t, "status_offline.golden", norm.apply(out))
	sameLines(t, "offline o2cb lines", o2goO2CBPart(t, out), o2cbFakeKernel(t, &js.Status, false))
	out, err = runCLI(append(common, "--node", pc.names[2], "--socket", none, "--json")...)
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.Online || js.O2CBOnline || !strings.Contains(js.Reason, "no agent is running") ||
		len(js.Status.Nodes) != 3 || js.Status.Cluster != "proc" {
		t.Errorf("offline status --json: %v %+v\n%s", err, js, out)
	}
}

// TestStatusMountSlotOfMountedNode mounts the volume on node 1 of two:
// node 0's status shows node 1 in the slot debugfs.ocfs2 -R slotmap lists
// it in, and no slot for node 0.
func TestStatusMountSlotOfMountedNode(t *testing.T) {
	mc := newMountCluster(t, 2)
	mc.startAll()
	mc.mount(1)
	want := -1
	for _, l := range strings.Split(realtools.Debugfs(t, mc.img, "slotmap"), "\n") {
		var slot, num int
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "%d %d", &slot, &num); err == nil && num == 1 {
			want = slot
		}
	}
	if want < 0 {
		t.Fatalf("debugfs.ocfs2 lists no slot of node 1:\n%s", realtools.Debugfs(t, mc.img, "slotmap"))
	}
	out, err := runCLI("cluster", "--config", mc.conf, "--sysconfig", mc.sysconf, "status", "--node", mc.names[0], "--socket", mc.agents[0].socket)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	rows := nodeRows(t, out)
	if got := rows[mc.names[1]].mountSlot; got != strconv.Itoa(want) {
		t.Errorf("node 1's MOUNT SLOT is %q, debugfs.ocfs2 says %d\n%s", got, want, out)
	}
	if got := rows[mc.names[0]].mountSlot; got != "-" {
		t.Errorf("node 0 mounted nothing, yet its MOUNT SLOT is %q\n%s", got, out)
	}
}
