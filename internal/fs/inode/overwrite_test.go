package inode_test

import (
	"bytes"
	"testing"
)

// TestOverwriteOnlyWhereNoMetadataChanges: coherency=buffered's shared
// write takes only writes that change no metadata (inside the size, on
// written clusters of the file's own), writes exactly those, and leaves
// the inode as it was; every other write is handed back untouched.
func TestOverwriteOnlyWhereNoMetadataChanges(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "4096")
	cs := int64(4096)
	data := r.random(int(8 * cs))
	ino := r.file("db", data)
	before, err := r.fs.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}

	patch := r.random(int(2*cs) + 100)
	off := cs + 50
	ok, err := r.fs.Overwrite(ino, patch, off)
	if err != nil || !ok {
		t.Fatalf("overwrite inside the file: ok %v, %v", ok, err)
	}
	copy(data[off:], patch)
	r.expect(ino, data, "after the shared overwrite")
	after, err := r.fs.Stat(ino)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size != before.Size || after.Mtime != before.Mtime || after.Ctime != before.Ctime || after.Clusters != before.Clusters {
		t.Fatalf("the shared overwrite changed the inode: size %d->%d mtime %d->%d clusters %d->%d",
			before.Size, after.Size, before.Mtime, after.Mtime, before.Clusters, after.Clusters)
	}

	// Writes that must change metadata are not taken, and write nothing.
	hole := r.file("sparse", nil)
	if err := r.fs.Truncate(hole, 8*cs); err != nil {
		t.Fatal(err)
	}
	prealloc := r.file("prealloc", nil)
	if err := r.fs.Fallocate(prealloc, 0, 0, 4*cs); err != nil {
		t.Fatal(err)
	}
	inline := r.file("inline", []byte("small"))
	clone := r.file("clone", nil)
	if err := r.fs.Reflink(ino, clone); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		ino  uint64
		off  int64
		n    int
	}{
		{"past the end", ino, 8*cs - 10, 20},
		{"at the end", ino, 8 * cs, 10},
		{"into a hole", hole, 2 * cs, 10},
		{"into unwritten clusters", prealloc, cs, 10},
		{"into inline data", inline, 0, 3},
		{"into clusters shared by a reflink", clone, 0, 10},
	} {
		was := r.read(c.ino)
		ok, err := r.fs.Overwrite(c.ino, bytes.Repeat([]byte{0xee}, c.n), c.off)
		if err != nil || ok {
			t.Errorf("%s: ok %v, err %v; want the write handed back", c.what, ok, err)
		}
		r.expect(c.ino, was, c.what+": nothing written")
	}
	r.expect(ino, data, "the reflink source after the refused writes")
	// The ordinary write still does them.
	if _, err := r.fs.Write(clone, []byte("cow"), 0); err != nil {
		t.Fatal(err)
	}
	r.finish()
}
