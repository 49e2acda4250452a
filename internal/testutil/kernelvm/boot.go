package kernelvm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runConf is one boot, fully decided (defaults applied, options checked).
type runConf struct {
	probe         bool // only check that the guest reaches /init (KVM probe)
	image         string
	readOnly      bool
	noMount       bool
	mountOpts     string // complete, as given to mount -o
	share         string
	env           map[string]string
	script        string
	timeout       time.Duration // whole VM
	scriptTimeout time.Duration
	memMiB, cpus  int
}

// bootOutput is what came back from the guest.
type bootOutput struct {
	stdout, stderr []byte
	status         map[string]string // KEY=VALUE lines; DONE=1 when /init finished
	dmesg          string            // the kernel log: the final dump, else the stream
	console        string            // serial console (kernel messages of level < 4, early panics)
	qemuStderr     string
	qemuErr        error // qemu's exit, when not clean
	timedOut       bool  // killed at runConf.timeout
	ctxErr         error // the caller's context ended first
	wall           time.Duration
}

// Guest ports, in the order /init numbers them (/dev/vport0p1...).
var guestPorts = []string{"stdout", "stderr", "status", "kmsg", "dmesg"}

// kernelArgs: a quiet console, reboot (qemu exits, -no-reboot) on panic,
// unthrottled /dev/kmsg writes, a log buffer large enough for chatty tests,
// boot-time savers that do not change file system behaviour
// (init_on_alloc stays at Debian's default on purpose: uninitialised bytes
// the driver writes look as they would on a real machine), and the HPET
// as clock: under TCG on a busy host the kernel's quick TSC calibration can
// be far off, and a TSC clock then runs many times too fast (measured: 9
// minutes of guest uptime in 33 s), which would fire ScriptTimeout early.
// $O2GO_KERNELVM_APPEND adds to it.
const kernelArgs = "console=ttyS0,115200 quiet panic=-1 printk.devkmsg=on log_buf_len=8M " +
	"clocksource=hpet cryptomgr.notests mitigations=off nowatchdog no_timer_check " +
	"audit=0 apparmor=0 security=none rodata=off 8250.nr_uarts=1"

// boot runs one VM to its end. The error is a host-side failure to start
// it; everything about the guest is in bootOutput.
func boot(ctx context.Context, img *vmImage, rc runConf) (*bootOutput, error) {
	dir, err := os.MkdirTemp("", "o2go-kernelvm-")
	if err != nil {
		return nil, fmt.Errorf("kernelvm: run directory: %w", err)
	}
	if os.Getenv("O2GO_KERNELVM_KEEP") == "" {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "kernelvm: run directory kept (O2GO_KERNELVM_KEEP): %s\n", dir)
	}
	initrd := dir + "/initrd"
	if err := writeRunInitrd(initrd, img, rc); err != nil {
		return nil, err
	}

	cpu := "max"
	if img.accel == "kvm" {
		cpu = "host"
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-nic", "none", "-no-reboot",
		"-machine", "pc", "-accel", img.accel, "-cpu", cpu,
		"-smp", strconv.Itoa(rc.cpus), "-m", strconv.Itoa(rc.memMiB),
		"-kernel", img.kernel, "-initrd", initrd, "-append", strings.TrimSpace(kernelArgs + " " + os.Getenv("O2GO_KERNELVM_APPEND")),
		"-chardev", "file,id=console,path=" + qemuEscape(dir+"/console"), "-serial", "chardev:console",
		"-device", "virtio-serial-pci,id=vser",
	}
	for i, p := range guestPorts {
		args = append(args,
			"-chardev", fmt.Sprintf("file,id=%s,path=%s", p, qemuEscape(dir+"/"+p)),
			"-device", fmt.Sprintf("virtserialport,bus=vser.0,nr=%d,chardev=%s,name=%s", i+1, p, p))
	}
	if rc.image != "" {
		drive := "file=" + qemuEscape(rc.image) + ",format=raw,if=virtio,cache=writeback"
		if rc.readOnly {
			drive += ",readonly=on"
		}
		args = append(args, "-drive", drive)
	}
	if rc.share != "" {
		args = append(args, "-virtfs", "local,path="+qemuEscape(rc.share)+",mount_tag=kernelvm_share,security_model=none,id=kernelvm_share")
	}

	if err := os.WriteFile(dir+"/qemu.cmdline", []byte(shellCommand(append([]string{img.in.qemu}, args...))+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("kernelvm: %w", err)
	}

	vmCtx, cancel := context.WithTimeout(ctx, rc.timeout)
	defer cancel()
	cmd := exec.CommandContext(vmCtx, img.in.qemu, args...)
	var qerr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qerr, &qerr // qemu prints nothing on stdout with -display none
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	out := &bootOutput{wall: time.Since(start), qemuStderr: qerr.String()}
	if runErr != nil && cmd.ProcessState == nil {
		return nil, fmt.Errorf("kernelvm: starting %s: %w", img.in.qemu, runErr)
	}
	switch {
	case ctx.Err() != nil:
		out.ctxErr = ctx.Err()
	case errors.Is(vmCtx.Err(), context.DeadlineExceeded):
		out.timedOut = true
	}
	if runErr != nil {
		out.qemuErr = runErr
	}

	read := func(name string) []byte {
		b, _ := os.ReadFile(dir + "/" + name)
		return b
	}
	out.stdout, out.stderr = read("stdout"), read("stderr")
	out.console = string(read("console"))
	out.status = parseStatus(read("status"), out.console)
	if d := read("dmesg"); out.status["DONE"] == "1" && len(d) > 0 {
		out.dmesg = string(d)
	} else {
		out.dmesg = kmsgToDmesg(read("kmsg"))
	}
	return out, nil
}

