package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// runTunefs runs `o2go tunefs args...` in-process with stdin from in.
func runTunefs(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(append([]string{"tunefs"}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func superOf(t *testing.T, img string) *ondisk.Dinode {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for bs := 512; bs <= 4096; bs *= 2 {
		if string(data[2*bs:2*bs+6]) == "OCFSV2" {
			d, err := ondisk.DecodeDinode(data[2*bs : 3*bs])
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatal("no superblock")
	return nil
}

// TestTunefsCommand drives the command line: tunefs.ocfs2's flags reach
// the operations (-L, -U, -N, -J, -S with NEW-SIZE, -M, --fs-features,
// --cluster-stack), -Q prints what tunefs.ocfs2 -Q prints, and bad usage
// and refusals fail (exit status 1).
func TestTunefsCommand(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 600<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	q := `%T|%N|%R|%Y|%P|%V|%U|%M|%H|%O\n`
	if out, _, err := runTunefs(t, "-Q", q, img); err != nil || out != realtools.TunefsQuery(t, img, q) {
		t.Errorf("-Q: %q %v, tunefs.ocfs2 says %q", out, err, realtools.TunefsQuery(t, img, q))
	}
	must := func(args ...string) {
		t.Helper()
		if out, errOut, err := runTunefs(t, args...); err != nil {
			t.Fatalf("o2go tunefs %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
	}
	must("-L", "cmd label", img)
	must("-U=2A4D1C581FAA42A1A41D26EFC90C1315", "-y", img)
	must("-N", "3", "-J", "size=8M,block64", img)
	if err := os.Truncate(img, 700<<20); err != nil {
		t.Fatal(err)
	}
	must("-S", img, "160000")
	must("-M", "cluster", "--fs-features=nounwritten", img)
	must("--cluster-stack=o2cb", "--cluster-name=cmdtest", "-y", "--heartbeat-wait=300ms", img)
	d := superOf(t, img)
	sb := d.Super
	switch {
	case sb.Label() != "cmd label":
		t.Errorf("label %q", sb.Label())
	case sb.UUIDString() != "2A4D1C581FAA42A1A41D26EFC90C1315":
		t.Errorf("uuid %s", sb.UUIDString())
	case sb.MaxSlots != 3:
		t.Errorf("%d slots", sb.MaxSlots)
	case uint64(d.Clusters)*4096 != 160000*4096:
		t.Errorf("%d clusters, want 160000", d.Clusters)
	case sb.Features.Incompat&ondisk.IncompatLocalMount != 0:
		t.Error("-M cluster left the volume local")
	case sb.Features.RoCompat&ondisk.RoCompatUnwritten != 0:
		t.Error("nounwritten left unwritten on")
	case sb.ClusterInfo.ClusterName() != "cmdtest":
		t.Errorf("cluster name %q", sb.ClusterInfo.ClusterName())
	}
	realtools.RequireFsckClean(t, img)
	out, _, _ := runTunefs(t, "-Q", "%M", img)
	if !strings.Contains(out, "strict-journal-super") {
		t.Errorf("-J block64 should keep strict-journal-super on: %q", out)
	}

	for _, bad := range [][]string{
		{},                     // no device
		{img, "1000"},          // NEW-SIZE without -S
		{"-N", "0", img},       // no slots
		{"-J", "size=1M", img}, // journal too small
		{"-J", "frobnicate", img},
		{"-M", "nodes", img},
		{"--fs-features=nosuch", img},
		{"-Q", "%d", img},
		{"-U=2A4D1C581FAA42A1A41D26EFC90C1316", img}, // needs -y: no terminal to ask on
		{"-L", strings.Repeat("x", 64), img},
		{"--cluster-name=x", img},
		{"-L", "x", "/nonexistent/device"},
	} {
		if out, errOut, err := runTunefs(t, bad...); err == nil {
			t.Errorf("o2go tunefs %q succeeded:\n%s%s", bad, out, errOut)
		}
	}
	if got := superOf(t, img).Super.UUIDString(); got != "2A4D1C581FAA42A1A41D26EFC90C1315" {
		t.Errorf("a refused -U changed the UUID to %s", got)
	}
}
