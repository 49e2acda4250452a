package volume

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

func truncateFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mkfsCase is one format compared with mkfs.ocfs2: the same options as
// mkfs.ocfs2 arguments and as MkfsOptions.
type mkfsCase struct {
	name string
	size int64
	args []string
	o    MkfsOptions
}

// mkfsMatrix covers block sizes 512..4K, cluster sizes 4K..1M, 1..32
// slots, the three feature levels, metaecc, local and clustered volumes
// (o2cb, pcmk, global heartbeat), the -T types, -J, --no-backup-super,
// quotas with and without inline data, and sizes from 64 MiB to 20 GiB.
var mkfsMatrix = []mkfsCase{
	{"64M-default", 64 << 20, nil, MkfsOptions{}},
	{"64M-1k-8slots", 64 << 20, []string{"-b", "1024", "-C", "4096", "-N", "8"}, MkfsOptions{BlockSize: 1024, ClusterSize: 4096, Slots: 8}},
	{"200M-2k-32k", 200 << 20, []string{"-b", "2048", "-C", "32768", "-N", "4"}, MkfsOptions{BlockSize: 2048, ClusterSize: 32768, Slots: 4}},
	{"300M-1k-8k-noinline", 300 << 20, []string{"-b", "1024", "-C", "8192", "-N", "8", "--fs-features=noinline-data"}, MkfsOptions{BlockSize: 1024, ClusterSize: 8192, Slots: 8, Features: "noinline-data"}},
	{"300M-2k-64k-maxfeatures", 300 << 20, []string{"-b", "2048", "-C", "65536", "-N", "4", "--fs-feature-level=max-features"}, MkfsOptions{BlockSize: 2048, ClusterSize: 65536, Slots: 4, Level: LevelMaxFeatures}},
	{"300M-4k-1m-maxcompat", 300 << 20, []string{"-b", "4096", "-C", "1048576", "-N", "2", "--fs-feature-level=max-compat"}, MkfsOptions{BlockSize: 4096, ClusterSize: 1 << 20, Slots: 2, Level: LevelMaxCompat}},
	{"300M-metaecc-noinline-pcmk", 300 << 20, []string{"-b", "4096", "-N", "2", "--fs-features=metaecc,noinline-data", "--cluster-stack=pcmk", "--cluster-name=golden"}, MkfsOptions{BlockSize: 4096, Slots: 2, Features: "metaecc,noinline-data", ClusterStack: "pcmk", ClusterName: "golden"}},
	{"600M-16slots-metaecc", 600 << 20, []string{"-N", "16", "--fs-features=metaecc"}, MkfsOptions{Slots: 16, Features: "metaecc"}},
	{"1G-default", 1 << 30, nil, MkfsOptions{}},
	{"1G-512-3slots", 1 << 30, []string{"-b", "512", "-N", "3"}, MkfsOptions{BlockSize: 512, Slots: 3}},
	{"1G-512-1m", 1 << 30, []string{"-b", "512", "-C", "1M", "-N", "4"}, MkfsOptions{BlockSize: 512, ClusterSize: 1 << 20, Slots: 4}},
	{"1G-o2cb-globalhb", 1 << 30, []string{"--cluster-stack=o2cb", "--cluster-name=mycl", "--global-heartbeat"}, MkfsOptions{ClusterStack: "o2cb", ClusterName: "mycl", GlobalHeartbeat: true}},
	{"1G-o2cb", 1 << 30, []string{"-N", "1", "--cluster-stack=o2cb", "--cluster-name=web1"}, MkfsOptions{Slots: 1, ClusterStack: "o2cb", ClusterName: "web1"}},
	{"1G-local-label", 1 << 30, []string{"-M", "local", "-L", "data vol"}, MkfsOptions{Mount: MountLocal, Label: "data vol"}},
	{"1G-quota-noinline", 1 << 30, []string{"--fs-features=noinline-data,usrquota,grpquota"}, MkfsOptions{Features: "noinline-data,usrquota,grpquota"}},
	{"1200M-4k-9slots", 1200 << 20, []string{"-b", "4096", "-N", "9", "-J", "size=16M"}, MkfsOptions{BlockSize: 4096, Slots: 9, JournalSize: 16 << 20}},
	{"2G-32slots-J", 2 << 30, []string{"-N", "32", "-J", "size=8M"}, MkfsOptions{Slots: 32, JournalSize: 8 << 20}},
	{"3G-nobackup-local", 3 << 30, []string{"--no-backup-super", "--fs-features=local"}, MkfsOptions{NoBackupSuper: true, Features: "local"}},
	{"5G-mail", 5 << 30, []string{"-T", "mail"}, MkfsOptions{Type: FSTypeMail}},
	{"5G-datafiles-2k", 5 << 30, []string{"-T", "datafiles", "-b", "2048"}, MkfsOptions{Type: FSTypeDatafiles, BlockSize: 2048}},
	{"5G-vmstore-maxfeatures", 5 << 30, []string{"-T", "vmstore", "--fs-feature-level=max-features"}, MkfsOptions{Type: FSTypeVMStore, Level: LevelMaxFeatures}},
	{"20G-8slots", 20 << 30, []string{"-N", "8", "-J", "size=64M,block64"}, MkfsOptions{Slots: 8, JournalSize: 64 << 20, Journal64: true}},
}

