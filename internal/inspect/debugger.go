package inspect

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
)

// Prompt is what the interactive debugger prints before each command, as
// debugfs.ocfs2 does.
const Prompt = "debugfs: "

// Debugger is one debugfs session: the volume it has open (or none), the
// current and root directories, and where output and errors go. Commands
// run one at a time (Exec); each writes its result to Out and its errors to
// Err as "command: message", and a failed command is remembered (Failed)
// so that the caller can exit non-zero.
type Debugger struct {
	Out, Err io.Writer
	// JSON makes the commands that have a --json form (stats, stat, ls,
	// slotmap, hb) use it without being told on each command line.
	JSON bool

	vol      *volume.Volume
	device   string
	root     uint64 // chroot
	cwd      uint64
	maxBlock uint64
	failed   bool
	out      *bufio.Writer // Out, buffered per command
}

// NewDebugger returns a session with no volume open.
func NewDebugger(out, errOut io.Writer) *Debugger {
	return &Debugger{Out: out, Err: errOut}
}

// Failed reports whether any command so far reported an error.
func (d *Debugger) Failed() bool { return d.failed }

// Open opens device read-only (backup superblock backup when > 0) and makes
// it the session's volume, closing the previous one.
func (d *Debugger) Open(device string, backup int) error {
	d.Close()
	v, err := volume.Open(device, volume.OpenOptions{ReadOnly: true, Backup: backup, Lenient: true})
	if err != nil {
		if backup == 0 {
			if n, blk, ok := volume.IntactBackup(device); ok {
				return fmt.Errorf("%w\n(backup superblock %d at block %d is intact: open the volume through it with -s %d)", err, n, blk, n)
			}
		}
		return err
	}
	d.vol, d.device = v, device
	d.root, d.cwd = v.SB.RootBlkno, v.SB.RootBlkno
	d.maxBlock = uint64(v.Super.Clusters) * uint64(v.SB.BlocksPerCluster())
	return nil
}

// Close closes the open volume, if any.
func (d *Debugger) Close() {
	if d.vol != nil {
		d.vol.Close()
		d.vol = nil
		d.device = ""
	}
}

// Volume is the open volume, or nil.
func (d *Debugger) Volume() *volume.Volume { return d.vol }

// command is one entry of the command table.
type command struct {
	name, usage, desc string
	run               func(d *Debugger, args []string) error
	hidden            bool // an alias shown under its main name
}

var commands []command

