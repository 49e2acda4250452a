package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runClusterOutErr runs `o2go cluster --config conf args...` in-process and
// returns stdout and stderr apart.
func runClusterOutErr(conf string, args ...string) (stdout, stderr string, err error) {
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"cluster", "--config", conf}, args...))
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// TestClusterCommandsOnAnOddFile: a cluster.conf that o2cb accepts though
// it is odd (stale node_count, unknown key, unknown stanza) lists as o2cb
// lists it, with warnings on stderr; an edit rewrites it as o2cb would,
// but with the true node_count, after which nothing is odd. A near miss of
// a known key is refused and the file left alone.
func TestClusterCommandsOnAnOddFile(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "cluster.conf")
	odd := "cluster:\n\tname = a\n\theartbeat_mode = local\n\tnode_count = 5\n\tfoo = bar\n\n" +
		"node:\n\tcluster = a\n\tnumber = 0\n\tip_port = 7777\n\tip_address = 10.0.0.1\n\tname = n1\n\n" +
		"o2go:\n\tfence = panic\n\n"
	if err := os.WriteFile(conf, []byte(odd), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runClusterOutErr(conf, "list-cluster", "--oneline", "a")
	if err != nil || out != "node: 0 n1 10.0.0.1:7777 a\ncluster: 5 local a\n" {
		t.Fatalf("list-cluster: %v\n%q", err, out)
	}
	for _, want := range []string{
		"o2go: warning: " + conf + ":4: cluster 'a' has node_count = 5 but 1 node stanza: o2go goes by the node stanzas, and writes node_count = 1 when it next rewrites the file",
		"o2go: warning: " + conf + ":5: unknown attribute 'foo' in cluster stanza",
		"o2go: warning: " + conf + ":14: unknown stanza 'o2go:'",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("list-cluster's stderr lacks %q:\n%s", want, errOut)
		}
	}

	out, errOut, err = runClusterOutErr(conf, "add-node", "a", "n2", "--ip", "10.0.0.2")
	if err != nil || out != "" || !strings.Contains(errOut, "node_count = 5 but 1 node stanza") {
		t.Fatalf("add-node: %v\nstdout %q\nstderr %q", err, out, errOut)
	}
	want := "cluster:\n\tname = a\n\theartbeat_mode = local\n\tnode_count = 2\n\n" +
		"node:\n\tcluster = a\n\tnumber = 0\n\tip_port = 7777\n\tip_address = 10.0.0.1\n\tname = n1\n\n" +
		"node:\n\tcluster = a\n\tnumber = 1\n\tip_port = 7777\n\tip_address = 10.0.0.2\n\tname = n2\n\n"
	if got, _ := os.ReadFile(conf); string(got) != want {
		t.Fatalf("after add-node the file is\n%s\nwant\n%s", got, want)
	}
	out, errOut, err = runClusterOutErr(conf, "list-cluster", "--oneline", "a")
	if err != nil || errOut != "" || !strings.HasSuffix(out, "cluster: 2 local a\n") {
		t.Fatalf("list-cluster after the rewrite: %v\n%q\n%q", err, out, errOut)
	}

	typo := []byte("cluster:\n\tname = a\n\tnode_count = 0\n\theartbeat_mod = global\n")
	os.WriteFile(conf, typo, 0o644)
	_, _, err = runClusterOutErr(conf, "add-node", "a", "n", "--ip", "10.0.0.9")
	if err == nil || !strings.Contains(err.Error(), conf+":4: unknown attribute 'heartbeat_mod' in cluster stanza: is it a misspelt 'heartbeat_mode'?") {
		t.Fatalf("near miss: %v", err)
	}
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, typo) {
		t.Fatal("a refused file was rewritten")
	}
}
