package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// runTool runs a real tool and returns stdout, stderr and the exit status.
func runTool(t *testing.T, name string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut strings.Builder
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), errOut.String(), code
}

// linesMatching keeps the lines of s that re matches.
func linesMatching(s string, re *regexp.Regexp) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// mkfsSummary is the geometry block mkfs.ocfs2 prints (Label: to Node
// slots:) and mkfsStage its progress lines ("Writing system files: done").
var (
	mkfsSummary = regexp.MustCompile(`^(Label|Features|Block size|Cluster size|Volume size|Cluster groups|Extent allocator size|Journal size|Node slots): `)
	mkfsStage   = regexp.MustCompile(`^[A-Z][a-z]+( [a-z+]+)*: (done|\d+ block\(s\))$`)
)

// TestMkfsQuietAndVerbose checks -q and -v of o2go mkfs against
// mkfs.ocfs2 on images of the same size: -q on a fresh image prints
// nothing at all (mkfs.ocfs2 -q still prints the cluster stack line of a
// clustered volume); -v prints mkfs.ocfs2 -v's geometry block line for
// line, every progress line mkfs.ocfs2 -v prints, and the free space,
// which must be what debugfs.ocfs2 reads in the global bitmap of o2go's
// volume and of mkfs.ocfs2's; without -v the free space line is absent.
func TestMkfsQuietAndVerbose(t *testing.T) {
	realtools.Require(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"local", []string{"-b", "4096", "-C", "8192", "-N", "3", "-L", "quiet", "-M", "local"}},
		{"clustered 1k", []string{"-b", "1024", "-N", "2", "-J", "size=8M"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := newImage(t, 600<<20)
			out, errOut, err := runMkfs(t, "", append(append([]string{"-q", "--nodiscard"}, tc.args...), img)...)
			if err != nil {
				t.Fatal(err)
			}
			if out != "" || errOut != "" {
				t.Errorf("mkfs -q printed:\nstdout:\n%s\nstderr:\n%s", out, errOut)
			}
			realtools.RequireFsckClean(t, img)

			mine := newImage(t, 600<<20)
			out, _, err = runMkfs(t, "", append(append([]string{"-v", "--nodiscard"}, tc.args...), mine)...)
			if err != nil {
				t.Fatal(err)
			}
			real := realtools.NewImage(t, 600<<20)
			realOut, realErr, code := runTool(t, "mkfs.ocfs2", append(append([]string{"-v", "-x", "--nodiscard"}, tc.args...), real)...)
			if code != 0 {
				t.Fatalf("mkfs.ocfs2 -v: exit %d\n%s%s", code, realOut, realErr)
			}
			if got, want := strings.Join(linesMatching(out, mkfsSummary), "\n"), strings.Join(linesMatching(realOut, mkfsSummary), "\n"); got != want || len(linesMatching(want, mkfsSummary)) != 9 {
				t.Errorf("mkfs -v geometry:\n%s\nmkfs.ocfs2 -v:\n%s", got, want)
			}
			stages := map[string]bool{}
			for _, l := range linesMatching(out, mkfsStage) {
				stages[l] = true
			}
			realStages := linesMatching(realOut, mkfsStage)
			if len(realStages) < 8 {
				t.Fatalf("mkfs.ocfs2 -v prints only %d progress lines:\n%s", len(realStages), realOut)
			}
			for _, l := range realStages {
				if !stages[l] {
					t.Errorf("mkfs -v lacks mkfs.ocfs2's %q:\n%s", l, out)
				}
			}
			free := freeClusters(t, mine)
			if realFree := freeClusters(t, real); free != realFree {
				t.Errorf("free clusters: o2go's volume %d, mkfs.ocfs2's %d", free, realFree)
			}
			v, err := volume.Open(mine, volume.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			cs := v.SB.ClusterSize()
			v.Close()
			if want := fmt.Sprintf("Free space: %d clusters (%d bytes)\n", free, free*uint64(cs)); !strings.Contains(out, want) {
				t.Errorf("mkfs -v lacks %q:\n%s", want, out)
			}
			if !strings.HasSuffix(out, "o2go mkfs successful\n\n") {
				t.Errorf("mkfs -v does not end with the success line:\n%s", out)
			}
			out, _, err = runMkfs(t, "", append(append([]string{"-x", "--nodiscard"}, tc.args...), newImage(t, 600<<20))...)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "Free space:") || !strings.Contains(out, "o2go mkfs successful") {
				t.Errorf("mkfs without -v:\n%s", out)
			}
		})
	}
}

// freeClusters is the global bitmap's free count as debugfs.ocfs2 reads it.
func freeClusters(t *testing.T, img string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`Bitmap Total: \d+\s+Used: \d+\s+Free: (\d+)`).FindStringSubmatch(realtools.Debugfs(t, img, "stat //global_bitmap"))
	if m == nil {
		t.Fatalf("%s: no bitmap counts in debugfs.ocfs2's stat //global_bitmap", img)
	}
	var n uint64
	fmt.Sscan(m[1], &n)
	return n
}

