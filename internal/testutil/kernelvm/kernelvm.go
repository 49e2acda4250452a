package kernelvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"o2go/internal/testutil"
)

// Options says how to run one VM. The zero value of every field but Image
// is a sensible default.
type Options struct {
	// Image is the OCFS2 image file (or block device) attached as /dev/vda.
	Image string
	// ReadOnly attaches the image read-only and mounts with -o ro: the
	// kernel's "hard read-only" mode (no journal replay, no cluster
	// services). It is the only way to mount a clustered volume here, and
	// it leaves the image untouched.
	ReadOnly bool
	// MountOpts are extra ocfs2 mount options. heartbeat=none is added
	// unless they contain heartbeat= or cluster_stack=, as mount.ocfs2
	// does for local and hard read-only mounts.
	MountOpts string
	// NoMount leaves /dev/vda unmounted: the script runs in / and may mount
	// it itself (negative tests). Whatever ocfs2 mounts remain after the
	// script are unmounted by the harness.
	NoMount bool
	// Share is a host directory mounted read-write at /share in the guest
	// over virtio-9p: the way to move bulk data in and out.
	Share string
	// Env is exported to the script. Names must be shell identifiers;
	// values may hold any byte but NUL.
	Env map[string]string
	// Timeout bounds the whole VM, boot to power-off (default 10 min). The
	// VM is killed when it expires, or when the context ends.
	Timeout time.Duration
	// ScriptTimeout bounds the script inside the guest (default Timeout
	// less a quarter, at most 30 s less), so that unmount and the kernel
	// log still happen when a script hangs. The script gets SIGTERM, 5 s
	// later SIGKILL, and Result.ScriptTimedOut is set.
	ScriptTimeout time.Duration
	// MemMiB is the guest's RAM (default 1024).
	MemMiB int
	// CPUs is the number of guest CPUs (default 1, the fastest under TCG).
	CPUs int
}

// Result is what came back from one VM.
type Result struct {
	Stdout, Stderr []byte // the script's, byte for byte
	// ScriptExit is the script's exit status: 128+n when killed by signal
	// n, -1 when it never ran (setup or mount failure, VM died).
	ScriptExit     int
	ScriptTimedOut bool   // killed by the in-guest ScriptTimeout
	MountOpts      string // options given to mount -o
	MountInfo      string // the /proc/mounts line of /mnt: options in effect
	// Dmesg is the guest's kernel log, dmesg format. Complete when the
	// guest finished; else as far as it was streamed out.
	Dmesg string
	// Console is the whole serial console: kernel messages of level < 4
	// (everything once the kernel panics), early panics, and what /init
	// printed before the virtio ports existed. The console is written
	// synchronously by the kernel, so it is where a guest that resets or
	// crashes leaves its last words ("reboot: Restarting system", "Kernel
	// panic - not syncing: ...") when the streamed log is cut short.
	Console string
	// KernelErrors are the lines of Dmesg, from the mount on, that look
	// like trouble (see kernelErrorRE).
	KernelErrors []string
	Kernel       string // kernel release, e.g. "6.1.0-56-amd64"
	Boot         string // "pvh", or "bzImage" and why
	Accel        string // "tcg" or "kvm"
	Timings      Timings
}

// Timings of a run: Wall is measured on the host, the others are guest
// uptime when a stage ended (zero if it did not happen).
type Timings struct {
	Wall    time.Duration // qemu start to exit
	Init    time.Duration // /init started (kernel boot done)
	Setup   time.Duration // modules loaded, /dev/vda and share ready
	Mounted time.Duration
	Script  time.Duration // script ended
	Umount  time.Duration
	End     time.Duration // before the kernel log dump and power-off
}

// Sentinel errors that Run's *RunError wraps: test with errors.Is.
var (
	ErrSetup   = errors.New("guest setup failed")          // insmod, /dev/vda, 9p share
	ErrMount   = errors.New("mount failed")                // mount -t ocfs2 in the guest
	ErrUmount  = errors.New("umount failed")               // after the script
	ErrVM      = errors.New("VM stopped before finishing") // qemu error, kernel panic, crash
	ErrTimeout = errors.New("VM timed out")                // Options.Timeout or the context
	ErrOptions = errors.New("invalid kernelvm options")    // bad Options, nothing was run
)

