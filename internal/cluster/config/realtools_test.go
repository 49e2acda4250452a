package config

// Tests against the real ocfs2-tools 1.8.7: o2cb(8) and the o2cb init
// script. o2cb is always given --config-file in a temp dir. (When it writes,
// o2cb also runs mkdir("/etc/ocfs2"), which changes nothing when the
// directory exists; requireO2CB refuses to run it otherwise.)

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/testutil"
)

func requireO2CB(t *testing.T) {
	t.Helper()
	testutil.RequireTools(t, "o2cb")
	if st, err := os.Stat("/etc/ocfs2"); err != nil || !st.IsDir() {
		testutil.Unavailable(t, "/etc/ocfs2 is missing, and o2cb would create it when it writes")
	}
}

// o2cb runs the real tool on conf and returns its stdout. A message on
// stderr is an error even when o2cb exits 0, as it does after "Cluster 'x'
// already exists".
func o2cb(t *testing.T, conf string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("o2cb", append([]string{"--config-file=" + conf}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil || errOut.Len() > 0 {
		err = errors.New(strings.TrimSpace(errOut.String()) + " (" + errString(err) + ")")
	}
	return out.String(), err
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// apply runs one o2cb editing command through this package.
func apply(c *ClusterConf, args []string) error {
	flag := func(name string) int {
		for i, a := range args {
			if a == "--"+name && i+1 < len(args) {
				n, _ := strconv.Atoi(args[i+1])
				return n
			}
		}
		return Auto
	}
	switch args[0] {
	case "add-cluster":
		_, err := c.AddCluster(args[1])
		return err
	case "remove-cluster":
		return c.RemoveCluster(args[1])
	}
	cl, err := c.LookupCluster(args[1])
	if err != nil {
		return err
	}
	switch args[0] {
	case "add-node":
		ip := ""
		for i, a := range args {
			if a == "--ip" {
				ip = args[i+1]
			}
		}
		_, err = cl.AddNode(NodeSpec{Name: args[2], IP: ip, Port: flag("port"), Number: flag("number")},
			func(string) (netip.Addr, error) { return netip.Addr{}, errors.New("no lookups in tests") })
	case "remove-node":
		err = cl.RemoveNode(args[2])
	case "add-heartbeat":
		_, err = cl.AddHeartbeat(args[2])
	case "remove-heartbeat":
		err = cl.RemoveHeartbeat(args[2])
	case "heartbeat-mode":
		err = cl.SetHeartbeatMode(args[2])
	default:
		panic(args[0])
	}
	return err
}

const (
	regionA = "77D95EF51C0149D2823674FCC162CF8B"
	regionB = "DCDA2845177F4D59A0F2DCD8DE507CC3"
	regionC = "BBA1DBD0F73F449384CE75197D9B7098"
)

// TestRealO2CBWritesWhatWeWrite runs the same editing commands through the
// real o2cb and through this package, and compares the files after each:
// byte for byte when both succeed, and both must refuse the same commands.
func TestRealO2CBWritesWhatWeWrite(t *testing.T) {
	requireO2CB(t)
	theirs := filepath.Join(t.TempDir(), "cluster.conf")
	ours := &ClusterConf{}
	script := []struct {
		args   []string
		refuse bool // o2cb refuses it too
	}{
		// The example of ocfs2.cluster.conf(5) and o2cb(8).
		{args: []string{"add-cluster", "webcluster"}},
		{args: []string{"add-node", "webcluster", "node7", "--ip", "192.168.0.107", "--number", "7"}},
		{args: []string{"add-node", "webcluster", "node6", "--ip", "192.168.0.106"}},
		{args: []string{"add-node", "webcluster", "node1", "--ip", "192.168.0.101", "--port", "7778"}},
		{args: []string{"add-heartbeat", "webcluster", regionA}},
		{args: []string{"heartbeat-mode", "webcluster", "global"}},
		// A second cluster interleaved with the first.
		{args: []string{"add-cluster", "db2"}},
		{args: []string{"add-node", "db2", "dbnode", "--ip", "10.1.1.1", "--number", "254"}},
		{args: []string{"add-heartbeat", "db2", regionB}},
		{args: []string{"add-heartbeat", "webcluster", regionC}},
		{args: []string{"add-node", "webcluster", "node2", "--ip", "192.168.0.102"}},
		{args: []string{"remove-node", "webcluster", "node6"}},
		{args: []string{"add-node", "webcluster", "node6b", "--ip", "192.168.0.116"}}, // takes number 0 again
		{args: []string{"remove-heartbeat", "webcluster", regionA}},
		{args: []string{"heartbeat-mode", "db2", "global"}},
		{args: []string{"heartbeat-mode", "db2", "local"}},
		// What both refuse.
		{args: []string{"add-cluster", "webcluster"}, refuse: true},
		{args: []string{"add-cluster", "bad-name"}, refuse: true},
		{args: []string{"add-cluster", "abcdefghijklmnopq"}, refuse: true},
		{args: []string{"remove-cluster", "nosuch"}, refuse: true},
		{args: []string{"add-node", "nosuch", "n", "--ip", "10.0.0.1"}, refuse: true},
		{args: []string{"add-node", "webcluster", "node7", "--ip", "10.0.0.7"}, refuse: true},
		{args: []string{"add-node", "webcluster", "nodeX", "--ip", "10.0.0.7", "--number", "7"}, refuse: true},
		{args: []string{"add-node", "webcluster", "nodeX", "--ip", "10.0.0.7", "--number", "255"}, refuse: true},
		{args: []string{"add-node", "webcluster", "nodeX", "--ip", "10.0.0.300"}, refuse: true},
		{args: []string{"remove-node", "webcluster", "nosuch"}, refuse: true},
		{args: []string{"add-heartbeat", "webcluster", regionC}, refuse: true},
		{args: []string{"remove-heartbeat", "webcluster", regionA}, refuse: true},
		{args: []string{"heartbeat-mode", "webcluster", "disk"}, refuse: true},
		// Down to nothing: o2cb leaves an empty file.
		{args: []string{"remove-cluster", "webcluster"}},
		{args: []string{"remove-cluster", "db2"}},
	}
	for i, step := range script {
		_, theirErr := o2cb(t, theirs, step.args...)
		ourErr := apply(ours, step.args)
		if (theirErr != nil) != step.refuse || (ourErr != nil) != step.refuse {
			t.Fatalf("step %d %v: o2cb error %v, ours %v; want refused=%v", i, step.args, theirErr, ourErr, step.refuse)
		}
		want, err := os.ReadFile(theirs)
		if err != nil {
			t.Fatal(err)
		}
		if got := ours.Format(); !bytes.Equal(got, want) {
			t.Fatalf("step %d %v: our file differs from o2cb's.\nours:\n%s\no2cb's:\n%s", i, step.args, got, want)
		}
		parsed, err := Parse(theirs, want)
		if err != nil {
			t.Fatalf("step %d: o2cb's file does not parse: %v", i, err)
		}
		if !bytes.Equal(parsed.Format(), want) {
			t.Fatalf("step %d: o2cb's file does not round-trip", i)
		}
		if i == 5 {
			// testdata/o2cb-webcluster.conf is this state.
			golden, err := os.ReadFile("testdata/o2cb-webcluster.conf")
			if err != nil || !bytes.Equal(golden, want) {
				t.Fatalf("testdata/o2cb-webcluster.conf is not what o2cb writes (%v):\n%s", err, want)
			}
		}
	}
}

// TestRealO2CBReadsWhatWeWrite has o2cb list a file this package wrote and
// compares with our listings; then o2cb edits it, and we read its result.
func TestRealO2CBReadsWhatWeWrite(t *testing.T) {
	requireO2CB(t)
	path := filepath.Join(t.TempDir(), "cluster.conf")
	c := &ClusterConf{}
	for ci, name := range []string{"alpha", "Beta2", "c"} {
		cl, err := c.AddCluster(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5+ci; i++ {
			ip := netip.AddrFrom4([4]byte{10, byte(ci), 0, byte(i + 1)}).String()
			if _, err := cl.AddNode(NodeSpec{Name: name + "-n" + strconv.Itoa(i), IP: ip, Port: 7000 + i, Number: (i * 37) % 255}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if ci > 0 {
			cl.HeartbeatMode = HeartbeatGlobal
			for _, r := range []string{regionA, regionB, regionC}[:ci+1] {
				if _, err := cl.AddHeartbeat(r); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	out, err := o2cb(t, path, "list-clusters")
	if err != nil || out != c.ListClusters() {
		t.Fatalf("o2cb list-clusters: %v\n%q\nwant %q", err, out, c.ListClusters())
	}
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"list-cluster", cl.Name}, cl.List(false)},
			{[]string{"list-cluster", "--oneline", cl.Name}, cl.List(true)},
			{[]string{"list-nodes", cl.Name}, cl.ListNodes(false)},
			{[]string{"list-nodes", "--oneline", cl.Name}, cl.ListNodes(true)},
			{[]string{"list-heartbeats", cl.Name}, cl.ListHeartbeats(false)},
			{[]string{"list-heartbeats", "--oneline", cl.Name}, cl.ListHeartbeats(true)},
		} {
			out, err := o2cb(t, path, tc.args...)
			if err != nil || out != tc.want {
				t.Errorf("o2cb %v: %v\n%s\nours:\n%s", tc.args, err, out, tc.want)
			}
		}
	}
	// o2cb rewrites our file: the same bytes but for its one change.
	if _, err := o2cb(t, path, "add-node", "c", "late", "--ip", "10.9.9.9"); err != nil {
		t.Fatal(err)
	}
	if err := apply(c, []string{"add-node", "c", "late", "--ip", "10.9.9.9"}); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Format(), c.Format()) {
		t.Fatalf("after o2cb add-node:\n%s\nwant:\n%s", got.Format(), c.Format())
	}
}

// TestRealO2CBDropsForeignStanzas is the experiment behind where o2go keeps
// its settings (see the package doc): o2cb reads a cluster.conf with an
// extra stanza and unknown keys, but drops them when it rewrites the file.
func TestRealO2CBDropsForeignStanzas(t *testing.T) {
	requireO2CB(t)
	path := filepath.Join(t.TempDir(), "cluster.conf")
	in := "cluster:\n\tname = a\n\theartbeat_mode = local\n\tnode_count = 1\n\tfence_method = panic\n\n" +
		"node:\n\tcluster = a\n\tnumber = 0\n\tip_port = 7777\n\tip_address = 10.0.0.1\n\tname = n1\n\to2go_secret = s3cret\n\n" +
		"o2go:\n\tcluster = a\n\theartbeat_interval_ms = 1000\n\n"
	os.WriteFile(path, []byte(in), 0o644)
	out, err := o2cb(t, path, "list-nodes", "--oneline", "a")
	if err != nil || out != "node: 0 n1 10.0.0.1:7777 a\n" {
		t.Fatalf("o2cb does not tolerate foreign stanzas and keys (%v): %q; revisit the choice in doc.go", err, out)
	}
	if _, err := o2cb(t, path, "add-cluster", "b"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	for _, foreign := range []string{"o2go", "fence_method", "o2go_secret", "heartbeat_interval_ms"} {
		if strings.Contains(string(after), foreign) {
			t.Fatalf("o2cb kept %q when rewriting; o2go settings could live in cluster.conf after all:\n%s", foreign, after)
		}
	}
	// We refuse such a file rather than lose settings silently.
	if _, err := Parse(path, []byte(in)); err == nil {
		t.Fatal("Parse accepted foreign stanzas")
	}
	if _, err := Parse(path, after); err != nil {
		t.Fatalf("o2cb's rewrite does not parse: %v", err)
	}
}

// writeSysconfigFunc extracts write_sysconfig() from the installed o2cb init
// script: the code that writes the sysconfig file on `o2cb configure`.
func writeSysconfigFunc(t *testing.T) string {
	t.Helper()
	const script = "/etc/init.d/o2cb"
	data, err := os.ReadFile(script)
	if err != nil {
		testutil.Unavailable(t, "%s: %v (install ocfs2-tools)", script, err)
	}
	text := string(data)
	start := strings.Index(text, "\nwrite_sysconfig()\n")
	if start < 0 {
		t.Fatalf("%s has no write_sysconfig()", script)
	}
	end := strings.Index(text[start:], "\n}\n")
	if end < 0 {
		t.Fatalf("%s: write_sysconfig() has no end", script)
	}
	return text[start : start+end+3]
}

// initScriptWrite runs the init script's write_sysconfig into path after
// sourcing env (the current file, as the script does at its start).
func initScriptWrite(t *testing.T, fn, path, env string) {
	t.Helper()
	script := "set -e\n" + env + "\n" + fn + "\nCONFIGURATION=" + path + "\nwrite_sysconfig >/dev/null\n"
	if out, err := exec.Command("bash", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("write_sysconfig: %v\n%s", err, out)
	}
}

// TestRealInitScriptSourcesOurSysconfig checks the sysconfig side against
// the o2cb init script: we read what it writes, it reads what we write, and
// a `configure` rewrite keeps O2CB's values (and drops o2go's, which is why
// nodes compare their timeouts).
func TestRealInitScriptSourcesOurSysconfig(t *testing.T) {
	testutil.RequireTools(t, "bash")
	fn := writeSysconfigFunc(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "o2cb")
	initScriptWrite(t, fn, path, "O2CB_ENABLED=true O2CB_STACK=o2cb O2CB_BOOTCLUSTER=webcluster "+
		"O2CB_HEARTBEAT_THRESHOLD=62 O2CB_IDLE_TIMEOUT_MS=60000 O2CB_KEEPALIVE_DELAY_MS=2000 O2CB_RECONNECT_DELAY_MS=2000")
	theirs, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSysconfig(path, theirs)
	if err != nil {
		t.Fatalf("the init script's file does not parse: %v\n%s", err, theirs)
	}
	if !bytes.Equal(s.Format(), theirs) {
		t.Fatal("Format does not reproduce the init script's file")
	}
	st, err := s.Settings()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || st.BootCluster != "webcluster" || st.Timeouts.HeartbeatThreshold != 62 || st.Timeouts.IdleTimeout.Milliseconds() != 60000 {
		t.Fatalf("read %+v", st)
	}

	// Add o2go's settings; the shell (hence the init script) still reads
	// O2CB's values, and sees ours as plain variables.
	st.FenceMethod = FencePanic
	st.Timeouts.HeartbeatInterval = st.Timeouts.HeartbeatInterval / 2
	st.SecretFile = "/etc/ocfs2/o2go secret" // needs quoting
	if err := s.SetSettings(st); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, v := range st.Vars() {
		want[v.Name] = v.Value
	}
	ours, _ := os.ReadFile(path)
	requireSameAsShell(t, string(ours), want)

	// `o2cb configure` rewrites the file from its template: O2CB's values
	// survive, o2go's are dropped and fall back to defaults.
	initScriptWrite(t, fn, path, ". "+path)
	again, err := LoadSettings(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.Timeouts.HeartbeatThreshold != 62 || again.BootCluster != "webcluster" || !again.Enabled {
		t.Fatalf("O2CB values lost in the rewrite: %+v", again)
	}
	if again.FenceMethod != DefaultFenceMethod || again.Timeouts.HeartbeatInterval != DefaultHeartbeatInterval {
		t.Fatalf("the init script kept o2go's values; update the package doc: %+v", again)
	}
	if err := st.Timeouts.CheckPeer("rewritten", again.Timeouts); err == nil {
		t.Fatal("a node whose o2go values were dropped would not be refused")
	}
}
