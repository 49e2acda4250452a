package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/cluster/config"
	"o2go/internal/fs/volume"
	"o2go/internal/fsck"
)

func init() { subcommands = append(subcommands, newFsckCommand) }

func newFsckCommand() *cobra.Command {
	var (
		no, yes, preen, preenA, force, skipCluster, fixGen, verbose, progress bool
		backup                                                                int
		hbWait                                                                time.Duration
		confPath, sysconfPath                                                 string
	)
	cmd := &cobra.Command{
		Use:   "fsck [-fnypv] [-r N] DEVICE",
		Short: "Check and repair an OCFS2 volume (fsck.ocfs2)",
		Long: `fsck checks the OCFS2 volume on DEVICE the way fsck.ocfs2 1.8.7 does, in its
passes and with its problem codes (fsck.ocfs2.checks(8)): journal replay of
slots not unmounted cleanly, 0a-0c chain allocators, 1 inodes and extents,
1b-1d clusters claimed twice, 2 directory entries, 3 connectivity, 4a orphans,
4b link counts. Each problem is printed as "[CODE] question? answer".

Without -n, -y or -p it asks on the terminal. A volume that is clean (not
marked with errors, not due for a check) is not checked without -f.

A clustered volume is changed only when its heartbeat area shows no live
node (fsck.ocfs2 takes the cluster lock instead, which needs O2CB running);
-n always works, and -F skips the heartbeat watch. A clustered volume
stamped for another cluster stack or cluster than the one this node's
O2CB configuration (--config) names is changed only after it is stamped
for this one (RECOVER_CLUSTER_INFO).

EXIT STATUS (summed, as fsck(8))
  0   no errors
  1   errors corrected (or journals replayed, orphans finished)
  4   errors left uncorrected
  8   operational error (cannot open, damage fsck cannot get past)
  16  usage error
  32  cancelled at a question
fsck.ocfs2 1.8.7 itself exits 0 whenever its passes complete; o2go reports
what it found as fsck(8) says.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, b := range []bool{no, yes, preen || preenA} {
				if b {
					n++
				}
			}
			if n > 1 {
				return &exitError{code: fsck.ExitUsage, err: errors.New("only one of -n, -y and -p may be given")}
			}
			o := fsck.Options{
				Device: args[0], Force: force, Backup: backup, SkipClusterCheck: skipCluster,
				FixGeneration: fixGen, Verbose: verbose, HeartbeatWait: hbWait,
				Out: cmd.OutOrStdout(), Err: cmd.ErrOrStderr(), In: cmd.InOrStdin(),
			}
			switch {
			case no:
				o.Answer = fsck.AnswerNo
			case yes:
				o.Answer = fsck.AnswerYes
			case preen || preenA:
				o.Answer = fsck.AnswerPreen
			default:
				o.Answer = fsck.AnswerAsk
				in, ok := cmd.InOrStdin().(*os.File)
				if !ok || !isTerminal(in) {
					return &exitError{code: fsck.ExitUsage, err: errors.New("no terminal to ask on: give -n, -y or -p")}
				}
			}
			if out, ok := cmd.ErrOrStderr().(*os.File); ok && (verbose || progress || isTerminal(out)) {
				o.Progress = out
			}
			if !no {
				o.RunningStack = fsckRunningStack(confPath, sysconfPath, cmd.ErrOrStderr())
			}
			if backup < 0 || backup > 6 {
				return &exitError{code: fsck.ExitUsage, err: errors.New("-r: backup superblock number must be 1 to 6")}
			}
			res := fsck.Run(o)
			if res.ExitCode == 0 {
				return nil
			}
			return &exitError{code: res.ExitCode}
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.BoolVarP(&no, "no", "n", false, "check only: answer no to every question and open the device read-only")
	f.BoolVarP(&yes, "yes", "y", false, "answer yes to every question")
	f.BoolVarP(&preen, "preen", "p", false, "fix only what is safe without a human (counts, back pointers), answer no to the rest")
	f.BoolVarP(&preenA, "auto", "a", false, "same as -p")
	f.BoolVarP(&force, "force", "f", false, "check even a volume that looks clean")
	f.IntVarP(&backup, "backup", "r", 0, "recover the superblock from backup `N` (1-6, at 1G, 4G, 16G, 64G, 256G, 1T)")
	f.BoolVarP(&skipCluster, "skip-cluster-check", "F", false, "do not watch a clustered volume's heartbeat for live nodes (dangerous)")
	f.BoolVarP(&fixGen, "generations", "G", false, "ask about inodes whose generation is not the volume's instead of taking them as unused")
	f.BoolVarP(&verbose, "verbose", "v", false, "progress, per-pass times and statistics")
	f.BoolVarP(&progress, "progress", "P", false, "show progress bars")
	f.DurationVar(&hbWait, "heartbeat-wait", 0, "how long to watch a clustered volume's heartbeat for live nodes (default 5s)")
	f.StringVar(&confPath, "config", config.DefaultClusterConfPath, "cluster configuration `FILE` (the cluster this node runs)")
	f.StringVar(&sysconfPath, "sysconfig", "", "o2cb sysconfig `FILE` (default: /etc/default/o2cb or /etc/sysconfig/o2cb)")
	return cmd
}

// fsckRunningStack is the cluster this node's O2CB configuration names,
// nil when there is no configuration; a configuration that cannot be read
// is said on errOut and taken as none (the heartbeat watch still guards
// the volume).
func fsckRunningStack(confPath, sysconfPath string, errOut io.Writer) *volume.ClusterStack {
	if _, err := os.Stat(confPath); err != nil {
		return nil
	}
	if sysconfPath == "" {
		sysconfPath = config.SysconfigPath("/")
	}
	s, err := loadAgentSetup(confPath, sysconfPath, "")
	if err != nil {
		fmt.Fprintf(errOut, "o2go fsck: no running cluster to compare the volume's cluster stack with: %v\n", err)
		return nil
	}
	return &volume.ClusterStack{Stack: "o2cb", Name: s.cluster.Name, GlobalHeartbeat: s.cluster.HeartbeatMode == config.HeartbeatGlobal}
}
