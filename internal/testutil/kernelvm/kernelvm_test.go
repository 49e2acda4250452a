package kernelvm_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// TestKernelVM boots the real kernel five times, in parallel (one of the
// boots mostly sleeps): the kernel writes a tree the host checks with
// ocfs2-tools; a clustered volume mounts read-only; and a failing script,
// a failing mount, a script timeout and a VM timeout are each reported as
// such.
func TestKernelVM(t *testing.T) {
	testutil.Long(t)
	realtools.Require(t)
	kernelvm.Require(t)

	t.Run("KernelWritesHostReads", testKernelWritesHostReads)
	t.Run("ClusteredReadOnlyAndScriptFailure", testClusteredReadOnly)
	t.Run("MountFailure", testMountFailure)
	t.Run("ScriptTimeout", testScriptTimeout)
	t.Run("VMTimeout", testVMTimeout)
}

// writeScript makes, with the kernel driver: a 10 MB random file with an
// inline and a long xattr, a fast symlink, a 20,000-entry directory, a
// reflinked copy and a fallocated (unwritten) range. It reports through
// the 9p share and sends the file's first MiB to stdout (binary).
const writeScript = `set -eu
dd if=/dev/urandom of=big bs=1M count=10 2>/dev/null
setfattr -n user.color -v blue big
setfattr -n user.long -v "$(head -c 3000 /dev/zero | tr '\0' L)" big
ln -s big link
mkdir many
i=0
while [ $i -lt 20000 ]; do : >many/f$i; i=$((i + 1)); done
cp --reflink=always big big.reflink
fallocate -l 8M falloc
sha256sum big big.reflink >"$KERNELVM_SHARE/sums"
cp big "$KERNELVM_SHARE/big.copy"
getfattr -n user.long --only-values big >"$KERNELVM_SHARE/long"
filefrag -v big.reflink >"$KERNELVM_SHARE/frag"
stat -c '%s %b %F' falloc >"$KERNELVM_SHARE/falloc"
ls many | wc -l >"$KERNELVM_SHARE/count"
head -c 1048576 big
echo done >&2
`

func testKernelWritesHostReads(t *testing.T) {
	t.Parallel()
	img := realtools.MkfsImage(t, 1<<30, "-b", "4096", "-C", "4096", "-N", "4", "-L", "kvmw", "--fs-features=local")
	share := t.TempDir()
	res := kernelvm.RunT(t, kernelvm.Options{Image: img, Share: share}, writeScript)

	if got := string(res.Stderr); got != "done\n" {
		t.Errorf("stderr = %q, want %q", got, "done\n")
	}
	readShare := func(name string) string {
		b, err := os.ReadFile(filepath.Join(share, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dump := func(path string) []byte {
		out := filepath.Join(t.TempDir(), "dump")
		realtools.Debugfs(t, img, fmt.Sprintf("dump %s %s", path, out))
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatalf("debugfs dump %s: %v", path, err)
		}
		return b
	}

	big := dump("/big")
	if len(big) != 10<<20 {
		t.Fatalf("debugfs dumps /big as %d bytes, want %d", len(big), 10<<20)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(big))
	wantSums := sum + "  big\n" + sum + "  big.reflink\n"
	if got := readShare("sums"); got != wantSums {
		t.Errorf("guest sha256sum:\n%s\nwant (from debugfs dump):\n%s", got, wantSums)
	}
	if !bytes.Equal(dump("/big.reflink"), big) {
		t.Error("debugfs dump of /big.reflink differs from /big")
	}
	if !bytes.Equal([]byte(readShare("big.copy")), big) {
		t.Error("the copy the guest wrote to the 9p share differs from debugfs's dump")
	}
	if !bytes.Equal(res.Stdout, big[:1<<20]) {
		t.Errorf("stdout (%d bytes) is not the first MiB of /big: the channel is not binary-safe", len(res.Stdout))
	}

	if got, want := readShare("long"), strings.Repeat("L", 3000); got != want {
		t.Errorf("guest getfattr user.long: %d bytes, want 3000 x L", len(got))
	}
	if out := realtools.Debugfs(t, img, "xattr /big"); !strings.Contains(out, "Extended attributes in total: 2") {
		t.Errorf("debugfs xattr /big:\n%s\nwant 2 attributes", out)
	}
	if out := realtools.Debugfs(t, img, "stat /link"); !strings.Contains(out, "Fast Symlink Destination: big") {
		t.Errorf("debugfs stat /link:\n%s", out)
	}
	if out := realtools.Debugfs(t, img, "stat /big.reflink"); !strings.Contains(out, "Refcounted") {
		t.Errorf("debugfs stat /big.reflink shows no refcounted extent:\n%s", out)
	}
	if out := readShare("frag"); !strings.Contains(out, "shared") {
		t.Errorf("filefrag -v big.reflink in the guest shows no shared extent:\n%s", out)
	}
	if out := realtools.Debugfs(t, img, "stat /falloc"); !regexp.MustCompile(`0\s+0\s+2048\s+\d+\s+0x1 Unwritten`).MatchString(out) {
		t.Errorf("debugfs stat /falloc: want one unwritten 2048-cluster extent:\n%s", out)
	}
	if got := readShare("falloc"); got != "8388608 16384 regular file\n" {
		t.Errorf("guest stat of falloc = %q", got)
	}

	if out := realtools.Debugfs(t, img, "stat /many"); !strings.Contains(out, "IndexedDir") {
		t.Errorf("debugfs stat /many: not an indexed directory:\n%s", out)
	}
	names := map[string]bool{}
	for _, l := range strings.Split(realtools.Debugfs(t, img, "ls /many"), "\n") {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "f") {
				names[f] = true
			}
		}
	}
	if len(names) != 20000 || strings.TrimSpace(readShare("count")) != "20000" {
		t.Errorf("/many: debugfs lists %d names f*, the guest counted %s; want 20000", len(names), readShare("count"))
	}
	for _, n := range []string{"f0", "f9999", "f19999"} {
		if !names[n] {
			t.Errorf("debugfs ls /many lacks %s", n)
		}
	}

	realtools.RequireFsckClean(t, img)
}

