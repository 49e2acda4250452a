package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"o2go/internal/cluster/config"
	"o2go/internal/fs/volume"
)

func init() { subcommands = append(subcommands, newTunefsCommand) }

// flagGiven is pflag's NoOptDefVal marker for options whose argument is
// optional (-U, -S, --cloned-volume): given without a value.
const flagGiven = "\x00given"

func newTunefsCommand() *cobra.Command {
	var (
		o                                          volume.TunefsOptions
		label, uuid, resizeUnit, cloned, journal   string
		mount, query, stack, clusterName, features string
		slots                                      int
		backupSuper, globalHB, progress, version   bool
		confPath, sysconfPath                      string
		hbWait                                     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tunefs [options] DEVICE [NEW-SIZE]",
		Short: "Change an OCFS2 volume's parameters (tunefs.ocfs2, o2cluster)",
		Long: `tunefs changes an OCFS2 volume offline, with tunefs.ocfs2 1.8.7's options:
the label (-L), the UUID (-U, --cloned-volume), the number of node slots (-N:
more slots get their system files and journals), the journals (-J size=,
block64, block32), the volume size (-S grows it to the device, or to NEW-SIZE
blocks; -S=clusters or -S=bytes change the unit), features (--fs-features=
[no]NAME,..., -M local|cluster, --backup-super) and the cluster stack
(--update-cluster-stack stamps this node's cluster; --cluster-stack,
--cluster-name and --global-heartbeat stamp a given one, as o2cluster(8)
does; --cluster-stack=default removes the stamp). -Q prints attributes with a
printf-like format (%B %T %N %R %Y %P %V %U %M %H %O, escapes \n \t ...).

Operations run in this order: resize, label, cloned volume, UUID, slots,
journal, cluster stack, features (turned off, then on), query.

It refuses a volume that is mounted on this machine, has a loop device
attached, or (clustered) shows live heartbeats, unless -F; and one with a
dirty journal, an aborted resize or tunefs operation (run fsck.ocfs2 -f), or
that is a heartbeat device. -i asks before each change; -y and -n answer
every question, including those asked even without -i (a custom UUID, a
cloned volume, a new cluster stack).

EXIT STATUS
  0  every operation was done (or had nothing to do, or was answered no)
  1  bad options, a refusal, or an I/O error`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version {
				fmt.Fprintln(cmd.OutOrStdout(), "o2go tunefs (tunefs.ocfs2 1.8.7 compatible)")
				return nil
			}
			if len(args) == 0 {
				return fmt.Errorf("no device specified")
			}
			f := cmd.Flags()
			o.SetLabel = f.Changed("label")
			o.Label = label
			if f.Changed("uuid-reset") {
				o.ResetUUID = true
				if uuid != flagGiven {
					o.UUID = uuid
				}
			}
			if f.Changed("cloned-volume") {
				o.ClonedVolume = true
				if cloned != flagGiven {
					o.ClonedLabel = cloned
				}
			}
			if f.Changed("node-slots") {
				if slots < 1 {
					return fmt.Errorf("-N: at least one slot required")
				}
				o.Slots = slots
			}
			if journal != "" {
				if err := parseTunefsJournal(journal, &o); err != nil {
					return fmt.Errorf("-J: %v", err)
				}
			}
			if f.Changed("volume-size") {
				o.Resize = true
				if len(args) == 2 {
					unit := "blocks"
					if resizeUnit != flagGiven {
						unit = resizeUnit
					}
					o.ResizeTo = unit + ":" + args[1]
				}
			} else if len(args) == 2 {
				return fmt.Errorf("too many arguments: NEW-SIZE is only valid with -S")
			}
			var feats []string
			switch {
			case mount == "local":
				feats = append(feats, "local")
			case mount == "cluster":
				feats = append(feats, "nolocal")
			case mount != "":
				return fmt.Errorf("-M: invalid mount type %q: want local or cluster", mount)
			}
			if backupSuper {
				feats = append(feats, "backup-super")
			}
			if features != "" {
				feats = append(feats, features)
			}
			o.Features = strings.Join(feats, ",")
			if f.Changed("cluster-stack") || f.Changed("cluster-name") || globalHB {
				if stack == "default" {
					if clusterName != "" || globalHB {
						return fmt.Errorf("--cluster-stack=default takes no --cluster-name or --global-heartbeat")
					}
					stack = ""
				} else if stack == "" {
					return fmt.Errorf("--cluster-name and --global-heartbeat need --cluster-stack")
				}
				o.SetClusterStack = true
				o.ClusterStack = volume.ClusterStack{Stack: stack, Name: clusterName, GlobalHeartbeat: globalHB}
			}
			o.SetQuery = f.Changed("query")
			o.Query = query
			if needsRunningStack(&o) {
				o.RunningStack = runningClusterStack(confPath, sysconfPath, cmd)
			}
			o.HeartbeatWait = hbWait
			o.Out, o.ErrOut = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if in, ok := cmd.InOrStdin().(*os.File); ok && isTerminal(in) {
				r := bufio.NewReader(in)
				o.Confirm = func(q string) bool {
					fmt.Fprint(cmd.ErrOrStderr(), q)
					line, _ := r.ReadString('\n')
					return strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y")
				}
			}
			if out, ok := cmd.ErrOrStderr().(*os.File); (ok && isTerminal(out) || progress) && !o.Quiet {
				bars := map[string]*progressbar.ProgressBar{}
				o.Progress = func(stage string, done, total int64) {
					bar := bars[stage]
					if bar == nil {
						bar = progressbar.NewOptions64(total, progressbar.OptionSetDescription(stage),
							progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionShowCount(),
							progressbar.OptionOnCompletion(func() { fmt.Fprintln(cmd.ErrOrStderr()) }))
						bars[stage] = bar
					}
					_ = bar.Set64(done)
				}
			}
			return volume.Tunefs(args[0], o)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVarP(&label, "label", "L", "", "new volume `label`, at most 63 bytes")
	f.IntVarP(&slots, "node-slots", "N", 0, "new number of node slots (more than now: each new slot gets its system files and journal)")
	f.StringVarP(&resizeUnit, "volume-size", "S", "", "grow the volume to the device's size, or to NEW-SIZE (in blocks; -S=bytes, -S=clusters for other units)")
	f.Lookup("volume-size").NoOptDefVal = flagGiven
	f.StringVarP(&uuid, "uuid-reset", "U", "", "new UUID: random, or -U=UUID (32 hex digits or the dashed form)")
	f.Lookup("uuid-reset").NoOptDefVal = flagGiven
	f.StringVarP(&journal, "journal-options", "J", "", "journal `options`: size=N[KMGTP], block64, block32")
	f.StringVarP(&query, "query", "Q", "", "print the volume's attributes with this `format`")
	f.StringVarP(&mount, "mount", "M", "", "mount type: local or cluster (--fs-features=[no]local)")
	f.BoolVar(&backupSuper, "backup-super", false, "write backup superblocks (--fs-features=backup-super)")
	f.StringVar(&features, "fs-features", "", "features to turn on or (prefixed with no) off, comma separated")
	f.BoolVar(&o.UpdateClusterStack, "update-cluster-stack", false, "stamp the cluster this node runs (from its O2CB configuration) on the volume")
	f.StringVar(&stack, "cluster-stack", "", "stamp this cluster stack: o2cb, pcmk, cman, or default (o2cluster --update)")
	f.StringVar(&clusterName, "cluster-name", "", "the cluster name for --cluster-stack")
	f.BoolVar(&globalHB, "global-heartbeat", false, "o2cb's global heartbeat mode for --cluster-stack=o2cb")
	f.StringVar(&cloned, "cloned-volume", "", "new random UUID and label (default: the label with -cloned appended) for a cloned volume")
	f.Lookup("cloned-volume").NoOptDefVal = flagGiven
	f.BoolVarP(&o.Force, "force", "F", false, "change the volume even if it looks in use")
	f.BoolVarP(&o.Interactive, "interactive", "i", false, "ask before each change")
	f.BoolVarP(&progress, "progress", "p", false, "show progress of long operations")
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "say what is done and what there is nothing to do for")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "print nothing but errors and -Q's output")
	f.BoolVarP(&o.Yes, "yes", "y", false, "answer yes to every question")
	f.BoolVarP(&o.No, "no", "n", false, "answer no to every question")
	f.BoolVarP(&version, "version", "V", false, "show the version")
	f.StringVar(&confPath, "config", config.DefaultClusterConfPath, "cluster configuration `FILE` (for the running cluster)")
	f.StringVar(&sysconfPath, "sysconfig", "", "o2cb sysconfig `FILE` (default: /etc/default/o2cb or /etc/sysconfig/o2cb)")
	f.DurationVar(&hbWait, "heartbeat-wait", 0, "how long to watch a clustered volume's heartbeat area for live nodes (default 5s)")
	_ = f.MarkHidden("heartbeat-wait")
	return cmd
}

