package inspect

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// mountedImages are volumes with each kind of stack stamp mounted.ocfs2
// shows differently.
var mountedImages = []struct {
	name string
	args []string
}{
	{"local-label", []string{"-b", "4096", "-N", "2", "-L", "web data", "--fs-features=local"}},
	{"o2cb-classic", []string{"-b", "2048", "-N", "4"}},
	{"o2cb-clusterinfo", []string{"-b", "4096", "-N", "2", "-L", "x", "--cluster-stack=o2cb", "--cluster-name=longclustername"}},
	{"o2cb-globalhb", []string{"-b", "4096", "-N", "2", "--cluster-stack=o2cb", "--cluster-name=gx", "--global-heartbeat"}},
	{"pcmk", []string{"-b", "1024", "-N", "2", "-L", "pacemaker vol", "--cluster-stack=pcmk", "--cluster-name=pc"}},
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}

func TestMountedImagesLikeMountedOCFS2(t *testing.T) {
	realtools.Require(t)
	testutil.RequireTools(t, "mounted.ocfs2")
	for _, tc := range mountedImages {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := realtools.MkfsImage(t, 120<<20, tc.args...)
			vols, bad := FindVolumes(MountedOptions{Devices: []string{img}})
			if len(bad) != 0 || len(vols) != 1 {
				t.Fatalf("found %v, errors %v", vols, bad)
			}
			var got bytes.Buffer
			PrintMounted(&got, vols, false)
			if want := runTool(t, "mounted.ocfs2", "-d", img); got.String() != want {
				t.Errorf("-d differs at %s\n--- mounted.ocfs2\n%s--- o2go\n%s", firstDiff(want, got.String()), want, got.String())
			}
			q := strings.TrimSuffix(realtools.TunefsQuery(t, img, "%U|%V"), "\n")
			if vols[0].UUID+"|"+vols[0].Label != q {
				t.Errorf("UUID|label %q, tunefs.ocfs2 -Q says %q", vols[0].UUID+"|"+vols[0].Label, q)
			}
			full, bad := FindVolumes(MountedOptions{Devices: []string{img}, Full: true, ClusterConf: filepath.Join(t.TempDir(), "none")})
			if len(bad) != 0 || len(full) != 1 || full[0].Error != "" {
				t.Fatalf("full detect: %+v %v", full, bad)
			}
			got.Reset()
			PrintMounted(&got, full, true)
			if want := runTool(t, "mounted.ocfs2", "-f", img); got.String() != want {
				t.Errorf("-f differs at %s\n--- mounted.ocfs2\n%s--- o2go\n%s", firstDiff(want, got.String()), want, got.String())
			}
		})
	}
}

func TestMountedSkipsWhatIsNotOCFS2(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.img")
	os.WriteFile(zero, make([]byte, 4<<20), 0o600)
	small := filepath.Join(dir, "small.img")
	os.WriteFile(small, []byte("OCFSV2"), 0o600)
	vols, bad := FindVolumes(MountedOptions{Devices: []string{zero, small, filepath.Join(dir, "missing"), dir}})
	if len(vols) != 0 {
		t.Errorf("found volumes in non-OCFS2 files: %+v", vols)
	}
	if len(bad) != 2 || !strings.Contains(bad[0].Error(), "missing") || !strings.Contains(bad[1].Error(), "not a block device or regular file") {
		t.Errorf("unreadable devices reported as %v", bad)
	}
}

// TestMountedFindsLoopDevices attaches images to loop devices and scans
// without naming them, as an operator runs `o2go mounted`.
func TestMountedFindsLoopDevices(t *testing.T) {
	realtools.Require(t)
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "losetup", "mounted.ocfs2")
	want := map[string]string{}
	for _, tc := range mountedImages[:3] {
		img := realtools.MkfsImage(t, 120<<20, tc.args...)
		out, err := exec.Command("losetup", "-r", "-f", "--show", img).Output()
		if err != nil {
			testutil.Unavailable(t, "losetup: %v", err)
		}
		loop := strings.TrimSpace(string(out))
		t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
		want[loop] = strings.TrimSuffix(realtools.TunefsQuery(t, img, "%U|%V"), "\n")
	}
	vols, _ := FindVolumes(MountedOptions{})
	real := runTool(t, "mounted.ocfs2", "-d")
	for loop, q := range want {
		var found *MountedVolume
		for i := range vols {
			if vols[i].Device == loop {
				found = &vols[i]
			}
		}
		if found == nil {
			t.Errorf("scan did not find %s (found %+v)", loop, vols)
			continue
		}
		if found.UUID+"|"+found.Label != q {
			t.Errorf("%s: UUID|label %q, tunefs.ocfs2 says %q", loop, found.UUID+"|"+found.Label, q)
		}
		var line bytes.Buffer
		PrintMounted(&line, []MountedVolume{*found}, false)
		mine := strings.Fields(strings.Split(line.String(), "\n")[1])
		ok := false
		for _, l := range strings.Split(real, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == loop {
				ok = strings.Join(f, " ") == strings.Join(mine, " ")
			}
		}
		if !ok {
			t.Errorf("%s: o2go shows %q; mounted.ocfs2 -d:\n%s", loop, mine, real)
		}
	}
}