// writeRunInitrd writes the cached base initramfs followed by a small
// uncompressed archive with this run's /kernelvm/{conf,env,script}; the
// kernel unpacks concatenated archives in order.
func writeRunInitrd(p string, img *vmImage, rc runConf) error {
	base, err := os.Open(img.initrd)
	if err != nil {
		return fmt.Errorf("kernelvm: %w", err)
	}
	defer base.Close()
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("kernelvm: %w", err)
	}
	if _, err := io.Copy(f, base); err != nil {
		f.Close()
		return fmt.Errorf("kernelvm: copying the initramfs: %w", err)
	}
	a := newCPIO()
	a.File("kernelvm/conf", 0o644, guestConf(img, rc))
	a.File("kernelvm/env", 0o644, guestEnv(rc.env))
	a.File("kernelvm/script", 0o755, []byte(rc.script))
	w := bufio.NewWriter(f)
	_, err = a.WriteTo(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("kernelvm: writing the run initramfs: %w", err)
	}
	return nil
}

// guestConf is /kernelvm/conf, sourced by /init.
func guestConf(img *vmImage, rc runConf) []byte {
	var b strings.Builder
	flag := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	fmt.Fprintf(&b, "KVER=%s\n", shellQuote(img.in.kver))
	fmt.Fprintf(&b, "PROBE=%s RO=%s NO_MOUNT=%s SHARE=%s\n", flag(rc.probe), flag(rc.readOnly), flag(rc.noMount), flag(rc.share != ""))
	fmt.Fprintf(&b, "MOUNT_OPTS=%s\n", shellQuote(rc.mountOpts))
	fmt.Fprintf(&b, "SCRIPT_EXEC=%s\n", flag(strings.HasPrefix(rc.script, "#!")))
	fmt.Fprintf(&b, "SCRIPT_TIMEOUT=%d\n", int((rc.scriptTimeout+time.Second-1)/time.Second))
	return []byte(b.String())
}

// guestEnv is /kernelvm/env, sourced by the script's shell: one export per
// variable, in name order.
func guestEnv(env map[string]string) []byte {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(env[k]))
	}
	return []byte(b.String())
}

// shellQuote quotes s for sh: any bytes but NUL survive.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellCommand is args as one sh command line (the run directory keeps it,
// to rerun a VM by hand).
func shellCommand(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// qemuEscape escapes a value inside a qemu option list, where ',' separates
// options and ",," is a literal comma.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// parseStatus reads the status port's KEY=VALUE lines and those /init had
// to print on the console before the ports existed. The last value wins.
func parseStatus(status []byte, console string) map[string]string {
	m := map[string]string{}
	add := func(line string) {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), "="); ok && k != "" {
			m[k] = v
		}
	}
	for _, l := range strings.Split(console, "\n") {
		if _, rest, ok := strings.Cut(l, "kernelvm-status: "); ok {
			add(rest)
		}
	}
	for _, l := range strings.Split(string(status), "\n") {
		add(l)
	}
	return m
}

// kmsgToDmesg turns records read from /dev/kmsg ("prio,seq,usec,flags;text"
// plus " KEY=value" continuation lines) into dmesg's "[secs.micros] text"
// lines, in sequence order without duplicates.
func kmsgToDmesg(raw []byte) string {
	type rec struct {
		seq  uint64
		line string
	}
	var recs []rec
	seen := map[uint64]bool{}
	for _, l := range strings.Split(string(raw), "\n") {
		hdr, text, ok := strings.Cut(l, ";")
		if !ok || strings.HasPrefix(l, " ") {
			continue
		}
		f := strings.Split(hdr, ",")
		if len(f) < 3 {
			continue
		}
		seq, err1 := strconv.ParseUint(f[1], 10, 64)
		us, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || seen[seq] {
			continue
		}
		seen[seq] = true
		recs = append(recs, rec{seq, fmt.Sprintf("[%5d.%06d] %s", us/1e6, us%1e6, text)})
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].seq < recs[j].seq })
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.line)
		b.WriteByte('\n')
	}
	return b.String()
}