// RunError is a failure of the VM or of the harness's own steps in it (not
// of the script: that is Result.ScriptExit). It carries what a reader
// needs: what failed, a hint when the cause is known, and the kernel log.
type RunError struct {
	Kind      error  // one of the Err* sentinels
	Detail    string // what failed, with the guest's error message
	Hint      string // what to do about it, when known
	DmesgTail string // the kernel log from the mount on (or its end)
	Console   string // serial console tail (shown when there is no kernel log)
	Qemu      string // qemu's stderr, when it said something
	Cause     error  // the context's error, for a cancelled run
}

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kernelvm: %v: %s", e.Kind, e.Detail)
	if e.Hint != "" {
		fmt.Fprintf(&b, "\nhint: %s", e.Hint)
	}
	if e.Qemu != "" {
		fmt.Fprintf(&b, "\n--- qemu stderr ---\n%s", strings.TrimRight(e.Qemu, "\n"))
	}
	if e.DmesgTail != "" {
		fmt.Fprintf(&b, "\n--- guest kernel log (tail) ---\n%s", strings.TrimRight(e.DmesgTail, "\n"))
	} else if e.Console != "" {
		fmt.Fprintf(&b, "\n--- guest console (tail) ---\n%s", strings.TrimRight(e.Console, "\n"))
	}
	return b.String()
}

func (e *RunError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

const (
	defaultTimeout = 10 * time.Minute
	defaultMemMiB  = 1024
	tailLines      = 40
	beginMarker    = "kernelvm: begin" // written to /dev/kmsg by /init before mounting
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Run boots the kernel with opts.Image as /dev/vda, mounts it at /mnt with
// the ocfs2 driver (unless NoMount), runs script with busybox sh in /mnt,
// unmounts and powers off. The guest exports KERNELVM_MNT=/mnt,
// KERNELVM_DEV=/dev/vda, KERNELVM_SHARE (/share or empty) and
// KERNELVM_RO (0 or 1), plus opts.Env.
//
// The error is nil when the VM ran to the end and mount and umount worked,
// whatever the script's exit status and the kernel log say (see Result);
// otherwise it is a *RunError (or, before anything ran, an error wrapping
// ErrOptions or ErrUnavailable). The Result is non-nil whenever the VM ran.
func Run(ctx context.Context, opts Options, script string) (*Result, error) {
	rc, err := opts.conf(script)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &RunError{Kind: ErrTimeout, Detail: "the context ended before the VM started", Cause: err}
	}
	img, err := prepare()
	if err != nil {
		return nil, err
	}
	out, err := boot(ctx, img, rc)
	if err != nil {
		return nil, err
	}
	return interpret(img, rc, out)
}

// conf checks opts and applies the defaults.
func (opts Options) conf(script string) (runConf, error) {
	bad := func(format string, args ...any) (runConf, error) {
		return runConf{}, fmt.Errorf("%w: "+format, append([]any{ErrOptions}, args...)...)
	}
	rc := runConf{
		readOnly: opts.ReadOnly, noMount: opts.NoMount, env: opts.Env, script: script,
		timeout: opts.Timeout, scriptTimeout: opts.ScriptTimeout, memMiB: opts.MemMiB, cpus: opts.CPUs,
	}
	if opts.Image == "" {
		return bad("no Image")
	}
	img, err := filepath.Abs(opts.Image)
	if err != nil {
		return bad("Image: %v", err)
	}
	st, err := os.Stat(img)
	if err != nil {
		return bad("Image: %v", err)
	}
	if !st.Mode().IsRegular() && st.Mode()&os.ModeDevice == 0 {
		return bad("Image %s is neither a file nor a block device", img)
	}
	if !opts.ReadOnly {
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			return bad("Image %s is not writable (use ReadOnly?): %v", img, err)
		}
		f.Close()
	}
	rc.image = img
	if opts.Share != "" {
		if rc.share, err = filepath.Abs(opts.Share); err != nil {
			return bad("Share: %v", err)
		}
		if st, err := os.Stat(rc.share); err != nil || !st.IsDir() {
			return bad("Share %s is not a directory", rc.share)
		}
	}
	for k, v := range opts.Env {
		if !envName.MatchString(k) {
			return bad("Env name %q is not a shell identifier", k)
		}
		if strings.ContainsRune(v, 0) {
			return bad("Env %s holds a NUL byte", k)
		}
	}
	if strings.ContainsAny(opts.MountOpts, "\x00\n") {
		return bad("MountOpts %q holds a NUL or newline", opts.MountOpts)
	}
	rc.mountOpts = mountOptions(opts.ReadOnly, opts.MountOpts)
	if rc.timeout == 0 {
		rc.timeout = defaultTimeout
	}
	if rc.timeout < 0 || rc.scriptTimeout < 0 || rc.memMiB < 0 || rc.cpus < 0 {
		return bad("negative Timeout, ScriptTimeout, MemMiB or CPUs")
	}
	if rc.scriptTimeout == 0 {
		rc.scriptTimeout = rc.timeout - min(rc.timeout/4, 30*time.Second)
	}
	if rc.memMiB == 0 {
		rc.memMiB = defaultMemMiB
	}
	if rc.cpus == 0 {
		rc.cpus = 1
	}
	return rc, nil
}