// clusteredImage makes a classic o2cb (not local) volume: the kernel in
// the VM has no cluster, so it can only mount it from a read-only device.
func clusteredImage(t *testing.T) string {
	return realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2", "-L", "kvmc")
}

func fileSum(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func testClusteredReadOnly(t *testing.T) {
	t.Parallel()
	img := clusteredImage(t)
	before := fileSum(t, img)
	odd := "it's \"quoted\"\n$HOME `id` \\ \t ünï"
	res, err := kernelvm.Run(context.Background(), kernelvm.Options{
		Image: img, ReadOnly: true, Env: map[string]string{"ODD": odd},
	}, `ls -a
printf '[%s]\n' "$ODD" "$KERNELVM_RO" "$KERNELVM_SHARE" "$PWD"
for c in cp stat fallocate; do command -v $c; done # GNU's, not busybox applets
echo bye >&2
exit 7`)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.ScriptExit != 7 || res.ScriptTimedOut {
		t.Errorf("ScriptExit %d (timed out %v), want 7", res.ScriptExit, res.ScriptTimedOut)
	}
	want := ".\n..\nlost+found\n[" + odd + "]\n[1]\n[]\n[/mnt]\n" +
		"/usr/local/bin/cp\n/usr/local/bin/stat\n/usr/local/bin/fallocate\n"
	if string(res.Stdout) != want || string(res.Stderr) != "bye\n" {
		t.Errorf("stdout %q stderr %q, want %q and %q", res.Stdout, res.Stderr, want, "bye\n")
	}
	if !strings.Contains(res.MountInfo, " ro,") || !strings.HasPrefix(res.MountOpts, "ro,heartbeat=none") {
		t.Errorf("MountInfo %q MountOpts %q: want a read-only mount", res.MountInfo, res.MountOpts)
	}
	if !strings.Contains(res.Dmesg, "Cluster services will not be used") {
		t.Errorf("the kernel log lacks the hard read-only notice:\n%s", res.Dmesg)
	}
	if len(res.KernelErrors) > 0 {
		t.Errorf("kernel errors: %q", res.KernelErrors)
	}
	if fileSum(t, img) != before {
		t.Error("a read-only run changed the image")
	}
}

func testMountFailure(t *testing.T) {
	t.Parallel()
	img := clusteredImage(t)
	res, err := kernelvm.Run(context.Background(), kernelvm.Options{Image: img}, "echo the script ran")
	var re *kernelvm.RunError
	if !errors.Is(err, kernelvm.ErrMount) || !errors.As(err, &re) {
		t.Fatalf("Run of a clustered volume read-write: err = %v, want ErrMount", err)
	}
	if res == nil || res.ScriptExit != -1 || len(res.Stdout) != 0 {
		t.Fatalf("the script ran after a failed mount: %+v", res)
	}
	if !strings.Contains(re.DmesgTail, "Heartbeat has to be started") || !strings.Contains(re.Hint, "ReadOnly: true") {
		t.Errorf("want the kernel's reason in the log tail and a ReadOnly hint, got:\n%v", err)
	}
	if !strings.Contains(re.Detail, "mount -t ocfs2 -o heartbeat=none /dev/vda /mnt: ") || !strings.Contains(err.Error(), "--- guest kernel log (tail) ---") {
		t.Errorf("the error does not say which mount failed, or lacks the log:\n%v", err)
	}
	if len(res.KernelErrors) == 0 {
		t.Error("the mount's kernel errors are not in Result.KernelErrors")
	}
}

func testScriptTimeout(t *testing.T) {
	t.Parallel()
	img := realtools.MkfsImage(t, 64<<20, "-N", "1", "--fs-features=local")
	// The background child keeps /mnt busy: the harness must kill it to
	// unmount.
	res, err := kernelvm.Run(context.Background(), kernelvm.Options{Image: img, ScriptTimeout: 3 * time.Second},
		`(cd /mnt && sleep 600) &
echo started
sleep 600
echo never`)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.ScriptTimedOut || res.ScriptExit != 128+15 || string(res.Stdout) != "started\n" {
		t.Errorf("ScriptTimedOut %v ScriptExit %d stdout %q; want true, 143, \"started\\n\"", res.ScriptTimedOut, res.ScriptExit, res.Stdout)
	}
	if d := res.Timings.Script - res.Timings.Mounted; d < 3*time.Second || d > 9*time.Second {
		t.Errorf("the script ran %v (guest clock), want about 3 s", d)
	}
}

func testVMTimeout(t *testing.T) {
	t.Parallel()
	img := realtools.MkfsImage(t, 64<<20, "-N", "1", "--fs-features=local")
	const timeout = 20 * time.Second
	start := time.Now()
	res, err := kernelvm.Run(context.Background(), kernelvm.Options{Image: img, Timeout: timeout, ScriptTimeout: time.Hour},
		"echo started\nexec sleep 600")
	took := time.Since(start)
	var re *kernelvm.RunError
	if !errors.Is(err, kernelvm.ErrTimeout) || !errors.As(err, &re) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if took < timeout || took > timeout+10*time.Second {
		t.Errorf("Run returned after %v, want just after the %v timeout", took, timeout)
	}
	if !strings.Contains(re.Detail, "Options.Timeout") || re.DmesgTail == "" && re.Console == "" {
		t.Errorf("the error lacks the cause or the guest log:\n%v", err)
	}
	// How far the guest got depends on the host's load; what is reported
	// must match it.
	if string(res.Stdout) == "started\n" {
		if !strings.Contains(re.Detail, "while the script ran") || !strings.Contains(re.DmesgTail, "ocfs2: Mounting device") {
			t.Errorf("the script ran, but the error says otherwise or lacks the mount in the log:\n%v", err)
		}
	} else {
		t.Logf("under this host's load the guest did not reach the script in %v: %v", timeout, re.Detail)
	}
	requireNoQemuFor(t, img)

	// Cancelling the context kills the VM too.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = kernelvm.Run(ctx, kernelvm.Options{Image: img}, "true")
	if !errors.Is(err, kernelvm.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with an expiring context: err = %v, want ErrTimeout and context.DeadlineExceeded", err)
	}
	requireNoQemuFor(t, img)
}

// requireNoQemuFor fails t if a qemu process still has img open (the
// image path is on its command line).
func requireNoQemuFor(t *testing.T, img string) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("qemu")) {
			continue
		}
		if bytes.Contains(cmdline, []byte("file="+img+",")) {
			t.Errorf("qemu (pid %s) still runs after Run returned: %s", e.Name(), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
}

// TestBadOptions: bad options are refused before anything boots.
func TestBadOptions(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "vol.img")
	if err := os.WriteFile(img, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]kernelvm.Options{
		"no image":        {},
		"missing image":   {Image: filepath.Join(dir, "nosuch")},
		"directory image": {Image: dir},
		"bad env name":    {Image: img, ReadOnly: true, Env: map[string]string{"A-B": "x"}},
		"NUL in env":      {Image: img, ReadOnly: true, Env: map[string]string{"A": "x\x00y"}},
		"share not a dir": {Image: img, ReadOnly: true, Share: img},
		"newline in opts": {Image: img, ReadOnly: true, MountOpts: "acl\nx"},
		"negative":        {Image: img, ReadOnly: true, Timeout: -time.Second},
	} {
		if _, err := kernelvm.Run(context.Background(), opts, "true"); !errors.Is(err, kernelvm.ErrOptions) {
			t.Errorf("%s: err = %v, want ErrOptions", name, err)
		}
	}
	if os.Geteuid() != 0 { // root may write a 0444 file
		if _, err := kernelvm.Run(context.Background(), kernelvm.Options{Image: img}, "true"); !errors.Is(err, kernelvm.ErrOptions) || !strings.Contains(err.Error(), "ReadOnly") {
			t.Errorf("read-write run of a read-only image: err = %v, want ErrOptions suggesting ReadOnly", err)
		}
	}
}
