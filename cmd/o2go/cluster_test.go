package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"o2go/internal/cluster/config"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// runCluster runs `o2go cluster --config conf args...` in-process and
// returns stdout and the error.
func runCluster(t *testing.T, conf string, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"cluster", "--config", conf}, args...))
	err := root.Execute()
	return out.String(), err
}

func mustRunCluster(t *testing.T, conf string, args ...string) string {
	t.Helper()
	out, err := runCluster(t, conf, args...)
	if err != nil {
		t.Fatalf("o2go cluster %s: %v", strings.Join(args, " "), err)
	}
	return out
}

const (
	clusterTestRegion  = "77D95EF51C0149D2823674FCC162CF8B"
	clusterTestRegion2 = "DCDA2845177F4D59A0F2DCD8DE507CC3"
)

// TestClusterCommandsWriteO2CBsFile replays the o2cb(8) example and expects
// the file o2cb 1.8.7 writes for it (the config package's golden file,
// which its tests check against the real o2cb).
func TestClusterCommandsWriteO2CBsFile(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "etc", "ocfs2", "cluster.conf")
	mustRunCluster(t, conf, "add-cluster", "webcluster")
	mustRunCluster(t, conf, "add-node", "webcluster", "node7", "--ip", "192.168.0.107", "--number", "7")
	mustRunCluster(t, conf, "add-node", "webcluster", "node6", "--ip", "192.168.0.106")
	mustRunCluster(t, conf, "add-node", "webcluster", "node1", "--ip", "192.168.0.101", "--port", "7778")
	mustRunCluster(t, conf, "add-heartbeat", "webcluster", strings.ToLower(clusterTestRegion))
	mustRunCluster(t, conf, "heartbeat-mode", "webcluster", "global")
	got, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../internal/cluster/config/testdata/o2cb-webcluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("o2go wrote:\n%s\no2cb writes:\n%s", got, want)
	}
	if st, _ := os.Stat(conf); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

func TestClusterListCommands(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "cluster.conf")
	// Nothing configured yet: o2cb lists nothing and succeeds.
	if out := mustRunCluster(t, conf, "list-clusters"); out != "" {
		t.Fatalf("list-clusters on a missing file: %q", out)
	}
	if out := mustRunCluster(t, conf, "list-clusters", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("list-clusters --json on a missing file: %q", out)
	}
	if _, err := os.Stat(conf); err == nil {
		t.Fatal("listing created the file")
	}
	mustRunCluster(t, conf, "add-cluster", "a")
	mustRunCluster(t, conf, "add-cluster", "b")
	mustRunCluster(t, conf, "add-node", "a", "n1", "--ip", "10.0.0.1", "--number", "3")
	mustRunCluster(t, conf, "add-heartbeat", "a", clusterTestRegion)

	if out := mustRunCluster(t, conf, "list-clusters"); out != "a\nb\n" {
		t.Errorf("list-clusters: %q", out)
	}
	want := map[string]string{
		"list-cluster":    "heartbeat: " + clusterTestRegion + " a\nnode: 3 n1 10.0.0.1:7777 a\ncluster: 1 local a\n",
		"list-nodes":      "node: 3 n1 10.0.0.1:7777 a\n",
		"list-heartbeats": "heartbeat: " + clusterTestRegion + " a\n",
	}
	for cmd, w := range want {
		if out := mustRunCluster(t, conf, cmd, "a", "--oneline"); out != w {
			t.Errorf("%s --oneline:\n%q\nwant\n%q", cmd, out, w)
		}
	}
	if out := mustRunCluster(t, conf, "list-nodes", "a"); out != "node:\n\tnumber = 3\n\tname = n1\n\tip_address = 10.0.0.1\n\tip_port = 7777\n\tcluster = a\n\n" {
		t.Errorf("list-nodes: %q", out)
	}

	var cl struct {
		Name       string `json:"name"`
		Mode       string `json:"heartbeat_mode"`
		Count      int    `json:"node_count"`
		Nodes      []map[string]any
		Heartbeats []map[string]string
	}
	if err := json.Unmarshal([]byte(mustRunCluster(t, conf, "list-cluster", "a", "--json")), &cl); err != nil {
		t.Fatal(err)
	}
	if cl.Name != "a" || cl.Mode != "local" || cl.Count != 1 || len(cl.Nodes) != 1 || cl.Nodes[0]["ip_address"] != "10.0.0.1" ||
		cl.Nodes[0]["ip_port"] != float64(7777) || cl.Heartbeats[0]["region"] != clusterTestRegion {
		t.Errorf("list-cluster --json: %+v", cl)
	}
	if out := mustRunCluster(t, conf, "list-nodes", "b", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("list-nodes --json of an empty cluster: %q", out)
	}
	if out := mustRunCluster(t, conf, "list-heartbeats", "b", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("list-heartbeats --json of an empty cluster: %q", out)
	}
	var all []map[string]any
	if err := json.Unmarshal([]byte(mustRunCluster(t, conf, "list-clusters", "--json")), &all); err != nil || len(all) != 2 {
		t.Errorf("list-clusters --json: %v %v", all, err)
	}
	if _, err := runCluster(t, conf, "list-cluster", "a", "--json", "--oneline"); err == nil {
		t.Error("--json with --oneline accepted")
	}

}

