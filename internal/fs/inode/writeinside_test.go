package inode_test

import (
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
)

// TestWriteInsideKeepsTheSize: a page of a shared mapping written back
// lands only inside the file's size as the volume has it: the part past
// the end (cut by another node since the kernel last knew the size) is
// dropped, a page wholly past it writes nothing, and each reports every
// byte written, as the kernel expects; inline files too.
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
	if n, err := r.fs.WriteInside(ino, pg, page); err != nil || n != page {
		t.Fatalf("page straddling the end: %d, %v; want %d written", n, err, page)
	}
	copy(data[page:], pg[:100])
	r.expect(ino, data, "after the page straddling the end")

	if n, err := r.fs.WriteInside(ino, r.random(page), 2*page); err != nil || n != page {
		t.Fatalf("page past the end: %d, %v; want %d reported", n, err, page)
	}
	r.expect(ino, data, "after the page past the end")

	pg = r.random(page)
	if n, err := r.fs.WriteInside(ino, pg, 0); err != nil || n != page {
		t.Fatalf("page inside: %d, %v", n, err)
	}
	copy(data, pg)
	r.expect(ino, data, "after the page inside")

	small := []byte("inline bytes")
	inl := r.file("inline", small)
	if n, err := r.fs.WriteInside(inl, []byte("INLINE BYTES and then some"), 0); err != nil || n != 26 {
		t.Fatalf("inline page: %d, %v", n, err)
	}
	r.expect(inl, []byte("INLINE BYTES"), "the inline file")

	if _, err := r.fs.WriteInside(ino, []byte("x"), -1); err != syscall.EINVAL {
		t.Fatalf("negative offset: %v, want EINVAL", err)
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
