package ondisk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

var blockSizes = []int{512, 1024, 2048, 4096}

func TestRecLen(t *testing.T) {
	for n, want := range map[int]int{0: 12, 1: 16, 4: 16, 5: 20, 8: 20, 9: 24, 10: 24, 255: 268} {
		if got := RecLen(n); got != want {
			t.Errorf("RecLen(%d) = %d, want %d", n, got, want)
		}
	}
	if RecLen(1) != DirEntryMinRecLen {
		t.Error("DirEntryMinRecLen is not RecLen(1)")
	}
}

func dirNames(t *testing.T, area []byte) []string {
	t.Helper()
	_, es, err := DirEntries(area)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Used() {
			out = append(out, e.Name)
		}
	}
	return out
}

func TestDirAreaRoundTrip(t *testing.T) {
	for _, bs := range blockSizes {
		for _, trailer := range []bool{false, true} {
			block := make([]byte, bs)
			area := DirEntryArea(block, trailer)
			InitDirArea(area, 100, 50)
			names := []string{"lost+found", "a", strings.Repeat("n", 255), "caf\xc3\xa9"}
			for i, n := range names {
				if _, err := InsertDirEntry(area, uint64(200+i), FileTypeReg, n); err != nil {
					t.Fatalf("bs %d: insert %q: %v", bs, n, err)
				}
			}
			want := append([]string{".", ".."}, names...)
			if got := dirNames(t, area); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("bs %d: names %q, want %q", bs, got, want)
			}
			// Decode each entry and encode it back: same bytes.
			offs, es, _ := DirEntries(area)
			out := make([]byte, len(area))
			for i, e := range es {
				e.Encode(out[offs[i]:])
			}
			if !bytes.Equal(out, area) {
				t.Fatalf("bs %d: re-encoded area differs", bs)
			}
			last := es[len(es)-1]
			if offs[len(offs)-1]+int(last.RecLen) != len(area) {
				t.Fatalf("bs %d: last entry does not reach the end of the area", bs)
			}
			if trailer {
				tr := DirTrailer{FreeRecLen: 7, Blkno: 9, ParentDinode: 100}
				tr.Encode(block)
				// A trailer-unaware walk of the whole block sees it as an unused entry.
				_, all, err := DirEntries(block)
				if err != nil {
					t.Fatalf("bs %d: whole-block walk: %v", bs, err)
				}
				if e := all[len(all)-1]; e.Used() || e.RecLen != DirTrailerSize {
					t.Fatalf("bs %d: trailer seen as %+v", bs, e)
				}
			}
		}
	}
}