// populateForStats writes what fsck's -v statistics count: inline and
// extent files, a reflink (the source and the clone count), a hard link, a directory with entries, fast and
// slow symlinks, a fifo, a character and a block device, a socket.
func populateForStats(t *testing.T, img string) {
	t.Helper()
	m, err := volume.Mount(img, volume.DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	fs, root := m.FS, m.SB.RootBlkno
	mk := func(parent uint64, name string, n inode.NewNode) uint64 {
		t.Helper()
		ino, err := fs.Create(inode.Ref{Ino: parent}, name, n, inode.Caller{})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return ino
	}
	write := func(ino uint64, n int) {
		t.Helper()
		if _, err := fs.Write(ino, []byte(strings.Repeat("o2go", n/4)), 0); err != nil {
			t.Fatal(err)
		}
	}
	write(mk(root, "small", inode.NewNode{Mode: syscall.S_IFREG | 0o644}), 100)
	big := mk(root, "big", inode.NewNode{Mode: syscall.S_IFREG | 0o644})
	write(big, 300<<10)
	clone := mk(root, "clone", inode.NewNode{Mode: syscall.S_IFREG | 0o644})
	if err := fs.CloneRange(big, 0, clone, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := fs.Link(inode.Ref{Ino: big}, inode.Ref{Ino: root}, "hardlink"); err != nil {
		t.Fatal(err)
	}
	d := mk(root, "dir", inode.NewNode{Mode: syscall.S_IFDIR | 0o755})
	for i := 0; i < 200; i++ {
		mk(d, fmt.Sprintf("entry-%03d-with-a-longer-name", i), inode.NewNode{Mode: syscall.S_IFREG | 0o644})
	}
	mk(d, "sub", inode.NewNode{Mode: syscall.S_IFDIR | 0o700})
	mk(root, "fast", inode.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: "dir/sub"})
	mk(root, "slow", inode.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: strings.Repeat("long/", 800)})
	mk(root, "fifo", inode.NewNode{Mode: syscall.S_IFIFO | 0o600})
	mk(root, "null", inode.NewNode{Mode: syscall.S_IFCHR | 0o666, Rdev: 1<<8 | 3})
	mk(root, "loop", inode.NewNode{Mode: syscall.S_IFBLK | 0o660, Rdev: 7 << 8})
	mk(root, "sock", inode.NewNode{Mode: syscall.S_IFSOCK | 0o755})
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// fsckDebugPrefix is the function:line prefix of fsck.ocfs2 -v's lines.
var fsckDebugPrefix = regexp.MustCompile(`(?m)^[a-z0-9_]+:\d+ \| `)

// TestFsckVerbose checks o2go fsck -v against fsck.ocfs2 on a populated
// volume: every line -v adds (allocator chains and groups, extent lists,
// directories, connectivity, link counts) is one fsck.ocfs2 -v prints, in
// the same order (fsck.ocfs2's function:line prefix aside); -v also times
// each pass and prints the statistics block fsck.ocfs2 prints with -t,
// with the same numbers. Without -v none of that is printed.
func TestFsckVerbose(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 400<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	populateForStats(t, img)
	realtools.RequireFsckClean(t, img)

	out, errOut, code := runFsck(t, "-fnv", img)
	if code != 0 {
		t.Fatalf("fsck -fnv: exit %d\n%s%s", code, out, errOut)
	}
	realV, _, _ := runTool(t, "fsck.ocfs2", "-fnv", img)
	realT, _, _ := runTool(t, "fsck.ocfs2", "-fnt", img)
	plain, _, _ := runFsck(t, "-fn", img)

	// The lines -v adds, without the timings and the statistics.
	added := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		added[l] = true
	}
	for _, l := range strings.Split(plain, "\n") {
		delete(added, l)
	}
	statsAt := strings.Index(out, "  # of inodes with depth")
	if statsAt < 0 {
		t.Fatalf("fsck -fnv prints no statistics:\n%s", out)
	}
	var verbose []string
	took := 0
	for _, l := range strings.Split(out[:statsAt], "\n") {
		switch {
		case !added[l]:
		case regexp.MustCompile(`^  pass \d took \S+$`).MatchString(l):
			took++
		default:
			verbose = append(verbose, l)
		}
	}
	if took != 5 {
		t.Errorf("fsck -fnv times %d passes, want 5 (0 to 4):\n%s", took, out)
	}
	real := strings.Split(fsckDebugPrefix.ReplaceAllString(realV, ""), "\n")
	i := 0
	for _, l := range verbose {
		j := i
		for j < len(real) && real[j] != l {
			j++
		}
		if j == len(real) {
			t.Errorf("fsck -v line %q is not one fsck.ocfs2 -v prints (after its line %d)", l, i)
			continue
		}
		i = j + 1
	}
	for _, kind := range []string{"checking desc at ", "cl cpg ", "depth 0 count ", "dir inode ", "checking dir inode ", ", refs "} {
		n := 0
		for _, l := range verbose {
			if strings.Contains(l, kind) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("fsck -v prints no %q line:\n%s", kind, out)
		}
	}

	got := out[statsAt:]
	realAt := strings.Index(realT, "  # of inodes with depth")
	if realAt < 0 {
		t.Fatalf("fsck.ocfs2 -fnt prints no statistics:\n%s", realT)
	}
	if want := realT[realAt:]; got != want {
		t.Errorf("fsck -v statistics:\n%s\nfsck.ocfs2 -t:\n%s", got, want)
	}
	if !strings.Contains(got, "2 reflinks)") || !strings.Contains(got, "1 fifo\n") || !strings.Contains(got, "(1 fast symbolic link)") {
		t.Errorf("the statistics do not count what the volume holds:\n%s", got)
	}

	if strings.Contains(plain, " took ") || strings.Contains(plain, "# of inodes") || strings.Contains(plain, "checking desc at") ||
		!strings.Contains(plain, "All passes succeeded.") {
		t.Errorf("fsck -fn without -v:\n%s", plain)
	}
}

