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
	root := inode.Ref{Ino: r.fs.RootBlkno()}
	stale := d.Generation + 1
	mode, size := uint32(0o600), int64(10)
	for what, change := range map[string]func(gen uint32) error{
		"chmod": func(gen uint32) error {
			return r.fs.Setattr(inode.Ref{Ino: ino, Gen: gen}, inode.AttrChange{Mode: &mode})
		},
		"truncate": func(gen uint32) error {
			return r.fs.Setattr(inode.Ref{Ino: ino, Gen: gen}, inode.AttrChange{Size: &size})
		},
		"link": func(gen uint32) error {
			return r.fs.Link(inode.Ref{Ino: ino, Gen: gen}, root, fmt.Sprintf("link-%d", gen))
		},
		"setxattr": func(gen uint32) error { return r.fs.SetXattr(inode.Ref{Ino: ino, Gen: gen}, "user.a", []byte("v"), 0) },
		"removexattr": func(gen uint32) error {
			if err := r.fs.SetXattr(inode.Ref{Ino: ino}, "user.b", []byte("v"), 0); err != nil {
				return err
			}
			if err := r.fs.RemoveXattr(inode.Ref{Ino: ino, Gen: gen}, "user.b"); err != nil {
				return err
			}
			_, has, err := r.fs.GetXattr(inode.Ref{Ino: ino}, "user.b")
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
		if _, has, _ := r.fs.GetXattr(inode.Ref{Ino: ino}, "user.a"); has && what == "setxattr" {
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

// TestDirectoryOperationsCheckTheGeneration: the same for the directory
// a name operation works in (a directory removed on another node whose
// block now holds a new directory must not take, lose or show names
// meant for the old one), and for reads through a node ID (readlink,
// getxattr, listxattr): ESTALE and nothing changed with another
// generation, the operation done with the right one.
func TestDirectoryOperationsCheckTheGeneration(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "4096")
	root := inode.Ref{Ino: r.fs.RootBlkno()}
	who := inode.Caller{}
	dirIno, err := r.fs.Create(root, "d", inode.NewNode{Mode: syscall.S_IFDIR | 0o755}, who)
	if err != nil {
		t.Fatal(err)
	}
	dd, err := r.fs.Stat(dirIno)
	if err != nil {
		t.Fatal(err)
	}
	dir := func(gen uint32) inode.Ref { return inode.Ref{Ino: dirIno, Gen: gen} }
	stale := dd.Generation + 1
	for _, name := range []string{"victim", "moving"} {
		if _, err := r.fs.Create(dir(0), name, inode.NewNode{Mode: syscall.S_IFREG | 0o644}, who); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.fs.Create(dir(0), "subdir", inode.NewNode{Mode: syscall.S_IFDIR | 0o755}, who); err != nil {
		t.Fatal(err)
	}
	other := r.file("other", nil)
	names := func() map[string]bool {
		t.Helper()
		got := map[string]bool{}
		if err := r.fs.ReadDir(dir(0), 0, func(e inode.DirEntry) bool { got[e.Name] = true; return true }); err != nil {
			t.Fatal(err)
		}
		return got
	}

	for _, op := range []struct {
		what   string
		do     func(gen uint32) error
		before map[string]bool // names that must be in d before a good run
		after  map[string]bool // and after it
	}{
		{"create", func(gen uint32) error {
			_, err := r.fs.Create(dir(gen), "new", inode.NewNode{Mode: syscall.S_IFREG | 0o644}, who)
			return err
		}, map[string]bool{"new": false}, map[string]bool{"new": true}},
		{"mkdir", func(gen uint32) error {
			_, err := r.fs.Create(dir(gen), "newdir", inode.NewNode{Mode: syscall.S_IFDIR | 0o755}, who)
			return err
		}, map[string]bool{"newdir": false}, map[string]bool{"newdir": true}},
		{"symlink", func(gen uint32) error {
			_, err := r.fs.Create(dir(gen), "sym", inode.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: "victim"}, who)
			return err
		}, map[string]bool{"sym": false}, map[string]bool{"sym": true}},
		{"mknod", func(gen uint32) error {
			_, err := r.fs.Create(dir(gen), "fifo", inode.NewNode{Mode: syscall.S_IFIFO | 0o644}, who)
			return err
		}, map[string]bool{"fifo": false}, map[string]bool{"fifo": true}},
		{"link into", func(gen uint32) error {
			return r.fs.Link(inode.Ref{Ino: other}, dir(gen), "hard")
		}, map[string]bool{"hard": false}, map[string]bool{"hard": true}},
		{"unlink", func(gen uint32) error { return r.fs.Unlink(dir(gen), "victim", false) },
			map[string]bool{"victim": true}, map[string]bool{"victim": false}},
		{"rmdir", func(gen uint32) error { return r.fs.Unlink(dir(gen), "subdir", true) },
			map[string]bool{"subdir": true}, map[string]bool{"subdir": false}},
		{"rename out of", func(gen uint32) error { return r.fs.Rename(dir(gen), "moving", root, "moved", 0) },
			map[string]bool{"moving": true}, map[string]bool{"moving": false}},
		{"rename into", func(gen uint32) error { return r.fs.Rename(root, "moved", dir(gen), "back", 0) },
			map[string]bool{"back": false}, map[string]bool{"back": true}},
		{"rename within", func(gen uint32) error { return r.fs.Rename(dir(gen), "back", dir(gen), "again", 0) },
			map[string]bool{"back": true, "again": false}, map[string]bool{"back": false, "again": true}},
		{"lookup", func(gen uint32) error { _, err := r.fs.LookupStat(dir(gen), "again"); return err }, nil, nil},
		{"readdir", func(gen uint32) error {
			return r.fs.ReadDir(dir(gen), 0, func(inode.DirEntry) bool { return true })
		}, nil, nil},
	} {
		check := func(when string, want map[string]bool) {
			t.Helper()
			got := names()
			for name, in := range want {
				if got[name] != in {
					t.Errorf("%s, %s: %q in d is %v, want %v", op.what, when, name, got[name], in)
				}
			}
		}
		check("before", op.before)
		if err := op.do(stale); !errors.Is(err, syscall.ESTALE) {
			t.Errorf("%s with another generation of d: %v, want ESTALE", op.what, err)
		}
		check("after a stale attempt", op.before)
		if err := op.do(dd.Generation); err != nil {
			t.Errorf("%s with d's generation: %v", op.what, err)
		}
		check("after", op.after)
	}

	sym, err := r.fs.LookupStat(dir(0), "sym")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.fs.SetXattr(inode.Ref{Ino: dirIno}, "user.x", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct {
		what string
		do   func(gen uint32) error
		gen  uint32
	}{
		{"readlink", func(gen uint32) error { _, err := r.fs.ReadLink(inode.Ref{Ino: sym.Blkno, Gen: gen}); return err }, sym.Generation},
		{"getxattr", func(gen uint32) error { _, _, err := r.fs.GetXattr(dir(gen), "user.x"); return err }, dd.Generation},
		{"listxattr", func(gen uint32) error { _, err := r.fs.ListXattrs(dir(gen)); return err }, dd.Generation},
	} {
		if err := op.do(op.gen + 1); !errors.Is(err, syscall.ESTALE) {
			t.Errorf("%s with another generation: %v, want ESTALE", op.what, err)
		}
		if err := op.do(op.gen); err != nil {
			t.Errorf("%s with the inode's generation: %v", op.what, err)
		}
	}
	r.finish()
}
