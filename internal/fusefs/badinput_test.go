package fusefs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"o2go/internal/blockdev"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// The bad-input test of issue 4 (acceptance 5): a volume damaged in a
// defined way — a directory block, an inode's extent list, a group
// descriptor (each with its metaecc check recomputed, so that the
// structure's own checks must catch it), the superblock signature, a
// journal superblock — is mounted with each errors= policy. The mount is
// refused, or comes up read-only, or fails only the operations that meet
// the damage, as errors= says; the log (or the refusal) names the damaged
// block, once; nothing panics; and the image stays byte-identical to the
// damaged copy outside the blocks a mount and a clean unmount (or the next
// mount's replay) write: the slot's journal, its inode, the slot's local
// alloc and truncate log inodes and the global bitmap inode. The damaged
// block itself is never rewritten, and fsck.ocfs2 -fn reports the same
// problems before and after.

const badBlockSize = 4096

// badFixture is a populated volume, cleanly unmounted, and where its
// damageable structures live.
type badFixture struct {
	img string
	// blocks of the structures the cases damage.
	dirBlock, extInode, groupDesc, journalSB, journalInode uint64
	// allowed are the blocks a mount, a clean unmount and a replay may write.
	allowed map[uint64]bool
	metaECC bool
}

// populatedFixture makes a volume with an indexed directory of 300 names,
// a file of scattered extents and a few small files, written through an
// o2go mount and cleanly unmounted.
func populatedFixture(t *testing.T) *badFixture {
	t.Helper()
	realtools.Require(t)
	testutil.RequireFUSE(t)
	img := realtools.MkfsImage(t, 256<<20, defaultMkfs...)
	mnt, unmount := mountImage(t, img, "")
	if err := os.Mkdir(filepath.Join(mnt, "big"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		mustWrite(t, filepath.Join(mnt, "big", fmt.Sprintf("entry-with-a-long-name-%04d", i)), []byte{byte(i)})
	}
	f, err := os.Create(filepath.Join(mnt, "ext"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if _, err := f.WriteAt(bytes.Repeat([]byte{byte('a' + i)}, 4096), int64(i)<<20); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	mustWrite(t, filepath.Join(mnt, "ok.txt"), []byte("intact\n"))
	mustWrite(t, filepath.Join(mnt, "data"), bytes.Repeat([]byte("0123456789abcdef"), 64<<10))
	unmount()
	realtools.RequireFsckClean(t, img)
	fx := &badFixture{img: img}
	fx.locate(t)
	return fx
}

// locate finds, with o2go's read path, the blocks the cases damage and
// the blocks a mount may write.
func (fx *badFixture) locate(t *testing.T) {
	t.Helper()
	v, err := volume.Open(fx.img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	inodeOf := func(dir uint64, name string) *ondisk.Dinode {
		ino, err := v.FS.Lookup(dir, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, err := v.Cache.Dinode(ino)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return d
	}
	firstBlock := func(what string, d *ondisk.Dinode) uint64 {
		if d.Extents == nil || d.Extents.TreeDepth != 0 || len(d.Extents.Recs) == 0 {
			t.Fatalf("%s (inode %d): want a depth-0 extent list with records, have %+v", what, d.Blkno, d.Extents)
		}
		return d.Extents.Recs[0].Blkno
	}
	fx.metaECC = v.SB.Features.Incompat&ondisk.IncompatMetaECC != 0
	root := v.SB.RootBlkno
	big := inodeOf(root, "big")
	if big.Inline != nil {
		t.Fatal("big/ is still inline")
	}
	fx.dirBlock = firstBlock("big/", big)
	ext := inodeOf(root, "ext")
	if n := len(ext.Extents.Recs); n < 4 {
		t.Fatalf("ext has %d extents, want several", n)
	}
	fx.extInode = ext.Blkno

	sys := func(kind ondisk.SystemFileKind, slot int) *ondisk.Dinode {
		blk, err := v.SystemFile(kind, slot)
		if err != nil {
			t.Fatal(err)
		}
		d, err := v.Cache.Dinode(blk)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	ia := sys(ondisk.SysInodeAlloc, 0)
	if ia.Chain == nil || len(ia.Chain.Recs) == 0 {
		t.Fatal("inode_alloc:0000 has no group")
	}
	fx.groupDesc = ia.Chain.Recs[0].Blkno
	j := sys(ondisk.SysJournal, 0)
	fx.journalSB = firstBlock("journal:0000", j)
	fx.journalInode = j.Blkno

	fx.allowed = map[uint64]bool{}
	for _, r := range j.Extents.Recs {
		for b := range uint64(r.Clusters) * uint64(v.SB.ClusterSize()/badBlockSize) {
			fx.allowed[r.Blkno+b] = true
		}
	}
	for _, d := range []*ondisk.Dinode{j, sys(ondisk.SysLocalAlloc, 0), sys(ondisk.SysTruncateLog, 0), sys(ondisk.SysGlobalBitmap, -1)} {
		fx.allowed[d.Blkno] = true
	}
}

// badCase is one kind of damage.
type badCase struct {
	name  string
	block func(fx *badFixture) uint64
	// damage changes the block in place (ecc: the volume has metaecc,
	// whose check the damage recomputes).
	damage func(t *testing.T, b []byte, ecc bool)
	// atMount: the damage is met while mounting (else by trigger).
	atMount bool
	// trigger meets the damage on the mount and returns the error.
	trigger func(mnt string) error
	// what the log or the refusal must say about the structure.
	says string
}

var badCases = []badCase{
	{
		name:  "directory block",
		block: func(fx *badFixture) uint64 { return fx.dirBlock },
		damage: func(t *testing.T, b []byte, ecc bool) {
			binary.LittleEndian.PutUint16(b[8:], 5) // the first entry's rec_len
			if ecc {
				ondisk.SetBlockCheck(b, ondisk.DirBlockCheckOffset(len(b)))
			}
		},
		trigger: func(mnt string) error { _, err := os.ReadDir(filepath.Join(mnt, "big")); return err },
		says:    "rec_len",
	},
	{
		name:  "extent list",
		block: func(fx *badFixture) uint64 { return fx.extInode },
		damage: func(t *testing.T, b []byte, ecc bool) {
			// id2's extent list: a 16-byte header, then 16-byte records
			// starting with e_cpos. The third record moves back onto the
			// first two.
			const rec2 = 0xC0 + 16 + 2*16
			binary.LittleEndian.PutUint32(b[rec2:], 0)
			if ecc {
				ondisk.SetBlockCheck(b, ondisk.DinodeCheckOffset)
			}
		},
		trigger: func(mnt string) error { _, err := os.ReadFile(filepath.Join(mnt, "ext")); return err },
		says:    "e_cpos",
	},
	{
		name:  "group descriptor",
		block: func(fx *badFixture) uint64 { return fx.groupDesc },
		damage: func(t *testing.T, b []byte, ecc bool) {
			const bgBlkno = 0x28
			binary.LittleEndian.PutUint64(b[bgBlkno:], binary.LittleEndian.Uint64(b[bgBlkno:])+1)
			if ecc {
				ondisk.SetBlockCheck(b, ondisk.GroupDescCheckOffset)
			}
		},
		trigger: func(mnt string) error { return os.WriteFile(filepath.Join(mnt, "new-inode"), nil, 0o644) },
		says:    "bg_blkno",
	},
	{
		name:  "superblock signature",
		block: func(fx *badFixture) uint64 { return ondisk.SuperBlockBlkno },
		damage: func(t *testing.T, b []byte, ecc bool) {
			if string(b[:6]) != "OCFSV2" {
				t.Fatalf("block 2 starts with %q", b[:6])
			}
			copy(b, "OCFSXX")
		},
		atMount: true,
		says:    "no OCFS2 superblock signature at block 2",
	},
	{
		name:  "journal superblock",
		block: func(fx *badFixture) uint64 { return fx.journalSB },
		damage: func(t *testing.T, b []byte, ecc bool) {
			if binary.BigEndian.Uint32(b) != 0xc03b3998 {
				t.Fatalf("journal block 0 has no JBD2 magic: % x", b[:4])
			}
			binary.BigEndian.PutUint32(b, 0x0badf00d)
		},
		atMount: true,
		says:    "journal superblock",
	},
}

// damagedCopy copies the fixture and damages block blk of the copy;
// it returns the copy and the damaged block's bytes.
func (fx *badFixture) damagedCopy(t *testing.T, c badCase) (img string, blk uint64, bad []byte) {
	t.Helper()
	img = copyImage(t, fx.img)
	blk = c.block(fx)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bad = make([]byte, badBlockSize)
	if _, err := f.ReadAt(bad, int64(blk)*badBlockSize); err != nil {
		t.Fatal(err)
	}
	c.damage(t, bad, fx.metaECC)
	if _, err := f.WriteAt(bad, int64(blk)*badBlockSize); err != nil {
		t.Fatal(err)
	}
	return img, blk, bad
}

// requireNoFurtherDamage compares img with the damaged copy it started
// as: the damaged block unchanged, and no block outside the fixture's
// allowed set changed (unless anyBlock: the mount went on writing).
func (fx *badFixture) requireNoFurtherDamage(t *testing.T, img, before string, blk uint64, bad []byte, anyBlock bool) {
	t.Helper()
	a, err := os.ReadFile(before)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("the image changed size: %d -> %d bytes", len(a), len(b))
	}
	if got := b[blk*badBlockSize : (blk+1)*badBlockSize]; !bytes.Equal(got, bad) {
		t.Fatalf("the damaged block %d was rewritten (%s)", blk, firstDiff(got, bad))
	}
	if anyBlock {
		return
	}
	var changed []uint64
	for off := 0; off < len(a); off += badBlockSize {
		if !bytes.Equal(a[off:off+badBlockSize], b[off:off+badBlockSize]) && !fx.allowed[uint64(off/badBlockSize)] {
			changed = append(changed, uint64(off/badBlockSize))
		}
	}
	if len(changed) > 0 {
		t.Fatalf("blocks outside the journal and the slot's allocator inodes changed: %v", changed)
	}
}

// requireSameFsck requires fsck.ocfs2 -fn to report the same problems on
// img as on the damaged copy it started as (nothing new broke).
func requireSameFsck(t *testing.T, img, before string) {
	t.Helper()
	want := realtools.Fsck(t, before, "-fn")
	got := realtools.Fsck(t, img, "-fn")
	if !slices.Equal(got.Problems, want.Problems) {
		t.Fatalf("fsck.ocfs2 -fn finds other problems after the mount:\n%s\nbefore it:\n%s", strings.Join(got.Problems, "\n"), strings.Join(want.Problems, "\n"))
	}
}

// logBuffer is a log destination several goroutines write.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// loggedMount is an in-process Session whose log the test reads.
type loggedMount struct {
	s    *Session
	mnt  string
	log  *logBuffer
	done chan error
}

// mountLogged mounts img with options; a refused mount returns the error.
func mountLogged(t *testing.T, img, options string) (*loggedMount, error) {
	t.Helper()
	opts, err := ParseMountOptions(options)
	if err != nil {
		t.Fatal(err)
	}
	old := RunDir
	RunDir = filepath.Join(t.TempDir(), "run")
	t.Cleanup(func() { RunDir = old })
	lm := &loggedMount{mnt: t.TempDir(), log: &logBuffer{}, done: make(chan error, 1)}
	lm.s = &Session{Device: img, Mountpoint: lm.mnt, Opts: opts, Log: slog.New(slog.NewTextHandler(lm.log, nil))}
	ready := make(chan error, 1)
	go func() { lm.done <- lm.s.Run(func(err error) { ready <- err }) }()
	if err := <-ready; err != nil {
		<-lm.done
		return nil, err
	}
	t.Cleanup(func() { syscall.Unmount(lm.mnt, syscall.MNT_DETACH) })
	return lm, nil
}

// unmount unmounts and returns what the Session's Run returned.
func (lm *loggedMount) unmount(t *testing.T) error {
	t.Helper()
	for i := 0; ; i++ {
		err := syscall.Unmount(lm.mnt, 0)
		if err == nil || errors.Is(err, syscall.EINVAL) {
			break
		}
		if i > 100 {
			t.Fatalf("unmount %s: %v", lm.mnt, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-lm.done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("the session did not finish after unmount")
	}
	return nil
}

// requireLoggedOnce requires the log to name block blk of img exactly once
// as damaged, with what the case says about it.
func requireLoggedOnce(t *testing.T, log, img string, blk uint64, says, policy string) {
	t.Helper()
	name := fmt.Sprintf("%s: block %d: ", img, blk)
	if n := strings.Count(log, name); n != 1 {
		t.Fatalf("the log names %q %d times, want once:\n%s", name, n, log)
	}
	if !strings.Contains(log, says) || !strings.Contains(log, "errors="+policy) {
		t.Fatalf("the log does not say %q and errors=%s:\n%s", says, policy, log)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, name) {
			t.Logf("logged: %s", line)
		}
	}
}

func requireErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

// TestBadInputRemountRO: errors=remount-ro (the default). Damage met at
// run time makes the mount read-only (EROFS for every change, reads go
// on); damage met while mounting a volume read-write mounts it read-only,
// or refuses it when even that cannot work.
func TestBadInputRemountRO(t *testing.T) {
	fx := populatedFixture(t)
	for _, c := range badCases {
		t.Run(c.name, func(t *testing.T) {
			img, blk, bad := fx.damagedCopy(t, c)
			before := copyImage(t, img)
			lm, err := mountLogged(t, img, "errors=remount-ro")
			if c.block(fx) == ondisk.SuperBlockBlkno {
				if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), img) {
					t.Fatalf("mount: %v, want a refusal naming %s and saying %q", err, img, c.says)
				}
				fx.requireNoFurtherDamage(t, img, before, blk, bad, false)
				return
			}
			if err != nil {
				t.Fatalf("mount: %v", err)
			}
			if c.atMount {
				cause := lm.s.ReadOnlyCause
				if cause == nil || !strings.Contains(cause.Error(), fmt.Sprintf("block %d: ", blk)) || !strings.Contains(cause.Error(), c.says) {
					t.Fatalf("the mount came up with ReadOnlyCause %v, want the damage at block %d", cause, blk)
				}
			} else {
				requireErrno(t, "meeting the damage", c.trigger(lm.mnt), syscall.EIO)
				// Again: logged once; a change is refused before it
				// gets there.
				if err := c.trigger(lm.mnt); !errors.Is(err, syscall.EIO) && !errors.Is(err, syscall.EROFS) {
					t.Fatalf("meeting the damage again: %v, want EIO or EROFS", err)
				}
			}
			requireErrno(t, "a change after the error", os.WriteFile(filepath.Join(lm.mnt, "after"), []byte("x"), 0o644), syscall.EROFS)
			requireErrno(t, "mkdir after the error", os.Mkdir(filepath.Join(lm.mnt, "afterdir"), 0o755), syscall.EROFS)
			if got := string(mustRead(t, filepath.Join(lm.mnt, "ok.txt"))); got != "intact\n" {
				t.Fatalf("ok.txt reads %q", got)
			}
			if err := lm.unmount(t); err != nil {
				t.Fatalf("unmount: %v", err)
			}
			requireLoggedOnce(t, lm.log.String(), img, blk, c.says, "remount-ro")
			fx.requireNoFurtherDamage(t, img, before, blk, bad, false)
			requireSameFsck(t, img, before)
		})
	}
}

// TestBadInputContinue: errors=continue. The operation that meets the
// damage fails with EIO, each time; the mount goes on read-write. Damage
// met while mounting refuses the mount.
func TestBadInputContinue(t *testing.T) {
	fx := populatedFixture(t)
	for _, c := range badCases {
		t.Run(c.name, func(t *testing.T) {
			img, blk, bad := fx.damagedCopy(t, c)
			before := copyImage(t, img)
			lm, err := mountLogged(t, img, "errors=continue")
			if c.atMount {
				if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), img) {
					t.Fatalf("mount: %v, want a refusal naming %s and saying %q", err, img, c.says)
				}
				if c.block(fx) != ondisk.SuperBlockBlkno && !strings.Contains(err.Error(), fmt.Sprintf("block %d: ", blk)) {
					t.Fatalf("the refusal does not name block %d: %v", blk, err)
				}
				fx.requireNoFurtherDamage(t, img, before, blk, bad, false)
				return
			}
			if err != nil {
				t.Fatalf("mount: %v", err)
			}
			requireErrno(t, "meeting the damage", c.trigger(lm.mnt), syscall.EIO)
			// A change the damage is not in the way of goes through.
			df, err := os.OpenFile(filepath.Join(lm.mnt, "data"), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := df.WriteAt([]byte("written after the error"), 4096); err != nil {
				t.Fatalf("a write after the error: %v", err)
			}
			if err := df.Close(); err != nil {
				t.Fatal(err)
			}
			requireErrno(t, "meeting the damage again", c.trigger(lm.mnt), syscall.EIO)
			if got := string(mustRead(t, filepath.Join(lm.mnt, "ok.txt"))); got != "intact\n" {
				t.Fatalf("ok.txt reads %q", got)
			}
			if err := lm.unmount(t); err != nil {
				t.Fatalf("unmount: %v", err)
			}
			requireLoggedOnce(t, lm.log.String(), img, blk, c.says, "continue")
			fx.requireNoFurtherDamage(t, img, before, blk, bad, true)
			requireSameFsck(t, img, before)
		})
	}
}

// TestBadInputPanic: errors=panic. Damage met at run time stops the server
// process at once (exit status 2, the log naming the block, no Go panic);
// the next mount replays and finds the image as the damage left it. Damage
// met while mounting refuses the mount.
func TestBadInputPanic(t *testing.T) {
	fx := populatedFixture(t)
	for _, c := range badCases {
		t.Run(c.name, func(t *testing.T) {
			img, blk, bad := fx.damagedCopy(t, c)
			before := copyImage(t, img)
			if c.atMount {
				_, err := mountLogged(t, img, "errors=panic")
				if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), img) {
					t.Fatalf("mount: %v, want a refusal naming %s and saying %q", err, img, c.says)
				}
				fx.requireNoFurtherDamage(t, img, before, blk, bad, false)
				return
			}
			mnt := t.TempDir()
			srv := startCrashServer(t, img, mnt, "errors=panic")
			err := c.trigger(mnt)
			if err == nil {
				t.Fatal("meeting the damage succeeded")
			}
			exited := make(chan error, 1)
			go func() { exited <- srv.cmd.Wait() }()
			select {
			case err := <-exited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != PanicExitCode {
					t.Fatalf("the server ended with %v, want exit status %d\n%s", err, PanicExitCode, srv.log)
				}
			case <-time.After(time.Minute):
				srv.cmd.Process.Kill()
				t.Fatalf("the server did not stop after the error (the operation returned %v)\n%s", err, srv.log)
			}
			syscall.Unmount(mnt, syscall.MNT_DETACH)
			log := srv.log.String()
			if strings.Contains(log, "panic:") || strings.Contains(log, "goroutine ") {
				t.Fatalf("the server panicked:\n%s", log)
			}
			requireLoggedOnce(t, log, img, blk, c.says, "panic")
			fx.requireNoFurtherDamage(t, img, before, blk, bad, false)

			// The next mount replays and serves what is intact.
			lm, err := mountLogged(t, img, "")
			if err != nil {
				t.Fatalf("the mount after the panic: %v", err)
			}
			if got := string(mustRead(t, filepath.Join(lm.mnt, "ok.txt"))); got != "intact\n" {
				t.Fatalf("ok.txt reads %q", got)
			}
			if err := lm.unmount(t); err != nil {
				t.Fatalf("unmount: %v", err)
			}
			if !strings.Contains(lm.log.String(), "recovered after an unclean shutdown") {
				t.Fatalf("the mount after the panic did not recover the slot:\n%s", lm.log)
			}
			fx.requireNoFurtherDamage(t, img, before, blk, bad, false)
			requireSameFsck(t, img, before)
		})
	}
}

// buildO2go compiles cmd/o2go into dir.
func buildO2go(t *testing.T, dir string) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	bin := filepath.Join(dir, "o2go")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/o2go")
	cmd.Dir = filepath.Join(filepath.Dir(self), "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building o2go: %v\n%s", err, out)
	}
	return bin
}

