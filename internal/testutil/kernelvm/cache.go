package kernelvm

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

//go:embed guest/init
var guestInit []byte

// vmImage is what every run boots from: the kernel, the base initramfs and
// the accelerator, settled once per process by prepare.
type vmImage struct {
	in       *hostInputs
	kernel   string // file given to qemu -kernel
	pvh      bool   // kernel is the extracted ELF (PVH entry), not the bzImage
	bootNote string // why the bzImage is booted, when it is
	initrd   string // base initramfs in the cache
	accel    string // "kvm" or "tcg"
	accelWhy string
}

var prepared struct {
	sync.Mutex
	img *vmImage
}

// Prepare finds the kernel, busybox, qemu and the guest tools, and builds
// what the cache lacks: the extracted vmlinux and the base initramfs. It is
// idempotent and cheap once done (Run calls it); call it first to keep the
// one-time cost out of a timed test. Safe for concurrent use, also between
// processes (the cache is built under flock). A missing prerequisite gives
// an error that wraps ErrUnavailable and names the package to install.
func Prepare() error {
	_, err := prepare()
	return err
}

func prepare() (*vmImage, error) {
	prepared.Lock()
	defer prepared.Unlock()
	if img := prepared.img; img != nil && exists(img.kernel) && exists(img.initrd) {
		return img, nil // (unless someone emptied the cache meanwhile)
	}
	in, err := findHostInputs()
	if err != nil {
		return nil, err
	}
	dir, err := cacheDir()
	if err != nil {
		return nil, err
	}
	unlock, err := lockCache(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	img := &vmImage{in: in}
	if img.kernel, img.pvh, img.bootNote, err = bootKernel(dir, in); err != nil {
		return nil, err
	}
	if img.initrd, err = baseInitramfs(dir, in); err != nil {
		return nil, err
	}
	img.accel, img.accelWhy = chooseAccel(dir, img)
	removeStale(dir, 14*24*time.Hour)
	prepared.img = img
	return img, nil
}

// cacheDir is $O2GO_KERNELVM_CACHE, else $XDG_CACHE_HOME/o2go/kernelvm,
// else ~/.cache/o2go/kernelvm.
func cacheDir() (string, error) {
	if d := os.Getenv("O2GO_KERNELVM_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kernelvm: no cache directory (set O2GO_KERNELVM_CACHE): %w", err)
	}
	return filepath.Join(d, "o2go", "kernelvm"), nil
}

