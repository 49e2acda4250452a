package volume

import (
	"bytes"
	"errors"
	"maps"
	"sync"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/testutil/realtools"
)

// grudgingLocks are cluster locks that grant every set and never a lock
// on the spot (TryLock): every lock an operation finds it needs makes it
// start again, so the engine's whole retry path runs, and the sets show
// what each operation ended up holding.
type grudgingLocks struct {
	mu   sync.Mutex
	sets []inode.LockSet
}

func (g *grudgingLocks) Lock(set inode.LockSet) (func(), error) {
	g.mu.Lock()
	g.sets = append(g.sets, maps.Clone(set))
	g.mu.Unlock()
	return func() {}, nil
}

func (g *grudgingLocks) TryLock(inode.LockID, bool) (func(), bool) { return nil, false }

func (g *grudgingLocks) TakeValue(inode.LockID) ([inode.LockValueLen]byte, bool) {
	return [inode.LockValueLen]byte{}, false
}

// took reports whether some set since mark held id at exclusive or more.
func (g *grudgingLocks) took(mark int, id inode.LockID, exclusive bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.sets[mark:] {
		if s.Covers(id, exclusive) {
			return true
		}
	}
	return false
}

func (g *grudgingLocks) mark() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sets)
}

// engineVolume makes a volume of size bytes (4 KiB blocks and clusters,
// 2 slots) with mkfs.ocfs2 and mounts the write engine on it.
func engineVolume(t *testing.T, size int64) (*Mounted, string) {
	t.Helper()
	realtools.Require(t)
	img := realtools.MkfsImage(t, size, "-b", "4096", "-C", "4096", "-N", "2")
	m, err := Mount(img, DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	return m, img
}

// createNode makes name in directory parent, a directory or a regular
// file, and returns its inode.
func createNode(t *testing.T, fs *inode.FS, parent uint64, name string, isDir bool) uint64 {
	t.Helper()
	mode := uint32(syscall.S_IFREG | 0o644)
	if isDir {
		mode = syscall.S_IFDIR | 0o755
	}
	ino, err := fs.Create(inode.Ref{Ino: parent}, name, inode.NewNode{Mode: mode}, inode.Caller{})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return ino
}

// TestClusterLockDiscipline runs the write engine as a clustered mount
// does, with locks that make every operation discover what it needs:
// each operation completes correctly after its retries, ends up holding
// the locks OCFS2 would take (the victim of an unlink, the rename lock,
// the global bitmap for a new window, the slot's own system files), and
// the volume passes fsck.ocfs2 afterwards.
func TestClusterLockDiscipline(t *testing.T) {
	m, img := engineVolume(t, 128<<20)
	g := &grudgingLocks{}
	fs, w := m.FS, m.FS.W
	w.Cluster = g
	root := m.SB.RootBlkno
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	d := createNode(t, fs, root, "d", true)
	e := createNode(t, fs, root, "e", true)
	mark := g.mark()
	f := createNode(t, fs, d, "f", false)
	if !g.took(mark, inode.InodeLock(f), true) {
		t.Error("a create did not take its new inode's lock")
	}
	data := bytes.Repeat([]byte("o2go cluster locks "), 60000) // ~1 MiB: clusters from a new window
	mark = g.mark()
	_, err := fs.Write(f, data, 0)
	must("write d/f", err)
	if !g.took(mark, inode.InodeLock(w.GlobalBitmap), true) {
		t.Error("a write that needed a local alloc window did not take the global bitmap's lock")
	}
	must("link e/g", fs.Link(inode.Ref{Ino: f}, inode.Ref{Ino: e}, "g"))
	mark = g.mark()
	must("rename d/f e/h", fs.Rename(inode.Ref{Ino: d}, "f", inode.Ref{Ino: e}, "h", 0))
	if !g.took(mark, inode.LockID{Kind: inode.LockRename}, true) {
		t.Error("a rename between directories did not take the rename lock")
	}
	must("setxattr", fs.SetXattr(inode.Ref{Ino: f}, "user.color", []byte("blue"), 0))
	must("truncate", fs.Truncate(f, int64(len(data)/2)))
	must("fallocate", fs.Fallocate(f, 0, int64(len(data)), 1<<20))

	got := make([]byte, len(data)/2)
	n, err := fs.ReadFile(f, got, 0)
	must("read e/h", err)
	if n != len(got) || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("read back %d bytes that differ from what was written", n)
	}
	if v, ok, err := fs.GetXattr(inode.Ref{Ino: f}, "user.color"); err != nil || !ok || string(v) != "blue" {
		t.Fatalf("getxattr: %q %v %v", v, ok, err)
	}
	if d, err := fs.LookupStat(inode.Ref{Ino: e}, "h"); err != nil || d.Blkno != f || d.Links != 2 {
		t.Fatalf("lookup e/h: %+v %v", d, err)
	}

	must("unlink e/g", fs.Unlink(inode.Ref{Ino: e}, "g", false))
	mark = g.mark()
	must("unlink e/h", fs.Unlink(inode.Ref{Ino: e}, "h", false))
	if !g.took(mark, inode.InodeLock(f), true) {
		t.Error("an unlink did not take its victim's lock")
	}
	if _, err := fs.Stat(f); err == nil {
		t.Error("the unlinked file's inode is still valid: it was not deleted")
	}
	must("rmdir d", fs.Unlink(inode.Ref{Ino: root}, "d", true))

	if w.LockRestarts() == 0 {
		t.Error("no operation started again: the locks were not discovered")
	}
	g.mu.Lock()
	for i, s := range g.sets {
		change := false
		for id, ex := range s {
			change = change || ex
			if ex && id.Kind == inode.LockInode && id.Blkno == m.SB.SystemDirBlkno {
				t.Errorf("set %d holds the system directory exclusive", i)
			}
		}
		for _, b := range w.SlotLocks {
			if change && !s.Covers(inode.InodeLock(b), true) {
				t.Errorf("set %d changes the volume without the slot's system file %d", i, b)
			}
		}
	}
	g.mu.Unlock()
	t.Logf("%d lock sets, %d operations started again", g.mark(), w.LockRestarts())
	must("unmount", m.Unmount())
	realtools.RequireFsckClean(t, img)
}

