package kernelvm

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/testutil"
)

// TestCPIOUnpacksWithBusybox checks the archive writer against busybox
// cpio, the same code family the kernel's initramfs format comes from:
// what it lists and extracts must be what went in.
func TestCPIOUnpacksWithBusybox(t *testing.T) {
	bb, err := findStaticBusybox()
	if err != nil {
		testutil.Unavailable(t, "%v", err)
	}
	data := make([]byte, 10001)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.IntN(256))
	}
	a := newCPIO()
	a.Dir("d/e", 0o750)
	a.File("d/e/f.bin", 0o640, data)
	a.File("/top", 0o755, []byte("x"))
	a.File("empty", 0o600, nil)
	a.Symlink("d/link", "e/f.bin")
	a.Symlink("top", "ignored: top exists")
	a.CharDev("dev/console", 0o600, 5, 1)
	var buf bytes.Buffer
	n, err := a.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) || n%4 != 0 {
		t.Fatalf("WriteTo: %d bytes (buffer %d), %v; want a multiple of 4", n, buf.Len(), err)
	}

	list := exec.Command(bb, "cpio", "-t")
	list.Stdin = bytes.NewReader(buf.Bytes())
	out, err := list.Output()
	if err != nil {
		t.Fatalf("busybox cpio -t: %v", err)
	}
	want := "d\nd/e\nd/e/f.bin\nd/link\ndev\ndev/console\nempty\ntop\n"
	if string(out) != want {
		t.Errorf("busybox cpio -t lists\n%s\nwant\n%s", out, want)
	}

	dir := t.TempDir()
	args := []string{"cpio", "-i", "-d"}
	if os.Geteuid() != 0 { // mknod needs root: extract all but the device
		args = append(args, "d", "d/e", "d/e/f.bin", "d/link", "dev", "empty", "top")
	}
	extract := exec.Command(bb, args...)
	extract.Dir = dir
	extract.Stdin = bytes.NewReader(buf.Bytes())
	if out, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio -i: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "d/e/f.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("d/e/f.bin extracted as %d bytes (%v), want the %d written", len(got), err, len(data))
	}
	for p, mode := range map[string]os.FileMode{"d/e": os.ModeDir | 0o750, "d/e/f.bin": 0o640, "top": 0o755, "empty": 0o600} {
		if st, err := os.Lstat(filepath.Join(dir, p)); err != nil || st.Mode() != mode {
			t.Errorf("%s: mode %v (%v), want %v", p, st.Mode(), err, mode)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "d/link")); err != nil || target != "e/f.bin" {
		t.Errorf("d/link -> %q (%v), want e/f.bin", target, err)
	}
	if os.Geteuid() == 0 {
		st, err := os.Lstat(filepath.Join(dir, "dev/console"))
		if err != nil || st.Mode()&os.ModeCharDevice == 0 {
			t.Fatalf("dev/console: %v %v, want a character device", st.Mode(), err)
		}
		rdev := st.Sys().(*syscall.Stat_t).Rdev
		if maj, min := (rdev>>8)&0xfff, rdev&0xff; maj != 5 || min != 1 {
			t.Errorf("dev/console is %d,%d, want 5,1", maj, min)
		}
	}
}

// TestCPIOIsDeterministic: the cache key is the archive's hash, so the
// same contents added in another order must give the same bytes.
func TestCPIOIsDeterministic(t *testing.T) {
	build := func(names []string) []byte {
		a := newCPIO()
		for _, n := range names {
			a.File(n, 0o644, []byte(strings.ToUpper(n)))
		}
		var b bytes.Buffer
		a.WriteTo(&b)
		return b.Bytes()
	}
	x := build([]string{"a/b", "c", "a/d/e"})
	y := build([]string{"a/d/e", "c", "a/b"})
	if !bytes.Equal(x, y) {
		t.Error("the same files added in another order give different archives")
	}
}