// parseTunefsJournal parses -J: size=N, block64, block32 (noblock64 and
// noblock32 are block32 and block64).
func parseTunefsJournal(s string, o *volume.TunefsOptions) error {
	for _, tok := range strings.Split(s, ",") {
		key, val, hasVal := strings.Cut(tok, "=")
		switch {
		case key == "size" && hasVal:
			n, err := volume.ParseTunefsNumber(val)
			if err != nil {
				return fmt.Errorf("journal size is invalid: %v", err)
			}
			o.JournalSize = n
		case (key == "block64" || key == "noblock32") && !hasVal:
			o.JournalBlocks = 1
		case (key == "block32" || key == "noblock64") && !hasVal:
			o.JournalBlocks = -1
		default:
			return fmt.Errorf("unknown journal option %q: valid options are size=<journal-size>, block64, block32, noblock64, noblock32", tok)
		}
	}
	return nil
}

// needsRunningStack reports whether an operation stamps this node's
// cluster.
func needsRunningStack(o *volume.TunefsOptions) bool {
	if o.UpdateClusterStack {
		return true
	}
	for _, f := range strings.Split(o.Features, ",") {
		if f == "nolocal" || f == "clusterinfo" {
			return true
		}
	}
	return false
}

// runningClusterStack is the cluster this node runs, from its O2CB
// configuration: o2go runs the o2cb stack. Nil (with a note) when none is
// configured.
func runningClusterStack(confPath, sysconfPath string, cmd *cobra.Command) *volume.ClusterStack {
	if sysconfPath == "" {
		sysconfPath = config.SysconfigPath("/")
	}
	s, err := loadAgentSetup(confPath, sysconfPath, "")
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "no running cluster: %v\n", err)
		return nil
	}
	return &volume.ClusterStack{Stack: "o2cb", Name: s.cluster.Name, GlobalHeartbeat: s.cluster.HeartbeatMode == config.HeartbeatGlobal}
}