// mountOptions is what /init passes to mount -o.
func mountOptions(readOnly bool, extra string) string {
	var o []string
	if readOnly {
		o = append(o, "ro")
	}
	hb := false
	for _, x := range strings.Split(extra, ",") {
		x = strings.TrimSpace(x)
		if strings.HasPrefix(x, "heartbeat=") || strings.HasPrefix(x, "cluster_stack=") {
			hb = true
		}
	}
	if !hb {
		o = append(o, "heartbeat=none")
	}
	for _, x := range strings.Split(extra, ",") {
		if x = strings.TrimSpace(x); x != "" {
			o = append(o, x)
		}
	}
	return strings.Join(o, ",")
}

// kernelErrorRE matches kernel log lines that mean trouble: OCFS2's own
// errors (ocfs2_error, mlog's ML_ERROR "(comm,pid,cpu):func:line ERROR: ",
// aborts), the kernel's
// BUG/Oops/WARNING/Call Trace, a file system gone read-only, JBD2 errors,
// I/O errors and hung tasks.
var kernelErrorRE = regexp.MustCompile(`OCFS2: ERROR|OCFS2: abort|:\d+ ERROR: |ERROR \(device|BUG:|kernel BUG|Oops|WARNING: |Call Trace|general protection|aborted journal|now read-only|JBD2: .*[Ee]rror|I/O error|blocked for more than|Kernel panic`)

// afterMarker returns the lines of dmesg from /init's begin marker on
// (the marker line first), and whether the marker was there.
func afterMarker(dmesg string) ([]string, bool) {
	i := strings.Index(dmesg, beginMarker)
	if i < 0 {
		return nil, false
	}
	if j := strings.LastIndexByte(dmesg[:i], '\n'); j >= 0 {
		i = j + 1
	} else {
		i = 0
	}
	return splitLines(dmesg[i:]), true
}

func splitLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func kernelErrors(dmesg string) []string {
	lines, _ := afterMarker(dmesg)
	var errs []string
	for _, l := range lines {
		if kernelErrorRE.MatchString(l) {
			errs = append(errs, l)
		}
	}
	return errs
}

