package ondisk

import (
	"errors"
	"strings"
	"testing"
)

func TestLockNameStandard(t *testing.T) {
	for _, c := range []struct {
		n    LockName
		want string
	}{
		// Names printed by debugfs.ocfs2 (encode / -e) on a real image.
		{LockName{Type: LockMeta, Blkno: 70165}, "M000000000000000001121500000000"},
		{LockName{Type: LockMeta, Blkno: 25, Generation: 0xf8c84391}, "M0000000000000000000019f8c84391"},
		{LockName{Type: LockSuper, Blkno: 2}, "S000000000000000000000200000000"},
		{LockName{Type: LockRW, Blkno: 0xffffffffffffffff, Generation: 0xffffffff}, "W000000ffffffffffffffffffffffff"},
		{LockName{Type: LockOrphanScan}, "P000000000000000000000000000000"},
	} {
		got, err := c.n.Encode()
		if err != nil || got != c.want {
			t.Errorf("%+v: %q %v, want %q", c.n, got, err, c.want)
		}
		if len(got) != LockNameLen || c.n.String() != c.want {
			t.Errorf("%+v: length %d, String %q", c.n, len(got), c.n.String())
		}
		back, err := ParseLockName(got)
		if err != nil || back != c.n {
			t.Errorf("parse %q: %+v %v", got, back, err)
		}
		if back, err := ParseLockName(got + "\x00"); err != nil || back != c.n {
			t.Errorf("parse with NUL %q: %+v %v", got, back, err)
		}
	}
}

func TestLockNameDentry(t *testing.T) {
	n := LockName{Type: LockDentry, Parent: 0x1122, Blkno: 0x0102030405060708}
	got, err := n.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := "N0000000000001122\x00\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x00\x00"
	if got != want {
		t.Fatalf("dentry name %q, want %q", got, want)
	}
	if s := n.String(); s != "N000000000000112205060708" {
		t.Fatalf("printable %q", s)
	}
	back, err := ParseLockName(got)
	if err != nil || back != n {
		t.Fatalf("parse: %+v %v", back, err)
	}
	if _, err := (LockName{Type: LockDentry, Generation: 1}).Encode(); err == nil {
		t.Error("dentry lock with a generation accepted")
	}
	if _, err := (LockName{Type: LockMeta, Parent: 1}).Encode(); err == nil {
		t.Error("parent on a non-dentry lock accepted")
	}
	if _, err := (LockName{Type: 'Z'}).Encode(); err == nil {
		t.Error("unknown type accepted")
	}
}

func TestParseLockNameRejects(t *testing.T) {
	good := "M000000000000000001121500000000"
	dentry, _ := LockName{Type: LockDentry, Parent: 5, Blkno: 6}.Encode()
	for name, c := range map[string]struct{ s, field string }{
		"short":           {good[:30], ""},
		"long":            {good + "0", ""},
		"unknown type":    {"Z" + good[1:], "type"},
		"pad":             {"M000001" + good[7:], "pad"},
		"uppercase hex":   {strings.ToUpper(good[:23]) + "0000000A", "generation"},
		"blkno not hex":   {"M000000" + "000000000001121g" + "00000000", "blkno"},
		"dentry no NUL":   {dentry[:17] + "x" + dentry[18:], "parent"},
		"dentry tail":     {dentry[:30] + "\x01", ""},
		"dentry parent":   {"NXYZ" + dentry[4:], "parent"},
		"NUL in the name": {good[:30] + "\x00", "generation"},
	} {
		_, err := ParseLockName(c.s)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if f := corruptField(t, err); f != c.field {
			t.Errorf("%s: field %q, want %q", name, f, c.field)
		}
	}
}

func TestLockTypeNames(t *testing.T) {
	for typ, name := range map[LockType]string{LockMeta: "Meta", LockRW: "Write/Read", LockDentry: "Dentry", LockTrimFS: "TrimFs"} {
		if typ.Name() != name || !typ.Valid() {
			t.Errorf("%c: %q", typ, typ.Name())
		}
	}
	if LockType('z').Valid() {
		t.Error("z is not a lock type")
	}
}

func FuzzParseLockName(f *testing.F) {
	f.Add("M000000000000000001121500000000")
	d, _ := LockName{Type: LockDentry, Parent: 5, Blkno: 6}.Encode()
	f.Add(d)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseLockName(s)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error outside the corruption class: %v", err)
			}
			return
		}
		_ = n.String()
		enc, err := n.Encode()
		if err != nil {
			t.Fatalf("encode of a parsed name fails: %v", err)
		}
		want := s
		if len(s) == LockNameLen+1 {
			want = s[:LockNameLen] // the accepted trailing NUL
		}
		if enc != want {
			t.Fatalf("encode(parse(%q)) = %q", s, enc)
		}
	})
}
