package agent

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"o2go/internal/ha"
	"o2go/internal/testutil"
)

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func do(t *testing.T, r *Runner, kind ha.OpKind, res ha.Resource) ha.OpResult {
	t.Helper()
	return r.Do(context.Background(), ha.Op{ID: 1, Kind: kind, Resource: res, Timeout: 10 * time.Second})
}

func TestAppScripts(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	res := ha.Resource{Name: "app", Type: ha.TypeApp,
		StartScript:   script(t, dir, "start", "touch "+state),
		StopScript:    script(t, dir, "stop", "rm -f "+state),
		MonitorScript: script(t, dir, "mon", "[ -e "+state+" ] && exit 0; [ -e "+dir+"/broken ] && { echo kaputt; exit 1; }; exit 7")}
	r := NewRunner("n1")
	steps := []struct {
		kind ha.OpKind
		want ha.OpStatus
	}{{ha.OpMonitor, ha.OpNotRunning}, {ha.OpStart, ha.OpOK}, {ha.OpMonitor, ha.OpOK}, {ha.OpStop, ha.OpOK}, {ha.OpMonitor, ha.OpNotRunning}}
	for i, s := range steps {
		if got := do(t, r, s.kind, res); got.Status != s.want {
			t.Fatalf("step %d: %v: %v %s, want %v", i, s.kind, got.Status, got.Detail, s.want)
		}
	}
	os.WriteFile(filepath.Join(dir, "broken"), nil, 0o644)
	got := do(t, r, ha.OpMonitor, res)
	if got.Status != ha.OpFailed || !strings.Contains(got.Detail, "exited 1 (generic error): kaputt") {
		t.Fatalf("broken monitor: %v %q", got.Status, got.Detail)
	}
	res.StartScript = script(t, dir, "slow", "sleep 10")
	got = r.Do(context.Background(), ha.Op{Kind: ha.OpStart, Resource: res, Timeout: 300 * time.Millisecond})
	if got.Status != ha.OpFailed || !strings.Contains(got.Detail, "timed out") {
		t.Fatalf("slow start: %v %q", got.Status, got.Detail)
	}
}

// An OCF resource agent works unchanged: its actions, environment and exit
// codes.
func TestOCFAgent(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "resource.d", "test")
	os.MkdirAll(dir, 0o755)
	// A Dummy-like agent written to the OCF API, checking what it gets.
	script(t, dir, "Dummy", `
[ -n "$OCF_ROOT" ] || exit 5
[ -n "$OCF_RESKEY_state" ] || exit 6
[ "$OCF_RESOURCE_INSTANCE" = dummy1 ] || exit 2
case "$1" in
start) touch "$OCF_RESKEY_state"; exit 0;;
stop) rm -f "$OCF_RESKEY_state"; exit 0;;
monitor) [ -e "$OCF_RESKEY_state" ] && exit 0; exit 7;;
meta-data) echo '<resource-agent name="Dummy"/>'; exit 0;;
*) exit 3;;
esac`)
	r := NewRunner("n1")
	r.OCFRoot = root
	res := ha.Resource{Name: "dummy1", Type: ha.TypeOCF, Agent: "test:Dummy", Params: map[string]string{"state": filepath.Join(root, "st")}}
	for i, s := range []struct {
		kind ha.OpKind
		want ha.OpStatus
	}{{ha.OpMonitor, ha.OpNotRunning}, {ha.OpStart, ha.OpOK}, {ha.OpMonitor, ha.OpOK}, {ha.OpStop, ha.OpOK}, {ha.OpMonitor, ha.OpNotRunning}} {
		if got := do(t, r, s.kind, res); got.Status != s.want {
			t.Fatalf("step %d: %v: %v %s, want %v", i, s.kind, got.Status, got.Detail, s.want)
		}
	}
	md, err := r.OCFMetaData(context.Background(), &res)
	if err != nil || !strings.Contains(md, "resource-agent") {
		t.Fatalf("meta-data: %q %v", md, err)
	}
	delete(res.Params, "state")
	if got := do(t, r, ha.OpStart, res); got.Status != ha.OpFailed || !strings.Contains(got.Detail, "not configured") {
		t.Fatalf("missing parameter: %v %q", got.Status, got.Detail)
	}
}

func TestProcessSupervised(t *testing.T) {
	r := NewRunner("n1")
	res := ha.Resource{Name: "sleeper", Type: ha.TypeProcess, Command: []string{"/bin/sleep", "100"}}
	if got := do(t, r, ha.OpStart, res); got.Status != ha.OpOK {
		t.Fatal(got)
	}
	if got := do(t, r, ha.OpMonitor, res); got.Status != ha.OpOK {
		t.Fatal(got)
	}
	pid := r.Pid("sleeper")
	syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond)
	if got := do(t, r, ha.OpMonitor, res); got.Status != ha.OpNotRunning {
		t.Fatalf("after kill -9: %v", got)
	}
	if got := do(t, r, ha.OpStart, res); got.Status != ha.OpOK {
		t.Fatal(got)
	}
	if got := do(t, r, ha.OpStop, res); got.Status != ha.OpOK {
		t.Fatal(got)
	}
	if got := do(t, r, ha.OpMonitor, res); got.Status != ha.OpNotRunning {
		t.Fatal(got)
	}
	bad := ha.Resource{Name: "bad", Type: ha.TypeProcess, Command: []string{"/bin/sh", "-c", "echo no config; exit 3"}}
	if got := do(t, r, ha.OpStart, bad); got.Status != ha.OpFailed || !strings.Contains(got.Detail, "no config") {
		t.Fatalf("a command that dies at once: %v", got)
	}
}

