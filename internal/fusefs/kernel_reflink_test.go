package fusefs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// The kernel's whole-file clone of an inline-data file leaves an inode that
// fsck.ocfs2 1.8.7 flags, on a volume nothing but the kernel ever wrote.
//
// cp --reflink (FICLONE) reaches ocfs2_reflink_remap_blocks
// (fs/ocfs2/refcounttree.c, Linux 6.1). When the whole source is cloned and
// the source is inline data, it calls ocfs2_duplicate_inline_data, which
// copies the source's id2.i_data.id_count into the new target along with
// the bytes. A source with in-inode xattrs has an id_count shortened by the
// xattr area (ocfs2_xattr_ibody_init takes s_xattr_inline_size off it),
// but the clone gets neither the xattrs nor the INLINE_XATTR flag: the
// target keeps the short id_count without the area that explains it.
// fsck.ocfs2 pass 1 wants id_count = block size - 0xC8 - the in-inode
// xattr area when INLINE_XATTR is set (ocfs2_max_inline_data_with_xattr)
// and reports INLINE_DATA_COUNT_INVALID. The kernel itself takes id_count
// as the inline capacity from then on (ocfs2_size_fits_inline_data), so
// the inode works, only smaller; an xattr set on it later takes the area
// off the short count again, and a clone of it copies the shorter count
// on. The legacy OCFS2_IOC_REFLINK path (ocfs2_create_reflink_node) clones
// the xattrs as well, so its copied id_count is right.
//
// Such an inode is a real state of real volumes, so o2go must read and
// change it; and tests that let the kernel clone files must tell this
// problem, on those targets only, from problems o2go causes.

// inlineCountProblem is fsck.ocfs2's INLINE_DATA_COUNT_INVALID line
// (pass1.c): the inode, its id_count and the count fsck wants.
var inlineCountProblem = regexp.MustCompile(`^\[INLINE_DATA_COUNT_INVALID\] Inode (\d+) is inline file and its id_count is (\d+) which should be (\d+)\.`)

// kernelClone is a whole-file clone (cp --reflink) the kernel made: the
// paths as the guest named them and the inode numbers (block numbers) of
// source and target.
type kernelClone struct {
	from, to       string
	fromIno, toIno uint64
}

// clonesIn finds the inode numbers of clones in a guesttree manifest of
// the tree they were made in.
func clonesIn(t *testing.T, m map[string]manifestEntry, clones []kernelClone) []kernelClone {
	t.Helper()
	out := slices.Clone(clones)
	for i := range out {
		from, ok1 := m[out[i].from]
		to, ok2 := m[out[i].to]
		if !ok1 || !ok2 {
			t.Fatalf("the kernel's manifest lacks the clone %s -> %s", out[i].from, out[i].to)
		}
		out[i].fromIno, out[i].toIno = from.Ino, to.Ino
	}
	return out
}

