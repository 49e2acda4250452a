package inode_test

import (
	"bytes"
	"errors"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
)

// TestTruncateCrashHalfWayIsClean stops a truncate that needs several steps
// (more extents than the truncate log holds) after its first durable step,
// crashes, and requires what recovery finds to be a file cut short with its
// data intact and a volume fsck.ocfs2 passes. Setting the size first, as the
// kernel does, leaves clusters past the size: fsck's INODE_SPARSE_SIZE.
func TestTruncateCrashHalfWayIsClean(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "4096")
	// Every other cluster: n extents, more than twice what the truncate log
	// of a 4 KiB block holds (486 records).
	const cs, n = 4096, 1100
	ino := r.file("frag", nil)
	want := make([]byte, (2*n-1)*cs)
	for i := 0; i < n; i++ {
		chunk := r.random(cs)
		if _, err := r.fs.Write(ino, chunk, int64(2*i*cs)); err != nil {
			t.Fatal(err)
		}
		copy(want[2*i*cs:], chunk)
	}
	if got := len(r.extents(ino)); got != n {
		t.Fatalf("setup: %d extents, want %d", got, n)
	}
	oldSize := int64(len(want))
	const newSize = 3*cs + 100
	errStop := errors.New("stopped by the test")
	inode.SetAfterRemoveStep(r.fs, func() error { return errStop })
	if err := r.fs.Truncate(ino, newSize); !errors.Is(err, errStop) {
		t.Fatalf("truncate: %v, want the hook's stop after one step", err)
	}
	r.m.Crash()
	r.m = nil

	m, err := volume.Mount(r.img, volume.DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	r.m, r.fs = m, m.FS
	d, err := r.fs.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(d.Size)
	if size <= newSize || size >= oldSize || size%cs != 0 {
		t.Fatalf("after a crash half-way: size %d, want a cluster boundary between %d and %d", size, newSize, oldSize)
	}
	if got := r.read(ino); !bytes.Equal(got, want[:size]) {
		t.Fatalf("after a crash half-way the %d bytes kept differ from what was written", size)
	}
	for _, e := range r.extents(ino) {
		if int64(e.Cpos)*cs >= size {
			t.Fatalf("extent at cluster %d lies past the size %d", e.Cpos, size)
		}
	}
	// The truncate completes on a second try, and everything checks out.
	if err := r.fs.Truncate(ino, newSize); err != nil {
		t.Fatal(err)
	}
	r.expect(ino, want[:newSize], "after the truncate completes")
	r.finish()
}
