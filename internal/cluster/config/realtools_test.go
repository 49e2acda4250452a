package config

// Tests against the real ocfs2-tools 1.8.7: o2cb(8) and the o2cb init
// script. o2cb is always given --config-file in a temp dir. (When it writes,
// o2cb also runs mkdir("/etc/ocfs2"), which changes nothing when the
// directory exists; requireO2CB refuses to run it otherwise.)

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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
// o2go reads such a file too, with warnings, and its rewrite drops the same.
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
	// We read such a file, say what we ignore, and rewrite it as o2cb did.
	c, err := Parse(path, []byte(in))
	if err != nil || len(c.Warnings) != 3 {
		t.Fatalf("Parse of a file with foreign stanzas and keys: %v, warnings %q", err, c.Warnings)
	}
	if err := apply(c, []string{"add-cluster", "b"}); err != nil {
		t.Fatal(err)
	}
	if got := c.Format(); !bytes.Equal(got, after) {
		t.Fatalf("our rewrite:\n%s\no2cb's:\n%s", got, after)
	}
}

// o2cbListings runs every o2cb listing command on path and returns their
// outputs by command line; o2cb must accept the file.
func o2cbListings(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	clusters, err := o2cb(t, path, "list-clusters")
	if err != nil {
		t.Fatalf("o2cb list-clusters: %v", err)
	}
	out["list-clusters"] = clusters
	for _, name := range strings.Fields(clusters) {
		for _, cmd := range []string{"list-cluster", "list-nodes", "list-heartbeats"} {
			for _, oneline := range []bool{false, true} {
				args := []string{cmd, name}
				if oneline {
					args = []string{cmd, "--oneline", name}
				}
				o, err := o2cb(t, path, args...)
				if err != nil {
					t.Fatalf("o2cb %v: %v", args, err)
				}
				out[strings.Join(args, " ")] = o
			}
		}
	}
	return out
}

// ourListings is o2cbListings through this package.
func ourListings(c *ClusterConf) map[string]string {
	out := map[string]string{"list-clusters": c.ListClusters()}
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		out["list-cluster "+cl.Name] = cl.List(false)
		out["list-cluster --oneline "+cl.Name] = cl.List(true)
		out["list-nodes "+cl.Name] = cl.ListNodes(false)
		out["list-nodes --oneline "+cl.Name] = cl.ListNodes(true)
		out["list-heartbeats "+cl.Name] = cl.ListHeartbeats(false)
		out["list-heartbeats --oneline "+cl.Name] = cl.ListHeartbeats(true)
	}
	return out
}

var nodeCountLine = regexp.MustCompile(`(?m)^\tnode_count = (\d+)$`)

// TestRealO2CBListsOddFilesLikeUs runs o2cb on every odd-but-valid file of
// oddFiles: o2cb must accept it (else the case is wrong), and o2go must
// load it and list it byte for byte as o2cb does. Then both rewrite it (an
// add-cluster): the same file, except that o2cb keeps a stale node_count
// where o2go writes the true one.
func TestRealO2CBListsOddFilesLikeUs(t *testing.T) {
	requireO2CB(t)
	for _, f := range oddFiles {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cluster.conf")
			if err := os.WriteFile(path, []byte(f.text), 0o644); err != nil {
				t.Fatal(err)
			}
			theirs := o2cbListings(t, path)
			c, err := Load(path)
			if err != nil {
				t.Fatalf("o2cb lists the file, o2go refuses it: %v", err)
			}
			if d := cmp.Diff(theirs, ourListings(c)); d != "" {
				t.Fatalf("listings differ (-o2cb +o2go):\n%s", d)
			}

			stale := map[int]int{} // cluster index -> the count o2cb keeps
			for i, cl := range c.Clusters {
				stale[i] = int(uint32(cl.NodeCount()))
			}
			if _, err := o2cb(t, path, "add-cluster", "zz"); err != nil {
				t.Fatal(err)
			}
			if err := apply(c, []string{"add-cluster", "zz"}); err != nil {
				t.Fatal(err)
			}
			rewritten, _ := os.ReadFile(path)
			i := 0 // the cluster stanzas come first, in c.Clusters' order
			fixed := nodeCountLine.ReplaceAllStringFunc(string(rewritten), func(line string) string {
				defer func() { i++ }()
				if i >= len(c.Clusters) {
					return line
				}
				if want, ok := stale[i]; ok && line != fmt.Sprintf("\tnode_count = %d", want) {
					t.Errorf("o2cb wrote %q for cluster %s, expected it to keep node_count = %d", line, c.Clusters[i].Name, want)
				}
				return fmt.Sprintf("\tnode_count = %d", len(c.Clusters[i].Nodes))
			})
			if got := string(c.Format()); got != fixed {
				t.Fatalf("our rewrite:\n%s\no2cb's, with true node counts:\n%s", got, fixed)
			}
		})
	}
}

