// Command o2go is the whole o2go product in one binary: the OCFS2 file
// system tools (mkfs, fsck, tunefs, debug, info, mounted), the FUSE mount,
// the cluster agent and its stack, the DLM and the HA resource manager.
//
// Each subcommand lives in its own file of this package and holds no logic:
// it parses flags and calls into internal/.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit status out of a subcommand, for the
// tools whose exit codes operators script against (fsck's 0/1/4/8...).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "o2go",
		Short: "OCFS2-compatible shared-disk cluster file system, cluster stack and HA manager",
		Long: `o2go gives machines that share a disk what OCFS2 and its O2CB cluster stack
give them, in userspace: the OCFS2 on-disk format and its tools, a FUSE mount,
disk heartbeat, messaging, quorum, fencing, a DLM, and HA failover of services.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	return root
}

// subcommands is filled by the init functions of the files of this package.
var subcommands []func() *cobra.Command

// mountHelperArgs turns the command line mount(8) gives a mount helper
// (`/sbin/mount.fuse.o2go SOURCE TARGET [-o OPTIONS] [-n] [-s] [-v]`, for
// fstab entries of type fuse.o2go) into o2go's own: mount -o OPTIONS
// SOURCE TARGET. ok is false when o2go was not called as that helper.
func mountHelperArgs(argv []string) (args []string, ok bool, err error) {
	if name := filepath.Base(argv[0]); name != "mount.fuse.o2go" && name != "mount.o2go" {
		return nil, false, nil
	}
	var pos []string
	opts := ""
	for i := 1; i < len(argv); i++ {
		switch a := argv[i]; {
		case a == "-o" && i+1 < len(argv):
			i++
			opts = strings.Trim(opts+","+argv[i], ",")
		case strings.HasPrefix(a, "-o"):
			opts = strings.Trim(opts+","+a[2:], ",")
		case a == "-n" || a == "-s" || a == "-v" || a == "-f" || a == "-r" || a == "-w":
			// mount(8)'s: no mtab, sloppy, verbose, fake, ro, rw; -r/-w also come as options.
		case strings.HasPrefix(a, "-"):
			return nil, true, fmt.Errorf("%s: unknown flag %s (usage: %s SOURCE TARGET [-o OPTIONS])", argv[0], a, argv[0])
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, true, fmt.Errorf("usage: %s SOURCE TARGET [-o OPTIONS] (got %d arguments)", argv[0], len(pos))
	}
	args = []string{"mount"}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	return append(args, pos...), true, nil
}

func main() {
	root := newRootCommand()
	if args, ok, err := mountHelperArgs(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "o2go:", err)
		os.Exit(1)
	} else if ok {
		root.SetArgs(args)
	}
	err := root.Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "o2go:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "o2go:", err)
	os.Exit(1)
}
