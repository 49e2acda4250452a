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
its mount point, device or UUID), the cluster locks its file system uses on
this node, as debugfs.ocfs2's fs_locks does for the kernel. Each mount gets
a line "Volume UUID on MOUNTPOINT (device DEVICE, slot N, node N)", then a
table with one row per lock: the volume lock first, then by name.

The rows, by the letter their name starts with (TYPE says it in words):
  S  Super      the volume lock (OCFS2's superblock lock): every operation
                holds it PR; mounts, unmounts and recoveries take it EX
  M  Meta       one per inode in use: PR to read the inode, its blocks and
                its data, EX to change them. The M lock of the slot's
                journal (journal:NNNN) is the journal lock: EX with one
                holder while mounted; a node that recovered a dead node's
                slot keeps that slot's EX until its next node asks (or
                gives it up idle, as any lock past 16384)
  T  Refcount   one per refcount tree in use, as M
  R  Rename     EX for a rename between directories
  O  Open       one per inode open or in use on this node: PR while in use,
                so that a file removed elsewhere is deleted by its last user
  P  OrphanScan EX, one holder, while this node looks through every slot's
                orphan directory (every 5 minutes, the node that gets it
                without waiting)
  F  Flock      one per open file handle that took a flock(2): PR for
                LOCK_SH, EX for LOCK_EX, none once unlocked; listed until
                the handle is closed
  o2go-posix:INODE (TYPE ByteRange)
                the inode's fcntl(2) lock mutex, while requests on this
                node set byte-range locks (o2go's own: O2CB has no fcntl
                locks)

The columns:
  LOCKRES   the lock name
  TYPE      its type, decoded from the name
  INODE     the block number in the name: the inode (2 for the volume lock,
            0 for the rename lock)
  MODE      the level this node holds: NL, PR, EX, or none
  HOLDERS   local users: the operations inside an S, M, T or R lock; the
            open handles and kernel uses of the inode for an O lock; 1
            while its handle holds an F lock; the fcntl requests using a
            byte-range mutex
  PENDING   the action under way and the level it asks for: lock, convert,
            downconvert (after a blocking notification), unlock, cancel;
            - for none
  BLOCKED   the level another node waits for, which this node's excludes,
            or -. An S, M, T or R lock goes down once its last local user
            is done; an F lock stays until its process unlocks it or
            closes the file
  MASTER    the node that masters the lock resource (* : this node)
  WAITERS   other nodes' requests queued at the master (node:level), known
            when this node is the master; - for none
  ACQUIRES  the gets served: uses of an S, M, T or R lock, grants of an F
            lock (PR and EX gets together)
  REQUESTS  requests to the lock manager: new locks and conversions up (for
            F, every lock and conversion)
  DOWNCONV  conversions down: after blocking notifications for S, M, T, R;
            LOCK_EX to LOCK_SH for F
  BLOCKS    blocking notifications received
  PR GETS/WAITS/MAX, EX GETS/WAITS/MAX
            per level: the gets, how many of them waited (for the lock
            manager, for a downconvert or a recovery under way: any get
            not served from the level this node held already; every F get
            asks the lock manager), and the longest of those waits (a
            duration: 0s, 850µs, 1.2s). The total wait is in --json
            (wait_total_ns)
S, M, T and R locks count since their first use on this mount (an idle
lock given up, as they are past 16384 locks, starts again when next used);
F locks since their handle took its first flock; O locks and byte-range
mutexes keep no counts (-). --json also gives an F lock's handle and the
process that took it or asks for it (pid).

Against the kernel's fs_locks: Mode is MODE; RO and EX Holders are HOLDERS
together; Pending Action and Requested Mode are PENDING; Blocking Mode is
BLOCKED; -B keeps what the Busy flag marks, and the locks in use; the
"PR > Gets ... Waits Total ... Max" and "EX > ..." lines are the
GETS/WAITS/MAX columns. o2go counts no failed gets (Fails) and no Disk
Refreshes; MASTER and WAITERS are what the kernel shows in dlm_locks on the
master.

A row that ends with "untracked" is a lock this node holds in the volume's
lock domain that the file system does not account for: one taken with
'o2go lock' in the domain, or a leak.

-B shows only busy locks: with local users (a held flock among them), a
request or downconvert under way, or another node blocked on them. To
follow a hang (ocfs2(7), DLM DEBUGGING): run fs_locks -B on the node whose
processes hang; for each busy lock, 'o2go dlm locks UUID NAME' on its
master shows who holds it; then fs_locks on the holder shows why it does
not let go (its holders; for a flock, a process that holds it).

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