// TestBadInputMountCommand: what `o2go mount` says about a damaged volume
// it refuses, and about one it mounts read-only.
func TestBadInputMountCommand(t *testing.T) {
	fx := populatedFixture(t)
	bin := buildO2go(t, t.TempDir())
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out.String(), 0
		case errors.As(err, &ee):
			return out.String(), ee.ExitCode()
		}
		t.Fatalf("o2go %v: %v", args, err)
		return "", 0
	}
	for _, c := range badCases {
		if !c.atMount {
			continue
		}
		img, blk, _ := fx.damagedCopy(t, c)
		mnt := t.TempDir()
		for _, policy := range []string{"remount-ro", "continue", "panic"} {
			out, code := run("mount", "-o", "errors="+policy, img, mnt)
			if c.block(fx) != ondisk.SuperBlockBlkno && policy == "remount-ro" {
				// The journal cannot be loaded: read-only, with a warning.
				if code == 0 {
					t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
				}
				want := "o2go: warning: mounted read-only (errors=remount-ro): " + img + ": "
				if code != 0 || !strings.HasPrefix(out, want) || !strings.Contains(out, fmt.Sprintf("block %d: ", blk)) || !strings.Contains(out, c.says) {
					t.Fatalf("%s, errors=%s: exit %d, output:\n%s\nwant exit 0 and a warning starting %q naming block %d", c.name, policy, code, out, want, blk)
				}
				t.Logf("%s, errors=%s: %s", c.name, policy, strings.TrimSpace(out))
				if got := string(mustRead(t, filepath.Join(mnt, "ok.txt"))); got != "intact\n" {
					t.Fatalf("ok.txt reads %q", got)
				}
				requireErrno(t, "writing on the read-only mount", os.WriteFile(filepath.Join(mnt, "x"), nil, 0o644), syscall.EROFS)
				if out, code := run("umount", mnt); code != 0 {
					t.Fatalf("o2go umount: exit %d\n%s", code, out)
				}
				continue
			}
			want := "o2go: " + img + ": "
			if code != 1 || !strings.HasPrefix(out, want) || !strings.Contains(out, c.says) || strings.Count(out, "\n") != 1 {
				t.Fatalf("%s, errors=%s: exit %d, output:\n%s\nwant exit 1 and one line starting %q that says %q", c.name, policy, code, out, want, c.says)
			}
			if c.block(fx) != ondisk.SuperBlockBlkno && !strings.Contains(out, fmt.Sprintf("block %d: ", blk)) {
				t.Fatalf("%s, errors=%s: the message does not name block %d:\n%s", c.name, policy, blk, out)
			}
			t.Logf("%s, errors=%s: %s", c.name, policy, strings.TrimSpace(out))
		}
	}
}

