package inode_test

import (
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
)

// writeInside writes one page of a shared mapping back, as the FUSE layer
// does (WriteInsideParts).
func writeInside(r *rfs, ino uint64, p []byte, off int64) error {
	return r.fs.WriteInsideParts(ino, []inode.Part{{Off: off, Data: p}})
}

// TestWriteInsideKeepsTheSize: a page of a shared mapping written back
// lands only inside the file's size as the volume has it: the part past
// the end (cut by another node since the kernel last knew the size) is
// dropped, a page wholly past it writes nothing and is no error; inline
// files too.
func TestWriteInsideKeepsTheSize(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "4096")
	const page = 4096
	data := r.random(3 * page)
	ino := r.file("mapped", data)
	if err := r.fs.Truncate(ino, page+100); err != nil { // another node cut it
		t.Fatal(err)
	}
	data = data[:page+100]

	pg := r.random(page)
	if err := writeInside(r, ino, pg, page); err != nil {
		t.Fatalf("page straddling the end: %v", err)
	}
	copy(data[page:], pg[:100])
	r.expect(ino, data, "after the page straddling the end")

	if err := writeInside(r, ino, r.random(page), 2*page); err != nil {
		t.Fatalf("page past the end: %v", err)
	}
	r.expect(ino, data, "after the page past the end")

	pg = r.random(page)
	if err := writeInside(r, ino, pg, 0); err != nil {
		t.Fatalf("page inside: %v", err)
	}
	copy(data, pg)
	r.expect(ino, data, "after the page inside")

	small := []byte("inline bytes")
	inl := r.file("inline", small)
	if err := writeInside(r, inl, []byte("INLINE BYTES and then some"), 0); err != nil {
		t.Fatalf("inline page: %v", err)
	}
	r.expect(inl, []byte("INLINE BYTES"), "the inline file")

	for _, off := range []int64{-1, -2} { // AtEOF is no offset for a page
		if err := writeInside(r, ino, []byte("x"), off); err != syscall.EINVAL {
			t.Fatalf("offset %d: %v, want EINVAL", off, err)
		}
	}
	r.finish()
}

// TestWriteInsidePartsKeepsTheBytesBetween: runs of one write-back that
// fall in one cluster are written in one go with the bytes between them
// as the volume holds them now (another node's write there survives);
// runs in other clusters and past the size are handled on their own.
func TestWriteInsidePartsKeepsTheBytesBetween(t *testing.T) {
	r := newRFS(t, "-b", "4096", "-C", "4096")
	const cs = 4096
	data := r.random(3 * cs)
	ino := r.file("mapped", data)
	if _, err := r.fs.Write(ino, []byte("B"), 100); err != nil { // another node's write
		t.Fatal(err)
	}
	data[100] = 'B'
	parts := []inode.Part{
		{Off: 10, Data: []byte("X")}, {Off: 200, Data: []byte("YY")}, // cluster 0, around B's byte
		{Off: cs - 1, Data: []byte("ZZ")},    // across clusters 0 and 1
		{Off: 2*cs + 5, Data: []byte("W")},   // cluster 2, alone
		{Off: 3*cs - 1, Data: []byte("VVV")}, // past the end but for one byte
	}
	if err := r.fs.WriteInsideParts(ino, parts); err != nil {
		t.Fatal(err)
	}
	data[10], data[200], data[201], data[cs-1], data[cs], data[2*cs+5], data[3*cs-1] = 'X', 'Y', 'Y', 'Z', 'Z', 'W', 'V'
	r.expect(ino, data, "after the runs")
	r.finish()
}