func TestInsertDirEntrySlots(t *testing.T) {
	area := make([]byte, 512)
	InitEmptyDirArea(area)
	// An unused first entry is reused whole.
	off, err := InsertDirEntry(area, 7, FileTypeReg, "x")
	if err != nil || off != 0 {
		t.Fatalf("insert into empty area: off %d err %v", off, err)
	}
	e, _ := DecodeDirEntry(area, 0)
	if e.RecLen != 512 || e.Inode != 7 {
		t.Fatalf("reused entry %+v", e)
	}
	// A used entry with slack is split after its own RecLen.
	off, err = InsertDirEntry(area, 8, FileTypeDir, "yy")
	if err != nil || off != 16 {
		t.Fatalf("split: off %d err %v", off, err)
	}
	if e, _ := DecodeDirEntry(area, 0); e.RecLen != 16 {
		t.Fatalf("split entry keeps rec_len %d", e.RecLen)
	}
	if e, _ := DecodeDirEntry(area, 16); e.RecLen != 496 || e.Name != "yy" || e.FileType != FileTypeDir {
		t.Fatalf("new entry %+v", e)
	}
	// Delete of the first entry zeroes its inode; the slot is reused.
	if err := DeleteDirEntry(area, 0); err != nil {
		t.Fatal(err)
	}
	if e, _ := DecodeDirEntry(area, 0); e.Used() || e.RecLen != 16 {
		t.Fatalf("deleted first entry %+v", e)
	}
	if err := DeleteDirEntry(area, 0); err == nil {
		t.Fatal("double delete accepted")
	}
	if off, err := InsertDirEntry(area, 9, FileTypeReg, "abcd"); err != nil || off != 0 {
		t.Fatalf("reuse of the freed first slot: off %d err %v", off, err)
	}
	// A name too long for the freed 16-byte slot goes after "yy".
	if off, err := InsertDirEntry(area, 10, FileTypeReg, "abcde"); err != nil || off != 32 {
		t.Fatalf("insert after yy: off %d err %v", off, err)
	}
	// Delete in the middle merges into the previous entry.
	if err := DeleteDirEntry(area, 32); err != nil {
		t.Fatal(err)
	}
	if e, _ := DecodeDirEntry(area, 16); e.RecLen != 496 {
		t.Fatalf("merge: previous rec_len %d, want 496", e.RecLen)
	}
	if err := DeleteDirEntry(area, 20); err == nil {
		t.Fatal("delete at a non-entry offset accepted")
	}
	// Fill the area: ErrDirAreaFull, and the area stays valid.
	for i := 0; ; i++ {
		_, err := InsertDirEntry(area, uint64(100+i), FileTypeReg, fmt.Sprintf("file%03d", i))
		if errors.Is(err, ErrDirAreaFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckDirArea(area); err != nil {
		t.Fatal(err)
	}
	if n, err := LargestFreeSpace(area); err != nil || n >= RecLen(7) {
		t.Fatalf("full area still has %d free bytes (%v)", n, err)
	}
}

func TestInsertDirEntryRejectsBadNames(t *testing.T) {
	area := make([]byte, 512)
	InitEmptyDirArea(area)
	for _, n := range []string{"", "a/b", "a\x00b", strings.Repeat("x", 256)} {
		if _, err := InsertDirEntry(area, 1, FileTypeReg, n); err == nil || errors.Is(err, ErrCorrupt) {
			t.Errorf("name %q: got %v, want a name error", n, err)
		}
	}
	if _, err := InsertDirEntry(area, 0, FileTypeReg, "x"); err == nil {
		t.Error("inode 0 accepted")
	}
}

func TestLargestFreeSpace(t *testing.T) {
	area := make([]byte, 4032)
	InitDirArea(area, 5, 5)
	if n, _ := LargestFreeSpace(area); n != 4000 { // ".." needs 16 of its 4016 bytes
		t.Fatalf("fresh dir: %d, want 4000", n)
	}
	InsertDirEntry(area, 70, FileTypeDir, "lost+found")
	if n, _ := LargestFreeSpace(area); n != 4000-24 {
		t.Fatalf("after lost+found: %d, want %d", n, 4000-24)
	}
	small := make([]byte, 28)
	DirEntry{Inode: 1, RecLen: 28, Name: "abcd"}.Encode(small) // 12 bytes of slack < 16
	if n, _ := LargestFreeSpace(small); n != 0 {
		t.Fatalf("slack below the minimum counts: %d", n)
	}
}

func TestDirEntryRejectsDamage(t *testing.T) {
	mk := func() []byte {
		a := make([]byte, 64)
		InitDirArea(a, 1, 2)
		return a
	}
	for name, c := range map[string]struct {
		mutate func([]byte)
		area   int // shrink the area to this length when > 0
		field  string
	}{
		"rec_len below minimum": {func(b []byte) { binary.LittleEndian.PutUint16(b[8:], 12) }, 0, "rec_len"},
		"rec_len unaligned":     {func(b []byte) { binary.LittleEndian.PutUint16(b[8:], 18) }, 0, "rec_len"},
		"name_len too big":      {func(b []byte) { b[10] = 5 }, 0, "name_len"},
		"crosses the end":       {func(b []byte) { binary.LittleEndian.PutUint16(b[24:], 52) }, 0, "rec_len"},
		"too close to end":      {func(b []byte) { binary.LittleEndian.PutUint16(b[24:], 40) }, 0, "rec_len"},
		"area too short":        {nil, 8, "rec_len"},
	} {
		a := mk()
		if c.mutate != nil {
			c.mutate(a)
		}
		if c.area > 0 {
			a = a[:c.area]
		}
		err := CheckDirArea(a)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Field != c.field || !strings.Contains(ce.Msg, "offset") {
			t.Errorf("%s: got %v, want a corruption of %s naming the offset", name, err, c.field)
		}
		if _, err := InsertDirEntry(a, 9, FileTypeReg, strings.Repeat("q", 40)); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrDirAreaFull) {
			t.Errorf("%s: insert into a damaged area: %v", name, err)
		}
		if _, err := LargestFreeSpace(a); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: LargestFreeSpace: %v", name, err)
		}
	}
}