// TestBadInputDirtyJournal: a journal that needs replay but whose
// superblock is damaged cannot be replayed; a read-only view would miss
// what it holds, so even errors=remount-ro refuses the mount.
func TestBadInputDirtyJournal(t *testing.T) {
	fx := populatedFixture(t)
	var journalCase badCase
	for _, c := range badCases {
		if c.name == "journal superblock" {
			journalCase = c
		}
	}
	img, blk, bad := fx.damagedCopy(t, journalCase)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	ji := make([]byte, badBlockSize)
	if _, err := f.ReadAt(ji, int64(fx.journalInode)*badBlockSize); err != nil {
		t.Fatal(err)
	}
	flags := binary.LittleEndian.Uint32(ji[ondisk.DinodeID1Offset:])
	binary.LittleEndian.PutUint32(ji[ondisk.DinodeID1Offset:], flags|ondisk.JournalDirty)
	if fx.metaECC {
		ondisk.SetBlockCheck(ji, ondisk.DinodeCheckOffset)
	}
	if _, err := f.WriteAt(ji, int64(fx.journalInode)*badBlockSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before := copyImage(t, img)
	for _, policy := range []string{"remount-ro", "continue", "panic"} {
		_, err := mountLogged(t, img, "errors="+policy)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s: block %d: ", img, blk)) || !strings.Contains(err.Error(), "not mounted") {
			t.Fatalf("errors=%s: mount: %v, want a refusal naming block %d", policy, err, blk)
		}
		t.Logf("errors=%s: %v", policy, err)
	}
	fx.requireNoFurtherDamage(t, img, before, blk, bad, false)
	if a, b := mustRead(t, before), mustRead(t, img); !bytes.Equal(a, b) {
		t.Fatal("a refused mount changed the image")
	}
}

