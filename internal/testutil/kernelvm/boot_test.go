package kernelvm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"o2go/internal/testutil"
)

func TestKmsgToDmesg(t *testing.T) {
	// What cat /dev/kmsg gives: records with continuation lines, and (after
	// a restart of the reader) records again.
	raw := "6,2,1500000,-;second\n" +
		" SUBSYSTEM=virtio\n" +
		" DEVICE=+virtio:virtio1\n" +
		"4,1,12,-;first; with a semicolon\n" +
		"6,2,1500000,-;second\n" +
		"3,3,61000000,c;ocfs2: ERROR (device vda): x\n" +
		"garbage\n" +
		"6,x,1,-;bad seq\n"
	want := "[    0.000012] first; with a semicolon\n" +
		"[    1.500000] second\n" +
		"[   61.000000] ocfs2: ERROR (device vda): x\n"
	if got := kmsgToDmesg([]byte(raw)); got != want {
		t.Errorf("kmsgToDmesg:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseStatus(t *testing.T) {
	console := "[    1.0] some kernel line\nkernelvm-status: SETUP_ERR=early\nkernelvm-status: T_INIT=2.50\r\n"
	status := "T_INIT=2.51\nMOUNT_ERR=mount: a=b failed\nnot a status line\nDONE=1\n"
	got := parseStatus([]byte(status), console)
	want := map[string]string{"SETUP_ERR": "early", "T_INIT": "2.51", "MOUNT_ERR": "mount: a=b failed", "DONE": "1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseStatus = %v, want %v", got, want)
	}
}

// TestGuestEnvThroughDash sources the generated env file with dash, the
// guest scripts' shell, and checks every value comes back byte for byte.
func TestGuestEnvThroughDash(t *testing.T) {
	dash, err := exec.LookPath("dash")
	if err != nil {
		testutil.Unavailable(t, "dash not installed")
	}
	env := map[string]string{
		"A":    "it's \"quoted\"\n$HOME `id` $(id) \\ \t\x01\xff end'",
		"B":    "",
		"C_1":  "'",
		"PATH": "/custom",
	}
	p := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(p, guestEnv(env), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(dash, "-c", `. "$1" && printf '%s\0' "$A" "$B" "$C_1" "$PATH"`, "sh", p).Output()
	if err != nil {
		t.Fatalf("dash: %v", err)
	}
	got := strings.Split(string(out), "\x00")
	want := []string{env["A"], env["B"], env["C_1"], env["PATH"], ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("values after sourcing:\n%q\nwant\n%q", got, want)
	}
}

func TestMountOptions(t *testing.T) {
	for _, c := range []struct {
		ro    bool
		extra string
		want  string
	}{
		{false, "", "heartbeat=none"},
		{true, "", "ro,heartbeat=none"},
		{false, "user_xattr, acl", "heartbeat=none,user_xattr,acl"},
		{true, "cluster_stack=pcmk", "ro,cluster_stack=pcmk"},
		{false, "heartbeat=local", "heartbeat=local"},
		{false, "noheartbeat=x", "heartbeat=none,noheartbeat=x"},
	} {
		if got := mountOptions(c.ro, c.extra); got != c.want {
			t.Errorf("mountOptions(%v, %q) = %q, want %q", c.ro, c.extra, got, c.want)
		}
	}
}

func TestQemuEscape(t *testing.T) {
	if got := qemuEscape("/a,b/c,,d"); got != "/a,,b/c,,,,d" {
		t.Errorf("qemuEscape = %q", got)
	}
}

const guestLog = "[    2.000000] virtio_blk virtio1: [vda] 2097152 512-byte logical blocks\n" +
	"[    2.100000] WARNING: boot-time noise before the marker is not ours\n" +
	"[    3.000000] kernelvm: begin\n"

func TestInterpret(t *testing.T) {
	img := &vmImage{in: &hostInputs{kver: "6.1.0-test"}, accel: "tcg"}
	rc := runConf{mountOpts: "heartbeat=none", timeout: time.Minute}
	done := map[string]string{"T_INIT": "2.5", "T_SETUP": "2.9", "MOUNT_RC": "0", "T_MOUNTED": "3.1",
		"SCRIPT_RC": "3", "T_SCRIPT": "4", "UMOUNT_RC": "0", "T_UMOUNTED": "4.1", "T_END": "4.2", "DONE": "1"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range done {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	for _, c := range []struct {
		name      string
		out       bootOutput
		kind      error
		exit      int
		hint      string // substring of the hint
		detail    string // substring of the detail
		kernelErr int
	}{
		{name: "script exit is not an error", out: bootOutput{status: done, dmesg: guestLog}, exit: 3},
		{name: "kernel errors after the marker only",
			out:  bootOutput{status: done, dmesg: guestLog + "[ 3.5] OCFS2: ERROR (device vda): ocfs2_validate_inode_block: Invalid dinode #66: signature = \n[ 3.6] File system is now read-only.\n[ 3.7] fine\n"},
			exit: 3, kernelErr: 2},
		{name: "mount failure of a clustered volume",
			out:  bootOutput{status: with("MOUNT_RC", "255", "MOUNT_ERR", "mount: mounting /dev/vda on /mnt failed: Invalid argument", "SCRIPT_RC", "", "T_MOUNTED", ""), dmesg: guestLog + "[ 3.2] (mount,80,0):ocfs2_verify_heartbeat:1234 ERROR: Heartbeat has to be started to mount a read-write clustered device.\n"},
			kind: ErrMount, exit: -1, hint: "ReadOnly: true", detail: "-o heartbeat=none /dev/vda /mnt: mount: mounting", kernelErr: 1},
		{name: "userspace stack hint",
			out:  bootOutput{status: with("MOUNT_RC", "255", "SCRIPT_RC", ""), dmesg: guestLog + `[ 3.2] (mount,80,0):ocfs2_fill_super:1 ERROR: cluster stack passed to mount ("") does not match the filesystem ("pcmk")` + "\n"},
			kind: ErrMount, exit: -1, hint: `MountOpts: "cluster_stack=pcmk"`, kernelErr: 1},
		{name: "umount failure", out: bootOutput{status: with("UMOUNT_RC", "1", "UMOUNT_ERR", "/mnt: umount: can't unmount /mnt: Device or resource busy"), dmesg: guestLog},
			kind: ErrUmount, exit: 3, detail: "Device or resource busy"},
		{name: "setup failure", out: bootOutput{status: map[string]string{"T_INIT": "2", "SETUP_ERR": "/dev/vda did not appear", "DONE": "1"}},
			kind: ErrSetup, exit: -1, detail: "/dev/vda did not appear"},
		{name: "VM timeout while the script ran", out: bootOutput{status: map[string]string{"T_INIT": "2", "T_SETUP": "3", "MOUNT_RC": "0", "T_MOUNTED": "3"}, timedOut: true, dmesg: guestLog},
			kind: ErrTimeout, exit: -1, detail: "while the script ran"},
		{name: "context cancelled during boot", out: bootOutput{status: map[string]string{}, ctxErr: errors.New("context canceled")},
			kind: ErrTimeout, exit: -1, detail: "before /init reported anything"},
		{name: "kernel panic", out: bootOutput{status: map[string]string{"T_INIT": "2"}, console: "Kernel panic - not syncing: Attempted to kill init!\n"},
			kind: ErrVM, exit: -1, hint: "panicked", detail: "during guest setup"},
		{name: "image locked", out: bootOutput{status: map[string]string{}, qemuErr: errors.New("exit status 1"), qemuStderr: `qemu-system-x86_64: -drive file=x: Failed to get "write" lock`},
			kind: ErrVM, exit: -1, hint: "holds the image"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := c.out
			res, err := interpret(img, rc, &out)
			if res == nil {
				t.Fatal("nil Result")
			}
			if c.kind == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
			} else {
				var re *RunError
				if !errors.Is(err, c.kind) || !errors.As(err, &re) {
					t.Fatalf("err = %v, want a RunError of kind %v", err, c.kind)
				}
				if !strings.Contains(re.Hint, c.hint) || !strings.Contains(re.Detail, c.detail) {
					t.Errorf("hint %q detail %q, want them to contain %q and %q", re.Hint, re.Detail, c.hint, c.detail)
				}
				if out.dmesg != "" && !strings.Contains(err.Error(), "--- guest kernel log (tail) ---\n[    3.000000] kernelvm: begin") {
					t.Errorf("the error lacks the kernel log tail:\n%v", err)
				}
			}
			if res.ScriptExit != c.exit || len(res.KernelErrors) != c.kernelErr {
				t.Errorf("ScriptExit %d KernelErrors %q, want %d and %d errors", res.ScriptExit, res.KernelErrors, c.exit, c.kernelErr)
			}
		})
	}
}

func TestDmesgTailStartsAtTheMarker(t *testing.T) {
	var b strings.Builder
	b.WriteString("[ 1.0] boot line\n[ 2.0] kernelvm: begin\n")
	for i := 0; i < 100; i++ {
		b.WriteString("[ 3.0] after\n")
	}
	tail := dmesgTail(b.String())
	if n := len(strings.Split(tail, "\n")); n != tailLines || strings.Contains(tail, "boot line") {
		t.Errorf("tail has %d lines (want %d), boot lines included: %v", n, tailLines, strings.Contains(tail, "boot line"))
	}
	if got := dmesgTail("[ 1.0] a\n[ 2.0] b\n"); got != "[ 1.0] a\n[ 2.0] b" {
		t.Errorf("without a marker the tail is the log's end, got %q", got)
	}
}

// TestProbeBoot runs the boot that decides whether KVM works (here under
// TCG): the guest must report from /init and power off, without a disk.
func TestProbeBoot(t *testing.T) {
	testutil.Long(t)
	img, err := prepare()
	if errors.Is(err, ErrUnavailable) {
		testutil.Unavailable(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := boot(context.Background(), img, runConf{probe: true, timeout: 2 * time.Minute, memMiB: 256, cpus: 1})
	if err != nil {
		t.Fatal(err)
	}
	if out.status["PROBE_OK"] != "1" || out.status["DONE"] != "1" || out.timedOut {
		t.Fatalf("probe boot: status %v, timed out %v, qemu %v %s\nconsole:\n%s", out.status, out.timedOut, out.qemuErr, out.qemuStderr, out.console)
	}
	if !strings.Contains(out.dmesg, "Linux version "+img.in.kver) {
		t.Errorf("the final kernel log lacks the boot banner of %s", img.in.kver)
	}
}