// TestMkfsMatchesMkfsOcfs2 formats each case with mkfs.ocfs2 and with
// o2go mkfs and requires (1) fsck.ocfs2 -fn to pass on o2go's volume and
// (2) debugfs.ocfs2 to show the same superblock (stats), the same system
// directory listing and root listing, and the same stat of every system
// inode and of lost+found, apart from the random fields (UUID and its
// hash, generations, times, dx seeds, checksums). The one deliberate
// difference, the system directory's index, is checked separately: its
// only traces are the system directory's IndexedDir flag, one more block
// used in extent_alloc:0000 (plus the group that allocator gained, if it
// had none) and the index's leaf clusters in the global bitmap.
func TestMkfsMatchesMkfsOcfs2(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	for _, tc := range mkfsMatrix {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ref := realtools.MkfsImage(t, tc.size, tc.args...)
			img := filepath.Join(t.TempDir(), "o2go.img")
			if err := truncateFile(img, tc.size); err != nil {
				t.Fatal(err)
			}
			o := tc.o
			o.Quiet, o.NoPrompt, o.NoDiscard = true, true, true
			res, err := Mkfs(img, o)
			if err != nil {
				t.Fatalf("Mkfs: %v", err)
			}
			realtools.RequireFsckClean(t, img)
			compareWithMkfsOcfs2(t, ref, img, res)
		})
	}
}

// debugfsBatch runs commands in one debugfs.ocfs2 process (-f) and returns
// each command's output.
func debugfsBatch(t *testing.T, img string, cmds []string) map[string]string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(f, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// debugfs.ocfs2 -f exits 1 even when every command worked; its
	// errors go to stderr after the version banner.
	out, errOut, err := realtools.DebugfsRaw("-f", f, img)
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if l != "" && !strings.HasPrefix(l, "debugfs.ocfs2 ") {
			t.Fatalf("debugfs.ocfs2 -f on %s: %v\n%s", img, err, errOut)
		}
	}
	if strings.Count(out, "debugfs: ") != len(cmds) {
		t.Fatalf("debugfs.ocfs2 -f on %s ran %d of %d commands: %v\n%s", img, strings.Count(out, "debugfs: "), len(cmds), err, errOut)
	}
	res := map[string]string{}
	var cur string
	for _, l := range strings.SplitAfter(out, "\n") {
		if c, ok := strings.CutPrefix(l, "debugfs: "); ok {
			cur = strings.TrimSpace(c)
			continue
		}
		res[cur] += l
	}
	return res
}

