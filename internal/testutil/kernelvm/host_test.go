package kernelvm

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"o2go/internal/testutil"
)

func TestVersionLess(t *testing.T) {
	sorted := []string{"5.10.0-9-amd64", "5.10.0-28-amd64", "6.1.0-9-amd64", "6.1.0-56-amd64", "6.1.0-56-amd64x", "6.12.0-1-amd64"}
	for i := range sorted {
		for j := range sorted {
			if got := versionLess(sorted[i], sorted[j]); got != (i < j) {
				t.Errorf("versionLess(%q, %q) = %v", sorted[i], sorted[j], got)
			}
		}
	}
}

func TestModulesClosure(t *testing.T) {
	dep := "kernel/fs/ocfs2/ocfs2.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/fs/ocfs2/ocfs2_stackglue.ko.xz\n" +
		"kernel/fs/jbd2/jbd2.ko.xz:\n" +
		"kernel/fs/ocfs2/ocfs2_stackglue.ko.xz: kernel/fs/configfs/configfs.ko.xz\n" +
		"kernel/fs/configfs/configfs.ko.xz:\n" +
		"kernel/fs/ocfs2/ocfs2_stack_o2cb.ko.xz: kernel/fs/ocfs2/ocfs2_stackglue.ko.xz\n"
	f := filepath.Join(t.TempDir(), "modules.dep")
	os.WriteFile(f, []byte(dep), 0o644)
	r, _ := os.Open(f)
	defer r.Close()
	md, err := parseModulesDep(r)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	got, err := md.closure([]string{"ocfs2"}, have)
	want := []string{"kernel/fs/jbd2/jbd2.ko.xz", "kernel/fs/configfs/configfs.ko.xz", "kernel/fs/ocfs2/ocfs2_stackglue.ko.xz", "kernel/fs/ocfs2/ocfs2.ko.xz"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("closure(ocfs2) = %q, %v; want %q", got, err, want)
	}
	got, _ = md.closure([]string{"ocfs2-stack-o2cb"}, have) // dashes name the same module
	if !reflect.DeepEqual(got, []string{"kernel/fs/ocfs2/ocfs2_stack_o2cb.ko.xz"}) {
		t.Errorf("second closure repeats loaded modules: %q", got)
	}
	if _, err := md.closure([]string{"nosuch"}, have); err == nil {
		t.Error("an unknown module gives no error")
	}
	if plainKo("a/b.ko.zst") != "a/b.ko" || moduleName("a/ocfs2-dlm.ko.xz") != "ocfs2_dlm" {
		t.Error("plainKo/moduleName")
	}
}

// TestSharedObjectsMatchLdd compares the ELF walk with ldd, the glibc
// loader's own answer, for every guest tool on this host.
func TestSharedObjectsMatchLdd(t *testing.T) {
	if _, err := exec.LookPath("ldd"); err != nil {
		testutil.Unavailable(t, "ldd not installed")
	}
	lddPath := regexp.MustCompile(`(?m)(?:=>\s+)?(/\S+)\s+\(0x`)
	checked := 0
	for _, tool := range guestTools {
		p, err := lookTool(tool.name)
		if err != nil {
			continue
		}
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			continue // static
		}
		var want []string
		for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
			want = append(want, filepath.Base(m[1]))
		}
		libs, err := sharedObjects(p)
		if err != nil {
			t.Errorf("%s: %v", tool.name, err)
			continue
		}
		var got []string
		for _, l := range libs {
			if _, err := os.Stat(l); err != nil {
				t.Errorf("%s: %s does not exist", tool.name, l)
			}
			got = append(got, filepath.Base(l))
		}
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s needs %q, ldd says %q", tool.name, got, want)
		}
		checked++
	}
	if checked == 0 {
		testutil.Unavailable(t, "no dynamically linked guest tool on this host")
	}
}

// TestExtractVmlinux extracts this host's kernel (what Prepare caches) and
// checks that broken bzImages give errors, not panics.
func TestExtractVmlinux(t *testing.T) {
	in := &hostInputs{}
	if err := in.findKernel(); err != nil {
		testutil.Unavailable(t, "%v", err)
	}
	bz, err := os.ReadFile(in.vmlinuz)
	if err != nil {
		testutil.Unavailable(t, "%v", err)
	}
	bb, _ := findStaticBusybox()
	elf, err := extractVmlinux(bz, bb)
	if err != nil {
		t.Fatalf("extracting %s: %v", in.vmlinuz, err)
	}
	if len(elf) < len(bz) {
		t.Errorf("the extracted kernel (%d bytes) is smaller than the bzImage (%d)", len(elf), len(bz))
	}
	if err := checkPVH(elf[:len(elf)/2]); err == nil {
		t.Error("a truncated ELF passes checkPVH")
	}

	bad := func(name string, mutate func(b []byte) []byte) {
		b := mutate(append([]byte(nil), bz[:0x400]...))
		if _, err := extractVmlinux(b, bb); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	bad("short", func(b []byte) []byte { return b[:0x100] })
	bad("no HdrS", func(b []byte) []byte { copy(b[0x202:], "XXXX"); return b })
	bad("old protocol", func(b []byte) []byte { binary.LittleEndian.PutUint16(b[0x206:], 0x204); return b })
	bad("payload out of range", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[0x24c:], 1<<30); return b })
}

func TestFindHostInputsReportsEverythingMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("O2GO_KERNELVM_KVER", "0.0-nosuch")
	_, err := findHostInputs()
	var ue *unavailableError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ue) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	msg := err.Error()
	for _, want := range []string{"qemu-system-x86_64 (package qemu-system-x86)", "kernel 0.0-nosuch", "scripts/deps.sh"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}
