package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"o2go/internal/fs/volume"
	"o2go/internal/ha"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// fakeO2go is an o2go binary that logs each call and does nothing, except
// that `lock ... -- COMMAND` runs COMMAND (the lock is always granted) and
// logs "released" after it, and fsck exits with the code in the file
// fsck-exit beside it (0 without it). It lets the tests see which commands
// a start runs, in which order, and that the lock is held around them.
func fakeO2go(t *testing.T) (bin, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls")
	bin = script(t, dir, "o2go", `echo "$*" >> `+log+`
case "$1" in
lock)
	while [ "$1" != "--" ]; do shift; done
	shift
	"$@"
	echo released >> `+log+`;;
fsck)
	[ -e `+dir+`/fsck-exit ] && { echo "o2go fsck: found damage"; exit $(cat `+dir+`/fsck-exit); };;
esac
exit 0`)
	return bin, log
}

func calls(t *testing.T, log string) string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func uuidOf(t *testing.T, img string) string {
	t.Helper()
	st, err := readO2goVolume(img)
	if err != nil {
		t.Fatal(err)
	}
	return st.uuid
}

// A clustered volume that no node has mounted: under HA's lock of the
// volume, fsck -p, then the mount through the node's agent; the lock is
// released once the mount is done.
func TestO2goStartChecksAnUnmountedVolume(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 64<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M")
	bin, log := fakeO2go(t)
	r := NewRunner("n1")
	r.O2go = bin
	mp := filepath.Join(t.TempDir(), "mnt")
	res := ha.Resource{Name: "data", Type: ha.TypeFS, Device: img, Mountpoint: mp, FSType: "o2go", Options: "noatime"}
	got := do(t, r, ha.OpStart, res)
	if got.Status != ha.OpOK || got.Detail != "" {
		t.Fatalf("start: %v %q", got.Status, got.Detail)
	}
	want := "lock --node n1 " + ha.LockDomain + "/" + ha.FSLockName(uuidOf(t, img)) + " -- /bin/sh -c echo held; read line\n" +
		"fsck -p " + img + "\n" +
		"mount --node n1 -o noatime " + img + " " + mp + "\n" +
		"released\n"
	if c := calls(t, log); c != want {
		t.Errorf("calls:\n%s\nwant:\n%s", c, want)
	}

	// Through an agent at its own socket.
	os.Remove(log)
	r.AgentSocket = "/run/test/agent.sock"
	if got := do(t, r, ha.OpStart, res); got.Status != ha.OpOK {
		t.Fatalf("start: %v %q", got.Status, got.Detail)
	}
	if c := calls(t, log); !strings.HasPrefix(c, "lock --socket /run/test/agent.sock ") || !strings.Contains(c, "\nmount --socket /run/test/agent.sock -o noatime ") {
		t.Errorf("calls with an agent socket:\n%s", c)
	}

	// no_fsck: the lock and the mount only.
	os.Remove(log)
	r.AgentSocket = ""
	res.NoFsck = true
	if got := do(t, r, ha.OpStart, res); got.Status != ha.OpOK {
		t.Fatalf("start: %v %q", got.Status, got.Detail)
	}
	if c := calls(t, log); strings.Contains(c, "fsck") || !strings.Contains(c, "\nmount --node n1 ") {
		t.Errorf("calls with no_fsck:\n%s", c)
	}
}