// TestMountedFullShowsHeartbeatingNodes writes heartbeat sectors the way
// live, dead and damaged nodes leave them, and a slot map, and checks who
// -f says is there, by name from cluster.conf.
func TestMountedFullShowsHeartbeatingNodes(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 120<<20, "-b", "4096", "-N", "4", "--cluster-stack=o2cb", "--cluster-name=webclu")
	now := time.Unix(1_900_000_000, 0)
	beat := func(node uint8, seq uint64, dead uint32) []byte {
		s := make([]byte, 512)
		h := ondisk.HeartbeatBlock{Seq: seq, Node: node, Generation: 0xfeed0000 + uint64(node), DeadMs: dead}
		if err := h.Encode(s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	writeSystemFileData(t, img, "heartbeat", 3*512, beat(3, uint64(now.Unix())-5, 62000))
	writeSystemFileData(t, img, "heartbeat", 7*512, beat(7, uint64(now.Unix())-1000, 62000)) // stopped long ago
	damaged := beat(9, uint64(now.Unix()), 62000)
	damaged[100] ^= 1
	writeSystemFileData(t, img, "heartbeat", 9*512, damaged)
	writeSystemFileData(t, img, "heartbeat", 12*512, beat(12, uint64(now.Unix())-1, 0)) // default threshold
	sm := ondisk.SlotMap{Extended: true, Slots: []ondisk.Slot{{Valid: true, Node: 3}, {}, {Valid: true, Node: 7}, {}}}
	data := make([]byte, 4*ondisk.ExtendedSlotSize)
	if err := sm.Encode(data); err != nil {
		t.Fatal(err)
	}
	writeSystemFileData(t, img, "slot_map", 0, data)

	conf := filepath.Join(t.TempDir(), "cluster.conf")
	os.WriteFile(conf, []byte("cluster:\n\tnode_count = 1\n\theartbeat_mode = local\n\tname = webclu\n\nnode:\n\tip_port = 7777\n\tip_address = 10.0.0.3\n\tnumber = 3\n\tname = alpha\n\tcluster = webclu\n\n"), 0o644)
	vols, bad := FindVolumes(MountedOptions{Devices: []string{img}, Full: true, ClusterConf: conf, Now: now})
	if len(bad) != 0 || len(vols) != 1 || vols[0].Error != "" {
		t.Fatalf("%+v %v", vols, bad)
	}
	var out bytes.Buffer
	PrintMounted(&out, vols, true)
	want := "Device" + strings.Repeat(" ", len(img)-6) + "  Stack  Cluster  F  Nodes\n" + img + "  o2cb   webclu   " + "   alpha, 12\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
	if got := vols[0].SlotNodes; len(got) != 2 || got[0] != 3 || got[1] != 7 {
		t.Errorf("slot map nodes %v, want [3 7]", got)
	}
	b, _ := json.Marshal(vols[0])
	for _, s := range []string{`"heartbeating":[{"node":3,"name":"alpha"`, `"slot_map_nodes":[3,7]`, `"cluster":"webclu"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON %s lacks %s", b, s)
		}
	}

	// debugfs shows the same sectors and slots.
	for _, cmd := range []string{"hb", "slotmap"} {
		compareDebug(t, img, cmd)
	}

	// --sample: a node is live when its sector changes while we watch,
	// whatever its sequence says.
	// The writer only rewrites one sector in place, so that it keeps beating
	// however busy the machine is.
	writeSystemFileData(t, img, "heartbeat", 5*512, beat(5, 1, 0))
	at := systemFileDeviceOffset(t, img, "heartbeat", 5*512)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(2); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			f.WriteAt(beat(5, seq, 0), at)
		}
	}()
	vols, bad = FindVolumes(MountedOptions{Devices: []string{img}, Full: true, ClusterConf: conf, Sample: 500 * time.Millisecond})
	close(stop)
	wg.Wait()
	if len(bad) != 0 || len(vols) != 1 || len(vols[0].Heartbeating) != 1 || vols[0].Heartbeating[0].Node != 5 {
		t.Errorf("sampled liveness: %+v %v, want node 5 only", vols, bad)
	}
}

func TestHeartbeatTimeReadsKernelSecondsAndO2goMilliseconds(t *testing.T) {
	now := time.Unix(1795000000, 0)
	if got := heartbeatTime(uint64(now.Unix())); !got.Equal(now) {
		t.Errorf("kernel hb_seq (seconds): %v, want %v", got, now)
	}
	if got := heartbeatTime(uint64(now.UnixMilli()) + 250); !got.Equal(now.Add(250 * time.Millisecond)) {
		t.Errorf("o2go hb_seq (milliseconds): %v, want %v", got, now.Add(250*time.Millisecond))
	}
}