// TestClusterHeartbeatByDevice: add-heartbeat and remove-heartbeat take the
// volume itself, as in o2cb(8)'s example (o2cb add-heartbeat mycluster
// /dev/sda1), and read its UUID: an image file, and a block device, where
// the file must be what o2cb writes for the same device.
func TestClusterHeartbeatByDevice(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 16<<20, "-b", "4096", "-N", "2")
	uuid := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(realtools.TunefsQuery(t, img, "%U")), "-", ""))
	conf := filepath.Join(t.TempDir(), "cluster.conf")
	mustRunCluster(t, conf, "add-cluster", "a")
	if out := mustRunCluster(t, conf, "-v", "add-heartbeat", "a", img); out != "Added heartbeat region '"+uuid+"' to cluster 'a'\n" {
		t.Fatalf("add-heartbeat by image printed %q (tunefs.ocfs2 reads UUID %s)", out, uuid)
	}
	if _, err := runCluster(t, conf, "add-heartbeat", "a", uuid); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("the image's UUID again: %v", err)
	}
	mustRunCluster(t, conf, "remove-heartbeat", "a", img)
	if out := mustRunCluster(t, conf, "list-heartbeats", "a"); out != "" {
		t.Fatalf("after remove-heartbeat by image: %q", out)
	}

	testutil.RequireRoot(t)
	testutil.RequireTools(t, "losetup", "o2cb")
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", loop).Run() })
	theirs := filepath.Join(t.TempDir(), "o2cb.conf")
	for _, args := range [][]string{{"add-cluster", "a"}, {"add-heartbeat", "a", loop}} {
		if out, err := exec.Command("o2cb", append([]string{"--config-file=" + theirs}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("o2cb %v: %v\n%s", args, err, out)
		}
	}
	mustRunCluster(t, conf, "add-heartbeat", "a", loop)
	ours, _ := os.ReadFile(conf)
	want, _ := os.ReadFile(theirs)
	if !bytes.Equal(ours, want) {
		t.Fatalf("add-heartbeat %s wrote\n%s\no2cb writes\n%s", loop, ours, want)
	}
	mustRunCluster(t, conf, "remove-heartbeat", "a", loop)
	if out := mustRunCluster(t, conf, "list-heartbeats", "a"); out != "" {
		t.Fatalf("after remove-heartbeat by device: %q", out)
	}
}

// TestClusterListCommandsMatchO2CB has o2cb list a file o2go wrote.
func TestClusterListCommandsMatchO2CB(t *testing.T) {
	testutil.RequireTools(t, "o2cb")
	conf := filepath.Join(t.TempDir(), "cluster.conf")
	mustRunCluster(t, conf, "add-cluster", "a")
	mustRunCluster(t, conf, "add-cluster", "b")
	mustRunCluster(t, conf, "add-node", "a", "n1", "--ip", "10.0.0.1", "--number", "3")
	mustRunCluster(t, conf, "add-node", "a", "n2", "--ip", "10.0.0.2", "--port", "7100")
	mustRunCluster(t, conf, "add-heartbeat", "a", clusterTestRegion)
	mustRunCluster(t, conf, "add-heartbeat", "a", clusterTestRegion2)
	for _, args := range [][]string{
		{"list-clusters"}, {"list-cluster", "a"}, {"list-cluster", "--oneline", "b"},
		{"list-nodes", "--oneline", "a"}, {"list-nodes", "a"}, {"list-heartbeats", "a"}, {"list-heartbeats", "--oneline", "a"},
	} {
		theirs, err := exec.Command("o2cb", append([]string{"--config-file=" + conf}, args...)...).Output()
		if err != nil {
			t.Fatalf("o2cb %v: %v", args, err)
		}
		if ours := mustRunCluster(t, conf, args...); ours != string(theirs) {
			t.Errorf("%v: o2go printed\n%q\no2cb prints\n%q", args, ours, theirs)
		}
	}
}

