package inspect

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"o2go/internal/ondisk"
)

// These pin the formatting rules debugfs and o2info follow, so that the
// edge cases the golden tests never meet (far-off times, odd modes,
// unknown feature bits, long feature lists) keep the tools' behaviour.

func TestCtimeLikeC(t *testing.T) {
	for _, tc := range []struct {
		sec  int64
		want string
	}{
		{0, "Thu Jan  1 00:00:00 1970"},
		{1795469338, "Mon Nov 23 21:28:58 2026"},
		{-1, "Wed Dec 31 23:59:59 1969"},
		{-62167219200, "Sat Jan  1 00:00:00 0"}, // year 0: unpadded, as %d prints it (checked with glibc)
		{253402300800, "Sat Jan  1 00:00:00 10000"},
	} {
		if got, ok := ctime(tc.sec); !ok || got != tc.want {
			t.Errorf("ctime(%d) = %q, %v; want %q", tc.sec, got, ok, tc.want)
		}
	}
	if got := ctimeLine(math.MaxInt64); got != "(null)" {
		t.Errorf("a time past any int year prints %q, want (null) as glibc does", got)
	}
	if got := ctimeNano(1795469338, 123456789); got != "Mon Nov 23 21:28:58.123456789 2026\n" {
		t.Errorf("ctimeNano = %q", got)
	}
	if got := lsTime(1795469338); got != "23-Nov-2026 21:28" {
		t.Errorf("lsTime = %q", got)
	}
}

func TestPermString(t *testing.T) {
	for mode, want := range map[uint16]string{
		ondisk.ModeDir | 0o755:  "drwxr-xr-x",
		ondisk.ModeReg | 0o4755: "-rwsr-xr-x",
		ondisk.ModeReg | 0o2644: "-rw-r-Sr--",
		ondisk.ModeDir | 0o1777: "drwxrwxrwt",
		ondisk.ModeDir | 0o1776: "drwxrwxrwT",
		ondisk.ModeFifo | 0o600: "frw-------", // debugfs's letter for FIFOs
		ondisk.ModeLnk | 0o777:  "lrwxrwxrwx",
		ondisk.ModeSock | 0o700: "srwx------",
		ondisk.ModeChr | 0o660:  "crw-rw----",
		ondisk.ModeBlk | 0o640:  "brw-r-----",
		0o644:                   "-rw-r--r--", // no type bits
	} {
		if got := permString(mode); got != want {
			t.Errorf("permString(%o) = %q, want %q", mode, got, want)
		}
	}
	if got := filestatPerm(ondisk.ModeFifo | 0o600); got != "prw-------" {
		t.Errorf("o2info's FIFO letter: %q", got)
	}
}

func TestFeatureWords(t *testing.T) {
	got := strings.Join(featureWords(ondisk.CategoryIncompat, 0xB758), " ")
	if got != "local sparse extended-slotmap inline-data xattr indexed-dirs refcount discontig-bg append-dio" {
		t.Errorf("default incompat words: %q", got)
	}
	if got := featureWords(ondisk.CategoryIncompat, ondisk.IncompatUserspaceStack|0x10000); strings.Join(got, " ") != "userspace-stack unknown" {
		t.Errorf("unknown bits: %q", got)
	}
	if got := featureWords(ondisk.CategoryRoCompat, 0); len(got) != 0 {
		t.Errorf("no bits: %q", got)
	}
	if got := flagNames(3, tunefsFlagNames); got != "remove-slot dir-trailer" {
		t.Errorf("tunefs flags: %q", got)
	}
	if got := flagNames(0x81, extentFlagNames); got != "Unwritten unknown" {
		t.Errorf("extent flags: %q", got)
	}
}

func TestFeatureLineWraps(t *testing.T) {
	var b bytes.Buffer
	printFeatureLine(&b, "    Features: ", []string{"backup-super", "strict-journal-super", "sparse", "extended-slotmap",
		"inline-data", "xattr", "indexed-dirs", "refcount", "discontig-bg", "clusterinfo", "unwritten"})
	// The example of o2info(1).
	want := "    Features: backup-super strict-journal-super sparse extended-slotmap \n" +
		"    Features: inline-data xattr indexed-dirs refcount discontig-bg clusterinfo \n" +
		"    Features: unwritten \n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestSignedCharHex(t *testing.T) {
	if got := signedCharHex([]byte{0x12, 0x80, 0xff, 0x7f}); got != "12FFFFFF80FFFFFFFF7F" {
		t.Errorf("got %q", got)
	}
}

func TestLockNamesWithoutDevice(t *testing.T) {
	var b bytes.Buffer
	err := DecodeLockNames(&b, []string{"M0000000000000000000018eb0f720a", "N000000000000000500004213", "bogus"})
	want := "Lockres:    M0000000000000000000018eb0f720a\nType:       Meta\nBlock:      24\nGeneration: 0xeb0f720a\n\n" +
		"Lockres:    N000000000000000500004213\nType:       Dentry\nBlock:      16915\nParent:\t    5\n\n"
	if b.String() != want || err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("decode: %q, %v", b.String(), err)
	}
	for _, tc := range []struct{ typ, blk, extra, want string }{
		{"M", "24", "0xeb0f720a", "M0000000000000000000018eb0f720a"},
		{"N", "16915", "5", "N000000000000000500004213"},
		{"S", "2", "0", "S000000000000000000000200000000"},
	} {
		if got, err := EncodeLockName(tc.typ, tc.blk, tc.extra); err != nil || got != tc.want {
			t.Errorf("encode %v: %q %v", tc, got, err)
		}
	}
	for _, bad := range [][3]string{{"X", "1", "2"}, {"M", "x", "0"}, {"M", "1", "0x100000000"}} {
		if _, err := EncodeLockName(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("encode %v succeeded", bad)
		}
	}
}

func TestCommandLineParsing(t *testing.T) {
	if got := splitLine("  ls   -l\t//x  "); len(got) != 2 || got[0] != "ls" || got[1] != "-l\t//x" {
		t.Errorf("splitLine: %q", got)
	}
	for in, want := range map[string]uint64{"<42>": 42, "42": 42, "0x10": 16, "<M000000000000000000001800000000>": 24} {
		if got, err := parseBlockArg(in); err != nil || got != want {
			t.Errorf("parseBlockArg(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"<>", "x", "<Mbogus>", "-1"} {
		if _, err := parseBlockArg(bad); err == nil {
			t.Errorf("parseBlockArg(%q) accepted", bad)
		}
	}
	var out, errOut bytes.Buffer
	d := NewDebugger(&out, &errOut)
	d.Exec("stats")
	d.Exec("nosuch")
	d.Exec("# a comment")
	d.Exec("help")
	if !d.Failed() || !strings.Contains(errOut.String(), "stats: no device open") || !strings.Contains(errOut.String(), "nosuch: command not found") {
		t.Errorf("errors: %q", errOut.String())
	}
	if !strings.Contains(out.String(), "dump [-p] <filespec> <outfile>") {
		t.Errorf("help: %q", out.String())
	}
	if !IsQuit(d.Exec("q")) || !IsQuit(d.Exec("quit")) {
		t.Error("quit does not quit")
	}
	out.Reset()
	if err := d.Script(strings.NewReader("curdev\n\n  curdev\nquit\ncurdev\n"), ScriptOptions{Prompt: Prompt, Echo: true}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "debugfs: curdev\nNo device\ndebugfs: curdev\nNo device\ndebugfs: quit\n" {
		t.Errorf("script transcript %q", got)
	}
}
