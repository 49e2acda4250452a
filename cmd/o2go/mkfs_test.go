package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"o2go/internal/fs/volume"
	"o2go/internal/testutil/realtools"
)

// runMkfs runs `o2go mkfs args...` in-process with stdin from in.
func runMkfs(t *testing.T, in string, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(in))
	root.SetArgs(append([]string{"mkfs"}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func newImage(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "vol.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return img
}

// TestMkfsCommandFlags checks that every mkfs.ocfs2 flag reaches the
// volume: the dry-run summary and the superblock of a real format.
func TestMkfsCommandFlags(t *testing.T) {
	img := newImage(t, 1<<30)
	out, _, err := runMkfs(t, "", "-n", "-b", "2k", "-C", "64K", "-N", "3", "-L", "vol one", "-J", "size=16M",
		"-T", "mail", "--fs-features=metaecc,noinline-data", "--fs-feature-level=default", img, "200000")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Dry run", "Filesystem Type of mail", "Label: vol one",
		"Features: sparse extended-slotmap backup-super unwritten strict-journal-super metaecc xattr indexed-dirs refcount discontig-bg append-dio",
		"Block size: 2048 (11 bits)", "Cluster size: 65536 (16 bits)",
		"Volume size: 409600000 (6250 clusters) (200000 blocks)", "Journal size: 16777216", "Node slots: 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if st, _ := os.Stat(img); st.Size() != 1<<30 {
		t.Fatal("the dry run changed the image")
	}

	out, _, err = runMkfs(t, "", "-x", "-M", "local", "-U", "178BDC83-D502-41EF-94EB-474A677D498B", "-L", "data",
		"--fs-feature-level=max-compat", "--no-backup-super", "--nodiscard", "-J", "block64", img)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WARNING!!! OCFS2 uses the UUID", "Writing system files: done", "Writing superblock: done", "o2go mkfs successful"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Writing backup superblock") {
		t.Errorf("--no-backup-super still wrote backups:\n%s", out)
	}
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	sb := v.SB
	v.Close()
	if sb.UUIDString() != "178BDC83D50241EF94EB474A677D498B" || sb.Label() != "data" || sb.MaxSlots != 1 ||
		sb.Features.Incompat != 0x8 || sb.Features.Compat != 0x2 || sb.Features.RoCompat != 0 {
		t.Errorf("superblock: uuid %s label %q slots %d features %+v", sb.UUIDString(), sb.Label(), sb.MaxSlots, sb.Features)
	}
}

// TestMkfsCommandErrors checks that bad flags and refusals fail with a
// message naming the flag or the limit.
func TestMkfsCommandErrors(t *testing.T) {
	img := newImage(t, 256<<20)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-b", "8192", img}, "-b: block size 8192 out of range"},
		{[]string{"-b", "12q", img}, "-b: invalid size"},
		{[]string{"-C", "2M", img}, "-C: cluster size 2097152 out of range"},
		{[]string{"-J", "size=1M", img}, "at least 4194304"},
		{[]string{"-T", "web", img}, "want mail, datafiles or vmstore"},
		{[]string{"--fs-feature-level=all", img}, "want default, max-compat or max-features"},
		{[]string{"-M", "shared", img}, "want local or cluster"},
		{[]string{"--fs-features=turbo", img}, `unknown feature "turbo"`},
		{[]string{"-N", "300", img}, "1 to 255 slots"},
		{[]string{"--cluster-stack=o2cb", "--cluster-name=bad-name", img}, "letters and digits"},
		{[]string{img, "12x"}, "block count bad"},
		{[]string{img, "99999999"}, "greater than"},
		{[]string{filepath.Join(t.TempDir(), "missing.img")}, "could not open device"},
	} {
		_, _, err := runMkfs(t, "", append([]string{"-q"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("o2go mkfs %s: %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestMkfsCommandMakesCleanVolume formats through the command and lets
// fsck.ocfs2 judge; then, without a terminal, overwriting needs -F.
func TestMkfsCommandMakesCleanVolume(t *testing.T) {
	realtools.Require(t)
	img := newImage(t, 512<<20)
	if _, _, err := runMkfs(t, "", "-q", "-N", "2", "--cluster-stack=pcmk", "--cluster-name=web", img); err != nil {
		t.Fatal(err)
	}
	realtools.RequireFsckClean(t, img)
	if _, _, err := runMkfs(t, "y\n", "-q", img); err == nil || !strings.Contains(err.Error(), "-F") {
		t.Fatalf("overwriting without a terminal: %v", err)
	}
	if _, _, err := runMkfs(t, "", "-q", "-F", "--fs-features=local", img); err != nil {
		t.Fatal(err)
	}
	realtools.RequireFsckClean(t, img)
}