func init() {
	commands = []command{
		{name: "bmap", usage: "bmap <filespec> <logical_blk>", desc: "Show the corresponding physical block# for the inode", run: (*Debugger).doBmap},
		{name: "cat", usage: "cat <filespec>", desc: "Show file on stdout", run: (*Debugger).doCat},
		{name: "cd", usage: "cd <filespec>", desc: "Change directory", run: (*Debugger).doCd},
		{name: "chroot", usage: "chroot <filespec>", desc: "Change root", run: (*Debugger).doChroot},
		{name: "close", usage: "close", desc: "Close a device", run: (*Debugger).doClose},
		{name: "curdev", usage: "curdev", desc: "Show current device", run: (*Debugger).doCurdev},
		{name: "decode", usage: "decode <lockname#> ...", desc: "Decode block#(s) from the lockname(s)", run: (*Debugger).doDecode},
		{name: "dirblocks", usage: "dirblocks <filespec>", desc: "Dump directory blocks", run: (*Debugger).doDirblocks},
		{name: "dump", usage: "dump [-p] <filespec> <outfile>", desc: "Dumps file to outfile on a mounted fs", run: (*Debugger).doDump},
		{name: "dx_dump", usage: "dx_dump <filespec>", desc: "Show directory index information", run: (*Debugger).doDxDump},
		{name: "dx_leaf", usage: "dx_leaf <blkno>", desc: "Show directory index leaf block only", run: (*Debugger).doDxLeaf},
		{name: "dx_root", usage: "dx_root <blkno>", desc: "Show directory index root block only", run: (*Debugger).doDxRoot},
		{name: "dx_space", usage: "dx_space <filespec>", desc: "Dump directory free space list", run: (*Debugger).doDxSpace},
		{name: "encode", usage: "encode <filespec>", desc: "Show lock name", run: (*Debugger).doEncode},
		{name: "extent", usage: "extent <block#>", desc: "Show extent block", run: (*Debugger).doExtent},
		{name: "findpath", usage: "findpath <block#>", desc: "List one pathname of the inode/lockname", run: (*Debugger).doFindpath},
		{name: "frag", usage: "frag <filespec>", desc: "Show inode extents / clusters ratio", run: (*Debugger).doFrag},
		{name: "group", usage: "group <block#>", desc: "Show chain group", run: (*Debugger).doGroup},
		{name: "grpextents", usage: "grpextents <block#>", desc: "Show free extents in a chain group", run: (*Debugger).doGrpextents},
		{name: "hb", usage: "hb [--json]", desc: "Show the heartbeat blocks", run: (*Debugger).doHb},
		{name: "help", usage: "help, ?", desc: "This information", run: (*Debugger).doHelp},
		{name: "?", run: (*Debugger).doHelp, hidden: true},
		{name: "lcd", usage: "lcd <directory>", desc: "Change directory on a mounted flesystem", run: (*Debugger).doLcd},
		{name: "locate", usage: "locate <block#> ...", desc: "List all pathnames of the inode(s)/lockname(s)", run: (*Debugger).doLocate},
		{name: "logdump", usage: "logdump [-T] <slot#>", desc: "Show journal file for the node slot", run: (*Debugger).doLogdump},
		{name: "ls", usage: "ls [-l] [--json] <filespec>", desc: "List directory", run: (*Debugger).doLs},
		{name: "ncheck", usage: "ncheck <block#> ...", desc: "List all pathnames of the inode(s)/lockname(s)", run: (*Debugger).doLocate},
		{name: "open", usage: "open <device> [-s backup#]", desc: "Open a device", run: (*Debugger).doOpen},
		{name: "quit", usage: "quit, q", desc: "Exit the program", run: nil},
		{name: "q", hidden: true},
		{name: "rdump", usage: "rdump [-v] <filespec> <outdir>", desc: "Recursively dumps from src to a dir on a mounted filesystem", run: (*Debugger).doRdump},
		{name: "refcount", usage: "refcount [-e] <filespec>", desc: "Dump the refcount tree for the inode or refcount block", run: (*Debugger).doRefcount},
		{name: "slotmap", usage: "slotmap [--json]", desc: "Show slot map", run: (*Debugger).doSlotmap},
		{name: "stat", usage: "stat [-t|-T] [--json] <filespec>", desc: "Show inode", run: (*Debugger).doStat},
		{name: "stat_sysdir", usage: "stat_sysdir", desc: "Show all objects in the system directory", run: (*Debugger).doStatSysdir},
		{name: "stats", usage: "stats [-h] [-s backup#] [--json]", desc: "Show superblock", run: (*Debugger).doStats},
		{name: "xattr", usage: "xattr [-v] <filespec>", desc: "Show extended attributes", run: (*Debugger).doXattr},
	}
}

// errQuit is returned by Exec for quit/q.
var errQuit = errors.New("quit")

// IsQuit reports whether Exec's result asks the caller to stop.
func IsQuit(err error) bool { return errors.Is(err, errQuit) }

// splitLine splits a command line on spaces as debugfs does (tabs are part
// of words; runs of spaces make no empty words).
func splitLine(line string) []string {
	var out []string
	for _, w := range strings.Split(line, " ") {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// Exec runs one command line. Output goes to Out, errors to Err; the
// returned error is errQuit for quit (see IsQuit) and otherwise nil: a
// failing command only marks the session Failed.
func (d *Debugger) Exec(line string) error {
	args := splitLine(line)
	if len(args) == 0 || strings.HasPrefix(args[0], "#") {
		return nil
	}
	name := args[0]
	if name == "quit" || name == "q" {
		return errQuit
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
			break
		}
	}
	if cmd == nil || cmd.run == nil {
		d.failed = true
		fmt.Fprintf(d.Err, "%s: command not found (try 'help')\n", name)
		return nil
	}
	d.out = bufio.NewWriterSize(d.Out, 64<<10)
	err := cmd.run(d, args)
	if ferr := d.out.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("writing output: %w", ferr)
	}
	if err != nil {
		d.failed = true
		fmt.Fprintf(d.Err, "%s: %v\n", name, err)
	}
	return nil
}

