package inspect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// TestInfoLikeO2info compares o2go info on image files with o2info on the
// same images attached to loop devices (o2info reads devices only).
func TestInfoLikeO2info(t *testing.T) {
	realtools.Require(t)
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "o2info", "losetup")
	images := []struct {
		name string
		args []string
	}{
		{"4k-local-label", []string{"-b", "4096", "-C", "4096", "-N", "4", "-L", "info vol", "--fs-features=local"}},
		{"1k-8k-16slots", []string{"-b", "1024", "-C", "8192", "-N", "16"}},
		{"2k-64k-maxfeatures", []string{"-b", "2048", "-C", "65536", "-N", "2", "--fs-feature-level=max-features"}},
		{"4k-1m-maxcompat", []string{"-b", "4096", "-C", "1048576", "-N", "2", "--fs-feature-level=max-compat"}},
		{"pcmk-noxattr", []string{"-b", "4096", "-N", "2", "--fs-features=noxattr,metaecc", "--cluster-stack=pcmk", "--cluster-name=pc"}},
	}
	for _, tc := range images {
		t.Run(tc.name, func(t *testing.T) {
			img := realtools.MkfsImage(t, 300<<20, tc.args...)
			out, err := exec.Command("losetup", "-r", "-f", "--show", img).Output()
			if err != nil {
				testutil.Unavailable(t, "losetup: %v", err)
			}
			loop := strings.TrimSpace(string(out))
			defer exec.Command("losetup", "-d", loop).Run()
			v, err := OpenVolume(img)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			cases := []struct {
				flags []string
				req   InfoRequest
			}{
				{[]string{"--fs-features"}, InfoRequest{FSFeatures: true}},
				{[]string{"--volinfo"}, InfoRequest{VolInfo: true}},
				{[]string{"--mkfs"}, InfoRequest{Mkfs: true}},
				{[]string{"--freeinode"}, InfoRequest{FreeInode: true}},
				{[]string{"--freefrag", "0"}, InfoRequest{FreeFrag: true}},
				{[]string{"--freefrag", "1024"}, InfoRequest{FreeFrag: true, FreeFragKB: 1024}},
				{[]string{"--freefrag", "65536"}, InfoRequest{FreeFrag: true, FreeFragKB: 65536}},
			}
			for _, c := range cases {
				args := append(append([]string{}, c.flags...), loop)
				want, err := exec.Command("o2info", args...).Output()
				if err != nil {
					t.Fatalf("o2info %v: %v", args, err)
				}
				var got bytes.Buffer
				if err := Info(v, &got, c.req); err != nil {
					t.Fatalf("%v: %v", c.flags, err)
				}
				if got.String() != string(want) {
					t.Errorf("%v differs from o2info at %s\n--- o2info\n%s--- o2go\n%s", c.flags, firstDiff(string(want), got.String()), want, got.String())
				}
			}
		})
	}
}

func TestInfoJSONAndErrors(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-C", "8192", "-N", "3", "-L", "j", "--fs-features=local")
	v, err := OpenVolume(img)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var buf bytes.Buffer
	req := InfoRequest{FSFeatures: true, VolInfo: true, Mkfs: true, FreeInode: true, FreeFrag: true, FreeFragKB: 64, FileStat: "/lost+found", SpaceUsage: "/"}
	if err := InfoJSON(v, &buf, req); err != nil {
		t.Fatal(err)
	}
	var j InfoReportJSON
	if err := json.Unmarshal(buf.Bytes(), &j); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	mkfs, _ := MkfsCommandLine(v)
	if j.VolInfo == nil || j.VolInfo.Label != "j" || j.VolInfo.ClusterSize != 8192 || j.VolInfo.NodeSlots != 3 ||
		len(j.FreeInode) != 3 || j.FreeFrag == nil || j.FreeFrag.ChunkBytes != 64<<10 || j.Mkfs != strings.TrimSpace(mkfs) ||
		j.FileStat == nil || j.FileStat.Path != "/lost+found" || j.SpaceUsage == nil {
		t.Errorf("JSON report incomplete: %s", buf.String())
	}
	if free := j.FreeFrag.FreeClusters; free == 0 || free > j.FreeFrag.Clusters {
		t.Errorf("free clusters %d of %d", free, j.FreeFrag.Clusters)
	}
	for _, bad := range []struct {
		req  InfoRequest
		want string
	}{
		{InfoRequest{FreeFrag: true, FreeFragKB: 48}, "power of 2"},
		{InfoRequest{FreeFrag: true, FreeFragKB: 4}, "at least the cluster size"},
		{InfoRequest{FileStat: "/nope"}, "no such file"},
	} {
		err := Info(v, &buf, bad.req)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: got %v, want an error saying %q", bad.req, err, bad.want)
		}
	}
	buf.Reset()
	if err := Info(v, &buf, InfoRequest{FileStat: "/lost+found", SpaceUsage: "/lost+found"}); err != nil {
		t.Fatal(err)
	}
	// lost+found keeps its entries inline: no clusters, but the kernel
	// reports the 3896 bytes as 8 sectors, and so does o2go.
	want := fmt.Sprintf("Blocks: %-10d Shared: %-10d\tUnwritten: %-7d Holes: %-6d\n", 8, 0, 0, 0)
	if !strings.HasPrefix(buf.String(), want) || !strings.Contains(buf.String(), "  File: /lost+found\n") ||
		!strings.Contains(buf.String(), "Access: (0755/drwxr-xr-x)  Uid: (    0/    root)   Gid: (    0/    root)\n") {
		t.Errorf("filestat/space-usage:\n%s", buf.String())
	}
}
