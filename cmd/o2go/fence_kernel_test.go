package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"o2go/internal/cluster/config"
	"o2go/internal/cluster/heartbeat"
	"o2go/internal/node"
	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// Timing of the agent in the guest: the guest is emulated (TCG) on a
// shared host, so the interval is longer than the host tests' 200 ms; the
// self-fence bound is then 4.5 s.
var fenceVMTimeouts = config.Timeouts{HeartbeatThreshold: 11, HeartbeatInterval: 500 * time.Millisecond,
	IdleTimeout: 5 * time.Second, KeepaliveDelay: time.Second, ReconnectDelay: 2 * time.Second,
	KillAckTimeout: 1500 * time.Millisecond}

// fenceVMScript runs in the guest: an agent heartbeating on the guest's
// disk (/dev/vda, the shared disk) joins its one-node cluster; the script
// stops it (SIGSTOP: a hung agent, OPROCD's case), copies the whole disk to
// the share as it stands while nothing can write it, waits past the
// self-fence bound and resumes it. The agent must fence with its
// O2GO_FENCE_METHOD: latch, write its acknowledgement, then reset or crash
// the machine. If the agent exits instead, or the machine is still up a
// minute later, the script fails. The marker line goes to the console (level 2) so that the
// host can see that the reset or the panic came after the resume.
const fenceVMScript = `set -eu
S=$KERNELVM_SHARE
mkdir /tmp/o2
cp "$S/o2go" "$S/cluster.conf" "$S/o2cb" "$S/secret" /tmp/o2/
chmod 600 /tmp/o2/secret
cd /tmp/o2
ip link set lo up
./o2go agent --config cluster.conf --sysconfig o2cb --node fencevm --heartbeat /dev/vda --socket /tmp/o2/agent.sock &
agent=$!
i=0
until ./o2go cluster --config cluster.conf --sysconfig o2cb status --node fencevm --socket /tmp/o2/agent.sock --json 2>/dev/null |
	tr -d ' \n' | grep -q '"view_members":\[0\]'; do
	kill -0 $agent 2>/dev/null || { echo "the agent exited before the test began" >&2; exit 1; }
	i=$((i + 1))
	[ $i -le 240 ] || { echo "the agent did not join its own view within 2 minutes" >&2; exit 1; }
	usleep 500000
done
echo joined
kill -STOP $agent
sleep 1 # a direct write under way when the agent stopped completes in the kernel
dd if=/dev/vda of="$S/before.img" bs=1M iflag=direct status=none
echo copied
sleep "$STOP_SECS"
echo "<2>fence-test: resuming the stopped agent" >/dev/kmsg
kill -CONT $agent
(sleep 60 && kill -KILL $agent) 2>/dev/null &
rc=0
wait $agent || rc=$?
echo "the machine is still up: the agent exited with status $rc (137: killed, still running 60 s after the resume)" >&2
exit 1
`

// TestKernelFenceResetAndPanic runs the agent, statically built, in a
// qemu guest with the real kernel, fences it through the real path (the
// hang watchdog or the lease, the latch, the acknowledgement) with the reset
// and then the panic method, and checks from the host that the guest went
// down the way the method says (qemu, run with -no-reboot, exits; the
// console shows the reset or the panic after the agent was resumed; the
// script never finished), and that after the latch the only write to the
// shared disk was the acknowledgement: the whole disk, copied while the
// agent was stopped, differs from the disk after the fence in the node's
// kill block only, which holds exactly that acknowledgement.
func TestKernelFenceResetAndPanic(t *testing.T) {
	testutil.Long(t)
	kernelvm.Require(t)
	realtools.Require(t)
	bin := staticO2go(t)
	for _, m := range []struct {
		method config.FenceMethod
		last   string // on the console after the resume
	}{
		{config.FenceReset, "reboot: Restarting system"},
		{config.FencePanic, "Kernel panic - not syncing: sysrq triggered crash"},
	} {
		t.Run(string(m.method), func(t *testing.T) { fenceInVM(t, bin, m.method, m.last) })
	}
}

// staticO2go builds cmd/o2go without cgo, to run in the guest (its
// initramfs has no C library for it).
func staticO2go(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "o2go")
	cmd := exec.Command("go", "build", "-o", p, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	return p
}