// A clustered volume in use by other nodes (valid slots in its slot map)
// is not checked: the start mounts it beside them and says why it did not.
func TestO2goStartSkipsFsckOfAMountedVolume(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 64<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M")
	v, err := volume.Open(img, volume.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sm, err := v.ReadSlotMap()
	if err != nil {
		t.Fatal(err)
	}
	sm.Slots[0] = ondisk.Slot{Valid: true, Node: 2}
	sm.Slots[2] = ondisk.Slot{Valid: true, Node: 5}
	if err := v.WriteSlotMap(sm); err != nil {
		t.Fatal(err)
	}
	v.Close()
	bin, log := fakeO2go(t)
	r := NewRunner("n1")
	r.O2go = bin
	mp := filepath.Join(t.TempDir(), "mnt")
	got := do(t, r, ha.OpStart, ha.Resource{Name: "data", Type: ha.TypeFS, Device: img, Mountpoint: mp, FSType: "o2go"})
	if got.Status != ha.OpOK {
		t.Fatalf("start: %v %q", got.Status, got.Detail)
	}
	for _, w := range []string{"fsck of " + img + " skipped", "node 2 (slot 0), node 5 (slot 2)", "fsck runs only while no node has the volume mounted"} {
		if !strings.Contains(got.Detail, w) {
			t.Errorf("the start's note %q lacks %q", got.Detail, w)
		}
	}
	c := calls(t, log)
	if strings.Contains(c, "fsck") || !strings.HasPrefix(c, "lock --node n1 ") || !strings.HasSuffix(c, "\nmount --node n1 "+img+" "+mp+"\nreleased\n") {
		t.Errorf("calls:\n%s", c)
	}
}

// fsck that cannot repair the volume fails the start with what to do, and
// nothing is mounted.
func TestO2goStartFailsWhenFsckCannotRepair(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 64<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M")
	bin, log := fakeO2go(t)
	os.WriteFile(filepath.Join(filepath.Dir(bin), "fsck-exit"), []byte("4\n"), 0o644)
	r := NewRunner("n1")
	r.O2go = bin
	got := do(t, r, ha.OpStart, ha.Resource{Name: "data", Type: ha.TypeFS, Device: img, Mountpoint: filepath.Join(t.TempDir(), "mnt"), FSType: "o2go"})
	if got.Status != ha.OpFailed || !strings.Contains(got.Detail, "o2go fsck -p "+img+": exit 4") ||
		!strings.Contains(got.Detail, "found damage") || !strings.Contains(got.Detail, "repair it by hand") {
		t.Fatalf("start: %v %q", got.Status, got.Detail)
	}
	if c := calls(t, log); strings.Contains(c, "mount") || !strings.HasSuffix(c, "released\n") {
		t.Errorf("calls:\n%s", c)
	}
}

// A local volume, or a clustered one mounted -o nocluster, is one node's:
// no cluster lock, no agent, fsck first all the same.
func TestO2goStartOfASingleNodeMount(t *testing.T) {
	realtools.Require(t)
	for _, tc := range []struct {
		name, opts string
		mkfs       []string
	}{
		{"local volume", "", []string{"-M", "local"}},
		{"nocluster", "nocluster", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := realtools.MkfsImage(t, 64<<20, append([]string{"-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M"}, tc.mkfs...)...)
			bin, log := fakeO2go(t)
			r := NewRunner("n1")
			r.O2go = bin
			mp := filepath.Join(t.TempDir(), "mnt")
			if got := do(t, r, ha.OpStart, ha.Resource{Name: "data", Type: ha.TypeFS, Device: img, Mountpoint: mp, FSType: "o2go", Options: tc.opts}); got.Status != ha.OpOK {
				t.Fatalf("start: %v %q", got.Status, got.Detail)
			}
			mount := "mount " + img + " " + mp + "\n"
			if tc.opts != "" {
				mount = "mount -o " + tc.opts + " " + img + " " + mp + "\n"
			}
			if c := calls(t, log); c != "fsck -p "+img+"\n"+mount {
				t.Errorf("calls:\n%s\nwant fsck, then %s", c, mount)
			}
		})
	}
}

// The lock cannot be had (no agent): the start fails saying so, and runs
// nothing else.
func TestO2goStartWithoutTheAgent(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 64<<20, "-b", "4096", "-C", "4096", "-N", "4", "-J", "size=4M")
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	r := NewRunner("n1")
	r.O2go = script(t, dir, "o2go", `echo "$*" >> `+log+`
[ "$1" = lock ] && { echo "o2go: no agent on this machine" >&2; exit 1; }
exit 0`)
	got := do(t, r, ha.OpStart, ha.Resource{Name: "data", Type: ha.TypeFS, Device: img, Mountpoint: filepath.Join(dir, "mnt"), FSType: "o2go"})
	if got.Status != ha.OpFailed || !strings.Contains(got.Detail, "o2go lock "+ha.LockDomain+"/F:") || !strings.Contains(got.Detail, "no agent on this machine") {
		t.Fatalf("start: %v %q", got.Status, got.Detail)
	}
	if c := calls(t, log); strings.Count(c, "\n") != 1 {
		t.Errorf("calls:\n%s", c)
	}
	// A lock that never comes: the start gives up at its timeout.
	r.O2go = script(t, dir, "o2go", "exec sleep 30")
	start := time.Now()
	got = r.Do(context.Background(), ha.Op{Kind: ha.OpStart, Timeout: 500 * time.Millisecond,
		Resource: ha.Resource{Name: "data", Type: ha.TypeFS, Device: img, Mountpoint: filepath.Join(dir, "mnt"), FSType: "o2go"}})
	if got.Status != ha.OpFailed || !strings.Contains(got.Detail, "timed out") || !strings.Contains(got.Detail, "another node is starting the volume") {
		t.Fatalf("start waiting for the lock: %v %q", got.Status, got.Detail)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the start took %v with a 500 ms timeout", d)
	}
}

func TestVolumePath(t *testing.T) {
	if p, err := volumePath("/dev/sdb"); err != nil || p != "/dev/sdb" {
		t.Errorf("a path: %q %v", p, err)
	}
	_, err := volumePath("LABEL=no-such-label-here")
	if err == nil || !strings.Contains(err.Error(), "/dev/disk/by-label/no-such-label-here") {
		t.Errorf("an unknown label: %v", err)
	}
	_, err = volumePath("UUID=0123456789ABCDEF0123456789ABCDEF")
	if err == nil || !strings.Contains(err.Error(), "no device with UUID=0123456789ABCDEF0123456789ABCDEF") {
		t.Errorf("an unknown UUID: %v", err)
	}
}
