package inode_test

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
)

// TestChangesCheckTheGeneration: a change that names the inode's
// generation (a FUSE node ID does, and outlives the inode it named: on a
// clustered mount another node may free the block and make a new inode
// there) is ESTALE when the block holds another generation, and changes
// nothing; with the right generation, or none, it proceeds.
func TestChangesCheckTheGeneration(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "4096")
	ino := r.file("f", r.random(10000))
	d, err := r.fs.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}
	stale := d.Generation + 1
	mode, size := uint32(0o600), int64(10)
	for what, change := range map[string]func(gen uint32) error{
		"chmod":    func(gen uint32) error { return r.fs.Setattr(ino, inode.AttrChange{Mode: &mode, Generation: gen}) },
		"truncate": func(gen uint32) error { return r.fs.Setattr(ino, inode.AttrChange{Size: &size, Generation: gen}) },
		"link":     func(gen uint32) error { return r.fs.Link(ino, gen, r.fs.RootBlkno(), fmt.Sprintf("link-%d", gen)) },
		"setxattr": func(gen uint32) error { return r.fs.SetXattr(ino, gen, "user.a", []byte("v"), 0) },
		"removexattr": func(gen uint32) error {
			if err := r.fs.SetXattr(ino, 0, "user.b", []byte("v"), 0); err != nil {
				return err
			}
			if err := r.fs.RemoveXattr(ino, gen, "user.b"); err != nil {
				return err
			}
			_, has, err := r.fs.GetXattr(ino, "user.b")
			if err == nil && has {
				return fmt.Errorf("user.b still there")
			}
			return err
		},
	} {
		if err := change(stale); !errors.Is(err, syscall.ESTALE) {
			t.Errorf("%s with another generation: %v, want ESTALE", what, err)
		}
		after, err := r.fs.Stat(ino)
		if err != nil {
			t.Fatal(err)
		}
		if _, has, _ := r.fs.GetXattr(ino, "user.a"); has && what == "setxattr" {
			t.Fatalf("setxattr with another generation set the attribute")
		}
		if after.Mode != d.Mode || after.Size != d.Size || after.Links != d.Links {
			t.Fatalf("%s with another generation changed the inode: mode %o size %d links %d", what, after.Mode, after.Size, after.Links)
		}
		if err := change(d.Generation); err != nil {
			t.Errorf("%s with the inode's generation: %v", what, err)
		}
		if d, err = r.fs.Stat(ino); err != nil {
			t.Fatal(err)
		}
	}
	r.finish()
}