func fenceInVM(t *testing.T, bin string, method config.FenceMethod, last string) {
	share := t.TempDir()
	img := realtools.MkfsImage(t, 24<<20, "-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M")
	info, err := node.ProbeVolume(img)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Geometry.HasKill {
		t.Fatalf("%s has no kill area: %+v", img, info.Geometry)
	}
	writeFenceVMConfig(t, share, bin, method)
	tm := fenceVMTimeouts
	stop := (tm.MaxWriteStall() + time.Second + time.Second - 1) / time.Second // whole seconds past the bound
	res, err := kernelvm.Run(t.Context(), kernelvm.Options{Image: img, Share: share, NoMount: true, Timeout: 4 * time.Minute,
		Env: map[string]string{"STOP_SECS": fmt.Sprint(int(stop))}}, fenceVMScript)
	if res == nil {
		t.Fatal(err)
	}
	agentLog := string(res.Stderr)
	t.Logf("guest: wall %v; script stdout %q", res.Timings.Wall.Round(time.Millisecond), res.Stdout)
	dump := func() string {
		return fmt.Sprintf("--- script stdout ---\n%s\n--- agent log (script stderr) ---\n%s\n--- console ---\n%s", res.Stdout, agentLog, res.Console)
	}

	// The guest went down in the middle of the script: qemu exited before
	// /init finished, the script never ended.
	if err == nil {
		t.Fatalf("the guest ran the script to its end: the agent did not take the machine down (script exit %d)\n%s", res.ScriptExit, dump())
	}
	if !errors.Is(err, kernelvm.ErrVM) || res.ScriptExit != -1 || res.Timings.Script != 0 {
		t.Fatalf("want the VM to stop during the script (ErrVM, no script exit): %v (script exit %d)\n%s", err, res.ScriptExit, dump())
	}
	if !strings.Contains(string(res.Stdout), "copied\n") {
		t.Fatalf("the guest went down before the disk was copied: the agent fenced before the test stopped it\n%s", dump())
	}
	// ...by the agent's fence, after the resume: the console has the
	// marker, then the reset or the panic.
	const marker = "fence-test: resuming the stopped agent"
	i := strings.Index(res.Console, marker)
	if i < 0 {
		t.Fatalf("the console does not show the resume marker\n%s", dump())
	}
	if !strings.Contains(res.Console[i:], last) {
		t.Fatalf("the console does not show %q after the resume\n%s", last, dump())
	}
	if method == config.FencePanic && !strings.Contains(res.Console[i:], "Comm: o2go") {
		t.Fatalf("the panic did not come from the agent's process\n%s", dump())
	}
	if !strings.Contains(agentLog, fmt.Sprintf("*** fencing this node (%s):", method)) ||
		!strings.Contains(agentLog, fmt.Sprintf("FENCING (%s):", method)) {
		t.Fatalf("the agent's log has no fence by %s\n%s", method, dump())
	}
	if strings.Contains(agentLog, "exiting instead") {
		t.Fatalf("the %s failed and the agent exited instead\n%s", method, dump())
	}

	// After the latch: only the acknowledgement reached the disk.
	before, err := os.ReadFile(filepath.Join(share, "before.img"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	g := info.Geometry
	ss := int64(g.SectorSize)
	if len(before) != len(after) {
		t.Fatalf("the copy of the disk has %d bytes, the image %d", len(before), len(after))
	}
	killSector := g.KillOffset(0) / ss
	for s := int64(0); s*ss < int64(len(after)); s++ {
		if s != killSector && !bytes.Equal(before[s*ss:(s+1)*ss], after[s*ss:(s+1)*ss]) {
			t.Errorf("sector %d (byte %d) changed after the agent was stopped; only its kill block (sector %d) may", s, s*ss, killSector)
		}
	}
	slot := g.SlotOffset(0)
	kill := g.KillOffset(0)
	checkOnlyTheAck(t, 0, before[slot:slot+ss], before[kill:kill+ss], after[slot:slot+ss], after[kill:kill+ss],
		heartbeat.FenceHang, heartbeat.FenceWriteStall)
}

// writeFenceVMConfig puts the agent and its configuration in the share:
// one node, fencevm (number 0) at 127.0.0.1, and the sysconfig with
// fenceVMTimeouts, the fence method and the secret's path in the guest.
func writeFenceVMConfig(t *testing.T, share, bin string, method config.FenceMethod) {
	t.Helper()
	c := &config.ClusterConf{}
	cl, err := c.AddCluster("fencevm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AddNode(config.NodeSpec{Name: "fencevm", IP: "127.0.0.1", Port: 7777, Number: 0}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(filepath.Join(share, "cluster.conf")); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, v := range fenceVMTimeouts.Vars() {
		fmt.Fprintf(&sb, "%s\n", v)
	}
	fmt.Fprintf(&sb, "O2GO_FENCE_METHOD=%s\nO2GO_CLUSTER_SECRET_FILE=/tmp/o2/secret\n", method)
	files := map[string]string{"o2cb": sb.String(), "secret": "a test cluster secret, 32 bytes.\n"}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(share, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(share, "o2go"), b, 0o755); err != nil {
		t.Fatal(err)
	}
}