// requireFsckCleanButKernelClones requires fsck.ocfs2 -fn on img to exit
// 0 and report nothing but the kernel's short inline id_count on targets
// of clones the kernel made, and only short by a whole number of in-inode
// xattr areas; each such report is logged with its cause. Any other code,
// any problem on another inode (o2go's, or a file the kernel made some
// other way), or an id_count off in another way fails the test.
func requireFsckCleanButKernelClones(t *testing.T, img string, clones []kernelClone) {
	t.Helper()
	r := realtools.Fsck(t, img, "-fn")
	if len(r.Problems) == 0 && r.ExitCode == 0 {
		return
	}
	area := xattrInlineSize(t, img)
	var bad, quirks []string
	for _, p := range r.Problems {
		if why, ok := kernelCloneQuirk(p, clones, area); ok {
			quirks = append(quirks, why)
		} else {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 || r.ExitCode != 0 {
		t.Fatalf("fsck.ocfs2 -fn %s: exit %d, problems that are not the kernel's clone quirk:\n%s\nfull output:\n%s",
			img, r.ExitCode, strings.Join(bad, "\n"), r.Output)
	}
	t.Logf("fsck.ocfs2 -fn %s: clean but for the kernel's own clone quirk (INLINE_DATA_COUNT_INVALID on inodes the kernel "+
		"cloned from an inline-data file with in-inode xattrs: ocfs2_reflink_remap_blocks -> ocfs2_duplicate_inline_data "+
		"copies the source's id_count, short by its xattr area, to a target without one; see kernel_reflink_test.go):\n  %s",
		img, strings.Join(quirks, "\n  "))
}

// kernelCloneQuirk says whether fsck problem line p is the kernel's short
// id_count on a clone target, and explains it.
func kernelCloneQuirk(p string, clones []kernelClone, area int) (string, bool) {
	m := inlineCountProblem.FindStringSubmatch(p)
	if m == nil || area <= 0 {
		return "", false
	}
	ino, _ := strconv.ParseUint(m[1], 10, 64)
	have, _ := strconv.Atoi(m[2])
	want, _ := strconv.Atoi(m[3])
	short := want - have
	if short <= 0 || short%area != 0 {
		return "", false
	}
	for _, c := range clones {
		if c.toIno == ino {
			return fmt.Sprintf("inode %d (%s, cloned from %s, inode %d): id_count %d, %d in-inode xattr area(s) of %d bytes short of %d",
				ino, c.to, c.from, c.fromIno, have, short/area, area, want), true
		}
	}
	return "", false
}

// xattrInlineSize is the volume's s_xattr_inline_size.
func xattrInlineSize(t *testing.T, img string) int {
	t.Helper()
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("opening %s: %v", img, err)
	}
	defer v.Close()
	return int(v.SB.XattrInlineSize)
}

// TestKernelClonedInlineData has the kernel make the clone targets above
// (one cloned from a clone that got an xattr in the kernel: two areas
// short), checks that fsck.ocfs2 reports exactly them, then has o2go read
// each and change most — overwrite, append within the short count and past
// it, setxattr, truncate, copy, rename, unlink — and requires the contents
// o2go shows, fsck.ocfs2 clean but for the quirk where it remains, and the
// kernel to read everything o2go left exactly as o2go does.
func TestKernelClonedInlineData(t *testing.T) {
	testutil.Long(t)
	kernelvm.Require(t)
	img := realtools.MkfsImage(t, 256<<20, defaultMkfs...)
	share := t.TempDir()
	buildGuesttree(t, share)
	rng := rand.New(rand.NewPCG(1, 2))
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	src := payload(1958)
	if err := os.WriteFile(filepath.Join(share, "src"), src, 0o644); err != nil {
		t.Fatal(err)
	}

	// Each target gets one o2go operation; "keep" only reads.
	targets := []string{"keep", "overwrite", "append-inline", "append-past", "setxattr", "truncate", "copy", "rename", "unlink"}
	var script strings.Builder
	fmt.Fprintf(&script, "set -e\numask %03o\nmkdir c\ncd c\ncp \"$KERNELVM_SHARE/src\" src\nsetfattr -n user.k -v 0x6b65726e656c src\n", guestUmask)
	var clones []kernelClone
	for _, n := range targets {
		fmt.Fprintf(&script, "cp --reflink=always src q-%s\n", n)
		clones = append(clones, kernelClone{from: "src", to: "q-" + n})
	}
	script.WriteString("cp --reflink=always src q-chain\nsetfattr -n user.c -v 0x63 q-chain\ncp --reflink=always q-chain q-chain2\n")
	clones = append(clones, kernelClone{from: "src", to: "q-chain"}, kernelClone{from: "q-chain", to: "q-chain2"})
	script.WriteString("\"$KERNELVM_SHARE/guesttree\" manifest . > \"$KERNELVM_SHARE/made.json\"\n")
	res := kernelvm.RunT(t, kernelvm.Options{Image: img, Share: share, MountOpts: "noatime"}, script.String())
	made := readManifest(t, filepath.Join(share, "made.json"))
	clones = clonesIn(t, made, clones)

	// The premise: the kernel alone leaves every target with a short count
	// (q-chain too, once its own xattr took the area off again; q-chain2
	// two areas short), and nothing else is wrong.
	area := xattrInlineSize(t, img)
	full := ondisk.InlineDataBytes(4096, 0) // defaultMkfs: 4 KiB blocks
	r := realtools.Fsck(t, img, "-fn")
	flagged := map[uint64]string{}
	for _, p := range r.Problems {
		if m := inlineCountProblem.FindStringSubmatch(p); m != nil {
			ino, _ := strconv.ParseUint(m[1], 10, 64)
			flagged[ino] = p
		}
	}
	for _, c := range clones {
		if flagged[c.toIno] == "" {
			t.Fatalf("fsck.ocfs2 does not flag the kernel's clone %s (inode %d): the kernel (%s) no longer copies a short id_count, "+
				"and the clone quirk allowance in TestRandomWorkloadKernel can go\nfsck output:\n%s", c.to, c.toIno, res.Kernel, r.Output)
		}
	}
	if c := clones[len(clones)-1]; !strings.Contains(flagged[c.toIno], fmt.Sprintf("id_count is %d which should be %d.", full-2*area, full)) {
		t.Fatalf("the clone of a clone with an xattr: want id_count two in-inode xattr areas short, fsck says %q", flagged[c.toIno])
	}
	requireFsckCleanButKernelClones(t, img, clones)

	// o2go reads every target and changes most of them.
	mnt, unmount := mountImage(t, img, "")
	dir := filepath.Join(mnt, "c")
	want := map[string][]byte{"src": src, "q-chain": src, "q-chain2": src}
	wantXattrs := map[string]map[string]string{"src": {"user.k": "kernel"}, "q-chain": {"user.c": "c"}}
	for _, n := range targets {
		want["q-"+n] = src
	}
	at := func(name string) string { return filepath.Join(dir, name) }
	for name, data := range want {
		requireBytes(t, "o2go reading the kernel's "+name, mustRead(t, at(name)), data)
	}
	requireXattrs(t, dir, want, wantXattrs)

	patch := payload(500)
	if err := writeAt(at("q-overwrite"), patch, 100); err != nil {
		t.Fatal(err)
	}
	want["q-overwrite"] = slices.Concat(src[:100], patch, src[600:])
	more := payload(3500 - len(src)) // ends before the short count (3640)
	if err := writeAt(at("q-append-inline"), more, int64(len(src))); err != nil {
		t.Fatal(err)
	}
	want["q-append-inline"] = slices.Concat(src, more)
	more = payload(3700 - len(src)) // past the short count, within a full one (3896)
	if err := writeAt(at("q-append-past"), more, int64(len(src))); err != nil {
		t.Fatal(err)
	}
	want["q-append-past"] = slices.Concat(src, more)
	if err := unix.Setxattr(at("q-setxattr"), "user.o2go", []byte("o2go"), 0); err != nil {
		t.Fatal(err)
	}
	wantXattrs["q-setxattr"] = map[string]string{"user.o2go": "o2go"}
	if err := os.Truncate(at("q-truncate"), 100); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(at("q-truncate"), 3000); err != nil {
		t.Fatal(err)
	}
	want["q-truncate"] = slices.Concat(src[:100], make([]byte, 2900))
	copyWhole(t, at("q-copy"), at("o2go-copy"))
	want["o2go-copy"] = src
	if err := os.Rename(at("q-rename"), at("renamed")); err != nil {
		t.Fatal(err)
	}
	want["renamed"] = src
	delete(want, "q-rename")
	if err := os.Remove(at("q-unlink")); err != nil {
		t.Fatal(err)
	}
	delete(want, "q-unlink")
	for name, data := range want {
		requireBytes(t, "o2go reading "+name+" after its changes", mustRead(t, at(name)), data)
	}
	requireXattrs(t, dir, want, wantXattrs)
	seen := o2goManifest(t, dir)
	unmount()
	// o2go-copy is o2go's own inode: a problem there fails.
	requireFsckCleanButKernelClones(t, img, clones)

	script.Reset()
	script.WriteString("cd c\n\"$KERNELVM_SHARE/guesttree\" manifest . > \"$KERNELVM_SHARE/after.json\"\n")
	kernelvm.RunT(t, kernelvm.Options{Image: img, Share: share, MountOpts: "noatime"}, script.String())
	compareManifests(t, "what o2go left of the kernel's clones, read by the kernel", seen, readManifest(t, filepath.Join(share, "after.json")))
}

// requireXattrs requires each file in want to have exactly the user
// xattrs of wantXattrs (none when absent).
func requireXattrs(t *testing.T, dir string, want map[string][]byte, wantXattrs map[string]map[string]string) {
	t.Helper()
	for name := range want {
		got := map[string]string{}
		buf := make([]byte, 4096)
		n, err := unix.Llistxattr(filepath.Join(dir, name), buf)
		if err != nil {
			t.Fatalf("listxattr %s: %v", name, err)
		}
		for _, a := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
			if a == "" {
				continue
			}
			val := make([]byte, 4096)
			k, err := unix.Lgetxattr(filepath.Join(dir, name), a, val)
			if err != nil {
				t.Fatalf("getxattr %s %s: %v", name, a, err)
			}
			got[a] = string(val[:k])
		}
		w := wantXattrs[name]
		if w == nil {
			w = map[string]string{}
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Fatalf("%s: xattrs %v, want %v", name, got, w)
		}
	}
}

