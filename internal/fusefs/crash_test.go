package fusefs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"o2go/internal/testutil"
	"o2go/internal/testutil/realtools"
)

// The crash-consistency test of issue 4 (acceptance 4). A separate
// process — this test binary run again as a FUSE server, serving through
// the same Session `o2go mount -f` uses — serves the volume while this
// process runs a metadata-and-data workload on the mount; the server is
// killed with SIGKILL at a random moment, sometimes twice in a row (the
// next server replays, then dies too). Then:
//
//	(a) a mount replays the journal and deletes orphans; after unmount,
//	    fsck.ocfs2 -fn is clean;
//	(b) on a copy of the crashed image, fsck.ocfs2 -fy (twice: the tool's
//	    replay quirk) then fsck.ocfs2 -fn is clean;
//	(c) in both, every file whose fsync returned before the kill has its
//	    contents, and an fsynced append log its fsynced prefix.
//
// O2GO_CRASH_RUNS sets the number of runs (default 10; `make crash-long`
// runs 200), O2GO_CRASH_SEED the seed, O2GO_CRASH_KEEP a directory that
// keeps the crashed image of a failing run.

const crashServeEnv = "O2GO_CRASH_SERVE"

// crashServeSpec is what the server process is told.
type crashServeSpec struct {
	Image, Mountpoint, Options, RunDir string
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashServeEnv); spec != "" {
		os.Exit(crashServe(spec))
	}
	os.Exit(m.Run())
}

// crashServe is the server process: mount, say "ok" on fd 3, serve until
// killed (or unmounted).
func crashServe(raw string) int {
	var spec crashServeSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "crash server:", err)
		return 2
	}
	RunDir = spec.RunDir
	opts, err := ParseMountOptions(spec.Options)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash server:", err)
		return 2
	}
	ready := os.NewFile(3, "ready")
	s := &Session{Device: spec.Image, Mountpoint: spec.Mountpoint, Opts: opts}
	err = s.Run(func(err error) {
		if err != nil {
			fmt.Fprintf(ready, "error: %v\n", err)
		} else {
			fmt.Fprintln(ready, "ok")
		}
		ready.Close()
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash server:", err)
		return 1
	}
	return 0
}

// crashServer is a running server process.
type crashServer struct {
	cmd  *exec.Cmd
	mnt  string
	log  *bytes.Buffer
	dead atomic.Bool // set once killed, before the mount is detached
}

func startCrashServer(t *testing.T, img, mnt, options string) *crashServer {
	t.Helper()
	raw, _ := json.Marshal(crashServeSpec{Image: img, Mountpoint: mnt, Options: options, RunDir: filepath.Join(t.TempDir(), "run")})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashServeEnv+"="+string(raw))
	cmd.ExtraFiles = []*os.File{w}
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	if strings.TrimSpace(line) != "ok" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the crash server did not mount %s: %q\n%s", img, line, log)
	}
	return &crashServer{cmd: cmd, mnt: mnt, log: log}
}

// kill is the crash: SIGKILL, then the dead mount is detached.
func (s *crashServer) kill(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	// Workers stop before the detach: past it, their paths name the
	// empty directory under the mount, and ENOENT is not a dead mount.
	s.dead.Store(true)
	if err := syscall.Unmount(s.mnt, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("detaching the dead mount %s: %v", s.mnt, err)
	}
}

// durableSet is what fsync made durable: whole files, and the fsynced
// prefix of append logs.
type durableSet struct {
	mu    sync.Mutex
	files map[string][sha256.Size]byte // name -> contents' hash
	sizes map[string]int64
	logs  map[string][]byte // name -> fsynced prefix
}

func newDurableSet() *durableSet {
	return &durableSet{files: map[string][sha256.Size]byte{}, sizes: map[string]int64{}, logs: map[string][]byte{}}
}

func (d *durableSet) file(name string, data []byte) {
	d.mu.Lock()
	d.files[name] = sha256.Sum256(data)
	d.sizes[name] = int64(len(data))
	d.mu.Unlock()
}

