package volume

import (
	"bytes"
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

func TestDeviceInUseReadsMountTableAndLoopDevices(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "my vol.img")
	if err := truncateFile(img, 1<<20); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.img")
	if err := truncateFile(other, 1<<20); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.img")
	if err := os.Symlink(img, link); err != nil {
		t.Fatal(err)
	}
	esc := strings.ReplaceAll(img, " ", `\040`)
	sys := filepath.Join(dir, "sys")
	tests := []struct {
		name, mounts string
		loops        map[string]string
		want         string
	}{
		{"free", "/dev/sda1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n", nil, ""},
		{"o2go fuse mount", "/dev/sda1 / ext4 rw 0 0\n" + esc + " /mnt/v fuse.o2go rw 0 0\n", nil, "mounted on /mnt/v (fuse.o2go)"},
		{"mounted through a symlink", strings.ReplaceAll(link, " ", `\040`) + " /srv fuse.o2go rw 0 0\n", nil, "mounted on /srv"},
		{"other image mounted", other + " /mnt fuse.o2go rw 0 0\n", nil, ""},
		{"loop device", "", map[string]string{"loop3": img + "\n"}, "loop device /dev/loop3"},
		{"loop device, image deleted", "", map[string]string{"loop0": other + "\n", "loop5": img + " (deleted)\n"}, "loop device /dev/loop5"},
		{"other loop", "", map[string]string{"loop1": other + "\n"}, ""},
	}
	for _, tc := range tests {
		mounts := filepath.Join(dir, "mounts")
		if err := os.WriteFile(mounts, []byte(tc.mounts), 0o644); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(sys)
		for loop, backing := range tc.loops {
			d := filepath.Join(sys, loop, "loop")
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "backing_file"), []byte(backing), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := DeviceInUse(img, mounts, sys)
		if err != nil || (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: DeviceInUse = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := DeviceInUse(dir, "/proc/mounts", "/sys/block"); err == nil {
		t.Error("a directory was accepted as a device")
	}
}

// imageUntouched reports whether a sparse image still has no data.
func imageUntouched(t *testing.T, img string) bool {
	t.Helper()
	st, ok := fiSys(img)
	return ok && st.Blocks == 0
}

// TestMkfsRefusesImageWithLoopDevice attaches a real loop device to an
// image: mkfs refuses it (and writes nothing) until -F, then formats.
func TestMkfsRefusesImageWithLoopDevice(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "losetup")
	img := filepath.Join(t.TempDir(), "vol.img")
	if err := truncateFile(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		testutil.Unavailable(t, "losetup -f %s: %v: %s", img, err, out)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	_, err = Mkfs(img, MkfsOptions{Quiet: true, NoPrompt: true})
	if err == nil || !strings.Contains(err.Error(), "loop device "+loop) || !strings.Contains(err.Error(), "-F") {
		t.Fatalf("Mkfs with %s attached: %v", loop, err)
	}
	if !imageUntouched(t, img) {
		t.Fatal("the refused mkfs wrote to the image")
	}
	if _, err := Mkfs(img, MkfsOptions{Quiet: true, NoPrompt: true, Force: true}); err != nil {
		t.Fatalf("Mkfs -F: %v", err)
	}
}

// TestMkfsOnBlockDevice formats a loop block device over an image full of
// old data, once with discard (BLKDISCARD) and once without (the zeroed
// areas then go through BLKZEROOUT), and lets fsck.ocfs2 judge each.
func TestMkfsOnBlockDevice(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "losetup")
	realtools.Require(t)
	fastFsck(t)
	img := filepath.Join(t.TempDir(), "vol.img")
	old := bytes.Repeat([]byte("stale bytes of an older file system "), (192<<20)/36+1)[:192<<20]
	for _, noDiscard := range []bool{false, true} {
		if err := os.WriteFile(img, old, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
		if err != nil {
			testutil.Unavailable(t, "losetup -f %s: %v: %s", img, err, out)
		}
		loop := strings.TrimSpace(string(out))
		res, err := Mkfs(loop, MkfsOptions{Quiet: true, NoPrompt: true, NoDiscard: noDiscard, Slots: 2, BlockSize: 1024, Features: "metaecc"})
		exec.Command("losetup", "-d", loop).Run()
		if err != nil {
			t.Fatalf("Mkfs %s (nodiscard %v): %v", loop, noDiscard, err)
		}
		if res.Blocks != 192<<10 {
			t.Errorf("the volume has %d blocks, want the whole device", res.Blocks)
		}
		realtools.RequireFsckClean(t, img)
	}
}

// heartbeatWriter beats for node in the volume's heartbeat area every
// interval, like an o2hb node, until stopped.
func heartbeatWriter(t *testing.T, img string, node int, interval time.Duration) (stop func()) {
	t.Helper()
	v, err := Open(img, OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	blk, err := v.SystemFile(ondisk.SysHeartbeat, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.FS.Inode(blk)
	if err != nil {
		t.Fatal(err)
	}
	start := int64(d.Extents.Recs[0].Blkno) * int64(v.SB.BlockSize())
	v.Close()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		hb := ondisk.HeartbeatBlock{Node: uint8(node), Generation: 0x1234abcd, DeadMs: 62000}
		sector := make([]byte, 512)
		for seq := uint64(1000); ; seq++ {
			hb.Seq = seq
			if err := hb.Encode(sector); err != nil {
				panic(err)
			}
			f.WriteAt(sector, start+int64(node)*512)
			f.Sync()
			select {
			case <-done:
				return
			case <-time.After(interval):
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		f.Close()
	}
}

// TestMkfsRefusesLiveHeartbeat formats a clustered volume, then has a
// node heartbeat on it: mkfs refuses to overwrite it, naming the node,
// until the node stops or -F is given.
func TestMkfsRefusesLiveHeartbeat(t *testing.T) {
	img := filepath.Join(t.TempDir(), "vol.img")
	if err := truncateFile(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := Mkfs(img, MkfsOptions{Quiet: true}); err != nil {
		t.Fatal(err)
	}
	stop := heartbeatWriter(t, img, 7, 200*time.Millisecond)
	_, err := Mkfs(img, MkfsOptions{Quiet: true, NoPrompt: true, HeartbeatWait: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "node(s) 7 heartbeat") {
		stop()
		t.Fatalf("Mkfs over a live node: %v", err)
	}
	if _, err := Mkfs(img, MkfsOptions{Quiet: true, NoPrompt: true, Force: true, Slots: 3}); err != nil {
		stop()
		t.Fatalf("Mkfs -F over a live node: %v", err)
	}
	stop()
	// The node is gone (its sector no longer changes): no -F needed.
	start := time.Now()
	res, err := Mkfs(img, MkfsOptions{Quiet: true, NoPrompt: true, HeartbeatWait: time.Second})
	if err != nil {
		t.Fatalf("Mkfs over a dead node: %v", err)
	}
	if time.Since(start) < time.Second {
		t.Errorf("the live-node check did not watch for its whole window")
	}
	if res.Slots != 2 {
		t.Errorf("reformatted volume has %d slots, want the default 2", res.Slots)
	}
}

// TestMkfsAsksBeforeOverwriting checks the prompt rules on an existing
// volume: a "no" aborts, a "yes" formats, no terminal needs -F or -x.
func TestMkfsAsksBeforeOverwriting(t *testing.T) {
	img := filepath.Join(t.TempDir(), "vol.img")
	if err := truncateFile(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := Mkfs(img, MkfsOptions{Quiet: true, Features: "local", Label: "first"}); err != nil {
		t.Fatalf("Mkfs on an empty image: %v", err)
	}
	label := func() string {
		v, err := Open(img, OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		return v.SB.Label()
	}
	var asked []string
	var out bytes.Buffer
	no := func(q string) bool { asked = append(asked, q); return false }
	_, err := Mkfs(img, MkfsOptions{Out: &out, Features: "local", Label: "second", Confirm: no})
	if err == nil || !strings.Contains(err.Error(), "Aborting") || len(asked) != 1 || asked[0] != "Proceed (y/N): " {
		t.Fatalf("answering no: %v, asked %q", err, asked)
	}
	if !strings.Contains(out.String(), "Overwriting existing ocfs2 partition.") {
		t.Errorf("no overwrite notice in:\n%s", out.String())
	}
	if _, err := Mkfs(img, MkfsOptions{Quiet: true, Features: "local", Label: "second"}); err == nil || !strings.Contains(err.Error(), "no terminal") {
		t.Fatalf("without a terminal: %v", err)
	}
	if l := label(); l != "first" {
		t.Fatalf("label %q after refusals, want the old volume untouched", l)
	}
	if _, err := Mkfs(img, MkfsOptions{Quiet: true, Features: "local", Label: "second", Confirm: func(string) bool { return true }}); err != nil {
		t.Fatalf("answering yes: %v", err)
	}
	if l := label(); l != "second" {
		t.Fatalf("label %q, want second", l)
	}
	if _, err := Mkfs(img, MkfsOptions{Quiet: true, Features: "local", Label: "third", NoPrompt: true}); err != nil {
		t.Fatalf("-x: %v", err)
	}
	if _, err := Mkfs(img, MkfsOptions{Quiet: true, Features: "local", Label: "fourth", Force: true}); err != nil {
		t.Fatalf("-F without a terminal: %v", err)
	}
	if l := label(); l != "fourth" {
		t.Fatalf("label %q, want fourth", l)
	}
}

// TestMkfsKeepsClusterStackOfReplacedVolume: like mkfs.ocfs2, reformatting
// a volume stamped for a cluster stack without naming one keeps the stamp;
// naming another stack replaces it.
func TestMkfsKeepsClusterStackOfReplacedVolume(t *testing.T) {
	img := filepath.Join(t.TempDir(), "vol.img")
	if err := truncateFile(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	stack := func() (string, string) {
		v, err := Open(img, OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if !v.SB.HasClusterInfo() {
			return "", ""
		}
		return v.SB.ClusterInfo.StackName(), v.SB.ClusterInfo.ClusterName()
	}
	o := MkfsOptions{Quiet: true, NoPrompt: true, HeartbeatWait: 100 * time.Millisecond}
	o1 := o
	o1.ClusterStack, o1.ClusterName = "pcmk", "alpha"
	if _, err := Mkfs(img, o1); err != nil {
		t.Fatal(err)
	}
	if _, err := Mkfs(img, o); err != nil {
		t.Fatal(err)
	}
	if s, c := stack(); s != "pcmk" || c != "alpha" {
		t.Errorf("after reformatting without a stack: %q %q, want pcmk alpha", s, c)
	}
	o2 := o
	o2.ClusterStack, o2.ClusterName = "o2cb", "beta"
	if _, err := Mkfs(img, o2); err != nil {
		t.Fatal(err)
	}
	if s, c := stack(); s != "o2cb" || c != "beta" {
		t.Errorf("after reformatting for o2cb: %q %q", s, c)
	}
	// A plain o2cb stamp (no global heartbeat) is not kept: it is the
	// classic default.
	if _, err := Mkfs(img, o); err != nil {
		t.Fatal(err)
	}
	if s, _ := stack(); s != "" {
		t.Errorf("a classic o2cb stamp was kept: %q", s)
	}
	if realtools.Fsck(t, img, "-fn").Clean() != true {
		t.Error("fsck.ocfs2 -fn is not clean")
	}
}
