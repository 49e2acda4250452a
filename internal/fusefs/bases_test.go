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
	b.record(7, 0, []byte("abcdefghijklmn")) // pages 0 and 1 (1 is "ijklmn\0\0")
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
	b.record(7, 24, nil)
	if got, want := partsString(b.changes(7, 24, []byte("\x00\x00z\x00"))), `[26 "z"]`; got != want {
		t.Fatalf("page read at the end: %s, want %s", got, want)
	}
	// Not page aligned: not a page-cache read, nothing recorded.
	b.record(9, 3, []byte("abc"))
	if got, want := partsString(b.changes(9, 0, []byte("abcabcab"))), `[0 "abcabcab"]`; got != want {
		t.Fatalf("unaligned read recorded: %s, want %s", got, want)
	}
}

// TestPageBasesDropAndLimit: a drop forgets the bases recorded before it
// began (a page read in since keeps its own); forget drops them all; past
// the limit pages go unrecorded (written back whole) and the count of
// bytes held comes back down as bases go.
func TestPageBasesDropAndLimit(t *testing.T) {
	const ps = 4
	b := newPageBases(ps, 3*ps)
	b.record(1, 0, []byte("aaaabbbb")) // pages 0, 1
	seq := b.mark()
	b.record(1, 8, []byte("cccc")) // page 2, during the drop
	b.record(2, 0, []byte("dddd")) // past the limit: not kept
	if got, want := partsString(b.changes(2, 0, []byte("dxdd"))), `[0 "dxdd"]`; got != want {
		t.Fatalf("past the limit: %s, want %s", got, want)
	}
	b.dropBefore(1, seq)
	if got, want := partsString(b.changes(1, 0, []byte("axaa"))), `[0 "axaa"]`; got != want {
		t.Fatalf("dropped page: %s, want %s", got, want)
	}
	if got, want := partsString(b.changes(1, 8, []byte("cxcc"))), `[9 "x"]`; got != want {
		t.Fatalf("page read in during the drop: %s, want %s", got, want)
	}
	if b.bytes != ps {
		t.Fatalf("%d bytes held, want %d", b.bytes, ps)
	}
	b.record(2, 0, []byte("dddd")) // room again
	if got, want := partsString(b.changes(2, 0, []byte("dxdd"))), `[1 "x"]`; got != want {
		t.Fatalf("under the limit again: %s, want %s", got, want)
	}
	b.forget(1)
	b.forget(2)
	if b.bytes != 0 || len(b.byIno) != 0 {
		t.Fatalf("after forget: %d bytes, %d inodes", b.bytes, len(b.byIno))
	}
}