// dmesgTail is the kernel log from the begin marker on (at most tailLines lines),
// or the end of the whole log if the guest never got that far.
func dmesgTail(dmesg string) string {
	lines, ok := afterMarker(dmesg)
	if !ok {
		lines = splitLines(dmesg)
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return strings.Join(lines, "\n")
}

func tail(s string, n int) string {
	lines := splitLines(s)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// interpret turns a boot's output into the Result and the error.
func interpret(img *vmImage, rc runConf, out *bootOutput) (*Result, error) {
	st := out.status
	res := &Result{
		Stdout: out.stdout, Stderr: out.stderr, ScriptExit: -1,
		ScriptTimedOut: st["SCRIPT_TIMEOUT"] == "1",
		MountOpts:      rc.mountOpts, MountInfo: st["MOUNT_INFO"],
		Dmesg: out.dmesg, Console: out.console, KernelErrors: kernelErrors(out.dmesg),
		Kernel: img.in.kver, Boot: bootText(img), Accel: img.accel,
		Timings: Timings{Wall: out.wall, Init: secs(st["T_INIT"]), Setup: secs(st["T_SETUP"]),
			Mounted: secs(st["T_MOUNTED"]), Script: secs(st["T_SCRIPT"]), Umount: secs(st["T_UMOUNTED"]), End: secs(st["T_END"])},
	}
	if v, ok := st["SCRIPT_RC"]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			res.ScriptExit = n
		}
	}
	fail := func(kind error, detail, hint string) (*Result, error) {
		return res, &RunError{Kind: kind, Detail: detail, Hint: hint, DmesgTail: dmesgTail(out.dmesg), Console: tail(out.console, tailLines)}
	}
	if st["DONE"] != "1" {
		e := &RunError{Kind: ErrVM, DmesgTail: dmesgTail(out.dmesg), Console: tail(out.console, tailLines), Qemu: strings.TrimSpace(out.qemuStderr)}
		stage := guestStage(st)
		switch {
		case out.ctxErr != nil:
			e.Kind, e.Cause = ErrTimeout, out.ctxErr
			e.Detail = fmt.Sprintf("the context ended (%v) after %v, %s", out.ctxErr, out.wall.Round(time.Millisecond), stage)
		case out.timedOut:
			e.Kind = ErrTimeout
			e.Detail = fmt.Sprintf("VM killed after Options.Timeout (%v), %s", rc.timeout, stage)
			e.Hint = "raise Options.Timeout, or lower Options.ScriptTimeout so the guest can still unmount and report"
		default:
			e.Detail = fmt.Sprintf("qemu exited (%v) after %v, %s", exitText(out.qemuErr), out.wall.Round(time.Millisecond), stage)
			if strings.Contains(out.qemuStderr, `Failed to get "write" lock`) {
				e.Hint = "another VM or program holds the image; give each VM its own image"
			} else if strings.Contains(out.console+out.dmesg, "Kernel panic") {
				e.Hint = "the guest kernel panicked; see the log"
			}
		}
		if v := st["SETUP_ERR"]; v != "" {
			e.Detail += "; setup: " + v
		}
		return res, e
	}
	if v := st["SETUP_ERR"]; v != "" {
		return fail(ErrSetup, v, "")
	}
	if !rc.noMount && st["MOUNT_RC"] != "0" {
		detail := fmt.Sprintf("mount -t ocfs2 -o %s /dev/vda /mnt: %s", rc.mountOpts, strings.TrimSpace(st["MOUNT_ERR"]))
		return fail(ErrMount, detail, mountHint(out.dmesg))
	}
	if v := st["UMOUNT_RC"]; v != "" && v != "0" {
		return fail(ErrUmount, st["UMOUNT_ERR"], "a process of the script may still use the mount, or the kernel log shows why")
	}
	return res, nil
}

func bootText(img *vmImage) string {
	if img.pvh {
		return "pvh"
	}
	return "bzImage (" + img.bootNote + ")"
}

// guestStage says how far the guest got, from its status lines.
func guestStage(st map[string]string) string {
	switch {
	case st["T_UMOUNTED"] != "":
		return "after umount"
	case st["T_SCRIPT"] != "":
		return "after the script, during umount"
	case st["T_MOUNTED"] != "" || st["MOUNT_RC"] == "0":
		return "while the script ran"
	case st["T_SETUP"] != "":
		return "during mount"
	case st["T_INIT"] != "":
		return "during guest setup (modules, devices)"
	}
	return "before /init reported anything (kernel boot)"
}