func TestClusterCommandErrorsLeaveFileAlone(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "cluster.conf")
	mustRunCluster(t, conf, "add-cluster", "a")
	mustRunCluster(t, conf, "add-node", "a", "n1", "--ip", "10.0.0.1")
	before, _ := os.ReadFile(conf)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"add-cluster", "a"}, "cluster 'a' already exists"},
		{[]string{"add-cluster", "my-cluster"}, "only letters and digits"},
		{[]string{"remove-cluster", "z"}, "unknown cluster 'z' (configured: a)"},
		{[]string{"add-node", "z", "n", "--ip", "10.0.0.2"}, "unknown cluster 'z'"},
		{[]string{"add-node", "a", "n1", "--ip", "10.0.0.2"}, "node 'n1' already exists"},
		{[]string{"add-node", "a", "n2", "--ip", "10.0.0.2", "--number", "0"}, "node number 0 is in use by node 'n1'"},
		{[]string{"add-node", "a", "n2", "--ip", "10.0.0.2", "--number", "300"}, "out of range 0..254"},
		{[]string{"add-node", "a", "n2", "--ip", "10.0.0.2", "--port", "0"}, "port 0 is out of range 1..65534"},
		{[]string{"add-node", "a", "n2", "--ip", "10.0.0.2", "--port", "65535"}, "port 65535 is out of range"},
		{[]string{"add-node", "a", "n2", "--ip", "10.0.0.1"}, "address 10.0.0.1:7777 is in use by node 'n1'"},
		{[]string{"add-node", "a", "n2", "--ip", "10.0.0.256"}, "bad IP address"},
		{[]string{"add-node", "a", "n2", "--ip", "10.0.0.2", "--number", "x"}, "invalid argument"},
		{[]string{"add-node", "a"}, "accepts 2 arg(s)"},
		{[]string{"remove-node", "a", "zz"}, "unknown node 'zz' in cluster 'a'"},
		{[]string{"add-heartbeat", "a", filepath.Join(filepath.Dir(conf), "sdz9")}, "reading the volume UUID of " + filepath.Join(filepath.Dir(conf), "sdz9")},
		{[]string{"add-heartbeat", "a", conf}, "no OCFS2 superblock"},
		{[]string{"add-heartbeat", "a", filepath.Dir(conf)}, "neither a device nor an image file"},
		{[]string{"remove-heartbeat", "a", conf}, "no OCFS2 superblock"},
		{[]string{"add-heartbeat", "a", "1234"}, "is not a volume UUID"},
		{[]string{"remove-heartbeat", "a", clusterTestRegion}, "unknown heartbeat region"},
		{[]string{"heartbeat-mode", "a", "disk"}, "neither 'local' nor 'global'"},
		{[]string{"list-cluster", "z"}, "unknown cluster 'z'"},
	} {
		_, err := runCluster(t, conf, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
		if after, _ := os.ReadFile(conf); !bytes.Equal(after, before) {
			t.Fatalf("%v changed the file:\n%s", tc.args, after)
		}
	}

	// A malformed file is reported with its line and never rewritten.
	bad := []byte("cluster:\n\tname = a\n\tnode_count = 0\n\theartbeat_mod = global\n")
	os.WriteFile(conf, bad, 0o644)
	_, err := runCluster(t, conf, "add-node", "a", "n", "--ip", "10.0.0.9")
	if err == nil || !strings.Contains(err.Error(), conf+":4: unknown attribute 'heartbeat_mod'") {
		t.Fatalf("malformed file: %v", err)
	}
	if after, _ := os.ReadFile(conf); !bytes.Equal(after, bad) {
		t.Fatal("a malformed file was rewritten")
	}
}