func (d *durableSet) log(name string, prefix []byte) {
	d.mu.Lock()
	d.logs[name] = prefix
	d.mu.Unlock()
}

// check reads every durable file under root and reports what is missing
// or wrong.
func (d *durableSet) check(root string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var bad []string
	for name, sum := range d.files {
		b, err := os.ReadFile(filepath.Join(root, name))
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s (fsynced, %d bytes): %v", name, d.sizes[name], err))
		case sha256.Sum256(b) != sum:
			bad = append(bad, fmt.Sprintf("%s (fsynced, %d bytes): %d bytes of other contents", name, d.sizes[name], len(b)))
		}
	}
	for name, prefix := range d.logs {
		b, err := os.ReadFile(filepath.Join(root, name))
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s (log, %d bytes fsynced): %v", name, len(prefix), err))
		case len(b) < len(prefix):
			bad = append(bad, fmt.Sprintf("%s (log): %d bytes, %d were fsynced", name, len(b), len(prefix)))
		case !bytes.Equal(b[:len(prefix)], prefix):
			bad = append(bad, fmt.Sprintf("%s (log): the fsynced %d bytes differ (%s)", name, len(prefix), firstDiff(b[:len(prefix)], prefix)))
		}
	}
	return bad
}

func (d *durableSet) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.files) + len(d.logs)
}

// deadMount reports whether err says the FUSE server is gone.
func deadMount(err error) bool {
	return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
}

// crashWorkload drives the mount at mnt until it dies.
type crashWorkload struct {
	mnt     string
	dead    *atomic.Bool // the server was killed
	cycle   int
	durable *durableSet
	ops     sync.Map // counts by kind (for the log)
}