func exitText(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

func secs(v string) time.Duration {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

var stackMismatchRE = regexp.MustCompile(`does not match the filesystem \("([^"]*)"\)`)

// mountHint explains the mount failures the ocfs2 driver is known for.
func mountHint(dmesg string) string {
	switch {
	case strings.Contains(dmesg, "Heartbeat has to be started"):
		return "clustered (o2cb) volume: without a cluster only a read-only device mounts it: Options{ReadOnly: true}"
	case stackMismatchRE.MatchString(dmesg):
		stack := stackMismatchRE.FindStringSubmatch(dmesg)[1]
		return fmt.Sprintf("userspace cluster stack volume (%q): only Options{ReadOnly: true, MountOpts: \"cluster_stack=%s\"} mounts it without a cluster", stack, stack)
	case strings.Contains(dmesg, "Recovery required on readonly"):
		return "the journals need replay, which a read-only device forbids: mount read-write (local volumes) or replay them first"
	case strings.Contains(dmesg, "Readonly device detected but readonly mount was not specified"):
		return "the device is read-only: add ro"
	case strings.Contains(dmesg, "unsupported optional features"):
		return "the volume has feature bits this kernel does not support (see the log for the mask)"
	case strings.Contains(dmesg, "Unrecognized mount option"):
		return "a mount option this kernel does not know: check Options.MountOpts"
	case strings.Contains(dmesg, "superblock probe failed") || strings.Contains(dmesg, "bad block number on superblock") || strings.Contains(dmesg, "found superblock with"):
		return "no valid OCFS2 superblock on the image"
	case strings.Contains(dmesg, "cluster stack passed to mount, but this filesystem does not support it"):
		return "cluster_stack= given for a volume without a userspace stack: drop it"
	case strings.Contains(dmesg, "dlm: no local IP address"):
		return "the userspace stack needs corosync/dlm_controld, absent in the guest: use ReadOnly"
	}
	return ""
}

// Require skips t when the kernel VM cannot run here (fails it under
// CI=true), naming what is missing. It builds the cache (Prepare), so the
// first test to call it pays the one-time cost.
func Require(t testing.TB) {
	t.Helper()
	if err := Prepare(); err != nil {
		if errors.Is(err, ErrUnavailable) {
			testutil.Unavailable(t, "%v", err)
			return
		}
		t.Fatalf("kernelvm: preparing the VM: %v", err)
	}
}

// RunT is Run for tests: it needs the VM (Require), bounds the run by the
// test's deadline, and fails t on any failure: VM, setup, mount or umount
// errors, a script exit status other than 0, and kernel errors in the log.
// The failure message carries the script's output and the kernel log.
func RunT(t testing.TB, opts Options, script string) *Result {
	t.Helper()
	Require(t)
	ctx := context.Background()
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl.Add(-5*time.Second))
			defer cancel()
		}
	}
	res, err := Run(ctx, opts, script)
	if err != nil {
		if res != nil {
			t.Fatalf("%v\n%s", err, outputs(res))
		}
		t.Fatal(err)
	}
	t.Logf("kernelvm: %s (%s, %s), wall %v, guest: init %v, mounted %v, script done %v, end %v",
		res.Kernel, res.Boot, res.Accel, res.Timings.Wall.Round(time.Millisecond), res.Timings.Init, res.Timings.Mounted, res.Timings.Script, res.Timings.End)
	switch {
	case res.ScriptTimedOut:
		t.Fatalf("kernelvm: the guest script timed out (Options.ScriptTimeout)\n%s\n--- guest kernel log (tail) ---\n%s", outputs(res), dmesgTail(res.Dmesg))
	case res.ScriptExit != 0:
		t.Fatalf("kernelvm: the guest script exited %d\n%s\n--- guest kernel log (tail) ---\n%s", res.ScriptExit, outputs(res), dmesgTail(res.Dmesg))
	case len(res.KernelErrors) > 0:
		t.Fatalf("kernelvm: the guest kernel logged errors:\n%s\n--- guest kernel log (tail) ---\n%s", strings.Join(res.KernelErrors, "\n"), dmesgTail(res.Dmesg))
	}
	return res
}

// outputs shows the script's stdout and stderr, cut to their last 4 KiB.
func outputs(res *Result) string {
	cut := func(b []byte) string {
		const max = 4096
		if len(b) > max {
			return fmt.Sprintf("[%d bytes before cut]...%s", len(b)-max, b[len(b)-max:])
		}
		return string(b)
	}
	return fmt.Sprintf("--- script stdout ---\n%s\n--- script stderr ---\n%s", cut(res.Stdout), cut(res.Stderr))
}