var debugfsRandom = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`Generation: \d+ \(0x[0-9a-f]+\)`), "Generation: G"},
	{regexp.MustCompile(`Generation: \d+\s*$`), "Generation: G"},
	{regexp.MustCompile(`UUID: [0-9A-F]+`), "UUID: U"},
	{regexp.MustCompile(`Hash: \d+ \(0x[0-9a-f]+\)`), "Hash: H"},
	{regexp.MustCompile(`DX Seeds: .*`), "DX Seeds: S"},
	{regexp.MustCompile(`(ctime|atime|mtime): 0x[0-9a-f]+ 0x[0-9a-f]+ -- .*`), "$1: T"},
	{regexp.MustCompile(`Last Check: .*`), "Last Check: T"},
	{regexp.MustCompile(`\d+-[A-Z][a-z]+-\d+ \d\d:\d\d`), "DATE"},
	{regexp.MustCompile(`CRC32: [0-9a-f]+\s+ECC: [0-9a-f]+`), "CRC32: C ECC: E"},
}

func normalizeDebugfs(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		for _, r := range debugfsRandom {
			l = r.re.ReplaceAllString(l, r.repl)
		}
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Join(lines, "\n")
}

var lsName = regexp.MustCompile(`^\s*\d+\s+\S+\s+\d+\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s+(.+)$`)

func lsNames(out string) []string {
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if m := lsName.FindStringSubmatch(l); m != nil && m[1] != "." && m[1] != ".." {
			names = append(names, m[1])
		}
	}
	sort.Strings(names)
	return names
}

var bitmapLine = regexp.MustCompile(`Bitmap Total: (\d+)\s+Used: (\d+)\s+Free: (\d+)`)

func bitmapCounts(t *testing.T, stat string) (total, used, free int64) {
	t.Helper()
	m := bitmapLine.FindStringSubmatch(stat)
	if m == nil {
		t.Fatalf("no Bitmap line in:\n%s", stat)
	}
	total, _ = strconv.ParseInt(m[1], 10, 64)
	used, _ = strconv.ParseInt(m[2], 10, 64)
	free, _ = strconv.ParseInt(m[3], 10, 64)
	return
}