// TestBadInputJournalAbort: a journal that aborts (here: the device fails
// the flush of a commit) is errors=remount-ro's other trigger. The fsync
// that met it fails, every change after it is EROFS, reads go on, the log
// says so once; the next mount replays what was committed before.
func TestBadInputJournalAbort(t *testing.T) {
	realtools.Require(t)
	testutil.RequireFUSE(t)
	img := realtools.MkfsImage(t, 256<<20, defaultMkfs...)
	dev, err := blockdev.Open(img, blockdev.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	faulty := blockdev.NewFaulty(dev)
	v, err := volume.OpenDevice(faulty, volume.OpenOptions{})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	m, err := volume.MountVolume(v, volume.DefaultMountOptions())
	if err != nil {
		v.Close()
		t.Fatal(err)
	}
	log := &logBuffer{}
	// Wired as Session wires a read-write mount.
	f := New(m.FS, Options{Statfs: m.Statfs, Errors: ErrorsRemountRO, OnReadOnly: m.SetReadOnly, Log: slog.New(slog.NewTextHandler(log, nil))})
	mnt := t.TempDir()
	srv, err := Mount(f, mnt, MountConfig{Device: img})
	if err != nil {
		m.Crash()
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { srv.Wait(); close(served) }()
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })

	mustWrite(t, filepath.Join(mnt, "before"), []byte("committed before the fault\n"))
	syncFile := func(name string) error {
		fd, err := os.Open(filepath.Join(mnt, name))
		if err != nil {
			return err
		}
		defer fd.Close()
		return fd.Sync()
	}
	if err := syncFile("before"); err != nil {
		t.Fatal(err)
	}
	faulty.AddRule(func(op blockdev.Op, off int64, n int) (blockdev.Fault, bool) {
		return blockdev.Fault{Err: syscall.EIO}, op == blockdev.OpSync
	})
	mustWrite(t, filepath.Join(mnt, "during"), []byte("not durable\n"))
	requireErrno(t, "fsync when the device fails the commit", syncFile("during"), syscall.EIO)
	requireErrno(t, "a change after the abort", os.WriteFile(filepath.Join(mnt, "after"), nil, 0o644), syscall.EROFS)
	requireErrno(t, "mkdir after the abort", os.Mkdir(filepath.Join(mnt, "afterdir"), 0o755), syscall.EROFS)
	if got := string(mustRead(t, filepath.Join(mnt, "before"))); got != "committed before the fault\n" {
		t.Fatalf("before reads %q", got)
	}
	requireErrno(t, "fsync again", syncFile("before"), syscall.EIO)
	if err := syscall.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	<-served
	if err := m.Unmount(); err == nil {
		t.Error("the unmount of an aborted journal reported no error")
	}
	out := log.String()
	if n := strings.Count(out, "journal abort: the file system is now read-only (errors=remount-ro)"); n != 1 || strings.Count(out, "\n") != 1 {
		t.Fatalf("the log says the journal aborted %d times, want once, in one line:\n%s", n, out)
	}
	t.Logf("logged: %s", strings.TrimSpace(out))

	// The next mount replays; what was fsynced before the fault is there.
	lm, err := mountLogged(t, img, "")
	if err != nil {
		t.Fatalf("the mount after the abort: %v", err)
	}
	if got := string(mustRead(t, filepath.Join(lm.mnt, "before"))); got != "committed before the fault\n" {
		t.Fatalf("after the replay, before reads %q", got)
	}
	if err := lm.unmount(t); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lm.log.String(), "recovered after an unclean shutdown") {
		t.Fatalf("the mount after the abort did not recover:\n%s", lm.log)
	}
	realtools.RequireFsckClean(t, img)
}
