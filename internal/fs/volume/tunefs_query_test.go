package volume

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// queryFormats are -Q formats compared with tunefs.ocfs2 -Q. %B is not
// among them: tunefs.ocfs2 1.8.7 refuses any format using it (glibc's own
// %B), so TestTunefsQueryBlockSize checks it against debugfs.ocfs2.
var queryFormats = []string{
	`%T %N %R %Y %P %V %U %M %H %O\n`,
	`[%10T|%-10T|%5V|%-8N|%%|%.2V|%lT|%hN|%3V]\n`,
	`a\tb\\c\qd \x41 %5U\r\n`,
	`%Q literal %z and x%`,
	`[%5Q][%-5Q][%lQ][%.3Q][%hhQ][%05.2lQ][%z][% Q][%#Q]`,
	`%+N %#-6N %08T %'R`,
	`%H|%M|%O`,
}

// TestTunefsQueryMatchesTunefsOcfs2 compares o2go tunefs -Q with
// tunefs.ocfs2 -Q on volumes of several kinds, including aborted resize
// and tunefs marks (shown in %H), for formats with widths, flags, escapes
// and unknown conversions.
func TestTunefsQueryMatchesTunefsOcfs2(t *testing.T) {
	realtools.Require(t)
	imgs := map[string]string{
		"default":       realtools.MkfsImage(t, 1<<30, "-L", "a label"),
		"local-1k":      realtools.MkfsImage(t, 200<<20, "-b", "1024", "-N", "3", "--fs-features=local"),
		"pcmk-metaecc":  realtools.MkfsImage(t, 300<<20, "--cluster-stack=pcmk", "--cluster-name=mycl", "--fs-features=metaecc,noinline-data"),
		"maxcompat-ghb": realtools.MkfsImage(t, 300<<20, "--fs-feature-level=max-compat", "--cluster-stack=o2cb", "--cluster-name=web", "--global-heartbeat"),
		"maxfeatures":   realtools.MkfsImage(t, 300<<20, "--fs-feature-level=max-features", "-L", strings.Repeat("L", 63)),
	}
	aborted := copyImage(t, imgs["local-1k"])
	pokeSuper(t, aborted, func(sb *ondisk.SuperBlock) {
		sb.Features.Incompat |= ondisk.IncompatTunefsInProg | ondisk.IncompatResizeInProg
		sb.TunefsFlag = ondisk.TunefsInProgRemoveSlot | ondisk.TunefsInProgDirTrailer
	})
	imgs["aborted"] = aborted
	for name, img := range imgs {
		for _, f := range queryFormats {
			want := realtools.TunefsQuery(t, img, f)
			got, err := tunefsO2goErr(img, TunefsOptions{SetQuery: true, Query: f})
			if err != nil {
				t.Errorf("%s: -Q %q: %v", name, f, err)
				continue
			}
			if got != want {
				t.Errorf("%s: -Q %q:\n o2go:         %q\n tunefs.ocfs2: %q", name, f, got, want)
			}
		}
	}
	for _, bad := range []string{"%d", "%s", "x %5x", "%*T"} {
		if _, err := runTool("tunefs.ocfs2", "-Q", bad, imgs["default"]); err == nil {
			t.Errorf("tunefs.ocfs2 -Q %q was expected to refuse", bad)
		}
		if _, err := tunefsO2goErr(imgs["default"], TunefsOptions{SetQuery: true, Query: bad}); err == nil || !strings.Contains(err.Error(), "unknown type specifier") {
			t.Errorf("o2go -Q %q: want an unknown type specifier refusal, got %v", bad, err)
		}
	}
}

// TestTunefsQueryBlockSize checks %B, which tunefs.ocfs2 1.8.7 cannot
// print, against debugfs.ocfs2's block size.
func TestTunefsQueryBlockSize(t *testing.T) {
	realtools.Require(t)
	for _, bs := range []string{"512", "1024", "2048", "4096"} {
		img := realtools.MkfsImage(t, 100<<20, "-b", bs, "-N", "1", "-J", "size=4M", "--fs-features=local")
		got, err := tunefsO2goErr(img, TunefsOptions{SetQuery: true, Query: "%B"})
		if err != nil {
			t.Fatal(err)
		}
		bits := firstInt(t, `Block Size Bits: (\d+)`, realtools.Debugfs(t, img, "stats"))
		if want := strconv.Itoa(1 << bits); got != want || want != bs {
			t.Errorf("-b %s: %%B printed %q, debugfs.ocfs2 says %s", bs, got, want)
		}
	}
}

// pokeSuper changes the primary superblock of img in place.
func pokeSuper(t *testing.T, img string, change func(sb *ondisk.SuperBlock)) {
	t.Helper()
	d := superWith(t, img)
	change(d.Super)
	bs := d.Super.BlockSize()
	buf := make([]byte, bs)
	if err := d.Encode(buf); err != nil {
		t.Fatal(err)
	}
	if d.Super.Features.Incompat&ondisk.IncompatMetaECC != 0 {
		ondisk.SetBlockCheck(buf, ondisk.DinodeCheckOffset)
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(buf, int64(2*bs)); err != nil {
		t.Fatal(err)
	}
}