// copyWhole copies a file with copy_file_range(2), as the workload does:
// o2go may share the clusters or copy.
func copyWhole(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for left := int(st.Size()); left > 0; {
		k, err := unix.CopyFileRange(int(in.Fd()), nil, int(out.Fd()), nil, left, 0)
		if err != nil {
			t.Fatalf("copy_file_range %s -> %s: %v", from, to, err)
		}
		if k == 0 {
			t.Fatalf("copy_file_range %s -> %s: 0 bytes with %d left", from, to, left)
		}
		left -= k
	}
}

// TestKernelCloneQuirkFilter pins what requireFsckCleanButKernelClones
// lets through: INLINE_DATA_COUNT_INVALID on a kernel clone's target, short
// by whole in-inode xattr areas, and nothing else.
func TestKernelCloneQuirkFilter(t *testing.T) {
	clones := []kernelClone{{from: "a", to: "k/reflinked", fromIno: 100, toIno: 200}}
	line := func(ino, have, want int) string {
		return fmt.Sprintf("[INLINE_DATA_COUNT_INVALID] Inode %d is inline file and its id_count is %d which should be %d. Correct this count? n", ino, have, want)
	}
	for _, c := range []struct {
		line string
		ok   bool
	}{
		{line(200, 3640, 3896), true},  // a clone of a file with an xattr
		{line(200, 3384, 3896), true},  // a clone of such a clone that got one
		{line(200, 3384, 3640), true},  // an xattr set on a clone
		{line(100, 3640, 3896), false}, // the source: not a kernel clone
		{line(201, 3640, 3896), false}, // another inode (o2go's, say)
		{line(200, 3700, 3896), false}, // short by something else
		{line(200, 3896, 3640), false}, // too long
		{"[INODE_SPARSE_SIZE] Inode 200 has a size of 1 but has 2 bytes of actual data. Correct the file size? n", false},
	} {
		if _, ok := kernelCloneQuirk(c.line, clones, 256); ok != c.ok {
			t.Errorf("kernelCloneQuirk(%q) = %v, want %v", c.line, ok, c.ok)
		}
	}
}