// TestTunefsQuietAndVerbose runs the same tunefs invocations with o2go
// tunefs and tunefs.ocfs2 on twin volumes: -v's messages (what is changed,
// what there is nothing to do for) go to stderr as tunefs.ocfs2 prints
// them, so that stdout carries only -Q's output; -q, and -q with -v,
// print nothing; without -v a change prints nothing. The changes are made
// (label, slots, journal size) and the volume stays clean.
func TestTunefsQuietAndVerbose(t *testing.T) {
	realtools.Require(t)
	mine := realtools.MkfsImage(t, 400<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	real := realtools.NewImage(t, 400<<20)
	if out, err := exec.Command("cp", "--sparse=always", mine, real).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		// errLine is a line both tools print on stderr, with DEV for the
		// device ("" when both print nothing at all).
		errLine string
	}{
		{[]string{"-L", "plain"}, ""},
		{[]string{"-v", "-L", "verbose"}, ""},
		{[]string{"-q", "-L", "quiet"}, ""},
		{[]string{"-q", "-N", "3"}, ""},
		{[]string{"-v", "-N", "3"}, `Device "DEV" already has 3 node slots; nothing to do`},
		{[]string{"-q", "-v", "-N", "3"}, ""},
		{[]string{"-q", "-J", "size=8M"}, ""},
		{[]string{"-v", "--fs-features=noappend-dio"}, "Disabling feature"},
		{[]string{"-v", "--fs-features=noappend-dio"}, "nothing to"},
		{[]string{"-q", "-v", "--fs-features=append-dio"}, ""},
	} {
		name := strings.Join(tc.args, " ")
		out, errOut, err := runTunefs(t, append(append([]string{"-y"}, tc.args...), mine)...)
		if err != nil {
			t.Fatalf("tunefs %s: %v\n%s%s", name, err, out, errOut)
		}
		realOut, realErr, code := runTool(t, "tunefs.ocfs2", append(append([]string{"-y"}, tc.args...), real)...)
		if code != 0 {
			t.Fatalf("tunefs.ocfs2 %s: exit %d\n%s%s", name, code, realOut, realErr)
		}
		if out != "" || realOut != "" {
			t.Errorf("tunefs %s: stdout %q (tunefs.ocfs2: %q), want nothing", name, out, realOut)
		}
		if tc.errLine == "" {
			if errOut != "" || realErr != "" {
				t.Errorf("tunefs %s: stderr %q (tunefs.ocfs2: %q), want nothing", name, errOut, realErr)
			}
			continue
		}
		if want := strings.ReplaceAll(tc.errLine, "DEV", mine); !strings.Contains(errOut, want) {
			t.Errorf("tunefs %s: stderr %q lacks %q", name, errOut, want)
		}
		if want := strings.ReplaceAll(tc.errLine, "DEV", real); !strings.Contains(realErr, want) {
			t.Errorf("tunefs.ocfs2 %s: stderr %q lacks %q", name, realErr, want)
		}
	}
	sb := superOf(t, mine).Super
	if sb.Label() != "quiet" || sb.MaxSlots != 3 || sb.Features.Incompat&ondisk.IncompatAppendDIO == 0 {
		t.Errorf("after the changes: label %q, %d slots, features %+v", sb.Label(), sb.MaxSlots, sb.Features)
	}
	realtools.RequireFsckClean(t, mine)

	// -v with -Q: the query alone on stdout.
	out, errOut, err := runTunefs(t, "-y", "-v", "--fs-features=noappend-dio", "-Q", "%V %N\n", mine)
	if err != nil {
		t.Fatal(err)
	}
	if out != "quiet 3\n" || !strings.Contains(errOut, "Disabling feature") {
		t.Errorf("tunefs -v -Q: stdout %q, stderr %q", out, errOut)
	}
}
