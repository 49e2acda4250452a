package kernelvm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// guestTool is a host program copied into the guest, by default into
// /usr/local/bin (first on the guest's PATH, before busybox's applet links),
// together with the shared libraries it needs. To give guest scripts
// another program, add a line to guestTools: the cached initramfs is
// rebuilt because its key covers the tools' contents.
type guestTool struct {
	name     string
	pkg      string // Debian package that installs it, for the error message
	optional bool   // leave it out, silently, when the host lacks it
	at       string // guest path, when not /usr/local/bin/<name>
	why      string
}

// guestTools. The scripts' shell is dash, not busybox sh: busybox's shell
// is built "standalone" and runs its own applets in preference to any
// program on PATH, which would hide every GNU tool below.
var guestTools = []guestTool{
	{name: "dash", pkg: "dash", at: "/bin/sh", why: "the scripts' /bin/sh; honours PATH"},
	{name: "bash", pkg: "bash", at: "/bin/bash", why: "for scripts that start with #!/bin/bash"},
	{name: "setfattr", pkg: "attr", why: "busybox has no xattr applets"},
	{name: "getfattr", pkg: "attr"},
	{name: "cp", pkg: "coreutils", why: "cp --reflink=always (FICLONE)"},
	{name: "stat", pkg: "coreutils", why: "full stat output, nanosecond times, %b/%B/%h..."},
	{name: "touch", pkg: "coreutils", why: "touch -d with nanoseconds, -h"},
	{name: "sha256sum", pkg: "coreutils"},
	{name: "ls", pkg: "coreutils", why: "ls --full-time, -i, -s"},
	{name: "dd", pkg: "coreutils", why: "conv=notrunc,fsync, oflag=direct, status=none"},
	{name: "truncate", pkg: "coreutils"},
	{name: "du", pkg: "coreutils", why: "--apparent-size vs allocated"},
	{name: "df", pkg: "coreutils", why: "--output, -i"},
	{name: "sync", pkg: "coreutils", why: "sync -f (syncfs), -d (fdatasync) on one file"},
	{name: "find", pkg: "findutils", why: "-printf, -newer, -type"},
	{name: "xargs", pkg: "findutils"},
	{name: "fallocate", pkg: "util-linux", why: "--punch-hole, --zero-range, --collapse-range, unwritten extents"},
	{name: "fsfreeze", pkg: "util-linux"},
	{name: "filefrag", pkg: "e2fsprogs", why: "FIEMAP: shared, unwritten, inline extents"},
	{name: "chattr", pkg: "e2fsprogs"},
	{name: "lsattr", pkg: "e2fsprogs"},
	{name: "setfacl", pkg: "acl", optional: true},
	{name: "getfacl", pkg: "acl", optional: true},
	{name: "xfs_io", pkg: "xfsprogs", optional: true, why: "pwrite/fiemap/reflink/dedupe at chosen offsets"},
}

// Modules, by the role they play in the guest. The closure of each set
// (in modules.dep order, dependencies first) is loaded with insmod by
// /init; shippedModules are only put into the initramfs, for the kernel's
// request_module (cluster stack plugins).
var (
	chanModules    = []string{"virtio_pci", "virtio_console"} // the host channels
	bootModules    = []string{"virtio_blk", "ocfs2"}
	shareModules   = []string{"9pnet_virtio", "9p"}
	shippedModules = []string{"ocfs2_stack_o2cb", "ocfs2_stack_user", "ocfs2_dlmfs"}
)

// hostInputs is what a VM is built from, found on this machine.
type hostInputs struct {
	qemu    string
	busybox string // statically linked
	kver    string
	vmlinuz string // /boot/vmlinuz-<kver>
	modDir  string // /lib/modules/<kver>
	tools   []foundTool
}

type foundTool struct {
	name, path string
	at         string // guest path
}

// ErrUnavailable is wrapped by errors about a missing prerequisite on the
// host (qemu, busybox-static, the kernel, a tool): Require turns those into
// a skip (or a CI failure).
var ErrUnavailable = errors.New("kernelvm unavailable")

type unavailableError struct{ missing []string }

func (e *unavailableError) Error() string {
	return "kernelvm: missing on this host: " + strings.Join(e.missing, "; ") +
		" (scripts/deps.sh installs them)"
}
func (e *unavailableError) Unwrap() error { return ErrUnavailable }