func firstInt(t *testing.T, re, s string) int64 {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %q in:\n%s", re, s)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

func compareWithMkfsOcfs2(t *testing.T, ref, img string, res *MkfsResult) {
	t.Helper()
	listing := realtools.Debugfs(t, ref, "ls -l //")
	names := lsNames(listing)
	if got := lsNames(realtools.Debugfs(t, img, "ls -l //")); strings.Join(got, " ") != strings.Join(names, " ") {
		t.Fatalf("system files differ:\no2go:       %v\nmkfs.ocfs2: %v", got, names)
	}
	cmds := []string{"stats", "ls -l //", "ls -l /", "stat /", "stat /lost+found", "stat //"}
	for _, n := range names {
		cmds = append(cmds, "stat //"+n)
	}
	want, got := debugfsBatch(t, ref, cmds), debugfsBatch(t, img, cmds)
	special := map[string]bool{}
	if res.SystemDirIndexed {
		special["stat //"] = true
		special["stat //extent_alloc:0000"] = true
		special["stat //global_bitmap"] = true
		checkSystemDirIndex(t, img, want, got)
	}
	for _, c := range cmds {
		if special[c] {
			continue
		}
		w, g := normalizeDebugfs(want[c]), normalizeDebugfs(got[c])
		if res.SystemDirIndexed && c == "ls -l //" {
			// extent_alloc:0000 may have grown for the index root:
			// checkSystemDirIndex accounts for it.
			ea := regexp.MustCompile(`(?m)^.* extent_alloc:0000\n`)
			w, g = ea.ReplaceAllString(w, ""), ea.ReplaceAllString(g, "")
		}
		if w != g {
			t.Errorf("debugfs %q differs:\n%s", c, lineDiff(w, g))
		}
	}
	_, _, free := bitmapCounts(t, got["stat //global_bitmap"])
	if uint64(free) != res.FreeClusters {
		t.Errorf("debugfs shows %d free clusters, Mkfs reported %d", free, res.FreeClusters)
	}
}

// checkSystemDirIndex accounts for the system directory's index, the one
// place o2go's layout departs from mkfs.ocfs2's.
func checkSystemDirIndex(t *testing.T, img string, want, got map[string]string) {
	t.Helper()
	sysWant, sysGot := normalizeDebugfs(want["stat //"]), normalizeDebugfs(got["stat //"])
	if !strings.Contains(sysGot, "IndexedDir") || strings.Contains(sysWant, "IndexedDir") {
		t.Errorf("system directory: o2go should index it, mkfs.ocfs2 not:\n%s", lineDiff(sysWant, sysGot))
	}
	drop := regexp.MustCompile(`(?m)^\s*(Dynamic Features|Indexed Tree Root):.*\n`)
	if w, g := drop.ReplaceAllString(sysWant, ""), drop.ReplaceAllString(sysGot, ""); w != g {
		t.Errorf("system directory differs beyond its index:\n%s", lineDiff(w, g))
	}
	dxRoot := firstInt(t, `Indexed Tree Root: (\d+)`, got["stat //"])
	dx := realtools.Debugfs(t, img, fmt.Sprintf("dx_root <%d>", dxRoot))
	dxClusters := firstInt(t, `Clusters: (\d+)`, dx)
	if n := firstInt(t, `Total Entry Count: (\d+)`, dx); n != int64(len(lsNames(got["ls -l //"]))+2) {
		t.Errorf("system directory index holds %d entries, the directory %d", n, len(lsNames(got["ls -l //"]))+2)
	}

	eaWant, eaGot := want["stat //extent_alloc:0000"], got["stat //extent_alloc:0000"]
	wT, wU, _ := bitmapCounts(t, eaWant)
	gT, gU, _ := bitmapCounts(t, eaGot)
	bitsPerGroup := firstInt(t, `Clusters per Group: (\d+)`, eaGot) * firstInt(t, `Bits per Cluster: (\d+)`, eaGot)
	newGroups := (gT - wT) / bitsPerGroup
	if (gT-wT)%bitsPerGroup != 0 || gU-wU != 1+newGroups {
		t.Errorf("extent_alloc:0000: o2go %d/%d bits used, mkfs.ocfs2 %d/%d: want one more block for the index root (in %d new groups)", gU, gT, wU, wT, newGroups)
	}
	gbWantT, gbWantU, _ := bitmapCounts(t, want["stat //global_bitmap"])
	gbGotT, gbGotU, _ := bitmapCounts(t, got["stat //global_bitmap"])
	groupClusters := newGroups * firstInt(t, `Clusters per Group: (\d+)`, eaGot)
	if gbGotT != gbWantT || gbGotU-gbWantU != groupClusters+dxClusters {
		t.Errorf("global bitmap: o2go uses %d clusters, mkfs.ocfs2 %d: want %d more (%d for extent allocator groups, %d for index leaves)",
			gbGotU, gbWantU, groupClusters+dxClusters, groupClusters, dxClusters)
	}
}

// lineDiff shows the lines that differ between two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "  line %d:\n    mkfs.ocfs2: %s\n    o2go:       %s\n", i+1, a, c)
		}
	}
	return b.String()
}

// fastFsck puts a wrapper for fsck.ocfs2 first in PATH that runs it
// without CAP_IPC_LOCK and with a 1 MiB RLIMIT_MEMLOCK. fsck.ocfs2 mlocks
// an I/O cache of up to a fifth of free memory, which as root costs
// seconds per run on a machine with much RAM; with the limit it falls
// back to a small cache. Its verdict does not depend on the cache. (A
// candidate for realtools.Fsck itself.)
func fastFsck(t *testing.T) {
	t.Helper()
	real, err := exec.LookPath("fsck.ocfs2")
	if err != nil {
		return
	}
	setpriv, err1 := exec.LookPath("setpriv")
	prlimit, err2 := exec.LookPath("prlimit")
	if err1 != nil || err2 != nil {
		return
	}
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nexec %s --inh-caps=-ipc_lock --bounding-set=-ipc_lock %s --memlock=1048576 %s \"$@\"\n", setpriv, prlimit, real)
	if err := os.WriteFile(filepath.Join(dir, "fsck.ocfs2"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}