// ScriptOptions say how Script talks to its reader.
type ScriptOptions struct {
	// Prompt is printed before each command ("debugfs: "; "" for none).
	Prompt string
	// Echo prints Prompt and the command after reading it, instead of the
	// prompt before: what debugfs.ocfs2 does when its input is a pipe or a
	// command file, so that the transcript reads like the session.
	Echo bool
}

// Script runs commands read from r, one per line, until EOF or quit, and
// prints an empty line at EOF as debugfs does. It returns input errors
// only; failed commands mark the session Failed.
func (d *Debugger) Script(r io.Reader, opts ScriptOptions) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for {
		if !opts.Echo && opts.Prompt != "" {
			fmt.Fprint(d.Out, opts.Prompt)
		}
		if !sc.Scan() {
			break
		}
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" {
			continue
		}
		if opts.Echo && opts.Prompt != "" {
			fmt.Fprintf(d.Out, "%s%s\n", opts.Prompt, line)
		}
		if IsQuit(d.Exec(line)) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintln(d.Out)
	return nil
}

// errNoDevice is every command's answer when nothing is open.
var errNoDevice = errors.New("no device open (use 'open <device>')")

func (d *Debugger) needVolume() error {
	if d.vol == nil {
		return errNoDevice
	}
	return nil
}

// view returns a printer on the command's output.
func (d *Debugger) view() *view {
	v := &view{w: d.out}
	if d.vol != nil {
		v.bs = d.vol.SB.BlockSize()
		v.metaECC = d.vol.SB.Features.Incompat&ondisk.IncompatMetaECC != 0
	}
	return v
}

// usageError is a command line the command cannot parse.
type usageError string

func (e usageError) Error() string { return "usage: " + string(e) }

// takeFlag removes flag from args (after the command name) and reports
// whether it was there.
func takeFlag(args []string, flag string) ([]string, bool) {
	out := args[:1:1]
	found := false
	for _, a := range args[1:] {
		if a == flag {
			found = true
			continue
		}
		out = append(out, a)
	}
	return out, found
}

// parseBlockArg reads a block number argument: "<N>", "N", hex "0x..", or
// a lock name in angle brackets ("<M000000000000000000001800000000>"),
// whose block number is used, as debugfs accepts.
func parseBlockArg(s string) (uint64, error) {
	inner := s
	if len(s) > 2 && s[0] == '<' && s[len(s)-1] == '>' {
		inner = s[1 : len(s)-1]
		if ondisk.LockType(inner[0]).Valid() {
			n, err := parseLockArg(inner)
			if err != nil {
				return 0, err
			}
			return n.Blkno, nil
		}
	}
	n, err := strconv.ParseUint(inner, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a block number", s)
	}
	return n, nil
}

// parseLockArg parses a lock name as typed by an operator: the standard
// 31-character form, or a dentry lock in its printable form
// ("N" + parent %016x + inode %08x).
func parseLockArg(s string) (ondisk.LockName, error) {
	if len(s) == 25 && s[0] == byte(ondisk.LockDentry) {
		parent, err1 := strconv.ParseUint(s[1:17], 16, 64)
		ino, err2 := strconv.ParseUint(s[17:25], 16, 32)
		if err1 == nil && err2 == nil {
			return ondisk.LockName{Type: ondisk.LockDentry, Parent: parent, Blkno: ino}, nil
		}
	}
	n, err := ondisk.ParseLockName(s)
	if err != nil {
		return ondisk.LockName{}, fmt.Errorf("%q is not a lock name: %w", s, err)
	}
	return n, nil
}

// blockArg parses and range-checks a block number argument.
func (d *Debugger) blockArg(s string) (uint64, error) {
	n, err := parseBlockArg(s)
	if err != nil {
		return 0, err
	}
	if n >= d.maxBlock {
		return 0, fmt.Errorf("block %d is beyond the end of the volume (%d blocks)", n, d.maxBlock)
	}
	return n, nil
}