func TestClusterCommandsEdit(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "cluster.conf")
	// o2cb's spelling of --config works too; -v reports like o2cb -v.
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"cluster", "--config-file", conf, "-v", "add-cluster", "c"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Added cluster 'c'\n" {
		t.Errorf("-v printed %q", out.String())
	}
	if got := mustRunCluster(t, conf, "-v", "add-node", "c", "x", "--ip", "10.0.0.1", "--port", "7000"); got != "Added node 'x' in cluster 'c' having ip '10.0.0.1', port '7000' and number '0'\n" {
		t.Errorf("-v add-node printed %q", got)
	}
	if got := mustRunCluster(t, conf, "add-node", "c", "y", "--ip", "10.0.0.2"); got != "" {
		t.Errorf("add-node without -v printed %q (o2cb is silent)", got)
	}
	mustRunCluster(t, conf, "add-node", "c", "localhost") // address from the resolver
	mustRunCluster(t, conf, "add-heartbeat", "c", "dcda2845-177f-4d59-a0f2-dcd8de507cc3")
	mustRunCluster(t, conf, "heartbeat-mode", "c", "GLOBAL")
	c, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Cluster("c")
	if cl == nil || len(cl.Nodes) != 3 || cl.Nodes[2].Addr.String() != "127.0.0.1" || cl.Nodes[2].Number != 2 ||
		cl.HeartbeatMode != config.HeartbeatGlobal || len(cl.Heartbeats) != 1 || cl.Heartbeats[0].Region != clusterTestRegion2 {
		t.Fatalf("after edits: %+v", cl)
	}
	mustRunCluster(t, conf, "remove-heartbeat", "c", clusterTestRegion2)
	mustRunCluster(t, conf, "remove-node", "c", "x")
	mustRunCluster(t, conf, "remove-cluster", "c")
	if data, _ := os.ReadFile(conf); len(data) != 0 {
		t.Fatalf("after removing the last cluster the file holds %q, want empty like o2cb", data)
	}
}

func TestClusterSettingsCommand(t *testing.T) {
	sys := filepath.Join(t.TempDir(), "o2cb")
	os.WriteFile(sys, []byte("O2CB_HEARTBEAT_THRESHOLD=61\nO2GO_FENCE_METHOD=exit\n"), 0o644)
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"cluster", "--sysconfig", sys, "settings"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# " + sys + "\n", "O2CB_HEARTBEAT_THRESHOLD=61\n", "O2CB_IDLE_TIMEOUT_MS=30000\n", "O2GO_FENCE_METHOD=exit\n", "heartbeat dead time: 2m0s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("settings output lacks %q:\n%s", want, out.String())
		}
	}
	root = newRootCommand()
	out.Reset()
	root.SetOut(&out)
	root.SetArgs([]string{"cluster", "--sysconfig", sys, "settings", "--json"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Variables map[string]string `json:"variables"`
		DeadTime  int64             `json:"dead_time_ms"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Variables["O2CB_HEARTBEAT_THRESHOLD"] != "61" || got.DeadTime != 120000 {
		t.Fatalf("settings --json: %+v %v\n%s", got, err, out.String())
	}

	os.WriteFile(sys, []byte("O2CB_KEEPALIVE_DELAY_MS=40000\n"), 0o644)
	root = newRootCommand()
	root.SetOut(&out)
	root.SetArgs([]string{"cluster", "--sysconfig", sys, "settings"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "O2CB_KEEPALIVE_DELAY_MS=40000 must be less than O2CB_IDLE_TIMEOUT_MS=30000") {
		t.Fatalf("invalid settings: %v", err)
	}
}

// TestExplicitSysconfigMustExist: a --sysconfig path with a typo is an
// error, not O2CB's default timeouts in silence (only the default files may
// be absent).
func TestExplicitSysconfigMustExist(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "o2cb.typo")
	conf := filepath.Join(dir, "cluster.conf")
	mustRunCluster(t, conf, "add-cluster", "c")
	mustRunCluster(t, conf, "add-node", "c", "n0", "--ip", "127.0.0.1")
	for _, args := range [][]string{
		{"cluster", "--sysconfig", missing, "settings"},
		{"cluster", "--config", conf, "--sysconfig", missing, "status", "--node", "n0"},
		{"agent", "--config", conf, "--sysconfig", missing, "--node", "n0", "--socket", filepath.Join(dir, "s")},
	} {
		out, err := runCLI(args...)
		if err == nil || !strings.Contains(err.Error(), "--sysconfig "+missing) {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}

// TestClusterSubcommandsExtend checks the extension point other files use:
// a factory appended to clusterSubcommands becomes `o2go cluster NAME` and
// sees the shared --config.
func TestClusterSubcommandsExtend(t *testing.T) {
	saved := clusterSubcommands
	defer func() { clusterSubcommands = saved }()
	var seen string
	clusterSubcommands = append(append([]func(*clusterOptions) *cobra.Command{}, saved...), func(o *clusterOptions) *cobra.Command {
		return &cobra.Command{Use: "probe", RunE: func(*cobra.Command, []string) error { seen = o.configPath; return nil }}
	})
	mustRunCluster(t, "/some/where/cluster.conf", "probe")
	if seen != "/some/where/cluster.conf" {
		t.Fatalf("the added subcommand saw --config %q", seen)
	}
}