// TestRealO2CBDifferences pins down where o2go and o2cb part ways. What
// o2cb refuses, o2go refuses. What o2cb's parser accepts but o2go refuses is
// either refused by O2CB later (the kernel's node manager or o2cb
// register-cluster: the cluster could not have run) or a near miss of a
// known word that o2cb would silently ignore, changing what the file means.
func TestRealO2CBDifferences(t *testing.T) {
	requireO2CB(t)
	good := "cluster:\n\tname = a\n\tnode_count = 1\n\n"
	for _, tc := range []struct {
		name, text  string
		o2cbAccepts bool
		want        string // in o2go's error
	}{
		// Both refuse.
		{"heartbeat_mode disk", "cluster:\n\tname = a\n\tnode_count = 1\n\theartbeat_mode = disk\n\n" + oddNode, false, "neither 'local' nor 'global'"},
		{"empty heartbeat_mode", "cluster:\n\tname = a\n\tnode_count = 1\n\theartbeat_mode =\n\n" + oddNode, false, "neither 'local' nor 'global'"},
		{"no node_count", "cluster:\n\tname = a\n\n" + oddNode, false, "lacks 'node_count'"},
		{"node_count not a number", "cluster:\n\tname = a\n\tnode_count = one\n\n" + oddNode, false, "is not a decimal number"},
		{"node_count above u32", "cluster:\n\tname = a\n\tnode_count = 4294967296\n\n", false, "out of range"},
		{"node without name", good + strings.Replace(oddNode, "\tname = n1\n", "", 1), false, "lacks 'name'"},
		{"misspelt ip_address", good + strings.Replace(oddNode, "ip_address", "ip_adress", 1), false, "is it a misspelt 'ip_address'?"},
		{"number not a number", good + strings.Replace(oddNode, "number = 0", "number = zero", 1), false, "is not a decimal number"},
		{"port continued", good + strings.Replace(oddNode, "ip_port = 7777", "ip_port = 77\\\n77", 1), false, "goes on to the next line"},
		{"ip with a leading zero", good + strings.Replace(oddNode, "10.0.0.1", "10.0.0.01", 1), false, "not an IPv4 address"},
		{"heartbeat without region", good + oddNode + "heartbeat:\n\tcluster = a\n\n", false, "lacks 'region'"},
		{"cluster twice", good + oddNode + good, false, "defined twice"},
		{"two nodes of one name", "cluster:\n\tname = a\n\tnode_count = 2\n\n" + oddNode + strings.Replace(oddNode, "number = 0", "number = 1", 1), false, "used twice"},
		{"region twice", good + oddNode + "heartbeat:\n\tcluster = a\n\tregion = " + regionA + "\n\nheartbeat:\n\tcluster = a\n\tregion = " + regionA + "\n\n", false, "listed twice"},
		{"attribute after a blank line", good + oddNode + "\tname = x\n", false, "not in a stanza"},
		{"whitespace line inside a stanza", "cluster:\n\tname = a\n\t\n\tnode_count = 1\n", false, "not in a stanza"},
		{"indented comment", good + oddNode + "  # note\n", false, "comment does not start in the first column"},
		{"space before colon", "cluster :\n\tname = a\n\tnode_count = 0\n", false, "after stanza name"},
		{"dash in a key", "cluster:\n\tname = a\n\tnode_count = 0\n\tip-addr = 1\n", false, "expected '='"},
		{"CRLF", strings.ReplaceAll(good+oddNode, "\n", "\r\n"), false, "carriage return in stanza header"},
		{"carriage return line", good + "\r\n" + oddNode, false, "carriage return in a blank line"},
		// o2cb's parser accepts; O2CB refuses later, or the file does not
		// say what it means.
		{"misspelt heartbeat_mode", "cluster:\n\tname = a\n\tnode_count = 1\n\theartbeat_mod = global\n\n" + oddNode, true, "is it a misspelt 'heartbeat_mode'?"},
		{"mode for heartbeat_mode", "cluster:\n\tname = a\n\tnode_count = 1\n\tmode = global\n\n" + oddNode, true, "is it a misspelt 'heartbeat_mode'?"},
		{"misspelt stanza", good + oddNode + "heartbeats:\n\tcluster = a\n\tregion = " + regionA + "\n", true, "is it a misspelt 'heartbeat:'?"},
		{"node number 255", good + strings.Replace(oddNode, "number = 0", "number = 255", 1), true, "out of range 0..254"},
		{"node numbers twice", "cluster:\n\tname = a\n\tnode_count = 2\n\n" + oddNode + strings.NewReplacer("n1", "n2", "10.0.0.1", "10.0.0.2").Replace(oddNode), true, "already used by node 'n1'"},
		{"port 0", good + strings.Replace(oddNode, "ip_port = 7777", "ip_port = 0", 1), true, "out of range 1..65534"},
		{"port 65535", good + strings.Replace(oddNode, "ip_port = 7777", "ip_port = 65535", 1), true, "out of range 1..65534"},
		{"node name with a space", good + strings.Replace(oddNode, "name = n1", "name = n1 # the first", 1), true, "node name 'n1 # the first' has ' '"},
		{"node name continued", good + strings.Replace(oddNode, "name = n1", "name = n1\\\nx", 1), true, "goes on to the next line"},
		{"cluster name with a dash", strings.ReplaceAll(good+oddNode, "= a\n", "= my-cluster\n"), true, "cluster name 'my-cluster' has '-'"},
		{"region not a UUID", good + oddNode + "heartbeat:\n\tcluster = a\n\tregion = sdb1\n", true, "is not a volume UUID"},
		{"multicast address", good + strings.Replace(oddNode, "10.0.0.1", "224.0.0.1", 1), true, "multicast"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cluster.conf")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, theirErr := o2cb(t, path, "list-clusters")
			if accepts := theirErr == nil; accepts != tc.o2cbAccepts {
				t.Errorf("o2cb accepts: %v (%v), expected %v; revisit this case and the package doc", accepts, theirErr, tc.o2cbAccepts)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("o2go: %v, want an error with %q", err, tc.want)
			}
		})
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
