package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"o2go/internal/node"
)

// TestMountAgentSocket: a clustered mount goes through the agent of
// --socket, else --node, else the node --config names after this host;
// an explicit --config that does not load or does not name this host is
// an error that says what to do.
func TestMountAgentSocket(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ = strings.Cut(host, ".")
	dir := t.TempDir()
	write := func(name, nodeName string) string {
		p := filepath.Join(dir, name)
		conf := "cluster:\n\tnode_count = 1\n\tname = mine\n\theartbeat_mode = local\n\nnode:\n\tip_port = 7777\n\tip_address = 127.0.0.1\n\tnumber = 0\n\tname = " + nodeName + "\n\tcluster = mine\n"
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mine := write("mine.conf", host)
	other := write("other.conf", "elsewhere")

	for _, c := range []struct {
		what             string
		conf             string
		given            bool
		nodeName, socket string
		want, wantErr    string
	}{
		{"--socket wins", mine, true, "n1", "/tmp/x.sock", "/tmp/x.sock", ""},
		{"--node", mine, true, "n1", "", node.DefaultSocket("n1"), ""},
		{"--config names this host", mine, true, "", "", node.DefaultSocket(host), ""},
		{"the default file names this host", mine, false, "", "", node.DefaultSocket(host), ""},
		{"--config without this host", other, true, "", "", "", "has no node named after this host"},
		{"--config missing", filepath.Join(dir, "missing.conf"), true, "", "", "", "missing.conf"},
	} {
		got, err := mountAgentSocket(c.conf, c.given, c.nodeName, c.socket)
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: %q, %v; want an error saying %q", c.what, got, err, c.wantErr)
		case c.wantErr == "" && (err != nil || got != c.want):
			t.Errorf("%s: %q, %v; want %q", c.what, got, err, c.want)
		}
	}
}