// lockCache takes the cache's exclusive flock, which serialises builders
// across processes (go test runs packages in parallel).
func lockCache(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kernelvm: cache: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kernelvm: cache lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("kernelvm: flock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing drops the lock
}

// writeAtomic writes data to p through a temporary file and a rename, so
// that a reader never sees a partial file.
func writeAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("kernelvm: writing %s: %w", p, err)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// touch marks a cache entry as used, for removeStale.
func touch(p string) {
	now := time.Now()
	os.Chtimes(p, now, now)
}

// removeStale deletes cache entries (other kernels, initramfs images of
// other tool sets) not used for maxAge.
func removeStale(dir string, maxAge time.Duration) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, "vmlinux-") && !strings.HasPrefix(n, "initramfs-") && !strings.HasPrefix(n, "accel-") && !strings.HasPrefix(n, ".tmp-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > maxAge {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// bootKernel returns the kernel image to boot: the ELF extracted from the
// bzImage (cached as vmlinux-<kver>-<hash of the bzImage>) for PVH direct
// boot, or the bzImage itself when extraction is impossible or
// O2GO_KERNELVM_BOOT=bzimage asks for it.
func bootKernel(dir string, in *hostInputs) (kernel string, pvh bool, note string, err error) {
	if os.Getenv("O2GO_KERNELVM_BOOT") == "bzimage" {
		return in.vmlinuz, false, "O2GO_KERNELVM_BOOT=bzimage", nil
	}
	bz, err := os.ReadFile(in.vmlinuz)
	if err != nil {
		return "", false, "", &unavailableError{missing: []string{"a readable " + in.vmlinuz + " (" + err.Error() + ")"}}
	}
	sum := sha256.Sum256(bz)
	p := filepath.Join(dir, fmt.Sprintf("vmlinux-%s-%x", in.kver, sum[:8]))
	if _, err := os.Stat(p); err == nil {
		touch(p)
		return p, true, "", nil
	}
	elf, err := extractVmlinux(bz, in.busybox)
	if err != nil { // not cached: a missing decompressor may be installed later
		return in.vmlinuz, false, "no PVH kernel: " + err.Error(), nil
	}
	if err := writeAtomic(p, elf); err != nil {
		return "", false, "", err
	}
	return p, true, "", nil
}

// initramfsFormat is hashed into the cache key with the archive's bytes:
// bump it to force a rebuild the bytes would not show.
const initramfsFormat = "kernelvm-initramfs-1"

// baseInitramfs builds the base initramfs in memory and stores it as
// initramfs-<hash of its bytes>.cpio unless the cache has it: any change
// to /init, busybox, a module or a guest tool gives a new file.
func baseInitramfs(dir string, in *hostInputs) (string, error) {
	a, err := buildInitramfs(in)
	if err != nil {
		return "", err
	}
	var raw bytes.Buffer
	io.WriteString(&raw, initramfsFormat) // hashed, not stored
	hashFrom := raw.Len()
	if _, err := a.WriteTo(&raw); err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw.Bytes())
	p := filepath.Join(dir, "initramfs-"+hex.EncodeToString(sum[:8])+".cpio")
	if _, err := os.Stat(p); err == nil {
		touch(p)
		return p, nil
	}
	// Stored uncompressed: the guest unpacks it ~0.3 s faster under TCG
	// than a gzipped one, and it is only ~13 MB.
	data := raw.Bytes()[hashFrom:] // WriteTo pads to 4 bytes: the run archive follows
	if err := writeAtomic(p, data); err != nil {
		return "", err
	}
	return p, nil
}

// buildInitramfs assembles the guest's root file system: busybox and its
// applet links, /init, the modules and the guest tools with their
// libraries.
func buildInitramfs(in *hostInputs) (*cpioArchive, error) {
	a := newCPIO()
	for _, d := range []string{"dev", "proc", "sys", "tmp", "mnt", "share", "root", "run", "etc", "kernelvm", "usr/local/bin"} {
		a.Dir(d, 0o755)
	}
	a.Dir("tmp", 0o1777)
	a.CharDev("dev/console", 0o600, 5, 1)
	a.File("init", 0o755, guestInit)
	a.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	a.File("etc/group", 0o644, []byte("root:x:0:\n"))

	bb, err := os.ReadFile(in.busybox)
	if err != nil {
		return nil, fmt.Errorf("kernelvm: %w", err)
	}
	a.File("bin/busybox", 0o755, bb)
	out, err := exec.Command(in.busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("kernelvm: %s --list-full: %w", in.busybox, err)
	}
	for _, applet := range strings.Fields(string(out)) {
		a.Symlink(applet, "/bin/busybox")
	}

	if err := addModules(a, in); err != nil {
		return nil, err
	}

	for _, t := range in.tools {
		data, err := os.ReadFile(t.path)
		if err != nil {
			return nil, fmt.Errorf("kernelvm: guest tool: %w", err)
		}
		a.File(t.at, 0o755, data)
		libs, err := sharedObjects(t.path)
		if err != nil {
			return nil, fmt.Errorf("kernelvm: guest tool %s: %w", t.name, err)
		}
		for _, l := range libs {
			if _, ok := a.entries[cpioName(l)]; ok {
				continue
			}
			data, err := os.ReadFile(l)
			if err != nil {
				return nil, fmt.Errorf("kernelvm: guest tool %s: %w", t.name, err)
			}
			a.File(l, 0o755, data)
		}
	}
	return a, nil
}

