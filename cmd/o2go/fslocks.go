package main

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/clustermount"
	"o2go/internal/fs/lockglue"
)

// o2go debug fs_locks is a subcommand of o2go debug, whose file does not
// add it: hook it onto the debug command as the root command is built.
func newDebugFsLocksCommand() *cobra.Command {
	var nodeName, socket string
	var busy, asJSON bool
	cmd := &cobra.Command{
		Use:   "fs_locks [-B] [--json] [--node NAME] [MOUNTPOINT | DEVICE | UUID]",
		Short: "Show the file-system cluster locks of the clustered mounts (debugfs.ocfs2 fs_locks)",
		Long: `Show, for every clustered mount the node's agent serves (or the one named by
its mount point, device or UUID), the cluster locks the file system holds,
as debugfs.ocfs2's fs_locks does for the kernel: the volume lock (OCFS2's
superblock lock, S...0200000000) and an open lock (O + inode) per inode in
use on this node. For each lock:

  LOCKRES   the lock name; TYPE and INODE decode it (2 is the superblock)
  MODE      the level this node holds: NL, PR, EX, or none
  HOLDERS   local users: operations inside the volume lock; open handles
            and kernel uses of the inode for an open lock
  PENDING   the action under way and the level it asks for: lock, convert,
            downconvert (after a blocking notification), unlock, cancel
  BLOCKED   the level another node waits for, which this node's excludes:
            the downconvert follows the last local user
  MASTER    the node that masters the lock resource (* : this node)
  WAITERS   other nodes' requests queued at the master (node:level), known
            when this node is the master
  ACQUIRES, REQUESTS, DOWNCONV, BLOCKS
            what the volume lock did since the mount: users served,
            requests to the lock manager, downconverts, blocking
            notifications received (open locks keep no counts)

A lock marked untracked is held by this node in the volume's lock domain
without the file system knowing it (o2go lock on the domain, or a leak).
Wait times per level (debugfs.ocfs2's "PR > Gets ... Waits Total") are not
recorded yet.

-B shows only busy locks: with local users, a request or downconvert under
way, or another node blocked on them. To follow a hang (ocfs2(7), DLM
DEBUGGING): run fs_locks -B on the node whose processes hang; for each busy
lock, 'o2go dlm locks UUID NAME' on its master shows who holds it; then
fs_locks on the holder shows why it does not let go (its holders).

EXIT STATUS
  0  the agent answered
  1  no agent, or no such clustered mount`,
		Example: `  o2go debug fs_locks
  o2go debug fs_locks -B /mnt/shared
  o2go debug fs_locks --json --node node2`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p clustermount.FsLocksParams
			p.Busy = busy
			if len(args) == 1 {
				m, err := mountArg(args[0])
				if err != nil {
					return &exitError{1, err}
				}
				p.Mount = m
			}
			cl, err := dialAgent(nodeName, socket)
			if err != nil {
				return &exitError{1, err}
			}
			defer cl.Close()
			// The view never waits on a lock: an agent that does not
			// answer is itself hung.
			_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
			var mounts []clustermount.MountLocks
			if err := cl.Call("fs.locks", p, &mounts); err != nil {
				return &exitError{1, err}
			}
			if asJSON {
				if mounts == nil {
					mounts = []clustermount.MountLocks{}
				}
				return writeJSON(cmd.OutOrStdout(), mounts)
			}
			printFsLocks(cmd.OutOrStdout(), mounts, busy)
			return nil
		},
	}
	addAgentFlags(cmd, &nodeName, &socket)
	cmd.Flags().BoolVarP(&busy, "busy", "B", false, "show only busy locks")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

var uuidArg = regexp.MustCompile(`^(UUID=)?[0-9A-Fa-f-]{32,36}$`)

// mountArg is what fs.locks matches a mount against: a UUID as given, a
// path made absolute (the agent runs elsewhere). Nothing is stat'ed: a
// hung mount point must not hang its own debugging.
func mountArg(arg string) (string, error) {
	if uuidArg.MatchString(arg) {
		return arg, nil
	}
	if strings.HasPrefix(arg, "LABEL=") {
		return "", fmt.Errorf("%s: name the mount by its mount point, device or UUID", arg)
	}
	return filepath.Abs(arg)
}

// printFsLocks prints one table per mount.
func printFsLocks(w io.Writer, mounts []clustermount.MountLocks, busy bool) {
	if len(mounts) == 0 {
		fmt.Fprintln(w, "no clustered mount on this node")
		return
	}
	for i, m := range mounts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Volume %s on %s (device %s, slot %d, node %d)\n", m.UUID, m.Mountpoint, m.Device, m.Slot, m.Node)
		if len(m.Locks) == 0 {
			if busy {
				fmt.Fprintln(w, "no busy lock")
			} else {
				fmt.Fprintln(w, "no lock")
			}
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "LOCKRES\tTYPE\tINODE\tMODE\tHOLDERS\tPENDING\tBLOCKED\tMASTER\tWAITERS\tACQUIRES\tREQUESTS\tDOWNCONV\tBLOCKS\tPR GETS/WAITS/MAX\tEX GETS/WAITS/MAX")
		for _, l := range m.Locks {
			pending := "-"
			if l.Pending != "" {
				pending = strings.TrimSpace(l.Pending + " " + l.Requested)
			}
			blocked := "-"
			if l.Blocked {
				blocked = l.BlockingMode
			}
			master := strconv.Itoa(int(l.Master))
			if l.MasteredHere {
				master += "*"
			}
			waiters := "-"
			if len(l.Waiters) > 0 {
				var ws []string
				for _, x := range l.Waiters {
					ws = append(ws, fmt.Sprintf("%d:%s", x.Node, x.Requested))
				}
				waiters = strings.Join(ws, " ")
			}
			stats := "-\t-\t-\t-\t-\t-"
			if s := l.Stats; s != nil {
				waits := func(w lockglue.WaitStats) string {
					return fmt.Sprintf("%d/%d/%s", w.Gets, w.Waits, w.Max.Round(time.Microsecond))
				}
				stats = fmt.Sprintf("%d\t%d\t%d\t%d\t%s\t%s", s.Acquires, s.Requests, s.Downconverts, s.Blocks, waits(s.PR), waits(s.EX))
			}
			if l.Untracked {
				stats += "\tuntracked"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n",
				l.Name, l.Type, l.Inode, l.Mode, l.Holders, pending, blocked, master, waiters, stats)
		}
		tw.Flush()
	}
}