// findHostInputs looks for everything a VM needs and reports all that is
// missing at once.
func findHostInputs() (*hostInputs, error) {
	in := &hostInputs{}
	var missing []string
	var err error
	if in.qemu, err = exec.LookPath("qemu-system-x86_64"); err != nil {
		missing = append(missing, "qemu-system-x86_64 (package qemu-system-x86)")
	}
	if in.busybox, err = findStaticBusybox(); err != nil {
		missing = append(missing, err.Error())
	}
	if err := in.findKernel(); err != nil {
		missing = append(missing, err.Error())
	}
	for _, t := range guestTools {
		p, err := lookTool(t.name)
		if err != nil {
			if !t.optional {
				missing = append(missing, fmt.Sprintf("%s (package %s)", t.name, t.pkg))
			}
			continue
		}
		at := t.at
		if at == "" {
			at = "/usr/local/bin/" + t.name
		}
		in.tools = append(in.tools, foundTool{name: t.name, path: p, at: at})
	}
	if len(missing) > 0 {
		return nil, &unavailableError{missing: missing}
	}
	return in, nil
}

// lookTool finds a program on PATH or in the sbin directories, which a
// non-root PATH often lacks (filefrag lives in /usr/sbin).
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.EvalSymlinks(p)
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return filepath.EvalSymlinks(p)
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func findStaticBusybox() (string, error) {
	cands := []string{os.Getenv("O2GO_KERNELVM_BUSYBOX"), "/bin/busybox", "/usr/bin/busybox"}
	if p, err := exec.LookPath("busybox"); err == nil {
		cands = append(cands, p)
	}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if st, err := isStatic(c); err == nil && st {
			return c, nil
		}
	}
	return "", errors.New("a statically linked busybox (package busybox-static)")
}

// findKernel picks the kernel: $O2GO_KERNELVM_KVER, else the newest
// version that has both /boot/vmlinuz-<kver> and /lib/modules/<kver> with
// an ocfs2 module.
func (in *hostInputs) findKernel() error {
	want := os.Getenv("O2GO_KERNELVM_KVER")
	var kvers []string
	if want != "" {
		kvers = []string{want}
	} else {
		ents, _ := os.ReadDir("/lib/modules")
		for _, e := range ents {
			kvers = append(kvers, e.Name())
		}
		sort.Slice(kvers, func(i, j int) bool { return versionLess(kvers[j], kvers[i]) })
	}
	for _, kv := range kvers {
		vmlinuz := "/boot/vmlinuz-" + kv
		modDir := "/lib/modules/" + kv
		if _, err := os.Stat(vmlinuz); err != nil {
			continue
		}
		deps, err := readModulesDep(modDir)
		if err != nil {
			continue
		}
		if _, ok := deps.byName["ocfs2"]; !ok {
			continue
		}
		in.kver, in.vmlinuz, in.modDir = kv, vmlinuz, modDir
		return nil
	}
	if want != "" {
		return fmt.Errorf("kernel %s ($O2GO_KERNELVM_KVER): needs readable /boot/vmlinuz-%s and /lib/modules/%s/modules.dep with ocfs2", want, want, want)
	}
	return errors.New("a kernel with readable /boot/vmlinuz-<kver> and an ocfs2 module in /lib/modules/<kver> (package linux-image-amd64)")
}

// versionLess orders kernel versions naturally: digit runs compare as
// numbers ("6.1.0-9" < "6.1.0-56").
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		switch {
		case da != "" && db != "":
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[len(da):], b[len(db):]
		default:
			if a[0] != b[0] {
				return a[0] < b[0]
			}
			a, b = a[1:], b[1:]
		}
	}
	return len(a) < len(b)
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// modulesDep is a parsed modules.dep: module paths relative to the
// modules directory, each with its direct dependencies.
type modulesDep struct {
	deps   map[string][]string // path -> dependency paths
	byName map[string]string   // module name ("ocfs2_stack_o2cb") -> path
}

func readModulesDep(modDir string) (*modulesDep, error) {
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseModulesDep(f)
}

func parseModulesDep(f io.Reader) (*modulesDep, error) {
	md := &modulesDep{deps: map[string][]string{}, byName: map[string]string{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok || mod == "" {
			continue
		}
		md.deps[mod] = strings.Fields(deps)
		md.byName[moduleName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading modules.dep: %w", err)
	}
	return md, nil
}

// moduleName is the kernel's name for a module file: "kernel/fs/9p/9p.ko.xz"
// -> "9p", with dashes as underscores.
func moduleName(p string) string {
	b := path.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// closure returns the module paths needed to load names, dependencies
// before their users, leaving out those in have (which it extends).
func (md *modulesDep) closure(names []string, have map[string]bool) ([]string, error) {
	var out []string
	var visit func(p string)
	visit = func(p string) {
		if have[p] {
			return
		}
		have[p] = true
		for _, d := range md.deps[p] {
			visit(d)
		}
		out = append(out, p)
	}
	for _, n := range names {
		p, ok := md.byName[strings.ReplaceAll(n, "-", "_")]
		if !ok {
			return nil, fmt.Errorf("module %s is not in modules.dep", n)
		}
		visit(p)
	}
	return out, nil
}