// resolve turns a filespec into an inode number: "<N>" (or a lock name in
// angle brackets) names an inode directly; "//..." starts at the system
// directory, "/..." at the root, anything else at the current directory.
// Symlinks inside the path are followed, a final one is not.
func (d *Debugger) resolve(spec string) (uint64, error) {
	if err := d.needVolume(); err != nil {
		return 0, err
	}
	if len(spec) > 2 && spec[0] == '<' && spec[len(spec)-1] == '>' {
		return d.blockArg(spec)
	}
	start, rest := d.cwd, spec
	switch {
	case strings.HasPrefix(spec, "//"):
		start, rest = d.vol.SB.SystemDirBlkno, spec[2:]
	case strings.HasPrefix(spec, "/"):
		start, rest = d.root, spec[1:]
	}
	blk, err := d.namei(start, rest, 0)
	if err != nil {
		return 0, fmt.Errorf("'%s': %w", spec, err)
	}
	return blk, nil
}

// namei walks path from directory dir.
func (d *Debugger) namei(dir uint64, path string, hops int) (uint64, error) {
	parts := strings.Split(path, "/")
	cur := dir
	for i, name := range parts {
		if name == "" {
			continue
		}
		next, err := d.vol.FS.Lookup(cur, name)
		if err != nil {
			return 0, unwrapPathError(err)
		}
		last := true
		for _, p := range parts[i+1:] {
			if p != "" {
				last = false
			}
		}
		if !last {
			ino, err := d.vol.FS.Inode(next)
			if err != nil {
				return 0, err
			}
			if ino.IsLnk() {
				if hops >= 40 {
					return 0, syscall.ELOOP
				}
				target, err := d.vol.FS.Readlink(ino)
				if err != nil {
					return 0, err
				}
				base := cur
				if strings.HasPrefix(target, "/") {
					base = d.root
				}
				if next, err = d.namei(base, target, hops+1); err != nil {
					return 0, err
				}
			}
		}
		cur = next
	}
	return cur, nil
}

// unwrapPathError keeps the errno of a lookup ("no such file or directory")
// and drops the inner path, which the caller prints whole.
func unwrapPathError(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// rawInode reads the inode at blkno for display: decoded, its signature
// checked, but not its identity (see identityProblem).
func (d *Debugger) rawInode(blkno uint64) (*ondisk.Dinode, []byte, error) {
	b, err := d.vol.Cache.Get(blkno)
	if err != nil {
		return nil, nil, err
	}
	ino, err := ondisk.DecodeDinode(b.Data)
	if err != nil {
		return nil, nil, d.vol.Cache.Annotate(err, blkno)
	}
	return ino, b.Data, nil
}

// identityProblem says what the file system would refuse about a displayed
// inode (another block's copy, another volume's generation), or nil. A
// freed inode (no VALID flag) is shown without complaint: that is what a
// debugger is for.
func (d *Debugger) identityProblem(ino *ondisk.Dinode, blkno uint64) error {
	if ino.Signature == ondisk.SuperBlockSignature {
		return nil
	}
	var problem *ondisk.CorruptError
	switch {
	case ino.Blkno != blkno:
		problem = &ondisk.CorruptError{Struct: "dinode", Field: "i_blkno", Msg: fmt.Sprintf("is %d, want %d", ino.Blkno, blkno)}
	case ino.FSGeneration != d.vol.Super.FSGeneration:
		problem = &ondisk.CorruptError{Struct: "dinode", Field: "i_fs_generation", Msg: fmt.Sprintf("is 0x%x, want the volume's 0x%x", ino.FSGeneration, d.vol.Super.FSGeneration)}
	default:
		return nil
	}
	return d.vol.Cache.Annotate(problem, blkno)
}

// readData reads a whole file's bytes (bounded: system files and symlinks).
func (d *Debugger) readData(ino *ondisk.Dinode, limit uint64) ([]byte, error) {
	if ino.Size > limit {
		return nil, fmt.Errorf("inode %d: %d bytes is more than the %d this command reads", ino.Blkno, ino.Size, limit)
	}
	buf := make([]byte, ino.Size)
	n, err := d.vol.FS.ReadAt(ino, buf, 0)
	return buf[:n], err
}

// IsTerminal reports whether r is a terminal, which decides whether the
// interactive loop prompts or echoes.
func IsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