// TestNothingEntersARemovedDirectory: a directory removed while still
// known (on a clustered mount, another node's kernel looked it up before
// this node's rmdir) takes no new name: create, link and rename into it
// fail with ENOENT, as the VFS refuses a dead directory, and the volume
// stays clean (a name added to it would vanish with it, leaving its inode
// with a link and no entry).
func TestNothingEntersARemovedDirectory(t *testing.T) {
	m, img := engineVolume(t, 64<<20)
	fs, root := m.FS, m.SB.RootBlkno
	d := createNode(t, fs, root, "d", true)
	f := createNode(t, fs, root, "f", false)
	fs.Open(d) // known, as a kernel's dentry keeps it
	if err := fs.Unlink(inode.Ref{Ino: root}, "d", true); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"rename into it": fs.Rename(inode.Ref{Ino: root}, "f", inode.Ref{Ino: d}, "g", 0),
		"link into it":   fs.Link(inode.Ref{Ino: f}, inode.Ref{Ino: d}, "h"),
	} {
		if !errors.Is(err, syscall.ENOENT) {
			t.Errorf("%s: %v, want ENOENT", what, err)
		}
	}
	if _, err := fs.Create(inode.Ref{Ino: d}, "x", inode.NewNode{Mode: syscall.S_IFREG | 0o644}, inode.Caller{}); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("create in it: %v, want ENOENT", err)
	}
	if err := fs.Release(d); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	realtools.RequireFsckClean(t, img)
}

// busyOpens are open locks that always find the inode in use on another
// node: an unlinked inode stays an orphan here.
type busyOpens struct{}

func (busyOpens) Hold(uint64)                        {}
func (busyOpens) Drop(uint64)                        {}
func (busyOpens) Claim(uint64) (func(), bool, error) { return nil, false, nil }

// TestOrphanChangesNeedAHandle: on a clustered mount an unlinked inode
// may be being deleted by another node; this node changes it only through
// an open handle of its own (whose open lock keeps every node from
// deleting it). A change by a path looked up before the unlink is ESTALE
// (ENOENT to the caller): it would otherwise be lost with the inode, or
// leak the clusters it allocated (the metadata storm's CLUSTER_ALLOC_BIT:
// a 145-byte xattr value's cluster, set while another node deleted the
// file).
func TestOrphanChangesNeedAHandle(t *testing.T) {
	m, img := engineVolume(t, 64<<20)
	fs, root := m.FS, m.SB.RootBlkno
	fs.W.Cluster, fs.W.Opens = &grudgingLocks{}, busyOpens{}
	f := createNode(t, fs, root, "f", false)
	g := createNode(t, fs, root, "g", false)
	fs.OpenHandle(g)
	for _, name := range []string{"f", "g"} {
		if err := fs.Unlink(inode.Ref{Ino: root}, name, false); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("B"), 145) // a value outside the entry: a cluster
	if err := fs.SetXattr(inode.Ref{Ino: f}, "user.x", big, 0); !errors.Is(err, syscall.ESTALE) {
		t.Fatalf("setxattr on an orphan with no handle here: %v, want ESTALE", err)
	}
	if _, err := fs.Write(f, []byte("late"), 0); !errors.Is(err, syscall.ESTALE) {
		t.Fatalf("write on an orphan with no handle here: %v, want ESTALE", err)
	}
	if err := fs.SetXattr(inode.Ref{Ino: g}, "user.x", big, 0); err != nil {
		t.Fatalf("setxattr through a handle on an unlinked file: %v", err)
	}
	if _, err := fs.Write(g, []byte("still mine"), 0); err != nil {
		t.Fatalf("write through a handle on an unlinked file: %v", err)
	}
	fs.W.Cluster, fs.W.Opens = nil, nil // a local mount again: its unmount deletes the orphans
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	realtools.RequireFsckClean(t, img)
}
