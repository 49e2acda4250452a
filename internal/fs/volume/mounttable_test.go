package volume

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadMountTableUndoesEscapes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mounts")
	table := "/dev/sda1 / ext4 rw 0 0\n" +
		"/srv/my\\040vol.img /mnt/web\\040data fuse.o2go rw,nosuid 0 0\n" +
		"short line\n"
	if err := os.WriteFile(p, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMountTable(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []MountEntry{{"/dev/sda1", "/", "ext4"}, {"/srv/my vol.img", "/mnt/web data", "fuse.o2go"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := ReadMountTable(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing table read without an error")
	}
}