// TestDirAreaModel drives insert/delete/lookup against a map model.
func TestDirAreaModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.SampledFrom([]int{512 - 64, 1024, 3896, 4096 - 64}).Draw(t, "size")
		area := make([]byte, size)
		InitDirArea(area, 1, 2)
		model := map[string]uint64{".": 1, "..": 2}
		nameGen := rapid.StringMatching(`[a-z\x{e9}]{1,40}`)
		for i := range rapid.IntRange(1, 200).Draw(t, "ops") {
			name := nameGen.Draw(t, "name")
			if _, ok := model[name]; ok {
				off, _, found, err := FindDirEntry(area, name)
				if err != nil || !found {
					t.Fatalf("lookup %q: found %v err %v", name, found, err)
				}
				if err := DeleteDirEntry(area, off); err != nil {
					t.Fatal(err)
				}
				delete(model, name)
			} else {
				_, err := InsertDirEntry(area, uint64(i+10), FileTypeReg, name)
				if errors.Is(err, ErrDirAreaFull) {
					if n, _ := LargestFreeSpace(area); n >= RecLen(len(name)) {
						t.Fatalf("full with %d free bytes for a %d-byte entry", n, RecLen(len(name)))
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				model[name] = uint64(i + 10)
			}
			if err := CheckDirArea(area); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]uint64{}
		_, es, _ := DirEntries(area)
		for _, e := range es {
			if e.Used() {
				if _, dup := got[e.Name]; dup {
					t.Fatalf("name %q twice", e.Name)
				}
				got[e.Name] = e.Inode
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(model) {
			t.Fatalf("area holds %v, model %v", got, model)
		}
	})
}

func FuzzDirArea(f *testing.F) {
	a := make([]byte, 512)
	InitDirArea(a, 1, 2)
	InsertDirEntry(a, 3, FileTypeReg, "hello")
	f.Add(a, "new")
	f.Add(a[:100], "x")
	f.Add([]byte{}, "y")
	f.Fuzz(func(t *testing.T, area []byte, name string) {
		var err error
		if err = CheckDirArea(area); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error outside the corruption class: %v", err)
			}
		}
		LargestFreeSpace(area)
		off, ierr := InsertDirEntry(area, 77, FileTypeReg, name)
		if err != nil || ierr != nil {
			return
		}
		if cerr := CheckDirArea(area); cerr != nil {
			t.Fatalf("area invalid after insert: %v", cerr)
		}
		foff, e, found, ferr := FindDirEntry(area, name)
		if ferr != nil || !found {
			t.Fatalf("inserted name not found: %v", ferr)
		}
		if foff == off && e.Inode != 77 {
			t.Fatalf("found entry %+v", e)
		}
		if foff != off { // an older entry of the same name comes first
			return
		}
		if err := DeleteDirEntry(area, off); err != nil {
			t.Fatal(err)
		}
		if cerr := CheckDirArea(area); cerr != nil {
			t.Fatalf("area invalid after delete: %v", cerr)
		}
		if o, _, found, _ := FindDirEntry(area, name); found && o == off {
			t.Fatal("deleted entry still found")
		}
	})
}