func TestEventScript(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := script(t, dir, "pre", `echo "$1 $2 $O2GO_HA_EVENT $O2GO_HA_PHASE" > `+out+`; exit 3`)
	r := NewRunner("n1")
	res := r.RunScript(context.Background(), ha.ScriptRun{ID: 9, Event: "rg_online", Phase: "pre", Path: p,
		Args: []string{"rg_online", "web"}, Env: []string{"O2GO_HA_EVENT=rg_online", "O2GO_HA_PHASE=pre"}, Timeout: 5 * time.Second})
	if res.ID != 9 || res.Exit != 3 {
		t.Fatalf("%+v", res)
	}
	b, _ := os.ReadFile(out)
	if strings.TrimSpace(string(b)) != "rg_online web rg_online pre" {
		t.Fatalf("script saw %q", b)
	}
	res = r.RunScript(context.Background(), ha.ScriptRun{Path: script(t, dir, "hang", "sleep 30"), Timeout: 200 * time.Millisecond})
	if res.Exit != -1 {
		t.Fatalf("a hung script: %+v", res)
	}
}

func TestCheckFindsMissingScripts(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	cfg := &ha.Config{
		Events: []ha.EventScripts{{Event: ha.EvNodeUp, Pre: filepath.Join(dir, "missing")}},
		Groups: []ha.Group{{Name: "g", Nodes: []string{"n1"}, Resources: []ha.Resource{
			{Name: "a", Type: ha.TypeApp, StartScript: noexec, StopScript: "/bin/true"}}}},
	}
	p := NewRunner("n1").Check(cfg, nil)
	if len(p) != 2 || !strings.Contains(p[0], "does not exist here") || !strings.Contains(p[1], "not executable: chmod +x") {
		t.Fatalf("%q", p)
	}
	if p := NewRunner("n2").Check(cfg, nil); len(p) != 1 {
		t.Fatalf("a node outside the group checks only the event scripts: %q", p)
	}
}

// inNetns runs the calling test again in a new network namespace (as root).
func inNetns(t *testing.T) bool {
	if os.Getenv("O2GO_HA_AGENT_NETNS") == "1" {
		return true
	}
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "unshare")
	cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), "O2GO_HA_AGENT_NETNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in a network namespace: %v\n%s", err, out)
	}
	return false
}

