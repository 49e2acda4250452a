package main

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"o2go/internal/testutil/realtools"
)

// mapShared maps the first n bytes of path read-write and shared.
func mapShared(t *testing.T, path string, n int) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap(MAP_SHARED) of %s on a clustered mount: %v", path, err)
	}
	t.Cleanup(func() { _ = unix.Munmap(b) })
	return b
}

// preadAt reads n bytes at off of path with pread(2).
func preadAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("pread of %s at %d: %v", path, off, err)
	}
	return b
}

// TestClusteredSharedMmap: mmap(MAP_SHARED) works on a clustered mount
// and stays coherent with read(2) and write(2): a store through node A's
// mapping is what A's own read(2) returns at once and what node B reads
// after A's msync; B's write(2) reaches A's mapping once B has the lock
// (A drops its pages when it gives the lock up); A's page written back
// after B wrote into it carries A's stores, not A's stale copy of B's
// bytes; and a page A dirtied through its mapping never brings back a
// part of the file B truncated meanwhile (a written-back page does not
// extend the file, as on a local file system, where a truncate drops the
// pages past the end).
func TestClusteredSharedMmap(t *testing.T) {
	mc := newMountCluster(t, 2)
	mc.startAll()
	a, b := mc.mount(0), mc.mount(1)
	const page = 4096
	pathA, pathB := filepath.Join(a, "mapped"), filepath.Join(b, "mapped")
	if err := os.WriteFile(pathA, bytes.Repeat([]byte{'a'}, 3*page), 0o644); err != nil {
		t.Fatal(err)
	}
	m := mapShared(t, pathA, 3*page)
	if m[100] != 'a' || m[2*page+1] != 'a' {
		t.Fatalf("node A's mapping reads %q and %q, want 'a'", m[100], m[2*page+1])
	}

	// A store on A: A's read(2) sees it at once (the kernel writes the
	// dirty page back before a direct read of its range), B after msync.
	m[100], m[page+5] = 'X', 'X'
	if got := preadAt(t, pathA, 100, 1); got[0] != 'X' {
		t.Fatalf("node A's read(2) after its own store through the mapping: %q, want 'X'", got)
	}
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	if got := preadAt(t, pathB, 0, 2*page); got[100] != 'X' || got[page+5] != 'X' || got[101] != 'a' {
		t.Fatalf("node B reads %q %q %q after node A's msync, want X X a", got[100], got[page+5], got[101])
	}

	// B writes: A's mapping shows it once A has given the lock up. (A's
	// read(2) above dropped A's cached page of its range: read it back in
	// through the mapping first.)
	if m[300] != 'a' {
		t.Fatalf("node A's mapping reads %q, want 'a'", m[300])
	}
	fb, err := os.OpenFile(pathB, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fb.WriteAt([]byte("YY"), 200); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for m[200] != 'Y' || m[201] != 'Y' {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("node A's mapping still reads %q 5 s after node B's write, want YY", m[200:202])
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("node B's write reached node A's mapping in %v", time.Since(start))
	if m[100] != 'X' {
		t.Fatalf("node A's mapping lost its own store: %q", m[100])
	}

	// A stores into page 1 and has not written it back when B writes
	// another byte of that page: A's write-back carries A's store only,
	// not the rest of A's copy of the page, which B's write made stale.
	m[page+10] = 'A'
	if _, err := fb.WriteAt([]byte("B"), page+2000); err != nil {
		t.Fatal(err)
	}
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	if got := preadAt(t, pathB, page, page); got[10] != 'A' || got[2000] != 'B' || got[11] != 'a' {
		t.Fatalf("node B reads %q %q %q after node A wrote back its store into the page B wrote meanwhile, want A B a", got[10], got[2000], got[11])
	}
	for start := time.Now(); m[page+2000] != 'B'; time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("node A's mapping still reads %q at B's byte 5 s after B wrote it", m[page+2000])
		}
	}

	// A dirties the last page, B truncates it away, then A writes its
	// mapping back: the file keeps B's size.
	m[2*page+7] = 'Z'
	if err := fb.Truncate(page); err != nil {
		t.Fatal(err)
	}
	fb.Close()
	if err := unix.Msync(m[:page], unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	for i, p := range []string{pathA, pathB} {
		if err := syscall.Stat(p, &st); err != nil || st.Size != page {
			t.Fatalf("node %d: size %d after node B's truncate to %d and node A's write-back (%v)", i, st.Size, page, err)
		}
	}
	if err := unix.Munmap(m); err != nil {
		t.Fatal(err)
	}
	// Pages dirtied and unmapped are written back by then (munmap does
	// not wait): sync, and check the size once more from B.
	syscall.Sync()
	if err := syscall.Stat(pathB, &st); err != nil || st.Size != page {
		t.Fatalf("node B: size %d after node A's mapping went away (%v), want %d", st.Size, err, page)
	}
	if got := preadAt(t, pathB, 0, page); got[100] != 'X' || got[200] != 'Y' || got[page-1] != 'a' {
		t.Fatalf("node B reads %q %q %q, want X Y a", got[100], got[200], got[page-1])
	}
	for i := range 2 {
		mc.umount(i)
		mc.waitUnmounted(i)
	}
	realtools.RequireFsckClean(t, mc.img)
}
