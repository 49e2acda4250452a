package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"o2go/internal/inspect"
)

func init() { subcommands = append(subcommands, newDebugCommand) }

// usageFlagError makes a flag cobra cannot parse (unknown, or a bad
// value) the usage error, exit status 2, that debug, info and mounted
// document.
func usageFlagError(cmd *cobra.Command, err error) error {
	return &exitError{2, fmt.Errorf("%w (see o2go %s --help)", err, cmd.Name())}
}

func newDebugCommand() *cobra.Command {
	var (
		request, cmdFile string
		backup           int
		noPrompt         bool
		decode, encode   bool
		asJSON           bool
		write, image     bool
	)
	cmd := &cobra.Command{
		Use:   "debug [-R CMD | -f CMDFILE] [-s N] [--json] [DEVICE]",
		Short: "Examine an OCFS2 volume (debugfs.ocfs2's commands and output)",
		Long: `debug opens an OCFS2 volume (a block device or an image file) read-only and
runs debugfs.ocfs2's commands on it: one with -R, those of a file with -f, or
an interactive session reading commands from standard input. Output has
debugfs.ocfs2 1.8.7's layout, so what works with one works with the other.

Commands (type 'help' in a session for their arguments):
  stats, stat, ls, cat, dump, rdump, slotmap, hb, extent, group, grpextents,
  dx_dump, dx_root, dx_leaf, dx_space, dirblocks, xattr, refcount, logdump,
  frag, bmap, findpath, ncheck, locate, encode, decode, stat_sysdir,
  open, close, cd, chroot, lcd, curdev, help, quit

A <filespec> is a path ("/dir/file"), a system file ("//journal:0000"), or an
inode number in angle brackets ("<70165>"). Block arguments take "<N>" or N.
stats, stat, ls, slotmap and hb print JSON with --json (field names are
documented in internal/inspect/json.go).

-d/--decode NAME... and -e/--encode TYPE BLKNO GENERATION decode and build
cluster lock names without a device, as debugfs.ocfs2 -d/-e do.

EXIT STATUS
  0  every command succeeded
  1  the device could not be opened (not OCFS2, truncated, unreadable), or a
     command failed (its message is on standard error)
  2  bad command-line usage`,
		Example: `  o2go debug -R stats /dev/sdb1
  o2go debug -R "ls -l //" vol.img
  o2go debug -R "dump -p /etc/hosts /tmp/hosts" vol.img
  o2go debug -R "stat --json /lost+found" vol.img
  echo "logdump 0" | o2go debug vol.img
  o2go debug -d M000000000000000000001800000000`,
		RunE: func(cmd *cobra.Command, args []string) error {
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			switch {
			case write:
				return &exitError{2, errors.New("debug opens volumes read-only: -w is not supported")}
			case image:
				return &exitError{2, errors.New("o2image files are not supported: give the device or a raw image")}
			case decode:
				if len(args) == 0 {
					return &exitError{2, errors.New("-d needs lock names to decode")}
				}
				if err := inspect.DecodeLockNames(stdout, args); err != nil {
					return &exitError{1, err}
				}
				return nil
			case encode:
				if len(args) != 3 {
					return &exitError{2, errors.New("-e needs three arguments: lock type, block number, generation (or parent for N)")}
				}
				name, err := inspect.EncodeLockName(args[0], args[1], args[2])
				if err != nil {
					return &exitError{1, err}
				}
				fmt.Fprintln(stdout, name)
				return nil
			}
			if len(args) > 1 {
				return &exitError{2, fmt.Errorf("one device at most, got %d arguments", len(args))}
			}
			if backup != 0 && (backup < 1 || backup > 6) {
				return &exitError{2, fmt.Errorf("-s %d: backup superblocks are numbered 1..6", backup)}
			}
			d := inspect.NewDebugger(stdout, stderr)
			d.JSON = asJSON
			defer d.Close()
			if len(args) == 1 {
				if err := d.Open(args[0], backup); err != nil {
					fmt.Fprintf(stderr, "open: %v\n", err)
					return &exitError{1, nil}
				}
			}
			var err error
			switch {
			case request != "":
				d.Exec(request)
			case cmdFile != "":
				f, ferr := os.Open(cmdFile)
				if ferr != nil {
					return &exitError{1, ferr}
				}
				defer f.Close()
				prompt := inspect.Prompt
				if noPrompt {
					prompt = ""
				}
				err = d.Script(f, inspect.ScriptOptions{Prompt: prompt, Echo: true})
			default:
				opts := inspect.ScriptOptions{Prompt: inspect.Prompt, Echo: !inspect.IsTerminal(cmd.InOrStdin())}
				if noPrompt {
					opts.Prompt = ""
				}
				err = d.Script(cmd.InOrStdin(), opts)
			}
			if err != nil {
				return &exitError{1, err}
			}
			if d.Failed() {
				return &exitError{1, nil}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(usageFlagError)
	f := cmd.Flags()
	f.StringVarP(&request, "request", "R", "", "run the single debugfs `CMD` and exit")
	f.StringVarP(&cmdFile, "file", "f", "", "run the commands in `CMDFILE`, one per line")
	f.IntVarP(&backup, "superblock", "s", 0, "open the volume through backup superblock `N` (1..6)")
	f.BoolVarP(&noPrompt, "noprompt", "n", false, "do not print the prompt")
	f.BoolVarP(&decode, "decode", "d", false, "decode the lock names given as arguments")
	f.BoolVarP(&encode, "encode", "e", false, "encode the lock name of TYPE BLKNO GENERATION given as arguments")
	f.BoolVar(&asJSON, "json", false, "print JSON from stats, stat, ls, slotmap and hb")
	f.BoolVarP(&write, "write", "w", false, "not supported: debug never writes")
	f.BoolVarP(&image, "image", "i", false, "not supported: o2image files")
	_ = f.MarkHidden("write")
	_ = f.MarkHidden("image")
	cmd.AddCommand(newDebugFsLocksCommand())
	return cmd
}
