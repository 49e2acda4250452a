package fsck

import (
	"bytes"
	"slices"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/testutil/realtools"
)

// crashWith mounts img with o2go, runs fn, and crashes the mount (no
// checkpoint, no unmount): the slot's journal is left dirty.
func crashWith(t *testing.T, img string, fn func(m *volume.Mounted)) {
	t.Helper()
	m, err := volume.Mount(img, volume.DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	fn(m)
	m.Crash()
}

// sameCodes requires o2go fsck and fsck.ocfs2 to report the same codes.
func sameCodes(t *testing.T, img string, args string, answer Answer, force bool) (Result, string) {
	t.Helper()
	real := realtools.Fsck(t, img, args)
	res, out := runO2go(t, img, answer, force)
	if got, want := codesOf(out), codesOf(real.Output); !slices.Equal(got, want) {
		t.Fatalf("%s: codes differ\n o2go: %v\n fsck.ocfs2: %v\n--- o2go:\n%s\n--- fsck.ocfs2:\n%s", args, got, want, out, real.Output)
	}
	return res, out
}

// TestJournalReplayOfDirtySlot: a slot o2go crashed with committed but
// unwritten transactions is replayed by o2go fsck -y (not by -n, which
// says so), after which fsck.ocfs2 finds the volume clean and the files
// the transactions made are there.
func TestJournalReplayOfDirtySlot(t *testing.T) {
	img := mkfs(t, 300<<20)
	var fileIno uint64
	crashWith(t, img, func(m *volume.Mounted) {
		fs := m.FS
		d, err := fs.Create(inode.Ref{Ino: fs.RootBlkno()}, "made-before-crash", inode.NewNode{Mode: syscall.S_IFDIR | 0o755}, inode.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		fileIno, err = fs.Create(inode.Ref{Ino: d}, "data", inode.NewNode{Mode: syscall.S_IFREG | 0o644}, inode.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Write(fileIno, bytes.Repeat([]byte("j"), 100<<10), 0); err != nil {
			t.Fatal(err)
		}
		if err := fs.Fsync(); err != nil { // committed to the log, not home
			t.Fatal(err)
		}
	})

	res, out := runO2go(t, img, AnswerNo, false)
	if !strings.Contains(out, "** Skipping journal replay because -n was given.") {
		t.Fatalf("o2go fsck -n did not say it skips the replay:\n%s", out)
	}
	if res.Replayed {
		t.Fatal("o2go fsck -n replayed a journal")
	}

	theirs := copyFile(t, img)
	res, out = runO2go(t, img, AnswerYes, false)
	if !res.Replayed || res.ExitCode&(ExitError|ExitUncorrected) != 0 || res.ExitCode&ExitCorrected == 0 {
		t.Fatalf("o2go fsck -y: replayed %v exit %d\n%s", res.Replayed, res.ExitCode, out)
	}
	for _, want := range []string{"Replaying slot 0's journal.", "Slot 0's journal replayed successfully.", "Slot 0's journal dirty flag removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("o2go fsck -y output lacks %q:\n%s", want, out)
		}
	}
	realtools.RequireFsckClean(t, img)
	if got := realtools.Debugfs(t, img, "ls -l /made-before-crash"); !strings.Contains(got, "data") {
		t.Fatalf("the replayed directory does not hold its file:\n%s", got)
	}
	if res, out := runO2go(t, img, AnswerNo, true); res.ExitCode != 0 {
		t.Fatalf("o2go fsck -fn after its replay: exit %d\n%s", res.ExitCode, out)
	}

	// The other way: fsck.ocfs2 replays (it needs a second run, see
	// ondisk-format.md §12), o2go then finds nothing to say.
	realtools.Fsck(t, theirs, "-y")
	realtools.Fsck(t, theirs, "-fy")
	if res, out := runO2go(t, theirs, AnswerNo, true); res.ExitCode != 0 || len(res.Problems) > 0 {
		t.Fatalf("o2go fsck -fn after fsck.ocfs2 replayed: exit %d\n%s", res.ExitCode, out)
	}
}

// TestOrphansFinished: an inode unlinked while open and left in the
// orphan directory by a crash is deleted, silently by slot recovery
// (-y) or asked for as INODE_ORPHANED (-fy), as fsck.ocfs2 does.
func TestOrphansFinished(t *testing.T) {
	base := mkfs(t, 300<<20)
	var orphan uint64
	crashWith(t, base, func(m *volume.Mounted) {
		fs := m.FS
		var err error
		orphan, err = fs.Create(inode.Ref{Ino: fs.RootBlkno()}, "doomed", inode.NewNode{Mode: syscall.S_IFREG | 0o644}, inode.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Write(orphan, bytes.Repeat([]byte("o"), 1<<20), 0); err != nil {
			t.Fatal(err)
		}
		fs.Open(orphan)
		if err := fs.Unlink(inode.Ref{Ino: fs.RootBlkno()}, "doomed", false); err != nil {
			t.Fatal(err)
		}
		if err := m.Journal.Checkpoint(); err != nil { // the orphan entry is home
			t.Fatal(err)
		}
	})

	t.Run("n", func(t *testing.T) {
		img := copyFile(t, base)
		_, out := sameCodes(t, img, "-fn", AnswerNo, true)
		if !strings.Contains(out, "** Skipping orphan dir replay because -n was given.") {
			t.Fatalf("o2go fsck -fn did not skip the orphan:\n%s", out)
		}
	})
	t.Run("y", func(t *testing.T) {
		img := copyFile(t, base)
		res, out := runO2go(t, img, AnswerYes, false)
		if res.ExitCode&(ExitError|ExitUncorrected) != 0 {
			t.Fatalf("o2go fsck -y: exit %d\n%s", res.ExitCode, out)
		}
		realtools.RequireFsckClean(t, img)
		if got := realtools.Debugfs(t, img, "ls -l //orphan_dir:0000"); strings.Contains(got, "0000000000") {
			t.Fatalf("the orphan is still listed:\n%s", got)
		}
	})
	t.Run("fy", func(t *testing.T) {
		img := copyFile(t, base)
		res, out := runO2go(t, img, AnswerYes, true)
		if !slices.Contains(codesOf(out), string(InodeOrphaned)) || res.ExitCode&(ExitError|ExitUncorrected) != 0 {
			t.Fatalf("o2go fsck -fy: exit %d, want an [INODE_ORPHANED] fixed\n%s", res.ExitCode, out)
		}
		realtools.RequireFsckClean(t, img)
		theirs := copyFile(t, base)
		real := realtools.Fsck(t, theirs, "-fy")
		if strings.Contains(real.Output, "while replaying the journals") {
			real = realtools.Fsck(t, theirs, "-fy") // its quirk: a second run does the check
		}
		if got, want := codesOf(out), codesOf(real.Output); !slices.Equal(got, want) {
			t.Fatalf("-fy codes differ\n o2go: %v\n fsck.ocfs2: %v\n%s\n%s", got, want, out, real.Output)
		}
	})
	_ = orphan
}
