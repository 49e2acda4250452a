package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

// TestFsckRecoverClusterInfo: o2go fsck compares a clustered volume's
// stamp with the cluster --config names, asks RECOVER_CLUSTER_INFO and
// stamps that cluster on -y; with no configuration it does not ask.
func TestFsckRecoverClusterInfo(t *testing.T) {
	img := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-C", "4096", "-N", "2", "--cluster-stack=o2cb", "--cluster-name=other")
	dir := t.TempDir()
	conf := filepath.Join(dir, "cluster.conf")
	if err := os.WriteFile(conf, []byte("cluster:\n\tnode_count = 1\n\tname = mine\n\theartbeat_mode = local\n\nnode:\n\tip_port = 7777\n\tip_address = 127.0.0.1\n\tnumber = 0\n\tname = n0\n\tcluster = mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sysconf := filepath.Join(dir, "o2cb")
	if err := os.WriteFile(sysconf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--heartbeat-wait=50ms", "--sysconfig", sysconf}

	out, errOut, code := runFsck(t, append(common, "-fy", "--config", filepath.Join(dir, "none.conf"), img)...)
	if code != 0 || strings.Contains(out, "RECOVER_CLUSTER_INFO") {
		t.Fatalf("without a cluster configuration: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runFsck(t, append(common, "-fn", "--config", conf, img)...)
	if code != 0 || strings.Contains(out, "RECOVER_CLUSTER_INFO") {
		t.Fatalf("-fn: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runFsck(t, append(common, "-fy", "--config", conf, img)...)
	if code != 1 || !strings.Contains(out, "[RECOVER_CLUSTER_INFO] The running cluster is using the o2cb stack\nwith the cluster name mine") {
		t.Fatalf("-fy: exit %d\n%s%s", code, out, errOut)
	}
	if stats := realtools.Debugfs(t, img, "stats"); !strings.Contains(stats, "Cluster name: mine") {
		t.Fatalf("debugfs.ocfs2 stats after the repair:\n%s", stats)
	}
	realtools.RequireFsckClean(t, img)
}
