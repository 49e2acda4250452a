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

func main() {
	err := newRootCommand().Execute()
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