// Service addresses: added to the network's first healthy interface,
// announced, checked, moved to the standby when the active one fails, and
// removed; verify sees an address used outside HA.
func TestServiceAddressInNetns(t *testing.T) {
	if !inNetns(t) {
		return
	}
	for _, name := range []string{"ha0", "ha1"} {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{name, name + "p"} {
			l, _ := netlink.LinkByName(n)
			if err := netlink.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
	}
	arps := listenARP(t, "ha0p")
	cfg := &ha.Config{Networks: []ha.Network{{Name: "pub", Interfaces: []string{"ha0", "ha1"}}},
		Groups: []ha.Group{{Name: "g", Nodes: []string{"n1"}, Resources: []ha.Resource{{Name: "vip", Type: ha.TypeIP, Address: "192.0.2.10/24", Network: "pub"}}}}}
	r := NewRunner("n1")
	r.SetConfig(cfg)
	res := cfg.Groups[0].Resources[0]
	if got := do(t, r, ha.OpMonitor, res); got.Status != ha.OpNotRunning {
		t.Fatal(got)
	}
	if got := do(t, r, ha.OpStart, res); got.Status != ha.OpOK {
		t.Fatal(got)
	}
	on := func() string {
		l, err := linkWithAddr(netip.MustParseAddr("192.0.2.10"))
		if err != nil || l == nil {
			return ""
		}
		return l.Attrs().Name
	}
	if on() != "ha0" {
		t.Fatalf("address on %q", on())
	}
	if got := <-arps; got != "192.0.2.10" {
		t.Fatalf("gratuitous ARP for %q", got)
	}
	if got := do(t, r, ha.OpMonitor, res); got.Status != ha.OpOK {
		t.Fatal(got)
	}
	if p := r.Check(cfg, []string{"g"}); len(p) != 0 {
		t.Fatalf("active group: %q", p)
	}
	if p := r.Check(cfg, nil); len(p) != 1 || !strings.Contains(p[0], "already configured on ha0") {
		t.Fatalf("address used outside HA: %q", p)
	}
	l0, _ := netlink.LinkByName("ha0")
	netlink.LinkSetDown(l0)
	if got := do(t, r, ha.OpMonitor, res); got.Status != ha.OpFailed {
		t.Fatalf("on a down interface: %v", got)
	}
	if st := r.Networks()["pub"]; !st.Up || st.Active != "ha1" {
		t.Fatalf("network state %+v", st)
	}
	// swap_adapter: the core restarts the address in place.
	do(t, r, ha.OpStop, res)
	if got := do(t, r, ha.OpStart, res); got.Status != ha.OpOK || on() != "ha1" {
		t.Fatalf("swap: %v on %q", got, on())
	}
	if got := do(t, r, ha.OpStop, res); got.Status != ha.OpOK || on() != "" {
		t.Fatalf("stop: %v on %q", got, on())
	}
	l1, _ := netlink.LinkByName("ha1")
	netlink.LinkSetDown(l1)
	if st := r.Networks()["pub"]; st.Up {
		t.Fatalf("network state %+v with every interface down", st)
	}
	if got := do(t, r, ha.OpStart, res); got.Status != ha.OpFailed || !strings.Contains(got.Detail, "no healthy interface") {
		t.Fatalf("no interface: %v", got)
	}
}

func TestMountTmpfs(t *testing.T) {
	testutil.RequireRoot(t)
	mp := filepath.Join(t.TempDir(), "mnt")
	res := ha.Resource{Name: "fs", Type: ha.TypeFS, Device: "tmpfs", Mountpoint: mp, FSType: "tmpfs", NoFsck: true, Options: "size=1m"}
	r := NewRunner("n1")
	for i, s := range []struct {
		kind ha.OpKind
		want ha.OpStatus
	}{{ha.OpMonitor, ha.OpNotRunning}, {ha.OpStart, ha.OpOK}, {ha.OpMonitor, ha.OpOK}, {ha.OpStart, ha.OpOK}, {ha.OpStop, ha.OpOK}, {ha.OpMonitor, ha.OpNotRunning}} {
		if got := do(t, r, s.kind, res); got.Status != s.want {
			t.Fatalf("step %d: %v: %v %s, want %v", i, s.kind, got.Status, got.Detail, s.want)
		}
	}
}

// listenARP reports the sender address of the first gratuitous ARP seen on
// interface name ("" if none within 2 s).
func listenARP(t *testing.T, name string) <-chan string {
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: l.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	ch := make(chan string, 1)
	go func() {
		defer unix.Close(fd)
		buf := make([]byte, 128)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				ch <- ""
				return
			}
			if n >= 28 && string(buf[14:18]) == string(buf[24:28]) {
				ch <- netip.AddrFrom4([4]byte(buf[14:18])).String()
				return
			}
		}
	}()
	return ch
}

// TestMountFsckFirst: a local file system is checked (fsck -p) before it is
// mounted: a volume left not clean is repaired, then mounted; one fsck
// cannot repair is not mounted, and the failure says what to do.
func TestMountFsckFirst(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "mkfs.ext4", "debugfs", "dumpe2fs", "fsck", "losetup")
	dir := t.TempDir()
	img := filepath.Join(dir, "ext4.img")
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	sh("mkfs.ext4", "-q", "-F", img)
	sh("debugfs", "-w", "-R", "ssv state 0", img) // as after a crash
	state := func() string {
		out := sh("dumpe2fs", "-h", img)
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "Filesystem state:") {
				return strings.TrimSpace(strings.TrimPrefix(l, "Filesystem state:"))
			}
		}
		return ""
	}
	if s := state(); s != "not clean" {
		t.Fatalf("state %q before the start", s)
	}
	res := ha.Resource{Name: "data", Type: ha.TypeFS, Device: img, Mountpoint: filepath.Join(dir, "mnt"), FSType: "ext4", Options: "loop"}
	r := NewRunner("n1")
	if got := do(t, r, ha.OpStart, res); got.Status != ha.OpOK {
		t.Fatalf("start: %v %s", got.Status, got.Detail)
	}
	if got := do(t, r, ha.OpMonitor, res); got.Status != ha.OpOK {
		t.Fatalf("monitor: %v %s", got.Status, got.Detail)
	}
	if got := do(t, r, ha.OpStop, res); got.Status != ha.OpOK {
		t.Fatalf("stop: %v %s", got.Status, got.Detail)
	}
	if s := state(); s != "clean" {
		t.Fatalf("fsck did not run before the mount: state %q", s)
	}
	// Wreck the superblock: fsck -p cannot repair it, nothing is mounted.
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 1024), 1024); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got := do(t, r, ha.OpStart, res)
	if got.Status != ha.OpFailed || !strings.Contains(got.Detail, "fsck -p") || !strings.Contains(got.Detail, "repair it by hand") {
		t.Fatalf("start on a wrecked volume: %v %s", got.Status, got.Detail)
	}
	if m := do(t, r, ha.OpMonitor, res); m.Status != ha.OpNotRunning {
		t.Fatalf("a wrecked volume was mounted: %v %s", m.Status, m.Detail)
	}
}
