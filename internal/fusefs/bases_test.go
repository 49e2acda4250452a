package fusefs

import (
	"bytes"
	"fmt"
	"testing"

	"o2go/internal/fs/inode"
)

func partsString(ps []inode.Part) string {
	var b bytes.Buffer
	for _, p := range ps {
		fmt.Fprintf(&b, "[%d %q]", p.Off, p.Data)
	}
	return b.String()
}

// TestPageBasesWriteOnlyTheStores: a page read in and written back comes
// back as the runs of bytes that changed (adjacent runs across a page
// boundary as one); a page with no base whole; after settle only later
// changes count; a read that ends inside a page leaves zeros past it.
func TestPageBasesWriteOnlyTheStores(t *testing.T) {
	const ps = 8
	b := newPageBases(ps, 1<<20)
	b.record(7, 0, []byte("abcdefghijklmn"), 0) // pages 0 and 1 (1 is "ijklmn\0\0")
	page0 := []byte("aXcdefgY")
	page1 := []byte("Zjklmn\x00\x00")
	data := append(append([]byte{}, page0...), page1...)
	got := partsString(b.changes(7, 0, data))
	if want := `[1 "X"][7 "YZ"]`; got != want {
		t.Fatalf("changes %s, want %s", got, want)
	}
	// Page 2 has no base: whole.
	if got, want := partsString(b.changes(7, 16, []byte("qqqqqqqq"))), `[16 "qqqqqqqq"]`; got != want {
		t.Fatalf("no base: %s, want %s", got, want)
	}
	// Another inode's bases are its own.
	if got, want := partsString(b.changes(8, 0, page0)), `[0 "aXcdefgY"]`; got != want {
		t.Fatalf("other inode: %s, want %s", got, want)
	}
	b.settle(7, 0, data)
	if got := b.changes(7, 0, data); len(got) != 0 {
		t.Fatalf("after settle, the same page again: %s, want nothing", partsString(got))
	}
	data[3] = '!'
	if got, want := partsString(b.changes(7, 0, data[:ps])), `[3 "!"]`; got != want {
		t.Fatalf("after settle: %s, want %s", got, want)
	}
	// A zero-length read at the end fills a zero page.
	b.record(7, 24, nil, 0)
	if got, want := partsString(b.changes(7, 24, []byte("\x00\x00z\x00"))), `[26 "z"]`; got != want {
		t.Fatalf("page read at the end: %s, want %s", got, want)
	}
	// A read-ahead of three pages that finds the end in the first: the
	// kernel zeroes the other two, which get zero bases.
	b.record(10, 0, []byte("ab"), 3*ps)
	if got, want := partsString(b.changes(10, ps, []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00q\x00\x00\x00\x00\x00\x00"))), `[17 "q"]`; got != want {
		t.Fatalf("pages zeroed past a short read: %s, want %s", got, want)
	}
	// Not page aligned: not a page-cache read, nothing recorded.
	b.record(9, 3, []byte("abc"), 0)
	if got, want := partsString(b.changes(9, 0, []byte("abcabcab"))), `[0 "abcabcab"]`; got != want {
		t.Fatalf("unaligned read recorded: %s, want %s", got, want)
	}
}

// TestPageBasesDropAndLimit: past the limit the oldest bases go (their
// pages come back whole); a drop forgets the bases recorded before it
// began (a page read in since keeps its own); forget drops them all; the
// recording order does not grow without bound when pages are read in
// again and again.
func TestPageBasesDropAndLimit(t *testing.T) {
	const ps = 4
	b := newPageBases(ps, 3*ps)
	b.record(1, 0, []byte("aaaabbbb"), 0) // pages 0, 1
	seq := b.mark()
	b.record(1, 8, []byte("cccc"), 0) // page 2, during the drop
	b.record(2, 0, []byte("dddd"), 0) // past the limit: inode 1's page 0 goes
	if got, want := partsString(b.changes(2, 0, []byte("dxdd"))), `[1 "x"]`; got != want {
		t.Fatalf("the newest base: %s, want %s", got, want)
	}
	if got, want := partsString(b.changes(1, 0, []byte("axaa"))), `[0 "axaa"]`; got != want {
		t.Fatalf("the oldest base, evicted: %s, want %s", got, want)
	}
	b.dropBefore(1, seq)
	if got, want := partsString(b.changes(1, 4, []byte("bxbb"))), `[4 "bxbb"]`; got != want {
		t.Fatalf("dropped page: %s, want %s", got, want)
	}
	if got, want := partsString(b.changes(1, 8, []byte("cxcc"))), `[9 "x"]`; got != want {
		t.Fatalf("page read in during the drop: %s, want %s", got, want)
	}
	if b.bytes != 2*ps {
		t.Fatalf("%d bytes held, want %d", b.bytes, 2*ps)
	}
	for range 10000 {
		b.record(3, 0, []byte("eeee"), 0)
	}
	if len(b.order) > 2*3+1024 {
		t.Fatalf("the recording order holds %d entries for 3 bases", len(b.order))
	}
	b.forget(1)
	b.forget(2)
	b.forget(3)
	if b.bytes != 0 || len(b.byIno) != 0 {
		t.Fatalf("after forget: %d bytes, %d inodes", b.bytes, len(b.byIno))
	}
}

// TestPageBasesFollowLocalChanges: a hole punched or a range zeroed here
// zeroes those bytes of the bases, as the kernel zeroes its cached pages;
// a truncate zeroes the last page past the end and drops the pages
// beyond; a store into such a page then comes back alone.
func TestPageBasesFollowLocalChanges(t *testing.T) {
	const ps = 4
	b := newPageBases(ps, 1<<20)
	b.record(1, 0, []byte("abcdefghijkl"), 0) // pages 0-2
	b.zero(1, 2, 3)                           // "ab\0\0" "\0fgh"
	if got, want := partsString(b.changes(1, 0, []byte("ab\x00X\x00fgh"))), `[3 "X"]`; got != want {
		t.Fatalf("after a punched hole: %s, want %s", got, want)
	}
	b.cut(1, 6) // page 1 is "\0f\0\0", page 2 gone
	if got, want := partsString(b.changes(1, 4, []byte("\x00fY\x00"))), `[6 "Y"]`; got != want {
		t.Fatalf("after a truncate: %s, want %s", got, want)
	}
	if got, want := partsString(b.changes(1, 8, []byte("ijkl"))), `[8 "ijkl"]`; got != want {
		t.Fatalf("a page past a truncate: %s, want %s", got, want)
	}
}
