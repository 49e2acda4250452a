// Package kernelvm runs the real Linux OCFS2 driver as a test oracle: it
// boots this machine's Debian kernel (/boot/vmlinuz-<kver> and
// /lib/modules/<kver>, package linux-image-amd64) in qemu, attaches an
// image file as /dev/vda, mounts it with `mount -t ocfs2`, runs a shell
// script in the guest, unmounts cleanly, powers off and hands back the
// script's stdout, stderr and exit status and the guest's kernel log. The
// o2go tests use it both ways: the kernel writes a tree that o2go must read
// byte for byte, and the kernel mounts and reads volumes that o2go wrote.
// It is imported by _test.go files only.
//
// # Use
//
//	kernelvm.Require(t) // skip on a laptop without qemu/kernel; fail under CI=true
//	res := kernelvm.RunT(t, kernelvm.Options{Image: img, Share: dir}, `
//		dd if=/dev/urandom of=f bs=1M count=4
//		sha256sum f >"$KERNELVM_SHARE/sum"`)
//
// RunT fails the test on any trouble (VM, mount, umount, a script exit
// status other than 0, kernel errors in the log). Run returns the Result
// and a *RunError for negative tests: errors.Is(err, ErrMount), ErrUmount,
// ErrSetup, ErrVM, ErrTimeout. The script's own failure is not an error of
// Run: it is Result.ScriptExit. A guest that goes down in the middle of
// the script on purpose (a fence test resets or panics it) ends Run with
// ErrVM and a Result: ScriptExit -1, what the script wrote until then, and
// Result.Console, the serial console, where the kernel's last words are.
//
// The script runs with dash as /bin/sh (or its own #! interpreter) in
// /mnt, stdin /dev/null, with KERNELVM_MNT, KERNELVM_DEV, KERNELVM_SHARE,
// KERNELVM_RO and Options.Env exported. The userland is busybox plus host
// programs copied in with their libraries (guestTools: setfattr, getfattr,
// GNU cp, stat, touch, ls, dd, truncate, du, df, sync, sha256sum, find,
// xargs, fallocate, fsfreeze, filefrag, chattr, lsattr, bash; acl and
// xfs_io tools when installed).
// Busybox's own sh is not the scripts' shell because it is built to run
// its applets ahead of PATH, which would hide the GNU tools.
//
// # How a run works
//
//  1. Prepare (once per process, under an flock on the cache) finds the
//     inputs and builds what the cache lacks. Run appends a tiny
//     uncompressed cpio (/kernelvm/conf, env, script) to a copy of the
//     cached base initramfs; the kernel unpacks concatenated archives.
//  2. qemu-system-x86_64 -machine pc, 1 CPU, PVH direct boot of the
//     extracted vmlinux, no network, -no-reboot; the image as a virtio
//     disk (cache=writeback, readonly=on for ReadOnly), the share over
//     virtio-9p. qemu is killed when Options.Timeout or the context ends,
//     and dies with the test process (Pdeathsig); the per-run directory
//     is removed (kept when $O2GO_KERNELVM_KEEP is set).
//  3. The guest's /init (busybox sh, guest/init) loads the modules with
//     modprobe, mounts the share, writes a "kernelvm: begin" marker to
//     /dev/kmsg, mounts the volume (heartbeat=none unless MountOpts has
//     heartbeat= or cluster_stack=; ro for ReadOnly), runs the script with
//     an in-guest ScriptTimeout, kills what the script left behind,
//     unmounts every ocfs2 mount, dumps the kernel log and reboots (qemu
//     runs with -no-reboot, so it exits; this needs no ACPI).
//  4. Output travels over five virtio-serial ports, each a file on the
//     host: stdout and stderr (binary-safe: no tty in the way; checked
//     with 1 MiB of random bytes), KEY=VALUE status lines (MOUNT_RC,
//     SCRIPT_RC, UMOUNT_RC, T_* stage times...), the kernel log streamed
//     from /dev/kmsg as it happens (for a guest that never finishes), and
//     the final full dmesg. The serial console (ttyS0) gets only messages
//     of level < 4 and early panics. The ports carry ~120 MB/s (32 MB of
//     stdout in 0.25 s), where 8250 UARTs in raw mode manage ~0.4 MB/s
//     under TCG; and a guest write returns only
//     once qemu has written the bytes to the file, so nothing is lost when
//     the guest goes down.
//  5. Result.KernelErrors are the log lines after the marker that match
//     kernelErrorRE (OCFS2 ERROR/abort, mlog ERROR, BUG, Oops, WARNING,
//     Call Trace, "now read-only", JBD2 errors, I/O errors, hung tasks).
//     A failed mount comes back as ErrMount with the log tail and, for the
//     known cases (clustered volume read-write, userspace stack, journal
//     recovery on a read-only device, unknown features), a hint.
//
// # Cache
//
// $O2GO_KERNELVM_CACHE, else $XDG_CACHE_HOME/o2go/kernelvm, else
// ~/.cache/o2go/kernelvm, about 80 MB:
//
//	vmlinux-<kver>-<sha256 of the bzImage>  ELF kernel from the bzImage, for PVH boot (66 MB)
//	initramfs-<sha256 of its bytes>.cpio    busybox, /init, modules, tools (13 MB, stored
//	                                        uncompressed: unpacks ~0.3 s faster than gzip)
//	accel-<host boot id>                    KVM probe verdict (hosts with vmx/svm only)
//	lock                                    flock: one builder at a time across processes
//
// The initramfs is assembled in memory on every Prepare and named by its
// own hash, so a changed /init, busybox, module or guest tool gives a new
// file; entries unused for 14 days are removed. Files are written to a
// temporary name and renamed, so readers never see a partial one. Prepare
// takes ~1.6 s on an empty cache (mostly unxz of the kernel) and ~0.1 s
// after.
//
// # Timings (this machine: 2 vCPU AMD EPYC VM, TCG, busy neighbours)
//
// A boot to power-off with a trivial script takes 3.1-4.7 s, typically
// 3.5 s: the kernel reaches /init at 1.7-2.6 s of guest uptime, modules
// and devices take ~0.9 s, mount and umount ~0.1 s each, the rest is qemu
// start and exit. Booting the bzImage instead of the PVH vmlinux takes
// ~8 s. The write script of TestKernelVM (10 MB random file, xattrs,
// 20,000 files, reflink, fallocate, 10 MB through 9p) runs 10-18 s, and
// the package's tests (five boots in parallel, one mostly asleep) 42-57 s.
// The host
// is shared: a loaded one slows all of this several times over (25 s boots
// were seen with six CPU hogs on the two cores).
//
// # Knobs
//
// $O2GO_KERNELVM_ACCEL (auto, kvm, tcg), $O2GO_KERNELVM_KVER (which
// installed kernel), $O2GO_KERNELVM_BOOT=bzimage (skip PVH),
// $O2GO_KERNELVM_BUSYBOX, $O2GO_KERNELVM_APPEND (extra kernel command
// line), $O2GO_KERNELVM_KEEP (keep the run directory).
//
// # Known limits
//
//   - No KVM here: /dev/kvm exists but is PVM-backed and the CPU has no
//     vmx/svm flag (a stock kernel does not boot under it), so auto picks
//     TCG at once. On a host with real VT-x/AMD-V one 30 s probe boot
//     decides, and the verdict is kept until the host reboots.
//   - Clustered (non-local) volumes mount only from a read-only device
//     (ReadOnly): there is no cluster stack in the guest, and the kernel
//     refuses a read-write mount without heartbeat. Hard read-only also
//     refuses volumes whose journals need recovery.
//   - One image, raw format, as /dev/vda. qemu's image lock refuses two VMs
//     on one image (ErrVM, with a hint).
//   - The guest clock is the emulated HPET: under TCG on a busy host the
//     kernel's quick TSC calibration can be far off, and a TSC clock then
//     ran 17x too fast. Stage times in Result.Timings are guest uptime.
//   - Busybox's own sh runs only /init; a script that calls "busybox sh"
//     or a busybox applet that execs (env, timeout, nohup) gets busybox
//     applets ahead of the GNU tools.
//   - Kernel error detection is by pattern; negative tests use Run and look
//     at Result.KernelErrors themselves.
//   - Only the x86-64 Debian 6.1 kernel was tried; compressed modules
//     (.ko.xz/.ko.zst, newer Debian) are decompressed with xz/zstd but
//     untested.
package kernelvm