// addModules puts the module closures into /lib/modules/<kver> (plain
// .ko: busybox insmod may not read compressed ones), a modules.dep for
// the guest's modprobe, and the load lists /init reads.
func addModules(a *cpioArchive, in *hostInputs) error {
	md, err := readModulesDep(in.modDir)
	if err != nil {
		return fmt.Errorf("kernelvm: %w", err)
	}
	have := map[string]bool{}
	lists := map[string][]string{}
	for _, set := range []struct {
		list  string
		names []string
	}{
		{"modules.chan", chanModules},
		{"modules.boot", bootModules},
		{"modules.share", shareModules},
		{"", shippedModules},
	} {
		mods, err := md.closure(set.names, have)
		if err != nil {
			return fmt.Errorf("kernelvm: kernel %s: %w", in.kver, err)
		}
		lists[set.list] = mods
	}
	var dep bytes.Buffer
	for _, set := range []string{"modules.chan", "modules.boot", "modules.share", ""} {
		var names []string
		for _, m := range lists[set] {
			data, err := readModule(filepath.Join(in.modDir, m))
			if err != nil {
				return fmt.Errorf("kernelvm: %w", err)
			}
			a.File(path.Join("lib/modules", in.kver, plainKo(m)), 0o644, data)
			names = append(names, moduleName(m))
			fmt.Fprintf(&dep, "%s:", plainKo(m))
			for _, d := range md.deps[m] {
				fmt.Fprintf(&dep, " %s", plainKo(d))
			}
			dep.WriteByte('\n')
		}
		if set != "" {
			a.File("kernelvm/"+set, 0o644, []byte(strings.Join(names, "\n")+"\n"))
		}
	}
	a.File(path.Join("lib/modules", in.kver, "modules.dep"), 0o644, dep.Bytes())
	return nil
}

// plainKo drops a compression suffix: "x.ko.xz" -> "x.ko".
func plainKo(p string) string {
	if i := strings.LastIndex(p, ".ko"); i >= 0 {
		return p[:i+3]
	}
	return p
}

func readModule(p string) ([]byte, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasSuffix(p, ".ko"):
		return data, nil
	case strings.HasSuffix(p, ".ko.gz"):
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(p, ".ko.xz"):
		return decompressWith(data, [][]string{{"xz", "-dc"}})
	case strings.HasSuffix(p, ".ko.zst"):
		return decompressWith(data, [][]string{{"zstd", "-dcq"}})
	}
	return nil, fmt.Errorf("%s: unknown module compression", p)
}

// chooseAccel picks KVM only when it really works: $O2GO_KERNELVM_ACCEL
// (kvm, tcg, auto) first; then /dev/kvm must be usable and the CPU must
// have vmx or svm (a PVM-backed /dev/kvm, as on this project's build host,
// cannot run a stock kernel); then one probe boot, whose verdict is kept
// until the host reboots.
func chooseAccel(dir string, img *vmImage) (accel, why string) {
	switch a := os.Getenv("O2GO_KERNELVM_ACCEL"); a {
	case "kvm", "tcg":
		return a, "O2GO_KERNELVM_ACCEL=" + a
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg", "no usable /dev/kvm"
	}
	f.Close()
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
	if !bytes.Contains(cpuinfo, []byte(" vmx")) && !bytes.Contains(cpuinfo, []byte(" svm")) {
		return "tcg", "the CPU has no vmx/svm flag"
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	verdict := filepath.Join(dir, "accel-"+strings.TrimSpace(string(bootID)))
	if v, err := os.ReadFile(verdict); err == nil {
		a, why, _ := strings.Cut(string(v), " ")
		return a, why
	}
	probe := *img
	probe.accel = "kvm"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := boot(ctx, &probe, runConf{probe: true, timeout: 30 * time.Second, memMiB: 256, cpus: 1})
	v := "kvm probe boot ok"
	if err != nil || out.status["PROBE_OK"] != "1" {
		v = "tcg KVM probe boot failed"
		if err != nil {
			v += ": " + err.Error()
		} else if out.qemuStderr != "" {
			v += ": " + firstLine(out.qemuStderr)
		}
	}
	writeAtomic(verdict, []byte(v))
	a, why, _ := strings.Cut(v, " ")
	return a, why
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

var errNoDecompressor = errors.New("no decompressor")

// decompressWith pipes in through the first of the commands that exists.
func decompressWith(in []byte, cmds [][]string) ([]byte, error) {
	var lastErr error = errNoDecompressor
	for _, c := range cmds {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Stdin = bytes.NewReader(in)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			lastErr = fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, bytes.TrimSpace(errb.Bytes()))
			continue
		}
		return out.Bytes(), nil
	}
	return nil, lastErr
}