func (c *crashWorkload) count(kind string) {
	v, _ := c.ops.LoadOrStore(kind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// writeDurable creates files, fsyncs them and records them once fsync
// returned; they are never touched again.
func (c *crashWorkload) writeDurable(r *rand.Rand) {
	for i := 0; ; i++ {
		name := fmt.Sprintf("d/c%d-f%d", c.cycle, i)
		size := r.IntN(200 << 10)
		if r.IntN(8) == 0 {
			size = r.IntN(4 << 20)
		}
		data := randBytes(r, size)
		f, err := os.OpenFile(filepath.Join(c.mnt, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return
		}
		for off := 0; off < len(data); {
			k := min(len(data)-off, 1+r.IntN(1<<20))
			if _, err := f.Write(data[off : off+k]); err != nil {
				f.Close()
				return
			}
			off += k
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return
		}
		c.durable.file(name, data)
		c.count("durable file")
		if f.Close() != nil {
			return
		}
	}
}

// appendLog appends to one log file, fsyncing now and then; the prefix
// fsync covered is recorded.
func (c *crashWorkload) appendLog(r *rand.Rand) {
	name := "d/log"
	c.durable.mu.Lock()
	content := bytes.Clone(c.durable.logs[name])
	c.durable.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(c.mnt, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	// Unsynced appends of a previous cycle may be there too: start from
	// what the file holds now.
	if st, err := f.Stat(); err == nil && st.Size() > int64(len(content)) {
		b, err := os.ReadFile(filepath.Join(c.mnt, name))
		if err != nil {
			return
		}
		content = b
	}
	for {
		chunk := randBytes(r, 1+r.IntN(40000))
		if _, err := f.Write(chunk); err != nil {
			return
		}
		content = append(content, chunk...)
		if r.IntN(3) == 0 {
			if err := f.Sync(); err != nil {
				return
			}
			c.durable.log(name, bytes.Clone(content))
			c.count("log fsync")
		}
	}
}

// churn changes a small tree at random: every kind of metadata and data
// operation, files unlinked while open (orphans at the crash), an fsync
// now and then. Errors other than the mount dying are expected (names
// are drawn at random) and ignored.
func (c *crashWorkload) churn(r *rand.Rand) {
	root := filepath.Join(c.mnt, "c")
	name := func() string {
		dirs := []string{"", "x", "y", "x/z"}
		return filepath.Join(root, dirs[r.IntN(len(dirs))], fmt.Sprintf("n%d", r.IntN(24)))
	}
	var open []*os.File
	defer func() {
		for _, f := range open {
			f.Close()
		}
	}()
	for {
		var err error
		kind := r.IntN(16)
		switch kind {
		case 0, 1:
			err = os.WriteFile(name(), randBytes(r, r.IntN(300<<10)), 0o644)
		case 2, 3:
			var f *os.File
			if f, err = os.OpenFile(name(), os.O_WRONLY, 0); err == nil {
				_, err = f.WriteAt(randBytes(r, r.IntN(200<<10)), r.Int64N(4<<20))
				f.Close()
			}
		case 4:
			err = os.Truncate(name(), r.Int64N(2<<20))
		case 5:
			err = unix.Renameat2(unix.AT_FDCWD, name(), unix.AT_FDCWD, name(), []uint{0, 0, unix.RENAME_EXCHANGE, unix.RENAME_NOREPLACE}[r.IntN(4)])
		case 6:
			err = os.Link(name(), name())
		case 7:
			err = os.Remove(name())
		case 8:
			err = os.Mkdir(filepath.Join(root, []string{"x", "y", "x/z", "y/w"}[r.IntN(4)]), 0o755)
			if err == nil || errors.Is(err, syscall.EEXIST) {
				err = os.Remove(filepath.Join(root, "y/w"))
			}
		case 9:
			err = os.Symlink(strings.Repeat("t/", r.IntN(120)), name())
		case 10:
			err = unix.Setxattr(name(), fmt.Sprintf("user.x%d", r.IntN(6)), randBytes(r, r.IntN(6000)), 0)
		case 11:
			var f *os.File
			if f, err = os.OpenFile(name(), os.O_RDWR, 0); err == nil {
				mode := []uint32{fallocPunchHole | fallocKeepSize, 0, fallocZeroRange}[r.IntN(3)]
				err = unix.Fallocate(int(f.Fd()), mode, r.Int64N(2<<20), 1+r.Int64N(1<<20))
				f.Close()
			}
		case 12:
			var in, out *os.File
			if in, err = os.Open(name()); err == nil {
				if out, err = os.OpenFile(name(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644); err == nil {
					if st, serr := in.Stat(); serr == nil && st.Size() > 0 {
						_, err = unix.CopyFileRange(int(in.Fd()), nil, int(out.Fd()), nil, int(st.Size()), 0)
					}
					out.Close()
				}
				in.Close()
			}
		case 13:
			// Open, unlink, keep writing: an orphan when the crash comes.
			p := name()
			var f *os.File
			if f, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644); err == nil {
				if err = os.Remove(p); err == nil {
					_, err = f.WriteAt(randBytes(r, r.IntN(500<<10)), 0)
				}
				open = append(open, f)
				if len(open) > 4 {
					open[0].Close()
					open = open[1:]
				}
			}
		case 14:
			var f *os.File
			if f, err = os.OpenFile(name(), os.O_RDWR, 0); err == nil {
				err = f.Sync()
				f.Close()
			}
		default:
			_, err = os.ReadDir(filepath.Join(root, "x"))
		}
		if deadMount(err) || c.dead.Load() {
			return
		}
		c.count("churn")
	}
}

// crashRun is one run: one or more workload-and-kill cycles on a copy
// of the template image, then the checks (a), (b), (c).
func crashRun(t *testing.T, template string, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	img := filepath.Join(t.TempDir(), "crash.img")
	if out, err := exec.Command("cp", "--sparse=always", template, img).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	// pristine is a copy of the image as the last crash left it, kept
	// when the run fails.
	var pristine string
	defer func() {
		if dir := os.Getenv("O2GO_CRASH_KEEP"); dir != "" && t.Failed() && pristine != "" {
			dst := filepath.Join(dir, fmt.Sprintf("crash-%#x.img", seed))
			exec.Command("cp", "--sparse=always", pristine, dst).Run()
			t.Logf("crashed image kept as %s", dst)
		}
	}()
	durable := newDurableSet()
	cycles := 1 + r.IntN(2)
	options := []string{"", "commit=1"}[r.IntN(2)]
	var summary []string
	for cycle := range cycles {
		mnt := t.TempDir()
		srv := startCrashServer(t, img, mnt, options)
		if cycle == 0 {
			for _, d := range []string{"d", "c", "c/x", "c/y"} {
				if err := os.Mkdir(filepath.Join(mnt, d), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
					srv.kill(t)
					t.Fatal(err)
				}
			}
		}
		w := &crashWorkload{mnt: mnt, cycle: cycle, durable: durable, dead: &srv.dead}
		var wg sync.WaitGroup
		for i, fn := range []func(*rand.Rand){w.writeDurable, w.appendLog, w.churn, w.churn} {
			wr := rand.New(rand.NewPCG(r.Uint64(), uint64(i)))
			wg.Add(1)
			go func() { defer wg.Done(); fn(wr) }()
		}
		delay := time.Duration(50+r.IntN(2500)) * time.Millisecond
		time.Sleep(delay)
		srv.kill(t)
		wg.Wait()
		var counts []string
		w.ops.Range(func(k, v any) bool {
			counts = append(counts, fmt.Sprintf("%s %d", k, v.(*atomic.Int64).Load()))
			return true
		})
		summary = append(summary, fmt.Sprintf("cycle %d: killed after %v (%s)", cycle+1, delay, strings.Join(counts, ", ")))
	}
	t.Logf("seed %#x, options %q: %s; %d fsynced files and logs to check", seed, options, strings.Join(summary, "; "), durable.count())

	if os.Getenv("O2GO_CRASH_KEEP") != "" {
		pristine = copyImage(t, img)
	}
	// (b) the real tool's replay, on a copy.
	cp := copyImage(t, img)
	fsckReplay(t, cp)
	dump := t.TempDir()
	realtools.Debugfs(t, cp, "rdump /d "+dump)
	if bad := durable.check(dump); len(bad) > 0 {
		t.Errorf("after fsck.ocfs2's replay, fsynced data is lost:\n  %s", strings.Join(bad, "\n  "))
	}
	// (a) o2go's replay at mount, orphans deleted, a clean unmount.
	mnt, unmount := mountImage(t, img, "")
	if bad := durable.check(mnt); len(bad) > 0 {
		t.Errorf("after o2go's replay, fsynced data is lost:\n  %s", strings.Join(bad, "\n  "))
	}
	// The tree is usable: walk and read all of it.
	if err := filepath.WalkDir(mnt, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(io.Discard, f)
			return err
		}
		return nil
	}); err != nil {
		t.Errorf("reading the recovered tree: %v", err)
	}
	unmount()
	realtools.RequireFsckClean(t, img)
}

// TestCrashConsistency kills the FUSE server at random moments of a
// workload (see the top of this file).
func TestCrashConsistency(t *testing.T) {
	testutil.RequireFUSE(t)
	realtools.Require(t)
	runs := 10
	if testing.Short() {
		runs = 3
	}
	if s := os.Getenv("O2GO_CRASH_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("O2GO_CRASH_RUNS=%q: want a positive number", s)
		}
		runs = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("O2GO_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("O2GO_CRASH_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("%d runs, seed %#x (O2GO_CRASH_SEED; a run's own seed reproduces it alone with O2GO_CRASH_RUNS=1)", runs, seed)
	template := realtools.MkfsImage(t, 512<<20, defaultMkfs...)
	for i := range runs {
		runSeed := seed + uint64(i)
		if !t.Run(fmt.Sprintf("run%03d", i), func(t *testing.T) { crashRun(t, template, runSeed) }) && testing.Short() {
			break
		}
	}
}
